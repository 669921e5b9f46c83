<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The comparisons the reader tests share: the tsdb store and logstore_standard (the reference reader) must give the
 * same events, in the same order, for the same report query.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/log_dataset.php');
require_once(__DIR__ . '/standard_reader.php');

/**
 * For test cases comparing a reader with the reference.
 */
trait reader_comparison {

    /**
     * Same events in the same order.
     *
     * @param \core\event\base[] $expected
     * @param \core\event\base[] $actual
     * @param string $msg
     */
    protected function assert_same_events(array $expected, array $actual, string $msg): void {
        $this->assertSame(count($expected), count($actual), "$msg: number of events");
        $actual = array_values($actual);
        foreach (array_values($expected) as $i => $e) {
            $this->assertSame(log_dataset::normalise_event($e), log_dataset::normalise_event($actual[$i]), "$msg: event $i");
        }
    }

    /**
     * One page of report_log: the same count and the same events as the reference.
     *
     * @param \core\log\sql_reader $ref
     * @param \core\log\sql_reader $store
     * @param array $filters harness_report_log filters
     * @param int $page
     * @param int $perpage
     * @param string $name
     * @return int the count
     */
    protected function assert_report_log_page($ref, $store, array $filters, int $page, int $perpage, string $name): int {
        $want = harness_report_log::page($ref, $filters, $page, $perpage);
        $got = harness_report_log::page($store, $filters, $page, $perpage);
        $this->assertSame($want['total'], $got['total'], "$name: count");
        $this->assert_same_events($want['events'], $got['events'], "$name page $page");
        return $got['total'];
    }

    /**
     * report_loglive per course (0 = site) from "since" on given days: two pages and the count (none empty), then
     * the first page when viewing anonymous events (no anonymous condition at all).
     *
     * @param \core\log\sql_reader $ref
     * @param \core\log\sql_reader $store
     * @param int[] $courseids
     * @param int[] $days days after log_dataset::START
     * @param int $hour hour of the day of "since"
     * @param int $anonperpage page size of the anonymous view
     */
    protected function assert_loglive_matches($ref, $store, array $courseids, array $days, int $hour, int $anonperpage): void {
        foreach ($courseids as $courseid) {
            foreach ($days as $day) {
                $since = log_dataset::START + $day * 86400 + $hour * 3600;
                foreach ([0, 1] as $page) {
                    $want = harness_report_loglive::page($ref, $courseid, $since, $page, 100);
                    $got = harness_report_loglive::page($store, $courseid, $since, $page, 100);
                    $this->assertSame($want['total'], $got['total'], "loglive course $courseid day $day count");
                    $this->assertGreaterThan(0, $got['total'], "loglive course $courseid day $day has events");
                    $this->assert_same_events($want['events'], $got['events'], "loglive course $courseid day $day page $page");
                }
                $want = harness_report_loglive::page($ref, $courseid, $since, 0, $anonperpage, null);
                $got = harness_report_loglive::page($store, $courseid, $since, 0, $anonperpage, null);
                $this->assertSame($want['total'], $got['total'], "loglive anonymous course $courseid day $day count");
                $this->assert_same_events($want['events'], $got['events'], "loglive anonymous course $courseid day $day");
            }
        }
    }
}
