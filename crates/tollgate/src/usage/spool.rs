//! The append-only spool: where usage rows wait on disk while the database is down or
//! slower than the traffic, so that memory stays bounded and no row is lost. One JSON
//! line per row; the writer appends batches and replays them (idempotent by request
//! id) once the database takes writes again, then truncates the file.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::UsageRow;

/// A spool file and how far it has been replayed.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    /// Bytes of the file already replayed.
    replayed: u64,
    /// Bytes in the file (appended so far).
    len: u64,
    /// An append is running ([`Spool::start_append`]): the file is not truncated.
    appending: bool,
}

/// An append running on a blocking thread: it answers the file's new length or the
/// error. Hand its outcome to [`Spool::appended`].
pub type Append = tokio::task::JoinHandle<std::io::Result<u64>>;

/// A spooled row: [`UsageRow`] in owned, serializable form.
#[derive(Debug, Serialize, Deserialize)]
struct SpooledRow {
    request_id: String,
    created_at_ms: i64,
    key_id: Option<String>,
    owner: Option<String>,
    endpoint: String,
    model_requested: Option<String>,
    model_served: Option<String>,
    provider: Option<String>,
    upstream_key_id: Option<String>,
    status: u16,
    error_type: Option<String>,
    stream: bool,
    latency_ms: i64,
    ttfb_ms: Option<i64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    usage_estimated: bool,
    cost_nanos: i64,
    cache_hit: bool,
    downgraded_from: Option<String>,
    client_ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
}

impl From<&UsageRow> for SpooledRow {
    fn from(r: &UsageRow) -> Self {
        let text = |v: &Option<std::sync::Arc<str>>| v.as_deref().map(str::to_owned);
        SpooledRow {
            request_id: r.request_id.to_string(),
            created_at_ms: r.created_at_ms,
            key_id: text(&r.key_id),
            owner: text(&r.owner),
            endpoint: r.endpoint.to_string(),
            model_requested: text(&r.model_requested),
            model_served: text(&r.model_served),
            provider: text(&r.provider),
            upstream_key_id: text(&r.upstream_key_id),
            status: r.status,
            error_type: r.error_type.as_deref().map(str::to_owned),
            stream: r.stream,
            latency_ms: r.latency_ms,
            ttfb_ms: r.ttfb_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            usage_estimated: r.usage_estimated,
            cost_nanos: r.cost_nanos,
            cache_hit: r.cache_hit,
            downgraded_from: text(&r.downgraded_from),
            client_ip: r.client_ip,
            user_agent: r
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }
}

impl From<SpooledRow> for UsageRow {
    fn from(r: SpooledRow) -> Self {
        let arc = |v: Option<String>| v.map(|s| std::sync::Arc::from(s.as_str()));
        UsageRow {
            request_id: r.request_id.as_str().into(),
            created_at_ms: r.created_at_ms,
            key_id: arc(r.key_id),
            owner: arc(r.owner),
            endpoint: Cow::Owned(r.endpoint),
            model_requested: arc(r.model_requested),
            model_served: arc(r.model_served),
            provider: arc(r.provider),
            upstream_key_id: arc(r.upstream_key_id),
            status: r.status,
            error_type: r.error_type.map(Cow::Owned),
            stream: r.stream,
            latency_ms: r.latency_ms,
            ttfb_ms: r.ttfb_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            usage_estimated: r.usage_estimated,
            cost_nanos: r.cost_nanos,
            cache_hit: r.cache_hit,
            downgraded_from: arc(r.downgraded_from),
            client_ip: r.client_ip,
            user_agent: r
                .user_agent
                .and_then(|s| http::HeaderValue::from_str(&s).ok()),
        }
    }
}

/// What a replay step read.
#[derive(Debug, Default)]
pub struct Chunk {
    pub rows: Vec<UsageRow>,
    /// Lines that could not be read back (a torn last write): counted as dropped.
    pub unreadable: u64,
    /// Where the chunk ends in the file; pass to [`Spool::mark_replayed`] once written.
    pub end: u64,
}

impl Spool {
    /// The spool at `path`; rows already in it (from before a restart) are pending.
    pub fn open(path: &Path) -> std::io::Result<Spool> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Spool {
            path: path.to_owned(),
            replayed: 0,
            len,
            appending: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when rows wait in the file.
    pub fn has_pending(&self) -> bool {
        self.replayed < self.len
    }

    /// Bytes waiting to be replayed.
    pub fn pending_bytes(&self) -> u64 {
        self.len - self.replayed
    }

    /// Appends rows and syncs them to disk, on the calling thread (tests; the writer
    /// uses [`Spool::start_append`]).
    #[cfg(test)]
    pub fn append(&mut self, rows: &[UsageRow]) -> std::io::Result<()> {
        self.len = append_lines(&self.path, rows)?;
        Ok(())
    }

    /// Starts appending rows and syncing them to disk on a blocking thread, so that
    /// neither the runtime (and the relay on it) nor the caller waits for the disk.
    /// One append at a time: pass its outcome to [`Spool::appended`] before the next.
    pub fn start_append(&mut self, rows: Vec<UsageRow>) -> Append {
        self.appending = true;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append_lines(&path, &rows))
    }

    /// Takes the outcome of the append that [`Spool::start_append`] started: its rows
    /// are pending once it succeeded.
    pub fn appended(&mut self, outcome: &std::io::Result<u64>) {
        self.appending = false;
        if let Ok(len) = outcome {
            self.len = *len;
        }
    }

    /// Reads up to `max` pending rows (never past the appends that have finished: an
    /// append in flight may have written part of its lines).
    pub fn read_chunk(&self, max: usize) -> std::io::Result<Chunk> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.replayed))?;
        let mut reader = BufReader::new(file.take(self.len - self.replayed));
        let mut chunk = Chunk {
            end: self.replayed,
            ..Chunk::default()
        };
        let mut line = String::new();
        while chunk.rows.len() < max {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 {
                break;
            }
            if !line.ends_with('\n') {
                // A torn write at the very end: nothing after it can follow.
                chunk.unreadable += 1;
                chunk.end += n as u64;
                break;
            }
            chunk.end += n as u64;
            match serde_json::from_str::<SpooledRow>(line.trim_end()) {
                Ok(row) => chunk.rows.push(row.into()),
                Err(_) => chunk.unreadable += 1,
            }
        }
        Ok(chunk)
    }

    /// Records that the file up to `end` is in the database; an emptied spool is
    /// truncated (unless an append is running: it is emptied after a later replay).
    pub fn mark_replayed(&mut self, end: u64) -> std::io::Result<()> {
        self.replayed = end.min(self.len);
        if self.replayed == self.len && self.len > 0 && !self.appending {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)?
                .set_len(0)?;
            self.len = 0;
            self.replayed = 0;
        }
        Ok(())
    }
}

/// Appends `rows` to the file at `path`, one JSON line each, and syncs it; answers the
/// file's new length.
fn append_lines(path: &Path, rows: &[UsageRow]) -> std::io::Result<u64> {
    let mut text = Vec::with_capacity(rows.len() * 400);
    for row in rows {
        serde_json::to_writer(&mut text, &SpooledRow::from(row))?;
        text.push(b'\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&text)?;
    file.sync_data()?;
    Ok(file.metadata()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> UsageRow {
        UsageRow {
            request_id: id.into(),
            endpoint: Cow::Borrowed("/v1/chat/completions"),
            status: 200,
            error_type: Some(Cow::Borrowed("x")),
            user_agent: Some(http::HeaderValue::from_static("ua/1")),
            client_ip: Some("127.0.0.1".parse().expect("ip")),
            prompt_tokens: 3,
            ..UsageRow::default()
        }
    }

    /// The append runs off the runtime: while it waits for the file (a named pipe
    /// whose reader only opens once another task has run), the runtime's one thread
    /// runs other tasks. Done inline, the reader would give up after 5 s and the test
    /// fail.
    #[tokio::test(flavor = "current_thread")]
    async fn appending_leaves_the_runtime_free_while_the_file_blocks() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::time::{Duration, Instant};

        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("usage.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(made.success(), "mkfifo failed");
        let mut spool = Spool::open(&path).expect("open");
        let ran = Arc::new(AtomicBool::new(false));
        let reader = {
            let (ran, path) = (ran.clone(), path.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(5);
                while !ran.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let ran_first = ran.load(Ordering::SeqCst);
                let mut text = String::new();
                std::fs::File::open(&path)
                    .and_then(|mut f| f.read_to_string(&mut text))
                    .expect("read the pipe");
                (ran_first, text)
            })
        };
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        // The pipe cannot be synced: the outcome is an error.
        let outcome = spool
            .start_append(vec![row("req_p")])
            .await
            .expect("the append task ends");
        assert!(outcome.is_err());
        spool.appended(&outcome);
        let (ran_first, text) = reader.join().expect("reader");
        assert!(
            ran_first,
            "another task ran while the append waited for the file"
        );
        assert!(text.contains("req_p"), "{text}");
    }

    #[test]
    fn rows_round_trip_and_the_file_empties_after_replay() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("usage.spool");
        let mut spool = Spool::open(&path).expect("open");
        assert!(!spool.has_pending());
        spool.append(&[row("req_a"), row("req_b")]).expect("append");
        spool.append(&[row("req_c")]).expect("append");
        let first = spool.read_chunk(2).expect("read");
        assert_eq!(first.rows.len(), 2);
        assert_eq!(&*first.rows[0].request_id, "req_a");
        assert_eq!(
            first.rows[0]
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok()),
            Some("ua/1")
        );
        assert_eq!(first.rows[0].error_type.as_deref(), Some("x"));
        spool.mark_replayed(first.end).expect("mark");
        assert!(spool.has_pending());
        // A restart finds what is still pending from the start of the file; replays
        // are idempotent by request id, so re-reading written rows is harmless.
        let reopened = Spool::open(&path).expect("reopen");
        assert_eq!(reopened.read_chunk(10).expect("read").rows.len(), 3);
        let rest = spool.read_chunk(10).expect("read");
        assert_eq!(rest.rows.len(), 1);
        spool.mark_replayed(rest.end).expect("mark");
        assert!(!spool.has_pending());
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0);
    }

    #[test]
    fn a_torn_last_line_is_counted_not_fatal() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("usage.spool");
        let mut spool = Spool::open(&path).expect("open");
        spool.append(&[row("req_a")]).expect("append");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("file");
        f.write_all(b"{\"request_id\":\"req_b\",\"crea")
            .expect("write");
        let spool = Spool::open(&path).expect("reopen");
        let chunk = spool.read_chunk(10).expect("read");
        assert_eq!(chunk.rows.len(), 1);
        assert_eq!(chunk.unreadable, 1);
        assert_eq!(chunk.end, std::fs::metadata(&path).expect("meta").len());
    }
}
