use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_config_serves_the_builtin_mock() {
    let c = from_text("", "(defaults)", &env(&[])).expect("valid");
    assert!(c.builtin_mock);
    assert_eq!(c.providers[0].kind, ProviderKind::Mock);
    let names: Vec<_> = c.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["mock-gpt", "mock-embedding"]);
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.storage.database_url, "sqlite://tollgate.db");
}

#[test]
fn openai_env_key_creates_the_openai_provider() {
    let c = from_text("", "(defaults)", &env(&[("OPENAI_API_KEY", "sk-abc")])).expect("valid");
    assert!(!c.builtin_mock);
    assert_eq!(c.providers.len(), 1);
    assert_eq!(c.providers[0].base_url, OPENAI_BASE_URL);
    assert_eq!(c.providers[0].keys[0].secret.expose(), "sk-abc");
    assert!(!format!("{:?}", c.providers[0]).contains("sk-abc"));
}

#[test]
fn every_problem_is_reported_with_location_and_fix() {
    let text = r#"
[server]
listen = "nowhere"
max_retries = 99
[[providers]]
name = "local"
kind = "openai_compatible"
base_url = "not a url"
keys = [ { id = "a", key_env = "MISSING_VAR" } ]
[[models]]
name = "m"
provider = "nope"
capabilities = ["chat", "telepathy"]
"#;
    let problems = from_text(text, "t.toml", &env(&[])).expect_err("invalid").0;
    let locations: Vec<_> = problems.iter().map(|p| p.location.as_str()).collect();
    for expected in [
        "t.toml: server.listen",
        "t.toml: server.max_retries",
        "t.toml: providers[0].base_url",
        "t.toml: providers[0].keys[0].key_env",
        "t.toml: models[0].provider",
        "t.toml: models[0].capabilities",
    ] {
        assert!(
            locations.contains(&expected),
            "missing {expected} in {locations:?}"
        );
    }
    assert!(problems.iter().all(|p| !p.fix.is_empty()));
}

#[test]
fn syntax_and_unknown_fields_point_at_the_line() {
    let problems = from_text("[server]\nlistn = \"x\"\n", "t.toml", &env(&[]))
        .expect_err("invalid")
        .0;
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].location.starts_with("t.toml:2:"),
        "{:?}",
        problems[0]
    );
    assert!(problems[0].message.contains("listn"), "{:?}", problems[0]);
}

#[test]
fn mock_settings_only_on_mock_providers() {
    let text = "[[providers]]\nname = \"m\"\nkind = \"mock\"\nmock = { first_byte_delay_ms = 250, chunk_delay_ms = 5 }\n";
    let c = from_text(text, "t.toml", &env(&[])).expect("valid");
    assert_eq!(
        c.providers[0].mock.first_byte_delay,
        Duration::from_millis(250)
    );
    let bad = "[[providers]]\nname = \"o\"\nkind = \"openai_compatible\"\nbase_url = \"http://x/v1\"\nmock = { chunk_delay_ms = 5 }\n";
    let problems = from_text(bad, "t.toml", &env(&[])).expect_err("invalid").0;
    assert_eq!(problems[0].location, "t.toml: providers[0].mock");
}

#[test]
fn storage_alone_needs_no_provider_secrets() {
    let text = "[storage]\ndatabase_url = \"sqlite:///tmp/x.db\"\n[[providers]]\nname = \"o\"\nkind = \"openai\"\nkeys = [ { id = \"a\", key_env = \"UNSET_VAR\" } ]\n";
    assert!(from_text(text, "t.toml", &env(&[])).is_err());
    let storage = storage_from_text(text, "t.toml", &env(&[])).expect("storage is valid");
    assert_eq!(storage.database_url, "sqlite:///tmp/x.db");
}

#[test]
fn tiers_name_models_that_exist() {
    let text =
        "[tiers.free]\nrpm = 10\nmodels = [\"mock-gpt\"]\nroute = { \"gpt-4o\" = \"mock-gpt\" }\n";
    let c = from_text(text, "t.toml", &env(&[])).expect("valid");
    assert_eq!(c.tiers["free"].route["gpt-4o"], "mock-gpt");
    assert_eq!(c.tiers["free"].limits.rpm, Some(10));
    let bad = "[tiers.free]\nmodels = [\"ghost\"]\n";
    let problems = from_text(bad, "t.toml", &env(&[])).expect_err("invalid").0;
    assert_eq!(problems[0].location, "t.toml: tiers.free");
}

#[test]
fn tiers_have_default_limits_that_config_can_change_or_remove() {
    let c = from_text(
        "[tiers.standard]\nrph = 0\ntpm = 5000\n",
        "t.toml",
        &env(&[]),
    )
    .expect("valid");
    assert_eq!(c.tiers["free"].limits.rpm, Some(10));
    assert_eq!(c.tiers["free"].limits.rph, Some(100));
    assert_eq!(c.tiers["premium"].limits.rph, Some(1000));
    // Configured values replace the defaults; 0 removes one.
    assert_eq!(c.tiers["standard"].limits.rpm, Some(30));
    assert_eq!(c.tiers["standard"].limits.rph, None);
    assert_eq!(c.tiers["standard"].limits.tpm, Some(5000));
    let bad = from_text("[tiers.free]\nrpm = -1\n", "t.toml", &env(&[]))
        .expect_err("invalid")
        .0;
    assert_eq!(bad[0].location, "t.toml: tiers.free.rpm");
}

#[test]
fn budgets_and_trusted_proxies_are_validated() {
    let c = from_text(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n[budgets]\ncurrency = \"eur\"\nsoft_threshold = 0.5\nglobal_daily = 100.0\nglobal_monthly = 0\nowner_monthly = 2.0\n",
        "t.toml",
        &env(&[]),
    )
    .expect("valid");
    assert_eq!(c.budgets.currency, "EUR");
    assert_eq!(c.budgets.soft_threshold, 0.5);
    assert_eq!(c.budgets.global_daily, Some(100.0));
    assert_eq!(c.budgets.global_monthly, None);
    assert_eq!(c.budgets.owner_monthly, Some(2.0));
    assert_eq!(c.server.trusted_proxies.len(), 1);
    let bad = from_text(
        "[server]\ntrusted_proxies = [\"nope\"]\n[budgets]\nsoft_threshold = 1.5\nglobal_daily = -3\n",
        "t.toml",
        &env(&[]),
    )
    .expect_err("invalid")
    .0;
    let at: Vec<&str> = bad.iter().map(|p| p.location.as_str()).collect();
    assert!(at.contains(&"t.toml: server.trusted_proxies[0]"), "{at:?}");
    assert!(at.contains(&"t.toml: budgets.soft_threshold"), "{at:?}");
    assert!(at.contains(&"t.toml: budgets.global_daily"), "{at:?}");
}

#[test]
fn env_override_reaches_the_config() {
    let c = from_text(
        "",
        "x",
        &env(&[("TOLLGATE_SERVER__LISTEN", "127.0.0.1:9999")]),
    )
    .expect("valid");
    assert_eq!(c.server.listen.port(), 9999);
}

#[test]
fn redis_url_must_be_a_redis_url() {
    let c = from_text(
        "[storage]\nredis_url = \"redis://127.0.0.1:6379\"\n",
        "t.toml",
        &env(&[]),
    )
    .expect("valid");
    assert_eq!(
        c.storage.redis_url.as_deref(),
        Some("redis://127.0.0.1:6379")
    );
    assert!(
        !c.warnings.iter().any(|w| w.contains("redis")),
        "{:?}",
        c.warnings
    );
    let bad = from_text(
        "[storage]\nredis_url = \"http://cache:6379\"\n",
        "t.toml",
        &env(&[]),
    )
    .expect_err("invalid")
    .0;
    assert_eq!(bad[0].location, "t.toml: storage.redis_url");
    // Empty means none.
    let none = from_text("[storage]\nredis_url = \"\"\n", "t.toml", &env(&[])).expect("valid");
    assert_eq!(none.storage.redis_url, None);
}

#[test]
fn database_url_may_name_sqlite_or_postgres() {
    for url in [
        "sqlite://tollgate.db",
        "sqlite:///var/lib/tollgate/t.db",
        "postgres://app:pw@db.internal:5432/tollgate",
        "postgresql://app@db/tollgate?sslmode=disable",
    ] {
        let text = format!("[storage]\ndatabase_url = \"{url}\"\n");
        let c = from_text(&text, "t.toml", &env(&[])).unwrap_or_else(|p| panic!("{url}: {p}"));
        assert_eq!(c.storage.database_url, url);
    }
    for (url, fix) in [
        (
            "mysql://db/tollgate",
            "postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        (
            "postgres://app:s3cret@db:port/x",
            "postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        ("sqlite::memory:", "sqlite://tollgate.db"),
        ("sqlite://file:t?mode=memory", "sqlite://tollgate.db"),
    ] {
        let text = format!("[storage]\ndatabase_url = \"{url}\"\n");
        let bad = storage_from_text(&text, "t.toml", &env(&[]))
            .expect_err(url)
            .0;
        assert_eq!(bad[0].location, "t.toml: storage.database_url");
        assert!(bad[0].fix.contains(fix), "{:?}", bad[0]);
        assert!(!bad[0].message.contains("s3cret"), "{:?}", bad[0]);
    }
}
