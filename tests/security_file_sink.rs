//! The `file` sink's file: private, and never someone else's.
//!
//! It is the default backend, and its default path is in /tmp (`/tmp/tsdb-events.lp`), a directory every
//! local user can write. A local user who creates that path first, as a symlink to a file the PHP user
//! can write (a PHP file of the site, `.htaccess`, a cron script...) or as a file of their own, gets
//! the events appended there: event strings are attacker-controlled and a string field carries
//! newlines as they are, so whole lines of the attacker's choosing land in the target file. Where the
//! kernel's `fs.protected_symlinks` / `fs.protected_regular` are off (containers often have them at 0)
//! nothing else stops it.
//!
//! `cargo test --no-default-features --test security_file_sink` (the ownership test needs root).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use tsdb::config::Config;
use tsdb::event::{EventId, IntField, StrField};
use tsdb::record::RecordWriter;
use tsdb::sink::file::FileSink;
use tsdb::sink::{Batch, Sink, SinkError};

fn batch() -> Batch {
    let mut buf = Vec::new();
    let mut w = RecordWriter::begin(&mut buf);
    w.put_str(StrField::EventName, b"\\mod_forum\\event\\post_created", 1024);
    w.put_str(StrField::Other, b"{\"subject\":\"x\n<?php system($_GET['c']); ?>\n\"}", 1024);
    w.set_int(IntField::TimeCreated, 1_700_000_000);
    w.finish(EventId { producer: 1, seq: 1 }, 1_700_000_000_000_000_000);
    Batch::new(buf).unwrap()
}

fn sink(path: &std::path::Path) -> FileSink {
    FileSink::new(&Config::from_pairs([("backend", "file"), ("path", path.to_str().unwrap())]).unwrap())
}

#[test]
fn creates_the_file_0600() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("events.lp");
    sink(&p).write(&batch()).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains("<?php"), "the attacker's text is stored as text (inside a quoted string field)");
}

/// Finding: the sink opens `path` with O_CREAT|O_APPEND and follows a symlink planted there.
#[test]
fn never_appends_through_a_symlink() {
    let d = tempfile::tempdir().unwrap();
    let victim = d.path().join("victim.php");
    std::fs::write(&victim, "<?php // a file of the site\n").unwrap();
    let planted = d.path().join("tsdb-events.lp");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let r = sink(&planted).write(&batch());
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "<?php // a file of the site\n",
        "events appended to the symlink target"
    );
    assert!(matches!(r, Err(SinkError::Config(ref m)) if m.starts_with("path:")), "{r:?}");
}

/// Finding: an existing file owned by another user (or readable by others) is appended to as it is,
/// so its owner reads every event (user ids, IP addresses, what people did).
#[test]
fn never_appends_to_a_file_another_user_owns() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to create a file owned by another user");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("tsdb-events.lp");
    std::fs::write(&p, "").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap(); // nobody
    let r = sink(&p).write(&batch());
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        0,
        "events appended to a file of user {}",
        std::fs::metadata(&p).unwrap().uid()
    );
    assert!(matches!(r, Err(SinkError::Config(ref m)) if m.starts_with("path:")), "{r:?}");
}
