//! The batching writer: drains the usage queue into the store, many rows per
//! transaction. While the database fails, is slower than the traffic (the queue backs
//! up) or a write takes too long, batches go to the append-only [`Spool`] instead, and
//! are replayed from it (idempotent by request id) once the database keeps up again.
//! On shutdown it writes everything still queued before it returns; what the database
//! cannot take then stays in the spool for the next start.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::UsageCounters;
use super::spool::Spool;
use super::UsageRow;
use crate::store::Store;

/// Rows per transaction at most.
pub const BATCH_MAX: usize = 256;

/// How long the first row of a batch waits for company before the batch is written:
/// fewer, larger transactions under load; rows visible within this delay when idle.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A write slower than this counts as a failure: the batch goes to the spool (the
/// write may still land; replaying it is harmless).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// After a failure, batches go straight to the spool this long before the database is
/// tried again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Queue depth past which batches are spooled rather than written, so a slow database
/// never fills the queue (whose overflow would be dropped).
pub const HIGH_WATER: usize = super::queue::QUEUE_CAPACITY / 2;

/// The writer's state.
struct Writer {
    store: Store,
    spool: Spool,
    counters: Arc<UsageCounters>,
    /// The database is not tried before this time.
    resting_until: Option<Instant>,
}

/// Runs until `stop` is cancelled and the queue is empty (or every sender is gone).
pub async fn run(
    store: Store,
    mut rx: mpsc::Receiver<UsageRow>,
    spool: Spool,
    counters: Arc<UsageCounters>,
    stop: CancellationToken,
) {
    let mut writer = Writer {
        store,
        spool,
        counters,
        resting_until: None,
    };
    if writer.spool.has_pending() {
        tracing::warn!(spool = %writer.spool.path().display(), bytes = writer.spool.pending_bytes(), "usage rows wait in the spool from an earlier run; replaying them");
    }
    let mut batch: Vec<UsageRow> = Vec::with_capacity(BATCH_MAX);
    loop {
        let replay_due = writer.spool.has_pending();
        let open = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, BATCH_MAX) => n > 0,
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(FLUSH_EVERY), if replay_due => true,
        };
        if open && !batch.is_empty() {
            let deadline = Instant::now() + FLUSH_EVERY;
            while batch.len() < BATCH_MAX {
                let room = BATCH_MAX - batch.len();
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        if !batch.is_empty() {
            let backing_up = rx.len() > HIGH_WATER;
            writer.write_or_spool(&mut batch, backing_up).await;
        }
        if writer.spool.has_pending() && rx.len() < BATCH_MAX {
            writer.replay_chunk().await;
        }
        if !open || stop.is_cancelled() {
            // Shutting down (or every sender gone): take what is still queued, then
            // empty the spool while the database takes it.
            rx.close();
            while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
                writer.write_or_spool(&mut batch, false).await;
            }
            while writer.spool.has_pending() && writer.replay_chunk().await {}
            if writer.spool.has_pending() {
                tracing::warn!(spool = %writer.spool.path().display(), bytes = writer.spool.pending_bytes(), "usage rows stay in the spool until the next start (the database did not take them)");
            }
            return;
        }
    }
}

impl Writer {
    fn resting(&self) -> bool {
        self.resting_until.is_some_and(|t| Instant::now() < t)
    }

    /// Writes a batch to the database, or to the spool when the database is resting,
    /// failing, slow, or `backing_up`; clears the batch.
    async fn write_or_spool(&mut self, batch: &mut Vec<UsageRow>, backing_up: bool) {
        if !self.resting() && !backing_up && !self.spool.has_pending() {
            match tokio::time::timeout(WRITE_TIMEOUT, self.store.insert_usage(batch)).await {
                Ok(Ok(())) => {
                    batch.clear();
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, rows = batch.len(), "usage batch write failed; spooling it")
                }
                Err(_) => {
                    tracing::warn!(
                        rows = batch.len(),
                        "usage batch write timed out; spooling it"
                    )
                }
            }
            self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
        }
        self.spool_batch(batch);
    }

    fn spool_batch(&mut self, batch: &mut Vec<UsageRow>) {
        match self.spool.append(batch) {
            Ok(()) => {
                self.counters
                    .spooled
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                let total = self
                    .counters
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed)
                    + batch.len() as u64;
                tracing::error!(error = %e, rows = batch.len(), dropped_total = total, spool = %self.spool.path().display(), "usage rows dropped: the database and the spool both failed");
            }
        }
        batch.clear();
    }

    /// Writes one chunk of the spool to the database; false when it could not.
    async fn replay_chunk(&mut self) -> bool {
        if self.resting() {
            return false;
        }
        let chunk = match self.spool.read_chunk(BATCH_MAX) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::error!(error = %e, spool = %self.spool.path().display(), "cannot read the usage spool");
                self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                return false;
            }
        };
        if chunk.unreadable > 0 {
            let total = self
                .counters
                .dropped
                .fetch_add(chunk.unreadable, Ordering::Relaxed)
                + chunk.unreadable;
            tracing::error!(
                lines = chunk.unreadable,
                dropped_total = total,
                "unreadable lines in the usage spool (a torn write); those rows are lost"
            );
        }
        let written = chunk.rows.is_empty()
            || matches!(
                tokio::time::timeout(WRITE_TIMEOUT, self.store.insert_usage(&chunk.rows)).await,
                Ok(Ok(()))
            );
        if !written {
            self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
            return false;
        }
        self.counters
            .replayed
            .fetch_add(chunk.rows.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.spool.mark_replayed(chunk.end) {
            tracing::error!(error = %e, "cannot truncate the usage spool; its rows will be replayed again (harmless)");
        }
        if !self.spool.has_pending() {
            tracing::info!("usage spool replayed into the database");
        }
        true
    }
}
