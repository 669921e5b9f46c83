//! Per-process counters, shared by the request thread and the flush thread, shown by `tsdb_stats()`.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Default, Debug)]
pub struct Stats {
    /// Events taken by `tsdb_log_event()`.
    pub accepted: AtomicU64,
    /// Events the backend confirmed.
    pub written: AtomicU64,
    /// Events given up on: retries exhausted, or the backend configuration is wrong.
    pub failed: AtomicU64,
    /// Events the backend refused for their content (counted once, never retried).
    pub rejected: AtomicU64,
    /// Events refused before they were queued: the memory cap was reached.
    pub dropped: AtomicU64,
    /// Events with a value cut to its cap or a byte the backend could not carry replaced.
    pub truncated: AtomicU64,
    /// Events written to the local spool because the backend could not take them.
    pub spooled: AtomicU64,
    /// Spooled events (of any process) this process replayed to the backend.
    pub replayed: AtomicU64,
    /// Spooled events the backend refused for their content when replayed.
    pub replay_rejected: AtomicU64,
    /// Spooled events dropped to keep the spool under `spool_limit_bytes`.
    pub spool_dropped: AtomicU64,
    /// Whether the circuit breaker is open (the backend gets one probe per `breaker_open_ms`).
    pub breaker_open: AtomicBool,
    /// Write attempts that were retried.
    pub retried: AtomicU64,
    /// Batches the backend confirmed.
    pub batches: AtomicU64,
    /// Record bytes the flush thread holds (taken from the queue, not yet written).
    pub inflight_bytes: AtomicUsize,
    pub last_success_at: AtomicI64,
    pub last_error_at: AtomicI64,
    last_error: Mutex<String>,
    /// Times the sink found what it writes into gone (the PostgreSQL events table, an InfluxDB database)
    /// and created it again; when it last did, and its words.
    pub schema_recreated: AtomicU64,
    pub schema_recreated_at: AtomicI64,
    schema_recreated_message: Mutex<String>,
}

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Stats {
    /// `msg` must already be redacted.
    pub fn set_error(&self, msg: &str) {
        let mut e = self.last_error.lock();
        e.clear();
        e.push_str(msg);
        self.last_error_at.store(now_unix(), Relaxed);
    }

    pub fn last_error(&self) -> String {
        self.last_error.lock().clone()
    }

    /// A sink created its table or database again; `msg` must already be redacted.
    pub fn note_recreated(&self, msg: &str) {
        *self.schema_recreated_message.lock() = msg.to_string();
        self.schema_recreated_at.store(now_unix(), Relaxed);
        self.schema_recreated.fetch_add(1, Relaxed);
    }

    pub fn schema_recreated_message(&self) -> String {
        self.schema_recreated_message.lock().clone()
    }

    /// Events accepted and not yet accounted for (written, failed, rejected or spooled).
    pub fn pending(&self) -> u64 {
        let done = self.written.load(Relaxed)
            + self.failed.load(Relaxed)
            + self.rejected.load(Relaxed)
            + self.spooled.load(Relaxed);
        self.accepted.load(Relaxed).saturating_sub(done)
    }
}

/// A value of `tsdb_stats()`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Str(String),
}
