//! Client key secrets: format `tg-<env>-<base62 × 40>`, SHA-256 at rest, masked
//! for display. The secret itself is shown once at creation and never again.

use rand::distr::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Random base62 characters in a new secret.
const RANDOM_CHARS: usize = 40;

/// SHA-256 of a secret: the lookup key of the in-memory index and the stored hash.
pub type SecretHash = [u8; 32];

/// A fresh secret for environment `env` (`live` or `test`).
pub fn generate(env: &str) -> String {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_CHARS)
        .map(char::from)
        .collect();
    format!("tg-{env}-{random}")
}

/// A random public id for a new key, e.g. `key_7fQ2…`.
pub fn new_key_id() -> String {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    format!("key_{random}")
}

/// SHA-256 of the secret.
pub fn hash(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Hex form of a hash, as stored.
pub fn hash_hex(hash: &SecretHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the stored hex form.
pub fn parse_hash_hex(text: &str) -> Option<SecretHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The display form: `tg-live-AbCd…wXyZ`. Safe for logs, listings and errors.
pub fn mask(secret: &str) -> String {
    let (prefix, body) = match secret.rfind('-') {
        Some(i) if secret.starts_with("tg-") => secret.split_at(i + 1),
        _ => ("", secret),
    };
    let chars: Vec<char> = body.chars().collect();
    if chars.len() < 12 {
        return format!("{prefix}…");
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_spec_format() {
        let s = generate("live");
        let body = s.strip_prefix("tg-live-").expect("prefix");
        assert_eq!(body.len(), RANDOM_CHARS);
        assert!(body.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(generate("live"), s);
        assert!(generate("test").starts_with("tg-test-"));
    }

    #[test]
    fn hash_round_trips_through_hex() {
        let h = hash("tg-live-abc");
        assert_eq!(parse_hash_hex(&hash_hex(&h)), Some(h));
        assert_eq!(parse_hash_hex("zz"), None);
    }

    #[test]
    fn mask_hides_the_middle() {
        let s = "tg-live-AbCdEFGHIJKLMNOPQRSTwXyZ";
        assert_eq!(mask(s), "tg-live-AbCd…wXyZ");
        assert_eq!(mask("short"), "…");
    }
}
