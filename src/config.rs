//! The configuration vocabulary: one set of names for `tsdb_configure()`, the `tsdb.*` php.ini settings
//! and the Moodle plugin's `logstore_tsdb/NAME` settings. `SPECS` is the single source of truth: it
//! validates input, fills defaults, lists the ini entries and is printed in `docs/configuration.md`.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One of a fixed list of words.
    Choice(&'static [&'static str]),
    /// An integer in an inclusive range.
    Int(i64, i64),
    Bool,
    /// `auto`, or a boolean.
    AutoBool,
    Text,
    /// Like `Text`, but never shown back: not in errors, stats, phpinfo() or Debug output.
    Secret,
    /// An `http://` or `https://` base URL.
    Url,
    /// A comma-separated list of tag names, each one of `TAGGABLE`.
    TagList,
    /// A SQL identifier: `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes.
    Ident,
}

pub struct Spec {
    pub key: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub doc: &'static str,
}

pub const BACKENDS: &[&str] = &["file", "influxdb1", "influxdb2", "influxdb3", "postgres"];
pub const MODES: &[&str] = &["async", "sync", "durable"];
/// Event fields that may be InfluxDB tags: low-cardinality columns queries group by.
pub const TAGGABLE: &[&str] = &[
    "eventname",
    "component",
    "action",
    "target",
    "crud",
    "edulevel",
    "contextlevel",
    "origin",
    "courseid",
    "objecttable",
    "contextid",
    "contextinstanceid",
    "anonymous",
    "userid",
];
pub const DEFAULT_TAGS: &str = "eventname,component,action,target,crud,edulevel,contextlevel,origin,courseid";
const MIB: i64 = 1 << 20;

pub const SPECS: &[Spec] = &[
    Spec { key: "backend", kind: Kind::Choice(BACKENDS), default: "file", doc: "Where events go: `file` (local file, no server), `influxdb1`, `influxdb2`, `influxdb3` or `postgres` (TimescaleDB when the extension is present)." },
    Spec { key: "mode", kind: Kind::Choice(MODES), default: "async", doc: "`async`: the call returns at once and the flush thread writes in batches. `sync`: the call waits until its event is written (debugging; bounded by `sync_timeout_ms`). `durable`: like async, and each request's events are appended to a journal in `spool_dir` before the request ends, so even SIGKILL of a worker loses nothing (cost: one write, plus an fsync with `spool_fsync`, per request)." },
    Spec { key: "batch_size", kind: Kind::Int(1, 100_000), default: "5000", doc: "A batch closes at this many events..." },
    Spec { key: "flush_interval_ms", kind: Kind::Int(10, 600_000), default: "1000", doc: "...or when its oldest event is this old, whichever comes first." },
    Spec { key: "memory_limit_bytes", kind: Kind::Int(MIB, 4096 * MIB), default: "67108864", doc: "Cap on events held in memory per process (queued and in flight). Beyond it new events are dropped and counted in `dropped`; the call never blocks." },
    Spec { key: "shutdown_timeout_ms", kind: Kind::Int(0, 600_000), default: "5000", doc: "How long a graceful process exit (CLI end, FPM recycling, SIGQUIT, reload) waits for queued events to be written." },
    Spec { key: "sync_timeout_ms", kind: Kind::Int(1, 600_000), default: "5000", doc: "In `sync` mode, how long one call may wait for its write." },
    Spec { key: "max_string_bytes", kind: Kind::Int(64, 16 * MIB), default: "65536", doc: "Cap for one string value of an event (eventname, ip, ...); longer values are cut at a character boundary and counted in `truncated`." },
    Spec { key: "max_other_bytes", kind: Kind::Int(1024, 64 * MIB), default: "1048576", doc: "Cap for the JSON of `other`; a longer one is replaced by a JSON object `{\"tsdb_truncated\":BYTES,\"head\":\"...\"}` and counted in `truncated`." },
    Spec { key: "retry_base_ms", kind: Kind::Int(1, 600_000), default: "500", doc: "First retry delay; each retry doubles it (full jitter)." },
    Spec { key: "retry_max_ms", kind: Kind::Int(1, 3_600_000), default: "30000", doc: "Cap on one retry delay." },
    Spec { key: "retry_max_elapsed_ms", kind: Kind::Int(0, 86_400_000), default: "180000", doc: "How long one batch is retried before it is counted as `failed`." },
    Spec { key: "spool_dir", kind: Kind::Text, default: "", doc: "Directory of the disk spool (created 0700; an existing one must belong to the PHP user and is narrowed to 0700): batches the backend cannot take go there and are replayed in order when it answers again. Empty: no spool (such batches count as `failed`). Each segment names its target (backend, database, table or measurement; not the server's address): a flush thread replays only its own target's, so a process still configured for an old table never delivers the new one's events there; the replay task (`tsdb_replay_spool()`) delivers every target's to the configured one (other targets' segments are counted in `spool_other_segments`). The Moodle plugin puts it under the site's dataroot." },
    Spec { key: "spool_limit_bytes", kind: Kind::Int(MIB, 1 << 40), default: "1073741824", doc: "Disk cap of the spool; beyond it the oldest segments are dropped and counted in `spool_dropped`." },
    Spec { key: "spool_fsync", kind: Kind::Bool, default: "1", doc: "fsync each spool segment and the directory before counting events as spooled (off: faster, but a power cut can lose the newest segments)." },
    Spec { key: "breaker_open_ms", kind: Kind::Int(100, 3_600_000), default: "30000", doc: "With a spool: after a batch exhausts its retries the circuit opens; batches go straight to the spool and the backend gets one probe per this interval." },
    Spec { key: "path", kind: Kind::Text, default: "/tmp/tsdb-events.lp", doc: "`file` backend: the file events are appended to (created 0600)." },
    Spec { key: "format", kind: Kind::Choice(&["line", "json"]), default: "line", doc: "`file` backend: `line` (InfluxDB line protocol, as the InfluxDB backends send it) or `json` (one JSON object per line)." },
    Spec { key: "url", kind: Kind::Url, default: "http://127.0.0.1:8086", doc: "InfluxDB base URL (`https://` verifies the certificate)." },
    Spec { key: "org", kind: Kind::Text, default: "", doc: "InfluxDB 2.x organisation (name)." },
    Spec { key: "bucket", kind: Kind::Text, default: "moodle", doc: "InfluxDB 2.x bucket." },
    Spec { key: "token", kind: Kind::Secret, default: "", doc: "InfluxDB 2.x/3.x API token (`Authorization: Token`)." },
    Spec { key: "database", kind: Kind::Text, default: "moodle", doc: "InfluxDB 1.x and 3.x database." },
    Spec { key: "retention_policy", kind: Kind::Text, default: "", doc: "InfluxDB 1.x retention policy (empty: the database default)." },
    Spec { key: "create_database", kind: Kind::Bool, default: "0", doc: "InfluxDB 1.x: when `database` (or `retention_policy`) does not exist, for instance after it was dropped, create it and write on: `CREATE DATABASE`, and a missing retention policy `DURATION INF` (adjust it with `ALTER RETENTION POLICY`). With authentication this needs an admin user. Off: a missing database is a configuration error, and the events wait (in the spool) until an admin creates it." },
    Spec { key: "username", kind: Kind::Text, default: "", doc: "InfluxDB 1.x user (HTTP Basic auth; empty: no auth)." },
    Spec { key: "password", kind: Kind::Secret, default: "", doc: "InfluxDB 1.x or PostgreSQL password." },
    Spec { key: "measurement", kind: Kind::Text, default: "moodle_events", doc: "InfluxDB measurement." },
    Spec { key: "tags", kind: Kind::TagList, default: DEFAULT_TAGS, doc: "Event fields written as InfluxDB tags; every other field is a field." },
    Spec { key: "gzip", kind: Kind::AutoBool, default: "auto", doc: "gzip InfluxDB request bodies. `auto`: only when the server is not on this machine (compression trades CPU on both ends for network bytes, and loopback has no bytes to save)." },
    Spec { key: "max_batch_bytes", kind: Kind::Int(1024, 64 * MIB), default: "8388608", doc: "Cap on one InfluxDB request body (before gzip); larger batches are split." },
    Spec { key: "timeout_ms", kind: Kind::Int(100, 600_000), default: "10000", doc: "Request timeout (InfluxDB HTTP)." },
    Spec { key: "connect_timeout_ms", kind: Kind::Int(100, 600_000), default: "3000", doc: "Connect timeout (InfluxDB and PostgreSQL)." },
    Spec { key: "tls_verify", kind: Kind::Bool, default: "1", doc: "Verify TLS certificates. Turn off only for testing." },
    Spec { key: "ca_file", kind: Kind::Text, default: "", doc: "PEM file of CA certificates. InfluxDB https trusts them in addition to the system roots; PostgreSQL `verify-full` trusts only them (like libpq's `sslrootcert`; empty: the system store)." },
    Spec { key: "proxy", kind: Kind::Secret, default: "", doc: "Proxy for every InfluxDB request: `http://[user:password@]host:port` (HTTP proxy; https URLs go through it with CONNECT) or `socks5://[user:password@]host:port`. Empty: connect directly. Proxy environment variables (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) are never used. The Moodle plugin sets it from Moodle's web proxy settings, `proxybypass` applied to `url`." },
    Spec { key: "host", kind: Kind::Text, default: "127.0.0.1", doc: "PostgreSQL host (or a Unix socket directory)." },
    Spec { key: "port", kind: Kind::Int(1, 65_535), default: "5432", doc: "PostgreSQL port." },
    Spec { key: "dbname", kind: Kind::Text, default: "moodle", doc: "PostgreSQL database." },
    Spec { key: "user", kind: Kind::Text, default: "moodle", doc: "PostgreSQL user." },
    Spec { key: "sslmode", kind: Kind::Choice(&["disable", "require", "verify-full"]), default: "disable", doc: "PostgreSQL TLS, as libpq: `disable`, `require` (encrypted, certificate not verified) or `verify-full` (chain and host name verified). Unix sockets never use TLS." },
    Spec { key: "schema", kind: Kind::Ident, default: "public", doc: "PostgreSQL schema." },
    Spec { key: "table", kind: Kind::Ident, default: "logstore_tsdb_log", doc: "PostgreSQL table (same columns as `logstore_standard_log`, plus `time` and `event_id`)." },
    Spec { key: "application_name", kind: Kind::Text, default: "logstore_tsdb", doc: "PostgreSQL `application_name` (shows in pg_stat_activity)." },
    Spec { key: "statement_timeout_ms", kind: Kind::Int(0, 3_600_000), default: "30000", doc: "PostgreSQL statement timeout (0: none)." },
    Spec { key: "idle_close_ms", kind: Kind::Int(0, 86_400_000), default: "60000", doc: "Close the PostgreSQL connection after this long without writes (0: keep open)." },
    Spec { key: "chunk_interval_hours", kind: Kind::Int(1, 8760), default: "168", doc: "TimescaleDB chunk interval in hours: a week by default, so that a year is ~52 chunks for the planner (native PostgreSQL partitioning is always daily)." },
    Spec { key: "retention_days", kind: Kind::Int(0, 36_500), default: "0", doc: "Keep events this many days (0: forever). PostgreSQL: drop whole old partitions; TimescaleDB: retention policy." },
];

pub fn spec(key: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.key == key)
}

/// A validated configuration. Equality is what decides whether `tsdb_configure()` switches sinks.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    hot: Hot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Async,
    Sync,
    Durable,
}

/// The values `tsdb_log_event()` reads on every call, parsed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hot {
    pub mode: Mode,
    pub batch_size: usize,
    pub memory_limit: usize,
    pub max_string: usize,
    pub max_other: usize,
    pub flush_interval_us: i64,
}

impl Hot {
    fn of(values: &BTreeMap<&'static str, String>) -> Hot {
        let int = |k: &str| values.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Hot {
            mode: match values.get("mode").map(String::as_str) {
                Some("sync") => Mode::Sync,
                Some("durable") => Mode::Durable,
                _ => Mode::Async,
            },
            batch_size: int("batch_size").max(1) as usize,
            memory_limit: int("memory_limit_bytes").max(0) as usize,
            max_string: int("max_string_bytes").max(0) as usize,
            max_other: int("max_other_bytes").max(0) as usize,
            flush_interval_us: int("flush_interval_ms") * 1000,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

/// All the problems of one configuration, each naming its key. Never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

fn check(spec: &Spec, raw: &str) -> Result<String, String> {
    let v = raw.trim();
    match spec.kind {
        Kind::Choice(words) => {
            let w = v.to_ascii_lowercase();
            if words.contains(&w.as_str()) {
                Ok(w)
            } else {
                Err(format!("must be one of {}", words.join(", ")))
            }
        }
        Kind::Int(lo, hi) => match v.parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n.to_string()),
            _ => Err(format!("must be an integer between {lo} and {hi}")),
        },
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => Ok("1".into()),
            "0" | "false" | "off" | "no" | "" => Ok("0".into()),
            _ => Err("must be a boolean (1/0, true/false, on/off)".into()),
        },
        Kind::AutoBool if v.eq_ignore_ascii_case("auto") => Ok("auto".into()),
        Kind::AutoBool => check(&Spec { kind: Kind::Bool, ..*spec }, raw)
            .map_err(|_| "must be auto or a boolean (1/0, true/false, on/off)".into()),
        Kind::Text | Kind::Secret => {
            if raw.bytes().any(|b| b == 0 || b == b'\n' || b == b'\r') {
                Err("must not contain NUL or line breaks".into())
            } else {
                Ok(raw.to_string())
            }
        }
        Kind::Url => {
            let lower = v.to_ascii_lowercase();
            let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
            match rest {
                Some(r)
                    if !r.is_empty()
                        && !r.starts_with('/')
                        && !v.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') =>
                {
                    Ok(v.trim_end_matches('/').to_string())
                }
                _ => Err("must be an http:// or https:// base URL without query (e.g. http://127.0.0.1:8086)".into()),
            }
        }
        Kind::TagList => {
            let mut out: Vec<&str> = Vec::new();
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if !TAGGABLE.contains(&t) {
                    return Err(format!("unknown tag \"{}\"; allowed: {}", printable(t), TAGGABLE.join(", ")));
                }
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            Ok(out.join(","))
        }
        Kind::Ident => {
            let ok = !v.is_empty()
                && v.len() <= 63
                && v.bytes()
                    .enumerate()
                    .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
            if ok {
                Ok(v.to_string())
            } else {
                Err("must be a SQL identifier: a letter or _ then letters, digits or _, at most 63 bytes".into())
            }
        }
    }
}

/// A value safe to echo in an error message (bounded, control characters escaped).
fn printable(s: &str) -> String {
    s.chars().take(64).flat_map(char::escape_default).collect()
}

impl Config {
    /// The defaults, overridden by `overrides`. Every problem is reported, each naming its key.
    pub fn from_pairs<'a, I>(overrides: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut values: BTreeMap<&'static str, String> = SPECS.iter().map(|s| (s.key, s.default.to_string())).collect();
        let mut errors = Vec::new();
        for (key, raw) in overrides {
            match spec(key) {
                None => errors.push(format!("{}: unknown configuration key", printable(key))),
                Some(s) => match check(s, raw) {
                    Ok(v) => {
                        values.insert(s.key, v);
                    }
                    Err(why) => errors.push(format!("{}: {}", s.key, why)),
                },
            }
        }
        let hot = Hot::of(&values);
        let cfg = Config { values, hot };
        errors.extend(cfg.cross_checks());
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(errors))
        }
    }

    pub fn defaults() -> Config {
        let values: BTreeMap<&'static str, String> = SPECS.iter().map(|s| (s.key, s.default.to_string())).collect();
        let hot = Hot::of(&values);
        Config { values, hot }
    }

    pub fn hot(&self) -> &Hot {
        &self.hot
    }

    /// Rules that involve more than one key.
    fn cross_checks(&self) -> Vec<String> {
        let mut e = Vec::new();
        let b = self.backend();
        let required: &[&str] = match b {
            "file" => &["path"],
            "influxdb2" => &["org", "bucket", "token"],
            "influxdb1" | "influxdb3" => &["database"],
            _ => &[],
        };
        if self.mode() == "durable" && self.get("spool_dir").trim().is_empty() {
            e.push("spool_dir: required for mode durable (the journal lives there)".into());
        }
        for key in required {
            if self.get(key).trim().is_empty() {
                e.push(format!("{key}: required for backend {b}"));
            }
        }
        if self.get("measurement").is_empty() {
            e.push("measurement: must not be empty".into());
        }
        if self.get("measurement").starts_with('_') {
            e.push("measurement: names starting with _ are reserved by InfluxDB".into());
        }
        let proxy = self.get("proxy").trim();
        let scheme = proxy.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !proxy.is_empty() && !matches!(scheme.as_deref(), Some("http" | "https" | "socks5" | "socks5h")) {
            e.push("proxy: must be an http://, https://, socks5:// or socks5h:// URL, or empty".into());
        }
        if self.int("retry_max_ms") < self.int("retry_base_ms") {
            e.push("retry_max_ms: must not be smaller than retry_base_ms".into());
        }
        e
    }

    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    /// Integer settings are validated at construction; a key of another kind reads as 0.
    pub fn int(&self, key: &str) -> i64 {
        self.get(key).parse().unwrap_or(0)
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == "1"
    }

    pub fn ms(&self, key: &str) -> Duration {
        Duration::from_millis(self.int(key).max(0) as u64)
    }

    pub fn backend(&self) -> &str {
        self.get("backend")
    }

    pub fn mode(&self) -> &str {
        self.get("mode")
    }

    pub fn batch_size(&self) -> usize {
        self.hot.batch_size
    }

    pub fn memory_limit(&self) -> usize {
        self.hot.memory_limit
    }

    pub fn tags(&self) -> Vec<&str> {
        self.get("tags").split(',').filter(|t| !t.is_empty()).collect()
    }

    /// What is allowed but unsafe, shown in `tsdb_stats()['warning']`: credentials or events crossing
    /// the network in clear text (a loopback host or a Unix socket stays on the machine).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match self.backend() {
            "influxdb1" | "influxdb2" | "influxdb3" => {
                let url = self.get("url");
                let credentials = ["token", "password"].iter().any(|k| !self.get(k).is_empty());
                let plain = url.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("http://"));
                if credentials && plain && !url_is_loopback(url) {
                    w.push(format!(
                        "url: the InfluxDB credentials cross the network in clear text (http:// to {}); use https://",
                        url_host(url)
                    ));
                }
            }
            "postgres" => {
                let host = self.get("host");
                if self.get("sslmode") == "disable" && !host.starts_with('/') && !is_loopback(host) {
                    w.push(format!(
                        "sslmode: events cross the network unencrypted (disable, to {host}); use verify-full"
                    ));
                }
            }
            _ => {}
        }
        w
    }

    /// The secrets this configuration holds, to scrub from any text before it is shown.
    pub fn secrets(&self) -> Vec<&str> {
        SPECS.iter().filter(|s| s.kind == Kind::Secret).map(|s| self.get(s.key)).filter(|v| !v.is_empty()).collect()
    }

    /// Every key with its value, secrets replaced by `********` when set.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        SPECS
            .iter()
            .map(|s| {
                let v = self.get(s.key);
                let shown =
                    if s.kind == Kind::Secret && !v.is_empty() { "********".to_string() } else { v.to_string() };
                (s.key, shown)
            })
            .collect()
    }

    /// Replaces every secret of this configuration found in `text` by `********`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets() {
            out = out.replace(s, "********");
        }
        out
    }
}

/// The table of every key for `docs/configuration.md` (kept in sync by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| key (`tsdb_configure()`, `tsdb.KEY` in php.ini, `logstore_tsdb/KEY`) | default | allowed | meaning |\n|---|---|---|---|\n");
    for s in SPECS {
        let allowed = match s.kind {
            Kind::Choice(w) => w.join(" / "),
            Kind::Int(lo, hi) => format!("{lo} … {hi}"),
            Kind::Bool => "1 / 0".into(),
            Kind::AutoBool => "auto / 1 / 0".into(),
            Kind::Text => "text".into(),
            Kind::Secret => "text (secret: never shown back)".into(),
            Kind::Url => "http(s) URL".into(),
            Kind::TagList => format!("comma list of: {}", TAGGABLE.join(", ")),
            Kind::Ident => "SQL identifier".into(),
        };
        let default = if s.default.is_empty() { "(empty)".to_string() } else { format!("`{}`", s.default) };
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", s.key, default, allowed, s.doc));
    }
    out
}

/// The host of a `url` value (`scheme://[user@]host[:port][/path]`), an IPv6 address without its brackets.
/// Taken from the text as configured, so that any host the `url` setting accepts has one.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    }
}

/// Whether the `url` value names this machine: `localhost` or a loopback address.
pub fn url_is_loopback(url: &str) -> bool {
    is_loopback(url_host(url))
}

/// `localhost` or a loopback IP address (`host` without brackets).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_doc_lists_every_key() {
        const BEGIN: &str = "<!-- BEGIN GENERATED: config::markdown_table -->\n";
        const END: &str = "<!-- END GENERATED -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let (head, rest) = doc.split_once(BEGIN).unwrap_or((&doc, END));
        let tail = rest.split_once(END).map_or("", |(_, t)| t);
        let want = format!("{head}{BEGIN}{}{END}{tail}", markdown_table());
        if std::env::var_os("TSDB_REGEN_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        assert_eq!(doc, want, "docs/configuration.md is stale: run TSDB_REGEN_DOCS=1 cargo test --no-default-features");
    }

    #[test]
    fn defaults_are_valid() {
        for s in SPECS {
            assert_eq!(check(s, s.default).as_deref(), Ok(s.default), "default of {}", s.key);
        }
        let c = Config::from_pairs([]).unwrap();
        assert_eq!(c.backend(), "file");
        assert_eq!(c.batch_size(), 5000);
        assert_eq!(c.int("flush_interval_ms"), 1000);
        assert_eq!(c.memory_limit(), 64 << 20);
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = Config::from_pairs([
            ("batch_size", "0"),
            ("backend", "mysql"),
            ("bogus", "1"),
            ("url", "ftp://x"),
            ("schema", "public; drop table x"),
            ("tags", "eventname,ip"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for k in ["batch_size:", "backend:", "bogus:", "url:", "schema:", "tags:"] {
            assert!(text.contains(k), "{k} missing from {text}");
        }
        assert_eq!(err.0.len(), 6);
    }

    #[test]
    fn secrets_never_shown() {
        let c = Config::from_pairs([("backend", "postgres"), ("password", "hunter2")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.redact("auth failed for hunter2"), "auth failed for ********");
        let bad = Config::from_pairs([("password", "a\nb")]).unwrap_err().to_string();
        assert!(!bad.contains("a\nb"));
    }

    #[test]
    fn cross_key_rules() {
        let e = Config::from_pairs([("backend", "influxdb2")]).unwrap_err().to_string();
        assert!(e.contains("org: required") && e.contains("token: required"), "{e}");
        let ok = Config::from_pairs([("backend", "influxdb2"), ("org", "o"), ("token", "t")]).unwrap();
        assert_eq!(ok.get("bucket"), "moodle");
        assert_eq!(Config::from_pairs([("url", "http://h:1/")]).unwrap().get("url"), "http://h:1");
    }

    #[test]
    fn equal_configs_compare_equal() {
        let a = Config::from_pairs([("batch_size", "10")]).unwrap();
        let b = Config::from_pairs([("batch_size", " 10 ")]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, Config::defaults());
    }

    #[test]
    fn clear_text_credentials_and_events_are_warned_about_off_the_machine_only() {
        let w = |pairs: &[(&str, &str)]| Config::from_pairs(pairs.iter().copied()).unwrap().warnings();
        let v2 = |url| w(&[("backend", "influxdb2"), ("org", "o"), ("token", "tok-1"), ("url", url)]);
        let off = v2("http://user@10.0.0.5:8086/x");
        assert_eq!(
            off,
            ["url: the InfluxDB credentials cross the network in clear text (http:// to 10.0.0.5); use https://"]
        );
        assert!(!off[0].contains("tok-1"));
        assert_eq!(v2("HTTP://[2001:db8::1]:8086").len(), 1);
        for quiet in ["https://10.0.0.5:8086", "http://127.0.0.1:8086", "http://[::1]:8086", "http://LOCALHOST"] {
            assert!(v2(quiet).is_empty(), "{quiet}");
        }
        // No credentials, nothing to leak.
        assert!(w(&[("backend", "influxdb1"), ("database", "d"), ("url", "http://10.0.0.5")]).is_empty());
        assert_eq!(w(&[("backend", "influxdb1"), ("database", "d"), ("url", "http://db"), ("password", "p")]).len(), 1);
        let pg = |host, ssl| w(&[("backend", "postgres"), ("host", host), ("sslmode", ssl)]);
        assert_eq!(
            pg("db.example", "disable"),
            ["sslmode: events cross the network unencrypted (disable, to db.example); use verify-full"]
        );
        for (host, ssl) in [("db.example", "verify-full"), ("127.0.0.1", "disable"), ("/var/run/postgresql", "disable")]
        {
            assert!(pg(host, ssl).is_empty(), "{host} {ssl}");
        }
    }
}
