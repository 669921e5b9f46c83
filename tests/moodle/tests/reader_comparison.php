<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The comparisons the reader tests share: the tsdb store and the site's real logstore_standard (the reference
 * reader) must give the same events, in the same order, for the same report query; and the queries Moodle's Logs and
 * Live logs reports send to a reader, built as their table_log::query_db() builds them (report_log with get_cm_sql(),
 * get_action_sql() and \core\report_helper::get_group_filter(); report_loglive), for filters over the synthetic
 * log_dataset, whose courses and modules need not exist in the site. report_pages_test drives the real reports.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/log_dataset.php');

/**
 * Site administration > Reports > Logs (report_log): the reader calls of its table_log::query_db().
 */
class report_log_queries {
    /**
     * The WHERE fragment and params report_log builds for its filters.
     *
     * @param array $f filters: courseid, userid, modid (course module id), action ('', 'c', 'r', 'u', 'd', 'cud'),
     *                 edulevel (-1 = all), origin ('' = all, '---' = other), date (midnight, 0 = all), groupmembers
     *                 (user ids of the chosen group, null = no group), siteerrors, viewanonymous
     * @return array [selector, params]
     */
    public static function selector(array $f): array {
        global $DB;
        $joins = [];
        $params = [];
        $useextendeddbindex = !empty($f['userid']) && !empty($f['modid']);
        if (!empty($f['courseid']) && $f['courseid'] != SITEID) {
            $joins[] = "courseid = :courseid";
            $params['courseid'] = $f['courseid'];
        }
        if (!empty($f['siteerrors'])) {
            $joins[] = "( action='error' OR action='infected' OR action='failed' )";
        }
        if (!empty($f['modid'])) {
            // get_cm_sql().
            $joins[] = "contextinstanceid = :contextinstanceid AND contextlevel = :contextmodule";
            $params['contextinstanceid'] = $f['modid'];
            $params['contextmodule'] = CONTEXT_MODULE;
        }
        if (!empty($f['action']) || $useextendeddbindex) {
            // get_action_sql().
            $crud = !empty($f['action']) ? str_split($f['action']) : ['c', 'r', 'u', 'd'];
            [$sql, $aparams] = $DB->get_in_or_equal($crud, SQL_PARAMS_NAMED, 'crud');
            $joins[] = "crud " . $sql;
            $params = array_merge($params, $aparams);
        }
        // \core\report_helper::get_group_filter().
        if (empty($f['userid'])) {
            if (isset($f['groupmembers'])) {
                if ($f['groupmembers']) {
                    [$sql, $gparams] = $DB->get_in_or_equal($f['groupmembers'], SQL_PARAMS_NAMED);
                    $joins[] = "userid {$sql}";
                    $params = array_merge($params, $gparams);
                } else {
                    $joins[] = 'userid = 0';
                }
            }
        } else {
            $joins[] = "userid = :userid";
            $params['userid'] = $f['userid'];
        }
        if (!empty($f['date'])) {
            $joins[] = "timecreated > :date AND timecreated < :enddate";
            $params['date'] = $f['date'];
            $params['enddate'] = $f['date'] + DAYSECS;
        }
        if (isset($f['edulevel']) && ($f['edulevel'] >= 0)) {
            $joins[] = "edulevel = :edulevel";
            $params['edulevel'] = $f['edulevel'];
        } else if ($useextendeddbindex) {
            [$sql, $eparams] = $DB->get_in_or_equal([0, 2, 1], SQL_PARAMS_NAMED, 'edulevel');
            $joins[] = "edulevel " . $sql;
            $params = array_merge($params, $eparams);
        }
        if (isset($f['origin']) && ($f['origin'] != '')) {
            if ($f['origin'] !== '---') {
                $joins[] = "origin = :origin";
                $params['origin'] = $f['origin'];
            } else {
                [$sql, $oparams] = $DB->get_in_or_equal(['cli', 'restore', 'ws', 'web'], SQL_PARAMS_NAMED, 'origin', false);
                $joins[] = "origin " . $sql;
                $params = array_merge($params, $oparams);
            }
        }
        if (empty($f['viewanonymous'])) {
            $joins[] = "anonymous = 0";
        }
        return [implode(' AND ', $joins), $params];
    }

    /**
     * One page of the report as query_db() fetches it: the count, then the page through the iterator.
     *
     * @param \core\log\sql_reader $reader
     * @param array $filters see selector()
     * @param int $page 0-based
     * @param int $perpage
     * @param string $orderby
     * @return array ['total' => int, 'events' => \core\event\base[]]
     */
    public static function page(\core\log\sql_reader $reader, array $filters, int $page = 0, int $perpage = 100,
            string $orderby = 'timecreated DESC'): array {
        [$selector, $params] = self::selector($filters);
        $total = $reader->get_events_select_count($selector, $params);
        $it = $reader->get_events_select_iterator($selector, $params, $orderby, $page * $perpage, $perpage);
        $events = iterator_to_array($it, false);
        if (method_exists($it, 'close')) {
            $it->close();
        }
        return ['total' => $total, 'events' => $events];
    }

    /**
     * The whole report as a download (not pageable: limitfrom 0, limitnum 0).
     *
     * @param \core\log\sql_reader $reader
     * @param array $filters
     * @param string $orderby
     * @return \core\event\base[]
     */
    public static function download(\core\log\sql_reader $reader, array $filters, string $orderby = 'timecreated DESC'): array {
        [$selector, $params] = self::selector($filters);
        $it = $reader->get_events_select_iterator($selector, $params, $orderby, 0, 0);
        $events = iterator_to_array($it, false);
        if (method_exists($it, 'close')) {
            $it->close();
        }
        return $events;
    }
}

/**
 * Site administration > Reports > Live logs (report_loglive): events since a time, newest first, per course.
 */
class report_loglive_queries {
    /**
     * The fragment and params of report_loglive's table_log::query_db().
     *
     * @param int $courseid 0 = site
     * @param int $since the "date" filter (time() - CUTOFF on the first load, the last update for the AJAX refresh)
     * @param int|null $anonymous null when the user may view anonymous events
     * @return array [selector, params]
     */
    public static function selector(int $courseid, int $since, ?int $anonymous = 0): array {
        $joins = [];
        $params = [];
        if (!empty($courseid)) {
            $joins[] = "courseid = :courseid";
            $params['courseid'] = $courseid;
        }
        if (!empty($since)) {
            $joins[] = "timecreated > :date";
            $params['date'] = $since;
        }
        if (isset($anonymous)) {
            $joins[] = "anonymous = :anon";
            $params['anon'] = $anonymous;
        }
        return [implode(' AND ', $joins), $params];
    }

    /**
     * One page: count, then get_events_select() with 'timecreated DESC'.
     *
     * @param \core\log\sql_reader $reader
     * @param int $courseid
     * @param int $since
     * @param int $page
     * @param int $perpage
     * @param int|null $anonymous
     * @return array ['total' => int, 'events' => \core\event\base[]]
     */
    public static function page(\core\log\sql_reader $reader, int $courseid, int $since, int $page = 0, int $perpage = 100,
            ?int $anonymous = 0): array {
        [$selector, $params] = self::selector($courseid, $since, $anonymous);
        $total = $reader->get_events_select_count($selector, $params);
        $events = $reader->get_events_select($selector, $params, 'timecreated DESC', $page * $perpage, $perpage);
        return ['total' => $total, 'events' => array_values($events)];
    }
}

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
     * @param array $filters report_log_queries filters
     * @param int $page
     * @param int $perpage
     * @param string $name
     * @return int the count
     */
    protected function assert_report_log_page($ref, $store, array $filters, int $page, int $perpage, string $name): int {
        $want = report_log_queries::page($ref, $filters, $page, $perpage);
        $got = report_log_queries::page($store, $filters, $page, $perpage);
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
                    $want = report_loglive_queries::page($ref, $courseid, $since, $page, 100);
                    $got = report_loglive_queries::page($store, $courseid, $since, $page, 100);
                    $this->assertSame($want['total'], $got['total'], "loglive course $courseid day $day count");
                    $this->assertGreaterThan(0, $got['total'], "loglive course $courseid day $day has events");
                    $this->assert_same_events($want['events'], $got['events'], "loglive course $courseid day $day page $page");
                }
                $want = report_loglive_queries::page($ref, $courseid, $since, 0, $anonperpage, null);
                $got = report_loglive_queries::page($store, $courseid, $since, 0, $anonperpage, null);
                $this->assertSame($want['total'], $got['total'], "loglive anonymous course $courseid day $day count");
                $this->assert_same_events($want['events'], $got['events'], "loglive anonymous course $courseid day $day");
            }
        }
    }

    /**
     * EXPLAIN of the reader's last statement.
     *
     * @param \logstore_tsdb\local\reader\pg_reader $reader
     * @return string
     */
    protected function explain($reader): string {
        $rows = $reader->db()->query_native('EXPLAIN ' . $reader->lastsql, $reader->lastparams);
        return implode("\n", array_map(function($r) {
            return reset($r);
        }, array_map('get_object_vars', $rows)));
    }
}
