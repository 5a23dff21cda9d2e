//! `tollgate stats [--health] [--json] [--url URL]`: per-provider pool and per-key
//! figures from a running gateway, read from its admin API (SPEC §9).

use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::config::{process_env, Env, ServerConfig};
use crate::providers::client::{self, HttpClient};

/// `tollgate stats` arguments.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only the health columns (state, cooldown, error rate, utilization); exits 1
    /// when a provider has no usable key.
    #[arg(long)]
    pub health: bool,
    /// One JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The gateway's base URL [default: http://<server.listen of the configuration>].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// An admin bearer token [env: TOLLGATE_ADMIN_TOKEN]; without one, logs in as
    /// --user with TOLLGATE_ADMIN_PASSWORD.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// The admin user to log in as when no token is given.
    #[arg(long, default_value = "admin")]
    pub user: String,
}

/// Runs `tollgate stats`.
pub async fn run(path: Option<&std::path::Path>, args: StatsArgs) -> ExitCode {
    let env = process_env();
    match stats(path, &args, &env).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn stats(
    path: Option<&std::path::Path>,
    args: &StatsArgs,
    env: &Env,
) -> Result<ExitCode, String> {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let server = ServerConfig::load(path, env).map_err(|p| p.to_string())?;
            base_url(server.listen)
        }
    };
    let http = client::build(std::time::Duration::from_secs(5));
    let token = match args
        .token
        .clone()
        .or_else(|| env.get("TOLLGATE_ADMIN_TOKEN").cloned())
    {
        Some(token) => token,
        None => login(&http, &base, &args.user, env).await?,
    };
    let upstreams = get(&http, &base, "/admin/api/upstreams", &token).await?;
    let keys = upstreams["data"].as_array().cloned().unwrap_or_default();
    let providers = by_provider(&keys);
    let unhealthy: Vec<&str> = providers
        .iter()
        .filter(|(_, keys)| !keys.iter().any(usable))
        .map(|(p, _)| p.as_str())
        .collect();
    if args.json {
        let out = serde_json::json!({
            "gateway": base,
            "providers": providers.iter().map(|(p, keys)| serde_json::json!({
                "provider": p,
                "usable_keys": keys.iter().filter(|k| usable(k)).count(),
                "keys": keys,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{}", table(&providers, args.health));
        if !unhealthy.is_empty() {
            println!("\nNO USABLE KEY: {}", unhealthy.join(", "));
        }
    }
    Ok(if args.health && !unhealthy.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `http://` + the listen address, with 0.0.0.0 / :: replaced by loopback.
fn base_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

fn usable(key: &Value) -> bool {
    matches!(key["state"].as_str(), Some("ok" | "cooling_down"))
}

fn by_provider(keys: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for key in keys {
        let provider = key["provider"].as_str().unwrap_or("?").to_owned();
        match out.iter_mut().find(|(p, _)| *p == provider) {
            Some((_, list)) => list.push(key.clone()),
            None => out.push((provider, vec![key.clone()])),
        }
    }
    out
}

fn table(providers: &[(String, Vec<Value>)], health: bool) -> String {
    let mut header = vec![
        "provider",
        "key",
        "state",
        "cooldown until",
        "error rate",
        "utilization",
    ];
    if !health {
        header.extend(["requests", "errors", "tokens", "spend", "last used"]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for (provider, keys) in providers {
        for k in keys {
            let s = &k["stats"];
            let text = |v: &Value| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "-".to_owned())
            };
            let pct = |v: &Value| {
                v.as_f64()
                    .map(|f| format!("{:.0}%", f * 100.0))
                    .unwrap_or_else(|| "-".to_owned())
            };
            let num = |v: &Value| {
                v.as_u64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".to_owned())
            };
            let mut row = vec![
                provider.clone(),
                text(&k["id"]),
                text(&k["state"]),
                text(&k["cooldown_until"]),
                pct(&s["error_rate"]),
                pct(&s["utilization"]),
            ];
            if !health {
                row.extend([
                    num(&s["requests"]),
                    num(&s["errors"]),
                    num(&s["tokens"]),
                    s["spend"]
                        .as_f64()
                        .map(|f| format!("{f:.4}"))
                        .unwrap_or_else(|| "-".to_owned()),
                    text(&s["last_used"]),
                ]);
            }
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

async fn login(http: &HttpClient, base: &str, user: &str, env: &Env) -> Result<String, String> {
    let password = env.get("TOLLGATE_ADMIN_PASSWORD").ok_or(
        "no admin credentials: pass --token (or TOLLGATE_ADMIN_TOKEN), or set TOLLGATE_ADMIN_PASSWORD to log in",
    )?;
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let answer = send(
        http,
        "POST",
        &format!("{base}/admin/api/login"),
        None,
        Some(body),
    )
    .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the gateway at {base} answered the login without a token"))
}

async fn get(http: &HttpClient, base: &str, path: &str, token: &str) -> Result<Value, String> {
    send(http, "GET", &format!("{base}{path}"), Some(token), None).await
}

async fn send(
    http: &HttpClient,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<Value, String> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| format!("{url} is not a usable URL: {e}"))?;
    let response = http.request(request).await.map_err(|e| {
        format!("cannot reach the gateway at {url}: {e}; is it running? (--url sets the address)")
    })?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the gateway's answer from {url} broke off: {e}"))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{url} answered {status}: {message}"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_become_urls() {
        assert_eq!(
            base_url("0.0.0.0:8080".parse().expect("addr")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("127.0.0.1:9".parse().expect("addr")),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            base_url("[::]:80".parse().expect("addr")),
            "http://[::1]:80"
        );
    }

    #[test]
    fn tables_group_keys_by_provider() {
        let keys = vec![
            serde_json::json!({"provider": "openai", "id": "oa-1", "state": "ok", "stats": {"requests": 3, "error_rate": 0.25, "utilization": 0.5}}),
            serde_json::json!({"provider": "openai", "id": "oa-2", "state": "invalid", "stats": {}}),
            serde_json::json!({"provider": "claude", "id": "an-1", "state": "disabled"}),
        ];
        let providers = by_provider(&keys);
        assert_eq!(providers.len(), 2);
        let text = table(&providers, false);
        assert!(
            text.contains("oa-1") && text.contains("25%") && text.contains("50%"),
            "{text}"
        );
        let health = table(&providers, true);
        assert!(!health.contains("requests"), "{health}");
        assert!(!providers[1].1.iter().any(usable));
    }
}
