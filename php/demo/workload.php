<?php
// ./build.sh demo: a simulated Moodle day through the extension into every sink available here, then a summary
// of what landed and a few analytics answers read back from each.
// Usage: php -d extension=libtsdb.so php/demo/workload.php [events]

require __DIR__ . '/moodle_day.php';

$n = (int)($argv[1] ?? 200000);
$daystart = (int)(floor(time() / 86400) * 86400) - 86400;  // yesterday, UTC
$targets = ['file' => ['backend' => 'file', 'format' => 'json', 'path' => sys_get_temp_dir() . '/tsdb-demo-' . getmypid() . '.jsonl']];
if (getenv('TSDB_TEST_PG_HOST')) {
    $targets['postgres'] = ['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'), 'port' => getenv('TSDB_TEST_PG_PORT'),
        'user' => getenv('TSDB_TEST_PG_USER'), 'password' => getenv('TSDB_TEST_PG_PASSWORD'), 'dbname' => getenv('TSDB_TEST_PG_DB'),
        'table' => 'demo_log'];
}
if (getenv('TSDB_TEST_INFLUX_URL')) {
    $targets['influxdb1'] = ['backend' => 'influxdb1', 'url' => getenv('TSDB_TEST_INFLUX_URL'), 'database' => 'demo'];
    @file_get_contents(getenv('TSDB_TEST_INFLUX_URL') . '/query?q=' . urlencode('CREATE DATABASE demo'), false,
        stream_context_create(['http' => ['method' => 'POST']]));
}

printf("A simulated Moodle day: %d events, 3000 users, 40 courses, %s UTC\n", $n, gmdate('Y-m-d', $daystart));
foreach ($targets as $name => $config) {
    tsdb_configure($config + ['batch_size' => 5000, 'flush_interval_ms' => 200]);
    $before = tsdb_stats();
    $t0 = hrtime(true);
    $accepted = 0;
    foreach (tsdb_demo_events($n, $daystart) as $event) {
        $accepted += tsdb_log_event($event) ? 1 : 0;
    }
    $logged = (hrtime(true) - $t0) / 1e9;
    $pending = tsdb_flush(120000);
    $total = (hrtime(true) - $t0) / 1e9;
    $s = tsdb_stats();
    printf("\n== %s\n  accepted %d in %.2f s (%.2f µs per call, generation included); written %d, failed %d, rejected %d, pending %d, %.0f events/s end to end\n",
        $name, $accepted, $logged, $logged / $n * 1e6, $s['written'] - $before['written'], $s['failed'] - $before['failed'],
        $s['rejected'] - $before['rejected'], $pending, $n / $total);
    if ($s['last_error'] !== '') {
        echo "  last error: {$s['last_error']}\n";
    }
    $answers = "tsdb_demo_answers_$name";
    $answers($config);
}

function tsdb_demo_print(string $title, array $rows): void {
    echo "  $title\n";
    foreach ($rows as $r) {
        echo '    ', implode("  ", array_map(fn($v) => is_float($v) ? sprintf('%.0f', $v) : (string)$v, $r)), "\n";
    }
}

function tsdb_demo_answers_file(array $config): void {
    $byname = [];
    $users = [];
    $lines = 0;
    foreach (new SplFileObject($config['path']) as $line) {
        if ($line === '') {
            continue;
        }
        $e = json_decode($line, true);
        $lines++;
        $byname[$e['eventname']] = ($byname[$e['eventname']] ?? 0) + 1;
        $users[$e['userid']] = true;
    }
    arsort($byname);
    printf("  %d lines in %s; %d distinct users\n", $lines, $config['path'], count($users));
    tsdb_demo_print('top events:', array_map(null, array_slice(array_values($byname), 0, 5), array_slice(array_keys($byname), 0, 5)));
    unlink($config['path']);
}

function tsdb_demo_answers_postgres(array $config): void {
    $db = pg_connect(sprintf("host=%s port=%s dbname=%s user=%s password=%s", $config['host'], $config['port'], $config['dbname'], $config['user'], $config['password']));
    $q = fn($sql) => pg_fetch_all(pg_query($db, $sql)) ?: [];
    tsdb_demo_print('rows, distinct users:', $q("SELECT count(*) AS rows, count(DISTINCT userid) AS users FROM demo_log"));
    tsdb_demo_print('busiest hours (UTC):', $q("SELECT to_char(date_trunc('hour', time), 'HH24:00') AS hour, count(*) FROM demo_log GROUP BY 1 ORDER BY 2 DESC LIMIT 3"));
    tsdb_demo_print('top courses:', $q("SELECT courseid, count(*) FROM demo_log WHERE courseid > 0 GROUP BY 1 ORDER BY 2 DESC LIMIT 3"));
    tsdb_demo_print('logins / failed logins:', $q("SELECT sum((eventname = '\\core\\event\\user_loggedin')::int) AS logins, sum((eventname = '\\core\\event\\user_login_failed')::int) AS failed FROM demo_log"));
    tsdb_demo_print('teaching vs participating events:', $q("SELECT edulevel, count(*) FROM demo_log WHERE edulevel > 0 GROUP BY 1 ORDER BY 1"));
}

function tsdb_demo_answers_influxdb1(array $config): void {
    $ask = function (string $q) use ($config): array {
        $r = json_decode((string)@file_get_contents($config['url'] . '/query?db=demo&q=' . urlencode($q)), true);
        return $r['results'][0]['series'] ?? [];
    };
    foreach ($ask('SELECT count(userid) FROM moodle_events') as $s) {
        tsdb_demo_print('points:', [[$s['values'][0][1]]]);
    }
    $rows = [];
    foreach ($ask('SELECT count(userid) FROM moodle_events GROUP BY courseid') as $s) {
        // As the PostgreSQL answer: site-level events (course 0) are not a course.
        if (($s['tags']['courseid'] ?? '0') !== '0') {
            $rows[] = [$s['values'][0][1], 'course ' . $s['tags']['courseid']];
        }
    }
    rsort($rows);
    tsdb_demo_print('top courses:', array_slice($rows, 0, 3));
    $logins = [];
    foreach (['user_loggedin', 'user_login_failed'] as $name) {
        foreach ($ask("SELECT count(userid) FROM moodle_events WHERE eventname = '\\\\core\\\\event\\\\$name'") as $s) {
            $logins[] = $s['values'][0][1];
        }
    }
    tsdb_demo_print('logins / failed logins:', [$logins]);
}
