<?php
// Helpers shared by the parts of the scale benchmark (php/bench/scale/run.sh): results as JSON, medians, connections
// to the run's servers. No Moodle code here: the parts that run inside the site add site/bootstrap.php.

/** The run's environment (exported by run.sh). */
function scale_env(string $name): string {
    $v = getenv($name);
    if ($v === false || $v === '') {
        throw new RuntimeException("$name is not set: run this through php/bench/scale/run.sh");
    }
    return $v;
}

/** The Moodle site's site.json (tests/servers/moodle.sh). */
function scale_site(): array {
    return json_decode((string) file_get_contents(scale_env('SCALE_SITE') . '/site.json'), true);
}

/** The parameters of this run. */
function scale_params(): array {
    return ['events' => (int) scale_env('SCALE_EVENTS'), 'days' => (int) scale_env('SCALE_DAYS'),
        'users' => (int) scale_env('SCALE_USERS'), 'courses' => (int) scale_env('SCALE_COURSES'),
        'skip' => array_values(array_filter(explode(',', (string) getenv('SCALE_SKIP'))))];
}

/** The generated window: DAYS whole UTC days ending at today's midnight (the last day is yesterday). */
function scale_window(): array {
    $end = intdiv(time(), 86400) * 86400;
    $days = (int) scale_env('SCALE_DAYS');
    return [$end - $days * 86400, $end];
}

/** Writes a result file (pretty JSON). */
function scale_write(string $file, array $data): void {
    file_put_contents($file, json_encode($data, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE |
        JSON_PRESERVE_ZERO_FRACTION) . "\n");
}

/** Reads a result file of this run (null when the phase did not write it). */
function scale_read(string $file): ?array {
    return is_file($file) ? json_decode((string) file_get_contents($file), true) : null;
}

/** Median of a list of numbers. */
function scale_median(array $xs): ?float {
    if (!$xs) {
        return null;
    }
    sort($xs);
    $n = count($xs);
    return $n % 2 ? (float) $xs[intdiv($n, 2)] : ($xs[$n / 2 - 1] + $xs[$n / 2]) / 2;
}

/** Milliseconds since $t0 (hrtime nanoseconds). */
function scale_ms(int $t0): float {
    return (hrtime(true) - $t0) / 1e6;
}

/** Prints a progress line to stderr. */
function scale_say(string $line): void {
    fwrite(STDERR, '   ' . $line . "\n");
}

/** key=value DSN of the superuser over the run's socket, on database $db. */
function scale_super_dsn(string $db): string {
    return preg_replace('/dbname=\S+/', 'dbname=' . $db, scale_env('TSDB_TEST_PG_SUPERUSER_DSN'));
}

/** Name of the TimescaleDB database the sink writes to (TSDB_TEST_TIMESCALE_DSN). */
function scale_ts_dbname(): string {
    return ltrim((string) parse_url(scale_env('TSDB_TEST_TIMESCALE_DSN'), PHP_URL_PATH), '/');
}

/** A new superuser connection to a database of the run's server. */
function scale_pg(string $db) {
    $c = pg_connect(scale_super_dsn($db), PGSQL_CONNECT_FORCE_NEW);
    if (!$c) {
        throw new RuntimeException("cannot connect to database $db");
    }
    return $c;
}

/** Rows of a query (assoc arrays); throws with PostgreSQL's message on error. */
function scale_rows($db, string $sql, array $params = []): array {
    $r = $params ? @pg_query_params($db, $sql, $params) : @pg_query($db, $sql);
    if ($r === false) {
        throw new RuntimeException(trim(pg_last_error($db)) . ' in: ' . preg_replace('/\s+/', ' ', $sql));
    }
    return pg_fetch_all($r) ?: [];
}

/** First column of the first row. */
function scale_value($db, string $sql, array $params = []) {
    $rows = scale_rows($db, $sql, $params);
    return $rows ? reset($rows[0]) : null;
}

/** Bytes as MiB text. */
function scale_mib(float $bytes): string {
    return number_format($bytes / 1048576, 1);
}

/**
 * A query giving the number of rows of a log table and an order-independent checksum of their event columns (every
 * column of logstore_standard_log but id; `other` compared as JSON, so the standard store's json_encode() text and the
 * sink's jsonb are the same value, and NULL is JSON null).
 */
function scale_checksum_sql(string $table, string $where = ''): string {
    $cols = "eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid, contextlevel,
        contextinstanceid, userid, courseid, relateduserid, anonymous, COALESCE(other::jsonb, 'null'::jsonb)::text,
        timecreated, origin, ip, realuserid";
    return "SELECT count(*) AS n, COALESCE(sum(('x' || substr(md5(concat_ws('|', $cols)), 1, 15))::bit(60)::bigint), 0)::text
        AS checksum FROM $table" . ($where !== '' ? " WHERE $where" : '');
}

/** POSTs an InfluxQL statement to the run's InfluxDB; returns the decoded answer. */
function scale_influxql(string $q, string $db = 'moodle'): array {
    $ctx = stream_context_create(['http' => ['method' => 'POST', 'ignore_errors' => true,
        'header' => 'Content-Type: application/x-www-form-urlencoded', 'content' => http_build_query(['q' => $q, 'db' => $db])]]);
    $body = file_get_contents(scale_env('TSDB_TEST_INFLUX_URL') . '/query', false, $ctx);
    $json = json_decode((string) $body, true);
    if (!is_array($json) || isset($json['error']) || isset($json['results'][0]['error'])) {
        throw new RuntimeException("InfluxDB: $q: " . ($json['error'] ?? $json['results'][0]['error'] ?? (string) $body));
    }
    return $json;
}
