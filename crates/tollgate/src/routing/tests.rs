use super::*;
use crate::config::{Config, Env};

fn table(text: &str) -> ModelTable {
    let c = Config::load_text_for_tests(text, &Env::new());
    ModelTable::new(&c.models, &c.providers, &c.tiers)
}

fn chat() -> Needs {
    Needs {
        endpoint: Endpoint::ChatCompletions,
        tools: false,
        vision: false,
    }
}

const TABLE: &str = r#"
[[providers]]
name = "p"
kind = "mock"
[[models]]
name = "big"
provider = "p"
context_window = 200000
capabilities = ["chat", "tools", "vision"]
[[models]]
name = "small"
provider = "p"
context_window = 8000
capabilities = ["chat"]
aliases = ["s"]
fallbacks = ["tiny", "big"]
[[models]]
name = "tiny"
provider = "p"
context_window = 4000
[tiers.free]
models = ["s", "tiny"]
route = { "big" = "small" }
"#;

#[test]
fn resolves_names_aliases_and_capabilities() {
    let t = table("");
    assert_eq!(
        &*t.resolve("mock-gpt", "standard", chat())
            .expect("route")
            .model,
        "mock-gpt"
    );
    let embeddings = Needs {
        endpoint: Endpoint::Embeddings,
        ..chat()
    };
    assert!(matches!(
        t.resolve("mock-gpt", "standard", embeddings),
        Err(RouteError::Unsupported { .. })
    ));
    assert!(matches!(
        t.resolve("nope", "standard", chat()),
        Err(RouteError::UnknownModel(_))
    ));
    assert_eq!(t.listed_for("standard").len(), 2);
}

#[test]
fn tools_and_vision_need_the_capability() {
    let t = table(TABLE);
    let tools = Needs {
        tools: true,
        ..chat()
    };
    let vision = Needs {
        vision: true,
        ..chat()
    };
    assert!(t.resolve("big", "standard", tools).is_ok());
    assert_eq!(
        t.resolve("small", "standard", tools).expect_err("no tools"),
        RouteError::Unsupported {
            model: "small".into(),
            capability: "tools"
        }
    );
    assert_eq!(
        t.resolve("small", "standard", vision)
            .expect_err("no vision"),
        RouteError::Unsupported {
            model: "small".into(),
            capability: "vision"
        }
    );
}

#[test]
fn tiers_restrict_and_reroute() {
    let t = table(TABLE);
    // free may use small (by alias) and tiny, and asks for big get small.
    assert_eq!(
        &*t.resolve("big", "free", chat()).expect("rerouted").model,
        "small"
    );
    assert!(t.resolve("tiny", "free", chat()).is_ok());
    assert!(matches!(t.resolve("big", "standard", chat()), Ok(r) if &*r.model == "big"));
    let listed: Vec<String> = t
        .listed_for("free")
        .iter()
        .map(|(m, _)| m.to_string())
        .collect();
    assert_eq!(listed, ["small", "tiny", "big"]);
    assert_eq!(t.listed_for("premium").len(), 3);
}

#[test]
fn fallbacks_in_order_and_allowed() {
    let t = table(TABLE);
    let small = t.resolve("small", "standard", chat()).expect("route");
    let names = |routes: Vec<Arc<Route>>| {
        routes
            .iter()
            .map(|r| r.model.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(t.fallbacks(&small, "standard", chat())),
        ["tiny", "big"]
    );
    // free may not use big.
    assert_eq!(names(t.fallbacks(&small, "free", chat())), ["tiny"]);
    // Only big can see images.
    let vision = Needs {
        vision: true,
        ..chat()
    };
    assert_eq!(names(t.fallbacks(&small, "standard", vision)), ["big"]);
}

#[test]
fn open_provider_passes_any_name_through() {
    let t = table("[[providers]]\nname = \"local\"\nkind = \"openai_compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\n");
    let r = t.resolve("llama3", "standard", chat()).expect("route");
    assert_eq!(&*r.upstream_model, "llama3");
    assert!(t.listed_for("standard").is_empty());
}

#[test]
fn downgrade_only_to_a_model_that_can_serve_the_request() {
    let t = table(
        r#"
[[providers]]
name = "p"
kind = "mock"
[[models]]
name = "premium"
provider = "p"
context_window = 200000
capabilities = ["chat", "tools", "vision"]
downgrade_to = "cheap"
[[models]]
name = "cheap"
provider = "p"
context_window = 8000
capabilities = ["chat", "tools"]
[[models]]
name = "plain"
provider = "p"
[tiers.free]
models = ["premium"]
"#,
    );
    let premium = t.resolve("premium", "standard", chat()).expect("route");
    let down = t
        .downgrade(&premium, "standard", chat(), 100)
        .expect("downgrade");
    assert_eq!(&*down.model, "cheap");
    // Tools are fine, vision is not: the original serves.
    let tools = Needs {
        tools: true,
        ..chat()
    };
    assert!(t.downgrade(&premium, "standard", tools, 100).is_some());
    let vision = Needs {
        vision: true,
        ..chat()
    };
    assert!(t.downgrade(&premium, "standard", vision, 100).is_none());
    // A prompt larger than the cheaper model's window stays on the original.
    assert!(t.downgrade(&premium, "standard", chat(), 9000).is_none());
    // A tier that may not use the cheaper model stays on the original.
    assert!(t.downgrade(&premium, "free", chat(), 100).is_none());
    // No downgrade_to: none.
    let plain = t.resolve("plain", "standard", chat()).expect("route");
    assert!(t.downgrade(&plain, "standard", chat(), 100).is_none());
}
