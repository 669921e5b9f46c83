<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * A deterministic, Moodle-shaped event log for the reader, import, analytics and dashboard tests, and the helpers that
 * put it into the site's real logstore_standard_log (the reference: Moodle's own table, filled through $DB and read
 * by the real logstore_standard reader) and into the TSDB through the real extension.
 *
 * The entries are synthetic (user ids 0-41, courses 2-9, context ids derived from them): they need not exist in the
 * site, since neither reader looks them up; tests that show events on Moodle's pages use generated users and courses.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * Dataset and loaders.
 */
class log_dataset {

    /** @var string[] The 20 columns of logstore_standard_log without id, in its order. */
    const COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel', 'contextid',
        'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other', 'timecreated',
        'origin', 'ip', 'realuserid'];

    /** @var array Event kinds: eventname => [crud, edulevel, contextlevel kind, objecttable, weight]. */
    const KINDS = [
        '\\core\\event\\course_viewed' => ['r', 2, 'course', null, 30],
        '\\mod_forum\\event\\discussion_viewed' => ['r', 2, 'module', 'forum_discussions', 14],
        '\\mod_page\\event\\course_module_viewed' => ['r', 2, 'module', 'page', 14],
        '\\mod_forum\\event\\post_created' => ['c', 2, 'module', 'forum_posts', 6],
        '\\mod_quiz\\event\\attempt_submitted' => ['u', 2, 'module', 'quiz_attempts', 5],
        '\\core\\event\\course_module_updated' => ['u', 1, 'module', 'course_modules', 4],
        '\\core\\event\\course_module_deleted' => ['d', 1, 'module', 'course_modules', 2],
        '\\core\\event\\user_graded' => ['u', 1, 'course', 'grade_grades', 5],
        '\\core\\event\\user_loggedin' => ['r', 0, 'system', 'user', 8],
        '\\core\\event\\user_login_failed' => ['r', 0, 'system', null, 3],
        '\\core\\event\\dashboard_viewed' => ['r', 0, 'user', null, 6],
        '\\core\\event\\antivirus_file_infected' => ['c', 0, 'system', null, 1],
        '\\core\\event\\user_profile_viewed' => ['r', 0, 'user', 'user', 2],
    ];

    /** @var string[] Origins and their share: web, cli, ws, restore, and one Moodle does not list (report_log's "other"). */
    const ORIGINS = ['web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'cli',
        'cli', 'ws', 'ws', 'restore', 'sync'];

    /** @var int 2025-03-03 00:00:00 UTC, a Monday: the first day of the generated log. */
    const START = 1740960000;

    /**
     * The component, action and target of an event name (as \core\event\base::create() derives them).
     *
     * @param string $eventname
     * @return array [component, action, target]
     */
    public static function parts(string $eventname): array {
        $parts = explode('\\', ltrim($eventname, '\\'));
        $name = end($parts);
        $pos = strrpos($name, '_');
        return [$parts[0], substr($name, $pos + 1), substr($name, 0, $pos)];
    }

    /**
     * Generates events: every one in its own second (so "timecreated DESC" is a total order and pages are comparable
     * row by row), in a shuffled logging order (so ids do not follow time).
     *
     * @param int $n
     * @param int $days spread over this many days from $start
     * @param int $seed
     * @param int $start first day (midnight UTC), default START
     * @return array[] entries with the 20 columns, `other` as an array or null
     */
    public static function generate(int $n, int $days = 5, int $seed = 7, int $start = self::START): array {
        mt_srand($seed);
        $wheel = [];
        foreach (self::KINDS as $name => $k) {
            for ($i = 0; $i < $k[4]; $i++) {
                $wheel[] = $name;
            }
        }
        $span = $days * 86400;
        $seconds = [];
        while (count($seconds) < $n) {
            // Daytime-heavy: 80 % between 08:00 and 20:00 UTC.
            $day = mt_rand(0, $days - 1);
            $hour = mt_rand(0, 99) < 80 ? mt_rand(8, 19) : mt_rand(0, 23);
            $t = $start + $day * 86400 + $hour * 3600 + mt_rand(0, 3599);
            if ($t < $start + $span) {
                $seconds[$t] = true;
            }
        }
        $seconds = array_keys($seconds);
        $entries = [];
        foreach ($seconds as $t) {
            $name = $wheel[mt_rand(0, count($wheel) - 1)];
            [$crud, $edulevel, $level, $objecttable] = self::KINDS[$name];
            [$component, $action, $target] = self::parts($name);
            $userid = $name === '\\core\\event\\user_login_failed' ? 0 : (mt_rand(0, 49) ? mt_rand(2, 41) : 1);
            $courseid = in_array($level, ['course', 'module'], true) ? mt_rand(2, 9) : 1;
            switch ($level) {
                case 'module':
                    $cmid = $courseid * 100 + mt_rand(1, 5);
                    [$contextid, $contextlevel, $instanceid] = [100000 + $cmid, 70, $cmid];
                    break;
                case 'course':
                    [$contextid, $contextlevel, $instanceid] = [1000 + $courseid, 50, $courseid];
                    break;
                case 'user':
                    [$contextid, $contextlevel, $instanceid] = [5000 + max($userid, 1), 30, max($userid, 1)];
                    break;
                default:
                    [$contextid, $contextlevel, $instanceid] = [1, 10, 0];
            }
            $other = null;
            if ($name === '\\core\\event\\user_login_failed') {
                $other = ['username' => 'user' . mt_rand(1, 99), 'reason' => mt_rand(1, 3)];
            } else if ($name === '\\mod_forum\\event\\post_created') {
                $other = ['discussionid' => mt_rand(1, 50), 'forumid' => mt_rand(1, 9), 'forumtype' => 'general',
                    'subject' => "Re: \"quotes\" 'and' \\ backslash ünïcödé 😀 ? :name $1"];
            } else if ($name === '\\mod_quiz\\event\\attempt_submitted') {
                $other = ['quizid' => mt_rand(1, 20), 'submitterid' => $userid, 'nested' => ['a' => [1, 2.5, true, null]]];
            }
            $entries[] = [
                'eventname' => $name, 'component' => $component, 'action' => $action, 'target' => $target,
                'objecttable' => $objecttable, 'objectid' => $objecttable ? mt_rand(1, 90000) : null, 'crud' => $crud,
                'edulevel' => $edulevel, 'contextid' => $contextid, 'contextlevel' => $contextlevel,
                'contextinstanceid' => $instanceid, 'userid' => $userid, 'courseid' => $courseid,
                'relateduserid' => $edulevel === 1 || $name === '\\core\\event\\user_profile_viewed' ? mt_rand(2, 41) : null,
                'anonymous' => $name === '\\mod_forum\\event\\post_created' && mt_rand(0, 3) === 0 ? 1 : 0,
                'other' => $other, 'timecreated' => $t, 'origin' => self::ORIGINS[mt_rand(0, count(self::ORIGINS) - 1)],
                'ip' => mt_rand(0, 9) ? '10.0.' . mt_rand(0, 255) . '.' . mt_rand(1, 254)
                    : '2001:db8::' . dechex(mt_rand(1, 65535)),
                'realuserid' => mt_rand(0, 19) ? null : 2,
            ];
        }
        // Logging order is not time order.
        for ($i = count($entries) - 1; $i > 0; $i--) {
            $j = mt_rand(0, $i);
            [$entries[$i], $entries[$j]] = [$entries[$j], $entries[$i]];
        }
        return $entries;
    }

    /**
     * Empties the site's real logstore_standard_log (the name is kept from the time the harness created the table).
     */
    public static function create_standard_table(): void {
        global $DB;
        get_log_manager()->dispose(); // The standard store's buffer goes in first, then out with the rest.
        $DB->delete_records('logstore_standard_log');
    }

    /**
     * Inserts entries into the site's logstore_standard_log in the given order (ids follow it), `other` as JSON (which
     * the standard store's reader decodes as it decodes its serialized values).
     *
     * @param array[] $entries
     */
    public static function insert_standard(array $entries): void {
        global $DB;
        foreach (array_chunk($entries, 1000) as $chunk) {
            $rows = [];
            foreach ($chunk as $e) {
                $row = [];
                foreach (self::COLUMNS as $c) {
                    $row[$c] = $c === 'other' ? json_encode($e['other']) : $e[$c];
                }
                $rows[] = $row;
            }
            $DB->insert_records('logstore_standard_log', $rows);
        }
    }

    /**
     * The site's real logstore_standard reader: the reference every answer of the tsdb reader is compared with.
     *
     * @return \logstore_standard\log\store
     */
    public static function standard_reader(): \logstore_standard\log\store {
        return get_log_manager()->get_readers()['logstore_standard'];
    }

    /**
     * The documented queries of docs/analytics.md: every ```sql or ```influxql block that starts with
     * `-- query: NAME` (pg.* for PostgreSQL), by name, with their {table}, {from}, {to}... placeholders.
     *
     * @return string[] name => query text
     */
    public static function doc_queries(): array {
        $md = file_get_contents(__DIR__ . '/../../../docs/analytics.md');
        preg_match_all('/```\w+\n-- query: ([\w.]+)\n(.*?)```/s', $md, $m, PREG_SET_ORDER);
        $out = [];
        foreach ($m as [, $name, $text]) {
            $out[$name] = trim($text);
        }
        return $out;
    }

    /**
     * Plugin settings for the postgres backend on the test database.
     *
     * @param string $table
     * @return array
     */
    public static function pg_settings(string $table): array {
        return ['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'), 'port' => getenv('TSDB_TEST_PG_PORT') ?: 5432,
            'user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres', 'dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres',
            'password' => getenv('TSDB_TEST_PG_PASSWORD') ?: '', 'schema' => 'public', 'table' => $table,
            'retry_max_elapsed_ms' => 5000, 'mode' => 'async'];
    }

    /**
     * Plugin settings for InfluxDB 1.x on the test server.
     *
     * @param string $database
     * @return array
     */
    public static function influx_settings(string $database): array {
        return ['backend' => 'influxdb1', 'url' => getenv('TSDB_TEST_INFLUX_URL'), 'database' => $database,
            'pseudonymise' => 1, 'retry_max_elapsed_ms' => 5000, 'mode' => 'async'];
    }

    /**
     * Entries with their user ids replaced by pseudonyms as the store replaces them for InfluxDB (pseudonym::get()).
     *
     * @param array[] $entries
     * @return array[]
     */
    public static function pseudonymise(array $entries): array {
        foreach ($entries as $i => $e) {
            foreach (['userid', 'relateduserid', 'realuserid'] as $field) {
                if (!empty($e[$field])) {
                    $entries[$i][$field] = \logstore_tsdb\local\pseudonym::get((int) $e[$field]);
                }
            }
        }
        return $entries;
    }

    /**
     * Writes entries through the extension with a plugin configuration and checks every one was written.
     *
     * @param array[] $entries
     * @param array $settings plugin settings (pg_settings() / influx_settings())
     * @return array tsdb_stats() after the flush
     */
    public static function write_through_extension(array $entries, array $settings): array {
        // No spool unless asked: the default directory may hold other tests' segments, which this process's flush
        // thread would replay into these settings' table.
        $cfg = self::plugin_config($settings + ['spool_dir' => '']);
        tsdb_configure(\logstore_tsdb\local\settings_definition::extension_config($cfg));
        \logstore_tsdb\local\extension::reset_for_tests();
        $before = tsdb_stats();
        foreach ($entries as $e) {
            while (!tsdb_log_event($e)) {
                tsdb_flush(10000);
            }
        }
        $pending = tsdb_flush(60000);
        $stats = tsdb_stats();
        $written = (int) $stats['written'] - (int) $before['written'];
        if ($pending !== 0 || $written !== count($entries)) {
            throw new RuntimeException("extension wrote $written of " . count($entries) . " events, $pending pending: "
                . $stats['last_error']);
        }
        return $stats;
    }

    /**
     * A plugin config object (defaults filled in) from settings, without touching the harness config.
     *
     * @param array $settings
     * @return stdClass
     */
    public static function plugin_config(array $settings): stdClass {
        $cfg = new stdClass();
        foreach (\logstore_tsdb\local\settings_definition::all() as $name => $def) {
            $cfg->$name = $def['default'];
        }
        foreach ($settings as $k => $v) {
            $cfg->$k = $v;
        }
        return $cfg;
    }

    /**
     * Drops the extension's table and its companions (native layout) from the test PostgreSQL database of
     * pg_settings() (not the site's database).
     *
     * @param string $table
     */
    public static function drop_tsdb_table(string $table): void {
        $db = \logstore_tsdb\local\pgdb::from_config(self::plugin_config(self::pg_settings($table)));
        try {
            base_testcase::stop_jobs($db, 'public', $table);
            foreach (['', '_ledger', '_schema', '_daily_courses', '_hourly', '_daily_users', '_daily_active_users',
                    '_daily_courses_mat', '_hourly_mat', '_daily_users_mat', '_summary'] as $suffix) {
                $name = $table . $suffix;
                $kind = $db->query('SELECT relkind FROM pg_class WHERE relname = ?', [$name]);
                if (!$kind) {
                    continue;
                }
                $what = in_array($kind[0]->relkind, ['v', 'm'], true) ? ($kind[0]->relkind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW')
                    : 'TABLE';
                $db->execute("DROP $what IF EXISTS " . \logstore_tsdb\local\pgdb::quote_identifier($name) . ' CASCADE');
            }
        } finally {
            $db->close();
        }
    }

    /**
     * An event's data and log extras, normalised for comparison (values as strings, `other` decoded and key-sorted).
     *
     * @param \core\event\base $event
     * @return array
     */
    public static function normalise_event(\core\event\base $event): array {
        $data = $event->get_data();
        $out = [];
        foreach ($data as $k => $v) {
            $out[$k] = $k === 'other' ? self::canonical($v) : ($v === null ? null : (string) $v);
        }
        foreach ((array) $event->get_logextra() as $k => $v) {
            $out['extra_' . $k] = $v === null ? null : (string) $v;
        }
        $out['class'] = get_class($event);
        ksort($out);
        return $out;
    }

    /**
     * Recursively key-sorted value (jsonb does not keep key order).
     *
     * @param mixed $v
     * @return mixed
     */
    public static function canonical($v) {
        if (!is_array($v)) {
            return $v;
        }
        $v = array_map([self::class, 'canonical'], $v);
        if (array_keys($v) !== range(0, count($v) - 1)) {
            ksort($v);
        }
        return $v;
    }
}
