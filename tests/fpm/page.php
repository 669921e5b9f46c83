<?php
// A page served by the test PHP-FPM pool: logs `n` events tagged with the request id, prints the worker pid.
$req = (int)($_GET['req'] ?? 0);
$n = (int)($_GET['n'] ?? 20);
for ($i = 0; $i < $n; $i++) {
    tsdb_log_event([
        'eventname' => '\\core\\event\\course_viewed', 'component' => 'core', 'action' => 'viewed', 'target' => 'course',
        'crud' => 'r', 'edulevel' => 2, 'contextid' => 15, 'contextlevel' => 50, 'contextinstanceid' => 3,
        'userid' => $req, 'courseid' => 3, 'anonymous' => 0, 'timecreated' => time(),
        'other' => ['req' => $req, 'i' => $i, 'pid' => getmypid()], 'origin' => 'web', 'ip' => '127.0.0.1',
    ]);
}
echo getmypid();
