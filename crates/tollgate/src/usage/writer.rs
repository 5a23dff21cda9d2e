//! The batching writer: drains the usage queue into the store, many rows per
//! transaction, and on shutdown writes everything still queued before it returns.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::UsageRow;
use crate::store::Store;

/// Rows per transaction at most.
pub const BATCH_MAX: usize = 256;

/// How long the first row of a batch waits for company before the batch is written:
/// fewer, larger transactions under load; rows visible within this delay when idle.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Runs until `stop` is cancelled and the queue is empty (or every sender is gone).
pub async fn run(store: Store, mut rx: mpsc::Receiver<UsageRow>, stop: CancellationToken) {
    let mut batch: Vec<UsageRow> = Vec::with_capacity(BATCH_MAX);
    loop {
        let open = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, BATCH_MAX) => n > 0,
            _ = stop.cancelled() => false,
        };
        if open {
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
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
            write(&store, &mut batch).await;
        }
        if !open || stop.is_cancelled() {
            // Shutting down (or every sender gone): take what is still queued, then stop.
            rx.close();
            while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
                write(&store, &mut batch).await;
            }
            return;
        }
    }
}

/// Writes a batch, retrying with backoff while the database refuses; clears it.
async fn write(store: &Store, batch: &mut Vec<UsageRow>) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=8 {
        match store.insert_usage(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, rows = batch.len(), "usage batch write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    tracing::error!(
        rows = batch.len(),
        "usage batch could not be written after retries; rows dropped"
    );
    batch.clear();
}
