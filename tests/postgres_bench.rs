//! Benchmark (ignored by default): rows per second through `PostgresSink` against `psql \copy` of the
//! same rows into the same table, and the table's size on disk per million events next to a
//! `logstore_standard_log`-shaped table holding the same events.
//!
//! ```sh
//! source tests/servers/postgres.sh && start_postgres /tmp/p
//! TSDB_BENCH_ROWS=500000 cargo test --release --no-default-features --test postgres_bench -- --ignored --nocapture
//! ```

#[path = "common/pg.rs"]
mod pg;

use std::process::Command;
use std::time::Instant;
use tsdb::event::{EventId, IntField, StrField};
use tsdb::record::RecordWriter;
use tsdb::sink::{Batch, Sink};

const COLS: &str = "eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid, \
                    contextlevel, contextinstanceid, userid, courseid, relateduserid, anonymous, other, timecreated, \
                    origin, ip, realuserid";

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// Moodle-shaped events: course views, module views, submissions, over 2 000 users and 50 courses.
/// eventname, component, action, target, crud, edulevel, contextlevel.
type Shape = (&'static [u8], &'static [u8], &'static [u8], &'static [u8], &'static [u8], i64, i64);

fn batch(producer: u64, first: u64, n: u64, t0: i64) -> Batch {
    let mut buf = Vec::new();
    for seq in first..first + n {
        let mut w = RecordWriter::begin(&mut buf);
        let kind = seq % 3;
        let (name, comp, action, target, crud, level, ctxlevel): Shape = match kind {
            0 => (b"\\core\\event\\course_viewed", b"core", b"viewed", b"course", b"r", 2, 50),
            1 => (b"\\mod_page\\event\\course_module_viewed", b"mod_page", b"viewed", b"course_module", b"r", 2, 70),
            _ => (b"\\mod_assign\\event\\submission_created", b"mod_assign", b"created", b"submission", b"c", 2, 70),
        };
        w.put_str(StrField::EventName, name, 1 << 16);
        w.put_str(StrField::Component, comp, 1 << 16);
        w.put_str(StrField::Action, action, 1 << 16);
        w.put_str(StrField::Target, target, 1 << 16);
        w.put_str(StrField::Crud, crud, 1 << 16);
        w.put_str(StrField::Origin, b"web", 1 << 16);
        w.put_str(StrField::Ip, format!("10.{}.{}.{}", seq % 7, seq % 251, seq % 13).as_bytes(), 1 << 16);
        if kind == 2 {
            w.put_str(StrField::ObjectTable, b"assign_submission", 1 << 16);
            w.set_int(IntField::ObjectId, (seq / 3) as i64);
            w.put_str(
                StrField::Other,
                format!("{{\"submissionid\":{},\"submissionattempt\":1}}", seq / 3).as_bytes(),
                1 << 20,
            );
        } else {
            w.put_str(StrField::Other, b"null", 1 << 20);
        }
        let course = (seq % 50) as i64 + 2;
        w.set_int(IntField::EduLevel, level);
        w.set_int(IntField::ContextId, course * 10 + kind as i64);
        w.set_int(IntField::ContextLevel, ctxlevel);
        w.set_int(IntField::ContextInstanceId, course);
        w.set_int(IntField::UserId, (seq * 7919 % 2000) as i64 + 2);
        w.set_int(IntField::CourseId, course);
        w.set_int(IntField::Anonymous, 0);
        let t = t0 + (seq / 20) as i64;
        w.set_int(IntField::TimeCreated, t);
        w.finish(EventId { producer, seq }, t * 1_000_000_000 + (seq % 1_000_000) as i64 * 1000);
    }
    Batch::new(buf).expect("batch")
}

#[test]
#[ignore]
fn bench_sink_vs_psql_copy() {
    let Some(pg) = pg::server("TSDB_TEST_PG", "PostgreSQL", "bench") else { return };
    let rows: u64 = env("TSDB_BENCH_ROWS").and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let batch_size: u64 = env("TSDB_BENCH_BATCH").and_then(|v| v.parse().ok()).unwrap_or(5000);
    let schema = &pg.schema("sink");
    let mut c = pg.client();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t0 = now - (rows / 20) as i64 - 60;
    let batches: Vec<Batch> = (0..rows.div_ceil(batch_size))
        .map(|k| batch(7, 1 + k * batch_size, batch_size.min(rows - k * batch_size), t0))
        .collect();
    let mut sink = pg.sink(schema, &[]);
    // Connect, create the schema and the partitions the rows need (not what is measured).
    let warm = batch(8, 1, 1, t0);
    sink.write(&warm).unwrap();
    sink.write(&batch(9, 1, 1, t0 + (rows / 20) as i64)).unwrap();
    c.batch_execute(&format!("TRUNCATE {schema}.logstore_tsdb_log")).unwrap();

    let started = Instant::now();
    for b in &batches {
        sink.write(b).unwrap();
    }
    let sink_secs = started.elapsed().as_secs_f64();
    let n: i64 = c.query_one(&format!("SELECT count(*) FROM {schema}.logstore_tsdb_log"), &[]).unwrap().get(0);
    assert_eq!(n as u64, rows);

    // The same rows through psql \copy (text format, the usual bulk path), same table, same indexes.
    let file = std::env::temp_dir().join(format!("tsdb-bench-{}.tsv", std::process::id()));
    let cols = format!("{COLS}, \"time\", producer, seq");
    let psql = |cmd: &str| {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &pg.host, "-p", &pg.port.to_string(), "-U", &pg.user])
            .args(["-d", &pg.db, "-c", cmd])
            .env("PGPASSWORD", &pg.password)
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    };
    psql(&format!("\\copy (SELECT {cols} FROM {schema}.logstore_tsdb_log) TO '{}'", file.display()));
    // Size on disk, then the Moodle-shaped table holding the same events.
    let ours: i64 = c
        .query_one(
            &format!(
                "SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits \
                 WHERE inhparent = '{schema}.logstore_tsdb_log'::regclass"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    c.batch_execute(&format!(
        "CREATE TABLE {schema}.std (id bigserial PRIMARY KEY, eventname varchar(255) NOT NULL, \
         component varchar(100) NOT NULL, action varchar(100) NOT NULL, target varchar(100) NOT NULL, \
         objecttable varchar(50), objectid bigint, crud varchar(1) NOT NULL, edulevel smallint NOT NULL, \
         contextid bigint NOT NULL, contextlevel bigint NOT NULL, contextinstanceid bigint NOT NULL, \
         userid bigint NOT NULL, courseid bigint, relateduserid bigint, anonymous smallint NOT NULL, other text, \
         timecreated bigint NOT NULL, origin varchar(10), ip varchar(45), realuserid bigint);
         CREATE INDEX ON {schema}.std (timecreated);
         CREATE INDEX ON {schema}.std (courseid, anonymous, timecreated);
         CREATE INDEX ON {schema}.std (userid, contextlevel, contextinstanceid, crud, edulevel, timecreated);
         INSERT INTO {schema}.std ({COLS}) SELECT {COLS} FROM {schema}.logstore_tsdb_log ORDER BY id;
"
    ))
    .unwrap();
    let std: i64 = c.query_one(&format!("SELECT pg_total_relation_size('{schema}.std')"), &[]).unwrap().get(0);
    let mut psql_secs = f64::MAX;
    for _ in 0..2 {
        c.batch_execute(&format!("TRUNCATE {schema}.logstore_tsdb_log")).unwrap();
        let started = Instant::now();
        psql(&format!("\\copy {schema}.logstore_tsdb_log ({cols}) FROM '{}'", file.display()));
        psql_secs = psql_secs.min(started.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&file);
    // The sink again (the machine is shared and noisy): the best of two runs counts, for psql too.
    c.batch_execute(&format!("TRUNCATE {schema}.logstore_tsdb_log, {schema}.logstore_tsdb_log_ledger")).unwrap();
    let started = Instant::now();
    for b in &batches {
        sink.write(b).unwrap();
    }
    let second = started.elapsed().as_secs_f64();
    println!("sink runs: {:.0} and {:.0} rows/s", rows as f64 / sink_secs, rows as f64 / second);
    let sink_secs = sink_secs.min(second);

    let per_m = |bytes: i64| bytes as f64 / rows as f64 * 1e6 / (1 << 20) as f64;
    println!("rows: {rows}, batch size {batch_size}");
    println!("sink (binary COPY + ledger, {} batches): {:.0} rows/s", batches.len(), rows as f64 / sink_secs);
    println!("psql \\copy (text, one COPY):            {:.0} rows/s", rows as f64 / psql_secs);
    println!("ratio sink / psql:                       {:.2}", psql_secs / sink_secs);
    println!(
        "size per million events: logstore_tsdb_log {:.0} MiB, logstore_standard_log-shaped {:.0} MiB",
        per_m(ours),
        per_m(std)
    );
}
