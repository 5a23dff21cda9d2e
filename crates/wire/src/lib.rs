//! Wire formats spoken by Tollgate's clients and upstreams, as plain data and pure
//! functions: no I/O, no async runtime. The only crate that knows provider JSON.

pub mod anthropic;
pub mod openai;
pub mod sse;
pub mod tokens;
