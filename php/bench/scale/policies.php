<?php
// After the load, TimescaleDB's own scheduler applies the policies the sink's schema defines (compression, continuous
// aggregate refresh and compression, retention, whatever jobs exist): every policy job of the sink's database is told
// to start now (alter_job(id, next_start => now()), nothing else changed), then job_stats / job_errors are polled
// until every job has run successfully since. Jobs depend on each other (an aggregate's compression compresses only
// what its refresh has materialised, a roll-up what compression made), and on a site the scheduler repeats them every
// schedule_interval: so this is done in rounds until a round changes no chunk, every chunk older than its
// compression policy's age (events and aggregates) is compressed and no aggregate has a change below its watermark
// left. No run_job, no manual refresh. A failed job fails the run with TimescaleDB's own error.
// Then VACUUM (ANALYZE) of both stores, as autovacuum would have done on a site that logged these events over time.
//   php policies.php OUT.json

require_once(__DIR__ . '/lib/common.php');

const SCALE_MAX_ROUNDS = 6;
$out = $argv[1];
$ts = scale_pg(scale_ts_dbname());
$failures = [];
$t0 = microtime(true);
$jobs = scale_rows($ts, "SELECT job_id, application_name, proc_schema, proc_name, hypertable_schema, hypertable_name,
    schedule_interval::text, config::text FROM timescaledb_information.jobs WHERE job_id >= 1000 ORDER BY job_id");

/** Chunks older than their compression policy's compress_after and not compressed (an aggregate's: its materialisation). */
function scale_uncompressed_old_chunks($ts): array {
    return scale_rows($ts, "SELECT c.hypertable_name, c.chunk_name, c.range_end::text FROM timescaledb_information.jobs j
        LEFT JOIN timescaledb_information.continuous_aggregates a
            ON a.view_schema = j.hypertable_schema AND a.view_name = j.hypertable_name
        JOIN timescaledb_information.chunks c
            ON c.hypertable_schema = coalesce(a.materialization_hypertable_schema, j.hypertable_schema)
            AND c.hypertable_name = coalesce(a.materialization_hypertable_name, j.hypertable_name)
        WHERE j.proc_name = 'policy_compression' AND NOT c.is_compressed
            AND c.range_end < now() - (j.config->>'compress_after')::interval");
}

/** Aggregates with a change logged below their watermark: their next refresh materialises it. */
function scale_pending_invalidations($ts): int {
    return (int) scale_value($ts, "SELECT count(*) FROM _timescaledb_catalog.continuous_agg ca WHERE
        EXISTS (SELECT 1 FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l
                WHERE l.hypertable_id = ca.raw_hypertable_id AND l.greatest_modified_value >= 0
                AND l.lowest_modified_value < _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id))
        OR EXISTS (SELECT 1 FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l
                WHERE l.materialization_id = ca.mat_hypertable_id AND l.greatest_modified_value >= 0
                AND l.lowest_modified_value < _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id))");
}

/** What a round may change: every chunk with its compression state. */
function scale_chunk_state($ts): string {
    return md5(json_encode(scale_rows($ts, "SELECT hypertable_name, chunk_name, is_compressed, range_start, range_end
        FROM timescaledb_information.chunks ORDER BY 1, 2")));
}

$rounds = [];
$done = [];
$state = scale_chunk_state($ts);
for ($round = 1; $round <= SCALE_MAX_ROUNDS; $round++) {
    $since = scale_value($ts, 'SELECT now()');
    foreach ($jobs as $j) {
        scale_rows($ts, 'SELECT alter_job($1, next_start => now())', [$j['job_id']]);
    }
    $tr = microtime(true);
    $deadline = microtime(true) + 6 * 3600;
    while (true) {
        $errors = scale_rows($ts, 'SELECT job_id, proc_name, start_time::text, finish_time::text, sqlerrcode, err_message
            FROM timescaledb_information.job_errors WHERE start_time >= $1 ORDER BY start_time', [$since]);
        foreach ($errors as $e) {
            $failures[] = "TimescaleDB job {$e['job_id']} ({$e['proc_name']}) failed: SQLSTATE {$e['sqlerrcode']}: {$e['err_message']}";
        }
        $pending = [];
        foreach ($jobs as $j) {
            $s = scale_rows($ts, 'SELECT job_id, last_run_started_at::text, last_successful_finish::text, last_run_status,
                job_status, last_run_duration::text, total_runs, total_failures,
                coalesce(last_successful_finish >= $2::timestamptz, false) AS ran
                FROM timescaledb_information.job_stats WHERE job_id = $1', [$j['job_id'], $since])[0] ?? null;
            if ($s && $s['ran'] === 't' && $s['job_status'] !== 'Running') {
                $done[$j['job_id']][$round] = $s;
            } else {
                $pending[] = $j['application_name'];
            }
        }
        if ($errors || !$pending) {
            break;
        }
        if (microtime(true) > $deadline) {
            $failures[] = "round $round: after 6 hours, still pending: " . implode(', ', $pending);
            break;
        }
        sleep(2);
    }
    $old = scale_uncompressed_old_chunks($ts);
    $new = scale_chunk_state($ts);
    $invalid = scale_pending_invalidations($ts);
    $rounds[] = ['round' => $round, 'seconds' => round(microtime(true) - $tr, 1), 'chunks_changed' => $new !== $state,
        'old_chunks_not_compressed' => count($old), 'aggregates_with_changes_below_watermark' => $invalid];
    scale_say(sprintf('round %d: every job ran in %.0f s; chunks %s; %d chunk(s) older than their compression age not '
        . 'compressed; %d aggregate(s) with changes below the watermark', $round, microtime(true) - $tr,
        $new !== $state ? 'changed' : 'unchanged', count($old), $invalid));
    if ($failures || ($new === $state && !$old && !$invalid)) {
        break;
    }
    $state = $new;
    if ($round === SCALE_MAX_ROUNDS) {
        $failures[] = SCALE_MAX_ROUNDS . ' rounds of every policy job and still ' . count($old) .
            ' chunk(s) older than their compression age not compressed, chunks still changing or aggregates with ' .
            'changes below their watermark';
    }
}
$seconds = microtime(true) - $t0;
scale_say(sprintf('policies applied in %.0f s (%d rounds)', $seconds, count($rounds)));

$chunks = scale_rows($ts, "SELECT coalesce(a.view_schema || '.' || a.view_name || ' (aggregate)',
        c.hypertable_schema || '.' || c.hypertable_name) AS hypertable, count(*) AS chunks,
    count(*) FILTER (WHERE c.is_compressed) AS compressed, min(c.range_start)::text AS first, max(c.range_end)::text AS last
    FROM timescaledb_information.chunks c LEFT JOIN timescaledb_information.continuous_aggregates a
        ON a.materialization_hypertable_schema = c.hypertable_schema AND a.materialization_hypertable_name = c.hypertable_name
    GROUP BY 1 ORDER BY 1");
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
    $runs = $done[$j['job_id']] ?? [];
    $j['stats'] = $runs ? end($runs) : null;
    $j['durations'] = array_map(fn($s) => $s['last_run_duration'], $runs);
}
unset($j);
scale_write($out, ['seconds' => round($seconds, 1), 'rounds' => $rounds, 'jobs' => $jobs, 'chunks' => $chunks,
    'compression_settings' => $settings, 'dimensions' => $dims, 'vacuum_analyze_seconds' => round($vacuum, 1),
    'failures' => $failures]);
foreach ($failures as $f) {
    scale_say("FAILED: $f");
}
exit($failures ? 1 : 0);
