//! The policy checks of a call, as plain functions: where it comes from and what it
//! asks for, against its key's [`KeyPolicy`].

use std::net::IpAddr;

use super::policy::KeyPolicy;

/// Why a key's policy refuses a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("This API key may not call {path}. Ask your administrator to allow the endpoint.")]
    Endpoint { path: &'static str },
    #[error("This API key may not use the model `{model}`. Ask your administrator to allow it, or use one of the models GET /v1/models lists.")]
    Model { model: String },
    #[error(
        "max_tokens {asked} is above this API key's cap of {cap}. Ask for at most {cap} tokens."
    )]
    MaxTokens { asked: u64, cap: u64 },
    #[error("This API key may not stream. Send the request without `stream`.")]
    Streaming,
    #[error("This API key may not use tools. Send the request without `tools`.")]
    Tools,
    #[error("This API key may not send images. Send the request without image content.")]
    Vision,
    #[error("This API key may not be used from {ip}. Ask your administrator to add your network to the key's IP allowlist.")]
    Ip { ip: IpAddr },
    #[error("This API key may not be used from the origin {origin}. Ask your administrator to add it to the key's CORS origins.")]
    Origin { origin: String },
}

/// Where a call comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub path: &'static str,
    /// The client's address (after trusted proxies); `None` when unknown.
    pub ip: Option<IpAddr>,
    /// The browser's `Origin` header, if any.
    pub origin: Option<&'a str>,
}

/// What a call asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asks {
    pub stream: bool,
    pub tools: bool,
    pub vision: bool,
    pub max_tokens: Option<u64>,
}

/// Checks where a call comes from: endpoint, network and browser origin. A call that
/// carries an `Origin` (a browser page) needs that origin in the key's CORS origins;
/// other clients send none.
pub fn check_origin(policy: &KeyPolicy, from: Origin<'_>) -> Result<(), PolicyError> {
    if !policy.allows_endpoint(from.path) {
        return Err(PolicyError::Endpoint { path: from.path });
    }
    if let Some(ip) = from.ip {
        if !policy.allows_ip(ip) {
            return Err(PolicyError::Ip { ip });
        }
    } else if !policy.ip_allowlist.is_empty() {
        return Err(PolicyError::Ip {
            ip: IpAddr::from([0, 0, 0, 0]),
        });
    }
    if let Some(origin) = from.origin {
        if !policy.allows_origin(origin) {
            return Err(PolicyError::Origin {
                origin: origin.to_owned(),
            });
        }
    }
    Ok(())
}

/// Checks what a call asks for: features and the `max_tokens` cap.
pub fn check_asks(policy: &KeyPolicy, asks: Asks) -> Result<(), PolicyError> {
    let p = &policy.permissions;
    if asks.stream && !p.streaming {
        return Err(PolicyError::Streaming);
    }
    if asks.tools && !p.tools {
        return Err(PolicyError::Tools);
    }
    if asks.vision && !p.vision {
        return Err(PolicyError::Vision);
    }
    if let (Some(asked), Some(cap)) = (asks.max_tokens, p.max_tokens) {
        if asked > cap {
            return Err(PolicyError::MaxTokens { asked, cap });
        }
    }
    Ok(())
}

/// Checks the model: the name asked for, or the model that serves it.
pub fn check_model(policy: &KeyPolicy, requested: &str, served: &str) -> Result<(), PolicyError> {
    if policy.allows_model(requested, served) {
        Ok(())
    } else {
        Err(PolicyError::Model {
            model: requested.to_owned(),
        })
    }
}

impl PolicyError {
    /// The error code clients see, and the usage row's label.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Endpoint { .. } => "endpoint_not_allowed",
            PolicyError::Model { .. } => "model_not_allowed",
            PolicyError::MaxTokens { .. } => "max_tokens_exceeded",
            PolicyError::Streaming => "streaming_not_allowed",
            PolicyError::Tools => "tools_not_allowed",
            PolicyError::Vision => "vision_not_allowed",
            PolicyError::Ip { .. } => "ip_not_allowed",
            PolicyError::Origin { .. } => "origin_not_allowed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::policy::Permissions;

    fn from(path: &'static str, ip: &str, origin: Option<&'static str>) -> Origin<'static> {
        Origin {
            path,
            ip: Some(ip.parse().expect("ip")),
            origin,
        }
    }

    #[test]
    fn origin_checks() {
        let open = KeyPolicy::default();
        assert_eq!(
            check_origin(&open, from("/v1/embeddings", "8.8.8.8", None)),
            Ok(())
        );
        // A browser page needs its origin listed.
        assert!(matches!(
            check_origin(&open, from("/v1/embeddings", "8.8.8.8", Some("https://x"))),
            Err(PolicyError::Origin { .. })
        ));
        let strict = KeyPolicy {
            permissions: Permissions {
                endpoints: Some(vec!["chat".into()]),
                ..Permissions::default()
            },
            ip_allowlist: vec!["10.0.0.0/8".parse().expect("cidr")],
            cors_origins: vec!["https://app.example".into()],
            ..KeyPolicy::default()
        };
        assert_eq!(
            check_origin(&strict, from("/v1/chat/completions", "10.1.1.1", None)),
            Ok(())
        );
        assert_eq!(
            check_origin(&strict, from("/v1/embeddings", "10.1.1.1", None)),
            Err(PolicyError::Endpoint {
                path: "/v1/embeddings"
            })
        );
        assert!(matches!(
            check_origin(&strict, from("/v1/chat/completions", "11.1.1.1", None)),
            Err(PolicyError::Ip { .. })
        ));
        assert!(matches!(
            check_origin(
                &strict,
                from("/v1/chat/completions", "10.1.1.1", Some("https://evil"))
            ),
            Err(PolicyError::Origin { .. })
        ));
        assert_eq!(
            check_origin(
                &strict,
                from(
                    "/v1/chat/completions",
                    "10.1.1.1",
                    Some("https://app.example")
                )
            ),
            Ok(())
        );
    }

    #[test]
    fn feature_and_cap_checks() {
        let p = KeyPolicy {
            permissions: Permissions {
                max_tokens: Some(100),
                streaming: false,
                tools: false,
                vision: false,
                models: Some(vec!["mini".into()]),
                ..Permissions::default()
            },
            ..KeyPolicy::default()
        };
        let ask = Asks::default();
        assert_eq!(check_asks(&p, ask), Ok(()));
        assert_eq!(
            check_asks(
                &p,
                Asks {
                    stream: true,
                    ..ask
                }
            ),
            Err(PolicyError::Streaming)
        );
        assert_eq!(
            check_asks(&p, Asks { tools: true, ..ask }),
            Err(PolicyError::Tools)
        );
        assert_eq!(
            check_asks(
                &p,
                Asks {
                    vision: true,
                    ..ask
                }
            ),
            Err(PolicyError::Vision)
        );
        assert_eq!(
            check_asks(
                &p,
                Asks {
                    max_tokens: Some(100),
                    ..ask
                }
            ),
            Ok(())
        );
        assert_eq!(
            check_asks(
                &p,
                Asks {
                    max_tokens: Some(101),
                    ..ask
                }
            ),
            Err(PolicyError::MaxTokens {
                asked: 101,
                cap: 100
            })
        );
        assert_eq!(check_model(&p, "mini", "gpt-4o-mini"), Ok(()));
        assert!(check_model(&p, "gpt-4o", "gpt-4o").is_err());
    }
}
