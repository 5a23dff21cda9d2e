//! Upstream keys at rest: the master key (`TOLLGATE_MASTER_KEY`, else `./tollgate.key`)
//! and AES-256-GCM sealing. A value that cannot be opened is an error, never used as
//! plaintext; nothing here prints or logs a key.

mod error;
pub mod key_file;
mod text;
mod url;

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use error::SecretsError;
pub use url::redact_url;

use crate::config::{Env, Secret};
use text::KEY_BYTES;

/// The environment variable holding the master key.
pub const MASTER_KEY_VAR: &str = "TOLLGATE_MASTER_KEY";

/// The key file used when [`MASTER_KEY_VAR`] is not set (relative to the working
/// directory).
pub const DEFAULT_KEY_FILE: &str = "tollgate.key";

/// Bytes in an AES-GCM nonce.
const NONCE_BYTES: usize = 12;

/// The 32-byte key that encrypts upstream keys at rest. Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    bytes: [u8; KEY_BYTES],
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `TOLLGATE_MASTER_KEY`.
    Environment,
    /// The key file; `created`: this process generated it just now.
    File { path: PathBuf, created: bool },
}

/// A sealed value: AES-256-GCM output (ciphertext followed by the 16-byte tag), its
/// nonce, and the fingerprint of the master key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub key_fingerprint: String,
}

impl MasterKey {
    /// TOLLGATE_MASTER_KEY (32 bytes as base64 or hex) when set; else the file `path`
    /// (created with 32 random bytes, mode 0600, when missing — the caller warns that
    /// production must set the variable).
    ///
    /// A variable that is set but empty is an error rather than a silent fallback to
    /// the file: a deployment meaning to set it should not quietly get a new key.
    pub fn load(env: &Env, path: &Path) -> Result<(MasterKey, MasterKeySource), SecretsError> {
        if let Some(value) = env.get(MASTER_KEY_VAR) {
            let bytes = text::parse_key(value, MASTER_KEY_VAR)?;
            return Ok((MasterKey::from_bytes(bytes), MasterKeySource::Environment));
        }
        let (key, created) = match key_file::read(path)? {
            Some(key) => (key, false),
            None => key_file::create_or_read(path, MasterKey::generate())?,
        };
        let source = MasterKeySource::File {
            path: path.to_path_buf(),
            created,
        };
        Ok((key, source))
    }

    /// Parses a key written as base64 or hex; it must decode to exactly 32 bytes.
    pub fn from_text(text: &str) -> Result<MasterKey, SecretsError> {
        text::parse_key(text, "the master key").map(MasterKey::from_bytes)
    }

    /// Parses a key like [`MasterKey::from_text`], naming `origin` (a variable or a
    /// file) in the error.
    pub fn from_text_named(text: &str, origin: &str) -> Result<MasterKey, SecretsError> {
        text::parse_key(text, origin).map(MasterKey::from_bytes)
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        MasterKey { bytes }
    }

    fn from_bytes(bytes: [u8; KEY_BYTES]) -> MasterKey {
        MasterKey { bytes }
    }

    /// A short public fingerprint, stored beside each ciphertext: the first 8 hex
    /// digits of SHA-256("tollgate-master-key:" ‖ key). It tells which key sealed a
    /// value; it reveals nothing usable about the key.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"tollgate-master-key:");
        hasher.update(self.bytes);
        let digest = hasher.finalize();
        text::to_hex(digest.get(..4).unwrap_or_default())
    }

    /// The key as standard base64 (what the key file holds and what
    /// TOLLGATE_MASTER_KEY accepts).
    pub fn to_base64(&self) -> String {
        text::to_base64(&self.bytes)
    }

    /// Seals `plaintext` under a random 96-bit nonce (a new one every call).
    pub fn encrypt(&self, plaintext: &str) -> Sealed {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM seals any plaintext shorter than 64 GiB");
        Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
            key_fingerprint: self.fingerprint(),
        }
    }

    /// Opens a sealed value. A value sealed under another key, or altered in any way,
    /// is an error: never plaintext passthrough.
    pub fn decrypt(&self, sealed: &Sealed) -> Result<Secret, SecretsError> {
        let current = self.fingerprint();
        if sealed.key_fingerprint != current {
            return Err(SecretsError::WrongKey {
                sealed_with: sealed.key_fingerprint.clone(),
                current,
            });
        }
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(SecretsError::BadNonce(sealed.nonce.len()));
        }
        let plain = self
            .cipher()
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                sealed.ciphertext.as_slice(),
            )
            .map_err(|_| SecretsError::Tampered)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| SecretsError::NotUtf8)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.bytes))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(fingerprint {})", self.fingerprint())
    }
}

/// The display form of an upstream key: first 4 + `…` + last 4 characters; only `…`
/// when the key is shorter than 12 characters (head and tail would show too much).
pub fn mask(plaintext: &str) -> String {
    let chars: Vec<char> = plaintext.chars().collect();
    if chars.len() < 12 {
        return "…".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests;
