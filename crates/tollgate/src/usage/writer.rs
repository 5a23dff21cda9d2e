//! The batching writer: drains the usage queue into the store, many rows per
//! transaction, and on shutdown writes everything still queued before it returns.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::UsageRow;
use crate::store::Store;

/// Rows per transaction at most.
pub const BATCH_MAX: usize = 512;

/// Runs until `stop` is cancelled and the queue is empty (or every sender is gone).
pub async fn run(store: Store, mut rx: mpsc::Receiver<UsageRow>, stop: CancellationToken) {
    let mut batch: Vec<UsageRow> = Vec::with_capacity(BATCH_MAX);
    loop {
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, BATCH_MAX) => n,
            _ = stop.cancelled() => {
                rx.close();
                while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
                    write(&store, &mut batch).await;
                }
                return;
            }
        };
        if received == 0 {
            return; // every sender dropped and the queue is empty
        }
        write(&store, &mut batch).await;
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
