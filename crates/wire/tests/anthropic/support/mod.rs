//! Fixture loading, JSON comparison, SSE handling and response-shape checks.

pub mod anthropic_shape;
pub mod openai_schema;
pub mod sse;

use std::path::PathBuf;

use serde_json::Value;

/// The bytes of `tests/fixtures/<rel>`.
pub fn read(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()))
}

/// `tests/fixtures/<rel>` parsed as JSON.
pub fn json(rel: &str) -> Value {
    parse(&read(rel), rel)
}

/// `bytes` parsed as JSON; `what` names them in the panic message.
pub fn parse(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Asserts two JSON values are equal, printing both pretty when they are not.
pub fn assert_json_eq(actual: &Value, expected: &Value, what: &str) {
    if actual != expected {
        panic!(
            "{what} differs\n--- actual ---\n{}\n--- expected ---\n{}",
            pretty(actual),
            pretty(expected)
        );
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
