<?php
// Helpers of the security tests (tests/security/*Test.php). Each test runs PHP children with the
// extension loaded from a private php.ini, so that secrets never appear on a command line, and looks
// at everything such a child makes observable: stdout, stderr, phpinfo(), exceptions, tsdb_stats().
//
//   php -d extension=/path/to/libtsdb.so /usr/bin/phpunit tests/security

/** The tsdb extension loaded in this process (from /proc/self/maps), else $TSDB_SO, else the build output. */
function tsdb_sec_so(): string {
    foreach (@file('/proc/self/maps') ?: [] as $line) {
        if (preg_match('#\s(/\S*libtsdb\.so)$#', trim($line), $m)) {
            return $m[1];
        }
    }
    $env = getenv('TSDB_SO');
    if ($env) {
        return $env;
    }
    return dirname(__DIR__, 2) . '/target/release/libtsdb.so';
}

/** A fresh temporary directory, removed at exit. */
function tsdb_sec_tempdir(): string {
    $d = sys_get_temp_dir() . '/tsdb-sec-' . bin2hex(random_bytes(6));
    mkdir($d, 0700);
    register_shutdown_function(function () use ($d) {
        exec('rm -rf ' . escapeshellarg($d));
    });
    return $d;
}

/**
 * Runs PHP `$code` in a child with the extension and `$ini` (tsdb.* settings included) from a php.ini
 * file only (no command-line -d, no scan directory). Returns [exit code, stdout, stderr, seconds].
 */
function tsdb_sec_run(string $code, array $ini = [], int $timeout = 120, array $env = []): array {
    $dir = tsdb_sec_tempdir();
    $lines = ['extension=' . tsdb_sec_so(), 'display_errors=stderr', 'error_reporting=E_ALL', 'log_errors=0'];
    foreach ($ini as $k => $v) {
        $lines[] = $k . '="' . str_replace(['\\', '"'], ['\\\\', '\\"'], (string) $v) . '"';
    }
    file_put_contents("$dir/php.ini", implode("\n", $lines) . "\n");
    file_put_contents("$dir/main.php", "<?php\n" . $code);
    $cmd = [PHP_BINARY, '-c', "$dir/php.ini", "$dir/main.php"];
    $envs = array_merge(getenv(), ['PHP_INI_SCAN_DIR' => ''], $env);
    $start = microtime(true);
    $p = proc_open($cmd, [1 => ['file', "$dir/out", 'w'], 2 => ['file', "$dir/err", 'w']], $pipes, $dir, $envs);
    $rc = -1;
    while (true) {
        $st = proc_get_status($p);
        if (!$st['running']) {
            $rc = $st['exitcode'];
            break;
        }
        if (microtime(true) - $start > $timeout) {
            proc_terminate($p, 9);
            $rc = -9;
            break;
        }
        usleep(20000);
    }
    proc_close($p);
    return [$rc, (string) file_get_contents("$dir/out"), (string) file_get_contents("$dir/err"), microtime(true) - $start];
}

/**
 * An HTTP server that answers like an InfluxDB refusing the credentials, and echoes every request
 * header and the URL into its error body (the worst a server can do with a secret it was sent).
 * Returns [base url, stop function, function returning the request log].
 */
function tsdb_sec_echo_server(int $status = 401): array {
    $dir = tsdb_sec_tempdir();
    $router = <<<'PHP'
<?php
$headers = [];
foreach (getallheaders() as $k => $v) {
    $headers[] = "$k: $v";
}
file_put_contents(__DIR__ . '/requests.log', $_SERVER['REQUEST_METHOD'] . ' ' . $_SERVER['REQUEST_URI'] . "\n" . implode("\n", $headers) . "\n\n", FILE_APPEND);
header('X-Influxdb-Version: ' . getenv('ECHO_VERSION'));
header('X-Influxdb-Build: OSS');
if (str_starts_with($_SERVER['REQUEST_URI'], '/ping')) {
    http_response_code(204);
    return true;
}
http_response_code((int) getenv('ECHO_STATUS'));
header('Content-Type: application/json');
$text = 'refused ' . $_SERVER['REQUEST_URI'] . ' with ' . implode(' | ', $headers);
echo json_encode(['code' => 'unauthorized', 'message' => $text, 'error' => $text]);
return true;
PHP;
    file_put_contents("$dir/router.php", $router);
    $sock = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int) substr(strrchr(stream_socket_get_name($sock, false), ':'), 1);
    fclose($sock);
    $env = array_merge(getenv(), ['ECHO_STATUS' => (string) $status, 'ECHO_VERSION' => '2.7.4']);
    $p = proc_open([PHP_BINARY, '-n', '-S', "127.0.0.1:$port", "$dir/router.php"],
        [1 => ['file', "$dir/server.out", 'w'], 2 => ['file', "$dir/server.err", 'w']], $pipes, $dir, $env);
    for ($i = 0; $i < 100; $i++) {
        $c = @fsockopen('127.0.0.1', $port, $en, $es, 0.1);
        if ($c) {
            fclose($c);
            break;
        }
        usleep(50000);
    }
    $stop = function () use ($p) {
        proc_terminate($p);
        proc_close($p);
    };
    $log = function () use ($dir) {
        return (string) @file_get_contents("$dir/requests.log") . (string) @file_get_contents("$dir/server.err");
    };
    return ["http://127.0.0.1:$port", $stop, $log];
}

/** A Moodle-shaped event. */
function tsdb_sec_event(int $i, array $overrides = []): array {
    return array_merge([
        'eventname' => '\\mod_forum\\event\\post_created',
        'component' => 'mod_forum',
        'action' => 'created',
        'target' => 'post',
        'objecttable' => 'forum_posts',
        'objectid' => 10 + $i,
        'crud' => 'c',
        'edulevel' => 2,
        'contextid' => 100,
        'contextlevel' => 70,
        'contextinstanceid' => 5,
        'userid' => 1000 + $i,
        'courseid' => 3,
        'relateduserid' => null,
        'anonymous' => 0,
        'other' => ['discussionid' => 7, 'forumid' => 2, 'forumtype' => 'general'],
        'timecreated' => 1700000000 + $i,
        'origin' => 'web',
        'ip' => '192.0.2.1',
        'realuserid' => null,
    ], $overrides);
}

/**
 * Strings an attacker controls in a Moodle event: a forum post title or subject in `other`, a crafted
 * User-Agent or X-Forwarded-For that a site logs as `ip`, names of uploaded files...
 */
function tsdb_sec_attacker_strings(): array {
    return [
        "x,evil=1 f=2i 0\nm2 g=3i 0",                 // line protocol: new tag, new field, new point
        "\"\nm3 f=1i 0\n\"",                           // close the string field, new point
        "a\\\" b=\"c",                                 // escaped quote games
        "p\\ q",                                       // a backslash before an escaped space
        "trailing backslash\\",
        "\\\\\\",
        "#comment\nmoodle_events,eventname=x userid=1i 0",
        "'; DROP TABLE mdl_logstore_tsdb_log; --",     // SQL
        "\\N",                                         // COPY text NULL marker
        "\\.",                                         // COPY end-of-data marker
        "\t\r\n\x00\x01\x1b[31m",                      // control bytes, terminal escapes
        "<script>alert(1)</script>",                   // HTML
        "\xff\xfe invalid \xc3",                       // invalid UTF-8
        "\u{202e}evil\u{200b}",                        // RTL override, zero width
        str_repeat("A", 70000),                        // over InfluxDB's 64 KiB string limit
        '{"json":"in a string","n":1e999999}',
    ];
}

/**
 * InfluxDB 1.x/2.x's line splitter (models/points.go scanLine): skips a backslash and the byte after
 * it, and once past the first space counts `=` and `,` to recognise an opening quote.
 */
function tsdb_sec_go_lines(string $buf): array {
    $lines = [];
    $n = strlen($buf);
    $pos = 0;
    while ($pos < $n) {
        $i = $pos;
        $quoted = false;
        $fields = false;
        $equals = 0;
        $commas = 0;
        while ($i < $n) {
            $b = $buf[$i];
            if ($b === '\\' && $i + 2 < $n) {
                $i += 2;
                continue;
            }
            if ($b === ' ') {
                $fields = true;
            }
            if ($fields) {
                if (!$quoted && $b === '=') {
                    $i++;
                    $equals++;
                    continue;
                } else if (!$quoted && $b === ',') {
                    $i++;
                    $commas++;
                    continue;
                } else if ($b === '"' && $equals > $commas) {
                    $i++;
                    $quoted = !$quoted;
                    continue;
                }
            }
            if ($b === "\n" && !$quoted) {
                break;
            }
            $i++;
        }
        $lines[] = substr($buf, $pos, $i - $pos);
        $pos = $i + 1;
    }
    return $lines;
}

/** The measurement and tag keys of a line (split at separators not preceded by a backslash). */
function tsdb_sec_series(string $line): array {
    $key = '';
    for ($i = 0, $n = strlen($line); $i < $n; $i++) {
        if ($line[$i] === ' ' && ($i === 0 || $line[$i - 1] !== '\\')) {
            $key = substr($line, 0, $i);
            break;
        }
    }
    $parts = preg_split('/(?<!\\\\),/', $key);
    $measurement = array_shift($parts);
    $tags = [];
    foreach ($parts as $p) {
        $tags[] = explode('=', $p, 2)[0];
    }
    return [$measurement, $tags];
}

/** Resident memory of this process in bytes. */
function tsdb_sec_rss(): int {
    $s = (string) @file_get_contents('/proc/self/status');
    return preg_match('/VmRSS:\s+(\d+) kB/', $s, $m) ? (int) $m[1] * 1024 : 0;
}
