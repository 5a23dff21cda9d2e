//! The Redis counter backend: the same counters and the same decision as `local`
//! (see `counters`), kept in Redis so every replica shares them (SPEC §6).
//!
//! One admission is one round trip: `EVALSHA` of [`ADMIT`], which reads the windows,
//! decides and counts atomically. Settlement is a second script, sent off the request
//! path. Every key carries a TTL a little past the end of its window, so nothing
//! grows forever; a settlement that arrives after its window is gone changes nothing.
//!
//! Time is the caller's (`Ask::now_ms`), not the Redis server's, so that both backends
//! decide identically; replicas sharing one Redis therefore need synchronised clocks
//! (NTP): a replica whose clock is off counts its calls in the wrong second or period.
//!
//! Key layout, under a prefix (`tollgate:` by default); `{id}` and `{owner}` are kept
//! as they are when they are plain (`A-Z a-z 0-9 _ - .`), else written `~` + hex:
//!
//! | key | type | holds | TTL |
//! | --- | --- | --- | --- |
//! | `k:{id}:m` | hash | `r{second}` requests, `t{second}` tokens of the sliding minute | 120 s |
//! | `k:{id}:h:{hour}` | string | requests in the UTC hour | to the hour's end + 300 s |
//! | `k:{id}:d:{day}` | hash | `requests tokens prompt completion spent reserved` | to the day's end + 300 s |
//! | `k:{id}:mo:{month}` | hash | the same, for the UTC month | to the month's end + 300 s |
//! | `o:{owner}:d:{day}`, `o:{owner}:mo:{month}` | hash | `spent reserved` | as above |
//! | `g:d:{day}`, `g:mo:{month}` | hash | `spent reserved` (global budget) | as above |
//! | `n:{sha256 hex}` | string | a claimed nonce | the nonce's TTL |
//!
//! Periods are numbered as in `windows::Periods` (hours and days since the epoch,
//! `year * 12 + month0`). Amounts are integers (tokens, nano-units); Lua compares them
//! as doubles, exact below 2^53 (9 million currency units in nanos). The scripts touch
//! keys of several slots, so Redis Cluster is not supported: use one primary.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use sha2::{Digest, Sha256};

use super::counters::*;
use super::policy::RateLimits;
use super::windows::{Periods, MINUTE_BUCKETS};
use crate::secrets::redact_url;

/// The key prefix used unless another is given.
pub const DEFAULT_PREFIX: &str = "tollgate:";

/// Seconds a calendar window's keys outlive the window (clock skew, late settles).
const CALENDAR_SLACK_S: u64 = 300;
/// Seconds the sliding minute's hash lives after the last admission.
const MINUTE_TTL_S: u64 = 120;
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take before the call fails (nothing is admitted blind).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts per failure, with exponential backoff.
const RECONNECT_RETRIES: usize = 3;

/// Reads the windows, decides one call and, when admitted, counts it.
///
/// KEYS: 1 minute hash, 2 hour counter, 3 key day, 4 key month, 5 owner day,
/// 6 owner month, 7 global day, 8 global month.
/// ARGV: 1 unix second; 2–4 TTLs of the hour, day and month keys; 5–10 limits in
/// `LimitKind::ALL` order; 11–16 budgets (key, owner, global × daily, monthly) in
/// nanos; 17 soft threshold; 18–19 estimate tokens and cost; 20 "1" when a downgrade
/// is offered, 21–22 its tokens and cost; 23 "1" to count the owner, 24 the global
/// budget. An empty limit or budget is not set.
///
/// Returns `{status, detail, committed, minute_reset, used × 6}`: status 1 admitted
/// (detail 1 when downgraded), 2 rate limited (detail: index of the limit in
/// `LimitKind::ALL`, from 1), 3 over budget (detail: 1–6 as ARGV 11–16, committed:
/// spent + reserved before the call). `used` is before this call, in
/// `LimitKind::ALL` order.
const ADMIT: &str = r#"
local now_s = tonumber(ARGV[1])
local oldest = now_s - 61

-- The sliding minute: sum the live seconds, drop the dead ones.
local flat = redis.call('HGETALL', KEYS[1])
local mreq, mtok, mreset = 0, 0, nil
local dead = {}
for i = 1, #flat, 2 do
  local field = flat[i]
  local sec = tonumber(string.sub(field, 2))
  local v = tonumber(flat[i + 1]) or 0
  if sec == nil or sec <= oldest then
    dead[#dead + 1] = field
  elseif sec <= now_s then
    if string.sub(field, 1, 1) == 'r' then mreq = mreq + v else mtok = mtok + v end
    if v > 0 then
      local r = sec + 61 - now_s
      if mreset == nil or r < mreset then mreset = r end
    end
  end
end
if #dead > 0 then redis.call('HDEL', KEYS[1], unpack(dead)) end
-- An empty minute: the call counted now frees its capacity a whole window later.
if mreset == nil then mreset = 61 elseif mreset < 1 then mreset = 1 end

local function num(v) return tonumber(v) or 0 end
local hour = num(redis.call('GET', KEYS[2]))
local day = redis.call('HMGET', KEYS[3], 'requests', 'tokens', 'spent', 'reserved')
local month = redis.call('HMGET', KEYS[4], 'tokens', 'spent', 'reserved')
local used = {mreq, hour, num(day[1]), mtok, num(day[2]), num(month[1])}

-- Budgets before this call: committed = spent + reserved.
local use_owner = ARGV[23] == '1'
local use_global = ARGV[24] == '1'
local committed = {
  num(day[3]) + num(day[4]),
  num(month[2]) + num(month[3]),
  0, 0, 0, 0,
}
if use_owner then
  local d = redis.call('HMGET', KEYS[5], 'spent', 'reserved')
  local m = redis.call('HMGET', KEYS[6], 'spent', 'reserved')
  committed[3] = num(d[1]) + num(d[2])
  committed[4] = num(m[1]) + num(m[2])
end
if use_global then
  local d = redis.call('HMGET', KEYS[7], 'spent', 'reserved')
  local m = redis.call('HMGET', KEYS[8], 'spent', 'reserved')
  committed[5] = num(d[1]) + num(d[2])
  committed[6] = num(m[1]) + num(m[2])
end
local budgets = {}
for i = 1, 6 do
  local applies = i <= 2 or (i <= 4 and use_owner) or (i > 4 and use_global)
  if applies then budgets[i] = tonumber(ARGV[10 + i]) end
end

-- Past the soft threshold of any budget: the downgrade estimate, when offered.
local soft = tonumber(ARGV[17])
local past_soft = false
for i = 1, 6 do
  if budgets[i] ~= nil and committed[i] >= budgets[i] * soft then past_soft = true end
end
local tokens_arg, cost_arg, downgraded = ARGV[18], ARGV[19], 0
if past_soft and ARGV[20] == '1' then
  tokens_arg, cost_arg, downgraded = ARGV[21], ARGV[22], 1
end
local tokens, cost = tonumber(tokens_arg), tonumber(cost_arg)

local function reply(status, detail, c)
  return {status, detail, c, mreset, used[1], used[2], used[3], used[4], used[5], used[6]}
end

-- Rate limits, in order.
for i = 1, 6 do
  local limit = tonumber(ARGV[4 + i])
  if limit ~= nil then
    local need = 1
    if i >= 4 then need = tokens end
    if used[i] + need > limit then return reply(2, i, 0) end
  end
end

-- Budgets, with this call.
for i = 1, 6 do
  if budgets[i] ~= nil and committed[i] + cost > budgets[i] then
    return reply(3, i, committed[i])
  end
end

-- Admitted: count it.
redis.call('HINCRBY', KEYS[1], 'r' .. ARGV[1], 1)
redis.call('HINCRBY', KEYS[1], 't' .. ARGV[1], tokens_arg)
redis.call('EXPIRE', KEYS[1], MINUTE_TTL)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
for i = 3, 4 do
  redis.call('HINCRBY', KEYS[i], 'requests', 1)
  redis.call('HINCRBY', KEYS[i], 'tokens', tokens_arg)
  redis.call('HINCRBY', KEYS[i], 'reserved', cost_arg)
  redis.call('EXPIRE', KEYS[i], ARGV[i])
end
local spend = {}
if use_owner then spend[#spend + 1] = 5; spend[#spend + 1] = 6 end
if use_global then spend[#spend + 1] = 7; spend[#spend + 1] = 8 end
for _, k in ipairs(spend) do
  redis.call('HINCRBY', KEYS[k], 'reserved', cost_arg)
  -- even: a month key, odd: a day key
  if k % 2 == 1 then
    redis.call('EXPIRE', KEYS[k], ARGV[3])
  else
    redis.call('EXPIRE', KEYS[k], ARGV[4])
  end
end
return reply(1, downgraded, 0)
"#;

/// Replaces a ticket's estimates with the call's real usage, in the windows that
/// still exist (a window that has ended is left alone, as in `local`).
///
/// KEYS: 1 minute hash, 2 key day, 3 key month, 4 owner day, 5 owner month,
/// 6 global day, 7 global month.
/// ARGV: 1 the admission's second, 2 actual − reserved tokens, 3 prompt tokens,
/// 4 completion tokens, 5 −reserved cost, 6 actual cost, 7 "1" when the owner's
/// spend was counted, 8 the global spend.
const SETTLE: &str = r#"
local function add_clamped(key, field, delta)
  local v = redis.call('HINCRBY', key, field, delta)
  if v < 0 then redis.call('HSET', key, field, '0') end
end
local minute_field = 't' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], minute_field) == 1 then
  add_clamped(KEYS[1], minute_field, ARGV[2])
end
for i = 2, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    add_clamped(KEYS[i], 'tokens', ARGV[2])
    redis.call('HINCRBY', KEYS[i], 'prompt', ARGV[3])
    redis.call('HINCRBY', KEYS[i], 'completion', ARGV[4])
    redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[5])
    redis.call('HINCRBY', KEYS[i], 'spent', ARGV[6])
  end
end
local spend = {}
if ARGV[7] == '1' then spend[#spend + 1] = 4; spend[#spend + 1] = 5 end
if ARGV[8] == '1' then spend[#spend + 1] = 6; spend[#spend + 1] = 7 end
for _, k in ipairs(spend) do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    redis.call('HINCRBY', KEYS[k], 'reserved', ARGV[5])
    redis.call('HINCRBY', KEYS[k], 'spent', ARGV[6])
  end
end
return 1
"#;

/// Reads a key's windows without counting.
///
/// KEYS: 1 minute hash, 2 hour counter, 3 key day, 4 key month. ARGV: 1 unix second.
/// Returns `{minute requests, minute tokens, minute reset, hour requests}` followed by
/// `requests tokens prompt completion spent reserved` of the day, then of the month.
const SNAPSHOT: &str = r#"
local now_s = tonumber(ARGV[1])
local flat = redis.call('HGETALL', KEYS[1])
local mreq, mtok, mreset = 0, 0, nil
for i = 1, #flat, 2 do
  local field = flat[i]
  local sec = tonumber(string.sub(field, 2))
  local v = tonumber(flat[i + 1]) or 0
  if sec ~= nil and sec > now_s - 61 and sec <= now_s then
    if string.sub(field, 1, 1) == 'r' then mreq = mreq + v else mtok = mtok + v end
    if v > 0 then
      local r = sec + 61 - now_s
      if mreset == nil or r < mreset then mreset = r end
    end
  end
end
if mreset == nil or mreset < 1 then mreset = 1 end
local out = {mreq, mtok, mreset, redis.call('GET', KEYS[2]) or '0'}
local fields = {'requests', 'tokens', 'prompt', 'completion', 'spent', 'reserved'}
for k = 3, 4 do
  local values = redis.call('HMGET', KEYS[k], unpack(fields))
  for i = 1, 6 do out[#out + 1] = values[i] or '0' end
end
return out
"#;

/// The three scripts, hashed once.
struct Scripts {
    admit: Script,
    settle: Script,
    snapshot: Script,
}

/// Counters in Redis, shared by every replica that uses the same server and prefix.
#[derive(Clone)]
pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The Redis key names of one call's windows.
struct Names {
    minute: String,
    hour: String,
    key_day: String,
    key_month: String,
    owner_day: String,
    owner_month: String,
    global_day: String,
    global_month: String,
}

impl RedisCounters {
    /// Checks that Redis answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), CountersError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| CountersError(format!("Redis does not answer: {e}")))
    }

    /// Connects to `url` (`redis://` or `rediss://`), loads the scripts, and keys
    /// everything under `prefix`. The connection is re-established on failure.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CountersError> {
        let client = redis::Client::open(url)
            .map_err(|e| CountersError(format!("{} is not a Redis URL: {e}", redact_url(url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(1000);
        let unreachable = |e: redis::RedisError| {
            CountersError(format!("cannot use Redis at {}: {e}", redact_url(url)))
        };
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unreachable)?;
        let scripts = Scripts {
            admit: Script::new(&ADMIT.replace("MINUTE_TTL", &MINUTE_TTL_S.to_string())),
            settle: Script::new(SETTLE),
            snapshot: Script::new(SNAPSHOT),
        };
        for script in [&scripts.admit, &scripts.settle, &scripts.snapshot] {
            script.load_async(&mut conn).await.map_err(unreachable)?;
        }
        Ok(RedisCounters {
            conn,
            prefix: prefix.into(),
            scripts: Arc::new(scripts),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn names(&self, key_id: &str, owner: Option<&str>, p: &Periods) -> Names {
        let prefix = &self.prefix;
        let key = safe(key_id);
        let owner = owner.map(safe).unwrap_or_else(|| "~".to_owned());
        Names {
            minute: format!("{prefix}k:{key}:m"),
            hour: format!("{prefix}k:{key}:h:{}", p.hour),
            key_day: format!("{prefix}k:{key}:d:{}", p.day),
            key_month: format!("{prefix}k:{key}:mo:{}", p.month),
            owner_day: format!("{prefix}o:{owner}:d:{}", p.day),
            owner_month: format!("{prefix}o:{owner}:mo:{}", p.month),
            global_day: format!("{prefix}g:d:{}", p.day),
            global_month: format!("{prefix}g:mo:{}", p.month),
        }
    }

    /// Decides one call and counts it when admitted, in one atomic round trip.
    /// The outer error is the backend's; the inner one is the decision's.
    pub async fn admit(&self, ask: &Ask) -> Result<Result<Admitted, Box<Refusal>>, CountersError> {
        let p = Periods::at(ask.now_ms);
        let use_owner = ask.owner.is_some() && !ask.owner_budgets.is_empty();
        let use_global = !ask.global_budgets.is_empty();
        let n = self.names(&ask.key_id, ask.owner.as_deref(), &p);
        let opt = |v: Option<u64>| v.map(|v| int(v).to_string()).unwrap_or_default();
        let opt_i = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let flag = |b: bool| if b { "1" } else { "0" };
        let downgrade = ask.downgrade.unwrap_or_default();

        let mut call = self.scripts.admit.prepare_invoke();
        call.key(&n.minute)
            .key(&n.hour)
            .key(&n.key_day)
            .key(&n.key_month)
            .key(&n.owner_day)
            .key(&n.owner_month)
            .key(&n.global_day)
            .key(&n.global_month)
            .arg(p.second)
            .arg(p.hour_reset_s() + CALENDAR_SLACK_S)
            .arg(p.day_reset_s() + CALENDAR_SLACK_S)
            .arg(p.month_reset_s() + CALENDAR_SLACK_S);
        for kind in LimitKind::ALL {
            call.arg(opt(kind.of(&ask.limits)));
        }
        for b in [ask.key_budgets, ask.owner_budgets, ask.global_budgets] {
            call.arg(opt_i(b.daily)).arg(opt_i(b.monthly));
        }
        call.arg(ask.soft_threshold.to_string())
            .arg(int(ask.estimate.tokens))
            .arg(ask.estimate.cost_nanos)
            .arg(flag(ask.downgrade.is_some()))
            .arg(int(downgrade.tokens))
            .arg(downgrade.cost_nanos)
            .arg(flag(use_owner))
            .arg(flag(use_global));
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| CountersError(format!("the Redis admission script failed: {e}")))?;
        let [status, detail, committed, minute_reset, used @ ..] = reply.as_slice() else {
            return Err(CountersError(format!(
                "the Redis admission script answered {} values, not 10",
                reply.len()
            )));
        };
        if used.len() != 6 {
            return Err(CountersError(format!(
                "the Redis admission script answered {} values, not 10",
                reply.len()
            )));
        }
        let resets = resets(&p, *minute_reset);
        let used: Vec<u64> = used.iter().map(|u| (*u).max(0) as u64).collect();
        let admitted = *status == 1;
        let downgraded = admitted && *detail == 1;
        let estimate = match ask.downgrade {
            Some(cheaper) if downgraded => cheaper,
            _ => ask.estimate,
        };

        // The report as `local` makes it: after this call when admitted, else without it.
        let mut report = LimitReport::default();
        for (i, kind) in LimitKind::ALL.into_iter().enumerate() {
            if let Some(limit) = kind.of(&ask.limits) {
                let need = if kind.counts_tokens() {
                    estimate.tokens
                } else {
                    1
                };
                let after = if *status != 1 {
                    used[i]
                } else {
                    used[i] + need
                };
                report.set(
                    kind,
                    Remaining {
                        limit,
                        remaining: limit.saturating_sub(after),
                        reset_s: resets[i],
                    },
                );
            }
        }

        match status {
            1 => Ok(Ok(Admitted {
                ticket: Ticket {
                    key_id: ask.key_id.clone(),
                    owner: if use_owner { ask.owner.clone() } else { None },
                    global: use_global,
                    periods: p,
                    reserved: estimate,
                },
                downgraded,
                report,
            })),
            2 => {
                let index = usize::try_from(*detail - 1).unwrap_or(usize::MAX);
                let Some(kind) = LimitKind::ALL.get(index).copied() else {
                    return Err(CountersError(format!(
                        "the Redis admission script named limit {detail}"
                    )));
                };
                Ok(Err(Box::new(Refusal::RateLimited {
                    kind,
                    limit: kind.of(&ask.limits).unwrap_or_default(),
                    retry_after_s: resets[index],
                    report,
                })))
            }
            3 => {
                let (scope, budgets) = match detail {
                    1 | 2 => (Scope::Key, ask.key_budgets),
                    3 | 4 => (Scope::Owner, ask.owner_budgets),
                    5 | 6 => (Scope::Global, ask.global_budgets),
                    _ => {
                        return Err(CountersError(format!(
                            "the Redis admission script named budget {detail}"
                        )))
                    }
                };
                let (period, limit, retry_after_s) = if detail % 2 == 1 {
                    (BudgetPeriod::Daily, budgets.daily, p.day_reset_s())
                } else {
                    (BudgetPeriod::Monthly, budgets.monthly, p.month_reset_s())
                };
                Ok(Err(Box::new(Refusal::BudgetExceeded {
                    scope,
                    period,
                    limit_nanos: limit.unwrap_or_default(),
                    committed_nanos: *committed,
                    retry_after_s,
                    report,
                })))
            }
            _ => Err(CountersError(format!(
                "the Redis admission script answered status {status}"
            ))),
        }
    }

    /// Replaces a ticket's estimates with the call's real usage, in a task of its
    /// own: the caller does not wait. A failure is logged and the estimate stays.
    pub fn settle(&self, ticket: &Ticket, actual: Actual) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key_id = %ticket.key_id, "cannot settle a call's usage in Redis outside the runtime; its estimate stays counted");
            return;
        };
        let this = self.clone();
        let ticket = ticket.clone();
        runtime.spawn(async move {
            if let Err(e) = this.settle_now(&ticket, actual).await {
                tracing::warn!(key_id = %ticket.key_id, error = %e, "could not settle a call's usage in Redis; its estimate stays counted");
            }
        });
    }

    /// Replaces a ticket's estimates with the call's real usage, waiting for Redis.
    pub async fn settle_now(&self, ticket: &Ticket, actual: Actual) -> Result<(), CountersError> {
        let p = &ticket.periods;
        let n = self.names(&ticket.key_id, ticket.owner.as_deref(), p);
        let tokens = actual
            .prompt_tokens
            .saturating_add(actual.completion_tokens);
        let token_delta = i128::from(tokens) - i128::from(ticket.reserved.tokens);
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .settle
            .key(&n.minute)
            .key(&n.key_day)
            .key(&n.key_month)
            .key(&n.owner_day)
            .key(&n.owner_month)
            .key(&n.global_day)
            .key(&n.global_month)
            .arg(p.second)
            .arg(token_delta.to_string())
            .arg(int(actual.prompt_tokens))
            .arg(int(actual.completion_tokens))
            .arg(ticket.reserved.cost_nanos.saturating_neg())
            .arg(actual.cost_nanos)
            .arg(flag(ticket.owner.is_some()))
            .arg(flag(ticket.global))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| CountersError(format!("the Redis settlement script failed: {e}")))?;
        Ok(())
    }

    /// The key's counters, without counting anything.
    pub async fn snapshot(
        &self,
        key_id: &str,
        limits: &RateLimits,
        now_ms: i64,
    ) -> Result<UsageSnapshot, CountersError> {
        let p = Periods::at(now_ms);
        let n = self.names(key_id, None, &p);
        let mut conn = self.conn.clone();
        let v: Vec<i64> = self
            .scripts
            .snapshot
            .key(&n.minute)
            .key(&n.hour)
            .key(&n.key_day)
            .key(&n.key_month)
            .arg(p.second)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| CountersError(format!("the Redis snapshot script failed: {e}")))?;
        if v.len() != 16 {
            return Err(CountersError(format!(
                "the Redis snapshot script answered {} values, not 16",
                v.len()
            )));
        }
        let u = |i: usize| v[i].max(0) as u64;
        let used = [u(0), u(3), u(4), u(1), u(5), u(11)];
        let resets = resets(&p, v[2]);
        let mut report = LimitReport::default();
        for (i, kind) in LimitKind::ALL.into_iter().enumerate() {
            if let Some(limit) = kind.of(limits) {
                report.set(
                    kind,
                    Remaining {
                        limit,
                        remaining: limit.saturating_sub(used[i]),
                        reset_s: resets[i],
                    },
                );
            }
        }
        let figures = |at: usize| UsageFigures {
            requests: u(at),
            prompt_tokens: u(at + 2),
            completion_tokens: u(at + 3),
            spend: SpendFigures {
                spent_nanos: v[at + 4],
                reserved_nanos: v[at + 5],
            },
        };
        Ok(UsageSnapshot {
            limits: report,
            today: figures(4),
            month: figures(10),
        })
    }

    /// Records `nonce` for `ttl_s` seconds (at least 1); true when it was not seen
    /// before (`SET NX EX`). The nonce is stored hashed.
    pub async fn claim_nonce(&self, nonce: &str, ttl_s: u64) -> Result<bool, CountersError> {
        let name = format!(
            "{}n:{}",
            self.prefix,
            hex::encode(Sha256::digest(nonce.as_bytes()))
        );
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(&name)
            .arg("1")
            .arg("NX")
            .arg("EX")
            .arg(ttl_s.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| CountersError(format!("Redis could not record a nonce: {e}")))?;
        Ok(reply.is_some())
    }
}

/// A count as Redis integers hold them (a larger one cannot be real).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Seconds to reset of each limit, in [`LimitKind::ALL`] order.
fn resets(p: &Periods, minute_reset: i64) -> [u64; 6] {
    let minute = minute_reset.clamp(1, MINUTE_BUCKETS) as u64;
    [
        minute,
        p.hour_reset_s(),
        p.day_reset_s(),
        minute,
        p.day_reset_s(),
        p.month_reset_s(),
    ]
}

/// `id` as a key-name segment: itself when plain, else `~` and its bytes in hex
/// (`~` is never plain, so the two forms cannot collide).
fn safe(id: &str) -> String {
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        id.to_owned()
    } else {
        format!("~{}", hex::encode(id.as_bytes()))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ids_become_safe_key_segments() {
        assert_eq!(safe("key_01H8abc-x.y"), "key_01H8abc-x.y");
        assert_eq!(safe("a:b"), format!("~{}", hex::encode("a:b")));
        assert_eq!(
            safe("alice@example.com"),
            format!("~{}", hex::encode("alice@example.com"))
        );
        assert_eq!(safe(""), "~");
    }
}
