<?php
// Run by DroppedTableTest in a PHP process of its own (so that its tsdb_stats() counters are its own): 100 events
// written, PostgreSQL unreachable while N events are spooled, the events table dropped (as an admin starting over, or
// a restore without it), M more spooled, then PostgreSQL reachable again. Prints tsdb_stats() after each step as JSON
// lines. Argument: JSON {"up": tsdb_configure() keys, "down": the same with a dead port, "n": N, "m": M}.

require __DIR__ . '/helpers.php';

$args = json_decode($argv[1], true, 512, JSON_THROW_ON_ERROR);
$up = $args['up'];

/** Flushes until `$until` holds for tsdb_stats(); gives up after 2 minutes (a guard against a hang only). */
function wait_stats(string $what, callable $until): void {
    $deadline = microtime(true) + 120;
    while (!$until(tsdb_stats())) {
        if (microtime(true) > $deadline) {
            fwrite(STDERR, "waited 2 minutes for $what: " . json_encode(tsdb_stats()) . "\n");
            exit(1);
        }
        tsdb_flush(100);
        usleep(50000);
    }
    echo json_encode(['step' => $what] + tsdb_stats()), "\n";
}

$n = $args['n'];
$m = $args['m'];
tsdb_configure($up);
for ($i = 0; $i < 100; $i++) {
    tsdb_log_event(tsdb_test_event($i));
}
wait_stats('100 written', fn($s) => $s['written'] === 100);
tsdb_configure($args['down']);
for ($i = 100; $i < 100 + $n; $i++) {
    tsdb_log_event(tsdb_test_event($i));
}
wait_stats('N spooled', fn($s) => $s['spooled'] === $n);
$db = pg_connect(sprintf('host=%s port=%s dbname=%s user=%s password=%s', $up['host'], $up['port'], $up['dbname'],
    $up['user'], $up['password']));
tsdb_test_pg_stop_jobs($db, $up['schema'], 'logstore_tsdb_log');
tsdb_test_pg_ddl($db, sprintf('DROP TABLE "%s".logstore_tsdb_log CASCADE', $up['schema']));
for ($i = 100 + $n; $i < 100 + $n + $m; $i++) {
    tsdb_log_event(tsdb_test_event($i));
}
wait_stats('M spooled', fn($s) => $s['spooled'] === $n + $m);
tsdb_configure($up);
wait_stats('N + M replayed', fn($s) => $s['replayed'] === $n + $m && $s['spool_segments'] === 0);
