<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: how Moodle's log reports call a \core\log\sql_reader, reproduced from report_log's table_log::query_db()
 * (with get_action_sql() and get_cm_sql()) and report_loglive's table_log::query_db() of Moodle 4.4 - 5.1: the same
 * fragments, parameter names, sort and paging.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

if (!defined('SITEID')) {
    define('SITEID', 1);
}
if (!defined('DAYSECS')) {
    define('DAYSECS', 86400);
}

/**
 * Site administration > Reports > Logs (report_log).
 */
class harness_report_log {
    /** @var array The selector and params of the last query (what the reader received). */
    public static $last = [];

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
            $joins[] = "contextinstanceid = :contextinstanceid AND contextlevel = :contextmodule";
            $params['contextinstanceid'] = $f['modid'];
            $params['contextmodule'] = CONTEXT_MODULE;
        }
        if (!empty($f['action']) || $useextendeddbindex) {
            if (!empty($f['action'])) {
                [$sql, $aparams] = $DB->get_in_or_equal(str_split($f['action']), SQL_PARAMS_NAMED, 'crud');
            } else {
                [$sql, $aparams] = $DB->get_in_or_equal(['c', 'r', 'u', 'd'], SQL_PARAMS_NAMED, 'crud');
            }
            $joins[] = "crud " . $sql;
            $params = array_merge($params, $aparams);
        }
        if (isset($f['groupmembers']) && empty($f['userid'])) {
            if ($f['groupmembers']) {
                $joins[] = 'userid IN (' . implode(',', $f['groupmembers']) . ')';
            } else {
                $joins[] = 'userid = 0';
            }
        } else if (!empty($f['userid'])) {
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
     * One page of the report as query_db() fetches it: the count, then the page through the iterator (twice, as
     * report_log does: once for the user names, once for the rows).
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
        self::$last = [$selector, $params];
        $total = $reader->get_events_select_count($selector, $params);
        $first = iterator_to_array($reader->get_events_select_iterator($selector, $params, $orderby, $page * $perpage,
            $perpage), false);
        $events = iterator_to_array($reader->get_events_select_iterator($selector, $params, $orderby, $page * $perpage,
            $perpage), false);
        if (count($first) !== count($events)) {
            throw new coding_exception('report_log: the two reads of a page differ');
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
        return iterator_to_array($reader->get_events_select_iterator($selector, $params, $orderby, 0, 0), false);
    }
}

/**
 * Site administration > Reports > Live logs (report_loglive): events of the last hour, newest first, per course.
 */
class harness_report_loglive {
    /** @var int report_loglive_renderable::CUTOFF */
    const CUTOFF = 3600;

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
