<?php
// The reference both benchmarks compare with: Moodle's logstore_standard_log, as a PostgreSQL table with its indexes.

/** The test server's DSN from TSDB_TEST_PG_*, or '' when there is none. */
function tsdb_bench_pg_dsn(): string {
    if (!getenv('TSDB_TEST_PG_HOST') || !function_exists('pg_connect')) {
        return '';
    }
    return sprintf('host=%s port=%s dbname=%s user=%s password=%s', getenv('TSDB_TEST_PG_HOST'), getenv('TSDB_TEST_PG_PORT'),
        getenv('TSDB_TEST_PG_DB'), getenv('TSDB_TEST_PG_USER'), getenv('TSDB_TEST_PG_PASSWORD'));
}

/** (Re)creates bench_standard_log: the columns and indexes of logstore_standard_log. */
function tsdb_bench_standard_table($db): void {
    pg_query($db, 'DROP TABLE IF EXISTS bench_standard_log');
    pg_query($db, 'CREATE TABLE bench_standard_log (id bigserial PRIMARY KEY, eventname varchar(255), component varchar(100),
        action varchar(100), target varchar(100), objecttable varchar(50), objectid bigint, crud char(1), edulevel smallint,
        contextid bigint, contextlevel bigint, contextinstanceid bigint, userid bigint, courseid bigint, relateduserid bigint,
        anonymous smallint, other text, timecreated bigint, origin varchar(10), ip varchar(45), realuserid bigint)');
    pg_query($db, 'CREATE INDEX ON bench_standard_log (timecreated)');
    pg_query($db, 'CREATE INDEX ON bench_standard_log (courseid, anonymous, timecreated)');
    pg_query($db, 'CREATE INDEX ON bench_standard_log (userid, contextlevel, contextinstanceid, crud, edulevel, timecreated)');
}
