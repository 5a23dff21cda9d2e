//! The text forms of a master key: 64 hex digits, or base64 (standard or URL-safe,
//! padded or not) of 32 bytes.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::SecretsError;

/// Bytes in a master key.
pub const KEY_BYTES: usize = 32;

const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a master key's text; `origin` names where it came from in errors.
///
/// Text made only of hex digits, an even number of them, is hex; anything else is
/// base64.
/// (32 bytes in base64 are 43 or 44 characters, so the two never overlap.)
pub fn parse_key(text: &str, origin: &str) -> Result<[u8; KEY_BYTES], SecretsError> {
    let text = text.trim();
    let invalid = |detail: String| SecretsError::InvalidKey {
        origin: origin.to_owned(),
        detail,
    };
    if text.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    let hex = if text.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex(text)
    } else {
        None
    };
    let bytes = match hex {
        Some(bytes) => bytes,
        None => STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| {
                invalid(format!(
                    "got {} characters that are neither hex nor base64",
                    text.chars().count()
                ))
            })?,
    };
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
        .map_err(|_| invalid(format!("got {} bytes", bytes.len())))
}

/// Standard padded base64.
pub fn to_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex digits → bytes; `None` for an odd count or a non-hex digit.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
