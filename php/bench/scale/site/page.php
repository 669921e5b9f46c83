<?php
// The scale benchmark's timing page: copied into the site's web root as tsdbbench/page.php while the benchmark runs
// (never part of the plugin). Each request is a new PHP-FPM request of the site's pool, as a report page is: Moodle's
// setup, then one shape run once on one store through get_log_manager()->get_readers(), timed from its first call to
// its last (the tsdb reader opens its connection inside that time, as on a report page). Answers JSON.
// POST body (JSON): token (the one reports.php wrote into the dataroot), store, shape (site/shapes.php).

define('NO_MOODLE_COOKIES', true);
define('NO_DEBUG_DISPLAY', true);
require(__DIR__ . '/../config.php');
require_once(__DIR__ . '/shapes.php');

$input = json_decode((string) file_get_contents('php://input'), true);
$token = @file_get_contents($CFG->dataroot . '/tsdbbench-token');
if (!is_array($input) || !$token || !hash_equals(trim($token), (string) ($input['token'] ?? ''))) {
    http_response_code(403);
    die('forbidden');
}
$store = (string) $input['store'];
// A report page runs under PHP's max_execution_time (30 s by default); here a slow shape is measured to its end.
core_php_time_limit::raise(900);
ob_start();
$out = ['store' => $store];
try {
    $reader = get_log_manager()->get_readers()[$store];
    [$ms, $answers, $callms] = scale_run_shape($store, $reader, $input['shape']);
    $out += ['ms' => $ms, 'call_ms' => $callms, 'digest' => scale_digest(scale_normalise($answers))];
} catch (\Throwable $e) {
    $out += ['error' => get_class($e) . ': ' . $e->getMessage(),
        'refused' => $e instanceof \logstore_tsdb\local\reader\unsupported_query];
}
$noise = ob_get_clean();
if ($noise !== '') {
    $out['noise'] = substr($noise, 0, 2000);
}
header('Content-Type: application/json');
echo json_encode($out);
