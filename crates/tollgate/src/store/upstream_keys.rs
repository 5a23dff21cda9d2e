//! Upstream key rows: the secret sealed under the master key (AES-256-GCM), limits
//! and routing attributes in clear. Every change bumps `revisions.upstream_keys` in
//! its own transaction, so running gateways can poll for it like for client keys.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{now_ms, with_pool, Store, StoreError};
use crate::config::{Secret, UpstreamKeyConfig};
use crate::secrets::{self, MasterKey, Sealed};

/// Longest accepted upstream key, in bytes.
const MAX_SECRET_BYTES: usize = 4096;
/// Longest accepted id, provider, region or tier.
const MAX_NAME_CHARS: usize = 64;
/// Nano-units in one unit of currency (budgets are stored as integers).
const NANOS: f64 = 1e9;

/// Whether a stored upstream key may serve calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKeyStatus {
    /// In rotation.
    Enabled,
    /// Out of rotation until enabled again.
    Disabled,
}

impl UpstreamKeyStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamKeyStatus::Enabled => "enabled",
            UpstreamKeyStatus::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "enabled" => Ok(UpstreamKeyStatus::Enabled),
            "disabled" => Ok(UpstreamKeyStatus::Disabled),
            other => Err(StoreError::Corrupt(format!(
                "unknown upstream key status {other:?}"
            ))),
        }
    }
}

/// An upstream key as the pool needs it: the secret decrypted.
#[derive(Debug, Clone)]
pub struct StoredUpstreamKey {
    pub provider: String,
    pub status: UpstreamKeyStatus,
    /// When an operator last changed the row (Unix ms): a pool resets the live state
    /// (health, counters) of a key whose row changed.
    pub updated_at: i64,
    /// The key itself, in the same form as a configured one.
    pub key: UpstreamKeyConfig,
}

/// An upstream key's metadata, for listings: never the secret, only its masked form.
#[derive(Debug, Clone)]
pub struct UpstreamKeyRow {
    pub id: String,
    pub provider: String,
    pub status: UpstreamKeyStatus,
    /// First 4 + `…` + last 4 characters of the secret.
    pub masked: String,
    /// Fingerprint of the master key the secret is sealed under.
    pub key_fingerprint: String,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub daily_budget: Option<f64>,
    pub region: Option<String>,
    pub weight: u32,
    pub tier: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What is needed to add an upstream key.
#[derive(Debug, Clone)]
pub struct NewUpstreamKey {
    pub id: String,
    pub provider: String,
    pub secret: Secret,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub daily_budget: Option<f64>,
    pub region: Option<String>,
    pub weight: u32,
    pub tier: Option<String>,
}

impl NewUpstreamKey {
    /// Checks every field; the message says which field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        check_name("id", &self.id)?;
        check_name("provider", &self.provider)?;
        if let Some(region) = &self.region {
            check_name("region", region)?;
        }
        if let Some(tier) = &self.tier {
            check_name("tier", tier)?;
        }
        let secret = self.secret.expose();
        if secret.is_empty() {
            return Err("the upstream key is empty: pass it on standard input".to_owned());
        }
        if secret.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "the upstream key is {} bytes; at most {MAX_SECRET_BYTES} are accepted",
                secret.len()
            ));
        }
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "the upstream key contains spaces or control characters: pass only the key, on one line"
                    .to_owned(),
            );
        }
        for (field, value) in [("rpm", self.rpm), ("tpm", self.tpm)] {
            if value == Some(0) {
                return Err(format!(
                    "{field} must be a positive number (omit it for no limit)"
                ));
            }
        }
        if self.weight == 0 {
            return Err("weight must be a positive number (1 by default)".to_owned());
        }
        if let Some(budget) = self.daily_budget {
            budget_nanos(budget)?;
        }
        Ok(())
    }
}

/// A change to a stored upstream key: each `None` leaves that field as it is;
/// `Some(None)` clears an optional one. The provider and id stay.
#[derive(Debug, Clone, Default)]
pub struct UpstreamKeyUpdate {
    /// A new secret (sealed under the master key before it is stored).
    pub secret: Option<Secret>,
    pub rpm: Option<Option<u32>>,
    pub tpm: Option<Option<u32>>,
    pub daily_budget: Option<Option<f64>>,
    pub region: Option<Option<String>>,
    pub weight: Option<u32>,
    pub tier: Option<Option<String>>,
}

impl UpstreamKeyUpdate {
    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.secret.is_none()
            && self.rpm.is_none()
            && self.tpm.is_none()
            && self.daily_budget.is_none()
            && self.region.is_none()
            && self.weight.is_none()
            && self.tier.is_none()
    }
}

/// Ids, providers, regions and tiers: 1–64 of `[A-Za-z0-9_.-]`.
fn check_name(field: &str, value: &str) -> Result<(), String> {
    let valid_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if value.is_empty() || value.chars().count() > MAX_NAME_CHARS || !valid_chars {
        return Err(format!(
            "{field} {value:?} is not valid: use 1 to {MAX_NAME_CHARS} of the characters A-Z a-z 0-9 _ . -"
        ));
    }
    Ok(())
}

/// A budget in currency units → stored nano-units.
fn budget_nanos(budget: f64) -> Result<i64, String> {
    let nanos = (budget * NANOS).round();
    // i64::MAX is not exactly representable; stay well below it.
    if !budget.is_finite() || !(1.0..9.0e18).contains(&nanos) {
        return Err(format!(
            "daily budget {budget} is not valid: use a positive amount below 9000000000 (omit it for no budget)"
        ));
    }
    Ok(nanos as i64)
}

const COLUMNS: &str = "id, provider, status, nonce, ciphertext, key_fingerprint, masked, rpm, tpm, daily_budget_nanos, region, weight, tier, created_at, updated_at";

/// Bumps the upstream keys' change counter. Every write transaction runs it first: it
/// takes SQLite's write lock, or on PostgreSQL this row's lock, so the table's
/// writers run one at a time (the one-master-key check below relies on it).
const BUMP_REVISION: &str = "UPDATE revisions SET value = value + 1 WHERE name = 'upstream_keys'";

/// An `upstream_keys` row as stored.
#[derive(sqlx::FromRow)]
struct StoredRow {
    id: String,
    provider: String,
    status: String,
    nonce: String,
    ciphertext: String,
    key_fingerprint: String,
    masked: String,
    rpm: Option<i64>,
    tpm: Option<i64>,
    daily_budget_nanos: Option<i64>,
    region: Option<String>,
    weight: i64,
    tier: Option<String>,
    created_at: i64,
    updated_at: i64,
}

fn row_meta(row: &StoredRow) -> Result<UpstreamKeyRow, StoreError> {
    let id = &row.id;
    let small = |column: &str, value: Option<i64>| -> Result<Option<u32>, StoreError> {
        value
            .map(|v| {
                u32::try_from(v).map_err(|_| {
                    StoreError::Corrupt(format!("upstream key {id}: {column} {v} is out of range"))
                })
            })
            .transpose()
    };
    Ok(UpstreamKeyRow {
        id: row.id.clone(),
        provider: row.provider.clone(),
        status: UpstreamKeyStatus::parse(&row.status)?,
        masked: row.masked.clone(),
        key_fingerprint: row.key_fingerprint.clone(),
        rpm: small("rpm", row.rpm)?,
        tpm: small("tpm", row.tpm)?,
        daily_budget: row.daily_budget_nanos.map(|n| n as f64 / NANOS),
        region: row.region.clone(),
        weight: small("weight", Some(row.weight))?.unwrap_or(1),
        tier: row.tier.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The sealed secret of a row; a reason when the stored text is not even base64.
fn row_sealed(row: &StoredRow) -> Result<Sealed, StoreError> {
    let decode = |column: &str, text: &str| -> Result<Vec<u8>, StoreError> {
        BASE64
            .decode(text)
            .map_err(|_| StoreError::Corrupt(format!("{column} is not base64")))
    };
    Ok(Sealed {
        nonce: decode("nonce", &row.nonce)?,
        ciphertext: decode("ciphertext", &row.ciphertext)?,
        key_fingerprint: row.key_fingerprint.clone(),
    })
}

/// Opens every row's secret; any failure names every id that failed.
fn open_all(
    rows: &[StoredRow],
    master: &MasterKey,
) -> Result<Vec<(UpstreamKeyRow, Secret)>, StoreError> {
    let mut opened = Vec::with_capacity(rows.len());
    let mut failed: Vec<String> = Vec::new();
    let mut reason = String::new();
    for row in rows {
        let meta = row_meta(row)?;
        let secret = row_sealed(row)
            .map_err(|e| e.to_string())
            .and_then(|sealed| master.decrypt(&sealed).map_err(|e| e.to_string()));
        match secret {
            Ok(secret) => opened.push((meta, secret)),
            Err(e) => {
                if failed.is_empty() {
                    reason = e;
                }
                failed.push(meta.id);
            }
        }
    }
    if failed.is_empty() {
        Ok(opened)
    } else {
        Err(StoreError::Undecryptable {
            ids: failed,
            fingerprint: master.fingerprint(),
            reason,
        })
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "upstream key",
        id: id.to_owned(),
    }
}

impl Store {
    /// Adds an enabled upstream key, its secret sealed under `master`.
    pub async fn insert_upstream_key(
        &self,
        key: &NewUpstreamKey,
        master: &MasterKey,
    ) -> Result<(), StoreError> {
        key.validate().map_err(StoreError::Invalid)?;
        let sealed = master.encrypt(key.secret.expose());
        let budget = key
            .daily_budget
            .map(budget_nanos)
            .transpose()
            .map_err(StoreError::Invalid)?;
        let now = now_ms();
        let insert = format!(
            "INSERT INTO upstream_keys ({COLUMNS}) VALUES ($1, $2, 'enabled', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
        );
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let inserted = sqlx::query(&insert)
                .bind(&key.id)
                .bind(&key.provider)
                .bind(BASE64.encode(&sealed.nonce))
                .bind(BASE64.encode(&sealed.ciphertext))
                .bind(&sealed.key_fingerprint)
                .bind(secrets::mask(key.secret.expose()))
                .bind(key.rpm.map(i64::from))
                .bind(key.tpm.map(i64::from))
                .bind(budget)
                .bind(&key.region)
                .bind(i64::from(key.weight))
                .bind(&key.tier)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(StoreError::Duplicate {
                        what: "upstream key",
                        id: key.id.clone(),
                    })
                }
                Err(e) => return Err(e.into()),
            }
            // One master key for the whole table: a CLI run elsewhere (another
            // directory, another tollgate.key) must not seal keys that the gateways
            // cannot open.
            let other: Option<String> = sqlx::query_scalar(
                "SELECT key_fingerprint FROM upstream_keys WHERE key_fingerprint <> $1 LIMIT 1",
            )
            .bind(&sealed.key_fingerprint)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(other) = other {
                return Err(StoreError::Invalid(format!(
                    "the stored upstream keys are sealed under master key {other}, but this master key is {}: set TOLLGATE_MASTER_KEY, or run from the directory holding the gateway's tollgate.key",
                    sealed.key_fingerprint
                )));
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every upstream key with its secret opened under `master`, oldest first. A row
    /// that cannot be opened fails the whole call, naming its id: it is never used as
    /// plaintext, and a pool is not silently built without it.
    pub async fn list_upstream_keys(
        &self,
        master: &MasterKey,
    ) -> Result<Vec<StoredUpstreamKey>, StoreError> {
        let rows = self.fetch_upstream_rows().await?;
        let opened = open_all(&rows, master)?;
        Ok(opened
            .into_iter()
            .map(|(row, secret)| StoredUpstreamKey {
                updated_at: row.updated_at,
                provider: row.provider,
                status: row.status,
                key: UpstreamKeyConfig {
                    id: row.id,
                    secret,
                    rpm: row.rpm,
                    tpm: row.tpm,
                    daily_budget: row.daily_budget,
                    region: row.region,
                    weight: row.weight,
                    tier: row.tier,
                },
            })
            .collect())
    }

    /// Changes a stored key's limits, attributes or secret as `update` says, in one
    /// transaction; the result is checked like a new key. A new secret is sealed under
    /// `master`, which must be the one the table's other keys are sealed under.
    pub async fn update_upstream_key(
        &self,
        id: &str,
        update: &UpstreamKeyUpdate,
        master: &MasterKey,
    ) -> Result<UpstreamKeyRow, StoreError> {
        let select = format!("SELECT {COLUMNS} FROM upstream_keys WHERE id = $1");
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Bumping first takes the table's write lock before the read.
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let row: StoredRow = sqlx::query_as(&select)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found(id))?;
            let mut r = row_meta(&row)?;
            fn set<T: Clone>(target: &mut T, value: &Option<T>) {
                if let Some(v) = value {
                    *target = v.clone();
                }
            }
            set(&mut r.rpm, &update.rpm);
            set(&mut r.tpm, &update.tpm);
            set(&mut r.daily_budget, &update.daily_budget);
            set(&mut r.region, &update.region);
            set(&mut r.weight, &update.weight);
            set(&mut r.tier, &update.tier);
            let checked = NewUpstreamKey {
                id: r.id.clone(),
                provider: r.provider.clone(),
                secret: update
                    .secret
                    .clone()
                    .unwrap_or_else(|| Secret::new("unchanged")),
                rpm: r.rpm,
                tpm: r.tpm,
                daily_budget: r.daily_budget,
                region: r.region.clone(),
                weight: r.weight,
                tier: r.tier.clone(),
            };
            checked.validate().map_err(StoreError::Invalid)?;
            let budget = r
                .daily_budget
                .map(budget_nanos)
                .transpose()
                .map_err(StoreError::Invalid)?;
            let now = now_ms();
            sqlx::query(
                "UPDATE upstream_keys SET rpm = $1, tpm = $2, daily_budget_nanos = $3, region = $4, weight = $5, tier = $6, updated_at = $7 WHERE id = $8",
            )
            .bind(r.rpm.map(i64::from))
            .bind(r.tpm.map(i64::from))
            .bind(budget)
            .bind(&r.region)
            .bind(i64::from(r.weight))
            .bind(&r.tier)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some(secret) = &update.secret {
                let sealed = master.encrypt(secret.expose());
                let other: Option<String> = sqlx::query_scalar(
                    "SELECT key_fingerprint FROM upstream_keys WHERE key_fingerprint <> $1 AND id <> $2 LIMIT 1",
                )
                .bind(&sealed.key_fingerprint)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(other) = other {
                    return Err(StoreError::Invalid(format!(
                        "the stored upstream keys are sealed under master key {other}, but this master key is {}: set TOLLGATE_MASTER_KEY to the gateways' master key",
                        sealed.key_fingerprint
                    )));
                }
                sqlx::query(
                    "UPDATE upstream_keys SET nonce = $1, ciphertext = $2, key_fingerprint = $3, masked = $4 WHERE id = $5",
                )
                .bind(BASE64.encode(&sealed.nonce))
                .bind(BASE64.encode(&sealed.ciphertext))
                .bind(&sealed.key_fingerprint)
                .bind(secrets::mask(secret.expose()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.list_upstream_key_rows()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| not_found(id))
    }

    /// Every upstream key's metadata (no secret), oldest first: for listings.
    pub async fn list_upstream_key_rows(&self) -> Result<Vec<UpstreamKeyRow>, StoreError> {
        self.fetch_upstream_rows()
            .await?
            .iter()
            .map(row_meta)
            .collect()
    }

    async fn fetch_upstream_rows(&self) -> Result<Vec<StoredRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM upstream_keys ORDER BY created_at, id");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// Enables or disables a key. Enabling is also how an operator returns a key to
    /// rotation after the upstream refused it (401/403 marks it invalid in the pools
    /// only), so it always stamps the row and bumps the revision; disabling a disabled
    /// key changes nothing (and does not bump the revision).
    pub async fn set_upstream_key_status(
        &self,
        id: &str,
        status: UpstreamKeyStatus,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let done = sqlx::query(
                "UPDATE upstream_keys SET status = $1, updated_at = $2 WHERE id = $3 AND (status <> $1 OR $1 = 'enabled')",
            )
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                // Unchanged: the transaction (and its bump) is rolled back.
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM upstream_keys WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                return match exists {
                    Some(_) => Ok(()),
                    None => Err(not_found(id)),
                };
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes a key for good.
    pub async fn delete_upstream_key(&self, id: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM upstream_keys WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(not_found(id));
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The change counter of the upstream key table.
    pub async fn upstream_keys_revision(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT value FROM revisions WHERE name = 'upstream_keys'")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Re-encrypts every row from `old` to `new` in one transaction; answers how many
    /// rows. If any row cannot be opened with `old`, nothing changes and the error
    /// names every such id.
    ///
    /// The revision is deliberately not bumped: the set of keys and their plaintexts
    /// are unchanged, and gateways still holding `old` could not reload them anyway.
    pub async fn reencrypt_upstream_keys(
        &self,
        old: &MasterKey,
        new: &MasterKey,
    ) -> Result<usize, StoreError> {
        let select = format!("SELECT {COLUMNS} FROM upstream_keys");
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Take the table's write lock first (see BUMP_REVISION) without changing
            // the counter, so no other writer slips in between the read and the
            // updates (SQLite cannot upgrade a read transaction once another
            // committed; on PostgreSQL every writer waits for this row).
            sqlx::query("UPDATE revisions SET value = value WHERE name = 'upstream_keys'")
                .execute(&mut *tx)
                .await?;
            let rows: Vec<StoredRow> = sqlx::query_as(&select).fetch_all(&mut *tx).await?;
            let opened = open_all(&rows, old)?;
            let now = now_ms();
            for (row, secret) in &opened {
                let sealed = new.encrypt(secret.expose());
                sqlx::query(
                    "UPDATE upstream_keys SET nonce = $1, ciphertext = $2, key_fingerprint = $3, updated_at = $4 WHERE id = $5",
                )
                .bind(BASE64.encode(&sealed.nonce))
                .bind(BASE64.encode(&sealed.ciphertext))
                .bind(&sealed.key_fingerprint)
                .bind(now)
                .bind(&row.id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(opened.len())
        })
    }
}

#[cfg(test)]
mod tests;
