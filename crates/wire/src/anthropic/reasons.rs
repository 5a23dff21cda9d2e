//! Why a generation stopped, and how many tokens it used, in both vocabularies.

use serde_json::{json, Value};

use super::json::{count, Object};
use crate::openai::Usage;

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
///
/// `end_turn`, `stop_sequence`, `pause_turn`, absent and unknown reasons → `stop`;
/// `max_tokens` and `model_context_window_exceeded` → `length`; `tool_use` →
/// `tool_calls`; `refusal` → `content_filter`.
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason` (`stop` and unknown → `end_turn`).
pub(crate) fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Token counts as Anthropic reports them. `input` excludes the cache counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TokenCounts {
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) cache_creation: u64,
    pub(crate) cache_read: u64,
}

impl TokenCounts {
    /// Reads an Anthropic `usage` object (missing counts are zero).
    pub(crate) fn from_anthropic(usage: &Object) -> Self {
        TokenCounts {
            input: count(usage, "input_tokens"),
            output: count(usage, "output_tokens"),
            cache_creation: count(usage, "cache_creation_input_tokens"),
            cache_read: count(usage, "cache_read_input_tokens"),
        }
    }

    /// Applies a `message_delta` usage: output always, input and cache counts when present
    /// (the API sends cumulative values there).
    pub(crate) fn update_from_delta(&mut self, usage: &Object) {
        let present = |key: &str| usage.get(key).and_then(Value::as_u64);
        if let Some(n) = present("output_tokens") {
            self.output = n;
        }
        if let Some(n) = present("input_tokens") {
            self.input = n;
        }
        if let Some(n) = present("cache_creation_input_tokens") {
            self.cache_creation = n;
        }
        if let Some(n) = present("cache_read_input_tokens") {
            self.cache_read = n;
        }
    }

    /// Reads an OpenAI `usage` object; `prompt_tokens_details.cached_tokens` becomes the
    /// cache-read count and is taken out of `input`.
    pub(crate) fn from_openai(usage: &Object) -> Self {
        let prompt = count(usage, "prompt_tokens");
        let cached = usage
            .get("prompt_tokens_details")
            .and_then(Value::as_object)
            .map_or(0, |d| count(d, "cached_tokens"))
            .min(prompt);
        TokenCounts {
            input: prompt - cached,
            output: count(usage, "completion_tokens"),
            cache_creation: 0,
            cache_read: cached,
        }
    }

    /// All prompt tokens, cached or not: what OpenAI calls `prompt_tokens`.
    pub(crate) fn prompt(&self) -> u64 {
        self.input
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read)
    }

    /// OpenAI's three counts.
    pub(crate) fn to_usage(self) -> Usage {
        let prompt_tokens = self.prompt();
        Usage {
            prompt_tokens,
            completion_tokens: self.output,
            total_tokens: prompt_tokens.saturating_add(self.output),
        }
    }

    /// OpenAI's `usage` object, with the cache-read count as `prompt_tokens_details.cached_tokens`.
    pub(crate) fn openai_json(self) -> Value {
        let usage = self.to_usage();
        json!({
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read},
        })
    }

    /// Anthropic's `usage` object.
    pub(crate) fn anthropic_json(self) -> Value {
        json!({
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_both_ways() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(Some(anthropic)), openai);
            assert_eq!(stop_reason(Some(openai)), anthropic);
        }
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("pause_turn")), "stop");
        assert_eq!(finish_reason(None), "stop");
        assert_eq!(stop_reason(None), "end_turn");
    }

    #[test]
    fn cache_tokens_count_as_prompt_tokens() {
        let usage = json!({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000});
        let counts = TokenCounts::from_anthropic(usage.as_object().expect("object"));
        assert_eq!(
            counts.to_usage(),
            Usage {
                prompt_tokens: 1110,
                completion_tokens: 5,
                total_tokens: 1115
            }
        );
        let back = json!({"prompt_tokens": 1110, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 1000}});
        let counts = TokenCounts::from_openai(back.as_object().expect("object"));
        assert_eq!(
            (counts.input, counts.cache_read, counts.output),
            (110, 1000, 5)
        );
    }
}
