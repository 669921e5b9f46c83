//! Names, DDL and upkeep of the sink's objects: the events table (a TimescaleDB hypertable, or a
//! table partitioned by day), its schema-version table, the batch ledger, the daily partitions, and
//! (through `timescale`) TimescaleDB's compression, retention and continuous aggregates.
//!
//! Everything is idempotent and runs under a transaction-scoped advisory lock, so any number of
//! processes may connect at once. Identifiers come from validated configuration and are always
//! quoted; values are bind parameters. The only literals built here are integers and dates this code
//! computes itself (partition bounds, which DDL cannot take as parameters).

use super::copy::COLUMNS;
use super::{check, timescale, Error};
use crate::sink::SinkError;
use ::postgres::Client;
use std::collections::BTreeSet;

/// The schema this code creates. Bump it and add a step to `upgrade` for every change.
/// 2: the event's identity in `producer` and `seq` (bigint, compressing to ~2 bytes where the `event_id`
/// uuid took ~9) with no unique index (the ledger alone makes writes exactly-once), an index on `time`,
/// TimescaleDB's compression and aggregates of `timescale`.
pub const VERSION: i32 = 2;
pub const DAY_SECS: i64 = 86_400;
pub const DAY_US: i64 = DAY_SECS * 1_000_000;
/// Native layout: partitions created ahead of the current (UTC) day.
pub const PREMAKE_DAYS: i64 = 3;
/// Native layout: events further in the future than this are refused (each would need a partition).
pub const MAX_FUTURE_DAYS: i64 = 31;
/// With retention, ledger rows are kept this much longer than the events (a spooled batch can come back
/// after a long outage; the ledger is what keeps it from being written twice).
pub const LEDGER_MARGIN_DAYS: i64 = 30;
/// `lock_timeout` for partition DDL, so that creating or dropping a partition never stalls writers long.
pub const DDL_LOCK_TIMEOUT_MS: i64 = 5_000;

/// `"ident"`, with `"` doubled (configuration only allows `[A-Za-z_][A-Za-z0-9_]*`, but quoting is
/// what keeps the case and makes reserved words safe).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// How the events table is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Declarative range partitioning by UTC day, managed by the writer.
    Native,
    /// A TimescaleDB hypertable. `tsl`: the Community (TSL) features are available (compression,
    /// continuous aggregates, policies); without them retention is done with `drop_chunks`.
    Timescale { version: String, tsl: bool },
}

impl Layout {
    pub fn word(&self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Timescale { .. } => "timescaledb",
        }
    }
}

/// The names of every object of one configured `schema.table`.
#[derive(Clone, Debug)]
pub struct Names {
    pub schema: String,
    pub table: String,
}

impl Names {
    pub fn new(schema: &str, table: &str) -> Names {
        Names { schema: schema.to_string(), table: table.to_string() }
    }

    /// `"schema"."name"`.
    pub fn q(&self, name: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(name))
    }

    pub fn main(&self) -> String {
        self.q(&self.table)
    }

    /// `table` + `suffix`, kept within PostgreSQL's 63-byte identifiers: a long table name is cut
    /// and a hash of the whole name added, so two long names never collide.
    pub fn derived(&self, suffix: &str) -> String {
        let full = format!("{}{}", self.table, suffix);
        if full.len() <= 63 {
            return full;
        }
        let hash = format!("_{:08x}", crc32fast::hash(self.table.as_bytes()));
        let keep = 63 - suffix.len() - hash.len();
        format!("{}{}{}", &self.table[..keep], hash, suffix)
    }

    pub fn meta(&self) -> String {
        self.derived("_schema")
    }

    pub fn ledger(&self) -> String {
        self.derived("_ledger")
    }

    /// The partition holding UTC day `day` (days since 1970-01-01): `table_pYYYYMMDD`.
    pub fn partition(&self, day: i64) -> String {
        let (y, m, d) = civil_from_days(day);
        self.derived(&format!("_p{y:04}{m:02}{d:02}"))
    }

    /// The day of a partition this code named, `None` for any other table.
    pub fn partition_day(&self, name: &str) -> Option<i64> {
        let tail = name.get(name.len().checked_sub(8)?..)?;
        if !tail.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let y: i64 = tail[..4].parse().ok()?;
        let m: i64 = tail[4..6].parse().ok()?;
        let d: i64 = tail[6..].parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let day = days_from_civil(y, m, d);
        (self.partition(day) == name).then_some(day)
    }

    /// Advisory lock keys (two-int form): one class for DDL, one for the ledger of this table.
    pub fn lock_class(&self, what: &str) -> i32 {
        crc32fast::hash(format!("logstore_tsdb {what} {}.{}", self.schema, self.table).as_bytes()) as i32
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `'YYYY-MM-DD 00:00:00+00'`: the start of a UTC day as a SQL literal (computed, not user data).
fn day_literal(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("'{y:04}-{m:02}-{d:02} 00:00:00+00'")
}

/// What the schema depends on in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub retention_days: i64,
    pub chunk_hours: i64,
    pub statement_timeout_ms: i64,
}

/// Opens a transaction with this connection's timeouts (set per transaction, so it also works
/// through pgbouncer in transaction mode) and takes the advisory lock `(class, key)`.
pub fn begin_locked(c: &mut Client, s: &Settings, lock: Option<(i32, i32)>, ddl: bool) -> Result<(), Error> {
    let idle = (s.statement_timeout_ms * 2).max(60_000);
    let mut sql = format!(
        "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {idle}",
        s.statement_timeout_ms
    );
    if ddl {
        sql.push_str(&format!("; SET LOCAL lock_timeout = {DDL_LOCK_TIMEOUT_MS}"));
    }
    c.batch_execute(&sql)?;
    if let Some((class, key)) = lock {
        if let Err(e) = c.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&class, &key]) {
            let _ = c.batch_execute("ROLLBACK");
            return Err(e.into());
        }
    }
    Ok(())
}

/// Runs `f` in a locked transaction; commits on success, rolls back on error.
pub fn in_tx<T>(
    c: &mut Client,
    s: &Settings,
    lock: (i32, i32),
    ddl: bool,
    f: impl FnOnce(&mut Client) -> Result<T, Error>,
) -> Result<T, Error> {
    begin_locked(c, s, Some(lock), ddl)?;
    match f(c) {
        Ok(v) => {
            c.batch_execute("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// Whether relation `name` of the configured schema exists. A scan of the catalog rather than
/// `to_regclass()`: reading pg_class makes the session take in other sessions' committed DDL (its cached
/// "no such schema/relation" entries would otherwise outlive a wait for the DDL lock).
pub fn relation_exists(c: &mut Client, n: &Names, name: &str) -> Result<bool, Error> {
    let row = c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace \
         WHERE s.nspname = $1 AND c.relname = $2)",
        &[&n.schema, &name],
    )?;
    Ok(row.get(0))
}

fn read_meta(c: &mut Client, n: &Names) -> Result<Option<(i32, String)>, Error> {
    if !relation_exists(c, n, &n.meta())? {
        return Ok(None);
    }
    let row = c.query_opt(&format!("SELECT version, layout FROM {}", n.q(&n.meta())), &[])?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Detects TimescaleDB (installed in this database) and whether its TSL features are licensed.
pub fn detect(c: &mut Client) -> Result<Option<Layout>, Error> {
    let ext = c.query_opt("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", &[])?;
    let Some(row) = ext else { return Ok(None) };
    let version: String = row.get(0);
    let license: Option<String> = c.query_one("SELECT current_setting('timescaledb.license', true)", &[])?.get(0);
    Ok(Some(Layout::Timescale { version, tsl: license.as_deref() == Some("timescale") }))
}

/// What `ensure` found and did.
#[derive(Debug)]
pub struct Ensured {
    pub layout: Layout,
    /// The events table was missing although the sink's record or ledger said it had been made (dropped, or
    /// a restore without it) and was created again: what happened, in words for `tsdb_stats()`.
    pub recreated: Option<String>,
}

/// Creates or upgrades every object, checks that the events table can take events (`check`), and returns
/// its layout. The catalog is asked, not only the sink's record: a missing table or ledger is created
/// again. Cheap when all is in place (a few catalog reads): no DDL runs then, so a role with only
/// INSERT/SELECT rights works once an owner has created the objects.
pub fn ensure(c: &mut Client, n: &Names, s: &Settings) -> Result<Ensured, Error> {
    let timescale = detect(c)?;
    let current = read_meta(c, n)?;
    if let Some((v, _)) = &current {
        if *v > VERSION {
            return Err(SinkError::Config(format!(
                "table: {} has schema version {v}, newer than this extension's {VERSION}; upgrade the extension",
                n.main()
            ))
            .into());
        }
    }
    let (layout_word, recreated) = match current {
        Some((v, word)) if v == VERSION && objects_exist(c, n)? => (word, None),
        _ => in_tx(c, s, (n.lock_class("ddl"), 0), false, |c| create_or_upgrade(c, n, s, timescale.as_ref()))
            .map_err(|e| check::cannot_create(c, n, e))?,
    };
    let layout = match (layout_word.as_str(), timescale) {
        ("native", _) => Layout::Native,
        ("timescaledb", Some(ts)) => ts,
        ("timescaledb", None) => {
            return Err(SinkError::Config(format!(
                "table: {} is a TimescaleDB hypertable but the timescaledb extension is not installed in database; \
                 install it (CREATE EXTENSION timescaledb) or configure another table",
                n.main()
            ))
            .into())
        }
        (other, _) => {
            return Err(SinkError::Config(format!("table: {} has an unknown layout {other:?}", n.meta())).into())
        }
    };
    if let Some(problem) = check::table(c, n, &layout, s.chunk_hours)? {
        return Err(SinkError::Config(problem).into());
    }
    if let Layout::Timescale { tsl, .. } = &layout {
        timescale::reconcile(c, n, s, *tsl)?;
    }
    Ok(Ensured { layout, recreated })
}

/// Whether the events table and the ledger both exist (the catalog, not the sink's record, says).
fn objects_exist(c: &mut Client, n: &Names) -> Result<bool, Error> {
    Ok(relation_exists(c, n, &n.table)? && relation_exists(c, n, &n.ledger())?)
}

/// The `CREATE TABLE` column list.
pub fn column_ddl() -> String {
    let mut cols = vec!["id bigserial NOT NULL".to_string()];
    cols.extend(COLUMNS.iter().map(|c| format!("{} {}", quote_ident(c.name), c.sql)));
    cols.join(",\n  ")
}

/// Under the DDL lock: creates what is missing and records the version and layout. Returns the layout
/// word and, when the events table was made again, what happened.
///
/// A ledger says which events are in the table. When this creates the table, any ledger rows left from
/// before describe a table that is gone ("already written" into it): they are deleted in the same
/// transaction, so that every event sent from now on (a retry, a spool replay) is written, never skipped.
/// The new table is empty, so nothing is written twice.
fn create_or_upgrade(
    c: &mut Client,
    n: &Names,
    s: &Settings,
    timescale: Option<&Layout>,
) -> Result<(String, Option<String>), Error> {
    let meta = read_meta(c, n)?;
    if let Some((v, _)) = &meta {
        if *v < VERSION {
            upgrade(c, n, *v)?;
        }
    }
    let main = n.main();
    let ledger = n.q(&n.ledger());
    let main_exists = relation_exists(c, n, &n.table)?;
    let ledger_exists = relation_exists(c, n, &n.ledger())?;
    // Another process may have finished while this one waited for the lock.
    if let (Some((_, word)), true, true) = (&meta, main_exists, ledger_exists) {
        return Ok((word.clone(), None));
    }
    let schema_exists: bool =
        c.query_one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", &[&n.schema])?.get(0);
    if !schema_exists {
        c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&n.schema)))?;
    }
    let word = match (&meta, main_exists) {
        (Some((_, word)), true) => word.clone(),
        // Created by hand (this file's DDL is in docs/postgres.md): keep what is there.
        (None, true) => {
            let partitioned: bool =
                c.query_one("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::text::regclass", &[&main])?.get(0);
            if partitioned || timescale.is_none() { "native" } else { "timescaledb" }.to_string()
        }
        // A new table takes the layout the database offers now.
        (_, false) if timescale.is_some() => "timescaledb".to_string(),
        (_, false) => "native".to_string(),
    };
    let mut discarded = 0;
    if !main_exists && ledger_exists {
        // The exclusive lock waits for writers that read the old ledger; their COPY finds no table and
        // rolls back, and their retry reads the emptied ledger.
        c.batch_execute(&format!("LOCK TABLE {ledger} IN ACCESS EXCLUSIVE MODE"))?;
        discarded = c.execute(&format!("DELETE FROM {ledger}"), &[])?;
    }
    let mut ddl = format!(
        "CREATE TABLE IF NOT EXISTS {meta} (\n  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),\n  \
         version integer NOT NULL,\n  layout text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now(),\n  \
         upgraded_at timestamptz NOT NULL DEFAULT now()\n);\n",
        meta = n.q(&n.meta())
    );
    if !main_exists {
        let partition = if word == "native" { " PARTITION BY RANGE (\"time\")" } else { "" };
        ddl.push_str(&format!("CREATE TABLE {main} (\n  {}\n){partition};\n", column_ddl()));
        ddl.push_str(&format!(
            "COMMENT ON TABLE {main} IS 'Moodle log events (logstore_standard_log columns) written by logstore_tsdb';\n"
        ));
    }
    c.batch_execute(&ddl)?;
    if word == "timescaledb" && !main_exists {
        c.execute(
            "SELECT create_hypertable($1::text::regclass, by_range('time', make_interval(hours => $2)), \
             create_default_indexes => false, if_not_exists => true)",
            &[&main, &(s.chunk_hours as i32)],
        )?;
    }
    c.batch_execute(&format!(
        "{}\n\
         CREATE TABLE IF NOT EXISTS {ledger} (\n  producer bigint NOT NULL,\n  first_seq bigint NOT NULL,\n  \
         last_seq bigint NOT NULL CHECK (last_seq >= first_seq),\n  \
         committed_at timestamptz NOT NULL DEFAULT now(),\n  PRIMARY KEY (producer, first_seq)\n);",
        index_ddl(n)
    ))?;
    if meta.is_none() || !main_exists {
        // A table made again is a new table: its record says so (created_at) and names its layout.
        c.execute(
            &format!(
                "INSERT INTO {} (version, layout) VALUES ($1, $2) ON CONFLICT (singleton) \
                 DO UPDATE SET version = EXCLUDED.version, layout = EXCLUDED.layout, created_at = now(), \
                 upgraded_at = now()",
                n.q(&n.meta())
            ),
            &[&VERSION, &word],
        )?;
    }
    let recreated = (!main_exists && (meta.is_some() || ledger_exists)).then(|| {
        let how = if word == "native" {
            "partitioned by day"
        } else {
            "as a TimescaleDB hypertable, with its compression, retention and continuous aggregates"
        };
        format!(
            "table: {main} was missing (dropped, or restored without it) and was created again {how}; the ledger's \
             {discarded} range(s), which described the dropped table, were cleared so that every event sent from now \
             on is written"
        )
    });
    Ok((word, recreated))
}

/// The indexes of the events table (TimescaleDB keeps them on chunks not compressed yet): a course's and a
/// user's events newest first, the newest events of the site (Live logs), and the events that involve a
/// user as `relateduserid` or `realuserid` (the privacy provider's OR; partial: most events have neither).
fn index_ddl(n: &Names) -> String {
    let main = n.main();
    [
        ("_course_time_idx", "courseid, \"time\" DESC", ""),
        ("_user_time_idx", "userid, \"time\" DESC", ""),
        ("_time_idx", "\"time\" DESC", ""),
        ("_relateduser_idx", "relateduserid", " WHERE relateduserid IS NOT NULL"),
        ("_realuser_idx", "realuserid", " WHERE realuserid IS NOT NULL"),
    ]
    .iter()
    .map(|(suffix, cols, partial)| {
        format!("CREATE INDEX IF NOT EXISTS {} ON {main} ({cols}){partial};", quote_ident(&n.derived(suffix)))
    })
    .collect::<Vec<_>>()
    .join("\n")
}

/// Steps from older schema versions, in the transaction that records the new version.
///
/// 1 -> 2: `producer` and `seq` are added (existing rows keep their `event_id`, new ones leave it empty), the
/// unique index on `event_id` goes (the ledger is what keeps writes exactly-once), the indexes on time come.
/// TimescaleDB's compression settings and aggregates are brought to version 2 by `timescale::reconcile`.
fn upgrade(c: &mut Client, n: &Names, from: i32) -> Result<(), Error> {
    if from < 1 {
        return Err(SinkError::Config(format!("table: {} has an invalid schema version {from}", n.meta())).into());
    }
    let main = n.main();
    if from < 2 {
        c.batch_execute(&format!(
            "ALTER TABLE {main} ADD COLUMN IF NOT EXISTS producer bigint, ADD COLUMN IF NOT EXISTS seq bigint;\n\
             ALTER TABLE {main} ALTER COLUMN event_id DROP NOT NULL;\n\
             DROP INDEX IF EXISTS {};\n{}",
            n.q(&n.derived("_event_id_uq")),
            index_ddl(n)
        ))?;
    }
    c.execute(&format!("UPDATE {} SET version = $1, upgraded_at = now()", n.q(&n.meta())), &[&VERSION])?;
    Ok(())
}

/// The days of the partitions this code created (by name) that exist now.
pub fn existing_partitions(c: &mut Client, n: &Names) -> Result<BTreeSet<i64>, Error> {
    let rows = c.query(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = $1::text::regclass",
        &[&n.main()],
    )?;
    Ok(rows.iter().filter_map(|r| n.partition_day(r.get::<_, &str>(0))).collect())
}

/// Creates the partitions of `days` that do not exist yet (one transaction, under the DDL lock).
pub fn create_partitions(c: &mut Client, n: &Names, s: &Settings, days: &[i64]) -> Result<(), Error> {
    if days.is_empty() {
        return Ok(());
    }
    in_tx(c, s, (n.lock_class("ddl"), 0), true, |c| {
        let have = existing_partitions(c, n)?;
        let mut ddl = String::new();
        for &d in days.iter().filter(|d| !have.contains(d)) {
            ddl.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({});\n",
                n.q(&n.partition(d)),
                n.main(),
                day_literal(d),
                day_literal(d + 1)
            ));
        }
        if !ddl.is_empty() {
            c.batch_execute(&ddl)?;
        }
        Ok(())
    })
}

/// Drops whole partitions whose every row is older than `retention_days` at `now_s`; returns their days.
pub fn drop_expired_partitions(c: &mut Client, n: &Names, s: &Settings, now_s: i64) -> Result<Vec<i64>, Error> {
    if s.retention_days <= 0 {
        return Ok(Vec::new());
    }
    let cutoff_s = now_s - s.retention_days * DAY_SECS;
    in_tx(c, s, (n.lock_class("ddl"), 0), true, |c| {
        let expired: Vec<i64> =
            existing_partitions(c, n)?.into_iter().filter(|&d| (d + 1) * DAY_SECS <= cutoff_s).collect();
        let mut ddl = String::new();
        for &d in &expired {
            ddl.push_str(&format!("DROP TABLE IF EXISTS {};\n", n.q(&n.partition(d))));
        }
        if !ddl.is_empty() {
            c.batch_execute(&ddl)?;
        }
        Ok(expired)
    })
}

/// TimescaleDB without TSL: retention by `drop_chunks` (an Apache-licensed function).
pub fn drop_expired_chunks(c: &mut Client, n: &Names, s: &Settings, now_s: i64) -> Result<(), Error> {
    if s.retention_days <= 0 {
        return Ok(());
    }
    let cutoff = (now_s - s.retention_days * DAY_SECS) as f64;
    c.execute("SELECT drop_chunks($1::text::regclass, older_than => to_timestamp($2::float8))", &[&n.main(), &cutoff])?;
    Ok(())
}

/// Forgets ledger ranges nobody can send again: only with retention, once their events would be dropped
/// anyway (a batch written again after that is older than the retention and dropped with its chunk).
pub fn prune_ledger(c: &mut Client, n: &Names, s: &Settings) -> Result<u64, Error> {
    if s.retention_days <= 0 {
        return Ok(0);
    }
    Ok(c.execute(
        &format!("DELETE FROM {} WHERE committed_at < now() - make_interval(days => $1)", n.q(&n.ledger())),
        &[&((s.retention_days + LEDGER_MARGIN_DAYS) as i32)],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_roundtrip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn names_fit_and_parse() {
        let n = Names::new("public", "logstore_tsdb_log");
        assert_eq!(n.partition(19_723), "logstore_tsdb_log_p20240101");
        assert_eq!(n.partition_day("logstore_tsdb_log_p20240101"), Some(19_723));
        assert_eq!(n.partition_day("logstore_tsdb_log_p2024010x"), None);
        assert_eq!(n.partition_day("other_p20240101"), None);
        assert_eq!(n.main(), "\"public\".\"logstore_tsdb_log\"");
        let long = Names::new("s", &"x".repeat(63));
        for name in [long.partition(19_723), long.ledger(), long.derived("_daily_active_users")] {
            assert!(name.len() <= 63, "{name}");
        }
        assert_eq!(long.partition_day(&long.partition(19_723)), Some(19_723));
        assert_ne!(Names::new("s", &"x".repeat(62)).ledger(), long.ledger());
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
