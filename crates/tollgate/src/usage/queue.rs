//! The bounded queue between the request path and the usage writer. Recording never
//! waits: a full or closed queue counts the row as dropped and says so in the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use super::recent::RecentCalls;
use super::writer::BATCH_MAX;
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
    /// Told when a whole batch waits, so the writer need not wake for every row.
    batch_ready: Arc<Notify>,
    counters: Arc<UsageCounters>,
    /// Where every row's metrics go as it is queued.
    telemetry: Option<Arc<Telemetry>>,
    /// Recent calls per provider, counted as each row is queued.
    recent: Arc<RecentCalls>,
}

impl UsageSink {
    /// A sink and the receiver its writer drains; rows are also recorded in
    /// `telemetry`, when given.
    pub fn new(capacity: usize, telemetry: Option<Arc<Telemetry>>) -> (UsageSink, UsageQueue) {
        let (tx, rx) = mpsc::channel(capacity);
        let batch_ready = Arc::new(Notify::new());
        (
            UsageSink {
                tx,
                batch_ready: batch_ready.clone(),
                counters: Arc::default(),
                telemetry,
                recent: Arc::default(),
            },
            UsageQueue { rx, batch_ready },
        )
    }

    /// Queues a row without waiting.
    pub fn record(&self, row: UsageRow) {
        if let Some(t) = &self.telemetry {
            t.record_call(&row);
        }
        self.recent.record(&row);
        match self.tx.try_send(row) {
            Ok(()) => {
                if self.depth() >= BATCH_MAX {
                    self.batch_ready.notify_one();
                }
            }
            Err(e) => self.dropped(e),
        }
    }

    /// Counts and logs a row the queue did not take.
    fn dropped(&self, e: mpsc::error::TrySendError<UsageRow>) {
        let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let (reason, row) = match e {
            mpsc::error::TrySendError::Full(row) => ("queue full", row),
            mpsc::error::TrySendError::Closed(row) => ("writer stopped", row),
        };
        tracing::error!(request_id = %row.request_id, reason, dropped_total = total, "usage row dropped");
    }

    /// Rows waiting in the queue.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Recent calls per provider (what `error_rate` alerts read).
    pub fn recent(&self) -> &RecentCalls {
        &self.recent
    }

    /// The counters shared with the writer.
    pub fn counters(&self) -> Arc<UsageCounters> {
        self.counters.clone()
    }
}

/// The receiving side of the queue, drained by the writer.
#[derive(Debug)]
pub struct UsageQueue {
    rx: mpsc::Receiver<UsageRow>,
    batch_ready: Arc<Notify>,
}

impl UsageQueue {
    /// The next row; `None` once the queue is closed and empty.
    pub async fn recv(&mut self) -> Option<UsageRow> {
        self.rx.recv().await
    }

    /// Waits for at least one row and moves up to `limit` into `buf`; 0 once the
    /// queue is closed and empty.
    pub async fn recv_many(&mut self, buf: &mut Vec<UsageRow>, limit: usize) -> usize {
        self.rx.recv_many(buf, limit).await
    }

    /// Moves up to `limit` rows that are already queued into `buf`, without waiting.
    /// `None` once the queue is closed and empty.
    pub fn take_queued(&mut self, buf: &mut Vec<UsageRow>, limit: usize) -> Option<usize> {
        let mut taken = 0;
        while taken < limit {
            match self.rx.try_recv() {
                Ok(row) => {
                    buf.push(row);
                    taken += 1;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) if taken == 0 => return None,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        Some(taken)
    }

    /// Notified when a sink saw a whole batch ([`BATCH_MAX`] rows) waiting; a signal
    /// given while nobody waited is kept for the next `notified()`.
    pub fn batch_ready(&self) -> Arc<Notify> {
        self.batch_ready.clone()
    }

    /// Rows waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True when no row waits.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Refuses further rows; those queued can still be taken.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn a_whole_batch_waiting_signals_the_writer_and_fewer_rows_do_not() {
        let (sink, mut queue) = UsageSink::new(4 * BATCH_MAX, None);
        let ready = queue.batch_ready();
        for _ in 0..BATCH_MAX - 1 {
            sink.record(UsageRow::default());
        }
        assert!(ready.notified().now_or_never().is_none(), "one row short");
        sink.record(UsageRow::default());
        assert!(ready.notified().now_or_never().is_some(), "a whole batch");
        let mut rows = Vec::new();
        assert_eq!(queue.take_queued(&mut rows, 10), Some(10));
        assert_eq!(queue.len(), BATCH_MAX - 10);
        drop(sink);
        assert_eq!(
            queue.take_queued(&mut rows, usize::MAX),
            Some(BATCH_MAX - 10)
        );
        assert_eq!(queue.take_queued(&mut rows, 1), None, "closed and empty");
    }

    #[tokio::test]
    async fn a_full_queue_counts_the_row_as_dropped() {
        let (sink, _queue) = UsageSink::new(2, None);
        for _ in 0..3 {
            sink.record(UsageRow::default());
        }
        assert_eq!(sink.counters().dropped.load(Ordering::Relaxed), 1);
    }
}
