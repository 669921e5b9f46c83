<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The privacy tests' scenario and tools: real users, courses and activities; real events of several users in several
 * contexts; the backend under test (file, PostgreSQL, TimescaleDB, InfluxDB 1.x) and what it really holds, read
 * without the plugin; privacy requests through the real core_privacy\manager, with an observer that keeps the
 * failures the manager would otherwise only print.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\contextlist_collection;
use core_privacy\local\request\userlist_collection;
use logstore_tsdb\local\influx_client;

/**
 * Moodle's privacy manager without its progress trace on standard output (everything else is the real manager).
 */
class tsdb_test_privacy_manager extends \core_privacy\manager {
    /**
     * No progress lines (a text trace echoes them, as tool_dataprivacy's task shows them in cron's output).
     *
     * @return \progress_trace
     */
    protected static function get_log_tracer() {
        return new \null_progress_trace();
    }
}

/**
 * Keeps what the manager reports to its observer (tool_dataprivacy's observer mails it to the privacy officers).
 */
class tsdb_test_privacy_observer implements \core_privacy\manager_observer {
    /** @var array[] ['exception', 'component', 'interface', 'method'] per failure */
    public $failures = [];

    /**
     * A provider threw.
     *
     * @param \Throwable $e
     * @param string $component
     * @param string $interface
     * @param string $methodname
     * @param array $params
     */
    public function handle_component_failure($e, $component, $interface, $methodname, array $params) {
        $this->failures[] = ['exception' => $e, 'component' => $component, 'interface' => $interface, 'method' => $methodname];
    }
}

/**
 * For base_testcase subclasses that also use tsdb_test_ops.
 */
trait tsdb_privacy_fixture {

    /** @var \stdClass[] users of the scenario: s1, s2, s3 (students), admin, nobody (no event) */
    protected $users = [];

    /** @var \context[] contexts of the scenario: system, course1, course2, page (in course 1), forum (in course 2), s2user */
    protected $contexts = [];

    /** @var \stdClass[] the two courses */
    protected $courses = [];

    /** @var string|null backend under test: file, postgres, timescaledb, influxdb1 */
    protected $backend = null;

    /** @var string table (PostgreSQL, TimescaleDB) or database (InfluxDB) of this test */
    protected $target = '';

    /** @var \PDO|null connection to the TimescaleDB test database */
    protected $tspdo = null;

    /** @var tsdb_test_privacy_observer|null */
    protected $observer = null;

    /** @var array[] failures the manager reported (see tsdb_test_privacy_observer) */
    protected $failures = [];

    /**
     * Two courses (a page in the first, a forum in the second), three enrolled students, a user without events; the
     * events of making them are forgotten.
     */
    protected function create_privacy_fixture(): void {
        $gen = $this->gen();
        $this->courses = [$gen->create_course(), $gen->create_course()];
        $page = $gen->create_module('page', ['course' => $this->courses[0]->id]);
        $forum = $gen->create_module('forum', ['course' => $this->courses[1]->id]);
        foreach (['s1', 's2', 's3'] as $who) {
            $this->users[$who] = $gen->create_user();
            foreach ($this->courses as $course) {
                $gen->enrol_user($this->users[$who]->id, $course->id, 'student');
            }
        }
        $this->users['admin'] = get_admin();
        $this->users['nobody'] = $gen->create_user();
        $this->contexts = [
            'system' => context_system::instance(),
            'course1' => context_course::instance($this->courses[0]->id),
            'course2' => context_course::instance($this->courses[1]->id),
            'page' => context_module::instance($page->cmid),
            'forum' => context_module::instance($forum->cmid),
            's2user' => context_user::instance($this->users['s2']->id),
        ];
        $this->pageid = $page->id;
        $this->forumid = $forum->id;
        $this->forget_events_so_far();
    }

    /** @var int rounds of the scenario fired */
    protected $rounds = 0;

    /** @var int the page's id */
    protected $pageid = 0;

    /** @var int the forum's id */
    protected $forumid = 0;

    /**
     * Fires the scenario's events through Moodle's event API, as the users who do them, then lets both stores write.
     * Per round: s1 views course 1, the page, and s2's profile; s2 views course 1 and the forum; the admin logs in as
     * s3 (user_loggedinas, system context) and views course 2 as s3; s3 views course 2 anonymously.
     *
     * @param int $rounds
     * @return int events fired
     */
    protected function fire_scenario(int $rounds): int {
        $ctx = $this->contexts;
        $s2 = $this->users['s2'];
        $n = 0;
        $this->rounds = $rounds;
        for ($r = 1; $r <= $rounds; $r++) {
            $this->set_user($this->users['s1']);
            \core\event\course_viewed::create(['context' => $ctx['course1'], 'other' => ['coursesectionnumber' => $r]])->trigger();
            \mod_page\event\course_module_viewed::create(['objectid' => $this->pageid, 'context' => $ctx['page']])->trigger();
            \core\event\user_profile_viewed::create(['objectid' => $s2->id, 'relateduserid' => $s2->id,
                'context' => $ctx['s2user'], 'other' => ['courseid' => $this->courses[0]->id,
                'courseshortname' => $this->courses[0]->shortname, 'coursefullname' => $this->courses[0]->fullname]])->trigger();
            $this->set_user($s2);
            \core\event\course_viewed::create(['context' => $ctx['course1']])->trigger();
            \mod_forum\event\course_module_viewed::create(['objectid' => $this->forumid, 'context' => $ctx['forum']])->trigger();
            $this->set_user(get_admin());
            \core\session\manager::loginas($this->users['s3']->id, $ctx['system']);
            try {
                \core\event\course_viewed::create(['context' => $ctx['course2'], 'other' => ['round' => $r]])->trigger();
            } finally {
                \core\session\manager::init_empty_session();
            }
            $this->set_user($this->users['s3']);
            \core\event\course_viewed::create(['context' => $ctx['course2'], 'anonymous' => 1])->trigger();
            $n += 8;
        }
        $this->set_user(null);
        $this->new_request();
        $this->assertSame(0, tsdb_flush(30000), 'events still pending after tsdb_flush()');
        return $n;
    }

    /**
     * Points the store at a backend of this test's own.
     *
     * @param string $backend file, postgres, timescaledb or influxdb1
     * @param array $settings more settings
     */
    protected function use_backend(string $backend, array $settings = []): void {
        global $DB;
        $this->backend = $backend;
        switch ($backend) {
            case 'file':
                $this->configure($settings);
                return;
            case 'postgres':
                $config = $this->pg_settings('privacy');
                $this->target = $config['table'];
                break;
            case 'timescaledb':
                $dsn = parse_url($this->server_env('TSDB_TEST_TIMESCALE_DSN'));
                $this->target = 'privacy_ts_' . getmypid() . '_' . bin2hex(random_bytes(3));
                $config = ['backend' => 'postgres', 'host' => $dsn['host'], 'port' => $dsn['port'] ?? 5432,
                    'user' => urldecode($dsn['user']), 'password' => urldecode($dsn['pass'] ?? ''),
                    'dbname' => ltrim($dsn['path'], '/'), 'schema' => 'public', 'table' => $this->target,
                    'retry_max_elapsed_ms' => 5000];
                $this->tspdo = new \PDO(sprintf('pgsql:host=%s;port=%s;dbname=%s', $config['host'], $config['port'],
                    $config['dbname']), $config['user'], $config['password'], [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION]);
                break;
            case 'influxdb1':
                $this->target = 'privacy_t' . getmypid() . '_' . bin2hex(random_bytes(4));
                $config = ['backend' => 'influxdb1', 'url' => $this->server_env('TSDB_TEST_INFLUX_URL'),
                    'database' => $this->target, 'retry_max_elapsed_ms' => 5000];
                $DB->delete_records('logstore_tsdb_pseudonym');
                \logstore_tsdb\local\pseudonym::reset_cache();
                $this->configure($config + $settings);
                $this->influx()->query('CREATE DATABASE ' . influx_client::quote_identifier($this->target), true);
                return;
            default:
                throw new \coding_exception("unknown backend $backend");
        }
        $this->configure($config + $settings);
    }

    /**
     * Drops the PostgreSQL / TimescaleDB table or the InfluxDB database of the test, and restores the TimescaleDB
     * database's decompression cap.
     */
    protected function drop_privacy_backend(): void {
        if ($this->backend === 'timescaledb' && $this->tspdo) {
            $this->tspdo->exec('ALTER DATABASE ' . $this->ts_dbname()
                . ' RESET timescaledb.max_tuples_decompressed_per_dml_transaction');
            base_testcase::stop_jobs($this->tspdo, 'public', $this->target);
            // The continuous aggregates, then the tables.
            $aggregates = array_fill_keys(array_keys(\logstore_tsdb\local\summary::AGGREGATES), 'MATERIALIZED VIEW');
            foreach ($aggregates + ['' => 'TABLE', '_ledger' => 'TABLE', '_schema' => 'TABLE'] as $suffix => $kind) {
                base_testcase::drop_retrying($this->tspdo, "DROP $kind IF EXISTS public.\"{$this->target}$suffix\" CASCADE");
            }
            $this->tspdo = null;
        } else if ($this->backend === 'influxdb1' && $this->target !== '') {
            $this->influx()->query('DROP DATABASE ' . influx_client::quote_identifier($this->target), true);
        }
        $this->backend = null;
        $this->target = '';
    }

    /**
     * The TimescaleDB test database's name, quoted.
     *
     * @return string
     */
    protected function ts_dbname(): string {
        return '"' . ltrim(parse_url(getenv('TSDB_TEST_TIMESCALE_DSN'), PHP_URL_PATH), '/') . '"';
    }

    /**
     * An InfluxDB client with the site's current configuration.
     *
     * @return influx_client
     */
    protected function influx(): influx_client {
        return new influx_client(\logstore_tsdb\log\store::read_plugin_config());
    }

    /**
     * What the privacy requests meet on a production site: PostgreSQL's summary tables and TimescaleDB's continuous
     * aggregate materialised (today's day included), TimescaleDB's chunks compressed and its decompression cap at 1.
     */
    protected function prepare_backend_for_requests(): void {
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $s1 = (int) $this->users['s1']->id;
        if ($this->backend === 'postgres') {
            $db = \logstore_tsdb\local\pgdb::from_config($cfg);
            (new \logstore_tsdb\local\summary($db, $cfg))->refresh(time() + 2 * 86400);
            $db->close();
            $this->assertSame([['events' => 3 * $this->rounds]], self::pg_query('SELECT sum(events)::int AS events FROM public."'
                . $this->target . '_daily_users_mat" WHERE userid = ?', [$s1]), "s1's events materialised");
        } else if ($this->backend === 'timescaledb') {
            $t = $this->target;
            $this->assertSame('timescaledb', $this->ts_query("SELECT layout FROM public.\"{$t}_schema\"")[0]['layout']);
            $this->ts_refresh();
            $this->assertSame([['events' => 3 * $this->rounds]], $this->ts_query('SELECT sum(events)::int AS events FROM '
                . $this->ts_materialization('_daily_users') . ' WHERE userid = ?', [$s1]), "s1's events materialised");
            $chunks = $this->ts_query("SELECT c::text AS c FROM show_chunks('public.\"$t\"') c");
            $this->assertNotEmpty($chunks);
            foreach ($chunks as $chunk) {
                $this->ts_query('SELECT compress_chunk(?::regclass)', [$chunk['c']]);
            }
            $this->assertSame([['n' => count($chunks)]], $this->ts_query('SELECT count(*)::int AS n FROM '
                . 'timescaledb_information.chunks WHERE hypertable_name = ? AND is_compressed', [$t]), 'every chunk compressed');
            $this->tspdo->exec('ALTER DATABASE ' . $this->ts_dbname()
                . ' SET timescaledb.max_tuples_decompressed_per_dml_transaction = 1');
        }
    }

    /**
     * Materialises the daily users aggregate up to the day after tomorrow; waits while TimescaleDB's own refresh policy
     * job (started when the aggregate was created) runs.
     */
    protected function ts_refresh(): void {
        for ($attempt = 1;; $attempt++) {
            try {
                $this->ts_query("CALL refresh_continuous_aggregate('public.\"{$this->target}_daily_users\"', NULL,"
                    . " now() + interval '2 days')");
                return;
            } catch (\PDOException $e) {
                if ($attempt >= 60 || strpos($e->getMessage(), 'due to a concurrent refresh') === false) {
                    throw $e;
                }
                sleep(1);
            }
        }
    }

    /**
     * Rows of a statement on the TimescaleDB test database.
     *
     * @param string $sql
     * @param array $params
     * @return array[]
     */
    protected function ts_query(string $sql, array $params = []): array {
        $st = $this->tspdo->prepare($sql);
        $st->execute($params);
        return $st->columnCount() ? $st->fetchAll(\PDO::FETCH_ASSOC) : [];
    }

    /**
     * The materialisation hypertable of a continuous aggregate (what was materialised, without the real-time part).
     *
     * @param string $suffix
     * @return string quoted name
     */
    protected function ts_materialization(string $suffix): string {
        $row = $this->ts_query('SELECT materialization_hypertable_schema AS s, materialization_hypertable_name AS n'
            . ' FROM timescaledb_information.continuous_aggregates WHERE view_name = ?', [$this->target . $suffix])[0];
        return '"' . $row['s'] . '"."' . $row['n'] . '"';
    }

    /**
     * The per-user daily summary follows a deletion: s1's materialised events are their events left.
     *
     * @param int $left s1's events (as author) left
     */
    protected function assert_summary_follows(int $left): void {
        $s1 = (int) $this->users['s1']->id;
        if ($this->backend === 'postgres') {
            $this->assertSame([['events' => $left]], self::pg_query('SELECT sum(events)::int AS events FROM public."'
                . $this->target . '_daily_users" WHERE userid = ?', [$s1]), "s1's daily summary after the deletion");
            $this->assertSame([['events' => $left]], self::pg_query('SELECT sum(events)::int AS events FROM public."'
                . $this->target . '_daily_users_mat" WHERE userid = ?', [$s1]), "s1's materialised summary");
        } else if ($this->backend === 'timescaledb') {
            // TimescaleDB decompresses whole batches (up to 1000 rows, ordered by course): this fixture's few events
            // are one batch, so what the deletion left of it is back in the chunk's heap until the compression
            // policy compresses it again; nothing else is.
            $heap = 0;
            foreach ($this->ts_query("SELECT c::text AS c FROM show_chunks('public.\"{$this->target}\"') c") as $chunk) {
                $heap += $this->ts_query("SELECT count(*)::int AS n FROM ONLY {$chunk['c']}")[0]['n'];
            }
            $all = $this->ts_query("SELECT count(*)::int AS n FROM public.\"{$this->target}\"")[0]['n'];
            $this->assertSame($all, $heap, 'rows decompressed by the deletion and not deleted');
            $this->assertSame([['events' => $left]], $this->ts_query('SELECT sum(events)::int AS events FROM '
                . $this->ts_materialization('_daily_users') . ' WHERE userid = ?', [$s1]), "s1's materialised daily users");
            $this->assertSame([['events' => $left]], $this->ts_query('SELECT sum(events)::int AS events FROM public."'
                . $this->target . '_daily_users" WHERE userid = ?', [$s1]), "s1's daily users");
        }
    }

    /**
     * One event as a comparable string: its name, context, users, anonymity, time and `other` (key-sorted).
     *
     * @param array $r
     * @return string
     */
    protected static function event_key(array $r): string {
        $other = $r['other'];
        $other = is_string($other) ? json_decode($other, true) : $other;
        return json_encode([$r['eventname'], (int) $r['contextid'], (int) $r['userid'], (int) $r['relateduserid'],
            (int) $r['realuserid'], (int) $r['anonymous'], (int) $r['timecreated'], self::canonical($other)]);
    }

    /**
     * The standard store's events, as sorted keys.
     *
     * @return string[]
     */
    protected function standard_keys(): array {
        $keys = array_map([self::class, 'event_key'], $this->standard_rows());
        sort($keys);
        return $keys;
    }

    /**
     * What the backend really holds (read without the plugin), as sorted keys; InfluxDB pseudonyms mapped back through
     * Moodle's table.
     *
     * @return string[]
     */
    protected function backend_keys(): array {
        global $DB;
        $this->assertSame(0, tsdb_flush(30000), 'events still pending after tsdb_flush()');
        $cols = implode(', ', self::COLUMNS);
        switch ($this->backend) {
            case 'file':
                $rows = $this->file_rows($this->sink);
                break;
            case 'postgres':
                $rows = self::pg_exists($this->target) ? self::pg_query("SELECT $cols FROM public.\"{$this->target}\"") : [];
                break;
            case 'timescaledb':
                $rows = $this->ts_query("SELECT $cols FROM public.\"{$this->target}\"");
                break;
            case 'influxdb1':
                $users = $DB->get_records_menu('logstore_tsdb_pseudonym', null, '', 'pseudoid, userid');
                $rows = [];
                foreach ($this->influx()->query('SELECT * FROM "moodle_events"') as $p) {
                    foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                        if (isset($p[$f]) && $p[$f] >= \logstore_tsdb\local\pseudonym::MIN) {
                            $p[$f] = $users[$p[$f]] ?? 'unknown pseudonym ' . $p[$f];
                        }
                    }
                    $p['timecreated'] = intdiv((int) $p['time'], 1000000000);
                    $rows[] = $p + array_fill_keys(self::COLUMNS, null);
                }
                break;
            default:
                throw new \coding_exception('no backend');
        }
        $keys = array_map([self::class, 'event_key'], $rows);
        sort($keys);
        return $keys;
    }

    /**
     * Asserts that both stores hold the same events, and how many.
     *
     * @param int $n
     * @param string $msg
     */
    protected function assert_stores_agree(int $n, string $msg): void {
        $standard = $this->standard_keys();
        $this->assertCount($n, $standard, "$msg: the standard store's events");
        $this->assertSame($standard, $this->backend_keys(), "$msg: the TSDB holds what the standard store holds");
    }

    /**
     * The real manager, with this test's observer.
     *
     * @return \core_privacy\manager
     */
    protected function manager(): \core_privacy\manager {
        $this->observer = $this->observer ?? new tsdb_test_privacy_observer();
        $manager = new tsdb_test_privacy_manager();
        $manager->set_observer($this->observer);
        return $manager;
    }

    /**
     * Runs a manager call; what it printed (the manager's debugging() of a failure) and the failures it reported are
     * kept.
     *
     * @param callable $call
     * @return mixed
     */
    protected function with_manager(callable $call) {
        ob_start();
        try {
            return $call($this->manager());
        } finally {
            $this->printed = ob_get_clean();
            $this->failures = $this->observer->failures;
        }
    }

    /**
     * Asserts that no provider failed in the manager calls so far (the manager only prints and reports failures).
     *
     * @param string $msg
     */
    protected function assert_no_failures(string $msg): void {
        $this->assertSame([], array_map(function($f) {
            return $f['component'] . '::' . $f['method'] . ': ' . $f['exception']->getMessage();
        }, $this->failures), "$msg: a provider failed");
    }

    /** @var string what the last manager call printed */
    protected $printed = '';

    /**
     * Sorted context ids.
     *
     * @param \context[] $contexts
     * @return int[]
     */
    protected static function ids(array $contexts): array {
        $ids = array_map(function($c) {
            return (int) $c->id;
        }, $contexts);
        sort($ids);
        return $ids;
    }

    /**
     * The contexts the TSDB store alone finds for a user.
     *
     * @param \stdClass $user
     * @return int[]
     */
    protected function tsdb_contextids(\stdClass $user): array {
        $list = new \core_privacy\local\request\contextlist();
        \logstore_tsdb\privacy\provider::add_contexts_for_userid($list, $user->id);
        $ids = array_map('intval', $list->get_contextids());
        sort($ids);
        return $ids;
    }

    /**
     * The users the TSDB store alone finds in a context.
     *
     * @param \context $context
     * @return int[]
     */
    protected function tsdb_userids(\context $context): array {
        $list = new \core_privacy\local\request\userlist($context, 'logstore_tsdb');
        \logstore_tsdb\privacy\provider::add_userids_for_context($list);
        $ids = array_map('intval', $list->get_userids());
        sort($ids);
        return $ids;
    }

    /**
     * The contexts tool_log gives the manager for a user (every log store's).
     *
     * @param \stdClass $user
     * @return int[]
     */
    protected function manager_contextids(\stdClass $user): array {
        $list = $this->with_manager(function($m) use ($user) {
            return $m->get_contexts_for_userid($user->id)->get_contextlist_for_component('tool_log');
        });
        $ids = $list ? array_map('intval', $list->get_contextids()) : [];
        sort($ids);
        return $ids;
    }

    /**
     * The users tool_log gives the manager for a context.
     *
     * @param \context $context
     * @return int[]
     */
    protected function manager_userids(\context $context): array {
        $list = $this->with_manager(function($m) use ($context) {
            return $m->get_users_in_context($context)->get_userlist_for_component('tool_log');
        });
        $ids = $list ? array_map('intval', $list->get_userids()) : [];
        sort($ids);
        return $ids;
    }

    /**
     * Deletes a user's data in some contexts, as an approved deletion request does.
     *
     * @param \stdClass $user
     * @param \context[] $contexts
     */
    protected function manager_delete_user(\stdClass $user, array $contexts): void {
        $collection = new contextlist_collection($user->id);
        $collection->add_contextlist(new approved_contextlist($user, 'tool_log', self::ids($contexts)));
        $this->with_manager(function($m) use ($collection) {
            $m->delete_data_for_user($collection);
        });
    }

    /**
     * Deletes every user's data in a context (an expired context).
     *
     * @param \context $context
     */
    protected function manager_delete_context(\context $context): void {
        $this->with_manager(function($m) use ($context) {
            $m->delete_data_for_all_users_in_context($context);
        });
    }

    /**
     * Deletes some users' data in a context.
     *
     * @param \context $context
     * @param \stdClass[] $users
     */
    protected function manager_delete_userlist(\context $context, array $users): void {
        $collection = new userlist_collection($context);
        $collection->add_userlist(new approved_userlist($context, 'tool_log', array_column($users, 'id')));
        $this->with_manager(function($m) use ($collection) {
            $m->delete_data_for_users_in_context($collection);
        });
    }

    /**
     * Exports a user's data through the manager (every context tool_log finds, approved) and returns the log files of
     * the zip: store name => context id => decoded data.json.
     *
     * @param \stdClass $user
     * @return array
     */
    protected function manager_export(\stdClass $user): array {
        $zipfile = $this->with_manager(function($m) use ($user) {
            $found = $m->get_contexts_for_userid($user->id)->get_contextlist_for_component('tool_log');
            $collection = new contextlist_collection($user->id);
            $collection->add_contextlist(new approved_contextlist($user, 'tool_log', $found ? $found->get_contextids() : []));
            return $m->export_user_data($collection);
        });
        return $this->zip_logs($zipfile);
    }

    /**
     * The log files of an export zip: store name => context id => decoded data.json.
     *
     * @param string $zipfile
     * @return array
     */
    protected function zip_logs(string $zipfile): array {
        $zip = new \ZipArchive();
        $this->assertTrue($zip->open($zipfile) === true, "the export $zipfile opens");
        $logs = preg_quote(get_string('privacy:path:logs', 'tool_log'), '~');
        $out = [];
        for ($i = 0; $i < $zip->numFiles; $i++) {
            $name = $zip->getNameIndex($i);
            if (preg_match("~ _\\.(\\d+)/$logs/([^/]+)/data\\.json$~", $name, $m)) {
                $out[$m[2]][(int) $m[1]] = json_decode($zip->getFromIndex($i), true);
            }
        }
        $zip->close();
        return $out;
    }

    /**
     * Exports a user through the manager and asserts that the TSDB store's files are the standard store's: the same
     * contexts, the same entries with the same fields in the same order and the same values (`other` compared
     * key-sorted: PostgreSQL's jsonb does not keep key order), plus what each user must see.
     *
     * @param string $who
     * @param array|null $files zip_logs() of an export made elsewhere; null: exported here through the manager
     */
    protected function assert_exports_match(string $who, ?array $files = null): void {
        $user = $this->users[$who];
        if ($files === null) {
            $files = $this->manager_export($user);
            $this->assert_no_failures("export of $who");
        }
        $standard = $files[get_string('pluginname', 'logstore_standard')] ?? [];
        $tsdb = $files[get_string('pluginname', 'logstore_tsdb')] ?? [];
        ksort($standard);
        ksort($tsdb);
        $this->assertSame(array_keys($standard), array_keys($tsdb), "export of $who: the same contexts");
        $entries = 0;
        foreach ($standard as $contextid => $data) {
            $this->assertSame(['logs'], array_keys($tsdb[$contextid]));
            $this->assertCount(count($data['logs']), $tsdb[$contextid]['logs'], "export of $who in context $contextid");
            foreach ($data['logs'] as $i => $entry) {
                $mine = $tsdb[$contextid]['logs'][$i];
                $this->assertSame(array_keys($entry), array_keys($mine), "export of $who, context $contextid, entry $i: fields");
                $this->assertSame(self::canonical($entry), self::canonical($mine),
                    "export of $who, context $contextid, entry $i: values");
                $entries++;
            }
        }
        $this->assertSame(['s1' => 9, 's2' => 9, 's3' => 9, 'admin' => 6][$who] * $this->rounds / 3, $entries,
            "export of $who: entries");
        $ctx = $this->contexts;
        $yes = get_string('yes');
        $no = get_string('no');
        switch ($who) {
            case 's1':
                $first = $tsdb[$ctx['course1']->id]['logs'][0];
                $this->assertSame(\core\event\course_viewed::get_name(), $first['name']);
                $this->assertStringContainsString("'{$user->id}'", $first['description']);
                $this->assertSame(get_string('privacy:request:origin:cli', 'tool_log'), $first['origin']);
                $this->assertSame(['coursesectionnumber' => 1], $first['other']);
                $this->assertSame($yes, $first['author_of_the_action_was_you']);
                $this->assertSame(\core_privacy\local\request\transform::datetime((int) $this->standard_rows(
                    'userid = ? AND contextid = ?', [$user->id, $ctx['course1']->id])[0]['timecreated']), $first['timecreated']);
                break;
            case 's2':
                foreach ($tsdb[$ctx['s2user']->id]['logs'] as $entry) {
                    $this->assertSame(\core\event\user_profile_viewed::get_name(), $entry['name']);
                    $this->assertSame($yes, $entry['related_user_was_you']);
                    $this->assertSame($no, $entry['author_of_the_action_was_you']);
                    $this->assertSame('', $entry['ip'], "another user's IP address is not exported");
                }
                break;
            case 's3':
                $anonymous = array_filter($tsdb[$ctx['course2']->id]['logs'], function($e) {
                    return isset($e['action_was_done_anonymously']);
                });
                $this->assertCount($this->rounds, $anonymous);
                break;
            case 'admin':
                foreach ($tsdb[$ctx['course2']->id]['logs'] as $entry) {
                    $this->assertSame($yes, $entry['masquerading_user_was_you']);
                    $this->assertSame($no, $entry['author_of_the_action_was_you']);
                    $this->assertSame((int) $this->users['s3']->id, $entry['authorid']);
                }
                break;
        }
    }
}
