<?php
// The page the FPM benchmark serves: logs `n` Moodle-shaped events the way `mode` says.
//   off:    no store (the page's own cost)
//   tsdb:   tsdb_log_event() per event (the pool's tsdb.mode decides async or durable)
//   insert: one synchronous single-row INSERT per event through pgsql, what a naive PHP store does
$mode = $_GET['mode'] ?? 'off';
$n = (int)($_GET['n'] ?? 20);
$event = [
    'eventname' => '\\core\\event\\course_viewed', 'component' => 'core', 'action' => 'viewed', 'target' => 'course',
    'objecttable' => null, 'objectid' => null, 'crud' => 'r', 'edulevel' => 2, 'contextid' => 1234, 'contextlevel' => 50,
    'contextinstanceid' => 42, 'userid' => 5678, 'courseid' => 42, 'relateduserid' => null, 'anonymous' => 0,
    'other' => ['discussionid' => 12, 'forumid' => 3, 'forumtype' => 'general'], 'timecreated' => time(),
    'origin' => 'web', 'ip' => '10.1.2.3', 'realuserid' => null,
];
if ($mode === 'tsdb') {
    for ($i = 0; $i < $n; $i++) {
        tsdb_log_event($event);
    }
} else if ($mode === 'insert') {
    $db = pg_pconnect(getenv('TSDB_BENCH_PG') ?: ($_SERVER['TSDB_BENCH_PG'] ?? ''));
    $row = $event;
    $row['other'] = json_encode($row['other']);
    for ($i = 0; $i < $n; $i++) {
        pg_insert($db, 'bench_standard_log', $row);
    }
}
echo 'ok';
