use bytes::BytesMut;
use http::{HeaderName, HeaderValue, Method, StatusCode, Version};

use super::body::MAX_CHUNK_LINE;
use super::*;

fn head_of(bytes: &[u8]) -> (Head, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let head = parse_head(&mut buf, false)
        .expect("valid head")
        .expect("complete head");
    (head, buf)
}

/// Decodes `bytes` fed `step` bytes at a time; answers the body and whether it ended.
fn decode_in_steps(framing: Framing, bytes: &[u8], step: usize) -> (Vec<u8>, bool) {
    let mut decoder = BodyDecoder::new(framing);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    for piece in bytes.chunks(step) {
        buf.extend_from_slice(piece);
        let decoded = decoder.decode(&mut buf, usize::MAX).expect("valid body");
        if let Some(data) = decoded.data {
            body.extend_from_slice(&data);
        }
        if decoded.done {
            assert!(decoder.is_done());
            return (body, true);
        }
    }
    (body, false)
}

#[test]
fn a_request_head_has_the_host_the_headers_and_the_body_length() {
    let field = |name: &'static str, value: &'static str| {
        (
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    let headers = [
        field("content-type", "application/json"),
        field("authorization", "Bearer sk-test"),
        // Framing is the client's own: these are replaced or dropped.
        field("content-length", "999"),
        field("connection", "close"),
    ];
    let mut out = Vec::new();
    let host = HeaderValue::from_static("api.openai.com");
    encode_request(
        &Method::POST,
        "/v1/chat/completions",
        &headers,
        None,
        &host,
        212,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).expect("ascii"),
        "POST /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\n\
         content-type: application/json\r\nauthorization: Bearer sk-test\r\n\
         content-length: 212\r\n\r\n"
    );
}

#[test]
fn a_get_without_a_body_has_no_content_length_and_a_given_host_is_kept() {
    let headers = [(
        http::header::HOST,
        HeaderValue::from_static("localhost:11434"),
    )];
    let mut out = Vec::new();
    let host = HeaderValue::from_static("127.0.0.1:11434");
    encode_request(
        &Method::GET,
        "/v1/models?x=1",
        &headers,
        None,
        &host,
        0,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).expect("ascii"),
        "GET /v1/models?x=1 HTTP/1.1\r\nhost: localhost:11434\r\n\r\n"
    );
    let mut out = Vec::new();
    let credential = (
        &http::header::AUTHORIZATION,
        &HeaderValue::from_static("Bearer k"),
    );
    encode_request(
        &Method::POST,
        "/",
        &[],
        Some(credential),
        &host,
        0,
        &mut out,
    );
    assert!(String::from_utf8(out)
        .expect("ascii")
        .ends_with("authorization: Bearer k\r\ncontent-length: 0\r\n\r\n"));
}

#[test]
fn lengths_are_written_in_decimal() {
    for n in [7usize, 10, 4096, 1_000_000, usize::MAX] {
        let mut out = Vec::new();
        encode_request(
            &Method::POST,
            "/",
            &[],
            None,
            &HeaderValue::from_static("h"),
            n,
            &mut out,
        );
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.ends_with(&format!("content-length: {n}\r\n\r\n")),
            "{text}"
        );
    }
}

/// A non-stream answer as OpenAI sends it (headers abridged from a real capture).
const OPENAI_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Sat, 21 Nov 2026 10:00:00 GMT\r\n\
Content-Type: application/json\r\n\
Content-Length: 17\r\n\
Connection: keep-alive\r\n\
openai-processing-ms: 412\r\n\
x-ratelimit-limit-requests: 10000\r\n\
x-ratelimit-remaining-requests: 9999\r\n\
x-ratelimit-reset-requests: 6ms\r\n\
x-request-id: req_0123456789abcdef\r\n\
cf-ray: 8f00000000000000-LIS\r\n\
\r\n";

#[test]
fn an_openai_answer_head_is_read_with_every_header_and_its_length() {
    let mut bytes = OPENAI_HEAD.to_vec();
    bytes.extend_from_slice(b"{\"id\":\"chatcmpl\"}");
    let (head, rest) = head_of(&bytes);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.framing, Framing::Length(17));
    assert!(head.keep_alive);
    assert_eq!(head.headers.len(), 10);
    assert_eq!(
        head.headers.text("X-RateLimit-Remaining-Requests"),
        Some("9999")
    );
    assert_eq!(
        head.headers.value("content-type"),
        Some(HeaderValue::from_static("application/json"))
    );
    let names: Vec<&[u8]> = head.headers.iter().map(|(name, _)| name).collect();
    assert_eq!(names[0], b"Date", "in order, as sent");
    assert_eq!(names[9], b"cf-ray");
    assert_eq!(
        &rest[..],
        b"{\"id\":\"chatcmpl\"}",
        "the body stays in the buffer"
    );
}

#[test]
fn a_head_is_awaited_until_complete_and_refused_when_too_long() {
    for cut in [0, 5, 17, OPENAI_HEAD.len() - 1] {
        let mut buf = BytesMut::from(&OPENAI_HEAD[..cut]);
        assert!(parse_head(&mut buf, false).expect("no error yet").is_none());
        assert_eq!(buf.len(), cut, "nothing consumed");
    }
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nx-big: "[..]);
    buf.extend_from_slice(&vec![b'a'; MAX_HEAD]);
    assert_eq!(
        parse_head(&mut buf, false).expect_err("too long"),
        H1Error::HeadTooLarge
    );
}

#[test]
fn garbage_instead_of_a_head_is_an_error() {
    for garbage in [
        &b"<html>oops</html>\r\n\r\n"[..],
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
    ] {
        let mut buf = BytesMut::from(garbage);
        assert!(
            matches!(parse_head(&mut buf, false), Err(H1Error::Head(_))),
            "{garbage:?}"
        );
    }
}

#[test]
fn interim_answers_are_skipped() {
    let (head, rest) = head_of(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
          HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 2\r\n\r\n{}",
    );
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(head.headers.get("retry-after"), Some(&b"2"[..]));
    assert!(head.headers.get("link").is_none());
    assert_eq!(&rest[..], b"{}");
}

#[test]
fn framing_follows_rfc_9112() {
    let framing_of = |head: &str, head_request: bool| {
        let mut buf = BytesMut::from(head.as_bytes());
        parse_head(&mut buf, head_request).map(|h| h.map(|h| (h.framing, h.keep_alive)))
    };
    let sse =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    assert_eq!(framing_of(sse, false), Ok(Some((Framing::Chunked, true))));
    // Transfer-Encoding wins over Content-Length.
    let both = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: gzip, chunked\r\n\r\n";
    assert_eq!(framing_of(both, false), Ok(Some((Framing::Chunked, true))));
    let not_chunked_last = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n";
    assert_eq!(
        framing_of(not_chunked_last, false),
        Ok(Some((Framing::UntilClose, false)))
    );
    let no_length = "HTTP/1.1 200 OK\r\n\r\n";
    assert_eq!(
        framing_of(no_length, false),
        Ok(Some((Framing::UntilClose, false)))
    );
    let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
    assert_eq!(
        framing_of(no_content, false),
        Ok(Some((Framing::Length(0), true)))
    );
    let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
    assert_eq!(framing_of(head, true), Ok(Some((Framing::Length(0), true))));
    let close = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: Close\r\n\r\n";
    assert_eq!(
        framing_of(close, false),
        Ok(Some((Framing::Length(2), false)))
    );
    let old = "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n";
    assert_eq!(
        framing_of(old, false),
        Ok(Some((Framing::Length(2), false)))
    );
    let old_kept = "HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n";
    assert_eq!(
        framing_of(old_kept, false),
        Ok(Some((Framing::Length(2), true)))
    );
    let repeated = "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\n";
    assert_eq!(
        framing_of(repeated, false),
        Ok(Some((Framing::Length(2), true)))
    );
    for bad in ["2, 3", "-1", "", "0x10", "99999999999999999999999"] {
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n");
        assert_eq!(
            framing_of(&head, false),
            Err(H1Error::ContentLength),
            "{bad}"
        );
    }
}

#[test]
fn a_length_body_ends_at_its_length_whatever_the_reads() {
    for step in [1, 3, 100] {
        let (body, done) = decode_in_steps(Framing::Length(11), b"hello worldNEXT", step);
        assert_eq!(body, b"hello world");
        assert!(done);
    }
    let (body, done) = decode_in_steps(Framing::Length(20), b"short", 2);
    assert_eq!(body, b"short");
    assert!(!done);
}

/// A streamed chat answer as OpenAI sends it: one SSE event per chunk, with a chunk
/// extension and a trailer to skip.
const SSE_CHUNKED: &[u8] = b"30\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\r\n\
e;name=value\r\ndata: [DONE]\n\n\r\n\
0\r\nx-trailer: yes\r\n\r\n";

#[test]
fn a_chunked_body_is_decoded_across_any_split_of_its_bytes() {
    let expected = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n";
    for step in 1..=SSE_CHUNKED.len() {
        let (body, done) = decode_in_steps(Framing::Chunked, SSE_CHUNKED, step);
        assert_eq!(body, expected, "read {step} bytes at a time");
        assert!(done, "read {step} bytes at a time");
    }
}

#[test]
fn chunks_already_buffered_come_out_as_one_piece_up_to_the_limit() {
    let mut buf = BytesMut::from(&b"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\nleftover"[..]);
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let decoded = decoder.decode(&mut buf, usize::MAX).expect("valid");
    assert_eq!(decoded.data.as_deref(), Some(&b"onetwothree"[..]));
    assert!(decoded.done);
    assert_eq!(&buf[..], b"leftover", "bytes after the body are left alone");

    let mut buf = BytesMut::from(&b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"[..]);
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let first = decoder.decode(&mut buf, 3).expect("valid");
    assert_eq!(first.data.as_deref(), Some(&b"one"[..]));
    assert!(!first.done);
    let second = decoder.decode(&mut buf, 3).expect("valid");
    assert_eq!(second.data.as_deref(), Some(&b"two"[..]));
    assert!(second.done);
}

#[test]
fn a_broken_chunked_body_is_an_error() {
    for broken in [
        &b"zz\r\nhello\r\n"[..],
        b"5\r\nhelloXX",
        b"5 junk\r\nhello\r\n",
        b"ffffffffffffffff\r\n",
    ] {
        let mut buf = BytesMut::from(broken);
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let result = decoder.decode(&mut buf, usize::MAX);
        assert!(
            matches!(result, Err(H1Error::Chunked(_))),
            "{broken:?}: {result:?}"
        );
    }
    let mut endless = BytesMut::from(&vec![b'1'; MAX_CHUNK_LINE + 2][..]);
    let result = BodyDecoder::new(Framing::Chunked).decode(&mut endless, usize::MAX);
    assert!(matches!(result, Err(H1Error::Chunked(_))), "{result:?}");
}

#[test]
fn a_close_delimited_body_ends_only_when_the_connection_closes() {
    let mut decoder = BodyDecoder::new(Framing::UntilClose);
    let mut buf = BytesMut::from(&b"partial"[..]);
    let decoded = decoder.decode(&mut buf, usize::MAX).expect("valid");
    assert_eq!(decoded.data.as_deref(), Some(&b"partial"[..]));
    assert!(!decoded.done);
    assert!(decoder.closed());
    assert!(decoder.is_done());

    let mut cut = BodyDecoder::new(Framing::Length(10));
    assert!(!cut.closed(), "a length body cut short");
    let mut cut = BodyDecoder::new(Framing::Chunked);
    assert!(!cut.closed(), "a chunked body cut short");
}

#[test]
fn fields_are_found_in_any_case_and_repeated_ones_in_order() {
    let (head, _) = head_of(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing:  padded \r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n",
    );
    let cookies: Vec<&[u8]> = head.headers.get_all("set-cookie").collect();
    assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
    assert_eq!(head.headers.text("x-thing"), Some("padded"));
    assert_eq!(head.headers.get("x-other"), None);
    assert!(!head.headers.is_empty());
}
