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
