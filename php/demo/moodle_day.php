<?php
// A simulated Moodle day: users, courses and the event mix a real site logs, as Moodle-shaped event arrays.
// Used by the demo (php/demo/workload.php) and the benchmarks (php/bench/run.php).

/**
 * Event templates with their share of a day's traffic (from the event mix of a university Moodle site:
 * course and module views dominate, then forum and assignment activity, logins, and teachers' grading).
 */
function tsdb_demo_templates(): array {
    return [
        // weight, eventname, component, action, target, crud, edulevel, contextlevel, objecttable
        [30, '\\core\\event\\course_viewed', 'core', 'viewed', 'course', 'r', 2, 50, null],
        [22, '\\mod_page\\event\\course_module_viewed', 'mod_page', 'viewed', 'course_module', 'r', 2, 70, 'page'],
        [10, '\\mod_forum\\event\\discussion_viewed', 'mod_forum', 'viewed', 'discussion', 'r', 2, 70, 'forum_discussions'],
        [8, '\\mod_quiz\\event\\attempt_viewed', 'mod_quiz', 'viewed', 'attempt', 'r', 2, 70, 'quiz_attempts'],
        [6, '\\core\\event\\dashboard_viewed', 'core', 'viewed', 'dashboard', 'r', 0, 30, null],
        [5, '\\mod_resource\\event\\course_module_viewed', 'mod_resource', 'viewed', 'course_module', 'r', 2, 70, 'resource'],
        [4, '\\mod_assign\\event\\submission_status_viewed', 'mod_assign', 'viewed', 'submission_status', 'r', 2, 70, 'assign'],
        [3, '\\core\\event\\user_loggedin', 'core', 'loggedin', 'user', 'r', 0, 10, 'user'],
        [2, '\\mod_forum\\event\\post_created', 'mod_forum', 'created', 'post', 'c', 2, 70, 'forum_posts'],
        [2, '\\mod_quiz\\event\\attempt_submitted', 'mod_quiz', 'submitted', 'attempt', 'u', 2, 70, 'quiz_attempts'],
        [2, '\\assignsubmission_file\\event\\submission_updated', 'assignsubmission_file', 'updated', 'submission', 'u', 2, 70, 'assign_submission'],
        [2, '\\core\\event\\user_graded', 'core', 'graded', 'user', 'u', 1, 50, 'grade_grades'],
        [1, '\\mod_assign\\event\\grading_table_viewed', 'mod_assign', 'viewed', 'grading_table', 'r', 1, 70, null],
        [1, '\\core\\event\\user_login_failed', 'core', 'failed', 'user_login', 'r', 0, 10, null],
        [1, '\\core\\event\\course_module_created', 'core', 'created', 'course_module', 'c', 1, 70, 'course_modules'],
        [1, '\\core\\event\\user_loggedout', 'core', 'loggedout', 'user', 'r', 0, 10, 'user'],
    ];
}

/**
 * Generates `$n` events of one day (UTC) starting at `$daystart`, deterministic for a given seed.
 */
function tsdb_demo_events(int $n, int $daystart, int $users = 3000, int $courses = 40, int $seed = 42): Generator {
    mt_srand($seed);
    $templates = tsdb_demo_templates();
    $wheel = [];
    foreach ($templates as $idx => $t) {
        for ($w = 0; $w < $t[0]; $w++) {
            $wheel[] = $idx;
        }
    }
    for ($i = 0; $i < $n; $i++) {
        [, $name, $component, $action, $target, $crud, $edulevel, $contextlevel, $objecttable] = $templates[$wheel[mt_rand(0, count($wheel) - 1)]];
        // Daytime peak: most traffic between 08:00 and 22:00.
        $hour = mt_rand(0, 99) < 85 ? mt_rand(8, 21) : mt_rand(0, 23);
        $time = $daystart + $hour * 3600 + mt_rand(0, 3599);
        $userid = $name === '\\core\\event\\user_login_failed' ? 0 : mt_rand(2, $users + 1);
        $courseid = $contextlevel >= 50 ? mt_rand(2, $courses + 1) : 0;
        $cmid = $contextlevel === 70 ? $courseid * 100 + mt_rand(1, 30) : null;
        yield [
            'eventname' => $name, 'component' => $component, 'action' => $action, 'target' => $target,
            'objecttable' => $objecttable, 'objectid' => $objecttable ? mt_rand(1, 500000) : null, 'crud' => $crud,
            'edulevel' => $edulevel, 'contextid' => $cmid ?? ($courseid ? 1000 + $courseid : 1),
            'contextlevel' => $contextlevel, 'contextinstanceid' => $cmid ?? $courseid,
            'userid' => $userid, 'courseid' => $courseid, 'relateduserid' => $edulevel === 1 ? mt_rand(2, $users + 1) : null,
            'anonymous' => 0,
            'other' => $name === '\\core\\event\\user_login_failed' ? ['username' => 'user' . mt_rand(1, 9999), 'reason' => 3]
                : ($name === '\\mod_forum\\event\\post_created' ? ['discussionid' => mt_rand(1, 9000), 'forumid' => mt_rand(1, 300), 'forumtype' => 'general'] : null),
            'timecreated' => $time, 'origin' => mt_rand(0, 19) ? 'web' : 'ws',
            'ip' => '10.' . mt_rand(0, 255) . '.' . mt_rand(0, 255) . '.' . mt_rand(1, 254), 'realuserid' => null,
        ];
    }
}
