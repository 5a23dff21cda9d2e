//! The one error type of the translations.

use std::fmt;

/// A body that cannot be translated. `message` says what to fix; `param` names the
/// offending field (OpenAI's `param` convention, e.g. `messages[2].tool_calls[0].function.arguments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// What is wrong and how to fix it, in words a client can act on.
    pub message: String,
    /// The offending parameter, if one is to blame.
    pub param: Option<String>,
}

impl TranslateError {
    /// An error not tied to one parameter.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        TranslateError {
            message: message.into(),
            param: None,
        }
    }

    /// An error about the parameter at `param`.
    pub(crate) fn at(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError {
            message: message.into(),
            param: Some(param.into()),
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}
