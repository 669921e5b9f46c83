//! The properties each fuzz target checks. Each `check_*` takes the fuzzer's bytes and panics when a
//! property does not hold; the fuzz targets call them, and `tests/security_fuzz_corpus.rs` replays
//! every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them in `cargo test`.

use crate::input::{self, Bytes, OwnedEvent};
use crate::lp::{self, Value};
use tsdb::config::{self, Config, Kind, SPECS, TAGGABLE};
use tsdb::event::{EventId, IntField, StrField, INT_FIELDS, STR_FIELDS};
use tsdb::json;
use tsdb::lineproto::{self, Dialect, Encoder, MAX_FIELD_BYTES, MAX_SERIES_KEY_BYTES, TRUNCATION_MARKER};
use tsdb::record::{self, RecordWriter, FLAG_TRUNCATED, HEADER_LEN};
use tsdb::sink::Batch;

const FFFD: char = '\u{FFFD}';

// ---------------------------------------------------------------------------------------------
// 1. Line protocol encoder

/// One line-protocol case: encoder settings and an event.
#[derive(Clone, Debug)]
pub struct LpCase {
    pub dialect: Dialect,
    pub measurement: String,
    pub tags: Vec<&'static str>,
    pub event: OwnedEvent,
}

const MEASUREMENTS: [&str; 5] = ["moodle_events", "m", "moodle events,x=1", "m\"q'=", "é 中 😀"];

pub fn lp_case(data: &[u8]) -> LpCase {
    let mut b = Bytes::new(data);
    let c = b.u8();
    let dialect = match c & 3 {
        1 => Dialect::Iox,
        2 => Dialect::Portable,
        _ => Dialect::Go,
    };
    let measurement = match (c >> 2) & 7 {
        k @ 0..=4 => MEASUREMENTS[k as usize].to_string(),
        5 => "a".repeat(1024),
        _ => {
            let s = String::from_utf8_lossy(&input::string(&mut b)).into_owned();
            // Only what the configuration accepts reaches the encoder.
            if Config::from_pairs([("measurement", s.as_str())]).is_ok() && lineproto::check_measurement(&s).is_ok() {
                s
            } else {
                "m".to_string()
            }
        }
    };
    let mask = b.u16();
    let tags = TAGGABLE.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, t)| *t).collect();
    let event = input::event(&mut b);
    LpCase { dialect, measurement, tags, event }
}

/// Writes a case (for seeds): `measurement_sel` 0..=5 picks a fixed measurement.
pub fn encode_lp_case(dialect: Dialect, measurement_sel: u8, tags: &[&str], e: &OwnedEvent) -> Vec<u8> {
    let d = match dialect {
        Dialect::Go => 0,
        Dialect::Iox => 1,
        Dialect::Portable => 2,
    };
    let mut out = vec![d | (measurement_sel.min(5) << 2)];
    let mut mask = 0u16;
    for (i, t) in TAGGABLE.iter().enumerate() {
        if tags.contains(t) {
            mask |= 1 << i;
        }
    }
    out.extend_from_slice(&mask.to_le_bytes());
    input::encode_event(&mut out, e);
    out
}

fn lp_dialect(d: Dialect) -> lp::Dialect {
    match d {
        Dialect::Go => lp::Dialect::Go,
        Dialect::Iox => lp::Dialect::Iox,
        Dialect::Portable => lp::Dialect::Portable,
    }
}

/// The text a value becomes when the protocol can carry it whole: invalid UTF-8 → U+FFFD.
fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// Compares a tag value read back with the event's bytes, modulo the documented replacements.
/// Returns whether the value was altered.
fn check_tag(col: &str, v: &[u8], got: &str, d: Dialect, cap: usize, replaced_flag: bool) -> Result<bool, String> {
    let mut want: Vec<char> =
        lossy(v).chars().map(|c| if c == '\n' || (c == '\t' && d != Dialect::Go) { FFFD } else { c }).collect();
    let cut = v.len() > cap;
    let g: Vec<char>;
    if cut {
        let head = got.strip_suffix(TRUNCATION_MARKER).ok_or(format!("tag {col}: cut without the marker"))?;
        g = head.chars().collect();
        if g.len() > want.len() || g.len() + TRUNCATION_MARKER.len() > cap {
            return Err(format!("tag {col}: cut to {} characters, cap {cap}", g.len()));
        }
        want.truncate(g.len());
    } else {
        if want.last() == Some(&'\\') {
            *want.last_mut().unwrap() = FFFD;
        }
        g = got.chars().collect();
    }
    if g.len() != want.len() {
        return Err(format!("tag {col}: {} characters read back, {} expected: {got:?}", g.len(), want.len()));
    }
    for (i, (&a, &w)) in g.iter().zip(&want).enumerate() {
        if a == w {
            continue;
        }
        // Go dialect: the last backslash of a run before an escaped character may be replaced
        // (docs/influxdb.md, "a backslash run before an escaped character").
        let escaped_next = want.get(i + 1).is_some_and(|c| matches!(c, ',' | '=' | ' '));
        if d == Dialect::Go && w == '\\' && a == FFFD && escaped_next && replaced_flag {
            continue;
        }
        return Err(format!("tag {col}: character {i} is {a:?}, expected {w:?}; got {got:?}"));
    }
    Ok(cut || got.as_bytes() != v)
}

/// Compares a string field read back with the event's bytes. Returns whether it was altered.
fn check_string_field(col: &str, v: &[u8], got: &str, is_other: bool, d: Dialect) -> Result<bool, String> {
    let mut want = lossy(v);
    if d == Dialect::Portable {
        want = want.replace('\n', "\u{FFFD}");
    }
    if got.len() > MAX_FIELD_BYTES {
        return Err(format!("field {col}: {} bytes stored, limit {MAX_FIELD_BYTES}", got.len()));
    }
    if want.len() <= MAX_FIELD_BYTES {
        if got != want {
            return Err(format!("field {col}: read back {got:?}, expected {want:?}"));
        }
        return Ok(got.as_bytes() != v);
    }
    if is_other {
        let j: serde_json::Value =
            serde_json::from_str(got).map_err(|e| format!("field {col}: cut `other` is not JSON: {e}"))?;
        let o = j.as_object().ok_or("cut `other` is not an object")?;
        if o.len() != 2 || o.get("tsdb_truncated").and_then(|x| x.as_u64()) != Some(v.len() as u64) {
            return Err(format!("field {col}: bad truncation object {got:.200}"));
        }
        let head = o.get("head").and_then(|h| h.as_str()).ok_or("no head")?;
        if !want.starts_with(head) {
            return Err(format!("field {col}: head is not a prefix of the value"));
        }
    } else {
        let head = got.strip_suffix(TRUNCATION_MARKER).ok_or(format!("field {col}: cut without the marker"))?;
        if !want.starts_with(head) || head.len() + TRUNCATION_MARKER.len() + 4 <= MAX_FIELD_BYTES {
            return Err(format!("field {col}: cut to {} bytes, not a prefix or too short", head.len()));
        }
    }
    Ok(true)
}

/// Encodes the event twice into one body, reads the body back with the independent parser of the
/// dialect, and compares. `Err` describes the first difference.
pub fn lineproto_verdict(data: &[u8]) -> Result<(), String> {
    let mut case = lp_case(data);
    // InfluxDB 1.x refuses timestamps outside [MinInt64+2, MaxInt64-1] (a documented limit: the
    // event is counted as rejected); keep the time inside so the rest is compared.
    if case.dialect == Dialect::Go {
        case.event.time_ns = case.event.time_ns.clamp(i64::MIN + 2, i64::MAX - 1);
    }
    let e = case.event.as_ref();
    let enc = Encoder::with_dialect(&case.measurement, &case.tags, case.dialect);
    let cap = enc.tag_cap();
    let mut out = Vec::new();
    let alt = enc.encode(&e, &mut out).map_err(|e| format!("encode failed: {e:?}"))?;
    let n = out.len();
    let alt2 = enc.encode(&e, &mut out).map_err(|e| format!("encode failed: {e:?}"))?;
    if alt != alt2 || out[..n] != out[n..] {
        return Err("the same event encoded twice gave different lines".into());
    }
    if std::str::from_utf8(&out).is_err() {
        return Err("output is not UTF-8".into());
    }
    if out[n - 1] != b'\n' {
        return Err("line does not end with a newline".into());
    }
    let d = lp_dialect(case.dialect);
    let lines = lp::split_lines(d, &out);
    if lines.len() != 2 || lines[0] != &out[..n - 1] || lines[1] != &out[n..2 * n - 1] {
        return Err(format!("the server would split two encoded events into {} lines", lines.len()));
    }
    let p = lp::parse_line(d, lines[0]).map_err(|err| format!("unparsable line: {err}"))?;
    if p.measurement != case.measurement {
        return Err(format!("measurement {:?}, expected {:?}", p.measurement, case.measurement));
    }
    if p.time != Some(e.time_ns) {
        return Err(format!("time {:?}, expected {}", p.time, e.time_ns));
    }
    if p.key_len > MAX_SERIES_KEY_BYTES || p.fields.iter().any(|(k, _)| p.key_len + 4 + k.len() > MAX_SERIES_KEY_BYTES)
    {
        return Err(format!("series key of {} bytes exceeds InfluxDB's limit", p.key_len));
    }
    let mut altered = false;
    // Tags: exactly the configured columns that hold a value (an empty string omits the tag).
    let mut want_tags: Vec<&str> = case.tags.clone();
    want_tags.sort_unstable();
    want_tags.dedup();
    let mut got_tags = p.tags.clone();
    for name in &want_tags {
        let Some(field) = tsdb::event::Field::from_key(name.as_bytes()) else { continue };
        let pos = got_tags.iter().position(|t| t.0 == *name);
        match field {
            tsdb::event::Field::Int(f) => match (e.int(f), pos) {
                (None, None) => {}
                (Some(v), Some(i)) if got_tags[i].1 == v.to_string() => {
                    got_tags.remove(i);
                }
                (w, g) => return Err(format!("tag {name}: expected {w:?}, got {:?}", g.map(|i| &got_tags[i].1))),
            },
            tsdb::event::Field::Str(f) => match (e.str(f).filter(|v| !v.is_empty()), pos) {
                (None, None) => {}
                (Some(v), Some(i)) => {
                    altered |= check_tag(name, v, &got_tags[i].1, case.dialect, cap, alt.replaced)?;
                    got_tags.remove(i);
                }
                (w, g) => {
                    return Err(format!("tag {name}: expected {:?}, got {:?}", w.map(lossy), g.map(|i| &got_tags[i].1)))
                }
            },
        }
    }
    if !got_tags.is_empty() {
        return Err(format!("extra tags {got_tags:?}"));
    }
    // Fields: every other column that holds a value; `timecreated` only when there is no other.
    // (name, integer value, string value)
    type Want<'a> = (&'a str, Option<i64>, Option<&'a [u8]>);
    let mut want_fields: Vec<Want> = Vec::new();
    for f in INT_FIELDS {
        if f != IntField::TimeCreated && !want_tags.contains(&f.name()) {
            if let Some(v) = e.int(f) {
                want_fields.push((f.name(), Some(v), None));
            }
        }
    }
    for f in STR_FIELDS {
        if !want_tags.contains(&f.name()) {
            if let Some(v) = e.str(f) {
                want_fields.push((f.name(), None, Some(v)));
            }
        }
    }
    if want_fields.is_empty() {
        want_fields.push(("timecreated", Some(e.timecreated()), None));
    }
    if p.fields.len() != want_fields.len() {
        let got: Vec<&str> = p.fields.iter().map(|f| f.0.as_str()).collect();
        let want: Vec<&str> = want_fields.iter().map(|f| f.0).collect();
        return Err(format!("fields {got:?}, expected {want:?}"));
    }
    for (name, int, s) in &want_fields {
        let got = p.fields.iter().find(|f| f.0 == *name).map(|f| &f.1).ok_or(format!("field {name} missing"))?;
        match (int, s, got) {
            (Some(v), _, Value::Int(g)) if v == g => {}
            (_, Some(v), Value::Str(g)) => {
                altered |= check_string_field(name, v, g, *name == "other", case.dialect)?;
            }
            _ => return Err(format!("field {name}: read back {got:?}, expected {int:?} / {:?}", s.map(lossy))),
        }
    }
    if altered && !alt.any() {
        return Err("a value was altered but the encoder did not report it (it would not be counted)".into());
    }
    Ok(())
}

pub fn check_lineproto(data: &[u8]) {
    if let Err(e) = lineproto_verdict(data) {
        panic!("line protocol property violated: {e}\ncase: {:.2000}", format!("{:?}", lp_case(data)));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Record reader

/// Checks a batch the reader accepted: counts, ids and `split` agree.
fn check_batch(b: &Batch, depth: u32) {
    let events: Vec<_> = b.events().collect();
    assert_eq!(events.len(), b.len(), "Batch::events() lost records");
    assert!(!b.is_empty());
    assert_eq!(events[0].id.seq, b.id.first_seq);
    assert_eq!(events[events.len() - 1].id.seq, b.id.last_seq);
    for w in events.windows(2) {
        assert_eq!(w[0].id.producer, w[1].id.producer);
        assert_eq!(w[0].id.seq + 1, w[1].id.seq);
    }
    if b.len() >= 2 && depth < 3 {
        let (l, r) = b.split();
        assert!(!l.is_empty() && !r.is_empty());
        assert_eq!(l.len() + r.len(), b.len());
        assert_eq!([l.bytes(), r.bytes()].concat(), b.bytes());
        assert_eq!((l.id.first_seq, r.id.last_seq), (b.id.first_seq, b.id.last_seq));
        assert_eq!(l.id.last_seq + 1, r.id.first_seq);
        check_batch(&l, depth + 1);
        check_batch(&r, depth + 1);
    }
}

/// Arbitrary bytes: the reader never panics, always ends, and `read`, `records` and `Batch::new`
/// agree with each other.
fn check_raw_records(data: &[u8]) {
    if let Ok(r) = record::read(data) {
        assert!(r.bytes.len() >= HEADER_LEN && r.bytes.len() <= data.len());
        assert_eq!(r.bytes, &data[..r.bytes.len()]);
        for s in r.event.strs.iter().flatten() {
            let at = s.as_ptr() as usize - data.as_ptr() as usize;
            assert!(at + s.len() <= r.bytes.len(), "a string points outside its record");
        }
    }
    let mut n = 0usize;
    let mut consumed = 0usize;
    let mut failed = false;
    for x in record::records(data) {
        n += 1;
        assert!(!failed, "records() yielded after an error");
        assert!(n <= data.len() / HEADER_LEN + 1, "records() does not end");
        match x {
            Ok(r) => consumed += r.bytes.len(),
            Err(_) => failed = true,
        }
    }
    assert!(consumed <= data.len());
    if let Ok(b) = Batch::new(data.to_vec()) {
        assert!(!failed && consumed == data.len(), "Batch::new accepted what records() refuses");
        assert_eq!(b.byte_len(), data.len());
        check_batch(&b, 0);
    }
}

/// The longest prefix of `v` of at most `cap` bytes that does not split a UTF-8 sequence of a
/// valid `v` (independent of `record::utf8_floor`).
fn char_floor(v: &[u8], cap: usize) -> usize {
    if v.len() <= cap {
        return v.len();
    }
    match std::str::from_utf8(v) {
        Ok(s) => (0..=cap).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0),
        Err(_) => cap,
    }
}

/// Events written with `RecordWriter` read back the same (strings cut to the cap, flagged), and a
/// damaged or shortened buffer is refused without a panic.
fn check_written_records(data: &[u8]) {
    let mut b = Bytes::new(data);
    let cap = 1 + b.u16() as usize;
    let count = 1 + (b.u8() % 4) as usize;
    let producer = b.u64();
    let first = b.u64() & 0xffff_ffff;
    let events: Vec<OwnedEvent> = (0..count).map(|_| input::event(&mut b)).collect();
    let mut buf = Vec::new();
    let mut ends = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut w = RecordWriter::begin(&mut buf);
        for f in INT_FIELDS {
            if let Some(v) = e.ints[f as usize] {
                w.set_int(f, v);
            }
        }
        let mut cut = false;
        for f in STR_FIELDS {
            if let Some(v) = &e.strs[f as usize] {
                cut |= w.put_str(f, v, cap);
            }
        }
        assert_eq!(w.is_truncated(), cut);
        let len = w.finish(EventId { producer, seq: first + i as u64 }, e.time_ns);
        ends.push(buf.len());
        assert!(len >= HEADER_LEN);
    }
    let batch = Batch::new(buf.clone()).expect("records just written are valid");
    assert_eq!(batch.len(), count);
    assert_eq!((batch.id.producer, batch.id.first_seq, batch.id.last_seq), (producer, first, first + count as u64 - 1));
    for (r, e) in batch.records().zip(&events) {
        assert_eq!(r.event.id.seq - first, r.event.id.seq - batch.id.first_seq);
        assert_eq!(r.event.time_ns, e.time_ns);
        assert_eq!(r.event.ints, e.ints);
        let mut cut = false;
        for f in STR_FIELDS {
            let Some(v) = e.strs[f as usize].as_deref() else {
                assert_eq!(r.event.str(f), None);
                continue;
            };
            let got = r.event.str(f).unwrap_or_else(|| panic!("string {} lost", f.name()));
            if v.len() <= cap {
                assert_eq!(got, v, "string {} read back differently", f.name());
                continue;
            }
            cut = true;
            // A cut value ends with the truncation marker when the cap leaves room for it twice; it
            // is cut at a character boundary when it is UTF-8 (up to 3 bytes early otherwise).
            let marker = TRUNCATION_MARKER.as_bytes();
            let (limit, tail) = if cap >= 2 * marker.len() { (cap - marker.len(), marker) } else { (cap, &b""[..]) };
            let head = got.strip_suffix(tail).unwrap_or_else(|| panic!("string {}: no marker", f.name()));
            assert!(v.starts_with(head) && head.len() <= limit, "string {}: not a prefix within the cap", f.name());
            if std::str::from_utf8(v).is_ok() {
                assert_eq!(head.len(), char_floor(v, limit), "string {}: not cut at the last boundary", f.name());
            } else {
                assert!(head.len() + 3 >= limit, "string {}: cut too short", f.name());
            }
        }
        assert_eq!(r.flags & FLAG_TRUNCATED != 0, cut);
    }
    // Damage: one byte changed, or the buffer cut short.
    if !buf.is_empty() {
        let at = b.u16() as usize % buf.len();
        let x = b.u8() | 1;
        let mut bad = buf.clone();
        bad[at] ^= x;
        check_raw_records(&bad);
        let cut_at = b.u16() as usize % buf.len();
        let short = Batch::new(buf[..cut_at].to_vec());
        assert_eq!(short.is_ok(), cut_at > 0 && ends.contains(&cut_at), "a record cut short was accepted");
    }
}

pub fn check_record(data: &[u8]) {
    check_raw_records(data);
    check_written_records(data);
}

// ---------------------------------------------------------------------------------------------
// 3. JSON writer

pub fn check_json(data: &[u8]) {
    let mut out = b"[".to_vec();
    json::write_str(&mut out, data);
    out.push(b']');
    assert!(out.iter().all(|&b| b >= 0x20), "raw control byte in JSON output");
    let v: Vec<String> = serde_json::from_slice(&out).expect("write_str output is valid JSON");
    assert_eq!(v[0], String::from_utf8_lossy(data), "JSON string decodes to something else");
    let mut eight = [0u8; 8];
    for (i, b) in data.iter().take(8).enumerate() {
        eight[i] = *b;
    }
    let f = f64::from_bits(u64::from_le_bytes(eight));
    let mut o = Vec::new();
    json::write_f64(&mut o, f);
    serde_json::from_slice::<serde_json::Value>(&o).expect("write_f64 output is valid JSON");
    let text = std::str::from_utf8(&o).unwrap();
    if f.is_finite() {
        assert_eq!(text.parse::<f64>().unwrap().to_bits(), f.to_bits(), "write_f64 does not round-trip {f:?}");
    } else {
        assert_eq!(text, "null");
    }
    let i = i64::from_le_bytes(eight);
    let mut o = Vec::new();
    json::write_i64(&mut o, i);
    assert_eq!(serde_json::from_slice::<i64>(&o).unwrap(), i);
    // The file sink's JSON lines: one line per event, every field back.
    let e = input::event(&mut Bytes::new(data));
    let mut line = Vec::new();
    tsdb::sink::file::write_json_line(&e.as_ref(), &mut line);
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "a JSON line holds a raw newline");
    assert_eq!(line.last(), Some(&b'\n'));
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&line).expect("JSON line parses");
    assert_eq!(obj.len(), INT_FIELDS.len() + STR_FIELDS.len() + 2);
    for f in INT_FIELDS {
        assert_eq!(obj[f.name()].as_i64(), e.ints[f as usize], "{}", f.name());
    }
    for f in STR_FIELDS {
        assert_eq!(obj[f.name()].as_str(), e.strs[f as usize].as_deref().map(lossy).as_deref(), "{}", f.name());
    }
    assert_eq!(obj["time_ns"].as_i64(), Some(e.time_ns));
}

// ---------------------------------------------------------------------------------------------
// 4. Configuration

/// `(key, value)` pairs: per pair a selector byte (`< SPECS.len()`: that key; otherwise a key read
/// from the input) and a value.
pub fn config_pairs(data: &[u8]) -> Vec<(String, String)> {
    let mut b = Bytes::new(data);
    let mut pairs = Vec::new();
    while !b.is_empty() && pairs.len() < 64 {
        let sel = b.u8() as usize;
        let key = if sel < SPECS.len() {
            SPECS[sel].key.to_string()
        } else {
            String::from_utf8_lossy(&input::string(&mut b)).into_owned()
        };
        let value = String::from_utf8_lossy(&input::string(&mut b)).into_owned();
        pairs.push((key, value));
    }
    pairs
}

pub fn encode_config_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        // Keys by name: seeds keep their meaning when SPECS changes.
        out.push(255);
        input::encode_string(&mut out, k.as_bytes());
        input::encode_string(&mut out, v.as_bytes());
    }
    out
}

fn is_secret(key: &str) -> bool {
    config::spec(key).is_some_and(|s| s.kind == Kind::Secret)
}

/// A stand-in for a secret with the same validity: what the error messages may depend on.
/// (Whether a secret is set is shown: `********` or empty.)
fn stand_in(v: &str) -> &'static str {
    if v.is_empty() {
        ""
    } else if v.bytes().any(|b| b == 0 || b == b'\n' || b == b'\r') {
        "\n"
    } else if v.trim().is_empty() {
        " "
    } else {
        "S"
    }
}

fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0] == b'_' || b[0].is_ascii_alphabetic())
        && b.iter().all(|&c| c == b'_' || c.is_ascii_alphanumeric())
}

/// True when `s` is also the value (or part of the value) of a key that is not a secret.
fn text_has_elsewhere(pairs: &[(String, String)], s: &str) -> bool {
    pairs.iter().any(|(k, v)| !is_secret(k) && (v.contains(s) || k.contains(s)))
}

pub fn check_config(data: &[u8]) {
    let pairs = config_pairs(data);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let result = Config::from_pairs(refs.iter().copied());
    // Property: what is shown (errors, Debug, redacted()) does not depend on a secret's value.
    let masked: Vec<(&str, &str)> =
        refs.iter().map(|&(k, v)| if is_secret(k) { (k, stand_in(v)) } else { (k, v) }).collect();
    let other = Config::from_pairs(masked.iter().copied());
    match (&result, &other) {
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "an error message depends on a secret"),
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "Debug output depends on a secret");
            assert_eq!(a.redacted(), b.redacted(), "redacted() depends on a secret");
        }
        _ => panic!("validity depends on more than the secret's class"),
    }
    let Ok(cfg) = result else { return };
    // Secrets never appear in what redact() returns (for secrets without `*`, which the mask is made of).
    let secrets: Vec<String> = cfg.secrets().iter().map(|s| s.to_string()).collect();
    let text: String = pairs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    let red = cfg.redact(&text);
    for s in &secrets {
        if !s.contains('*') {
            assert!(!red.contains(s.as_str()), "redact() left a secret in the text");
        }
    }
    // Identifiers are plain: nothing for quoting to get wrong.
    for key in ["schema", "table"] {
        assert!(is_ident(cfg.get(key)), "{key} {:?} is not a plain SQL identifier", cfg.get(key));
    }
    let names = tsdb::sink::postgres::Names::new(cfg.get("schema"), cfg.get("table"));
    for n in [names.main(), names.meta(), names.derived("_p20240101"), names.derived("_ledger")] {
        assert!(n.len() <= 2 * 63 + 5, "identifier too long: {n}");
    }
    for n in [names.derived("_p20240101"), names.derived("_ledger"), names.meta()] {
        assert!(is_ident(&n), "derived name {n:?} is not a plain identifier");
    }
    // Every value the sinks read is well formed; opening any sink does not panic or connect.
    for t in cfg.tags() {
        assert!(TAGGABLE.contains(&t));
    }
    if cfg.backend().starts_with("influxdb") {
        if let Ok(s) = tsdb::sink::influx::InfluxSink::new(&cfg) {
            let u = s.write_url();
            assert!(u.starts_with("http://") || u.starts_with("https://"), "odd write URL {u}");
            assert!(!u.contains('#'), "fragment in write URL {u}");
            let authority = u.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
            assert!(!authority.contains('@'), "credentials in write URL {u}");
            for s in &secrets {
                assert!(s.len() < 4 || !u.contains(s.as_str()) || text_has_elsewhere(&pairs, s), "a secret in the URL");
            }
        }
    }
    let _ = tsdb::sink::open(&cfg);
}

// ---------------------------------------------------------------------------------------------
// 5. PostgreSQL COPY values (bonus: the other encoder of untrusted strings)

/// Whether PostgreSQL's `numeric` (which jsonb numbers are) cannot hold a JSON number: more than
/// 131072 digits before the decimal point or more than 16383 after (`value overflows numeric format`).
pub fn numeric_overflows(num: &str) -> bool {
    let (mantissa, exp) = match num.find(['e', 'E']) {
        Some(i) => (&num[..i], num[i + 1..].parse::<i64>().unwrap_or(i64::MAX)),
        None => (num, 0),
    };
    let mantissa = mantissa.trim_start_matches('-');
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if exp.unsigned_abs() >= (i32::MAX / 2) as u64 {
        return true;
    }
    let dscale = (frac.len() as i64 - exp).max(0);
    if dscale > 16383 {
        return true;
    }
    let digits = format!("{int}{frac}");
    match digits.find(|c: char| c != '0') {
        None => false,
        // Decimal exponent of the most significant digit.
        Some(first) => int.len() as i64 - 1 - first as i64 + exp > 131071,
    }
}

/// The sink's documented conservative rule (src/sink/postgres/copy.rs, `numbers_fit_numeric`): a number
/// with more than 16 000 digits after the point or 131 000 before it once the exponent is applied
/// (leading zeros counted), or an exponent of more than six digits, is not trusted to fit `numeric`,
/// and the whole text is stored as a JSON string. (The exact limits are 16 383 and 131 072.)
fn has_large_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            i += if c == b'\\' { 2 } else { 1 };
            in_str = c != b'"';
            continue;
        }
        if c == b'"' {
            in_str = true;
        } else if c == b'-' || c.is_ascii_digit() {
            let n = b[i..].iter().take_while(|&&x| x.is_ascii_digit() || b"+-.eE".contains(&x)).count();
            let num = &s[i..i + n];
            let (mantissa, exp) = num.split_once(['e', 'E']).unwrap_or((num, ""));
            let exp_digits = exp.bytes().filter(u8::is_ascii_digit).count();
            let e = exp.parse::<i64>().unwrap_or(0);
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            let int_digits = int.bytes().filter(u8::is_ascii_digit).count() as i64;
            if exp_digits > 6 || frac.len() as i64 - e > 16_000 || int_digits + e > 131_000 {
                return true;
            }
            i += n;
            continue;
        }
        i += 1;
    }
    false
}

/// What jsonb refuses in JSON text that is otherwise valid: `\u0000`, unpaired surrogate escapes, and
/// numbers beyond `numeric`.
pub fn jsonb_refusal(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    let hex =
        |at: usize| -> Option<u16> { u16::from_str_radix(std::str::from_utf8(b.get(at..at + 4)?).ok()?, 16).ok() };
    while i < b.len() {
        let c = b[i];
        if !in_str {
            if c == b'"' {
                in_str = true;
            } else if c == b'-' || c.is_ascii_digit() {
                let n = b[i..].iter().take_while(|&&x| x.is_ascii_digit() || b"+-.eE".contains(&x)).count();
                let num = &s[i..i + n];
                if numeric_overflows(num) {
                    return Some(format!("number {:.40} overflows numeric", num));
                }
                i += n;
                continue;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_str = false;
                i += 1;
            }
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let cp = hex(i + 2)?;
                match cp {
                    0 => return Some("\\u0000".into()),
                    0xD800..=0xDBFF => {
                        let low = if b.get(i + 6..i + 8) == Some(b"\\u") { hex(i + 8) } else { None };
                        match low {
                            Some(0xDC00..=0xDFFF) => i += 12,
                            _ => return Some(format!("unpaired high surrogate \\u{cp:04x}")),
                        }
                    }
                    0xDC00..=0xDFFF => return Some(format!("unpaired low surrogate \\u{cp:04x}")),
                    _ => i += 6,
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

pub fn check_pg_copy(data: &[u8]) {
    let mut b = Bytes::new(data);
    let max = b.u8() as usize;
    let v = b.rest();
    // Text columns: valid UTF-8, no NUL, at most `max` characters, otherwise the value itself.
    let mut out = b"xyz".to_vec();
    let altered = tsdb::sink::postgres::push_text(&mut out, v, max);
    let t = std::str::from_utf8(&out[3..]).expect("push_text output is UTF-8");
    assert!(!t.contains('\0'));
    assert!(t.chars().count() <= max);
    let want: String = lossy(v).chars().map(|c| if c == '\0' { FFFD } else { c }).take(max).collect();
    assert_eq!(t, want);
    assert_eq!(altered, t.as_bytes() != v);
    // jsonb: valid JSON without what jsonb refuses; valid input passes unchanged.
    let mut out = Vec::new();
    let altered = tsdb::sink::postgres::push_json(&mut out, v);
    let t = std::str::from_utf8(&out).expect("push_json output is UTF-8");
    assert!(!t.contains('\0'));
    serde_json::from_str::<serde::de::IgnoredAny>(t).expect("push_json output is JSON");
    if let Some(why) = jsonb_refusal(t) {
        panic!("push_json output would be refused by jsonb: {why}");
    }
    let text = std::str::from_utf8(v).ok().filter(|_| !v.contains(&0));
    let clean_input = text.is_some()
        && serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok()
        && jsonb_refusal(text.unwrap_or("")).is_none();
    if clean_input && !has_large_number(text.unwrap_or("")) {
        assert_eq!(t.as_bytes(), v, "valid JSON was changed");
        assert!(!altered);
    } else if clean_input {
        // Documented conservative rule (`numbers_fit_numeric`): JSON with a very large number is kept
        // as a JSON string holding the text.
        assert_eq!(serde_json::from_str::<String>(t).ok().as_deref(), text, "large number not kept as text");
        assert!(altered);
    } else {
        assert!(altered, "a change was not reported");
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(v).is_err() && std::str::from_utf8(v).is_ok() && !v.contains(&0)
    {
        assert_eq!(
            serde_json::from_str::<String>(t).ok().as_deref(),
            std::str::from_utf8(v).ok(),
            "non-JSON kept as a string"
        );
    }
}

/// Used by the seed writer and tests: a few events of `StrField`s of interest.
pub fn str_event(fields: &[(StrField, &[u8])], ints: &[(IntField, i64)], time_ns: i64) -> OwnedEvent {
    let mut e = OwnedEvent { time_ns, producer: 1, seq: 1, ..Default::default() };
    for (f, v) in fields {
        e.strs[*f as usize] = Some(v.to_vec());
    }
    for (f, v) in ints {
        e.ints[*f as usize] = Some(*v);
    }
    e
}

// ---------------------------------------------------------------------------------------------
// 6. Spool segments (files read back from disk)

/// A segment in the documented format (`src/spool.rs`), written independently of the spool's writer:
/// `TSDBSPL1 | u32 version | u32 count | u64 producer | i64 created_ms | u32 crc32` then frames
/// `u32 length | u32 crc32 | record`.
pub fn segment(count: u32, producer: u64, created_ms: i64, records: &[&[u8]]) -> Vec<u8> {
    let mut s = b"TSDBSPL1".to_vec();
    s.extend_from_slice(&1u32.to_le_bytes());
    s.extend_from_slice(&count.to_le_bytes());
    s.extend_from_slice(&producer.to_le_bytes());
    s.extend_from_slice(&created_ms.to_le_bytes());
    let crc = crc32fast::hash(&s);
    s.extend_from_slice(&crc.to_le_bytes());
    for r in records {
        s.extend_from_slice(&(r.len() as u32).to_le_bytes());
        s.extend_from_slice(&crc32fast::hash(r).to_le_bytes());
        s.extend_from_slice(r);
    }
    s
}

/// What replay does with a segment that passed `decode`: cut it into batches. Every cut must give a
/// valid batch, or replay stops at this segment on every pass without quarantining it.
fn check_decoded(raw: &[u8], batch_size: usize) {
    let Ok(out) = tsdb::spool::decode(raw) else { return };
    let mut consumed = 0;
    for r in record::records(&out) {
        consumed += r.expect("decode returned a corrupt record").bytes.len();
    }
    assert_eq!(consumed, out.len(), "decode returned a partial record");
    let mut at = 0;
    while at < out.len() {
        let (end, n) = tsdb::sink::cut(&out[at..], batch_size);
        assert!(n >= 1 && end > 0, "replay cannot cut a decoded segment");
        if let Err(e) = Batch::new(out[at..at + end].to_vec()) {
            panic!("a segment passed decode but replay cannot make a batch of it ({e}): it would block the spool");
        }
        at += end;
    }
}

pub fn check_spool(data: &[u8]) {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let batch_size = 1 + (b.u8() % 8) as usize;
    if mode & 1 == 0 {
        check_decoded(b.rest(), batch_size);
        return;
    }
    // A segment of real records, with sequence numbers, producers and count chosen by the input.
    let n = 1 + (b.u8() % 6) as usize;
    let mut producer = b.u64();
    let mut seq = b.u64();
    let mut buf = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..n {
        let e = input::event(&mut b);
        let mut w = RecordWriter::begin(&mut buf);
        for f in INT_FIELDS {
            if let Some(v) = e.ints[f as usize] {
                w.set_int(f, v);
            }
        }
        for f in STR_FIELDS {
            if let Some(v) = &e.strs[f as usize] {
                w.put_str(f, v, 4096);
            }
        }
        w.finish(EventId { producer, seq }, e.time_ns);
        ends.push(buf.len());
        match b.u8() {
            0 => {}                                   // the same sequence number again
            1 => producer = producer.wrapping_add(1), // another producer
            2 => seq = seq.wrapping_sub(1),
            _ => seq = seq.wrapping_add(1),
        }
    }
    let mut recs = Vec::new();
    let mut start = 0;
    for &end in &ends {
        recs.push(&buf[start..end]);
        start = end;
    }
    let count = match mode & 6 {
        2 => u32::MAX, // a journal
        4 => b.u8() as u32,
        _ => n as u32,
    };
    let mut raw = segment(count, producer, 1_700_000_000_000, &recs);
    let damaged = mode & 8 != 0 && !raw.is_empty();
    if damaged {
        let at = b.u16() as usize % raw.len();
        raw[at] ^= b.u8() | 1;
    }
    if !damaged && (count == n as u32 || count == u32::MAX) {
        assert_eq!(tsdb::spool::decode(&raw).as_deref(), Ok(&buf[..]), "a well-formed segment was refused");
    }
    check_decoded(&raw, batch_size);
}
