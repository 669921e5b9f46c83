<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The plugin's settings in the real admin tree of the site (settings.php loaded by tool_log as Moodle loads it) and
 * on the real settings page over HTTP as the administrator: every setting named and typed, saved through the page's
 * own form, a bad value refused with a message naming the field, secrets never printed back, no setting left "new"
 * (admin/index.php does not stop at New settings), every default accepted by the extension, every string in the
 * language file.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/influx_capture.php');

use logstore_tsdb\local\extension;
use logstore_tsdb\local\settings_definition;

/**
 * Settings tests.
 */
class settings_test extends base_testcase {
    use tsdb_test_ops;
    use influx_capture;

    /** @var string the settings page */
    const PAGE = '/admin/settings.php?section=logsettingtsdb';

    /**
     * Notes where the site's PHP-FPM log ends.
     */
    protected function setUp(): void {
        global $CFG;
        parent::setUp();
        require_once($CFG->libdir . '/adminlib.php');
        $this->mark_fpm_log();
    }

    /**
     * Stops the InfluxDB listeners.
     */
    protected function tearDown(): void {
        $this->stop_captures();
        parent::tearDown();
    }

    /**
     * The site's admin tree built as Moodle builds it for the administrator, and the plugin's settings page in it.
     *
     * @param bool $fulltree the full tree (a settings page, a search) or the navigation tree of every admin page
     * @return array [the settings of the page by name (Moodle keys $page->settings by plugin and name), admin_root,
     *     the admin_settingpage]
     */
    protected function load_settings(bool $fulltree = true): array {
        $this->set_user(get_admin());
        $root = admin_get_root(true, $fulltree);
        $page = $root->locate('logsettingtsdb');
        $this->assertInstanceOf(admin_settingpage::class, $page, 'tool_log adds the page logsettingtsdb');
        $settings = [];
        foreach ((array) $page->settings as $setting) {
            $settings[$setting->name] = $setting;
        }
        return [(object) $settings, $root, $page];
    }

    /**
     * The navigation tree (built on every page an administrator sees, without the full tree) gets the status page
     * and no setting: the extension is neither probed nor reconfigured. The full tree does configure it.
     */
    public function test_navigation_tree_does_not_touch_the_extension(): void {
        global $CFG;
        $marker = ['backend' => 'file', 'format' => 'json', 'path' => $CFG->dataroot . '/navigation-marker.jsonl',
            'flush_interval_ms' => 12345];
        tsdb_configure($marker);
        extension::reset_for_tests();
        [$settings, $root] = $this->load_settings(false);
        $this->assertSame([], (array) $settings);
        $this->assertInstanceOf(admin_externalpage::class, $root->locate('logstore_tsdb_status'));
        $this->assertContains('logstore_tsdb_status', array_map(function($child) {
            return $child->name;
        }, $root->locate('logging')->children), 'under Plugins > Logging');
        ob_start();
        phpinfo(INFO_MODULES);
        $info = ob_get_clean();
        $this->assertStringContainsString('tsdb.flush_interval_ms => 12345', $info, 'the configuration is untouched');
        $this->assertStringContainsString('tsdb.path => ' . $marker['path'], $info);
        $this->load_settings(true);
        ob_start();
        phpinfo(INFO_MODULES);
        $this->assertStringNotContainsString('tsdb.flush_interval_ms => 12345', ob_get_clean());
    }

    /**
     * Every setting of the definition is on the page as logstore_tsdb/NAME with the right class, a label and a help
     * text from the language file; the status page is listed under Plugins > Logging for moodle/site:config.
     */
    public function test_settings_page_names_every_setting(): void {
        [$settings, $root] = $this->load_settings();
        $settings = (array) $settings;
        foreach ($settings as $s) {
            $this->assertSame('logstore_tsdb', $s->plugin, "setting {$s->name} belongs to logstore_tsdb");
        }
        $classes = ['secret' => admin_setting_configpasswordunmask::class, 'select' => admin_setting_configselect::class,
            'bool' => admin_setting_configcheckbox::class, 'textarea' => admin_setting_configtextarea::class];
        foreach (settings_definition::all() as $name => $def) {
            $this->assertArrayHasKey($name, $settings, "settings.php shows $name");
            $this->assertInstanceOf($classes[$def['type']] ?? admin_setting_configtext::class, $settings[$name], $name);
            foreach ([$settings[$name]->visiblename, $settings[$name]->description] as $text) {
                $this->assertNotSame('', (string) $text);
                $this->assertStringNotContainsString('[[', (string) $text, "$name: a string of the language file");
            }
        }
        $status = $root->locate('logstore_tsdb_status');
        $this->assertStringEndsWith('/admin/tool/log/store/tsdb/status.php', $status->url->out(false));
        $this->assertSame(['moodle/site:config'], $status->req_capability);
        $this->assertArrayNotHasKey('extensionmissing', $settings, 'the extension is loaded');
        $this->assertStringContainsString(tsdb_version(), $settings['extensionstatus']->description);
    }

    /**
     * Durable mode is offered only when the loaded extension accepts it; the probe leaves the site's configuration
     * in place (events still reach this test's sink).
     */
    public function test_durable_mode_offered_only_when_supported(): void {
        global $CFG;
        [$settings] = $this->load_settings();
        $accepts = true;
        try {
            tsdb_configure(['backend' => 'file', 'mode' => 'durable', 'path' => $this->sink,
                'spool_dir' => $CFG->dataroot . '/probe_spool']);
        } catch (\ValueError $e) {
            $accepts = false;
        }
        $choices = $settings->mode->choices;
        $this->assertSame($accepts, array_key_exists('durable', $choices));
        $this->assertArrayHasKey('async', $choices);
        $this->assertArrayHasKey('sync', $choices);
        $this->new_request();
        extension::reset_for_tests();
        $course = $this->gen()->create_course();
        $this->forget_events_so_far();
        \core\event\course_viewed::create(['context' => context_course::instance($course->id)])->trigger();
        $this->assertCount(1, $this->read_back());
    }

    /**
     * In the real admin tree: bad values are refused with a message that names the field and nothing is stored; good
     * ones are saved; Moodle's select ignores a value that is not a choice.
     */
    public function test_validation_names_the_field(): void {
        [$s] = $this->load_settings();
        $cases = [
            'batch_size' => ['0', '100001', 'abc'],
            'port' => ['0', '70000'],
            'url' => ['ftp://x', 'http://', 'http://host:8086/?q=1'],
            'path' => ['relative/file'],
            'schema' => ['1bad', 'bad-name'],
            'table' => ['drop table;'],
            'tags' => ['Eventname,,x'],
            'includeevents' => ['mod_forum; DROP'],
            'memory_limit_bytes' => ['1'],
        ];
        foreach ($cases as $name => $values) {
            foreach ($values as $value) {
                $error = $s->$name->write_setting($value);
                $this->assertNotSame('', $error, "$name = '$value' must be refused");
                $this->assertStringStartsWith($name . ':', $error, "the error for $name names the field");
                $this->assertNotSame($value, self::stored($name));
            }
        }
        $this->assertSame('', $s->batch_size->write_setting('2500'));
        $this->assertSame('2500', self::stored('batch_size'));
        $this->assertSame('', $s->url->write_setting('https://influx.example.org:8086'));
        $this->assertSame('', $s->includeevents->write_setting("\\mod_forum\\event\\*\ncore, *_viewed"));
        // A text area submitted with a newline after its last line (as browsers keep it) is accepted.
        $this->assertSame('', $s->excludeevents->write_setting("*_viewed\r\n"));
        // A text field keeps Moodle's PARAM_RAW_TRIMMED check: surrounding white space is refused, naming the field.
        $this->assertStringStartsWith('url:', $s->url->write_setting(' https://influx.example.org:8086'));
        $backend = self::stored('backend');
        $this->assertSame('', $s->backend->write_setting('mysql'));
        $this->assertSame($backend, self::stored('backend'), 'not a choice: not stored');
    }

    /**
     * Installing applies every default (admin_apply_default_settings, as install and upgrade do), after which no
     * setting is new; a saved secret is kept when the defaults are applied again.
     */
    public function test_install_defaults_leave_no_new_setting(): void {
        self::reset_plugin_config();
        [$settings, , $page] = $this->load_settings();
        $this->assertTrue(any_new_admin_settings($page), 'nothing saved: new settings');
        admin_apply_default_settings($page, false);
        $this->assertFalse(any_new_admin_settings($page), 'after the defaults, no setting is new');
        $this->assertSame('', self::stored('token'));
        $this->assertSame('', $settings->token->write_setting('s3cr3t'));
        admin_apply_default_settings($page, true);
        $this->assertSame('s3cr3t', self::stored('token'));
    }

    /**
     * Every default passes the plugin's validation and is accepted by the real extension, for every backend, and so
     * is each bound of every integer setting.
     */
    public function test_defaults_are_accepted_by_the_extension(): void {
        foreach (settings_definition::all() as $name => $def) {
            $this->assertNull(settings_definition::validate($name, $def['default']), "default of $name");
        }
        $configure = function(\stdClass $cfg) {
            try {
                tsdb_configure(settings_definition::extension_config($cfg));
                return true;
            } catch (\ValueError $e) {
                return $e->getMessage();
            }
        };
        foreach (settings_definition::BACKENDS as $backend) {
            $cfg = \logstore_tsdb\log\store::read_plugin_config();
            $cfg->backend = $backend;
            $cfg->org = 'org';
            $cfg->token = 'secret-token';
            $this->assertTrue($configure($cfg), "backend $backend: the extension accepts the plugin's configuration");
        }
        foreach (settings_definition::all() as $name => $def) {
            if ($def['type'] !== 'int' || empty($def['ext'])) {
                continue;
            }
            foreach ([$def['min'], $def['max']] as $bound) {
                $cfg = \logstore_tsdb\log\store::read_plugin_config();
                $cfg->$name = $bound;
                if ($name === 'retry_base_ms') {
                    $cfg->retry_max_ms = max($bound, 30000);
                }
                if ($name === 'retry_max_ms') {
                    $cfg->retry_base_ms = min($bound, 500);
                }
                $this->assertTrue($configure($cfg), "$name = $bound is accepted by the extension");
            }
        }
        extension::reset_for_tests();
    }

    /**
     * The spool is pushed in every write mode (default under dataroot); an empty spool_dir sends none, which the
     * extension accepts in async and sync mode and refuses, naming spool_dir, in durable mode; durable mode is still
     * offered to a site without a spool.
     */
    public function test_spool_dir_in_every_mode(): void {
        global $CFG;
        $this->assertSame($CFG->dataroot . '/logstore_tsdb/spool', settings_definition::default_spool_dir());
        foreach (['async', 'sync', 'durable'] as $mode) {
            unset_config('spool_dir', 'logstore_tsdb');
            $this->configure(['mode' => $mode]);
            $config = settings_definition::extension_config(\logstore_tsdb\log\store::read_plugin_config());
            $this->assertSame(settings_definition::default_spool_dir(), $config['spool_dir'], "$mode: default spool");
            $this->assertArrayHasKey('spool_limit_bytes', $config);
            tsdb_configure($config);
            $this->assertSame($mode, tsdb_stats()['mode']);

            $this->configure(['spool_dir' => '']);
            $config = settings_definition::extension_config(\logstore_tsdb\log\store::read_plugin_config());
            $this->assertSame('', $config['spool_dir'], "$mode: empty means no spool");
            try {
                tsdb_configure($config);
                $this->assertNotSame('durable', $mode, 'durable mode without a spool is refused');
            } catch (\ValueError $e) {
                $this->assertSame('durable', $mode, $e->getMessage());
                $this->assertStringContainsString('spool_dir', $e->getMessage());
            }
        }
        $this->configure(['mode' => 'async', 'spool_dir' => '']);
        extension::reset_for_tests();
        [$settings] = $this->load_settings();
        $this->assertArrayHasKey('durable', $settings->mode->choices);
        $this->assertSame(settings_definition::default_spool_dir(), $settings->spool_dir->defaultsetting);
        extension::reset_for_tests();
    }

    /**
     * gzip is a choice (Automatic by default, Always, Never) and each choice is what the extension runs with: its
     * phpinfo() shows the effective tsdb.gzip, and the InfluxDB requests to a server on this machine are compressed
     * with Always only. Every event logged is in the requests, once.
     */
    public function test_gzip_choice_reaches_the_extension(): void {
        [$settings] = $this->load_settings();
        $gzip = $settings->gzip;
        $this->assertInstanceOf(admin_setting_configselect::class, $gzip);
        $this->assertSame(['auto', '1', '0'], array_map('strval', array_keys($gzip->choices)));
        $this->assertSame('auto', $gzip->defaultsetting);
        $this->assertSame('', $gzip->write_setting('yes'), 'Moodle ignores a value that is not a choice');
        $this->assertNotSame('yes', self::stored('gzip'));

        $course = $this->gen()->create_course();
        $user = $this->gen()->create_user();
        $this->forget_events_so_far();
        $cap = $this->start_capture('influxdb1');
        $seen = 0;
        foreach (['auto' => '', '1' => 'gzip', '0' => ''] as $choice => $encoding) {
            $this->assertSame('', $gzip->write_setting($choice));
            $this->configure(['backend' => 'influxdb1', 'url' => $cap['url'], 'database' => 'moodle', 'pseudonymise' => 0,
                'retry_max_elapsed_ms' => 2000]);
            $this->set_user($user);
            $failed = tsdb_stats()['failed'];
            $logged = [];
            for ($i = 1; $i <= 3; $i++) {
                $marker = "gzip-$choice-$i";
                \core\event\course_viewed::create(['context' => context_course::instance($course->id),
                    'other' => ['marker' => $marker]])->trigger();
                $logged[] = $marker;
            }
            $this->assertSame(0, tsdb_flush(15000));
            $this->assertSame($failed, tsdb_stats()['failed'], tsdb_stats()['last_error']);
            ob_start();
            phpinfo(INFO_MODULES);
            $info = ob_get_clean();
            $this->assertMatchesRegularExpression('/^tsdb\.gzip => ' . $choice . '$/m', $info,
                "gzip = $choice: the value the extension runs with");
            $writes = array_slice($this->captured($cap, '/write'), $seen);
            $seen += count($writes);
            $this->assertNotEmpty($writes);
            $markers = [];
            foreach ($writes as $w) {
                // Saving the setting logged Moodle's own config_log_created event too, written before the switch.
                if (!preg_match_all('/marker\\\\":\\\\"(gzip-' . $choice . '-[0-9]+)/', $w['body'], $m)) {
                    continue;
                }
                $this->assertSame($encoding, $w['encoding'], "gzip = $choice, server on 127.0.0.1");
                $markers = array_merge($markers, $m[1]);
            }
            $this->assertSame($logged, $markers, "gzip = $choice: every event, once");
        }
    }

    /**
     * Secrets are never printed back: not by the setting, not on the settings page; empty keeps the saved secret,
     * "-" clears it, a line break is refused naming the field.
     */
    public function test_secrets_are_not_printed_back(): void {
        [$settings] = $this->load_settings();
        $token = $settings->token;
        $secret = 's3cr3t-T0ken-' . bin2hex(random_bytes(6));
        $this->assertSame('', $token->write_setting($secret));
        $this->assertSame($secret, self::stored('token'));
        $this->assertStringNotContainsString($secret, $token->output_html($token->get_setting()));
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::PAGE);
        $this->assertSame(200, $http->status);
        $this->assertStringContainsString('name="s_logstore_tsdb_token"', $html);
        $this->assertStringNotContainsString($secret, $html, 'the settings page does not show the saved token');
        $this->assertSame('', $token->write_setting(''));
        $this->assertSame($secret, self::stored('token'), 'empty keeps the saved secret');
        $this->assertStringStartsWith('token:', $token->write_setting("two\nlines"), 'refused, naming the field');
        $this->assertSame($secret, self::stored('token'));
        $this->assertSame('', $token->write_setting('-'));
        $this->assertSame('', self::stored('token'), '"-" removes it');
        $this->assert_fpm_log_clean();
    }

    /**
     * The settings page over HTTP: rendered without a PHP notice with every setting; saved through its own form (the
     * session key and every field as the page filled them): a good value is stored, a bad one is refused with a
     * message naming the field and nothing of it stored; afterwards no setting is new, so admin/index.php does not
     * stop at "New settings".
     */
    public function test_saving_through_the_form(): void {
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::PAGE);
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'settings page');
        $this->assertMatchesRegularExpression('~alert-info[^>]*>[^<]*' . preg_quote(tsdb_version(), '~') . '~', $html);
        $fields = self::form_fields($html, 'adminsettings');
        foreach (settings_definition::all() as $name => $def) {
            $this->assertArrayHasKey("s_logstore_tsdb_$name", $fields, "the form has $name");
        }
        $this->assertSame('save-settings', $fields['action']);
        $this->assertSame(tsdb_test_http::sesskey($html), $fields['sesskey']);

        // A good value, as the admin types it.
        $fields['s_logstore_tsdb_batch_size'] = '2500';
        $fields['s_logstore_tsdb_excludeevents'] = "*_viewed\r\n";
        $html = $http->post(self::PAGE, $fields);
        $this->assert_no_php_notice($html, 'settings page after saving');
        $this->assertStringContainsString(get_string('changessaved'), $html);
        $this->assertSame('2500', self::stored('batch_size'));
        $this->assertSame("*_viewed\r\n", self::stored('excludeevents'));

        // A bad value: refused, named, not stored; the page says which.
        $fields = self::form_fields($html, 'adminsettings');
        $fields['s_logstore_tsdb_batch_size'] = '0';
        $fields['s_logstore_tsdb_url'] = 'ftp://influx.example.org';
        $html = $http->post(self::PAGE, $fields);
        $this->assert_no_php_notice($html, 'settings page with an error');
        $this->assertStringContainsString(get_string('errorwithsettings', 'admin'), $html);
        $this->assertStringContainsString('batch_size: must be an integer between 1 and 100000', $html);
        $this->assertStringContainsString('url: must be an http:// or https:// base URL', $html);
        $this->assertSame('2500', self::stored('batch_size'), 'the bad value is not stored');
        $this->assertNotSame('ftp://influx.example.org', self::stored('url'));

        // Nothing is new: Site administration opens, not the New settings page.
        $html = $http->get('/admin/index.php');
        $this->assertStringNotContainsString('upgradesettings.php', $http->url);
        $this->assertStringNotContainsString('<h2>' . get_string('newsettings', 'admin') . '</h2>', $html);
        $this->assert_no_php_notice($html, 'admin/index.php');
        $this->assert_fpm_log_clean();
    }

    /**
     * A configuration the extension refuses is shown on the settings page, naming the key.
     */
    public function test_refused_configuration_is_shown(): void {
        $this->configure(['backend' => 'influxdb2', 'org' => '', 'token' => '']);
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::PAGE);
        $this->assert_no_php_notice($html, 'settings page');
        $this->assertMatchesRegularExpression('~alert-danger[^>]*>[^<]*org~', $html);
        $this->assert_fpm_log_clean();
    }

    /**
     * Every string the plugin's code uses exists in the language file, as Moodle's string manager reads it.
     */
    public function test_every_string_exists(): void {
        $dir = tsdb_test_site::$info->plugindir;
        $used = [];
        $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS));
        foreach ($it as $file) {
            if (substr($file, -4) !== '.php' || strpos((string) $file, "$dir/tests/") === 0) {
                continue;
            }
            $code = file_get_contents($file);
            preg_match_all("/(?:get_string|lang_string)\\(\\s*'([a-z0-9_:]+)'\\s*,\\s*'logstore_tsdb'/", $code, $m);
            $used = array_merge($used, $m[1]);
            preg_match_all("/moodle_exception\\(\\s*'([a-z0-9_]+)'\\s*,\\s*'logstore_tsdb'/", $code, $m);
            $used = array_merge($used, $m[1]);
        }
        foreach (settings_definition::all() as $name => $def) {
            $used[] = 'setting_' . $name;
            $used[] = 'setting_' . $name . '_desc';
            foreach ($def['options'] ?? [] as $identifier) {
                $used[] = $identifier;
            }
        }
        foreach (settings_definition::sections() as $section) {
            $used[] = 'heading_' . $section;
            $used[] = 'heading_' . $section . '_desc';
        }
        $used = array_unique($used);
        $this->assertGreaterThan(100, count($used));
        $strings = get_string_manager();
        foreach ($used as $id) {
            $this->assertTrue($strings->string_exists($id, 'logstore_tsdb'), "lang string $id exists");
        }
        foreach (\logstore_tsdb\privacy\provider::get_metadata(new \core_privacy\local\metadata\collection('logstore_tsdb'))
                ->get_collection() as $item) {
            $this->assertTrue($strings->string_exists($item->get_summary(), 'logstore_tsdb'), $item->get_summary());
            foreach ($item->get_privacy_fields() as $id) {
                $this->assertTrue($strings->string_exists($id, 'logstore_tsdb'), $id);
            }
        }
    }

    /**
     * The plugin's files as installed in the site follow Moodle's conventions: GPL header, docblock, MOODLE_INTERNAL
     * guard (entry points bootstrap Moodle instead), php -l clean, version.php and environment.xml values.
     */
    public function test_plugin_file_conventions(): void {
        $dir = tsdb_test_site::$info->plugindir;
        $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS));
        $count = 0;
        foreach ($it as $file) {
            if (substr($file, -4) !== '.php') {
                continue;
            }
            $count++;
            $code = file_get_contents($file);
            $this->assertStringStartsWith("<?php\n// This file is part of Moodle - http://moodle.org/", $code, "$file GPL header");
            $this->assertStringContainsString('GNU General Public License', $code);
            $this->assertStringContainsString('@package    logstore_tsdb', $code, "$file docblock");
            if (strpos((string) $file, "$dir/tests/") === 0) {
                $this->assertStringContainsString('extends \\', $code, "$file: a test class");
            } else if ((string) $file !== "$dir/status.php" && strpos((string) $file, "$dir/cli/") !== 0) {
                $this->assertMatchesRegularExpression("/\ndefined\\('MOODLE_INTERNAL'\\) \\|\\| die\\(\\);\n/", $code,
                    "$file has the MOODLE_INTERNAL guard");
            } else {
                $this->assertStringContainsString('config.php', $code);
                if (strpos((string) $file, "$dir/cli/") === 0) {
                    $this->assertStringContainsString("define('CLI_SCRIPT', true);", $code);
                    $this->assertStringContainsString('cli_get_params(', $code);
                }
            }
            [$rc, $out] = tsdb_test_site::run([PHP_BINARY, '-l', (string) $file]);
            $this->assertSame(0, $rc, "php -l $file: $out");
        }
        $this->assertGreaterThan(20, $count);
        $plugin = new stdClass();
        include("$dir/version.php");
        $this->assertSame('logstore_tsdb', $plugin->component);
        $this->assertGreaterThanOrEqual(2024042200, $plugin->requires);
        $this->assertMatchesRegularExpression('/^20[0-9]{8}$/', (string) $plugin->version);
        $this->assertSame([404, 501], $plugin->supported);
        $this->assertSame((string) $plugin->version, get_config('logstore_tsdb', 'version'), 'the site runs this version');
        $xml = simplexml_load_file("$dir/environment.xml");
        $this->assertSame('logstore_tsdb', (string) $xml->PLUGIN['name']);
        $this->assertSame('tsdb', (string) $xml->PLUGIN->PHP_EXTENSIONS->PHP_EXTENSION['name']);
    }
}
