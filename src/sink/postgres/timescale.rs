//! TimescaleDB's part of the schema: the hypertable's chunk interval, compression (settings and
//! policy) and retention, and the continuous aggregates with their refresh and compression policies.
//! Each is read from the catalog first and changed only where it differs, under the DDL lock.
//!
//! Chosen for years of logs (docs/SCALE.md has the measurements):
//! - Week chunks (`chunk_interval_hours`, 168 by default: a year is ~52 chunks for the planner, and a
//!   chunk's fixed cost on disk, ~90 kB compressed, is spread over a week of events), compressed once
//!   two days old, each into its own compressed chunk: no roll-up
//!   (`timescaledb.compress_chunk_time_interval` is cleared, also on a table an older extension made with
//!   its 7-day roll-up). With roll-up, TimescaleDB's compression job merges each day chunk into the
//!   previous compressed chunk (`compress_chunk_impl()` → `ts_chunk_merge_on_dimension()`, which replaces
//!   the kept chunk's dimension slice and drops the merged chunk); a continuous aggregate refresh job
//!   materialising that range meanwhile lost the part of its batch inside the rolled-up chunk and deleted
//!   its invalidation, so those events were in the hypertable and in no aggregate, for good. Old days
//!   (imports, a spool replayed after an outage) are compressed while they are written and refreshed, so it
//!   happened in every scale run (docs/postgres.md has the reproduction and the evidence). Week chunks give
//!   the planner what roll-up gave, without the merge.
//! - No segmentby; rows ordered by course, then newest first: every compressed batch holds ~1000 rows
//!   (segments per course and day would be a few dozen rows and compress badly), a course's rows are
//!   contiguous (min/max of `courseid` per batch skips the others) and newest first inside it.
//! - Per batch, bloom filters on `userid` and `relateduserid` and the range of `realuserid`: a user's
//!   events, and those that involve them (the privacy provider), skip the batches without them.
//! - Aggregates designed for the reports and dashboards, each compressed: `_daily` (day, course, user:
//!   the reader's exact counts, engagement per course), `_daily_courses` (day, course: distinct
//!   users, logins), `_daily_users` (day, user: a user's history), `_daily_active_users` (day: distinct
//!   users), `_hourly` (hour, course: activity, logins), `_activity` (day, course module, event: top
//!   activities), `_daily_events` (day, event name, origin: site-wide top events), `_hourly_site`
//!   (hour: the site's activity, logins and distinct users) and `_weekly_courses` (week, course:
//!   distinct users and events per week), in 14-day chunks (140 for those with a row per bucket or
//!   a few) compressed a week after their end (TimescaleDB's 70 days left a fifth of a year
//!   uncompressed, with an index per grouping column: most of their disk). Their refresh policy
//!   covers every day the events still exist for, so late events and imports of old logs are
//!   materialised by TimescaleDB's scheduler without a manual refresh.

use super::schema::{in_tx, quote_ident, Names, Settings};
use super::Error;
use ::postgres::Client;

/// Chunks are compressed once their end is this old.
pub const COMPRESS_AFTER_HOURS: i32 = 48;
/// Aggregate chunks are compressed once this old.
const AGGREGATE_COMPRESS_AFTER_DAYS: i32 = 7;
/// The compression of the events table, as `timescaledb_information.hypertable_compression_settings`
/// prints it.
const SEGMENTBY: &str = "";
const ORDERBY: &str = "courseid,\"time\" DESC,id DESC";
/// Per compressed batch: a bloom filter on `userid` (a user's events skip the batches without them), and
/// for the privacy provider's `userid = u OR relateduserid = u OR realuserid = u` one on `relateduserid`
/// and the range of `realuserid` (almost always empty: TimescaleDB skips a batch only when every term of
/// an OR can be checked on its metadata, and a column of NULLs has no bloom filter but an empty range).
const SPARSE_INDEXES: [&str; 3] = ["bloom(userid)", "bloom(relateduserid)", "minmax(realuserid)"];
/// The comment of an aggregate, before its version (`Aggregate::version`).
const AGGREGATE_COMMENT: &str = "logstore_tsdb aggregate";

/// One continuous aggregate.
pub struct Aggregate {
    /// The suffix of its name after the table's (`Names::derived`).
    pub suffix: &'static str,
    pub name: String,
    pub bucket_hours: i64,
    /// The view's SELECT.
    pub select: String,
    pub segmentby: &'static str,
    pub orderby: &'static str,
    /// Days per chunk of its materialisation: TimescaleDB's default (ten times the events' chunks, 70
    /// days) kept up to 77 days of every aggregate uncompressed with an index per grouping column, half
    /// the aggregates' disk at 10 M events a year (docs/SCALE.md: all in 1/8.4 of the standard table
    /// with 70 days, 1/10.2 with 14).
    pub chunk_days: i32,
    /// The version of its definition, in its comment (`logstore_tsdb aggregate <version>`): an
    /// aggregate with another comment (an older definition, or none) is replaced. 3: `_daily_courses`
    /// and `_daily_active_users` read the events; in version 2 they were aggregates on `_daily` and
    /// `_daily_users` and twice lost a whole day in tests/postgres.rs's concurrent test (refreshed by
    /// the scheduler beside their parent's refresh), with no invalidation left to repair it. 4:
    /// `_daily_courses` gains `logins` and `failed_logins` (the site board's stats read whole days), and
    /// `_daily_events` is new. 5: `_hourly_site` is new. 6: `_hourly_site` gains `active_users`
    /// (distinct users per hour) and `_weekly_courses` is new.
    pub version: u32,
}

impl Aggregate {
    /// The comment that marks its definition.
    fn comment(&self) -> String {
        format!("{AGGREGATE_COMMENT} {}", self.version)
    }
}

/// Every continuous aggregate the sink keeps.
pub fn aggregates(n: &Names) -> Vec<Aggregate> {
    let main = n.main();
    let day = "time_bucket(INTERVAL '1 day', \"time\") AS day";
    vec![
        Aggregate {
            suffix: "_daily",
            name: n.derived("_daily"),
            bucket_hours: 24,
            select: format!(
                "SELECT {day}, courseid, userid, count(*) AS events, \
                 count(*) FILTER (WHERE anonymous <> 0) AS anonymous_events, \
                 count(*) FILTER (WHERE edulevel = 1) AS teaching, count(*) FILTER (WHERE edulevel = 2) AS participating \
                 FROM {main} GROUP BY 1, 2, 3"
            ),
            segmentby: "courseid",
            orderby: "day DESC, userid",
            chunk_days: 14,
            version: 2,
        },
        Aggregate {
            suffix: "_daily_courses",
            name: n.derived("_daily_courses"),
            bucket_hours: 24,
            // A row per course and day (`_daily` has one per user besides): the per-course dashboards
            // read a few hundred rows instead of every user's. From the events, not from `_daily` (see
            // `version`); `numeric` counts: their type when they were sums over `_daily`, kept for the
            // queries written against them (the plain PostgreSQL summary has the same expressions).
            select: format!(
                "SELECT {day}, courseid, count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users, \
                 count(*)::numeric AS events, (count(*) FILTER (WHERE anonymous <> 0))::numeric AS anonymous_events, \
                 (count(*) FILTER (WHERE edulevel = 1))::numeric AS teaching, \
                 (count(*) FILTER (WHERE edulevel = 2))::numeric AS participating, \
                 count(*) FILTER (WHERE eventname = '\\core\\event\\user_loggedin') AS logins, \
                 count(*) FILTER (WHERE eventname = '\\core\\event\\user_login_failed') AS failed_logins \
                 FROM {main} GROUP BY 1, 2"
            ),
            segmentby: "",
            orderby: "day DESC, courseid",
            chunk_days: 140,
            version: 4,
        },
        Aggregate {
            suffix: "_daily_users",
            name: n.derived("_daily_users"),
            bucket_hours: 24,
            select: format!(
                "SELECT {day}, userid, count(*) AS events, count(*) FILTER (WHERE anonymous <> 0) AS anonymous_events \
                 FROM {main} GROUP BY 1, 2"
            ),
            segmentby: "",
            orderby: "userid, day DESC",
            chunk_days: 14,
            version: 2,
        },
        Aggregate {
            suffix: "_daily_active_users",
            name: n.derived("_daily_active_users"),
            bucket_hours: 24,
            select: format!(
                "SELECT {day}, count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users, \
                 count(*)::numeric AS events FROM {main} GROUP BY 1"
            ),
            segmentby: "",
            orderby: "day DESC",
            // A row a day: few chunks for the planner when a year is read.
            chunk_days: 140,
            version: 3,
        },
        Aggregate {
            suffix: "_hourly",
            name: n.derived("_hourly"),
            bucket_hours: 1,
            select: format!(
                "SELECT time_bucket(INTERVAL '1 hour', \"time\") AS bucket, courseid, count(*) AS events, \
                 count(*) FILTER (WHERE edulevel = 0) AS other, count(*) FILTER (WHERE edulevel = 1) AS teaching, \
                 count(*) FILTER (WHERE edulevel = 2) AS participating, \
                 count(*) FILTER (WHERE eventname = '\\core\\event\\user_loggedin') AS logins, \
                 count(*) FILTER (WHERE eventname = '\\core\\event\\user_login_failed') AS failed_logins \
                 FROM {main} GROUP BY 1, 2"
            ),
            segmentby: "",
            orderby: "courseid, bucket DESC",
            chunk_days: 14,
            version: 2,
        },
        Aggregate {
            suffix: "_activity",
            name: n.derived("_activity"),
            bucket_hours: 24,
            select: format!(
                "SELECT {day}, courseid, contextlevel, contextinstanceid, component, eventname, count(*) AS events \
                 FROM {main} GROUP BY 1, 2, 3, 4, 5, 6"
            ),
            segmentby: "courseid",
            orderby: "day DESC, contextinstanceid, eventname",
            chunk_days: 14,
            version: 2,
        },
        Aggregate {
            suffix: "_daily_events",
            name: n.derived("_daily_events"),
            bucket_hours: 24,
            // A row per event name and origin a day, site-wide: the most frequent events and the events by
            // origin over a year read a few tens of thousands of rows instead of `_activity` (a row per
            // context) or the events.
            select: format!(
                "SELECT {day}, eventname, origin, count(*) AS events FROM {main} GROUP BY 1, 2, 3"
            ),
            segmentby: "",
            orderby: "day DESC, eventname",
            chunk_days: 140,
            version: 4,
        },
        Aggregate {
            suffix: "_hourly_site",
            name: n.derived("_hourly_site"),
            bucket_hours: 1,
            // `_hourly` without the course: a row per hour (8 760 a year instead of one per active course
            // and hour) for the site-wide hourly panels and the logins per day.
            select: format!(
                "SELECT time_bucket(INTERVAL '1 hour', \"time\") AS bucket, count(*) AS events, \
                 count(*) FILTER (WHERE edulevel = 0) AS other, count(*) FILTER (WHERE edulevel = 1) AS teaching, \
                 count(*) FILTER (WHERE edulevel = 2) AS participating, \
                 count(*) FILTER (WHERE eventname = '\\core\\event\\user_loggedin') AS logins, \
                 count(*) FILTER (WHERE eventname = '\\core\\event\\user_login_failed') AS failed_logins, \
                 count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users \
                 FROM {main} GROUP BY 1"
            ),
            segmentby: "",
            orderby: "bucket DESC",
            chunk_days: 140,
            version: 6,
        },
        Aggregate {
            suffix: "_weekly_courses",
            name: n.derived("_weekly_courses"),
            bucket_hours: 168,
            // A row per course and week, Monday to Monday UTC (TimescaleDB's weeks start on its origin,
            // Monday 2000-01-03, as date_trunc('week') does): the distinct users of a week are not a sum of
            // days, and counting them over `_daily` (a row per user, course and day) took 0.8 s for a year.
            select: format!(
                "SELECT time_bucket(INTERVAL '1 week', \"time\") AS week, courseid, \
                 count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users, count(*) AS events \
                 FROM {main} GROUP BY 1, 2"
            ),
            segmentby: "",
            orderby: "week DESC, courseid",
            chunk_days: 140,
            version: 6,
        },
    ]
}

/// Refresh window of an aggregate's policy: its start offset in hours, `Some(None)` for the whole
/// history (no retention: every late event or import is materialised), or `None` when no window of
/// at least two buckets fits inside the retention horizon (TimescaleDB requires two). With retention
/// the window stays inside it: refreshing buckets whose events were dropped would empty them.
pub fn refresh_start_hours(bucket_hours: i64, retention_days: i64) -> Option<Option<i64>> {
    if retention_days <= 0 {
        return Some(None);
    }
    // The window ends an hour before now.
    let start = retention_days * 24 - 1;
    (start > 2 * bucket_hours).then_some(Some(start))
}

/// Brings the hypertable's settings and aggregates to what the configuration asks. Cheap when all
/// is in place: catalog reads only.
pub fn reconcile(c: &mut Client, n: &Names, s: &Settings, tsl: bool) -> Result<(), Error> {
    let (schema, table) = (n.schema.as_str(), n.table.as_str());
    let chunk_hours = s.chunk_hours as i32;
    let chunk_ok: bool = c
        .query_opt(
            "SELECT time_interval = make_interval(hours => $3) FROM timescaledb_information.dimensions \
             WHERE hypertable_schema = $1 AND hypertable_name = $2 AND column_name = 'time'",
            &[&schema, &table, &chunk_hours],
        )?
        .and_then(|r| r.get::<_, Option<bool>>(0))
        .unwrap_or(false);
    if !tsl {
        if !chunk_ok {
            in_tx(c, s, (n.lock_class("ddl"), 0), false, |c| set_chunk_interval(c, &n.main(), chunk_hours))?;
        }
        return Ok(());
    }
    let compression_ok = compression_matches(c, n)?;
    let policy_ok = job_matches(
        c,
        "policy_compression",
        schema,
        table,
        "(config->>'compress_after')::interval = make_interval(hours => $3)",
        COMPRESS_AFTER_HOURS,
    )?;
    let retention_ok = retention_matches(c, schema, table, s.retention_days)?;
    let mut stale = Vec::new();
    for a in aggregates(n) {
        if !aggregate_matches(c, n, &a, s)? {
            stale.push(a);
        }
    }
    if chunk_ok && compression_ok && policy_ok && retention_ok && stale.is_empty() {
        return Ok(());
    }
    in_tx(c, s, (n.lock_class("ddl"), 0), false, |c| {
        if !chunk_ok {
            set_chunk_interval(c, &n.main(), chunk_hours)?;
        }
        if !compression_ok {
            // Settings apply to chunks compressed from now on; compressed chunks keep theirs. The
            // automatic sparse indexes (one per btree index) are not wanted: only SPARSE_INDEXES.
            c.batch_execute(&format!(
                "SET LOCAL timescaledb.auto_sparse_indexes = off; ALTER TABLE {} SET (timescaledb.compress, \
                 timescaledb.compress_segmentby = '{SEGMENTBY}', timescaledb.compress_orderby = '{}', \
                 timescaledb.sparse_index = '{}', timescaledb.compress_chunk_time_interval = '0 hours')",
                n.main(),
                ORDERBY.replace('\'', "''"),
                SPARSE_INDEXES.join(", "),
            ))?;
        }
        if !policy_ok {
            c.execute("SELECT remove_compression_policy($1::text::regclass, if_exists => true)", &[&n.main()])?;
            c.execute(
                "SELECT add_compression_policy($1::text::regclass, compress_after => make_interval(hours => $2))",
                &[&n.main(), &COMPRESS_AFTER_HOURS],
            )?;
        }
        if !retention_ok {
            c.execute("SELECT remove_retention_policy($1::text::regclass, if_exists => true)", &[&n.main()])?;
            if s.retention_days > 0 {
                c.execute(
                    "SELECT add_retention_policy($1::text::regclass, drop_after => make_interval(days => $2))",
                    &[&n.main(), &(s.retention_days as i32)],
                )?;
            }
        }
        for a in &stale {
            ensure_aggregate(c, n, a, s)?;
        }
        Ok(())
    })
}

/// The size of the chunks made from now on, of the hypertable or of an aggregate's materialisation (given
/// by its view); chunks made before keep theirs.
fn set_chunk_interval(c: &mut Client, relation: &str, hours: i32) -> Result<(), Error> {
    c.execute("SELECT set_chunk_time_interval($1::text::regclass, make_interval(hours => $2))", &[&relation, &hours])?;
    Ok(())
}

fn compression_matches(c: &mut Client, n: &Names) -> Result<bool, Error> {
    let row = c.query_opt(
        "SELECT coalesce(s.segmentby, ''), coalesce(s.orderby, ''), coalesce(s.compress_interval_length, ''), \
         coalesce((SELECT array_agg(i->>'type' || '(' || (i->>'column') || ')') FROM jsonb_array_elements(s.index) i \
                   WHERE i->>'source' = 'config'), '{}'), \
         (SELECT compression_enabled FROM timescaledb_information.hypertables h \
          WHERE h.hypertable_schema = $1 AND h.hypertable_name = $2) \
         FROM timescaledb_information.hypertable_compression_settings s WHERE s.hypertable = $3::text::regclass",
        &[&n.schema, &n.table, &n.main()],
    )?;
    let Some(r) = row else { return Ok(false) };
    let interval: String = r.get(2);
    let mut sparse: Vec<String> = r.get(3);
    sparse.sort();
    let mut want = SPARSE_INDEXES.to_vec();
    want.sort();
    let enabled: Option<bool> = r.get(4);
    Ok(enabled == Some(true)
        && r.get::<_, String>(0) == SEGMENTBY
        && r.get::<_, String>(1) == ORDERBY
        && interval.is_empty()
        && sparse == want)
}

/// Whether exactly one job `proc` exists for the relation and `cond` (with `$3` = `value`) holds for it.
fn job_matches(c: &mut Client, proc: &str, schema: &str, name: &str, cond: &str, value: i32) -> Result<bool, Error> {
    let rows = c.query(
        &format!(
            "SELECT {cond} FROM timescaledb_information.jobs WHERE proc_name = '{proc}' \
             AND hypertable_schema = $1 AND hypertable_name = $2"
        ),
        &[&schema, &name, &value],
    )?;
    Ok(matches!(rows.as_slice(), [r] if r.get::<_, Option<bool>>(0) == Some(true)))
}

fn retention_matches(c: &mut Client, schema: &str, table: &str, days: i64) -> Result<bool, Error> {
    if days <= 0 {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' \
                 AND hypertable_schema = $1 AND hypertable_name = $2",
                &[&schema, &table],
            )?
            .get(0);
        return Ok(n == 0);
    }
    job_matches(
        c,
        "policy_retention",
        schema,
        table,
        "(config->>'drop_after')::interval = make_interval(days => $3)",
        days as i32,
    )
}

/// The aggregate's catalog state: `None` when it does not exist; else whether it is ours (this
/// version's comment), real-time, compressed, with the refresh and compression policies and the chunk
/// size asked for.
fn aggregate_matches(c: &mut Client, n: &Names, a: &Aggregate, s: &Settings) -> Result<bool, Error> {
    let row = c.query_opt(
        "SELECT obj_description(format('%I.%I', a.view_schema, a.view_name)::regclass, 'pg_class'), \
         a.materialized_only, a.compression_enabled, \
         (SELECT array_agg(coalesce(extract(epoch FROM (j.config->>'start_offset')::interval)::bigint / 3600, -1)) \
          FROM timescaledb_information.jobs j WHERE j.proc_name = 'policy_refresh_continuous_aggregate' \
          AND (j.hypertable_schema, j.hypertable_name) IN ((a.view_schema, a.view_name), \
               (a.materialization_hypertable_schema, a.materialization_hypertable_name))), \
         (SELECT count(*) FROM timescaledb_information.jobs j WHERE j.proc_name = 'policy_compression' \
          AND (j.hypertable_schema, j.hypertable_name) IN ((a.view_schema, a.view_name), \
               (a.materialization_hypertable_schema, a.materialization_hypertable_name))), \
         (SELECT d.time_interval = make_interval(days => $3) FROM timescaledb_information.dimensions d \
          WHERE d.hypertable_schema = a.materialization_hypertable_schema \
          AND d.hypertable_name = a.materialization_hypertable_name) \
         FROM timescaledb_information.continuous_aggregates a WHERE a.view_schema = $1 AND a.view_name = $2",
        &[&n.schema, &a.name, &a.chunk_days],
    )?;
    let Some(r) = row else { return Ok(false) };
    let comment: Option<String> = r.get(0);
    let starts: Option<Vec<Option<i64>>> = r.get(3);
    let want = refresh_start_hours(a.bucket_hours, s.retention_days).map(|h| h.unwrap_or(-1));
    let starts: Vec<i64> = starts.unwrap_or_default().into_iter().flatten().collect();
    Ok(comment == Some(a.comment())
        && !r.get::<_, bool>(1)
        && r.get::<_, bool>(2)
        && starts == want.into_iter().collect::<Vec<_>>()
        && r.get::<_, i64>(4) == 1
        && r.get::<_, Option<bool>>(5) == Some(true))
}

/// Creates the aggregate (replacing one an older extension made) and sets its compression and policies.
fn ensure_aggregate(c: &mut Client, n: &Names, a: &Aggregate, s: &Settings) -> Result<(), Error> {
    let view = n.q(&a.name);
    let existing = c.query_opt(
        "SELECT c.relkind::text, obj_description(c.oid, 'pg_class') FROM pg_class c \
         JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2",
        &[&n.schema, &a.name],
    )?;
    let comment = existing.as_ref().and_then(|r| r.get::<_, Option<String>>(1));
    let ours = comment == Some(a.comment());
    if let (Some(r), false) = (&existing, ours) {
        retire(c, n, a, &r.get::<_, String>(0), comment.as_deref(), s)?;
    }
    if !ours {
        // WITH NO DATA: allowed inside a transaction; the refresh policy fills it.
        c.batch_execute(&format!(
            "CREATE MATERIALIZED VIEW {view} WITH (timescaledb.continuous, timescaledb.materialized_only = false) \
             AS {} WITH NO DATA;\nCOMMENT ON VIEW {view} IS '{}'",
            a.select,
            a.comment()
        ))?;
    }
    // Two statements: TimescaleDB takes either the real-time option or the compression options in one ALTER.
    c.batch_execute(&format!(
        "ALTER MATERIALIZED VIEW {view} SET (timescaledb.materialized_only = false);\n\
         ALTER MATERIALIZED VIEW {view} SET (timescaledb.compress = true, \
         timescaledb.compress_segmentby = '{}', timescaledb.compress_orderby = '{}')",
        a.segmentby, a.orderby
    ))?;
    // An older extension's chunks keep their size and are compressed as before.
    set_chunk_interval(c, &view, a.chunk_days * 24)?;
    c.execute("SELECT remove_continuous_aggregate_policy($1::text::regclass, if_exists => true)", &[&view])?;
    if let Some(start) = refresh_start_hours(a.bucket_hours, s.retention_days) {
        let start_offset = start.map(|h| format!("make_interval(hours => {h})")).unwrap_or_else(|| "NULL".into());
        c.execute(
            &format!(
                "SELECT add_continuous_aggregate_policy($1::text::regclass, start_offset => {start_offset}, \
                 end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes')"
            ),
            &[&view],
        )?;
    }
    c.execute("SELECT remove_compression_policy($1::text::regclass, if_exists => true)", &[&view])?;
    c.execute(
        "SELECT add_compression_policy($1::text::regclass, compress_after => make_interval(days => $2))",
        &[&view, &AGGREGATE_COMPRESS_AFTER_DAYS],
    )?;
    Ok(())
}

/// An aggregate an older extension made under this name (or a plain view): dropped when the events it
/// summarises are all still there (it is rebuilt from them); with retention, kept beside the new one as
/// `<name>_v<its version>` (`_v1` without a version) without its refresh policy, since it may hold days
/// whose events are gone.
fn retire(
    c: &mut Client,
    n: &Names,
    a: &Aggregate,
    relkind: &str,
    comment: Option<&str>,
    s: &Settings,
) -> Result<(), Error> {
    let view = n.q(&a.name);
    let continuous = is_continuous(c, n, &a.name)?;
    if relkind == "v" && !continuous {
        c.batch_execute(&format!("DROP VIEW {view}"))?;
        return Ok(());
    }
    if continuous {
        // Its refresh policy first, either way: removing it cancels a refresh that runs (TimescaleDB 2.28's
        // job workers can crash on an aggregate dropped under them, restarting the whole server), and a DROP
        // then waits for the cancelled refresh's locks.
        c.execute("SELECT remove_continuous_aggregate_policy($1::text::regclass, if_exists => true)", &[&view])?;
    }
    if s.retention_days <= 0 {
        if continuous {
            c.execute("SELECT remove_compression_policy($1::text::regclass, if_exists => true)", &[&view])?;
        }
        c.batch_execute(&format!("DROP MATERIALIZED VIEW {view} CASCADE"))?;
        return Ok(());
    }
    let version =
        comment.and_then(|t| t.strip_prefix(AGGREGATE_COMMENT)).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(1);
    let old = n.derived(&format!("{}_v{version}", a.suffix));
    c.batch_execute(&format!("ALTER MATERIALIZED VIEW {view} RENAME TO {}", quote_ident(&old)))?;
    Ok(())
}

fn is_continuous(c: &mut Client, n: &Names, name: &str) -> Result<bool, Error> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates \
         WHERE view_schema = $1 AND view_name = $2)",
        &[&n.schema, &name],
    )?
    .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_windows() {
        assert_eq!(refresh_start_hours(1, 0), Some(None));
        assert_eq!(refresh_start_hours(24, 0), Some(None));
        assert_eq!(refresh_start_hours(1, 1), Some(Some(23)));
        assert_eq!(refresh_start_hours(24, 3), Some(Some(71)));
        assert_eq!(refresh_start_hours(24, 2), None);
        assert_eq!(refresh_start_hours(24, 30), Some(Some(719)));
    }
}
