//! What a provider adapter is asked, and what it answers: always OpenAI's format, so
//! the relay and the meter never see a provider's own wire format.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wire::openai::Usage;

use super::anthropic::Egress;
use super::origin::ResponseBody;
use super::Endpoint;
use crate::pool::Headroom;
use crate::sse_body::TranslatedSse;

/// One upstream call: an OpenAI-format request body with the upstream model set.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub endpoint: Endpoint,
    pub body: Bytes,
    pub stream: bool,
    /// The client-facing name of the model serving the call (shown in answers).
    pub model: &'a str,
    /// The name the upstream knows the model by.
    pub upstream_model: &'a str,
}

/// A successful upstream answer, in OpenAI's format.
pub enum UpstreamReply {
    /// A complete answer and the usage it reports.
    Full {
        status: u16,
        content_type: Option<http::HeaderValue>,
        body: Bytes,
        usage: Option<Usage>,
        headroom: Option<Headroom>,
    },
    /// A live event stream.
    Stream {
        status: u16,
        content_type: Option<http::HeaderValue>,
        body: UpstreamBody,
        headroom: Option<Headroom>,
    },
}

impl UpstreamReply {
    /// The remaining quota the upstream reported with this answer.
    pub fn headroom(&self) -> Option<Headroom> {
        match self {
            UpstreamReply::Full { headroom, .. } | UpstreamReply::Stream { headroom, .. } => {
                *headroom
            }
        }
    }
}

/// A live upstream stream in OpenAI's SSE format.
pub enum UpstreamBody {
    /// Relayed as the upstream sends it.
    Plain(ResponseBody),
    /// Anthropic events translated to OpenAI chunks as they arrive.
    Anthropic(Box<TranslatedSse<ResponseBody, Egress>>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Plain(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Anthropic(body) => {
                Pin::new(body.as_mut()).poll_frame(cx).map_err(Into::into)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Plain(body) => body.is_end_stream(),
            UpstreamBody::Anthropic(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Plain(body) => body.size_hint(),
            UpstreamBody::Anthropic(body) => body.size_hint(),
        }
    }
}
