<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * A PHP-FPM pool that fixes tsdb.* values with php_admin_value, with Configuration source = this page: the extension
 * keeps the pool's values (tsdb_configure() cannot change them), so every part of the plugin must use them too.
 *
 * The pool is real (tests/fpm/fpm_pool.php): PHP marks its php_admin_value entries as not modifiable by the
 * application, which CLI's -d cannot do. The page's settings point elsewhere (a file sink, another table, another
 * retention); the pool fixes the backend, the connection and the table. N events are logged by one request and read
 * back by another through the report reader, from the pool's table; the status page shows the extension's warning.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/log_dataset.php');
require_once(__DIR__ . '/../../fpm/fpm_pool.php');

/**
 * php_admin_value tests.
 */
class fpm_admin_value_test extends base_testcase {

    /** @var int Events logged. */
    const N = 23;

    /** @var string|null The pool's table. */
    protected $table = null;

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
     * Logging, the report reader and the status page under a pool that fixes the backend, its connection and table.
     */
    public function test_values_fixed_by_the_pool_are_used_by_every_part(): void {
        global $DB, $CFG;
        if (!$DB) {
            $this->skip_without_server('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        if (trim((string) shell_exec('command -v cgi-fcgi')) === '') {
            $this->skip_without_server('SKIPPED: cgi-fcgi is not installed (Debian: libfcgi-bin)');
        }
        $this->table = 'fpm_t' . getmypid() . '_' . bin2hex(random_bytes(4));
        // The workers run as nobody when the tests run as root: they read the site tree and write in the dataroot.
        chmod(harness::$rundir, 0711);
        chmod($CFG->dataroot, 0777);
        $pooltsdb = ['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'),
            'port' => getenv('TSDB_TEST_PG_PORT') ?: '5432', 'user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres',
            'dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres', 'table' => $this->table, 'flush_interval_ms' => '50',
            'spool_dir' => $CFG->dataroot . '/pool-spool'];
        if (getenv('TSDB_TEST_PG_PASSWORD')) {
            $pooltsdb['password'] = getenv('TSDB_TEST_PG_PASSWORD');
        }
        $sitedir = $this->site_tree(true, "\$DB->execute('DELETE FROM {context}');\n\$ctx = context_course::instance(3);\n");
        // The page's settings: the backend keys point elsewhere; retention_days is the page's (the master's -d value
        // below is a default the page overrides).
        $page = ['configsource' => 'plugin', 'backend' => 'file', 'format' => 'json', 'path' => $this->sink,
            'table' => 'decoy_table', 'retention_days' => 30];
        $env = array_filter(['PAGE_CONFIG' => json_encode($page), 'PAGE_USER' => '2', 'HARNESS_NO_INSTALL' => '1',
            'HARNESS_DATAROOT' => $CFG->dataroot, 'TSDB_TEST_PG_HOST' => getenv('TSDB_TEST_PG_HOST'),
            'TSDB_TEST_PG_PORT' => getenv('TSDB_TEST_PG_PORT'), 'TSDB_TEST_PG_USER' => getenv('TSDB_TEST_PG_USER'),
            'TSDB_TEST_PG_DB' => getenv('TSDB_TEST_PG_DB'), 'TSDB_TEST_PG_PASSWORD' => getenv('TSDB_TEST_PG_PASSWORD')],
            'strlen');
        $envfile = $CFG->dataroot . '/env.json';
        file_put_contents($envfile, json_encode($env));
        $request = function(tsdb_test_fpm_pool $pool, string $file) use ($envfile): string {
            // An absolute path without `..`: FPM refuses one with it.
            return $pool->get(realpath(__DIR__ . '/../fixtures/fpm_site_page.php'),
                http_build_query(['env' => $envfile, 'file' => $file]));
        };
        $step = function(string $name, string $code) use ($sitedir): string {
            file_put_contents("$sitedir/$name.php", "<?php\nrequire(dirname(__DIR__, 6) . '/config.php');\n" . $code);
            return "$sitedir/$name.php";
        };
        $log = $step('log', <<<'PHP'
$cfg = \logstore_tsdb\log\store::read_plugin_config();
$r = ['cfg' => [$cfg->backend, $cfg->table, (int) $cfg->retention_days], 'fixed' => array_keys($cfg->pagevalues ?? [])];
for ($i = 1; $i <= 23; $i++) {
    harness::login($i % 2 ? 5 : 6);
    \core\event\course_viewed::create(['context' => $ctx, 'courseid' => 3, 'other' => ['i' => $i]])->trigger();
}
$r['pending'] = tsdb_flush(10000);
$stats = tsdb_stats();
$r['stats'] = [$stats['backend'], $stats['written'], $stats['failed'], $stats['last_error']];
$r['warning'] = $stats['warning'];
echo json_encode($r);
PHP
        );
        $read = $step('read', self::READER_STEP);
        $pool = new tsdb_test_fpm_pool($CFG->dataroot, $pooltsdb, 1000, 1,
            ['extension=pdo', 'extension=pdo_pgsql', 'tsdb.retention_days=7']);
        try {
            $logged = $request($pool, $log);
            $readback = $request($pool, $read);
            $html = $request($pool, "$sitedir/status.php");
        } finally {
            $pool->stop_gracefully();
        }
        $fpmout = (string) @file_get_contents($CFG->dataroot . '/fpm.out');
        $r = json_decode($logged, true);
        $this->assertIsArray($r, "log request: $logged\n$fpmout");
        $this->assertSame(['postgres', $this->table, 30], $r['cfg'], 'the pool\'s backend and table, the page\'s retention');
        $fixed = array_keys($pooltsdb);
        sort($fixed);
        sort($r['fixed']);
        $this->assertSame($fixed, $r['fixed'], 'exactly the keys of php_admin_value');
        $this->assertSame(0, $r['pending']);
        $this->assertSame(['postgres', self::N, 0, ''], $r['stats']);
        $this->assertStringContainsString('backend: fixed by the server (php_admin_value[tsdb.backend]); the value given '
            . 'to tsdb_configure() is not used', $r['warning']);
        $this->assertStringContainsString('table: fixed by the server (php_admin_value[tsdb.table])', $r['warning']);
        $this->assertStringNotContainsString('host: fixed', $r['warning'], 'the page asked for the same host');

        // N in, N in the pool's table, N read back through the reader by another request.
        $rows = $DB->pdo()->query("SELECT userid, (other->>'i')::int AS i FROM public.\"" . $this->table
            . "\" ORDER BY (other->>'i')::int")->fetchAll(PDO::FETCH_NUM);
        $expected = [];
        for ($i = 1; $i <= self::N; $i++) {
            $expected[] = [$i % 2 ? 5 : 6, $i];
        }
        $this->assertSame($expected, array_map(function($row) {
            return array_map('intval', $row);
        }, $rows));
        $this->assertSame(['count' => self::N, 'user5' => range(1, self::N, 2)], json_decode($readback, true),
            "read request: $readback");
        clearstatcache();
        $this->assertFileDoesNotExist($this->sink, 'nothing went to the page\'s file sink');

        // The status page shows the extension's warning, escaped.
        $this->assertStringContainsString('alert-warning', $html, $html);
        $this->assertStringContainsString('The tsdb extension warns: backend: fixed by the server '
            . '(php_admin_value[tsdb.backend]); the value given to tsdb_configure() is not used', $html);
        $this->assertStringContainsString('<td>postgres</td>', $html, 'the backend the extension writes to');
    }
}
