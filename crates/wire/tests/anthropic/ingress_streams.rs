//! OpenAI `chat.completion.chunk` stream → Anthropic Messages stream (`/v1/messages` ingress).

use wire::anthropic::ChatToMessagesStream;
use wire::openai::Usage;

use crate::support::anthropic_shape;
use crate::support::read;
use crate::support::sse::{assert_events_eq, feed_events, parse_events, Event, PIECE_SIZES};

/// Runs raw OpenAI stream bytes through a translator in pieces of `piece_len` bytes.
fn run(raw: &[u8], piece_len: usize) -> (Vec<u8>, Option<Usage>) {
    let mut stream = ChatToMessagesStream::new("gpt-4o");
    let mut out = Vec::new();
    feed_events(raw, piece_len, |data| {
        stream
            .push(data, &mut out)
            .unwrap_or_else(|e| panic!("push: {e}"));
    });
    (out, stream.usage())
}

/// Checks the event sequence the Anthropic SDKs expect: message_start first, blocks
/// started before their deltas and stopped once, message_delta then message_stop last.
fn assert_well_formed(events: &[Event]) {
    let names: Vec<&str> = events.iter().filter_map(|e| e.name.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let mut open: Option<u64> = None;
    let mut started = Vec::new();
    for event in events {
        let data = event.json();
        anthropic_shape::event(event.name.as_deref(), &data);
        let index = data.get("index").and_then(serde_json::Value::as_u64);
        match event.name.as_deref() {
            Some("content_block_start") => {
                assert_eq!(
                    open, None,
                    "a block starts only after the previous one stopped"
                );
                let index = index.expect("index");
                assert_eq!(index, started.len() as u64, "blocks are numbered from 0");
                started.push(index);
                open = Some(index);
            }
            Some("content_block_delta") => assert!(started.contains(&index.expect("index"))),
            Some("content_block_stop") => assert_eq!(open.take(), index, "stops the open block"),
            Some("message_delta") => assert_eq!(open, None, "all blocks stopped"),
            _ => {}
        }
    }
}

/// Translates `openai/streams/ingress_<case>.sse` at every piece size and compares with
/// `anthropic/streams/ingress_<case>.sse`.
fn check(case: &str, usage: Usage) {
    let name = format!("ingress_{case}");
    let raw = read(&format!("openai/streams/{name}.sse"));
    let expected = parse_events(&read(&format!("anthropic/streams/{name}.sse")));
    let mut first: Option<Vec<u8>> = None;
    for piece_len in PIECE_SIZES {
        let (out, got_usage) = run(&raw, piece_len);
        assert_eq!(got_usage, Some(usage), "{name}: usage");
        let events = parse_events(&out);
        assert_well_formed(&events);
        assert_events_eq(
            &events,
            &expected,
            &format!("{name} in pieces of {piece_len}"),
        );
        match &first {
            None => first = Some(out),
            Some(first) => assert_eq!(first, &out, "{name}: output independent of the splitting"),
        }
    }
}

#[test]
fn text_stream() {
    check(
        "text",
        Usage {
            prompt_tokens: 19,
            completion_tokens: 10,
            total_tokens: 29,
        },
    );
}

#[test]
fn text_then_parallel_tool_calls() {
    check(
        "tool_calls",
        Usage {
            prompt_tokens: 82,
            completion_tokens: 50,
            total_tokens: 132,
        },
    );
}

#[test]
fn a_stream_without_usage_chunk_still_ends_properly() {
    let raw = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let (out, usage) = run(raw.as_bytes(), 5);
    assert_eq!(usage, None);
    let events = parse_events(&out);
    assert_well_formed(&events);
    let delta = events
        .iter()
        .find(|e| e.name.as_deref() == Some("message_delta"))
        .expect("message_delta")
        .json();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 0);
}

#[test]
fn an_empty_stream_is_still_a_whole_message() {
    let (out, _) = run(b"data: [DONE]\n\n", 3);
    let events = parse_events(&out);
    assert_well_formed(&events);
    assert_eq!(events.len(), 3);
}

#[test]
fn an_error_in_the_stream_becomes_an_error_event() {
    let raw = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
        "data: [DONE]\n\n",
    );
    let (out, _) = run(raw.as_bytes(), 4);
    let events = parse_events(&out);
    let last = events.last().expect("events");
    assert_eq!(last.name.as_deref(), Some("error"));
    anthropic_shape::event(last.name.as_deref(), &last.json());
    assert!(
        events
            .iter()
            .all(|e| e.name.as_deref() != Some("message_stop")),
        "nothing after the error"
    );
}

#[test]
fn tool_calls_without_ids_get_one() {
    let raw = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let (out, _) = run(raw.as_bytes(), usize::MAX);
    let events = parse_events(&out);
    assert_well_formed(&events);
    let start = events[1].json();
    assert_eq!(start["content_block"]["id"], "toolu_0");
    assert_eq!(start["content_block"]["name"], "f");
}

#[test]
fn garbage_is_an_error() {
    let mut stream = ChatToMessagesStream::new("m");
    let mut out = Vec::new();
    let e = stream.push(b"{oops", &mut out).expect_err("garbage");
    assert!(e.message.contains("not valid JSON"), "{e}");
}
