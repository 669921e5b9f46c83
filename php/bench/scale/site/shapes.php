<?php
// The report query shapes of the scale benchmark: the exact fragments Moodle 5.1.3's reports hand to a
// \core\log\sql_reader (read from the site's code: report/log/classes/table_log.php query_db(),
// report/loglive/classes/table_log.php query_db(), lib/classes/report_helper.php get_group_filter()), and the
// fragments report_outline, report_participation and the privacy provider would issue through sql_reader (they use
// the internal table in core; see scale_shapes()). Shared by the CLI timing (reports.php) and the timing page the
// site serves (page.php): a shape is plain data, run the same way in both.

/** @var string[] The event columns compared between stores (every column of logstore_standard_log but id). */
const SCALE_EVENT_COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel',
    'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other',
    'timecreated', 'origin', 'ip', 'realuserid'];

/**
 * What the shapes are run on, chosen from the data (outside any timing): the busiest course and the median one, a
 * median user of the busiest course, a user at the 90th percentile of activity over the site, a median activity of
 * the busiest course, a weekday in the middle of the window (compressed unless the window is short) and the day
 * before yesterday (recent, not compressed), the hour before the newest event (Live logs as they would have been
 * then: the generated log ends at the last session of yesterday), the last 30 days.
 *
 * @param moodle_database $DB
 * @param int $start window start
 * @param int $end window end
 * @return array
 */
function scale_picks($DB, int $start, int $end): array {
    $median = function(array $rows, string $key) {
        return $rows ? $rows[intdiv(count($rows), 2)]->$key : null;
    };
    $courses = array_values($DB->get_records_sql('SELECT courseid, count(*) AS n FROM {logstore_standard_log}
        WHERE courseid > 1 GROUP BY courseid ORDER BY n DESC, courseid'));
    $big = (int) $courses[0]->courseid;
    $bign = (int) $courses[0]->n;
    $mediancourse = (int) $median($courses, 'courseid');
    $users = array_values($DB->get_records_sql('SELECT userid, count(*) AS n FROM {logstore_standard_log}
        WHERE courseid = ? AND userid > 0 GROUP BY userid ORDER BY n DESC, userid', [$big]));
    $siteusers = array_values($DB->get_records_sql('SELECT userid, count(*) AS n FROM {logstore_standard_log}
        WHERE userid > 0 GROUP BY userid ORDER BY n DESC, userid'));
    $p90 = $siteusers[intdiv(count($siteusers), 10)];
    $cms = array_values($DB->get_records_sql('SELECT contextinstanceid, count(*) AS n FROM {logstore_standard_log}
        WHERE courseid = ? AND contextlevel = 70 GROUP BY contextinstanceid ORDER BY n DESC, contextinstanceid', [$big]));
    $days = intdiv($end - $start, 86400);
    $old = $start + intdiv($days, 2) * 86400;
    while ((int) gmdate('N', $old) >= 6 && $old + 86400 < $end) {
        $old += 86400;
    }
    $mediancm = (int) $median($cms, 'contextinstanceid');
    $last = (int) $DB->get_field_sql('SELECT max(timecreated) FROM {logstore_standard_log}');
    return ['course_big' => $big, 'course_big_events' => $bign, 'course_median' => $mediancourse,
        'course_median_events' => (int) $median($courses, 'n'), 'user_in_course' => (int) $median($users, 'userid'),
        'user_in_course_events' => (int) $median($users, 'n'), 'user_site' => (int) $p90->userid,
        'user_site_events' => (int) $p90->n, 'cm' => $mediancm, 'day_old' => $old,
        'day_recent' => max($start, $end - 2 * 86400), 'live_since' => $last - 3600,
        'window_from' => max($start, $end - 30 * 86400), 'window_to' => $end];
}

/**
 * Every shape: id, report, title, the sql_reader calls in the order the report makes them, and an optional
 * aggregation of the rows (what report_outline / report_participation compute from them).
 *
 * @param array $k scale_picks()
 * @return array[]
 */
function scale_shapes(array $k): array {
    $page = fn(string $where, array $params, string $api = 'iterator', int $from = 0) =>
        ['api' => $api, 'where' => $where, 'params' => $params, 'sort' => 'timecreated DESC', 'from' => $from, 'num' => 100];
    $count = fn(string $where, array $params) => ['api' => 'count', 'where' => $where, 'params' => $params];
    $shapes = [];
    // A report page as its query_db() makes it: the count, then the rows of the page. Also each call on its own.
    $report = function(string $id, string $report, string $title, string $where, array $params, string $api = 'iterator')
            use (&$shapes, $page, $count) {
        $shapes[] = ['id' => "$id.page", 'report' => $report, 'title' => "$title, page 1", 'calls' => [$page($where, $params, $api)]];
        $shapes[] = ['id' => "$id.count", 'report' => $report, 'title' => "$title, its count", 'calls' => [$count($where, $params)]];
        $shapes[] = ['id' => "$id.request", 'report' => $report, 'title' => "$title: the page's two calls (count, page 1)",
            'calls' => [$count($where, $params), $page($where, $params, $api)], 'composite' => true];
    };
    // report_log as a teacher sees it (no moodle/site:viewanonymousevents: "anonymous = 0"), newest first, 100 a page.
    $course = ['courseid' => $k['course_big']];
    $report('log.course', 'report_log', "course Logs, all days (busiest course, {$k['course_big_events']} events)",
        'courseid = :courseid AND anonymous = 0', $course);
    $report('log.course_median', 'report_log', "course Logs, all days (median course, {$k['course_median_events']} events)",
        'courseid = :courseid AND anonymous = 0', ['courseid' => $k['course_median']]);
    $last = intdiv(max(0, $k['course_big_events'] - 1), 100) * 100;
    $shapes[] = ['id' => 'log.course.lastpage', 'report' => 'report_log', 'title' => 'course Logs, all days (busiest course), last page',
        'calls' => [$page('courseid = :courseid AND anonymous = 0', $course, 'iterator', $last)]];
    $report('log.course_user', 'report_log', "course Logs, one user ({$k['user_in_course_events']} events in the course)",
        'courseid = :courseid AND userid = :userid AND anonymous = 0', $course + ['userid' => $k['user_in_course']]);
    foreach (['day_old' => 'a day in the middle of the window', 'day_recent' => 'the day before yesterday'] as $day => $what) {
        $report("log.course_$day", 'report_log', "course Logs, one day ($what)",
            'courseid = :courseid AND timecreated > :date AND timecreated < :enddate AND anonymous = 0',
            $course + ['date' => $k[$day], 'enddate' => $k[$day] + 86400]);
    }
    $report('log.course_activity', 'report_log', 'course Logs, one activity, all days',
        'courseid = :courseid AND contextinstanceid = :contextinstanceid AND contextlevel = :contextmodule AND anonymous = 0',
        $course + ['contextinstanceid' => $k['cm'], 'contextmodule' => 70]);
    // Site administration > Reports > Logs as the admin (site:viewanonymousevents: no anonymous condition at all).
    $report('log.site', 'report_log', 'site Logs (admin), all days', '', []);
    $report('log.site_day_old', 'report_log', 'site Logs (admin), one day (middle of the window)',
        'timecreated > :date AND timecreated < :enddate', ['date' => $k['day_old'], 'enddate' => $k['day_old'] + 86400]);
    $report('log.user', 'report_log', "a user's Logs across the site (admin; {$k['user_site_events']} events)",
        'userid = :userid', ['userid' => $k['user_site']]);
    // report_loglive: the last hour (renderable CUTOFF = 3600) before the newest event, newest first, get_events_select().
    $report('loglive.site', 'report_loglive', 'Live logs, site (admin), the last hour', 'timecreated > :date',
        ['date' => $k['live_since']], 'select');
    $report('loglive.course', 'report_loglive', 'Live logs, busiest course (teacher), the last hour',
        'courseid = :courseid AND timecreated > :date AND anonymous = :anon',
        $course + ['date' => $k['live_since'], 'anon' => 0], 'select');
    // report_outline (index.php) counts views per activity with SQL on the internal table: courseid, anonymous = 0,
    // crud = 'r', contextlevel = module, an optional date range, GROUP BY contextinstanceid (views, distinct users,
    // last access). Through sql_reader the same table needs the matching events, aggregated by the report.
    $window = ['startdate' => $k['window_from'], 'enddate' => $k['window_to']];
    $shapes[] = ['id' => 'outline.course', 'report' => 'report_outline',
        'title' => 'Activity report (views per activity, last 30 days, busiest course) from the events',
        'calls' => [['api' => 'iterator', 'where' => 'courseid = :courseid AND anonymous = 0 AND crud = :crud AND ' .
            'contextlevel = :contextmodule AND timecreated >= :startdate AND timecreated < :enddate',
            'params' => $course + ['crud' => 'r', 'contextmodule' => 70] + $window, 'sort' => 'timecreated ASC',
            'from' => 0, 'num' => 0]], 'aggregate' => 'outline'];
    // report_participation (index.php): per student, COUNT(DISTINCT timecreated) of one activity's events since
    // :timefrom, crud in the chosen actions (all: c, r, u, d), edulevel participating, anonymous = 0, module context,
    // origin web or ws.
    $shapes[] = ['id' => 'participation.activity', 'report' => 'report_participation',
        'title' => 'Course participation (one activity, all actions, last 30 days) from the events',
        'calls' => [['api' => 'iterator', 'where' => 'contextinstanceid = :instanceid AND timecreated > :timefrom AND ' .
            'crud IN (:crud1, :crud2, :crud3, :crud4) AND edulevel = :edulevel AND anonymous = 0 AND ' .
            "contextlevel = :contextlevel AND (origin = 'web' OR origin = 'ws')",
            'params' => ['instanceid' => $k['cm'], 'timefrom' => $k['window_from'], 'crud1' => 'c', 'crud2' => 'r',
                'crud3' => 'u', 'crud4' => 'd', 'edulevel' => 2, 'contextlevel' => 70],
            'sort' => 'timecreated ASC', 'from' => 0, 'num' => 0]], 'aggregate' => 'participation'];
    // Privacy: one user's whole history (user reports, export and delete requests).
    $user = ['userid' => $k['user_site']];
    $shapes[] = ['id' => 'privacy.user.count', 'report' => 'privacy', 'title' => "one user's whole history, count",
        'calls' => [$count('userid = :userid', $user)]];
    $shapes[] = ['id' => 'privacy.user.exists', 'report' => 'privacy', 'title' => "one user's whole history, exists",
        'calls' => [['api' => 'exists', 'where' => 'userid = :userid', 'params' => $user]]];
    $shapes[] = ['id' => 'privacy.involved.count', 'report' => 'privacy',
        'title' => 'events involving a user (userid, relateduserid or realuserid), count',
        'calls' => [$count('userid = :u1 OR relateduserid = :u2 OR realuserid = :u3',
            ['u1' => $k['user_site'], 'u2' => $k['user_site'], 'u3' => $k['user_site']])]];
    $shapes[] = ['id' => 'privacy.contexts', 'report' => 'privacy',
        'title' => "the contexts of a user's events (each store's privacy provider, add_contexts_for_userid())",
        'calls' => [['api' => 'privacy_contexts', 'userid' => $k['user_site']]]];
    return $shapes;
}

/**
 * Runs one sql_reader call and returns what it answered: an int (count), a bool (exists), or the events (a list).
 *
 * @param string $store logstore_standard or logstore_tsdb
 * @param \core\log\sql_reader $reader
 * @param array $call
 * @return mixed
 */
function scale_call(string $store, $reader, array $call) {
    global $DB;
    switch ($call['api']) {
        case 'count':
            return (int) $reader->get_events_select_count($call['where'], $call['params']);
        case 'exists':
            return (bool) $reader->get_events_select_exists($call['where'], $call['params']);
        case 'select':
            return array_values($reader->get_events_select($call['where'], $call['params'], $call['sort'], $call['from'],
                $call['num']));
        case 'iterator':
            $events = [];
            $it = $reader->get_events_select_iterator($call['where'], $call['params'], $call['sort'], $call['from'], $call['num']);
            foreach ($it as $event) {
                $events[] = $event;
            }
            if (method_exists($it, 'close')) {
                $it->close();
            }
            return $events;
        case 'privacy_contexts':
            // Each store's privacy provider, as core_privacy\manager calls it for a subject access request.
            $contextlist = new \core_privacy\local\request\contextlist();
            $provider = $store === 'logstore_standard' ? \logstore_standard\privacy\provider::class
                : \logstore_tsdb\privacy\provider::class;
            $provider::add_contexts_for_userid($contextlist, (int) $call['userid']);
            $ids = array_map('intval', $contextlist->get_contextids());
            sort($ids);
            return $ids;
    }
    throw new coding_exception('unknown api ' . $call['api']);
}

/**
 * What report_outline / report_participation compute from the events.
 *
 * @param string $kind outline or participation
 * @param \core\event\base[] $events
 * @return array
 */
function scale_aggregate(string $kind, array $events): array {
    $out = [];
    foreach ($events as $e) {
        if ($kind === 'outline') {
            $k = $e->contextinstanceid;
            $out[$k] ??= ['views' => 0, 'users' => [], 'lasttime' => 0];
            $out[$k]['views']++;
            $out[$k]['users'][$e->userid] = true;
            $out[$k]['lasttime'] = max($out[$k]['lasttime'], (int) $e->timecreated);
        } else {
            $out[$e->userid][$e->timecreated] = true;
        }
    }
    foreach ($out as $k => $v) {
        $out[$k] = $kind === 'outline' ? ['views' => $v['views'], 'users' => count($v['users']), 'lasttime' => $v['lasttime']]
            : count($v);
    }
    ksort($out);
    return $out;
}

/**
 * Runs a shape once, timed: every call in order, then its aggregation (as the report would compute it).
 *
 * @param string $store
 * @param \core\log\sql_reader $reader
 * @param array $shape
 * @return array [milliseconds, list of the calls' answers (aggregated when the shape aggregates), per-call ms]
 */
function scale_run_shape(string $store, $reader, array $shape): array {
    $answers = [];
    $callms = [];
    $t0 = hrtime(true);
    foreach ($shape['calls'] as $call) {
        $t = hrtime(true);
        $answer = scale_call($store, $reader, $call);
        if (!empty($shape['aggregate'])) {
            $answer = scale_aggregate($shape['aggregate'], $answer);
        }
        $answers[] = $answer;
        $callms[] = (hrtime(true) - $t) / 1e6;
    }
    return [(hrtime(true) - $t0) / 1e6, $answers, $callms];
}

/**
 * An event as the values compared between stores: every column but id, scalars as strings, `other` as canonical
 * JSON (keys sorted: jsonb reorders keys).
 *
 * @param \core\event\base $event
 * @return array
 */
function scale_event_row($event): array {
    $data = $event->get_data() + $event->get_logextra();
    $row = [];
    foreach (SCALE_EVENT_COLUMNS as $c) {
        $v = $data[$c] ?? null;
        if ($c === 'other') {
            $v = scale_canonical_json($v);
        } else if ($v !== null) {
            $v = (string) $v;
        }
        $row[$c] = $v;
    }
    return $row;
}

/**
 * JSON with object keys sorted at every level (null for null or an empty other).
 *
 * @param mixed $v
 * @return string|null
 */
function scale_canonical_json($v): ?string {
    if ($v === null || $v === [] || $v === '') {
        return null;
    }
    $sort = function($x) use (&$sort) {
        if (is_object($x)) {
            $x = (array) $x;
        }
        if (is_array($x)) {
            if (array_keys($x) !== range(0, count($x) - 1)) {
                ksort($x);
            }
            return array_map($sort, $x);
        }
        return $x;
    };
    return json_encode($sort($v), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
}

/**
 * The answers of a shape in comparable form: event lists become lists of rows.
 *
 * @param array $answers
 * @return array
 */
function scale_normalise(array $answers): array {
    return array_map(function($a) {
        if (is_array($a) && $a && reset($a) instanceof \core\event\base) {
            return array_map('scale_event_row', $a);
        }
        return $a;
    }, $answers);
}

/**
 * A digest of normalised answers, to check a fresh request answered what the warm run did (the same store answers
 * in the same order every time).
 *
 * @param array $normalised
 * @return string
 */
function scale_digest(array $normalised): string {
    return sha1(json_encode($normalised));
}
