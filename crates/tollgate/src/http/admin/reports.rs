//! Usage, costs and logs (SPEC §7, §8): `GET /admin/api/usage`, `/admin/api/costs`
//! and `/admin/api/logs`, as JSON or, with `format=csv`, as CSV (RFC 4180).
//!
//! Filters: `key_id`, `owner`, `model` (the model that served the call, else the one
//! it asked for), `from` and `to`. A time is a UTC date `YYYY-MM-DD` (its start; as
//! `to`, the whole day is included), an RFC 3339 time or Unix milliseconds; `from`
//! is included and `to` excluded. Reports group by `group_by=day|model|key|owner`
//! (comma-separated to combine, e.g. `day,model`; absent: one row of totals). Logs
//! are newest first, paged by `cursor` (the last request id of the previous page).
//! Empty parameters count as absent. The queries are in `store/reports.rs`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{header, HeaderValue};
use serde::Serialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{query_params, route, AdminError, AdminRoute, Page};
use crate::app::AppState;
use crate::store::{
    GroupBy, LogQuery, ReportFilter, ReportQuery, ReportRow, StatusFilter, UsageRowView,
};

/// The report routes (the router and the OpenAPI document are built from them).
pub const ROUTES: &[AdminRoute] = &[
    route("GET", "/admin/api/usage", || get(usage)),
    route("GET", "/admin/api/costs", || get(costs)),
    route("GET", "/admin/api/logs", || get(logs)),
];

/// The report routes' part of the OpenAPI document (merged by `openapi.rs`).
#[derive(OpenApi)]
#[openapi(
    paths(usage, costs, logs),
    tags((name = "reports", description = "Usage, costs and logs (SPEC §7)"))
)]
pub struct ReportsDoc;

/// Log rows per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` of a JSON page.
const MAX_LIMIT: u32 = 1_000;
/// The largest `limit` of a CSV page (an export).
const MAX_CSV_LIMIT: u32 = 10_000;
/// Unix milliseconds below this (March 1973) are taken for a mistake: seconds.
const MIN_PLAUSIBLE_MS: i64 = 100_000_000_000;

const REPORT_PARAMS: &[&str] = &[
    "key_id", "owner", "model", "from", "to", "group_by", "format",
];
const LOG_PARAMS: &[&str] = &[
    "key_id",
    "owner",
    "model",
    "from",
    "to",
    "status",
    "error_type",
    "limit",
    "cursor",
    "format",
];

/// Query parameters of `/admin/api/usage` and `/admin/api/costs`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportParams {
    /// Only this client key's calls.
    key_id: Option<String>,
    /// Only calls of keys with this owner.
    owner: Option<String>,
    /// Only calls of this model (the model that served the call, else the one it asked for).
    model: Option<String>,
    /// Start, included: `YYYY-MM-DD` (UTC), RFC 3339 or Unix milliseconds.
    from: Option<String>,
    /// End, excluded; a date `YYYY-MM-DD` includes that whole UTC day.
    to: Option<String>,
    /// `day`, `model`, `key` or `owner`; comma-separated to combine (`day,model`).
    /// Absent: one row of totals.
    group_by: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Query parameters of `/admin/api/logs`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LogParams {
    /// Only this client key's calls.
    key_id: Option<String>,
    /// Only calls of keys with this owner.
    owner: Option<String>,
    /// Only calls of this model (served, else asked for).
    model: Option<String>,
    /// Start, included: `YYYY-MM-DD` (UTC), RFC 3339 or Unix milliseconds.
    from: Option<String>,
    /// End, excluded; a date `YYYY-MM-DD` includes that whole UTC day.
    to: Option<String>,
    /// An exact status (`429`) or a class (`4xx`, `5xx`).
    status: Option<String>,
    /// Only calls with this error type (`upstream_server_error`, `rate_limited`, `client_closed`, …).
    error_type: Option<String>,
    /// Rows per page: 1–1000 (CSV: 1–10000), default 100.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `json` (default) or `csv` (the next cursor then comes in `x-next-cursor`).
    format: Option<String>,
}

/// One usage row: the group fields asked for (only those), then the figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReportRow {
    /// UTC day, `YYYY-MM-DD` (grouped by `day`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Model (grouped by `model`); `null` for calls that named none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub model: Option<Option<String>>,
    /// Client key id (grouped by `key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub key_id: Option<Option<String>>,
    /// Owner (grouped by `owner`); `null` for keys without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub owner: Option<Option<String>>,
    /// Calls.
    pub requests: i64,
    /// Calls answered below 400.
    pub successes: i64,
    /// Calls answered 400 or above (499: the client went away).
    pub failures: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Cost in the configured currency.
    pub cost: f64,
    /// Median latency in ms (nearest rank); `null` without calls.
    pub p50_ms: Option<i64>,
    /// 95th percentile latency in ms.
    pub p95_ms: Option<i64>,
    /// 99th percentile latency in ms.
    pub p99_ms: Option<i64>,
    /// Calls per error type.
    pub errors: BTreeMap<String, i64>,
}

/// One cost row: the group fields asked for, then calls, tokens and cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostReportRow {
    /// UTC day, `YYYY-MM-DD` (grouped by `day`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Model (grouped by `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub model: Option<Option<String>>,
    /// Client key id (grouped by `key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub key_id: Option<Option<String>>,
    /// Owner (grouped by `owner`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub owner: Option<Option<String>>,
    /// Calls.
    pub requests: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Cost in the configured currency.
    pub cost: f64,
}

/// `GET /admin/api/usage`: rows sorted by the group fields (days ascending).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    /// One row per group.
    pub data: Vec<UsageReportRow>,
    /// Always `null`: a report is one page.
    pub next_cursor: Option<String>,
    /// The currency of `cost` (`budgets.currency`).
    pub currency: String,
}

/// `GET /admin/api/costs`: rows sorted by cost, highest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostReport {
    /// One row per group.
    pub data: Vec<CostReportRow>,
    /// Always `null`: a report is one page.
    pub next_cursor: Option<String>,
    /// The currency of `cost` (`budgets.currency`).
    pub currency: String,
}

/// One logged call (SPEC §7).
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    pub request_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The same time, RFC 3339 (UTC).
    pub time: String,
    pub key_id: Option<String>,
    pub owner: Option<String>,
    /// The client route, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    pub model_requested: Option<String>,
    pub model_served: Option<String>,
    pub provider: Option<String>,
    pub upstream_key_id: Option<String>,
    pub status: i64,
    pub error_type: Option<String>,
    pub stream: bool,
    pub latency_ms: i64,
    /// Time to the first byte of the answer, ms.
    pub ttfb_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// True when the upstream reported no usage and tokens were counted.
    pub usage_estimated: bool,
    /// Cost in the configured currency.
    pub cost: f64,
    /// The model asked for, when a soft budget downgraded the call.
    pub downgraded_from: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl From<UsageRowView> for LogEntry {
    fn from(r: UsageRowView) -> Self {
        LogEntry {
            time: super::time(r.created_at),
            request_id: r.request_id,
            created_at: r.created_at,
            key_id: r.key_id,
            owner: r.owner,
            endpoint: r.endpoint,
            model_requested: r.model_requested,
            model_served: r.model_served,
            provider: r.provider,
            upstream_key_id: r.upstream_key_id,
            status: r.status,
            error_type: r.error_type,
            stream: r.stream,
            latency_ms: r.latency_ms,
            ttfb_ms: r.ttfb_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            usage_estimated: r.usage_estimated,
            cost: r.cost_nanos as f64 / 1e9,
            downgraded_from: r.downgraded_from,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
        }
    }
}

/// Usage grouped by day, model, key or owner.
#[utoipa::path(
    get,
    operation_id = "usage_report",
    path = "/admin/api/usage",
    tag = "reports",
    params(ReportParams),
    responses(
        (status = 200, description = "Usage rows: the group fields, then requests, successes, failures, tokens, cost, latency percentiles and errors by type. With `format=csv`: the same rows as CSV with a header row (`errors` as JSON).", body = UsageReport),
        (status = 400, description = "A parameter is not valid; `param` names it.", body = super::ErrorEnvelope),
        (status = 401, description = "No valid admin session.", body = super::ErrorEnvelope),
    ),
)]
pub async fn usage(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminError> {
    let params = query_params(&request, REPORT_PARAMS)?;
    let (query, csv) = report_query(&params)?;
    let rows = state.store.usage_report(&query).await?;
    if csv {
        return Ok(usage_csv(&query.group_by, &rows));
    }
    let data = rows.iter().map(|r| usage_row(&query.group_by, r)).collect();
    Ok(axum::Json(UsageReport {
        data,
        next_cursor: None,
        currency: state.config.budgets.currency.clone(),
    })
    .into_response())
}

/// Costs grouped by day, model, key or owner, highest first.
#[utoipa::path(
    get,
    operation_id = "cost_report",
    path = "/admin/api/costs",
    tag = "reports",
    params(ReportParams),
    responses(
        (status = 200, description = "Cost rows, highest cost first: the group fields, then requests, prompt and completion tokens and cost. With `format=csv`: the same rows as CSV with a header row.", body = CostReport),
        (status = 400, description = "A parameter is not valid; `param` names it.", body = super::ErrorEnvelope),
        (status = 401, description = "No valid admin session.", body = super::ErrorEnvelope),
    ),
)]
pub async fn costs(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminError> {
    let params = query_params(&request, REPORT_PARAMS)?;
    let (query, csv) = report_query(&params)?;
    let mut rows = state.store.usage_report(&query).await?;
    // Highest cost first; ties keep the group order.
    rows.sort_by_key(|r| std::cmp::Reverse(r.cost_nanos));
    if csv {
        return Ok(costs_csv(&query.group_by, &rows));
    }
    let data = rows.iter().map(|r| cost_row(&query.group_by, r)).collect();
    Ok(axum::Json(CostReport {
        data,
        next_cursor: None,
        currency: state.config.budgets.currency.clone(),
    })
    .into_response())
}

/// Logged calls, newest first, one page at a time.
#[utoipa::path(
    get,
    operation_id = "list_logs",
    path = "/admin/api/logs",
    tag = "reports",
    params(LogParams),
    responses(
        (status = 200, description = "A page of logged calls, newest first; pass `next_cursor` as `cursor` for the next (`null`: last page). With `format=csv`: the page as CSV with a header row, the next cursor in the `x-next-cursor` header.", body = Page<LogEntry>),
        (status = 400, description = "A parameter is not valid; `param` names it.", body = super::ErrorEnvelope),
        (status = 401, description = "No valid admin session.", body = super::ErrorEnvelope),
    ),
)]
pub async fn logs(State(state): State<AppState>, request: Request) -> Result<Response, AdminError> {
    let params = query_params(&request, LOG_PARAMS)?;
    let csv = format_is_csv(&params)?;
    let query = LogQuery {
        filter: filter(&params)?,
        status: param(&params, "status").map(parse_status).transpose()?,
        error_type: param(&params, "error_type").map(str::to_owned),
    };
    let limit = parse_limit(param(&params, "limit"), csv)?;
    let cursor = param(&params, "cursor").map(check_cursor).transpose()?;
    let (rows, next_cursor) = state.store.logs_page(&query, limit, cursor).await?;
    let data: Vec<LogEntry> = rows.into_iter().map(LogEntry::from).collect();
    if csv {
        let mut response = logs_csv(&data);
        if let Some(next) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert("x-next-cursor", next);
        }
        return Ok(response);
    }
    Ok(axum::Json(Page { data, next_cursor }).into_response())
}

/// A parameter's value; an empty one counts as absent.
fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn format_is_csv(params: &HashMap<String, String>) -> Result<bool, AdminError> {
    match param(params, "format") {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(AdminError::invalid(
            "format",
            format!("`format={other}` is not a format: use `json` (the default) or `csv`."),
        )),
    }
}

fn report_query(params: &HashMap<String, String>) -> Result<(ReportQuery, bool), AdminError> {
    let csv = format_is_csv(params)?;
    let group_by = param(params, "group_by")
        .map(parse_group_by)
        .transpose()?
        .unwrap_or_default();
    Ok((
        ReportQuery {
            filter: filter(params)?,
            group_by,
        },
        csv,
    ))
}

/// `day,model` → `[Day, Model]`.
fn parse_group_by(value: &str) -> Result<Vec<GroupBy>, AdminError> {
    let mut fields = Vec::new();
    for name in value.split(',').map(str::trim) {
        let field = GroupBy::parse(name).ok_or_else(|| {
            AdminError::invalid(
                "group_by",
                format!("`group_by={name}` is not a grouping: use day, model, key or owner, or several comma-separated (`group_by=day,model`)."),
            )
        })?;
        if fields.contains(&field) {
            return Err(AdminError::invalid(
                "group_by",
                format!("`group_by` names `{name}` twice: name each field once."),
            ));
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The filters every route shares; checks that `from` comes before `to`.
fn filter(params: &HashMap<String, String>) -> Result<ReportFilter, AdminError> {
    let from_ms = param(params, "from")
        .map(|v| parse_time("from", v, false))
        .transpose()?;
    let to_ms = param(params, "to")
        .map(|v| parse_time("to", v, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from >= to {
            return Err(AdminError::invalid(
                "to",
                format!(
                    "`to` ({}) is not after `from` ({}): the range would be empty. A date as `to` includes that whole day.",
                    super::time(to),
                    super::time(from)
                ),
            ));
        }
    }
    let text = |name| param(params, name).map(str::to_owned);
    Ok(ReportFilter {
        key_id: text("key_id"),
        owner: text("owner"),
        model: text("model"),
        from_ms,
        to_ms,
    })
}

/// A time parameter as Unix ms: a UTC date (its start; for `to`, the next day's
/// start, so the day is included), an RFC 3339 time, or Unix milliseconds.
fn parse_time(name: &str, value: &str, end: bool) -> Result<i64, AdminError> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let day = if end { day.succ_opt() } else { Some(day) };
        if let Some(day) = day {
            return Ok(crate::store::day_start_ms(day));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return match value.parse::<i64>() {
            Ok(ms) if ms >= MIN_PLAUSIBLE_MS => Ok(ms),
            Ok(_) => Err(AdminError::invalid(
                name,
                format!("`{name}={value}` looks like Unix seconds: give Unix milliseconds (`{value}000`), a date (`2024-03-10`) or an RFC 3339 time."),
            )),
            Err(_) => Err(AdminError::invalid(
                name,
                format!("`{name}={value}` is out of range: give Unix milliseconds, a date (`2024-03-10`) or an RFC 3339 time."),
            )),
        };
    }
    Err(AdminError::invalid(
        name,
        format!("`{name}={value}` is not a time: give a UTC date (`2024-03-10`), an RFC 3339 time (`2024-03-10T12:00:00Z`) or Unix milliseconds."),
    ))
}

/// `429` or `4xx`.
fn parse_status(value: &str) -> Result<StatusFilter, AdminError> {
    let bytes = value.as_bytes();
    let class = match bytes {
        [c @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
            Some(StatusFilter::Class(u16::from(c - b'0')))
        }
        _ => value
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=599).contains(s))
            .map(StatusFilter::Exact),
    };
    class.ok_or_else(|| {
        AdminError::invalid(
            "status",
            format!("`status={value}` is not a status: give one (`429`) or a class (`2xx`, `4xx`, `5xx`)."),
        )
    })
}

fn parse_limit(value: Option<&str>, csv: bool) -> Result<u32, AdminError> {
    let max = if csv { MAX_CSV_LIMIT } else { MAX_LIMIT };
    let Some(value) = value else {
        return Ok(DEFAULT_LIMIT);
    };
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(AdminError::invalid(
            "limit",
            format!("`limit={value}` is not valid: give a number of rows from 1 to {max}."),
        )),
    }
}

/// A cursor is a request id from `next_cursor`.
fn check_cursor(value: &str) -> Result<&str, AdminError> {
    let plausible = value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plausible {
        Ok(value)
    } else {
        Err(AdminError::invalid(
            "cursor",
            "`cursor` is not one this API gave: pass the `next_cursor` of the previous page unchanged, or leave it out for the first page.",
        ))
    }
}

/// A group field's value: `Some(value)` when grouped by it.
fn grouped(group_by: &[GroupBy], field: GroupBy, value: &Option<String>) -> Option<Option<String>> {
    group_by.contains(&field).then(|| value.clone())
}

fn usage_row(group_by: &[GroupBy], r: &ReportRow) -> UsageReportRow {
    UsageReportRow {
        day: grouped(group_by, GroupBy::Day, &r.day).flatten(),
        model: grouped(group_by, GroupBy::Model, &r.model),
        key_id: grouped(group_by, GroupBy::Key, &r.key_id),
        owner: grouped(group_by, GroupBy::Owner, &r.owner),
        requests: r.requests,
        successes: r.successes,
        failures: r.failures,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        cost: r.cost(),
        p50_ms: r.p50_ms,
        p95_ms: r.p95_ms,
        p99_ms: r.p99_ms,
        errors: r.errors.clone(),
    }
}

fn cost_row(group_by: &[GroupBy], r: &ReportRow) -> CostReportRow {
    CostReportRow {
        day: grouped(group_by, GroupBy::Day, &r.day).flatten(),
        model: grouped(group_by, GroupBy::Model, &r.model),
        key_id: grouped(group_by, GroupBy::Key, &r.key_id),
        owner: grouped(group_by, GroupBy::Owner, &r.owner),
        requests: r.requests,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        cost: r.cost(),
    }
}

/// The CSV column and the value of a group field.
fn group_column(field: GroupBy, r: &ReportRow) -> (&'static str, Option<&str>) {
    match field {
        GroupBy::Day => ("day", r.day.as_deref()),
        GroupBy::Model => ("model", r.model.as_deref()),
        GroupBy::Key => ("key_id", r.key_id.as_deref()),
        GroupBy::Owner => ("owner", r.owner.as_deref()),
    }
}

fn usage_csv(group_by: &[GroupBy], rows: &[ReportRow]) -> Response {
    let mut out = Csv::default();
    let header: Vec<&str> = group_by
        .iter()
        .map(|&g| group_column(g, &ReportRow::default()).0)
        .chain([
            "requests",
            "successes",
            "failures",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "errors",
        ])
        .collect();
    out.header(&header);
    for r in rows {
        for &g in group_by {
            out.text(group_column(g, r).1);
        }
        out.number(r.requests);
        out.number(r.successes);
        out.number(r.failures);
        out.number(r.prompt_tokens);
        out.number(r.completion_tokens);
        out.number(r.cost());
        out.optional(r.p50_ms);
        out.optional(r.p95_ms);
        out.optional(r.p99_ms);
        out.text(serde_json::to_string(&r.errors).ok().as_deref());
        out.end_row();
    }
    out.into_response("usage.csv")
}

fn costs_csv(group_by: &[GroupBy], rows: &[ReportRow]) -> Response {
    let mut out = Csv::default();
    let header: Vec<&str> = group_by
        .iter()
        .map(|&g| group_column(g, &ReportRow::default()).0)
        .chain(["requests", "prompt_tokens", "completion_tokens", "cost"])
        .collect();
    out.header(&header);
    for r in rows {
        for &g in group_by {
            out.text(group_column(g, r).1);
        }
        out.number(r.requests);
        out.number(r.prompt_tokens);
        out.number(r.completion_tokens);
        out.number(r.cost());
        out.end_row();
    }
    out.into_response("costs.csv")
}

fn logs_csv(rows: &[LogEntry]) -> Response {
    let mut out = Csv::default();
    out.header(&[
        "request_id",
        "created_at",
        "time",
        "key_id",
        "owner",
        "endpoint",
        "model_requested",
        "model_served",
        "provider",
        "upstream_key_id",
        "status",
        "error_type",
        "stream",
        "latency_ms",
        "ttfb_ms",
        "prompt_tokens",
        "completion_tokens",
        "usage_estimated",
        "cost",
        "downgraded_from",
        "client_ip",
        "user_agent",
    ]);
    for r in rows {
        out.text(Some(&r.request_id));
        out.number(r.created_at);
        out.text(Some(&r.time));
        out.text(r.key_id.as_deref());
        out.text(r.owner.as_deref());
        out.text(Some(&r.endpoint));
        out.text(r.model_requested.as_deref());
        out.text(r.model_served.as_deref());
        out.text(r.provider.as_deref());
        out.text(r.upstream_key_id.as_deref());
        out.number(r.status);
        out.text(r.error_type.as_deref());
        out.number(r.stream);
        out.number(r.latency_ms);
        out.optional(r.ttfb_ms);
        out.number(r.prompt_tokens);
        out.number(r.completion_tokens);
        out.number(r.usage_estimated);
        out.number(r.cost);
        out.text(r.downgraded_from.as_deref());
        out.text(r.client_ip.as_deref());
        out.text(r.user_agent.as_deref());
        out.end_row();
    }
    out.into_response("logs.csv")
}

/// CSV text per RFC 4180: CRLF line ends, a field with a comma, quote, CR or LF in
/// double quotes with its quotes doubled. A text field that a spreadsheet would run
/// as a formula (starting with `=`, `+`, `-`, `@`, tab or CR: say, a client's
/// user agent) is prefixed with `'`; numbers are written as they are.
#[derive(Debug, Default)]
struct Csv {
    text: String,
    row_started: bool,
}

impl Csv {
    fn header(&mut self, names: &[&str]) {
        for name in names {
            self.text(Some(name));
        }
        self.end_row();
    }

    fn separator(&mut self) {
        if self.row_started {
            self.text.push(',');
        }
        self.row_started = true;
    }

    /// A text field; `None` is an empty field.
    fn text(&mut self, value: Option<&str>) {
        self.separator();
        let Some(value) = value else { return };
        let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = value.contains([',', '"', '\r', '\n']);
        if quote {
            self.text.push('"');
        }
        if formula {
            self.text.push('\'');
        }
        for c in value.chars() {
            if c == '"' {
                self.text.push('"');
            }
            self.text.push(c);
        }
        if quote {
            self.text.push('"');
        }
    }

    fn number(&mut self, value: impl std::fmt::Display) {
        self.separator();
        self.text.push_str(&value.to_string());
    }

    fn optional(&mut self, value: Option<i64>) {
        match value {
            Some(v) => self.number(v),
            None => self.separator(),
        }
    }

    fn end_row(&mut self) {
        self.text.push_str("\r\n");
        self.row_started = false;
    }

    fn into_response(self, filename: &'static str) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                        .unwrap_or(HeaderValue::from_static("attachment")),
                ),
            ],
            self.text,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(values: &[Option<&str>]) -> String {
        let mut out = Csv::default();
        for v in values {
            out.text(*v);
        }
        out.end_row();
        out.text
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(csv_of(&[Some("a"), None, Some("b c")]), "a,,b c\r\n");
        assert_eq!(
            csv_of(&[Some("x,y"), Some("say \"hi\""), Some("two\nlines")]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
        // Formulas are defused; numbers are not touched.
        assert_eq!(csv_of(&[Some("=cmd()"), Some("-1")]), "'=cmd(),'-1\r\n");
        let mut out = Csv::default();
        out.number(-1);
        out.number(0.25);
        out.optional(None);
        out.end_row();
        assert_eq!(out.text, "-1,0.25,\r\n");
    }

    #[test]
    fn times_parse_as_dates_rfc3339_and_ms() {
        let day = 1_710_028_800_000;
        assert_eq!(parse_time("from", "2024-03-10", false).ok(), Some(day));
        assert_eq!(
            parse_time("to", "2024-03-10", true).ok(),
            Some(day + 86_400_000)
        );
        assert_eq!(
            parse_time("from", "2024-03-10T01:00:00+01:00", false).ok(),
            Some(day)
        );
        assert_eq!(parse_time("from", "1710028800000", false).ok(), Some(day));
        assert!(parse_time("from", "1710028800", false).is_err(), "seconds");
        assert!(parse_time("from", "yesterday", false).is_err());
        assert!(parse_time("from", "2024-13-01", false).is_err());
    }

    #[test]
    fn statuses_group_bys_and_limits() {
        assert_eq!(parse_status("429").ok(), Some(StatusFilter::Exact(429)));
        assert_eq!(parse_status("5xx").ok(), Some(StatusFilter::Class(5)));
        assert!(parse_status("6xx").is_err());
        assert!(parse_status("42").is_err());
        assert_eq!(
            parse_group_by("day, model").ok(),
            Some(vec![GroupBy::Day, GroupBy::Model])
        );
        assert!(parse_group_by("week").is_err());
        assert!(parse_group_by("day,day").is_err());
        assert_eq!(parse_limit(None, false).ok(), Some(DEFAULT_LIMIT));
        assert!(parse_limit(Some("0"), false).is_err());
        assert!(parse_limit(Some("5000"), false).is_err());
        assert_eq!(parse_limit(Some("5000"), true).ok(), Some(5000));
        assert!(check_cursor("req_0123abc").is_ok());
        assert!(check_cursor("x' OR 1=1").is_err());
    }
}
