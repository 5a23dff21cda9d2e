//! Alert history (`alert_events`) and the figures alert rules read from the database:
//! the owners of client keys, and spend per owner from `usage_daily`. (Recent calls
//! and failures are counted in memory: `usage::recent`.)
//!
//! An event id starts with its Unix milliseconds in hex (`alert_<12 hex><8 hex>`),
//! like request ids: newest first is the primary key read backwards.

use super::{id_at, with_pool, Store, StoreError};

/// Whether an alert started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// The rule's condition became true for the subject.
    Fired,
    /// It became false again.
    Resolved,
}

impl AlertState {
    /// `fired` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Fired => "fired",
            AlertState::Resolved => "resolved",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<AlertState> {
        match name {
            "fired" => Some(AlertState::Fired),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// One alert event: a rule fired or resolved for a subject.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// `alert_<12 hex ms><8 hex random>`.
    pub id: String,
    /// The rule's name.
    pub rule: String,
    /// The rule's kind (`upstream_utilization`, `error_rate`, …).
    pub kind: String,
    /// What the alert is about: `upstream_key=openai/oa-1`, `provider=openai`,
    /// `budget=global/daily`, `budget=owner:alice/monthly`.
    pub subject: String,
    /// Fired or resolved.
    pub state: AlertState,
    /// What happened, for people. Never holds a secret.
    pub message: String,
    /// The measured figure (a share from 0 to 1, or seconds for `unused_key`).
    pub value: Option<f64>,
    /// The rule's threshold, in the same unit as `value`.
    pub threshold: Option<f64>,
    /// Unix milliseconds of the evaluation that saw the change.
    pub at: i64,
}

/// A new, unique event id for an event at `at_ms`.
pub fn new_alert_event_id(at_ms: i64) -> String {
    let random: u32 = rand::random();
    format!("alert_{}{random:08x}", &id_at(at_ms)["req_".len()..])
}

/// Spend of one owner (or of everyone) in today's and this month's rows of
/// `usage_daily`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySpend {
    /// The key owner; `None` sums calls of keys without one.
    pub owner: Option<String>,
    /// Spend today, in nano-units of the currency.
    pub today_nanos: i64,
    /// Spend this month, today included.
    pub month_nanos: i64,
}

/// An `alert_events` row as stored.
#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    rule: String,
    kind: String,
    subject: String,
    state: String,
    message: String,
    value: Option<f64>,
    threshold: Option<f64>,
    at: i64,
}

fn event(row: EventRow) -> Result<AlertEvent, StoreError> {
    let state = AlertState::parse(&row.state)
        .ok_or_else(|| StoreError::Corrupt(format!("alert state {:?}", row.state)))?;
    Ok(AlertEvent {
        id: row.id,
        rule: row.rule,
        kind: row.kind,
        subject: row.subject,
        state,
        message: row.message,
        value: row.value,
        threshold: row.threshold,
        at: row.at,
    })
}

impl Store {
    /// Records an alert event.
    pub async fn insert_alert_event(&self, e: &AlertEvent) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO alert_events (id, rule, kind, subject, state, message, value, threshold, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&e.id)
            .bind(&e.rule)
            .bind(&e.kind)
            .bind(&e.subject)
            .bind(e.state.as_str())
            .bind(&e.message)
            .bind(e.value)
            .bind(e.threshold)
            .bind(e.at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest `limit` alert events, newest first.
    pub async fn alert_events(&self, limit: u32) -> Result<Vec<AlertEvent>, StoreError> {
        let rows: Vec<EventRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, rule, kind, subject, state, message, value, threshold, at
                 FROM alert_events ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(event).collect()
    }

    /// The alerts whose latest event is `fired`: episodes still open, carried over a
    /// restart so that they are not announced twice.
    pub async fn open_alerts(&self) -> Result<Vec<AlertEvent>, StoreError> {
        let rows: Vec<EventRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT e.id, e.rule, e.kind, e.subject, e.state, e.message, e.value, e.threshold, e.at
                 FROM alert_events e
                 WHERE e.id = (SELECT MAX(x.id) FROM alert_events x
                               WHERE x.rule = e.rule AND x.subject = e.subject)
                   AND e.state = 'fired'
                 ORDER BY e.id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(event).collect()
    }

    /// Every owner named by a client key.
    pub async fn key_owners(&self) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT DISTINCT owner FROM client_keys WHERE owner IS NOT NULL AND owner <> '' ORDER BY owner",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Spend per owner today (`today`, a `YYYY-MM-DD` UTC day) and since
    /// `month_start` (the first day of the month), from `usage_daily` (which every
    /// stored batch of usage rows adds to).
    pub async fn daily_spend(
        &self,
        today: &str,
        month_start: &str,
    ) -> Result<Vec<DailySpend>, StoreError> {
        let rows: Vec<(Option<String>, i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT owner,
                        CAST(COALESCE(SUM(CASE WHEN day = $1 THEN cost_nanos ELSE 0 END), 0) AS BIGINT) AS today_nanos,
                        CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS month_nanos
                 FROM usage_daily
                 WHERE day >= $2 AND day <= $1
                 GROUP BY owner",
            )
            .bind(today)
            .bind(month_start)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(owner, today_nanos, month_nanos)| DailySpend {
                owner,
                today_nanos,
                month_nanos,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::testing::on_both_backends;
    use crate::usage::UsageRow;

    on_both_backends!(
        alert_events_are_listed_newest_first_and_open_ones_found,
        owners_and_spend_are_counted,
    );

    fn fired(rule: &str, subject: &str, at: i64, state: AlertState) -> AlertEvent {
        AlertEvent {
            id: new_alert_event_id(at),
            rule: rule.to_owned(),
            kind: "invalid_key".to_owned(),
            subject: subject.to_owned(),
            state,
            message: "m".to_owned(),
            value: None,
            threshold: Some(0.5),
            at,
        }
    }

    async fn alert_events_are_listed_newest_first_and_open_ones_found(store: Store) {
        let events = [
            fired("r", "a", 1_000, AlertState::Fired),
            fired("r", "b", 2_000, AlertState::Fired),
            fired("r", "a", 3_000, AlertState::Resolved),
        ];
        for e in &events {
            store.insert_alert_event(e).await.unwrap();
        }
        let listed = store.alert_events(10).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0], events[2]);
        assert_eq!(listed[2], events[0]);
        assert_eq!(store.alert_events(1).await.unwrap().len(), 1);
        let open = store.open_alerts().await.unwrap();
        assert_eq!(open, vec![events[1].clone()]);
    }

    async fn owners_and_spend_are_counted(store: Store) {
        // 2024-03-10T00:00:00Z and the day after.
        let day1 = 1_710_028_800_000_i64;
        let day2 = day1 + 86_400_000;
        let call = |at: i64, n: u32, provider: Option<&str>, status: u16, owner: &str| UsageRow {
            request_id: format!("req_{at:012x}{n:012x}").into(),
            created_at_ms: at,
            key_id: Some(format!("key_{owner}").into()),
            owner: Some(owner.into()),
            endpoint: "/v1/chat/completions".into(),
            model_served: provider.map(|_| "gpt".into()),
            provider: provider.map(Into::into),
            status,
            cost_nanos: 1_000 * i64::from(n),
            ..UsageRow::default()
        };
        store
            .insert_usage(std::sync::Arc::new(vec![
                call(day1 + 1, 1, Some("openai"), 200, "alice"),
                call(day2 + 1, 2, Some("openai"), 200, "alice"),
                call(day2 + 2, 3, Some("openai"), 502, "alice"),
                call(day2 + 3, 4, Some("anthropic"), 504, "bob"),
                call(day2 + 4, 5, None, 429, "bob"),
                call(day2 + 5, 6, None, 499, "bob"),
            ]))
            .await
            .unwrap();
        store
            .insert_key(&crate::store::testing::new_key("key_b", Some("bob")))
            .await
            .unwrap();
        store
            .insert_key(&crate::store::testing::new_key("key_n", None))
            .await
            .unwrap();
        assert_eq!(store.key_owners().await.unwrap(), ["bob"]);

        for day in ["2024-03-10", "2024-03-11"] {
            store.refresh_daily(day.parse().unwrap()).await.unwrap();
        }
        let mut spend = store.daily_spend("2024-03-11", "2024-03-01").await.unwrap();
        spend.sort_by(|a, b| a.owner.cmp(&b.owner));
        assert_eq!(
            spend,
            [
                DailySpend {
                    owner: Some("alice".into()),
                    today_nanos: 5_000,
                    month_nanos: 6_000,
                },
                DailySpend {
                    owner: Some("bob".into()),
                    today_nanos: 15_000,
                    month_nanos: 15_000,
                },
            ]
        );
        assert!(store
            .daily_spend("2024-04-01", "2024-04-01")
            .await
            .unwrap()
            .is_empty());
    }

    #[test]
    fn event_ids_sort_by_time() {
        let a = new_alert_event_id(1_000);
        let b = new_alert_event_id(2_000);
        assert!(a < b, "{a} < {b}");
        assert!(a.starts_with("alert_0000000003e8"));
    }
}
