//! The environment's part of the configuration: `TOLLGATE_<SECTION>__<FIELD>` scalar
//! overrides, and the `OPENAI_API_KEY_N`-style variables existing deployments use.

use std::collections::BTreeMap;

use super::problem::Problem;

/// A snapshot of the process environment (tests pass their own).
pub type Env = BTreeMap<String, String>;

/// Reads the process environment, skipping variables that are not valid UTF-8.
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

#[derive(Clone, Copy)]
enum Scalar {
    Str,
    Int,
    Float,
}

/// Every scalar setting that can be overridden from the environment.
const OVERRIDABLE: &[(&str, &str, Scalar)] = &[
    ("server", "listen", Scalar::Str),
    ("server", "max_body_bytes", Scalar::Int),
    ("server", "upstream_connect_timeout_ms", Scalar::Int),
    ("server", "upstream_first_byte_timeout_ms", Scalar::Int),
    ("server", "max_retries", Scalar::Int),
    ("server", "shutdown_grace_s", Scalar::Int),
    ("server", "metrics_token", Scalar::Str),
    ("storage", "database_url", Scalar::Str),
    ("storage", "redis_url", Scalar::Str),
    ("storage", "log_retention_days", Scalar::Int),
    ("budgets", "currency", Scalar::Str),
    ("budgets", "soft_threshold", Scalar::Float),
    ("budgets", "global_daily", Scalar::Float),
    ("budgets", "global_monthly", Scalar::Float),
    ("alerts", "evaluate_every_s", Scalar::Int),
];

/// Applies `TOLLGATE_<SECTION>__<FIELD>` variables onto the parsed file.
pub fn apply_overrides(table: &mut toml::Table, env: &Env, problems: &mut Vec<Problem>) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("TOLLGATE_") else {
            continue;
        };
        let Some((section, field)) = rest.split_once("__") else {
            continue;
        };
        let (section, field) = (section.to_ascii_lowercase(), field.to_ascii_lowercase());
        let Some((_, _, kind)) = OVERRIDABLE
            .iter()
            .find(|(s, f, _)| *s == section && *f == field)
        else {
            let known: Vec<String> = OVERRIDABLE
                .iter()
                .map(|(s, f, _)| format!("TOLLGATE_{}__{}", s.to_uppercase(), f.to_uppercase()))
                .collect();
            problems.push(Problem::new(
                name.clone(),
                format!("`{section}.{field}` is not a setting that can be overridden from the environment"),
                format!("unset it, or use one of: {}", known.join(", ")),
            ));
            continue;
        };
        let parsed = match kind {
            Scalar::Str => Some(toml::Value::String(value.clone())),
            Scalar::Int => value.trim().parse::<i64>().ok().map(toml::Value::Integer),
            Scalar::Float => value.trim().parse::<f64>().ok().map(toml::Value::Float),
        };
        let Some(parsed) = parsed else {
            problems.push(Problem::new(
                name.clone(),
                format!("{value:?} is not a number"),
                "set it to a number, e.g. 30",
            ));
            continue;
        };
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(field, parsed);
            }
            _ => problems.push(Problem::new(
                name.clone(),
                format!("`{section}` in the file is not a table"),
                format!("write `[{section}]` as a table in the file"),
            )),
        }
    }
}

/// One upstream key found in the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvKey {
    /// Stable id, e.g. `openai-1`.
    pub id: String,
    /// The variable holding the secret.
    pub key_env: String,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub daily_budget: Option<f64>,
}

/// Upstream keys for provider `prefix` (`OPENAI`, `ANTHROPIC`) from the environment:
/// `<PREFIX>_API_KEY_1..N` in numeric order, else a plain `<PREFIX>_API_KEY`.
pub fn keys_from_env(prefix: &str, env: &Env, problems: &mut Vec<Problem>) -> Vec<EnvKey> {
    let numbered_prefix = format!("{prefix}_API_KEY_");
    let mut numbered: Vec<(u32, String)> = env
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .filter_map(|(k, _)| {
            let n = k.strip_prefix(&numbered_prefix)?.parse::<u32>().ok()?;
            Some((n, k.clone()))
        })
        .collect();
    numbered.sort();
    let lower = prefix.to_ascii_lowercase();
    if numbered.is_empty() {
        let plain = format!("{prefix}_API_KEY");
        return match env.get(&plain) {
            Some(v) if !v.trim().is_empty() => vec![EnvKey {
                id: format!("{lower}-1"),
                key_env: plain,
                rpm: None,
                tpm: None,
                daily_budget: None,
            }],
            _ => Vec::new(),
        };
    }
    numbered
        .into_iter()
        .map(|(n, key_env)| EnvKey {
            id: format!("{lower}-{n}"),
            key_env,
            rpm: env_number(env, &format!("{prefix}_MAX_RPM_{n}"), problems),
            tpm: env_number(env, &format!("{prefix}_MAX_TPM_{n}"), problems),
            daily_budget: env_float(env, &format!("{prefix}_DAILY_BUDGET_{n}"), problems),
        })
        .collect()
}

fn env_number(env: &Env, name: &str, problems: &mut Vec<Problem>) -> Option<i64> {
    let value = env.get(name)?;
    match value.trim().parse::<i64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            problems.push(Problem::new(
                name,
                format!("{value:?} is not a positive whole number"),
                "set it to e.g. 3500, or unset it",
            ));
            None
        }
    }
}

fn env_float(env: &Env, name: &str, problems: &mut Vec<Problem>) -> Option<f64> {
    let value = env.get(name)?;
    match value.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Some(n),
        _ => {
            problems.push(Problem::new(
                name,
                format!("{value:?} is not an amount"),
                "set it to e.g. 100.0, or unset it",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_set_typed_values_and_reject_unknown_names() {
        let mut table = toml::Table::new();
        let mut problems = Vec::new();
        let e = env(&[
            ("TOLLGATE_SERVER__LISTEN", "0.0.0.0:9"),
            ("TOLLGATE_SERVER__MAX_RETRIES", "5"),
            ("TOLLGATE_SERVER__LISTN", "x"),
            ("TOLLGATE_STORAGE__LOG_RETENTION_DAYS", "ten"),
            ("TOLLGATE_CONFIG", "ignored.toml"),
        ]);
        apply_overrides(&mut table, &e, &mut problems);
        assert_eq!(table["server"]["listen"].as_str(), Some("0.0.0.0:9"));
        assert_eq!(table["server"]["max_retries"].as_integer(), Some(5));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.location == "TOLLGATE_SERVER__LISTN"));
    }

    #[test]
    fn numbered_keys_win_over_plain_and_carry_limits() {
        let mut problems = Vec::new();
        let e = env(&[
            ("OPENAI_API_KEY", "sk-plain"),
            ("OPENAI_API_KEY_2", "sk-two"),
            ("OPENAI_API_KEY_1", "sk-one"),
            ("OPENAI_MAX_RPM_1", "3500"),
            ("OPENAI_DAILY_BUDGET_2", "12.5"),
        ]);
        let keys = keys_from_env("OPENAI", &e, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].id, "openai-1");
        assert_eq!(keys[0].rpm, Some(3500));
        assert_eq!(keys[1].key_env, "OPENAI_API_KEY_2");
        assert_eq!(keys[1].daily_budget, Some(12.5));
    }

    #[test]
    fn plain_key_used_when_no_numbered_key() {
        let mut problems = Vec::new();
        let keys = keys_from_env("OPENAI", &env(&[("OPENAI_API_KEY", "sk-x")]), &mut problems);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key_env, "OPENAI_API_KEY");
        assert!(keys_from_env("ANTHROPIC", &env(&[]), &mut problems).is_empty());
    }
}
