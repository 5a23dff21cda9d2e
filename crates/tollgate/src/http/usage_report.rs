//! The body of `GET /v1/usage` (SPEC §6), from the counters enforcement uses.

use serde_json::{json, Map, Value};

use crate::admission::counters::UsageFigures;
use crate::admission::{Admission, LimitKind, UsageSnapshot};
use crate::auth::ClientKey;

/// `{"key_id", "currency", "limits": {...}, "budgets": {...}, "usage": {...}}`;
/// limits and budgets that are not set are omitted.
pub fn render(key: &ClientKey, admission: &Admission, snapshot: &UsageSnapshot) -> Value {
    let mut limits = Map::new();
    for kind in LimitKind::ALL {
        if let Some(r) = snapshot.limits.get(kind) {
            limits.insert(
                kind.as_str().to_owned(),
                json!({"limit": r.limit, "remaining": r.remaining, "reset_s": r.reset_s}),
            );
        }
    }
    let mut budgets = Map::new();
    let own = admission.key_budgets(key);
    for (name, limit, figures) in [
        ("daily", own.daily, &snapshot.today),
        ("monthly", own.monthly, &snapshot.month),
    ] {
        if let Some(limit) = limit {
            let committed = figures.spend.spent_nanos + figures.spend.reserved_nanos;
            budgets.insert(
                name.to_owned(),
                json!({
                    "limit": money(limit),
                    "spent": money(figures.spend.spent_nanos),
                    "reserved": money(figures.spend.reserved_nanos),
                    "remaining": money((limit - committed).max(0)),
                }),
            );
        }
    }
    json!({
        "object": "usage",
        "key_id": &*key.id,
        "currency": admission.currency(),
        "limits": limits,
        "budgets": budgets,
        "usage": {"today": figures(&snapshot.today), "month": figures(&snapshot.month)},
    })
}

fn figures(f: &UsageFigures) -> Value {
    json!({
        "requests": f.requests,
        "prompt_tokens": f.prompt_tokens,
        "completion_tokens": f.completion_tokens,
        "cost": money(f.spend.spent_nanos),
    })
}

/// Nano-units → currency units.
fn money(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}
