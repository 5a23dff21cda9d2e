//! Per-key HMAC request signing (SPEC §4): pure verification, no I/O.
//!
//! A key created with `--hmac` has a signing secret, shown once beside the key. Its
//! requests then carry
//!
//! - `x-tollgate-timestamp`: the time of signing, in Unix seconds;
//! - `x-tollgate-signature`: hex HMAC-SHA256, keyed with the signing secret's text
//!   (its UTF-8 bytes, prefix included), over
//!   `METHOD "\n" PATH "\n" TIMESTAMP "\n" hex(sha256(body))` — the method in upper
//!   case, the path as sent (`/v1/chat/completions`), the timestamp exactly as in its
//!   header, hex in lower case.
//!
//! [`verify`] accepts a signature made within [`MAX_SKEW_S`] of the gateway's clock,
//! either way, and compares in constant time. It answers the verified [`Signature`],
//! which the caller claims once (replay protection is the caller's, since it needs
//! shared state). The signing secret is sealed at rest under the master key
//! ([`HmacSecret::seal`]) and its Debug never shows it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distr::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::secrets::{MasterKey, Sealed, SecretsError};

/// The header carrying the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-tollgate-timestamp";
/// The header carrying the hex HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "x-tollgate-signature";
/// How far, in seconds, a signing time may be from the gateway's clock, either way.
pub const MAX_SKEW_S: i64 = 300;

/// The prefix of every generated signing secret.
const SECRET_PREFIX: &str = "tg_hmac_";
/// Random base62 characters in a generated signing secret (about 285 bits).
const SECRET_RANDOM_CHARS: usize = 48;
/// The version tag of the sealed text form.
const SEALED_VERSION: &str = "v1";
/// Hex digits in an HMAC-SHA256 signature.
const SIGNATURE_HEX_CHARS: usize = 64;
/// Digits a Unix-seconds timestamp may have (far beyond any real time).
const MAX_TIMESTAMP_DIGITS: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// A key's HMAC signing secret. Debug never shows it; only [`HmacSecret::expose`]
/// does, for the one moment it is shown to the operator at creation.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(String);

impl HmacSecret {
    /// Wraps a signing secret's text.
    pub fn new(text: impl Into<String>) -> HmacSecret {
        HmacSecret(text.into())
    }

    /// A fresh random secret: `tg_hmac_` followed by 48 base62 characters.
    pub fn generate() -> HmacSecret {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(SECRET_RANDOM_CHARS)
            .map(char::from)
            .collect();
        HmacSecret(format!("{SECRET_PREFIX}{random}"))
    }

    /// The secret itself: only to show it once at creation, or to sign in tests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form: sealed under `master` (AES-256-GCM, a fresh nonce each call)
    /// as `v1:<fingerprint>:<base64 nonce>:<base64 ciphertext>`. Never the plaintext.
    pub fn seal(&self, master: &MasterKey) -> String {
        let sealed = master.encrypt(&self.0);
        format!(
            "{SEALED_VERSION}:{}:{}:{}",
            sealed.key_fingerprint,
            BASE64.encode(&sealed.nonce),
            BASE64.encode(&sealed.ciphertext)
        )
    }

    /// Opens a stored secret. A text that is not in the sealed form, was sealed under
    /// another master key, or was altered is an error: never used as plaintext.
    pub fn open(sealed: &str, master: &MasterKey) -> Result<HmacSecret, SecretsError> {
        let parsed = parse_sealed(sealed).ok_or(SecretsError::Tampered)?;
        let secret = master.decrypt(&parsed)?;
        Ok(HmacSecret(secret.expose().to_owned()))
    }

    /// True when `text` has the stored form [`HmacSecret::seal`] writes (it says
    /// nothing about which key can open it).
    pub fn is_sealed_text(text: &str) -> bool {
        parse_sealed(text).is_some()
    }

    /// The fingerprint of the master key a stored secret is sealed under, if `text`
    /// is in the sealed form.
    pub fn sealed_fingerprint(text: &str) -> Option<String> {
        parse_sealed(text).map(|s| s.key_fingerprint)
    }
}

impl std::fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecret(****)")
    }
}

/// `v1:<fingerprint>:<nonce>:<ciphertext>` → its parts; `None` for anything else.
fn parse_sealed(text: &str) -> Option<Sealed> {
    let mut parts = text.split(':');
    let (version, fingerprint, nonce, ciphertext) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != SEALED_VERSION || fingerprint.is_empty() {
        return None;
    }
    Some(Sealed {
        nonce: BASE64.decode(nonce).ok()?,
        ciphertext: BASE64.decode(ciphertext).ok()?,
        key_fingerprint: fingerprint.to_owned(),
    })
}

/// A signature that verified: its lower-case hex text and its signing time. The
/// caller claims the text once (until `timestamp_s + MAX_SKEW_S` has passed) so that
/// a replay is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    text: String,
    timestamp_s: i64,
}

impl Signature {
    /// The signature as lower-case hex (the same for any case the client sent, so a
    /// replay in other letters is the same claim).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signing time, in Unix seconds.
    pub fn timestamp_s(&self) -> i64 {
        self.timestamp_s
    }

    /// The last Unix second at which this signature is still within the window; a
    /// replay claim need not be kept past it.
    pub fn valid_until_s(&self) -> i64 {
        self.timestamp_s.saturating_add(MAX_SKEW_S)
    }
}

/// Why a signed request was refused (SPEC §4: 401 for each). Messages say what to
/// fix and never contain the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HmacError {
    /// A signing header is absent.
    #[error("this key requires signed requests: the {0} header is missing; send x-tollgate-timestamp (Unix seconds) and x-tollgate-signature (hex HMAC-SHA256 of METHOD\\nPATH\\nTIMESTAMP\\nhex(sha256(body)) under the key's signing secret)")]
    Missing(&'static str),
    /// A signing header is not in its format.
    #[error("{0}")]
    Malformed(String),
    /// The signing time is outside the window.
    #[error("x-tollgate-timestamp is {skew_s} s {direction} the gateway's clock, more than the {MAX_SKEW_S} s allowed: sign each request with the current Unix time (check the client's clock)")]
    Stale {
        /// How far off, in seconds.
        skew_s: i64,
        /// `behind` (too old) or `ahead of` (in the future).
        direction: &'static str,
    },
    /// The signature does not match.
    #[error("x-tollgate-signature does not match the request: sign METHOD\\nPATH\\nTIMESTAMP\\nhex(sha256(body)) with HMAC-SHA256 under the key's signing secret, using the exact method, path, timestamp header and body sent")]
    Bad,
}

/// The hex HMAC-SHA256 signature of a request, as a client computes it.
pub fn sign(secret: &HmacSecret, method: &str, path: &str, timestamp: &str, body: &[u8]) -> String {
    hex::encode(
        mac(secret, method, path, timestamp, body)
            .finalize()
            .into_bytes(),
    )
}

/// Verifies a request's signature headers at `now_s` (Unix seconds): both headers
/// present once, the timestamp within [`MAX_SKEW_S`] either way, the signature
/// equal (constant-time) to the HMAC of `method`, `path`, the timestamp header and
/// `body` under `secret`.
pub fn verify(
    secret: &HmacSecret,
    method: &str,
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    now_s: i64,
) -> Result<Signature, HmacError> {
    let timestamp = single_header(headers, TIMESTAMP_HEADER)?;
    let signature = single_header(headers, SIGNATURE_HEADER)?;

    let digits_ok = !timestamp.is_empty()
        && timestamp.len() <= MAX_TIMESTAMP_DIGITS
        && timestamp.bytes().all(|b| b.is_ascii_digit());
    let timestamp_s: i64 = match timestamp.parse() {
        Ok(t) if digits_ok => t,
        _ => {
            return Err(HmacError::Malformed(format!(
                "{TIMESTAMP_HEADER} must be the signing time in Unix seconds (digits only, e.g. 1700000000)"
            )))
        }
    };
    let given = match hex::decode(signature) {
        Ok(bytes) if signature.len() == SIGNATURE_HEX_CHARS => bytes,
        _ => {
            return Err(HmacError::Malformed(format!(
                "{SIGNATURE_HEADER} must be the HMAC-SHA256 signature as {SIGNATURE_HEX_CHARS} hex digits"
            )))
        }
    };

    let skew = now_s.saturating_sub(timestamp_s);
    if skew > MAX_SKEW_S {
        return Err(HmacError::Stale {
            skew_s: skew,
            direction: "behind",
        });
    }
    if skew < -MAX_SKEW_S {
        return Err(HmacError::Stale {
            skew_s: skew.saturating_neg(),
            direction: "ahead of",
        });
    }

    mac(secret, method, path, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| HmacError::Bad)?;
    Ok(Signature {
        text: signature.to_ascii_lowercase(),
        timestamp_s,
    })
}

/// The one value of header `name`, trimmed; missing, repeated or non-text is an error.
fn single_header<'h>(
    headers: &'h http::HeaderMap,
    name: &'static str,
) -> Result<&'h str, HmacError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(HmacError::Missing(name))?;
    if values.next().is_some() {
        return Err(HmacError::Malformed(format!(
            "{name} was sent more than once: send it once"
        )));
    }
    let text = value
        .to_str()
        .map_err(|_| HmacError::Malformed(format!("{name} must be plain ASCII text")))?;
    Ok(text.trim())
}

/// HMAC-SHA256 under the secret over the signed text, ready to finalize or verify.
fn mac(secret: &HmacSecret, method: &str, path: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts a key of any length, so this cannot fail; an empty key is still a key.
    let mut mac = match HmacSha256::new_from_slice(secret.0.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256 as Mac>::new(&Default::default()),
    };
    let body_hash = hex::encode(Sha256::digest(body));
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(body_hash.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    const NOW: i64 = 1_700_000_000;
    const PATH: &str = "/v1/chat/completions";
    const BODY: &[u8] = br#"{"model":"m","messages":[]}"#;

    fn secret() -> HmacSecret {
        HmacSecret::new("tg_hmac_test-secret")
    }

    fn headers(timestamp: &str, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            TIMESTAMP_HEADER,
            HeaderValue::from_str(timestamp).expect("value"),
        );
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(signature).expect("value"),
        );
        h
    }

    fn signed_at(t: i64) -> HeaderMap {
        let ts = t.to_string();
        headers(&ts, &sign(&secret(), "POST", PATH, &ts, BODY))
    }

    #[test]
    fn a_good_signature_verifies_and_matches_the_spec_formula() {
        let ts = NOW.to_string();
        let signature = sign(&secret(), "POST", PATH, &ts, BODY);
        // Computed independently from the SPEC text.
        let text = format!("POST\n{PATH}\n{ts}\n{}", hex::encode(Sha256::digest(BODY)));
        let mut expected = HmacSha256::new_from_slice(b"tg_hmac_test-secret").expect("key");
        expected.update(text.as_bytes());
        assert_eq!(signature, hex::encode(expected.finalize().into_bytes()));

        let verified = verify(&secret(), "POST", PATH, &signed_at(NOW), BODY, NOW).expect("ok");
        assert_eq!(verified.as_str(), signature);
        assert_eq!(verified.timestamp_s(), NOW);
        assert_eq!(verified.valid_until_s(), NOW + MAX_SKEW_S);
        // Upper-case hex is accepted and claims the same signature.
        let upper = headers(&ts, &signature.to_ascii_uppercase());
        let again = verify(&secret(), "POST", PATH, &upper, BODY, NOW).expect("ok");
        assert_eq!(again, verified);
    }

    #[test]
    fn a_bad_signature_is_refused() {
        let h = signed_at(NOW);
        let other = HmacSecret::new("tg_hmac_other");
        assert_eq!(
            verify(&other, "POST", PATH, &h, BODY, NOW),
            Err(HmacError::Bad)
        );
        assert_eq!(
            verify(&secret(), "POST", PATH, &h, b"{}", NOW),
            Err(HmacError::Bad)
        );
        assert_eq!(
            verify(&secret(), "GET", PATH, &h, BODY, NOW),
            Err(HmacError::Bad)
        );
        assert_eq!(
            verify(&secret(), "POST", "/v1/embeddings", &h, BODY, NOW),
            Err(HmacError::Bad)
        );
        // The signature of another timestamp does not carry over.
        let ts = NOW.to_string();
        let moved = headers(
            &(NOW + 1).to_string(),
            &sign(&secret(), "POST", PATH, &ts, BODY),
        );
        assert_eq!(
            verify(&secret(), "POST", PATH, &moved, BODY, NOW),
            Err(HmacError::Bad)
        );
        let message = HmacError::Bad.to_string();
        assert!(message.contains("METHOD") && !message.contains("test-secret"));
    }

    #[test]
    fn an_expired_signature_is_stale() {
        assert!(verify(
            &secret(),
            "POST",
            PATH,
            &signed_at(NOW - MAX_SKEW_S),
            BODY,
            NOW
        )
        .is_ok());
        let err = verify(
            &secret(),
            "POST",
            PATH,
            &signed_at(NOW - MAX_SKEW_S - 1),
            BODY,
            NOW,
        )
        .expect_err("stale");
        assert_eq!(
            err,
            HmacError::Stale {
                skew_s: MAX_SKEW_S + 1,
                direction: "behind"
            }
        );
        assert!(err.to_string().contains("301 s behind"));
    }

    #[test]
    fn a_signature_from_the_future_is_stale() {
        assert!(verify(
            &secret(),
            "POST",
            PATH,
            &signed_at(NOW + MAX_SKEW_S),
            BODY,
            NOW
        )
        .is_ok());
        let err =
            verify(&secret(), "POST", PATH, &signed_at(NOW + 3600), BODY, NOW).expect_err("future");
        assert_eq!(
            err,
            HmacError::Stale {
                skew_s: 3600,
                direction: "ahead of"
            }
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let none = HeaderMap::new();
        assert_eq!(
            verify(&secret(), "POST", PATH, &none, BODY, NOW),
            Err(HmacError::Missing(TIMESTAMP_HEADER))
        );
        let mut only_ts = HeaderMap::new();
        only_ts.insert(TIMESTAMP_HEADER, HeaderValue::from_static("1700000000"));
        let err = verify(&secret(), "POST", PATH, &only_ts, BODY, NOW).expect_err("missing");
        assert_eq!(err, HmacError::Missing(SIGNATURE_HEADER));
        assert!(err
            .to_string()
            .contains("x-tollgate-signature header is missing"));
    }

    #[test]
    fn malformed_headers_say_the_format() {
        let good = sign(&secret(), "POST", PATH, "1700000000", BODY);
        for (ts, sig, header) in [
            ("soon", good.as_str(), TIMESTAMP_HEADER),
            ("-5", good.as_str(), TIMESTAMP_HEADER),
            ("1700000000.5", good.as_str(), TIMESTAMP_HEADER),
            ("99999999999999999999", good.as_str(), TIMESTAMP_HEADER),
            ("1700000000", "abc", SIGNATURE_HEADER),
            ("1700000000", &good[..62], SIGNATURE_HEADER),
            ("1700000000", &"zz".repeat(32), SIGNATURE_HEADER),
        ] {
            match verify(&secret(), "POST", PATH, &headers(ts, sig), BODY, NOW) {
                Err(HmacError::Malformed(m)) => assert!(m.starts_with(header), "{m}"),
                other => panic!("{ts} {sig}: {other:?}"),
            }
        }
        let mut twice = signed_at(NOW);
        twice.append(SIGNATURE_HEADER, HeaderValue::from_static("00"));
        assert!(matches!(
            verify(&secret(), "POST", PATH, &twice, BODY, NOW),
            Err(HmacError::Malformed(m)) if m.contains("more than once")
        ));
    }

    #[test]
    fn secrets_seal_open_and_never_show() {
        let master = MasterKey::generate();
        let s = HmacSecret::generate();
        assert!(s.expose().starts_with(SECRET_PREFIX));
        assert_eq!(s.expose().len(), SECRET_PREFIX.len() + SECRET_RANDOM_CHARS);
        assert_ne!(HmacSecret::generate(), s);
        assert_eq!(format!("{s:?}"), "HmacSecret(****)");

        let sealed = s.seal(&master);
        assert!(!sealed.contains(s.expose()));
        assert!(HmacSecret::is_sealed_text(&sealed));
        assert!(!HmacSecret::is_sealed_text(s.expose()));
        assert_eq!(
            HmacSecret::sealed_fingerprint(&sealed),
            Some(master.fingerprint())
        );
        assert_eq!(HmacSecret::open(&sealed, &master).expect("opens"), s);
        assert_ne!(s.seal(&master), sealed, "a fresh nonce every time");

        assert!(matches!(
            HmacSecret::open(&sealed, &MasterKey::generate()),
            Err(SecretsError::WrongKey { .. })
        ));
        assert!(HmacSecret::open(s.expose(), &master).is_err());
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(HmacSecret::open(&altered, &master).is_err());
    }
}
