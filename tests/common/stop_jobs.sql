-- Deletes the TimescaleDB policy jobs of the hypertables in a schema whose names start with a prefix (empty for all),
-- and those of their continuous aggregates (and of aggregates on those); returns each job application_name, which
-- its worker shows in pg_stat_activity until it has ended.
--
-- Why tests run this (and wait for the workers) before they drop an events table: a policy job that runs while its
-- hypertable is dropped can crash its worker in TimescaleDB 2.28.3 (SIGSEGV reading the dropped hypertable
-- dimension: get_open_dimension_for_hypertable, ts_dimension_get_partition_type), and PostgreSQL then restarts the
-- whole server. delete_job() cancels a running job and keeps the scheduler from starting it again.
-- Shared by the Rust tests (tests/common/pg.rs), php/tests (helpers.php) and the Moodle tests (base_testcase.php);
-- each parameter is used once, in order, so that PDO can run it with ? for them.
WITH RECURSIVE arg(schema_name, prefix) AS (SELECT $1::text, $2::text),
ht(id) AS (
    SELECT h.id FROM _timescaledb_catalog.hypertable h, arg
     WHERE h.schema_name = arg.schema_name AND left(h.table_name, length(arg.prefix)) = arg.prefix
    UNION
    SELECT c.mat_hypertable_id FROM _timescaledb_catalog.continuous_agg c JOIN ht ON c.raw_hypertable_id = ht.id
)
SELECT j.application_name, delete_job(j.id)::text AS deleted
  FROM _timescaledb_catalog.bgw_job j
 WHERE j.hypertable_id IN (SELECT id FROM ht)
