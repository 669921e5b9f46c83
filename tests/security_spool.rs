//! Security properties of the disk spool (`src/spool.rs`): file modes, and that a segment read back
//! from disk can never stop the replay of the others (arbitrary bytes are refused and quarantined).
//!
//! `cargo test --no-default-features --test security_spool`

#[path = "../fuzz/src/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../fuzz/src/lp.rs"]
#[allow(dead_code)]
mod lp;
#[path = "../fuzz/src/oracles.rs"]
#[allow(dead_code)]
mod oracles;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tsdb::event::{EventId, IntField, StrField};
use tsdb::record::RecordWriter;
use tsdb::sink::{Batch, Sink, SinkError, Written};
use tsdb::spool::Spool;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn record(producer: u64, seq: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = RecordWriter::begin(&mut buf);
    w.put_str(StrField::EventName, b"\\core\\event\\course_viewed", 1024);
    w.set_int(IntField::TimeCreated, 1_700_000_000);
    w.finish(EventId { producer, seq }, 1_700_000_000_000_000_000);
    buf
}

/// A sink that takes everything and remembers the sequence numbers it was given.
#[derive(Default)]
struct Taker {
    seqs: Vec<u64>,
}

impl Sink for Taker {
    fn write(&mut self, batch: &Batch) -> Result<Written, SinkError> {
        self.seqs.extend(batch.events().map(|e| e.id.seq));
        Ok(Written { written: batch.len(), ..Default::default() })
    }
}

#[test]
fn spool_directories_are_0700_and_segments_0600() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("a/b/spool");
    let sp = Spool::open(&dir, 1 << 30, false, "0000abcd").unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("quarantine")), 0o700);
    sp.write(&record(5, 1), 5, 1).unwrap();
    let seg = sp.list().pop().unwrap();
    assert_eq!(mode(&seg.path), 0o600);
    // A quarantined segment and its reason file stay private too.
    std::fs::write(&seg.path, b"garbage").unwrap();
    let claim = sp.claim(&seg).unwrap();
    sp.quarantine(claim, "test").unwrap();
    for e in std::fs::read_dir(dir.join("quarantine")).unwrap() {
        assert_eq!(mode(&e.unwrap().path()), 0o600);
    }
}

/// An existing spool directory of ours that others may read or write is narrowed to 0700.
#[test]
fn an_existing_spool_dir_open_to_others_is_narrowed_to_0700() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("spool");
    std::fs::create_dir_all(dir.join("quarantine")).unwrap();
    for p in [dir.clone(), dir.join("quarantine")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    Spool::open(&dir, 1 << 30, false, "0000abcd").unwrap();
    assert_eq!((mode(&dir), mode(&dir.join("quarantine"))), (0o700, 0o700));
}

/// A spool directory another user owns is refused (that user could plant segments that replay as
/// Moodle's events). Run as root, this re-runs itself as `nobody` against a root-owned directory.
#[test]
fn a_spool_dir_another_user_owns_is_refused() {
    use std::os::unix::process::CommandExt;
    if let Ok(dir) = std::env::var("TSDB_TEST_FOREIGN_SPOOL") {
        let Err(err) = Spool::open(Path::new(&dir), 1 << 30, false, "0000abcd") else { panic!("{dir} was accepted") };
        assert_eq!(err.to_string(), "owned by uid 0, not by this process's user (uid 65534)");
        assert_eq!(mode(Path::new(&dir)), 0o777, "another user's directory is left as it is");
        return;
    }
    // SAFETY: geteuid() has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: a_spool_dir_another_user_owns_is_refused needs root (to act as another user)");
        assert!(std::env::var("TSDB_TEST_REQUIRE_SERVERS").is_err(), "the CI runs as root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = d.path().join("spool");
    std::fs::create_dir_all(dir.join("quarantine")).unwrap();
    for p in [dir.clone(), dir.join("quarantine")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_spool_dir_another_user_owns_is_refused", "--nocapture", "--test-threads=1"])
        .env("TSDB_TEST_FOREIGN_SPOOL", &dir)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    // Root itself may use it (an admin replaying the web server user's spool by hand).
    Spool::open(&dir, 1 << 30, false, "0000abcd").unwrap();
}

#[test]
fn garbage_segments_are_quarantined_and_the_rest_replays() {
    let d = tempfile::tempdir().unwrap();
    let sp = Spool::open(d.path(), 1 << 30, false, "0000abcd").unwrap();
    std::fs::write(d.path().join("0000000000001-0000000000000001-00000000000000000001.seg"), b"TSDBSPL1 garbage")
        .unwrap();
    sp.write(&record(5, 1), 5, 1).unwrap();
    let mut sink = Taker::default();
    let rep = sp.replay(&mut sink, 100, Instant::now() + Duration::from_secs(10));
    assert_eq!((rep.quarantined, rep.segments, rep.error.as_deref()), (1, 1, None));
    assert_eq!(sink.seqs, vec![1]);
}

/// Finding (fuzz target `spool`): `sink::cut` joins sequence numbers with `wrapping_add(1)` while
/// `Batch::new` requires `checked_add(1)`. A segment whose checksums are right but whose records go
/// `u64::MAX, 0` passes `spool::decode`, then replay cannot make a batch of it: the pass stops there
/// with an error on every attempt (opening the circuit breaker each time), the segment is never
/// quarantined, and no segment after it is ever replayed until the disk cap evicts it.
#[test]
fn a_segment_that_decodes_never_blocks_the_replay_of_the_others() {
    let d = tempfile::tempdir().unwrap();
    let sp = Spool::open(d.path(), 1 << 30, false, "0000abcd").unwrap();
    let (a, b) = (record(7, u64::MAX), record(7, 0));
    let seg = oracles::segment(2, 7, 1, &[&a, &b]);
    assert!(tsdb::spool::decode(&seg).is_ok(), "checksums are right, so the segment decodes");
    std::fs::write(d.path().join("0000000000001-0000000000000007-18446744073709551615.seg"), &seg).unwrap();
    sp.write(&record(5, 1), 5, 1).unwrap();
    let mut sink = Taker::default();
    let rep = sp.replay(&mut sink, 100, Instant::now() + Duration::from_secs(10));
    assert_eq!(rep.error, None, "replay stopped at the wrapped segment");
    assert!(sink.seqs.contains(&1), "the segment after it was not replayed: {rep:?}");
    assert_eq!(sp.list().len(), 0, "every segment is replayed or quarantined: {rep:?}");
}

/// The same, as the fuzz property: whatever `decode` accepts, replay can cut into batches.
#[test]
fn wrapped_sequence_numbers_hold_the_spool_property() {
    let (a, b) = (record(7, u64::MAX), record(7, 0));
    let seg = oracles::segment(2, 7, 1, &[&a, &b]);
    let mut raw = vec![0u8, 7];
    raw.extend_from_slice(&seg);
    oracles::check_spool(&raw);
}
