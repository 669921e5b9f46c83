//! The PostgreSQL / TimescaleDB sink: one binary `COPY` per batch, exactly once.
//!
//! - The connection is made lazily, in the flush thread, on the first write, and closed by `idle()`.
//!   On connect the sink creates or upgrades its objects (`schema`), then keeps them up: partitions
//!   ahead of time and retention (native layout), TimescaleDB policies (hypertable).
//! - Each batch is one transaction: advisory lock on the batch's producer, read the ledger ranges of
//!   that producer overlapping the batch, `COPY ... FROM STDIN (FORMAT binary)` of the events not yet
//!   covered, record the new ranges in the ledger, commit. A batch retried after a timeout, a lost
//!   commit acknowledgement or a crash, or re-cut differently by a replay, is therefore never
//!   inserted twice. See docs/postgres.md.
//! - The catalog is believed over the sink's own record: a table that went away (dropped, a restore
//!   without it) is created again by the next write, its ledger emptied (`schema`), and reported through
//!   `Sink::take_recreated`. A table changed so that the sink cannot write into it (a column dropped or of
//!   another type, a right revoked, a hypertable turned plain) is one `Config` error naming it (`check`).
//! - Errors: network, timeouts, server restarts → `Retry`; authentication, missing database or
//!   privilege, incompatible table → `Config` (naming the setting, never the password); a value a
//!   column refuses (SQLSTATE classes 22, 23, 54) → `Split`, so the pipeline isolates the event.
//! - TLS (rustls, `tls` below), as libpq: `sslmode=disable` plain TCP; `require` encrypted, the
//!   certificate not checked; `verify-full` chain checked against `ca_file` (else the system store)
//!   and the host name against the certificate. A certificate that does not verify, or a server
//!   without TLS, is a `Config` error naming `sslmode`/`ca_file`.

mod check;
mod copy;
mod schema;
mod timescale;

pub use copy::{push_json, push_text, COLUMNS};
pub use schema::{civil_from_days, days_from_civil, Layout, Names, DAY_SECS, DAY_US, MAX_FUTURE_DAYS, PREMAKE_DAYS};

use super::{Batch, BatchId, Sink, SinkError, Written};
use crate::config::Config;
use ::postgres::error::SqlState;
use ::postgres::{Client, NoTls, Statement};
use schema::Settings;
use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Errors inside the sink, classified into a `SinkError` at the end of a write.
#[derive(Debug)]
pub enum Error {
    Pg(::postgres::Error),
    Io(std::io::Error),
    Sink(SinkError),
}

impl From<::postgres::Error> for Error {
    fn from(e: ::postgres::Error) -> Self {
        Error::Pg(e)
    }
}

impl From<SinkError> for Error {
    fn from(e: SinkError) -> Self {
        Error::Sink(e)
    }
}

/// The wall clock in microseconds since the epoch (replaceable for tests).
pub type Clock = Box<dyn Fn() -> i64 + Send>;
/// Called inside the write transaction, after the COPY and the ledger insert, before COMMIT, with
/// the backend pid (tests kill the connection there).
pub type Hook = Box<dyn FnMut(i32) + Send>;

fn system_clock() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Connection settings, read once from the configuration.
#[derive(Clone)]
struct ConnSettings {
    host: String,
    port: u16,
    dbname: String,
    user: String,
    password: String,
    sslmode: String,
    ca_file: String,
    application_name: String,
    connect_timeout: Duration,
}

struct Conn {
    client: Client,
    pid: i32,
    layout: Layout,
    /// Native layout: the days whose partition is known to exist.
    partitions: BTreeSet<i64>,
    next_maintenance_us: i64,
    maintenance_day: i64,
    covered: Statement,
    record: Statement,
    copy: Statement,
}

/// What the last maintenance did (for tests and diagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub created: Vec<i64>,
    pub dropped: Vec<i64>,
    pub ledger_pruned: u64,
    pub warning: Option<String>,
}

pub struct PostgresSink {
    conn_settings: ConnSettings,
    settings: Settings,
    names: Names,
    config: Config,
    conn: Option<Conn>,
    clock: Clock,
    before_commit: Option<Hook>,
    buf: Vec<u8>,
    last_maintenance: Maintenance,
    /// The TLS connector (`sslmode` require/verify-full), built on the first connection: reading the
    /// system's CA store takes milliseconds. Dropped after a `Config` error, so a fixed `ca_file` or
    /// system store is read again.
    tls: Option<MakeRustlsConnect>,
    /// What `schema::ensure` created again since `take_recreated` was last called.
    recreated: Vec<String>,
}

/// One encoded row: its sequence number and its bytes in the COPY buffer.
struct Row {
    seq: u64,
    start: usize,
    end: usize,
}

const COPY_CHUNK: usize = 1 << 20;

impl PostgresSink {
    /// Reads the configuration; no I/O (the connection is made on the first write).
    pub fn new(config: &Config) -> Result<PostgresSink, String> {
        let port = u16::try_from(config.int("port")).map_err(|_| "port: out of range".to_string())?;
        // Every configuration has it, with its default (a week) and checked to be 1..=8760 hours.
        let chunk_hours = config.int("chunk_interval_hours");
        Ok(PostgresSink {
            conn_settings: ConnSettings {
                host: config.get("host").to_string(),
                port,
                dbname: config.get("dbname").to_string(),
                user: config.get("user").to_string(),
                password: config.get("password").to_string(),
                sslmode: config.get("sslmode").to_string(),
                ca_file: config.get("ca_file").to_string(),
                application_name: config.get("application_name").to_string(),
                connect_timeout: config.ms("connect_timeout_ms"),
            },
            settings: Settings {
                retention_days: config.int("retention_days").max(0),
                chunk_hours,
                statement_timeout_ms: config.int("statement_timeout_ms").max(0),
            },
            names: Names::new(config.get("schema"), config.get("table")),
            config: config.clone(),
            conn: None,
            clock: Box::new(system_clock),
            before_commit: None,
            buf: Vec::new(),
            last_maintenance: Maintenance::default(),
            tls: None,
            recreated: Vec::new(),
        })
    }

    /// Replaces the wall clock (microseconds since the epoch): partition days, retention and the
    /// maintenance schedule follow it. For tests.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
        if let Some(c) = self.conn.as_mut() {
            c.next_maintenance_us = i64::MIN;
        }
    }

    /// Installs a hook run before each COMMIT (tests kill the connection there).
    pub fn set_before_commit_hook(&mut self, hook: Option<Hook>) {
        self.before_commit = hook;
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The layout of the connected table (`None` before the first successful connection).
    pub fn layout(&self) -> Option<&Layout> {
        self.conn.as_ref().map(|c| &c.layout)
    }

    pub fn backend_pid(&self) -> Option<i32> {
        self.conn.as_ref().map(|c| c.pid)
    }

    pub fn last_maintenance(&self) -> &Maintenance {
        &self.last_maintenance
    }

    /// Connects (creating the schema) and runs maintenance now, whatever the schedule says.
    pub fn maintain(&mut self) -> Result<Maintenance, SinkError> {
        let now = (self.clock)();
        let r = self.connect().and_then(|()| self.run_maintenance(now));
        match r {
            Ok(m) => Ok(m),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Whether this connection uses TLS: `sslmode` is not `disable` and the host is not a Unix
    /// socket directory (as libpq, TLS is never tried over a Unix socket).
    fn wants_tls(&self) -> bool {
        let s = &self.conn_settings;
        s.sslmode != "disable" && !s.host.starts_with('/')
    }

    fn pg_config(&self) -> ::postgres::Config {
        let s = &self.conn_settings;
        let ssl_mode =
            if self.wants_tls() { ::postgres::config::SslMode::Require } else { ::postgres::config::SslMode::Disable };
        let mut c = ::postgres::Config::new();
        c.host(&s.host)
            .port(s.port)
            .dbname(&s.dbname)
            .user(&s.user)
            .application_name(&s.application_name)
            .ssl_mode(ssl_mode)
            .connect_timeout(s.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            // Unacknowledged data for this long means the peer is gone (a half-open TCP connection
            // would otherwise hang a COPY forever).
            .tcp_user_timeout(Duration::from_millis((self.settings.statement_timeout_ms as u64).max(30_000) + 30_000));
        if !s.password.is_empty() {
            c.password(&s.password);
        }
        c
    }

    fn connect(&mut self) -> Result<(), Error> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut client = if self.wants_tls() {
            let tls = match &self.tls {
                Some(t) => t.clone(),
                None => {
                    let t = tls::connector(&self.conn_settings.sslmode, &self.conn_settings.ca_file)?;
                    self.tls = Some(t.clone());
                    t
                }
            };
            self.pg_config().connect(tls)?
        } else {
            self.pg_config().connect(NoTls)?
        };
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[])?.get(0);
        let ensured = schema::ensure(&mut client, &self.names, &self.settings)?;
        self.recreated.extend(ensured.recreated);
        let layout = ensured.layout;
        let n = &self.names;
        let ledger = n.q(&n.ledger());
        let covered = client.prepare(&format!(
            "SELECT first_seq, last_seq FROM {ledger} WHERE producer = $1::bigint AND first_seq <= $3::bigint AND last_seq >= $2::bigint \
             ORDER BY first_seq"
        ))?;
        // Records the range [$2, $3], merged with the producer's adjacent ranges (before and after)
        // when there are any: in the common case the ledger holds one row per process.
        let record = client.prepare(&format!(
            "WITH next AS (DELETE FROM {ledger} WHERE producer = $1::bigint AND first_seq = $3::bigint + 1 \
             RETURNING last_seq), \
             prev AS (UPDATE {ledger} SET last_seq = coalesce((SELECT last_seq FROM next), $3::bigint), \
             committed_at = now() WHERE producer = $1::bigint AND last_seq = $2::bigint - 1 RETURNING 1) \
             INSERT INTO {ledger} (producer, first_seq, last_seq) \
             SELECT $1::bigint, $2::bigint, coalesce((SELECT last_seq FROM next), $3::bigint) \
             WHERE NOT EXISTS (SELECT 1 FROM prev)"
        ))?;
        let cols: Vec<String> = COLUMNS.iter().map(|c| schema::quote_ident(c.name)).collect();
        let copy = client.prepare(&format!("COPY {} ({}) FROM STDIN (FORMAT binary)", n.main(), cols.join(", ")))?;
        let partitions =
            if layout == Layout::Native { schema::existing_partitions(&mut client, n)? } else { BTreeSet::new() };
        self.conn = Some(Conn {
            client,
            pid,
            layout,
            partitions,
            next_maintenance_us: i64::MIN,
            maintenance_day: i64::MIN,
            covered,
            record,
            copy,
        });
        Ok(())
    }

    /// Hourly, and whenever the UTC day changes: partitions ahead, retention, ledger pruning.
    fn maybe_maintain(&mut self, now_us: i64) -> Result<Option<String>, Error> {
        let Some(c) = self.conn.as_ref() else { return Ok(None) };
        if now_us < c.next_maintenance_us && now_us.div_euclid(DAY_US) == c.maintenance_day {
            return Ok(None);
        }
        Ok(self.run_maintenance(now_us)?.warning)
    }

    fn run_maintenance(&mut self, now_us: i64) -> Result<Maintenance, Error> {
        let (names, settings) = (self.names.clone(), self.settings.clone());
        let Some(c) = self.conn.as_mut() else { return Ok(Maintenance::default()) };
        c.next_maintenance_us = now_us.saturating_add(3_600_000_000);
        c.maintenance_day = now_us.div_euclid(DAY_US);
        let today = c.maintenance_day;
        let now_s = now_us.div_euclid(1_000_000);
        let mut m = Maintenance::default();
        let mut warnings = Vec::new();
        match c.layout {
            Layout::Native => {
                // Creating is needed for writing: its errors are the write's errors.
                let want: Vec<i64> = (today..=today + PREMAKE_DAYS).filter(|d| !c.partitions.contains(d)).collect();
                schema::create_partitions(&mut c.client, &names, &settings, &want)?;
                c.partitions.extend(&want);
                m.created = want;
                match schema::drop_expired_partitions(&mut c.client, &names, &settings, now_s) {
                    Ok(days) => {
                        for d in &days {
                            c.partitions.remove(d);
                        }
                        m.dropped = days;
                    }
                    Err(e) => warnings.push(format!("retention: could not drop old partitions: {}", describe(&e))),
                }
            }
            Layout::Timescale { tsl: false, .. } => {
                if let Err(e) = schema::drop_expired_chunks(&mut c.client, &names, &settings, now_s) {
                    warnings.push(format!("retention: drop_chunks failed: {}", describe(&e)));
                }
            }
            Layout::Timescale { tsl: true, .. } => {} // the retention policy does it
        }
        match schema::prune_ledger(&mut c.client, &names, &settings) {
            Ok(n) => m.ledger_pruned = n,
            Err(e) => warnings.push(format!("ledger: pruning failed: {}", describe(&e))),
        }
        m.warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        self.last_maintenance = m.clone();
        Ok(m)
    }

    fn write_inner(&mut self, batch: &Batch) -> Result<Written, Error> {
        self.connect()?;
        let now_us = (self.clock)();
        let warning = self.maybe_maintain(now_us)?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(SinkError::Retry { msg: "postgres: not connected".into(), after: None }.into());
        };
        let native = conn.layout == Layout::Native;
        let today = now_us.div_euclid(DAY_US);
        let retention_days = self.settings.retention_days;
        // A day whose whole partition/chunk is past retention is not written (it would be dropped).
        let oldest_day = if retention_days > 0 {
            (now_us.div_euclid(1_000_000) - retention_days * DAY_SECS).div_euclid(DAY_SECS)
        } else {
            i64::MIN
        };

        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        copy::header(&mut buf);
        let mut rows: Vec<Row> = Vec::with_capacity(batch.len());
        let mut days = BTreeSet::new();
        let (mut rejected, mut truncated) = (0usize, 0usize);
        let mut error: Option<String> = None;
        for e in batch.events() {
            let day = copy::time_us(&e).div_euclid(DAY_US);
            let refuse = if day < oldest_day {
                Some(format!("older than retention_days ({retention_days}): not written"))
            } else if native && day > today + MAX_FUTURE_DAYS {
                Some(format!("more than {MAX_FUTURE_DAYS} days in the future: not written"))
            } else {
                None
            };
            let start = buf.len();
            let r = match refuse {
                Some(why) => Err(copy::RowError(why)),
                None => copy::encode_row(&mut buf, &e),
            };
            match r {
                Ok(altered) => {
                    truncated += usize::from(altered);
                    rows.push(Row { seq: e.id.seq, start, end: buf.len() });
                    days.insert(day);
                }
                Err(copy::RowError(why)) => {
                    rejected += 1;
                    error.get_or_insert_with(|| format!("event {}: {why}", e.id.to_uuid_string()));
                }
            }
        }
        copy::trailer(&mut buf);

        if native {
            let missing: Vec<i64> = days.iter().copied().filter(|d| !conn.partitions.contains(d)).collect();
            if !missing.is_empty() {
                schema::create_partitions(&mut conn.client, &self.names, &self.settings, &missing)?;
                conn.partitions.extend(missing);
            }
        }

        // Every sequence number of the batch, the refused events' too (they are settled as well). An import's
        // numbers are its source's ids, which can have gaps.
        let mut seqs: Vec<u64> = batch.events().map(|e| e.id.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let result = transact(conn, &self.settings, &self.names, batch.id, &buf, &rows, &seqs, &mut self.before_commit);
        self.buf = buf;
        result?;
        Ok(Written { written: rows.len(), rejected, error: error.or(warning), truncated })
    }

    /// Turns an error into the pipeline's vocabulary; drops the connection unless it is still usable.
    fn fail(&mut self, e: Error) -> SinkError {
        if let Some(problem) = self.changed_table(&e) {
            self.conn = None;
            return SinkError::Config(self.config.redact(&problem));
        }
        let (err, keep) = classify(&e, &self.conn_settings, &self.names);
        if !keep {
            self.conn = None;
        }
        if matches!(err, SinkError::Config(_)) {
            self.tls = None;
        }
        match err {
            SinkError::Retry { msg, after } => SinkError::Retry { msg: self.config.redact(&msg), after },
            SinkError::Split(msg) => SinkError::Split(self.config.redact(&msg)),
            SinkError::Config(msg) => SinkError::Config(self.config.redact(&msg)),
        }
    }

    /// After a write refused as a whole for a reason the table's shape or rights could explain (SQLSTATE
    /// classes 42, 0A, 22, and a NOT NULL violation): what the catalog says is wrong with the table, if
    /// anything. Without this a column changed to another type would make every event "refused" one by
    /// one, and a dropped column or a revoked right would show only PostgreSQL's words.
    fn changed_table(&mut self, e: &Error) -> Option<String> {
        let code = db_error(e)?.code().code();
        if !(["42", "0A", "22"].contains(&code.get(..2).unwrap_or(code)) || code == "23502") {
            return None;
        }
        // Without a connection the error came from connecting, which checks the table itself.
        let c = self.conn.as_mut()?;
        if let Ok(found) = check::table(&mut c.client, &self.names, &c.layout, self.settings.chunk_hours) {
            return found;
        }
        // A COPY refused at its start leaves the connection unusable (tokio-postgres): a new one runs the
        // same check while connecting (`schema::ensure`).
        self.conn = None;
        match self.connect() {
            Err(Error::Sink(SinkError::Config(problem))) => Some(problem),
            _ => None,
        }
    }
}

/// The server's error inside `e`, also when it ended a COPY.
fn db_error(e: &Error) -> Option<&::postgres::error::DbError> {
    match e {
        Error::Pg(pg) => pg.as_db_error(),
        Error::Io(io) => io.get_ref()?.downcast_ref::<::postgres::Error>()?.as_db_error(),
        Error::Sink(_) => None,
    }
}

/// The connection is gone: closed under the client, a socket error, or the server's own
/// "terminating connection" (57P01 administrator command, 57P02 crash of another backend).
fn connection_lost(e: &Error) -> bool {
    if let Some(d) = db_error(e) {
        return matches!(d.code().code(), "57P01" | "57P02");
    }
    match e {
        Error::Pg(pg) => pg.is_closed() || std::error::Error::source(pg).is_some_and(|s| s.is::<std::io::Error>()),
        Error::Io(_) => true,
        Error::Sink(_) => false,
    }
}

/// A relation the write needs is gone: the table or the ledger (42P01), or the day's partition (23514
/// without a constraint: "no partition of relation found for row").
fn relation_missing(e: &Error) -> bool {
    db_error(e).is_some_and(|d| {
        *d.code() == SqlState::UNDEFINED_TABLE || (*d.code() == SqlState::CHECK_VIOLATION && d.constraint().is_none())
    })
}

/// One batch's transaction. Returns the number of rows copied (0 when the ledger covered them all).
#[allow(clippy::too_many_arguments)]
fn transact(
    conn: &mut Conn,
    settings: &Settings,
    names: &Names,
    id: BatchId,
    buf: &[u8],
    rows: &[Row],
    seqs: &[u64],
    hook: &mut Option<Hook>,
) -> Result<usize, Error> {
    let producer = id.producer as i64;
    let lock = (names.lock_class("ledger"), ((id.producer >> 32) ^ id.producer) as u32 as i32);
    schema::begin_locked(&mut conn.client, settings, Some(lock), false)?;
    let r = (|| -> Result<usize, Error> {
        let ranges: Vec<(u64, u64)> = conn
            .client
            .query(&conn.covered, &[&producer, &(id.first_seq as i64), &(id.last_seq as i64)])?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
            .collect();
        let covered = |seq: u64| ranges.iter().any(|&(a, b)| a <= seq && seq <= b);
        // The runs of the batch's sequence numbers not covered yet: each from one number of the batch to the
        // next one it holds, so that a gap between them (numbers no event of this producer has) is not a
        // hole in the ledger.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut prev_covered = true;
        for &seq in seqs {
            if covered(seq) {
                prev_covered = true;
                continue;
            }
            match runs.last_mut() {
                Some((_, b)) if !prev_covered => *b = seq,
                _ => runs.push((seq, seq)),
            }
            prev_covered = false;
        }
        if runs.is_empty() {
            return Ok(0);
        }
        let selected: Vec<&Row> = rows.iter().filter(|r| !covered(r.seq)).collect();
        if !selected.is_empty() {
            let mut w = conn.client.copy_in(&conn.copy)?;
            let io = |e: std::io::Error| Error::Io(e);
            if selected.len() == rows.len() {
                for chunk in buf.chunks(COPY_CHUNK) {
                    w.write_all(chunk).map_err(io)?;
                }
            } else {
                let mut part = Vec::with_capacity(COPY_CHUNK);
                copy::header(&mut part);
                for r in &selected {
                    part.extend_from_slice(&buf[r.start..r.end]);
                    if part.len() >= COPY_CHUNK {
                        w.write_all(&part).map_err(io)?;
                        part.clear();
                    }
                }
                copy::trailer(&mut part);
                w.write_all(&part).map_err(io)?;
            }
            w.finish()?;
        }
        for (a, b) in &runs {
            conn.client.execute(&conn.record, &[&producer, &(*a as i64), &(*b as i64)])?;
        }
        if let Some(h) = hook.as_mut() {
            h(conn.pid);
        }
        Ok(selected.len())
    })();
    match r {
        Ok(n) => {
            conn.client.batch_execute("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// A short, single-line description of an error (server message and SQLSTATE; never the detail,
/// which can quote a whole row).
pub fn describe(e: &Error) -> String {
    match e {
        Error::Pg(e) => describe_pg(e),
        Error::Io(e) => one_line(e.to_string()),
        Error::Sink(e) => one_line(e.message().to_string()),
    }
}

fn describe_pg(e: &::postgres::Error) -> String {
    let s = match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s.push_str(": ");
                s.push_str(&x.to_string());
                src = x.source();
            }
            s
        }
    };
    one_line(s)
}

fn one_line(s: String) -> String {
    let mut s = s.replace(['\n', '\r'], " ");
    if s.len() > 400 {
        let cut = crate::record::utf8_floor(s.as_bytes(), 400);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Classifies an error; the bool says whether the connection is still usable.
fn classify(e: &Error, cs: &ConnSettings, names: &Names) -> (SinkError, bool) {
    let retry = |msg: String| SinkError::Retry { msg, after: None };
    let pg = match e {
        Error::Sink(s) => return (s.clone(), true),
        Error::Io(io) => {
            // A COPY write failed: the connection is gone (or the server ended the COPY).
            if let Some(inner) = io.get_ref().and_then(|x| x.downcast_ref::<::postgres::Error>()) {
                if inner.as_db_error().is_some() {
                    return classify_db(inner, cs, names);
                }
            }
            return (retry(format!("postgres: connection lost during COPY: {io}")), false);
        }
        Error::Pg(pg) => pg,
    };
    if pg.as_db_error().is_some() {
        return classify_db(pg, cs, names);
    }
    if let Some(err) = tls::classify(pg, cs) {
        return (err, false);
    }
    let where_ = format!("{}:{}", cs.host, cs.port);
    (retry(format!("postgres: {where_}: {}", describe(e))), false)
}

fn classify_db(pg: &::postgres::Error, cs: &ConnSettings, names: &Names) -> (SinkError, bool) {
    let retry = |msg: String| SinkError::Retry { msg, after: None };
    let Some(d) = pg.as_db_error() else {
        return (retry(format!("postgres: {pg}")), false);
    };
    let code = d.code().code();
    let text = describe_pg(pg);
    let class = &code[..2.min(code.len())];
    match code {
        "28P01" | "28000" => (
            SinkError::Config(format!(
                "user/password: PostgreSQL refused the login of user \"{}\" to database \"{}\" on {}:{} ({text}); \
                 check user and password (and pg_hba.conf)",
                cs.user, cs.dbname, cs.host, cs.port
            )),
            false,
        ),
        "3D000" => (
            SinkError::Config(format!(
                "dbname: database \"{}\" does not exist on {}:{} ({text})",
                cs.dbname, cs.host, cs.port
            )),
            false,
        ),
        "3F000" => (SinkError::Config(format!("schema: {text}")), false),
        "42501" => (
            SinkError::Config(format!(
                "user: \"{}\" lacks a privilege on {} ({text}); grant it or have the owner create the objects \
                 (docs/postgres.md)",
                cs.user,
                names.main()
            )),
            false,
        ),
        // No partition for a row: someone dropped it; reconnecting reloads the partition list.
        "23514" if d.constraint().is_none() => (retry(format!("postgres: {text}")), false),
        // The table (or a partition) disappeared: reconnecting recreates the schema.
        "42P01" => (retry(format!("table: {text}")), false),
        _ => match class {
            "22" | "23" | "54" => (SinkError::Split(format!("postgres refused a value: {text}")), true),
            "08" | "53" | "57" | "40" | "55" | "58" | "XX" | "25" => (retry(format!("postgres: {text}")), false),
            "42" | "0A" => (SinkError::Config(format!("table: {} is not usable: {text}", names.main())), false),
            _ => (retry(format!("postgres: {text}")), false),
        },
    }
}

impl Sink for PostgresSink {
    fn write(&mut self, batch: &Batch) -> Result<Written, SinkError> {
        let reused = self.conn.is_some();
        let r = match self.write_inner(batch) {
            // Dropped under this connection: a new one asks the catalog and creates what is missing
            // (`schema::ensure`), and the batch goes again at once.
            Err(e) if relation_missing(&e) => {
                self.conn = None;
                self.write_inner(batch)
            }
            // The kept connection died while idle (the server restarted, a proxy or firewall closed
            // it): one new connection at once, so the first batch after an outage is not failed
            // (and the breaker's probe not wasted) on a socket that was dead before it was sent.
            // The ledger makes the second try exactly once even if the first one had committed.
            Err(e) if reused && connection_lost(&e) => {
                self.conn = None;
                self.write_inner(batch)
            }
            r => r,
        };
        r.map_err(|e| self.fail(e))
    }

    fn idle(&mut self) {
        self.conn = None;
    }

    fn take_recreated(&mut self) -> Vec<String> {
        std::mem::take(&mut self.recreated)
    }
}

/// TLS for the connection: rustls (the same version and `ring` provider as reqwest's) through
/// `tokio-postgres-rustls`.
mod tls {
    use super::ConnSettings;
    use crate::sink::SinkError;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, InvalidDnsNameError, ServerName, UnixTime};
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
    use std::sync::Arc;
    use tokio_postgres_rustls::MakeRustlsConnect;

    /// The connector for `sslmode` `require` (no certificate verification) or `verify-full` (chain
    /// against `ca_file`, else the system's CA store, and host name).
    pub(super) fn connector(sslmode: &str, ca_file: &str) -> Result<MakeRustlsConnect, SinkError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::Config(format!("sslmode: cannot set up TLS: {e}")))?;
        let config = match sslmode {
            "require" => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            "verify-full" => builder.with_root_certificates(roots(ca_file)?).with_no_client_auth(),
            other => return Err(SinkError::Config(format!("sslmode: unknown mode {other:?}"))),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The trust anchors of `verify-full`: the certificates of `ca_file` alone when set (as libpq's
    /// `sslrootcert`), otherwise the system's store (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else
    /// /etc/ssl/certs), otherwise, when the system has none, Mozilla's roots built in.
    fn roots(ca_file: &str) -> Result<RootCertStore, SinkError> {
        let mut roots = RootCertStore::empty();
        if !ca_file.is_empty() {
            let pem = std::fs::read(ca_file)
                .map_err(|e| SinkError::Config(format!("ca_file: cannot read {ca_file}: {e}")))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SinkError::Config(format!("ca_file: {ca_file} is not a PEM bundle: {e}")))?;
            if certs.is_empty() {
                return Err(SinkError::Config(format!("ca_file: no certificate in {ca_file}")));
            }
            for (i, c) in certs.into_iter().enumerate() {
                roots.add(c).map_err(|e| {
                    SinkError::Config(format!("ca_file: certificate {} of {ca_file} is not a usable CA: {e}", i + 1))
                })?;
            }
            return Ok(roots);
        }
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Ok(roots)
    }

    /// `sslmode=require`: any certificate is accepted (no chain, no name: as libpq, this protects
    /// against eavesdropping, not against an active man in the middle), but the handshake signatures
    /// are still checked, so the session keys belong to the holder of the presented certificate's key
    /// (which SCRAM channel binding then ties to the password exchange).
    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// A connection error caused by TLS that will not go away by itself (certificate not trusted,
    /// server without TLS, no common protocol) as a `Config` error naming the setting; `None` for
    /// anything else (an I/O error during the handshake stays a `Retry`).
    pub(super) fn classify(e: &::postgres::Error, cs: &ConnSettings) -> Option<SinkError> {
        let (mode, host, port) = (&cs.sslmode, &cs.host, cs.port);
        let mut src = std::error::Error::source(e);
        while let Some(x) = src {
            let rustls_error = x.downcast_ref::<rustls::Error>().or_else(|| {
                // An `io::Error`'s `source()` skips the error it wraps: look inside.
                x.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref())
            });
            if let Some(r) = rustls_error {
                return Some(SinkError::Config(describe(r, cs)));
            }
            let bad_name = x
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|i| i.is::<InvalidDnsNameError>());
            if bad_name {
                return Some(SinkError::Config(format!(
                    "sslmode: sslmode={mode}: host \"{host}\" is neither a DNS name nor an IP address, so TLS cannot \
                     check it"
                )));
            }
            // tokio-postgres's words when the server answers the SSLRequest with 'N'.
            if x.to_string() == "server does not support TLS" {
                return Some(SinkError::Config(format!(
                    "sslmode: sslmode={mode} but PostgreSQL {host}:{port} does not accept TLS (ssl = off in its \
                     postgresql.conf?); turn ssl on in the server or set sslmode=disable"
                )));
            }
            src = x.source();
        }
        None
    }

    fn describe(r: &rustls::Error, cs: &ConnSettings) -> String {
        let (mode, host, port) = (&cs.sslmode, &cs.host, cs.port);
        let what = super::one_line(r.to_string());
        match r {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "sslmode: sslmode={mode}: the certificate of PostgreSQL {host}:{port} is not valid for the host name \
                 \"{host}\" ({what}); set host to a name or address the certificate names"
            ),
            rustls::Error::InvalidCertificate(_) => {
                let anchors = if cs.ca_file.is_empty() {
                    "ca_file is not set, so the system's CA store was used: set ca_file to the PEM file of the CA \
                     that signed the server's certificate"
                        .to_string()
                } else {
                    format!("check that ca_file {} holds the CA that signed the server's certificate", cs.ca_file)
                };
                format!(
                    "sslmode/ca_file: sslmode={mode}: the certificate of PostgreSQL {host}:{port} does not verify \
                     ({what}); {anchors}"
                )
            }
            _ => format!("sslmode: sslmode={mode}: the TLS handshake with PostgreSQL {host}:{port} failed ({what})"),
        }
    }
}
