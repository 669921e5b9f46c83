<?php
// The importer's progress bar as both import benchmarks read it (php/bench/scale/import.php in bench-scale,
// tests/moodle/bench_import.php beside psql \copy): one parser of its lines, one rule to judge its ETA.

/**
 * A progress line of cli/import_standard_log.php ("[####  ] 12.5%  125,000 / 1,000,000 rows  52,000 rows/s  ETA
 * 0:00:17"), stamped with the seconds since the run began; null for any other line.
 */
function tsdb_bench_import_progress(string $line, float $t): ?array {
    if (!preg_match('#\]\s+([\d.]+)%\s+([\d,]+) / ([\d,]+) rows\s+([\d,]+) rows/s\s+ETA (\d+):(\d\d):(\d\d)#', $line, $m)) {
        return null;
    }
    $int = fn(string $s): int => (int) str_replace(',', '', $s);
    return ['t' => $t, 'done' => $int($m[2]), 'total' => $int($m[3]), 'rate' => $int($m[4]),
        'eta' => $m[5] * 3600 + $m[6] * 60 + $m[7]];
}

/**
 * The ETA the bar showed on its first line after the first minute (issue 13: "right after the first minute"), or at
 * 10 % for a run shorter than that, against the time the run really took from there.
 *
 * @param array $progress tsdb_bench_import_progress() of each line, in order
 * @param float $seconds how long the whole run took
 * @return array|null rule, at_s, done, eta_s, real_remaining_s, eta_over_real; null when no line qualifies
 */
function tsdb_bench_import_eta(array $progress, float $seconds): ?array {
    $running = array_values(array_filter($progress, fn($p) => $p['done'] < $p['total']));
    $pick = null;
    foreach ($running as $p) {
        if ($p['t'] >= 60) {
            $pick = $p + ['rule' => 'after the first minute'];
            break;
        }
    }
    foreach ($pick === null ? $running : [] as $p) {
        if ($p['done'] >= $p['total'] * 0.1) {
            $pick = $p + ['rule' => 'at 10 %'];
            break;
        }
    }
    if ($pick === null) {
        return null;
    }
    $real = $seconds - $pick['t'];
    return ['rule' => $pick['rule'], 'at_s' => $pick['t'], 'done' => $pick['done'], 'eta_s' => $pick['eta'],
        'real_remaining_s' => round($real, 1), 'eta_over_real' => $real > 0 ? round($pick['eta'] / $real, 2) : null];
}
