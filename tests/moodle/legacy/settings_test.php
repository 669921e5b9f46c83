<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * settings.php loads in the admin tree, names every setting, validates with messages naming the field, hides
 * secrets; every string exists; the definitions agree with the extension.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');

use logstore_tsdb\local\extension;
use logstore_tsdb\local\settings_definition;

/**
 * Settings tests.
 */
class settings_test extends base_testcase {

    /**
     * Runs settings.php as tool_log does and returns [$settings, $ADMIN].
     *
     * @return array
     */
    protected function load_settings(bool $fulltree = true): array {
        global $CFG, $OUTPUT;
        $ADMIN = new admin_root($fulltree);
        $hassiteconfig = true;
        $settings = new admin_settingpage('logsettingtsdb', 'Time series', 'moodle/site:config');
        include(harness::$plugindir . '/settings.php');
        return [$settings, $ADMIN];
    }

    /**
     * The navigation tree (built on every page an administrator sees, without the full tree) gets the status page
     * and nothing else: no settings, and the extension is neither probed nor reconfigured.
     */
    public function test_navigation_tree_does_not_touch_the_extension(): void {
        $marker = ['backend' => 'file', 'format' => 'json', 'path' => $GLOBALS['CFG']->dataroot . '/navigation-marker.jsonl',
            'flush_interval_ms' => 12345];
        tsdb_configure($marker);
        [$settings, $admin] = $this->load_settings(false);
        $this->assertCount(0, (array) $settings->settings);
        $this->assertSame(['logstore_tsdb_status'], array_map(fn($p) => $p->name, $admin->added['logging']));
        ob_start();
        phpinfo(INFO_MODULES);
        $info = ob_get_clean();
        $this->assertStringContainsString('tsdb.flush_interval_ms => 12345', $info, 'the configuration is untouched');
        $this->assertStringContainsString('tsdb.path => ' . $marker['path'], $info);
        // The full tree (a settings page) does configure it from the plugin's settings.
        $this->load_settings(true);
        ob_start();
        phpinfo(INFO_MODULES);
        $this->assertStringNotContainsString('tsdb.flush_interval_ms => 12345', ob_get_clean());
    }

    /**
     * Every setting of the definition is on the page as logstore_tsdb/NAME with the right class.
     */
    public function test_settings_page_names_every_setting(): void {
        [$settings, $admin] = $this->load_settings();
        $names = [];
        foreach ($settings->settings as $s) {
            $this->assertSame('logstore_tsdb', $s->plugin, "setting {$s->name} belongs to logstore_tsdb");
            $names[] = $s->name;
        }
        foreach (settings_definition::all() as $name => $def) {
            $this->assertContains($name, $names, "settings.php shows $name");
            $setting = $settings->settings->$name;
            switch ($def['type']) {
                case 'secret':
                    $this->assertInstanceOf(admin_setting_configpasswordunmask::class, $setting, "$name is a secret");
                    break;
                case 'select':
                    $this->assertInstanceOf(admin_setting_configselect::class, $setting);
                    break;
                case 'bool':
                    $this->assertInstanceOf(admin_setting_configcheckbox::class, $setting);
                    break;
                default:
                    $this->assertInstanceOf(admin_setting_configtext::class, $setting);
            }
            $this->assertNotSame('', $setting->visiblename, "$name has a label");
            $this->assertNotSame('', $setting->description, "$name has a help text");
        }
        foreach (['token', 'password'] as $secret) {
            $this->assertSame('secret', settings_definition::all()[$secret]['type']);
        }
        // The status page is registered under Plugins > Logging.
        $pages = $admin->added['logging'] ?? [];
        $this->assertCount(1, $pages);
        $this->assertInstanceOf(admin_externalpage::class, $pages[0]);
        $this->assertSame('logstore_tsdb_status', $pages[0]->name);
        $this->assertStringEndsWith('/admin/tool/log/store/tsdb/status.php', $pages[0]->url);
        $this->assertSame(['moodle/site:config'], $pages[0]->req_capability);
        // With the extension loaded: no missing-extension warning, the version is shown.
        $this->assertFalse(property_exists($settings->settings, 'extensionmissing'));
        $this->assertStringContainsString(tsdb_version(), $settings->settings->extensionstatus->description);
    }

    /**
     * Durable mode is offered only when the loaded extension accepts it.
     */
    public function test_durable_mode_offered_only_when_supported(): void {
        [$settings] = $this->load_settings();
        $accepts = true;
        try {
            tsdb_configure(['backend' => 'file', 'mode' => 'durable', 'path' => $this->sink,
                'spool_dir' => $GLOBALS['CFG']->dataroot . '/probe_spool']);
        } catch (\ValueError $e) {
            $accepts = false;
        }
        $this->assertSame($accepts, array_key_exists('durable', $settings->settings->mode->choices));
        $this->assertArrayHasKey('async', $settings->settings->mode->choices);
        $this->assertArrayHasKey('sync', $settings->settings->mode->choices);
        // The probe left the extension with the site's configuration: events still go to this test's file.
        extension::reset_for_tests();
        harness::login(5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $this->assertCount(1, $this->read_back());
    }

    /**
     * Bad values are refused with a message that names the field; good ones are saved.
     */
    public function test_validation_names_the_field(): void {
        [$settings] = $this->load_settings();
        $s = $settings->settings;
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
                $this->assertFalse(get_config('logstore_tsdb', $name) === $value);
            }
        }
        $this->assertSame('', $s->batch_size->write_setting('2500'));
        $this->assertSame('2500', get_config('logstore_tsdb', 'batch_size'));
        $this->assertSame('', $s->url->write_setting('https://influx.example.org:8086'));
        $this->assertSame('', $s->includeevents->write_setting("\\mod_forum\\event\\*\ncore, *_viewed"));
        // A text area submitted with a newline after its last line (as browsers keep it) is accepted.
        $this->assertSame('', $s->excludeevents->write_setting("*_viewed\r\n"));
        // A text field keeps Moodle's PARAM_RAW_TRIMMED check: surrounding white space is refused, naming the field.
        $this->assertStringStartsWith('url:', $s->url->write_setting(' https://influx.example.org:8086'));
        // Moodle's admin_setting_configselect ignores a value that is not a choice: no error, nothing stored.
        $backend = get_config('logstore_tsdb', 'backend');
        $this->assertSame('', $s->backend->write_setting('mysql'));
        $this->assertSame($backend, get_config('logstore_tsdb', 'backend'), 'not a choice: not stored');
    }

    /**
     * Installing applies every default (admin_apply_default_settings), after which no setting is new: otherwise
     * Moodle would send administrators to the "New settings" page on every visit of the notifications page. The
     * secret fields, which keep a saved value when submitted empty, store their empty default when nothing is saved.
     */
    public function test_install_defaults_leave_no_new_setting(): void {
        [$settings] = $this->load_settings();
        $this->assertTrue(any_new_admin_settings($settings), 'a fresh site has new settings');
        admin_apply_default_settings($settings, false);
        $this->assertFalse(any_new_admin_settings($settings), 'after the defaults, no setting is new');
        $this->assertSame('', get_config('logstore_tsdb', 'token'));

        // A saved secret is kept when the defaults are applied again (upgradesettings.php, unconditional).
        $this->assertSame('', $settings->settings->token->write_setting('s3cr3t'));
        admin_apply_default_settings($settings, true);
        $this->assertSame('s3cr3t', get_config('logstore_tsdb', 'token'));
    }

    /**
     * Every default passes the plugin's validation and is accepted by the real extension, for every backend.
     */
    public function test_defaults_are_accepted_by_the_extension(): void {
        foreach (settings_definition::all() as $name => $def) {
            $this->assertNull(settings_definition::validate($name, $def['default']), "default of $name");
        }
        foreach (['file', 'influxdb1', 'influxdb2', 'influxdb3', 'postgres'] as $backend) {
            $cfg = \logstore_tsdb\log\store::read_plugin_config();
            $cfg->backend = $backend;
            $cfg->path = $this->sink;
            $cfg->org = 'org';
            $cfg->token = 'secret-token';
            $config = settings_definition::extension_config($cfg);
            try {
                tsdb_configure($config);
                $ok = true;
            } catch (\ValueError $e) {
                $ok = $e->getMessage();
            }
            $this->assertTrue($ok, "backend $backend: the extension accepts the plugin's configuration");
        }
        // The integer limits of the plugin are inside the extension's: a value at each bound is accepted.
        foreach (settings_definition::all() as $name => $def) {
            if ($def['type'] !== 'int' || empty($def['ext'])) {
                continue;
            }
            foreach ([$def['min'], $def['max']] as $bound) {
                $cfg = \logstore_tsdb\log\store::read_plugin_config();
                $cfg->path = $this->sink;
                $cfg->$name = $bound;
                if ($name === 'retry_base_ms') {
                    $cfg->retry_max_ms = max($bound, 30000);
                }
                if ($name === 'retry_max_ms') {
                    $cfg->retry_base_ms = min($bound, 500);
                }
                try {
                    tsdb_configure(settings_definition::extension_config($cfg));
                    $ok = true;
                } catch (\ValueError $e) {
                    $ok = $e->getMessage();
                }
                $this->assertTrue($ok, "$name = $bound is accepted by the extension");
            }
        }
    }

    /**
     * The spool is pushed in every write mode (default under dataroot); an empty spool_dir sends none, which the
     * extension accepts in async and sync mode and refuses, naming spool_dir, in durable mode.
     */
    public function test_spool_dir_in_every_mode(): void {
        global $CFG;
        $this->assertSame($CFG->dataroot . '/logstore_tsdb/spool', settings_definition::default_spool_dir());
        foreach (['async', 'sync', 'durable'] as $mode) {
            $this->configure(['mode' => $mode, 'spool_dir' => null]);
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
        // Durable mode is still offered to a site that turned the spool off (the probe brings its own spool).
        $this->configure(['mode' => 'async', 'spool_dir' => '']);
        extension::reset_for_tests();
        [$settings] = $this->load_settings();
        $this->assertArrayHasKey('durable', $settings->settings->mode->choices);
        $this->assertSame(settings_definition::default_spool_dir(), $settings->settings->spool_dir->defaultsetting);
    }

    /**
     * The upgrade step: a site that kept the old empty spool_dir ("the default directory") gets that directory,
     * rather than an empty value that now turns the spool off; any other value, or a newer site, is left alone.
     */
    public function test_upgrade_keeps_the_spool_of_an_empty_spool_dir(): void {
        require_once(harness::$plugindir . '/db/upgrade.php');
        $plugin = new stdClass();
        include(harness::$plugindir . '/version.php');
        set_config('spool_dir', '', 'logstore_tsdb');
        $this->assertTrue(xmldb_logstore_tsdb_upgrade(2025070100));
        $this->assertSame(settings_definition::default_spool_dir(), get_config('logstore_tsdb', 'spool_dir'));
        $this->assertSame([['logstore_tsdb', 2025070101], ['logstore_tsdb', 2025070102]], harness::$savepoints);
        $this->assertGreaterThanOrEqual(2025070102, $plugin->version, 'version.php reaches the last savepoint');

        set_config('spool_dir', '/srv/moodle-spool', 'logstore_tsdb');
        xmldb_logstore_tsdb_upgrade(2025070100);
        $this->assertSame('/srv/moodle-spool', get_config('logstore_tsdb', 'spool_dir'));
        set_config('spool_dir', '', 'logstore_tsdb');
        xmldb_logstore_tsdb_upgrade(2025070101);
        $this->assertSame('', get_config('logstore_tsdb', 'spool_dir'), 'an admin who turned the spool off keeps it off');
    }

    /**
     * The upgrade step of gzip: the old checkbox's default '1' becomes Automatic (which still compresses for every
     * remote server); Never ('0') stays, and a site that never saved the setting gets the new default anyway.
     */
    public function test_upgrade_turns_the_old_gzip_default_into_auto(): void {
        require_once(harness::$plugindir . '/db/upgrade.php');
        foreach (['1' => 'auto', '0' => '0'] as $old => $new) {
            harness::$savepoints = [];
            set_config('gzip', $old, 'logstore_tsdb');
            $this->assertTrue(xmldb_logstore_tsdb_upgrade(2025070101));
            $this->assertSame($new, get_config('logstore_tsdb', 'gzip'), "stored '$old'");
            $this->assertSame([['logstore_tsdb', 2025070102]], harness::$savepoints);
            $this->assertSame($new, \logstore_tsdb\log\store::read_plugin_config()->gzip);
        }
        unset_config('gzip', 'logstore_tsdb');
        xmldb_logstore_tsdb_upgrade(2025070101);
        $this->assertFalse(get_config('logstore_tsdb', 'gzip'), 'nothing stored, nothing written');
        $this->assertSame('auto', \logstore_tsdb\log\store::read_plugin_config()->gzip, 'the default');
        // A newer site that chose Always keeps it.
        set_config('gzip', '1', 'logstore_tsdb');
        xmldb_logstore_tsdb_upgrade(2025070102);
        $this->assertSame('1', get_config('logstore_tsdb', 'gzip'));
    }

    /**
     * gzip is a choice (Automatic by default, Always, Never) and each choice is what the extension runs with: its
     * phpinfo() shows the effective tsdb.gzip, and the InfluxDB requests to a server on this machine (a capture
     * server on 127.0.0.1) are compressed with Always only. Every event logged is in the requests.
     */
    public function test_gzip_choice_reaches_the_extension(): void {
        [$settings] = $this->load_settings();
        $gzip = $settings->settings->gzip;
        $this->assertInstanceOf(admin_setting_configselect::class, $gzip);
        $this->assertSame(['auto', '1', '0'], array_map('strval', array_keys($gzip->choices)));
        $this->assertSame('auto', $gzip->defaultsetting);
        $this->assertSame('', $gzip->write_setting('yes'), 'Moodle ignores a value that is not a choice');
        $this->assertFalse(get_config('logstore_tsdb', 'gzip') === 'yes', 'only the three choices are stored');

        $capture = $this->start_influx_capture();
        try {
            $seen = 0;
            foreach (['auto' => '', '1' => 'gzip', '0' => ''] as $choice => $encoding) {
                $this->assertSame('', $gzip->write_setting($choice));
                $this->configure(['backend' => 'influxdb1', 'url' => 'http://127.0.0.1:' . $capture[1],
                    'database' => 'moodle', 'pseudonymise' => 0, 'retry_max_elapsed_ms' => 2000]);
                $this->new_request();
                harness::login(5);
                $failed = tsdb_stats()['failed'];
                $logged = [];
                for ($i = 1; $i <= 3; $i++) {
                    $marker = $choice . '-' . $i;
                    \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3,
                        'other' => ['marker' => $marker]])->trigger();
                    $logged[] = $marker;
                }
                $this->assertSame(0, tsdb_flush(15000));
                $this->assertSame($failed, tsdb_stats()['failed']);
                ob_start();
                phpinfo(INFO_MODULES);
                $info = ob_get_clean();
                $this->assertMatchesRegularExpression('/^tsdb\.gzip => ' . $choice . '$/m', $info,
                    "gzip = $choice: the value the extension runs with");
                $writes = array_slice($this->captured_writes($capture[2]), $seen);
                $seen += count($writes);
                $this->assertNotEmpty($writes);
                $markers = [];
                foreach ($writes as $w) {
                    $this->assertSame($encoding, $w['encoding'], "gzip = $choice, server on 127.0.0.1");
                    preg_match_all('/marker\\\\":\\\\"([a-z0-9-]+)/', $w['body'], $m);
                    $markers = array_merge($markers, $m[1]);
                }
                $this->assertSame($logged, $markers, "gzip = $choice: every event, once");
            }
        } finally {
            $this->stop_influx_capture($capture);
        }
    }

    /**
     * Secrets are never printed back; empty keeps, "-" clears.
     */
    public function test_secrets_are_not_printed_back(): void {
        [$settings] = $this->load_settings();
        $token = $settings->settings->token;
        $this->assertSame('', $token->write_setting('s3cr3t-T0ken'));
        $this->assertSame('s3cr3t-T0ken', get_config('logstore_tsdb', 'token'));
        $html = $token->output_html($token->get_setting());
        $this->assertStringNotContainsString('s3cr3t-T0ken', $html);
        $this->assertSame('', $token->write_setting(''));
        $this->assertSame('s3cr3t-T0ken', get_config('logstore_tsdb', 'token'), 'empty keeps the saved secret');
        $this->assertStringStartsWith('token:', $token->write_setting("two\nlines"), 'refused, naming the field');
        $this->assertSame('s3cr3t-T0ken', get_config('logstore_tsdb', 'token'));
        $this->assertSame('', $token->write_setting('-'));
        $this->assertSame('', get_config('logstore_tsdb', 'token'), '"-" removes it');
    }

    /**
     * A refused configuration is shown on the settings page, naming the key.
     */
    public function test_refused_configuration_is_shown(): void {
        $this->configure(['backend' => 'influxdb2', 'org' => '', 'token' => '']);
        [$settings] = $this->load_settings();
        $text = $settings->settings->extensionstatus->description;
        $this->assertStringContainsString('alert-danger', $text);
        $this->assertStringContainsString('org', $text);
    }

    /**
     * Every string the plugin references exists in the lang file.
     */
    public function test_every_string_exists(): void {
        $string = [];
        require(harness::$plugindir . '/lang/en/logstore_tsdb.php');
        $used = [];
        $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator(harness::$plugindir, FilesystemIterator::SKIP_DOTS));
        foreach ($it as $file) {
            if (substr($file, -4) !== '.php' || strpos((string) $file, '/tests/') !== false) {
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
        foreach ($used as $id) {
            $this->assertArrayHasKey($id, $string, "lang string $id exists");
        }
        foreach (\logstore_tsdb\privacy\provider::get_metadata(new \core_privacy\local\metadata\collection('logstore_tsdb'))
                ->get_collection() as $item) {
            $this->assertArrayHasKey($item->get_summary(), $string);
            foreach ($item->get_privacy_fields() as $id) {
                $this->assertArrayHasKey($id, $string);
            }
        }
    }

    /**
     * Plugin files follow the conventions: GPL header, MOODLE_INTERNAL guard, lint-clean, version.php values.
     */
    public function test_plugin_file_conventions(): void {
        $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator(harness::$plugindir, FilesystemIterator::SKIP_DOTS));
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
            if (strpos((string) $file, harness::$plugindir . '/tests/') === 0) {
                // Test files hold only a namespaced class: Moodle's style needs no MOODLE_INTERNAL guard there.
                $this->assertStringContainsString('extends \\', $code);
            } else if ((string) $file !== harness::$plugindir . '/status.php'
                    && strpos((string) $file, harness::$plugindir . '/cli/') !== 0) {
                $this->assertMatchesRegularExpression("/\ndefined\\('MOODLE_INTERNAL'\\) \\|\\| die\\(\\);\n/", $code,
                    "$file has the MOODLE_INTERNAL guard");
            } else {
                // Entry points (the status page, CLI scripts) bootstrap Moodle instead.
                $this->assertStringContainsString('config.php', $code);
                if (strpos((string) $file, harness::$plugindir . '/cli/') === 0) {
                    $this->assertStringContainsString("define('CLI_SCRIPT', true);", $code);
                    $this->assertStringContainsString('cli_get_params(', $code);
                }
            }
            exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg((string) $file) . ' 2>&1', $out, $rc);
            $this->assertSame(0, $rc, "php -l $file");
        }
        $this->assertGreaterThan(20, $count);
        $plugin = new stdClass();
        include(harness::$plugindir . '/version.php');
        $this->assertSame('logstore_tsdb', $plugin->component);
        $this->assertGreaterThanOrEqual(2024042200, $plugin->requires);
        $this->assertMatchesRegularExpression('/^20[0-9]{8}$/', (string) $plugin->version);
        $this->assertSame([404, 501], $plugin->supported);
        $xml = simplexml_load_file(harness::$plugindir . '/environment.xml');
        $this->assertSame('logstore_tsdb', (string) $xml->PLUGIN['name']);
        $this->assertSame('tsdb', (string) $xml->PLUGIN->PHP_EXTENSIONS->PHP_EXTENSION['name']);
    }
}
