<?php
// After the load, TimescaleDB's own scheduler applies the policies the sink's schema defines (compression, continuous
// aggregate refresh, retention, whatever jobs exist): every policy job of the sink's database is told to start now
// (alter_job(id, next_start => now()), nothing else changed), then job_stats / job_errors are polled until every job
// has run successfully after the load and every chunk older than the compression policy's age is compressed. No
// run_job, no manual refresh. A failed job fails the run with TimescaleDB's own error.
// Then VACUUM (ANALYZE) of both stores, as autovacuum would have done on a site that logged these events over time.
//   php policies.php OUT.json

require_once(__DIR__ . '/lib/common.php');

$out = $argv[1];
$ts = scale_pg(scale_ts_dbname());
$failures = [];
$t0 = microtime(true);
$since = scale_value($ts, 'SELECT now()');
$jobs = scale_rows($ts, "SELECT job_id, application_name, proc_schema, proc_name, hypertable_schema, hypertable_name,
    schedule_interval::text, config::text FROM timescaledb_information.jobs WHERE job_id >= 1000 ORDER BY job_id");
foreach ($jobs as $j) {
    scale_rows($ts, 'SELECT alter_job($1, next_start => now())', [$j['job_id']]);
}
scale_say(count($jobs) . ' job(s) told to start now: ' . implode(', ', array_column($jobs, 'application_name')));

/** Chunks older than the compression policy's compress_after that are not compressed yet ([] without a policy). */
function scale_uncompressed_old_chunks($ts): array {
    return scale_rows($ts, "SELECT c.hypertable_name, c.chunk_name, c.range_end::text FROM timescaledb_information.jobs j
        JOIN timescaledb_information.chunks c ON c.hypertable_schema = j.hypertable_schema
            AND c.hypertable_name = j.hypertable_name
        WHERE j.proc_name = 'policy_compression' AND NOT c.is_compressed
            AND c.range_end < now() - (j.config->>'compress_after')::interval");
}

$deadline = microtime(true) + 6 * 3600;
$done = [];
while (true) {
    $errors = scale_rows($ts, 'SELECT job_id, proc_name, start_time::text, finish_time::text, sqlerrcode, err_message
        FROM timescaledb_information.job_errors WHERE start_time >= $1 ORDER BY start_time', [$since]);
    foreach ($errors as $e) {
        $failures[] = "TimescaleDB job {$e['job_id']} ({$e['proc_name']}) failed: SQLSTATE {$e['sqlerrcode']}: {$e['err_message']}";
    }
    $stats = scale_rows($ts, 'SELECT job_id, last_run_started_at::text, last_successful_finish::text, last_run_status,
        job_status, last_run_duration::text, total_runs, total_failures FROM timescaledb_information.job_stats
        WHERE job_id >= 1000 ORDER BY job_id');
    $pending = [];
    foreach ($jobs as $j) {
        $s = null;
        foreach ($stats as $row) {
            if ($row['job_id'] === $j['job_id']) {
                $s = $row;
            }
        }
        $ran = $s && $s['last_successful_finish'] !== null && scale_value($ts, 'SELECT $1::timestamptz >= $2::timestamptz',
            [$s['last_successful_finish'], $since]) === 't' && $s['job_status'] !== 'Running';
        if ($ran) {
            $done[$j['job_id']] = $s;
        } else {
            $pending[] = $j['application_name'];
        }
    }
    $old = scale_uncompressed_old_chunks($ts);
    if ($errors || (!$pending && !$old)) {
        break;
    }
    if (microtime(true) > $deadline) {
        $failures[] = 'after 6 hours, still pending: ' . implode(', ', $pending) . '; ' . count($old) .
            ' chunk(s) older than the compression age not compressed';
        break;
    }
    sleep(2);
}
$seconds = microtime(true) - $t0;
scale_say(sprintf('policies applied in %.0f s', $seconds));

$chunks = scale_rows($ts, "SELECT hypertable_schema || '.' || hypertable_name AS hypertable, count(*) AS chunks,
    count(*) FILTER (WHERE is_compressed) AS compressed, min(range_start)::text AS first, max(range_end)::text AS last
    FROM timescaledb_information.chunks GROUP BY 1 ORDER BY 1");
$settings = scale_rows($ts, 'SELECT hypertable_schema, hypertable_name, attname, segmentby_column_index,
    orderby_column_index, orderby_asc FROM timescaledb_information.compression_settings ORDER BY 1, 2, 3');
$dims = scale_rows($ts, 'SELECT hypertable_schema, hypertable_name, column_name, time_interval::text
    FROM timescaledb_information.dimensions ORDER BY 1, 2');

// As autovacuum would have done by now on a site that logged these events over the year.
$t = microtime(true);
scale_rows($ts, 'VACUUM (ANALYZE)');
$std = scale_pg(scale_site()['dbname']);
scale_rows($std, 'VACUUM (ANALYZE) mdl_logstore_standard_log');
$vacuum = microtime(true) - $t;

foreach ($jobs as &$j) {
    $j['stats'] = $done[$j['job_id']] ?? null;
}
unset($j);
scale_write($out, ['since' => $since, 'seconds' => round($seconds, 1), 'jobs' => $jobs, 'chunks' => $chunks,
    'compression_settings' => $settings, 'dimensions' => $dims, 'vacuum_analyze_seconds' => round($vacuum, 1),
    'failures' => $failures]);
foreach ($failures as $f) {
    scale_say("FAILED: $f");
}
exit($failures ? 1 : 0);
