<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The recording listener (fixtures/influx_capture.php under `php -S`) for tests: start one pretending to be an
 * InfluxDB 1.x, 2.x or 3.x server (or a web proxy), read what it received, stop it.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * For test cases that record requests.
 */
trait influx_capture {

    /** @var array[] Listeners started by this test. */
    protected $captures = [];

    /**
     * A TCP port of 127.0.0.1 that nothing listens on now.
     *
     * @return int
     */
    protected static function free_port(): int {
        $sock = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        $name = stream_socket_get_name($sock, false);
        fclose($sock);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /**
     * Starts a listener.
     *
     * @param string $pretend influxdb1, influxdb2 or influxdb3 (its /ping headers)
     * @param array $env CAPTURE_STATUS, CAPTURE_REASON, CAPTURE_BODY (see the fixture)
     * @return array ['url' => http://127.0.0.1:PORT, 'port' => int, 'file' => capture file, 'proc' => process]
     */
    protected function start_capture(string $pretend, array $env = []): array {
        $file = tempnam(sys_get_temp_dir(), 'influx-capture-');
        $port = self::free_port();
        $env = array_merge(getenv(), ['CAPTURE_FILE' => $file, 'CAPTURE_PRETEND' => $pretend], array_map('strval', $env));
        $proc = proc_open([PHP_BINARY, '-n', '-S', "127.0.0.1:$port", __DIR__ . '/../fixtures/influx_capture.php'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes, null, $env);
        for ($i = 0; $i < 100; $i++) {
            $sock = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.2);
            if ($sock) {
                fclose($sock);
                break;
            }
            usleep(50000);
        }
        $cap = ['url' => "http://127.0.0.1:$port", 'port' => $port, 'file' => $file, 'proc' => $proc];
        $this->captures[] = $cap;
        return $cap;
    }

    /**
     * The requests a listener received whose path starts with $path, in order: the fixture's fields plus `path`,
     * `params` (the query string) and `form` (a form body), decoded.
     *
     * @param array $cap start_capture()
     * @param string $path e.g. /query ('' for every request but /ping)
     * @return array[]
     */
    protected function captured(array $cap, string $path): array {
        clearstatcache();
        $out = [];
        foreach (file($cap['file'], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
            $r = json_decode($line, true);
            $r['path'] = (string) parse_url($r['uri'], PHP_URL_PATH);
            if ($r['path'] === '/ping' || strpos($r['path'], $path) !== 0) {
                continue;
            }
            parse_str((string) parse_url($r['uri'], PHP_URL_QUERY), $r['params']);
            $r['form'] = [];
            if ($r['contenttype'] === 'application/x-www-form-urlencoded') {
                parse_str($r['body'], $r['form']);
            }
            $out[] = $r;
        }
        return $out;
    }

    /**
     * Stops every listener of this test and removes their files.
     */
    protected function stop_captures(): void {
        foreach ($this->captures as $cap) {
            proc_terminate($cap['proc']);
            proc_close($cap['proc']);
            @unlink($cap['file']);
        }
        $this->captures = [];
    }
}
