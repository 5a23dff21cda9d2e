//! Reports over the request log (SPEC §7): usage grouped by day, model, key or owner
//! with latency percentiles and errors by type; pages of log rows, newest first;
//! daily aggregates per key and model (`usage_daily`); and retention.
//!
//! - Time ranges are key ranges. A request id starts with its Unix milliseconds in hex
//!   (`req_<12 hex><12 hex>`), so `from..to` is `request_id >= 'req_<from>' AND
//!   request_id < 'req_<to>'` on the primary key, and a row's time (and day) is its
//!   id's time (`created_at` only for an id of another shape).
//! - The model of a call is the model that served it or, when none did (refused
//!   before routing, unknown model), the one it asked for:
//!   `COALESCE(model_served, model_requested)`. Filters and grouping use the same
//!   expression, so a total filtered by model equals that model's grouped row.
//! - Success is status < 400; every other status (499 `client_closed` included) is a
//!   failure. Percentiles are nearest-rank over the group's latencies, counted per
//!   value ([`Latencies`]): exact below 1,024 ms, at most 1/64 high above, so a group
//!   holds a few thousand counts however many calls it has.
//! - Portable SQL only, the same on SQLite and PostgreSQL: no date or percentile
//!   functions (days and percentiles are computed here, in Rust, from streamed rows),
//!   no `DELETE … LIMIT` (chunks are bounded by a key found first). Filtered queries
//!   are built as [`Sql`] (`$N` text and its values), one source for both backends.
//! - A report over whole UTC days that neither filters nor groups by owner folds the
//!   days' `usage_daily` rows (same figures: they keep latency counts per value)
//!   instead of streaming the log ([`Store::usage_report`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime};
use futures_util::TryStreamExt;

use super::sql::{Sql, Tuple};
use super::{now_ms, with_pool, Store, StoreError, UsageRowView, TAKE_TURN};

/// The largest time a request id can hold (12 hex digits of milliseconds).
const MAX_ID_MS: i64 = 0xffff_ffff_ffff;
/// Rows per INSERT when `usage_daily` is rewritten (18 values each).
const DAILY_ROWS_PER_STATEMENT: usize = 64;

/// A field usage rows can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupBy {
    /// UTC day, `YYYY-MM-DD`.
    Day,
    /// The model served (else asked for).
    Model,
    /// The client key id.
    Key,
    /// The client key's owner.
    Owner,
}

impl GroupBy {
    /// Every value, in the order the API lists them.
    pub const ALL: [GroupBy; 4] = [GroupBy::Day, GroupBy::Model, GroupBy::Key, GroupBy::Owner];

    /// The name used in `group_by=`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Model => "model",
            GroupBy::Key => "key",
            GroupBy::Owner => "owner",
        }
    }

    /// The value named `name` (as in `group_by=`), if any.
    pub fn parse(name: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which request log rows a report or a log page covers. `None` filters nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Client key id.
    pub key_id: Option<String>,
    /// The client key's owner.
    pub owner: Option<String>,
    /// The model served, else the one asked for (see the module notes).
    pub model: Option<String>,
    /// First Unix millisecond included.
    pub from_ms: Option<i64>,
    /// First Unix millisecond excluded.
    pub to_ms: Option<i64>,
}

/// A usage report: which rows, and what to group them by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// The rows counted.
    pub filter: ReportFilter,
    /// Group fields, in order; empty: one row of totals.
    pub group_by: Vec<GroupBy>,
}

/// A status filter for log pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// This status exactly.
    Exact(u16),
    /// A class: `Class(4)` is 400–499.
    Class(u16),
}

/// Which rows a page of logs shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Key, owner, model and time range.
    pub filter: ReportFilter,
    /// Status, exact or by class.
    pub status: Option<StatusFilter>,
    /// The data-free error label (`upstream_server_error`, `rate_limited`, `client_closed`, …).
    pub error_type: Option<String>,
}

/// One row of a usage report: the group's values and its figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRow {
    /// The UTC day (`YYYY-MM-DD`), when grouped by day.
    pub day: Option<String>,
    /// The model, when grouped by model (`None` also for calls that named none).
    pub model: Option<String>,
    /// The client key id, when grouped by key.
    pub key_id: Option<String>,
    /// The owner, when grouped by owner (`None` also for keys without an owner).
    pub owner: Option<String>,
    /// Calls.
    pub requests: i64,
    /// Calls answered with a status below 400.
    pub successes: i64,
    /// Calls answered with 400 or above.
    pub failures: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Cost in nano-units of the configured currency.
    pub cost_nanos: i64,
    /// Median latency (nearest rank); `None` without calls.
    pub p50_ms: Option<i64>,
    /// 95th percentile latency.
    pub p95_ms: Option<i64>,
    /// 99th percentile latency.
    pub p99_ms: Option<i64>,
    /// Calls per error type (rows with an error type only).
    pub errors: BTreeMap<String, i64>,
}

impl ReportRow {
    /// The cost in units of the configured currency.
    pub fn cost(&self) -> f64 {
        self.cost_nanos as f64 / 1e9
    }
}

/// One row of `usage_daily`: a UTC day's calls of one key and model.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Client key id; empty when the calls had none.
    pub key_id: String,
    /// Model served, else asked for; empty when neither.
    pub model: String,
    /// The key's owner in the day's newest row.
    pub owner: Option<String>,
    pub requests: i64,
    pub successes: i64,
    pub failures: i64,
    /// `{"error_type": count}` as JSON text.
    pub errors: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
    pub latency_avg_ms: i64,
    pub latency_p95_ms: i64,
    pub latency_p99_ms: i64,
    /// The sum of the latencies (the average's numerator, so that batches add up).
    pub latency_sum_ms: i64,
    /// The latencies as [`Latencies`] counts them ([`Latencies::to_bytes`]), so that
    /// the percentiles of a day stay exact as batches are added.
    pub latency_counts: Vec<u8>,
    /// Unix ms of the write that last changed it.
    pub updated_at: i64,
    /// Calls that reached a model (request log rows with a `model_served`); -1 when
    /// unknown (a row from before migration 0008, until it is recomputed).
    pub admitted: i64,
}

/// The columns of `usage_daily`, in [`DailyRow`]'s order.
pub(super) const DAILY_COLUMNS: &str = "day, key_id, model, owner, requests, successes, failures,
    errors, prompt_tokens, completion_tokens, cost_nanos, latency_avg_ms, latency_p95_ms,
    latency_p99_ms, latency_sum_ms, latency_counts, updated_at, admitted";

/// Binds a [`DailyRow`]'s values in [`DAILY_COLUMNS`] order (for
/// [`Sql::push_values`]).
pub(super) fn bind_daily(b: &mut Tuple<'_>, r: &DailyRow) {
    b.bind(r.day.as_str())
        .bind(r.key_id.as_str())
        .bind(r.model.as_str())
        .bind(r.owner.as_deref())
        .bind(r.requests)
        .bind(r.successes)
        .bind(r.failures)
        .bind(r.errors.as_str())
        .bind(r.prompt_tokens)
        .bind(r.completion_tokens)
        .bind(r.cost_nanos)
        .bind(r.latency_avg_ms)
        .bind(r.latency_p95_ms)
        .bind(r.latency_p99_ms)
        .bind(r.latency_sum_ms)
        .bind(r.latency_counts.as_slice())
        .bind(r.updated_at)
        .bind(r.admitted);
}

/// The columns a report reads of each row.
#[derive(Debug, sqlx::FromRow)]
struct ScanRow {
    request_id: String,
    created_at: i64,
    key_id: Option<String>,
    owner: Option<String>,
    model: Option<String>,
    status: i64,
    error_type: Option<String>,
    latency_ms: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_nanos: i64,
    admitted: bool,
}

const SCAN_COLUMNS: &str = "SELECT request_id, created_at, key_id, owner,
        COALESCE(model_served, model_requested) AS model, status, error_type, latency_ms,
        prompt_tokens, completion_tokens, cost_nanos, model_served IS NOT NULL AS admitted
    FROM request_logs";

/// The figures of one call that aggregates count.
pub(super) struct Call<'a> {
    pub status: i64,
    pub error_type: Option<&'a str>,
    pub latency_ms: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
    pub owner: Option<&'a str>,
    /// The call reached a model.
    pub admitted: bool,
}

/// Figures of one group while rows stream by (or while a batch is folded in).
#[derive(Debug, Default)]
pub(super) struct Acc {
    requests: i64,
    successes: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_nanos: i64,
    latency_sum: i64,
    latencies: Latencies,
    errors: BTreeMap<String, i64>,
    /// The newest owner seen (rows arrive oldest first).
    owner: Option<String>,
    admitted: i64,
    /// Some calls counted here have an unknown `admitted` (a stored row from before
    /// migration 0008).
    admitted_unknown: bool,
}

impl Acc {
    fn add(&mut self, row: ScanRow) {
        self.add_call(Call {
            status: row.status,
            error_type: row.error_type.as_deref(),
            latency_ms: row.latency_ms,
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            cost_nanos: row.cost_nanos,
            owner: row.owner.as_deref(),
            admitted: row.admitted,
        });
    }

    /// Counts one call; calls come oldest first (its owner replaces an earlier one).
    pub(super) fn add_call(&mut self, call: Call<'_>) {
        self.requests += 1;
        if call.status < 400 {
            self.successes += 1;
        }
        if call.admitted {
            self.admitted += 1;
        }
        self.prompt_tokens += call.prompt_tokens;
        self.completion_tokens += call.completion_tokens;
        self.cost_nanos += call.cost_nanos;
        self.latency_sum += call.latency_ms;
        self.latencies.add(call.latency_ms);
        if let Some(error) = call.error_type {
            match self.errors.get_mut(error) {
                Some(count) => *count += 1,
                None => {
                    self.errors.insert(error.to_owned(), 1);
                }
            }
        }
        if let Some(owner) = call.owner {
            if self.owner.as_deref() != Some(owner) {
                self.owner = Some(owner.to_owned());
            }
        }
    }

    /// Adds `newer`'s figures (its owner, when it has one, replaces this one's).
    pub(super) fn merge(&mut self, newer: Acc) {
        self.requests += newer.requests;
        self.successes += newer.successes;
        self.admitted += newer.admitted;
        self.admitted_unknown |= newer.admitted_unknown;
        self.prompt_tokens += newer.prompt_tokens;
        self.completion_tokens += newer.completion_tokens;
        self.cost_nanos += newer.cost_nanos;
        self.latency_sum += newer.latency_sum;
        for (value, count) in newer.latencies.counts {
            *self.latencies.counts.entry(value).or_insert(0) += count;
        }
        self.latencies.total += newer.latencies.total;
        for (error, count) in newer.errors {
            *self.errors.entry(error).or_insert(0) += count;
        }
        if newer.owner.is_some() {
            self.owner = newer.owner;
        }
    }

    /// The figures a stored row holds. Its `errors` and `latency_counts` are written
    /// only here; one that does not read (edited by hand) counts as empty, with a
    /// warning, rather than stopping the request log's writes.
    pub(super) fn from_daily(row: DailyRow) -> Acc {
        let unreadable = |column: &str| {
            tracing::warn!(day = %row.day, key_id = %row.key_id, model = %row.model, column, "a usage_daily column does not read; counted as empty");
        };
        let errors = serde_json::from_str(&row.errors).unwrap_or_else(|_| {
            unreadable("errors");
            BTreeMap::new()
        });
        let latencies = Latencies::from_bytes(&row.latency_counts).unwrap_or_else(|| {
            unreadable("latency_counts");
            Latencies::default()
        });
        Acc {
            requests: row.requests,
            successes: row.successes,
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            cost_nanos: row.cost_nanos,
            latency_sum: row.latency_sum_ms,
            latencies,
            errors,
            owner: row.owner,
            admitted: row.admitted.max(0),
            admitted_unknown: row.admitted < 0,
        }
    }

    /// The `usage_daily` row of these figures.
    pub(super) fn daily_row(
        self,
        day: String,
        key_id: String,
        model: String,
        updated_at: i64,
    ) -> DailyRow {
        let errors = serde_json::to_string(&self.errors).unwrap_or_else(|_| "{}".into());
        let latency_counts = self.latencies.to_bytes();
        DailyRow {
            day,
            key_id,
            model,
            owner: self.owner,
            requests: self.requests,
            successes: self.successes,
            failures: self.requests - self.successes,
            errors,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cost_nanos: self.cost_nanos,
            latency_avg_ms: (self.latency_sum as f64 / self.requests.max(1) as f64).round() as i64,
            latency_p95_ms: self.latencies.percentile(95).unwrap_or(0),
            latency_p99_ms: self.latencies.percentile(99).unwrap_or(0),
            latency_sum_ms: self.latency_sum,
            latency_counts,
            updated_at,
            admitted: if self.admitted_unknown {
                -1
            } else {
                self.admitted
            },
        }
    }
}

/// Latencies below this are counted one value each.
const EXACT_BELOW_MS: i64 = 1024;
/// Above it, each power of two is cut into 2^6 = 64 buckets.
const BUCKETS_PER_POWER_LOG2: u32 = 6;

/// A group's latencies as counts per value (see the module notes). Keeping every
/// latency made a day's aggregates as large as its calls (8 bytes each).
#[derive(Debug, Default)]
pub(super) struct Latencies {
    counts: BTreeMap<i64, u64>,
    total: u64,
}

impl Latencies {
    fn add(&mut self, ms: i64) {
        *self.counts.entry(bucket_top(ms)).or_insert(0) += 1;
        self.total += 1;
    }

    /// The counts as bytes: one unsigned LEB128 number per place ([`slot_of`]) from
    /// 0 ms to the largest value counted, so a day whose calls took under a second
    /// is at most a few KiB, and adding a batch to it costs microseconds.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let Some(&largest) = self.counts.keys().next_back() else {
            return Vec::new();
        };
        let mut dense = vec![0_u64; slot_of(largest) + 1];
        for (&value, &count) in &self.counts {
            if let Some(place) = dense.get_mut(slot_of(value)) {
                *place += count;
            }
        }
        let mut bytes = Vec::with_capacity(dense.len() + 16);
        for mut count in dense {
            while count >= 0x80 {
                bytes.push((count & 0x7f) as u8 | 0x80);
                count >>= 7;
            }
            bytes.push(count as u8);
        }
        bytes
    }

    /// The counts [`Latencies::to_bytes`] wrote; `None` when `bytes` are not such.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Latencies> {
        let mut latencies = Latencies::default();
        let (mut slot, mut count, mut shift) = (0_usize, 0_u64, 0_u32);
        for &byte in bytes {
            if shift > 63 {
                return None;
            }
            count |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 != 0 {
                shift += 7;
                continue;
            }
            if count > 0 {
                latencies.counts.insert(value_of(slot)?, count);
                latencies.total += count;
            }
            (slot, count, shift) = (slot + 1, 0, 0);
        }
        (shift == 0).then_some(latencies)
    }

    /// The nearest-rank percentile `p` (0–100); `None` without latencies.
    fn percentile(&self, p: u32) -> Option<i64> {
        let rank = (self.total * u64::from(p))
            .div_ceil(100)
            .clamp(1, self.total.max(1));
        let mut seen = 0;
        for (&value, &count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(value);
            }
        }
        None
    }
}

/// The value a latency is counted as: itself below [`EXACT_BELOW_MS`], else the
/// largest value of its bucket (at most 1/64 above it).
fn bucket_top(ms: i64) -> i64 {
    if ms < EXACT_BELOW_MS {
        return ms;
    }
    let power = 63 - ms.leading_zeros();
    let width = 1_i64 << (power - BUCKETS_PER_POWER_LOG2);
    ms | (width - 1)
}

/// The powers of two counted one value each ([`EXACT_BELOW_MS`] = 2^10).
const EXACT_POWERS: u32 = EXACT_BELOW_MS.trailing_zeros();

/// The place of a counted value (a [`bucket_top`]) in [`Latencies::to_bytes`]: values
/// below [`EXACT_BELOW_MS`] one place each, then 64 places per power of two.
fn slot_of(value: i64) -> usize {
    let value = value.max(0);
    if value < EXACT_BELOW_MS {
        return value as usize;
    }
    let power = 63 - value.leading_zeros();
    let sub = (value >> (power - BUCKETS_PER_POWER_LOG2)) & ((1 << BUCKETS_PER_POWER_LOG2) - 1);
    EXACT_BELOW_MS as usize
        + (((power - EXACT_POWERS) as usize) << BUCKETS_PER_POWER_LOG2)
        + sub as usize
}

/// The counted value at place `slot` (the inverse of [`slot_of`]).
fn value_of(slot: usize) -> Option<i64> {
    let Some(above) = slot.checked_sub(EXACT_BELOW_MS as usize) else {
        return i64::try_from(slot).ok();
    };
    let power = EXACT_POWERS + u32::try_from(above >> BUCKETS_PER_POWER_LOG2).ok()?;
    if power > 62 {
        return None;
    }
    let sub = (above & ((1 << BUCKETS_PER_POWER_LOG2) - 1)) as i64;
    let shift = power - BUCKETS_PER_POWER_LOG2;
    Some((((1 << BUCKETS_PER_POWER_LOG2) + sub) << shift) | ((1_i64 << shift) - 1))
}

/// The time of a request id (`req_<12 hex digits of Unix ms>…`), if it has that shape.
pub fn id_time_ms(request_id: &str) -> Option<i64> {
    let hex = request_id.strip_prefix("req_")?.get(..12)?;
    i64::from_str_radix(hex, 16).ok()
}

/// The smallest request id of `ms` or later: the start of a key range.
pub fn id_at(ms: i64) -> String {
    format!("req_{:012x}", ms.clamp(0, MAX_ID_MS))
}

/// Unix ms at the start of a UTC day.
pub fn day_start_ms(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// Unix ms at the start of a UTC day and of the next one.
pub fn day_range_ms(day: NaiveDate) -> (i64, i64) {
    let start = day_start_ms(day);
    (start, start + 86_400_000)
}

/// The UTC day of a Unix millisecond.
pub fn day_of_ms(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

fn row_time_ms(row: &ScanRow) -> i64 {
    id_time_ms(&row.request_id).unwrap_or(row.created_at)
}

/// `WHERE …` for a filter (always present, so callers can append `AND …`).
fn push_filter(q: &mut Sql, f: &ReportFilter) {
    q.push(" WHERE 1 = 1");
    if let Some(from) = f.from_ms {
        q.push(" AND request_id >= ").push_bind(id_at(from));
    }
    if let Some(to) = f.to_ms {
        q.push(" AND request_id < ").push_bind(id_at(to));
    }
    if let Some(key_id) = &f.key_id {
        q.push(" AND key_id = ").push_bind(key_id.as_str());
    }
    if let Some(owner) = &f.owner {
        q.push(" AND owner = ").push_bind(owner.as_str());
    }
    if let Some(model) = &f.model {
        q.push(" AND COALESCE(model_served, model_requested) = ")
            .push_bind(model.as_str());
    }
}

/// The scan of the rows `filter` selects, oldest first.
fn scan_query(filter: &ReportFilter) -> Sql {
    let mut q = Sql::new(SCAN_COLUMNS);
    push_filter(&mut q, filter);
    q.push(" ORDER BY request_id");
    q
}

/// A group's identity: one value per group field, in the query's order.
type GroupKey = Vec<Option<String>>;

/// The report's rows from its groups' figures, sorted by the group fields (one row of
/// totals when ungrouped, also with no calls).
fn report_rows(query: &ReportQuery, mut groups: HashMap<GroupKey, Acc>) -> Vec<ReportRow> {
    if query.group_by.is_empty() && groups.is_empty() {
        groups.insert(Vec::new(), Acc::default());
    }
    let mut out: Vec<(GroupKey, ReportRow)> = groups
        .into_iter()
        .map(|(key, acc)| {
            let mut row = ReportRow {
                requests: acc.requests,
                successes: acc.successes,
                failures: acc.requests - acc.successes,
                prompt_tokens: acc.prompt_tokens,
                completion_tokens: acc.completion_tokens,
                cost_nanos: acc.cost_nanos,
                p50_ms: acc.latencies.percentile(50),
                p95_ms: acc.latencies.percentile(95),
                p99_ms: acc.latencies.percentile(99),
                errors: acc.errors,
                ..ReportRow::default()
            };
            for (g, value) in query.group_by.iter().zip(key.iter().cloned()) {
                match g {
                    GroupBy::Day => row.day = value,
                    GroupBy::Model => row.model = value,
                    GroupBy::Key => row.key_id = value,
                    GroupBy::Owner => row.owner = value,
                }
            }
            (key, row)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, row)| row).collect()
}

impl Store {
    /// Usage of the rows `query` selects, one row per group (one row of totals, also
    /// when nothing matches, without group fields). Rows are sorted by the group
    /// fields in order (days ascending). Whole UTC days whose log rows are all kept,
    /// without owner filter or grouping, are read from `usage_daily` (a few rows a day:
    /// the dashboard's overview asks for the last days every 30 s); other queries
    /// stream the log, one latency per row in memory.
    pub async fn usage_report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, StoreError> {
        match self.whole_days(query).await? {
            Some((first, last)) => self.usage_report_from_daily(query, first, last).await,
            None => self.usage_report_from_log(query).await,
        }
    }

    /// The days `query` covers when `usage_daily` answers it exactly: its range is
    /// whole UTC days (open-ended or not) and it neither filters nor groups by owner
    /// (`usage_daily` keeps one owner per day, key and model: the newest). The range
    /// starts no earlier than the log's oldest day: retention deletes the oldest days'
    /// rows and `usage_daily` outlives them, but a report reads what the log holds.
    async fn whole_days(
        &self,
        query: &ReportQuery,
    ) -> Result<Option<(NaiveDate, NaiveDate)>, StoreError> {
        let f = &query.filter;
        let day_start = |ms: i64| day_start_ms(day_of_ms(ms)) == ms;
        let plain = |id: &Option<String>| id.as_deref() != Some("");
        let Some(from_ms) = f.from_ms.filter(|&ms| day_start(ms)) else {
            return Ok(None);
        };
        let last = match f.to_ms {
            None => NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
            Some(to_ms) if day_start(to_ms) && to_ms > from_ms => day_of_ms(to_ms - 1),
            Some(_) => return Ok(None),
        };
        if f.owner.is_some()
            || query.group_by.contains(&GroupBy::Owner)
            || !plain(&f.key_id)
            || !plain(&f.model)
        {
            return Ok(None);
        }
        // No log rows at all: nothing to report, and nothing to scan.
        let oldest = self.oldest_log_day().await?;
        Ok(oldest.map(|oldest| (day_of_ms(from_ms).max(oldest), last)))
    }

    /// [`Store::usage_report`] from the `usage_daily` rows of `first..=last`.
    async fn usage_report_from_daily(
        &self,
        query: &ReportQuery,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let f = &query.filter;
        let given = |text: String| (!text.is_empty()).then_some(text);
        let mut groups: HashMap<GroupKey, Acc> = HashMap::new();
        for row in self.daily_rows(first, last).await? {
            if f.key_id.as_ref().is_some_and(|k| *k != row.key_id)
                || f.model.as_ref().is_some_and(|m| *m != row.model)
            {
                continue;
            }
            let key = query
                .group_by
                .iter()
                .map(|g| match g {
                    GroupBy::Day => Some(row.day.clone()),
                    GroupBy::Model => given(row.model.clone()),
                    GroupBy::Key => given(row.key_id.clone()),
                    GroupBy::Owner => row.owner.clone(), // not asked of usage_daily
                })
                .collect::<GroupKey>();
            groups.entry(key).or_default().merge(Acc::from_daily(row));
        }
        Ok(report_rows(query, groups))
    }

    /// [`Store::usage_report`] from the request log's rows, streamed.
    async fn usage_report_from_log(
        &self,
        query: &ReportQuery,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let mut groups: HashMap<GroupKey, Acc> = HashMap::new();
        self.scan(&scan_query(&query.filter), |row| {
            let key = query
                .group_by
                .iter()
                .map(|g| match g {
                    GroupBy::Day => Some(day_of_ms(row_time_ms(&row)).to_string()),
                    GroupBy::Model => row.model.clone(),
                    GroupBy::Key => row.key_id.clone(),
                    GroupBy::Owner => row.owner.clone(),
                })
                .collect::<GroupKey>();
            groups.entry(key).or_default().add(row);
        })
        .await?;
        Ok(report_rows(query, groups))
    }

    /// Up to `limit` request log rows that `query` selects, newest first, older than
    /// the `cursor` request id when one is given; and the cursor of the next page
    /// (the last row's id) when there are more. Keyset paging on the primary key:
    /// pages stay stable while new rows arrive.
    pub async fn logs_page(
        &self,
        query: &LogQuery,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<UsageRowView>, Option<String>), StoreError> {
        let limit = limit.max(1);
        // Every column, so that UsageRowView can grow without this query changing.
        let mut q = Sql::new("SELECT * FROM request_logs");
        push_filter(&mut q, &query.filter);
        match query.status {
            Some(StatusFilter::Exact(status)) => {
                q.push(" AND status = ").push_bind(i64::from(status));
            }
            Some(StatusFilter::Class(class)) => {
                let low = i64::from(class) * 100;
                q.push(" AND status >= ").push_bind(low);
                q.push(" AND status < ").push_bind(low + 100);
            }
            None => {}
        }
        if let Some(error_type) = &query.error_type {
            q.push(" AND error_type = ").push_bind(error_type.as_str());
        }
        if let Some(cursor) = cursor {
            q.push(" AND request_id < ").push_bind(cursor);
        }
        q.push(" ORDER BY request_id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut rows: Vec<UsageRowView> = with_pool!(self, pool => {
            sqlx::query_as_with(q.text(), q.arguments(pool)?)
                .fetch_all(pool)
                .await?
        });
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.request_id.clone())
        } else {
            None
        };
        Ok((rows, next))
    }

    /// Recomputes `usage_daily` for one UTC day from its request log rows (one key
    /// range), replacing the day's rows in one transaction; answers how many groups
    /// it wrote. Idempotent. A day without request log rows (say, past retention) is
    /// left as it is, so aggregates outlive the rows they came from.
    pub async fn refresh_daily(&self, day: NaiveDate) -> Result<usize, StoreError> {
        let (start, end) = day_range_ms(day);
        let filter = ReportFilter {
            from_ms: Some(start),
            to_ms: Some(end),
            ..ReportFilter::default()
        };
        let mut groups: BTreeMap<(String, String), Acc> = BTreeMap::new();
        self.scan(&scan_query(&filter), |row| {
            let key = (
                row.key_id.clone().unwrap_or_default(),
                row.model.clone().unwrap_or_default(),
            );
            groups.entry(key).or_default().add(row);
        })
        .await?;
        if groups.is_empty() {
            return Ok(0);
        }
        let day_text = day.to_string();
        let updated_at = now_ms();
        let rows: Vec<DailyRow> = groups
            .into_iter()
            .map(|((key_id, model), acc)| {
                acc.daily_row(day_text.clone(), key_id, model, updated_at)
            })
            .collect();
        let inserts: Vec<Sql> = rows
            .chunks(DAILY_ROWS_PER_STATEMENT)
            .map(|block| {
                let mut insert =
                    Sql::new(format!("INSERT INTO usage_daily ({DAILY_COLUMNS}) VALUES "));
                insert.push_values(block, bind_daily);
                insert
            })
            .collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Refreshes of the table (other replicas, retention) take turns: on
            // PostgreSQL two could otherwise both insert the day's rows.
            sqlx::query(TAKE_TURN)
                .bind("usage_daily")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM usage_daily WHERE day = $1")
                .bind(&day_text)
                .execute(&mut *tx)
                .await?;
            for insert in &inserts {
                sqlx::query_with(insert.text(), insert.arguments(pool)?)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(rows.len())
    }

    /// The `usage_daily` rows of the days `from..=to`, by day, key and model.
    pub async fn daily_rows(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyRow>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, DailyRow>(&format!(
                "SELECT {DAILY_COLUMNS} FROM usage_daily
                 WHERE day >= $1 AND day <= $2 ORDER BY day, key_id, model"
            ))
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(pool)
            .await?
        }))
    }

    /// True when `usage_daily` holds any row of `day`.
    pub async fn has_daily(&self, day: NaiveDate) -> Result<bool, StoreError> {
        let found: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT day FROM usage_daily WHERE day = $1 LIMIT 1")
                .bind(day.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    /// True when the request log holds any row in `from_ms..to_ms` (one key lookup).
    pub async fn has_logs_between(&self, from_ms: i64, to_ms: i64) -> Result<bool, StoreError> {
        let found: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT request_id FROM request_logs
                 WHERE request_id >= $1 AND request_id < $2 ORDER BY request_id LIMIT 1",
            )
            .bind(id_at(from_ms))
            .bind(id_at(to_ms))
            .fetch_optional(pool)
            .await?
        });
        Ok(found.is_some())
    }

    /// The UTC day of the oldest request log row (by id), if there is one.
    pub async fn oldest_log_day(&self) -> Result<Option<NaiveDate>, StoreError> {
        let oldest: Option<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT request_id, created_at FROM request_logs ORDER BY request_id LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        Ok(oldest.map(|(id, created_at)| day_of_ms(id_time_ms(&id).unwrap_or(created_at))))
    }

    /// Deletes up to `chunk` of the oldest request log rows whose ids are below
    /// `before_ms`'s (a key range), in one short transaction; answers how many went.
    /// The chunk's last id is found first by a read, so the delete is a plain range.
    pub async fn delete_logs_chunk(&self, before_ms: i64, chunk: u32) -> Result<u64, StoreError> {
        let end = id_at(before_ms);
        let last: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT MAX(request_id) FROM (SELECT request_id FROM request_logs
                     WHERE request_id < $1 ORDER BY request_id LIMIT $2) AS chunk",
            )
            .bind(&end)
            .bind(i64::from(chunk.max(1)))
            .fetch_one(pool)
            .await?
        });
        let Some(last) = last else {
            return Ok(0);
        };
        let deleted = with_pool!(self, pool => {
            sqlx::query("DELETE FROM request_logs WHERE request_id <= $1")
                .bind(&last)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }

    /// Streams the rows of `q` (a scan: [`SCAN_COLUMNS`] and a filter) to `each`.
    async fn scan(&self, q: &Sql, mut each: impl FnMut(ScanRow)) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut rows = sqlx::query_as_with::<_, ScanRow, _>(q.text(), q.arguments(pool)?)
                .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                each(row);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
