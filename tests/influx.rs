//! The InfluxDB sink against real servers started by tests/servers/influxdb.sh and
//! tests/servers/victoriametrics.sh (`./build.sh test` starts them and sets the TSDB_TEST_* variables).
//! Without a server the test says SKIPPED loudly, or fails when TSDB_TEST_REQUIRE_SERVERS=1.
//!
//! Every event written is read back and compared field by field with what the documented encoding
//! rules say the server must hold (docs/influxdb.md): the exact value wherever line protocol can carry
//! it, the documented replacement where it cannot.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tsdb::config::Config;
use tsdb::event::{EventId, IntField, StrField, INT_FIELDS, STR_FIELDS};
use tsdb::lineproto::{Dialect, Encoder, MAX_FIELD_BYTES, TRUNCATION_MARKER};
use tsdb::pipeline::Pipeline;
use tsdb::record::{utf8_floor, RecordWriter, Stamper};
use tsdb::sink::influx::InfluxSink;
use tsdb::sink::{Batch, Sink, SinkError};

const FFFD: char = '\u{FFFD}';

// ---------------------------------------------------------------- servers

/// The value of a TSDB_TEST_* variable, or None after a loud SKIPPED line (a panic when
/// TSDB_TEST_REQUIRE_SERVERS=1).
fn server(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("TSDB_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("{test}: {var} is not set and TSDB_TEST_REQUIRE_SERVERS=1");
            }
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test}: {var} is not set (start servers with ./build.sh test, or source \
                 tests/servers/influxdb.sh and tests/servers/victoriametrics.sh)"
            );
            None
        }
    }
}

/// The InfluxDB 1.x server with authentication: its URL, an admin user and the password.
fn auth_server(test: &str) -> Option<(String, String, String)> {
    let url = server("TSDB_TEST_INFLUX_AUTH_URL", test)?;
    Some((url, server("TSDB_TEST_INFLUX_USER", test)?, server("TSDB_TEST_INFLUX_PASSWORD", test)?))
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).no_proxy().build().unwrap()
}

/// An InfluxQL statement through `/query` (POST, so it may create and drop), times as epoch ns.
fn influxql(url: &str, db: &str, q: &str, auth: Option<(&str, &str)>) -> Value {
    let mut req = http().post(format!("{url}/query")).form(&[("q", q), ("db", db), ("epoch", "ns")]);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().unwrap();
    let status = resp.status();
    let v: Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    assert!(status.is_success(), "{q}: HTTP {status}: {v}");
    assert!(v["results"][0].get("error").is_none(), "{q}: {v}");
    v
}

/// One row of a query result: column name → value.
type Row = HashMap<String, Value>;

/// Rows of a SELECT as column name → value maps.
fn rows(v: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    for s in v["results"][0]["series"].as_array().cloned().unwrap_or_default() {
        let cols: Vec<String> =
            s["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        for row in s["values"].as_array().unwrap() {
            out.push(cols.iter().cloned().zip(row.as_array().unwrap().iter().cloned()).collect());
        }
    }
    out
}

/// The single column of a `SHOW ...` result.
fn shown(v: &Value) -> BTreeSet<String> {
    rows(v).into_iter().filter_map(|r| r.values().next().and_then(|x| x.as_str().map(str::to_string))).collect()
}

// ---------------------------------------------------------------- events

#[path = "common/events.rs"]
mod events;
#[path = "common/pipeline.rs"]
mod pipeline;

use events::{fill, Ev};

fn write_record(buf: &mut Vec<u8>, e: &Ev, id: EventId) {
    let mut w = RecordWriter::begin(buf);
    fill(&mut w, e, 16 << 20);
    w.finish(id, e.time_ns);
}

/// Batches of at most `max` events, consecutive sequence numbers of producer `producer`.
fn batches(evs: &[Ev], producer: u64, max: usize) -> Vec<Batch> {
    evs.chunks(max)
        .enumerate()
        .map(|(c, chunk)| {
            let mut buf = Vec::new();
            for (i, e) in chunk.iter().enumerate() {
                write_record(&mut buf, e, EventId { producer, seq: (c * max + i + 1) as u64 });
            }
            Batch::new(buf).unwrap()
        })
        .collect()
}

/// Every string the issue calls nasty, and a few more.
fn nasty_strings() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"\\core\\event\\course_viewed"[..],
        b"plain",
        b"a\\\\b",
        b"a\\,b",
        b"a\\ b",
        b"a\\=b",
        b"\\",
        b"x\\",
        b"x\\\\",
        b"\\\\\\",
        b",",
        b"=",
        b" ",
        b"a b,c=d",
        b"\"quoted\"",
        b"'single'",
        b"line1\nline2",
        b"crlf\r\nend",
        b"tab\there",
        b"nul\x00byte",
        b"ctl\x01\x1b\x7f",
        "unicode é😀 ✓ 中文 \u{202e}rtl".as_bytes(),
        b"bad utf8 \xff\xfe",
        b"cut \xc3",
        b"x,evil=1 f=2i 0\nm2 g=3i 0",
        b"\" , = \\ \"",
        b"\"\nm3 f=1i 0\n\"",
        b"#comment",
        b" leading",
        b"trailing ",
        b"",
        b"a\\\"b",
        b"\\n not a newline",
        b"{\"json\":[1,\"two\\\"\"],\"nested\":{\"k\":null}}",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    v.push("é".repeat(40_000).into_bytes()); // 80 000 bytes: over 64 KiB
    v.push(b"\\\"".repeat(20_000)); // 40 000 bytes, 80 000 escaped
    v
}

/// Go dialect: an odd run of backslashes before `,` `=` or space (it confuses InfluxDB 1.x's line
/// splitter when a string field of the same line holds a newline; the encoder then alters the tag).
fn exposes(v: &[u8]) -> bool {
    let mut run = 0;
    for &b in v {
        match b {
            b'\\' => run += 1,
            b',' | b'=' | b' ' if run % 2 == 1 => return true,
            _ => run = 0,
        }
    }
    false
}

const TAGS: [StrField; 6] =
    [StrField::EventName, StrField::Component, StrField::Action, StrField::Target, StrField::Crud, StrField::Origin];
const STRING_FIELDS: [StrField; 3] = [StrField::ObjectTable, StrField::Other, StrField::Ip];

/// Events that put every nasty string in every string column, with edge integers, at distinct times.
fn nasty_events(base_ns: i64) -> Vec<Ev> {
    let nasty = nasty_strings();
    let ints: [i64; 7] = [0, -1, 1, i64::MAX, i64::MIN, 123_456_789, -987_654_321_012];
    let mut out = Vec::new();
    let n = nasty.len();
    for i in 0..n * 2 {
        let mut e = Ev::new(base_ns + i as i64 * 1_000_003);
        let secs = e.time_ns.div_euclid(1_000_000_000);
        e = e.int(IntField::TimeCreated, secs);
        for (k, f) in STR_FIELDS.iter().enumerate() {
            // Long values in string fields only: tags are cut at a smaller size (tested separately).
            let mut v = nasty[(i + 3 * k) % n].clone();
            if TAGS.contains(f) && v.len() > 1000 {
                v.truncate(100);
            }
            e.strs[*f as usize] = Some(v);
        }
        for (k, f) in INT_FIELDS.iter().enumerate() {
            if *f == IntField::TimeCreated {
                continue;
            }
            if (i + k) % 9 == 8 {
                continue; // absent
            }
            e.ints[*f as usize] = Some(ints[(i + 2 * k) % ints.len()]);
        }
        // See `exposes`: keep those combinations for the dedicated event below.
        let exposed = TAGS.iter().any(|t| e.strs[*t as usize].as_deref().is_some_and(exposes));
        if exposed {
            for f in STRING_FIELDS {
                if e.strs[f as usize].as_deref().is_some_and(|v| v.contains(&b'\n')) {
                    e.strs[f as usize] = Some(b"no newline here".to_vec());
                }
            }
        }
        out.push(e);
    }
    // A tag longer than the encoder keeps whole.
    let t = base_ns + (n as i64 * 2 + 1) * 1_000_003;
    out.push(
        Ev::new(t)
            .int(IntField::TimeCreated, t.div_euclid(1_000_000_000))
            .int(IntField::UserId, 5)
            .str(StrField::EventName, "ü,".repeat(3000).as_bytes()),
    );
    out
}

/// The hand-checked case where InfluxDB 1.6.7 would split a naive line in two (see lineproto):
/// the encoder replaces the backslash that confuses the splitter, keeping the newline in `other`.
fn splitter_event(t: i64) -> (Ev, [(&'static str, &'static str); 3]) {
    let e = Ev::new(t)
        .int(IntField::TimeCreated, t.div_euclid(1_000_000_000))
        .int(IntField::UserId, 77)
        .str(StrField::EventName, b"p\\ q")
        .str(StrField::Origin, b"r\\,s")
        .str(StrField::Other, b"1\n2");
    (e, [("eventname", "p\u{FFFD} q"), ("origin", "r\u{FFFD},s"), ("other", "1\n2")])
}

// ---------------------------------------------------------------- expected values

#[derive(Debug, PartialEq)]
enum Want {
    Absent,
    Int(i64),
    Str(String),
    /// `other` cut into `{"tsdb_truncated":N,"head":"..."}`: N and a prefix of the value.
    CutJson {
        len: usize,
        value: String,
    },
}

fn want_tag(v: &[u8], d: Dialect, cap: usize) -> Want {
    if v.is_empty() {
        return Want::Absent;
    }
    let (v, cut) = if v.len() > cap { (&v[..utf8_floor(v, cap - TRUNCATION_MARKER.len())], true) } else { (v, false) };
    let mut s = String::from_utf8_lossy(v).replace('\n', "\u{FFFD}");
    if d != Dialect::Go {
        s = s.replace('\t', "\u{FFFD}");
    }
    if cut {
        s.push_str(TRUNCATION_MARKER);
    } else if s.ends_with('\\') {
        s.pop();
        s.push(FFFD);
    }
    Want::Str(s)
}

fn want_string(v: &[u8], is_other: bool, d: Dialect) -> Want {
    let mut s = String::from_utf8_lossy(v).into_owned();
    if d == Dialect::Portable {
        s = s.replace('\n', "\u{FFFD}");
    }
    if s.len() <= MAX_FIELD_BYTES {
        return Want::Str(s);
    }
    if is_other {
        return Want::CutJson { len: v.len(), value: s };
    }
    let keep = utf8_floor(s.as_bytes(), MAX_FIELD_BYTES - TRUNCATION_MARKER.len());
    Want::Str(format!("{}{TRUNCATION_MARKER}", &s[..keep]))
}

/// What the server must hold for each column of `e` (by column name).
fn want(e: &Ev, tags: &[&str], d: Dialect, cap: usize) -> BTreeMap<&'static str, Want> {
    let mut m = BTreeMap::new();
    for f in INT_FIELDS {
        if f == IntField::TimeCreated {
            continue;
        }
        let w = match e.ints[f as usize] {
            None => Want::Absent,
            Some(v) if tags.contains(&f.name()) => Want::Str(v.to_string()),
            Some(v) => Want::Int(v),
        };
        m.insert(f.name(), w);
    }
    for f in STR_FIELDS {
        let w = match &e.strs[f as usize] {
            None => Want::Absent,
            Some(v) if tags.contains(&f.name()) => want_tag(v, d, cap),
            Some(v) => want_string(v, f == StrField::Other, d),
        };
        m.insert(f.name(), w);
    }
    m
}

/// Compares one stored value with what it must be; returns a description of the difference.
fn check(col: &str, got: Option<&Value>, want: &Want) -> Result<(), String> {
    let got = got.filter(|v| !v.is_null());
    let ok = match (want, got) {
        (Want::Absent, None) => true,
        // InfluxDB 1.x shows a tag a point does not have as "" in SELECT *.
        (Want::Absent, Some(Value::String(s))) => s.is_empty(),
        (Want::Int(i), Some(v)) => v.as_i64() == Some(*i),
        (Want::Str(s), Some(Value::String(g))) => g == s,
        (Want::CutJson { len, value }, Some(Value::String(g))) => {
            let j: Value = serde_json::from_str(g).map_err(|e| format!("{col}: cut other is not JSON: {e}"))?;
            g.len() <= MAX_FIELD_BYTES
                && j["tsdb_truncated"].as_u64() == Some(*len as u64)
                && j["head"].as_str().is_some_and(|h| value.starts_with(h) && h.len() > MAX_FIELD_BYTES / 2)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let show = |s: String| s.chars().take(300).collect::<String>();
        Err(format!("{col}: got {} want {}", show(format!("{got:?}")), show(format!("{want:?}"))))
    }
}

/// Reads every point of `measurement` and compares it with the events (by timestamp).
fn verify_influx1(url: &str, db: &str, measurement: &str, evs: &[Ev], tags: &[&str], enc: &Encoder) {
    verify_influx1_from(url, db, measurement, evs, tags, enc, i64::MIN)
}

/// As `verify_influx1`, for the points at or after `from_ns` only.
fn verify_influx1_from(url: &str, db: &str, measurement: &str, evs: &[Ev], tags: &[&str], enc: &Encoder, from_ns: i64) {
    let v = influxql(url, db, &format!("SELECT * FROM \"{measurement}\" WHERE time >= {from_ns}"), None);
    let got = rows(&v);
    assert_eq!(got.len(), evs.len(), "N in, N out");
    let by_time: HashMap<i64, &HashMap<String, Value>> = got.iter().map(|r| (r["time"].as_i64().unwrap(), r)).collect();
    assert_eq!(by_time.len(), evs.len(), "distinct timestamps");
    let mut errors = Vec::new();
    for e in evs {
        let Some(row) = by_time.get(&e.time_ns) else {
            errors.push(format!("event at {} missing", e.time_ns));
            continue;
        };
        for (col, w) in want(e, tags, enc.dialect(), enc.tag_cap()) {
            if let Err(msg) = check(col, row.get(col), &w) {
                errors.push(format!("event at {}: {msg}", e.time_ns));
            }
        }
        // No column the event did not have (no tag or field can be injected).
        for col in row.keys() {
            let known = col == "time"
                || INT_FIELDS.iter().any(|f| f.name() == col)
                || STR_FIELDS.iter().any(|f| f.name() == col);
            if !known {
                errors.push(format!("event at {}: unexpected column {col}", e.time_ns));
            }
        }
    }
    assert!(errors.is_empty(), "{} differences:\n{}", errors.len(), errors.join("\n"));
    // Nothing else in the database: no injected measurement, tag key or field key.
    assert_eq!(shown(&influxql(url, db, "SHOW MEASUREMENTS", None)), BTreeSet::from([measurement.to_string()]));
    let tag_keys = shown(&influxql(url, db, "SHOW TAG KEYS", None));
    assert!(tag_keys.iter().all(|k| tags.contains(&k.as_str())), "{tag_keys:?}");
    let fields: Vec<(String, String)> = rows(&influxql(url, db, "SHOW FIELD KEYS", None))
        .into_iter()
        .map(|r| (r["fieldKey"].as_str().unwrap().to_string(), r["fieldType"].as_str().unwrap().to_string()))
        .collect();
    for (k, t) in &fields {
        let want = if INT_FIELDS.iter().any(|f| f.name() == k) { "integer" } else { "string" };
        assert!(
            !tags.contains(&k.as_str())
                && (INT_FIELDS.iter().any(|f| f.name() == k) || STR_FIELDS.iter().any(|f| f.name() == k)),
            "field {k}"
        );
        assert_eq!(t, want, "type of {k}");
    }
}

/// Every point of `from` (a measurement, maybe `"rp"."measurement"`) is one of `evs` with the values the
/// documented rules give, and every event is one point. For events whose time the pipeline stamped
/// (`tsdb_log_event()`'s way): matched by `timecreated` second and `userid`, which each event must have.
fn assert_points(url: &str, db: &str, from: &str, evs: &[Ev], config: &Config) {
    let got = rows(&influxql(url, db, &format!("SELECT * FROM {from}"), None));
    assert_eq!(got.len(), evs.len(), "N in, N out");
    let tags = config.tags();
    let enc = Encoder::new(config);
    // Candidates by (second, userid) so that matching stays linear.
    let mut buckets: HashMap<(i64, Option<i64>), Vec<&Row>> = HashMap::new();
    for r in &got {
        let key = (r["time"].as_i64().unwrap().div_euclid(1_000_000_000), r.get("userid").and_then(Value::as_i64));
        buckets.entry(key).or_default().push(r);
    }
    for e in evs {
        let w = want(e, &tags, enc.dialect(), enc.tag_cap());
        let key = (e.ints[IntField::TimeCreated as usize].unwrap(), e.ints[IntField::UserId as usize]);
        let candidates = buckets.get_mut(&key).unwrap_or_else(|| panic!("no stored point for event {e:?}"));
        let at = candidates.iter().position(|r| w.iter().all(|(c, w)| check(c, r.get(*c), w).is_ok()));
        match at {
            Some(i) => {
                candidates.swap_remove(i);
            }
            None => panic!("no stored point matches event {e:?}"),
        }
    }
    assert!(buckets.values().all(Vec::is_empty));
}

fn influx1_config<'a>(url: &'a str, db: &'a str, extra: &[(&'a str, &'a str)]) -> Config {
    let mut pairs = vec![("backend", "influxdb1"), ("url", url), ("database", db)];
    pairs.extend_from_slice(extra);
    Config::from_pairs(pairs).unwrap()
}

fn create_db(url: &str, db: &str, auth: Option<(&str, &str)>) {
    influxql(url, "", &format!("CREATE DATABASE \"{db}\""), auth);
}

fn count(url: &str, db: &str, q: &str, auth: Option<(&str, &str)>) -> i64 {
    let v = influxql(url, db, q, auth);
    rows(&v).first().and_then(|r| r.get("count").and_then(Value::as_i64)).unwrap_or(0)
}

// ---------------------------------------------------------------- InfluxDB 1.6.7

#[test]
fn influxdb1_every_nasty_value_round_trips() {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", "influxdb1_every_nasty_value_round_trips") else { return };
    for gzip in ["1", "0"] {
        // A database per run: no DELETE or DROP MEASUREMENT (InfluxDB 1.6.7 can answer "engine is
        // closed" to those while another test drops its database).
        let db = unique(&format!("tsdb_nasty_gz{gzip}"));
        create_db(&url, &db, None);
        let m = "moodle_events";
        let config = influx1_config(&url, &db, &[("gzip", gzip)]);
        let mut sink = InfluxSink::new(&config).unwrap();
        let mut evs = nasty_events(1_700_000_000_123_456_789);
        let (sp, sp_want) = splitter_event(1_699_999_999_000_000_001);
        evs.push(sp.clone());
        let mut total = 0;
        for b in batches(&evs, 41, 25) {
            let w = sink.write(&b).unwrap();
            assert_eq!((w.written, w.rejected), (b.len(), 0), "{:?}", w.error);
            total += w.written;
        }
        assert_eq!(total, evs.len());
        assert_eq!(sink.dialect(), Some(Dialect::Go), "InfluxDB 1.6.7 is detected");
        let tags = config.tags();
        let enc = Encoder::with_dialect(m, &tags, Dialect::Go);
        // The hand-checked splitter case is compared with its hand-written expectation...
        let v = influxql(&url, &db, &format!("SELECT * FROM \"{m}\" WHERE time = {}", sp.time_ns), None);
        let r = &rows(&v)[0];
        for (col, value) in sp_want {
            assert_eq!(r[col].as_str(), Some(value), "{col}");
        }
        // ...every other event with the documented rules.
        let plain: Vec<Ev> = evs.iter().filter(|e| e.time_ns != sp.time_ns).cloned().collect();
        verify_influx1_from(&url, &db, m, &plain, &tags, &enc, sp.time_ns + 1);
        influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
    }
}

#[test]
fn influxdb1_ten_thousand_events_in_one_course_in_one_second() {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", "influxdb1_ten_thousand_events_in_one_course_in_one_second") else {
        return;
    };
    let db = unique("tsdb_10k");
    create_db(&url, &db, None);
    let config = influx1_config(&url, &db, &[]);
    let mut sink = InfluxSink::new(&config).unwrap();
    // The capture clock stands still: all 10 000 events in the same microsecond of the same second.
    let mut stamper = Stamper::new(0x5eed);
    let evs: Vec<Ev> = (0..10_000)
        .map(|i| {
            Ev::new(stamper.stamp(1_700_000_000, 1_700_000_000_250_000))
                .int(IntField::TimeCreated, 1_700_000_000)
                .int(IntField::CourseId, 7)
                .int(IntField::UserId, 1000 + i)
                .str(StrField::EventName, b"\\core\\event\\course_viewed")
                .str(StrField::Component, b"core")
                .str(StrField::Action, b"viewed")
                .str(StrField::Target, b"course")
                .str(StrField::Crud, b"r")
                .str(StrField::Origin, b"web")
                .str(StrField::Ip, b"10.1.2.3")
        })
        .collect();
    for b in batches(&evs, 42, 5000) {
        assert_eq!(sink.write(&b).unwrap().written, 5000);
    }
    let where_ = "WHERE courseid = '7' AND eventname = '\\\\core\\\\event\\\\course_viewed' AND time >= 1700000000000000000 AND time < 1700000001000000000";
    assert_eq!(count(&url, &db, &format!("SELECT count(userid) FROM moodle_events {where_}"), None), 10_000);
    let enc = Encoder::new(&config);
    verify_influx1(&url, &db, "moodle_events", &evs, &config.tags(), &enc);
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
}

#[test]
fn influxdb1_a_retried_batch_does_not_duplicate() {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", "influxdb1_a_retried_batch_does_not_duplicate") else { return };
    let db = unique("tsdb_retry");
    create_db(&url, &db, None);
    let config = influx1_config(&url, &db, &[("batch_size", "50")]);
    let evs: Vec<Ev> = nasty_events(1_700_000_100_000_000_000);
    let bs = batches(&evs, 43, 50);
    // As after a timeout whose request the server did store: the same batches, three times, by
    // three sinks (as after a restart of the flush thread).
    for _ in 0..3 {
        let mut sink = InfluxSink::new(&config).unwrap();
        for b in &bs {
            assert_eq!(sink.write(b).unwrap().written, b.len());
        }
    }
    assert_eq!(
        count(&url, &db, "SELECT count(userid) FROM moodle_events", None),
        evs.iter().filter(|e| e.ints[IntField::UserId as usize].is_some()).count() as i64
    );
    let n = rows(&influxql(&url, &db, "SELECT * FROM moodle_events", None)).len();
    assert_eq!(n, evs.len());
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
}

#[test]
fn influxdb1_auth_on() {
    let Some((url, user, pw)) = auth_server("influxdb1_auth_on") else { return };
    let db = unique("tsdb_auth");
    create_db(&url, &db, Some((&user, &pw)));
    let evs = nasty_events(1_700_000_200_000_000_000);
    let bs = batches(&evs, 44, 100);

    let good = influx1_config(&url, &db, &[("username", &user), ("password", &pw)]);
    let mut sink = InfluxSink::new(&good).unwrap();
    for b in &bs {
        assert_eq!(sink.write(b).unwrap().written, b.len());
    }
    let n = rows(&influxql(&url, &db, "SELECT * FROM moodle_events", Some((&user, &pw)))).len();
    assert_eq!(n, evs.len());

    let wrong_pw = format!("{pw}-wrong");
    let bad = influx1_config(&url, &db, &[("username", &user), ("password", &wrong_pw)]);
    match InfluxSink::new(&bad).unwrap().write(&bs[0]) {
        Err(SinkError::Config(m)) => {
            assert!(m.starts_with("username/password:"), "{m}");
            assert!(!m.contains(&wrong_pw) && !m.contains(&pw), "password in {m}");
        }
        other => panic!("{other:?}"),
    }
    let anonymous = influx1_config(&url, &db, &[]);
    match InfluxSink::new(&anonymous).unwrap().write(&bs[0]) {
        Err(SinkError::Config(m)) => assert!(m.starts_with("username/password:"), "{m}"),
        other => panic!("{other:?}"),
    }
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), Some((&user, &pw)));
}

#[test]
fn influxdb1_https_verifies_certificates() {
    let test = "influxdb1_https_verifies_certificates";
    let (Some(url), Some(ca)) = (server("TSDB_TEST_INFLUX_HTTPS_URL", test), server("TSDB_TEST_INFLUX_CA_FILE", test))
    else {
        return;
    };
    let db = unique("tsdb_tls");
    let q = http_with_ca(&ca)
        .post(format!("{url}/query"))
        .form(&[("q", format!("CREATE DATABASE \"{db}\""))])
        .send()
        .unwrap();
    assert!(q.status().is_success());
    let evs = nasty_events(1_700_000_700_000_000_000);
    let b = &batches(&evs, 48, 1000)[0];

    // Verification is on by default: a certificate from an unknown CA is a configuration error.
    match InfluxSink::new(&influx1_config(&url, &db, &[])).unwrap().write(b) {
        Err(SinkError::Config(m)) => assert!(m.starts_with("ca_file/tls_verify:") && m.contains("certificate"), "{m}"),
        other => panic!("{other:?}"),
    }
    // ca_file makes it trusted.
    let mut sink = InfluxSink::new(&influx1_config(&url, &db, &[("ca_file", &ca)])).unwrap();
    assert_eq!(sink.write(b).unwrap().written, b.len());
    // tls_verify=0 accepts it without the CA.
    let mut sink = InfluxSink::new(&influx1_config(&url, &db, &[("tls_verify", "0")])).unwrap();
    assert_eq!(sink.write(b).unwrap().written, b.len());
    // A ca_file that is not PEM is a configuration error naming it.
    match InfluxSink::new(&influx1_config(&url, &db, &[("ca_file", "/etc/hostname")])).unwrap().write(b) {
        Err(SinkError::Config(m)) => assert!(m.starts_with("ca_file:"), "{m}"),
        other => panic!("{other:?}"),
    }
    let n = rows(
        &serde_json::from_str(
            &http_with_ca(&ca)
                .post(format!("{url}/query"))
                .form(&[("q", "SELECT * FROM moodle_events"), ("db", db.as_str()), ("epoch", "ns")])
                .send()
                .unwrap()
                .text()
                .unwrap(),
        )
        .unwrap(),
    )
    .len();
    assert_eq!(n, evs.len(), "written twice, stored once");
    http_with_ca(&ca).post(format!("{url}/query")).form(&[("q", format!("DROP DATABASE \"{db}\""))]).send().unwrap();
}

fn http_with_ca(ca: &str) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca).unwrap();
    let mut b = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).no_proxy();
    for c in reqwest::Certificate::from_pem_bundle(&pem).unwrap() {
        b = b.add_root_certificate(c);
    }
    b.build().unwrap()
}

#[test]
fn influxdb1_missing_database_and_retention_policy_are_config_errors() {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", "influxdb1_missing_database_and_retention_policy_are_config_errors")
    else {
        return;
    };
    let b = &batches(&nasty_events(1_700_000_300_000_000_000)[..2], 45, 10)[0];
    let missing = unique("tsdb_missing");
    match InfluxSink::new(&influx1_config(&url, &missing, &[])).unwrap().write(b) {
        Err(SinkError::Config(m)) => assert!(m.starts_with("database:"), "{m}"),
        other => panic!("{other:?}"),
    }
    let db = unique("tsdb_rp");
    create_db(&url, &db, None);
    match InfluxSink::new(&influx1_config(&url, &db, &[("retention_policy", "nope")])).unwrap().write(b) {
        Err(SinkError::Config(m)) => assert!(m.starts_with("retention_policy:"), "{m}"),
        other => panic!("{other:?}"),
    }
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
}

#[test]
fn influxdb1_partial_write_counts_the_refused_event() {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", "influxdb1_partial_write_counts_the_refused_event") else { return };
    let db = unique("tsdb_partial");
    create_db(&url, &db, None);
    // `ip` first written as an integer field: every later event's string `ip` is a type conflict.
    // (Field types are per shard in 1.x: the same week as the events.)
    let body = "moodle_events,courseid=1 ip=5i 1700000399000000000\n";
    let r = http().post(format!("{url}/write?db={db}&precision=ns")).body(body).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let evs: Vec<Ev> = (0..10)
        .map(|i| {
            let e = Ev::new(1_700_000_400_000_000_000 + i).int(IntField::CourseId, 1).int(IntField::UserId, i);
            if i == 3 {
                e.str(StrField::Ip, b"10.0.0.1")
            } else {
                e
            }
        })
        .collect();
    let mut sink = InfluxSink::new(&influx1_config(&url, &db, &[])).unwrap();
    let w = sink.write(&batches(&evs, 46, 10)[0]).unwrap();
    assert_eq!((w.written, w.rejected), (9, 1));
    assert!(w.error.as_deref().unwrap().contains("field type conflict"), "{:?}", w.error);
    assert_eq!(count(&url, &db, "SELECT count(userid) FROM moodle_events", None), 9);
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
}

#[test]
fn influxdb1_end_to_end_through_the_pipeline() {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", "influxdb1_end_to_end_through_the_pipeline") else { return };
    let db = unique("tsdb_e2e");
    create_db(&url, &db, None);
    let config = influx1_config(&url, &db, &[("flush_interval_ms", "50"), ("batch_size", "1000")]);
    let p = Pipeline::start(config.clone()).unwrap();
    let mut evs = nasty_events(0);
    // 3 000 more in one course in one second.
    for i in 0..3000 {
        evs.push(
            Ev::new(0)
                .int(IntField::TimeCreated, 1_700_000_500)
                .int(IntField::CourseId, 9)
                .int(IntField::UserId, i)
                .str(StrField::EventName, b"\\core\\event\\course_viewed"),
        );
    }
    for e in &evs {
        pipeline::log(&p, e);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while p.flush(Duration::from_secs(10)) > 0 && Instant::now() < deadline {}
    p.shutdown(Duration::from_secs(10));
    let s = p.stats();
    assert_eq!(s.written.load(Ordering::SeqCst), evs.len() as u64, "last error: {}", s.last_error());
    assert_eq!(s.failed.load(Ordering::SeqCst) + s.rejected.load(Ordering::SeqCst), 0);
    assert_points(&url, &db, "moodle_events", &evs, &config);
    let where_ = "WHERE courseid = '9' AND time >= 1700000500000000000 AND time < 1700000501000000000";
    assert_eq!(count(&url, &db, &format!("SELECT count(userid) FROM moodle_events {where_}"), None), 3000);
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
}

// ---------------------------------------------------------------- a database or retention policy dropped

/// What an admin drops under the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dropped {
    Database,
    RetentionPolicy,
}

/// N events written (by a sink, as any process writes them), `what` dropped (the N with it), M events logged
/// through a pipeline with a spool. Without `create_database` the error names what is missing and the M
/// wait in the spool until the admin (the test) makes it again; with it the sink makes it again and the M
/// are written at once. Then the N are sent again, as a spool replay or a retried batch would send them:
/// N + M read back exactly once, with their values.
fn dropped_case(test: &str, what: Dropped, create: bool) {
    let Some(url) = server("TSDB_TEST_INFLUX_URL", test) else { return };
    let db = unique("tsdb_dropped");
    create_db(&url, &db, None);
    let rp = "tsdb_rp";
    let make_rp = format!("CREATE RETENTION POLICY \"{rp}\" ON \"{db}\" DURATION 520w REPLICATION 1");
    let (rp_setting, from, drop) = match what {
        Dropped::Database => ("", "moodle_events".to_string(), format!("DROP DATABASE \"{db}\"")),
        Dropped::RetentionPolicy => {
            influxql(&url, &db, &make_rp, None);
            (rp, format!("\"{rp}\".moodle_events"), format!("DROP RETENTION POLICY \"{rp}\" ON \"{db}\""))
        }
    };
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap().to_string();
    let config = influx1_config(
        &url,
        &db,
        &[
            ("retention_policy", rp_setting),
            ("create_database", if create { "1" } else { "0" }),
            ("batch_size", "100"),
            ("flush_interval_ms", "50"),
            ("retry_max_elapsed_ms", "0"),
            ("breaker_open_ms", "200"),
            ("spool_dir", &spool_dir),
        ],
    );
    let (n, m) = (250, 150);
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let evs: Vec<Ev> = (0..n + m)
        .map(|i| {
            // The N and the M in different seconds: the pipeline stamps the M's nanoseconds itself.
            let tc = now_s - if i < n { 600 } else { 300 } + i as i64 / 100;
            Ev::new(tc * 1_000_000_000 + (i as i64 % 1000) * 1_000_000 + 1)
                .int(IntField::TimeCreated, tc)
                .int(IntField::UserId, 5000 + i as i64)
                .int(IntField::CourseId, i as i64 % 7)
                .str(StrField::EventName, b"\\core\\event\\course_viewed")
                .str(StrField::Ip, format!("10.0.{}.{}", i / 256, i % 256).as_bytes())
                .str(StrField::Other, format!("{{\"i\":{i}}}").as_bytes())
        })
        .collect();
    let mut sink = InfluxSink::new(&config).unwrap();
    let first = batches(&evs[..n], 0x61, 100);
    for b in &first {
        assert_eq!(sink.write(b).unwrap().written, b.len());
    }
    influxql(&url, "", &drop, None);

    let p = Pipeline::start(config.clone()).unwrap();
    for e in &evs[n..] {
        pipeline::log(&p, e);
    }
    let st = p.stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::SeqCst) as usize;
    if create {
        pipeline::wait_for(&p, "M written", |st| load(&st.written) == m);
        let made = match what {
            Dropped::Database => format!("database: database \"{db}\" was missing (dropped?) and was created again"),
            Dropped::RetentionPolicy => format!(
                "retention_policy: retention policy \"{rp}\" of database \"{db}\" was missing (dropped?) and was \
                 created again with DURATION INF (set yours with ALTER RETENTION POLICY)"
            ),
        };
        assert_eq!(st.schema_recreated_message(), format!("{made} (create_database = 1)"));
        assert_eq!((load(&st.schema_recreated), load(&st.spooled)), (1, 0), "{}", pipeline::show(st));
    } else {
        pipeline::wait_for(&p, "M spooled", |st| load(&st.spooled) == m);
        let missing = match what {
            Dropped::Database => format!("database: database \"{db}\" does not exist (dropped?); CREATE DATABASE it"),
            Dropped::RetentionPolicy => {
                format!("retention_policy: retention policy \"{rp}\" does not exist in database \"{db}\" (dropped?)")
            }
        };
        let err = st.last_error();
        assert!(err.contains(&missing) && err.contains("or set create_database = 1"), "{err}");
        assert_eq!((load(&st.written), load(&st.failed)), (0, 0), "{}", pipeline::show(st));
        // The admin makes it again: the M are replayed from the spool.
        influxql(
            &url,
            "",
            &if what == Dropped::Database { format!("CREATE DATABASE \"{db}\"") } else { make_rp },
            None,
        );
        pipeline::wait_for(&p, "M replayed", |st| load(&st.replayed) == m);
        assert_eq!(load(&st.schema_recreated), 0);
    }
    p.shutdown(Duration::from_secs(10));
    assert_eq!((load(&st.failed), load(&st.rejected)), (0, 0), "{}", pipeline::show(st));
    for b in &first {
        assert_eq!(sink.write(b).unwrap().written, b.len());
    }
    assert_points(&url, &db, &from, &evs, &config);
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), None);
}

#[test]
fn influxdb1_a_dropped_database_is_named_and_its_events_wait_in_the_spool() {
    dropped_case("influxdb1_a_dropped_database_is_named_and_its_events_wait_in_the_spool", Dropped::Database, false);
}

#[test]
fn influxdb1_a_dropped_retention_policy_is_named_and_its_events_wait_in_the_spool() {
    dropped_case(
        "influxdb1_a_dropped_retention_policy_is_named_and_its_events_wait_in_the_spool",
        Dropped::RetentionPolicy,
        false,
    );
}

#[test]
fn influxdb1_create_database_makes_a_dropped_database_again() {
    dropped_case("influxdb1_create_database_makes_a_dropped_database_again", Dropped::Database, true);
}

#[test]
fn influxdb1_create_database_makes_a_dropped_retention_policy_again() {
    dropped_case("influxdb1_create_database_makes_a_dropped_retention_policy_again", Dropped::RetentionPolicy, true);
}

#[test]
fn influxdb1_with_authentication_only_an_admin_makes_a_dropped_database_again() {
    let test = "influxdb1_with_authentication_only_an_admin_makes_a_dropped_database_again";
    let Some((url, admin, admin_pw)) = auth_server(test) else { return };
    let auth = Some((admin.as_str(), admin_pw.as_str()));
    let db = unique("tsdb_authdrop");
    let user = unique("tsdb_writer");
    let user_pw = format!("{user}-pw");
    create_db(&url, &db, auth);
    influxql(&url, "", &format!("CREATE USER \"{user}\" WITH PASSWORD '{user_pw}'"), auth);
    let grant = format!("GRANT WRITE ON \"{db}\" TO \"{user}\"");
    influxql(&url, "", &grant, auth);
    let evs = nasty_events(1_700_000_800_000_000_000);
    let bs = batches(&evs, 47, 1000);
    let writer_config =
        influx1_config(&url, &db, &[("username", &user), ("password", &user_pw), ("create_database", "1")]);
    let mut writer = InfluxSink::new(&writer_config).unwrap();
    assert_eq!(writer.write(&bs[0]).unwrap().written, bs[0].len());
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), auth);
    // A user that is not an admin may not create it.
    match writer.write(&bs[0]) {
        Err(SinkError::Config(m)) => {
            let want = format!(
                "database: database \"{db}\" does not exist and could not be created by user \"{user}\" (it needs \
                 admin rights for that) (create_database = 1; HTTP 403: "
            );
            assert!(m.starts_with(&want) && m.ends_with("); create it as an InfluxDB admin"), "{m}");
            assert!(!m.contains(&user_pw), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(writer.take_recreated().is_empty());
    // An admin with create_database makes it again, and writes.
    let admin_config =
        influx1_config(&url, &db, &[("username", &admin), ("password", &admin_pw), ("create_database", "1")]);
    let mut sink = InfluxSink::new(&admin_config).unwrap();
    assert_eq!(sink.write(&bs[0]).unwrap().written, bs[0].len());
    assert_eq!(sink.take_recreated().len(), 1);
    // Dropping the database dropped the user's grant on it.
    match writer.write(&bs[0]) {
        Err(SinkError::Config(m)) => {
            assert!(m.starts_with(&format!("username: user \"{user}\" may not write to database \"{db}\"")), "{m}");
            assert!(m.contains("dropping a database drops its grants"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    influxql(&url, "", &grant, auth);
    assert_eq!(writer.write(&bs[0]).unwrap().written, bs[0].len());
    let n = rows(&influxql(&url, &db, "SELECT * FROM moodle_events", auth)).len();
    assert_eq!(n, evs.len(), "written three times, stored once");
    influxql(&url, "", &format!("DROP DATABASE \"{db}\""), auth);
    influxql(&url, "", &format!("DROP USER \"{user}\""), auth);
}

// ---------------------------------------------------------------- VictoriaMetrics

fn vm_invalid_rows(url: &str) -> u64 {
    let text = http().get(format!("{url}/metrics")).send().unwrap().text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("vm_rows_invalid_total{type=\"influx\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn victoriametrics_v2_write_with_gzip_keeps_tags_and_integers() {
    let Some(url) = server("TSDB_TEST_VM_URL", "victoriametrics_v2_write_with_gzip_keeps_tags_and_integers") else {
        return;
    };
    let m = unique("moodle_vm");
    let config = Config::from_pairs([
        ("backend", "influxdb2"),
        ("url", url.as_str()),
        ("org", "ignored-org"),
        ("bucket", "ignored-bucket"),
        ("token", "ignored-token"),
        ("gzip", "1"),
        ("measurement", m.as_str()),
    ])
    .unwrap();
    let invalid_before = vm_invalid_rows(&url);
    // VictoriaMetrics keeps milliseconds and float64 values: distinct milliseconds, integers < 2^53.
    let nasty = nasty_strings();
    let evs: Vec<Ev> = (0..nasty.len() * 2)
        .map(|i| {
            let mut e = Ev::new(1_700_000_600_000_000_000 + i as i64 * 1_000_000)
                .int(IntField::TimeCreated, 1_700_000_600)
                .int(IntField::UserId, 1_000_000 + i as i64)
                .int(IntField::ContextId, -(i as i64))
                .int(IntField::ObjectId, (1 << 52) + i as i64)
                .int(IntField::CourseId, 3 + (i % 4) as i64)
                .int(IntField::EduLevel, 2)
                .int(IntField::RelatedUserId, 42)
                .str(StrField::Ip, b"ignored: strings are stored as 0");
            for (k, t) in TAGS.iter().enumerate() {
                let mut v = nasty[(i + 5 * k) % nasty.len()].clone();
                v.truncate(200);
                e = e.str(*t, &v);
            }
            e
        })
        .collect();
    let mut sink = InfluxSink::new(&config).unwrap();
    for b in batches(&evs, 47, 20) {
        assert_eq!(sink.write(&b).unwrap().written, b.len());
    }
    assert_eq!(sink.dialect(), Some(Dialect::Portable), "VictoriaMetrics is not InfluxDB");
    http().get(format!("{url}/internal/force_flush")).send().unwrap();
    let export = http()
        .post(format!("{url}/api/v1/export"))
        .form(&[("match[]", format!("{{__name__=~\"{m}_.*\"}}"))])
        .send()
        .unwrap()
        .text()
        .unwrap();
    // (timestamp ms, metric) → (labels, value)
    let mut got: HashMap<(i64, String), (BTreeMap<String, String>, f64)> = HashMap::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut labels: BTreeMap<String, String> = v["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let name = labels.remove("__name__").unwrap();
        for (ts, val) in v["timestamps"].as_array().unwrap().iter().zip(v["values"].as_array().unwrap()) {
            got.insert((ts.as_i64().unwrap(), name.clone()), (labels.clone(), val.as_f64().unwrap()));
        }
    }
    let tags = config.tags();
    let enc = Encoder::with_dialect(&m, &tags, Dialect::Portable);
    let mut errors = Vec::new();
    for e in &evs {
        let ms = e.time_ns / 1_000_000;
        let w = want(e, &tags, Dialect::Portable, enc.tag_cap());
        let want_labels: BTreeMap<String, String> = w
            .iter()
            .filter(|(c, _)| tags.contains(c))
            .filter_map(|(c, w)| match w {
                Want::Str(s) => Some((c.to_string(), s.clone())),
                _ => None,
            })
            .collect();
        for f in [IntField::UserId, IntField::ContextId, IntField::ObjectId, IntField::RelatedUserId] {
            match got.get(&(ms, format!("{m}_{}", f.name()))) {
                None => errors.push(format!("{ms}: {} missing", f.name())),
                Some((labels, value)) => {
                    if *value != e.ints[f as usize].unwrap() as f64 {
                        errors.push(format!("{ms}: {} = {value}", f.name()));
                    }
                    if *labels != want_labels {
                        errors.push(format!("{ms}: labels {labels:?} want {want_labels:?}"));
                    }
                }
            }
        }
        if !got.contains_key(&(ms, format!("{m}_ip"))) {
            errors.push(format!("{ms}: ip (a string, stored as 0) missing"));
        }
    }
    assert!(errors.is_empty(), "{} differences:\n{}", errors.len(), errors.join("\n"));
    // Exactly these series: 4 integer fields + ip, nothing injected.
    let names: BTreeSet<&String> = got.keys().map(|(_, n)| n).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(got.len(), evs.len() * 5);
    assert_eq!(vm_invalid_rows(&url), invalid_before, "no line refused");
}
