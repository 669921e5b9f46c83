<?php
// End-to-end speed into InfluxDB 1.x through the extension, as a ratio to the server's own ceiling
// measured in the same run: the identical line protocol (the extension's `file` backend writes exactly
// what the InfluxDB backend sends), cut into the same batches, gzip-compressed at the same level, posted
// by one curl process over one keep-alive connection.
//
//   php -d extension=target/release/libtsdb.so tests/integration/influx/bench.php [EVENTS] [GZIP auto|1|0] [ROUNDS]
//
// GZIP `auto` (default) leaves the extension's `gzip` setting at its default, which compresses only for a
// server off this machine; curl's payload is compressed exactly when the extension's is.
// The extension's time runs from the first tsdb_log_event() to the last event confirmed written, so it
// includes the PHP loop that logs the events; curl's starts with the payload ready. Both share the
// machine with the server. A run is ROUNDS rounds (default 5), each into fresh databases, curl first in
// even rounds and the extension first in odd ones, so that neither always inherits the server's
// background work (WAL snapshots, compactions) from the other. Prints one JSON line per round and a
// summary (median of the rounds' ratios); exits 1 if any event is missing from any database (it never
// judges speed).

declare(strict_types=1);

$url = getenv('TSDB_TEST_INFLUX_URL') ?: '';
if ($url === '' || !extension_loaded('tsdb')) {
    fwrite(STDERR, "SKIPPED: needs the tsdb extension and TSDB_TEST_INFLUX_URL (./build.sh bench)\n");
    exit(0);
}
$n = (int)($argv[1] ?? 100000);
$gzipArg = $argv[2] ?? 'auto';
$host = trim((string)parse_url($url, PHP_URL_HOST), '[]');
$loopback = $host === 'localhost' || (filter_var($host, FILTER_VALIDATE_IP) && (str_starts_with($host, '127.') || $host === '::1'));
$gzip = $gzipArg === 'auto' ? (int)!$loopback : (int)$gzipArg;
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
$rounds = max(1, (int)($argv[3] ?? 5));
$tag = getmypid() . '_' . random_int(0, 1 << 30);
$tmp = sys_get_temp_dir() . "/tsdb_bench_$tag";
mkdir($tmp);

// The identical payload: the file backend writes the InfluxDB backend's line protocol.
tsdb_configure(['backend' => 'file', 'format' => 'line', 'path' => "$tmp/all.lp", 'batch_size' => $batch]);
foreach ($events as $e) {
    tsdb_log_event($e);
}
while (tsdb_flush(30000) > 0) {
}
$files = [];
foreach (array_chunk(file("$tmp/all.lp"), $batch) as $i => $chunk) {
    $payload = implode('', $chunk);
    $files[] = $f = "$tmp/b$i";
    file_put_contents($f, $gzip ? gzencode($payload, 1) : $payload);
}

/** Seconds for curl to post every batch back to back into $db; the HTTP codes in $codes. */
function post_with_curl(string $url, string $db, array $files, int $gzip, array &$codes): float
{
    $args = [];
    foreach ($files as $f) {
        if ($args) {
            $args[] = '--next';
        }
        if ($gzip) {
            array_push($args, '-H', 'Content-Encoding: gzip');
        }
        array_push($args, '-s', '-o', '/dev/null', '-w', '%{http_code}\n',
            '-H', 'Content-Type: text/plain; charset=utf-8', '--data-binary', "@$f", "$url/write?db=$db&precision=ns");
    }
    $t0 = hrtime(true);
    exec('curl ' . implode(' ', array_map('escapeshellarg', $args)), $codes);
    return (hrtime(true) - $t0) / 1e9;
}

/** Seconds from the first tsdb_log_event() into $db to the last event confirmed; [seconds, µs per call, written]. */
function log_through_extension(string $url, string $db, array $events, int $batch, string $gzip): array
{
    $gz = $gzip === 'auto' ? [] : ['gzip' => (int)$gzip];
    tsdb_configure(['backend' => 'influxdb1', 'url' => $url, 'database' => $db, 'batch_size' => $batch,
        'flush_interval_ms' => 200] + $gz);
    $before = tsdb_stats()['written'];
    $t0 = hrtime(true);
    foreach ($events as $e) {
        tsdb_log_event($e);
    }
    $logSecs = (hrtime(true) - $t0) / 1e9;
    while (tsdb_flush(30000) > 0) {
    }
    $secs = (hrtime(true) - $t0) / 1e9;
    return [$secs, $logSecs / count($events) * 1e6, tsdb_stats()['written'] - $before];
}

$ratios = [];
$complete = true;
for ($r = 0; $r < $rounds; $r++) {
    $dbExt = "tsdb_bench_ext_{$tag}_$r";
    $dbCeil = "tsdb_bench_ceiling_{$tag}_$r";
    influxql($url, '', "CREATE DATABASE \"$dbExt\"");
    influxql($url, '', "CREATE DATABASE \"$dbCeil\"");
    $codes = [];
    if ($r % 2 === 0) {
        $ceilSecs = post_with_curl($url, $dbCeil, $files, $gzip, $codes);
        [$extSecs, $logUs, $written] = log_through_extension($url, $dbExt, $events, $batch, $gzipArg);
    } else {
        [$extSecs, $logUs, $written] = log_through_extension($url, $dbExt, $events, $batch, $gzipArg);
        $ceilSecs = post_with_curl($url, $dbCeil, $files, $gzip, $codes);
    }
    $inExt = stored($url, $dbExt);
    $inCeil = stored($url, $dbCeil);
    influxql($url, '', "DROP DATABASE \"$dbExt\"");
    influxql($url, '', "DROP DATABASE \"$dbCeil\"");
    $complete = $complete && $inExt === $n && $inCeil === $n && $written === $n;
    $ratios[] = $ratio = round($ceilSecs / $extSecs, 3);
    echo json_encode([
        'round' => $r + 1, 'first' => $r % 2 === 0 ? 'curl' : 'extension',
        'server_ceiling_events_per_s' => round($n / $ceilSecs), 'extension_events_per_s' => round($n / $extSecs),
        'ratio' => $ratio, 'tsdb_log_event_us' => round($logUs, 3), 'curl_http_codes' => array_count_values($codes),
        'stored_ceiling' => $inCeil, 'stored_extension' => $inExt, 'written_per_stats' => $written,
    ]), "\n";
}
array_map('unlink', glob("$tmp/*"));
rmdir($tmp);

sort($ratios);
echo json_encode([
    'events' => $n, 'batch' => $batch, 'gzip' => $gzipArg === 'auto' ? "auto ($gzip)" : $gzip, 'rounds' => $rounds,
    'median_ratio' => $ratios[intdiv($rounds, 2)], 'min_ratio' => $ratios[0], 'max_ratio' => end($ratios),
    'every_event_stored' => $complete,
]), "\n";
exit($complete ? 0 : 1);
