//! Driving a real pipeline from the integration tests: log test events, wait for its counters.

#![allow(dead_code)] // each test file uses part of it

use super::events::{fill, Ev};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};
use tsdb::config::Config;
use tsdb::pipeline::Pipeline;
use tsdb::record::RecordWriter;
use tsdb::stats::Stats;

/// Logs `e` as `tsdb_log_event()` would (the pipeline stamps its identity and time).
pub fn log(p: &Pipeline, e: &Ev) {
    let logged = p
        .log(|w: &mut RecordWriter<'_>, _c: &Config| {
            fill(w, e, 16 << 20);
            Ok::<(), ()>(())
        })
        .unwrap();
    assert!(logged, "event dropped");
}

/// Flushes until `done` holds for the counters. Only a guard against a hang bounds the wait (2 minutes):
/// nothing is asserted about how long it takes.
pub fn wait_for(p: &Pipeline, what: &str, done: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(p.stats()) {
        assert!(Instant::now() < deadline, "waited 2 minutes for {what}: {}", show(p.stats()));
        p.flush(Duration::from_millis(200));
    }
}

/// The counters, for a failure message.
pub fn show(s: &Stats) -> String {
    format!(
        "accepted {} written {} spooled {} replayed {} failed {} rejected {} retried {} pending {} breaker_open {} \
         schema_recreated {} last_error {:?}",
        s.accepted.load(SeqCst),
        s.written.load(SeqCst),
        s.spooled.load(SeqCst),
        s.replayed.load(SeqCst),
        s.failed.load(SeqCst),
        s.rejected.load(SeqCst),
        s.retried.load(SeqCst),
        s.pending(),
        s.breaker_open.load(SeqCst),
        s.schema_recreated.load(SeqCst),
        s.last_error()
    )
}
