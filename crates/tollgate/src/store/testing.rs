//! Store tests on both backends: a temporary SQLite file, and a schema of its own in
//! the PostgreSQL at `TOLLGATE_TEST_POSTGRES_URL` (dropped afterwards), so tests run
//! in parallel without seeing each other's rows.
//!
//! Write a test as `async fn name(store: Store)` and list it in
//! [`on_both_backends!`]: that makes the tests `name::sqlite` and `name::postgres`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sqlx::{Connection, PgConnection};

use super::Store;

/// The PostgreSQL server tests use when `TOLLGATE_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Makes `name::sqlite` and `name::postgres` tests of each `async fn name(Store)`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::store::testing::on_sqlite(super::$name).await;
            }
            #[tokio::test]
            async fn postgres() {
                $crate::store::testing::on_postgres(super::$name).await;
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// Runs `test` on a fresh SQLite database in a temporary directory.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.expect("opens");
    test(store.clone()).await;
    store.close().await;
}

/// Runs `test` on a fresh, migrated schema of the test PostgreSQL; the schema is
/// dropped afterwards, also when the test fails.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = PgSchema::create().await;
    let store = Store::open(&schema.url).await.expect("opens");
    let outcome = AssertUnwindSafe(test(store.clone())).catch_unwind().await;
    store.close().await;
    let dropped = schema.drop().await;
    if let Err(panic) = outcome {
        if let Err(e) = dropped {
            eprintln!("{e}");
        }
        std::panic::resume_unwind(panic);
    }
    dropped.expect("drops the test schema");
}

/// A schema of its own in the test PostgreSQL.
pub struct PgSchema {
    /// The database URL whose connections use the schema (`search_path`).
    pub url: String,
    base: String,
    name: String,
}

impl PgSchema {
    /// Creates `t_<random>` in the database at `TOLLGATE_TEST_POSTGRES_URL`.
    pub async fn create() -> PgSchema {
        let base = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("t_{:016x}", rand::random::<u64>());
        let mut conn = admin_connection(&base).await;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("creates a test schema");
        let _ = conn.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PgSchema { url, base, name }
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) -> Result<(), String> {
        let mut conn = admin_connection(&self.base).await;
        let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        dropped
            .map(|_| ())
            .map_err(|e| format!("test schema {} not dropped: {e}", self.name))
    }
}

async fn admin_connection(base: &str) -> PgConnection {
    PgConnection::connect(base).await.unwrap_or_else(|e| {
        panic!(
            "the test PostgreSQL at {} is not reachable ({e}): start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; scripts/test-all.sh does), or set TOLLGATE_TEST_POSTGRES_URL",
            crate::secrets::redact_url(base)
        )
    })
}

/// A valid new active key `id` of `owner`, with a fresh secret and the default policy.
pub fn new_key(id: &str, owner: Option<&str>) -> super::NewKey {
    use crate::auth::secret;
    let s = secret::generate("live");
    super::NewKey {
        id: id.to_owned(),
        name: "test".to_owned(),
        owner: owner.map(str::to_owned),
        team: None,
        tier: "standard".to_owned(),
        env: "live".to_owned(),
        secret_hash: secret::hash_hex(&secret::hash(&s)),
        masked: secret::mask(&s),
        expires_at: None,
        dedicated_upstream: None,
        region: None,
        policy: crate::admission::KeyPolicy::default(),
        hmac_secret: None,
    }
}
