<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Upgrading the plugin in a real site with data in place, as an administrator does it: the previous version of the
 * plugin (2025070100, taken from this repository's history) installed and used, then the current code copied over it
 * and admin/cli/upgrade.php --non-interactive. The steps of db/upgrade.php run (their effects checked), nothing is
 * lost: the settings, the events in the PostgreSQL table, the batches waiting in the spool (delivered afterwards by
 * the replay task), the reported counters.
 *
 * The site is the test's own site with the plugin installed; "the previous version installed" is reached as Moodle
 * itself would have left it, without a third Moodle install and without uninstalling: the previous code in the
 * plugin's folder, the plugin's version row at 2025070100, the site's versions hash of that code (so the site is not
 * waiting for an upgrade), and the plugin's settings reset to what installing 2025070100 stores (its own settings.php
 * and Moodle's admin_apply_default_settings(), as an install applies them). The tables, tasks, caches and message
 * provider of 2025070100 are those of the current version (db/install.xml, tasks.php, caches.php, messages.php have
 * not changed since), so they are left as they are. Only the upgrade itself is the expensive part (one
 * admin/cli/upgrade.php, whose default-settings pass builds the whole admin tree); tearDown() puts the current plugin
 * back whatever happened.
 *
 * The single steps are also run in this process, each branch (an old value converted, a chosen value kept).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/status_page_test.php');

use logstore_tsdb\local\settings_definition;

/**
 * Upgrade tests.
 */
class upgrade_test extends base_testcase {
    use tsdb_test_ops;

    /** @var int The previous version: 2025070101 and 2025070102 are the steps of db/upgrade.php after it. */
    const PREVIOUS = 2025070100;

    /** @var int the current version (version.php of this checkout) */
    protected $current;

    /**
     * The current version of the plugin.
     */
    protected function setUp(): void {
        parent::setUp();
        $plugin = new stdClass();
        include(self::repo() . '/moodle-plugin/version.php');
        $this->current = (int) $plugin->version;
    }

    /**
     * The current plugin back in the site, installed and upgraded, whatever the test did.
     */
    protected function tearDown(): void {
        global $CFG;
        try {
            parent::tearDown();
        } finally {
            $info = tsdb_test_site::$info;
            if (!self::same_tree(self::repo() . '/moodle-plugin', $info->plugindir)
                    || self::version_row() !== (string) $this->current) {
                self::remove_tree($info->plugindir);
                self::copy_tree(self::repo() . '/moodle-plugin', $info->plugindir);
                self::cli('admin/cli/purge_caches.php');
                self::cli('admin/cli/upgrade.php', ['--non-interactive'], true);
            }
            set_config('version', $this->current, 'logstore_tsdb');
            set_config('enabled_stores', 'logstore_standard,logstore_tsdb', 'tool_log');
            self::remove_tree($CFG->dataroot . '/logstore_tsdb/spool');
            $this->drop_pg_tables();
        }
    }

    /**
     * The plugin's tables as the previous version's db/install.xml made them: the columns added since are dropped (the
     * upgrade adds them again; so does tearDown()'s). Its tables are the current ones.
     *
     * @param string $installxml the previous version's db/install.xml
     */
    protected static function previous_tables(string $installxml): void {
        global $DB, $CFG;
        require_once($CFG->libdir . '/ddllib.php');
        $file = new xmldb_file($installxml);
        if (!$file->loadXMLStructure()) {
            throw new \RuntimeException("cannot read $installxml");
        }
        $dbman = $DB->get_manager();
        foreach ($file->getStructure()->getTables() as $table) {
            $previous = array_map(function($field) {
                return $field->getName();
            }, $table->getFields());
            foreach (array_diff(array_keys($DB->get_columns($table->getName(), false)), $previous) as $added) {
                $dbman->drop_field(new xmldb_table($table->getName()), new xmldb_field($added));
            }
        }
        $DB->reset_caches();
    }

    /**
     * The checkout.
     *
     * @return string
     */
    protected static function repo(): string {
        return dirname(__DIR__, 3);
    }

    /**
     * The plugin's version row in the site's database, read now.
     *
     * @return string|null
     */
    protected static function version_row(): ?string {
        global $DB;
        $v = $DB->get_field('config_plugins', 'value', ['plugin' => 'logstore_tsdb', 'name' => 'version']);
        return $v === false ? null : (string) $v;
    }

    /**
     * Runs a CLI tool of the site (with the extension).
     *
     * @param string $script
     * @param string[] $args
     * @param bool $mayneedupgrade upgrade.php answers "no upgrade needed" with a non-zero code when there is none
     * @return string its output
     */
    protected static function cli(string $script, array $args = [], bool $mayneedupgrade = false): string {
        [$rc, $out, $err] = tsdb_test_site::run_cli($script, $args);
        if ($rc !== 0 && !($mayneedupgrade && strpos($out . $err, 'No upgrade needed') !== false)) {
            throw new \RuntimeException("$script " . implode(' ', $args) . " failed ($rc):\n$out\n$err");
        }
        return $out . $err;
    }

    /**
     * Do two trees hold the same files?
     *
     * @param string $a
     * @param string $b
     * @return bool
     */
    protected static function same_tree(string $a, string $b): bool {
        [$rc] = tsdb_test_site::run(['diff', '-rq', $a, $b]);
        return $rc === 0;
    }

    /**
     * Copies a tree.
     *
     * @param string $from
     * @param string $to
     */
    protected static function copy_tree(string $from, string $to): void {
        [$rc, $out, $err] = tsdb_test_site::run(['cp', '-r', $from, $to]);
        if ($rc !== 0) {
            throw new \RuntimeException("cp -r $from $to: $out $err");
        }
    }

    /**
     * The last commit of this repository whose plugin is the previous version: the parent of the first commit that
     * moved version.php past it.
     *
     * @return string
     */
    protected function previous_commit(): string {
        [$rc, $out, $err] = tsdb_test_site::run(['git', '-C', self::repo(), 'log', '--format=%H', '--',
            'moodle-plugin/version.php']);
        $this->assertSame(0, $rc, "git log: $err (the test needs the repository's history)");
        $newer = null;
        foreach (array_filter(explode("\n", trim($out))) as $commit) {
            [, $code] = tsdb_test_site::run(['git', '-C', self::repo(), 'show', "$commit:moodle-plugin/version.php"]);
            $this->assertMatchesRegularExpression('/->version\s*=\s*(\d+)/', $code);
            preg_match('/->version\s*=\s*(\d+)/', $code, $m);
            if ((int) $m[1] <= self::PREVIOUS) {
                $this->assertNotNull($newer);
                return "$newer^";
            }
            $newer = $commit;
        }
        $this->fail('no version ' . self::PREVIOUS . ' of the plugin in the history (a shallow clone?)');
    }

    /**
     * PHP code of a request of the site that logs course views by users in a course, then prints the extension's
     * counters as JSON.
     *
     * @param int[] $userids
     * @param int $courseid
     * @param int $n
     * @param int $from the first `i`
     * @return string
     */
    protected static function logging_code(array $userids, int $courseid, int $n, int $from): string {
        return '$users = ' . var_export($userids, true) . ';
for ($i = ' . $from . '; $i < ' . ($from + $n) . '; $i++) {
    \core\session\manager::set_user(\core_user::get_user($users[$i % count($users)]));
    \core\event\course_viewed::create(["context" => \context_course::instance(' . $courseid . '), "other" => ["i" => $i]])
        ->trigger();
}
get_log_manager()->dispose();
$pending = tsdb_flush(30000);
$s = tsdb_stats();
echo json_encode(["pending" => $pending, "written" => $s["written"], "failed" => $s["failed"], "mode" => $s["mode"],
    "spool_segments" => $s["spool_segments"], "last_error" => $s["last_error"]]);';
    }

    /**
     * admin/cli/upgrade.php from 2025070100 with data in place: settings converted by the steps (the empty spool_dir
     * that meant the default directory becomes that directory, the old gzip default becomes Automatic), every other
     * setting kept, the events of the table kept, the spooled batches delivered after the upgrade by the replay task,
     * the counters kept; no setting left new, the status page renders.
     */
    public function test_upgrade_from_the_previous_version_with_data_in_place(): void {
        global $DB, $CFG;
        require_once($CFG->libdir . '/adminlib.php');
        $info = tsdb_test_site::$info;
        $commit = $this->previous_commit();
        $course = $this->gen()->create_course();
        $users = [(int) $this->gen()->create_user()->id, (int) $this->gen()->create_user()->id];
        $this->forget_events_so_far();
        $settings = $this->pg_settings('upgrade');
        $table = $settings['table'];
        $defaultspool = $CFG->dataroot . '/logstore_tsdb/spool';
        self::remove_tree($defaultspool);

        // The previous version installed: its code, its version row and the site's hash of it, the settings its
        // install stores.
        self::remove_tree($info->plugindir);
        mkdir($info->plugindir);
        [$rc, $out, $err] = tsdb_test_site::run(['sh', '-c', 'git -C "$0" archive --format=tar "$1:moodle-plugin" | tar -x -C "$2"',
            self::repo(), $commit, $info->plugindir]);
        $this->assertSame(0, $rc, "git archive: $out $err");
        foreach (['db/tasks.php', 'db/messages.php'] as $file) {
            $this->assertFileEquals(self::repo() . "/moodle-plugin/$file", "$info->plugindir/$file",
                "$file is the same in both versions: the site's tasks and messages stay as they are");
        }
        $caches = function(string $file): array {
            $definitions = [];
            include($file);
            return $definitions;
        };
        $previous = $caches("$info->plugindir/db/caches.php");
        $this->assertSame($previous, array_intersect_key($caches(self::repo() . '/moodle-plugin/db/caches.php'), $previous),
            'the previous version\'s caches stay as they are (the current version adds dataspan, which the upgrade '
            . 'registers)');
        self::previous_tables("$info->plugindir/db/install.xml");
        self::reset_plugin_config();
        set_config('version', self::PREVIOUS, 'logstore_tsdb');
        self::cli('admin/cli/purge_caches.php');
        $r = $this->run_json('require_once($CFG->libdir . "/adminlib.php");
\core\session\manager::set_user(get_admin());
set_config("allversionshash", core_component::get_all_versions_hash());
$ADMIN = new admin_root(true);
$ADMIN->add("root", new admin_category("logging", "Logging"));
$hassiteconfig = true;
$settings = new admin_settingpage("logsettingtsdb", "tsdb", "moodle/site:config");
include(' . var_export(tsdb_test_site::$info->plugindir . '/settings.php', true) . ');
admin_apply_default_settings($settings, false);
echo json_encode(["needsupgrade" => moodle_needs_upgrading(), "new" => any_new_admin_settings($settings)]);');
        $this->assertFalse($r['needsupgrade'], 'the site runs the previous version');
        $this->assertTrue($r['new'], 'that version left its secrets unset: New settings on every notifications visit');
        $this->assertSame((string) self::PREVIOUS, self::version_row());
        $this->assertSame('', self::stored('spool_dir'), 'its default: empty meant the default directory');
        $this->assertSame('1', self::stored('gzip'), 'its default: the gzip checkbox on');

        // An administrator's settings of that version: PostgreSQL, durable mode (the spool in the default directory).
        foreach (array_merge($settings, ['mode' => 'durable', 'flush_interval_ms' => 50, 'retry_max_elapsed_ms' => 0,
                'excludeevents' => '*_created', 'healththreshold' => 7]) as $name => $value) {
            set_config($name, $value, 'logstore_tsdb');
        }
        $kept = [];
        foreach (['backend', 'host', 'port', 'dbname', 'user', 'password', 'table', 'mode', 'excludeevents',
                'healththreshold', 'flush_interval_ms'] as $name) {
            $kept[$name] = self::stored($name);
        }

        // The previous version at work: 9 events written, then 6 while PostgreSQL is down, kept in the spool.
        $r = $this->run_json(self::logging_code($users, $course->id, 9, 0));
        $this->assertSame(['pending' => 0, 'written' => 9, 'failed' => 0, 'mode' => 'durable'],
            array_intersect_key($r, array_flip(['pending', 'written', 'failed', 'mode'])), $r['last_error']);
        $this->assertCount(9, $this->pg_log_rows($table));
        set_config('port', tsdb_test_site_pool::free_port(), 'logstore_tsdb');
        $r = $this->run_json(self::logging_code($users, $course->id, 6, 9));
        $this->assertSame(0, $r['written']);
        $this->assertSame(0, $r['failed'], $r['last_error']);
        $this->assertGreaterThan(0, $r['spool_segments'], 'waiting in the spool');
        set_config('port', $settings['port'], 'logstore_tsdb');
        $this->assertNotEmpty(glob("$defaultspool/*"), 'in the default directory');
        $this->assertCount(9, $this->pg_log_rows($table));
        $workers = $DB->get_records('logstore_tsdb_workers', null, 'id ASC', 'id, hostname, pid, written, timereported');
        $this->assertNotEmpty($workers, 'the previous version reported its counters');

        // The current code over it, and the upgrade.
        self::remove_tree($info->plugindir);
        self::copy_tree(self::repo() . '/moodle-plugin', $info->plugindir);
        $out = self::cli('admin/cli/upgrade.php', ['--non-interactive']);
        $this->assert_no_php_notice($out, 'upgrade.php');
        $this->assertSame((string) $this->current, self::version_row(), "upgraded:\n$out");
        $this->assertSame($defaultspool, self::stored('spool_dir'), '2025070101: the directory the empty value meant');
        $this->assertSame($defaultspool, settings_definition::default_spool_dir());
        $this->assertSame('auto', self::stored('gzip'), '2025070102: the old default becomes Automatic');
        foreach ($kept as $name => $value) {
            $this->assertSame($value, self::stored($name), "$name is kept");
        }
        foreach ($workers as $id => $row) {
            $this->assertEquals($row, $DB->get_record('logstore_tsdb_workers', ['id' => $id], 'id, hostname, pid, written,'
                . ' timereported'), 'the counters are kept');
        }
        $this->assertSame(4, $DB->count_records('task_scheduled', ['component' => 'logstore_tsdb']));
        // The plugin's tables are those of its db/install.xml (Moodle's own check, as admin/cli/check_database_schema.php
        // makes it, limited to this plugin: other tests leave tables of their own in the site's database).
        $DB->reset_caches();
        $file = new xmldb_file("$info->plugindir/db/install.xml");
        $this->assertTrue($file->loadXMLStructure());
        $this->assertSame([], $DB->get_manager()->check_database_schema($file->getStructure(), ['extratables' => false]),
            'the tables are those of db/install.xml');

        // The spooled events are delivered (by the replay task, or by a process that wrote since the upgrade), once.
        $out = $this->run_task('replay_spool');
        $this->assertMatchesRegularExpression('/logstore_tsdb: spool replay: \{.*"error":"".*\}/', $out);
        $this->assertSame([], glob("$defaultspool/*.seg") ?: [], 'the spool is empty');
        // The course views (the upgrade itself logged its configuration changes, in both stores).
        $standard = self::sorted_rows($this->standard_rows('courseid = ? AND eventname = ?', [$course->id,
            '\\core\\event\\course_viewed']));
        $this->assertCount(15, $standard);
        $this->assert_pg_rows_match_standard($standard, self::sorted_rows($this->pg_log_rows($table, 'courseid = '
            . (int) $course->id . " AND eventname = '\\core\\event\\course_viewed'")), 'after the upgrade');

        // No setting is new for the administrator; the status page renders.
        $this->set_user(get_admin());
        $root = admin_get_root(true, true);
        $this->assertFalse(any_new_admin_settings($root->locate('logsettingtsdb')));
        $this->assertFalse(any_new_admin_settings($root->locate('logstore_tsdb_tuning')));
        $this->set_user(null);
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get('/admin/index.php');
        $this->assertStringNotContainsString('upgradesettings.php', $http->url, 'no New settings page');
        $this->assert_no_php_notice($html, 'admin/index.php');
        $html = $http->get(status_page_test::status_path());
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'status page');
        $this->assertSame('durable', status_page_test::status_row($html, 'Write mode'));
    }

    /**
     * Each step in this process, each branch: the empty spool_dir of a site before 2025070101 becomes the default
     * directory, another value stays, and a site already at 2025070101 that emptied it (no spool) keeps it empty; the
     * old gzip default '1' becomes 'auto', Never ('0') stays, nothing stored stays nothing (the default is Automatic),
     * and a site already at 2025070102 that chose Always keeps it. Every savepoint is reached.
     */
    public function test_each_upgrade_step(): void {
        global $CFG;
        require_once(tsdb_test_site::$info->plugindir . '/db/upgrade.php');
        require_once($CFG->libdir . '/upgradelib.php');
        $upgrade = function(int $from): void {
            set_config('version', $from, 'logstore_tsdb');
            try {
                $this->assertTrue(xmldb_logstore_tsdb_upgrade($from));
                $this->assertSame((string) $this->current, self::version_row(), 'the last savepoint is version.php\'s');
            } finally {
                set_config('version', $this->current, 'logstore_tsdb');
                // Each savepoint marks the site as being upgraded (upgrade_set_timeout()): every other process of the
                // site would stop at "Site is being upgraded" until it expires.
                unset_config('upgraderunning');
            }
        };
        $cases = [
            [self::PREVIOUS, 'spool_dir', '', settings_definition::default_spool_dir()],
            [self::PREVIOUS, 'spool_dir', '/srv/moodle-spool', '/srv/moodle-spool'],
            [2025070101, 'spool_dir', '', ''],
            [self::PREVIOUS, 'gzip', '1', 'auto'],
            [2025070101, 'gzip', '1', 'auto'],
            [2025070101, 'gzip', '0', '0'],
            [2025070101, 'gzip', null, null],
        ];
        foreach ($cases as [$from, $name, $before, $after]) {
            if ($before === null) {
                unset_config($name, 'logstore_tsdb');
            } else {
                set_config($name, $before, 'logstore_tsdb');
            }
            $upgrade($from);
            $this->assertSame($after, self::stored($name), "from $from, $name " . var_export($before, true));
        }
        $this->assertSame('auto', \logstore_tsdb\log\store::read_plugin_config()->gzip, 'nothing stored: Automatic');
        if ($this->current > 2025070102) {
            set_config('gzip', '1', 'logstore_tsdb');
            $upgrade(2025070102);
            $this->assertSame('1', self::stored('gzip'), 'a site that chose Always after the change keeps it');
        }
    }
}
