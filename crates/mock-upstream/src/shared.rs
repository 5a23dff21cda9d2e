//! State shared by every handler of one server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::models;
use crate::options::MockOptions;
use crate::record::Recorder;
use crate::script::Scripts;

/// Everything a handler needs: options, counters, scripts and the shutdown signal.
pub(crate) struct Shared {
    pub(crate) options: MockOptions,
    pub(crate) recorder: Recorder,
    pub(crate) scripts: Scripts,
    /// The `GET /v1/models` body, rendered once.
    pub(crate) models_body: Bytes,
    shutdown: watch::Sender<bool>,
    next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(options: MockOptions) -> Shared {
        let models_body = models::render(&options.models);
        Shared {
            options,
            recorder: Recorder::default(),
            scripts: Scripts::default(),
            models_body,
            shutdown: watch::Sender::new(false),
            next_id: AtomicU64::new(1),
        }
    }

    /// A number unique within this server, for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Signals every waiting request and the accept loop to stop.
    pub(crate) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once the server is shutting down.
    pub(crate) async fn stopped(&self) {
        let mut receiver = self.shutdown.subscribe();
        // An error means the sender is gone, which also means "stopped".
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps for `delay`; returns false if the server shut down first.
    pub(crate) async fn pause(&self, delay: Duration) -> bool {
        if delay.is_zero() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.stopped() => false,
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
