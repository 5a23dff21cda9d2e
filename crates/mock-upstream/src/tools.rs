//! Tool calls: when a chat request with tools demands one (`tool_choice` "required"
//! or a named function, or the `[[mock:tool]]` directive), the mock calls a tool
//! with arguments built from the tool's JSON schema.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::request::ChatRequest;

/// The call the mock answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

impl ToolCall {
    /// Tokens of the call as OpenAI bills it: name plus arguments.
    pub(crate) fn tokens(&self) -> u32 {
        wire::tokens::count(&self.name).saturating_add(wire::tokens::count(&self.arguments))
    }
}

/// `{"name","arguments"}` as serialized in messages and deltas.
#[derive(Serialize)]
pub(crate) struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'a str>,
    pub(crate) arguments: &'a str,
}

/// One entry of `tool_calls` (the `index` is set in stream deltas only).
#[derive(Serialize)]
pub(crate) struct ToolCallOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) function: FunctionOut<'a>,
}

impl ToolCall {
    /// The complete call, as in a non-stream message.
    pub(crate) fn out(&self) -> ToolCallOut<'_> {
        ToolCallOut {
            index: None,
            id: Some(&self.id),
            kind: Some("function"),
            function: FunctionOut {
                name: Some(&self.name),
                arguments: &self.arguments,
            },
        }
    }
}

/// The tool call this request gets, if any.
pub(crate) fn choose(request: &ChatRequest<'_>, forced: bool, serial: u64) -> Option<ToolCall> {
    let tools = request.tools.as_deref().filter(|tools| !tools.is_empty())?;
    let named = match &request.tool_choice {
        Some(Value::String(choice)) if choice == "none" => return None,
        Some(Value::String(choice)) if choice == "required" => None,
        Some(Value::Object(choice)) => choice
            .get("function")
            .and_then(|function| function.get("name"))
            .and_then(Value::as_str),
        _ if forced => None,
        _ => return None,
    };
    let tool = match named {
        Some(name) => tools
            .iter()
            .find(|tool| function_name(tool) == Some(name))?,
        None => tools.first()?,
    };
    let name = function_name(tool)?.to_owned();
    let parameters = tool.get("function").and_then(|f| f.get("parameters"));
    Some(ToolCall {
        id: format!("call_mock{serial}"),
        name,
        arguments: arguments_for(parameters).to_string(),
    })
}

/// The tool call a Messages request gets, if any: with `tool_choice`
/// `{"type":"any"}` the first tool, with `{"type":"tool","name":…}` that one, and
/// with `[[mock:tool]]` (`forced`) the first tool unless the choice is `none`.
pub(crate) fn choose_anthropic(
    tools: Option<&[Value]>,
    tool_choice: Option<&Value>,
    forced: bool,
    serial: u64,
) -> Option<ToolCall> {
    let tools = tools.filter(|tools| !tools.is_empty())?;
    let named = match tool_choice
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
    {
        Some("none") => return None,
        Some("any") => None,
        Some("tool") => Some(tool_choice?.get("name")?.as_str()?),
        _ if forced => None,
        _ => return None,
    };
    let tool = match named {
        Some(name) => tools.iter().find(|tool| tool_name(tool) == Some(name))?,
        None => tools.first()?,
    };
    Some(ToolCall {
        id: format!("toolu_mock{serial}"),
        name: tool_name(tool)?.to_owned(),
        arguments: arguments_for(tool.get("input_schema")).to_string(),
    })
}

fn tool_name(tool: &Value) -> Option<&str> {
    tool.get("name")?.as_str()
}

fn function_name(tool: &Value) -> Option<&str> {
    tool.get("function")?.get("name")?.as_str()
}

/// An object with a plausible value for every required property of `schema`.
fn arguments_for(schema: Option<&Value>) -> Value {
    let mut arguments = Map::new();
    let Some(schema) = schema else {
        return Value::Object(arguments);
    };
    let properties = schema.get("properties");
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let kind = properties
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        let value = match kind {
            Some("integer" | "number") => Value::from(1),
            Some("boolean") => Value::Bool(true),
            Some("array") => Value::Array(Vec::new()),
            Some("object") => Value::Object(Map::new()),
            _ => Value::from("mock"),
        };
        arguments.insert(name.to_owned(), value);
    }
    Value::Object(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tool_choice: &str) -> String {
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],
            "tools":[{{"type":"function","function":{{"name":"get_weather","parameters":
              {{"type":"object","properties":{{"city":{{"type":"string"}},"days":{{"type":"integer"}}}},
                "required":["city","days"]}}}}}}],
            "tool_choice":{tool_choice}}}"#
        )
    }

    #[test]
    fn required_choice_calls_the_tool() {
        let body = request(r#""required""#);
        let parsed: ChatRequest = serde_json::from_str(&body).expect("parses");
        let call = choose(&parsed, false, 7).expect("a call");
        assert_eq!(call.name, "get_weather");
        assert_eq!(call.id, "call_mock7");
        assert_eq!(call.arguments, r#"{"city":"mock","days":1}"#);
    }

    #[test]
    fn anthropic_choices() {
        let tools: Vec<Value> = serde_json::from_str(
            r#"[{"name":"first","input_schema":{"type":"object"}},
                {"name":"lookup","input_schema":{"type":"object",
                  "properties":{"q":{"type":"string"},"n":{"type":"number"},"all":{"type":"boolean"}},
                  "required":["q","n","all"]}}]"#,
        )
        .expect("parses");
        let choice = |json: &str| serde_json::from_str::<Value>(json).expect("parses");
        let any = choice(r#"{"type":"any"}"#);
        let call = choose_anthropic(Some(&tools), Some(&any), false, 3).expect("a call");
        assert_eq!(
            (call.id.as_str(), call.name.as_str()),
            ("toolu_mock3", "first")
        );
        assert_eq!(call.arguments, "{}");
        let named = choice(r#"{"type":"tool","name":"lookup"}"#);
        let call = choose_anthropic(Some(&tools), Some(&named), false, 4).expect("a call");
        let input: Value = serde_json::from_str(&call.arguments).expect("JSON");
        assert_eq!(
            input,
            serde_json::json!({ "q": "mock", "n": 1, "all": true })
        );
        let auto = choice(r#"{"type":"auto"}"#);
        assert_eq!(choose_anthropic(Some(&tools), Some(&auto), false, 5), None);
        assert!(choose_anthropic(Some(&tools), Some(&auto), true, 5).is_some());
        assert!(choose_anthropic(Some(&tools), None, true, 5).is_some());
        let none = choice(r#"{"type":"none"}"#);
        assert_eq!(choose_anthropic(Some(&tools), Some(&none), true, 5), None);
        assert_eq!(choose_anthropic(None, Some(&any), true, 5), None);
    }

    #[test]
    fn auto_choice_answers_in_text_unless_forced() {
        let body = request(r#""auto""#);
        let parsed: ChatRequest = serde_json::from_str(&body).expect("parses");
        assert_eq!(choose(&parsed, false, 1), None);
        assert!(choose(&parsed, true, 1).is_some());
        let body = request(r#""none""#);
        let parsed: ChatRequest = serde_json::from_str(&body).expect("parses");
        assert_eq!(choose(&parsed, true, 1), None);
    }
}
