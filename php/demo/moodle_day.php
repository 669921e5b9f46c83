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

/**
 * A site over many days, as its log really looks: every user is enrolled in a few courses (some courses are much
 * bigger than others) and comes back on some days, working in sessions from one IP address: often a login and the
 * dashboard, then a course and a run of its activities (pages, forums, quizzes, files, assignments), sometimes a
 * post, a quiz attempt or a submission, sometimes a logout. Teachers also grade. A few logins fail. Weekends are
 * quieter. Each day's events are yielded in time order; deterministic for a seed.
 *
 * @param int $n about how many events in all
 * @param int $start the first day (a UTC midnight)
 * @param int $days how many days
 * @param int $users user ids 2 .. $users + 1 (the first 2 % are teachers)
 * @param int $courses course ids 2 .. $courses + 1, each with 30 activities (cmid = courseid * 100 + 1..30)
 * @param int $seed
 * @return Generator of event arrays (the extension's keys, as the Moodle plugin hands them over)
 */
function tsdb_demo_site_events(int $n, int $start, int $days, int $users = 5000, int $courses = 100,
        int $seed = 42): Generator {
    mt_srand($seed);
    $teachers = max(1, intdiv($users, 50));
    // Enrolments: 2-6 courses per user, skewed towards the low course ids (a few large first-year courses).
    $enrolled = [];
    $members = [];
    for ($u = 2; $u <= $users + 1; $u++) {
        $k = mt_rand(2, 6);
        for ($j = 0; $j < $k; $j++) {
            $c = 2 + (int) floor($courses * (mt_rand() / mt_getrandmax()) ** 1.8);
            $enrolled[$u][$c] = $c;
            $members[$c][] = $u;
        }
        $enrolled[$u] = array_values($enrolled[$u]);
    }
    // Activity: some users come nearly every day, most a few times a week.
    $weights = [];
    for ($u = 2; $u <= $users + 1; $u++) {
        $weights[$u] = 0.2 + 3 * (mt_rand() / mt_getrandmax()) ** 3;
    }
    $cumulative = [];
    $sum = 0;
    foreach ($weights as $u => $w) {
        $sum += $w;
        $cumulative[] = [$sum, $u];
    }
    $pickuser = function() use ($cumulative, $sum): int {
        $r = mt_rand() / mt_getrandmax() * $sum;
        $lo = 0;
        $hi = count($cumulative) - 1;
        while ($lo < $hi) {
            $mid = intdiv($lo + $hi, 2);
            if ($cumulative[$mid][0] < $r) {
                $lo = $mid + 1;
            } else {
                $hi = $mid;
            }
        }
        return $cumulative[$lo][1];
    };
    // Weekdays carry 1.0, Saturday and Sunday 0.4 of a day's traffic; about 9 events a session.
    $dayweights = [];
    for ($d = 0; $d < $days; $d++) {
        $dow = (int) gmdate('N', $start + $d * 86400);
        $dayweights[$d] = $dow >= 6 ? 0.4 : 1.0;
    }
    $perweight = $n / max(1e-9, array_sum($dayweights));
    $event = function(string $name, string $component, string $action, string $target, string $crud, int $edulevel,
            int $contextlevel, ?string $objecttable, int $time, int $userid, int $courseid, ?int $cmid, string $ip,
            ?int $relateduserid = null, $other = null): array {
        return [
            'eventname' => $name, 'component' => $component, 'action' => $action, 'target' => $target,
            'objecttable' => $objecttable, 'objectid' => $objecttable ? mt_rand(1, 500000) : null, 'crud' => $crud,
            'edulevel' => $edulevel, 'contextid' => $cmid ? 5000 + $cmid : ($courseid ? 1000 + $courseid : ($contextlevel == 30
                ? 100000 + $userid : 1)),
            'contextlevel' => $contextlevel, 'contextinstanceid' => $cmid ?? ($courseid ?: ($contextlevel == 30 ? $userid : 0)),
            'userid' => $userid, 'courseid' => $courseid, 'relateduserid' => $relateduserid, 'anonymous' => 0,
            'other' => $other, 'timecreated' => $time, 'origin' => 'web', 'ip' => $ip, 'realuserid' => null,
        ];
    };
    for ($d = 0; $d < $days; $d++) {
        $daystart = $start + $d * 86400;
        $target = (int) round($perweight * $dayweights[$d]);
        $day = [];
        while (count($day) < $target) {
            $u = $pickuser();
            $hour = mt_rand(0, 99) < 85 ? mt_rand(8, 21) : mt_rand(0, 23);
            $t = $daystart + $hour * 3600 + mt_rand(0, 3599);
            $ip = '10.' . ($u >> 8 & 255) . '.' . ($u & 255) . '.' . (($d * 7 + $u) % 200 + 20);
            $origin = mt_rand(0, 19) ? 'web' : 'ws';
            $session = [];
            if (mt_rand(0, 99) < 2) {
                $session[] = $event('\\core\\event\\user_login_failed', 'core', 'failed', 'user_login', 'r', 0, 10, null, $t,
                    0, 0, null, $ip, null, ['username' => 'user' . $u, 'reason' => 3]);
                $t += mt_rand(5, 40);
            }
            if (mt_rand(0, 99) < 60) {
                $session[] = $event('\\core\\event\\user_loggedin', 'core', 'loggedin', 'user', 'r', 0, 10, 'user', $t, $u, 0,
                    null, $ip, null, ['username' => 'user' . $u]);
                $t += mt_rand(2, 20);
            }
            if (mt_rand(0, 99) < 50) {
                $session[] = $event('\\core\\event\\dashboard_viewed', 'core', 'viewed', 'dashboard', 'r', 0, 30, null, $t, $u,
                    0, null, $ip);
                $t += mt_rand(5, 60);
            }
            $courselist = $enrolled[$u];
            $visits = mt_rand(0, 99) < 70 ? 1 : 2;
            for ($v = 0; $v < $visits; $v++) {
                $c = $courselist[mt_rand(0, count($courselist) - 1)];
                $session[] = $event('\\core\\event\\course_viewed', 'core', 'viewed', 'course', 'r', 2, 50, null, $t, $u, $c,
                    null, $ip, null, mt_rand(0, 3) ? null : ['coursesectionnumber' => mt_rand(0, 10)]);
                $t += mt_rand(5, 90);
                $steps = 1 + (int) floor(-log(max(1e-9, mt_rand() / mt_getrandmax())) * 3);
                for ($s = 0; $s < $steps; $s++) {
                    $k = mt_rand(1, 30);
                    $cm = $c * 100 + $k;
                    if ($k <= 12) {
                        $session[] = $event('\\mod_page\\event\\course_module_viewed', 'mod_page', 'viewed', 'course_module',
                            'r', 2, 70, 'page', $t, $u, $c, $cm, $ip);
                    } else if ($k <= 18) {
                        $session[] = $event('\\mod_forum\\event\\discussion_viewed', 'mod_forum', 'viewed', 'discussion', 'r', 2,
                            70, 'forum_discussions', $t, $u, $c, $cm, $ip, null, ['forumid' => $cm]);
                        if (mt_rand(0, 99) < 6) {
                            $t += mt_rand(30, 300);
                            $session[] = $event('\\mod_forum\\event\\post_created', 'mod_forum', 'created', 'post', 'c', 2, 70,
                                'forum_posts', $t, $u, $c, $cm, $ip, null, ['discussionid' => mt_rand(1, 9000),
                                'forumid' => $cm, 'forumtype' => 'general']);
                        }
                    } else if ($k <= 22) {
                        $session[] = $event('\\mod_quiz\\event\\attempt_viewed', 'mod_quiz', 'viewed', 'attempt', 'r', 2, 70,
                            'quiz_attempts', $t, $u, $c, $cm, $ip, $u, ['quizid' => $cm, 'page' => mt_rand(0, 9)]);
                        if (mt_rand(0, 99) < 10) {
                            $t += mt_rand(60, 900);
                            $session[] = $event('\\mod_quiz\\event\\attempt_submitted', 'mod_quiz', 'submitted', 'attempt', 'u',
                                2, 70, 'quiz_attempts', $t, $u, $c, $cm, $ip, $u, ['quizid' => $cm, 'submitterid' => $u]);
                        }
                    } else if ($k <= 26) {
                        $session[] = $event('\\mod_resource\\event\\course_module_viewed', 'mod_resource', 'viewed',
                            'course_module', 'r', 2, 70, 'resource', $t, $u, $c, $cm, $ip);
                    } else {
                        $session[] = $event('\\mod_assign\\event\\submission_status_viewed', 'mod_assign', 'viewed',
                            'submission_status', 'r', 2, 70, 'assign', $t, $u, $c, $cm, $ip, null, ['assignid' => $cm]);
                        if (mt_rand(0, 99) < 10) {
                            $t += mt_rand(60, 600);
                            $session[] = $event('\\assignsubmission_file\\event\\submission_updated', 'assignsubmission_file',
                                'updated', 'submission', 'u', 2, 70, 'assign_submission', $t, $u, $c, $cm, $ip, null,
                                ['filesubmissioncount' => mt_rand(1, 3)]);
                        }
                    }
                    $t += mt_rand(10, 240);
                }
                if ($u < 2 + $teachers) {
                    $graded = mt_rand(0, 8);
                    $session[] = $event('\\mod_assign\\event\\grading_table_viewed', 'mod_assign', 'viewed', 'grading_table',
                        'r', 1, 70, null, $t, $u, $c, $c * 100 + mt_rand(27, 30), $ip);
                    for ($g = 0; $g < $graded; $g++) {
                        $t += mt_rand(20, 200);
                        $student = $members[$c][mt_rand(0, count($members[$c]) - 1)];
                        $session[] = $event('\\core\\event\\user_graded', 'core', 'graded', 'user', 'u', 1, 50, 'grade_grades', $t,
                            $u, $c, null, $ip, $student, ['itemid' => mt_rand(1, 3000), 'overridden' => false, 'finalgrade' => mt_rand(0, 100)]);
                    }
                }
            }
            if (mt_rand(0, 99) < 15) {
                $session[] = $event('\\core\\event\\user_loggedout', 'core', 'loggedout', 'user', 'r', 0, 10, 'user', $t, $u, 0,
                    null, $ip, null, ['sessionid' => bin2hex(pack('N', mt_rand()))]);
            }
            foreach ($session as $e) {
                if ($e['timecreated'] < $daystart + 86400) {
                    $e['origin'] = $origin;
                    $day[] = $e;
                }
            }
        }
        // Time order within the day (stable for equal seconds): the order a site writes them in.
        $keys = array_keys($day);
        usort($keys, function($a, $b) use ($day) {
            return $day[$a]['timecreated'] <=> $day[$b]['timecreated'] ?: $a <=> $b;
        });
        foreach ($keys as $k) {
            yield $day[$k];
        }
    }
}
