<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The administrator's journey in a real browser (headless Chromium through selenium, fixtures/admin_journey.py) on
 * this site: the plugin is uninstalled as an administrator does (admin/cli/uninstall_plugins.php, its folder
 * removed), then the browser installs the plugin zip through Moodle's Install plugins page, configures TimescaleDB
 * (a bad port refused first), enables the store, sees the status page healthy and Test connection green, reads the
 * course's Logs and Live logs from the time series database, sees the verdict and the spool say so while the database
 * is stopped, and exports the student's data (the store's part equal to the standard store's); at last it disables
 * the store and uninstalls the plugin from Plugins overview, its folder deleted (the events stay in the database).
 * Every page without a PHP notice at DEBUG_DEVELOPER, nor the PHP-FPM pool's log.
 *
 * Screenshots go to the test's directory (removed afterwards) or, with TSDB_JOURNEY_SHOTS=DIR, to DIR/RELEASE (what
 * docs/img/journey/ holds comes from there).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

/**
 * Browser journey test.
 */
class journey_test extends base_testcase {
    use tsdb_test_ops;

    /** @var string|null the journey's table in the TimescaleDB database */
    protected $table = null;

    /**
     * The plugin back as run.sh installed it if the journey left the site without it; the journey's table dropped.
     */
    protected function tearDown(): void {
        global $DB;
        parent::tearDown();
        $info = tsdb_test_site::$info;
        if (!is_file("$info->plugindir/version.php") || !get_config('logstore_tsdb', 'version')) {
            self::remove_tree($info->plugindir);
            $repo = dirname(__DIR__, 3);
            [$rc, $out, $err] = tsdb_test_site::run(['cp', '-r', "$repo/moodle-plugin", $info->plugindir]);
            $this->assertSame(0, $rc, $err);
            [$rc, $out, $err] = tsdb_test_site::run_cli('admin/cli/upgrade.php', ['--non-interactive']);
            $this->assertSame(0, $rc, "upgrade.php: $out\n$err");
        }
        // This process's caches of the plugin's settings, of the site's plugins and of its tables (another process
        // changed them; the table list was read while the plugin was uninstalled).
        purge_caches(['muc' => true]);
        $DB->reset_caches();
        // New PHP-FPM workers: the reinstalled plugin has no earlier report of the running ones, so their next report
        // would count their whole life's counters (earlier tests' failures among them) as the last hour's.
        $pid = (int) @file_get_contents("$info->dir/fpm/fpm.pid");
        $this->assertGreaterThan(0, $pid, 'the PHP-FPM master of the site');
        [$rc, $out, $err] = tsdb_test_site::run(['kill', '-USR2', (string) $pid]);
        $this->assertSame(0, $rc, "reloading PHP-FPM: $err");
        $http = new tsdb_test_http();
        for ($i = 0; $i < 100; $i++) {
            usleep(100000);
            try {
                $http->get('/login/index.php');
                if ($http->status === 200) {
                    break;
                }
            } catch (\Throwable $e) {
                // Not answering yet.
            }
        }
        $this->assertSame(200, $http->status, 'the site answers after the reload');
        if ($this->table !== null) {
            $pdo = self::timescale();
            self::stop_jobs($pdo, 'public', $this->table);
            self::drop_retrying($pdo, 'DROP TABLE IF EXISTS public."' . $this->table . '" CASCADE');
        }
    }

    /**
     * The journey, as the script drives it; then what it left in the site and the database.
     */
    public function test_an_administrators_journey_in_a_browser(): void {
        global $DB;
        foreach (['/usr/bin/chromium', '/usr/bin/chromedriver', '/usr/bin/psql'] as $binary) {
            $this->assertTrue(is_executable($binary), "$binary is missing (./build.sh deps)");
        }
        $dsn = parse_url($this->server_env('TSDB_TEST_TIMESCALE_DSN'));
        $info = tsdb_test_site::$info;
        $this->table = 'journey_' . getmypid() . '_' . bin2hex(random_bytes(3));
        $course = $this->gen()->create_course(['fullname' => 'Journey course']);
        $student = $this->gen()->create_user(['firstname' => 'Jo', 'lastname' => 'Student' . getmypid()]);
        $this->gen()->enrol_user($student->id, $course->id, 'student');
        // The administrator's course index and block drawers closed: the pages' tables get the whole width.
        foreach (['drawer-open-index', 'drawer-open-block'] as $drawer) {
            set_user_preference($drawer, 0, get_admin());
        }
        $this->forget_events_so_far();
        $this->mark_fpm_log();

        // The site without the plugin, as an administrator removes one.
        [$rc, $out, $err] = tsdb_test_site::run_cli('admin/cli/uninstall_plugins.php', ['--plugins=logstore_tsdb', '--run']);
        $this->assertSame(0, $rc, "uninstall_plugins.php: $out\n$err");
        self::remove_tree($info->plugindir);
        $this->assertFalse($DB->record_exists('config_plugins', ['plugin' => 'logstore_tsdb', 'name' => 'version']));

        // The zip as ./build.sh package makes it: the plugin's folder, tsdb, at its top.
        $zip = new \ZipArchive();
        $this->assertTrue($zip->open($this->dir . '/logstore_tsdb.zip', \ZipArchive::CREATE));
        $src = dirname(__DIR__, 3) . '/moodle-plugin';
        $files = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator($src, \FilesystemIterator::SKIP_DOTS));
        foreach ($files as $file) {
            if (substr($file->getFilename(), -5) !== '.orig') {
                $zip->addFile($file->getPathname(), 'tsdb/' . substr($file->getPathname(), strlen($src) + 1));
            }
        }
        $this->assertTrue($zip->close());

        $shots = getenv('TSDB_JOURNEY_SHOTS') ? getenv('TSDB_JOURNEY_SHOTS') . '/' . $info->version : $this->dir . '/shots';
        $journey = ['site' => $info->dir, 'zip' => $this->dir . '/logstore_tsdb.zip', 'shots' => $shots,
            'db' => ['host' => $dsn['host'], 'port' => $dsn['port'], 'dbname' => ltrim($dsn['path'], '/'),
                'user' => urldecode($dsn['user']), 'password' => urldecode($dsn['pass'] ?? ''), 'table' => $this->table],
            'course' => (int) $course->id, 'student' => ['id' => (int) $student->id, 'name' => fullname($student)]];
        file_put_contents($this->dir . '/journey.json', json_encode($journey));
        [$rc, $out, $err] = tsdb_test_site::run(['/usr/bin/python3', dirname(__DIR__) . '/fixtures/admin_journey.py',
            $this->dir . '/journey.json']);
        fwrite(STDERR, $out);
        $this->assertSame(0, $rc, "the journey failed:\n$out\n$err");

        // Uninstalled at the end as an administrator does (the settings' values were checked by the script before):
        // no folder, no setting, no table of the plugin in the site's database, not among the enabled stores.
        $this->assertFalse(file_exists($info->plugindir), 'the plugin folder deleted');
        $this->assertSame(0, $DB->count_records('config_plugins', ['plugin' => 'logstore_tsdb']));
        $tables = array_filter($DB->get_tables(false), fn($t) => strpos($t, 'logstore_tsdb') === 0);
        $this->assertSame([], array_values($tables), 'the plugin\'s tables dropped');
        $this->assertNotContains('logstore_tsdb', explode(',', (string) $DB->get_field('config_plugins', 'value',
            ['plugin' => 'tool_log', 'name' => 'enabled_stores'])));
        // The student's views in the time series database once each, as the standard store has them.
        $views = self::timescale()->query('SELECT userid, courseid, contextid, crud, edulevel FROM public."' . $this->table
            . '" WHERE eventname = \'\\core\\event\\course_viewed\' AND userid = ' . (int) $student->id)->fetchAll(\PDO::FETCH_ASSOC);
        $standard = $DB->get_records('logstore_standard_log', ['eventname' => '\\core\\event\\course_viewed',
            'userid' => $student->id], 'id', 'id, userid, courseid, contextid, crud, edulevel');
        $this->assertCount(3, $views);
        $this->assertCount(3, $standard);
        foreach (array_values($standard) as $i => $row) {
            $this->assertSame([$row->userid, $row->courseid, $row->contextid, $row->crud, $row->edulevel],
                array_map('strval', array_values($views[$i])));
        }
        foreach (['01-install-plugins', '03-plugins-check', '07-settings-saved', '08-manage-log-stores', '09-status-healthy',
                '10-test-connection', '12-course-logs', '13-live-logs', '14-status-database-stopped', '17-privacy-requests',
                '18-uninstall-confirm', '19-uninstalled'] as $shot) {
            $this->assertSame(1280, getimagesize("$shots/$shot.png")[0] ?? null, "$shot.png");
        }
        $this->assert_fpm_log_clean();
    }
}
