//! A client key's policy (SPEC §4): what it may call, its own limits and budgets, and
//! where it may call from. Stored as JSON in `client_keys.policy`; checked by plain
//! functions on every call.

use serde::{Deserialize, Serialize};

use super::network::Cidr;

/// Everything a key is allowed and limited to, beyond its status and expiry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyPolicy {
    pub permissions: Permissions,
    pub limits: RateLimits,
    pub budgets: Budgets,
    /// Networks the key may be used from; empty: anywhere.
    pub ip_allowlist: Vec<Cidr>,
    /// Browser origins the key may be used from; empty: no cross-origin use.
    pub cors_origins: Vec<String>,
}

/// What a key may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Permissions {
    /// Model names or aliases the key may ask for; `None`: every model its tier may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Client routes the key may call (`/v1/chat/completions`, …); `None`: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// The largest `max_tokens` / `max_completion_tokens` a call may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions {
            models: None,
            endpoints: None,
            max_tokens: None,
            streaming: true,
            tools: true,
            vision: true,
        }
    }
}

/// Request and token limits; `None`: the tier's value (if any) applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rph: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<u64>,
}

impl RateLimits {
    /// These limits, each missing one taken from `fallback`.
    pub fn or(self, fallback: RateLimits) -> RateLimits {
        RateLimits {
            rpm: self.rpm.or(fallback.rpm),
            rph: self.rph.or(fallback.rph),
            rpd: self.rpd.or(fallback.rpd),
            tpm: self.tpm.or(fallback.tpm),
            tpd: self.tpd.or(fallback.tpd),
            tokens_per_month: self.tokens_per_month.or(fallback.tokens_per_month),
        }
    }

    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == RateLimits::default()
    }
}

/// Spending limits in the configured currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budgets {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<f64>,
}

/// The client routes a key can be limited to, with the short names the CLI accepts.
pub const ENDPOINTS: [(&str, &str); 6] = [
    ("chat", "/v1/chat/completions"),
    ("completions", "/v1/completions"),
    ("embeddings", "/v1/embeddings"),
    ("messages", "/v1/messages"),
    ("models", "/v1/models"),
    ("usage", "/v1/usage"),
];

/// The route path for an endpoint name or path, or `None` when it is not a client route.
pub fn endpoint_path(name: &str) -> Option<&'static str> {
    ENDPOINTS
        .iter()
        .find(|(short, path)| *short == name || *path == name)
        .map(|(_, path)| *path)
}

impl KeyPolicy {
    /// Reads a stored policy; an empty text is the default policy.
    pub fn from_json(text: &str) -> Result<KeyPolicy, serde_json::Error> {
        if text.trim().is_empty() {
            return Ok(KeyPolicy::default());
        }
        serde_json::from_str(text)
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// True when the key may call `path`.
    pub fn allows_endpoint(&self, path: &str) -> bool {
        match &self.permissions.endpoints {
            None => true,
            Some(list) => list
                .iter()
                .any(|e| endpoint_path(e) == Some(path) || e == path),
        }
    }

    /// True when the key may ask for `requested` (served as `served`).
    pub fn allows_model(&self, requested: &str, served: &str) -> bool {
        match &self.permissions.models {
            None => true,
            Some(list) => list.iter().any(|m| m == requested || m == served),
        }
    }

    /// True when a call from `origin` is allowed.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.cors_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/') == origin.trim_end_matches('/'))
    }

    /// True when a call from `ip` is allowed.
    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        self.ip_allowlist.is_empty() || self.ip_allowlist.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_round_trips_as_almost_nothing() {
        let p = KeyPolicy::default();
        let json = p.to_json();
        assert_eq!(KeyPolicy::from_json(&json).expect("parse"), p);
        assert_eq!(KeyPolicy::from_json("{}").expect("parse"), p);
        assert_eq!(KeyPolicy::from_json("").expect("parse"), p);
        assert!(p.permissions.streaming && p.permissions.tools && p.permissions.vision);
    }

    #[test]
    fn a_full_policy_round_trips() {
        let p = KeyPolicy {
            permissions: Permissions {
                models: Some(vec!["mini".into()]),
                endpoints: Some(vec!["/v1/chat/completions".into()]),
                max_tokens: Some(256),
                streaming: false,
                tools: true,
                vision: false,
            },
            limits: RateLimits {
                rpm: Some(10),
                tokens_per_month: Some(1_000_000),
                ..RateLimits::default()
            },
            budgets: Budgets {
                daily: Some(0.1),
                monthly: Some(2.0),
            },
            ip_allowlist: vec!["10.0.0.0/8".parse().expect("cidr")],
            cors_origins: vec!["https://app.example.com".into()],
        };
        assert_eq!(KeyPolicy::from_json(&p.to_json()).expect("parse"), p);
        assert!(p.allows_endpoint("/v1/chat/completions"));
        assert!(!p.allows_endpoint("/v1/embeddings"));
        assert!(p.allows_model("mini", "gpt-4o-mini"));
        assert!(!p.allows_model("gpt-4o", "gpt-4o"));
        assert!(p.allows_origin("https://app.example.com/"));
        assert!(!p.allows_origin("https://evil.example.com"));
        assert!(p.allows_ip("10.1.2.3".parse().expect("ip")));
        assert!(!p.allows_ip("192.168.1.1".parse().expect("ip")));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(KeyPolicy::from_json(r#"{"limits":{"rpn":3}}"#).is_err());
    }

    #[test]
    fn endpoint_names_and_paths() {
        assert_eq!(endpoint_path("chat"), Some("/v1/chat/completions"));
        assert_eq!(endpoint_path("/v1/usage"), Some("/v1/usage"));
        assert_eq!(endpoint_path("/v1/files"), None);
    }
}
