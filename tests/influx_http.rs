//! The InfluxDB sink against a small recording HTTP listener (std::net, one thread per connection):
//! the request shape of the v1, v2 and v3 write APIs (path, query, headers, gzip body, credentials),
//! and what the sink and the pipeline do with each kind of reply. No InfluxDB 2 or 3 server exists on
//! the build machines, so this listener is the only stand-in; InfluxDB 1.6.7 and VictoriaMetrics are
//! tested for real in tests/influx.rs. No assertion depends on timing.

use flate2::read::GzDecoder;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tsdb::config::Config;
use tsdb::event::{EventId, IntField, StrField};
use tsdb::lineproto::{Dialect, Encoder};
use tsdb::pipeline::Pipeline;
use tsdb::record::RecordWriter;
use tsdb::sink::influx::InfluxSink;
use tsdb::sink::{Batch, Sink, SinkError, Written};

// ---------------------------------------------------------------- the recording listener

#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// Header names in lower case.
    headers: HashMap<String, String>,
    /// The body as sent (gzip-compressed when it was).
    raw: Vec<u8>,
    /// The body, decompressed.
    body: Vec<u8>,
    /// `host:port` of a request in absolute form: what a client sends to a web proxy.
    proxied_to: Option<String>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.body).lines().map(str::to_string).collect()
    }

    fn is_write(&self) -> bool {
        self.method == "POST"
    }
}

enum Answer {
    Reply(u16, Vec<(&'static str, String)>, String),
    /// Read the request, never answer (until the test process ends or 60 s pass).
    Hang,
}

fn reply(code: u16, body: &str) -> Answer {
    Answer::Reply(code, Vec::new(), body.to_string())
}

struct Listener {
    url: String,
    log: Arc<Mutex<Vec<(Req, u16)>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Listener {
    /// Requests seen, with the status answered (0: not answered).
    fn requests(&self) -> Vec<(Req, u16)> {
        self.log.lock().unwrap().clone()
    }

    fn writes(&self) -> Vec<(Req, u16)> {
        self.requests().into_iter().filter(|(r, _)| r.is_write()).collect()
    }

    /// The lines of every write request answered with 2xx.
    fn accepted_lines(&self) -> Vec<String> {
        self.writes().into_iter().filter(|(_, s)| (200..300).contains(s)).flat_map(|(r, _)| r.lines()).collect()
    }
}

/// `/ping` headers of the server the listener pretends to be.
#[derive(Clone, Copy)]
enum Pretend {
    Influx1,
    Influx2,
    Influx3,
}

fn ping_answer(p: Pretend) -> Answer {
    let (v, b) = match p {
        Pretend::Influx1 => ("1.8.10", "OSS"),
        Pretend::Influx2 => ("v2.7.4", "OSS"),
        Pretend::Influx3 => ("3.0.1", "Core"),
    };
    Answer::Reply(204, vec![("X-Influxdb-Version", v.into()), ("X-Influxdb-Build", b.into())], String::new())
}

/// Starts a listener on 127.0.0.1:0. `/ping` answers as `pretend`; every other request gets
/// `handler(request, number of earlier write requests)`.
fn listen(pretend: Pretend, handler: impl Fn(&Req, usize) -> Answer + Send + Sync + 'static) -> Listener {
    let sock = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", sock.local_addr().unwrap());
    let log: Arc<Mutex<Vec<(Req, u16)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let handler = Arc::new(handler);
    let writes = Arc::new(AtomicUsize::new(0));
    let (log2, stop2) = (log.clone(), stop.clone());
    std::thread::spawn(move || {
        for conn in sock.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (log, stop, handler, writes) = (log2.clone(), stop2.clone(), handler.clone(), writes.clone());
            std::thread::spawn(move || serve(conn, pretend, &*handler, &log, &stop, &writes));
        }
    });
    Listener { url, log, stop }
}

fn serve(
    conn: TcpStream,
    pretend: Pretend,
    handler: &(dyn Fn(&Req, usize) -> Answer + Send + Sync),
    log: &Mutex<Vec<(Req, u16)>>,
    stop: &AtomicBool,
    writes: &AtomicUsize,
) {
    let mut out = conn.try_clone().unwrap();
    let mut rd = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if rd.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut raw = vec![0u8; len];
        if rd.read_exact(&mut raw).is_err() {
            return;
        }
        let body = if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut d = Vec::new();
            GzDecoder::new(&raw[..]).read_to_end(&mut d).unwrap();
            d
        } else {
            raw.clone()
        };
        let absolute = target.starts_with("http://");
        let parsed = reqwest::Url::parse(&if absolute { target.clone() } else { format!("http://x{target}") }).unwrap();
        let proxied_to = absolute
            .then(|| format!("{}:{}", parsed.host_str().unwrap_or(""), parsed.port_or_known_default().unwrap_or(0)));
        let req = Req {
            method,
            path: parsed.path().to_string(),
            query: parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            headers,
            raw,
            body,
            proxied_to,
        };
        let answer = if req.path == "/ping" {
            ping_answer(pretend)
        } else {
            let n = if req.is_write() { writes.fetch_add(1, Ordering::SeqCst) } else { 0 };
            handler(&req, n)
        };
        let at = {
            let mut l = log.lock().unwrap();
            l.push((req, 0));
            l.len() - 1
        };
        match answer {
            Answer::Hang => {
                let until = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Answer::Reply(code, hdrs, body) => {
                log.lock().unwrap()[at].1 = code;
                let mut resp = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\n", body.len());
                if !body.is_empty() {
                    resp.push_str("Content-Type: application/json\r\n");
                }
                for (k, v) in hdrs {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&body);
                if out.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- events

/// Records of events `first..first+n` of one producer; event `i` has userid `i`, ip "10.0.0.{i}",
/// and `ip = "POISON"` when `poison == Some(i)`.
fn records(first: u64, n: u64, poison: Option<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    for seq in first..first + n {
        let mut w = RecordWriter::begin(&mut buf);
        w.put_str(StrField::EventName, b"\\core\\event\\course_viewed", 1 << 20);
        w.put_str(StrField::Component, b"core", 1 << 20);
        w.put_str(StrField::Action, b"viewed", 1 << 20);
        w.put_str(StrField::Target, b"course", 1 << 20);
        w.put_str(StrField::Crud, b"r", 1 << 20);
        w.put_str(StrField::Other, b"{\"a\\\\b\":\"x y\"}", 1 << 20);
        let ip = if poison == Some(seq) { "POISON".to_string() } else { format!("10.0.0.{seq}") };
        w.put_str(StrField::Ip, ip.as_bytes(), 1 << 20);
        w.set_int(IntField::CourseId, 7);
        w.set_int(IntField::UserId, seq as i64);
        w.set_int(IntField::TimeCreated, 1_700_000_000);
        w.finish(EventId { producer: 77, seq }, 1_700_000_000_000_000_000 + seq as i64);
    }
    buf
}

fn batch(first: u64, n: u64) -> Batch {
    Batch::new(records(first, n, None)).unwrap()
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs.iter().copied()).unwrap()
}

fn sink(pairs: &[(&str, &str)]) -> InfluxSink {
    InfluxSink::new(&config(pairs)).unwrap()
}

/// The userids of accepted lines (each event's `userid=Ni`).
fn userids(lines: &[String]) -> Vec<i64> {
    let mut ids: Vec<i64> = lines
        .iter()
        .map(|l| {
            let at = l.find("userid=").unwrap() + 7;
            l[at..].split('i').next().unwrap().parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Runs `events` through a pipeline to `url`, waits until nothing is pending (bounded), shuts down.
fn through_pipeline(pairs: &[(&str, &str)], n: u64, poison: Option<u64>) -> (u64, u64, u64, String) {
    let p = Pipeline::start(config(pairs)).unwrap();
    for i in 0..n {
        let ok = p
            .log(|w: &mut RecordWriter<'_>, _c: &Config| {
                w.put_str(StrField::EventName, b"\\core\\event\\course_viewed", 1 << 20);
                let ip = if poison == Some(i) { "POISON".to_string() } else { format!("10.0.0.{i}") };
                w.put_str(StrField::Ip, ip.as_bytes(), 1 << 20);
                w.set_int(IntField::CourseId, 7);
                w.set_int(IntField::UserId, i as i64);
                w.set_int(IntField::TimeCreated, 1_700_000_000);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(ok);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while p.flush(Duration::from_secs(5)) > 0 && Instant::now() < deadline {}
    p.shutdown(Duration::from_secs(5));
    let s = p.stats();
    (
        s.written.load(Ordering::SeqCst),
        s.rejected.load(Ordering::SeqCst),
        s.failed.load(Ordering::SeqCst),
        s.last_error(),
    )
}

// ---------------------------------------------------------------- request shape

#[test]
fn v2_request_shape() {
    let l = listen(Pretend::Influx2, |_, _| reply(204, ""));
    let mut s = sink(&[
        ("backend", "influxdb2"),
        ("url", &l.url),
        ("org", "my org"),
        ("bucket", "b/1&x"),
        ("token", "sekret-token-1"),
        ("gzip", "1"),
    ]);
    let b = batch(1, 3);
    assert_eq!(s.write(&b).unwrap(), Written { written: 3, rejected: 0, error: None, truncated: 0 });
    assert_eq!(s.dialect(), Some(Dialect::Go));
    let reqs = l.requests();
    assert_eq!(reqs.len(), 2, "one /ping, one write");
    let (ping, w) = (&reqs[0].0, &reqs[1].0);
    assert_eq!((ping.method.as_str(), ping.path.as_str()), ("GET", "/ping"));
    assert_eq!(ping.header("authorization"), Some("Token sekret-token-1"));
    assert_eq!(w.method, "POST");
    assert_eq!(w.path, "/api/v2/write");
    assert_eq!(w.param("org"), Some("my org"));
    assert_eq!(w.param("bucket"), Some("b/1&x"));
    assert_eq!(w.param("precision"), Some("ns"));
    assert_eq!(w.query.len(), 3);
    assert_eq!(w.header("authorization"), Some("Token sekret-token-1"));
    assert_eq!(w.header("content-encoding"), Some("gzip"));
    assert_eq!(w.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(&w.raw[..2], &[0x1f, 0x8b], "gzip magic");
    let mut want = Vec::new();
    let enc = Encoder::with_dialect("moodle_events", &config(&[]).tags(), Dialect::Go);
    for e in b.events() {
        enc.encode(&e, &mut want).unwrap();
    }
    assert_eq!(String::from_utf8_lossy(&w.body), String::from_utf8_lossy(&want));
    assert_eq!(w.lines().len(), 3);
    assert!(w.lines()[0].starts_with(
        "moodle_events,action=viewed,component=core,courseid=7,crud=r,eventname=\\core\\event\\course_viewed,target=course "
    ));
    // The same keep-alive client serves the next batch without a second /ping.
    s.write(&batch(4, 2)).unwrap();
    assert_eq!(l.requests().iter().filter(|(r, _)| r.path == "/ping").count(), 1);
}

#[test]
fn v3_request_shape() {
    let l = listen(Pretend::Influx3, |_, _| reply(204, ""));
    let mut s =
        sink(&[("backend", "influxdb3"), ("url", &l.url), ("database", "db 3"), ("token", "apiv3_tok"), ("gzip", "0")]);
    let b = batch(1, 4);
    assert_eq!(s.write(&b).unwrap().written, 4);
    assert_eq!(s.dialect(), Some(Dialect::Iox));
    let w = &l.writes()[0].0;
    assert_eq!(w.path, "/api/v3/write_lp");
    assert_eq!(w.param("db"), Some("db 3"));
    assert_eq!(w.param("precision"), Some("nanosecond"));
    assert_eq!(w.param("accept_partial"), Some("true"));
    assert_eq!(w.header("authorization"), Some("Token apiv3_tok"));
    assert_eq!(w.header("content-encoding"), None);
    assert_eq!(w.raw, w.body);
    assert_eq!(w.lines().len(), 4);
    // InfluxDB 3 takes `\\` in a tag value as one backslash: the eventname's backslashes are doubled.
    assert!(w.lines()[0].contains(",eventname=\\\\core\\\\event\\\\course_viewed,"), "{}", w.lines()[0]);
    assert!(w.lines()[0].ends_with(" 1700000000000000001"));
}

#[test]
fn v1_request_shape_with_basic_auth() {
    let l = listen(Pretend::Influx1, |_, _| reply(204, ""));
    let mut s = sink(&[
        ("backend", "influxdb1"),
        ("url", &l.url),
        ("database", "moodle"),
        ("retention_policy", "one year"),
        ("username", "writer"),
        ("password", "pa:ss wörd"),
    ]);
    assert_eq!(s.write(&batch(1, 2)).unwrap().written, 2);
    let w = &l.writes()[0].0;
    assert_eq!(w.path, "/write");
    assert_eq!(
        w.query,
        vec![("db".into(), "moodle".into()), ("rp".into(), "one year".into()), ("precision".into(), "ns".into())]
    );
    // Basic base64("writer:pa:ss wörd"), never u=/p= in the URL.
    assert_eq!(w.header("authorization"), Some("Basic d3JpdGVyOnBhOnNzIHfDtnJk"));
    assert!(w.param("p").is_none() && w.param("u").is_none());
    // gzip is `auto` by default: off for a server on loopback (no network bytes to save).
    assert_eq!(w.header("content-encoding"), None, "no gzip to a loopback server by default");
    assert_eq!(w.raw, w.body);
}

#[test]
fn large_batches_are_split_into_requests_of_max_batch_bytes() {
    let l = listen(Pretend::Influx2, |_, _| reply(204, ""));
    let mut s = sink(&[
        ("backend", "influxdb2"),
        ("url", &l.url),
        ("org", "o"),
        ("token", "tok-xyz"),
        ("max_batch_bytes", "2048"),
    ]);
    let w = s.write(&batch(1, 40)).unwrap();
    assert_eq!(w.written, 40);
    let writes = l.writes();
    assert!(writes.len() > 1, "{} requests", writes.len());
    for (r, _) in &writes {
        assert!(r.body.len() <= 2048, "{}", r.body.len());
    }
    assert_eq!(userids(&l.accepted_lines()), (1..=40).collect::<Vec<i64>>());
}

#[test]
fn requests_of_one_batch_go_one_at_a_time_in_order() {
    let active = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (a, m) = (active.clone(), most.clone());
    let l = listen(Pretend::Influx1, move |_, _| {
        let now = a.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        a.fetch_sub(1, Ordering::SeqCst);
        reply(204, "")
    });
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url), ("max_batch_bytes", "65536")]);
    let w = s.write(&batch(1, 5000)).unwrap();
    assert_eq!((w.written, w.rejected), (5000, 0));
    let writes = l.writes();
    assert!(writes.len() > 10, "{} requests", writes.len());
    assert!(writes.iter().all(|(r, _)| r.body.len() <= 65536));
    // In order, each event once, never two requests at the same time.
    let in_order: Vec<i64> = writes.iter().flat_map(|(r, _)| userids(&r.lines())).collect();
    assert_eq!(in_order, (1..=5000).collect::<Vec<i64>>());
    assert_eq!(most.load(Ordering::SeqCst), 1);
}

/// The requests of `write_ahead(b1, Some(b2))` then `write(b2)` carry exactly what plain writes of
/// b1 and b2 would carry, and a prepared batch that is not the one written next is not sent.
#[test]
fn a_batch_prepared_ahead_is_sent_as_it_would_have_been_and_only_for_itself() {
    let pairs = [("backend", "influxdb1"), ("database", "d")];
    let plain = listen(Pretend::Influx1, |_, _| reply(204, ""));
    let ahead = listen(Pretend::Influx1, |_, _| reply(204, ""));
    let mut s = sink(&[pairs[0], pairs[1], ("url", &plain.url)]);
    for b in [batch(1, 300), batch(301, 300), batch(601, 300)] {
        assert_eq!(s.write(&b).unwrap().written, 300);
    }
    let mut s = sink(&[pairs[0], pairs[1], ("url", &ahead.url)]);
    assert_eq!(s.write_ahead(&batch(1, 300), Some(&batch(301, 300))).unwrap().written, 300);
    assert_eq!(s.write_ahead(&batch(301, 300), Some(&batch(9001, 300))).unwrap().written, 300);
    // Not the batch prepared (9001..): encoded in its own turn.
    assert_eq!(s.write(&batch(601, 300)).unwrap().written, 300);
    let bodies = |l: &Listener| l.writes().into_iter().map(|(r, _)| r.body).collect::<Vec<_>>();
    assert_eq!(bodies(&ahead), bodies(&plain));
    assert_eq!(userids(&ahead.accepted_lines()), (1..=900).collect::<Vec<i64>>());
}

/// Through the pipeline, with many batches queued (so each is prepared while the one before is in
/// flight) and a server that answers 503 to every third request: every event arrives, once a 2xx
/// came for it, and nothing else is counted.
#[test]
fn batches_prepared_ahead_survive_retries() {
    let l = listen(Pretend::Influx1, |_, n| if n % 3 == 1 { reply(503, "busy") } else { reply(204, "") });
    let (written, rejected, failed, _) = through_pipeline(
        &[
            ("backend", "influxdb1"),
            ("url", &l.url),
            ("batch_size", "100"),
            ("flush_interval_ms", "1000"),
            ("retry_base_ms", "1"),
            ("retry_max_ms", "5"),
        ],
        2000,
        None,
    );
    assert_eq!((written, rejected, failed), (2000, 0, 0));
    assert_eq!(userids(&l.accepted_lines()), (0..2000).collect::<Vec<i64>>());
    assert!(l.writes().iter().any(|(_, s)| *s == 503));
}

// ---------------------------------------------------------------- replies

#[test]
fn v1_partial_write_counts_rejected_lines_and_does_not_resend() {
    let body = r#"{"error":"partial write: unable to parse 'moodle_events,x=1 bad': invalid field format\nunable to parse 'y': invalid field format dropped=0"}"#;
    let l = listen(Pretend::Influx1, move |_, _| reply(400, body));
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url)]);
    let w = s.write(&batch(1, 10)).unwrap();
    assert_eq!((w.written, w.rejected), (8, 2));
    assert!(w.error.as_deref().unwrap().starts_with("HTTP 400: partial write: unable to parse"), "{:?}", w.error);
    assert_eq!(l.writes().len(), 1);

    let body = r#"{"error":"partial write: field type conflict: input field \"userid\" on measurement \"moodle_events\" is type string, already exists as type integer dropped=3"}"#;
    let l = listen(Pretend::Influx1, move |_, _| reply(400, body));
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url)]);
    let w = s.write(&batch(1, 10)).unwrap();
    assert_eq!((w.written, w.rejected), (7, 3));
    assert_eq!(l.writes().len(), 1);
}

#[test]
fn v3_partial_write_counts_listed_lines() {
    let body = r#"{"error":"partial write of line protocol occurred","data":[{"original_line":"a","line_number":2,"error_message":"invalid column type for column 'userid'"},{"original_line":"b","line_number":5,"error_message":"x"}]}"#;
    let l = listen(Pretend::Influx3, move |_, _| reply(400, body));
    let mut s = sink(&[("backend", "influxdb3"), ("url", &l.url), ("token", "tok-xyz")]);
    let w = s.write(&batch(1, 6)).unwrap();
    assert_eq!((w.written, w.rejected), (4, 2));
    assert!(w.error.as_deref().unwrap().contains("line 2: invalid column type"), "{:?}", w.error);
    assert_eq!(l.writes().len(), 1);
}

#[test]
fn v2_whole_request_refusal_is_bisected_until_the_bad_event_stands_alone() {
    // InfluxDB 2.x refuses the whole request when one line is bad: the pipeline splits and resends.
    let l = listen(Pretend::Influx2, |r, _| {
        if String::from_utf8_lossy(&r.body).contains("POISON") {
            reply(400, r#"{"code":"invalid","message":"unable to parse 'x': POISON"}"#)
        } else {
            reply(204, "")
        }
    });
    let (written, rejected, failed, err) = through_pipeline(
        &[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "tok-xyz"), ("flush_interval_ms", "10")],
        50,
        Some(17),
    );
    assert_eq!((written, rejected, failed), (49, 1, 0));
    assert!(err.contains("POISON"), "{err}");
    let ids = userids(&l.accepted_lines());
    assert_eq!(ids, (0..50).filter(|&i| i != 17).collect::<Vec<i64>>(), "every good event exactly once");
}

#[test]
fn unauthorized_is_a_config_error_naming_the_setting_without_the_secret() {
    let l = listen(Pretend::Influx2, |r, _| {
        // A hostile server echoing the credentials back.
        reply(401, &format!(r#"{{"code":"unauthorized","message":"bad {}"}}"#, r.header("authorization").unwrap_or("")))
    });
    let mut s = sink(&[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "sekret-token-2")]);
    match s.write(&batch(1, 3)) {
        Err(SinkError::Config(m)) => {
            assert!(m.starts_with("token:"), "{m}");
            assert!(!m.contains("sekret-token-2"), "{m}");
        }
        other => panic!("{other:?}"),
    }

    let l = listen(Pretend::Influx1, |r, _| {
        reply(401, &format!(r#"{{"error":"authorization failed {}"}}"#, r.header("authorization").unwrap_or("")))
    });
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url), ("username", "u"), ("password", "pw-secret-3")]);
    match s.write(&batch(1, 3)) {
        Err(SinkError::Config(m)) => {
            assert!(m.starts_with("username/password:"), "{m}");
            assert!(!m.contains("pw-secret-3") && !m.contains("dTpwdy1zZWNyZXQtMw=="), "{m}");
        }
        other => panic!("{other:?}"),
    }

    let l = listen(Pretend::Influx1, |_, _| {
        reply(403, r#"{"error":"\"u\" user is not authorized to write to database \"moodle\""}"#)
    });
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url), ("username", "u"), ("password", "p")]);
    assert!(matches!(s.write(&batch(1, 1)), Err(SinkError::Config(m)) if m.starts_with("username:")));

    let l =
        listen(Pretend::Influx2, |_, _| reply(404, r#"{"code":"not found","message":"bucket \"moodle\" not found"}"#));
    let mut s = sink(&[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "tok-xyz")]);
    assert!(matches!(s.write(&batch(1, 1)), Err(SinkError::Config(m)) if m.starts_with("org/bucket:")));

    let l = listen(Pretend::Influx3, |_, _| reply(403, r#"{"error":"forbidden"}"#));
    let mut s = sink(&[("backend", "influxdb3"), ("url", &l.url), ("token", "tok-xyz")]);
    assert!(matches!(s.write(&batch(1, 1)), Err(SinkError::Config(m)) if m.starts_with("token:")));
}

#[test]
fn config_errors_reach_stats_and_are_not_retried_in_a_tight_loop() {
    let l = listen(Pretend::Influx2, |_, _| reply(401, r#"{"code":"unauthorized","message":"unauthorized access"}"#));
    let (written, _, failed, err) = through_pipeline(
        &[
            ("backend", "influxdb2"),
            ("url", &l.url),
            ("org", "o"),
            ("token", "tok-xyz"),
            ("flush_interval_ms", "10"),
            ("retry_base_ms", "1"),
            ("retry_max_ms", "200"),
            ("retry_max_elapsed_ms", "1000"),
        ],
        5,
        None,
    );
    assert_eq!((written, failed), (0, 5));
    assert!(err.contains("token:"), "{err}");
    // A config error waits retry_max_ms between attempts: a handful of requests, not thousands.
    assert!(l.writes().len() <= 10, "{} attempts", l.writes().len());
}

#[test]
fn too_large_is_split_and_every_event_arrives_exactly_once() {
    let l = listen(Pretend::Influx2, |r, _| if r.lines().len() > 4 { reply(413, "") } else { reply(204, "") });
    let (written, rejected, failed, _) = through_pipeline(
        &[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "tok-xyz"), ("flush_interval_ms", "10")],
        37,
        None,
    );
    assert_eq!((written, rejected, failed), (37, 0, 0));
    assert_eq!(userids(&l.accepted_lines()), (0..37).collect::<Vec<i64>>());
    assert!(l.writes().iter().any(|(_, s)| *s == 413));
}

#[test]
fn too_many_requests_honours_retry_after() {
    let l = listen(Pretend::Influx2, |_, _| Answer::Reply(429, vec![("Retry-After", "7".into())], String::new()));
    let mut s = sink(&[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "tok-xyz")]);
    assert!(
        matches!(s.write(&batch(1, 2)), Err(SinkError::Retry { after: Some(d), .. }) if d == Duration::from_secs(7))
    );

    // A Retry-After longer than retry_max_ms is capped to it.
    let l = listen(Pretend::Influx2, |_, _| Answer::Reply(503, vec![("Retry-After", "86400".into())], String::new()));
    let mut s = sink(&[
        ("backend", "influxdb2"),
        ("url", &l.url),
        ("org", "o"),
        ("token", "tok-xyz"),
        ("retry_max_ms", "1500"),
    ]);
    assert!(
        matches!(s.write(&batch(1, 2)), Err(SinkError::Retry { after: Some(d), .. }) if d == Duration::from_millis(1500))
    );

    // Through the pipeline: the first attempt is told to wait 1 s, the second succeeds.
    let l = listen(Pretend::Influx2, |_, n| {
        if n == 0 {
            Answer::Reply(429, vec![("Retry-After", "1".into())], String::new())
        } else {
            reply(204, "")
        }
    });
    let (written, rejected, failed, _) = through_pipeline(
        &[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "tok-xyz"), ("flush_interval_ms", "10")],
        9,
        None,
    );
    assert_eq!((written, rejected, failed), (9, 0, 0));
    assert_eq!(userids(&l.accepted_lines()), (0..9).collect::<Vec<i64>>());
    assert_eq!(l.writes().len(), 2);
}

#[test]
fn unavailable_and_server_errors_are_retried() {
    let l = listen(Pretend::Influx1, |_, _| reply(503, r#"{"error":"engine busy"}"#));
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url)]);
    assert!(matches!(s.write(&batch(1, 2)), Err(SinkError::Retry { after: None, msg }) if msg.contains("503")));

    let l = listen(Pretend::Influx1, |_, _| reply(500, r#"{"error":"timeout"}"#));
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url)]);
    assert!(matches!(s.write(&batch(1, 2)), Err(SinkError::Retry { after: None, .. })));

    // 1.x answers 500 for an unknown retention policy: that needs an admin, not a retry loop.
    let l = listen(Pretend::Influx1, |_, _| reply(500, r#"{"error":"retention policy not found: nope"}"#));
    let mut s = sink(&[("backend", "influxdb1"), ("url", &l.url), ("retention_policy", "nope")]);
    assert!(matches!(s.write(&batch(1, 2)), Err(SinkError::Config(m)) if m.starts_with("retention_policy:")));

    // 5xx then success through the pipeline.
    let l = listen(Pretend::Influx1, |_, n| if n < 2 { reply(502, "") } else { reply(204, "") });
    let (written, _, failed, _) = through_pipeline(
        &[("backend", "influxdb1"), ("url", &l.url), ("flush_interval_ms", "10"), ("retry_base_ms", "1")],
        6,
        None,
    );
    assert_eq!((written, failed), (6, 0));
    assert_eq!(userids(&l.accepted_lines()), (0..6).collect::<Vec<i64>>());
}

#[test]
fn a_server_that_never_answers_is_a_timeout_to_retry() {
    let l = listen(Pretend::Influx2, |_, _| Answer::Hang);
    let mut s =
        sink(&[("backend", "influxdb2"), ("url", &l.url), ("org", "o"), ("token", "tok-xyz"), ("timeout_ms", "300")]);
    match s.write(&batch(1, 2)) {
        Err(SinkError::Retry { msg, after: None }) => assert!(msg.contains("timeout_ms=300"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(l.writes().len(), 1);
}

#[test]
fn a_closed_port_is_a_network_error_to_retry() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut s = sink(&[("backend", "influxdb1"), ("url", &url), ("username", "u"), ("password", "pw-secret-4")]);
    match s.write(&batch(1, 1)) {
        Err(SinkError::Retry { msg, .. }) => {
            assert!(msg.contains("cannot connect"), "{msg}");
            assert!(!msg.contains("pw-secret-4"));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- proxy

/// A SOCKS5 proxy without authentication (RFC 1928, CONNECT only) on 127.0.0.1:0 that relays every connection to
/// `target` whatever address the client asks for, and records the addresses asked for.
fn socks5_proxy(target: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let sock = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("socks5://{}", sock.local_addr().unwrap());
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let asked2 = asked.clone();
    std::thread::spawn(move || {
        for conn in sock.incoming() {
            let Ok(mut c) = conn else { continue };
            let (asked, target) = (asked2.clone(), target.clone());
            std::thread::spawn(move || {
                let mut b = [0u8; 262];
                c.read_exact(&mut b[..2]).unwrap();
                let methods = b[1] as usize;
                c.read_exact(&mut b[..methods]).unwrap();
                c.write_all(&[5, 0]).unwrap();
                c.read_exact(&mut b[..4]).unwrap();
                let host = match b[3] {
                    1 => {
                        c.read_exact(&mut b[..4]).unwrap();
                        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
                    }
                    3 => {
                        c.read_exact(&mut b[..1]).unwrap();
                        let n = b[0] as usize;
                        c.read_exact(&mut b[..n]).unwrap();
                        String::from_utf8_lossy(&b[..n]).into_owned()
                    }
                    _ => return,
                };
                c.read_exact(&mut b[..2]).unwrap();
                asked.lock().unwrap().push(format!("{host}:{}", u16::from_be_bytes([b[0], b[1]])));
                c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
                let up = TcpStream::connect(target.trim_start_matches("http://")).unwrap();
                let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut c2, &mut up2));
                let (mut up, mut c) = (up, c);
                let _ = std::io::copy(&mut up, &mut c);
            });
        }
    });
    (url, asked)
}

#[test]
fn the_proxy_key_sends_every_request_through_the_proxy_and_only_then() {
    // The listener stands for an HTTP proxy; the InfluxDB host does not resolve: only the proxy can reach it.
    let proxy = listen(Pretend::Influx1, |_, _| reply(204, ""));
    let addr = proxy.url.trim_start_matches("http://").to_string();
    let mut s = sink(&[
        ("backend", "influxdb1"),
        ("url", "http://influxdb.invalid:8086"),
        ("username", "writer"),
        ("password", "pw"),
        ("proxy", &format!("http://pu:p%40ss@{addr}")),
    ]);
    assert_eq!(s.write(&batch(1, 2)).unwrap().written, 2);
    let reqs = proxy.requests();
    assert_eq!(reqs.iter().map(|(r, _)| r.path.as_str()).collect::<Vec<_>>(), ["/ping", "/write"]);
    for (r, _) in &reqs {
        assert_eq!(r.proxied_to.as_deref(), Some("influxdb.invalid:8086"), "absolute form, to the proxy");
        assert_eq!(r.header("proxy-authorization"), Some("Basic cHU6cEBzcw=="), "pu:p@ss");
        assert_eq!(r.header("authorization"), Some("Basic d3JpdGVyOnB3"), "writer:pw, for InfluxDB");
    }
    assert_eq!(proxy.writes()[0].0.lines().len(), 2);

    // Without the key (what the plugin hands over for a host in Moodle's proxybypass): straight to the server.
    let direct = listen(Pretend::Influx1, |_, _| reply(204, ""));
    let mut s = sink(&[("backend", "influxdb1"), ("url", &direct.url), ("proxy", "")]);
    assert_eq!(s.write(&batch(3, 1)).unwrap().written, 1);
    assert!(direct.requests().iter().all(|(r, _)| r.proxied_to.is_none()));
    assert_eq!(direct.writes().len(), 1);
    assert_eq!(proxy.requests().len(), 2, "the proxy saw nothing more");

    // A SOCKS5 proxy (Moodle's other proxy type; names resolved here, as Moodle's curl does): asked for the InfluxDB
    // address, where nothing listens, and relaying to the test's server.
    let server = listen(Pretend::Influx2, |_, _| reply(204, ""));
    let (socks, asked) = socks5_proxy(server.url.clone());
    let mut s = sink(&[
        ("backend", "influxdb2"),
        ("url", "http://127.0.0.1:9"),
        ("org", "o"),
        ("token", "tok"),
        ("proxy", &socks),
    ]);
    assert_eq!(s.write(&batch(4, 3)).unwrap().written, 3);
    assert_eq!(server.writes().len(), 1);
    assert!(server.requests().iter().all(|(r, _)| r.proxied_to.is_none()), "SOCKS carries origin-form requests");
    assert!(!asked.lock().unwrap().is_empty());
    assert!(asked.lock().unwrap().iter().all(|a| a == "127.0.0.1:9"), "{:?}", asked.lock().unwrap());
}

#[test]
fn a_bad_proxy_is_refused_with_the_configuration_without_its_password() {
    let e =
        Config::from_pairs([("backend", "influxdb1"), ("proxy", "ftp://u:proxy-secret@x:1")]).unwrap_err().to_string();
    assert!(e.contains("proxy: must be an http://, https://, socks5:// or socks5h:// URL"), "{e}");
    assert!(!e.contains("proxy-secret"), "{e}");
    assert!(Config::from_pairs([("proxy", "socks5h://u:p@proxy:1080")]).is_ok());
}
