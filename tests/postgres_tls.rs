//! TLS of the PostgreSQL sink (`sslmode`, `ca_file`) against real PostgreSQL servers started by
//! tests/servers/postgres.sh: one with `ssl = on` and a certificate (for IP 127.0.0.1 only) signed by
//! a test CA (TSDB_TEST_PG_TLS_*), and the plain one with `ssl = off` (TSDB_TEST_PG_*).
//!
//! Without the variables each test prints "SKIPPED: ..." and passes, unless TSDB_TEST_REQUIRE_SERVERS=1
//! (CI), where it fails. Each test works in its own schema, so tests run in parallel.

use std::sync::{Arc, Mutex};
use tsdb::event::{EventId, IntField, StrField, INT_FIELDS, STR_FIELDS};
use tsdb::record::RecordWriter;
use tsdb::sink::postgres::PostgresSink;
use tsdb::sink::{Batch, Sink, SinkError};

// ---------------------------------------------------------------------------------------------
// Servers

#[path = "common/pg.rs"]
mod pg;

use pg::{require, var, PgServer as Server};

/// The `ssl = on` server and its CA files.
fn tls() -> Option<(Server, String, String)> {
    let s = pg::server("TSDB_TEST_PG_TLS", "PostgreSQL with TLS", "tls")?;
    match (var("TSDB_TEST_PG_TLS_CA_FILE"), var("TSDB_TEST_PG_TLS_WRONG_CA_FILE")) {
        (Some(ca), Some(wrong)) => Some((s, ca, wrong)),
        _ => {
            if require() {
                panic!("TSDB_TEST_REQUIRE_SERVERS=1 but TSDB_TEST_PG_TLS_CA_FILE/WRONG_CA_FILE are not set");
            }
            eprintln!("SKIPPED: TSDB_TEST_PG_TLS_CA_FILE/WRONG_CA_FILE not set (tests/servers/postgres.sh)");
            None
        }
    }
}

/// The `ssl = off` server.
fn plain() -> Option<Server> {
    pg::server("TSDB_TEST_PG", "PostgreSQL", "tls")
}

impl Server {
    /// `pg_stat_ssl` of a backend: (ssl, version, cipher).
    fn ssl_of_pid(&self, pid: i32) -> (bool, Option<String>, Option<String>) {
        let r =
            self.client().query_one("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = $1", &[&pid]).unwrap();
        (r.get(0), r.get(1), r.get(2))
    }

    /// `pg_stat_ssl.ssl` of every session with this application_name.
    fn ssl_of_application(&self, app: &str) -> Vec<bool> {
        self.client()
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
                &[&app],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Events

fn batch(producer: u64, first_seq: u64, n: usize) -> Batch {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 60;
    let mut buf = Vec::new();
    for k in 0..n {
        let mut w = RecordWriter::begin(&mut buf);
        for f in INT_FIELDS {
            let v = match f {
                IntField::TimeCreated => t,
                IntField::CourseId => 7,
                IntField::UserId => 1000 + k as i64,
                _ => continue,
            };
            w.set_int(f, v);
        }
        for f in STR_FIELDS {
            let v: &[u8] = match f {
                StrField::EventName => b"\\core\\event\\course_viewed",
                StrField::Component => b"core",
                StrField::Other => b"{\"tls\":true}",
                _ => continue,
            };
            w.put_str(f, v, 1 << 20);
        }
        w.finish(EventId { producer, seq: first_seq + k as u64 }, t * 1_000_000_000 + k as i64 * 1000);
    }
    Batch::new(buf).unwrap()
}

/// Writes one batch of 3 events and returns the backend pid of the session that wrote it, taken
/// inside the write transaction (the before-commit hook).
fn write_and_pid(sink: &mut PostgresSink, producer: u64) -> i32 {
    let pid = Arc::new(Mutex::new(None));
    let p = pid.clone();
    sink.set_before_commit_hook(Some(Box::new(move |backend| *p.lock().unwrap() = Some(backend))));
    let w = sink.write(&batch(producer, 1, 3)).expect("write");
    assert_eq!(w.written, 3);
    sink.set_before_commit_hook(None);
    let pid = pid.lock().unwrap().expect("the hook ran");
    assert_eq!(sink.backend_pid(), Some(pid));
    pid
}

fn config_error(sink: &mut PostgresSink) -> String {
    match sink.write(&batch(9, 1, 1)) {
        Err(SinkError::Config(msg)) => {
            eprintln!("expected Config error: {msg}");
            msg
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn require_encrypts_without_verifying_the_certificate() {
    let Some((t, _, _)) = tls() else { return };
    let s = t.schema("require");
    // No ca_file: the test CA is in no trust store, and `require` does not care.
    let mut sink = t.sink(&s, &[("sslmode", "require"), ("application_name", "tsdb_tls_require")]);
    let pid = write_and_pid(&mut sink, 1);
    let (ssl, version, cipher) = t.ssl_of_pid(pid);
    assert!(ssl, "the sink's session is encrypted");
    assert!(version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")), "{version:?}");
    assert!(cipher.is_some());
    assert_eq!(t.ssl_of_application("tsdb_tls_require"), vec![true]);
    assert_eq!(t.count(&s), 3);
    // Several batches on the same encrypted connection.
    assert_eq!(sink.write(&batch(1, 4, 2)).unwrap().written, 2);
    assert_eq!(sink.backend_pid(), Some(pid));
    assert_eq!(t.count(&s), 5);
    // Reconnecting after idle() is encrypted again.
    sink.idle();
    let pid2 = write_and_pid(&mut sink, 2);
    assert_ne!(pid, pid2);
    assert!(t.ssl_of_pid(pid2).0);
}

#[test]
fn verify_full_with_the_right_ca_file_verifies_and_encrypts() {
    let Some((t, ca, _)) = tls() else { return };
    let s = t.schema("verify_full");
    let mut sink =
        t.sink(&s, &[("sslmode", "verify-full"), ("ca_file", &ca), ("application_name", "tsdb_tls_verify_full")]);
    let pid = write_and_pid(&mut sink, 1);
    let (ssl, version, _) = t.ssl_of_pid(pid);
    assert!(ssl, "the sink's session is encrypted");
    assert!(version.is_some());
    assert_eq!(t.ssl_of_application("tsdb_tls_verify_full"), vec![true]);
    assert_eq!(t.count(&s), 3);
}

#[test]
fn verify_full_without_the_ca_or_with_another_ca_is_a_config_error() {
    let Some((t, ca, wrong)) = tls() else { return };
    let s = t.schema("untrusted");
    // No ca_file: the system's store, which does not hold the test CA.
    let mut sink = t.sink(&s, &[("sslmode", "verify-full")]);
    let msg = config_error(&mut sink);
    assert!(msg.starts_with("sslmode/ca_file:"), "{msg}");
    assert!(msg.contains("ca_file is not set") && msg.contains(&format!("{}:{}", t.host, t.port)), "{msg}");
    assert!(msg.contains("UnknownIssuer") || msg.contains("unknown issuer"), "{msg}");
    assert!(!msg.contains(&t.password), "{msg}");
    assert_eq!(sink.backend_pid(), None, "not connected");
    // Another CA.
    let mut sink = t.sink(&s, &[("sslmode", "verify-full"), ("ca_file", &wrong)]);
    let msg = config_error(&mut sink);
    assert!(msg.starts_with("sslmode/ca_file:") && msg.contains(&wrong), "{msg}");
    assert!(!msg.contains(&t.password), "{msg}");
    // A ca_file that is missing, or holds no certificate.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let msg = config_error(&mut t.sink(&s, &[("sslmode", "verify-full"), ("ca_file", &missing)]));
    assert!(msg.starts_with("ca_file: cannot read") && msg.contains(&missing), "{msg}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.display().to_string();
    let msg = config_error(&mut t.sink(&s, &[("sslmode", "verify-full"), ("ca_file", &junk)]));
    assert!(msg.starts_with("ca_file:") && msg.contains(&junk), "{msg}");
    // Nothing was written by any of them (the schema was never even created).
    let exists: bool =
        t.client().query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&s]).unwrap().get(0);
    assert!(!exists);
    // The right CA, the same sink: once ca_file holds it, the next attempt connects (the trust
    // anchors are read again after a configuration error).
    let file = dir.path().join("ca.pem");
    std::fs::copy(&wrong, &file).unwrap();
    let file_s = file.display().to_string();
    let mut sink = t.sink(&s, &[("sslmode", "verify-full"), ("ca_file", &file_s)]);
    assert!(config_error(&mut sink).starts_with("sslmode/ca_file:"));
    std::fs::copy(&ca, &file).unwrap();
    let pid = write_and_pid(&mut sink, 3);
    assert!(t.ssl_of_pid(pid).0);
}

#[test]
fn verify_full_checks_the_host_name() {
    let Some((t, ca, _)) = tls() else { return };
    // The certificate names IP 127.0.0.1 only; "localhost" reaches the same server under a name the
    // certificate does not hold. (Where localhost also resolves to an address nobody listens on,
    // the last address's error is the one reported: then this part cannot be checked.)
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = ("localhost", t.port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
    if t.host != "127.0.0.1" || addrs.is_empty() || addrs.iter().any(|a| a.ip().to_string() != "127.0.0.1") {
        eprintln!("SKIPPED (host name check): localhost resolves to {addrs:?}, not only 127.0.0.1");
        return;
    }
    let s = t.schema("hostname");
    let mut sink = t.sink(&s, &[("host", "localhost"), ("sslmode", "verify-full"), ("ca_file", &ca)]);
    let msg = config_error(&mut sink);
    assert!(msg.starts_with("sslmode:") && msg.contains("not valid for the host name \"localhost\""), "{msg}");
    assert!(!msg.contains(&t.password), "{msg}");
    // `require` checks no name.
    let mut sink = t.sink(&s, &[("host", "localhost"), ("sslmode", "require")]);
    let pid = write_and_pid(&mut sink, 1);
    assert!(t.ssl_of_pid(pid).0);
}

#[test]
fn disable_stays_plain_even_where_the_server_offers_tls() {
    let Some((t, _, _)) = tls() else { return };
    let s = t.schema("disable");
    let mut sink = t.sink(&s, &[("sslmode", "disable"), ("application_name", "tsdb_tls_disable")]);
    let pid = write_and_pid(&mut sink, 1);
    assert!(!t.ssl_of_pid(pid).0, "sslmode=disable must not encrypt");
    assert_eq!(t.ssl_of_application("tsdb_tls_disable"), vec![false]);
    assert_eq!(t.count(&s), 3);
}

#[test]
fn a_unix_socket_is_never_tls_whatever_the_sslmode() {
    let Some((t, _, _)) = tls() else { return };
    let Some(socket) = t.socket.clone() else {
        if require() {
            panic!("TSDB_TEST_REQUIRE_SERVERS=1 but TSDB_TEST_PG_TLS_SOCKET is not set");
        }
        eprintln!("SKIPPED: TSDB_TEST_PG_TLS_SOCKET not set");
        return;
    };
    let s = t.schema("socket");
    let mut sink = t.sink(&s, &[("host", &socket), ("sslmode", "verify-full")]);
    let pid = write_and_pid(&mut sink, 1);
    assert!(!t.ssl_of_pid(pid).0);
}

#[test]
fn tls_against_a_server_without_tls_is_a_config_error() {
    let Some(p) = plain() else { return };
    let s = format!("tls_{}", "nossl");
    for mode in ["require", "verify-full"] {
        let mut sink = p.sink(&s, &[("sslmode", mode)]);
        let msg = config_error(&mut sink);
        assert!(msg.starts_with("sslmode:"), "{msg}");
        assert!(msg.contains(&format!("sslmode={mode}")) && msg.contains("does not accept TLS"), "{msg}");
        assert!(msg.contains(&format!("{}:{}", p.host, p.port)), "{msg}");
        assert!(!msg.contains(&p.password), "{msg}");
    }
    // And sslmode=disable works there.
    let mut sink = p.sink(&s, &[("sslmode", "disable")]);
    p.client().batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE")).unwrap();
    write_and_pid(&mut sink, 1);
}
