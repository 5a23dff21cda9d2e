//! Tollgate: an OpenAI-compatible LLM API gateway. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod admission;
pub mod alerts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod fast_map;
pub mod h1;
pub mod http;
pub mod pool;
pub mod providers;
pub mod relay;
pub mod routing;
pub mod secrets;
pub mod sse_body;
pub mod store;
pub mod telemetry;
pub mod usage;
