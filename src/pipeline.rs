//! The per-process pipeline: the request thread appends records to a queue (a byte buffer under a
//! lock held for a few hundred nanoseconds), and one flush thread takes the queue, cuts it into
//! batches and writes them to the sink with retries.
//!
//! - The request never blocks on I/O and never waits for the flush thread: past `memory_limit_bytes`
//!   (queued plus in flight) an event is dropped and counted.
//! - A batch closes at `batch_size` events (the request wakes the thread) or at the flush tick
//!   (`flush_interval_ms`), whichever comes first.
//! - `configure()` with a new configuration seals the queue with the old one: the thread writes
//!   what was logged before the switch to the old sink, then opens the new one.
//! - The thread never calls into PHP.

use crate::config::{Config, Mode};
use crate::event::{EventId, IntField};
use crate::record::{RecordWriter, Stamper};
use crate::retry::{random_u64, random_unit, Backoff};
use crate::sink::{self, cut, write_bisecting, Batch, Final, Sink, SinkError, Written};
use crate::spool::{Journal, Spool};
use crate::stats::{now_unix, Stats};
use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Queue size at which the request wakes the flush thread even before `batch_size` events.
const WAKE_BYTES: usize = 4 << 20;

struct Chunk {
    config: Arc<Config>,
    bytes: Vec<u8>,
}

struct Queue {
    config: Arc<Config>,
    buf: Vec<u8>,
    /// An emptied buffer the thread gave back: the next swap reuses its memory instead of faulting in new pages.
    spare: Vec<u8>,
    events: usize,
    /// Chunks logged under earlier configurations, not yet taken by the thread.
    sealed: Vec<Chunk>,
    sealed_bytes: usize,
    next_seq: u64,
    stamper: Stamper,
    /// `durable` mode: records of this request not yet appended to the journal.
    journal: Vec<u8>,
    journal_events: usize,
    journal_since_us: i64,
    /// Some staged records are not in memory (the cap was reached): the journal is their only copy.
    journal_orphans: bool,
}

enum Ctl {
    /// Write what is queued, then answer; `probe`: with the circuit breaker open, try the backend
    /// now rather than at the next scheduled probe.
    Flush {
        reply: Sender<()>,
        probe: bool,
    },
    Shutdown(Sender<()>),
}

struct Shared {
    queue: Mutex<Queue>,
    stats: Stats,
    producer: u64,
    /// `durable` mode: the journal files; only the request thread appends, at request end.
    journal: Mutex<JournalState>,
    /// Every event with a sequence number up to this one is written, rejected, spooled or failed.
    delivered: AtomicU64,
}

#[derive(Default)]
struct JournalState {
    spool: Option<Spool>,
    /// The configuration `spool` was opened for: the same `Arc` means the same spool, without
    /// fingerprinting the target on every request.
    opened_for: Option<Arc<Config>>,
    journal: Journal,
}

impl Shared {
    fn queued_bytes(&self) -> usize {
        let q = self.queue.lock();
        q.buf.len() + q.sealed_bytes + self.stats.inflight_bytes.load(Relaxed)
    }
}

/// One process's pipeline. Create it in the process that uses it (after any fork).
pub struct Pipeline {
    shared: Arc<Shared>,
    wake: Sender<()>,
    ctl: Sender<Ctl>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

impl Pipeline {
    /// Starts the flush thread. Fails only if the OS refuses a thread.
    pub fn start(config: Config) -> std::io::Result<Pipeline> {
        // The top bit marks an import's producers (`import::IMPORT_BIT`): a live process never has it.
        let producer = random_u64() & !crate::import::IMPORT_BIT;
        let config = Arc::new(config);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                config: config.clone(),
                buf: Vec::with_capacity(64 << 10),
                spare: Vec::new(),
                events: 0,
                sealed: Vec::new(),
                sealed_bytes: 0,
                next_seq: 1,
                stamper: Stamper::new(producer),
                journal: Vec::new(),
                journal_events: 0,
                journal_since_us: 0,
                journal_orphans: false,
            }),
            journal: Mutex::new(JournalState::default()),
            delivered: AtomicU64::new(0),
            stats: Stats::default(),
            producer,
        });
        let (wake, wake_rx) = bounded(1);
        let (ctl, ctl_rx) = unbounded();
        let mut worker = Worker {
            shared: shared.clone(),
            wake: wake_rx,
            ctl: ctl_rx,
            inbox: VecDeque::new(),
            config,
            sink: None,
            spool: None,
            breaker_until: None,
            pending: Vec::new(),
            last_write: Instant::now(),
            last_replay: Instant::now(),
            taken_upto: 0,
            ahead: None,
        };
        let handle = std::thread::Builder::new().name("tsdb-flush".into()).spawn(move || worker.run())?;
        Ok(Pipeline { shared, wake, ctl, worker: Mutex::new(Some(handle)) })
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn producer(&self) -> u64 {
        self.shared.producer
    }

    pub fn config(&self) -> Arc<Config> {
        self.shared.queue.lock().config.clone()
    }

    /// Record bytes held in memory: queued plus in flight.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes()
    }

    /// Captures one event: `fill` writes its fields (it sees the configuration for caps). Returns
    /// Ok(false) when the event was dropped because the memory cap is reached, `fill`'s error when the
    /// event is invalid (then nothing is queued). In `sync` mode, waits for the write.
    pub fn log<E>(&self, fill: impl FnOnce(&mut RecordWriter<'_>, &Config) -> Result<(), E>) -> Result<bool, E> {
        let stats = &self.shared.stats;
        let (sync_timeout, persist) = {
            let mut guard = self.shared.queue.lock();
            let q = &mut *guard;
            let before = q.buf.len();
            let mut w = RecordWriter::begin(&mut q.buf);
            fill(&mut w, &q.config)?;
            let hot = *q.config.hot();
            let durable = hot.mode == Mode::Durable;
            let held = w.out().len() + q.sealed_bytes + stats.inflight_bytes.load(Relaxed);
            let over = held > hot.memory_limit;
            if over && !durable {
                drop(w);
                debug_assert_eq!(q.buf.len(), before);
                stats.dropped.fetch_add(1, Relaxed);
                return Ok(false);
            }
            let now = now_us();
            let timecreated = w.int(IntField::TimeCreated).unwrap_or(now.div_euclid(1_000_000));
            if w.is_truncated() {
                stats.truncated.fetch_add(1, Relaxed);
            }
            let time_ns = q.stamper.stamp(timecreated, now);
            w.finish(EventId { producer: self.shared.producer, seq: q.next_seq }, time_ns);
            q.next_seq += 1;
            stats.accepted.fetch_add(1, Relaxed);
            let mut persist = false;
            if durable {
                if q.journal_events == 0 {
                    q.journal_since_us = now;
                }
                q.journal.extend_from_slice(&q.buf[before..]);
                q.journal_events += 1;
                if over {
                    // Past the memory cap the journal alone keeps the event; a replay delivers it.
                    q.buf.truncate(before);
                    q.journal_orphans = true;
                    stats.spooled.fetch_add(1, Relaxed);
                }
                // A CLI script is one long request: append at least once per batch or flush interval.
                persist = q.journal_events >= hot.batch_size || now - q.journal_since_us >= hot.flush_interval_us;
            }
            if !over {
                q.events += 1;
            }
            if q.events >= hot.batch_size || q.buf.len() >= WAKE_BYTES {
                let _ = self.wake.try_send(());
            }
            ((hot.mode == Mode::Sync).then(|| q.config.ms("sync_timeout_ms")), persist)
        };
        if persist {
            self.persist_journal();
        }
        if let Some(t) = sync_timeout {
            self.flush(t);
        }
        Ok(true)
    }

    /// The end of a PHP request: in `durable` mode, the request's events reach the journal on disk
    /// before the request finishes.
    pub fn end_request(&self) {
        self.persist_journal();
    }

    /// Appends the staged records to this process's journal (durable mode); a no-op otherwise.
    fn persist_journal(&self) {
        let (records, last_seq, orphans, config) = {
            let mut q = self.shared.queue.lock();
            if q.journal.is_empty() {
                return;
            }
            q.journal_events = 0;
            let orphans = std::mem::take(&mut q.journal_orphans);
            (std::mem::take(&mut q.journal), q.next_seq - 1, orphans, q.config.clone())
        };
        let stats = &self.shared.stats;
        let mut j = self.shared.journal.lock();
        if !j.opened_for.as_ref().is_some_and(|c| Arc::ptr_eq(c, &config)) {
            let dir = config.get("spool_dir");
            let target = crate::spool::target_of(&config);
            if j.spool.as_ref().is_none_or(|s| s.dir() != std::path::Path::new(dir) || s.target() != target) {
                match Spool::of(&config) {
                    Some(Ok(s)) => j.spool = Some(s),
                    Some(Err(e)) => {
                        stats.set_error(&format!("{e} (the durable journal)"));
                        return;
                    }
                    None => return,
                }
            }
            j.opened_for = Some(config);
        }
        let delivered = self.shared.delivered.load(Relaxed);
        let JournalState { spool, journal, .. } = &mut *j;
        journal.release(delivered);
        if let Some(sp) = spool.as_ref() {
            if let Err(e) = journal.append(sp, self.shared.producer, &records, last_seq, orphans) {
                stats.set_error(&format!("spool_dir: durable journal append failed: {e}"));
            }
        }
    }

    /// Switches to `config` if it differs from the current one; events logged before the switch are
    /// written to the old sink. Returns whether it switched.
    pub fn configure(&self, config: Config) -> bool {
        let mut q = self.shared.queue.lock();
        if *q.config == config {
            return false;
        }
        let bytes = std::mem::take(&mut q.buf);
        if !bytes.is_empty() {
            q.sealed_bytes += bytes.len();
            let old = q.config.clone();
            q.sealed.push(Chunk { config: old, bytes });
        }
        q.events = 0;
        q.config = Arc::new(config);
        drop(q);
        let _ = self.wake.try_send(());
        true
    }

    /// Asks the thread to write everything queued and waits up to `timeout`. Returns the events
    /// still pending (accepted, not yet written, failed or rejected).
    pub fn flush(&self, timeout: Duration) -> u64 {
        self.flush_with(timeout, false)
    }

    /// `flush`, and with the circuit breaker open the backend is tried at once instead of the batch
    /// going to the spool until the next probe: an administrator's "Test connection" right after an
    /// outage must test the backend, not the breaker.
    pub fn flush_with(&self, timeout: Duration, probe: bool) -> u64 {
        let (tx, rx) = bounded(1);
        if self.ctl.send(Ctl::Flush { reply: tx, probe }).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
        self.shared.stats.pending()
    }

    /// Graceful end of the process: write what is queued, waiting up to `timeout`; the thread exits.
    /// Joins the thread only once it has acknowledged, so a hung backend cannot hang the exit.
    pub fn shutdown(&self, timeout: Duration) -> u64 {
        // Durable first: if the backend cannot take everything in time, the journal keeps it.
        self.persist_journal();
        let (tx, rx) = bounded(1);
        if self.ctl.send(Ctl::Shutdown(tx)).is_ok() && rx.recv_timeout(timeout).is_ok() {
            if let Some(h) = self.worker.lock().take() {
                let _ = h.join();
            }
        }
        self.shared.journal.lock().journal.close(self.shared.delivered.load(Relaxed));
        self.shared.stats.pending()
    }
}

struct Worker {
    shared: Arc<Shared>,
    wake: Receiver<()>,
    ctl: Receiver<Ctl>,
    /// Control messages that arrived while the thread slept between retries.
    inbox: VecDeque<Ctl>,
    config: Arc<Config>,
    sink: Option<Box<dyn Sink>>,
    /// The spool of `config` (None when `spool_dir` is empty or cannot be opened).
    spool: Option<Spool>,
    /// With a spool: while set, batches go straight to the spool and the backend gets one probe when
    /// this instant passes.
    breaker_until: Option<Instant>,
    /// Records taken from the queue, not yet written, all for `config`.
    pending: Vec<u8>,
    last_write: Instant,
    last_replay: Instant,
    /// The last sequence number assigned when the queue was last taken.
    taken_upto: u64,
    /// The batch `write_ready` writes after the current one (and its length in bytes).
    ahead: Option<(Batch, usize)>,
}

/// How often the flush thread looks for spooled segments to replay while the backend answers.
const REPLAY_EVERY: Duration = Duration::from_secs(1);

impl Worker {
    fn run(&mut self) {
        self.open_spool();
        let mut next_tick = Instant::now() + self.config.ms("flush_interval_ms");
        loop {
            let mut tick = false;
            let mut msg = self.inbox.pop_front();
            if msg.is_none() {
                let timeout = next_tick.saturating_duration_since(Instant::now());
                select! {
                    recv(self.wake) -> _ => {}
                    recv(self.ctl) -> m => msg = Some(m.unwrap_or_else(|_| Ctl::Shutdown(bounded(1).0))),
                    default(timeout) => tick = true,
                }
            }
            if matches!(msg, Some(Ctl::Flush { probe: true, .. })) && self.breaker_until.is_some() {
                self.breaker_until = Some(Instant::now());
            }
            self.take_queue();
            let force = tick || msg.is_some();
            self.write_ready(force);
            self.mark_delivered();
            if force {
                next_tick = Instant::now() + self.config.ms("flush_interval_ms");
            }
            let probe_due = self.breaker_until.is_none_or(|t| Instant::now() >= t);
            if probe_due && self.last_replay.elapsed() >= REPLAY_EVERY {
                self.replay_spool(self.config.ms("flush_interval_ms").max(REPLAY_EVERY));
            }
            match msg {
                Some(Ctl::Flush { reply, .. }) => {
                    let _ = reply.send(());
                }
                Some(Ctl::Shutdown(reply)) => {
                    self.sink = None;
                    let _ = reply.send(());
                    return;
                }
                None => {}
            }
            let idle = self.config.ms("idle_close_ms");
            if !idle.is_zero() && self.sink.is_some() && self.last_write.elapsed() >= idle {
                if let Some(s) = self.sink.as_mut() {
                    s.idle();
                }
            }
        }
    }

    /// Publishes the highest sequence number up to which every event is accounted for: everything
    /// taken from the queue, except what still waits in `pending`.
    fn mark_delivered(&self) {
        let upto = match crate::record::read(&self.pending) {
            Ok(r) => r.event.id.seq.saturating_sub(1),
            Err(_) => self.taken_upto,
        };
        self.shared.delivered.fetch_max(upto, Relaxed);
    }

    fn open_spool(&mut self) {
        self.spool = None;
        self.breaker_until = None;
        match Spool::of(&self.config) {
            Some(Ok(s)) => self.spool = Some(s),
            Some(Err(e)) => self.shared.stats.set_error(&e),
            None => {}
        }
    }

    /// Moves everything queued into `pending`, writing out the old configuration's events first
    /// when the configuration changed.
    fn take_queue(&mut self) {
        let (chunks, current) = {
            let mut q = self.shared.queue.lock();
            let mut chunks = std::mem::take(&mut q.sealed);
            q.sealed_bytes = 0;
            if !q.buf.is_empty() {
                let spare = std::mem::take(&mut q.spare);
                let bytes = std::mem::replace(&mut q.buf, spare);
                chunks.push(Chunk { config: q.config.clone(), bytes });
            }
            q.events = 0;
            self.taken_upto = q.next_seq - 1;
            let taken: usize = chunks.iter().map(|c| c.bytes.len()).sum();
            self.shared.stats.inflight_bytes.fetch_add(taken, Relaxed);
            (chunks, q.config.clone())
        };
        let mut emptied = None;
        for mut chunk in chunks {
            self.switch_to(&chunk.config);
            self.pending.extend_from_slice(&chunk.bytes);
            chunk.bytes.clear();
            emptied = Some(chunk.bytes);
        }
        self.switch_to(&current);
        // Only a modest buffer is kept: a big spare would hold memory past `memory_limit_bytes`.
        if let Some(buf) = emptied.filter(|b| b.capacity() <= 1 << 20) {
            let mut q = self.shared.queue.lock();
            if q.spare.capacity() == 0 {
                q.spare = buf;
            }
        }
    }

    fn switch_to(&mut self, config: &Arc<Config>) {
        if Arc::ptr_eq(&self.config, config) || *self.config == **config {
            return;
        }
        self.write_ready(true);
        self.sink = None;
        self.config = config.clone();
        self.open_spool();
    }

    /// Writes full batches; with `force`, also the last partial one. The batch after the one being
    /// written is cut first and offered to the sink (`Sink::write_ahead`), so that it can be encoded
    /// while the server stores the current one.
    fn write_ready(&mut self, force: bool) {
        let max = self.config.batch_size();
        let mut at = 0;
        let mut current = self.next_batch(&mut at, max, force);
        while let Some((batch, bytes)) = current {
            self.ahead = self.next_batch(&mut at, max, force);
            self.deliver(batch);
            self.shared.stats.inflight_bytes.fetch_sub(bytes, Relaxed);
            current = self.ahead.take();
        }
        self.pending.drain(..at);
    }

    /// The batch starting at `pending[at..]` and its length in bytes, advancing `at`; None when
    /// nothing is left, or only a partial batch and not `force`.
    fn next_batch(&self, at: &mut usize, max: usize, force: bool) -> Option<(Batch, usize)> {
        while *at < self.pending.len() {
            let (end, n) = cut(&self.pending[*at..], max);
            if n < max && !force {
                return None;
            }
            // Records written by this process are whole; a cut of zero would mean corruption.
            let end = if n == 0 { self.pending.len() - *at } else { end };
            let bytes = self.pending[*at..*at + end].to_vec();
            *at += end;
            match Batch::new(bytes) {
                Ok(b) => return Some((b, end)),
                Err(e) => {
                    self.shared.stats.set_error(&format!("internal: corrupt queue record: {e}"));
                    self.shared.stats.inflight_bytes.fetch_sub(end, Relaxed);
                }
            }
        }
        None
    }

    /// Writes one batch and accounts for every event: written, rejected, spooled or failed.
    fn deliver(&mut self, batch: Batch) {
        let shared = self.shared.clone();
        let stats = &shared.stats;
        let config = self.config.clone();
        let mut unsent: Vec<Batch> = Vec::new();
        write_bisecting(
            batch,
            |b| self.attempt(b),
            |b, fin| {
                match fin {
                    Final::Written(w) => {
                        stats.written.fetch_add(w.written as u64, Relaxed);
                        stats.rejected.fetch_add(w.rejected as u64, Relaxed);
                        stats.truncated.fetch_add(w.truncated as u64, Relaxed);
                        stats.batches.fetch_add(1, Relaxed);
                        stats.last_success_at.store(now_unix(), Relaxed);
                        if let Some(e) = w.error {
                            stats.set_error(&config.redact(&e));
                        }
                    }
                    Final::Rejected(msg) => {
                        stats.rejected.fetch_add(1, Relaxed);
                        stats.set_error(&config.redact(&msg));
                    }
                    Final::Failed(msg) => {
                        if !msg.is_empty() {
                            stats.set_error(&config.redact(&msg));
                        }
                        unsent.push(b);
                    }
                }
                true
            },
        );
        for b in unsent {
            self.spool_or_fail(&b);
        }
        self.last_write = Instant::now();
        self.note_recreated();
    }

    /// Counts what the sink created again (a dropped table or database) for `tsdb_stats()`.
    fn note_recreated(&mut self) {
        let Some(s) = self.sink.as_mut() else { return };
        for msg in s.take_recreated() {
            self.shared.stats.note_recreated(&self.config.redact(&msg));
        }
    }

    /// A batch the backend could not take: into the spool when there is one, else counted as failed.
    /// Batches larger than a quarter of the spool's cap are split so the cap can hold them.
    fn spool_or_fail(&mut self, b: &Batch) {
        let stats = &self.shared.stats;
        let n = b.len() as u64;
        let Some(sp) = self.spool.as_ref() else {
            stats.failed.fetch_add(n, Relaxed);
            return;
        };
        if b.len() > 1 && b.byte_len() as u64 > self.config.int("spool_limit_bytes") as u64 / 4 {
            let (left, right) = b.split();
            self.spool_or_fail(&left);
            self.spool_or_fail(&right);
            return;
        }
        let evicted = sp.make_room(b.byte_len() as u64);
        stats.spool_dropped.fetch_add(evicted.events, Relaxed);
        match sp.write(b.bytes(), b.id.producer, b.id.first_seq) {
            Ok(_) => {
                stats.spooled.fetch_add(n, Relaxed);
                // Other processes write the same spool: two can make room at once, then both write. Trimming
                // again after our own write keeps the cap, however their checks and writes interleave.
                stats.spool_dropped.fetch_add(sp.make_room(0).events, Relaxed);
            }
            Err(e) => {
                stats.failed.fetch_add(n, Relaxed);
                stats.set_error(&format!("spool_dir: cannot write a segment: {e}"));
            }
        }
    }

    /// One write of a batch under the retry policy and, with a spool, the circuit breaker. An empty
    /// error message means "not attempted" (the breaker is open).
    fn attempt(&mut self, b: &Batch) -> Result<Written, SinkError> {
        if self.spool.is_none() {
            return self.write_with_retry(b, true);
        }
        if let Some(until) = self.breaker_until {
            if Instant::now() < until {
                return Err(SinkError::Retry { msg: String::new(), after: None });
            }
            // The probe: one try, no retries.
            let r = self.write_with_retry(b, false);
            self.set_breaker(matches!(r, Err(SinkError::Retry { .. } | SinkError::Config(_))));
            return r;
        }
        let r = self.write_with_retry(b, true);
        if matches!(r, Err(SinkError::Retry { .. } | SinkError::Config(_))) {
            self.set_breaker(true);
        }
        r
    }

    fn set_breaker(&mut self, open: bool) {
        self.breaker_until = open.then(|| Instant::now() + self.config.ms("breaker_open_ms"));
        self.shared.stats.breaker_open.store(open, Relaxed);
    }

    fn sink(&mut self) -> Result<&mut Box<dyn Sink>, SinkError> {
        if self.sink.is_none() {
            self.sink = Some(sink::open(&self.config).map_err(SinkError::Config)?);
        }
        self.sink.as_mut().ok_or_else(|| SinkError::Config("backend: no sink".into()))
    }

    /// Writes with exponential backoff and full jitter until `retry_max_elapsed_ms` would be exceeded
    /// (or once, without `retry`). `Split` is returned at once for the caller to bisect.
    fn write_with_retry(&mut self, batch: &Batch, retry: bool) -> Result<Written, SinkError> {
        let backoff = Backoff { base: self.config.ms("retry_base_ms"), cap: self.config.ms("retry_max_ms") };
        let budget = self.config.ms("retry_max_elapsed_ms");
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let next = self.ahead.take();
            let result = self.sink().and_then(|s| s.write_ahead(batch, next.as_ref().map(|(b, _)| b)));
            self.ahead = next;
            let (msg, delay) = match result {
                Ok(w) => return Ok(w),
                Err(e @ SinkError::Split(_)) => return Err(e),
                Err(SinkError::Retry { msg, after }) => {
                    (msg, after.unwrap_or_else(|| backoff.delay(attempt, random_unit())))
                }
                // Nothing changes until an admin acts: wait the longest delay, never spin.
                Err(SinkError::Config(msg)) => (msg, backoff.cap),
            };
            // A new configuration is waiting: the old sink gets no more retries (its events go to its
            // spool, or count as failed), so an admin's fix is never stuck behind a dead backend.
            if !retry || started.elapsed() + delay > budget || self.switch_pending() {
                return Err(SinkError::Retry {
                    msg: format!("gave up after {} attempts: {msg}", attempt + 1),
                    after: None,
                });
            }
            self.shared.stats.set_error(&self.config.redact(&msg));
            self.shared.stats.retried.fetch_add(1, Relaxed);
            attempt += 1;
            self.sleep(delay);
        }
    }

    /// Replays spooled segments while the backend answers, for at most `budget`.
    fn replay_spool(&mut self, budget: Duration) {
        self.last_replay = Instant::now();
        let Some(sp) = self.spool.clone() else { return };
        if sp.list().is_empty() {
            return;
        }
        let batch_size = self.config.batch_size();
        let rep = match self.sink() {
            Ok(s) => sp.replay(s.as_mut(), batch_size, Instant::now() + budget),
            Err(e) => {
                self.shared.stats.set_error(&self.config.redact(e.message()));
                return;
            }
        };
        self.note_recreated();
        let stats = &self.shared.stats;
        stats.replayed.fetch_add(rep.written, Relaxed);
        stats.replay_rejected.fetch_add(rep.rejected, Relaxed);
        match rep.error {
            Some(e) => {
                stats.set_error(&self.config.redact(&e));
                self.set_breaker(true);
            }
            // The backend answered: this was the breaker's probe, or the breaker was closed anyway.
            None if rep.segments > 0 || rep.written > 0 => self.set_breaker(false),
            None => {}
        }
    }

    fn switch_pending(&self) -> bool {
        !Arc::ptr_eq(&self.shared.queue.lock().config, &self.config)
    }

    /// Sleeps, keeping any control message that arrives for the main loop. With a spool, a queue
    /// filling up during the wait goes to disk instead of being dropped.
    fn sleep(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
            if self.switch_pending() {
                return;
            }
            self.spill_if_full();
            match self.ctl.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(m) => self.inbox.push_back(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
    }

    /// Moves the queue to the spool when it holds more than half the memory cap.
    fn spill_if_full(&mut self) {
        if self.spool.is_none() || self.shared.queued_bytes() <= self.config.memory_limit() / 2 {
            return;
        }
        let bytes = {
            let mut q = self.shared.queue.lock();
            // A configuration switch is pending: its events belong to another sink; leave them.
            if !q.sealed.is_empty() || !Arc::ptr_eq(&q.config, &self.config) {
                return;
            }
            q.events = 0;
            std::mem::take(&mut q.buf)
        };
        self.shared.stats.inflight_bytes.fetch_add(bytes.len(), Relaxed);
        let mut at = 0;
        while at < bytes.len() {
            let (end, n) = cut(&bytes[at..], self.config.batch_size());
            let end = if n == 0 { bytes.len() - at } else { end };
            if let Ok(b) = Batch::new(bytes[at..at + end].to_vec()) {
                self.spool_or_fail(&b);
            }
            self.shared.stats.inflight_bytes.fetch_sub(end, Relaxed);
            at += end;
        }
    }
}
