<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The status page (status.php) and the System status check over HTTP, as the site's administrator sees them: served by
 * the site's nginx and PHP-FPM pool with the extension, at DEBUG_DEVELOPER, without any PHP notice on the page or in
 * the pool's log; Test connection writes and reads back its marker; only administrators get in, and the test only
 * with the session key; the extension's warning is shown escaped and never the secret.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

/**
 * Status page tests.
 */
class status_page_test extends base_testcase {
    use tsdb_test_ops;

    /**
     * Notes where the site's PHP-FPM log ends.
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $this->mark_fpm_log();
        // No chart minutes from earlier tests (the processes' own reports stay: they count growth from there).
        $DB->delete_records('logstore_tsdb_metrics');
    }

    /**
     * Drops the PostgreSQL and TimescaleDB tables of the test.
     */
    protected function tearDown(): void {
        parent::tearDown();
        $this->drop_pg_tables();
        foreach ($this->tstables as $table) {
            $pdo = self::timescale();
            self::stop_jobs($pdo, 'public', $table);
            foreach ($pdo->query("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    . " WHERE n.nspname = 'public' AND c.relname LIKE " . $pdo->quote($table . '%')
                    . " AND c.relkind IN ('r', 'p', 'v') ORDER BY c.relkind = 'v' DESC")->fetchAll() as $r) {
                self::drop_retrying($pdo, ($r['relkind'] === 'v' ? 'DROP MATERIALIZED VIEW IF EXISTS' : 'DROP TABLE IF EXISTS')
                    . ' public."' . $r['relname'] . '" CASCADE');
            }
        }
    }

    /** @var string[] TimescaleDB tables of this test */
    protected $tstables = [];

    /**
     * The value of a row of the status page's figures.
     *
     * @param string $html the page
     * @param string $label the row's label
     * @return string|null its value as text, null without such a row
     */
    public static function status_row(string $html, string $label): ?string {
        if (!preg_match('~<th[^>]*scope="row"[^>]*>' . preg_quote($label, '~') . '</th>\s*<td[^>]*>(.*?)</td>~s', $html, $m)) {
            return null;
        }
        return trim(html_entity_decode(strip_tags($m[1]), ENT_QUOTES));
    }

    /**
     * The status page's path from the web root (the plugin's folder in this site).
     *
     * @return string
     */
    public static function status_path(): string {
        $info = tsdb_test_site::$info;
        return substr($info->plugindir, strlen($info->webroot)) . '/status.php';
    }

    /**
     * The page as the logged-in admin: status, extension, counters, chart, the test button with the session key.
     */
    public function test_page_for_admin(): void {
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'status page');
        $this->assertStringContainsString('<h2>Time series database log store status</h2>', $html);
        // The verdict first, with its reason.
        $this->assertMatchesRegularExpression('~<h2>Time series database log store status</h2><div class="logstore-tsdb-verdict'
            . '[^"]*"><span class="badge[^"]*">OK</span> <span>The tsdb extension ' . preg_quote(tsdb_version(), '~')
            . ' is loaded and configured.</span></div>~', $html);
        $this->assertSame(tsdb_version(), self::status_row($html, 'Extension version'));
        $this->assertSame(get_string('backend_file', 'logstore_tsdb'), self::status_row($html, 'Backend'), 'the page\'s');
        $this->assertSame('async', self::status_row($html, 'Write mode'));
        $this->assertMatchesRegularExpression('~^\\d+ events written, 0 failed, 0 dropped$~', self::status_row($html, 'Last hour'));
        $this->assertSame('Empty or not used', self::status_row($html, 'Spool'));
        $this->assertMatchesRegularExpression('~^(Never|.+ \(.+ ago\))$~', self::status_row($html, 'Last successful write'));
        // The raw counters, with labels, collapsed, after the chart; Test connection before the figures.
        $this->assertMatchesRegularExpression('~<details class="logstore-tsdb-details[^"]*"><summary>Details: every counter'
            . '</summary>.*Events written.*Reporting processes.*</details>~s', $html);
        $this->assertStringNotContainsString('<td class="cell c0" style="">written</td>', $html, 'no raw counter name');
        $button = strpos($html, '>Test connection</button>');
        $this->assertNotFalse($button);
        $this->assertLessThan(strpos($html, 'Last successful write'), $button, 'Test connection on the first screen');
        $this->assertLessThan(strpos($html, '<details'), strpos($html, 'Events per minute'), 'the chart before the details');
        // Test connection: a POST form with the session key of this session.
        $this->assertMatchesRegularExpression('~<form method="post" action="[^"]*' . preg_quote(self::status_path(), '~')
            . '"\s*>\s*<input type="hidden" name="action" value="test">\s*<input type="hidden" name="sesskey" value="'
            . preg_quote(tsdb_test_http::sesskey($html), '~') . '">~', $html);
        // The chart: 60 minutes, written, failed and dropped.
        $this->assertMatchesRegularExpression('~var data = (\{"type":"line".*?\}),\n~', $html);
        preg_match('~var data = (\{"type":"line".*?\}),\n~', $html, $m);
        $chart = json_decode($m[1], true);
        $this->assertCount(60, $chart['labels']);
        $this->assertSame(['Written', 'Failed', 'Dropped'], array_column($chart['series'], 'label'));
        foreach ($chart['series'] as $series) {
            $this->assertCount(60, $series['values']);
        }
        $this->assert_fpm_log_clean();
    }

    /**
     * Test connection, through the page's own form: the marker is written by the web server's PHP into the sink and
     * read back, and the page says so.
     */
    public function test_test_connection(): void {
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $html = $http->post(self::status_path(), ['action' => 'test', 'sesskey' => tsdb_test_http::sesskey($html)]);
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'status page after Test connection');
        $this->assertMatchesRegularExpression('~alert-success.{0,400}Connection works~s', $html);
        $this->assertMatchesRegularExpression('~\((tsdb-test-[0-9a-f]{16})\)~', $html);
        preg_match('~\((tsdb-test-[0-9a-f]{16})\)~', $html, $m);
        $markers = [];
        foreach ($this->read_back() as $row) {
            $other = json_decode((string) $row['other'], true);
            if (isset($other['marker'])) {
                $markers[] = $other['marker'];
            }
        }
        $this->assertSame([$m[1]], $markers, 'the marker the page named, once, in the sink');
        $this->assert_fpm_log_clean();
    }

    /**
     * "N ago" and "the oldest N old" never read "now ago": Moodle's format_time() says "now" for 0 seconds, and a table
     * made again in the same second as the page was shown so (a CI run caught it).
     */
    public function test_an_age_is_never_now(): void {
        $this->assertSame(format_time(1), \logstore_tsdb\local\status::age(time()));
        $this->assertSame(format_time(1), \logstore_tsdb\local\status::age(time() + 5), 'a clock a little ahead');
        $this->assertContains(\logstore_tsdb\local\status::age(time() - 90), [format_time(90), format_time(91)]);
        $words = \logstore_tsdb\local\status::recreated_words(['at' => time(), 'message' => 'm']);
        $this->assertStringNotContainsString('now ago', get_string('check_schema_recreated', 'logstore_tsdb', $words));
    }

    /**
     * Events lost in the last hour make the verdict a warning that says how many, even while the health check (which
     * waits for several failing checks) is still quiet.
     */
    public function test_losses_in_the_last_hour_make_a_warning(): void {
        $GLOBALS['DB']->delete_records('logstore_tsdb_workers', ['hostname' => 'web-elsewhere']);
        \logstore_tsdb\local\metrics::record('web-elsewhere', 4242, ['accepted' => 9, 'written' => 5, 'failed' => 3,
            'dropped' => 1], time() - 600);
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~<div class="logstore-tsdb-verdict[^"]*"><span class="badge[^"]*">Warning</span>'
            . ' <span>Events were lost in the last hour: 3 failed, 1 dropped.</span></div>~', $html);
        // Written: these 5 and what the workers that served the login reported meanwhile.
        $this->assertMatchesRegularExpression('~^\\d+ events written, 3 failed, 1 dropped$~', self::status_row($html, 'Last hour'));
        $GLOBALS['DB']->delete_records('logstore_tsdb_workers', ['hostname' => 'web-elsewhere']);
    }

    /**
     * With the database stopped (nothing listens on its port) the events wait in the spool, and the verdict says that
     * the database is not taking them, how many files wait and the error; Test connection fails with the reason.
     */
    public function test_a_stopped_database_is_the_verdict(): void {
        $course = $this->gen()->create_course();
        $this->forget_events_so_far();
        $settings = $this->pg_settings('stopped');
        $this->configure(array_merge($settings, ['port' => tsdb_test_site_pool::free_port(), 'retry_max_elapsed_ms' => 0]));
        $this->set_user($this->gen()->create_user());
        \core\event\course_viewed::create(['context' => context_course::instance($course->id)])->trigger();
        $this->assertSame(0, tsdb_flush(30000));
        $this->assertGreaterThan(0, tsdb_stats()['spool_segments']);
        \cache::make('logstore_tsdb', 'workerreport')->purge();
        $this->assertTrue(\logstore_tsdb\local\metrics::report_if_due(), 'this process reports its error');
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~<div class="logstore-tsdb-verdict[^"]*"><span class="badge[^"]*">Warning</span>'
            . ' <span>The time series database is not taking events: \\d+ spool files wait, the oldest for [^.]+\\. They are'
            . ' written once it answers\\. Test connection says why\\.</span></div>~', $html);
        $this->assertMatchesRegularExpression('~^\\d+ files, .+, the oldest .+ old$~', self::status_row($html, 'Spool'));
        $html = $http->post(self::status_path(), ['action' => 'test', 'sesskey' => tsdb_test_http::sesskey($html)]);
        $this->assertMatchesRegularExpression('~alert-danger.{0,600}onnection refused~s', $html, 'Test connection says why');
        $this->assert_fpm_log_clean();
    }

    /**
     * On TimescaleDB the status page lists the policy jobs of the log table and of its continuous aggregates with
     * their last result, as TimescaleDB's scheduler reports them.
     */
    public function test_timescaledb_jobs_are_listed(): void {
        $settings = $this->timescale_settings('status_ts');
        $table = $settings['table'];
        $this->configure($settings);
        $course = $this->gen()->create_course();
        $this->set_user($this->gen()->create_user());
        $failed = tsdb_stats()['failed'];
        \core\event\course_viewed::create(['context' => context_course::instance($course->id)])->trigger();
        $this->assertSame(0, tsdb_flush(60000));
        $this->assertSame($failed, tsdb_stats()['failed'], tsdb_stats()['last_error']);
        $this->assertSame(1, (int) self::timescale()->query("SELECT count(*) FROM public.\"$table\""
            . " WHERE eventname = '\\core\\event\\course_viewed'")->fetchColumn(), 'the course view is in the hypertable');
        $pdo = self::timescale();
        $jobs = $pdo->query("SELECT j.job_id, j.proc_name, j.hypertable_name FROM timescaledb_information.jobs j"
            . " WHERE j.hypertable_name = " . $pdo->quote($table) . " OR j.hypertable_name IN (SELECT view_name"
            . " FROM timescaledb_information.continuous_aggregates WHERE hypertable_name = " . $pdo->quote($table) . ")")
            ->fetchAll(\PDO::FETCH_ASSOC);
        $procs = array_column($jobs, 'proc_name');
        $this->assertContains('policy_retention', $procs, 'the extension made a retention policy');
        $this->assertContains('policy_refresh_continuous_aggregate', $procs, 'and continuous aggregates');
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertStringContainsString('<h3>TimescaleDB policy jobs</h3>', $html);
        $this->assertMatchesRegularExpression('~<table[^>]*logstore-tsdb-jobs.*?</table>~s', $html);
        preg_match('~<table[^>]*logstore-tsdb-jobs.*?</table>~s', $html, $m);
        $this->assertSame(count($jobs), substr_count($m[0], '<tr') - 1, 'one row per job');
        foreach ($jobs as $job) {
            $this->assertMatchesRegularExpression('~<td[^>]*>' . $job['proc_name'] . '</td>\\s*<td[^>]*>' . $job['hypertable_name']
                . '</td>~', $m[0], 'each job and what it works on (an aggregate named by its view)');
        }
        $this->assertStringContainsString(">$table</td>", $m[0]);
        $this->assert_fpm_log_clean();
    }

    /**
     * The plugin's settings for a table of this test's own in the TimescaleDB database of the test servers.
     *
     * @param string $prefix start of the table name
     * @return array settings
     */
    protected function timescale_settings(string $prefix): array {
        $dsn = parse_url($this->server_env('TSDB_TEST_TIMESCALE_DSN'));
        $table = $prefix . '_' . getmypid() . '_' . bin2hex(random_bytes(3));
        $this->tstables[] = $table;
        return ['backend' => 'postgres', 'host' => $dsn['host'], 'port' => $dsn['port'], 'user' => urldecode($dsn['user']),
            'password' => urldecode($dsn['pass'] ?? ''), 'dbname' => ltrim($dsn['path'], '/'), 'table' => $table,
            'retention_days' => 30];
    }

    /**
     * The events table dropped under the sink (DROP TABLE ... CASCADE, as an administrator starting over does) while
     * N events wait in the spool (the database was unreachable): the next write makes the table again, the N and M
     * events logged afterwards are in it exactly once with their values, and the status page (verdict and figures),
     * System status's check, the health check and the site's counters say that the table was created again and why.
     */
    public function test_a_dropped_table_is_made_again_and_said(): void {
        $settings = $this->timescale_settings('status_drop') + ['retry_max_elapsed_ms' => 0, 'flush_interval_ms' => 50];
        $table = $settings['table'];
        $course = $this->gen()->create_course();
        $context = context_course::instance($course->id);
        $users = [];
        for ($i = 0; $i < 12; $i++) {
            $users[] = $this->gen()->create_user();
        }
        $this->forget_events_so_far();
        $this->configure($settings);
        $view = function(\stdClass $user) use ($context) {
            $this->set_user($user);
            \core\event\course_viewed::create(['context' => $context])->trigger();
            $this->set_user(null);
        };
        // Three events written: the table and the sink's record of it exist.
        foreach (array_slice($users, 0, 3) as $user) {
            $view($user);
        }
        $this->assertSame(0, tsdb_flush(60000));
        $pdo = self::timescale();
        $count = function() use ($pdo, $table): int {
            return (int) $pdo->query("SELECT count(*) FROM public.\"$table\"")->fetchColumn();
        };
        $this->assertSame(3, $count(), tsdb_stats()['last_error']);
        $recreated = tsdb_stats()['schema_recreated'];
        // N = 5 while nothing answers on the database's port: they wait in the spool.
        $this->configure(['port' => tsdb_test_site_pool::free_port()]);
        foreach (array_slice($users, 3, 5) as $user) {
            $view($user);
        }
        $this->assertSame(0, tsdb_flush(60000));
        $this->assertGreaterThan(0, tsdb_stats()['spool_segments'], 'the N events are in the spool');
        self::stop_jobs($pdo, 'public', $table);
        self::drop_retrying($pdo, "DROP TABLE public.\"$table\" CASCADE");
        // The database answers again; M = 4 more.
        $this->configure(['port' => $settings['port']]);
        foreach (array_slice($users, 8, 4) as $user) {
            $view($user);
        }
        $this->assertSame(0, tsdb_flush(60000));
        for ($i = 0; $i < 100 && tsdb_stats()['spool_segments'] > 0; $i++) {
            tsdb_replay_spool();
            usleep(100000);
        }
        $stats = tsdb_stats();
        $this->assertSame(0, $stats['spool_segments'], $stats['last_error']);
        $this->assertSame($recreated + 1, $stats['schema_recreated'], 'made again once: ' . $stats['schema_recreated_message']);
        $this->assertStringContainsString("\"$table\" was missing (dropped, or restored without it) and was created again",
            $stats['schema_recreated_message']);
        // N + M once each, with their values (the three written before went with the table).
        $ids = array_map(function($u) {
            return (int) $u->id;
        }, array_slice($users, 3));
        $rows = $pdo->query("SELECT userid, courseid, contextid, eventname, crud, edulevel FROM public.\"$table\" ORDER BY userid")
            ->fetchAll(\PDO::FETCH_ASSOC);
        $this->assertSame($ids, array_map('intval', array_column($rows, 'userid')), 'the N + M events once each');
        foreach ($rows as $row) {
            $this->assertSame([(string) $course->id, (string) $context->id, '\\core\\event\\course_viewed', 'r', '2'],
                [(string) $row['courseid'], (string) $row['contextid'], $row['eventname'], $row['crud'],
                (string) $row['edulevel']]);
        }

        // The site's counters carry it; the status page, System status and the health check say it.
        \cache::make('logstore_tsdb', 'workerreport')->purge();
        $this->assertTrue(\logstore_tsdb\local\metrics::report_if_due(), 'this process reports');
        $this->assertGreaterThanOrEqual(1, \logstore_tsdb\local\metrics::site_totals()['schema_recreated']);
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~<div class="logstore-tsdb-verdict[^"]*"><span class="badge[^"]*">Warning</span>'
            . ' <span>The events table was created again on [^<]+ \\(\\d+ secs? ago\\): it was missing[^<]+The extension says: '
            . '[^<]*' . preg_quote($table, '~') . '[^<]*was missing[^<]*</span></div>~', $html);
        $this->assertMatchesRegularExpression('~^.+ \\(\\d+ secs? ago\\): .*' . preg_quote($table, '~') . '.*created again~',
            self::status_row($html, 'Events table made again'));
        $this->assertMatchesRegularExpression('~<th[^>]*>Tables made again</th>\\s*<td[^>]*>[1-9]\\d*</td>~', $html,
            'the site-wide counter in the details');
        $out = $this->run_task('health_check');
        $this->assertMatchesRegularExpression('~failing check 1: the events table was missing and was created again on .+'
            . preg_quote($table, '~') . '~', $out);
        $this->assert_fpm_log_clean();
    }

    /**
     * A TimescaleDB policy job whose last run failed shows TimescaleDB's error for it (job_errors) on the status page.
     */
    public function test_a_failed_policy_job_shows_its_error(): void {
        $settings = $this->timescale_settings('status_jobfail');
        $table = $settings['table'];
        $this->configure($settings);
        $this->set_user($this->gen()->create_user());
        $failed = tsdb_stats()['failed'];
        \core\event\user_loggedin::create(['userid' => 2, 'objectid' => 2, 'other' => ['username' => 'admin']])->trigger();
        $this->assertSame(0, tsdb_flush(60000));
        $this->assertSame($failed, tsdb_stats()['failed'], tsdb_stats()['last_error']);
        $pdo = self::timescale();
        $job = (int) $pdo->query("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
            . ' AND hypertable_name = ' . $pdo->quote($table))->fetchColumn();
        $this->assertGreaterThan(0, $job, 'the retention policy of the table');
        // The job's configuration names another hypertable, which is then dropped: the job's next run fails.
        $gone = $table . '_gone';
        $pdo->exec("CREATE TABLE public.\"$gone\" (t timestamptz NOT NULL)");
        $pdo->exec("SELECT create_hypertable('public.\"$gone\"', 't')");
        $id = (int) $pdo->query('SELECT id FROM _timescaledb_catalog.hypertable WHERE table_name = ' . $pdo->quote($gone))
            ->fetchColumn();
        // (alter_job checks the configuration, so the next run is set with it, a little later than the drop.)
        $pdo->exec("SELECT alter_job($job, config => '{\"drop_after\": \"30 days\", \"hypertable_id\": $id}'::jsonb,"
            . " next_start => now() + interval '5 seconds')");
        self::drop_retrying($pdo, "DROP TABLE public.\"$gone\"");
        $error = null;
        for ($i = 0; $i < 300 && $error === null; $i++) {
            usleep(200000);
            $error = $pdo->query("SELECT e.err_message FROM timescaledb_information.job_errors e JOIN"
                . " timescaledb_information.job_stats s ON s.job_id = e.job_id AND s.last_run_status = 'Failed'"
                . " WHERE e.job_id = $job ORDER BY e.finish_time DESC LIMIT 1")->fetchColumn() ?: null;
        }
        $this->assertNotNull($error, 'TimescaleDB\'s scheduler ran the job and it failed');
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~<td[^>]*>policy_retention</td>\\s*<td[^>]*>' . preg_quote($table, '~')
            . '</td>\\s*<td[^>]*>Failed: ' . preg_quote(s($error), '~') . '</td>~', $html);
        $this->assert_fpm_log_clean();
    }

    /**
     * Without the session key Test connection is refused; a user who is not an administrator gets no status page;
     * nothing is written either way.
     */
    public function test_access_control(): void {
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->post(self::status_path(), ['action' => 'test', 'sesskey' => 'wrong']);
        $this->assertStringNotContainsString('Connection works', $html);
        $this->assertStringContainsString(get_string('invalidsesskey', 'error'), $html);

        $student = $this->user_with_password();
        $http = (new tsdb_test_http())->login($student->username, $student->clearpassword);
        $html = $http->get(self::status_path());
        $this->assertStringNotContainsString('<h2>Time series database log store status</h2>', $html);
        $this->assertStringNotContainsString('Test connection', $html);
        $this->assertStringContainsString(get_string('accessdenied', 'admin'), $html);
        $html = $http->post(self::status_path(), ['action' => 'test', 'sesskey' => tsdb_test_http::sesskey($html)]);
        $this->assertStringNotContainsString('Connection works', $html);
        $rows = array_filter($this->read_back(), function($row) {
            return isset(json_decode((string) $row['other'], true)['marker']);
        });
        $this->assertSame([], $rows, 'no marker was written');
        $this->assert_fpm_log_clean();
    }

    /**
     * The extension's warning (a token sent over http:// to a host off this machine) is on the status page, escaped,
     * and in System status as a warning; the token is on neither. With https:// there is no warning and the check is
     * OK.
     */
    public function test_extension_warning_is_shown_escaped(): void {
        $token = 'status-token-' . bin2hex(random_bytes(8));
        $this->configure(['backend' => 'influxdb2', 'url' => 'http://in<fl>ux&co.example.invalid:8086', 'org' => 'org',
            'token' => $token, 'retry_max_elapsed_ms' => 0]);
        $warning = 'url: the InfluxDB credentials cross the network in clear text (http:// to in<fl>ux&co.example.invalid); '
            . 'use https://';
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~alert-warning.{0,400}' . preg_quote('The tsdb extension warns: '
            . s($warning), '~') . '~s', $html);
        $this->assertStringNotContainsString('in<fl>ux', $html, 'escaped everywhere');
        $this->assertStringNotContainsString($token, $html);
        $check = $this->system_status_check($http);
        $this->assertSame('Warning', $check['status']);
        $this->assertStringContainsString(s('The time series database log store works, but the tsdb extension warns: '
            . $warning), $check['html']);
        $this->assertStringNotContainsString($token, $check['page']);

        // The same check in this process.
        $this->new_request();
        $result = (new \logstore_tsdb\check\extension_check())->get_result();
        $this->assertSame($warning, tsdb_stats()['warning']);
        $this->assertSame(\core\check\result::WARNING, $result->get_status());

        $this->configure(['url' => 'https://influx.example.invalid:8086']);
        $html = $http->get(self::status_path());
        $this->assertStringNotContainsString('alert-warning', $html);
        $this->assertStringNotContainsString('The tsdb extension warns', $html);
        $check = $this->system_status_check($http);
        $this->assertSame('OK', $check['status']);
        $this->assertStringContainsString('The tsdb extension ' . tsdb_version() . ' is loaded and configured.', $check['html']);
        $this->assert_fpm_log_clean();
    }

    /**
     * System status (report/status/index.php) lists the plugin's check: OK with the extension and a working
     * configuration, linking to the status page.
     */
    public function test_system_status_lists_the_check(): void {
        $http = (new tsdb_test_http())->login_admin();
        $check = $this->system_status_check($http);
        $this->assertSame('OK', $check['status']);
        $this->assertStringContainsString('The tsdb extension ' . tsdb_version() . ' is loaded and configured.', $check['html']);
        $this->assertStringContainsString(self::status_path(), $check['html'], 'links to the status page');
        $this->assert_no_php_notice($check['page'], 'System status');
        $this->assert_fpm_log_clean();
    }

    /**
     * The row of the plugin's check on System status.
     *
     * @param tsdb_test_http $http a logged-in admin
     * @return array ['status' => the status badge's text, 'html' => the row, 'page' => the whole page]
     */
    public static function system_status_check(tsdb_test_http $http): array {
        $page = $http->get('/report/status/index.php');
        $name = get_string('check_extension', 'logstore_tsdb');
        if (!preg_match('~<tr[^>]*>(?:(?!</tr>).)*' . preg_quote($name, '~') . '(?:(?!</tr>).)*</tr>~s', $page, $m)) {
            throw new \RuntimeException("no row '$name' on System status (HTTP {$http->status})");
        }
        preg_match('~<span class="badge[^"]*">([^<]+)</span>~', $m[0], $badge);
        return ['status' => trim($badge[1] ?? ''), 'html' => $m[0], 'page' => $page];
    }
}
