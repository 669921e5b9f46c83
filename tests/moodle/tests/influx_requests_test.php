<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * What the plugin and the extension send to InfluxDB 1.x, 2.x and 3.x, from a real Moodle site (arg_separator.output
 * is "&amp;" here, as Moodle's lib/setup.php sets it), recorded by fixtures/influx_capture.php: paths, parameters,
 * credentials; and what an InfluxDB that answers 400, 401, 404 or nothing makes the plugin say (the server's own
 * error, the URL, the setting to check; never the token or password), in the reader, in Test connection and in a
 * privacy deletion. No InfluxDB 2 or 3 server exists on the build machines: the listener stands in for them.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/influx_capture.php');

use logstore_tsdb\local\connection_tester;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\reader\influx_reader;

/**
 * Request shapes and failures.
 */
class influx_requests_test extends base_testcase {
    use influx_capture;

    /**
     * Stops the listeners.
     */
    protected function tearDown(): void {
        parent::tearDown();
        $this->stop_captures();
    }

    /**
     * The store's reader on the current configuration.
     *
     * @return \logstore_tsdb\log\store
     */
    protected function store(): \logstore_tsdb\log\store {
        return get_log_manager()->get_readers()['logstore_tsdb'];
    }

    /**
     * InfluxDB 2.x: the plugin's queries go to /query with the bucket as db and the token header; its deletes to
     * /api/v2/delete with org and bucket; the extension's writes to /api/v2/write with the same org, bucket and token.
     */
    public function test_v2_request_shapes(): void {
        $this->assertSame('&amp;', ini_get('arg_separator.output'));
        $cap = $this->start_capture('influxdb2');
        $this->configure(['backend' => 'influxdb2', 'url' => $cap['url'], 'org' => 'my org', 'bucket' => 'b/1&x',
            'token' => 'tok-secret-2', 'retry_max_elapsed_ms' => 2000]);
        $this->assertSame(0, $this->store()->get_events_select_count('courseid = :c', ['c' => 3]));
        $queries = $this->captured($cap, '/query');
        $this->assertCount(2, $queries, 'SHOW TAG KEYS and SHOW FIELD KEYS in one request, the count');
        foreach ($queries as $r) {
            $this->assertSame('GET', $r['method']);
            $this->assertStringNotContainsString('&amp;', $r['uri']);
            $this->assertSame('b/1&x', $r['params']['db']);
            $this->assertSame('ns', $r['params']['epoch']);
            $this->assertSame('Token tok-secret-2', $r['authorization']);
        }
        $this->assertSame(['db', 'q', 'epoch'], array_keys($queries[0]['params']));
        $this->assertSame('SHOW TAG KEYS FROM "moodle_events"; SHOW FIELD KEYS FROM "moodle_events"', $queries[0]['params']['q']);
        $this->assertSame('SELECT count("anonymous") FROM "moodle_events" WHERE "courseid" = \'3\'', $queries[1]['params']['q']);

        (new influx_client(\logstore_tsdb\log\store::read_plugin_config()))->delete_where_tags(['contextid' => 'c"5']);
        $deletes = $this->captured($cap, '/api/v2/delete');
        $this->assertCount(1, $deletes);
        $this->assertSame('POST', $deletes[0]['method']);
        $this->assertSame(['org' => 'my org', 'bucket' => 'b/1&x'], $deletes[0]['params']);
        $this->assertSame('Token tok-secret-2', $deletes[0]['authorization']);
        $this->assertSame('application/json', $deletes[0]['contenttype']);
        $this->assertSame(['start' => '1970-01-01T00:00:00Z', 'stop' => '2262-04-11T00:00:00Z',
            'predicate' => '_measurement="moodle_events" AND contextid="c\\"5"'], json_decode($deletes[0]['body'], true));

        // The extension writes to the same server with the same org, bucket and token.
        \core\event\course_viewed::create(['context' => context_course::instance(SITEID)])->trigger();
        $this->new_request();
        $this->assertSame(0, tsdb_flush(10000));
        $writes = $this->captured($cap, '/api/v2/write');
        $this->assertCount(1, $writes, 'one batch: ' . tsdb_stats()['last_error']);
        $this->assertSame(['org' => 'my org', 'bucket' => 'b/1&x', 'precision' => 'ns'], $writes[0]['params']);
        $this->assertSame('Token tok-secret-2', $writes[0]['authorization']);
        $this->assertStringStartsWith('moodle_events,', $writes[0]['body']);
    }

    /**
     * InfluxDB 3.x: /query with the database and the token; no point deletes (refused before any request).
     */
    public function test_v3_request_shapes(): void {
        $cap = $this->start_capture('influxdb3');
        $this->configure(['backend' => 'influxdb3', 'url' => $cap['url'], 'database' => 'db 3', 'bucket' => 'unused',
            'token' => 'apiv3_tok-secret']);
        $this->assertFalse($this->store()->get_events_select_exists('userid = :u', ['u' => 0]));
        $queries = $this->captured($cap, '/query');
        // SHOW TAG KEYS and FIELD KEYS, then a point looked for newest first in every window of the reader (the server
        // has none), the last one open to the beginning.
        $this->assertCount(2 + influx_reader::WINDOWS, $queries);
        $this->assertSame('SELECT "anonymous" FROM "moodle_events" WHERE "userid" = 0 AND time >= '
            . self::window_start($queries[1]['params']['q']) . ' ORDER BY time DESC LIMIT 1', $queries[1]['params']['q']);
        $this->assertMatchesRegularExpression('/^SELECT "anonymous" FROM "moodle_events" WHERE "userid" = 0 AND time < \d+ '
            . 'ORDER BY time DESC LIMIT 1$/', $queries[count($queries) - 1]['params']['q']);
        foreach ($queries as $r) {
            $this->assertSame('db 3', $r['params']['db']);
            $this->assertSame('Token apiv3_tok-secret', $r['authorization']);
            $this->assertArrayNotHasKey('rp', $r['params']);
        }
        try {
            (new influx_client(\logstore_tsdb\log\store::read_plugin_config()))->delete_where_tags(['contextid' => 5]);
            $this->fail('InfluxDB 3 deleted points');
        } catch (moodle_exception $e) {
            $this->assertSame('influxdeleteunsupported', $e->errorcode);
        }
        $this->assertCount(2 + influx_reader::WINDOWS, $this->captured($cap, ''), 'no request for the refused delete');
    }

    /**
     * InfluxDB 1.x with a user: HTTP Basic like the extension, never u/p in a URL or body; the retention policy;
     * statements that change data are POSTed as a form.
     */
    public function test_v1_request_shapes(): void {
        $cap = $this->start_capture('influxdb1');
        $this->configure(['backend' => 'influxdb1', 'url' => $cap['url'], 'database' => 'moodle', 'retention_policy' => 'one year',
            'username' => 'reader', 'password' => 'pa:ss wörd']);
        $this->store()->get_events_select('', [], 'timecreated DESC', 0, 10);
        $client = new influx_client(\logstore_tsdb\log\store::read_plugin_config());
        $client->delete_where_tags(['courseid' => 7]);
        $all = $this->captured($cap, '/query');
        $this->assertCount(3 + influx_reader::WINDOWS, $all, 'SHOW..., the page in every window (the server has no point), '
            . 'the delete');
        $basic = 'Basic ' . base64_encode('reader:pa:ss wörd');
        foreach ($all as $r) {
            $this->assertSame($basic, $r['authorization']);
            $this->assertArrayNotHasKey('u', $r['params'] + $r['form']);
            $this->assertArrayNotHasKey('p', $r['params'] + $r['form']);
            $this->assertStringNotContainsString('ss w', $r['uri'] . $r['body']);
        }
        $this->assertSame(['db' => 'moodle', 'q' => 'SHOW TAG KEYS FROM "moodle_events"; SHOW FIELD KEYS FROM "moodle_events"; '
            . 'SHOW RETENTION POLICIES ON "moodle"', 'epoch' => 'ns', 'rp' => 'one year'], $all[0]['params']);
        // The newest window: from the start of the 7-day shard group of now (Mondays, as InfluxDB aligns them).
        $start = self::window_start($all[1]['params']['q']);
        $this->assertSame('1', gmdate('N', intdiv($start, 1000000000)));
        $this->assertLessThanOrEqual(time(), intdiv($start, 1000000000));
        $this->assertGreaterThan(time() - 7 * 86400, intdiv($start, 1000000000));
        // The page is found with one field and the tags (none on this server), then read series by series.
        $this->assertSame(['db' => 'moodle', 'q' => "SELECT \"anonymous\" FROM \"moodle_events\" WHERE time >= $start ORDER BY time DESC LIMIT 10",
            'epoch' => 'ns', 'rp' => 'one year'], $all[1]['params']);
        $delete = $all[count($all) - 1];
        $this->assertSame('POST', $delete['method']);
        $this->assertSame([], $delete['params']);
        $this->assertSame('application/x-www-form-urlencoded', $delete['contenttype']);
        $this->assertSame('DELETE FROM "moodle_events" WHERE "courseid" = \'7\'', $delete['form']['q']);
        $this->assertSame('moodle', $delete['form']['db']);
    }

    /**
     * The start (ns) of the first window of a page query.
     *
     * @param string $q
     * @return int
     */
    protected static function window_start(string $q): int {
        if (!preg_match('/time (?:>=|<) (-?\d+)/', $q, $m)) {
            throw new \coding_exception("no window in $q");
        }
        return (int) $m[1];
    }

    /**
     * Each failure, from the reader (the Logs report's first call) and from Test connection's read-back, names the
     * server's own error and the settings to check, and shows no secret even when the server echoes it.
     */
    public function test_failures_name_the_error_and_the_setting(): void {
        $cases = [
            '400, 1.x' => ['influxdb1', 400, 'Bad Request', '{"error":"error parsing query: found EOF, expected FROM"}',
                'answered 400 Bad Request: error parsing query: found EOF, expected FROM',
                'Database (1.x, 3.x) (logstore_tsdb | database)'],
            '401, 1.x' => ['influxdb1', 401, 'Unauthorized', '{"error":"authorization failed for pw-secret-1"}',
                'answered 401 Unauthorized: authorization failed for ********',
                'User name (1.x) (logstore_tsdb | username), Password (logstore_tsdb | password)'],
            '401, 2.x' => ['influxdb2', 401, 'Unauthorized', '{"code":"unauthorized","message":"unauthorized access tok-secret-1"}',
                'answered 401 Unauthorized: unauthorized access ********', 'API token (2.x, 3.x) (logstore_tsdb | token)'],
            '404, 2.x' => ['influxdb2', 404, 'Not Found', '{"code":"not found","message":"bucket \"moodle\" not found"}',
                'answered 404 Not Found: bucket "moodle" not found',
                'InfluxDB URL (logstore_tsdb | url), Organisation (2.x) (logstore_tsdb | org), Bucket (2.x) (logstore_tsdb | bucket)'],
            '404, 3.x, not InfluxDB' => ['influxdb3', 404, '', "<html><body>404 page not found</body></html>",
                'answered 404 Not Found: 404 page not found', 'InfluxDB URL (logstore_tsdb | url), Database (1.x, 3.x)'],
        ];
        foreach ($cases as $name => [$backend, $status, $reason, $body, $said, $check]) {
            $cap = $this->start_capture($backend, ['CAPTURE_STATUS' => $status, 'CAPTURE_REASON' => $reason,
                'CAPTURE_BODY' => $body]);
            $this->configure(['backend' => $backend, 'url' => $cap['url'], 'org' => 'o', 'username' => 'u',
                'password' => 'pw-secret-1', 'token' => 'tok-secret-1']);
            $messages = [];
            try {
                $this->store()->get_events_select_count('', []);
                $this->fail("$name: the reader did not fail");
            } catch (moodle_exception $e) {
                $this->assertSame('influxerror', $e->errorcode, $name);
                $messages['reader'] = $e->getMessage() . ' ' . $e->debuginfo;
            }
            try {
                connection_tester::read_back(\logstore_tsdb\log\store::read_plugin_config(), 'marker');
                $this->fail("$name: Test connection's read-back did not fail");
            } catch (moodle_exception $e) {
                $messages['test connection'] = $e->getMessage() . ' ' . $e->debuginfo;
            }
            foreach ($messages as $where => $message) {
                $this->assertStringContainsString("InfluxDB at {$cap['url']} $said — check $check", $message, "$name, $where");
                $this->assertStringNotContainsString('secret-1', $message, "$name, $where");
            }
            $this->stop_captures();
        }
    }

    /**
     * A count InfluxDB takes longer than the reader's budget for (it reads every matching point: on a year of a large
     * site, a count no course or date narrows takes minutes) is refused with readertooslow when the budget runs out, not
     * after the request timeout; the page's rows are still read.
     */
    public function test_a_slow_count_is_refused(): void {
        $cap = $this->start_capture('influxdb1', ['CAPTURE_SLOW' => 'count(', 'CAPTURE_SLOW_MS' => 5000]);
        $this->configure(['backend' => 'influxdb1', 'url' => $cap['url'], 'database' => 'moodle']);
        $this->store()->get_reader()->countbudgetms = 300;
        try {
            // Past the budget the listener would answer 0.
            $this->store()->get_events_select_count('userid = :u', ['u' => 5]);
            $this->fail('a slow count was answered');
        } catch (\logstore_tsdb\local\reader\unsupported_query $e) {
            $this->assertSame('readertooslow', $e->errorcode);
            $this->assertStringContainsString('gives up on this log query rather than keep the page waiting: counting these '
                . 'events took longer than 0.3 s', $e->getMessage());
        }
        $this->assertSame([], $this->store()->get_events_select('userid = :u', ['u' => 5], 'timecreated DESC', 0, 100));
    }

    /**
     * Nothing answers (a closed port): the URL, the timeouts and the web proxy are named.
     */
    public function test_no_answer(): void {
        $url = 'http://127.0.0.1:' . self::free_port();
        $this->configure(['backend' => 'influxdb1', 'url' => $url, 'connect_timeout_ms' => 1000]);
        try {
            $this->store()->get_events_select_count('', []);
            $this->fail('a closed port answered');
        } catch (moodle_exception $e) {
            $this->assertMatchesRegularExpression('~^InfluxDB at ' . preg_quote($url, '~') . ' did not answer: .*(refused|connect).* — '
                . 'check InfluxDB URL \(logstore_tsdb \| url\), Connect timeout \(ms\) \(logstore_tsdb \| connect_timeout_ms\), '
                . 'the web proxy~i', $e->getMessage());
        }
    }

    /**
     * Test connection against a server refusing the token: the extension's write fails and Test connection shows its
     * message, naming the token setting, without the token.
     */
    public function test_connection_test_reports_a_refused_write(): void {
        $cap = $this->start_capture('influxdb2', ['CAPTURE_STATUS' => 401, 'CAPTURE_BODY' =>
            '{"code":"unauthorized","message":"unauthorized access"}']);
        $this->configure(['backend' => 'influxdb2', 'url' => $cap['url'], 'org' => 'o', 'token' => 'tok-secret-9',
            'retry_max_elapsed_ms' => 1000, 'spool_dir' => '']);
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000);
        $this->assertFalse($result['ok']);
        $this->assertStringContainsString('token', $result['message']);
        $this->assertStringContainsString('unauthorized access', $result['message']);
        $this->assertStringNotContainsString('tok-secret-9', $result['message']);
    }
}
