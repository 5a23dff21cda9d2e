//! Real HTTP over loopback against a mock started per test.

#![allow(clippy::unwrap_used)]

mod chat;
mod common;
mod completions;
mod counters;
mod embeddings;
mod failures;
mod messages;
mod messages_failures;
mod messages_stream;
mod models;
mod pacing;
mod ratelimit;
mod scripts;
mod stream;
