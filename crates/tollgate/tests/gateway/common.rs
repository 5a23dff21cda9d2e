//! The test harness: `TestGateway::start` brings up a mock upstream and a gateway
//! in front of it, with one client key ready.

use std::process::Output;
use std::time::{Duration, Instant};

use mock_upstream::{MockOptions, MockServer};
use tempfile::TempDir;
use tollgate::app::{self, RunningGateway};
use tollgate::auth::secret;
use tollgate::config::{Config, Env};
use tollgate::store::NewKey;

pub struct TestGateway {
    pub url: String,
    pub running: Option<RunningGateway>,
    pub mock: MockServer,
    pub key: String,
    pub key_id: String,
    pub db_url: String,
    _dir: TempDir,
    /// The PostgreSQL schema the gateway uses, when it runs on PostgreSQL.
    _pg: Option<PgSchema>,
    /// The configuration file and environment, for restarts.
    config: (std::path::PathBuf, Env),
    pub client: reqwest::Client,
}

/// Settings a test can change.
pub struct Setup {
    /// Extra TOML appended to `[server]`.
    pub server: &'static str,
    /// Upstream keys of the provider: (id, secret).
    pub upstream_keys: Vec<(&'static str, &'static str)>,
    /// Extra TOML appended at the end (`[[providers]]`, `[[models]]`, `[tiers.x]`);
    /// `{mock}` stands for the mock upstream's base URL, `{mock_root}` for its root.
    pub extra: &'static str,
    /// Extra environment the configuration sees (upstream key variables).
    pub env: Vec<(&'static str, &'static str)>,
    pub mock: MockOptions,
    /// Store in a PostgreSQL schema of the test's own (at TOLLGATE_TEST_POSTGRES_URL)
    /// instead of a SQLite file; every test does when TOLLGATE_TEST_DATABASE=postgres.
    pub postgres: bool,
    /// Store in a SQLite file even when TOLLGATE_TEST_DATABASE=postgres: for tests of
    /// SQLite itself (usage_spool.rs holds the file's write lock).
    pub sqlite: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            server: "",
            upstream_keys: vec![("up-1", "sk-upstream-one")],
            extra: "",
            env: Vec::new(),
            mock: MockOptions::default(),
            postgres: false,
            sqlite: false,
        }
    }
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        Self::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> TestGateway {
        let mock = MockServer::start_local(setup.mock).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pg = if !setup.sqlite && (setup.postgres || postgres_everywhere()) {
            Some(PgSchema::create().await)
        } else {
            None
        };
        let db_url = match &pg {
            Some(schema) => schema.url.clone(),
            None => format!("sqlite://{}", dir.path().join("tollgate.db").display()),
        };
        // Beside a SQLite file the spool's default is the gateway's own; with
        // PostgreSQL it would be ./tollgate.usage-spool, shared by every test.
        let spool = match &pg {
            Some(_) => format!(
                "spool_path = \"{}\"",
                dir.path().join("tollgate.usage-spool").display()
            ),
            None => String::new(),
        };
        let mut env: Env = setup
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // The first admin's password, passed like TOLLGATE_ADMIN_PASSWORD but through the
        // configuration's environment, so parallel tests never touch the process's.
        env.entry(ADMIN_PASSWORD_VAR.to_owned())
            .or_insert_with(|| TEST_ADMIN_PASSWORD.to_owned());
        let mut keys = Vec::new();
        for (i, (id, secret)) in setup.upstream_keys.iter().enumerate() {
            let var = format!("TEST_UPSTREAM_KEY_{i}");
            env.insert(var.clone(), secret.to_string());
            keys.push(format!("{{ id = \"{id}\", key_env = \"{var}\" }}"));
        }
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
{server}
[storage]
database_url = "{db_url}"
{spool}
[[providers]]
name = "local"
kind = "openai_compatible"
base_url = "{base}"
keys = [ {keys} ]
[[models]]
name = "mock-gpt"
provider = "local"
input_per_1m = 1.0
output_per_1m = 2.0
aliases = ["gpt-alias"]
[[models]]
name = "renamed"
provider = "local"
upstream_model = "mock-gpt"
[[models]]
name = "mock-embedding"
provider = "local"
capabilities = ["embeddings"]
{extra}
"#,
            server = setup.server,
            base = mock.base_url(),
            keys = keys.join(", "),
            extra = setup
                .extra
                .replace("{mock}", &mock.base_url())
                .replace("{mock_root}", &format!("http://{}", mock.addr())),
        );
        // Keys of the standard tier are limited to 30 requests a minute by default;
        // tests that are not about limits lift that unless they configure the tier.
        let text = if setup.extra.contains("[tiers.standard]") {
            text
        } else {
            format!("{text}\n[tiers.standard]\nrpm = 0\nrph = 0\n")
        };
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path), &env).unwrap_or_else(|p| panic!("{p}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = app::start(config, listener, master_key()).await.unwrap();
        let url = format!("http://{}", running.addr);
        let (key_id, key) = create_key(&running, "test").await;
        TestGateway {
            url,
            running: Some(running),
            mock,
            key,
            key_id,
            db_url,
            _dir: dir,
            _pg: pg,
            config: (path, env),
            client: reqwest::Client::new(),
        }
    }

    pub fn running(&self) -> &RunningGateway {
        self.running.as_ref().unwrap()
    }

    /// POST a JSON body with the test key.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the gateway and starts it again on a new port with the same
    /// configuration and database; `url` follows.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (path, env) = &self.config;
        let config = Config::load(Some(path), env).unwrap_or_else(|p| panic!("{p}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = app::start(config, listener, master_key()).await.unwrap();
        self.url = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// Stops the gateway gracefully and waits until usage is written.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
            running.wait().await;
        }
    }

    /// Request log rows, read from the database with a fresh connection.
    pub async fn usage_rows(&self) -> Vec<UsageRowView> {
        let store = tollgate::store::Store::connect(&self.db_url).await.unwrap();
        let rows = store.list_usage(100_000).await.unwrap();
        store.close().await;
        rows
    }

    /// Waits until the store holds `n` request log rows (the writer batches).
    pub async fn wait_for_rows(&self, n: usize) -> Vec<UsageRowView> {
        for _ in 0..100 {
            let rows = self.usage_rows().await;
            if rows.len() >= n {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.usage_rows().await
    }
}

pub use tollgate::store::UsageRowView;

/// TOLLGATE_ADMIN_PASSWORD.
pub const ADMIN_PASSWORD_VAR: &str = "TOLLGATE_ADMIN_PASSWORD";

/// The password of every test gateway's first admin, `admin`.
pub const TEST_ADMIN_PASSWORD: &str = "test-admin-password-0123";

/// Logs in as `admin` and answers the session's bearer token.
pub async fn admin_token(gw: &TestGateway) -> String {
    let response = gw
        .client
        .post(format!("{}/admin/api/login", gw.url))
        .json(&serde_json::json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "admin login failed");
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// True when TOLLGATE_TEST_DATABASE=postgres: every test gateway stores in PostgreSQL.
fn postgres_everywhere() -> bool {
    std::env::var("TOLLGATE_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// The test PostgreSQL (trust authentication on loopback by default).
pub fn postgres_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of a test's own in the test PostgreSQL, so tests run in parallel; dropped
/// with it. Its name holds its creation time, and schemas an interrupted run left
/// behind are dropped by the next run after an hour.
pub struct PgSchema {
    /// The database URL whose connections use the schema (`search_path`).
    pub url: String,
    base: String,
    name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        use sqlx::Connection;
        let base = postgres_url();
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
            panic!("the test PostgreSQL at {base} is not reachable ({e}): start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; scripts/test-all.sh does), or set TOLLGATE_TEST_POSTGRES_URL")
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'gw\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for old in stale {
            let born = old
                .split('_')
                .nth(1)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(now);
            if now.saturating_sub(born) > 3600 {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {old} CASCADE"))
                    .execute(&mut conn)
                    .await;
            }
        }
        let name = format!("gw_{now}_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PgSchema { url, base, name }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Off this runtime: Drop cannot wait on it. A lock still held by a gateway
        // that was not stopped gives up after a moment; the sweep drops it later.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await?;
                sqlx::query("SET lock_timeout = '2s'")
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!(
                "note: test schema {} not dropped ({e}); a run an hour later drops it",
                self.name
            );
        }
    }
}

/// The master key every test gateway (and the CLI it runs beside) uses.
pub const TEST_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub fn master_key() -> tollgate::secrets::MasterKey {
    tollgate::secrets::MasterKey::from_text(TEST_MASTER_KEY).unwrap()
}

/// Inserts a client key through the gateway's store and reloads its index.
pub async fn create_key(running: &RunningGateway, name: &str) -> (String, String) {
    create_key_in_tier(running, name, "standard").await
}

/// Like [`create_key`], for a key of `tier`.
pub async fn create_key_in_tier(
    running: &RunningGateway,
    name: &str,
    tier: &str,
) -> (String, String) {
    let secret = secret::generate("test");
    let id = secret::new_key_id();
    let store = &running.gateway.store;
    store
        .insert_key(&NewKey {
            id: id.clone(),
            name: name.to_owned(),
            owner: Some("owner-1".to_owned()),
            team: None,
            tier: tier.to_owned(),
            env: "test".to_owned(),
            secret_hash: secret::hash_hex(&secret::hash(&secret)),
            masked: secret::mask(&secret),
            expires_at: None,
            dedicated_upstream: None,
            region: None,
            policy: Default::default(),
            hmac_secret: None,
        })
        .await
        .unwrap();
    running
        .gateway
        .keys
        .reload(store, &master_key())
        .await
        .unwrap();
    (id, secret)
}

pub fn chat(content: &str) -> serde_json::Value {
    serde_json::json!({"model": "mock-gpt", "messages": [{"role": "user", "content": content}]})
}

pub fn chat_stream(content: &str) -> serde_json::Value {
    serde_json::json!({"model": "mock-gpt", "stream": true, "messages": [{"role": "user", "content": content}]})
}

/// Reads an OpenAI error body and checks its shape.
pub async fn error_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    assert!(
        response.headers().contains_key("x-request-id"),
        "error without x-request-id"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("not an error envelope: {body}"))
        .clone();
    for field in ["message", "type", "param", "code"] {
        assert!(error.get(field).is_some(), "error lacks {field}: {body}");
    }
    (status, error)
}

/// A command's standard output and error, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The status `secret` gets from `GET /v1/models`.
pub async fn status_of(gw: &TestGateway, secret: &str) -> u16 {
    gw.client
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits (at most 1 s, SPEC §4) until the gateway answers `secret` with `status`.
pub async fn within_a_second(gw: &TestGateway, secret: &str, status: u16, what: &str) {
    let started = Instant::now();
    loop {
        let got = status_of(gw, secret).await;
        if got == status {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: not within 1 s (last status {got})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
