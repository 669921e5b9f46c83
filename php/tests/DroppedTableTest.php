<?php
// The events table dropped while PostgreSQL could not be reached, through the extension and its spool
// (dropped_table_scenario.php, in a PHP process of its own): when the database answers again, the replay makes the
// table again and every spooled event lands in it exactly once, and tsdb_stats() says that the table was made again. Against PostgreSQL (TSDB_TEST_PG_*) and, when
// TSDB_TEST_TIMESCALE_DSN is set, TimescaleDB. Without PostgreSQL the test is skipped (loudly), unless
// TSDB_TEST_REQUIRE_SERVERS=1.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class DroppedTableTest extends TestCase {
    use tsdb_test_tempdir;

    /** The servers to run against: name => connection settings (tsdb_configure() keys). */
    public static function servers(): array {
        $out = [];
        $pg = [];
        foreach (['HOST', 'PORT', 'USER', 'PASSWORD', 'DB'] as $k) {
            $pg[$k] = (string) getenv("TSDB_TEST_PG_$k");
        }
        $out['postgres'] = in_array('', $pg, true) ? [null] : [['host' => $pg['HOST'], 'port' => $pg['PORT'],
            'user' => $pg['USER'], 'password' => $pg['PASSWORD'], 'dbname' => $pg['DB']]];
        $dsn = parse_url((string) getenv('TSDB_TEST_TIMESCALE_DSN'));
        $out['timescaledb'] = empty($dsn['host']) ? [false] : [['host' => $dsn['host'], 'port' => $dsn['port'] ?? 5432,
            'user' => urldecode($dsn['user'] ?? ''), 'password' => urldecode($dsn['pass'] ?? ''),
            'dbname' => ltrim($dsn['path'] ?? '', '/')]];
        return $out;
    }

    /** A loopback port nobody listens on: PostgreSQL "down" for this process. */
    private static function dead_port(): int {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr(strrchr(stream_socket_get_name($s, false), ':'), 1);
        fclose($s);
        return $port;
    }

    /**
     * @dataProvider servers
     * @param array|null|false $server null: PostgreSQL not configured; false: TimescaleDB not configured
     */
    public function test_a_table_dropped_during_an_outage_is_made_again_and_the_spool_lands_in_it_once($server): void {
        if ($server === false) {
            $this->markTestSkipped('SKIPPED: TimescaleDB not reachable (set TSDB_TEST_TIMESCALE_DSN)');
        }
        if ($server === null) {
            $msg = 'SKIPPED: PostgreSQL not configured (TSDB_TEST_PG_* unset; source tests/servers/postgres.sh)';
            if (getenv('TSDB_TEST_REQUIRE_SERVERS') === '1') {
                $this->fail($msg);
            }
            fwrite(STDERR, "$msg\n");
            $this->markTestSkipped($msg);
        }
        $this->assertTrue(function_exists('pg_connect'), 'php-pgsql is not installed');
        $db = pg_connect(sprintf("host=%s port=%s dbname=%s user=%s password=%s", $server['host'], $server['port'],
            $server['dbname'], $server['user'], $server['password']));
        $schema = 'it_php_dropped';
        $table = "\"$schema\".logstore_tsdb_log";
        tsdb_test_pg_stop_jobs($db, $schema);
        tsdb_test_pg_ddl($db, "DROP SCHEMA IF EXISTS \"$schema\" CASCADE");
        $up = array_merge(['backend' => 'postgres', 'schema' => $schema, 'spool_dir' => $this->dir . '/spool',
            'flush_interval_ms' => 50, 'batch_size' => 100, 'retry_max_elapsed_ms' => 0, 'breaker_open_ms' => 200], $server);
        $down = array_merge($up, ['port' => self::dead_port()]);
        $n = 300;
        $m = 200;
        // In a process of its own (its counters are its own), with the system's PHP extensions (pgsql) and this one.
        $so = getenv('TSDB_SO') ?: dirname(__DIR__, 2) . '/target/release/libtsdb.so';
        $p = proc_open([PHP_BINARY, '-d', "extension=$so", __DIR__ . '/dropped_table_scenario.php',
            json_encode(['up' => $up, 'down' => $down, 'n' => $n, 'm' => $m])], [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
        $out = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        $this->assertSame(0, proc_close($p), $out);
        $steps = [];
        foreach (explode("\n", trim($out)) as $line) {
            $step = json_decode($line, true);
            $this->assertIsArray($step, $out);
            $steps[$step['step']] = $step;
        }
        // Before the drop: 100 written, N spooled; while it is gone M more spooled, and nothing made again yet.
        $this->assertSame([100, 0], [$steps['100 written']['written'], $steps['100 written']['spooled']]);
        $this->assertSame(0, $steps['M spooled']['schema_recreated']);
        // PostgreSQL answers again: the replay made the table again, and every spooled event landed once.
        $s = $steps['N + M replayed'];
        $this->assertSame([100, $n + $m, $n + $m, 0, 0, 0],
            [$s['written'], $s['spooled'], $s['replayed'], $s['failed'], $s['rejected'], $s['replay_rejected']], $out);
        $this->assertSame(1, $s['schema_recreated']);
        $this->assertGreaterThan(0, $s['schema_recreated_at']);
        $this->assertStringStartsWith("table: \"$schema\".\"logstore_tsdb_log\" was missing (dropped, or restored without it) and was created again",
            $s['schema_recreated_message']);
        $this->assertStringContainsString('1 range(s)', $s['schema_recreated_message'], 'the 100 written before the drop');
        $this->assertSame('closed', $s['breaker']);

        // The 100 went with the table; the N + M are there once each, with their values.
        $rows = pg_fetch_all(pg_query($db, "SELECT eventname, component, action, target, objecttable, objectid, crud,
            edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, relateduserid, anonymous, other::text,
            timecreated, origin, ip, realuserid FROM $table ORDER BY userid")) ?: [];
        $this->assertCount($n + $m, $rows);
        $ints = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
            'relateduserid', 'anonymous', 'timecreated', 'realuserid'];
        foreach ($rows as $k => $row) {
            $want = tsdb_test_event(100 + $k);
            foreach ($want as $col => $value) {
                $got = $row[$col];
                if ($col === 'other') {
                    $this->assertSame($value, json_decode($got, true), "event $k other");
                } else if (in_array($col, $ints, true)) {
                    $this->assertSame($value, $got === null ? null : (int) $got, "event $k $col");
                } else {
                    $this->assertSame($value, $got, "event $k $col");
                }
            }
        }
        $layout = pg_fetch_result(pg_query($db, "SELECT layout FROM \"$schema\".logstore_tsdb_log_schema"), 0, 0);
        $timescale = (bool) pg_fetch_result(pg_query($db,
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"), 0, 0);
        $this->assertSame($timescale ? 'timescaledb' : 'native', $layout);
        tsdb_test_pg_stop_jobs($db, $schema);
        tsdb_test_pg_ddl($db, "DROP SCHEMA \"$schema\" CASCADE");
    }
}
