//! Where the InfluxDB sink's credentials can go: only to the configured server. A redirect is never
//! followed (it would carry the token or Basic credentials to another host), proxy environment
//! variables are ignored (`HTTP_PROXY` can come from a request header in CGI setups: "httpoxy").
//! Certificate verification is tested against a real https InfluxDB in
//! tests/influx.rs::influxdb1_https_verifies_certificates.
//!
//! `cargo test --no-default-features --test security_transport`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use tsdb::config::Config;
use tsdb::event::{EventId, IntField, StrField};
use tsdb::record::RecordWriter;
use tsdb::sink::influx::InfluxSink;
use tsdb::sink::{Batch, Sink, SinkError};

/// A one-thread HTTP server answering every request with `reply(path)`; returns its base URL and
/// the request lines (with the Authorization header, if any) it saw.
fn server(reply: impl Fn(&str) -> String + Send + 'static) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut len = 0usize;
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = h.trim().to_string();
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(format!("{} {auth}", line.trim()));
                let resp = reply(&path);
                if (&s).write_all(resp.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (url, seen)
}

fn ping_or(path: &str, other: &str) -> String {
    if path.starts_with("/ping") {
        "HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 2.7.4\r\nX-Influxdb-Build: OSS\r\nContent-Length: 0\r\n\r\n"
            .into()
    } else {
        other.to_string()
    }
}

fn batch() -> Batch {
    let mut buf = Vec::new();
    let mut w = RecordWriter::begin(&mut buf);
    w.put_str(StrField::EventName, b"x", 64);
    w.set_int(IntField::TimeCreated, 1_700_000_000);
    w.finish(EventId { producer: 1, seq: 1 }, 1_700_000_000_000_000_000);
    Batch::new(buf).unwrap()
}

fn sink(url: &str) -> InfluxSink {
    InfluxSink::new(
        &Config::from_pairs([
            ("backend", "influxdb2"),
            ("url", url),
            ("org", "o"),
            ("token", "TOKsecret-transport"),
            ("gzip", "0"),
        ])
        .unwrap(),
    )
    .unwrap()
}

#[test]
fn a_redirect_is_never_followed_so_the_token_stays_with_the_configured_server() {
    let (elsewhere, elsewhere_seen) = server(|p| ping_or(p, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"));
    let target = format!("{elsewhere}/api/v2/write?org=o&bucket=moodle&precision=ns");
    for code in [301, 302, 307, 308] {
        let t = target.clone();
        let (url, _) = server(move |p| {
            ping_or(p, &format!("HTTP/1.1 {code} Moved\r\nLocation: {t}\r\nContent-Length: 0\r\n\r\n"))
        });
        match sink(&url).write(&batch()) {
            Err(SinkError::Config(m)) => assert!(m.starts_with("url: the server redirects"), "{m}"),
            other => panic!("{code}: {other:?}"),
        }
    }
    assert!(elsewhere_seen.lock().unwrap().is_empty(), "a redirect was followed: {:?}", elsewhere_seen.lock().unwrap());
}

#[test]
fn proxy_environment_variables_are_ignored() {
    let (proxy, proxy_seen) = server(|_| "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".into());
    let (url, seen) = server(|p| ping_or(p, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"));
    for k in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(k, &proxy);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let r = sink(&url).write(&batch());
    assert_eq!(r.map(|w| w.written), Ok(1));
    assert!(proxy_seen.lock().unwrap().is_empty(), "the proxy got {:?}", proxy_seen.lock().unwrap());
    let seen = seen.lock().unwrap();
    assert!(seen.iter().any(|l| l.starts_with("POST /api/v2/write") && l.ends_with("Token TOKsecret-transport")));
    assert!(seen.iter().all(|l| !l.split(' ').nth(1).unwrap_or("").contains("TOKsecret")), "token in a URL");
}
