<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The store as \core\log\sql_reader on PostgreSQL, inside a real site: the queries of Moodle's Logs and Live logs
 * reports against the extension's table, compared event by event with the answer of the site's real logstore_standard
 * reader over its logstore_standard_log holding the same events (log_dataset, written there through $DB and into the
 * extension's table through the extension).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/reader_comparison.php');

use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\reader\unsupported_query;

/**
 * Reader tests (PostgreSQL).
 */
class reader_test extends base_testcase {
    use reader_comparison;

    /** @var int Events in the dataset. */
    const N = 6000;

    /** @var string|null The extension's table of this run. */
    protected static $table = null;

    /** @var array[] The generated entries. */
    protected static $entries = [];

    /**
     * Writes the dataset once through the extension into the TSDB table.
     */
    public static function setUpBeforeClass(): void {
        if (!getenv('TSDB_TEST_PG_HOST') || !function_exists('tsdb_log_event')) {
            return;
        }
        self::$table = 'reader_t' . getmypid();
        log_dataset::drop_tsdb_table(self::$table);
        self::$entries = log_dataset::generate(self::N);
        log_dataset::write_through_extension(self::$entries, log_dataset::pg_settings(self::$table));
    }

    /**
     * Drops the table.
     */
    public static function tearDownAfterClass(): void {
        if (self::$table) {
            log_dataset::drop_tsdb_table(self::$table);
        }
        pgdb::$forcepdo = false;
    }

    /**
     * Needs PostgreSQL; the same events in the site's logstore_standard_log (the base class empties it).
     */
    protected function setUp(): void {
        parent::setUp();
        $this->server_env('TSDB_TEST_PG_HOST');
        $this->assertNotNull(self::$table, 'the dataset was written');
        log_dataset::create_standard_table();
        log_dataset::insert_standard(self::$entries);
        pgdb::$forcepdo = false;
    }

    /**
     * The tsdb store configured for the postgres backend on this run's table.
     *
     * @return \logstore_tsdb\log\store
     */
    protected function store(): \logstore_tsdb\log\store {
        $this->configure(log_dataset::pg_settings(self::$table));
        return get_log_manager()->get_readers()['logstore_tsdb'];
    }

    /**
     * The report_log filter combinations a site administrator can pick.
     *
     * @return array name => filters
     */
    protected static function report_log_filters(): array {
        $day = 86400;
        $s = log_dataset::START;
        return [
            'site, everything' => [],
            'site course id (no course filter)' => ['courseid' => 1],
            'course' => ['courseid' => 3],
            'course + user' => ['courseid' => 3, 'userid' => 7],
            'course + activity' => ['courseid' => 3, 'modid' => 302],
            'course + activity + user (crud/edulevel IN for the index)' => ['courseid' => 4, 'modid' => 401, 'userid' => 12],
            'action create' => ['courseid' => 4, 'action' => 'c'],
            'action view' => ['courseid' => 4, 'action' => 'r'],
            'action update' => ['action' => 'u'],
            'action delete' => ['action' => 'd'],
            'all changes' => ['courseid' => 5, 'action' => 'cud'],
            'edulevel other' => ['edulevel' => 0],
            'edulevel teaching' => ['edulevel' => 1],
            'edulevel participating' => ['courseid' => 6, 'edulevel' => 2],
            'origin web' => ['courseid' => 2, 'origin' => 'web'],
            'origin cli' => ['origin' => 'cli'],
            'origin ws' => ['origin' => 'ws'],
            'origin restore' => ['origin' => 'restore'],
            'origin other' => ['origin' => '---'],
            'date' => ['date' => $s + $day],
            'date + course' => ['date' => $s + 2 * $day, 'courseid' => 5],
            'group' => ['courseid' => 6, 'groupmembers' => [3, 5, 8, 13, 21]],
            'empty group' => ['courseid' => 6, 'groupmembers' => []],
            'site errors' => ['siteerrors' => 1],
            'with anonymous events' => ['courseid' => 2, 'viewanonymous' => 1],
            'guest user' => ['userid' => 1],
            'everything at once' => ['courseid' => 7, 'userid' => 9, 'action' => 'r', 'edulevel' => 2, 'origin' => 'web',
                'date' => $s + 3 * $day],
        ];
    }

    /**
     * report_log: every filter, first, second and last page, and the count, equal to logstore_standard's answer.
     */
    public function test_report_log_pages_match_standard_store(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $nonempty = 0;
        foreach (self::report_log_filters() as $name => $filters) {
            $perpage = 30;
            $total = $this->assert_report_log_page($ref, $store, $filters, 0, $perpage, $name);
            foreach (array_unique([1, max(1, intdiv($total - 1, $perpage))]) as $page) {
                $this->assert_report_log_page($ref, $store, $filters, $page, $perpage, $name);
            }
            if ($total > 0) {
                $nonempty++;
            }
        }
        $this->assertGreaterThanOrEqual(count(self::report_log_filters()) - 1, $nonempty,
            'the dataset gives rows for all filters but the empty group');
    }

    /**
     * report_log downloads (no paging: the iterator reads through a server-side cursor) match too, and an event
     * stream of several cursor pages is complete and in order.
     */
    public function test_report_log_download_matches_standard_store(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        foreach (['site, everything' => [], 'course' => ['courseid' => 3], 'origin other' => ['origin' => '---']] as $name => $f) {
            $want = report_log_queries::download($ref, $f);
            $got = report_log_queries::download($store, $f);
            $this->assert_same_events($want, $got, "download $name");
        }
        $all = report_log_queries::download($store, ['viewanonymous' => 1], 'timecreated ASC');
        $this->assertCount(self::N, $all);
        $times = array_map(function($e) {
            return (int) $e->timecreated;
        }, $all);
        $sorted = $times;
        sort($sorted);
        $this->assertSame($sorted, $times);
    }

    /**
     * report_loglive: per course and site, "since" anywhere in the data, two pages and the count.
     */
    public function test_loglive_matches_standard_store(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $this->assert_loglive_matches($ref, $store, [0, 3, 8], [0, 1, 4], 12, 100);
    }

    /**
     * Fragments in every placeholder style, with timecreated in every shape (the added time range must never change
     * the answer), constants, ORs, string literals holding placeholder characters, and hostile values.
     */
    public function test_fragments_and_parameters(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $t = log_dataset::START + 86400 + 7 * 3600;
        $cases = [
            ['timecreated >= :a AND timecreated <= :b', ['a' => $t, 'b' => $t + 7200]],
            ['timecreated > ? AND timecreated < ?', [$t, $t + 7200]],
            ['timecreated BETWEEN :a AND :b AND courseid = :c', ['a' => $t, 'b' => $t + 50000, 'c' => 4]],
            [':a < timecreated AND :b >= timecreated', ['a' => $t, 'b' => $t + 3600]],
            ['timecreated > :a', ['a' => (string) $t]],
            ['timecreated = :a', ['a' => self::$entries[10]['timecreated']]],
            ['timecreated > 1741050000.5 AND timecreated <= 1741060000.5', []],
            ['(timecreated > :a AND courseid = :c) AND anonymous = 0', ['a' => $t, 'c' => 3]],
            ['timecreated > :a OR courseid = :c', ['a' => $t + 3 * 86400, 'c' => 3]],
            ['NOT (timecreated > :a) AND courseid = :c', ['a' => $t, 'c' => 3]],
            ['timecreated > :a AND timecreated < :b', ['a' => $t + 7200, 'b' => $t]],
            ['timecreated > 1741050000 AND timecreated <= 1741060000', []],
            ['1 = 1 AND userid = $1', [5], '1 = 1 AND userid = ?'],
            ['courseid IN (?, ?, ?) AND crud <> ?', [2, 3, 4, 'r']],
            // Placeholder characters inside a string literal: Moodle's DML counts them as placeholders and refuses the
            // fragment, the tsdb reader reads the literal; the reference gets the literal as a bound value.
            ["origin <> 'what?:name\$1' AND eventname = :e", ['e' => '\\core\\event\\course_viewed'],
                'origin <> :lit AND eventname = :e', ['lit' => 'what?:name$1', 'e' => '\\core\\event\\course_viewed']],
            ['origin = :o', ['o' => "web' OR '1'='1"]],
            ['origin = :o', ['o' => "web'; DROP TABLE mdl_logstore_standard_log; --"]],
            ['ip = ? OR ip LIKE ?', ['10.0.1.1', '2001:db8::%']],
            ['relateduserid IS NULL AND edulevel = 0', []],
            ['realuserid IS NOT NULL', []],
            ['other LIKE :o', ['o' => '%quotes%']],
            ['userid = :u', ['u' => true]],
            ['', []],
        ];
        // PostgreSQL refuses a fraction for a bigint parameter: both stores fail the same way.
        foreach ([$ref, $store] as $reader) {
            try {
                $reader->get_events_select_count('timecreated > :a', ['a' => $t + 0.5]);
                $this->fail(get_class($reader) . ' accepted a fraction for timecreated');
            } catch (moodle_exception $e) {
                $this->assertStringContainsString('invalid input syntax for type bigint', $e->getMessage() . ' ' . $e->debuginfo);
            }
        }
        foreach ($cases as $case) {
            [$where, $params] = $case;
            // The reference's own spelling of the same condition, where one is given.
            $refwhere = $case[2] ?? $where;
            $refparams = $case[3] ?? $params;
            $this->assertSame($ref->get_events_select_count($refwhere, $refparams),
                $store->get_events_select_count($where, $params), "count of $where " . json_encode($params));
            $this->assertSame($ref->get_events_select_exists($refwhere, $refparams),
                $store->get_events_select_exists($where, $params), "exists $where");
            $this->assert_same_events($ref->get_events_select($refwhere, $refparams, 'timecreated DESC', 5, 40),
                $store->get_events_select($where, $params, 'timecreated DESC', 5, 40), "page of $where");
        }
        // The hostile values were bound: both tables are still there, with every row.
        $this->assertSame(self::N, $ref->get_events_select_count('', []));
        $this->assertSame(self::N, $store->get_events_select_count('', []));
    }

    /**
     * The timecreated range becomes a time range: the date filter of report_log reads one day's partition only, and
     * the course filter uses the (courseid, time) index for "newest first".
     */
    public function test_time_range_prunes_partitions(): void {
        $store = $this->store();
        $reader = $store->get_reader();
        $date = log_dataset::START + 2 * 86400;
        report_log_queries::page($store, ['date' => $date, 'courseid' => 5], 0, 30);
        $this->assertStringContainsString('"time" >= to_timestamp(', $reader->lastsql);
        $this->assertStringContainsString('"time" < to_timestamp(', $reader->lastsql);
        $this->assertContains($date + 1, $reader->lastparams, 'timecreated > :date is time >= date + 1');
        $this->assertContains($date + 86400, $reader->lastparams);
        $plan = $this->explain($reader);
        preg_match_all('/' . preg_quote(self::$table, '/') . '_p(\d{8})/', $plan, $m);
        $this->assertSame(['20250305'], array_values(array_unique($m[1])), "one partition scanned:\n$plan");

        // Live logs of one course: the (courseid, time DESC) index, newest first, no sort of the course's rows.
        report_loglive_queries::page($store, 3, log_dataset::START, 0, 100);
        $plan = $this->explain($reader);
        $this->assertMatchesRegularExpression('/Index Scan using \S*course(id)?_time_idx/', $plan);
        $this->assertStringNotContainsString('Index Scan Backward', $plan, 'the index is newest first');

        // Without a timecreated condition every partition is read.
        $store->get_events_select_count('courseid = :c', ['c' => 3]);
        $plan = $this->explain($reader);
        preg_match_all('/' . preg_quote(self::$table, '/') . '_p(\d{8})/', $plan, $m);
        $this->assertGreaterThanOrEqual(5, count(array_unique($m[1])));
    }

    /**
     * A report page takes the table's data span from the site's cache for a minute: events written since, older and
     * newer than the cached span, are on the pages all the same (a stale span changes how many windows a page takes,
     * never its rows), first pages newest first and oldest first.
     */
    public function test_a_stale_data_span_changes_no_page(): void {
        $table = 'reader_span_' . getmypid();
        log_dataset::drop_tsdb_table($table);
        $settings = log_dataset::pg_settings($table);
        try {
            $middle = log_dataset::generate(300, 2, 11, log_dataset::START + 10 * DAYSECS);
            log_dataset::write_through_extension($middle, $settings);
            $this->configure($settings);
            $cfg = \logstore_tsdb\log\store::read_plugin_config();
            $reader = new tsdb_test_span_reader($cfg);
            $before = $reader->span();
            $this->assertSame(log_dataset::START + 10 * DAYSECS, $before[0], 'the first day of the events');
            $this->assertSame(max(array_column($middle, 'timecreated')) + 1, $before[1],
                'the second after the newest event (not the end of its partition, made days ahead)');
            // Older and newer events than the cached span.
            $older = log_dataset::generate(50, 1, 12, log_dataset::START);
            $newer = log_dataset::generate(50, 1, 13, log_dataset::START + 20 * DAYSECS);
            log_dataset::write_through_extension(array_merge($older, $newer), $settings);
            $this->assertSame($before, $reader->span(), 'the cached span, stale now');
            $this->assertSame([log_dataset::START, max(array_column($newer, 'timecreated')) + 1], $reader->span_now(),
                'the older and newer events are in the table');
            $all = array_column(array_merge($older, $middle, $newer), 'timecreated');
            $store = get_log_manager()->get_readers()['logstore_tsdb'];
            foreach (['timecreated DESC' => SORT_DESC, 'timecreated ASC' => SORT_ASC] as $sort => $order) {
                $want = $all;
                $order === SORT_DESC ? rsort($want) : sort($want);
                $rows = $store->get_reader()->get_rows('', [], $sort, 0, 20);
                $this->assertSame(array_slice($want, 0, 20), array_map('intval', array_column($rows, 'timecreated')),
                    $sort);
            }
        } finally {
            log_dataset::drop_tsdb_table($table);
        }
    }

    /**
     * A page of the whole site among old events is read in the window of its last row (found by a statement that
     * reads only `time`): the same rows as the whole table gives, newest and oldest first, at the start, in the middle
     * and past the end (fewer rows than a page: no window).
     */
    public function test_a_site_page_of_old_events_is_read_from_its_last_row_on(): void {
        $store = $this->store();
        $reader = $store->get_reader();
        $db = $reader->db();
        // Before a time (the Logs report's day is a range): where the table's partitions or chunks end says nothing of
        // its events' age (the extension makes the next days' ahead).
        $where = 'edulevel = :e AND timecreated < :end';
        $params = ['e' => 2, 'end' => log_dataset::START + 40 * DAYSECS];
        [$sql, $values] = \logstore_tsdb\local\reader\pg_reader::where($db, $where, $params);
        foreach (['DESC', 'ASC'] as $dir) {
            $all = $db->query_native('SELECT id, floor(extract(epoch FROM "time"))::bigint AS t FROM ' . $db->table() . $sql
                . " ORDER BY \"time\" $dir, id $dir", $values);
            $this->assertGreaterThan(300, count($all));
            foreach ([[0, 100], [150, 100], [count($all) - 40, 100]] as [$from, $num]) {
                $rows = $reader->get_rows($where, $params, "timecreated $dir", $from, $num);
                $this->assertSame(array_column(array_slice($all, $from, $num), 'id'), array_column($rows, 'id'),
                    "$dir $from $num");
                $last = $all[$from + $num - 1] ?? null;
                if ($last !== null) {
                    // The page's statement carries the window of its last row.
                    $edge = (int) $last->t + ($dir === 'ASC' ? 1 : 0);
                    $this->assertContains($edge, array_map('intval', $reader->lastparams), "$dir $from $num");
                } else {
                    $this->assertSame([2, $params['end'], $params['end']], array_map('intval', $reader->lastparams),
                        "$dir $from $num: no window (the fragment's values and its range on time)");
                }
            }
        }
        // A course's or a user's page is not read that way (few batches hold them): the windows are of whole days.
        $span = new tsdb_test_span_reader(\logstore_tsdb\log\store::read_plugin_config());
        $dataend = $span->span()[1];
        foreach ([['courseid = :c', ['c' => 3]], ['userid IN (:u1, :u2) AND edulevel = 2', ['u1' => 7, 'u2' => 8]]] as [$w, $p]) {
            $windows = $span->windows_of($w, $p, 'timecreated DESC', 0, 100);
            $this->assertSame([$dataend - DAYSECS, null], $windows[0], $w);
            $this->assertSame([null, null], end($windows), $w);
        }
        $this->assertCount(2, $span->windows_of($where, $params, 'timecreated DESC', 0, 100), 'the page\'s window, then none');
    }

    /**
     * The same answers through PDO (no pgsql extension).
     */
    public function test_pdo_driver(): void {
        pgdb::$forcepdo = true;
        $store = $this->store();
        $this->assertTrue($store->get_reader()->db()->uses_pdo());
        $ref = log_dataset::standard_reader();
        foreach (['course + user' => ['courseid' => 3, 'userid' => 7], 'date' => ['date' => log_dataset::START + 86400],
                'origin other' => ['origin' => '---']] as $name => $f) {
            $this->assert_report_log_page($ref, $store, $f, 1, 20, "PDO $name");
        }
        $this->assertSame($ref->get_events_select_count('origin <> ? AND ip = ?', ['what?:name', self::$entries[3]['ip']]),
            $store->get_events_select_count("origin <> 'what?:name' AND ip = ?", [self::$entries[3]['ip']]));
        $this->assertCount(self::N, report_log_queries::download($store, ['viewanonymous' => 1]));
    }

    /**
     * get_log_event(): Moodle's restore with the log extras, unknown classes as unknown_logged, bad rows skipped.
     */
    public function test_get_log_event(): void {
        $store = $this->store();
        $events = $store->get_events_select('eventname = :e', ['e' => '\\mod_quiz\\event\\attempt_submitted'], 'timecreated ASC',
            0, 1);
        $event = reset($events);
        $this->assertInstanceOf(\mod_quiz\event\attempt_submitted::class, $event);
        $this->assertTrue($event->is_restored());
        $this->assertSame(['origin', 'ip', 'realuserid'], array_keys($event->get_logextra()));
        $this->assertIsArray($event->other);
        $this->assertSame([1, 2.5, true, null], $event->other['nested']['a']);
        $events = $store->get_events_select('eventname = :e', ['e' => '\\core\\event\\user_graded'], '', 0, 1);
        $this->assertInstanceOf(\core\event\user_graded::class, reset($events));
        $events = $store->get_events_select('eventname = :e', ['e' => '\\core\\event\\antivirus_file_infected'], '', 0, 1);
        $this->assertInstanceOf(\core\event\unknown_logged::class, reset($events), 'a class this Moodle does not have');
        $this->assertNull($store->get_log_event((object) ['eventname' => '\\core\\event\\evil', 'component' => 'core',
            'action' => 'x', 'target' => 'y', 'other' => null, 'origin' => 'web', 'ip' => '', 'realuserid' => null]));
    }

    /**
     * Bad calls fail loudly; the file backend cannot be read; is_logging() follows the writer.
     */
    public function test_errors_and_is_logging(): void {
        $store = $this->store();
        $this->assertTrue($store->is_logging());
        foreach (['timecreated DESC; DROP TABLE x', 'other ASC', 'nosuchcolumn', 'timecreated DESC, (SELECT 1)'] as $sort) {
            try {
                $store->get_events_select('', [], $sort, 0, 1);
                $this->fail("sort $sort accepted");
            } catch (coding_exception $e) {
                $this->assertStringContainsString('unsupported sort', $e->getMessage());
            }
        }
        foreach ([['courseid = :c AND userid = ?', ['c' => 1, 2]], ['courseid = :c', []], ['courseid = ? AND userid = ?', [1]]]
                as [$where, $params]) {
            try {
                $store->get_events_select_count($where, $params);
                $this->fail("$where accepted");
            } catch (coding_exception $e) {
                $this->assertStringContainsString('logstore_tsdb reader', $e->getMessage());
            }
        }
        // Before the writer created the table: no events, no error.
        $this->configure(['table' => 'reader_not_yet_' . getmypid()]);
        $empty = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertSame(0, $empty->get_events_select_count('courseid = ?', [3]));
        $this->assertSame([], $empty->get_events_select('', [], 'timecreated DESC', 0, 10));
        $this->assertFalse($empty->get_events_select_exists('', []));
        $this->assertSame([], iterator_to_array($empty->get_events_select_iterator('', [], '', 0, 0)));
        $this->configure(['backend' => 'file']);
        $file = get_log_manager()->get_readers()['logstore_tsdb'];
        try {
            $file->get_events_select_count('', []);
            $this->fail('file backend read');
        } catch (unsupported_query $e) {
            $this->assertStringContainsString('keeps no queryable copy', $e->getMessage());
        }
    }
}

/**
 * The reader with its data span visible: as cached, and as the catalog says now.
 */
class tsdb_test_span_reader extends \logstore_tsdb\local\reader\pg_reader {
    /**
     * The span a report page would use (the site's cache, at most a minute old).
     *
     * @return int[]|null
     */
    public function span(): ?array {
        return $this->data_span($this->db());
    }

    /**
     * The span as the catalog says it now.
     *
     * @return int[]|null
     */
    public function span_now(): ?array {
        return $this->data_span_now($this->db());
    }

    /**
     * The windows a page would be looked for in.
     *
     * @param string $where
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return array[]
     */
    public function windows_of(string $where, array $params, string $sort, int $limitfrom, int $limitnum): array {
        return $this->windows($this->db(), \logstore_tsdb\local\reader\fragment::parse($where, $params), $sort, $limitfrom,
            $limitnum);
    }
}
