//! Translation between OpenAI Chat Completions and Anthropic Messages, both ways.
//!
//! *Egress* (an OpenAI client, an Anthropic upstream): [`chat_request_to_messages`],
//! [`messages_response_to_chat`], [`MessagesToChatStream`] and
//! [`messages_error_to_openai`].
//!
//! *Ingress* (an Anthropic client on `/v1/messages`, any upstream speaking OpenAI):
//! [`messages_request_to_chat`], [`chat_response_to_messages`],
//! [`ChatToMessagesStream`] and [`openai_error_to_messages`].
//!
//! Every function is pure: bytes in, bytes out. Fields one side has and the other
//! lacks are dropped unless a mapping is documented on the function; a value that
//! cannot be carried over faithfully is a [`TranslateError`] naming the parameter.

mod egress_error;
mod egress_messages;
mod egress_parts;
mod egress_request;
mod egress_response;
mod egress_stream;
mod error;
mod ingress_error;
mod ingress_messages;
mod ingress_request;
mod ingress_response;
mod ingress_stream;
mod json;
mod media;
mod reasons;

pub use egress_error::messages_error_to_openai;
pub use egress_request::chat_request_to_messages;
pub use egress_response::messages_response_to_chat;
pub use egress_stream::MessagesToChatStream;
pub use error::TranslateError;
pub use ingress_error::openai_error_to_messages;
pub use ingress_request::{messages_request_to_chat, MessagesPeek};
pub use ingress_response::chat_response_to_messages;
pub use ingress_stream::ChatToMessagesStream;
