<?php
// The PostgreSQL backend through the PHP extension, against a real PostgreSQL (tests/servers/postgres.sh):
// events logged with tsdb_log_event() are read back with pg_query() and compared column by column.
//
// Run: php -d extension=target/release/libtsdb.so /usr/bin/phpunit tests/integration/postgres
// Without TSDB_TEST_PG_* the tests are skipped (loudly), unless TSDB_TEST_REQUIRE_SERVERS=1.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/../../../php/tests/helpers.php';

final class PostgresTest extends TestCase {
    private const TEXT = ['eventname' => 255, 'component' => 100, 'action' => 100, 'target' => 100,
        'objecttable' => 50, 'crud' => 1, 'origin' => 10, 'ip' => 45];
    private const INTS = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid',
        'courseid', 'relateduserid', 'anonymous', 'timecreated', 'realuserid'];

    /** @var array<string,string> */
    private array $pg = [];
    /** @var resource|\PgSql\Connection */
    private $db;

    protected function setUp(): void {
        $need = ['HOST', 'PORT', 'USER', 'PASSWORD', 'DB'];
        foreach ($need as $k) {
            $v = getenv("TSDB_TEST_PG_$k");
            if ($v === false || $v === '') {
                $msg = "SKIPPED: PostgreSQL not configured (TSDB_TEST_PG_$k unset; source tests/servers/postgres.sh)";
                if (getenv('TSDB_TEST_REQUIRE_SERVERS') === '1') {
                    $this->fail($msg);
                }
                fwrite(STDERR, "$msg\n");
                $this->markTestSkipped($msg);
            }
            $this->pg[strtolower($k)] = $v;
        }
        if (!function_exists('tsdb_configure')) {
            $this->fail('the tsdb extension is not loaded (php -d extension=target/release/libtsdb.so ...)');
        }
        if (!function_exists('pg_connect')) {
            $this->fail('php-pgsql is not installed');
        }
        $this->db = pg_connect(sprintf("host=%s port=%s dbname=%s user=%s password=%s",
            $this->pg['host'], $this->pg['port'], $this->pg['db'], $this->pg['user'], $this->pg['password']));
        $this->assertNotFalse($this->db);
        mb_substitute_character(0xFFFD);
    }

    private function schema(string $name): string {
        $schema = "it_php_$name";
        tsdb_test_pg_stop_jobs($this->db, $schema);
        tsdb_test_pg_ddl($this->db, "DROP SCHEMA IF EXISTS \"$schema\" CASCADE");
        return $schema;
    }

    private function configure(string $schema, array $extra = []): void {
        tsdb_configure(array_merge([
            'backend' => 'postgres',
            'host' => $this->pg['host'],
            'port' => $this->pg['port'],
            'dbname' => $this->pg['db'],
            'user' => $this->pg['user'],
            'password' => $this->pg['password'],
            'schema' => $schema,
            'flush_interval_ms' => 50,
            'mode' => 'async',
            'max_other_bytes' => 4 << 20,
        ], $extra));
    }

    private static function event(int $i, array $overrides = []): array {
        return tsdb_test_event($i, array_merge(['other' => ['i' => $i], 'timecreated' => time() - 3600 + intdiv($i, 10)], $overrides));
    }

    /** What PostgreSQL text holds for a PHP string (docs/postgres.md, "What happens to odd values"). */
    private static function text(string $v, int $max): string {
        return mb_substr(str_replace("\0", "\u{FFFD}", mb_scrub($v, 'UTF-8')), 0, $max, 'UTF-8');
    }

    /** `other` as jsonb gives it back, decoded: NUL (\u0000) becomes U+FFFD, invalid UTF-8 U+FFFD. */
    private static function other($v) {
        if (is_string($v)) {
            return mb_scrub(str_replace("\0", "\u{FFFD}", $v), 'UTF-8');
        }
        if (is_array($v)) {
            $out = [];
            foreach ($v as $k => $x) {
                $out[is_string($k) ? self::other($k) : $k] = self::other($x);
            }
            return $out;
        }
        return $v;
    }

    private function rows(string $schema): array {
        $r = pg_query($this->db, "SELECT producer || ':' || seq AS event_key, id, eventname, component, action, target,
            objecttable, objectid, crud, edulevel, contextid, contextlevel, contextinstanceid, userid, courseid,
            relateduserid, anonymous, other::text AS other, timecreated, origin, ip, realuserid,
            extract(epoch FROM \"time\")::float8 AS t
            FROM \"$schema\".logstore_tsdb_log ORDER BY producer, seq");
        $this->assertNotFalse($r);
        return pg_fetch_all($r) ?: [];
    }

    public function test_nasty_events_are_read_back_column_by_column(): void {
        $schema = $this->schema('nasty');
        $this->configure($schema);
        $before = tsdb_stats();   // counters are per process: compare differences
        $nasty = ["quote\"s 'single'", "back\\slash\\ \\N \\.", "new\nline\r\ntab\t", "nul\0byte", "\0",
            "bad \xff utf8 \xc3", "ünïcødé 😀 中文 \u{202e}", "", "'; DROP TABLE mdl_user; --",
            str_repeat('é', 300), "%s {0} \$1"];
        $sent = [];
        $n = 240;
        for ($i = 0; $i < $n; $i++) {
            $s = $nasty[$i % count($nasty)];
            $e = self::event($i, [
                'component' => 'mod_forum' . $s,
                'action' => $s,
                'target' => $s === '' ? 'post' : $s,
                'objecttable' => $i % 2 ? 'forum_posts' : $s,
                'objectid' => (string)(5000 + $i),
                'crud' => ['c', 'r', 'u', 'd'][$i % 4],
                'edulevel' => $i % 3,
                'relateduserid' => $i % 3 ? null : 42,
                'realuserid' => $i % 5 ? null : 2,
                'anonymous' => $i % 2,
                'courseid' => $i % 9 ? PHP_INT_MAX - $i : -1,
                'other' => $i % 4 === 0 ? null : ['subject' => $s, 'nested' => ['a' => [1, 2.5, true, null], 'k' => $s], 7 => 'int key'],
                'origin' => ['web', 'cli', 'ws', 'restore'][$i % 4],
                'ip' => $i % 6 ? '2001:db8::' . dechex($i) : $s,
            ]);
            $this->assertTrue(tsdb_log_event($e));
            $sent[] = $e;
        }
        // One event with a 1 MiB `other`.
        $big = self::event($n, ['other' => ['blob' => str_repeat("x\"\\é", 1 << 18)]]);
        $this->assertTrue(tsdb_log_event($big));
        $sent[] = $big;
        $n++;
        $this->assertSame(0, tsdb_flush(30000), json_encode(tsdb_stats()));
        $stats = tsdb_stats();
        $this->assertSame($before['written'] + $n, $stats['written'], $stats['last_error']);
        $this->assertSame($before['rejected'], $stats['rejected']);
        $this->assertSame($before['failed'], $stats['failed']);

        $rows = $this->rows($schema);
        $this->assertCount($n, $rows);
        $this->assertCount($n, array_unique(array_column($rows, 'event_key')));
        // One producer per process, seq in logging order: ORDER BY producer, seq is logging order.
        foreach ($sent as $i => $e) {
            $row = $rows[$i];
            foreach (self::TEXT as $col => $max) {
                $want = $e[$col] === null ? null : self::text((string)$e[$col], $max);
                $this->assertSame($want, $row[$col], "event $i column $col");
            }
            foreach (self::INTS as $col) {
                $want = ($e[$col] === null || $e[$col] === '') ? null : (string)(int)$e[$col];
                $this->assertSame($want, $row[$col], "event $i column $col");
            }
            $want = $e['other'] === null ? null : self::other($e['other']);
            $got = $row['other'] === null ? null : json_decode($row['other'], true, 512, JSON_THROW_ON_ERROR);
            $this->assertEquals($want, $got, "event $i other");
            $this->assertSame((int)$e['timecreated'], (int)floor((float)$row['t']), "event $i time within its second");
            $this->assertGreaterThan(0, (int)$row['id']);
        }
    }

    public function test_a_wrong_password_is_reported_without_the_password(): void {
        $schema = $this->schema('auth');
        $secret = 'Wr0ng-' . bin2hex(random_bytes(6));
        $this->configure($schema, ['password' => $secret, 'retry_base_ms' => 10, 'retry_max_ms' => 50,
            'retry_max_elapsed_ms' => 300]);
        $before = tsdb_stats();   // counters are per process: compare differences
        $this->assertTrue(tsdb_log_event(self::event(1)));
        tsdb_flush(5000);
        $stats = tsdb_stats();
        $this->assertSame($before['written'], $stats['written']);
        $this->assertStringContainsString('password', $stats['last_error']);
        $this->assertStringNotContainsString($secret, $stats['last_error']);
        $this->assertStringNotContainsString($secret, print_r($stats, true));
        $r = pg_query($this->db, "SELECT to_regclass('\"$schema\".logstore_tsdb_log') IS NULL AS missing");
        $this->assertSame('t', pg_fetch_result($r, 0, 0));
    }
}
