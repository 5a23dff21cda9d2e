//! The batching writer: drains the usage queue into the store, many rows per
//! transaction, without ever letting a slow or stuck database stop the draining.
//!
//! One write is in flight at a time, on its own task. While it runs, new batches wait
//! in memory (at most [`WAITING_MAX`] rows) and join the next write; when the write is
//! slower than [`SLOW_WRITE`], has failed, or the database is resting after a failure,
//! batches go to the append-only [`Spool`] instead, and are replayed from it
//! (idempotent by request id) once the database keeps up again. Appends to the spool
//! are in flight the same way, one at a time on a blocking thread, rows for the next
//! one waiting in memory (at most [`SPOOL_WAITING_MAX`]). The queue is therefore
//! always drained within a flush interval, so it never overflows on a slow database,
//! nor while the disk is slow to sync the spool.
//! On shutdown everything still queued is written (or spooled, when the database does
//! not take it: the next start replays it).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::{UsageCounters, UsageQueue};
use super::spool::{Append, Spool};
use super::UsageRow;
use crate::store::{Store, StoreError};

/// Rows per batch taken from the queue at most. A batch is one transaction, written
/// row by row on SQLite, in statements of at most 64 rows on PostgreSQL (see
/// `store::usage`).
pub const BATCH_MAX: usize = 256;

/// How long the first row of a batch waits for company before the batch is written:
/// fewer, larger transactions under load; rows visible within this delay when idle.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A write in flight longer than this counts as slow: new batches go to the spool
/// instead of waiting for it (the write itself is let finish).
pub const SLOW_WRITE: Duration = Duration::from_secs(1);

/// After a failed write, batches go straight to the spool this long before the
/// database is tried again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Rows that may wait in memory for the write in flight; more go to the spool.
pub const WAITING_MAX: usize = 8 * BATCH_MAX;

/// Rows that may wait in memory for the spool append in flight (~3 s of calls at
/// 20,000 per second); more are dropped, and counted.
pub const SPOOL_WAITING_MAX: usize = 256 * BATCH_MAX;

/// Rows per replay write.
pub const REPLAY_CHUNK: usize = 4 * BATCH_MAX;

type Write = JoinHandle<(Arc<Vec<UsageRow>>, Result<(), StoreError>)>;

/// What the write in flight is.
#[derive(Debug, Clone, Copy)]
enum Job {
    /// New rows from the queue.
    Rows,
    /// Spooled rows, up to this offset of the spool.
    Replay { end: u64 },
}

/// The write in flight.
struct InFlight {
    write: Write,
    started: Instant,
    job: Job,
}

/// The spool append in flight.
struct Appending {
    append: Append,
    rows: usize,
}

/// The writer's state.
struct Writer {
    store: Store,
    spool: Spool,
    counters: Arc<UsageCounters>,
    /// The write in flight.
    in_flight: Option<InFlight>,
    /// Rows for the next write.
    waiting: Vec<UsageRow>,
    /// The database is not tried before this time.
    resting_until: Option<Instant>,
    /// The spool append in flight.
    appending: Option<Appending>,
    /// Rows for the next spool append.
    to_spool: Vec<UsageRow>,
}

/// Runs until `stop` is cancelled and the queue is empty (or every sender is gone).
///
/// With nothing collected the writer waits for the first row; while it collects a
/// batch it is not woken by each row, only by a whole batch waiting in the queue
/// ([`UsageQueue::batch_ready`]), by its flush tick (every `flush_every`, normally
/// [`FLUSH_EVERY`]: a row waits at most that long) or by the end of the write in
/// flight.
pub async fn run(
    store: Store,
    mut queue: UsageQueue,
    spool: Spool,
    counters: Arc<UsageCounters>,
    flush_every: Duration,
    stop: CancellationToken,
) {
    let mut writer = Writer {
        store,
        spool,
        counters,
        in_flight: None,
        waiting: Vec::new(),
        resting_until: None,
        appending: None,
        to_spool: Vec::new(),
    };
    if writer.spool.has_pending() {
        tracing::warn!(spool = %writer.spool.path().display(), bytes = writer.spool.pending_bytes(), "usage rows wait in the spool from an earlier run; replaying them");
    }
    let mut batch: Vec<UsageRow> = Vec::with_capacity(BATCH_MAX);
    let batch_ready = queue.batch_ready();
    let tick = tokio::time::sleep(flush_every);
    tokio::pin!(tick);
    loop {
        let collecting = !batch.is_empty();
        let mut ticked = false;
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            done = finished(&mut writer.in_flight) => writer.write_done(done),
            appended = appended(&mut writer.appending) => writer.append_done(appended),
            n = queue.recv_many(&mut batch, BATCH_MAX), if !collecting => {
                if n == 0 {
                    break; // every sender is gone
                }
            }
            () = batch_ready.notified(), if collecting => {}
            () = &mut tick => {
                tick.as_mut().reset(Instant::now() + flush_every);
                ticked = true;
            }
        }
        // Whole batches of what is queued now go to the next write; the rest is
        // collected until the tick.
        let mut closed = false;
        loop {
            let room = BATCH_MAX - batch.len();
            match queue.take_queued(&mut batch, room) {
                None => closed = true,
                Some(_) if batch.len() == BATCH_MAX => {
                    writer.take(&mut batch);
                    continue;
                }
                Some(_) => {}
            }
            break;
        }
        if ticked || closed {
            writer.take(&mut batch);
        }
        writer.start_write();
        if queue.len() < BATCH_MAX {
            writer.start_replay();
        }
        if closed {
            break; // every sender is gone
        }
    }
    // Shutting down (or every sender gone): take what is still queued, then write it
    // and empty the spool while the database takes it.
    queue.close();
    while queue.recv_many(&mut batch, BATCH_MAX).await > 0 {}
    writer.take(&mut batch);
    writer.settle_in_flight().await;
    writer.resting_until = None;
    writer.start_write();
    writer.settle_in_flight().await;
    writer.settle_appends().await;
    while writer.spool.has_pending() && !writer.resting() {
        writer.start_replay();
        if writer.in_flight.is_none() {
            break;
        }
        writer.settle_in_flight().await;
    }
    if writer.spool.has_pending() {
        tracing::warn!(spool = %writer.spool.path().display(), bytes = writer.spool.pending_bytes(), "usage rows stay in the spool until the next start (the database did not take them)");
    }
}

/// What a finished write answers: its job, and its rows and result (or how the task
/// failed).
type Done = (
    Job,
    Result<(Arc<Vec<UsageRow>>, Result<(), StoreError>), tokio::task::JoinError>,
);

/// What a finished spool append answers: the file's new length or the error (or how
/// the task failed).
type Appended = Result<std::io::Result<u64>, tokio::task::JoinError>;

/// Waits for the spool append in flight; never resolves when there is none.
async fn appended(appending: &mut Option<Appending>) -> Appended {
    match appending {
        Some(a) => (&mut a.append).await,
        None => std::future::pending().await,
    }
}

/// Waits for the write in flight; never resolves when there is none.
async fn finished(in_flight: &mut Option<InFlight>) -> Done {
    match in_flight {
        Some(f) => (f.job, (&mut f.write).await),
        None => std::future::pending().await,
    }
}

impl Writer {
    fn resting(&self) -> bool {
        self.resting_until.is_some_and(|t| Instant::now() < t)
    }

    /// True when the database should not be given more rows now: resting after a
    /// failure, a write slower than [`SLOW_WRITE`], or older rows still in the spool.
    fn avoid_database(&self) -> bool {
        self.resting()
            || self.spool.has_pending()
            || self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.started.elapsed() > SLOW_WRITE)
    }

    /// Takes a batch: into the next write, or into the spool.
    fn take(&mut self, batch: &mut Vec<UsageRow>) {
        if batch.is_empty() {
            return;
        }
        if self.avoid_database() || self.waiting.len() + batch.len() > WAITING_MAX {
            self.spool_rows(batch);
        } else {
            self.waiting.append(batch);
        }
    }

    /// Starts a write of the waiting rows, when none is in flight.
    fn start_write(&mut self) {
        if self.in_flight.is_some() || self.waiting.is_empty() {
            return;
        }
        if self.avoid_database() {
            let mut rows = std::mem::take(&mut self.waiting);
            self.spool_rows(&mut rows);
            return;
        }
        let rows = std::mem::take(&mut self.waiting);
        self.spawn_write(rows, Job::Rows);
    }

    fn spawn_write(&mut self, rows: Vec<UsageRow>, job: Job) {
        let store = self.store.clone();
        // Shared, not copied: the batch stays here for the spool if the write fails.
        let rows = Arc::new(rows);
        let write = tokio::spawn(async move {
            let result = store.insert_usage(Arc::clone(&rows)).await;
            (rows, result)
        });
        self.in_flight = Some(InFlight {
            write,
            started: Instant::now(),
            job,
        });
    }

    /// Waits for the write in flight, if any, and takes its outcome.
    async fn settle_in_flight(&mut self) {
        if self.in_flight.is_some() {
            let done = finished(&mut self.in_flight).await;
            self.write_done(done);
        }
    }

    /// Waits until every row given to the spool is appended (or dropped).
    async fn settle_appends(&mut self) {
        self.start_append();
        while self.appending.is_some() {
            let done = appended(&mut self.appending).await;
            self.append_done(done);
        }
    }

    /// A write ended: new rows that failed go to the spool; a failed replay leaves
    /// its rows in the spool; either way the database rests.
    fn write_done(&mut self, (job, done): Done) {
        self.in_flight = None;
        match (job, done) {
            (Job::Rows, Ok((_, Ok(())))) => {}
            (Job::Replay { end }, Ok((rows, Ok(())))) => {
                self.counters
                    .replayed
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                if let Err(e) = self.spool.mark_replayed(end) {
                    tracing::error!(error = %e, "cannot truncate the usage spool; its rows will be replayed again (harmless)");
                }
                if !self.spool.has_pending() {
                    tracing::info!("usage spool replayed into the database");
                }
            }
            (Job::Rows, Ok((rows, Err(e)))) => {
                tracing::warn!(error = %e, rows = rows.len(), "usage write failed; spooling its rows");
                self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                self.spool_rows(&mut Arc::unwrap_or_clone(rows));
            }
            (Job::Replay { .. }, Ok((rows, Err(e)))) => {
                tracing::warn!(error = %e, rows = rows.len(), "usage spool replay failed; retrying later");
                self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
            }
            (_, Err(e)) => {
                // The task panicked or was cancelled: new rows are gone with it
                // (spooled rows stay in the spool).
                tracing::error!(error = %e, "a usage write task failed");
                self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
            }
        }
    }

    /// Gives `rows` to the spool (empties `rows`): they join the next append, unless
    /// more than [`SPOOL_WAITING_MAX`] rows already wait for it.
    fn spool_rows(&mut self, rows: &mut Vec<UsageRow>) {
        let room = SPOOL_WAITING_MAX.saturating_sub(self.to_spool.len());
        if rows.len() > room {
            let count = (rows.len() - room) as u64;
            rows.truncate(room);
            let total = self.counters.dropped.fetch_add(count, Ordering::Relaxed) + count;
            tracing::error!(rows = count, dropped_total = total, spool = %self.spool.path().display(), "usage rows dropped: the database does not take them and the spool's disk is not keeping up");
        }
        self.to_spool.append(rows);
        self.start_append();
    }

    /// Starts appending the rows given to the spool, when no append is in flight (on a
    /// blocking thread: the disk's sync must stall neither the runtime the relay runs
    /// on nor the draining of the queue).
    fn start_append(&mut self) {
        if self.appending.is_some() || self.to_spool.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.to_spool);
        self.appending = Some(Appending {
            rows: rows.len(),
            append: self.spool.start_append(rows),
        });
    }

    /// An append ended: its rows are counted as spooled or dropped, and the rows given
    /// to the spool meanwhile start the next one.
    fn append_done(&mut self, done: Appended) {
        let count = self.appending.take().map_or(0, |a| a.rows) as u64;
        let outcome = done.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.spool.appended(&outcome);
        match outcome {
            Ok(_) => {
                self.counters.spooled.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                let total = self.counters.dropped.fetch_add(count, Ordering::Relaxed) + count;
                tracing::error!(error = %e, rows = count, dropped_total = total, spool = %self.spool.path().display(), "usage rows dropped: the database and the spool both failed");
            }
        }
        self.start_append();
    }

    /// Starts writing the next chunk of the spool, when the database is free and not
    /// resting and no new rows wait.
    fn start_replay(&mut self) {
        if self.in_flight.is_some()
            || !self.waiting.is_empty()
            || !self.spool.has_pending()
            || self.resting()
        {
            return;
        }
        let chunk = match self.spool.read_chunk(REPLAY_CHUNK) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::error!(error = %e, spool = %self.spool.path().display(), "cannot read the usage spool");
                self.resting_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                return;
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
        self.spawn_write(chunk.rows, Job::Replay { end: chunk.end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::UsageSink;

    /// A writer on a fresh SQLite file, flushing every `flush_every`.
    struct Running {
        sink: UsageSink,
        store: Store,
        stop: CancellationToken,
        task: JoinHandle<()>,
        url: String,
        dir: tempfile::TempDir,
    }

    async fn start(flush_every: Duration) -> Running {
        start_with_spool(flush_every, false).await
    }

    /// A writer whose spool is a named pipe when `fifo`: an append waits until
    /// something opens the pipe to read it, as on a disk that stalls.
    async fn start_with_spool(flush_every: Duration, fifo: bool) -> Running {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("opens");
        let spool_path = dir.path().join("t.spool");
        if fifo {
            let made = std::process::Command::new("mkfifo")
                .arg(&spool_path)
                .status()
                .expect("mkfifo");
            assert!(made.success(), "mkfifo failed");
        }
        let spool = Spool::open(&spool_path).expect("spool");
        let (sink, queue) = UsageSink::new(4 * BATCH_MAX, None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            store.clone(),
            queue,
            spool,
            sink.counters(),
            flush_every,
            stop.clone(),
        ));
        Running {
            sink,
            store,
            stop,
            task,
            url,
            dir,
        }
    }

    fn record(sink: &UsageSink, rows: std::ops::Range<usize>) {
        for i in rows {
            sink.record(UsageRow {
                request_id: format!("req_{i:08}").into(),
                endpoint: "/v1/chat/completions".into(),
                status: 200,
                ..UsageRow::default()
            });
        }
    }

    async fn stored(store: &Store) -> usize {
        store.list_usage(10_000).await.expect("reads").len()
    }

    /// Polls until `want` rows are stored; false after five seconds.
    async fn stored_soon(store: &Store, want: usize) -> bool {
        for _ in 0..500 {
            if stored(store).await >= want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_whole_batch_is_written_without_waiting_for_the_tick() {
        // A tick that never comes in the test: only the batch signal can start writes.
        let w = start(Duration::from_secs(3600)).await;
        record(&w.sink, 0..BATCH_MAX + 10);
        assert!(
            stored_soon(&w.store, BATCH_MAX).await,
            "a full batch is written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            stored(&w.store).await,
            BATCH_MAX,
            "the rest waits for the tick"
        );
        // Shutdown writes what is left.
        w.stop.cancel();
        w.task.await.expect("writer ends");
        assert_eq!(stored(&w.store).await, BATCH_MAX + 10);
    }

    #[tokio::test]
    async fn a_few_rows_are_written_at_the_tick() {
        let w = start(Duration::from_millis(50)).await;
        record(&w.sink, 0..3);
        assert!(stored_soon(&w.store, 3).await, "written at the tick");
        // And again after an idle spell.
        tokio::time::sleep(Duration::from_millis(200)).await;
        record(&w.sink, 3..5);
        assert!(stored_soon(&w.store, 5).await, "written at a later tick");
        w.stop.cancel();
        w.task.await.expect("writer ends");
    }

    #[tokio::test]
    async fn the_writer_ends_when_every_sink_is_gone_and_writes_what_was_queued() {
        let w = start(Duration::from_secs(3600)).await;
        record(&w.sink, 0..7);
        drop(w.sink);
        tokio::time::timeout(Duration::from_secs(5), w.task)
            .await
            .expect("ends without a stop")
            .expect("writer ends");
        assert_eq!(stored(&w.store).await, 7);
    }

    /// While the spool's disk stalls, the queue (1,024 rows here) is still drained:
    /// 3,000 rows recorded during the stall wait in memory for the next append and
    /// none is dropped. (When the writer awaited each append, it stopped draining and
    /// the queue overflowed.)
    #[tokio::test]
    async fn a_stalled_spool_does_not_stop_the_draining() {
        use sqlx::Connection;
        use std::io::Read;
        use std::sync::atomic::AtomicBool;

        let w = start_with_spool(Duration::from_millis(20), true).await;
        // The database refuses the rows: the first batch fails and goes to the spool,
        // whose append waits for a reader of the pipe.
        let mut conn = sqlx::SqliteConnection::connect(&w.url)
            .await
            .expect("connects");
        sqlx::query("DROP TABLE request_logs")
            .execute(&mut conn)
            .await
            .expect("drops");
        record(&w.sink, 0..10);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let counters = w.sink.counters();
        assert_eq!(
            counters.spooled.load(Ordering::Relaxed),
            0,
            "the append waits"
        );
        for chunk in 0..12 {
            record(&w.sink, 10 + chunk * 250..10 + (chunk + 1) * 250);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        let dropped_in_the_stall = counters.dropped.load(Ordering::Relaxed);
        let depth_in_the_stall = w.sink.depth();

        // The disk comes back (a pipe cannot be synced: those appends fail, which is
        // beside the point here), before any assertion, so that a failing test
        // ends rather than waiting on the blocked append forever.
        let released = Arc::new(AtomicBool::new(false));
        {
            let (released, path) = (released.clone(), w.dir.path().join("t.spool"));
            std::thread::spawn(move || {
                while !released.load(Ordering::SeqCst) {
                    let mut sink = Vec::new();
                    match std::fs::File::open(&path) {
                        Ok(mut pipe) => drop(pipe.read_to_end(&mut sink)),
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            });
        }
        assert_eq!(
            dropped_in_the_stall, 0,
            "rows were dropped while the spool's append waited"
        );
        assert!(
            depth_in_the_stall < BATCH_MAX,
            "the queue was not drained: {depth_in_the_stall} rows in it"
        );
        w.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), w.task)
            .await
            .expect("the writer ends once the spool takes rows")
            .expect("writer ends");
        released.store(true, Ordering::SeqCst);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3010);
    }
}
