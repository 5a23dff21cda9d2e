//! The bounded queue between the request path and the usage writer. Recording never
//! waits: a full or closed queue counts the row as dropped and says so in the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::UsageRow;
use crate::telemetry::Telemetry;

/// Rows the queue holds before it refuses more.
pub const QUEUE_CAPACITY: usize = 16_384;

/// What happened to usage rows besides being written: the figures behind the
/// `tollgate_usage_*` metrics. Nothing is dropped silently.
#[derive(Debug, Default)]
pub struct UsageCounters {
    /// Rows lost: the queue was full or closed, or the database and the spool failed.
    pub dropped: AtomicU64,
    /// Rows written to the spool instead of the database.
    pub spooled: AtomicU64,
    /// Spooled rows written to the database since.
    pub replayed: AtomicU64,
}

/// The sending side, cheap to clone into every request.
#[derive(Debug, Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRow>,
    counters: Arc<UsageCounters>,
    /// Where every row's metrics go as it is queued.
    telemetry: Option<Arc<Telemetry>>,
}

impl UsageSink {
    /// A sink and the receiver its writer drains; rows are also recorded in
    /// `telemetry`, when given.
    pub fn new(
        capacity: usize,
        telemetry: Option<Arc<Telemetry>>,
    ) -> (UsageSink, mpsc::Receiver<UsageRow>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            UsageSink {
                tx,
                counters: Arc::default(),
                telemetry,
            },
            rx,
        )
    }

    /// Queues a row without waiting.
    pub fn record(&self, row: UsageRow) {
        if let Some(t) = &self.telemetry {
            t.record_call(&row);
        }
        if let Err(e) = self.tx.try_send(row) {
            let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let (reason, row) = match e {
                mpsc::error::TrySendError::Full(row) => ("queue full", row),
                mpsc::error::TrySendError::Closed(row) => ("writer stopped", row),
            };
            tracing::error!(request_id = %row.request_id, reason, dropped_total = total, "usage row dropped");
        }
    }

    /// Rows waiting in the queue.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The counters shared with the writer.
    pub fn counters(&self) -> Arc<UsageCounters> {
        self.counters.clone()
    }
}
