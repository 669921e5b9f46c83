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

    /** @var string the tuning page */
    const TUNING = '/admin/settings.php?section=logstore_tsdb_tuning';

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
     * The site's admin tree built as Moodle builds it for the administrator, and the plugin's settings pages in it:
     * the page tool_log adds (logsettingtsdb) and the tuning page.
     *
     * @param bool $fulltree the full tree (a settings page, a search) or the navigation tree of every admin page
     * @return array [the settings of both pages by name (Moodle keys $page->settings by plugin and name), admin_root,
     *     the main admin_settingpage, the tuning admin_settingpage]
     */
    protected function load_settings(bool $fulltree = true): array {
        $this->set_user(get_admin());
        $root = admin_get_root(true, $fulltree);
        $page = $root->locate('logsettingtsdb');
        $this->assertInstanceOf(admin_settingpage::class, $page, 'tool_log adds the page logsettingtsdb');
        $tuning = $root->locate('logstore_tsdb_tuning');
        $this->assertInstanceOf(admin_settingpage::class, $tuning, 'the plugin adds its tuning page');
        $settings = [];
        foreach (array_merge((array) $page->settings, (array) $tuning->settings) as $setting) {
            $settings[$setting->name] = $setting;
        }
        return [(object) $settings, $root, $page, $tuning];
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
        $children = array_map(function($child) {
            return $child->name;
        }, $root->locate('logging')->children);
        $this->assertContains('logstore_tsdb_status', $children, 'under Plugins > Logging');
        $this->assertContains('logstore_tsdb_tuning', $children, 'the tuning page too, without its settings');
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
        [$settings, $root, $page, $tuning] = $this->load_settings();
        $settings = (array) $settings;
        foreach ($settings as $s) {
            $this->assertSame('logstore_tsdb', $s->plugin, "setting {$s->name} belongs to logstore_tsdb");
        }
        foreach (settings_definition::all() as $name => $def) {
            $on = in_array($def['section'], settings_definition::TUNING_SECTIONS, true) ? $tuning : $page;
            $this->assertTrue(property_exists($on->settings, "logstore_tsdb$name"), "$name is on {$on->name}");
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
        [$settings, , $page, $tuning] = $this->load_settings();
        foreach ([$page, $tuning] as $p) {
            $this->assertTrue(any_new_admin_settings($p), "nothing saved: new settings on {$p->name}");
            admin_apply_default_settings($p, false);
            $this->assertFalse(any_new_admin_settings($p), "after the defaults, no setting is new on {$p->name}");
        }
        $this->assertSame('', self::stored('token'));
        $this->assertSame('', $settings->token->write_setting('s3cr3t'));
        admin_apply_default_settings($page, true);
        $this->assertSame('s3cr3t', self::stored('token'));
    }

    /**
     * The default backend is one an administrator can keep: PostgreSQL on Moodle's own database server (host, port,
     * database and user of config.php); given only the password, events reach a table of their own there.
     */
    public function test_the_default_backend_is_moodles_own_postgresql(): void {
        global $CFG, $DB;
        $course = $this->gen()->create_course();
        $this->forget_events_so_far();
        self::reset_plugin_config();
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame(['postgres', $CFG->dbhost, (int) ($CFG->dboptions['dbport'] ?? 5432), $CFG->dbname, $CFG->dbuser,
            'logstore_tsdb_log'], [$cfg->backend, $cfg->host, (int) $cfg->port, $cfg->dbname, $cfg->user, $cfg->table]);
        $this->assertSame('TimescaleDB / PostgreSQL', get_string('backend_' . $cfg->backend, 'logstore_tsdb'));
        try {
            $this->configure(['password' => $CFG->dbpass, 'spool_dir' => $this->dir . '/spool']);
            $failed = tsdb_stats()['failed'];
            $this->set_user($this->gen()->create_user());
            \core\event\course_viewed::create(['context' => context_course::instance($course->id)])->trigger();
            $this->assertSame(0, tsdb_flush(30000));
            $this->assertSame($failed, tsdb_stats()['failed'], tsdb_stats()['last_error']);
            $this->assertSame(1, (int) $DB->get_field_sql('SELECT count(*) FROM logstore_tsdb_log WHERE courseid = ?'
                . ' AND eventname = ?', [$course->id, '\\core\\event\\course_viewed']), 'in Moodle\'s database');
        } finally {
            get_log_manager()->dispose();
            tsdb_flush(10000);
            foreach ($DB->get_records_sql("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    . " WHERE n.nspname = current_schema() AND c.relname LIKE 'logstore\\_tsdb\\_log%' AND c.relkind IN ('r', 'p', 'v')"
                    . " ORDER BY c.relkind = 'v' DESC") as $r) {
                $DB->execute(($r->relkind === 'v' ? 'DROP VIEW IF EXISTS ' : 'DROP TABLE IF EXISTS ') . $r->relname . ' CASCADE');
            }
        }
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
        $tuning = $http->get(self::TUNING);
        $this->assert_no_php_notice($tuning, 'tuning page');
        $tuningfields = self::form_fields($tuning, 'adminsettings');
        foreach (settings_definition::all() as $name => $def) {
            $ontuning = in_array($def['section'], settings_definition::TUNING_SECTIONS, true);
            $this->assertArrayHasKey("s_logstore_tsdb_$name", $ontuning ? $tuningfields : $fields, "a form has $name");
            $this->assertArrayNotHasKey("s_logstore_tsdb_$name", $ontuning ? $fields : $tuningfields, "one form has $name");
        }
        $this->assertStringContainsString(self::TUNING, html_entity_decode($html), 'the main page links to the tuning page');
        $this->assertSame('save-settings', $fields['action']);
        $this->assertSame(tsdb_test_http::sesskey($html), $fields['sesskey']);

        // Good values, as the admin types them, on each page.
        $fields['s_logstore_tsdb_excludeevents'] = "*_viewed\r\n";
        $html = $http->post(self::PAGE, $fields);
        $this->assert_no_php_notice($html, 'settings page after saving');
        $this->assertStringContainsString(get_string('changessaved'), $html);
        $this->assertSame("*_viewed\r\n", self::stored('excludeevents'));
        $tuningfields['s_logstore_tsdb_batch_size'] = '2500';
        $tuning = $http->post(self::TUNING, $tuningfields);
        $this->assert_no_php_notice($tuning, 'tuning page after saving');
        $this->assertStringContainsString(get_string('changessaved'), $tuning);
        $this->assertSame('2500', self::stored('batch_size'));

        // Bad values: refused, named, not stored; the page says which.
        $fields = self::form_fields($html, 'adminsettings');
        $fields['s_logstore_tsdb_url'] = 'ftp://influx.example.org';
        $html = $http->post(self::PAGE, $fields);
        $this->assert_no_php_notice($html, 'settings page with an error');
        $this->assertStringContainsString(get_string('errorwithsettings', 'admin'), $html);
        $this->assertStringContainsString('url: must be an http:// or https:// base URL', $html);
        $this->assertNotSame('ftp://influx.example.org', self::stored('url'));
        $tuningfields = self::form_fields($tuning, 'adminsettings');
        $tuningfields['s_logstore_tsdb_batch_size'] = '0';
        $tuning = $http->post(self::TUNING, $tuningfields);
        $this->assert_no_php_notice($tuning, 'tuning page with an error');
        $this->assertStringContainsString(get_string('errorwithsettings', 'admin'), $tuning);
        $this->assertStringContainsString('batch_size: must be an integer between 1 and 100000', $tuning);
        $this->assertSame('2500', self::stored('batch_size'), 'the bad value is not stored');

        // Nothing is new: Site administration opens, not the New settings page.
        $html = $http->get('/admin/index.php');
        $this->assertStringNotContainsString('upgradesettings.php', $http->url);
        $this->assertStringNotContainsString('<h2>' . get_string('upgradesettings', 'admin') . '</h2>', $html);
        $this->assert_no_php_notice($html, 'admin/index.php');
        $this->assert_fpm_log_clean();
    }

    /**
     * Moodle's show/hide rules of a settings page, as the page hands them to its script (5.1: a data attribute; 4.5:
     * the script's call), and the markers of each setting's form item.
     *
     * @param string $html the page
     * @return array [rules (field => condition => value => fields), setting name => its markers]
     */
    protected static function show_hide_rules(string $html): array {
        if (preg_match('~data-dependencies="([^"]+)"~', $html, $m)) {
            $rules = json_decode(html_entity_decode($m[1], ENT_QUOTES), true);
        } else {
            $start = strpos($html, '{', (int) strpos($html, 'init(', (int) strpos($html, "'core/showhidesettings'")));
            for ($i = $start, $depth = 0; $i < strlen($html); $i++) {
                $depth += $html[$i] === '{' ? 1 : ($html[$i] === '}' ? -1 : 0);
                if ($depth === 0) {
                    break;
                }
            }
            $rules = json_decode(substr($html, $start, $i - $start + 1), true);
            $rules = $rules['dependencies'] ?? $rules;
        }
        $doc = new \DOMDocument();
        $previous = libxml_use_internal_errors(true);
        $doc->loadHTML('<?xml encoding="UTF-8">' . $html);
        libxml_use_internal_errors($previous);
        $xpath = new \DOMXPath($doc);
        $markers = [];
        foreach ($xpath->query("//input[@disabled and starts-with(@name, 's_logstore_tsdb_')]") as $input) {
            $item = $xpath->query("ancestor::div[contains(concat(' ', @class, ' '), ' form-item ')][1]", $input)->item(0);
            $name = substr($item->getAttribute('id'), strlen('admin-'));
            $markers[$name][] = substr($input->getAttribute('name'), strlen('s_logstore_tsdb_'));
        }
        return [$rules, $markers];
    }

    /**
     * The page shows only what the chosen backend uses: Moodle's show/hide rules hide each backend's settings and
     * headings for the other backends, and everything the extension takes from php.ini when that is the source; the
     * rules are few (Moodle 4.5 wants them under 1024 characters) and the page has no debugging message about them.
     */
    public function test_only_the_chosen_backends_settings_are_shown(): void {
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::PAGE);
        $this->assert_no_php_notice($html, 'settings page');
        [$rules, $markers] = self::show_hide_rules($html);
        $this->assertIsArray($rules);
        $this->assertLessThan(1024, strlen(json_encode($rules)));
        $hidden = function(string $field, string $condition, string $value) use ($rules, $markers): array {
            $hiding = [];
            foreach ($rules["s_logstore_tsdb_$field"][$condition] as $values => $fields) {
                if ($condition === 'in' ? in_array($value, explode('|', $values), true) : (string) $values === $value) {
                    $hiding = array_merge($hiding, $fields);
                }
            }
            $out = [];
            foreach ($markers as $name => $marks) {
                foreach ($marks as $mark) {
                    if (in_array("s_logstore_tsdb_$mark", $hiding, true)) {
                        $out[] = $name;
                    }
                }
            }
            $out = array_values(array_unique($out));
            sort($out);
            return $out;
        };
        $sorted = function(array $names): array {
            sort($names);
            return $names;
        };
        $this->assertSame($sorted(['heading_file', 'path', 'format', 'heading_postgres', 'host', 'port', 'dbname', 'user',
            'sslmode', 'schema', 'table', 'application_name', 'statement_timeout_ms', 'idle_close_ms', 'retention_days',
            'org', 'bucket', 'token']), $hidden('backend', 'in', 'influxdb1'), 'InfluxDB 1.x: neither file, PostgreSQL nor 2.x');
        $this->assertSame($sorted(['heading_file', 'path', 'format', 'heading_influxdb', 'url', 'org', 'bucket', 'token',
            'database', 'retention_policy', 'create_database', 'username', 'measurement', 'tags', 'gzip', 'max_batch_bytes',
            'timeout_ms', 'tls_verify', 'pseudonymise']), $hidden('backend', 'in', 'postgres'), 'PostgreSQL: neither file nor InfluxDB');
        $this->assertContains('heading_credentials', $hidden('backend', 'in', 'file'));
        $this->assertContains('password', $hidden('backend', 'in', 'influxdb2'));
        $this->assertNotContains('password', $hidden('backend', 'in', 'postgres'));
        // php.ini as the source: what the extension takes from php.ini is hidden, the filters are not.
        $phpini = $hidden('configsource', 'eq', 'phpini');
        foreach (settings_definition::all() as $name => $def) {
            if (!in_array($def['section'], settings_definition::TUNING_SECTIONS, true)) {
                $this->assertSame(!empty($def['ext']), in_array($name, $phpini, true), $name);
            }
        }
        $this->assertContains('heading_postgres', $phpini);
        $this->assertNotContains('heading_filters', $phpini);
        $this->assert_fpm_log_clean();
    }

    /**
     * In a real browser (headless Chromium), choosing each backend in the page's own select leaves exactly the
     * settings and headings that backend uses visible; choosing the php.ini source hides everything php.ini gives.
     */
    public function test_the_browser_shows_only_the_chosen_backends_settings(): void {
        $script = dirname(__DIR__) . '/fixtures/settings_browser.py';
        foreach (['/usr/bin/chromium', '/usr/bin/chromedriver'] as $binary) {
            if (!is_executable($binary)) {
                $this->server_env('TSDB_TEST_CHROMIUM_MISSING_' . basename($binary));
            }
        }
        [$rc, $out, $err] = tsdb_test_site::run(['/usr/bin/python3', $script, tsdb_test_site::$info->wwwroot,
            tsdb_test_site::$info->adminuser, tsdb_test_site::$info->adminpass]);
        $this->assertSame(0, $rc, "$out\n$err");
        $seen = json_decode($out, true);
        $this->assertIsArray($seen, $out);
        // Errors of the site's own pages (the test machine has no network: MathJax's CDN cannot load).
        $this->assertSame([], array_values(array_filter($seen['errors'], function($error) {
            return strpos($error, 'net::ERR_NAME_NOT_RESOLVED') === false;
        })), 'no error in the browser console');
        $defs = settings_definition::all();
        $members = [];
        foreach (settings_definition::sections() as $section) {
            if (in_array($section, settings_definition::TUNING_SECTIONS, true)) {
                continue;
            }
            $names = array_keys(array_filter($defs, function($def) use ($section) {
                return $def['section'] === $section;
            }));
            $extonly = array_filter($names, function($name) use ($defs) {
                return empty($defs[$name]['ext']);
            }) === [];
            $members['heading_' . $section] = $extonly;
            foreach ($names as $name) {
                $members[$name] = !empty($defs[$name]['ext']);
            }
        }
        $expected = function(string $backend, bool $phpini) use ($members): array {
            $out = [];
            foreach ($members as $name => $fromphpini) {
                $backends = settings_definition::used_by($name);
                if (($backends === null || in_array($backend, $backends, true)) && !($phpini && $fromphpini)) {
                    $out[] = $name;
                }
            }
            sort($out);
            return $out;
        };
        foreach (settings_definition::BACKENDS as $backend) {
            $this->assertSame($expected($backend, false), $seen[$backend], "backend $backend chosen");
        }
        $this->assertSame($expected('postgres', true), $seen['phpini'], 'php.ini chosen (the page\'s backend: postgres)');
        $this->assertLessThan(30, count($seen['postgres']), 'a first configuration is one screen, not six');
    }

    /**
     * A stored secret is shown as stored (never its value); an empty one is not.
     */
    public function test_a_stored_secret_is_shown_as_stored(): void {
        $secret = 'pw-' . bin2hex(random_bytes(8));
        $this->configure(['password' => $secret, 'token' => '']);
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get(self::PAGE);
        $this->assert_no_php_notice($html, 'settings page');
        $this->assertStringNotContainsString($secret, $html);
        $stored = get_string('secretstored', 'logstore_tsdb');
        $this->assertMatchesRegularExpression('~id="admin-password".{0,3000}' . preg_quote($stored, '~') . '~s', $html,
            'the password is shown as stored');
        $token = strpos($html, 'id="admin-token"');
        $this->assertNotFalse($token, 'the token field is on the page');
        $next = strpos($html, 'id="admin-', $token + 1);
        $this->assertStringNotContainsString($stored, substr($html, $token, $next === false ? 3000 : $next - $token),
            'the empty token is not');
        $this->assertSame(1, substr_count($html, $stored));
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
