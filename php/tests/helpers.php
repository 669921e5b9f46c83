<?php
// Shared helpers for the extension's PHP-level tests.

/**
 * A Moodle-shaped event (the keys of \core\event\base::get_data() plus origin, ip, realuserid).
 */
function tsdb_test_event(int $i, array $overrides = []): array {
    return array_merge([
        'eventname' => '\\core\\event\\course_viewed',
        'component' => 'core',
        'action' => 'viewed',
        'target' => 'course',
        'objecttable' => null,
        'objectid' => null,
        'crud' => 'r',
        'edulevel' => 2,
        'contextid' => 100 + $i % 7,
        'contextlevel' => 50,
        'contextinstanceid' => 3 + $i % 7,
        'userid' => 1000 + $i,
        'courseid' => 3 + $i % 7,
        'relateduserid' => null,
        'anonymous' => 0,
        'other' => ['i' => $i, 'tag' => 'x'],
        'timecreated' => 1700000000 + intdiv($i, 100),
        'origin' => 'web',
        'ip' => '192.0.2.' . ($i % 250),
        'realuserid' => null,
    ], $overrides);
}

/**
 * Reads back the file sink's JSON lines as arrays.
 */
function tsdb_test_read_jsonl(string $path): array {
    if (!file_exists($path)) {
        return [];
    }
    $rows = [];
    foreach (file($path, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
        $row = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
        $rows[] = $row;
    }
    return $rows;
}

/**
 * The value the file sink stores for one event field given to tsdb_log_event().
 */
function tsdb_test_expected(array $event): array {
    $ints = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
        'relateduserid', 'anonymous', 'timecreated', 'realuserid'];
    $out = [];
    foreach ($event as $k => $v) {
        if ($k === 'other') {
            $out[$k] = $v === null ? null : (is_string($v) ? $v : json_encode($v, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE));
        } else if (in_array($k, $ints, true)) {
            $out[$k] = ($v === null || $v === '') ? null : (int)$v;
        } else {
            $out[$k] = $v === null ? null : mb_scrub((string)$v, 'UTF-8');
        }
    }
    return $out;
}

/**
 * Runs a PHP snippet in a fresh process with the extension loaded; returns [exit code, output].
 */
function tsdb_test_run_php(string $code, array $ini = []): array {
    $so = getenv('TSDB_SO') ?: dirname(__DIR__, 2) . '/target/release/libtsdb.so';
    $args = [PHP_BINARY, '-n', '-d', 'extension=' . $so];
    foreach ($ini as $k => $v) {
        $args[] = '-d';
        $args[] = "$k=$v";
    }
    $args[] = '-r';
    $args[] = $code;
    $p = proc_open($args, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    $out = stream_get_contents($pipes[1]);
    fclose($pipes[1]);
    $rc = proc_close($p);
    return [$rc, $out];
}

/**
 * Replays the spool of configuration `$tsdb` (tsdb_configure() keys) from a fresh CLI process, as the Moodle task
 * or an admin's script would; returns [exit code, output: tsdb_replay_spool()'s array as JSON].
 */
function tsdb_test_replay_in_another_process(array $tsdb, int $max_ms): array {
    $ini = [];
    foreach ($tsdb as $k => $v) {
        $ini["tsdb.$k"] = $v;
    }
    return tsdb_test_run_php("echo json_encode(tsdb_replay_spool($max_ms));", $ini);
}

/**
 * A fresh temp directory per test, removed afterwards.
 */
trait tsdb_test_tempdir {
    private string $dir;

    protected function setUp(): void {
        $this->dir = sys_get_temp_dir() . '/tsdb-test-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0777);
        chmod($this->dir, 0777); // PHP-FPM workers run as nobody
    }

    protected function tearDown(): void {
        tsdb_test_rmtree($this->dir);
    }
}

function tsdb_test_rmtree(string $path): void {
    if (is_dir($path) && !is_link($path)) {
        foreach (array_diff(scandir($path), ['.', '..']) as $f) {
            tsdb_test_rmtree("$path/$f");
        }
        rmdir($path);
    } else if (file_exists($path) || is_link($path)) {
        unlink($path);
    }
}

/**
 * Before a test drops an events table: deletes the TimescaleDB policy jobs of the hypertables in $schema whose names
 * start with $prefix (and of their aggregates) and waits until their workers have ended. A job running while its
 * hypertable is dropped can crash TimescaleDB 2.28.3's worker, and PostgreSQL then restarts the whole server
 * (tests/common/stop_jobs.sql says more). Nothing to do without TimescaleDB.
 *
 * @param resource|\PgSql\Connection $db
 */
function tsdb_test_pg_stop_jobs($db, string $schema, string $prefix = ''): void {
    if (pg_fetch_result(pg_query($db, "SELECT to_regclass('_timescaledb_catalog.bgw_job')"), 0, 0) === null) {
        return;
    }
    $sql = file_get_contents(__DIR__ . '/../../tests/common/stop_jobs.sql');
    $result = pg_query_params($db, $sql, [$schema, $prefix]);
    if ($result === false) {
        throw new RuntimeException("stopping the jobs of $schema.$prefix*: " . pg_last_error($db));
    }
    $deadline = microtime(true) + 60;
    foreach (pg_fetch_all_columns($result, 0) as $worker) {
        while ((int) pg_fetch_result(pg_query_params($db, 'SELECT count(*) FROM pg_stat_activity'
                . ' WHERE datname = current_database() AND application_name = $1', [$worker]), 0, 0) > 0) {
            if (microtime(true) > $deadline) {
                throw new RuntimeException("the worker of $worker still runs after 60 s");
            }
            usleep(20000);
        }
    }
}

/**
 * Runs DDL on the events table (DROP ... CASCADE) as an administrator does: again while TimescaleDB's scheduler is
 * in its way. A refresh policy (the first runs follow the aggregates' creation) locks an aggregate, then the table;
 * DROP the other way round: PostgreSQL ends one with "deadlock detected" or the catalog's "tuple concurrently
 * deleted", and the failed statement changed nothing. Throws on any other error, or after 20 tries.
 *
 * @param resource|\PgSql\Connection $db
 */
function tsdb_test_pg_ddl($db, string $sql): void {
    for ($try = 1;; $try++) {
        pg_send_query($db, $sql);
        $result = pg_get_result($db);
        while (pg_get_result($db) !== false) {
            // Drain: one result per statement.
        }
        $state = (string) pg_result_error_field($result, PGSQL_DIAG_SQLSTATE);
        if ($state === '' || $state[0] === '0') {
            return;
        }
        $error = pg_result_error($result);
        $busy = $state === '40P01' || strpos($error, 'tuple concurrently') !== false;
        if (!$busy || $try === 20) {
            throw new RuntimeException("$sql: $error");
        }
        usleep(250000);
    }
}
