//! Client key rows: every field of SPEC §4. The secret is stored only as its SHA-256;
//! an HMAC signing secret only sealed under the master key. Every change bumps
//! `revisions.client_keys` in its own transaction, so running gateways reload.

use crate::admission::hmac::HmacSecret;
use crate::admission::policy::{endpoint_path, ENDPOINTS};
use crate::admission::{Cidr, KeyPolicy};
use crate::secrets::MasterKey;

use super::sql::Sql;
use super::{now_ms, with_pool, Store, StoreError};

/// Longest accepted key name, owner or team, in characters.
const MAX_TEXT_CHARS: usize = 200;
/// Longest accepted tier, region or upstream key id, in characters.
const MAX_LABEL_CHARS: usize = 64;
/// Longest accepted model name in a key's allow-list, in characters.
const MAX_MODEL_CHARS: usize = 200;
/// Largest accepted budget, in currency units (stored elsewhere as i64 nano-units).
const MAX_BUDGET: f64 = 9.0e9;

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
    /// Public id (`key_…`).
    pub id: String,
    /// What the key is for.
    pub name: String,
    /// The user the key belongs to.
    pub owner: Option<String>,
    /// The team the key belongs to.
    pub team: Option<String>,
    /// The tier whose models and limits apply.
    pub tier: String,
    /// `live` or `test`, shown in the key's prefix.
    pub env: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The secret, masked for display.
    pub masked: String,
    /// Active, suspended or revoked.
    pub status: KeyStatus,
    /// Unix milliseconds after which the key is refused.
    pub expires_at: Option<i64>,
    /// The upstream key only this client uses.
    pub dedicated_upstream: Option<String>,
    /// The upstream key region this client prefers.
    pub region: Option<String>,
    /// Permissions, limits, budgets, IP and origin rules.
    pub policy: KeyPolicy,
    /// Free-form JSON object kept with the key.
    pub metadata: serde_json::Value,
    /// The HMAC signing secret, sealed (see [`HmacSecret::seal`]); `None`: requests
    /// need no signature.
    pub hmac_secret: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// What is needed to insert a client key.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Public id (`key_…`), see `auth::secret::new_key_id`.
    pub id: String,
    /// What the key is for (not empty).
    pub name: String,
    /// The user the key belongs to.
    pub owner: Option<String>,
    /// The team the key belongs to.
    pub team: Option<String>,
    /// The tier whose models and limits apply.
    pub tier: String,
    /// `live` or `test`.
    pub env: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The secret, masked for display.
    pub masked: String,
    /// Unix milliseconds after which the key is refused.
    pub expires_at: Option<i64>,
    /// The upstream key only this client uses.
    pub dedicated_upstream: Option<String>,
    /// The upstream key region this client prefers.
    pub region: Option<String>,
    /// Permissions, limits, budgets, IP and origin rules.
    pub policy: KeyPolicy,
    /// The HMAC signing secret, already sealed with [`HmacSecret::seal`]; plaintext
    /// is refused.
    pub hmac_secret: Option<String>,
}

impl NewKey {
    /// Checks every field; the message names the field and says what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        check_text("name", &self.name)?;
        if let Some(owner) = &self.owner {
            check_text("owner", owner)?;
        }
        if let Some(team) = &self.team {
            check_text("team", team)?;
        }
        check_label("tier", &self.tier)?;
        if !matches!(self.env.as_str(), "live" | "test") {
            return Err(format!("env {:?} is not valid: use live or test", self.env));
        }
        if crate::auth::secret::parse_hash_hex(&self.secret_hash).is_none() {
            return Err("secret_hash must be the 64 hex digits of the secret's SHA-256".to_owned());
        }
        if let Some(upstream) = &self.dedicated_upstream {
            check_label("dedicated_upstream", upstream)?;
        }
        if let Some(region) = &self.region {
            check_label("region", region)?;
        }
        if let Some(sealed) = &self.hmac_secret {
            check_sealed(sealed)?;
        }
        check_policy(&self.policy)
    }
}

/// A change to a key's policy: each `None` leaves that part as it is; `Some(None)`
/// clears an optional part (back to "the tier's value" for limits, "no cap" or
/// "every model/endpoint" for permissions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyPatch {
    /// Model names or aliases the key may ask for.
    pub models: Option<Option<Vec<String>>>,
    /// Client routes the key may call (paths, e.g. `/v1/chat/completions`).
    pub endpoints: Option<Option<Vec<String>>>,
    /// The largest `max_tokens` a call may ask for.
    pub max_tokens: Option<Option<u64>>,
    /// Whether streaming is allowed.
    pub streaming: Option<bool>,
    /// Whether tool calls are allowed.
    pub tools: Option<bool>,
    /// Whether image inputs are allowed.
    pub vision: Option<bool>,
    /// Requests per minute.
    pub rpm: Option<Option<u64>>,
    /// Requests per hour.
    pub rph: Option<Option<u64>>,
    /// Requests per day.
    pub rpd: Option<Option<u64>>,
    /// Tokens per minute.
    pub tpm: Option<Option<u64>>,
    /// Tokens per day.
    pub tpd: Option<Option<u64>>,
    /// Tokens per calendar month.
    pub tokens_per_month: Option<Option<u64>>,
    /// Daily budget in the configured currency.
    pub daily_budget: Option<Option<f64>>,
    /// Monthly budget in the configured currency.
    pub monthly_budget: Option<Option<f64>>,
    /// Networks the key may be used from (replaces the list; empty: anywhere).
    pub ip_allowlist: Option<Vec<Cidr>>,
    /// Browser origins the key may be used from (replaces the list).
    pub cors_origins: Option<Vec<String>>,
}

impl PolicyPatch {
    /// A patch that replaces every part of the policy with `policy`'s.
    pub fn replacing(policy: &KeyPolicy) -> PolicyPatch {
        let p = &policy.permissions;
        let l = &policy.limits;
        PolicyPatch {
            models: Some(p.models.clone()),
            endpoints: Some(p.endpoints.clone()),
            max_tokens: Some(p.max_tokens),
            streaming: Some(p.streaming),
            tools: Some(p.tools),
            vision: Some(p.vision),
            rpm: Some(l.rpm),
            rph: Some(l.rph),
            rpd: Some(l.rpd),
            tpm: Some(l.tpm),
            tpd: Some(l.tpd),
            tokens_per_month: Some(l.tokens_per_month),
            daily_budget: Some(policy.budgets.daily),
            monthly_budget: Some(policy.budgets.monthly),
            ip_allowlist: Some(policy.ip_allowlist.clone()),
            cors_origins: Some(policy.cors_origins.clone()),
        }
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == PolicyPatch::default()
    }

    /// Applies the patch to `policy`.
    pub fn apply(&self, policy: &mut KeyPolicy) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        let p = &mut policy.permissions;
        set(&mut p.models, &self.models);
        set(&mut p.endpoints, &self.endpoints);
        set(&mut p.max_tokens, &self.max_tokens);
        set(&mut p.streaming, &self.streaming);
        set(&mut p.tools, &self.tools);
        set(&mut p.vision, &self.vision);
        let l = &mut policy.limits;
        set(&mut l.rpm, &self.rpm);
        set(&mut l.rph, &self.rph);
        set(&mut l.rpd, &self.rpd);
        set(&mut l.tpm, &self.tpm);
        set(&mut l.tpd, &self.tpd);
        set(&mut l.tokens_per_month, &self.tokens_per_month);
        set(&mut policy.budgets.daily, &self.daily_budget);
        set(&mut policy.budgets.monthly, &self.monthly_budget);
        set(&mut policy.ip_allowlist, &self.ip_allowlist);
        set(&mut policy.cors_origins, &self.cors_origins);
    }
}

/// A change to a key: each `None` leaves that field as it is; `Some(None)` clears an
/// optional field. Status has its own operation ([`Store::set_key_status`]), the
/// secret too ([`Store::regenerate_key`]).
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New owner, or none.
    pub owner: Option<Option<String>>,
    /// New team, or none.
    pub team: Option<Option<String>>,
    /// New tier.
    pub tier: Option<String>,
    /// New expiry (Unix milliseconds), or never.
    pub expires_at: Option<Option<i64>>,
    /// New dedicated upstream key id, or none.
    pub dedicated_upstream: Option<Option<String>>,
    /// New preferred region, or none.
    pub region: Option<Option<String>>,
    /// New metadata (a JSON object; replaces the old one).
    pub metadata: Option<serde_json::Value>,
    /// Changes to the policy.
    pub policy: PolicyPatch,
}

impl KeyUpdate {
    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.owner.is_none()
            && self.team.is_none()
            && self.tier.is_none()
            && self.expires_at.is_none()
            && self.dedicated_upstream.is_none()
            && self.region.is_none()
            && self.metadata.is_none()
            && self.policy.is_empty()
    }

    /// Applies the update to a record (in memory).
    fn apply(&self, r: &mut KeyRecord) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        set(&mut r.name, &self.name);
        set(&mut r.owner, &self.owner);
        set(&mut r.team, &self.team);
        set(&mut r.tier, &self.tier);
        set(&mut r.expires_at, &self.expires_at);
        set(&mut r.dedicated_upstream, &self.dedicated_upstream);
        set(&mut r.region, &self.region);
        set(&mut r.metadata, &self.metadata);
        self.policy.apply(&mut r.policy);
    }
}

/// Checks a policy as it will be stored: every list non-empty when present, every
/// limit and budget positive when present, every endpoint a client route, every
/// origin a browser origin. The message names the part and says what is allowed.
pub fn check_policy(policy: &KeyPolicy) -> Result<(), String> {
    let p = &policy.permissions;
    if let Some(models) = &p.models {
        if models.is_empty() {
            return Err(
                "permissions.models is an empty list, so the key could call no model: name at least one model, or leave it unset for every model of the tier"
                    .to_owned(),
            );
        }
        for m in models {
            if m.trim().is_empty() || m.trim() != m || m.chars().count() > MAX_MODEL_CHARS {
                return Err(format!(
                    "permissions.models: {m:?} is not a model name (1 to {MAX_MODEL_CHARS} characters, no surrounding spaces)"
                ));
            }
        }
    }
    if let Some(endpoints) = &p.endpoints {
        if endpoints.is_empty() {
            return Err(
                "permissions.endpoints is an empty list, so the key could call nothing: name at least one endpoint, or leave it unset for all"
                    .to_owned(),
            );
        }
        for e in endpoints {
            if endpoint_path(e).is_none() {
                return Err(format!(
                    "permissions.endpoints: {e:?} is not a client endpoint; use one of {}",
                    endpoint_names()
                ));
            }
        }
    }
    if p.max_tokens == Some(0) {
        return Err(
            "permissions.max_tokens is 0: give a positive cap, or leave it unset for none"
                .to_owned(),
        );
    }
    let l = &policy.limits;
    for (field, value) in [
        ("rpm", l.rpm),
        ("rph", l.rph),
        ("rpd", l.rpd),
        ("tpm", l.tpm),
        ("tpd", l.tpd),
        ("tokens_per_month", l.tokens_per_month),
    ] {
        if value == Some(0) {
            return Err(format!(
                "limits.{field} is 0: give a positive limit, or leave it unset for the tier's value"
            ));
        }
    }
    for (field, value) in [
        ("daily", policy.budgets.daily),
        ("monthly", policy.budgets.monthly),
    ] {
        if let Some(v) = value {
            if !v.is_finite() || v <= 0.0 || v >= MAX_BUDGET {
                return Err(format!(
                    "budgets.{field} is {v}: give a positive amount below {MAX_BUDGET:.0}, or leave it unset for none"
                ));
            }
        }
    }
    for origin in &policy.cors_origins {
        check_origin(origin).map_err(|e| format!("cors_origins: {e}"))?;
    }
    Ok(())
}

/// The endpoint names and paths a key can be limited to, for messages.
pub fn endpoint_names() -> String {
    ENDPOINTS
        .iter()
        .map(|(short, path)| format!("{short} ({path})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a CORS origin: `*`, or `http(s)://host[:port]` with no path, query or
/// fragment (one trailing `/` is tolerated); answers it without the trailing `/`.
pub fn check_origin(origin: &str) -> Result<String, String> {
    if origin == "*" {
        return Ok(origin.to_owned());
    }
    let trimmed = origin.strip_suffix('/').unwrap_or(origin);
    let host = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let valid = host.is_some_and(|h| {
        !h.is_empty()
            && !h
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
    });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(format!(
            "{origin:?} is not a browser origin: write scheme and host (and port), e.g. https://app.example.com or http://localhost:3000, or * for any"
        ))
    }
}

/// A network in a key's IP allow-list: a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a
/// single address. Shared by the CLI's `--ip` and the admin API's `ip_allowlist`.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    text.trim().parse::<Cidr>().map_err(|_| {
        "not a CIDR: write a network range such as 10.0.0.0/8 or 2001:db8::/32 (prefix at most /32 for IPv4, /128 for IPv6), or a single address".to_owned()
    })
}

/// The route path for an endpoint a key may be limited to, by short name (`chat`) or
/// path (`/v1/chat/completions`). Shared by the CLI's `--endpoints` and the admin API.
pub fn parse_endpoint(name: &str) -> Result<&'static str, String> {
    endpoint_path(name.trim())
        .ok_or_else(|| format!("not a client endpoint; use one of {}", endpoint_names()))
}

/// The list without repeats, first occurrence first.
pub fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// A key's expiry as people write it: a duration from `now` (`30d`, `12h`, `90m`,
/// `45s`, `2w`), an RFC 3339 time, or a date (00:00 UTC); answers Unix milliseconds,
/// refusing the past. Shared by the CLI's `--expires` and the admin API's
/// `expires_at`.
pub fn parse_expiry(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    const HOW: &str = "write a duration from now such as 30d, 12h, 90m or 2w, or a time such as 2030-01-31T00:00:00Z (RFC 3339) or a date 2030-01-31";
    let s = s.trim();
    let at = if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let digits = &s[..s.len() - unit.len_utf8()];
        let seconds_per = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => 0,
        };
        let n: Option<i64> = digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0 && digits.bytes().all(|b| b.is_ascii_digit()));
        match (seconds_per, n) {
            (0, _) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => None,
            (0, _) => return Err(format!("unknown unit; {HOW}")),
            (_, None) => {
                return Err(format!(
                    "the duration must be a positive whole number and a unit; {HOW}"
                ))
            }
            (per, Some(n)) => Some(
                n.checked_mul(per)
                    .and_then(chrono::TimeDelta::try_seconds)
                    .and_then(|d| now.checked_add_signed(d))
                    .ok_or_else(|| format!("the duration is too long; {HOW}"))?,
            ),
        }
    } else {
        None
    };
    let at = match at {
        Some(at) => at,
        None => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                t.with_timezone(&chrono::Utc)
            } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                d.and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc())
                    .ok_or_else(|| format!("not a time; {HOW}"))?
            } else {
                return Err(format!("not a duration or a time; {HOW}"));
            }
        }
    };
    if at <= now {
        return Err(format!(
            "that is in the past (it is now {}): give a future time, or a duration such as 30d",
            now.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    Ok(at.timestamp_millis())
}

/// Names, owners and teams: 1–200 characters, no control characters, no spaces
/// around.
fn check_text(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.trim() != value
        || value.chars().count() > MAX_TEXT_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(format!(
            "{field} {value:?} is not valid: use 1 to {MAX_TEXT_CHARS} characters without control characters or surrounding spaces"
        ));
    }
    Ok(())
}

/// Tiers, regions and upstream key ids: 1–64 of `[A-Za-z0-9_.-]`.
fn check_label(field: &str, value: &str) -> Result<(), String> {
    let valid_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if value.is_empty() || value.chars().count() > MAX_LABEL_CHARS || !valid_chars {
        return Err(format!(
            "{field} {value:?} is not valid: use 1 to {MAX_LABEL_CHARS} of the characters A-Z a-z 0-9 _ . -"
        ));
    }
    Ok(())
}

/// A stored signing secret must be sealed text, never plaintext.
fn check_sealed(text: &str) -> Result<(), String> {
    if HmacSecret::is_sealed_text(text) {
        Ok(())
    } else {
        Err(
            "hmac_secret must be sealed under the master key (HmacSecret::seal), never plaintext"
                .to_owned(),
        )
    }
}

/// Checks the fields of a record about to be written by an update.
fn check_record(r: &KeyRecord) -> Result<(), String> {
    check_text("name", &r.name)?;
    if let Some(owner) = &r.owner {
        check_text("owner", owner)?;
    }
    if let Some(team) = &r.team {
        check_text("team", team)?;
    }
    check_label("tier", &r.tier)?;
    if let Some(upstream) = &r.dedicated_upstream {
        check_label("dedicated_upstream", upstream)?;
    }
    if let Some(region) = &r.region {
        check_label("region", region)?;
    }
    if !r.metadata.is_object() {
        return Err("metadata must be a JSON object, e.g. {\"project\": \"x\"}".to_owned());
    }
    check_policy(&r.policy)
}

/// Which keys a listing shows; every `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Exactly this owner.
    pub owner: Option<String>,
    /// Exactly this status.
    pub status: Option<KeyStatus>,
    /// Exactly this tier.
    pub tier: Option<String>,
    /// A piece of the id, name, owner, team or masked key (case-insensitive).
    pub query: Option<String>,
}

/// An owner seen on keys, with how many keys they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerKeys {
    /// The owner (user id).
    pub owner: String,
    /// Keys of every status.
    pub keys: i64,
    /// Active keys.
    pub active_keys: i64,
}

impl KeyStatus {
    /// The status named `s` (`active`, `suspended`, `revoked`), for filters.
    pub fn from_name(s: &str) -> Option<KeyStatus> {
        KeyStatus::parse(s).ok()
    }
}

const COLUMNS: &str = "id, name, owner, team, tier, env, secret_hash, masked, status, expires_at, dedicated_upstream, region, policy, metadata, hmac_secret, created_at, updated_at";

/// Bumps the client keys' change counter. Every write transaction runs it first: it
/// takes SQLite's write lock, or on PostgreSQL this row's lock, so the table's
/// writers run one at a time (and a read-then-write sees the latest row).
const BUMP_REVISION: &str = "UPDATE revisions SET value = value + 1 WHERE name = 'client_keys'";

/// A `client_keys` row as stored.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    owner: Option<String>,
    team: Option<String>,
    tier: String,
    env: String,
    secret_hash: String,
    masked: String,
    status: String,
    expires_at: Option<i64>,
    dedicated_upstream: Option<String>,
    region: Option<String>,
    policy: String,
    metadata: String,
    hmac_secret: Option<String>,
    created_at: i64,
    updated_at: i64,
}

fn record(row: KeyRow) -> Result<KeyRecord, StoreError> {
    let id = row.id;
    let metadata = if row.metadata.trim().is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str(&row.metadata)
            .map_err(|e| StoreError::Corrupt(format!("client key {id}: metadata: {e}")))?
    };
    Ok(KeyRecord {
        name: row.name,
        owner: row.owner,
        team: row.team,
        tier: row.tier,
        env: row.env,
        secret_hash: row.secret_hash,
        masked: row.masked,
        status: KeyStatus::parse(&row.status)?,
        expires_at: row.expires_at,
        dedicated_upstream: row.dedicated_upstream,
        region: row.region,
        policy: KeyPolicy::from_json(&row.policy)
            .map_err(|e| StoreError::Corrupt(format!("client key {id}: policy: {e}")))?,
        metadata,
        hmac_secret: row.hmac_secret,
        created_at: row.created_at,
        updated_at: row.updated_at,
        id,
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "client key",
        id: id.to_owned(),
    }
}

fn revoked(id: &str) -> StoreError {
    StoreError::Invalid(format!(
        "client key {id} is revoked, which is for good: create a new key instead"
    ))
}

/// The error for a write that hit a unique constraint: the secret's hash (any other
/// key has it) or else the id.
fn unique_error(e: sqlx::Error, id: &str) -> StoreError {
    match e {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            if e.message().contains("secret_hash")
                || e.constraint().is_some_and(|c| c.contains("secret_hash"))
            {
                StoreError::Invalid(
                    "a key with this secret exists already: generate a new secret".to_owned(),
                )
            } else {
                StoreError::Duplicate {
                    what: "client key",
                    id: id.to_owned(),
                }
            }
        }
        e => e.into(),
    }
}

/// Why a key could not be changed when no row matched: it is revoked, or missing.
fn unchanged(status: Option<String>, id: &str) -> StoreError {
    match status {
        Some(_) => revoked(id),
        None => not_found(id),
    }
}

impl Store {
    /// Inserts a new active key, after [`NewKey::validate`].
    pub async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        key.validate().map_err(StoreError::Invalid)?;
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO client_keys (id, name, owner, team, tier, env, secret_hash, masked, status, expires_at, dedicated_upstream, region, policy, hmac_secret, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $12, $13, $14, $14)",
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
            .bind(key.policy.to_json())
            .bind(&key.hmac_secret)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_error(e, &key.id))?;
            tx.commit().await?;
        });
        self.find_key(&key.id).await
    }

    /// Every key, newest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM client_keys ORDER BY created_at DESC, id");
        let rows: Vec<KeyRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(record).collect()
    }

    /// Up to `limit` keys matching `filter`, newest first (then by id), starting
    /// after the key `after` = (created_at, id) of the previous page.
    pub async fn list_keys_page(
        &self,
        filter: &KeyFilter,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let mut q = Sql::new(format!("SELECT {COLUMNS} FROM client_keys WHERE 1 = 1"));
        if let Some(owner) = &filter.owner {
            q.push(" AND owner = ").push_bind(owner.as_str());
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(tier) = &filter.tier {
            q.push(" AND tier = ").push_bind(tier.as_str());
        }
        if let Some(text) = filter.query.as_deref().filter(|t| !t.is_empty()) {
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            q.push(" AND (");
            for (i, column) in ["id", "name", "owner", "team", "masked"].iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push(format!("lower({column}) LIKE "))
                    .push_bind(pattern.as_str())
                    .push(" ESCAPE '\\'");
            }
            q.push(")");
        }
        if let Some((created_at, id)) = after {
            q.push(" AND (created_at < ")
                .push_bind(created_at)
                .push(" OR (created_at = ")
                .push_bind(created_at)
                .push(" AND id > ")
                .push_bind(id)
                .push("))");
        }
        q.push(" ORDER BY created_at DESC, id LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows: Vec<KeyRow> = with_pool!(self, pool => {
            sqlx::query_as_with(q.text(), q.arguments(pool)?)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(record).collect()
    }

    /// Every owner named on a key, with their key counts, by owner.
    pub async fn owners_with_key_counts(&self) -> Result<Vec<OwnerKeys>, StoreError> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT owner, COUNT(*), CAST(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END) AS BIGINT)
                 FROM client_keys WHERE owner IS NOT NULL GROUP BY owner ORDER BY owner",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(owner, keys, active_keys)| OwnerKeys {
                owner,
                keys,
                active_keys,
            })
            .collect())
    }

    /// One key by id.
    pub async fn find_key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM client_keys WHERE id = $1");
        let row: Option<KeyRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        record(row.ok_or_else(|| not_found(id))?)
    }

    /// Changes a key's fields and policy as `update` says, in one transaction (the
    /// current row is read under the write lock, so concurrent updates of different
    /// fields do not undo each other). The result is checked like a new key.
    pub async fn update_key(&self, id: &str, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM client_keys WHERE id = $1");
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Bumping first takes the write lock before the read.
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let row: KeyRow = sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found(id))?;
            let mut r = record(row)?;
            update.apply(&mut r);
            check_record(&r).map_err(StoreError::Invalid)?;
            sqlx::query(
                "UPDATE client_keys SET name = $1, owner = $2, team = $3, tier = $4, expires_at = $5, dedicated_upstream = $6, region = $7, policy = $8, metadata = $9, updated_at = $10 WHERE id = $11",
            )
            .bind(&r.name)
            .bind(&r.owner)
            .bind(&r.team)
            .bind(&r.tier)
            .bind(r.expires_at)
            .bind(&r.dedicated_upstream)
            .bind(&r.region)
            .bind(r.policy.to_json())
            .bind(r.metadata.to_string())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.find_key(id).await
    }

    /// Gives a key a new secret (its hash and masked form); id, fields and usage
    /// history stay. The old secret stops working as soon as gateways reload. A
    /// revoked key is refused.
    pub async fn regenerate_key(
        &self,
        id: &str,
        secret_hash: &str,
        masked: &str,
    ) -> Result<KeyRecord, StoreError> {
        if crate::auth::secret::parse_hash_hex(secret_hash).is_none() {
            return Err(StoreError::Invalid(
                "secret_hash must be the 64 hex digits of the secret's SHA-256".to_owned(),
            ));
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let done = sqlx::query(
                "UPDATE client_keys SET secret_hash = $1, masked = $2, updated_at = $3 WHERE id = $4 AND status <> 'revoked'",
            )
            .bind(secret_hash)
            .bind(masked)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_error(e, id))?;
            if done.rows_affected() == 0 {
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM client_keys WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                return Err(unchanged(status, id));
            }
            tx.commit().await?;
        });
        self.find_key(id).await
    }

    /// Sets a key's status (suspend, resume, revoke). Revocation is for good: a
    /// revoked key cannot be made active or suspended again.
    pub async fn set_key_status(
        &self,
        id: &str,
        status: KeyStatus,
    ) -> Result<KeyRecord, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let done = sqlx::query(
                "UPDATE client_keys SET status = $1, updated_at = $2 WHERE id = $3 AND (status <> 'revoked' OR $1 = 'revoked')",
            )
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM client_keys WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                return Err(unchanged(status, id));
            }
            tx.commit().await?;
        });
        self.find_key(id).await
    }

    /// Removes a key for good; its usage rows stay (they name it by id).
    pub async fn delete_key(&self, id: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM client_keys WHERE id = $1")
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

    /// Re-seals every key's HMAC signing secret from `old` to `new` master key in one
    /// transaction (for `admin rotate-master-key`); answers how many. If any secret
    /// cannot be opened with `old`, nothing changes and the error names every such key
    /// (never a secret).
    ///
    /// The revision is not bumped, as for upstream keys: the keys and their secrets
    /// are unchanged, and gateways still holding `old` could not open them anyway.
    pub async fn reencrypt_hmac_secrets(
        &self,
        old: &MasterKey,
        new: &MasterKey,
    ) -> Result<usize, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Take the table's write lock before reading (see BUMP_REVISION), without
            // changing the counter: no key can be added or changed meanwhile.
            sqlx::query("UPDATE revisions SET value = value WHERE name = 'client_keys'")
                .execute(&mut *tx)
                .await?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, hmac_secret FROM client_keys WHERE hmac_secret IS NOT NULL ORDER BY id",
            )
            .fetch_all(&mut *tx)
            .await?;
            let resealed = reseal_hmac_secrets(rows, old, new)?;
            let now = now_ms();
            for (id, sealed) in &resealed {
                sqlx::query("UPDATE client_keys SET hmac_secret = $1, updated_at = $2 WHERE id = $3")
                    .bind(sealed)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(resealed.len())
        })
    }

    /// The change counter of the client key table.
    pub async fn keys_revision(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT value FROM revisions WHERE name = 'client_keys'")
                .fetch_one(pool)
                .await?
        }))
    }
}

/// Opens every `(id, sealed)` signing secret with `old` and seals it with `new`; if
/// any cannot be opened, the error names every such key (never a secret).
fn reseal_hmac_secrets(
    rows: Vec<(String, String)>,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut resealed = Vec::with_capacity(rows.len());
    let mut failed: Vec<String> = Vec::new();
    let mut reason = String::new();
    for (id, sealed) in rows {
        match HmacSecret::open(&sealed, old) {
            Ok(secret) => resealed.push((id, secret.seal(new))),
            Err(e) => {
                if failed.is_empty() {
                    reason = e.to_string();
                }
                failed.push(id);
            }
        }
    }
    if failed.is_empty() {
        Ok(resealed)
    } else {
        Err(StoreError::Invalid(format!(
            "the HMAC signing secret(s) of client key(s) {} cannot be decrypted with the current master key (fingerprint {}): {reason}",
            failed.join(", "),
            old.fingerprint()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::secret;
    use crate::store::testing::on_both_backends;

    on_both_backends!(
        every_field_is_stored_and_read_back,
        invalid_new_keys_are_refused_naming_the_field,
        update_patches_only_what_it_names_and_bumps_the_revision,
        regenerate_status_and_delete,
        hmac_secrets_are_resealed_under_a_new_master_key_or_not_at_all,
        concurrent_writers_take_turns_and_lose_no_update,
        pages_filter_search_and_continue_after_a_key,
    );

    fn new_key(id: &str) -> NewKey {
        let s = secret::generate("live");
        NewKey {
            id: id.to_owned(),
            name: "ci".to_owned(),
            owner: Some("alice".to_owned()),
            team: None,
            tier: "standard".to_owned(),
            env: "live".to_owned(),
            secret_hash: secret::hash_hex(&secret::hash(&s)),
            masked: secret::mask(&s),
            expires_at: None,
            dedicated_upstream: None,
            region: None,
            policy: KeyPolicy::default(),
            hmac_secret: None,
        }
    }

    async fn every_field_is_stored_and_read_back(store: Store) {
        let master = MasterKey::generate();
        let hmac = HmacSecret::generate();
        let mut key = new_key("key_a");
        key.team = Some("ml".into());
        key.expires_at = Some(4_000_000_000_000);
        key.dedicated_upstream = Some("oa-1".into());
        key.region = Some("eu".into());
        key.policy.limits.rpm = Some(7);
        key.policy.permissions.endpoints = Some(vec!["/v1/embeddings".into()]);
        key.policy.ip_allowlist = vec!["10.0.0.0/8".parse().expect("cidr")];
        key.hmac_secret = Some(hmac.seal(&master));
        let r = store.insert_key(&key).await.expect("insert");
        assert_eq!(store.keys_revision().await.expect("rev"), 1);
        assert_eq!(r.policy, key.policy);
        assert_eq!(
            (r.team.as_deref(), r.region.as_deref()),
            (Some("ml"), Some("eu"))
        );
        assert_eq!(r.expires_at, Some(4_000_000_000_000));
        assert_eq!(r.metadata, serde_json::json!({}));
        let sealed = r.hmac_secret.expect("sealed");
        assert!(!sealed.contains(hmac.expose()));
        assert_eq!(HmacSecret::open(&sealed, &master).expect("opens"), hmac);

        let same_secret = store
            .insert_key(&NewKey {
                id: "key_b".into(),
                ..key.clone()
            })
            .await;
        assert!(
            matches!(same_secret, Err(StoreError::Invalid(_))),
            "{same_secret:?}"
        );
        let same_id = NewKey {
            secret_hash: new_key("x").secret_hash,
            ..key
        };
        let dup = store.insert_key(&same_id).await;
        assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    }

    async fn invalid_new_keys_are_refused_naming_the_field(store: Store) {
        let mut plain = new_key("key_p");
        plain.hmac_secret = Some("tg_hmac_plaintext".into());
        let mut zero = new_key("key_z");
        zero.policy.limits.tpm = Some(0);
        let mut endpoint = new_key("key_e");
        endpoint.policy.permissions.endpoints = Some(vec!["files".into()]);
        let mut origin = new_key("key_o");
        origin.policy.cors_origins = vec!["app.example.com".into()];
        let mut tier = new_key("key_t");
        tier.tier = "gold tier".into();
        for (key, expected) in [
            (plain, "hmac_secret"),
            (zero, "limits.tpm"),
            (endpoint, "chat (/v1/chat/completions)"),
            (origin, "not a browser origin"),
            (tier, "tier"),
        ] {
            match store.insert_key(&key).await {
                Err(StoreError::Invalid(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("{expected}: {other:?}"),
            }
        }
        assert_eq!(store.keys_revision().await.expect("rev"), 0);
    }

    async fn update_patches_only_what_it_names_and_bumps_the_revision(store: Store) {
        let mut key = new_key("key_u");
        key.policy.limits.rpm = Some(5);
        key.policy.limits.tpm = Some(1000);
        key.region = Some("us".into());
        store.insert_key(&key).await.expect("insert");
        let update = KeyUpdate {
            name: Some("renamed".into()),
            region: Some(None),
            metadata: Some(serde_json::json!({"project": "x"})),
            policy: PolicyPatch {
                rpm: Some(None),
                daily_budget: Some(Some(2.5)),
                streaming: Some(false),
                ..PolicyPatch::default()
            },
            ..KeyUpdate::default()
        };
        assert!(!update.is_empty() && KeyUpdate::default().is_empty());
        let r = store.update_key("key_u", &update).await.expect("update");
        assert_eq!(store.keys_revision().await.expect("rev"), 2);
        assert_eq!(r.name, "renamed");
        assert_eq!(r.owner.as_deref(), Some("alice"));
        assert_eq!(r.region, None);
        assert_eq!(r.metadata["project"], "x");
        assert_eq!(
            (r.policy.limits.rpm, r.policy.limits.tpm),
            (None, Some(1000))
        );
        assert_eq!(r.policy.budgets.daily, Some(2.5));
        assert!(!r.policy.permissions.streaming && r.policy.permissions.tools);

        let bad = KeyUpdate {
            metadata: Some(serde_json::json!([1])),
            ..KeyUpdate::default()
        };
        assert!(matches!(
            store.update_key("key_u", &bad).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.update_key("key_nope", &update).await,
            Err(StoreError::NotFound { .. })
        ));
        // Refused updates leave the revision as it was.
        assert_eq!(store.keys_revision().await.expect("rev"), 2);

        let all = PolicyPatch::replacing(&KeyPolicy::default());
        let r = store
            .update_key(
                "key_u",
                &KeyUpdate {
                    policy: all,
                    ..KeyUpdate::default()
                },
            )
            .await
            .expect("replace");
        assert_eq!(r.policy, KeyPolicy::default());
    }

    async fn regenerate_status_and_delete(store: Store) {
        let before = store.insert_key(&new_key("key_r")).await.expect("insert");
        let s = secret::generate("live");
        let hash = secret::hash_hex(&secret::hash(&s));
        let after = store
            .regenerate_key("key_r", &hash, &secret::mask(&s))
            .await
            .expect("regenerate");
        assert_eq!(
            (after.id.as_str(), after.created_at),
            ("key_r", before.created_at)
        );
        assert_eq!(after.secret_hash, hash);
        assert_ne!(after.masked, before.masked);

        let s = store
            .set_key_status("key_r", KeyStatus::Suspended)
            .await
            .expect("suspend");
        assert_eq!(s.status, KeyStatus::Suspended);
        let s = store
            .set_key_status("key_r", KeyStatus::Active)
            .await
            .expect("resume");
        assert_eq!(s.status, KeyStatus::Active);
        store
            .set_key_status("key_r", KeyStatus::Revoked)
            .await
            .expect("revoke");
        store
            .set_key_status("key_r", KeyStatus::Revoked)
            .await
            .expect("revoke twice");
        let rev = store.keys_revision().await.expect("rev");
        for status in [KeyStatus::Active, KeyStatus::Suspended] {
            match store.set_key_status("key_r", status).await {
                Err(StoreError::Invalid(m)) => assert!(m.contains("revoked"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            store.regenerate_key("key_r", &hash, "x").await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.keys_revision().await.expect("rev"), rev);

        store.delete_key("key_r").await.expect("delete");
        assert_eq!(store.keys_revision().await.expect("rev"), rev + 1);
        for result in [
            store.delete_key("key_r").await.map(|_| ()),
            store.find_key("key_r").await.map(|_| ()),
            store
                .set_key_status("key_r", KeyStatus::Active)
                .await
                .map(|_| ()),
            store.regenerate_key("key_r", &hash, "x").await.map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(StoreError::NotFound { .. })),
                "{result:?}"
            );
        }
    }

    async fn hmac_secrets_are_resealed_under_a_new_master_key_or_not_at_all(store: Store) {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let hmac = HmacSecret::generate();
        let mut key = new_key("key_h");
        key.hmac_secret = Some(hmac.seal(&old));
        store.insert_key(&key).await.expect("insert");
        store
            .insert_key(&new_key("key_plain"))
            .await
            .expect("insert");
        let rev = store.keys_revision().await.expect("rev");

        let err = store
            .reencrypt_hmac_secrets(&new, &old)
            .await
            .expect_err("wrong key")
            .to_string();
        assert!(
            err.contains("key_h") && !err.contains(hmac.expose()),
            "{err}"
        );
        assert_eq!(
            store
                .reencrypt_hmac_secrets(&old, &new)
                .await
                .expect("reseal"),
            1
        );
        let sealed = store
            .find_key("key_h")
            .await
            .expect("find")
            .hmac_secret
            .expect("sealed");
        assert_eq!(HmacSecret::open(&sealed, &new).expect("opens"), hmac);
        assert!(HmacSecret::open(&sealed, &old).is_err());
        assert!(store
            .find_key("key_plain")
            .await
            .expect("find")
            .hmac_secret
            .is_none());
        assert_eq!(store.keys_revision().await.expect("rev"), rev);
    }

    async fn concurrent_writers_take_turns_and_lose_no_update(store: Store) {
        store.insert_key(&new_key("key_c")).await.expect("insert");
        let patch = |policy: PolicyPatch| KeyUpdate {
            policy,
            ..KeyUpdate::default()
        };
        let updates = [
            KeyUpdate {
                name: Some("renamed".into()),
                ..KeyUpdate::default()
            },
            KeyUpdate {
                team: Some(Some("ml".into())),
                ..KeyUpdate::default()
            },
            KeyUpdate {
                region: Some(Some("eu".into())),
                ..KeyUpdate::default()
            },
            KeyUpdate {
                tier: Some("premium".into()),
                ..KeyUpdate::default()
            },
            patch(PolicyPatch {
                rpm: Some(Some(11)),
                ..PolicyPatch::default()
            }),
            patch(PolicyPatch {
                tpm: Some(Some(22)),
                ..PolicyPatch::default()
            }),
            patch(PolicyPatch {
                rpd: Some(Some(33)),
                ..PolicyPatch::default()
            }),
            patch(PolicyPatch {
                streaming: Some(false),
                ..PolicyPatch::default()
            }),
        ];
        let mut tasks = Vec::new();
        for update in updates {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.update_key("key_c", &update).await.map(|_| ())
            }));
        }
        for i in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.insert_key(&new_key(&format!("key_n{i}"))).await?;
                let status = if i % 2 == 0 {
                    KeyStatus::Suspended
                } else {
                    KeyStatus::Active
                };
                store.set_key_status("key_c", status).await.map(|_| ())
            }));
        }
        let n = tasks.len() as i64;
        for task in tasks {
            task.await.expect("joins").expect("no write fails");
        }
        let r = store.find_key("key_c").await.expect("find");
        assert_eq!(
            (
                r.name.as_str(),
                r.team.as_deref(),
                r.region.as_deref(),
                r.tier.as_str()
            ),
            ("renamed", Some("ml"), Some("eu"), "premium")
        );
        let l = &r.policy.limits;
        assert_eq!((l.rpm, l.tpm, l.rpd), (Some(11), Some(22), Some(33)));
        assert!(!r.policy.permissions.streaming);
        // One insert, then one bump per write.
        assert_eq!(store.keys_revision().await.expect("rev"), 1 + n + 4);
        assert_eq!(store.list_keys().await.expect("list").len(), 5);
    }

    async fn pages_filter_search_and_continue_after_a_key(store: Store) {
        let mut a = new_key("key_a");
        a.name = "Billing_Batch".into();
        store.insert_key(&a).await.expect("insert");
        let mut b = new_key("key_b");
        b.owner = Some("bob".into());
        b.tier = "premium".into();
        store.insert_key(&b).await.expect("insert");
        let mut c = new_key("key_c");
        c.name = "billingXbatch".into();
        store.insert_key(&c).await.expect("insert");
        let mut n = new_key("key_n");
        n.owner = None;
        store.insert_key(&n).await.expect("insert");
        store
            .set_key_status("key_c", KeyStatus::Suspended)
            .await
            .expect("suspend");

        let ids = |keys: Vec<KeyRecord>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
        let all = store
            .list_keys_page(&KeyFilter::default(), None, 100)
            .await
            .expect("page");
        assert_eq!(all.len(), 4);
        // Newest first, then by id: paging after each key walks the same order.
        let mut walked = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = store
                .list_keys_page(
                    &KeyFilter::default(),
                    after.as_ref().map(|(t, id)| (*t, id.as_str())),
                    1,
                )
                .await
                .expect("page");
            let Some(last) = page.last() else { break };
            after = Some((last.created_at, last.id.clone()));
            walked.extend(ids(page));
        }
        assert_eq!(walked, ids(all));

        let page = |filter: KeyFilter| {
            let store = store.clone();
            async move {
                ids(store
                    .list_keys_page(&filter, None, 100)
                    .await
                    .expect("page"))
            }
        };
        let mut bob = page(KeyFilter {
            owner: Some("bob".into()),
            ..KeyFilter::default()
        })
        .await;
        bob.sort();
        assert_eq!(bob, ["key_b"]);
        let suspended = page(KeyFilter {
            status: Some(KeyStatus::Suspended),
            ..KeyFilter::default()
        })
        .await;
        assert_eq!(suspended, ["key_c"]);
        let premium = page(KeyFilter {
            tier: Some("premium".into()),
            ..KeyFilter::default()
        })
        .await;
        assert_eq!(premium, ["key_b"]);
        // Case-insensitive; `_` is a character, not a wildcard.
        let found = page(KeyFilter {
            query: Some("LING_b".into()),
            ..KeyFilter::default()
        })
        .await;
        assert_eq!(found, ["key_a"]);
        let mut billing = page(KeyFilter {
            query: Some("billing".into()),
            ..KeyFilter::default()
        })
        .await;
        billing.sort();
        assert_eq!(billing, ["key_a", "key_c"]);

        assert_eq!(
            store.owners_with_key_counts().await.expect("owners"),
            [
                OwnerKeys {
                    owner: "alice".into(),
                    keys: 2,
                    active_keys: 1,
                },
                OwnerKeys {
                    owner: "bob".into(),
                    keys: 1,
                    active_keys: 1,
                },
            ]
        );
    }
}
