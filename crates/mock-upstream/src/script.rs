//! Per-key scripted answers, consumed in order.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// One scripted answer for a request carrying a given key.
#[derive(Clone, Debug)]
pub enum Step {
    /// A normal successful reply (per-request directives still apply; the key's
    /// behaviour prefix, if any, does not).
    Reply,
    /// An error with this status, in the shape of the API asked (OpenAI's, or
    /// Anthropic's on `/v1/messages`), and `Retry-After` when given.
    Status {
        /// HTTP status code.
        status: u16,
        /// Seconds for the `Retry-After` header; `None` sends no header.
        retry_after_s: Option<u64>,
    },
    /// Never answer (the request waits until the server shuts down).
    Hang,
    /// `200` with `content-type: application/json` and a body that is not JSON.
    Garbage,
}

/// Queues of steps per key. The pending count lets the hot path skip the lock
/// when nothing is scripted.
#[derive(Default)]
pub(crate) struct Scripts {
    pending: AtomicUsize,
    queues: Mutex<HashMap<String, VecDeque<Step>>>,
}

impl Scripts {
    /// Appends `steps` to the queue of `key`.
    pub(crate) fn push(&self, key: &str, steps: Vec<Step>) {
        if steps.is_empty() {
            return;
        }
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        self.pending.fetch_add(steps.len(), Ordering::AcqRel);
        queues.entry(key.to_owned()).or_default().extend(steps);
    }

    /// Takes the next step queued for `key`, if any.
    pub(crate) fn pop(&self, key: &str) -> Option<Step> {
        if self.pending.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = queues.get_mut(key)?;
        let step = queue.pop_front()?;
        if queue.is_empty() {
            queues.remove(key);
        }
        self.pending.fetch_sub(1, Ordering::AcqRel);
        Some(step)
    }
}
