//! Anthropic Messages stream → OpenAI `chat.completion.chunk` stream.

use wire::anthropic::{MessagesToChatStream, TranslateError};
use wire::openai::Usage;

use crate::support::openai_schema;
use crate::support::read;
use crate::support::sse::{assert_events_eq, feed_events, parse_events, PIECE_SIZES};

const CREATED: u64 = 1_736_900_000;

/// Runs `anthropic/streams/<case>.sse` through a translator, in pieces of `piece_len`
/// bytes; returns the output, the usage and whether the stream finished.
fn run(
    case: &str,
    include_usage: bool,
    piece_len: usize,
) -> (Vec<u8>, Option<Usage>, bool, Option<TranslateError>) {
    let raw = read(&format!("anthropic/streams/{case}.sse"));
    let mut stream = MessagesToChatStream::new("claude-sonnet", CREATED, include_usage);
    let mut out = Vec::new();
    let mut error = None;
    feed_events(&raw, piece_len, |data| {
        if error.is_none() {
            if let Err(e) = stream.push(data, &mut out) {
                error = Some(e);
            }
        }
    });
    (out, stream.usage(), stream.is_done(), error)
}

/// Translates `anthropic/streams/<case>.sse` at every piece size and compares with
/// `openai/streams/<expected>.sse`; every chunk must have OpenAI's required fields.
fn check(case: &str, expected: &str, include_usage: bool, usage: Usage) {
    let expected_events = parse_events(&read(&format!("openai/streams/{expected}.sse")));
    let mut first: Option<Vec<u8>> = None;
    for piece_len in PIECE_SIZES {
        let (out, got_usage, done, error) = run(case, include_usage, piece_len);
        assert!(error.is_none(), "{case}: {error:?}");
        assert!(done, "{case}: is_done after message_stop");
        assert_eq!(got_usage, Some(usage), "{case}: usage");
        let events = parse_events(&out);
        for event in &events {
            assert_eq!(event.name, None, "OpenAI streams have no event names");
            if event.data != "[DONE]" {
                let chunk = event.json();
                openai_schema::chunk(&chunk);
                assert_eq!(
                    chunk.get("usage").is_some(),
                    include_usage,
                    "usage key iff include_usage"
                );
            }
        }
        assert_events_eq(
            &events,
            &expected_events,
            &format!("{case} in pieces of {piece_len}"),
        );
        match &first {
            None => first = Some(out),
            Some(first) => assert_eq!(first, &out, "{case}: output independent of the splitting"),
        }
    }
}

#[test]
fn text_stream_with_usage_chunk() {
    check(
        "text",
        "text",
        true,
        Usage {
            prompt_tokens: 2073,
            completion_tokens: 15,
            total_tokens: 2088,
        },
    );
}

#[test]
fn text_stream_without_usage_chunk() {
    check(
        "text",
        "text_no_usage",
        false,
        Usage {
            prompt_tokens: 2073,
            completion_tokens: 15,
            total_tokens: 2088,
        },
    );
}

#[test]
fn tool_use_stream_with_input_json_deltas() {
    check(
        "tool_use",
        "tool_use",
        true,
        Usage {
            prompt_tokens: 472,
            completion_tokens: 89,
            total_tokens: 561,
        },
    );
}

#[test]
fn error_event_ends_the_stream_with_a_translate_error() {
    for piece_len in PIECE_SIZES {
        let (out, usage, done, error) = run("overloaded_midway", true, piece_len);
        let error = error.expect("the error event is an error");
        assert!(
            error.message.contains("overloaded_error") && error.message.contains("Overloaded"),
            "{error}"
        );
        assert!(!done);
        assert_eq!(usage.map(|u| u.prompt_tokens), Some(31));
        let events = parse_events(&out);
        assert_eq!(events.len(), 2, "role chunk and the text before the error");
        assert_eq!(
            events[1].json()["choices"][0]["delta"]["content"],
            "The answer"
        );
    }
}

#[test]
fn usage_is_known_from_message_start_on() {
    let mut stream = MessagesToChatStream::new("m", CREATED, false);
    assert_eq!(stream.usage(), None);
    let mut out = Vec::new();
    stream
        .push(br#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}"#, &mut out)
        .expect("start");
    assert_eq!(
        stream.usage(),
        Some(Usage {
            prompt_tokens: 7,
            completion_tokens: 1,
            total_tokens: 8
        })
    );
    stream.push(br#"{"type": "ping"}"#, &mut out).expect("ping");
    stream
        .push(br#"{"type":"some_future_event","x":1}"#, &mut out)
        .expect("unknown events are skipped");
    assert_eq!(parse_events(&out).len(), 1);
}

#[test]
fn message_stop_without_message_delta_still_finishes() {
    let mut stream = MessagesToChatStream::new("m", CREATED, false);
    let mut out = Vec::new();
    stream.push(br#"{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":1,"output_tokens":1}}}"#, &mut out).expect("start");
    stream
        .push(br#"{"type":"message_stop"}"#, &mut out)
        .expect("stop");
    assert!(stream.is_done());
    let events = parse_events(&out);
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    assert_eq!(events[1].json()["choices"][0]["finish_reason"], "stop");
    // Anything after the end is ignored.
    let len = out.len();
    stream
        .push(br#"{"type":"message_stop"}"#, &mut out)
        .expect("after the end");
    assert_eq!(out.len(), len);
}

#[test]
fn thinking_and_server_tool_blocks_are_skipped() {
    let mut stream = MessagesToChatStream::new("m", CREATED, false);
    let mut out = Vec::new();
    for event in [
        r#"{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":1,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query\": \"x\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Done."}}"#,
    ] {
        stream.push(event.as_bytes(), &mut out).expect(event);
    }
    let events = parse_events(&out);
    assert_eq!(events.len(), 2, "role chunk and the text");
    assert_eq!(events[1].json()["choices"][0]["delta"]["content"], "Done.");
}

#[test]
fn events_before_message_start_or_garbage_are_errors() {
    let mut stream = MessagesToChatStream::new("m", CREATED, false);
    let mut out = Vec::new();
    let e = stream
        .push(
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#,
            &mut out,
        )
        .expect_err("no message_start yet");
    assert!(e.message.contains("message_start"), "{e}");
    let e = stream.push(b"not json", &mut out).expect_err("garbage");
    assert!(e.message.contains("not valid JSON"), "{e}");
    assert!(out.is_empty());
}
