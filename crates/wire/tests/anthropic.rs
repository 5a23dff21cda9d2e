//! Translation between OpenAI Chat Completions and Anthropic Messages, checked against
//! fixtures in real wire formats (`tests/fixtures/`, see its README). The test modules
//! live in `tests/anthropic/`.

#[path = "anthropic/support/mod.rs"]
mod support;

#[path = "anthropic/egress_requests.rs"]
mod egress_requests;
#[path = "anthropic/egress_responses.rs"]
mod egress_responses;
#[path = "anthropic/egress_streams.rs"]
mod egress_streams;
#[path = "anthropic/errors.rs"]
mod errors;
#[path = "anthropic/ingress_requests.rs"]
mod ingress_requests;
#[path = "anthropic/ingress_responses.rs"]
mod ingress_responses;
#[path = "anthropic/ingress_streams.rs"]
mod ingress_streams;
