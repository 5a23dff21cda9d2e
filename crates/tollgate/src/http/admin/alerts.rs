//! Alerts (SPEC §8, §9): `GET|POST /admin/api/alerts/rules` (POST replaces every rule,
//! validated as `[[alerts.rules]]` are) and `GET /admin/api/alerts/events` (newest
//! first). Rules replaced here apply to this gateway at its next evaluation and last
//! until it restarts (the configuration file holds the lasting ones); sinks come from
//! the configuration only.

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{json_body, json_response, query_params, route, time, AdminError, AdminRoute, Page};
use crate::app::AppState;
use crate::config::{AlertRule, RuleSpec};
use crate::store::AlertEvent;

/// The alert routes (the router and the OpenAPI document are built from them).
pub const ROUTES: &[AdminRoute] = &[
    route("GET", "/admin/api/alerts/rules", || get(rules)),
    route("POST", "/admin/api/alerts/rules", || post(replace_rules)),
    route("GET", "/admin/api/alerts/events", || get(events)),
];

/// The alert routes' part of the OpenAPI document (merged by `openapi.rs`).
#[derive(OpenApi)]
#[openapi(
    paths(rules, replace_rules, events),
    tags((name = "alerts", description = "Alert rules and their history (SPEC §9)"))
)]
pub struct AlertsDoc;

/// Events per answer unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit`.
const MAX_LIMIT: u32 = 1_000;

/// An alert rule. In a request, unset fields take the kind's defaults.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// Unique name, 1–64 of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// `upstream_utilization`, `error_rate`, `budget`, `unused_key` or `invalid_key`.
    pub kind: String,
    /// A share from 0 to 1 (defaults: utilization 0.85, error_rate 0.20, budget 0.90;
    /// none for `unused_key` and `invalid_key`).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// `30s`, `5m`, `24h`, `7d`: the calls looked at (`error_rate`, default 5m), how
    /// long a key may go unused (`unused_key`, default 24h), how long utilization must
    /// stay over the threshold (`upstream_utilization`, default 0s).
    #[serde(default)]
    pub window: Option<String>,
    /// `error_rate` only: the fewest calls in the window for the rate to count
    /// (default 10).
    #[serde(default)]
    pub min_requests: Option<i64>,
    /// Names of configured sinks; absent: every sink; empty: none (history only).
    #[serde(default)]
    pub sinks: Option<Vec<String>>,
}

impl From<RuleBody> for RuleSpec {
    fn from(b: RuleBody) -> RuleSpec {
        RuleSpec {
            name: b.name,
            kind: b.kind,
            threshold: b.threshold,
            window: b.window,
            min_requests: b.min_requests,
            sinks: b.sinks,
        }
    }
}

impl From<&AlertRule> for RuleBody {
    fn from(rule: &AlertRule) -> RuleBody {
        let s = rule.spec();
        RuleBody {
            name: s.name,
            kind: s.kind,
            threshold: s.threshold,
            window: s.window,
            min_requests: s.min_requests,
            sinks: s.sinks,
        }
    }
}

/// `POST /admin/api/alerts/rules`: the complete new rule set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesReplace {
    /// Every rule; `[]` turns alerts off.
    pub rules: Vec<RuleBody>,
}

/// The active rules, every default filled in (a valid `POST` body as `{"rules": data}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesView {
    /// The rules, in evaluation order.
    pub data: Vec<RuleBody>,
    /// Always `null`: one page.
    pub next_cursor: Option<String>,
    /// The configured sinks rules may name.
    pub sinks: Vec<String>,
    /// Seconds between evaluations.
    pub evaluate_every_s: u64,
}

/// An alert that fired or resolved.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `alert_<12 hex ms><8 hex>`: ids sort by time.
    pub id: String,
    /// The rule's name.
    pub rule: String,
    /// The rule's kind.
    pub kind: String,
    /// `upstream_key=<provider>/<id>`, `provider=<name>`, `gateway`,
    /// `budget=global/daily`, `budget=owner:<owner>/monthly`.
    pub subject: String,
    /// `fired` or `resolved`.
    pub state: &'static str,
    /// What happened, in words.
    pub message: String,
    /// The measured figure (a share from 0 to 1; seconds idle for `unused_key`).
    pub value: Option<f64>,
    /// The rule's threshold, in the unit of `value`.
    pub threshold: Option<f64>,
    /// RFC 3339.
    pub at: String,
    /// Unix milliseconds.
    pub at_ms: i64,
}

impl From<AlertEvent> for EventView {
    fn from(e: AlertEvent) -> EventView {
        EventView {
            id: e.id,
            rule: e.rule,
            kind: e.kind,
            subject: e.subject,
            state: e.state.as_str(),
            message: e.message,
            value: e.value,
            threshold: e.threshold,
            at: time(e.at),
            at_ms: e.at,
        }
    }
}

/// Query parameters of `/admin/api/alerts/events`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventParams {
    /// Events to answer, newest first: 1 to 1000 (default 100).
    limit: Option<u32>,
}

fn rules_view(state: &AppState) -> RulesView {
    let alerts = &state.alerts;
    RulesView {
        data: alerts.rules().iter().map(RuleBody::from).collect(),
        next_cursor: None,
        sinks: alerts.sink_names().to_vec(),
        evaluate_every_s: alerts.evaluate_every().as_secs(),
    }
}

/// The active alert rules.
#[utoipa::path(
    get,
    operation_id = "list_alert_rules",
    path = "/admin/api/alerts/rules",
    tag = "alerts",
    responses(
        (status = 200, description = "The active rules with every default filled in, and the sinks they may name", body = RulesView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn rules(State(state): State<AppState>) -> Result<Response, AdminError> {
    Ok(json_response(StatusCode::OK, &rules_view(&state)))
}

/// Replaces every alert rule.
///
/// Validated as `[[alerts.rules]]` in the configuration are; nothing changes unless
/// every rule is valid. Applies to this gateway until it restarts.
#[utoipa::path(
    post,
    operation_id = "replace_alert_rules",
    path = "/admin/api/alerts/rules",
    tag = "alerts",
    request_body = RulesReplace,
    responses(
        (status = 200, description = "The new rules, defaults filled in", body = RulesView),
        (status = 400, description = "A rule is invalid: `param` names the first field at fault (`rules[name=hot].window`), the message lists every problem with its fix", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn replace_rules(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminError> {
    let body: RulesReplace = json_body(request).await?;
    let specs: Vec<RuleSpec> = body.rules.into_iter().map(RuleSpec::from).collect();
    if let Err(problems) = state.alerts.replace_rules(&specs) {
        let param = problems.first().map(|p| p.field.clone());
        let message = problems
            .iter()
            .map(|p| format!("{}: {} (fix: {})", p.field, p.message, p.fix))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AdminError::Invalid {
            param,
            message: format!("The alert rules were not replaced: {message}."),
        });
    }
    Ok(json_response(StatusCode::OK, &rules_view(&state)))
}

/// Alert history, newest first.
#[utoipa::path(
    get,
    operation_id = "list_alert_events",
    path = "/admin/api/alerts/events",
    tag = "alerts",
    params(EventParams),
    responses(
        (status = 200, description = "Alerts that fired or resolved, newest first", body = Page<EventView>),
        (status = 400, description = "`limit` is not valid", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminError> {
    let params = query_params(&request, &["limit"])?;
    let limit = match params
        .get("limit")
        .map(String::as_str)
        .filter(|l| !l.is_empty())
    {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AdminError::invalid(
                    "limit",
                    format!("`limit` must be a number from 1 to {MAX_LIMIT}, not {text:?}."),
                ))
            }
        },
    };
    let events = state.alerts.events(limit).await?;
    let data: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    Ok(json_response(StatusCode::OK, &Page::all(data)))
}
