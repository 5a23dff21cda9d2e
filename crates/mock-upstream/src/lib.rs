//! A fake OpenAI-compatible server over real HTTP, which also speaks Anthropic's
//! Messages API.
//!
//! It answers `POST /v1/chat/completions`, `POST /v1/completions` (plain and SSE
//! stream), `POST /v1/embeddings`, `GET /v1/models` and `GET /health` with
//! deterministic bodies that validate against OpenAI's published schemas, and
//! `POST /v1/messages` (plain and SSE stream, `x-api-key` and `anthropic-version`
//! required) in Anthropic's shapes, all with real token counts
//! (`wire::tokens::count`). Failures are scripted three ways:
//!
//! - per key, at run time: [`MockServer::script`] queues [`Step`]s for a key (the
//!   Bearer token, or the `x-api-key` on `/v1/messages`);
//! - per key, by its secret: `mock-401…`, `mock-403…`, `mock-429…` (`mock-429-retry-N`),
//!   `mock-500…`, `mock-529…`, `mock-hang…`;
//! - per request, by a directive in the last (user) message or the prompt:
//!   `[[mock:500]]`, `[[mock:429]]`, `[[mock:context-length]]`, `[[mock:hang]]`,
//!   `[[mock:garbage]]`, `[[mock:chunk-delay=MS]]`, `[[mock:first-byte-delay=MS]]`,
//!   `[[mock:hang-after-first-chunk]]`, `[[mock:no-usage]]`, `[[mock:tool]]`.
//!
//! Errors take the shape of the API asked. Every request is counted (total, per
//! key, per path) and the last one per path is kept, so tests can assert what an
//! upstream received.

mod admit;
mod chat;
mod chat_body;
mod chat_stream;
mod completions;
mod directives;
mod embeddings;
mod errors;
mod messages;
mod messages_body;
mod messages_errors;
mod messages_request;
mod messages_stream;
mod models;
mod options;
mod outcome;
mod ratelimit;
mod record;
mod reply;
mod request;
mod script;
mod server;
mod shared;
mod sse;
mod tools;

pub use options::MockOptions;
pub use record::RecordedRequest;
pub use script::Step;
pub use server::MockServer;
