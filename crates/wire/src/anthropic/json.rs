//! Reading untrusted JSON values with errors that name the field at fault.
//!
//! Paths use OpenAI's `param` style: `messages[2].content[0].image_url.url`.

use serde_json::{Map, Value};

use super::TranslateError;

/// A JSON object.
pub(crate) type Object = Map<String, Value>;

/// Parses `body`, which must be a JSON object; `what` names the body in errors
/// ("request body", "upstream response").
pub(crate) fn parse_object(body: &[u8], what: &str) -> Result<Object, TranslateError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(TranslateError::new(format!(
            "The {what} must be a JSON object, not {}.",
            kind(&other)
        ))),
        Err(e) => Err(TranslateError::new(format!(
            "The {what} is not valid JSON ({e}). Send a JSON object."
        ))),
    }
}

/// `path.key`, or `key` at the top level.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[index]`.
pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// "a string", "an array", … for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(path: &str, expected: &str, got: &Value) -> TranslateError {
    TranslateError::at(
        path,
        format!("`{path}` must be {expected}, not {}.", kind(got)),
    )
}

/// The value at `key`, treating JSON `null` as absent.
pub(crate) fn get<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// `value` as an object.
pub(crate) fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Object, TranslateError> {
    value
        .as_object()
        .ok_or_else(|| wrong(path, "an object", value))
}

/// `value` as a string.
pub(crate) fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, TranslateError> {
    value.as_str().ok_or_else(|| wrong(path, "a string", value))
}

/// `value` as an array.
pub(crate) fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, TranslateError> {
    value
        .as_array()
        .ok_or_else(|| wrong(path, "an array", value))
}

/// The optional object at `object[key]`.
pub(crate) fn opt_object<'a>(
    parent: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a Object>, TranslateError> {
    get(parent, key)
        .map(|v| object(v, &child(path, key)))
        .transpose()
}

/// The optional string at `object[key]`.
pub(crate) fn opt_str<'a>(
    parent: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, TranslateError> {
    get(parent, key)
        .map(|v| string(v, &child(path, key)))
        .transpose()
}

/// The required string at `object[key]`.
pub(crate) fn req_str<'a>(
    parent: &'a Object,
    key: &str,
    path: &str,
) -> Result<&'a str, TranslateError> {
    opt_str(parent, key, path)?.ok_or_else(|| missing(path, key, "a string"))
}

/// The optional array at `object[key]`.
pub(crate) fn opt_array<'a>(
    parent: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, TranslateError> {
    get(parent, key)
        .map(|v| array(v, &child(path, key)))
        .transpose()
}

/// The optional non-negative integer at `object[key]`.
pub(crate) fn opt_u64(
    parent: &Object,
    key: &str,
    path: &str,
) -> Result<Option<u64>, TranslateError> {
    get(parent, key)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| wrong(&child(path, key), "a non-negative integer", v))
        })
        .transpose()
}

/// The optional boolean at `object[key]`.
pub(crate) fn opt_bool(
    parent: &Object,
    key: &str,
    path: &str,
) -> Result<Option<bool>, TranslateError> {
    get(parent, key)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| wrong(&child(path, key), "a boolean", v))
        })
        .transpose()
}

/// The optional number at `object[key]`, kept as the JSON number it was.
pub(crate) fn opt_number<'a>(
    parent: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a Value>, TranslateError> {
    get(parent, key)
        .map(|v| {
            if v.is_number() {
                Ok(v)
            } else {
                Err(wrong(&child(path, key), "a number", v))
            }
        })
        .transpose()
}

/// The error for a required field that is absent.
pub(crate) fn missing(path: &str, key: &str, expected: &str) -> TranslateError {
    let at = child(path, key);
    TranslateError::at(
        at.clone(),
        format!("`{at}` is required: add it as {expected}."),
    )
}

/// A non-negative integer read leniently from an upstream body (absent, null or
/// malformed count as zero: usage must never fail a translation).
pub(crate) fn count(parent: &Object, key: &str) -> u64 {
    parent.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Serializes a value built by this module. Serializing a `Value` cannot fail; the
/// fallback keeps the no-panic rule without an `expect`.
pub(crate) fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}
