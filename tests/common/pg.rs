//! The PostgreSQL servers of the tests (tests/servers/postgres.sh exports `{PREFIX}_HOST`, `_PORT`,
//! `_USER`, `_PASSWORD`, `_DB`, `_SOCKET`), shared by the PostgreSQL test files.
//!
//! Without the variables a test says "SKIPPED: ..." and passes, unless TSDB_TEST_REQUIRE_SERVERS=1
//! (CI), where it fails.

#![allow(dead_code)] // each test file uses part of it

use postgres::{Client, NoTls};
use tsdb::config::Config;
use tsdb::sink::postgres::PostgresSink;

pub fn require() -> bool {
    std::env::var("TSDB_TEST_REQUIRE_SERVERS").as_deref() == Ok("1")
}

pub fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

#[derive(Clone, Debug)]
pub struct PgServer {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub db: String,
    pub socket: Option<String>,
    /// Prefix of the schemas this test file makes, so that test files running at the same time
    /// never share one.
    pub schema_prefix: &'static str,
}

/// The server `{prefix}_*` names, or None after saying SKIPPED (a panic in CI).
pub fn server(prefix: &str, what: &str, schema_prefix: &'static str) -> Option<PgServer> {
    let get = |k: &str| var(&format!("{prefix}_{k}"));
    match (get("HOST"), get("PORT"), get("USER"), get("PASSWORD"), get("DB")) {
        (Some(host), Some(port), Some(user), Some(password), Some(db)) => Some(PgServer {
            host,
            port: port.parse().unwrap_or_else(|_| panic!("{prefix}_PORT")),
            user,
            password,
            db,
            socket: get("SOCKET"),
            schema_prefix,
        }),
        _ => {
            if require() {
                panic!(
                    "TSDB_TEST_REQUIRE_SERVERS=1 but {prefix}_* is not set (source tests/servers/postgres.sh and \
                     run start_postgres; the TLS server needs openssl)"
                );
            }
            eprintln!(
                "SKIPPED: {what} not configured (set {prefix}_HOST/PORT/USER/PASSWORD/DB, e.g. \
                 `source tests/servers/postgres.sh && start_postgres /tmp/p`)"
            );
            None
        }
    }
}

impl PgServer {
    /// A plain (no TLS) client of the test, for looking at what the sink did from outside.
    pub fn client(&self) -> Client {
        let mut c = postgres::Config::new();
        c.host(&self.host).port(self.port).user(&self.user).password(&self.password).dbname(&self.db);
        c.connect(NoTls).expect("test connection")
    }

    /// A fresh, empty schema for one test.
    pub fn schema(&self, name: &str) -> String {
        let schema = format!("{}_{name}", self.schema_prefix);
        self.stop_jobs(&schema, "");
        self.ddl_retrying(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
        schema
    }

    /// Before a test drops an events table: deletes the TimescaleDB policy jobs of the hypertables in `schema`
    /// whose names start with `prefix` (and of their aggregates) and waits until their workers have ended. A
    /// job running while its hypertable is dropped can crash TimescaleDB 2.28.3's worker, and PostgreSQL then
    /// restarts the whole server (tests/common/stop_jobs.sql says more). Nothing to do without TimescaleDB.
    pub fn stop_jobs(&self, schema: &str, prefix: &str) {
        let mut client = self.client();
        let catalog: Option<String> =
            client.query_one("SELECT to_regclass('_timescaledb_catalog.bgw_job')::text", &[]).unwrap().get(0);
        if catalog.is_none() {
            return;
        }
        let workers: Vec<String> = client
            .query(include_str!("stop_jobs.sql"), &[&schema, &prefix])
            .unwrap_or_else(|e| panic!("stopping the jobs of {schema}.{prefix}*: {e:?}"))
            .iter()
            .map(|r| r.get(0))
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for name in workers {
            while client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = $1",
                    &[&name],
                )
                .unwrap()
                .get::<_, i64>(0)
                > 0
            {
                assert!(std::time::Instant::now() < deadline, "the worker of {name} still runs after 60 s");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// Runs DDL on the events table (DROP ... CASCADE, ALTER) as an administrator does: again while
    /// TimescaleDB's scheduler is in its way. A refresh policy (the first runs follow the aggregates'
    /// creation) locks an aggregate, then the table; DROP the other way round: PostgreSQL ends one with
    /// "deadlock detected" or the catalog's "tuple concurrently deleted", and the failed statements
    /// (one implicit transaction) changed nothing.
    pub fn ddl_retrying(&self, sql: &str) {
        let mut client = self.client();
        for attempt in 1.. {
            match client.batch_execute(sql) {
                Ok(()) => return,
                Err(e) => {
                    let busy = e.code() == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED)
                        || e.as_db_error().is_some_and(|d| d.message().contains("tuple concurrently"));
                    assert!(busy && attempt < 20, "{sql}: {e:?}");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
            }
        }
    }

    /// The sink's configuration for this server and `schema`; later pairs of `extra` win.
    pub fn config(&self, schema: &str, extra: &[(&str, &str)]) -> Config {
        let port = self.port.to_string();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("backend", "postgres"),
            ("host", &self.host),
            ("port", &port),
            ("user", &self.user),
            ("password", &self.password),
            ("dbname", &self.db),
            ("schema", schema),
        ];
        pairs.extend_from_slice(extra);
        Config::from_pairs(pairs).expect("test config")
    }

    pub fn sink(&self, schema: &str, extra: &[(&str, &str)]) -> PostgresSink {
        PostgresSink::new(&self.config(schema, extra)).unwrap()
    }

    /// Rows in the sink's table of `schema`.
    pub fn count(&self, schema: &str) -> i64 {
        self.client().query_one(&format!("SELECT count(*) FROM \"{schema}\".logstore_tsdb_log"), &[]).unwrap().get(0)
    }
}
