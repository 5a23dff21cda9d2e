//! Loopback integration tests: a real gateway on 127.0.0.1:0 with a temp SQLite
//! file (or a PostgreSQL schema of its own: `Setup::postgres`, postgres.rs, and
//! TOLLGATE_TEST_DATABASE=postgres for every test), relaying over real HTTP to mock
//! upstreams started in each test.
#![allow(clippy::unwrap_used)]

mod admin;
mod admission;
mod alerts;
mod anthropic;
mod auth;
mod cli;
mod common;
mod errors;
mod lifecycle;
mod ops;
mod pool;
mod postgres;
mod relay;
mod reports;
mod routing;
mod stats;
mod upstream_cli;
mod usage_spool;
