//! Server-wide behaviour knobs.

use std::time::Duration;

/// Behaviour knobs for the whole server.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Wait before sending a response head. Default 0.
    pub first_byte_delay: Duration,
    /// Wait between two stream events. Default 0.
    pub chunk_delay: Duration,
    /// Words in each reply. Default 12.
    pub reply_words: usize,
    /// Models listed by `GET /v1/models`. Default `["mock-gpt", "mock-embedding"]`.
    pub models: Vec<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            reply_words: 12,
            models: vec!["mock-gpt".to_owned(), "mock-embedding".to_owned()],
        }
    }
}
