//! Request counters and the last request seen per path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderMap;
use bytes::Bytes;

use crate::admit::KeyHeader;

/// A request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The JSON body (`Value::Null` when the body was empty or not JSON).
    pub body: serde_json::Value,
    /// Every header, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
}

/// Raw form kept on the hot path; turned into a [`RecordedRequest`] only on demand.
struct Last {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct PathEntry {
    count: u64,
    last: Option<Last>,
}

#[derive(Default)]
struct Tables {
    keys: HashMap<String, u64>,
    paths: HashMap<String, PathEntry>,
}

/// Counts every request and keeps the last one per path.
#[derive(Default)]
pub(crate) struct Recorder {
    total: AtomicU64,
    tables: Mutex<Tables>,
}

impl Recorder {
    /// Records one request whose key is read from `key_header`. Moves the headers
    /// in; the body is a cheap `Bytes` handle. Returns the number of requests seen
    /// with this key so far, this one included (0 without a key).
    pub(crate) fn record(
        &self,
        path: &str,
        key_header: KeyHeader,
        headers: HeaderMap,
        body: Bytes,
    ) -> u64 {
        self.total.fetch_add(1, Ordering::Relaxed);
        let (previous, seen) = {
            let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            let mut seen = 0;
            if let Some(key) = key_header.key(&headers) {
                seen = match tables.keys.get_mut(key) {
                    Some(count) => {
                        *count += 1;
                        *count
                    }
                    None => {
                        tables.keys.insert(key.to_owned(), 1);
                        1
                    }
                };
            }
            let entry = match tables.paths.get_mut(path) {
                Some(entry) => entry,
                None => tables.paths.entry(path.to_owned()).or_default(),
            };
            entry.count += 1;
            (entry.last.replace(Last { headers, body }), seen)
        };
        // The previous request is freed outside the lock.
        drop(previous);
        seen
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn for_key(&self, key: &str) -> u64 {
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.keys.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn for_path(&self, path: &str) -> u64 {
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.paths.get(path).map_or(0, |entry| entry.count)
    }

    pub(crate) fn last(&self, path: &str) -> Option<RecordedRequest> {
        let (headers, body) = {
            let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            let last = tables.paths.get(path)?.last.as_ref()?;
            (last.headers.clone(), last.body.clone())
        };
        let headers = headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Some(RecordedRequest { body, headers })
    }
}
