//! Line protocol encoder speed on one core, for Moodle-shaped events (target: at least 1 M events/s).
//! A measurement, not a check: it prints the number and asserts nothing about time.
//!
//! cargo test --release --no-default-features --test influx_speed -- --ignored --nocapture

use std::time::Instant;
use tsdb::config::Config;
use tsdb::event::{EventId, IntField, StrField};
use tsdb::lineproto::{Dialect, Encoder};
use tsdb::record::RecordWriter;
use tsdb::sink::Batch;

/// `n` events as Moodle logs them: a module view, a forum post, a grade update, a login.
fn moodle_batch(n: u64) -> Batch {
    type Kind = (&'static [u8], &'static [u8], &'static [u8], &'static [u8], &'static [u8], &'static [u8]);
    let kinds: [Kind; 4] = [
        (b"\\mod_forum\\event\\course_module_viewed", b"mod_forum", b"viewed", b"course_module", b"forum", b"r"),
        (b"\\mod_forum\\event\\post_created", b"mod_forum", b"created", b"post", b"forum_posts", b"c"),
        (b"\\core\\event\\user_graded", b"core", b"graded", b"user", b"grade_grades", b"u"),
        (b"\\core\\event\\user_loggedin", b"core", b"loggedin", b"user", b"user", b"r"),
    ];
    let mut buf = Vec::with_capacity(n as usize * 400);
    for seq in 1..=n {
        let (name, comp, action, target, table, crud) = kinds[(seq % 4) as usize];
        let mut w = RecordWriter::begin(&mut buf);
        w.put_str(StrField::EventName, name, 1 << 16);
        w.put_str(StrField::Component, comp, 1 << 16);
        w.put_str(StrField::Action, action, 1 << 16);
        w.put_str(StrField::Target, target, 1 << 16);
        w.put_str(StrField::ObjectTable, table, 1 << 16);
        w.put_str(StrField::Crud, crud, 1 << 16);
        w.put_str(StrField::Origin, b"web", 1 << 16);
        w.put_str(StrField::Ip, b"192.168.104.27", 1 << 16);
        let other =
            format!("{{\"forumid\":\"{}\",\"discussionid\":{},\"forumtype\":\"general\"}}", seq % 97, seq % 1009);
        w.put_str(StrField::Other, other.as_bytes(), 1 << 20);
        w.set_int(IntField::ObjectId, (seq * 7) as i64);
        w.set_int(IntField::EduLevel, 2);
        w.set_int(IntField::ContextId, 1000 + (seq % 5000) as i64);
        w.set_int(IntField::ContextLevel, 70);
        w.set_int(IntField::ContextInstanceId, 300 + (seq % 400) as i64);
        w.set_int(IntField::UserId, 20_000 + (seq % 30_000) as i64);
        w.set_int(IntField::CourseId, 10 + (seq % 200) as i64);
        w.set_int(IntField::Anonymous, 0);
        w.set_int(IntField::TimeCreated, 1_700_000_000 + (seq / 1000) as i64);
        w.finish(EventId { producer: 1, seq }, 1_700_000_000_000_000_000 + seq as i64 * 1000);
    }
    Batch::new(buf).unwrap()
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture in release mode"]
fn encoder_events_per_second() {
    let batch = moodle_batch(200_000);
    let config = Config::from_pairs([("backend", "influxdb1")]).unwrap();
    for (name, dialect) in [("InfluxDB 1.x/2.x", Dialect::Go), ("InfluxDB 3", Dialect::Iox)] {
        let enc = Encoder::with_dialect(config.get("measurement"), &config.tags(), dialect);
        let mut out = Vec::with_capacity(batch.len() * 420);
        let mut best = 0.0f64;
        let mut bytes = 0;
        for _ in 0..5 {
            out.clear();
            let t = Instant::now();
            for e in batch.events() {
                enc.encode(&e, &mut out).unwrap();
            }
            let rate = batch.len() as f64 / t.elapsed().as_secs_f64();
            best = best.max(rate);
            bytes = out.len();
        }
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), batch.len());
        let t = Instant::now();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &out).unwrap();
        let packed = gz.finish().unwrap();
        let gz_rate = batch.len() as f64 / t.elapsed().as_secs_f64();
        println!(
            "encoder ({name}): {:.2} M events/s on one core ({} bytes/line, record decoding included); \
             gzip level 1 after it: {:.2} M events/s, {:.1}x smaller",
            best / 1e6,
            bytes / batch.len(),
            gz_rate / 1e6,
            bytes as f64 / packed.len() as f64
        );
    }
}

/// The sink alone (no PHP, no queue) against the server's ceiling: the identical gzip payloads posted
/// by curl (one process, one keep-alive connection) and by a bare reqwest client. Three rounds on fresh
/// databases; prints each round and asserts counts only. Needs TSDB_TEST_INFLUX_URL.
#[test]
#[ignore = "measurement against a real InfluxDB; run with --ignored --nocapture in release mode"]
fn sink_against_curl_ceiling() {
    use std::io::Write as _;
    use tsdb::sink::influx::InfluxSink;
    use tsdb::sink::Sink;
    let Ok(url) = std::env::var("TSDB_TEST_INFLUX_URL") else {
        let _ = writeln!(std::io::stderr(), "SKIPPED: sink_against_curl_ceiling: TSDB_TEST_INFLUX_URL is not set");
        return;
    };
    let per_batch = 5000u64;
    let rounds_batches = 20u64;
    let http = reqwest::blocking::Client::new();
    let q = |q: &str| http.post(format!("{url}/query")).form(&[("q", q)]).send().unwrap().text().unwrap();
    // Consecutive batches of one producer, as the pipeline makes them.
    let all = moodle_batch(per_batch * rounds_batches);
    let mut batches = Vec::new();
    let mut rest = all.bytes();
    for _ in 0..rounds_batches {
        let mut at = 0;
        for _ in 0..per_batch {
            at += tsdb::record::read(&rest[at..]).unwrap().bytes.len();
        }
        batches.push(Batch::new(rest[..at].to_vec()).unwrap());
        rest = &rest[at..];
    }
    let n = (per_batch * rounds_batches) as f64;
    let enc = Encoder::with_dialect("moodle_events", &Config::defaults().tags(), Dialect::Go);
    let files: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| {
            let mut body = Vec::new();
            for e in b.events() {
                enc.encode(&e, &mut body).unwrap();
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &body).unwrap();
            gz.finish().unwrap()
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("tsdb_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("b{i}.gz")), f).unwrap();
    }
    for round in 0..3 {
        let db = |k: &str| format!("bench_{k}_{}_{round}", std::process::id());
        for k in ["curl", "sink", "raw"] {
            q(&format!("CREATE DATABASE {}", db(k)));
        }
        let mut args: Vec<String> = Vec::new();
        for i in 0..files.len() {
            if i > 0 {
                args.push("--next".into());
            }
            for a in ["-s", "-o", "/dev/null", "-H", "Content-Encoding: gzip", "--data-binary"] {
                args.push(a.into());
            }
            args.push(format!("@{}", dir.join(format!("b{i}.gz")).display()));
            args.push(format!("{url}/write?db={}&precision=ns", db("curl")));
        }
        let t = Instant::now();
        assert!(std::process::Command::new("curl").args(&args).status().unwrap().success());
        let curl = n / t.elapsed().as_secs_f64();

        let config =
            Config::from_pairs([("backend", "influxdb1"), ("url", url.as_str()), ("database", db("sink").as_str())])
                .unwrap();
        let mut sink = InfluxSink::new(&config).unwrap();
        let t = Instant::now();
        // As the pipeline does: each batch is written knowing the next, encoded while the previous is in flight.
        let written: usize =
            batches.iter().enumerate().map(|(i, b)| sink.write_ahead(b, batches.get(i + 1)).unwrap().written).sum();
        let ours = n / t.elapsed().as_secs_f64();
        assert_eq!(written as f64, n);

        let client = reqwest::blocking::Client::builder().tcp_nodelay(true).build().unwrap();
        let t = Instant::now();
        for f in &files {
            let r = client
                .post(format!("{url}/write?db={}&precision=ns", db("raw")))
                .header("Content-Encoding", "gzip")
                .body(f.clone())
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 204);
        }
        let raw = n / t.elapsed().as_secs_f64();
        println!(
            "round {round}: curl {curl:.0}/s, sink {ours:.0}/s (ratio {:.3}), bare reqwest {raw:.0}/s (ratio {:.3})",
            ours / curl,
            raw / curl
        );
        for k in ["curl", "sink", "raw"] {
            q(&format!("DROP DATABASE {}", db(k)));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
