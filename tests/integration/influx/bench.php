<?php
// End-to-end speed into InfluxDB 1.x through the extension, as a ratio to the server's own ceiling
// measured in the same run: the identical line protocol (the extension's `file` backend writes exactly
// what the InfluxDB backend sends), cut into the same batches, gzip-compressed the same way, posted by
// one curl process over one keep-alive connection.
//
//   php -d extension=target/release/libtsdb.so tests/integration/influx/bench.php [EVENTS] [GZIP 1|0]
//
// Needs TSDB_TEST_INFLUX_URL (tests/servers/influxdb.sh). Prints one JSON line; exits 1 if any event
// is missing from either database (it never judges speed).

declare(strict_types=1);

$url = getenv('TSDB_TEST_INFLUX_URL') ?: '';
if ($url === '' || !extension_loaded('tsdb')) {
    fwrite(STDERR, "SKIPPED: needs the tsdb extension and TSDB_TEST_INFLUX_URL (./build.sh bench)\n");
    exit(0);
}
$n = (int)($argv[1] ?? 100000);
$gzip = (int)($argv[2] ?? 1);
$batch = 5000;

function influxql(string $url, string $db, string $q): array
{
    $ctx = stream_context_create(['http' => ['method' => 'POST', 'ignore_errors' => true, 'timeout' => 300,
        'header' => "Content-Type: application/x-www-form-urlencoded\r\n",
        'content' => http_build_query(['q' => $q, 'db' => $db])]]);
    return json_decode((string)file_get_contents("$url/query", false, $ctx), true) ?? [];
}

function stored(string $url, string $db): int
{
    $v = influxql($url, $db, 'SELECT count(userid) FROM moodle_events');
    return (int)($v['results'][0]['series'][0]['values'][0][1] ?? 0);
}

/** Moodle-shaped events: module views, forum posts, grades, logins; 200 courses, 30 000 users. */
function events(int $n): array
{
    $kinds = [
        ['\\mod_forum\\event\\course_module_viewed', 'mod_forum', 'viewed', 'course_module', 'forum', 'r', 2, 70],
        ['\\mod_forum\\event\\post_created', 'mod_forum', 'created', 'post', 'forum_posts', 'c', 2, 70],
        ['\\core\\event\\user_graded', 'core', 'graded', 'user', 'grade_grades', 'u', 2, 50],
        ['\\core\\event\\user_loggedin', 'core', 'loggedin', 'user', 'user', 'r', 0, 10],
    ];
    $t = time();
    $out = [];
    for ($i = 0; $i < $n; $i++) {
        [$name, $comp, $action, $target, $table, $crud, $edu, $ctxlevel] = $kinds[$i % 4];
        $out[] = ['eventname' => $name, 'component' => $comp, 'action' => $action, 'target' => $target,
            'objecttable' => $table, 'objectid' => $i * 7, 'crud' => $crud, 'edulevel' => $edu,
            'contextid' => 1000 + $i % 5000, 'contextlevel' => $ctxlevel, 'contextinstanceid' => 300 + $i % 400,
            'userid' => 20000 + $i % 30000, 'courseid' => 10 + $i % 200, 'relateduserid' => null, 'anonymous' => 0,
            'other' => ['forumid' => (string)($i % 97), 'discussionid' => $i % 1009, 'forumtype' => 'general'],
            'timecreated' => $t - intdiv($n - $i, 1000), 'origin' => 'web', 'ip' => '192.168.104.27',
            'realuserid' => null];
    }
    return $out;
}

$events = events($n);
$tag = getmypid() . '_' . random_int(0, 1 << 30);
$dbExt = "tsdb_bench_ext_$tag";
$dbCeil = "tsdb_bench_ceiling_$tag";
influxql($url, '', "CREATE DATABASE \"$dbExt\"");
influxql($url, '', "CREATE DATABASE \"$dbCeil\"");
$tmp = sys_get_temp_dir() . "/tsdb_bench_$tag";
mkdir($tmp);

// 1. The identical payload: the file backend writes the InfluxDB backend's line protocol.
tsdb_configure(['backend' => 'file', 'format' => 'line', 'path' => "$tmp/all.lp", 'batch_size' => $batch]);
foreach ($events as $e) {
    tsdb_log_event($e);
}
while (tsdb_flush(30000) > 0) {
}
$lines = file("$tmp/all.lp");
$args = [];
foreach (array_chunk($lines, $batch) as $i => $chunk) {
    $payload = implode('', $chunk);
    file_put_contents("$tmp/b$i.gz", $gzip ? gzencode($payload, 1) : $payload);
    if ($args) {
        $args[] = '--next';
    }
    if ($gzip) {
        array_push($args, '-H', 'Content-Encoding: gzip');
    }
    array_push($args, '-s', '-o', '/dev/null', '-w', '%{http_code}\n',
        '-H', 'Content-Type: text/plain; charset=utf-8', '--data-binary', "@$tmp/b$i.gz",
        "$url/write?db=$dbCeil&precision=ns");
}

// 2. Server ceiling: curl posts the batches back to back.
$t0 = hrtime(true);
exec('curl ' . implode(' ', array_map('escapeshellarg', $args)), $codes, $rc);
$ceilSecs = (hrtime(true) - $t0) / 1e9;

// 3. Through the extension: tsdb_log_event() until every event is confirmed written.
tsdb_configure(['backend' => 'influxdb1', 'url' => $url, 'database' => $dbExt, 'batch_size' => $batch,
    'flush_interval_ms' => 200, 'gzip' => $gzip]);
$before = tsdb_stats()['written'];
$t0 = hrtime(true);
foreach ($events as $e) {
    tsdb_log_event($e);
}
$logSecs = (hrtime(true) - $t0) / 1e9;
while (tsdb_flush(30000) > 0) {
}
$extSecs = (hrtime(true) - $t0) / 1e9;
$written = tsdb_stats()['written'] - $before;

$inExt = stored($url, $dbExt);
$inCeil = stored($url, $dbCeil);
influxql($url, '', "DROP DATABASE \"$dbExt\"");
influxql($url, '', "DROP DATABASE \"$dbCeil\"");
array_map('unlink', glob("$tmp/*"));
rmdir($tmp);

$ceil = $n / $ceilSecs;
$ext = $n / $extSecs;
echo json_encode([
    'events' => $n, 'batch' => $batch, 'gzip' => $gzip,
    'server_ceiling_events_per_s' => round($ceil), 'extension_events_per_s' => round($ext),
    'ratio' => round($ext / $ceil, 3),
    'tsdb_log_event_us' => round($logSecs / $n * 1e6, 3),
    'curl_http_codes' => array_count_values($codes), 'stored_ceiling' => $inCeil, 'stored_extension' => $inExt,
    'written_per_stats' => $written,
]), "\n";
exit($inExt === $n && $inCeil === $n && $written === $n ? 0 : 1);
