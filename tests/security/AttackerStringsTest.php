<?php
// What an attacker who controls an event's strings (a forum post subject in `other`, a crafted
// User-Agent / X-Forwarded-For logged as `ip`, a file name...) can do through tsdb_log_event(): store
// text, nothing more. Checked on the file sink's output, which is byte for byte what the InfluxDB
// backends send (line protocol, Go dialect) or a JSON object per line. The same strings go to real
// servers in tests/integration/influx/InfluxTest.php and tests/integration/postgres/PostgresTest.php.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class AttackerStringsTest extends TestCase {
    /** Every attacker string in every string column and inside `other`, as events. */
    private static function events(): array {
        $events = [];
        foreach (tsdb_sec_attacker_strings() as $i => $s) {
            $events[] = tsdb_sec_event($i, [
                // Columns Moodle fills from code, attacked anyway (a plugin may put user text there).
                'eventname' => $s, 'component' => $s, 'action' => $s, 'target' => $s, 'crud' => $s,
                'objecttable' => $s, 'origin' => $s, 'ip' => $s,
                'other' => ['subject' => $s, 'name' => [$s => $s], 'n' => $i],
            ]);
            // `other` given as a JSON string (a foreign producer), with the attacker string inside.
            $events[] = tsdb_sec_event(100 + $i, ['ip' => $s, 'other' => json_encode(['subject' => mb_scrub($s)])]);
        }
        return $events;
    }

    private function log_to_file(string $format): array {
        $dir = tsdb_sec_tempdir();
        $path = "$dir/events.$format";
        $events = self::events();
        file_put_contents("$dir/events.ser", serialize($events));
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
$events = unserialize(file_get_contents(getenv('EVENTS')));
$ok = 0;
foreach ($events as $e) {
    $ok += tsdb_log_event($e) ? 1 : 0;
}
tsdb_flush(10000);
echo json_encode(['ok' => $ok, 'stats' => tsdb_stats()]);
PHP, ['tsdb.backend' => 'file', 'tsdb.format' => $format, 'tsdb.path' => $path,
            'tsdb.tags' => 'eventname,component,action,target,crud,origin,courseid,objecttable'], 60,
            ['EVENTS' => "$dir/events.ser"]);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertSame('', $err);
        $r = json_decode($out, true);
        $this->assertSame(count($events), $r['ok'], 'every event accepted');
        $this->assertSame(count($events), $r['stats']['written']);
        $this->assertSame(0, $r['stats']['rejected'] + $r['stats']['failed']);
        return [$events, (string) file_get_contents($path)];
    }

    public function test_line_protocol_gets_exactly_one_point_per_event_with_only_its_own_tags(): void {
        [$events, $body] = $this->log_to_file('line');
        // Split as InfluxDB 1.x/2.x does (a newline inside a string field does not end the line).
        $lines = tsdb_sec_go_lines($body);
        if (end($lines) === '') {
            array_pop($lines);
        }
        $this->assertCount(count($events), $lines, 'an attacker string added or merged points');
        $this->assertTrue(mb_check_encoding($body, 'UTF-8'), 'invalid UTF-8 reached the wire');
        $allowed = ['eventname', 'component', 'action', 'target', 'crud', 'origin', 'courseid', 'objecttable'];
        foreach ($lines as $n => $line) {
            [$m, $tags] = tsdb_sec_series($line);
            $this->assertSame('moodle_events', $m, "line $n: measurement changed");
            $this->assertSame($tags, array_values(array_intersect($tags, $allowed)), "line $n: a tag was added: $line");
            $this->assertSame(count($tags), count(array_unique($tags)), "line $n: duplicate tag");
            $this->assertMatchesRegularExpression('/ 1700000\d{3}\d{9}$/', $line, "line $n: timestamp replaced");
            $this->assertDoesNotMatchRegularExpression('/^(m2|m3) /', $line);
        }
    }

    public function test_json_lines_hold_the_text_and_nothing_else(): void {
        [$events, $body] = $this->log_to_file('json');
        mb_substitute_character(0xFFFD);
        $lines = explode("\n", rtrim($body, "\n"));
        $this->assertCount(count($events), $lines, 'an attacker string split or merged JSON lines');
        foreach ($lines as $n => $line) {
            $row = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
            $e = $events[$n];
            foreach (['eventname', 'component', 'action', 'target', 'crud', 'objecttable', 'origin', 'ip'] as $k) {
                $want = mb_scrub((string) $e[$k], 'UTF-8');
                // Values are capped at max_string_bytes (64 KiB by default), with the marker.
                if (strlen($want) > 65536) {
                    $this->assertLessThanOrEqual(65536, strlen($row[$k]));
                    $this->assertStringEndsWith('…[truncated by tsdb]', $row[$k]);
                } else {
                    $this->assertSame($want, $row[$k], "line $n: $k");
                }
            }
            $other = json_decode($row['other'], true);
            $this->assertIsArray($other, "line $n: other is JSON");
            $this->assertSame(mb_scrub($e['other']['subject'] ?? json_decode($e['other'], true)['subject'], 'UTF-8'),
                $other['subject'] ?? null, "line $n: other.subject");
        }
    }

    public function test_the_caller_controls_nothing_but_values(): void {
        // Keys outside the event vocabulary, objects, and reserved fields are refused, never written.
        [$rc, $out] = tsdb_sec_run(<<<'PHP'
$base = ['eventname' => 'x', 'timecreated' => 1700000000];
foreach ([
    $base + ['time' => 1],
    $base + ['event_id' => 'x'],
    $base + ['ip"' => 1],
    $base + ['other' => ['o' => new stdClass()]],
    $base + ['other' => '{"unterminated'],
    $base + ['userid' => '1; DROP TABLE x'],
    $base + ['userid' => "1\n"],
] as $e) {
    try {
        var_export(tsdb_log_event($e));
    } catch (Throwable $ex) {
        echo get_class($ex), ': ', $ex->getMessage();
    }
    echo "\n";
}
echo json_encode(tsdb_stats()['accepted']);
PHP, ['tsdb.backend' => 'file', 'tsdb.path' => '/dev/null']);
        $this->assertSame(0, $rc, $out);
        $lines = explode("\n", trim($out));
        $this->assertStringStartsWith('ValueError: time: unknown event key', $lines[0]);
        $this->assertStringStartsWith('ValueError: event_id: unknown event key', $lines[1]);
        $this->assertStringStartsWith('ValueError: ip\\": unknown event key', $lines[2]);
        $this->assertStringStartsWith('TypeError: other.o: object values are not allowed', $lines[3]);
        $this->assertStringStartsWith('ValueError: other: a string must be JSON', $lines[4]);
        $this->assertStringStartsWith('ValueError: userid: must be an integer', $lines[5]);
        $this->assertSame('true', $lines[6], 'a numeric string with surrounding whitespace is an integer');
        $this->assertSame('1', $lines[7], 'only the valid event was accepted');
    }
}
