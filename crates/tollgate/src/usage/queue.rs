//! The bounded queue between the request path and the usage writer. Recording never
//! waits: a full or closed queue counts the row as dropped and says so in the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::UsageRow;

/// Rows the queue holds before it refuses more.
pub const QUEUE_CAPACITY: usize = 16_384;

/// The sending side, cheap to clone into every request.
#[derive(Debug, Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRow>,
    dropped: Arc<AtomicU64>,
}

impl UsageSink {
    /// A sink and the receiver its writer drains.
    pub fn new(capacity: usize) -> (UsageSink, mpsc::Receiver<UsageRow>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            UsageSink {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            rx,
        )
    }

    /// Queues a row without waiting.
    pub fn record(&self, row: UsageRow) {
        if let Err(e) = self.tx.try_send(row) {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let (reason, row) = match e {
                mpsc::error::TrySendError::Full(row) => ("queue full", row),
                mpsc::error::TrySendError::Closed(row) => ("writer stopped", row),
            };
            tracing::error!(request_id = %row.request_id, reason, dropped_total = total, "usage row dropped");
        }
    }
}
