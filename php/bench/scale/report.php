<?php
// Writes the results of a run of the scale benchmark: the raw results as one JSON file (docs/scale/NAME.json, for
// comparing runs) and the report (docs/SCALE.md). With a previous run's JSON, the report also shows how each figure
// grows from the shorter run to the longer one (e.g. 365 to 1095 days) for both stores.
//   php report.php RESULTS_DIR OUT.json OUT.md [PREVIOUS.json]

require_once(__DIR__ . '/lib/common.php');

[, $dir, $jsonfile, $mdfile] = $argv;
$previous = isset($argv[4]) ? json_decode((string) file_get_contents($argv[4]), true) : null;
$phases = ['machine', 'load', 'policies', 'reports', 'storage', 'analytics', 'influx', 'import'];
$run = ['params' => scale_params(), 'finished' => gmdate('Y-m-d H:i') . ' UTC',
    'loadavg_at_end' => implode(' ', array_slice(explode(' ', (string) @file_get_contents('/proc/loadavg')), 0, 3))];
foreach ($phases as $p) {
    $run[$p] = scale_read("$dir/$p.json");
}
// The import's output lines stay in the run directory; the JSON keeps the progress lines and the last lines.
foreach (['uninterrupted' => ['run'], 'killed_and_resumed' => ['killed_run', 'resumed_run']] as $k => $runs) {
    foreach ($runs as $r) {
        if (isset($run['import'][$k][$r]['lines'])) {
            $run['import'][$k][$r]['lines'] = array_slice($run['import'][$k][$r]['lines'], -12);
        }
    }
}
$failures = [];
foreach ($phases as $p) {
    if ($run[$p] === null && !($p === 'influx' && in_array('influx', $run['params']['skip'], true))
            && !in_array($p, $run['params']['skip'], true)) {
        $failures[] = "the $p phase wrote no result (it crashed: see the run's output)";
    }
    foreach ($run[$p]['failures'] ?? [] as $f) {
        $failures[] = $f;
    }
}
$run['failures'] = $failures;

/** A plan's text cut to its first 45 and last 10 lines when longer than 60 (plans over hundreds of chunks). */
function scale_cut_plan(string $plan): string {
    $lines = explode("\n", $plan);
    return count($lines) > 60 ? implode("\n", array_merge(array_slice($lines, 0, 45),
        ['   … (' . (count($lines) - 55) . ' lines omitted)'], array_slice($lines, -10))) : $plan;
}

/** The results without what makes the JSON large: every timing's raw samples and the omitted middle of long plans. */
function scale_slim(array $data): array {
    foreach ($data as $k => $v) {
        if (is_string($k) && preg_match('/(^|_)samples$/', $k)) {
            unset($data[$k]);
        } else if ($k === 'plan' && is_string($v)) {
            $data[$k] = scale_cut_plan($v);
        } else if (is_array($v)) {
            $data[$k] = scale_slim($v);
        }
    }
    return $data;
}
// The committed JSON stays small (medians, rows, plans as the report shows them): see scale_slim().
scale_write($jsonfile, scale_slim($run));

// ---- formatting -----------------------------------------------------------------------------------------------------
$ms = fn($v) => $v === null ? '–' : ($v >= 100 ? number_format($v, 0) : ($v >= 1 ? number_format($v, 1) : number_format($v, 2)));
$ratio = fn($a, $b) => ($a === null || $b === null || $b <= 0) ? '–' : ($a / $b >= 10 ? number_format($a / $b, 0)
    : number_format($a / $b, 2)) . '×';
$int = fn($v) => $v === null ? '–' : number_format((float) $v, 0);
$days = fn($t) => gmdate('Y-m-d', (int) $t);
$md = [];
$p = $run['params'];
$m = $run['machine'] ?? [];
$load = $run['load'] ?? [];
$n = $load['counts']['generated'] ?? null;
$rel = str_replace(dirname(__DIR__, 3) . '/', '', $jsonfile);

$md[] = '# Scale: a year of a large site, side by side';
$md[] = '';
$md[] = "Written by `./build.sh bench-scale {$p['events']} {$p['days']}` (php/bench/scale/run.sh) on {$run['finished']}; " .
    "the raw results are in [$rel](" . preg_replace('#^docs/#', '', $rel) . '). Everything below was measured in this one run ' .
    '(issue 13): the same generated events in the site\'s real `logstore_standard_log`, in the sink\'s TimescaleDB ' .
    'hypertable and in InfluxDB 1.6.7, read through Moodle 5.1.3\'s own `sql_reader` API of both stores. The run fails ' .
    'only on a wrong answer, a lost or duplicated event or a failed TimescaleDB job; it never judges a time.';
$md[] = '';
if ($failures) {
    $md[] = '**THIS RUN FAILED** (' . count($failures) . ' problem(s), listed under [Failures](#failures)): the figures of the ' .
        'affected parts are not to be trusted as they stand.';
    $md[] = '';
}

// ---- the targets of issue 13 ----------------------------------------------------------------------------------------
$md[] = '## Issue 13\'s targets, as measured in this run';
$md[] = '';
$md[] = '| target (at 10 M events / 365 days) | this run | met |';
$md[] = '|---|---|---|';
$yes = fn(?bool $b) => $b === null ? '–' : ($b ? 'yes' : '**no**');
if ($rep = $run['reports']) {
    $timed = array_filter($rep['shapes'], fn($s) => isset($s['logstore_tsdb']['fresh_ms'], $s['logstore_standard']['fresh_ms']));
    $slower = array_filter($timed, fn($s) => $s['logstore_tsdb']['fresh_ms'] > $s['logstore_standard']['fresh_ms']);
    $worst = null;
    foreach ($timed as $s) {
        $r = $s['logstore_tsdb']['fresh_ms'] / max(1e-9, $s['logstore_standard']['fresh_ms']);
        if ($worst === null || $r > $worst[0]) {
            $worst = [$r, $s['id']];
        }
    }
    $refused = count(array_filter($rep['shapes'], fn($s) => isset($s['logstore_tsdb']['refused'])));
    $md[] = sprintf('| every report query in a fresh request no slower than the standard store\'s | %d of %d shapes slower%s%s | %s |',
        count($slower), count($timed), $worst ? sprintf('; worst %s: %.1f× the standard\'s time', $worst[1], $worst[0]) : '',
        $refused ? "; $refused refused" : '', $yes($timed ? !$slower && !$refused : null));
}
// Growth: the shapes both runs timed fresh, and those whose tsdb time grew by a larger factor than the standard's.
$growth = null;
if ($previous) {
    [$older, $newer] = ($previous['params']['days'] ?? 0) <= $p['days'] ? [$previous, $run] : [$run, $previous];
    $fresh = fn($r) => array_filter(array_column($r['reports']['shapes'] ?? [], null, 'id'),
        fn($s) => isset($s['logstore_tsdb']['fresh_ms'], $s['logstore_standard']['fresh_ms']));
    $growth = ['shapes' => 0, 'worse' => [], 'worse_and_slower' => 0];
    $before = $fresh($older);
    foreach ($fresh($newer) as $id => $s) {
        if (!isset($before[$id])) {
            continue;
        }
        $growth['shapes']++;
        $g = fn($store) => $s[$store]['fresh_ms'] / max(1e-9, $before[$id][$store]['fresh_ms']);
        if ($g('logstore_tsdb') > $g('logstore_standard')) {
            $growth['worse'][] = $id;
            $growth['worse_and_slower'] += $s['logstore_tsdb']['fresh_ms'] > $s['logstore_standard']['fresh_ms'] ? 1 : 0;
        }
    }
}
$md[] = '| growth from 1 to 3 years no worse than the standard store\'s | ' . ($growth ? sprintf('%d of %d shapes grew ' .
    'by a larger factor than the standard store\'s (%d of them also slower than it in the longer run), see [Growth]' .
    '(#growth-from-%d-to-%d-days) | %s |', count($growth['worse']), $growth['shapes'], $growth['worse_and_slower'],
    $older['params']['days'], $newer['params']['days'], $yes($growth['shapes'] ? !$growth['worse'] : null))
    : 'needs two runs (--merge) | – |');
if ($st = $run['storage']) {
    $r = $st['tsdb']['total'] / max(1, $st['standard']['total']);
    $md[] = sprintf('| storage all in at most 1/10 of the standard table with its indexes | %.1f vs %.1f bytes per event: %.3f (1/%.1f) | %s |',
        $st['tsdb']['per_event'], $st['standard']['per_event'], $r, 1 / max(1e-9, $r), $yes($r <= 0.1));
}
if ($an = $run['analytics']) {
    $ok = array_filter($an['queries'], fn($q) => isset($q['speedup']));
    $fast = array_filter($ok, fn($q) => $q['speedup'] >= 50 && in_array($q['same_answer'], ['match', 'tie'], true));
    $wrong = array_filter($an['queries'], fn($q) => ($q['same_answer'] ?? '') === 'mismatch' || isset($q['error']));
    $min = $ok ? min(array_column($ok, 'speedup')) : null;
    $md[] = sprintf('| the analytics (docs/analytics.md, every Grafana panel) at least 50× faster than from logstore_standard_log, same answers | %d of %d queries 50× or more with the same answer; slowest %s×; %d wrong or failed | %s |',
        count($fast), count($an['queries']), $min === null ? '–' : number_format($min, $min < 1 ? 2 : 1), count($wrong),
        $yes($an['queries'] ? count($fast) === count($an['queries']) : null));
}
if ($im = $run['import']) {
    $u = $im['uninterrupted'];
    $k = $im['killed_and_resumed'] ?? null;
    if (($u['run']['exit'] ?? 0) !== 0) {
        // The importer did not run to its end: nothing about its rate or its exactly-once can be said.
        $md[] = sprintf('| import at 100 k rows/s or more, exactly once across a crash, ETA right after the first minute | ' .
            'not measured: the importer failed (exit %d), see [Import](#import-of-logstore_standard_log) | – |', $u['run']['exit']);
    } else {
        $md[] = sprintf('| import at 100 k rows/s or more, exactly once across a crash, ETA right after the first minute | %s rows/s; exactly once across kill -9: %s; ETA %s: %s× the real remaining time | %s |',
            number_format($u['rows_per_s'] ?? 0), $k ? ($k['exactly_once'] ? 'yes' : 'NO') : 'not run', $u['eta']['rule'] ?? '–',
            $u['eta']['eta_over_real'] ?? '–', $yes(($u['rows_per_s'] ?? 0) >= 100000 && ($k['exactly_once'] ?? false)) .
            ' (ETA: judge the ratio)');
    }
}
if ($inf = $run['influx']) {
    $c = array_column($inf['shapes'], null, 'id')['log.course.page'] ?? null;
    $v = $c['logstore_tsdb']['fresh_ms'] ?? null;
    $md[] = sprintf('| InfluxDB: the Logs report\'s first page of a course under a second | %s | %s |',
        $v === null ? ($c['logstore_tsdb']['refused'] ?? 'not measured') : number_format($v, 0) . ' ms (fresh, busiest course)',
        $yes($v === null ? null : $v < 1000));
}
$md[] = '';

// ---- machine --------------------------------------------------------------------------------------------------------
$md[] = '## Machine and parameters';
$md[] = '';
$md[] = '| | |';
$md[] = '|---|---|';
$rows = [
    'machine' => sprintf('%s cores (%s), %s GiB RAM, Debian %s', $m['nproc'] ?? '?', $m['cpu'] ?? '?', $m['ram_gib'] ?? '?', $m['os'] ?? '?'),
    'load average (1, 5, 15 min) at start / end' => implode(' ', array_slice(explode(' ', $m['loadavg_at_start'] ?? '?'), 0, 3)) . ' / ' . $run['loadavg_at_end'] .
        ' (the machine is shared: other work inflates both stores\' times alike)',
    'versions' => sprintf('PHP %s, PostgreSQL %s, TimescaleDB %s, InfluxDB %s, Moodle %s, logstore_tsdb %s, extension %s',
        $m['php'] ?? '?', $m['postgresql'] ?? '?', $m['timescaledb'] ?? '?', $m['influxdb'] ?? '?', $m['moodle'] ?? '?',
        $m['plugin'] ?? '?', $m['extension'] ?? '?'),
    'checkout' => ($m['commit'] ?? '?') . '; extension sha256 ' . substr($m['extension_sha256'] ?? '?', 0, 16) . '…',
    'PostgreSQL (one server holds both stores)' => implode(', ', array_map(fn($k, $v) => "$k = $v",
        array_keys($m['pg_settings'] ?? []), $m['pg_settings'] ?? [])),
    'events' => sprintf('%s generated (asked %s) over %d days, %s to %s UTC (the last day is the day before the run)',
        $int($n), $int($p['events']), $p['days'], isset($load['window']) ? $days($load['window'][0]) : '?',
        isset($load['window']) ? $days($load['window'][1] - 86400) : '?'),
    'site' => "php/demo/moodle_day.php tsdb_demo_site_events(): {$p['users']} users, {$p['courses']} courses (30 activities each), seed 42",
];
if ($p['skip']) {
    $rows['left out (--skip)'] = implode(', ', $p['skip']);
}
foreach ($rows as $k => $v) {
    $md[] = "| $k | $v |";
}
$md[] = '';

// ---- load -----------------------------------------------------------------------------------------------------------
$md[] = '## Load, policies';
$md[] = '';
if ($load) {
    $lp = $load['loaders']['postgres'] ?? [];
    $li = $load['loaders']['influxdb'] ?? [];
    $md[] = sprintf('Read back after the load: %s events in `logstore_standard_log`, %s in the sink\'s table, %s in InfluxDB ' .
        '(generated: %s); the checksum of every event column is %s in the two PostgreSQL stores. Loading took %s s ' .
        '(COPY into the standard table + the extension writing to TimescaleDB, one process) and %s s (the extension ' .
        'writing to InfluxDB, a second process generating the same stream); not a measured figure.',
        $int($load['counts']['logstore_standard_log']), $int($load['counts']['tsdb']), $int($load['counts']['influxdb']),
        $int($n), !empty($load['checksum_equal']) ? 'equal' : 'NOT equal', $lp['seconds'] ?? '?', $li['seconds'] ?? '?');
    $md[] = '';
}
if ($pol = $run['policies']) {
    $md[] = sprintf('TimescaleDB\'s scheduler ran every policy job after the load (`alter_job(id, next_start => now())`, then ' .
        '`job_stats` / `job_errors` polled), in rounds as its schedule repeats them, until a round changed no chunk and ' .
        'every chunk older than its compression age was compressed: %d round(s), %s s. Each job\'s run time per round: %s. ' .
        'Then `VACUUM (ANALYZE)` of both stores (%s s), as autovacuum would have done on a site that logged these events ' .
        'over time.', count($pol['rounds'] ?? []), $pol['seconds'], implode('; ', array_map(fn($j) =>
            "{$j['proc_name']}" . ($j['hypertable_name'] ? " on {$j['hypertable_name']}" : '') . ': ' .
            ($j['durations'] ?? null ? implode(', ', array_map(fn($d) => preg_replace('/^00:(00:)?/', '', $d), $j['durations']))
            : 'did not run'), $pol['jobs'])), $pol['vacuum_analyze_seconds']);
    $md[] = '';
    $md[] = '| hypertable | chunks | compressed | from | to |';
    $md[] = '|---|---:|---:|---|---|';
    foreach ($pol['chunks'] as $c) {
        $md[] = "| {$c['hypertable']} | {$c['chunks']} | {$c['compressed']} | {$c['first']} | {$c['last']} |";
    }
    $seg = array_filter($pol['compression_settings'], fn($s) => $s['segmentby_column_index'] !== null);
    $ord = array_filter($pol['compression_settings'], fn($s) => $s['orderby_column_index'] !== null);
    usort($ord, fn($x, $y) => [$x['hypertable_name'], (int) $x['orderby_column_index']] <=> [$y['hypertable_name'], (int) $y['orderby_column_index']]);
    $md[] = '';
    $md[] = 'Compression: segment by ' . (implode(', ', array_unique(array_map(fn($s) => "{$s['hypertable_name']}.{$s['attname']}", $seg))) ?: 'nothing') .
        '; order by ' . (implode(', ', array_map(fn($s) => "{$s['hypertable_name']}.{$s['attname']} " . ($s['orderby_asc'] === 't' ? 'ASC' : 'DESC'), $ord)) ?: 'nothing') .
        '. Chunk intervals: ' . implode(', ', array_map(fn($d) => "{$d['hypertable_name']} {$d['time_interval']}", $pol['dimensions'])) . '.';
    $md[] = '';
}

// ---- report queries -------------------------------------------------------------------------------------------------
/** The table of report shapes of one backend's results. */
$shapetable = function(array $res, string $label) use ($ms, $ratio): array {
    $out = [];
    $picks = $res['picks'];
    $out[] = "| report | query (sql_reader calls) | standard warm | $label warm | ÷ | standard fresh | $label fresh | ÷ | answer | same |";
    $out[] = '|---|---|---:|---:|---:|---:|---:|---:|---|---|';
    foreach ($res['shapes'] as $s) {
        $a = $s['logstore_standard'] ?? [];
        $b = $s['logstore_tsdb'] ?? [];
        $title = $s['title'];
        if (preg_match('/day_(old|recent)/', $s['id'], $mm) && isset($picks["day_{$mm[1]}_compressed"])) {
            $title .= ', ' . gmdate('D Y-m-d', $picks["day_{$mm[1]}"]) . ($picks["day_{$mm[1]}_compressed"] ? ', compressed' : ', not compressed');
        }
        $calls = implode(' + ', array_map(fn($c) => $c['api'] . (isset($c['num']) && $c['num'] ? "({$c['from']}, {$c['num']})" : ''), $s['calls']));
        $answer = implode(', ', array_map(fn($x) => is_array($x) ? ($x['rows'] . ' rows') : (is_bool($x) ? ($x ? 'true' : 'false') : (string) $x),
            $a['answer'] ?? $b['answer'] ?? []));
        if (isset($b['refused'])) {
            $tsw = $tsf = 'refused';
            $r1 = $r2 = '';
            $same = 'refused: ' . $b['refused'];
        } else if (isset($b['timeout'])) {
            $tsw = $tsf = 'no answer';
            $r1 = $r2 = '';
            $same = 'timed out (the InfluxDB client waits max(30 s, timeout_ms))';
        } else if (isset($b['error'])) {
            $tsw = $tsf = 'ERROR';
            $r1 = $r2 = '';
            $same = $b['error'];
        } else {
            [$tsw, $tsf] = [$ms($b['warm_ms'] ?? null), $ms($b['fresh_ms'] ?? null)];
            if (!empty($b['fresh_timeouts'])) {
                $tsf .= " ({$b['fresh_timeouts']} timed out)";
            }
            [$r1, $r2] = [$ratio($b['warm_ms'] ?? null, $a['warm_ms'] ?? null), $ratio($b['fresh_ms'] ?? null, $a['fresh_ms'] ?? null)];
            $same = ($s['same_answer'] ?? '?') . (($s['same_answer'] ?? '') === 'tie' ? ' (page edge inside one second)' : '');
        }
        $out[] = sprintf('| %s | %s: `%s` | %s | %s | %s | %s | %s | %s | %s | %s |', $s['report'], $title . ($s['composite'] ? '' : ''),
            str_replace('|', '\|', $calls), $ms($a['warm_ms'] ?? null), $tsw, $r1, $ms($a['fresh_ms'] ?? null), $tsf, $r2, $answer, $same);
    }
    return $out;
};
if ($rep = $run['reports']) {
    $md[] = '## Moodle\'s report queries through sql_reader (PostgreSQL / TimescaleDB)';
    $md[] = '';
    $md[] = 'Milliseconds, median of ' . $rep['runs'] . ' (of 3 for a shape whose warm-up took over 10 s). **warm**: in one CLI process of the site, after one warm-up run. ' .
        '**fresh**: a new PHP-FPM request of the site\'s pool each time (nginx → PHP-FPM, `tsdbbench/page.php` copied into the ' .
        'web root for the run), the time from the shape\'s first call to its last inside that request, as a report page ' .
        'spends it (Moodle\'s setup, already connected to its own database, is not counted; the tsdb reader connects inside ' .
        'the timed part). **÷** = tsdb ÷ standard (above 1: the tsdb store is slower). Every shape checks that both stores ' .
        'return the same events (every column but `id`) in the same `timecreated` order, or the same count / boolean / list; ' .
        '"tie" means a page edge cuts a second that holds more events than the page takes, and each store cut it at other ' .
        'events (each store breaks ties inside a second by its own ids): the tsdb rows were checked to be events of that second.';
    $md[] = '';
    $k = $rep['picks'];
    $md[] = sprintf('Picked from the data: busiest course %d (%s events), median course %d (%s events), user %d (median ' .
        'user of the busiest course, %s events there), user %d (90th percentile of the site, %s events), activity cmid %d, ' .
        'a day in the middle of the window %s, the day before yesterday %s, live logs since %s UTC (an hour before the ' .
        'newest event), the last 30 days from %s.',
        $k['course_big'], $int($k['course_big_events']), $k['course_median'], $int($k['course_median_events']),
        $k['user_in_course'], $int($k['user_in_course_events']), $k['user_site'], $int($k['user_site_events']), $k['cm'],
        $days($k['day_old']), $days($k['day_recent']), gmdate('Y-m-d H:i', $k['live_since']), $days($k['window_from']));
    $md[] = '';
    $md = array_merge($md, $shapetable($rep, 'tsdb'));
    $md[] = '';
    $md[] = 'The fragments are those of Moodle 5.1.3: report/log `table_log::query_db()` (a teacher has no ' .
        '`moodle/site:viewanonymousevents`: `anonymous = 0`; the admin has it: no condition; sort `timecreated DESC`, the ' .
        'stores add `id DESC`), report/loglive `table_log::query_db()` (`timecreated > :date`, the last hour). ' .
        'report_outline and report_participation query the internal table with SQL (GROUP BY) and do not use sql_reader: ' .
        'the rows here are what they would issue through it — the same WHERE fragment (outline: `courseid`, `anonymous = 0`, ' .
        '`crud = \'r\'`, module context, a date range; participation: one activity, `timecreated > :timefrom`, all four ' .
        'cruds, participating level, `anonymous = 0`, origin web or ws) read with get_events_select_iterator() and counted ' .
        'per activity / per user in PHP, as the report would. Privacy: counts and exists of one user\'s events, and the ' .
        'contexts of a user\'s events from each store\'s privacy provider (add_contexts_for_userid(), as ' .
        'core_privacy\\manager calls it; the contexts of the generated events were created in the site for it).';
    $md[] = '';
    if ($rep['plans']) {
        $md[] = '### Plans of the slowest tsdb statements';
        $md[] = '';
        $md[] = 'EXPLAIN (ANALYZE, BUFFERS) of the statement the tsdb reader sent for the ' . count($rep['plans']) .
            ' slowest shapes (fresh), run on a new connection as a fresh request has it (planning time included).';
        $md[] = '';
        foreach ($rep['plans'] as $pl) {
            $md[] = "**{$pl['id']}** ({$pl['title']}); parameters " . json_encode($pl['params']) . ':';
            $md[] = '';
            $md[] = '```';
            $md[] = $pl['sql'];
            $md[] = '';
            $md[] = scale_cut_plan($pl['plan']);
            $md[] = '```';
            $md[] = '';
        }
    }
}

// ---- storage --------------------------------------------------------------------------------------------------------
if ($st = $run['storage']) {
    $std = $st['standard'];
    $md[] = '## Storage per event, all in';
    $md[] = '';
    $md[] = 'After the policies ran; bytes on disk. The sink\'s objects are enumerated from the catalog (every hypertable and ' .
        'continuous aggregate with all their chunks, compressed or not, indexes and TOAST; every other table outside ' .
        'TimescaleDB\'s own schemas). InfluxDB: the database\'s directory once its WAL was empty and its TSM files had ' .
        'stopped changing (full compaction), allocated blocks.';
    $md[] = '';
    $md[] = '| store / object | bytes | bytes per event | ÷ standard |';
    $md[] = '|---|---:|---:|---:|';
    $row = fn($what, $b) => sprintf('| %s | %s | %s | %s |', $what, $int($b), $st['events'] ? number_format($b / $st['events'], 1) : '–',
        $std['total'] ? number_format($b / $std['total'], 3) : '–');
    $md[] = $row("**logstore_standard_log** with its {$std['index_count']} indexes (pg_total_relation_size)", $std['total']);
    $md[] = $row('&nbsp;&nbsp;of which heap', $std['heap']);
    $md[] = $row('&nbsp;&nbsp;of which indexes', $std['indexes']);
    $md[] = $row('**tsdb (TimescaleDB), all in**', $st['tsdb']['total']);
    foreach ($st['tsdb']['objects'] as $o) {
        $extra = isset($o['chunks']) ? " ({$o['chunks']} chunks, {$o['compressed_chunks']} compressed; heap {$int($o['table_bytes'])}, " .
            "indexes {$int($o['index_bytes'])}, TOAST {$int($o['toast_bytes'])})" : '';
        $md[] = $row("&nbsp;&nbsp;{$o['object']}$extra", $o['bytes']);
    }
    $md[] = $row('&nbsp;&nbsp;(the whole TimescaleDB database, pg_database_size, TimescaleDB\'s catalog included)', $st['tsdb']['database_size']);
    $i = $st['influxdb'];
    $md[] = $row("**InfluxDB {$m['influxdb']}**, database directory ({$i['shards']} shards, {$i['series']} series; TSM " .
        "{$int($i['tsm'])}, tsi1 index {$int($i['tsi_index'])}, series file {$int($i['series_file'])})", $i['bytes']);
    $md[] = '';
    $md[] = 'Views (no storage): ' . (implode(', ', $st['tsdb']['views']) ?: 'none') . '.';
    $md[] = '';
}

// ---- analytics ------------------------------------------------------------------------------------------------------
if ($an = $run['analytics']) {
    $md[] = '## Analytics';
    $md[] = '';
    $md[] = sprintf('Every PostgreSQL query of docs/analytics.md and every panel and variable query of the PostgreSQL Grafana ' .
        'dashboards (macros expanded as Grafana does, course variable = %s, user = %s), over the whole window (%s to %s), on ' .
        'the sink\'s schema; against the same question asked of `logstore_standard_log` in plain SQL (php/bench/scale/' .
        'analytics.php writes it from the catalog, see "standard SQL"). Milliseconds, median of 5 after a warm-up (of 3 ' .
        'when the warm-up took over 10 s), both sessions with `jit = off` as docs/analytics.md asks of the dashboards\' database; **×** = standard ÷ tsdb (how many times faster the tsdb answer is). **standard SQL**: "docs/analytics.md\'s" (the plain-SQL twin the page gives under the query), "the same" ' .
        '(the query reads only the events: the same SQL on logstore_standard_log), "over the events" (it only sums the ' .
        'counts of one continuous aggregate: the same query over the events, `sum(count)` as `count(*)`, as one would ' .
        'write it for the standard table), "the aggregate\'s definition" (the aggregate computed from its own SELECT, ' .
        'then the query on it).',
        json_encode($an['variables']['course']), $an['variables']['user'], $days($an['range'][0]), $days($an['range'][1] - 86400));
    $md[] = '';
    $md[] = '| source | query | standard SQL | rows | standard ms | tsdb ms | × | same answer |';
    $md[] = '|---|---|---|---:|---:|---:|---:|---|';
    $twin = ['events' => 'the same', 'flat' => 'over the events', 'definition' => 'the aggregate\'s definition',
        'documented' => 'docs/analytics.md\'s'];
    foreach ($an['queries'] as $q) {
        $same = $q['error'] ?? ($q['same_answer'] . ($q['same_answer'] === 'tie' ? ' (LIMIT cuts through equal values)' : ''));
        if (($q['same_answer'] ?? '') === 'mismatch') {
            $same = sprintf('**NO**: standard %d rows, tsdb %d rows', $q['difference']['standard_rows'], $q['difference']['tsdb_rows']);
        }
        $md[] = sprintf('| %s | %s | %s | %s | %s | %s | %s | %s |', $q['source'], str_replace('|', '\|', $q['name']),
            $twin[$q['standard_twin'] ?? ''] ?? '–', $q['rows'] ?? '–',
            $ms($q['standard_ms'] ?? null), $ms($q['tsdb_ms'] ?? null),
            isset($q['speedup']) ? number_format($q['speedup'], $q['speedup'] < 1 ? 2 : 1) : '–',
            str_replace('|', '\|', $same));
    }
    $md[] = '';
    foreach ($an['excluded'] as $e) {
        $md[] = "Not timed: $e.";
    }
    $md[] = '';
}

// ---- import ---------------------------------------------------------------------------------------------------------
if ($im = $run['import']) {
    $u = $im['uninterrupted'];
    $k = $im['killed_and_resumed'] ?? null;
    $md[] = '## Import of logstore_standard_log';
    $md[] = '';
    $md[] = sprintf('`php public/admin/tool/log/store/tsdb/cli/import_standard_log.php --all`, from the site\'s code root, into ' .
        'a fresh table (`%s`) of the same TimescaleDB database, its output read line by line as it came.', $im['table']);
    $md[] = '';
    $md[] = '| | |';
    $md[] = '|---|---|';
    $said = function(array $run): string {
        $last = array_values(array_filter($run['lines'] ?? [], fn($l) => trim($l[1]) !== ''));
        return $run['exit'] === 0 ? '' : sprintf(' **The importer failed** (exit %d): "%s".', $run['exit'],
            str_replace('|', '\\|', trim(implode(' ', array_map(fn($l) => $l[1], array_slice($last, -2))))));
    };
    $md[] = sprintf('| uninterrupted run | %s events in %s s: **%s rows/s**; between progress lines min %s, median %s, max %s rows/s; exactly once: %s.%s |',
        $int($u['events']), $u['run']['seconds'], $int($u['rows_per_s']), $int($u['rate_min']), $int($u['rate_median']),
        $int($u['rate_max']), $u['exactly_once'] ? 'yes (count and checksum equal to the source)' : '**NO**', $said($u['run']));
    if ($u['eta']) {
        $md[] = sprintf('| ETA of its progress bar %s (at %s s, %s rows done) | %s s shown, %s s really left: %s× the real time |',
            $u['eta']['rule'], $u['eta']['at_s'], $int($u['eta']['done']), $u['eta']['eta_s'], $u['eta']['real_remaining_s'],
            $u['eta']['eta_over_real']);
    }
    if ($k) {
        $md[] = sprintf('| killed (SIGKILL) at %s s with %s events in the table, then run again | the second run took %s s; ' .
            'in the end %s events, exactly once: %s.%s |', $k['killed_run']['killed']['t'] ?? '?', $int($k['rows_in_table_at_kill']),
            $k['resumed_run']['seconds'], $int($k['events']), $k['exactly_once'] ? 'yes (count and checksum equal to the source)' : '**NO**',
            $said($k['resumed_run']));
        $recovered = array_values(array_filter($k['resumed_run']['lines'] ?? [], fn($l) => strpos($l[1], 'Interrupted chunk') !== false));
        if ($recovered) {
            $md[] = '| the resumed run said | ' . str_replace('|', '\|', $recovered[0][1]) . ' |';
        }
    }
    $md[] = '';
    if ($u['rates']) {
        $md[] = 'Rows/s over time (uninterrupted run, between its progress lines): ' . implode(', ', array_map(fn($r) =>
            sprintf('%.0f s: %s', $r['t'], number_format($r['rows_per_s'])), $u['rates'])) . '.';
        $md[] = '';
    }
}

// ---- InfluxDB -------------------------------------------------------------------------------------------------------
if ($inf = $run['influx']) {
    $md[] = '## The same report shapes on InfluxDB 1.6.7';
    $md[] = '';
    $md[] = 'The plugin switched to backend `influxdb1` (the same events, written by the extension with the plugin\'s default ' .
        'tags: ' . '`eventname,component,action,target,crud,edulevel,contextlevel,origin,courseid,contextid`; pseudonymisation ' .
        'off: the generated users are not users of the site), the same shapes through its reader, compared with ' .
        '`logstore_standard_log` as above. "refused" = the reader threw unsupported_query (it never approximates).';
    $md[] = '';
    $md = array_merge($md, $shapetable($inf, 'InfluxDB'));
    $md[] = '';
}

// ---- growth ---------------------------------------------------------------------------------------------------------
if ($previous) {
    [$a, $b] = [$older, $newer];
    $la = "{$a['params']['days']} d";
    $lb = "{$b['params']['days']} d";
    $md[] = "## Growth from {$a['params']['days']} to {$b['params']['days']} days";
    $md[] = '';
    $md[] = sprintf('This run and %s (%s events over %d days, %s). Fresh-request medians (ms) of each store, and the factor ' .
        'by which each grew.', basename($argv[4]), number_format($a === $run ? $b['load']['counts']['generated'] ?? 0
        : $a['load']['counts']['generated'] ?? 0), $a === $run ? $b['params']['days'] : $a['params']['days'],
        $a === $run ? $b['finished'] : $a['finished']);
    $md[] = '';
    $md[] = "| shape | standard $la | standard $lb | growth | tsdb $la | tsdb $lb | growth |";
    $md[] = '|---|---:|---:|---:|---:|---:|---:|';
    $index = fn($r) => array_column($r['reports']['shapes'] ?? [], null, 'id');
    $sa = $index($a);
    $sb = $index($b);
    foreach ($sb as $id => $s) {
        if (!isset($sa[$id])) {
            continue;
        }
        $v = fn($x, $store) => $x[$store]['fresh_ms'] ?? $x[$store]['warm_ms'] ?? null;
        $md[] = sprintf('| %s | %s | %s | %s | %s | %s | %s |', $id, $ms($v($sa[$id], 'logstore_standard')),
            $ms($v($s, 'logstore_standard')), $ratio($v($s, 'logstore_standard'), $v($sa[$id], 'logstore_standard')),
            $ms($v($sa[$id], 'logstore_tsdb')), $ms($v($s, 'logstore_tsdb')), $ratio($v($s, 'logstore_tsdb'), $v($sa[$id], 'logstore_tsdb')));
    }
    $md[] = '';
    $md[] = "| figure | $la | $lb |";
    $md[] = '|---|---:|---:|';
    $fig = [
        'bytes per event, logstore_standard_log' => fn($r) => $r['storage']['standard']['per_event'] ?? null,
        'bytes per event, tsdb all in' => fn($r) => $r['storage']['tsdb']['per_event'] ?? null,
        'bytes per event, InfluxDB' => fn($r) => $r['storage']['influxdb']['per_event'] ?? null,
        'import rows/s' => fn($r) => $r['import']['uninterrupted']['rows_per_s'] ?? null,
    ];
    foreach ($fig as $name => $f) {
        $md[] = sprintf('| %s | %s | %s |', $name, $f($a) ?? '–', $f($b) ?? '–');
    }
    $aa = array_column($a['analytics']['queries'] ?? [], null, 'name');
    foreach ($b['analytics']['queries'] ?? [] as $q) {
        $qa = $aa[$q['name']] ?? null;
        if ($qa) {
            $md[] = sprintf('| analytics %s: standard / tsdb ms | %s / %s | %s / %s |', str_replace('|', '\|', $q['name']),
                $ms($qa['standard_ms'] ?? null), $ms($qa['tsdb_ms'] ?? null), $ms($q['standard_ms'] ?? null), $ms($q['tsdb_ms'] ?? null));
        }
    }
    $md[] = '';
}

// ---- failures -------------------------------------------------------------------------------------------------------
$md[] = '## Failures';
$md[] = '';
if ($failures) {
    foreach ($failures as $f) {
        $md[] = '- ' . str_replace("\n", ' ', $f);
    }
} else {
    $md[] = 'None: every store held every event once, every answer agreed, every TimescaleDB job succeeded.';
}
$md[] = '';
$md[] = '## How to run it';
$md[] = '';
$md[] = '`./build.sh bench-scale [EVENTS] [DAYS]` (default 200 000 events over 30 days: about 20 minutes on 2 loaded cores, most of it installing the site and the InfluxDB phase) ' .
    'runs php/bench/scale/run.sh, which starts its own PostgreSQL 15 with TimescaleDB (shared_buffers 2 GB for the two stores), ' .
    'InfluxDB 1.6.7 and a Moodle 5.1.3 site in a temp dir and stops them at exit. Documented runs: ' .
    '`./build.sh bench-scale 10000000 365 --name 10M-365d` and `./build.sh bench-scale 30000000 1095 --name 30M-1095d ' .
    '--merge docs/scale/10M-365d.json` (growth from one to three years). `php/bench/scale/run.sh --help` lists the options.';
$md[] = '';
file_put_contents($mdfile, implode("\n", $md));
scale_say("wrote $mdfile and $jsonfile");
