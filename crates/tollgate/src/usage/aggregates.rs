//! Daily aggregates and log retention, in the background (SPEC §7).
//!
//! The usage writer keeps `usage_daily` current: each batch adds its calls in its own
//! transaction (`store::daily`). This task only fills, at start, any day within
//! retention that has log rows but no aggregates (the first start after an upgrade from
//! before `usage_daily`), and applies retention every [`RETENTION_EVERY`].
//!
//! Retention keeps `storage.log_retention_days` whole UTC days before today (and
//! today): request log rows of older days are deleted, a key range at a time, in
//! chunks of [`DELETE_CHUNK`] rows with a pause between them, so the writer is never
//! kept waiting long. A day is aggregated before its rows go (when it has no
//! aggregates), and `usage_daily` is never deleted. Every replica may run this: each
//! step is idempotent.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use crate::store::{day_range_ms, day_start_ms, Store, StoreError};

/// How often retention is applied.
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Request log rows deleted per statement.
pub const DELETE_CHUNK: u32 = 2_000;
/// The pause between two deleted chunks, in which the usage writer gets the lock.
const DELETE_PAUSE: Duration = Duration::from_millis(20);

/// Runs until `stop`: fills days without aggregates, then applies retention. Errors
/// are logged and retried on the next tick.
pub async fn run(store: Store, retention_days: u32, stop: CancellationToken) {
    if let Err(e) = catch_up(&store, Utc::now().date_naive(), retention_days).await {
        tracing::warn!(error = %e, "cannot fill the daily usage aggregates at start");
    }
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let today = Utc::now().date_naive();
        match apply_retention(&store, today, retention_days, &stop).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(
                    deleted,
                    retention_days,
                    "request log rows past retention deleted"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot apply log retention; retrying on the next tick")
            }
        }
    }
}

/// The first day whose request log rows are kept on `today`.
pub fn first_kept_day(today: NaiveDate, retention_days: u32) -> NaiveDate {
    today
        .checked_sub_days(Days::new(u64::from(retention_days)))
        .unwrap_or(NaiveDate::MIN)
}

/// Aggregates every kept day before today that has log rows but no aggregates. (Today
/// is left to the writer: its batches may already have added to it.)
pub async fn catch_up(
    store: &Store,
    today: NaiveDate,
    retention_days: u32,
) -> Result<(), StoreError> {
    // From the oldest kept day that has log rows (none: nothing to fill).
    let Some(oldest) = store.oldest_log_day().await? else {
        return Ok(());
    };
    let mut day = first_kept_day(today, retention_days).max(oldest);
    while day < today {
        let (from, to) = day_range_ms(day);
        if !store.has_daily(day).await? && store.has_logs_between(from, to).await? {
            store.refresh_daily(day).await?;
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    Ok(())
}

/// Deletes the request log rows of days before [`first_kept_day`], oldest day first,
/// aggregating each day first if it has no aggregates; answers how many rows went.
/// Stops early (without error) when `stop` is cancelled.
pub async fn apply_retention(
    store: &Store,
    today: NaiveDate,
    retention_days: u32,
    stop: &CancellationToken,
) -> Result<u64, StoreError> {
    let first_kept = first_kept_day(today, retention_days);
    let keep_from_ms = day_start_ms(first_kept);
    let mut deleted = 0;
    while let Some(oldest) = store.oldest_log_day().await? {
        if oldest >= first_kept {
            break;
        }
        if !store.has_daily(oldest).await? {
            store.refresh_daily(oldest).await?;
        }
        let (_, day_end_ms) = day_range_ms(oldest);
        let before_ms = day_end_ms.min(keep_from_ms);
        let mut day_deleted = 0;
        loop {
            let n = store.delete_logs_chunk(before_ms, DELETE_CHUNK).await?;
            day_deleted += n;
            if n < u64::from(DELETE_CHUNK) {
                break;
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(deleted + day_deleted),
                _ = tokio::time::sleep(DELETE_PAUSE) => {}
            }
        }
        deleted += day_deleted;
        if day_deleted == 0 {
            // The oldest row's id is not a time-ordered one: nothing more to do by range.
            break;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn retention_keeps_whole_days_before_today() {
        assert_eq!(first_kept_day(date("2024-03-10"), 1), date("2024-03-09"));
        assert_eq!(first_kept_day(date("2024-03-01"), 90), date("2023-12-02"));
    }
}
