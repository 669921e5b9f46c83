<?php
// Events logged through the extension (tsdb_log_event) into a real InfluxDB 1.6.7, read back with
// /query and compared field by field with what docs/influxdb.md says the server must hold.
//
//   php -d extension=target/release/libtsdb.so /usr/bin/phpunit tests/integration/influx
//
// Servers: tests/servers/influxdb.sh (./build.sh test starts them). Without TSDB_TEST_INFLUX_URL the
// tests are skipped loudly, or fail when TSDB_TEST_REQUIRE_SERVERS=1.

declare(strict_types=1);

use PHPUnit\Framework\TestCase;

final class InfluxTest extends TestCase
{
    private const MARKER = "…[truncated by tsdb]";
    private const MAX_FIELD = 65536;
    private const TAGS = ['eventname', 'component', 'action', 'target', 'crud', 'edulevel', 'contextlevel', 'origin', 'courseid'];
    private const INTS = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
        'relateduserid', 'anonymous', 'realuserid'];
    private const STRS = ['eventname', 'component', 'action', 'target', 'objecttable', 'crud', 'origin', 'ip'];

    private static function need(string $var): string
    {
        if (!extension_loaded('tsdb')) {
            self::fail('the tsdb extension is not loaded (php -d extension=target/release/libtsdb.so)');
        }
        $v = getenv($var);
        if ($v === false || $v === '') {
            $msg = "SKIPPED: $var is not set (start servers with ./build.sh test)";
            if (getenv('TSDB_TEST_REQUIRE_SERVERS') === '1') {
                self::fail("$var is not set and TSDB_TEST_REQUIRE_SERVERS=1");
            }
            fwrite(STDERR, "\n$msg\n");
            self::markTestSkipped($msg);
        }
        return $v;
    }

    /** InfluxQL through /query (POST), times as epoch ns. */
    private static function query(string $url, string $db, string $q, ?array $auth = null): array
    {
        $headers = "Content-Type: application/x-www-form-urlencoded\r\n";
        if ($auth !== null) {
            $headers .= 'Authorization: Basic ' . base64_encode($auth[0] . ':' . $auth[1]) . "\r\n";
        }
        $ctx = stream_context_create(['http' => [
            'method' => 'POST', 'header' => $headers, 'ignore_errors' => true, 'timeout' => 60,
            'content' => http_build_query(['q' => $q, 'db' => $db, 'epoch' => 'ns']),
        ]]);
        $body = file_get_contents("$url/query", false, $ctx);
        self::assertIsString($body, "query $q");
        $v = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
        self::assertArrayNotHasKey('error', $v['results'][0] ?? [], "$q: $body");
        self::assertArrayNotHasKey('error', $v, "$q: $body");
        return $v;
    }

    /** @return list<array<string,mixed>> rows as column => value */
    private static function rows(array $v): array
    {
        $out = [];
        foreach ($v['results'][0]['series'] ?? [] as $s) {
            foreach ($s['values'] as $row) {
                $out[] = array_combine($s['columns'], $row);
            }
        }
        return $out;
    }

    private static function dbname(string $prefix): string
    {
        return $prefix . '_' . getmypid() . '_' . random_int(0, PHP_INT_MAX);
    }

    /** Invalid UTF-8 as U+FFFD, as the extension stores it. */
    private static function lossy(string $s): string
    {
        return htmlspecialchars_decode(htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8'), ENT_QUOTES);
    }

    private static function lossyDeep(mixed $v): mixed
    {
        if (is_string($v)) {
            return self::lossy($v);
        }
        if (is_array($v)) {
            $out = [];
            foreach ($v as $k => $x) {
                $out[is_string($k) ? self::lossy($k) : $k] = self::lossyDeep($x);
            }
            return $out;
        }
        return $v;
    }

    /** A tag value as InfluxDB 1.x holds it (null: the tag is omitted). */
    private static function wantTag(string $v): ?string
    {
        if ($v === '') {
            return null;
        }
        $s = str_replace("\n", "\u{FFFD}", self::lossy($v));
        if (str_ends_with($s, '\\')) {
            $s = substr($s, 0, -1) . "\u{FFFD}";
        }
        return $s;
    }

    /** A string field as InfluxDB holds it. */
    private static function wantString(string $v): string
    {
        $s = self::lossy($v);
        if (strlen($s) <= self::MAX_FIELD) {
            return $s;
        }
        $keep = self::MAX_FIELD - strlen(self::MARKER);
        while ($keep > 0 && (ord($s[$keep]) & 0xC0) === 0x80) {
            $keep--;
        }
        return substr($s, 0, $keep) . self::MARKER;
    }

    /** An odd run of backslashes before `,` `=` or space (see lineproto: the encoder alters it when a
     *  string field of the same event holds a newline; such pairs are kept apart here). */
    private static function exposes(string $v): bool
    {
        return preg_match('/(?<!\\\\)(\\\\\\\\)*\\\\[,= ]/', $v) === 1;
    }

    private static function nasty(): array
    {
        return [
            '\\core\\event\\course_viewed', 'plain', 'a\\\\b', 'a\\,b', 'a\\ b', 'a\\=b', '\\', 'x\\', 'x\\\\',
            ',', '=', ' ', 'a b,c=d', '"quoted"', "'single'", "line1\nline2", "crlf\r\nend", "tab\there",
            "nul\0byte", "ctl\x01\x1b\x7f", "unicode é😀 ✓ 中文 \u{202e}rtl", "bad utf8 \xff\xfe", "cut \xc3",
            "x,evil=1 f=2i 0\nm2 g=3i 0", '" , = \\ "', "\"\nm3 f=1i 0\n\"", '#comment', ' leading', 'trailing ',
            '', 'a\\"b', '\\n not a newline', str_repeat('x', 70000), str_repeat('é', 40000),
        ];
    }

    /** Nasty events: every nasty string in every string key, edge integers, `other` as an array. */
    private static function nastyEvents(int $timecreated, int $firstUser): array
    {
        $nasty = self::nasty();
        $n = count($nasty);
        $ints = [0, -1, 1, PHP_INT_MAX, PHP_INT_MIN, 123456789, -987654321012];
        $events = [];
        for ($i = 0; $i < 2 * $n; $i++) {
            $e = ['timecreated' => $timecreated, 'userid' => $firstUser + $i];
            foreach (self::STRS as $k => $key) {
                $v = $nasty[($i + 3 * $k) % $n];
                if (in_array($key, self::TAGS, true) && strlen($v) > 1000) {
                    $v = substr($v, 0, 100);
                }
                $e[$key] = $v;
            }
            if ($e['eventname'] === '') {
                $e['eventname'] = 'empty replaced';
            }
            foreach (self::INTS as $k => $key) {
                if ($key === 'userid' || ($i + $k) % 9 === 8) {
                    continue;
                }
                $e[$key] = $ints[($i + 2 * $k) % count($ints)];
            }
            $e['other'] = ['s' => $nasty[($i + 7) % $n], 'list' => [1, 'two', $nasty[($i + 11) % $n]],
                $nasty[($i + 13) % $n] => null, 'nested' => ['k' => true]];
            $exposed = false;
            foreach (['eventname', 'component', 'action', 'target', 'crud', 'origin'] as $t) {
                $exposed = $exposed || self::exposes($e[$t]);
            }
            if ($exposed) {
                foreach (['objecttable', 'ip'] as $f) {
                    if (str_contains($e[$f], "\n")) {
                        $e[$f] = 'no newline here';
                    }
                }
            }
            $events[] = $e;
        }
        // `other` far over 64 KiB: cut into {"tsdb_truncated":N,"head":"..."}.
        $events[] = ['timecreated' => $timecreated, 'userid' => $firstUser + 2 * $n, 'eventname' => 'big other',
            'other' => ['blob' => str_repeat("q\"\\\n", 50000)]];
        return $events;
    }

    /** Compares every column of every stored row with its event (matched by userid). */
    private static function verify(array $rows, array $events): void
    {
        self::assertCount(count($events), $rows, 'N in, N out');
        $byUser = [];
        foreach ($rows as $r) {
            $byUser[$r['userid']] = $r;
        }
        self::assertCount(count($events), $byUser, 'distinct userids');
        $errors = [];
        foreach ($events as $e) {
            $r = $byUser[$e['userid']] ?? null;
            if ($r === null) {
                $errors[] = "event of user {$e['userid']} missing";
                continue;
            }
            foreach ($r as $col => $_) {
                if ($col !== 'time' && !in_array($col, self::INTS, true) && !in_array($col, self::STRS, true)
                    && $col !== 'other') {
                    $errors[] = "user {$e['userid']}: unexpected column $col";
                }
            }
            if (intdiv($r['time'], 1000000000) !== $e['timecreated']) {
                $errors[] = "user {$e['userid']}: time {$r['time']}";
            }
            foreach (self::INTS as $k) {
                $want = $e[$k] ?? null;
                if ($want !== null && in_array($k, self::TAGS, true)) {
                    $want = (string)$want;
                }
                $got = $r[$k] ?? null;
                if ($got === '' && in_array($k, self::TAGS, true)) {
                    $got = null;
                }
                if ($got !== $want) {
                    $errors[] = "user {$e['userid']}: $k = " . var_export($got, true) . ' want ' . var_export($want, true);
                }
            }
            foreach (self::STRS as $k) {
                $tag = in_array($k, self::TAGS, true);
                $want = isset($e[$k]) ? ($tag ? self::wantTag($e[$k]) : self::wantString($e[$k])) : null;
                $got = $r[$k] ?? null;
                if ($got === '' && $tag) {
                    $got = null;
                }
                if ($got !== $want) {
                    $errors[] = "user {$e['userid']}: $k = " . substr(var_export($got, true), 0, 200)
                        . ' want ' . substr(var_export($want, true), 0, 200);
                }
            }
            $json = json_encode($e['other'], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
            $stored = json_decode($r['other'], true);
            if (strlen($json) > self::MAX_FIELD) {
                if (strlen($r['other']) > self::MAX_FIELD || $stored['tsdb_truncated'] !== strlen($json)
                    || !str_starts_with($json, $stored['head']) || strlen($stored['head']) < self::MAX_FIELD / 4) {
                    $errors[] = "user {$e['userid']}: cut other " . substr($r['other'], 0, 100);
                }
            } elseif ($stored !== self::lossyDeep($e['other'])) {
                $errors[] = "user {$e['userid']}: other = " . substr($r['other'], 0, 300);
            }
        }
        self::assertSame([], $errors, count($errors) . " differences");
    }

    private static function waitWritten(int $n, int $before): array
    {
        $deadline = microtime(true) + 120;
        do {
            $pending = tsdb_flush(10000);
            $s = tsdb_stats();
        } while ($pending > 0 && microtime(true) < $deadline);
        self::assertSame(0, $pending, 'pending: ' . json_encode($s));
        self::assertSame($n, $s['written'] - $before, 'last_error: ' . $s['last_error']);
        return $s;
    }

    public function testNastyEventsAndTenThousandInOneSecondRoundTrip(): void
    {
        $url = self::need('TSDB_TEST_INFLUX_URL');
        $db = self::dbname('tsdb_php');
        self::query($url, '', "CREATE DATABASE \"$db\"");
        tsdb_configure(['backend' => 'influxdb1', 'url' => $url, 'database' => $db, 'flush_interval_ms' => 50,
            'max_string_bytes' => 1048576, 'max_other_bytes' => 4194304]);
        $before = tsdb_stats();
        $events = self::nastyEvents(1700001000, 1000);
        foreach ($events as $e) {
            self::assertTrue(tsdb_log_event($e));
        }
        // 10 000 events in one course in one second.
        for ($i = 0; $i < 10000; $i++) {
            self::assertTrue(tsdb_log_event(['eventname' => '\\core\\event\\course_viewed', 'component' => 'core',
                'action' => 'viewed', 'target' => 'course', 'crud' => 'r', 'edulevel' => 2, 'contextlevel' => 50,
                'courseid' => 7, 'userid' => 100000 + $i, 'timecreated' => 1700002000, 'origin' => 'web',
                'ip' => '10.0.0.1', 'other' => null]));
        }
        $s = self::waitWritten(count($events) + 10000, $before['written']);
        self::assertSame(0, $s['failed'] - $before['failed']);
        self::assertSame(0, $s['rejected'] - $before['rejected']);
        self::assertGreaterThan($before['truncated'], $s['truncated'], 'cut and replaced values are counted');

        $nastyRows = self::rows(self::query($url, $db, 'SELECT * FROM moodle_events WHERE time < 1700002000000000000'));
        self::verify($nastyRows, $events);

        $where = "WHERE courseid = '7' AND eventname = '\\\\core\\\\event\\\\course_viewed'"
            . ' AND time >= 1700002000000000000 AND time < 1700002001000000000';
        $count = self::rows(self::query($url, $db, "SELECT count(userid) FROM moodle_events $where"));
        self::assertSame(10000, $count[0]['count']);
        $distinct = self::rows(self::query($url, $db, "SELECT count(distinct(userid)) FROM moodle_events $where"));
        self::assertSame(10000, $distinct[0]['count']);

        // Nothing injected: one measurement, only known tag keys.
        $m = self::rows(self::query($url, $db, 'SHOW MEASUREMENTS'));
        self::assertSame([['name' => 'moodle_events']], $m);
        foreach (self::rows(self::query($url, $db, 'SHOW TAG KEYS')) as $t) {
            self::assertContains($t['tagKey'], self::TAGS);
        }
        self::query($url, '', "DROP DATABASE \"$db\"");
    }

    public function testAuthOnRightAndWrongPassword(): void
    {
        $url = self::need('TSDB_TEST_INFLUX_AUTH_URL');
        $user = self::need('TSDB_TEST_INFLUX_USER');
        $pw = self::need('TSDB_TEST_INFLUX_PASSWORD');
        $db = self::dbname('tsdb_php_auth');
        self::query($url, '', "CREATE DATABASE \"$db\"", [$user, $pw]);

        tsdb_configure(['backend' => 'influxdb1', 'url' => $url, 'database' => $db, 'username' => $user,
            'password' => $pw, 'flush_interval_ms' => 50, 'max_string_bytes' => 1048576]);
        $before = tsdb_stats();
        $events = array_slice(self::nastyEvents(1700003000, 5000), 0, 30);
        foreach ($events as $e) {
            self::assertTrue(tsdb_log_event($e));
        }
        self::waitWritten(count($events), $before['written']);
        self::verify(self::rows(self::query($url, $db, 'SELECT * FROM moodle_events', [$user, $pw])), $events);

        // Wrong password: a configuration error in tsdb_stats(), never the password itself.
        $wrong = $pw . '-wrong';
        tsdb_configure(['backend' => 'influxdb1', 'url' => $url, 'database' => $db, 'username' => $user,
            'password' => $wrong, 'flush_interval_ms' => 50, 'retry_base_ms' => 10, 'retry_max_ms' => 100,
            'retry_max_elapsed_ms' => 500]);
        $before = tsdb_stats();
        self::assertTrue(tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700003100, 'userid' => 1]));
        $deadline = microtime(true) + 60;
        while (tsdb_flush(5000) > 0 && microtime(true) < $deadline) {
        }
        $s = tsdb_stats();
        self::assertSame(1, $s['failed'] - $before['failed']);
        self::assertSame(0, $s['written'] - $before['written']);
        self::assertStringContainsString('username/password', $s['last_error']);
        self::assertStringNotContainsString($wrong, $s['last_error']);
        self::assertStringNotContainsString($pw, json_encode(tsdb_stats()));
        self::query($url, '', "DROP DATABASE \"$db\"", [$user, $pw]);
    }
}
