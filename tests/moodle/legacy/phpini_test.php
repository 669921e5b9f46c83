<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Configuration source = php.ini: the extension is configured by tsdb.* directives (given with -d, as php.ini or a
 * PHP-FPM pool gives them), the plugin's own settings point somewhere else (a file sink, a table that does not exist,
 * a port nothing listens on). Every part of the plugin must use the sink the extension writes to: logging, the report
 * reader, the status page and its Test connection, privacy export and delete, and the retention and summary tasks.
 *
 * Each step is a PHP process of its own, like the requests and cron runs of a site.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/log_dataset.php');

/**
 * php.ini configuration source tests.
 */
class phpini_test extends base_testcase {

    /** @var int Events logged. */
    const N = 31;

    /** @var string|null The table of this test. */
    protected $table = null;

    /** @var string A secret only php.ini holds (the InfluxDB token, unused by the postgres backend). */
    protected $token;

    /** @var string The directory of status.php in this test's site tree. */
    protected $sitedir;

    /**
     * Drops the table.
     */
    protected function tearDown(): void {
        parent::tearDown();
        if ($this->table) {
            log_dataset::drop_tsdb_table($this->table);
        }
    }

    /**
     * The tsdb.* directives of the site's php.ini.
     *
     * @return array
     */
    protected function ini(): array {
        global $CFG;
        return ['tsdb.backend' => 'postgres', 'tsdb.host' => getenv('TSDB_TEST_PG_HOST'),
            'tsdb.port' => getenv('TSDB_TEST_PG_PORT') ?: '5432', 'tsdb.user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres',
            'tsdb.dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres', 'tsdb.password' => getenv('TSDB_TEST_PG_PASSWORD') ?: '',
            'tsdb.schema' => 'public', 'tsdb.table' => $this->table, 'tsdb.token' => $this->token,
            'tsdb.flush_interval_ms' => '50', 'tsdb.retention_days' => '30',
            'tsdb.spool_dir' => $CFG->dataroot . '/ini-spool'];
    }

    /**
     * Runs one request of the site: config.php (harness, plugin settings, contexts), then $code.
     *
     * @param string $code PHP code (without <?php); what it echoes is returned
     * @param array $get request parameters
     * @param string|null $file a file of the site to run instead of $code (status.php)
     * @return string stdout
     */
    protected function request(string $code, array $get = [], ?string $file = null): string {
        if ($file === null) {
            $file = $this->sitedir . '/step.php';
            file_put_contents($file, "<?php\nrequire(dirname(__DIR__, 6) . '/config.php');\n" . $code);
        }
        // The page's settings: every backend key points elsewhere.
        $decoy = ['configsource' => 'phpini', 'backend' => 'file', 'format' => 'json', 'path' => $this->sink,
            'host' => '127.0.0.1', 'port' => 1, 'table' => 'decoy_table', 'retention_days' => 0];
        [$rc, $out, $err] = $this->run_php_file($file, ['PAGE_CONFIG' => json_encode($decoy), 'PAGE_GET' => json_encode($get),
            'PAGE_USER' => '2', 'HARNESS_NO_INSTALL' => '1', 'HARNESS_MTRACE' => '1'], $this->ini());
        $this->assertSame(0, $rc, "stdout: $out\nstderr: $err");
        $this->assertSame('', trim($err), 'no warning or notice');
        return $out;
    }

    /**
     * The rows of the table, read directly: [userid, contextid, i] per event (the marker has i null).
     *
     * @return array[]
     */
    protected function table_rows(): array {
        global $DB;
        $rows = $DB->pdo()->query("SELECT userid, contextid, (other->>'i')::int AS i, eventname FROM public.\""
            . $this->table . "\" ORDER BY (other->>'i')::int NULLS LAST")->fetchAll(PDO::FETCH_ASSOC);
        return array_map(function($r) {
            return [(int) $r['userid'], (int) $r['contextid'], $r['i'] === null ? null : (int) $r['i'], $r['eventname']];
        }, $rows);
    }

    /**
     * Logging, report reader, status page and Test connection, privacy export and delete, retention and summary tasks:
     * all on the php.ini table; N in, N read back, every deletion seen in the table.
     */
    public function test_every_part_uses_the_phpini_configuration(): void {
        global $DB;
        if (!$DB) {
            $this->skip_without_server('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        $this->table = 'phpini_t' . getmypid() . '_' . bin2hex(random_bytes(4));
        $this->token = 'ini-token-' . bin2hex(random_bytes(12));
        // Contexts are made in the same order in every process: course 3 = 1, course 4 = 2, then the system context.
        $this->sitedir = $this->site_tree(true, "\$DB->execute('DELETE FROM {context}');\n"
            . "\$ctxa = context_course::instance(3);\n\$ctxb = context_course::instance(4);\n");

        // 1. A request that logs N events (users 5 and 6, courses 3 and 4); half-way the settings page's probe of
        // durable mode runs, which must leave the php.ini configuration in place.
        $out = $this->request(<<<'PHP'
$cfg = \logstore_tsdb\log\store::read_plugin_config();
$r = ['cfg' => [$cfg->backend, $cfg->table, (int) $cfg->port]];
for ($i = 1; $i <= 31; $i++) {
    harness::login($i % 2 ? 5 : 6);
    $ctx = $i % 3 ? $ctxa : $ctxb;
    \core\event\course_viewed::create(['context' => $ctx, 'courseid' => $ctx->instanceid, 'other' => ['i' => $i]])->trigger();
    if ($i === 15) {
        $r['durable'] = \logstore_tsdb\local\extension::supports_mode('durable');
    }
}
$r['pending'] = tsdb_flush(10000);
$stats = tsdb_stats();
$r['stats'] = [$stats['backend'], $stats['written'], $stats['failed']];
$r['logging'] = get_log_manager()->get_readers()['logstore_tsdb']->is_logging();
echo json_encode($r);
PHP
        );
        $r = json_decode($out, true);
        $this->assertSame(['postgres', $this->table, (int) (getenv('TSDB_TEST_PG_PORT') ?: 5432)], $r['cfg'],
            'read_plugin_config() is the php.ini configuration');
        $this->assertTrue($r['logging']);
        $this->assertTrue($r['durable'], 'durable mode is offered in php.ini mode');
        $this->assertSame(0, $r['pending']);
        $this->assertSame(['postgres', self::N, 0], $r['stats']);
        $expected = [];
        for ($i = 1; $i <= self::N; $i++) {
            $expected[] = [$i % 2 ? 5 : 6, $i % 3 ? 1 : 2, $i, '\\core\\event\\course_viewed'];
        }
        $this->assertSame($expected, $this->table_rows(), 'N events in the php.ini table');
        clearstatcache();
        $this->assertFileDoesNotExist($this->sink, 'nothing went to the page\'s file sink');

        // 2. Moodle's log report: the sql_reader answers from the same table.
        $out = $this->request(self::READER_STEP);
        $r = json_decode($out, true);
        $this->assertSame(count(array_filter($expected, function($e) {
            return $e[1] === 1;
        })), $r['count']);
        $this->assertSame(range(1, self::N, 2), $r['user5']);

        // 3. The status page: Test connection writes and reads back its marker in the same table; no secret shown.
        $html = $this->request('', ['action' => 'test', 'sesskey' => 'harnesssesskey'], $this->sitedir . '/status.php');
        $this->assertStringContainsString('alert-success', $html);
        $this->assertStringContainsString('Connection works', $html);
        $this->assertStringContainsString('<td>postgres</td>', $html, 'the backend the extension writes to');
        $this->assertStringNotContainsString($this->token, $html);
        if (getenv('TSDB_TEST_PG_PASSWORD')) {
            $this->assertStringNotContainsString(getenv('TSDB_TEST_PG_PASSWORD'), $html);
        }
        $rows = $this->table_rows();
        $this->assertCount(self::N + 1, $rows);
        $this->assertSame([0, 3, null, \logstore_tsdb\local\connection_tester::EVENTNAME], end($rows), 'the marker');

        // 4. Privacy: export user 5, delete user 5 in course 3, then everything in course 4.
        $out = $this->request(<<<'PHP'
use core_privacy\local\request\approved_contextlist;
use logstore_tsdb\privacy\provider;
provider::export_user_data(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb', [$ctxa->id, $ctxb->id]));
$path = ['Logs', 'Time series database log store'];
$r = [];
foreach (['a' => $ctxa, 'b' => $ctxb] as $k => $ctx) {
    $r['export'][$k] = array_map(function($l) {
        return $l['other']['i'];
    }, \core_privacy\local\request\writer::harness()->get_data_in($ctx, $path)->logs);
    sort($r['export'][$k]);
}
provider::delete_data_for_user(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb', [$ctxa->id]));
provider::delete_data_for_all_users_in_context($ctxb);
echo json_encode($r);
PHP
        );
        $r = json_decode($out, true);
        $five = array_filter($expected, function($e) {
            return $e[0] === 5;
        });
        $ids = function(array $rows, int $ctx): array {
            return array_values(array_column(array_filter($rows, function($e) use ($ctx) {
                return $e[1] === $ctx;
            }), 2));
        };
        $this->assertSame(['a' => $ids($five, 1), 'b' => $ids($five, 2)], $r['export']);
        $left = array_values(array_filter($expected, function($e) {
            return $e[1] === 1 && $e[0] === 6;
        }));
        $left[] = [0, 3, null, \logstore_tsdb\local\connection_tester::EVENTNAME];
        $this->assertSame($left, $this->table_rows(), 'the deletions happened in the php.ini table');

        // 5. Cron: retention (tsdb.retention_days) and the summary tables of the same table.
        $out = $this->request(<<<'PHP'
$r = ['retention' => (new \logstore_tsdb\task\retention())->execute()];
ob_start();
$r['summary'] = (new \logstore_tsdb\task\summarise())->execute() !== null;
ob_end_clean();
echo json_encode($r);
PHP
        );
        $this->assertStringContainsString('logstore_tsdb: deleted 0 events older than 30 days.', $out);
        $r = json_decode(substr($out, strrpos($out, "\n{") + 1), true);
        $this->assertSame(['retention' => 0, 'summary' => true], $r);
        $summed = (int) $DB->pdo()->query('SELECT sum(events) FROM public."' . $this->table . '_hourly"')->fetchColumn();
        $this->assertSame(count($left), $summed, 'the summary counts the rows of the php.ini table');
    }
}
