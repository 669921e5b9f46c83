<?php
// PHP-level tests of the tsdb extension with the file sink: every test reads back what it wrote.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class ExtensionTest extends TestCase {
    use tsdb_test_tempdir;

    private function configure_file(string $name, array $extra = []): string {
        $path = $this->dir . '/' . $name;
        tsdb_configure(array_merge(['backend' => 'file', 'path' => $path, 'format' => 'json',
            'flush_interval_ms' => 50, 'mode' => 'async'], $extra));
        return $path;
    }

    public function test_events_with_nasty_strings_are_read_back_exactly(): void {
        $path = $this->configure_file('nasty.jsonl');
        $nasty = ["quote\"s", "back\\slash\\", "new\nline\r\n", "tab\there", "comma,eq=space ", "ünïcødé 😀 中文",
            "", "'; DROP TABLE mdl_user; --", "x\" other=\"injected", "\\\\double\\\\"];
        $sent = [];
        $n = 500;
        for ($i = 0; $i < $n; $i++) {
            $s = $nasty[$i % count($nasty)];
            $e = tsdb_test_event($i, [
                'component' => 'mod_forum' . $s,
                'target' => $s === '' ? 'post' : $s,
                'objecttable' => 'forum_posts',
                'objectid' => (string)(5000 + $i),   // numeric strings, as Moodle's DB records give them
                'relateduserid' => $i % 3 ? null : 42,
                'realuserid' => $i % 5 ? null : 2,
                'other' => ['subject' => $s, 'nested' => ['a' => [1, 2.5, true, null], 'k' => $s], 7 => 'int key'],
                'ip' => $s,
            ]);
            $this->assertTrue(tsdb_log_event($e));
            $sent[] = $e;
        }
        $this->assertSame(0, tsdb_flush(10000));
        $rows = tsdb_test_read_jsonl($path);
        $this->assertCount($n, $rows);
        foreach ($sent as $i => $e) {
            $row = $rows[$i];
            foreach (tsdb_test_expected($e) as $k => $v) {
                if ($k === 'other') {
                    $this->assertSame(json_decode($v, true), json_decode($row['other'], true), "event $i other");
                } else {
                    $this->assertSame($v, $row[$k], "event $i field $k");
                }
            }
        }
        $ids = array_column($rows, 'event_id');
        $this->assertCount($n, array_unique($ids));
        $stats = tsdb_stats();
        $this->assertSame($stats['accepted'], $stats['written']);
        $this->assertSame(0, $stats['pending']);
    }

    public function test_timestamps_are_distinct_inside_one_second(): void {
        $path = $this->configure_file('same-second.jsonl');
        $n = 10000;
        $events = [];
        for ($i = 0; $i < $n; $i++) {
            $events[] = tsdb_test_event(0, ['userid' => $i, 'timecreated' => 1700000000]);
        }
        $this->assertSame($n, tsdb_log_events($events));
        $this->assertSame(0, tsdb_flush(10000));
        $rows = tsdb_test_read_jsonl($path);
        $this->assertCount($n, $rows);
        $times = array_column($rows, 'time_ns');
        $this->assertCount($n, array_unique($times));
        foreach ($times as $t) {
            $this->assertSame(1700000000, intdiv($t, 1000000000));
        }
        $this->assertSame(range(0, $n - 1), array_column($rows, 'userid'));
    }

    public function test_configure_names_every_bad_key_and_hides_secrets(): void {
        try {
            tsdb_configure(['batch_size' => 0, 'backend' => 'mysql', 'nosuchkey' => 1, 'flush_interval_ms' => 'soon',
                'password' => "s3cr3t\n", 'schema' => 'public; drop table x']);
            $this->fail('no ValueError');
        } catch (\ValueError $e) {
            foreach (['batch_size:', 'backend:', 'nosuchkey:', 'flush_interval_ms:', 'password:', 'schema:'] as $k) {
                $this->assertStringContainsString($k, $e->getMessage());
            }
            $this->assertStringNotContainsString('s3cr3t', $e->getMessage());
        }
        try {
            tsdb_configure(['backend' => 'influxdb2', 'token' => 'tok']);
            $this->fail('no ValueError');
        } catch (\ValueError $e) {
            $this->assertStringContainsString('org: required', $e->getMessage());
            $this->assertStringNotContainsString('tok', str_replace('token', '', $e->getMessage()));
        }
        $this->expectException(\TypeError::class);
        $this->expectExceptionMessage('path: must be a scalar');
        tsdb_configure(['path' => new stdClass()]);
    }

    public function test_bad_events_throw_naming_the_key_and_queue_nothing(): void {
        $path = $this->configure_file('bad.jsonl');
        $before = tsdb_stats()['accepted'];
        $cases = [
            [['bogus' => 1], \ValueError::class, 'bogus: unknown event key'],
            [['userid' => 'abc'], \ValueError::class, 'userid: must be an integer'],
            [['userid' => [1]], \TypeError::class, 'userid: must be int'],
            [['courseid' => 1.5], \ValueError::class, 'courseid: must be an integer'],
            [['component' => new stdClass()], \TypeError::class, 'component: must be a string, object given'],
            [['other' => ['a' => ['b' => new stdClass()]]], \TypeError::class, 'other.a.b: object values'],
            [['other' => ['f' => function () {}]], \TypeError::class, 'other.f: object values'],
            [['other' => ['r' => STDERR]], \TypeError::class, 'other.r: resource values'],
            [['other' => '{not json'], \ValueError::class, 'other: a string must be JSON'],
            [['eventname' => ''], \ValueError::class, 'eventname: required'],
        ];
        $deep = [];
        for ($i = 0; $i < 40; $i++) {
            $deep = ['d' => $deep];
        }
        $cases[] = [['other' => $deep], \ValueError::class, 'nested deeper than 32'];
        foreach ($cases as [$override, $class, $message]) {
            try {
                tsdb_log_event(tsdb_test_event(1, $override));
                $this->fail("no exception for $message");
            } catch (\Throwable $e) {
                $this->assertInstanceOf($class, $e, $message);
                $this->assertStringContainsString($message, $e->getMessage());
            }
        }
        $noTime = tsdb_test_event(1);
        unset($noTime['timecreated']);
        try {
            tsdb_log_event($noTime);
            $this->fail('no exception for missing timecreated');
        } catch (\ValueError $e) {
            $this->assertStringContainsString('timecreated: required', $e->getMessage());
        }
        try {
            tsdb_log_events([tsdb_test_event(1), tsdb_test_event(2), tsdb_test_event(3, ['crud' => []])]);
            $this->fail('no exception from tsdb_log_events');
        } catch (\TypeError $e) {
            $this->assertStringContainsString('[2] crud:', $e->getMessage());
        }
        $this->assertSame(0, tsdb_flush(5000));
        // Only the two valid events before the bad one were queued.
        $this->assertSame($before + 2, tsdb_stats()['accepted']);
        $this->assertCount(2, tsdb_test_read_jsonl($path));
    }

    public function test_other_as_json_string_and_scalars(): void {
        $path = $this->configure_file('other.jsonl');
        tsdb_log_event(tsdb_test_event(1, ['other' => '{"a": [1, 2], "b": "c"}']));
        tsdb_log_event(tsdb_test_event(2, ['other' => null]));
        tsdb_log_event(tsdb_test_event(3, ['other' => ['x' => NAN, 'list' => ['a', 'b'], 'map' => [1 => 'a', 2 => 'b']]]));
        tsdb_flush(5000);
        $rows = tsdb_test_read_jsonl($path);
        $this->assertSame('{"a": [1, 2], "b": "c"}', $rows[0]['other']);
        $this->assertNull($rows[1]['other']);
        $this->assertSame(['x' => null, 'list' => ['a', 'b'], 'map' => ['1' => 'a', '2' => 'b']], json_decode($rows[2]['other'], true));
    }

    public function test_huge_other_is_truncated_with_marker_and_counted(): void {
        $path = $this->configure_file('huge.jsonl', ['max_other_bytes' => 1048576]);
        $before = tsdb_stats()['truncated'];
        $big = str_repeat('é', 1 << 20); // 2 MiB
        $this->assertTrue(tsdb_log_event(tsdb_test_event(1, ['other' => ['body' => $big]])));
        $this->assertTrue(tsdb_log_event(tsdb_test_event(2, ['other' => ['body' => str_repeat('x', 500000)]])));
        tsdb_flush(5000);
        $rows = tsdb_test_read_jsonl($path);
        $this->assertCount(2, $rows);
        $other = json_decode($rows[0]['other'], true);
        $this->assertSame(strlen(json_encode(['body' => $big], JSON_UNESCAPED_UNICODE)), $other['tsdb_truncated']);
        $this->assertStringStartsWith('{"body":"ééé', $other['head']);
        $this->assertLessThanOrEqual(1048576, strlen($rows[0]['other']));
        $this->assertSame(str_repeat('x', 500000), json_decode($rows[1]['other'], true)['body']);
        $this->assertSame($before + 1, tsdb_stats()['truncated']);
    }

    public function test_non_utf8_bytes_are_replaced_in_json_output(): void {
        $path = $this->configure_file('bytes.jsonl');
        tsdb_log_event(tsdb_test_event(1, ['ip' => "ab\xff\xfecd", 'other' => ['k' => "\xc3"]]));
        tsdb_flush(5000);
        $rows = tsdb_test_read_jsonl($path);
        $this->assertSame("ab\u{FFFD}\u{FFFD}cd", $rows[0]['ip']);
        $this->assertSame(['k' => "\u{FFFD}"], json_decode($rows[0]['other'], true));
    }

    public function test_new_config_drains_old_batches_to_old_sink(): void {
        $a = $this->configure_file('a.jsonl', ['flush_interval_ms' => 60000]);
        for ($i = 0; $i < 100; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $b = $this->configure_file('b.jsonl', ['flush_interval_ms' => 60000]);
        for ($i = 100; $i < 150; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        // The same configuration again changes nothing.
        $this->configure_file('b.jsonl', ['flush_interval_ms' => 60000]);
        $this->assertSame(0, tsdb_flush(5000));
        $this->assertSame(range(1000, 1099), array_column(tsdb_test_read_jsonl($a), 'userid'));
        $this->assertSame(range(1100, 1149), array_column(tsdb_test_read_jsonl($b), 'userid'));
    }

    public function test_a_dead_old_sink_does_not_hold_up_a_new_configuration(): void {
        tsdb_configure(['backend' => 'file', 'path' => $this->dir . '/missing/x', 'flush_interval_ms' => 10,
            'retry_base_ms' => 600000, 'retry_max_ms' => 600000, 'retry_max_elapsed_ms' => 86400000, 'spool_dir' => '']);
        $s0 = tsdb_stats();
        for ($i = 0; $i < 10; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $this->assertSame(10, tsdb_flush(300), 'the old sink keeps them while retrying');
        $good = $this->configure_file('good.jsonl');
        for ($i = 0; $i < 5; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $this->assertSame(0, tsdb_flush(5000));
        $s1 = tsdb_stats();
        $this->assertSame(10, $s1['failed'] - $s0['failed'], 'no spool: the old events count as failed');
        $this->assertSame(5, $s1['written'] - $s0['written']);
        $this->assertCount(5, tsdb_test_read_jsonl($good));
    }

    public function test_sync_mode_writes_before_returning(): void {
        $path = $this->configure_file('sync.jsonl', ['mode' => 'sync', 'flush_interval_ms' => 60000]);
        for ($i = 0; $i < 5; $i++) {
            $this->assertTrue(tsdb_log_event(tsdb_test_event($i)));
            $this->assertCount($i + 1, tsdb_test_read_jsonl($path));
        }
        $this->assertSame('sync', tsdb_stats()['mode']);
    }

    public function test_line_protocol_format(): void {
        $path = $this->configure_file('events.lp', ['format' => 'line', 'measurement' => 'moodle_events']);
        tsdb_log_event(tsdb_test_event(1, ['other' => ['a' => 'b c'], 'component' => 'mod,forum']));
        tsdb_flush(5000);
        $lines = file($path, FILE_IGNORE_NEW_LINES);
        $this->assertCount(1, $lines);
        $this->assertMatchesRegularExpression(
            '/^moodle_events,action=viewed,component=mod\\\\,forum,contextlevel=50,courseid=4,crud=r,edulevel=2,' .
            'eventname=\\\\core\\\\event\\\\course_viewed,origin=web,target=course ' .
            'anonymous=0i,contextid=101i,contextinstanceid=4i,ip="192\\.0\\.2\\.1",other="\{\\\\"a\\\\":\\\\"b c\\\\"\}",userid=1001i 1700000000\d{9}$/',
            $lines[0]);
    }

    public function test_memory_cap_drops_and_counts_without_blocking(): void {
        // A file sink that cannot open its file keeps its events in memory (retrying slowly).
        tsdb_configure(['backend' => 'file', 'path' => $this->dir . '/missing/dir/x', 'format' => 'json',
            'memory_limit_bytes' => 1048576, 'flush_interval_ms' => 10, 'retry_max_elapsed_ms' => 600000,
            'retry_base_ms' => 60000, 'retry_max_ms' => 60000]);
        $s0 = tsdb_stats();
        $results = [];
        for ($i = 0; $i < 20000; $i++) {
            $results[] = tsdb_log_event(tsdb_test_event($i));
        }
        // Give the flush thread its first attempt; it keeps the events and waits to retry.
        $this->assertGreaterThan(0, tsdb_flush(300));
        $s1 = tsdb_stats();
        $accepted = count(array_filter($results));
        $dropped = count($results) - $accepted;
        $this->assertGreaterThan(0, $dropped);
        $this->assertSame($s0['accepted'] + $accepted, $s1['accepted']);
        $this->assertSame($s0['dropped'] + $dropped, $s1['dropped']);
        $this->assertLessThanOrEqual(1048576, $s1['queued_bytes']);
        $this->assertStringContainsString('path: cannot open', $s1['last_error']);
        // Nothing was written and nothing invented.
        $this->assertFileDoesNotExist($this->dir . '/missing/dir/x');
    }
}
