//! What can go wrong with the master key and sealed values; every message says what
//! to fix.

use std::path::PathBuf;

/// Errors from the master key and from sealing and opening values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The text of a master key is not 32 bytes in base64 or hex.
    #[error("{origin} must be 32 bytes in base64 or hex; {detail} (generate one with `openssl rand -base64 32`)")]
    InvalidKey {
        /// Where the text came from, e.g. `TOLLGATE_MASTER_KEY` or a file's path.
        origin: String,
        /// What is wrong with it (never the text itself).
        detail: String,
    },
    /// The master key file cannot be read or written.
    #[error("cannot {action} the master key file {}: {source}; check the path and its permissions, or set TOLLGATE_MASTER_KEY", path.display())]
    KeyFile {
        /// What was being done: `read`, `create`, `write`, `replace`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The value was sealed under another master key.
    #[error("it was encrypted under master key {sealed_with}, but the current master key is {current}; set TOLLGATE_MASTER_KEY (or the key file) to the key that encrypted it")]
    WrongKey {
        /// Fingerprint stored beside the ciphertext.
        sealed_with: String,
        /// Fingerprint of the key that tried to open it.
        current: String,
    },
    /// Authentication failed: the ciphertext, nonce or fingerprint was altered, or the
    /// key differs despite an equal fingerprint.
    #[error("decryption failed (the stored value was altered or the master key is wrong); restore it from a backup or add the key again")]
    Tampered,
    /// The stored nonce has the wrong length.
    #[error(
        "the stored nonce is {0} bytes, not 12 (the stored value is corrupt); add the key again"
    )]
    BadNonce(usize),
    /// The decrypted bytes are not UTF-8.
    #[error("the decrypted value is not UTF-8 (the stored value is corrupt); add the key again")]
    NotUtf8,
}
