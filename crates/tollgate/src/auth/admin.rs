//! Admin credentials: argon2id password hashes (PHC strings, [`HASH_PARAMS`]),
//! the password rules, and session tokens (32 random bytes as hex, stored only as
//! their SHA-256). Hashing is slow on purpose: call it off the async runtime
//! (`tokio::task::spawn_blocking`).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distr::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Shortest accepted admin password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted admin password, in bytes (argon2 hashes anything, but a request
/// body should not make the server hash megabytes).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Characters in a generated bootstrap password.
const GENERATED_PASSWORD_CHARS: usize = 24;

/// New hashes' argon2id cost: 7 MiB, 5 passes, 1 lane — one of OWASP's equivalent
/// argon2id settings (its first, the crate's default, is 19 MiB and 2 passes). The
/// memory is held per hash being computed: the first admin's at start was the
/// largest block of the gateway's peak RSS (19 of ~40 MiB), and each login in flight
/// holds one. Stored hashes verify with the parameters they name.
pub const HASH_PARAMS: (u32, u32, u32) = (7 * 1024, 5, 1);

/// The argon2id hasher of [`HASH_PARAMS`].
fn hasher() -> Argon2<'static> {
    let (memory_kib, passes, lanes) = HASH_PARAMS;
    // The constants are within argon2's bounds; a build that broke them fails the
    // tests, and would fall back to the crate's default rather than panic.
    let params = Params::new(memory_kib, passes, lanes, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashing failed (it does not, short of running out of memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Checks a new password against the rules; the message says what to fix.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long: use at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(
            "the password contains control characters (a newline?): use printable characters only"
                .to_owned(),
        );
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// True when `password` matches the stored PHC string. A malformed stored hash
/// never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    // The hash's own parameters (its algorithm, memory, passes) are used, not ours.
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one verification against a hash no password matches, so that
/// a login for an unknown user takes as long as one with a wrong password.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash_password(&generate_password()).unwrap_or_default());
    let _ = verify_password(password, stored);
}

/// A random password for the bootstrap admin: 24 base62 characters (~142 bits).
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(GENERATED_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

/// A new session token: 32 random bytes, hex.
pub fn new_session_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Hex SHA-256 of a session token: what the database keeps.
pub fn session_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("anything", "not a hash"));
        verify_dummy("anything");
    }

    #[test]
    fn new_hashes_cost_7_mib_and_older_hashes_still_verify() {
        let new = hash_password("correct horse battery").expect("hash");
        assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
        // A hash made with the crate's defaults (19 MiB, 2 passes), as earlier
        // versions stored them: verified with its own parameters.
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let old = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        assert!(old.contains("m=19456,t=2,p=1"), "{old}");
        assert!(verify_password("correct horse battery", &old));
        assert!(!verify_password("correct horse batterY", &old));
    }

    #[test]
    fn password_rules_explain_the_fix() {
        assert!(check_password("short")
            .expect_err("short")
            .contains("at least 12"));
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password("line one\nline two").is_err());
        assert_eq!(generate_password().len(), GENERATED_PASSWORD_CHARS);
        assert!(check_password(&generate_password()).is_ok());
    }

    #[test]
    fn tokens_are_random_hex_and_hash_to_hex() {
        let t = new_session_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_session_token());
        let h = session_token_hash(&t);
        assert_eq!(h.len(), 64);
        assert_ne!(h, t);
    }
}
