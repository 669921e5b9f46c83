//! InfluxDB sink: v1 `/write`, v2 `/api/v2/write`, v3 `/api/v3/write_lp`.
//!
//! One batch becomes one or more POSTs of line protocol (split at `max_batch_bytes`), gzip-compressed
//! when `gzip` is on, over a keep-alive HTTP client created on the first write (the sink is created in
//! the flush thread of the process that uses it, after any fork). Every write is idempotent: each event
//! has a fixed, distinct nanosecond timestamp (`record::Stamper`), so resending a batch rewrites the
//! same points. That is what makes "retry the whole batch" and "split and resend" safe.
//!
//! Replies (see docs/influxdb.md for the table):
//! - 2xx: written.
//! - 400 / 422: the server refused some lines. InfluxDB 1.x stores the good lines and says how many it
//!   refused (`unable to parse` per line, `dropped=N`); InfluxDB 3 lists the refused lines. Those are
//!   counted as rejected, the rest as written, the batch is not resent. InfluxDB 2.x (and 3.x on its
//!   v2 endpoint) refuse the whole request on one bad line; when the reply does not tell how many were
//!   stored, the batch is split and resent in halves until the bad event stands alone.
//! - 401 / 403 / 404 (and 1.x's 500 for an unknown retention policy): configuration errors naming the
//!   setting to fix. With `create_database` (1.x), a missing database or retention policy is created
//!   (`/query`) and the batch written at once; the creation is reported through `Sink::take_recreated`.
//! - 413: split. 429 / 503: retry after `Retry-After`. Other 5xx, timeouts, network errors: retry.
//! - An https certificate that does not verify: a configuration error naming `ca_file/tls_verify`.
//!
//! Before the first write the sink asks `GET /ping` which server it talks to: InfluxDB answers with
//! `X-Influxdb-Version` and `X-Influxdb-Build`; 1.x and 2.x take tag values in the Go dialect, 3.x in
//! the InfluxDB 3 one, and a server without those headers (VictoriaMetrics) gets the portable subset
//! (see `lineproto`). When /ping answers an error without them, the backend's own dialect is used.
//!
//! No error text carries the token or the password: credentials travel only in headers, and every
//! text taken from the server is scrubbed of them and bounded in length.

use super::{Batch, BatchId, Sink, SinkError, Written};
use crate::config::Config;
use crate::lineproto::{self, Dialect, Encoder};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::io::{Read, Write};
use std::time::Duration;

/// Longest error text kept from a server reply or a transport error.
pub const MAX_ERROR_CHARS: usize = 400;
/// Most of a reply body read (InfluxDB 1.x lists every refused line in it).
const MAX_REPLY_BYTES: u64 = 16 << 20;
/// Smallest request body the sink shrinks to after a 413.
const MIN_BODY_CAP: usize = 16 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    V1,
    V2,
    V3,
}

enum Auth {
    None,
    Basic { user: String, password: String },
    Token(HeaderValue),
}

pub struct InfluxSink {
    api: Api,
    url: Url,
    ping_url: Url,
    /// `/query` (1.x): where `create_database` creates a missing database or retention policy.
    query_url: Url,
    create_database: bool,
    auth: Auth,
    gzip: bool,
    /// Request body cap: `max_batch_bytes`, halved by each 413.
    body_cap: usize,
    timeout: Duration,
    connect_timeout: Duration,
    tls_verify: bool,
    ca_file: String,
    /// `proxy`: every request goes through it (empty: directly; proxy environment variables are never used).
    proxy: String,
    retry_cap: Duration,
    database: String,
    retention_policy: String,
    bucket: String,
    org: String,
    username: String,
    measurement: String,
    tags: Vec<String>,
    /// Made once the server's dialect is known (first write).
    encoder: Option<Encoder>,
    /// Texts never to show: token, password, the Basic credentials as sent.
    secrets: Vec<String>,
    client: Option<Client>,
    body: Vec<u8>,
    /// The next batch, encoded and compressed while the previous request was in flight.
    ahead: Option<Ahead>,
    /// What the last reply said does not exist (1.x), for `create_database`.
    missing: Option<Missing>,
    /// What `create_database` created since `take_recreated` was last called.
    recreated: Vec<String>,
}

/// What an InfluxDB 1.x reply says is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missing {
    Database,
    RetentionPolicy,
}

/// A batch prepared ahead of its turn: one request's payload.
struct Ahead {
    id: BatchId,
    payload: Vec<u8>,
    lines: usize,
    body_len: usize,
    truncated: usize,
}

impl std::fmt::Debug for InfluxSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxSink").field("api", &self.api).field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

/// What one request did.
#[derive(Debug)]
struct Reply {
    written: usize,
    rejected: usize,
    error: Option<String>,
}

impl InfluxSink {
    pub fn new(config: &Config) -> Result<InfluxSink, String> {
        let api = match config.backend() {
            "influxdb1" => Api::V1,
            "influxdb2" => Api::V2,
            "influxdb3" => Api::V3,
            other => return Err(format!("backend: {other} is not an InfluxDB backend")),
        };
        lineproto::check_measurement(config.get("measurement"))?;
        let base = config.get("url").trim_end_matches('/');
        let path = match api {
            Api::V1 => "/write",
            Api::V2 => "/api/v2/write",
            Api::V3 => "/api/v3/write_lp",
        };
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| format!("url: not a valid URL: {e}"))?;
        let ping_url = Url::parse(&format!("{base}/ping")).map_err(|e| format!("url: not a valid URL: {e}"))?;
        let query_url = Url::parse(&format!("{base}/query")).map_err(|e| format!("url: not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("url: must be an http:// or https:// URL with a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url: must not contain credentials; use username/password or token".into());
        }
        let database = config.get("database").to_string();
        let bucket = config.get("bucket").to_string();
        let org = config.get("org").to_string();
        {
            let mut q = url.query_pairs_mut();
            match api {
                Api::V1 => {
                    q.append_pair("db", &database);
                    let rp = config.get("retention_policy");
                    if !rp.is_empty() {
                        q.append_pair("rp", rp);
                    }
                    q.append_pair("precision", "ns");
                }
                Api::V2 => {
                    q.append_pair("org", &org);
                    q.append_pair("bucket", &bucket);
                    q.append_pair("precision", "ns");
                }
                Api::V3 => {
                    q.append_pair("db", &database);
                    q.append_pair("precision", "nanosecond");
                    q.append_pair("accept_partial", "true");
                }
            }
        }
        let username = config.get("username").to_string();
        let password = config.get("password").to_string();
        let token = config.get("token").to_string();
        let mut secrets: Vec<String> = config.secrets().iter().map(|s| s.to_string()).collect();
        let auth = match api {
            Api::V1 if !username.is_empty() => {
                secrets.push(base64(format!("{username}:{password}").as_bytes()));
                Auth::Basic { user: username.clone(), password }
            }
            Api::V1 => Auth::None,
            Api::V2 | Api::V3 if !token.is_empty() => {
                let mut v = HeaderValue::from_str(&format!("Token {token}"))
                    .map_err(|_| "token: contains characters not allowed in an HTTP header".to_string())?;
                v.set_sensitive(true);
                Auth::Token(v)
            }
            Api::V2 => return Err("token: required for backend influxdb2".into()),
            Api::V3 => Auth::None,
        };
        if let Some(pw) = Url::parse(config.get("proxy")).ok().as_ref().and_then(Url::password) {
            secrets.push(pw.to_string());
        }
        secrets.retain(|s| !s.is_empty());
        let gzip = match config.get("gzip") {
            "auto" => !crate::config::url_is_loopback(config.get("url")),
            on => on == "1",
        };
        Ok(InfluxSink {
            api,
            url,
            ping_url,
            query_url,
            create_database: config.flag("create_database"),
            auth,
            gzip,
            body_cap: config.int("max_batch_bytes").max(1024) as usize,
            timeout: config.ms("timeout_ms"),
            connect_timeout: config.ms("connect_timeout_ms"),
            tls_verify: config.flag("tls_verify"),
            ca_file: config.get("ca_file").to_string(),
            proxy: config.get("proxy").to_string(),
            retry_cap: config.ms("retry_max_ms"),
            database,
            retention_policy: config.get("retention_policy").to_string(),
            bucket,
            org,
            username,
            measurement: config.get("measurement").to_string(),
            tags: config.tags().iter().map(|t| t.to_string()).collect(),
            encoder: None,
            secrets,
            client: None,
            body: Vec::new(),
            ahead: None,
            missing: None,
            recreated: Vec::new(),
        })
    }

    pub fn api(&self) -> Api {
        self.api
    }

    /// The write URL (no credentials in it).
    pub fn write_url(&self) -> &str {
        self.url.as_str()
    }

    /// The line protocol dialect in use, once the server has been asked (first write).
    pub fn dialect(&self) -> Option<Dialect> {
        self.encoder.as_ref().map(Encoder::dialect)
    }

    fn with_auth(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::None => req,
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
            Auth::Token(v) => req.header(AUTHORIZATION, v.clone()),
        }
    }

    fn transport_error(&mut self, e: &reqwest::Error) -> SinkError {
        // The connection may be half-dead: start afresh next time.
        self.client = None;
        let what = if e.is_timeout() {
            format!("no reply within timeout_ms={}", self.timeout.as_millis())
        } else if e.is_connect() {
            format!("cannot connect: {}", chain(e))
        } else {
            chain(e)
        };
        let host = self.url.host_str().unwrap_or("?").to_string();
        let port = self.url.port_or_known_default().unwrap_or(0);
        if self.url.scheme() == "https" && what.contains("certificate") {
            // Not going to fix itself: an admin must trust the server's CA (or turn verification off).
            return SinkError::Config(self.clean(&format!(
                "ca_file/tls_verify: the certificate of InfluxDB {host}:{port} is not trusted: {what}"
            )));
        }
        SinkError::Retry { msg: self.clean(&format!("InfluxDB {host}:{port}: {what}")), after: None }
    }

    /// Asks `/ping` which server this is, to pick the tag dialect (see the module documentation).
    fn detect(&mut self) -> Result<Dialect, SinkError> {
        let client = self.client()?;
        let resp = self.with_auth(client.get(self.ping_url.clone())).send().map_err(|e| self.transport_error(&e))?;
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (version, build) = (header("x-influxdb-version"), header("x-influxdb-build"));
        let fallback = match self.api {
            Api::V3 => Dialect::Iox,
            Api::V1 | Api::V2 => Dialect::Go,
        };
        Ok(dialect_from(version.as_deref(), build.is_some(), resp.status().is_success(), fallback))
    }

    fn encoder(&mut self) -> Result<Encoder, SinkError> {
        if let Some(e) = &self.encoder {
            return Ok(e.clone());
        }
        let dialect = self.detect()?;
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        let e = Encoder::with_dialect(&self.measurement, &tags, dialect);
        self.encoder = Some(e.clone());
        Ok(e)
    }

    fn client(&mut self) -> Result<Client, SinkError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut b = Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(2)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("logstore_tsdb/", env!("CARGO_PKG_VERSION")));
        if !self.tls_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if !self.proxy.is_empty() {
            let p = reqwest::Proxy::all(self.proxy.as_str())
                .map_err(|e| SinkError::Config(format!("proxy: not a usable proxy URL: {}", self.clean(&chain(&e)))))?;
            b = b.proxy(p);
        }
        if !self.ca_file.is_empty() {
            let pem = std::fs::read(&self.ca_file)
                .map_err(|e| SinkError::Config(format!("ca_file: cannot read {}: {e}", self.ca_file)))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SinkError::Config(format!("ca_file: {} is not a PEM bundle: {e}", self.ca_file)))?;
            if certs.is_empty() {
                return Err(SinkError::Config(format!("ca_file: no certificate in {}", self.ca_file)));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let c =
            b.build().map_err(|e| SinkError::Config(format!("tls: cannot set up the HTTP client: {}", chain(&e))))?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Scrubs secrets and bounds the length of a text shown to people.
    fn clean(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in &self.secrets {
            if t.contains(s.as_str()) {
                t = t.replace(s.as_str(), "********");
            }
        }
        bound(&t)
    }

    /// The request for one body of line protocol (gzip-compressed when configured).
    fn prepare(&self, client: &Client, body: &[u8]) -> Result<RequestBuilder, SinkError> {
        Ok(self.request(client, self.compress(body)?))
    }

    /// The request body: the lines, gzip-compressed when configured.
    fn compress(&self, body: &[u8]) -> Result<Vec<u8>, SinkError> {
        if !self.gzip {
            return Ok(body.to_vec());
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
        gz.write_all(body)
            .and_then(|()| gz.finish())
            .map_err(|e| SinkError::Retry { msg: format!("gzip: {e}"), after: None })
    }

    fn request(&self, client: &Client, payload: Vec<u8>) -> RequestBuilder {
        let mut req = client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(reqwest::header::ACCEPT, "application/json");
        if self.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        self.with_auth(req).body(payload)
    }

    /// What the server said about one request (run by the thread that waits for the reply).
    fn transfer(req: RequestBuilder) -> Transfer {
        let resp = req.send()?;
        let status = resp.status();
        let after = retry_after(&resp);
        Ok((status, after, read_body(resp)))
    }

    /// Classifies a finished request and adds it to `total`.
    fn settle(&mut self, flight: Flight<'_>, total: &mut Written) -> Result<(), SinkError> {
        let outcome = flight.handle.join().unwrap_or_else(|_| {
            Ok((StatusCode::INTERNAL_SERVER_ERROR, None, "tsdb: the request thread panicked".to_string()))
        });
        let (status, after, text) = outcome.map_err(|e| self.transport_error(&e))?;
        let after = after.map(|d| d.min(self.retry_cap));
        let r = self.classify(status, after, &text, flight.lines, flight.body_len)?;
        total.written += r.written;
        total.rejected += r.rejected;
        if total.error.is_none() {
            total.error = r.error;
        }
        Ok(())
    }

    fn classify(
        &mut self,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &str,
        lines: usize,
        body_len: usize,
    ) -> Result<Reply, SinkError> {
        let code = status.as_u16();
        if status.is_success() {
            return Ok(Reply { written: lines, rejected: 0, error: None });
        }
        let server = self.clean(&server_message(body));
        let said = |what: &str| format!("{what} (HTTP {code}: {server})");
        match code {
            400 | 422 => self.partial(code, body, &server, lines),
            401 | 403 => Err(SinkError::Config(match self.api {
                Api::V1 if self.username.is_empty() => {
                    said("username/password: the server requires authentication; set username and password")
                }
                Api::V1 if code == 401 => said(&format!(
                    "username/password: InfluxDB refused the credentials of user \"{}\"",
                    printable(&self.username)
                )),
                Api::V1 => said(&format!(
                    "username: user \"{}\" may not write to database \"{}\" (no WRITE grant on it; dropping a \
                     database drops its grants, so one created again needs GRANT WRITE again)",
                    printable(&self.username),
                    printable(&self.database)
                )),
                Api::V2 if code == 401 => said("token: InfluxDB refused the token"),
                Api::V2 => said(&format!(
                    "token: the token may not write to bucket \"{}\" of org \"{}\"",
                    printable(&self.bucket),
                    printable(&self.org)
                )),
                Api::V3 if code == 401 => said("token: InfluxDB refused the token (or requires one)"),
                Api::V3 => {
                    said(&format!("token: the token may not write to database \"{}\"", printable(&self.database)))
                }
            })),
            404 => Err(SinkError::Config(match self.api {
                Api::V1 if body.contains("database not found") => {
                    self.missing = Some(Missing::Database);
                    said(&format!(
                        "database: database \"{}\" does not exist (dropped?); CREATE DATABASE it as an InfluxDB \
                         admin, or set create_database = 1 to have the extension create it",
                        printable(&self.database)
                    ))
                }
                Api::V1 => said("url: no InfluxDB 1.x write endpoint at this URL"),
                Api::V2 => said(&format!(
                    "org/bucket: org \"{}\" or bucket \"{}\" not found (or url is not InfluxDB 2.x)",
                    printable(&self.org),
                    printable(&self.bucket)
                )),
                Api::V3 => said(&format!(
                    "database: database \"{}\" not found (or url is not InfluxDB 3.x)",
                    printable(&self.database)
                )),
            })),
            413 => {
                // Send smaller requests from now on; the pipeline bisects this batch.
                self.body_cap = (body_len / 2).max(MIN_BODY_CAP).min(self.body_cap);
                Err(SinkError::Split(said("max_batch_bytes: request body too large for the server")))
            }
            429 | 503 => Err(SinkError::Retry { msg: said("server busy"), after: retry_after }),
            500 if self.api == Api::V1 && body.contains("retention policy not found") => {
                self.missing = Some(Missing::RetentionPolicy);
                Err(SinkError::Config(said(&format!(
                    "retention_policy: retention policy \"{}\" does not exist in database \"{}\" (dropped?); CREATE \
                     RETENTION POLICY it as an InfluxDB admin, or set create_database = 1 to have the extension create \
                     it (DURATION INF)",
                    printable(&self.retention_policy),
                    printable(&self.database)
                ))))
            }
            500..=599 => Err(SinkError::Retry { msg: said("server error"), after: retry_after }),
            300..=399 => Err(SinkError::Config(said("url: the server redirects; set url to the final address"))),
            _ => Err(SinkError::Config(said("url: unexpected reply from InfluxDB"))),
        }
    }

    /// A 400/422: which lines did the server refuse?
    fn partial(&self, code: u16, body: &str, server: &str, lines: usize) -> Result<Reply, SinkError> {
        let error = Some(format!("HTTP {code}: {server}"));
        // InfluxDB 3: the refused lines are listed, the others are stored (accept_partial=true).
        if let Some(refused) = v3_refused_lines(body, lines) {
            return Ok(Reply { written: lines - refused, rejected: refused, error: self.v3_first_error(body, code) });
        }
        let msg = server_message(body);
        // InfluxDB 1.x (and 2.x's engine): "partial write: <one `unable to parse` per refused line>
        // dropped=N". Our lines can never be split or merged by the server (lineproto guarantees it),
        // so each `unable to parse` is one event. When the engine also drops points (type conflict,
        // outside retention) 1.x reports only `dropped=N` and hides the parse errors of the same request;
        // that cannot be seen from here, so those would count as written. Our encoder produces no
        // unparsable lines short of an out-of-range timestamp, so in practice the count is exact.
        if msg.contains("partial write") {
            if let Some(dropped) = dropped_count(&msg) {
                let refused = (msg.matches("unable to parse").count() + dropped).min(lines);
                return Ok(Reply { written: lines - refused, rejected: refused, error });
            }
        }
        // InfluxDB 1.x when no line of the request parsed: nothing was stored.
        if self.api == Api::V1 && code == 400 && msg.starts_with("unable to parse") {
            return Ok(Reply { written: 0, rejected: lines, error });
        }
        // The reply does not say what was stored (InfluxDB 2.x refuses the whole request on one bad
        // line). Counting conservatively means claiming nothing: resend in halves (idempotent) until
        // the refused event stands alone, then it alone is counted as rejected.
        if lines > 1 {
            return Err(SinkError::Split(format!("HTTP {code}: {server}")));
        }
        Ok(Reply { written: 0, rejected: lines, error })
    }

    fn v3_first_error(&self, body: &str, code: u16) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let first = v.get("data")?.as_array()?.first()?;
        let line = first.get("line_number").and_then(|n| n.as_u64()).unwrap_or(0);
        let msg = first.get("error_message").and_then(|m| m.as_str()).unwrap_or("");
        Some(self.clean(&format!("HTTP {code}: line {line}: {msg}")))
    }
}

/// The dialect for a `/ping` reply: InfluxDB marks itself with a build header and its version.
fn dialect_from(version: Option<&str>, build: bool, ok: bool, fallback: Dialect) -> Dialect {
    match version {
        Some(v) if build => match v.trim_start_matches(['v', 'V']).split('.').next() {
            Some("1" | "2") => Dialect::Go,
            Some("3") => Dialect::Iox,
            _ => fallback,
        },
        _ if ok => Dialect::Portable,
        _ => fallback,
    }
}

/// The number of distinct lines an InfluxDB 3 partial-write reply lists, if the body is one.
fn v3_refused_lines(body: &str, lines: usize) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if v.get("error")?.as_str()? != "partial write of line protocol occurred" {
        return None;
    }
    let data = v.get("data")?.as_array()?;
    let mut seen: Vec<u64> = data.iter().filter_map(|d| d.get("line_number")?.as_u64()).collect();
    seen.sort_unstable();
    seen.dedup();
    let n = if seen.is_empty() { data.len() } else { seen.len() };
    Some(n.min(lines))
}

/// `N` of the last `dropped=N` in an InfluxDB 1.x/2.x message.
fn dropped_count(msg: &str) -> Option<usize> {
    let at = msg.rfind("dropped=")?;
    let digits: String = msg[at + 8..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The message inside a JSON error body (`error` for 1.x and 3.x, `message` for 2.x), or the body.
fn server_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["error", "message"] {
            if let Some(s) = v.get(key).and_then(|s| s.as_str()) {
                return s.to_string();
            }
        }
    }
    body.trim().to_string()
}

fn read_body(resp: Response) -> String {
    let mut buf = Vec::new();
    let _ = resp.take(MAX_REPLY_BYTES).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `Retry-After` in seconds (the HTTP-date form is rare for these servers and is ignored).
fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// An error with its causes ("error sending request: connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// At most `MAX_ERROR_CHARS` characters, control characters escaped.
fn bound(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= MAX_ERROR_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn printable(s: &str) -> String {
    s.chars().take(64).flat_map(char::escape_default).collect()
}

/// Standard base64, only to recognise the Basic credentials if a server echoes them.
fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Sink for InfluxSink {
    fn write(&mut self, batch: &Batch) -> Result<Written, SinkError> {
        self.write_ahead(batch, None)
    }

    fn write_ahead(&mut self, batch: &Batch, next: Option<&Batch>) -> Result<Written, SinkError> {
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        self.missing = None;
        let mut result = self.write_batch(batch, next, &mut body);
        // With create_database: the database, then its retention policy, may each be missing once.
        for _ in 0..2 {
            let Some(what) = self.missing.take().filter(|_| self.create_database && result.is_err()) else { break };
            result = self.create(what).and_then(|()| {
                body.clear();
                self.write_batch(batch, next, &mut body)
            });
        }
        if body.capacity() <= 32 << 20 {
            self.body = body;
        }
        result
    }

    fn idle(&mut self) {
        // The dialect (encoder) is kept: it is the same server.
        self.client = None;
        self.ahead = None;
        self.body = Vec::new();
    }

    fn take_recreated(&mut self) -> Vec<String> {
        std::mem::take(&mut self.recreated)
    }
}

impl InfluxSink {
    /// `create_database`: creates the database or retention policy the server said is missing (InfluxDB
    /// 1.x `/query`, so an admin user is needed when authentication is on). A retention policy is made
    /// `DURATION INF`: nothing is ever dropped by a guess; an admin sets the duration.
    fn create(&mut self, what: Missing) -> Result<(), SinkError> {
        let db = influxql_ident(&self.database);
        let (key, object, statement) = match what {
            Missing::Database => {
                ("database", format!("database \"{}\"", printable(&self.database)), format!("CREATE DATABASE {db}"))
            }
            Missing::RetentionPolicy => (
                "retention_policy",
                format!(
                    "retention policy \"{}\" of database \"{}\"",
                    printable(&self.retention_policy),
                    printable(&self.database)
                ),
                format!(
                    "CREATE RETENTION POLICY {} ON {db} DURATION INF REPLICATION 1",
                    influxql_ident(&self.retention_policy)
                ),
            ),
        };
        let client = self.client()?;
        let mut url = self.query_url.clone();
        url.query_pairs_mut().append_pair("q", &statement);
        let resp = self.with_auth(client.post(url)).send().map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let body = read_body(resp);
        // InfluxQL answers 200 with an error per statement, or 401/403 with one error.
        let refused = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| {
            v.pointer("/results/0/error").or_else(|| v.get("error")).and_then(|e| e.as_str()).map(str::to_string)
        });
        if status.is_success() && refused.is_none() {
            let how = if what == Missing::Database {
                ""
            } else {
                " with DURATION INF (set yours with ALTER RETENTION POLICY)"
            };
            self.recreated.push(format!(
                "{key}: {object} was missing (dropped?) and was created again{how} (create_database = 1)"
            ));
            return Ok(());
        }
        let server = self.clean(&refused.unwrap_or_else(|| server_message(&body)));
        let who = if self.username.is_empty() {
            String::new()
        } else {
            format!(" by user \"{}\" (it needs admin rights for that)", printable(&self.username))
        };
        Err(SinkError::Config(format!(
            "{key}: {object} does not exist and could not be created{who} (create_database = 1; HTTP {}: {server}); \
             create it as an InfluxDB admin",
            status.as_u16()
        )))
    }
}

/// An InfluxQL identifier in double quotes (backslash and quote escaped).
fn influxql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl InfluxSink {
    /// Encodes the batch into requests of at most `body_cap` bytes; when there are several, each is
    /// encoded and compressed while the server stores the one before. Requests go one at a time, in
    /// order. (A batch is not cut into more requests than `body_cap` needs: measured on InfluxDB 1.6.7,
    /// each extra request costs the server a WAL write and sync, more than the encoding it would hide.)
    ///
    /// While the last request is in flight, `next` (the batch the pipeline writes after this one) is
    /// encoded and compressed, so that its turn starts with sending: on a server that takes tens of
    /// milliseconds per batch, this hides the sink's own work.
    fn write_batch(&mut self, batch: &Batch, next: Option<&Batch>, body: &mut Vec<u8>) -> Result<Written, SinkError> {
        let encoder = self.encoder()?;
        let client = self.client()?;
        // The batch prepared during the previous request, if it is this one; a batch prepared for later
        // (this one is being retried) is kept for its turn.
        let ready = match self.ahead.take() {
            Some(a) if a.id == batch.id && a.body_len <= self.body_cap => Some(a),
            other => {
                self.ahead = other;
                None
            }
        };
        std::thread::scope(|scope| {
            let mut total = Written::default();
            let mut inflight: Option<Flight<'_>> = None;
            let mut lines = 0usize;
            let mut tail = Vec::new();
            let events = match ready {
                Some(a) => {
                    total.truncated = a.truncated;
                    let req = self.request(&client, a.payload);
                    let handle = scope.spawn(move || InfluxSink::transfer(req));
                    inflight = Some(Flight { handle, lines: a.lines, body_len: a.body_len });
                    None
                }
                None => Some(batch.events()),
            };
            for e in events.into_iter().flatten() {
                let before = body.len();
                // Never fails (an event without fields gets `timecreated`); kept as a match for safety.
                match encoder.encode(&e, body) {
                    Ok(alt) => total.truncated += usize::from(alt.any()),
                    Err(err) => {
                        total.rejected += 1;
                        total.error.get_or_insert_with(|| format!("event {}: {err:?}", e.id.to_uuid_string()));
                        continue;
                    }
                }
                if body.len() > self.body_cap && lines > 0 {
                    // This line starts the next request.
                    tail.clear();
                    tail.extend_from_slice(&body[before..]);
                    body.truncate(before);
                    self.dispatch(scope, &client, &mut inflight, body, lines, &mut total)?;
                    body.clear();
                    body.extend_from_slice(&tail);
                    lines = 0;
                }
                lines += 1;
            }
            if lines > 0 {
                self.dispatch(scope, &client, &mut inflight, body, lines, &mut total)?;
            }
            let prepared = |n: &Batch| self.ahead.as_ref().is_some_and(|a| a.id == n.id);
            if let Some(next) = next.filter(|n| n.id != batch.id && !prepared(n)) {
                body.clear();
                self.ahead = self.encode_ahead(&encoder, next, body);
            }
            if let Some(f) = inflight.take() {
                self.settle(f, &mut total)?;
            }
            Ok(total)
        })
    }

    /// `batch` as one compressed request body, or None when it needs several requests (or an event
    /// does not encode): such a batch is encoded in its own turn.
    fn encode_ahead(&self, encoder: &Encoder, batch: &Batch, body: &mut Vec<u8>) -> Option<Ahead> {
        let mut truncated = 0;
        for e in batch.events() {
            truncated += usize::from(encoder.encode(&e, body).ok()?.any());
            if body.len() > self.body_cap {
                return None;
            }
        }
        let payload = self.compress(body).ok()?;
        Some(Ahead { id: batch.id, payload, lines: batch.len(), body_len: body.len(), truncated })
    }

    /// Prepares the request for `body`, waits for the one in flight, then starts this one.
    fn dispatch<'s>(
        &mut self,
        scope: &'s std::thread::Scope<'s, '_>,
        client: &Client,
        inflight: &mut Option<Flight<'s>>,
        body: &[u8],
        lines: usize,
        total: &mut Written,
    ) -> Result<(), SinkError> {
        let req = self.prepare(client, body)?;
        if let Some(f) = inflight.take() {
            self.settle(f, total)?;
        }
        let handle = scope.spawn(move || InfluxSink::transfer(req));
        *inflight = Some(Flight { handle, lines, body_len: body.len() });
        Ok(())
    }
}

/// Status, `Retry-After` and body of a reply, or the transport error.
type Transfer = Result<(StatusCode, Option<Duration>, String), reqwest::Error>;

/// A request on its way, with what it carries.
struct Flight<'s> {
    handle: std::thread::ScopedJoinHandle<'s, Transfer>,
    lines: usize,
    body_len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(pairs: &[(&str, &str)]) -> InfluxSink {
        InfluxSink::new(&Config::from_pairs(pairs.iter().copied()).unwrap()).unwrap()
    }

    #[test]
    fn urls_per_api() {
        let s = sink(&[
            ("backend", "influxdb1"),
            ("url", "http://h:8086/"),
            ("database", "m d&x"),
            ("retention_policy", "rp"),
        ]);
        assert_eq!(s.write_url(), "http://h:8086/write?db=m+d%26x&rp=rp&precision=ns");
        let s = sink(&[("backend", "influxdb2"), ("url", "https://h/influx"), ("org", "o"), ("token", "t")]);
        assert_eq!(s.write_url(), "https://h/influx/api/v2/write?org=o&bucket=moodle&precision=ns");
        let s = sink(&[("backend", "influxdb3"), ("database", "d")]);
        assert_eq!(
            s.write_url(),
            "http://127.0.0.1:8086/api/v3/write_lp?db=d&precision=nanosecond&accept_partial=true"
        );
    }

    #[test]
    fn gzip_auto_compresses_only_for_servers_off_this_machine() {
        let gz = |url: &str, gzip: &str| sink(&[("backend", "influxdb1"), ("url", url), ("gzip", gzip)]).gzip;
        for local in ["http://127.0.0.1:8086", "http://127.9.9.9", "https://localhost:8086", "http://[::1]:8086"] {
            assert!(!gz(local, "auto"), "{local}");
            assert!(gz(local, "1"), "{local}");
        }
        for remote in ["http://10.0.0.5:8086", "https://influx.example.org", "http://[2001:db8::1]:8086"] {
            assert!(gz(remote, "auto"), "{remote}");
            assert!(!gz(remote, "0"), "{remote}");
        }
        assert_eq!(Config::defaults().get("gzip"), "auto");
    }

    #[test]
    fn bad_settings_are_named() {
        let c = Config::from_pairs([("backend", "influxdb1"), ("measurement", "a\\b")]).unwrap();
        assert!(InfluxSink::new(&c).unwrap_err().starts_with("measurement:"));
        let c = Config::from_pairs([("backend", "influxdb2"), ("org", "o"), ("token", "a\u{7f}b")]).unwrap();
        assert!(InfluxSink::new(&c).unwrap_err().starts_with("token:"));
    }

    #[test]
    fn reply_parsing() {
        assert_eq!(dropped_count("partial write: field type conflict: x dropped=12"), Some(12));
        assert_eq!(dropped_count("partial write"), None);
        let v3 = r#"{"error":"partial write of line protocol occurred","data":[{"original_line":"x","line_number":2,"error_message":"bad"},{"original_line":"y","line_number":5,"error_message":"bad"}]}"#;
        assert_eq!(v3_refused_lines(v3, 10), Some(2));
        assert_eq!(v3_refused_lines(r#"{"error":"x"}"#, 10), None);
        assert_eq!(server_message(r#"{"code":"invalid","message":"m"}"#), "m");
        assert_eq!(server_message(" plain \n"), "plain");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(bound(&"x\n".repeat(1000)).chars().count(), MAX_ERROR_CHARS * 3 / 2 + 1);
    }

    #[test]
    fn classification() {
        let mut s = sink(&[("backend", "influxdb1"), ("username", "u"), ("password", "hunter2")]);
        let c = |s: &mut InfluxSink, code: u16, body: &str, n: usize| {
            s.classify(StatusCode::from_u16(code).unwrap(), Some(Duration::from_secs(3)), body, n, 1000)
        };
        let r = c(
            &mut s,
            400,
            r#"{"error":"partial write: unable to parse 'a': x\nunable to parse 'b': y dropped=1"}"#,
            10,
        )
        .unwrap();
        assert_eq!((r.written, r.rejected), (7, 3));
        let r = c(&mut s, 400, r#"{"error":"unable to parse 'a': x"}"#, 4).unwrap();
        assert_eq!((r.written, r.rejected), (0, 4));
        assert!(matches!(c(&mut s, 400, r#"{"error":"?"}"#, 4), Err(SinkError::Split(_))));
        match c(&mut s, 401, r#"{"error":"authorization failed for hunter2"}"#, 4) {
            Err(SinkError::Config(m)) => assert!(m.starts_with("username/password:") && !m.contains("hunter2"), "{m}"),
            other => panic!("{other:?}"),
        }
        match c(&mut s, 404, r#"{"error":"database not found: \"moodle\""}"#, 4) {
            Err(SinkError::Config(m)) => assert!(m.starts_with("database:"), "{m}"),
            other => panic!("{other:?}"),
        }
        match c(&mut s, 500, r#"{"error":"retention policy not found: x"}"#, 4) {
            Err(SinkError::Config(m)) => assert!(m.starts_with("retention_policy:"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c(&mut s, 413, "", 4), Err(SinkError::Split(_))));
        assert_eq!(s.body_cap, MIN_BODY_CAP);
        assert!(matches!(c(&mut s, 429, "", 4), Err(SinkError::Retry { after: Some(_), .. })));
        assert!(matches!(c(&mut s, 502, "", 4), Err(SinkError::Retry { .. })));
        assert_eq!(c(&mut s, 204, "", 4).unwrap().written, 4);
    }

    #[test]
    fn dialect_detection() {
        assert_eq!(dialect_from(Some("1.6.7~rc0"), true, true, Dialect::Iox), Dialect::Go);
        assert_eq!(dialect_from(Some("v2.7.4"), true, true, Dialect::Iox), Dialect::Go);
        assert_eq!(dialect_from(Some("3.0.1"), true, false, Dialect::Go), Dialect::Iox);
        assert_eq!(dialect_from(None, false, true, Dialect::Go), Dialect::Portable);
        assert_eq!(dialect_from(Some("1.8.0"), false, true, Dialect::Go), Dialect::Portable);
        assert_eq!(dialect_from(None, false, false, Dialect::Iox), Dialect::Iox);
    }
}
