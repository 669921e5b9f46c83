//! Line protocol and HTTP injection: what an attacker who controls an event's strings can do to what the
//! InfluxDB sinks send. Each case is read back with the independent line-protocol reader of the fuzz
//! crate (`fuzz/src/lp.rs`: InfluxDB 1.x/2.x's `scanLine`/`scanKey`, InfluxDB 3's parser,
//! VictoriaMetrics' line split) and must give exactly one point with exactly the event's tags and
//! fields (modulo the documented replacements). tests/influx.rs writes the same kinds of values to a
//! real InfluxDB 1.6.7 and reads them back.
//!
//! `cargo test --no-default-features --test security_injection`

#[path = "../fuzz/src/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../fuzz/src/lp.rs"]
#[allow(dead_code)]
mod lp;
#[path = "../fuzz/src/oracles.rs"]
#[allow(dead_code)]
mod oracles;

use tsdb::config::{Config, TAGGABLE};
use tsdb::event::{IntField, StrField, STR_FIELDS};
use tsdb::lineproto::Dialect;
use tsdb::sink::influx::InfluxSink;

fn attacker_strings() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"x,evil=1 f=2i 0\nm2 g=3i 0"[..],
        b"\"\nm3 f=1i 0\n\"",
        b"a\\\" b=\"c",
        b"p\\ q",
        b"p\\\\\\ q\\,r\\=s",
        b"trailing\\",
        b"\\\\\\",
        b"#comment\nmoodle_events,eventname=x userid=1i 0",
        b"'; DROP TABLE x; --",
        b"\t\r\n\x00\x01\x1b[31m",
        b"\xff\xfe invalid \xc3",
        "\u{202e}evil\u{200b}".as_bytes(),
        b"=",
        b",",
        b" ",
        b"\\",
        b"",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    v.push(b"A\\,".repeat(30_000)); // over 64 KiB, escapes everywhere
    v.push("é\n".repeat(30_000).into_bytes());
    v
}

fn check(dialect: Dialect, tags: &[&str], strs: &[(StrField, &[u8])], newline_in_other: bool) {
    let mut fields: Vec<(StrField, &[u8])> = strs.to_vec();
    if newline_in_other {
        fields.push((StrField::Other, b"{\"subject\":\"line1\nline2\"}"));
    }
    let e = oracles::str_event(
        &fields,
        &[(IntField::CourseId, 12), (IntField::UserId, -34), (IntField::TimeCreated, 1_700_000_000)],
        1_700_000_000_123_456_789,
    );
    let data = oracles::encode_lp_case(dialect, 0, tags, &e);
    if let Err(why) = oracles::lineproto_verdict(&data) {
        panic!("{dialect:?}, tags {tags:?}: {why}\nevent: {:?}", e);
    }
}

#[test]
fn attacker_strings_cannot_add_points_tags_or_fields() {
    let default_tags = ["eventname", "component", "action", "target", "crud", "edulevel", "contextlevel", "origin"];
    for d in [Dialect::Go, Dialect::Iox, Dialect::Portable] {
        for tags in [&default_tags[..], TAGGABLE, &[][..]] {
            for s in attacker_strings() {
                // The same hostile value in every string column at once (tags and fields).
                let all: Vec<(StrField, &[u8])> = STR_FIELDS.iter().map(|&f| (f, s.as_slice())).collect();
                check(d, tags, &all, false);
                // In the tags only, with a newline inside a string field of the same line (the case
                // that confuses InfluxDB 1.x's line splitter).
                let tag_only: Vec<(StrField, &[u8])> =
                    STR_FIELDS.iter().filter(|f| tags.contains(&f.name())).map(|&f| (f, s.as_slice())).collect();
                check(d, tags, &tag_only, true);
            }
        }
    }
}

#[test]
fn pairs_of_attacker_strings_in_adjacent_tags() {
    let strings = attacker_strings();
    let short: Vec<&Vec<u8>> = strings.iter().filter(|s| s.len() < 100).collect();
    for d in [Dialect::Go, Dialect::Iox] {
        for a in &short {
            for b in &short {
                check(
                    d,
                    &["eventname", "component", "origin"],
                    &[(StrField::EventName, a), (StrField::Component, b), (StrField::Origin, a)],
                    true,
                );
            }
        }
    }
}

#[test]
fn settings_cannot_inject_into_the_request() {
    // Names that go into the URL are encoded as query values; none can add a parameter.
    let c = Config::from_pairs([
        ("backend", "influxdb1"),
        ("database", "db&u=admin&p=x#frag"),
        ("retention_policy", "rp&precision=s"),
        ("username", "u"),
        ("password", "p"),
    ])
    .unwrap();
    let s = InfluxSink::new(&c).unwrap();
    assert_eq!(
        s.write_url(),
        "http://127.0.0.1:8086/write?db=db%26u%3Dadmin%26p%3Dx%23frag&rp=rp%26precision%3Ds&precision=ns"
    );
    // Credentials only travel in headers: a URL with user info is refused, and so is a token that
    // would break the Authorization header.
    let c = Config::from_pairs([("backend", "influxdb1"), ("url", "http://admin:secret@influx:8086")]).unwrap();
    assert!(InfluxSink::new(&c).unwrap_err().starts_with("url: must not contain credentials"));
    for token in ["t\r\nX-Evil: 1", "t\n", "t\0"] {
        let e = Config::from_pairs([("backend", "influxdb2"), ("org", "o"), ("token", token)]).unwrap_err();
        assert!(e.to_string().starts_with("token: must not contain NUL or line breaks"), "{e}");
        assert!(!e.to_string().contains("X-Evil"));
    }
    let c = Config::from_pairs([("backend", "influxdb2"), ("org", "o"), ("token", "t\u{1}x")]).unwrap();
    assert!(InfluxSink::new(&c).err().unwrap_or_default().starts_with("token:"));
    // A measurement cannot smuggle a tag or start a comment.
    for m in ["m,evil=1", "#m", "_m", "m\\", "m\tx"] {
        let c = Config::from_pairs([("backend", "influxdb1"), ("measurement", m)]);
        let sink = c.map_err(|e| e.to_string()).and_then(|c| InfluxSink::new(&c).map(|_| ()));
        if m == "m,evil=1" {
            // Allowed: the comma is escaped, it is part of the name (checked by the fuzz target).
            assert!(sink.is_ok());
        } else {
            assert!(sink.unwrap_err().starts_with("measurement:"), "{m}");
        }
    }
}
