<?php
// Times every report query shape (site/shapes.php) through Moodle's own sql_reader API of both stores of the site,
// get_log_manager()->get_readers()['logstore_standard'] and ['logstore_tsdb'], and checks that both answer the same:
//  - warm: in this process, one warm-up run then 5 timed runs, median;
//  - fresh: 5 new PHP-FPM requests of the site's pool per store to the timing page (site/page.php, copied into the
//    web root as tsdbbench/page.php for the run), median of the time the shape took inside each request.
// A shape whose warm-up run took over 10 s is run 3 times instead of 5, warm and fresh (said in the results).
// Shapes the tsdb reader refuses (unsupported_query) are reported as refused, not timed. Then EXPLAIN (ANALYZE,
// BUFFERS), on a new connection, of the statements of the slowest tsdb shapes (PostgreSQL backend).
//   reports.php postgres|influxdb1 OUT.json      (logstore_tsdb must be configured for that backend: configure.php)

require(__DIR__ . '/bootstrap.php');
require_once(__DIR__ . '/shapes.php');

const SCALE_RUNS = 5;
[$mode, $outfile] = [$argv[1] ?? '', $argv[2] ?? ''];
if (!in_array($mode, ['postgres', 'influxdb1'], true) || $outfile === '') {
    fwrite(STDERR, "usage: reports.php postgres|influxdb1 OUT.json\n");
    exit(2);
}
$cfg = scale_plugin_config();
if ($cfg->backend !== $mode) {
    throw new RuntimeException("logstore_tsdb is configured for {$cfg->backend}, not $mode");
}
$site = scale_site();
$params = scale_params();
$fresh = !in_array('fresh', $params['skip'], true);
$readers = get_log_manager()->get_readers();
$stores = ['logstore_standard' => $readers['logstore_standard'], 'logstore_tsdb' => $readers['logstore_tsdb']];
$load = scale_read(dirname($outfile) . '/load.json');
[$start, $end] = $load['window'];

// The same picks for both backends (the influxdb1 pass reuses the postgres pass's).
$previous = scale_read(dirname($outfile) . '/reports.json');
if ($mode === 'influxdb1' && $previous) {
    $picks = array_diff_key($previous['picks'], ['day_old_compressed' => 1, 'day_recent_compressed' => 1]);
} else {
    $t = microtime(true);
    $picks = scale_picks($DB, $start, $end);
    scale_say(sprintf('picks (%.0f s): %s', microtime(true) - $t, json_encode($picks)));
}
if ($mode === 'postgres') {
    // Whether the two days' chunks are compressed (the policies ran before).
    $ts = scale_pg(scale_ts_dbname());
    foreach (['day_old', 'day_recent'] as $day) {
        $picks[$day . '_compressed'] = scale_value($ts, "SELECT bool_and(is_compressed) FROM timescaledb_information.chunks
            WHERE hypertable_schema = $3 AND hypertable_name = $4 AND range_start < to_timestamp($2)
            AND range_end > to_timestamp($1)", [$picks[$day], $picks[$day] + 86400, $cfg->schema, $cfg->table]) === 't';
    }
}
$shapes = scale_shapes($picks);
if (getenv('SCALE_SHAPES')) {
    // Development: only the shapes whose id starts with one of these (comma-separated).
    $prefixes = explode(',', getenv('SCALE_SHAPES'));
    $shapes = array_values(array_filter($shapes, function($shape) use ($prefixes) {
        foreach ($prefixes as $prefix) {
            if (strpos($shape['id'], $prefix) === 0) {
                return true;
            }
        }
        return false;
    }));
}

// The privacy providers join the context ids of the events with {context}: the generated events' contexts (a course
// context per course, a module context per activity, a user context per dashboard owner) are made to exist, as they
// do on the site that logged them. Moodle's own contexts keep their ids (the generated ones start at 1001).
$t = microtime(true);
$made = 0;
foreach ($DB->get_recordset_sql('SELECT DISTINCT contextid, contextlevel, contextinstanceid, courseid
        FROM {logstore_standard_log} WHERE contextid > 1 ORDER BY contextid') as $c) {
    if ($DB->record_exists_select('context', 'id = ? OR (contextlevel = ? AND instanceid = ?)',
            [$c->contextid, $c->contextlevel, $c->contextinstanceid])) {
        continue; // Moodle's own (the admin's user context): the generated id stays unknown to both providers.
    }
    $path = (int) $c->contextlevel === CONTEXT_MODULE ? '/1/' . (1000 + (int) $c->courseid) . '/' . $c->contextid
        : '/1/' . $c->contextid;
    $DB->execute('INSERT INTO {context} (id, contextlevel, instanceid, path, depth, locked) VALUES (?, ?, ?, ?, ?, 0)',
        [$c->contextid, $c->contextlevel, $c->contextinstanceid, $path, substr_count($path, '/')]);
    $made++;
}
scale_say(sprintf('%d contexts of the generated events made (%.0f s)', $made, microtime(true) - $t));

// The timing page, in the web root for this run; its token in the dataroot (not served).
$token = bin2hex(random_bytes(16));
file_put_contents($CFG->dataroot . '/tsdbbench-token', $token);
@mkdir($site['webroot'] . '/tsdbbench');
copy(__DIR__ . '/page.php', $site['webroot'] . '/tsdbbench/page.php');
copy(__DIR__ . '/shapes.php', $site['webroot'] . '/tsdbbench/shapes.php');

/**
 * One fresh request of the site's pool running a shape on a store.
 *
 * @return array the page's answer, plus request_ms (the whole HTTP request seen by the client)
 */
function scale_fresh(string $url, string $token, string $store, array $shape): array {
    $ch = curl_init($url);
    curl_setopt_array($ch, [CURLOPT_POST => true, CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 600,
        CURLOPT_HTTPHEADER => ['Content-Type: application/json', 'Connection: close'],
        CURLOPT_POSTFIELDS => json_encode(['token' => $token, 'store' => $store, 'shape' => $shape])]);
    $t = hrtime(true);
    $body = curl_exec($ch);
    $ms = scale_ms($t);
    $code = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    $json = json_decode((string) $body, true);
    if ($code !== 200 || !is_array($json)) {
        return ['error' => "HTTP $code: " . substr((string) $body, 0, 500), 'request_ms' => $ms];
    }
    return $json + ['request_ms' => $ms];
}

/**
 * Compares the answers of the two stores. Counts, booleans, context lists and aggregates must be equal. Rows must
 * be the same events in the same timecreated order; inside one second the order is each store's own tie-break (its
 * own ids), so rows are compared as a multiset per second, and at the edge of a page the two stores may cut a second
 * at different rows: then every row the tsdb store returned for that second must be a row the standard store has
 * for it ("tie"), checked with one more standard query.
 *
 * @return array [status: match|tie|mismatch, detail]
 */
function scale_compare(array $std, array $tsdb, array $shape, $stdreader): array {
    $notes = [];
    foreach ($shape['calls'] as $i => $call) {
        [$a, $b] = [$std[$i], $tsdb[$i]];
        $rows = is_array($a) && is_array($b) && isset($call['sort']) && empty($shape['aggregate']);
        if (!$rows) {
            if ($a !== $b) {
                return ['mismatch', "call $i ({$call['api']}): standard " . json_encode($a) . ', tsdb ' . json_encode($b)];
            }
            continue;
        }
        if (count($a) !== count($b)) {
            return ['mismatch', "call $i: standard " . count($a) . ' rows, tsdb ' . count($b)];
        }
        $ta = array_column($a, 'timecreated');
        $tb = array_column($b, 'timecreated');
        if ($ta !== $tb) {
            $k = key(array_diff_assoc($ta, $tb));
            return ['mismatch', "call $i: timecreated differs at row $k: standard {$ta[$k]}, tsdb {$tb[$k]}"];
        }
        $groups = [];
        foreach ($a as $j => $row) {
            $groups[$row['timecreated']][0][] = json_encode($row);
            $groups[$row['timecreated']][1][] = json_encode($b[$j]);
        }
        $edges = [reset($ta), end($ta)];
        $reordered = 0;
        foreach ($groups as $tc => [$ga, $gb]) {
            $reordered += $ga !== $gb ? 1 : 0;
            sort($ga);
            sort($gb);
            if ($ga === $gb) {
                continue;
            }
            if (empty($call['num']) || !in_array((string) $tc, array_map('strval', $edges), true)) {
                return ['mismatch', "call $i: the events of second $tc differ: standard " . implode(' ', $ga) . ' | tsdb ' .
                    implode(' ', $gb)];
            }
            // The page cuts this second: the tsdb rows must all be standard rows of that second.
            $where = ($call['where'] === '' ? '' : '(' . $call['where'] . ') AND ') . 'timecreated = :scale_tc';
            $all = array_map(fn($e) => json_encode(scale_event_row($e)),
                $stdreader->get_events_select($where, $call['params'] + ['scale_tc' => $tc], 'timecreated DESC', 0, 0));
            foreach ($gb as $row) {
                $k = array_search($row, $all, true);
                if ($k === false) {
                    return ['mismatch', "call $i: tsdb row of second $tc is not a standard row: $row"];
                }
                unset($all[$k]);
            }
            $notes[] = "call $i: the page boundary cuts second $tc at different rows (same second, other tie-break)";
        }
        if ($reordered) {
            $notes[] = "call $i: $reordered second(s) with the same events in another order (tie-break inside a second)";
        }
    }
    $cut = array_filter($notes, fn($n) => strpos($n, 'boundary') !== false);
    return [$cut ? 'tie' : 'match', implode('; ', $notes)];
}

$results = [];
$failures = [];
$url = $site['wwwroot'] . '/tsdbbench/page.php';
foreach ($shapes as $shape) {
    $r = ['id' => $shape['id'], 'report' => $shape['report'], 'title' => $shape['title'], 'calls' => $shape['calls'],
        'composite' => !empty($shape['composite'])];
    $answers = [];
    $runs = SCALE_RUNS;
    foreach ($stores as $name => $reader) {
        try {
            [$firstms, $first] = scale_run_shape($name, $reader, $shape);
            if ($firstms > 10000) {
                $runs = 3;
            }
            $samples = [];
            $callsamples = [];
            for ($i = 0; $i < $runs; $i++) {
                [$ms, , $callms] = scale_run_shape($name, $reader, $shape);
                $samples[] = $ms;
                $callsamples[] = $callms;
            }
            $answers[$name] = scale_normalise($first);
            $r[$name] = ['warm_ms' => scale_median($samples), 'warm_samples' => $samples, 'warmup_ms' => $firstms,
                'digest' => scale_digest($answers[$name]), 'answer' => scale_summary($answers[$name])];
            $pg = method_exists($reader, 'get_reader') ? $reader->get_reader() : null;
            if ($name === 'logstore_tsdb' && $mode === 'postgres' && !$r['composite'] && isset($pg->lastsql)) {
                // The statement the reader sent last (for EXPLAIN).
                $r[$name]['sql'] = $pg->lastsql;
                $r[$name]['sql_params'] = $pg->lastparams;
            }
        } catch (\logstore_tsdb\local\reader\unsupported_query $e) {
            $r[$name] = ['refused' => $e->getMessage()];
        } catch (\Throwable $e) {
            $message = get_class($e) . ': ' . $e->getMessage() . (isset($e->debuginfo) ? " ($e->debuginfo)" : '');
            if ($mode === 'influxdb1' && $name === 'logstore_tsdb' && stripos($message, 'timed out') !== false) {
                // No answer within the InfluxDB client's timeout (max(30 s, timeout_ms)): measured, not a wrong answer.
                $r[$name] = ['timeout' => $message];
            } else {
                $r[$name] = ['error' => $message];
                $failures[] = "{$shape['id']} on $name: $message";
            }
        }
    }
    if (isset($answers['logstore_standard'], $answers['logstore_tsdb'])) {
        [$status, $detail] = scale_compare($answers['logstore_standard'], $answers['logstore_tsdb'], $shape,
            $stores['logstore_standard']);
        $r['same_answer'] = $status;
        $r['compare_notes'] = $detail;
        if ($status === 'mismatch') {
            $failures[] = "{$shape['id']}: the stores answer differently: $detail";
        }
    }
    if ($fresh) {
        $fs = [];
        for ($i = 0; $i < $runs; $i++) {
            foreach ($stores as $name => $reader) {
                if (!isset($r[$name]['warm_ms'])) {
                    continue;
                }
                $f = scale_fresh($url, $token, $name, $shape);
                if ($mode === 'influxdb1' && $name === 'logstore_tsdb' && stripos($f['error'] ?? '', 'timed out') !== false) {
                    // As in the warm runs: no answer within the client's timeout, measured, not a wrong answer.
                    $fs[$name]['timeouts'] = ($fs[$name]['timeouts'] ?? 0) + 1;
                    continue;
                }
                if (isset($f['error']) || ($f['digest'] ?? '') !== $r[$name]['digest']) {
                    $failures[] = "{$shape['id']} on $name in a fresh request: " . ($f['error'] ??
                        'answered differently from the warm run') . (isset($f['noise']) ? ' (output: ' . $f['noise'] . ')' : '');
                    continue;
                }
                $fs[$name]['ms'][] = $f['ms'];
                $fs[$name]['request_ms'][] = $f['request_ms'];
            }
        }
        foreach ($fs as $name => $f) {
            $r[$name] += ['fresh_ms' => scale_median($f['ms'] ?? []), 'fresh_samples' => $f['ms'] ?? [],
                'fresh_request_ms' => scale_median($f['request_ms'] ?? []), 'fresh_timeouts' => $f['timeouts'] ?? 0];
        }
    }
    $r['runs'] = $runs;
    $fmt = fn($s) => isset($r[$s]['warm_ms']) ? sprintf('%.1f/%s', $r[$s]['warm_ms'],
        isset($r[$s]['fresh_ms']) ? sprintf('%.1f', $r[$s]['fresh_ms']) : '-') : (isset($r[$s]['refused']) ? 'refused' : 'error');
    scale_say(sprintf('%-32s standard %s  tsdb %s  %s', $shape['id'], $fmt('logstore_standard'), $fmt('logstore_tsdb'),
        $r['same_answer'] ?? ''));
    $results[] = $r;
}

/**
 * A short description of an answer for the JSON (counts, booleans, number of rows).
 *
 * @param array $answers normalised
 * @return array
 */
function scale_summary(array $answers): array {
    return array_map(fn($a) => is_array($a) ? ['rows' => count($a)] : $a, $answers);
}

// The plans of the slowest tsdb statements (PostgreSQL), on a new connection as a fresh request has.
$plans = [];
if ($mode === 'postgres') {
    $slow = array_filter($results, fn($r) => isset($r['logstore_tsdb']['sql']));
    usort($slow, fn($x, $y) => ($y['logstore_tsdb']['fresh_ms'] ?? $y['logstore_tsdb']['warm_ms'])
        <=> ($x['logstore_tsdb']['fresh_ms'] ?? $x['logstore_tsdb']['warm_ms']));
    foreach (array_slice($slow, 0, 5) as $r) {
        $db = \logstore_tsdb\local\pgdb::from_config($cfg, 'scale_explain');
        $plan = $db->query_native('EXPLAIN (ANALYZE, BUFFERS) ' . $r['logstore_tsdb']['sql'], $r['logstore_tsdb']['sql_params']);
        $db->close();
        $plans[] = ['id' => $r['id'], 'title' => $r['title'], 'sql' => $r['logstore_tsdb']['sql'],
            'params' => $r['logstore_tsdb']['sql_params'], 'plan' => implode("\n", array_map(fn($row) => reset($row),
                array_map('get_object_vars', $plan)))];
    }
}
@unlink($CFG->dataroot . '/tsdbbench-token');
scale_write($outfile, ['backend' => $mode, 'picks' => $picks, 'runs' => SCALE_RUNS, 'fresh' => $fresh,
    'shapes' => $results, 'plans' => $plans, 'failures' => $failures]);
foreach ($failures as $f) {
    scale_say("FAILED: $f");
}
exit($failures ? 1 : 0);
