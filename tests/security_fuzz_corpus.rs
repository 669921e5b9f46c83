//! Replays every fuzz input kept in the repository through the fuzz targets' properties, so that
//! each corpus file and each past finding (`fuzz/regressions/<target>/`) is a regression test of
//! `cargo test --no-default-features`, with no fuzzer and no nightly toolchain.
//!
//! The properties themselves live in `fuzz/src/oracles.rs` (shared with the fuzz targets).
//! `TSDB_FUZZ_WRITE_SEEDS=1 cargo test --no-default-features --test security_fuzz_corpus -- --ignored`
//! rewrites the hand-made seeds in `fuzz/corpus/<target>/seed-*`.

#[path = "../fuzz/src/input.rs"]
mod input;
#[path = "../fuzz/src/lp.rs"]
mod lp;
#[path = "../fuzz/src/oracles.rs"]
#[allow(dead_code)]
mod oracles;

use std::path::{Path, PathBuf};
use tsdb::event::{IntField, StrField, STR_FIELDS};
use tsdb::lineproto::Dialect;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 6] = [
    ("lineproto", oracles::check_lineproto),
    ("record", oracles::check_record),
    ("json", oracles::check_json),
    ("config", oracles::check_config),
    ("pg_copy", oracles::check_pg_copy),
    ("spool", oracles::check_spool),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn replay(kind: &str) {
    let mut total = 0;
    let mut failed = Vec::new();
    for (target, check) in TARGETS {
        for f in files(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(format!("{target}: {}", f.display()));
            }
            total += 1;
        }
    }
    eprintln!("{kind}: {total} inputs replayed");
    assert!(failed.is_empty(), "inputs violating a property (see the panics above):\n{}", failed.join("\n"));
}

#[test]
fn corpus_inputs_hold_every_property() {
    replay("corpus");
}

#[test]
fn past_findings_hold_every_property() {
    replay("regressions");
}

/// The strings every string column is tried with (tests/influx.rs has the InfluxDB read-back of
/// the same kinds of values).
fn nasty() -> Vec<Vec<u8>> {
    [
        &b"\\core\\event\\course_viewed"[..],
        b"a\\\\b",
        b"a\\,b",
        b"a\\ b",
        b"a\\=b",
        b"p\\ q",
        b"\\\\\\ x",
        b"x\\",
        b"\\",
        b"a b,c=d",
        b"\"quoted\"",
        b"line1\nline2",
        b"crlf\r\nend",
        b"tab\there",
        b"nul\x00byte",
        "unicode é😀 ✓ 中文 \u{202e}rtl".as_bytes(),
        b"bad utf8 \xff\xfe",
        b"cut \xc3",
        b"x,evil=1 f=2i 0\nm2 g=3i 0",
        b"\"\nm3 f=1i 0\n\"",
        b"#comment",
        b"",
        b"{\"json\":[1,\"two\\\"\"],\"nested\":{\"k\":null}}",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run with TSDB_FUZZ_WRITE_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("TSDB_FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    let nasty = nasty();
    let tags = ["eventname", "component", "action", "target", "crud", "edulevel", "contextlevel", "origin", "courseid"];
    let ints = [(IntField::CourseId, 12), (IntField::UserId, 34), (IntField::TimeCreated, 1_700_000_000)];
    for (d, dn) in [(Dialect::Go, "go"), (Dialect::Iox, "iox"), (Dialect::Portable, "portable")] {
        for (i, v) in nasty.iter().enumerate() {
            // The value in every string column, tag or field.
            let fields: Vec<(StrField, &[u8])> = STR_FIELDS.iter().map(|&f| (f, v.as_slice())).collect();
            let e = oracles::str_event(&fields, &ints, 1_700_000_000_000_000_001);
            write("lineproto", &format!("{dn}-{i:02}"), &oracles::encode_lp_case(d, (i % 6) as u8, &tags, &e));
        }
        // The splitter case: an escaped space after a backslash in a tag, a newline in `other`.
        let e = oracles::str_event(
            &[(StrField::EventName, b"p\\ q"), (StrField::Origin, b"r\\,s"), (StrField::Other, b"1\n2")],
            &ints,
            5,
        );
        write("lineproto", &format!("{dn}-splitter"), &oracles::encode_lp_case(d, 0, &tags, &e));
        // Over 64 KiB: a repeated unit in a tag and in `other`.
        let mut data = oracles::encode_lp_case(d, 1, &tags, &oracles::str_event(&[], &[], 7));
        data.truncate(data.len() - 2); // drop the empty string mask
        data.extend_from_slice(&((1u16 << StrField::EventName as u16) | (1 << StrField::Other as u16)).to_le_bytes());
        input::encode_repeated(&mut data, "ü,\\".as_bytes(), 15);
        input::encode_repeated(&mut data, b"{\"a\":\"\\n\x01", 14);
        write("lineproto", &format!("{dn}-long"), &data);
    }
    // Records: one well-formed batch, and garbage.
    let mut rec = vec![0x40, 0x00, 2];
    rec.extend_from_slice(&42u64.to_le_bytes());
    rec.extend_from_slice(&7u64.to_le_bytes());
    for v in nasty.iter().take(4) {
        let e = oracles::str_event(&[(StrField::EventName, v), (StrField::Ip, b"10.0.0.1")], &ints, 9);
        input::encode_event(&mut rec, &e);
    }
    write("record", "events", &rec);
    // Spool: a well-formed segment given raw, and one built by the target from events.
    let mut records = Vec::new();
    for seq in 1..=3u64 {
        let mut w = tsdb::record::RecordWriter::begin(&mut records);
        w.put_str(StrField::EventName, b"\\core\\event\\course_viewed", 1024);
        w.set_int(IntField::UserId, seq as i64);
        w.finish(tsdb::event::EventId { producer: 9, seq }, 1_700_000_000_000_000_000);
    }
    let parts: Vec<&[u8]> = tsdb::record::records(&records).map(|r| r.unwrap().bytes).collect();
    let mut raw = vec![0u8, 2];
    raw.extend_from_slice(&oracles::segment(3, 9, 1_700_000_000_000, &parts));
    write("spool", "segment", &raw);
    let mut journal = vec![0u8, 2];
    journal.extend_from_slice(&oracles::segment(u32::MAX, 9, 1_700_000_000_000, &parts));
    journal.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 2]); // a torn last append
    write("spool", "journal", &journal);
    let mut built = vec![1u8, 3, 2];
    built.extend_from_slice(&9u64.to_le_bytes());
    built.extend_from_slice(&100u64.to_le_bytes());
    for v in nasty.iter().take(3) {
        input::encode_event(&mut built, &oracles::str_event(&[(StrField::Ip, v)], &ints, 5));
        built.push(3);
    }
    write("spool", "built", &built);
    write("record", "garbage", b"\xff\xff\xff\xff\x01\x00");
    for (i, v) in nasty.iter().enumerate() {
        write("json", &format!("{i:02}"), v);
        let mut pg = vec![(i * 11 % 256) as u8];
        pg.extend_from_slice(v);
        write("pg_copy", &format!("{i:02}"), &pg);
    }
    for (i, j) in [
        &b"{\"a\":\"\\u0000\"}"[..],
        b"[\"\\ud83d\"]",
        b"[\"\\ud83d\\ude00\"]",
        b"\"\\udc00x\"",
        b"{\"k\\u0000\":1}",
        b"1e400",
        b"a:1:{s:1:\"x\";i:1;}",
    ]
    .iter()
    .enumerate()
    {
        let mut pg = vec![255u8];
        pg.extend_from_slice(j);
        write("pg_copy", &format!("json-{i}"), &pg);
    }
    // Finding: a checksum-valid segment whose sequence numbers wrap (u64::MAX, 0) passes decode and
    // blocks replay (see tests/security_spool.rs). Raw mode, batch size 8.
    let mut wrapped = Vec::new();
    for seq in [u64::MAX, 0] {
        let mut w = tsdb::record::RecordWriter::begin(&mut wrapped);
        w.set_int(IntField::TimeCreated, 1_700_000_000);
        w.finish(tsdb::event::EventId { producer: 7, seq }, 1);
    }
    let parts: Vec<&[u8]> = tsdb::record::records(&wrapped).map(|r| r.unwrap().bytes).collect();
    let dir = fuzz_dir().join("regressions/spool");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("wrapped-sequence-blocks-replay"),
        [&[0u8, 7][..], &oracles::segment(2, 7, 1, &parts)].concat(),
    )
    .unwrap();
    // Findings: numbers PostgreSQL's numeric cannot hold (see tests/security_postgres.rs).
    let gap = format!("[0.{}e-10000]", "1".repeat(6400));
    for (name, j) in [
        ("numeric-overflow", &b"{\"n\":1e999999}"[..]),
        ("numeric-scale", b"[0.5e-16383]"),
        ("numeric-scale-within-the-conservative-bounds", gap.as_bytes()),
    ] {
        let dir = fuzz_dir().join("regressions/pg_copy");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), [&[255u8][..], j].concat()).unwrap();
    }
    let configs: [&[(&str, &str)]; 6] = [
        &[("backend", "influxdb2"), ("org", "o"), ("token", "t0ken-secret"), ("url", "https://h:8086/p/")],
        &[("backend", "postgres"), ("password", "hunter2\n"), ("schema", "public; drop"), ("table", "t\"x")],
        &[("backend", "influxdb1"), ("username", "u"), ("password", "pa:ss@w"), ("url", "http://u:p@h")],
        &[("tags", "eventname,ip"), ("measurement", "_m"), ("batch_size", "0"), ("bogus", "hunter2")],
        &[("table", "a".repeat(63).leak()), ("schema", "_s1"), ("backend", "postgres"), ("port", "99999")],
        &[("url", "http://[::1]:8086"), ("backend", "influxdb3"), ("database", "d b"), ("token", "t\u{7f}")],
    ];
    for (i, c) in configs.iter().enumerate() {
        write("config", &format!("{i}"), &oracles::encode_config_pairs(c));
    }
}
