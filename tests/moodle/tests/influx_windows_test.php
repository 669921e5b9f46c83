<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The InfluxDB reader reads a report page in time windows (the shard group the range ends in, then 1, 2, 4...
 * shard groups further back, the last window open to the end of the range) instead of one query over every shard,
 * and iterates page after page from the time of the last point: a real influxd 1.6.7 inside a real site, events
 * written through the extension with pseudonymised user ids, every answer compared with the site's real
 * logstore_standard reader on the same events in logstore_standard_log — at page boundaries, across shard group
 * boundaries, for a course whose events are all more than a year old, for a course with none, oldest first from a
 * lower bound, and exists().
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/reader_comparison.php');

use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\local\reader\influx_reader;

/**
 * Window reads (InfluxDB).
 */
class influx_windows_test extends base_testcase {
    use reader_comparison;

    /** @var string database of this test ('' until made) */
    protected $database = '';

    /**
     * Empty pseudonym table (the test's writes make them).
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $this->server_env('TSDB_TEST_INFLUX_URL');
        $DB->delete_records('logstore_tsdb_pseudonym');
        pseudonym::reset_cache();
    }

    /**
     * Drops the database of the test.
     */
    protected function tearDown(): void {
        parent::tearDown();
        if ($this->database !== '') {
            $this->client()->query('DROP DATABASE ' . influx_client::quote_identifier($this->database), true);
        }
    }

    /**
     * A client of the test's database.
     *
     * @return influx_client
     */
    protected function client(): influx_client {
        return new influx_client(log_dataset::plugin_config(log_dataset::influx_settings($this->database)));
    }

    /**
     * Writes entries into a new database with that shard group duration (through the extension, user ids pseudonymised
     * as the store does it) and into logstore_standard_log, and points the store at the database.
     *
     * @param array[] $entries
     * @param string $shard InfluxQL duration of a shard group
     * @return influx_reader the store's reader
     */
    protected function load(array $entries, string $shard): influx_reader {
        $this->database = 'windows_t' . getmypid() . '_' . bin2hex(random_bytes(3));
        $this->client()->query('CREATE DATABASE ' . influx_client::quote_identifier($this->database)
            . " WITH SHARD DURATION $shard", true);
        log_dataset::write_through_extension(log_dataset::pseudonymise($entries), log_dataset::influx_settings($this->database));
        log_dataset::insert_standard($entries);
        $this->configure(log_dataset::influx_settings($this->database));
        return $this->store()->get_reader();
    }

    /**
     * The site's logstore_tsdb store.
     *
     * @return \logstore_tsdb\log\store
     */
    protected function store(): \logstore_tsdb\log\store {
        return get_log_manager()->get_readers()['logstore_tsdb'];
    }

    /**
     * Events of log_dataset over the last $days days (the newest less than $newest seconds ago).
     *
     * @param int $n
     * @param int $days
     * @param int $seed
     * @return array[]
     */
    protected static function recent(int $n, int $days, int $seed): array {
        $start = intdiv(time(), 86400) * 86400 - ($days - 1) * 86400;
        return array_values(array_filter(log_dataset::generate($n, $days, $seed, $start), function($e) {
            return $e['timecreated'] < time();
        }));
    }

    /**
     * Moves events near the start of a shard group to its first second or to the last second before it (each event
     * keeps a second of its own), so that pages and windows meet events exactly at their boundaries.
     *
     * @param array[] $entries
     * @param int $group shard group duration, seconds
     * @param int $near seconds from a boundary an event is moved from
     * @return array[]
     */
    protected static function at_boundaries(array $entries, int $group, int $near): array {
        // Shard groups start at multiples of their duration from Go's zero time (0001-01-01, a Monday).
        $offset = ((-62135596800 % $group) + $group) % $group;
        $taken = array_flip(array_column($entries, 'timecreated'));
        foreach ($entries as $i => $e) {
            $r = (($e['timecreated'] - $offset) % $group + $group) % $group;
            $t = $r < $near ? $e['timecreated'] - $r : ($r >= $group - $near ? $e['timecreated'] - $r + $group - 1 : null);
            if ($t !== null && !isset($taken[$t]) && $t < time()) {
                unset($taken[$e['timecreated']]);
                $taken[$t] = true;
                $entries[$i]['timecreated'] = $t;
            }
        }
        return $entries;
    }

    /**
     * A year and more in 7-day shard groups (InfluxDB 1.x's default): the first page of a busy course is read from the
     * newest shard groups only; a course whose events are all more than a year old is found in the last window, open
     * to the beginning; a course without events reads nothing. Every page, count and the whole download (iterated in
     * pages of 7 from the last point's time) equal the standard store's.
     */
    public function test_a_year_in_weekly_shard_groups(): void {
        $cut = time() - 370 * 86400;
        $entries = array_values(array_filter(self::at_boundaries(self::recent(6000, 430, 21), 7 * 86400, 4 * 3600),
                function($e) use ($cut) {
            // Course 9: only events more than a year old.
            return $e['courseid'] !== 9 || $e['timecreated'] < $cut;
        }));
        $old = count(array_filter($entries, function($e) {
            return $e['courseid'] === 9;
        }));
        $this->assertGreaterThan(60, $old, 'course 9 has old events');
        $reader = $this->load($entries, '7d');
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $week = 7 * 86400 * 1000000000;

        foreach ([2, 9, 10] as $courseid) {
            foreach ([0, 1, 3] as $page) {
                $this->assert_report_log_page($ref, $store, ['courseid' => $courseid], $page, 25, "course $courseid");
                $windows = $reader->windows;
                if ($courseid === 2 && $page === 0) {
                    // A busy course: its first page from the newest shard groups (windows of 1 + 1 + 2 + 4 weeks at
                    // most for its ~25 events in three weeks), not from a year of them.
                    $this->assertNotNull($windows[count($windows) - 1][0]);
                    $this->assertGreaterThan(time() * 1000000000 - 9 * $week, $windows[count($windows) - 1][0],
                        'course 2, page 1: windows ' . json_encode($windows));
                }
                if ($courseid === 9) {
                    // Nothing in the last year: the windows went back more than a year.
                    $this->assertLessThan($cut * 1000000000, $windows[count($windows) - 1][0] ?? PHP_INT_MIN,
                        "course 9: windows " . json_encode($windows));
                }
                if ($courseid === 10) {
                    // No events at all: every window, the last one open to the beginning of time.
                    $this->assertNull($windows[count($windows) - 1][0], "course 10: windows " . json_encode($windows));
                    $this->assertCount(influx_reader::WINDOWS + 1, $windows);
                }
            }
        }
        $reader->pagesize = 7;
        foreach ([['courseid' => 2], ['courseid' => 9], ['viewanonymous' => 1]] as $filters) {
            $want = report_log_queries::download($ref, $filters);
            $this->assertGreaterThan(7, count($want));
            $this->assert_same_events($want, report_log_queries::download($store, $filters), json_encode($filters) . ' download');
        }
        $this->assertCount(count($entries), report_log_queries::download($store, ['viewanonymous' => 1]));
    }

    /**
     * One-hour shard groups over three days: many windows. A page that ends exactly where a window ends, one that
     * starts there, one across it; pages after skipping whole windows; oldest first from a lower bound; exists().
     */
    public function test_page_boundaries_at_window_boundaries(): void {
        $entries = self::at_boundaries(self::recent(2000, 4, 22), 3600, 150);
        $this->assertGreaterThan(50, count(array_filter($entries, function($e) {
            return in_array($e['timecreated'] % 3600, [0, 3599], true);
        })), 'events at the boundaries of shard groups');
        $reader = $this->load($entries, '1h');
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $where = 'courseid = :courseid AND anonymous = 0';
        $params = ['courseid' => 3];

        // The first window: the hour shard group the newest events are in.
        $store->get_events_select($where, $params, 'timecreated DESC', 0, 1);
        $first = $reader->windows[0][0];
        $this->assertNull($reader->windows[0][1]);
        $infirst = $ref->get_events_select_count($where . ' AND timecreated >= :lo', $params + ['lo' => $first / 1000000000]);
        $total = $ref->get_events_select_count($where, $params);
        $this->assertGreaterThan(100, $total);
        // Pages whose first row is the first of a later window, the row before it, and the row after it: the windows
        // down to the course's oldest event.
        $store->get_events_select($where, $params, 'timecreated DESC', $total - 1, 1);
        $starts = [];
        foreach ($reader->windows as [$lo, $hi]) {
            if ($lo !== null) {
                $starts[] = $ref->get_events_select_count($where . ' AND timecreated >= :lo', $params
                    + ['lo' => $lo / 1000000000]);
            }
        }
        $this->assertGreaterThan(2, count(array_unique($starts)), 'windows ' . json_encode($reader->windows));
        foreach (array_unique(array_merge([$infirst], $starts)) as $boundary) {
            foreach ([$boundary - 10, $boundary - 1, $boundary, $boundary + 1] as $from) {
                if ($from < 0 || $from > $total) {
                    continue;
                }
                foreach (['get_events_select', 'iterator'] as $api) {
                    $this->assert_same_events(self::page($ref, $api, $where, $params, 'timecreated DESC', $from, 10),
                        self::page($store, $api, $where, $params, 'timecreated DESC', $from, 10), "$api from $from");
                }
            }
        }
        // Every page of 10 through the iterator, newest first.
        for ($from = 0; $from <= $total; $from += 10) {
            $this->assert_same_events(self::page($ref, 'iterator', $where, $params, 'timecreated DESC', $from, 10),
                self::page($store, 'iterator', $where, $params, 'timecreated DESC', $from, 10), "page from $from");
        }
        // Oldest first from a lower bound (report_participation, report_outline), in windows going forward.
        $since = ['lo' => time() - 40 * 3600];
        foreach ([0, 7, 30, 95] as $from) {
            $this->assert_same_events(
                self::page($ref, 'iterator', $where . ' AND timecreated >= :lo', $params + $since, 'timecreated ASC', $from, 20),
                self::page($store, 'iterator', $where . ' AND timecreated >= :lo', $params + $since, 'timecreated ASC', $from,
                    20), "oldest first from $from");
        }
        $this->assertGreaterThan(1, count($reader->windows), 'oldest first read in windows');
        // Up to a bound (a day of report_log), and a day with nothing.
        $day = intdiv(time(), 86400) * 86400 - 86400;
        foreach ([$day, $day - 10 * 86400] as $date) {
            $dayparams = $params + ['date' => $date, 'enddate' => $date + 86400];
            $dayw = $where . ' AND timecreated > :date AND timecreated < :enddate';
            $this->assertSame($ref->get_events_select_count($dayw, $dayparams), $store->get_events_select_count($dayw,
                $dayparams));
            foreach ([0, 45] as $from) {
                $this->assert_same_events(self::page($ref, 'iterator', $dayw, $dayparams, 'timecreated DESC', $from, 30),
                    self::page($store, 'iterator', $dayw, $dayparams, 'timecreated DESC', $from, 30), "day $date from $from");
            }
        }
        // exists(), newest first: a user with events, a user with events only on the first day, a user without any.
        $firstday = array_filter($entries, function($e) use ($entries) {
            return $e['timecreated'] < min(array_column($entries, 'timecreated')) + 3600;
        });
        $early = array_values($firstday)[0]['userid'];
        foreach ([5, $early, 999] as $userid) {
            $this->assertSame($ref->get_events_select_exists('userid = :u', ['u' => $userid]),
                $store->get_events_select_exists('userid = :u', ['u' => $userid]), "exists user $userid");
        }
        $this->assertTrue($store->get_events_select_exists('userid = :u', ['u' => 5]));
        $this->assertFalse($store->get_events_select_exists('userid = :u', ['u' => 999]));
    }

    /**
     * A page through get_events_select() or the iterator.
     *
     * @param \core\log\sql_reader $reader
     * @param string $api get_events_select or iterator
     * @param string $where
     * @param array $params
     * @param string $sort
     * @param int $from
     * @param int $num
     * @return \core\event\base[]
     */
    protected static function page($reader, string $api, string $where, array $params, string $sort, int $from,
            int $num): array {
        if ($api === 'iterator') {
            return iterator_to_array($reader->get_events_select_iterator($where, $params, $sort, $from, $num), false);
        }
        return array_values($reader->get_events_select($where, $params, $sort, $from, $num));
    }
}
