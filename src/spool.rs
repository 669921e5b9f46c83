//! The spool: a local disk buffer for batches the backend could not take (outage, retries exhausted,
//! breaker open, memory pressure), replayed in order when it answers again.
//!
//! - One segment file per spooled batch: a header (magic, version, event count, producer, creation
//!   time) and framed records (`u32 length | u32 crc32 | record`). Written to a dot-named temp file,
//!   fsynced (when `spool_fsync` is on) and renamed, so a segment is either whole or absent.
//! - Names (`<created ms>-<producer>-<first seq>-<target>.seg`) sort by creation time, so replay goes
//!   oldest first. `<target>` fingerprints where the events were going (`target_of`: backend, database
//!   and table or measurement; no secret). A flush thread replays only its own target's segments (and
//!   those named before targets were), so a process still configured for another target (an idle
//!   PHP-FPM worker that has not seen the admin's new settings) never delivers them there; the replay
//!   task (`replay_with`), which reads the site's configuration as it runs, replays every target's into
//!   the configured one. Replay claims a segment with a
//!   non-blocking `flock`, so one process at a time works on it, and deletes it only after the backend
//!   confirmed its events. A segment that fails its checks is moved to `quarantine/` with the reason.
//! - `spool_limit_bytes` caps the directory: beyond it the oldest segments are dropped and counted.
//! - Directories are 0700 and files 0600: events hold personal data.

use crate::record::{self, RecordError};
use crate::sink::{cut, write_bisecting, Batch, Final, Sink};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"TSDBSPL1";
/// Magic, version, count, producer, creation time, then a crc32 of those 32 bytes.
const HEADER_LEN: usize = 36;
const EXT: &str = "seg";
/// Record count of a journal (appended to while its process lives, so the count is not known).
const JOURNAL: u32 = u32::MAX;
/// A journal file is closed and a new one started past this size.
const JOURNAL_ROTATE_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    limit: u64,
    fsync: bool,
    /// The target whose segments this spool writes and replays (`target_of`).
    target: String,
    /// Whether it replays every target's segments (`every_target`).
    every: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub bytes: u64,
    pub created_ms: i64,
}

/// A segment this process has claimed (holds its lock until dropped).
pub struct Claim {
    pub segment: Segment,
    file: File,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub segments: u64,
    pub oldest_created_ms: Option<i64>,
}

/// What enforcing the disk cap removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub segments: u64,
    pub events: u64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

/// The fingerprint of where a configuration's events go: 8 hex digits of a crc32 of its backend and
/// the settings naming its database and table (not the server's address: a database moved to another
/// server, or reached through another port during an outage, gets its spooled events; not credentials,
/// not tuning).
pub fn target_of(config: &crate::config::Config) -> String {
    let backend = config.get("backend");
    let keys: &[&str] = match backend {
        "postgres" => &["dbname", "schema", "table"],
        "influxdb1" => &["database", "retention_policy", "measurement"],
        "influxdb2" => &["org", "bucket", "measurement"],
        "influxdb3" => &["database", "measurement"],
        _ => &["path"],
    };
    let mut id = backend.to_string();
    for k in keys {
        id.push('\0');
        id.push_str(config.get(k));
    }
    format!("{:08x}", crc32fast::hash(id.as_bytes()))
}

impl Spool {
    /// The spool in `dir` of the segments going to `target` (`target_of`).
    pub fn open(dir: &Path, limit: u64, fsync: bool, target: &str) -> io::Result<Spool> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join("quarantine"))?;
        private_dir(dir)?;
        private_dir(&dir.join("quarantine"))?;
        Ok(Spool { dir: dir.to_path_buf(), limit, fsync, target: target.to_string(), every: false })
    }

    /// The same spool replaying the segments of every target, not only its own.
    pub fn every_target(self) -> Spool {
        Spool { every: true, ..self }
    }

    /// The spool `config` names, made if missing, or None without `spool_dir`.
    pub fn of(config: &crate::config::Config) -> Option<Result<Spool, String>> {
        let sp = Spool::peek(config)?;
        Some(
            Spool::open(&sp.dir, sp.limit, sp.fsync, &sp.target)
                .map_err(|e| format!("spool_dir: cannot use {}: {e}", sp.dir.display())),
        )
    }

    /// The spool `config` names, as it is on disk (nothing created), or None without `spool_dir`.
    fn peek(config: &crate::config::Config) -> Option<Spool> {
        let dir = config.get("spool_dir");
        (!dir.is_empty()).then(|| Spool {
            dir: PathBuf::from(dir),
            limit: config.int("spool_limit_bytes") as u64,
            fsync: config.flag("spool_fsync"),
            target: target_of(config),
            every: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path of a new segment.
    fn path(&self, created: i64, producer: u64, first_seq: u64) -> PathBuf {
        self.dir.join(format!("{created:013}-{producer:016x}-{first_seq:020}-{}.{EXT}", self.target))
    }

    /// Writes `records` (whole records, already validated) as one new segment. Returns its size.
    pub fn write(&self, records: &[u8], producer: u64, first_seq: u64) -> io::Result<u64> {
        let created = now_ms();
        let path = self.path(created, producer, first_seq);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut frames = Vec::with_capacity(records.len() + records.len() / 32);
        let count = frame(records, &mut frames)?;
        let head = header(count, producer, created);
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        let written = f.write_all(&head).and_then(|()| f.write_all(&frames)).and_then(|()| {
            if self.fsync {
                f.sync_all()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if self.fsync {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok((head.len() + frames.len()) as u64)
    }

    /// This target's segments (and those named before targets were; every target's with
    /// `every_target`), oldest first.
    pub fn list(&self) -> Vec<Segment> {
        self.segments(!self.every)
    }

    /// The segments in the directory, oldest first: with `own` only this target's (and those named
    /// before targets were), else all.
    fn segments(&self, own: bool) -> Vec<Segment> {
        let mut v: Vec<Segment> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(EXT)?.strip_suffix('.')?;
                if name.starts_with('.') {
                    return None;
                }
                let mut parts = stem.split('-');
                let created_ms = parts.next()?.parse().ok()?;
                // Created, producer, first sequence, then the target (absent before targets were named).
                if own && parts.nth(2).is_some_and(|t| t != self.target) {
                    return None;
                }
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| Segment { path: e.path(), bytes: meta.len(), created_ms })
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    pub fn usage(&self) -> Usage {
        let segs = self.list();
        Usage {
            bytes: segs.iter().map(|s| s.bytes).sum(),
            segments: segs.len() as u64,
            oldest_created_ms: segs.first().map(|s| s.created_ms),
        }
    }

    /// Segments in the directory going to other targets (written under another configuration).
    pub fn others(&self) -> u64 {
        (self.segments(false).len() - self.list().len()) as u64
    }

    /// Claims a segment for this process, or None when another process holds it (or it is gone).
    pub fn claim(&self, segment: &Segment) -> Option<Claim> {
        let file = File::open(&segment.path).ok()?;
        // SAFETY: flock on a descriptor we own.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        // It may have been replayed and deleted between listing and locking.
        (locked && segment.path.exists()).then(|| Claim { segment: segment.clone(), file })
    }

    /// The records of a claimed segment, every frame checked.
    pub fn read(&self, claim: &mut Claim) -> Result<Vec<u8>, String> {
        let mut raw = Vec::new();
        claim.file.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
        decode(&raw)
    }

    pub fn remove(&self, claim: Claim) -> io::Result<()> {
        fs::remove_file(&claim.segment.path)
    }

    /// Moves a bad segment aside with a `.reason` file next to it; the rest of the spool replays.
    pub fn quarantine(&self, claim: Claim, reason: &str) -> io::Result<()> {
        let name = claim.segment.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let to = self.dir.join("quarantine").join(&name);
        fs::rename(&claim.segment.path, &to)?;
        let mut why = to.into_os_string();
        why.push(".reason");
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(why)?;
        writeln!(f, "{reason}")
    }

    pub fn quarantined(&self) -> u64 {
        fs::read_dir(self.dir.join("quarantine"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(EXT))
            .count() as u64
    }

    /// Drops the oldest segments (of any target: the limit is the directory's) until the spool fits
    /// `limit` with `incoming` more bytes.
    pub fn make_room(&self, incoming: u64) -> Evicted {
        let mut ev = Evicted::default();
        let segs = self.segments(false);
        let mut total: u64 = segs.iter().map(|s| s.bytes).sum();
        for s in &segs {
            if total + incoming <= self.limit {
                break;
            }
            if let Some(mut c) = self.claim(s) {
                let events = header_count(&mut c.file).unwrap_or(0);
                if self.remove(c).is_ok() {
                    total -= s.bytes;
                    ev.segments += 1;
                    ev.events += u64::from(events);
                }
            }
        }
        ev
    }

    pub fn fits(&self, incoming: u64) -> bool {
        incoming <= self.limit
    }
}

/// What one replay pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Segments fully confirmed and deleted.
    pub segments: u64,
    pub written: u64,
    pub rejected: u64,
    pub quarantined: u64,
    /// Segments left because another process holds them.
    pub busy: u64,
    /// Why the pass stopped early (the backend failed again), if it did.
    pub error: Option<String>,
    /// Whether the deadline cut the pass short.
    pub timed_out: bool,
    /// `replay_with`: what its sink created again (`Sink::take_recreated`), for the process's stats.
    pub recreated: Vec<String>,
}

impl Spool {
    /// Replays segments oldest first into `sink` until the spool is empty, the backend fails or
    /// `deadline` passes. A segment is deleted only after all of its events were confirmed; a segment
    /// cut short is replayed whole later (the sinks' writes are idempotent).
    pub fn replay(&self, sink: &mut dyn Sink, batch_size: usize, deadline: Instant) -> Replay {
        let mut rep = Replay::default();
        for seg in self.list() {
            if Instant::now() >= deadline {
                rep.timed_out = true;
                break;
            }
            let Some(mut claim) = self.claim(&seg) else {
                rep.busy += 1;
                continue;
            };
            let records = match self.read(&mut claim) {
                Ok(r) => r,
                Err(why) => {
                    if self.quarantine(claim, &why).is_ok() {
                        rep.quarantined += 1;
                    }
                    continue;
                }
            };
            let mut at = 0;
            let mut failed = None;
            let mut bad = None;
            while at < records.len() && failed.is_none() {
                let (end, n) = cut(&records[at..], batch_size);
                let batch = match (n, Batch::new(records[at..at + end].to_vec())) {
                    (1.., Ok(b)) => b,
                    (_, Err(e)) => {
                        bad = Some(format!("records at byte {at} cannot form a batch: {e}"));
                        break;
                    }
                    (0, Ok(_)) => {
                        bad = Some(format!("no record can be cut at byte {at}"));
                        break;
                    }
                };
                at += end;
                write_bisecting(
                    batch,
                    |b| sink.write(b),
                    |_, fin| match fin {
                        Final::Written(w) => {
                            rep.written += w.written as u64;
                            rep.rejected += w.rejected as u64;
                            true
                        }
                        Final::Rejected(_) => {
                            rep.rejected += 1;
                            true
                        }
                        Final::Failed(msg) => {
                            failed.get_or_insert(msg);
                            false
                        }
                    },
                );
            }
            // A segment whose checks pass but whose records cannot be batched must not block the spool.
            if let Some(why) = bad {
                if self.quarantine(claim, &why).is_ok() {
                    rep.quarantined += 1;
                }
                continue;
            }
            match failed {
                None => {
                    if self.remove(claim).is_ok() {
                        rep.segments += 1;
                    }
                }
                Some(msg) => {
                    rep.error = Some(msg);
                    break;
                }
            }
        }
        rep
    }
}

/// One replay pass with its own sink, outside the flush thread (`tsdb_replay_spool()`: a Moodle task or
/// a CLI script).
pub fn replay_with(config: &crate::config::Config, budget: std::time::Duration) -> Result<Replay, String> {
    let sp = Spool::of(config).ok_or("spool_dir: not set, there is no spool to replay")??.every_target();
    let mut sink = crate::sink::open(config)?;
    let mut rep = sp.replay(sink.as_mut(), config.batch_size(), Instant::now() + budget);
    rep.recreated = sink.take_recreated();
    Ok(rep)
}

/// Usage of the spool a configuration names, without creating it: the segments its flush thread
/// replays (`every`: the replay task's, every target's), the quarantined ones and those of other
/// targets.
pub fn usage_of(config: &crate::config::Config, every: bool) -> (Usage, u64, u64) {
    match Spool::peek(config) {
        Some(sp) => {
            let sp = Spool { every, ..sp };
            (sp.usage(), sp.quarantined(), sp.others())
        }
        None => (Usage::default(), 0, 0),
    }
}

fn header(count: u32, producer: u64, created_ms: i64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&producer.to_le_bytes());
    h.extend_from_slice(&created_ms.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Appends `records` as frames (`u32 length | u32 crc32 | record`); returns how many.
fn frame(records: &[u8], out: &mut Vec<u8>) -> io::Result<u32> {
    let mut count = 0u32;
    for r in record::records(records) {
        let r = r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        out.extend_from_slice(&(r.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(r.bytes).to_le_bytes());
        out.extend_from_slice(r.bytes);
        count += 1;
    }
    Ok(count)
}

/// The `durable` mode's per-process journal: each request's records are appended (and fsynced, per
/// `spool_fsync`) before the request ends. The file is locked while its process lives; a file whose
/// events were all written (or spooled) by the flush thread is emptied for reuse, and when a process
/// dies without that, its journal is an ordinary unlocked segment that any replay picks up.
#[derive(Default)]
pub struct Journal {
    files: Vec<JournalFile>,
}

struct JournalFile {
    file: File,
    path: PathBuf,
    /// Highest sequence number appended.
    last_seq: u64,
    /// Holds events that exist nowhere else (the memory cap was reached): never emptied by its owner.
    orphans: bool,
    bytes: u64,
}

impl Journal {
    /// Appends whole records (sequence numbers up to `last_seq`) to the current journal file.
    pub fn append(
        &mut self,
        spool: &Spool,
        producer: u64,
        records: &[u8],
        last_seq: u64,
        orphans: bool,
    ) -> io::Result<()> {
        let mut frames = Vec::with_capacity(records.len() + records.len() / 32);
        let first_seq = record::read(records).map(|r| r.event.id.seq).unwrap_or(last_seq);
        frame(records, &mut frames)?;
        let rotate = self.files.last().is_none_or(|f| f.bytes >= JOURNAL_ROTATE_BYTES);
        if rotate {
            let created = now_ms();
            let path = spool.path(created, producer, first_seq);
            let mut file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
            // SAFETY: flock on a descriptor we own; held until the file is released.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            file.write_all(&header(JOURNAL, producer, created))?;
            if spool.fsync {
                File::open(&spool.dir)?.sync_all()?;
            }
            self.files.push(JournalFile { file, path, last_seq, orphans: false, bytes: HEADER_LEN as u64 });
        }
        let Some(f) = self.files.last_mut() else { return Err(io::Error::other("no journal file")) };
        f.file.write_all(&frames)?;
        if spool.fsync {
            f.file.sync_data()?;
        }
        f.last_seq = last_seq;
        f.orphans |= orphans;
        f.bytes += frames.len() as u64;
        Ok(())
    }

    /// Forgets what the backend (or the spool) has: files whose events up to `delivered` are all
    /// accounted for are emptied (the current one) or deleted (older ones). Files with orphans are
    /// unlocked once closed, for replay.
    pub fn release(&mut self, delivered: u64) {
        let n = self.files.len();
        let mut keep = Vec::with_capacity(n);
        for (i, mut f) in self.files.drain(..).enumerate() {
            let current = i + 1 == n;
            if f.orphans {
                if current {
                    keep.push(f); // closed at rotation or exit, then replayed by whoever comes first
                }
                continue;
            }
            if f.last_seq > delivered {
                keep.push(f);
            } else if current {
                // Reuse the file: back to just its header.
                if f.file.set_len(HEADER_LEN as u64).is_ok() {
                    f.bytes = HEADER_LEN as u64;
                    let _ = std::io::Seek::seek(&mut f.file, std::io::SeekFrom::End(0));
                    keep.push(f);
                } else {
                    let _ = fs::remove_file(&f.path);
                }
            } else {
                let _ = fs::remove_file(&f.path);
            }
        }
        self.files = keep;
    }

    /// At a graceful exit: release, and delete an emptied current file.
    pub fn close(&mut self, delivered: u64) {
        self.release(delivered);
        for f in self.files.drain(..) {
            if f.bytes == HEADER_LEN as u64 && !f.orphans {
                let _ = fs::remove_file(&f.path);
            }
        }
    }

    /// Bytes currently journaled.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

fn header_count(f: &mut File) -> Option<u32> {
    let mut h = [0u8; HEADER_LEN];
    f.read_exact(&mut h).ok()?;
    (&h[..8] == MAGIC).then(|| u32_at(&h, 12))
}

/// Checks and unframes a segment; any inconsistency is an error naming what is wrong.
pub fn decode(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.len() < HEADER_LEN || &raw[..8] != MAGIC {
        return Err("not a spool segment (bad magic or short header)".into());
    }
    if crc32fast::hash(&raw[..32]) != u32_at(raw, 32) {
        return Err("header checksum mismatch".into());
    }
    let version = u32_at(raw, 8);
    if version != 1 {
        return Err(format!("unknown segment version {version}"));
    }
    let count = u32_at(raw, 12);
    let journal = count == JOURNAL;
    let count = count as usize;
    let mut out = Vec::with_capacity(raw.len());
    let mut at = HEADER_LEN;
    let mut n = 0usize;
    while at < raw.len() {
        // A journal's last append can be torn by a kill mid-write: its request never finished, so
        // its events were never durable; the frames before it are whole.
        let torn = raw.len() - at < 8 || u32_at(raw, at) as usize > raw.len() - at - 8;
        if journal && torn {
            break;
        }
        if raw.len() - at < 8 {
            return Err(format!("truncated frame header at byte {at}"));
        }
        let len = u32_at(raw, at) as usize;
        let crc = u32_at(raw, at + 4);
        at += 8;
        if len > raw.len() - at {
            return Err(format!("truncated record at byte {at} (wants {len} bytes)"));
        }
        let rec = &raw[at..at + len];
        if crc32fast::hash(rec) != crc {
            return Err(format!("checksum mismatch in record {n} at byte {at}"));
        }
        match record::read(rec) {
            Ok(r) if r.bytes.len() == len => {}
            Ok(_) => return Err(format!("record {n}: frame and record lengths differ")),
            Err(e) => return Err(format!("record {n}: {}", RecordError::to_string(&e))),
        }
        out.extend_from_slice(rec);
        at += len;
        n += 1;
    }
    if !journal && n != count {
        return Err(format!("header says {count} records, found {n}"));
    }
    Ok(out)
}

/// Refuses a directory another user owns (whoever can write it could add events that replay as
/// if Moodle had logged them, or read the spooled ones) and narrows ours to 0700. Root may use any
/// (an admin replaying the web server user's spool by hand); it narrows none but its own.
fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a directory"));
    }
    // SAFETY: geteuid() has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && me != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("owned by uid {}, not by this process's user (uid {me})", meta.uid()),
        ));
    }
    if meta.uid() == me && meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::testing::records;

    fn spool(limit: u64) -> (tempfile::TempDir, Spool) {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(&d.path().join("spool"), limit, true, "0000abcd").unwrap();
        (d, s)
    }

    #[test]
    fn write_list_claim_read_remove() {
        let (_d, s) = spool(1 << 30);
        let a = records(1, 10);
        let b = records(11, 5);
        s.write(&a, 9, 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.write(&b, 9, 11).unwrap();
        let segs = s.list();
        assert_eq!(segs.len(), 2);
        assert!(segs[0].created_ms <= segs[1].created_ms);
        let mut c = s.claim(&segs[0]).unwrap();
        // A second claim (another process) is refused while the first holds it.
        assert!(s.claim(&segs[0]).is_none());
        assert_eq!(s.read(&mut c).unwrap(), a);
        s.remove(c).unwrap();
        assert_eq!(s.usage().segments, 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&segs[1].path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_spool_replays_only_its_targets_segments_and_those_named_before_targets() {
        let (d, a) = spool(1 << 30);
        let b = Spool::open(&d.path().join("spool"), 1 << 30, true, "0000beef").unwrap();
        a.write(&records(1, 10), 9, 1).unwrap();
        // Named as before targets were: whoever replays first takes it.
        fs::write(a.dir().join("0000000000001-0000000000000007-00000000000000000001.seg"), b"x").unwrap();
        let names = |s: &Spool| -> Vec<String> {
            s.list().iter().map(|g| g.path.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(names(&b), ["0000000000001-0000000000000007-00000000000000000001.seg"]);
        assert_eq!((b.usage().segments, b.others()), (1, 1));
        assert_eq!(names(&a).len(), 2, "{:?}", names(&a));
        assert!(names(&a)[1].ends_with("-0000abcd.seg"), "{:?}", names(&a));
        assert_eq!((a.usage().segments, a.others()), (2, 0));
        assert_eq!(b.clone().every_target().list().len(), 2, "the replay task takes every target's");
        // The disk cap is the directory's: another target's segments count and are evicted too.
        let capped = Spool { limit: 1, ..b.clone() };
        assert_eq!(capped.make_room(0).segments, 2);
        assert_eq!(a.list().len(), 0);
    }

    #[test]
    fn a_target_is_where_the_events_go_not_how() {
        let c = |pairs: &[(&str, &str)]| {
            let mut all = vec![("backend", "postgres")];
            all.extend_from_slice(pairs);
            target_of(&crate::config::Config::from_pairs(all).unwrap())
        };
        let t = c(&[("table", "log_a")]);
        assert_eq!(t.len(), 8);
        let moved =
            [("table", "log_a"), ("password", "other"), ("batch_size", "10"), ("host", "db2"), ("port", "5433")];
        assert_eq!(t, c(&moved), "the same table on another server");
        assert_ne!(t, c(&[("table", "log_b")]));
        assert_ne!(t, c(&[("table", "log_a"), ("dbname", "other")]));
        let influx = |db: &str| {
            target_of(&crate::config::Config::from_pairs([("backend", "influxdb1"), ("database", db)]).unwrap())
        };
        assert_ne!(influx("a"), influx("b"));
        assert_ne!(t, influx("a"));
    }

    #[test]
    fn corrupt_segments_are_detected_and_quarantined() {
        let (_d, s) = spool(1 << 30);
        s.write(&records(1, 3), 9, 1).unwrap();
        let seg = s.list().remove(0);
        let good = fs::read(&seg.path).unwrap();
        // Every truncation and every single-byte flip is an error, never a panic or a wrong result.
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "truncated at {cut} accepted");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {i} accepted");
        }
        fs::write(&seg.path, &good[..good.len() - 3]).unwrap();
        let mut c = s.claim(&seg).unwrap();
        let why = s.read(&mut c).unwrap_err();
        s.quarantine(c, &why).unwrap();
        assert_eq!(s.usage().segments, 0);
        assert_eq!(s.quarantined(), 1);
        let reason = fs::read_to_string(
            s.dir().join("quarantine").join(seg.path.file_name().unwrap()).with_extension("seg.reason"),
        )
        .unwrap();
        assert!(reason.contains("truncated"), "{reason}");
    }

    /// A sink that records what it got and fails on demand.
    struct Recorder {
        got: Vec<u64>,
        fail_after: usize,
    }

    impl Sink for Recorder {
        fn write(&mut self, b: &Batch) -> Result<crate::sink::Written, crate::sink::SinkError> {
            if self.got.len() >= self.fail_after {
                return Err(crate::sink::SinkError::Retry { msg: "down".into(), after: None });
            }
            self.got.extend(b.events().map(|e| e.id.seq));
            Ok(crate::sink::Written { written: b.len(), ..Default::default() })
        }
    }

    #[test]
    fn replay_in_order_deletes_only_confirmed_segments() {
        let (_d, s) = spool(1 << 30);
        for k in 0..3u64 {
            s.write(&records(1 + 10 * k, 10), 9, 1 + 10 * k).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // The backend fails after 15 events: the first segment is confirmed and deleted, the second kept.
        let mut sink = Recorder { got: Vec::new(), fail_after: 15 };
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let rep = s.replay(&mut sink, 5, far);
        assert_eq!((rep.segments, rep.written), (1, 15));
        assert!(rep.error.is_some());
        assert_eq!(s.usage().segments, 2);
        // Back up: the rest replays in order, the half-done segment whole (idempotent sinks).
        sink.fail_after = usize::MAX;
        let rep = s.replay(&mut sink, 5, far);
        assert_eq!((rep.segments, rep.written, rep.error), (2, 20, None));
        assert_eq!(s.usage().segments, 0);
        let want: Vec<u64> = (1..=15).chain(11..=30).collect();
        assert_eq!(sink.got, want);
    }

    #[test]
    fn replay_quarantines_corrupt_and_goes_on() {
        let (_d, s) = spool(1 << 30);
        s.write(&records(1, 4), 9, 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.write(&records(5, 4), 9, 5).unwrap();
        let first = s.list().remove(0);
        let mut raw = fs::read(&first.path).unwrap();
        let n = raw.len();
        raw[n - 1] ^= 1;
        fs::write(&first.path, raw).unwrap();
        let mut sink = Recorder { got: Vec::new(), fail_after: usize::MAX };
        let rep = s.replay(&mut sink, 100, Instant::now() + std::time::Duration::from_secs(60));
        assert_eq!((rep.quarantined, rep.segments, rep.written), (1, 1, 4));
        assert_eq!(sink.got, vec![5, 6, 7, 8]);
        assert_eq!(s.quarantined(), 1);
    }

    #[test]
    fn cap_drops_oldest_first_and_counts_events() {
        let (_d, s) = spool(1 << 30);
        let size = s.write(&records(1, 10), 9, 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.write(&records(11, 10), 9, 11).unwrap();
        let capped = Spool { limit: size * 2, ..s.clone() };
        let ev = capped.make_room(size);
        assert_eq!(ev, Evicted { segments: 1, events: 10 });
        let left = s.list();
        assert_eq!(left.len(), 1);
        let mut c = s.claim(&left[0]).unwrap();
        assert_eq!(s.read(&mut c).unwrap(), records(11, 10));
    }
}
