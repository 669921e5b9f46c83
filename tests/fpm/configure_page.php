<?php
// A page served by the test PHP-FPM pool that configures the extension as an application would
// (`path` from the query), logs one event, waits for it, and prints tsdb_stats() as JSON.
tsdb_configure(['backend' => 'file', 'format' => 'json', 'path' => (string)($_GET['path'] ?? '')]);
tsdb_log_event(['eventname' => '\core\event\course_viewed', 'timecreated' => time(), 'userid' => (int)($_GET['user'] ?? 0)]);
tsdb_flush(5000);
echo json_encode(tsdb_stats());
