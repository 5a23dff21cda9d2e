//! `tollgate keys create|list|show|update|suspend|resume|revoke|regenerate|delete`:
//! client keys (SPEC §4), straight in the database. Running gateways pick a change
//! up within a second. A key's secret, and its HMAC signing secret, are printed once
//! at creation (or regeneration) and never again.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::admission::hmac::HmacSecret;
use crate::admission::{Cidr, KeyPolicy};
use crate::auth::secret;
use crate::config::{process_env, Config, StorageConfig};
use crate::store::{
    check_origin, dedup, parse_expiry, KeyRecord, KeyStatus, KeyUpdate, NewKey, PolicyPatch, Store,
};

/// Longest accepted name, owner or team, in characters (as the store checks).
const MAX_TEXT_CHARS: usize = 200;
/// Longest accepted tier, region or upstream key id, in characters.
const MAX_LABEL_CHARS: usize = 64;

/// `tollgate keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret (and HMAC signing secret with --hmac) is printed once.
    Create(Box<CreateArgs>),
    /// List keys (masked).
    List {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one key (masked) with its permissions, limits, budgets and rules.
    Show {
        /// The key's id (`key_…`).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a key's fields, permissions, limits or budgets; what is not given stays.
    #[command(long_about = UPDATE_HELP)]
    Update(Box<UpdateArgs>),
    /// Refuse a key until it is resumed.
    Suspend {
        /// The key's id.
        id: String,
    },
    /// Accept a suspended key again.
    Resume {
        /// The key's id.
        id: String,
    },
    /// Revoke a key for good (it stays refused, with 403 key_revoked).
    Revoke {
        /// The key's id.
        id: String,
    },
    /// Give a key a new secret, printed once; id, settings and usage history stay,
    /// and the old secret stops working within a second.
    Regenerate {
        /// The key's id.
        id: String,
        /// Print one JSON object with `id` and `key`.
        #[arg(long)]
        json: bool,
    },
    /// Delete a key for good (its usage rows stay).
    Delete {
        /// The key's id.
        id: String,
    },
}

const UPDATE_HELP: &str = "Change a key's fields, permissions, limits or budgets; what is not given stays as it is.

Limits (--rpm --rph --rpd --tpm --tpd --tokens-per-month): 0 removes the key's own limit, so the tier's value applies again.
Budgets (--daily-budget --monthly-budget) and --max-tokens: 0 removes them.
Lists (--models --endpoints --ip --cors-origin) replace the whole list.
--streaming/--tools/--vision allow a feature again; --no-streaming/--no-tools/--no-vision forbid it.
--clear FIELD empties a field: owner, team, expires (never expires), dedicated-upstream, region, metadata, models (every model of the tier), endpoints (all), max-tokens, any limit or budget by its flag name, limits (all six), budgets (both), ip (any address), cors-origin (no browser origin).";

/// Flags of `keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name saying what the key is for.
    #[arg(long, value_parser = parse_text)]
    name: String,
    /// The user the key belongs to (budgets and analytics group by owner).
    #[arg(long, value_name = "USER", value_parser = parse_text)]
    owner: Option<String>,
    /// The team the key belongs to.
    #[arg(long, value_name = "TEAM", value_parser = parse_text)]
    team: Option<String>,
    /// The tier whose models and limits apply.
    #[arg(long, value_name = "TIER", default_value = "standard", value_parser = parse_label)]
    tier: String,
    /// When the key stops working: a duration from now (30d, 12h, 90m, 2w) or a time
    /// (RFC 3339, e.g. 2030-01-31T00:00:00Z, or a date 2030-01-31 meaning 00:00 UTC).
    #[arg(long, value_name = "30d|12h|RFC3339", value_parser = parse_expires)]
    expires: Option<i64>,
    /// Bind the key to one upstream key, which then serves only this client.
    #[arg(long, value_name = "UPSTREAM_KEY_ID", value_parser = parse_label)]
    dedicated_upstream: Option<String>,
    /// Prefer upstream keys of this region.
    #[arg(long, value_name = "REGION", value_parser = parse_label)]
    region: Option<String>,
    /// `live` or `test`, shown in the key's prefix.
    #[arg(long, default_value = "live", value_parser = ["live", "test"])]
    env: String,
    /// Require HMAC-signed requests; a signing secret is printed once beside the key
    /// (sealed at rest under the master key: TOLLGATE_MASTER_KEY or ./tollgate.key).
    #[arg(long)]
    hmac: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print one JSON object (with `id`, `key`, and `hmac_secret` with --hmac).
    #[arg(long)]
    json: bool,
}

/// Flags of `keys update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The key's id (`key_…`).
    id: String,
    /// A new name.
    #[arg(long, value_parser = parse_text)]
    name: Option<String>,
    /// A new owner (--clear owner: none).
    #[arg(long, value_name = "USER", value_parser = parse_text)]
    owner: Option<String>,
    /// A new team (--clear team: none).
    #[arg(long, value_name = "TEAM", value_parser = parse_text)]
    team: Option<String>,
    /// A new tier.
    #[arg(long, value_name = "TIER", value_parser = parse_label)]
    tier: Option<String>,
    /// A new expiry: 30d, 12h, 90m, 2w from now, or an RFC 3339 time or date
    /// (--clear expires: never).
    #[arg(long, value_name = "30d|12h|RFC3339", value_parser = parse_expires)]
    expires: Option<i64>,
    /// Bind the key to this upstream key (--clear dedicated-upstream: unbind).
    #[arg(long, value_name = "UPSTREAM_KEY_ID", value_parser = parse_label)]
    dedicated_upstream: Option<String>,
    /// Prefer upstream keys of this region (--clear region: none).
    #[arg(long, value_name = "REGION", value_parser = parse_label)]
    region: Option<String>,
    /// Replace the key's metadata with this JSON object, e.g. '{"project":"x"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_metadata)]
    metadata: Option<serde_json::Value>,
    /// Empty a field (repeatable, or comma-separated); see the list above.
    #[arg(long, value_enum, value_name = "FIELD", value_delimiter = ',')]
    clear: Vec<Field>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print the updated key as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Permission, limit, budget and network flags, shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Models (names or aliases) the key may use, comma-separated; default: every
    /// model of its tier.
    #[arg(long, value_name = "MODEL,…", value_delimiter = ',', value_parser = parse_model)]
    models: Option<Vec<String>>,
    /// Endpoints the key may call, comma-separated: chat, completions, embeddings,
    /// messages, models, usage (or their paths); default: all.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',', value_parser = parse_endpoint)]
    endpoints: Option<Vec<String>>,
    /// Requests per minute (0: the tier's value).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    rpm: Option<u64>,
    /// Requests per hour (0: the tier's value).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    rph: Option<u64>,
    /// Requests per UTC day (0: the tier's value).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    rpd: Option<u64>,
    /// Tokens per minute (0: the tier's value).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    tpm: Option<u64>,
    /// Tokens per UTC day (0: the tier's value).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    tpd: Option<u64>,
    /// Tokens per UTC calendar month (0: the tier's value).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    tokens_per_month: Option<u64>,
    /// Spend per UTC day, in the configured currency (0: no budget).
    #[arg(long, value_name = "X", value_parser = parse_budget, allow_negative_numbers = true)]
    daily_budget: Option<f64>,
    /// Spend per UTC calendar month, in the configured currency (0: no budget).
    #[arg(long, value_name = "X", value_parser = parse_budget, allow_negative_numbers = true)]
    monthly_budget: Option<f64>,
    /// The largest max_tokens a call may ask for (0: no cap).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    max_tokens: Option<u64>,
    /// A network the key may be used from (repeatable); default: anywhere.
    #[arg(long = "ip", value_name = "CIDR", value_delimiter = ',', value_parser = parse_cidr)]
    ip: Vec<Cidr>,
    /// A browser origin the key may be used from (repeatable), e.g.
    /// https://app.example.com, or * for any; default: none.
    #[arg(long = "cors-origin", value_name = "URL", value_delimiter = ',', value_parser = parse_origin)]
    cors_origin: Vec<String>,
    /// Refuse streaming calls.
    #[arg(long, conflicts_with = "streaming")]
    no_streaming: bool,
    /// Refuse calls with tools.
    #[arg(long, conflicts_with = "tools")]
    no_tools: bool,
    /// Refuse calls with images.
    #[arg(long, conflicts_with = "vision")]
    no_vision: bool,
    /// Allow streaming calls again (update).
    #[arg(long)]
    streaming: bool,
    /// Allow calls with tools again (update).
    #[arg(long)]
    tools: bool,
    /// Allow calls with images again (update).
    #[arg(long)]
    vision: bool,
}

/// A field `keys update --clear` can empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Field {
    /// No owner.
    Owner,
    /// No team.
    Team,
    /// Never expires.
    Expires,
    /// Not bound to an upstream key.
    DedicatedUpstream,
    /// No preferred region.
    Region,
    /// Empty metadata.
    Metadata,
    /// Every model of the tier.
    Models,
    /// Every endpoint.
    Endpoints,
    /// No max_tokens cap.
    MaxTokens,
    /// The tier's requests per minute.
    Rpm,
    /// The tier's requests per hour.
    Rph,
    /// The tier's requests per day.
    Rpd,
    /// The tier's tokens per minute.
    Tpm,
    /// The tier's tokens per day.
    Tpd,
    /// The tier's tokens per month.
    TokensPerMonth,
    /// All six limits: the tier's values.
    Limits,
    /// No daily budget.
    DailyBudget,
    /// No monthly budget.
    MonthlyBudget,
    /// Neither budget.
    Budgets,
    /// Usable from any address.
    Ip,
    /// No browser origin.
    CorsOrigin,
}

impl Field {
    /// The flag that sets the field, for messages.
    fn flag(self) -> String {
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        format!("--{name}")
    }
}

/// Runs a keys subcommand against the `[storage]` database; `config` is read, when
/// it loads, only to warn about names it does not know.
pub async fn run(config: Option<&Path>, storage: &StorageConfig, command: KeysCommand) -> ExitCode {
    let store = match Store::open(&storage.database_url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = execute(config, &store, command).await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(config: Option<&Path>, store: &Store, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create(args) => create(config, store, *args).await,
        KeysCommand::List { json } => {
            let keys = store.list_keys().await.map_err(|e| e.to_string())?;
            print_list(&keys, json);
            Ok(())
        }
        KeysCommand::Show { id, json } => {
            let k = store.find_key(&id).await.map_err(|e| e.to_string())?;
            if json {
                println!("{}", record_json(&k));
            } else {
                print!("{}", show_text(&k));
            }
            Ok(())
        }
        KeysCommand::Update(args) => update(config, store, *args).await,
        KeysCommand::Suspend { id } => {
            let k = set_status(store, &id, KeyStatus::Suspended).await?;
            println!(
                "suspended key {} ({}); running gateways refuse it within a second (resume it with `tollgate keys resume {}`)",
                k.id, k.masked, k.id
            );
            Ok(())
        }
        KeysCommand::Resume { id } => {
            let k = set_status(store, &id, KeyStatus::Active).await?;
            println!(
                "resumed key {} ({}); running gateways accept it within a second",
                k.id, k.masked
            );
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            let k = set_status(store, &id, KeyStatus::Revoked).await?;
            println!(
                "revoked key {} ({}); running gateways refuse it within a second",
                k.id, k.masked
            );
            Ok(())
        }
        KeysCommand::Regenerate { id, json } => {
            let current = store.find_key(&id).await.map_err(|e| e.to_string())?;
            let secret = secret::generate(&current.env);
            let k = store
                .regenerate_key(
                    &id,
                    &secret::hash_hex(&secret::hash(&secret)),
                    &secret::mask(&secret),
                )
                .await
                .map_err(|e| e.to_string())?;
            if json {
                let mut value = record_json(&k);
                value["key"] = json!(secret);
                println!("{value}");
            } else {
                println!(
                    "new secret for key {} ({}); the old one stops working within a second",
                    k.id, k.name
                );
                println!("secret, shown only this once — store it now:\n  {secret}");
            }
            Ok(())
        }
        KeysCommand::Delete { id } => {
            store.delete_key(&id).await.map_err(|e| e.to_string())?;
            println!("deleted key {id}; its usage history stays in the request log");
            Ok(())
        }
    }
}

async fn set_status(store: &Store, id: &str, status: KeyStatus) -> Result<KeyRecord, String> {
    store
        .set_key_status(id, status)
        .await
        .map_err(|e| e.to_string())
}

async fn create(config: Option<&Path>, store: &Store, args: CreateArgs) -> Result<(), String> {
    let mut policy = KeyPolicy::default();
    let patch = policy_patch(&args.policy, &[])?;
    patch.apply(&mut policy);
    // The signing secret needs the master key: load it before anything is written.
    let hmac = if args.hmac {
        let (master, _) = super::upstream::load_master_key(&process_env())?;
        let secret = HmacSecret::generate();
        let sealed = secret.seal(&master);
        Some((secret, sealed))
    } else {
        None
    };
    let secret = secret::generate(&args.env);
    let new = NewKey {
        id: secret::new_key_id(),
        name: args.name,
        owner: args.owner,
        team: args.team,
        tier: args.tier,
        env: args.env,
        secret_hash: secret::hash_hex(&secret::hash(&secret)),
        masked: secret::mask(&secret),
        expires_at: args.expires,
        dedicated_upstream: args.dedicated_upstream,
        region: args.region,
        policy,
        hmac_secret: hmac.as_ref().map(|(_, sealed)| sealed.clone()),
    };
    let record = store.insert_key(&new).await.map_err(|e| e.to_string())?;
    if args.json {
        let mut value = record_json(&record);
        value["key"] = json!(secret);
        if let Some((hmac, _)) = &hmac {
            value["hmac_secret"] = json!(hmac.expose());
        }
        println!("{value}");
    } else {
        println!("created key {} ({})", record.id, record.name);
        println!("secret, shown only this once — store it now:\n  {secret}");
        if let Some((hmac, _)) = &hmac {
            println!(
                "HMAC signing secret, shown only this once — requests must carry x-tollgate-timestamp and x-tollgate-signature:\n  {}",
                hmac.expose()
            );
        }
    }
    warn_unknown_names(config, store, &record).await;
    Ok(())
}

async fn update(config: Option<&Path>, store: &Store, args: UpdateArgs) -> Result<(), String> {
    let clear = |field: Field| args.clear.contains(&field);
    let contradiction = |field: Field, given: bool| -> Result<(), String> {
        if given && clear(field) {
            return Err(format!(
                "{} and --clear {} contradict each other: give one of them",
                field.flag(),
                field.flag().trim_start_matches("--")
            ));
        }
        Ok(())
    };
    contradiction(Field::Owner, args.owner.is_some())?;
    contradiction(Field::Team, args.team.is_some())?;
    contradiction(Field::Expires, args.expires.is_some())?;
    contradiction(Field::DedicatedUpstream, args.dedicated_upstream.is_some())?;
    contradiction(Field::Region, args.region.is_some())?;
    contradiction(Field::Metadata, args.metadata.is_some())?;
    // Set-or-clear: the given value, else `Some(None)` when cleared, else unchanged.
    let optional = |value: Option<String>, field: Field| match value {
        Some(v) => Some(Some(v)),
        None if clear(field) => Some(None),
        None => None,
    };
    let update = KeyUpdate {
        name: args.name.clone(),
        owner: optional(args.owner.clone(), Field::Owner),
        team: optional(args.team.clone(), Field::Team),
        tier: args.tier.clone(),
        expires_at: match args.expires {
            Some(t) => Some(Some(t)),
            None if clear(Field::Expires) => Some(None),
            None => None,
        },
        dedicated_upstream: optional(args.dedicated_upstream.clone(), Field::DedicatedUpstream),
        region: optional(args.region.clone(), Field::Region),
        metadata: match &args.metadata {
            Some(m) => Some(m.clone()),
            None if clear(Field::Metadata) => Some(json!({})),
            None => None,
        },
        policy: policy_patch(&args.policy, &args.clear)?,
    };
    if update.is_empty() {
        return Err(format!(
            "nothing to change for key {}: give at least one flag (see `tollgate keys update --help`)",
            args.id
        ));
    }
    let k = store
        .update_key(&args.id, &update)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", record_json(&k));
    } else {
        println!(
            "updated key {}; running gateways apply it within a second",
            k.id
        );
        print!("{}", show_text(&k));
    }
    warn_unknown_names(config, store, &k).await;
    Ok(())
}

/// The policy change the flags ask for. A 0 limit, budget or cap and `--clear`
/// remove the key's own value; a flag and `--clear` of the same field contradict.
fn policy_patch(a: &PolicyArgs, clear: &[Field]) -> Result<PolicyPatch, String> {
    let cleared = |field: Field, group: Option<Field>| {
        clear.contains(&field) || group.is_some_and(|g| clear.contains(&g))
    };
    let check = |field: Field, group: Option<Field>, given: bool| -> Result<(), String> {
        if given && cleared(field, group) {
            let by = match group {
                Some(g) if clear.contains(&g) => g,
                _ => field,
            };
            return Err(format!(
                "{} and --clear {} contradict each other: give one of them",
                field.flag(),
                by.flag().trim_start_matches("--")
            ));
        }
        Ok(())
    };
    // A number: 0 or --clear → remove (Some(None)), n → Some(Some(n)), absent → None.
    let number = |value: Option<u64>, field: Field, group: Option<Field>| {
        check(field, group, value.is_some())?;
        Ok::<_, String>(match value {
            Some(0) => Some(None),
            Some(n) => Some(Some(n)),
            None if cleared(field, group) => Some(None),
            None => None,
        })
    };
    let amount = |value: Option<f64>, field: Field| {
        check(field, Some(Field::Budgets), value.is_some())?;
        Ok::<_, String>(match value {
            Some(0.0) => Some(None),
            Some(v) => Some(Some(v)),
            None if cleared(field, Some(Field::Budgets)) => Some(None),
            None => None,
        })
    };
    let list = |value: &Option<Vec<String>>, field: Field| {
        check(field, None, value.is_some())?;
        Ok::<_, String>(match value {
            Some(v) => Some(Some(dedup(v.clone()))),
            None if cleared(field, None) => Some(None),
            None => None,
        })
    };
    let feature = |allow: bool, forbid: bool| match (allow, forbid) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    check(Field::Ip, None, !a.ip.is_empty())?;
    check(Field::CorsOrigin, None, !a.cors_origin.is_empty())?;
    let limits = Some(Field::Limits);
    Ok(PolicyPatch {
        models: list(&a.models, Field::Models)?,
        endpoints: list(&a.endpoints, Field::Endpoints)?,
        max_tokens: number(a.max_tokens, Field::MaxTokens, None)?,
        streaming: feature(a.streaming, a.no_streaming),
        tools: feature(a.tools, a.no_tools),
        vision: feature(a.vision, a.no_vision),
        rpm: number(a.rpm, Field::Rpm, limits)?,
        rph: number(a.rph, Field::Rph, limits)?,
        rpd: number(a.rpd, Field::Rpd, limits)?,
        tpm: number(a.tpm, Field::Tpm, limits)?,
        tpd: number(a.tpd, Field::Tpd, limits)?,
        tokens_per_month: number(a.tokens_per_month, Field::TokensPerMonth, limits)?,
        daily_budget: amount(a.daily_budget, Field::DailyBudget)?,
        monthly_budget: amount(a.monthly_budget, Field::MonthlyBudget)?,
        ip_allowlist: if !a.ip.is_empty() {
            Some(dedup(a.ip.clone()))
        } else if cleared(Field::Ip, None) {
            Some(Vec::new())
        } else {
            None
        },
        cors_origins: if !a.cors_origin.is_empty() {
            Some(dedup(a.cors_origin.clone()))
        } else if cleared(Field::CorsOrigin, None) {
            Some(Vec::new())
        } else {
            None
        },
    })
}

/// Warns (never fails) about a tier, model or upstream key id that the configuration
/// does not know. Silent when the configuration cannot be loaded here (e.g. provider
/// secrets are not in this shell's environment).
async fn warn_unknown_names(config: Option<&Path>, store: &Store, k: &KeyRecord) {
    let Ok(config) = Config::load(config, &process_env()) else {
        return;
    };
    if !config.tiers.contains_key(&k.tier) {
        let tiers: Vec<&str> = config.tiers.keys().map(String::as_str).collect();
        eprintln!(
            "warning: tier {:?} is not configured (configured: {}); until it is, the key has no tier limits and may use every model",
            k.tier,
            tiers.join(", ")
        );
    }
    for model in k.policy.permissions.models.iter().flatten() {
        let known = config
            .models
            .iter()
            .any(|m| &m.name == model || m.aliases.contains(model));
        if !known && !config.models.is_empty() {
            eprintln!("warning: no model or alias named {model:?} is configured; the key cannot call it until one is");
        }
    }
    if let Some(upstream) = &k.dedicated_upstream {
        let configured = config
            .providers
            .iter()
            .any(|p| p.keys.iter().any(|key| &key.id == upstream));
        let stored = store
            .list_upstream_key_rows()
            .await
            .is_ok_and(|rows| rows.iter().any(|r| &r.id == upstream));
        if !configured && !stored {
            eprintln!("warning: no upstream key with id {upstream:?} is configured or stored; the dedicated binding serves nothing until one is");
        }
    }
}

fn print_list(keys: &[KeyRecord], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::Value::Array(keys.iter().map(record_json).collect())
        );
        return;
    }
    if keys.is_empty() {
        println!("no keys yet: create one with `tollgate keys create --name NAME`");
        return;
    }
    println!(
        "{:<22} {:<20} {:<14} {:<10} {:<10} {:<20} {:<20} CREATED",
        "ID", "NAME", "OWNER", "TIER", "STATUS", "KEY", "EXPIRES"
    );
    for k in keys {
        println!(
            "{:<22} {:<20} {:<14} {:<10} {:<10} {:<20} {:<20} {}",
            k.id,
            k.name,
            k.owner.as_deref().unwrap_or("-"),
            k.tier,
            k.status.as_str(),
            k.masked,
            k.expires_at.map_or_else(|| "never".to_owned(), time),
            time(k.created_at)
        );
    }
}

/// A key as JSON: every field (masked, never a secret), the policy as stored.
fn record_json(k: &KeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "owner": k.owner,
        "team": k.team,
        "tier": k.tier,
        "env": k.env,
        "status": k.status.as_str(),
        "masked": k.masked,
        "expires_at": k.expires_at.map(time),
        "dedicated_upstream": k.dedicated_upstream,
        "region": k.region,
        "hmac": k.hmac_secret.is_some(),
        "policy": serde_json::to_value(&k.policy).unwrap_or_default(),
        "metadata": k.metadata,
        "created_at": time(k.created_at),
        "updated_at": time(k.updated_at),
    })
}

/// A key for people: one `label: value` line per field, the policy spelled out.
fn show_text(k: &KeyRecord) -> String {
    let p = &k.policy;
    let perm = &p.permissions;
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let yes_no = |b: bool| if b { "allowed" } else { "refused" };
    let num = |v: Option<u64>| v.map_or_else(|| "tier".to_owned(), |n| n.to_string());
    let money = |v: Option<f64>| v.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let now = chrono::Utc::now().timestamp_millis();
    let expires = match k.expires_at {
        None => "never".to_owned(),
        Some(t) if t <= now => format!("{} (expired)", time(t)),
        Some(t) => time(t),
    };
    let hmac = match &k.hmac_secret {
        None => "off".to_owned(),
        Some(sealed) => format!(
            "required (signing secret sealed under master key {})",
            HmacSecret::sealed_fingerprint(sealed).unwrap_or_else(|| "?".to_owned())
        ),
    };
    let l = &p.limits;
    let rows: Vec<(&str, String)> = vec![
        ("id", k.id.clone()),
        ("name", k.name.clone()),
        ("owner", or_dash(k.owner.as_deref())),
        ("team", or_dash(k.team.as_deref())),
        ("tier", k.tier.clone()),
        ("status", k.status.as_str().to_owned()),
        ("env", k.env.clone()),
        ("key", k.masked.clone()),
        ("expires", expires),
        ("hmac", hmac),
        (
            "dedicated upstream",
            or_dash(k.dedicated_upstream.as_deref()),
        ),
        ("region", or_dash(k.region.as_deref())),
        (
            "models",
            perm.models
                .as_ref()
                .map_or_else(|| "every model of the tier".to_owned(), |m| m.join(", ")),
        ),
        (
            "endpoints",
            perm.endpoints
                .as_ref()
                .map_or_else(|| "all".to_owned(), |e| e.join(", ")),
        ),
        (
            "max tokens",
            perm.max_tokens
                .map_or_else(|| "no cap".to_owned(), |n| n.to_string()),
        ),
        (
            "features",
            format!(
                "streaming {}, tools {}, vision {}",
                yes_no(perm.streaming),
                yes_no(perm.tools),
                yes_no(perm.vision)
            ),
        ),
        (
            "limits",
            format!(
                "rpm {}, rph {}, rpd {}, tpm {}, tpd {}, tokens/month {}  (\"tier\": the tier's value applies)",
                num(l.rpm),
                num(l.rph),
                num(l.rpd),
                num(l.tpm),
                num(l.tpd),
                num(l.tokens_per_month)
            ),
        ),
        (
            "budgets",
            format!(
                "daily {}, monthly {}",
                money(p.budgets.daily),
                money(p.budgets.monthly)
            ),
        ),
        (
            "ip allowlist",
            if p.ip_allowlist.is_empty() {
                "any address".to_owned()
            } else {
                p.ip_allowlist
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "cors origins",
            if p.cors_origins.is_empty() {
                "none".to_owned()
            } else {
                p.cors_origins.join(", ")
            },
        ),
        ("metadata", k.metadata.to_string()),
        ("created", time(k.created_at)),
        ("updated", time(k.updated_at)),
    ];
    let mut out = String::new();
    for (label, value) in rows {
        out.push_str(&format!("{:<19} {value}\n", format!("{label}:")));
    }
    out
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

// Flag values. clap prefixes each message with the flag and the value given
// ("invalid value 'X' for '--ip <CIDR>': …"), so each says only what is wrong and
// how to write it.

fn parse_text(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("it must not be empty".to_owned());
    }
    if s.trim() != s || s.chars().count() > MAX_TEXT_CHARS || s.chars().any(char::is_control) {
        return Err(format!(
            "use 1 to {MAX_TEXT_CHARS} characters without control characters or surrounding spaces"
        ));
    }
    Ok(s.to_owned())
}

fn parse_label(s: &str) -> Result<String, String> {
    let valid = !s.is_empty()
        && s.chars().count() <= MAX_LABEL_CHARS
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "use 1 to {MAX_LABEL_CHARS} of the characters A-Z a-z 0-9 _ . -"
        ))
    }
}

fn parse_model(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("a model name is empty: list names separated by commas, e.g. --models gpt-4o-mini,gpt-4o (to allow every model of the tier again: keys update ID --clear models)".to_owned());
    }
    parse_text(s)
}

fn parse_endpoint(s: &str) -> Result<String, String> {
    crate::store::parse_endpoint(s)
        .map(str::to_owned)
        .map_err(|e| format!("{e} (comma-separated)"))
}

fn parse_count(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        "give a whole number, 0 or more (0: the tier's value for limits, no cap for --max-tokens)"
            .to_owned()
    })
}

fn parse_budget(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..9.0e9).contains(&v) => Ok(v),
        _ => Err(
            "give an amount in the configured currency, 0 or more and below 9000000000, e.g. 2.50 (0: no budget)"
                .to_owned(),
        ),
    }
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    crate::store::parse_cidr(s)
}

fn parse_origin(s: &str) -> Result<String, String> {
    check_origin(s.trim()).map_err(|_| {
        "not a browser origin: write scheme and host (and port), e.g. https://app.example.com or http://localhost:3000, or * for any".to_owned()
    })
}

fn parse_metadata(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(r#"give a JSON object, e.g. '{"project":"search","cost_center":42}'"#.to_owned()),
    }
}

/// `--expires`: a duration from now (`30d`, `12h`, `90m`, `45s`, `2w`), an RFC 3339
/// time, or a date (00:00 UTC); answers Unix milliseconds, refusing the past.
fn parse_expires(s: &str) -> Result<i64, String> {
    parse_expiry(s, chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_accepts_durations_times_and_dates_but_not_the_past() {
        let now = chrono::Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        let ms = now.timestamp_millis();
        assert_eq!(parse_expiry("30d", now), Ok(ms + 30 * 86_400_000));
        assert_eq!(parse_expiry("12h", now), Ok(ms + 12 * 3_600_000));
        assert_eq!(parse_expiry("90m", now), Ok(ms + 90 * 60_000));
        assert_eq!(parse_expiry("2w", now), Ok(ms + 14 * 86_400_000));
        assert_eq!(
            parse_expiry("2030-01-02T00:00:00Z", now),
            Ok(ms + 86_400_000)
        );
        assert_eq!(parse_expiry("2030-01-03", now), Ok(ms + 2 * 86_400_000));
        for bad in [
            "0d",
            "-3d",
            "3y",
            "d",
            "soon",
            "2029-12-31T00:00:00Z",
            "2020-01-01",
            "1.5d",
        ] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
        assert!(parse_expiry("2020-01-01", now)
            .expect_err("past")
            .contains("in the past"));
    }

    #[test]
    fn zero_and_clear_remove_a_limit_and_contradictions_are_refused() {
        let mut args = PolicyArgs {
            models: None,
            endpoints: Some(vec!["/v1/embeddings".into(), "/v1/embeddings".into()]),
            rpm: Some(0),
            rph: Some(5),
            rpd: None,
            tpm: None,
            tpd: None,
            tokens_per_month: None,
            daily_budget: Some(0.0),
            monthly_budget: Some(3.0),
            max_tokens: None,
            ip: Vec::new(),
            cors_origin: Vec::new(),
            no_streaming: true,
            no_tools: false,
            no_vision: false,
            streaming: false,
            tools: false,
            vision: true,
        };
        let patch = policy_patch(&args, &[Field::Tpd, Field::Ip]).expect("patch");
        assert_eq!(patch.rpm, Some(None));
        assert_eq!(patch.rph, Some(Some(5)));
        assert_eq!(patch.rpd, None);
        assert_eq!(patch.tpd, Some(None));
        assert_eq!(patch.daily_budget, Some(None));
        assert_eq!(patch.monthly_budget, Some(Some(3.0)));
        assert_eq!(
            patch.endpoints,
            Some(Some(vec!["/v1/embeddings".to_owned()]))
        );
        assert_eq!(patch.ip_allowlist, Some(Vec::new()));
        assert_eq!(
            (patch.streaming, patch.tools, patch.vision),
            (Some(false), None, Some(true))
        );

        let err = policy_patch(&args, &[Field::Limits]).expect_err("contradiction");
        assert!(err.contains("--rpm and --clear limits"), "{err}");
        args.rpm = None;
        args.rph = None;
        let patch = policy_patch(&args, &[Field::Limits]).expect("patch");
        assert_eq!(patch.tokens_per_month, Some(None));
    }

    #[test]
    fn flag_values_explain_the_fix() {
        assert!(parse_cidr("10.0.0.0/33")
            .expect_err("bad")
            .contains("not a CIDR"));
        assert!(parse_cidr("10.0.0.0/8").is_ok());
        let e = parse_endpoint("files").expect_err("bad");
        assert!(
            e.contains("chat (/v1/chat/completions)") && e.contains("usage"),
            "{e}"
        );
        assert_eq!(
            parse_endpoint("chat").as_deref(),
            Ok("/v1/chat/completions")
        );
        assert!(parse_origin("app.example.com").is_err());
        assert_eq!(
            parse_origin("https://app.example.com/").as_deref(),
            Ok("https://app.example.com")
        );
        assert!(parse_budget("-1").is_err() && parse_budget("NaN").is_err());
        assert!(parse_count("-1").is_err() && parse_count("ten").is_err());
        assert!(parse_label("gold tier").is_err());
        assert!(parse_metadata("[1]").is_err() && parse_metadata(r#"{"a":1}"#).is_ok());
    }
}
