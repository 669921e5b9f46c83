//! Injection and refusal properties of the PostgreSQL sink.
//!
//! - Values never reach SQL text (binary COPY); identifiers come only from validated configuration and
//!   are quoted (`identifiers_are_plain_and_quoted`).
//! - Every `other` the extension can hold becomes JSON text that `jsonb` accepts, so an attacker who
//!   controls `other` cannot get an event refused (`push_json_output_is_always_accepted_by_jsonb`,
//!   and against a real server `an_other_with_a_number_numeric_cannot_hold_is_stored`).
//!
//! `cargo test --no-default-features --test security_postgres` (the server test needs TSDB_TEST_PG_*).

#[path = "../fuzz/src/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../fuzz/src/lp.rs"]
#[allow(dead_code)]
mod lp;
#[path = "../fuzz/src/oracles.rs"]
#[allow(dead_code)]
mod oracles;
#[path = "common/pg.rs"]
mod pg;

use tsdb::config::Config;
use tsdb::event::{EventId, IntField, StrField};
use tsdb::record::RecordWriter;
use tsdb::sink::postgres::{push_json, Names};
use tsdb::sink::{Batch, Sink, SinkError};

#[test]
fn identifiers_are_plain_and_quoted() {
    for bad in ["public; DROP TABLE x", "t\"x", "a b", "a-b", "1abc", "", "tablé", "x\0", "t--", &"a".repeat(64)] {
        for key in ["schema", "table"] {
            let e = Config::from_pairs([(key, bad)]).expect_err(bad).to_string();
            assert!(e.starts_with(&format!("{key}: must be a SQL identifier")), "{e}");
        }
    }
    // Reserved words and mixed case are fine: they are always quoted.
    let c = Config::from_pairs([("schema", "Select"), ("table", "user")]).unwrap();
    let n = Names::new(c.get("schema"), c.get("table"));
    assert_eq!(n.main(), "\"Select\".\"user\"");
    // Derived names (partitions, ledger, schema version) stay within 63 bytes and plain.
    let long = "t".repeat(63);
    let n = Names::new("s", &long);
    for d in [n.derived("_p20240101"), n.meta(), n.derived("_ledger")] {
        assert!(d.len() <= 63 && d.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()), "{d}");
    }
}

/// The `jsonb` text of `other` for hostile inputs: whatever the extension stores, PostgreSQL takes.
fn jsonb_text(v: &[u8]) -> String {
    let mut out = Vec::new();
    push_json(&mut out, v);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn push_json_output_is_always_accepted_by_jsonb() {
    let cases: &[&[u8]] = &[
        br#"{"a":"\u0000"}"#,
        br#"{"k\u0000":1}"#,
        br#"["\ud83d"]"#,
        br#"["\udc00\ud83d"]"#,
        b"{\"a\":\"nul\x00\"}",
        b"{\"a\":\"\xff\"}",
        b"a:1:{s:1:\"x\";i:1;}",
        // Finding (fuzz target pg_copy): numbers `numeric` cannot hold pass through unchanged, and
        // PostgreSQL refuses the whole row ("value overflows numeric format", SQLSTATE 22003).
        br#"{"n":1e999999}"#,
        br#"[0.5e-16383]"#,
        br#"{"deep":[[[1e131072]]]}"#,
    ];
    // Within the fix's conservative bounds (mantissa <= 10 000 characters, |exponent| <= 10 000) but
    // 6 400 + 10 000 digits after the point: numeric holds at most 16 383 (checked on PostgreSQL 15).
    let scale_gap = format!("[0.{}e-10000]", "1".repeat(6400));
    let cases: Vec<&[u8]> = cases.iter().copied().chain([scale_gap.as_bytes()]).collect();
    let mut refused = Vec::new();
    for v in &cases {
        let t = jsonb_text(v);
        serde_json::from_str::<serde::de::IgnoredAny>(&t).expect("valid JSON");
        assert!(!t.contains("\\u0000") && !t.contains('\0'), "{t}");
        for s in ["\\ud83d\"", "\\udc00"] {
            assert!(!t.contains(s), "unpaired surrogate kept: {t}");
        }
        // Only numbers count (digits inside a JSON string are text to jsonb), read from the text: a
        // parse to f64 would turn 0.111…e-10000 into 0.0 and hide its 16 400 digits of scale.
        if let Some(why) = oracles::jsonb_refusal(&t) {
            refused.push(format!("{:.60} -> {:.60}: {why}", String::from_utf8_lossy(v), t));
        }
    }
    assert!(refused.is_empty(), "jsonb would refuse: {refused:?}");
}

fn batch(others: &[&[u8]]) -> Batch {
    let mut buf = Vec::new();
    let producer = std::process::id() as u64 ^ 0x5ec0_0000_0000;
    for (i, o) in others.iter().enumerate() {
        let mut w = RecordWriter::begin(&mut buf);
        w.put_str(StrField::EventName, b"\\mod_forum\\event\\post_created", 1024);
        w.put_str(StrField::Other, o, 1 << 20);
        w.set_int(IntField::TimeCreated, tsdb::stats::now_unix());
        w.finish(EventId { producer, seq: 1 + i as u64 }, tsdb::stats::now_unix() * 1_000_000_000 + i as i64);
    }
    Batch::new(buf).unwrap()
}

#[test]
fn an_other_with_a_number_numeric_cannot_hold_is_stored() {
    let Some(pg) = pg::server("TSDB_TEST_PG", "PostgreSQL", "sec") else { return };
    let mut sink = pg.sink(&pg.schema("numeric"), &[]);
    let gap = format!("{{\"n\":0.{}e-10000}}", "1".repeat(6400));
    let b = batch(&[br#"{"a":1}"#, br#"{"subject":"hi","n":1e999999}"#, br#"{"a":2}"#, gap.as_bytes()]);
    match sink.write(&b) {
        Ok(w) => assert_eq!((w.written, w.rejected), (4, 0), "an event was refused: {:?}", w.error),
        Err(SinkError::Split(m)) => panic!("the batch was refused as a whole (it would be bisected): {m}"),
        Err(e) => panic!("{e:?}"),
    }
}
