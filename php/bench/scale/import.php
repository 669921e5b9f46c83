<?php
// The importer as an admin runs it: moodle-plugin/cli/import_standard_log.php, from the site's code root, importing
// the site's logstore_standard_log into a fresh tsdb table (the plugin's table setting pointed at
// logstore_tsdb_import; the reports' table is left alone and the setting put back at the end):
//  A. one uninterrupted run: rows/s overall and over time (from its progress lines, stamped as they arrive), and the
//     ETA its progress bar printed after the first minute (or at 10 % for a short run) against the real remaining time;
//  B. from scratch again, killed with SIGKILL at half of A's time, then run again to the end: exactly once (the count
//     and the checksum of the event columns equal to logstore_standard_log's).
//   php import.php OUT.json

require_once(__DIR__ . '/lib/common.php');
require_once(__DIR__ . '/../import_progress.php');

const SCALE_IMPORT_TABLE = 'logstore_tsdb_import';
$out = $argv[1];
$site = scale_site();
$load = scale_read(dirname($out) . '/load.json');
$n = (int) $load['counts']['generated'];
$source = $load['standard_checksum'];
$ts = scale_pg(scale_ts_dbname());
$failures = [];
$cli = 'public/admin/tool/log/store/tsdb/cli/import_standard_log.php';
if (!is_file($site['coderoot'] . '/' . $cli)) {
    $cli = 'admin/tool/log/store/tsdb/cli/import_standard_log.php';
}

/** Runs a PHP script of the site (its PHP settings) from the code root; returns [exit code, output]. */
function scale_site_php(array $args): array {
    $site = scale_site();
    $p = proc_open(array_merge(['php'], $site['phpargs'], $args), [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes,
        $site['coderoot']);
    $output = stream_get_contents($pipes[1]);
    fclose($pipes[1]);
    return [proc_close($p), $output];
}

/** Drops the import table and everything the sink made for it, and makes the importer forget its position. */
function scale_fresh_import_table($ts, string $cli): void {
    foreach (scale_rows($ts, "SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            AND c.relname LIKE '" . SCALE_IMPORT_TABLE . "%'") as $r) {
        scale_rows($ts, "DROP TABLE IF EXISTS {$r['t']} CASCADE");
    }
    [$rc, $output] = scale_site_php([$cli, '--restart']);
    if ($rc !== 0) {
        throw new RuntimeException("import --restart failed: $output");
    }
}

/**
 * Runs the import; every output line is stamped with the seconds since the start. With $killat, the process is sent
 * SIGKILL that many seconds after its start.
 */
function scale_run_import(string $cli, ?float $killat = null): array {
    $site = scale_site();
    $p = proc_open(array_merge(['php'], $site['phpargs'], [$cli, '--all']), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
        $pipes, $site['coderoot']);
    $pid = proc_get_status($p)['pid'];
    $t0 = microtime(true);
    $lines = [];
    $progress = [];
    $killed = null;
    $buffer = ['', ''];
    $open = [1 => $pipes[1], 2 => $pipes[2]];
    foreach ($open as $pipe) {
        stream_set_blocking($pipe, false);
    }
    while ($open) {
        $read = array_values($open);
        $w = $e = null;
        if (@stream_select($read, $w, $e, 0, 50000) === false) {
            break;
        }
        if ($killat !== null && $killed === null && microtime(true) - $t0 >= $killat) {
            posix_kill($pid, SIGKILL);
            $killed = ['t' => round(microtime(true) - $t0, 2), 'progress_done' => $progress ? end($progress)['done'] : 0];
        }
        foreach ($open as $i => $pipe) {
            $chunk = fread($pipe, 65536);
            if ($chunk === '' && feof($pipe)) {
                fclose($pipe);
                unset($open[$i]);
                continue;
            }
            $buffer[$i - 1] .= (string) $chunk;
            while (($pos = strpos($buffer[$i - 1], "\n")) !== false) {
                $line = substr($buffer[$i - 1], 0, $pos);
                $buffer[$i - 1] = substr($buffer[$i - 1], $pos + 1);
                $t = round(microtime(true) - $t0, 2);
                $lines[] = [$t, ($i === 2 ? 'stderr: ' : '') . $line];
                // Not $p: that is the process, and dropping its handle closes the pipes.
                if (($bar = tsdb_bench_import_progress($line, $t)) !== null) {
                    $progress[] = $bar;
                }
            }
        }
    }
    $rc = proc_close($p);
    return ['exit' => $rc, 'seconds' => round(microtime(true) - $t0, 2), 'killed' => $killed, 'progress' => $progress,
        'lines' => $lines];
}

/** Count and checksum of the import table, checked against the source. */
function scale_check_import($ts, int $n, string $source, string $what, array &$failures): array {
    $c = scale_value($ts, "SELECT to_regclass('public." . SCALE_IMPORT_TABLE . "') IS NOT NULL") === 't'
        ? scale_rows($ts, scale_checksum_sql('public.' . SCALE_IMPORT_TABLE))[0] : ['n' => 0, 'checksum' => null];
    $ok = (int) $c['n'] === $n && $c['checksum'] === $source;
    if (!$ok) {
        $failures[] = "import ($what): the table holds {$c['n']} events of $n" . ($c['checksum'] === $source ? ''
            : ', and the checksum of the event columns differs from logstore_standard_log\'s');
    }
    return ['events' => (int) $c['n'], 'checksum_equal' => $c['checksum'] === $source, 'exactly_once' => $ok];
}

/** Rates between progress lines, the ETA shown after the first minute (else at 10 %), against the real remaining time. */
function scale_import_figures(array $run, int $n): array {
    $rates = [];
    $prev = ['t' => 0.0, 'done' => 0];
    foreach ($run['progress'] as $p) {
        if ($p['t'] > $prev['t'] && $p['done'] > $prev['done']) {
            $rates[] = ['t' => $p['t'], 'rows_per_s' => (int) (($p['done'] - $prev['done']) / ($p['t'] - $prev['t']))];
        }
        $prev = $p;
    }
    $end = $run['seconds'];
    $eta = tsdb_bench_import_eta($run['progress'], $end);
    $values = array_column($rates, 'rows_per_s');
    return ['rows_per_s' => $end > 0 ? (int) ($n / $end) : null, 'rates' => $rates,
        'rate_min' => $values ? min($values) : null, 'rate_median' => scale_median($values), 'rate_max' => $values ? max($values) : null,
        'eta' => $eta];
}

[$rc, $output] = scale_site_php([__DIR__ . '/site/configure.php', 'postgres', SCALE_IMPORT_TABLE]);
scale_say(trim($output));
$result = ['table' => SCALE_IMPORT_TABLE, 'events' => $n];
try {
    // A: uninterrupted.
    scale_fresh_import_table($ts, $cli);
    $a = scale_run_import($cli);
    if ($a['exit'] !== 0) {
        $failures[] = "import run A exited with {$a['exit']}: " . json_encode(array_slice($a['lines'], -5));
    }
    $result['uninterrupted'] = ['run' => $a] + scale_import_figures($a, $n) + scale_check_import($ts, $n, $source, 'uninterrupted', $failures);
    // Rows in the table per second of the run (the rate of what was really imported, also when the importer failed).
    $result['uninterrupted']['rows_per_s'] = (int) ($result['uninterrupted']['events'] / max(0.001, $a['seconds']));
    scale_say(sprintf('import A: %d rows in %.0f s (%s rows/s), ETA %s: %s', $n, $a['seconds'],
        number_format($result['uninterrupted']['rows_per_s']), $result['uninterrupted']['eta']['rule'] ?? '-',
        json_encode($result['uninterrupted']['eta'])));
    // B: killed half way (at half of A's time), resumed.
    scale_fresh_import_table($ts, $cli);
    $b1 = scale_run_import($cli, $a['seconds'] / 2);
    if ($b1['killed'] === null || $b1['exit'] === 0) {
        $failures[] = 'import run B: the process ended before it could be killed half way';
    }
    $ignored = []; // Not all there yet, of course.
    $atkill = scale_check_import($ts, $n, $source, 'at the kill', $ignored)['events'];
    $b2 = scale_run_import($cli);
    if ($b2['exit'] !== 0) {
        $failures[] = "import run B (resumed) exited with {$b2['exit']}: " . json_encode(array_slice($b2['lines'], -5));
    }
    $result['killed_and_resumed'] = ['killed_run' => $b1, 'rows_in_table_at_kill' => $atkill, 'resumed_run' => $b2,
        'seconds' => round($b1['seconds'] + $b2['seconds'], 1)] + scale_check_import($ts, $n, $source, 'killed and resumed', $failures);
    scale_say(sprintf('import B: killed at %.0f s with %d rows in the table; resumed in %.0f s; exactly once: %s',
        $b1['killed']['t'] ?? -1, $atkill, $b2['seconds'], $result['killed_and_resumed']['exactly_once'] ? 'yes' : 'NO'));
} finally {
    scale_site_php([__DIR__ . '/site/configure.php', 'postgres']);
}
$result['failures'] = $failures;
scale_write($out, $result);
exit($failures ? 1 : 0);
