//! Client key rows.

use sqlx::Row;

use crate::admission::KeyPolicy;

use super::{now_ms, Store, StoreError};

/// Lifecycle state of a client key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Temporarily refused; can be resumed.
    Suspended,
    /// Refused for good.
    Revoked,
}

impl KeyStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Suspended => "suspended",
            KeyStatus::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(KeyStatus::Active),
            "suspended" => Ok(KeyStatus::Suspended),
            "revoked" => Ok(KeyStatus::Revoked),
            other => Err(StoreError::Corrupt(format!("unknown key status {other:?}"))),
        }
    }
}

/// A client key as stored (never the secret itself).
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tier: String,
    pub env: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The secret, masked for display.
    pub masked: String,
    pub status: KeyStatus,
    pub expires_at: Option<i64>,
    pub dedicated_upstream: Option<String>,
    pub region: Option<String>,
    /// Permissions, limits, budgets, IP and origin rules.
    pub policy: KeyPolicy,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What is needed to insert a client key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tier: String,
    pub env: String,
    pub secret_hash: String,
    pub masked: String,
    pub expires_at: Option<i64>,
    pub dedicated_upstream: Option<String>,
    pub region: Option<String>,
}

const COLUMNS: &str =
    "id, name, owner, team, tier, env, secret_hash, masked, status, expires_at, dedicated_upstream, region, policy, created_at, updated_at";

fn record(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        team: row.try_get("team")?,
        tier: row.try_get("tier")?,
        env: row.try_get("env")?,
        secret_hash: row.try_get("secret_hash")?,
        masked: row.try_get("masked")?,
        status: KeyStatus::parse(row.try_get("status")?)?,
        expires_at: row.try_get("expires_at")?,
        dedicated_upstream: row.try_get("dedicated_upstream")?,
        region: row.try_get("region")?,
        policy: KeyPolicy::from_json(row.try_get("policy")?)
            .map_err(|e| StoreError::Corrupt(format!("client key policy: {e}")))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Inserts a new active key.
    pub async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO client_keys (id, name, owner, team, tier, env, secret_hash, masked, status, expires_at, dedicated_upstream, region, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.owner)
        .bind(&key.team)
        .bind(&key.tier)
        .bind(&key.env)
        .bind(&key.secret_hash)
        .bind(&key.masked)
        .bind(key.expires_at)
        .bind(&key.dedicated_upstream)
        .bind(&key.region)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        bump_keys_revision(&mut tx).await?;
        tx.commit().await?;
        self.find_key(&key.id).await
    }

    /// Every key, newest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM client_keys ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// One key by id.
    pub async fn find_key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM client_keys WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => record(&row),
            None => Err(StoreError::NotFound {
                what: "client key",
                id: id.to_owned(),
            }),
        }
    }

    /// Sets a key's status.
    pub async fn set_key_status(
        &self,
        id: &str,
        status: KeyStatus,
    ) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE client_keys SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "client key",
                id: id.to_owned(),
            });
        }
        bump_keys_revision(&mut tx).await?;
        tx.commit().await?;
        self.find_key(id).await
    }

    /// The change counter of the client key table.
    pub async fn keys_revision(&self) -> Result<i64, StoreError> {
        let value: i64 =
            sqlx::query_scalar("SELECT value FROM revisions WHERE name = 'client_keys'")
                .fetch_one(&self.pool)
                .await?;
        Ok(value)
    }
}

async fn bump_keys_revision(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE revisions SET value = value + 1 WHERE name = 'client_keys'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}
