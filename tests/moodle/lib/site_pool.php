<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * A PHP-FPM pool of its own serving the real pages of the test's site: with or without the tsdb extension, with
 * tsdb.* values fixed by the pool (php_admin_value) or given to the master like php.ini (-d). Requests reach it with
 * cgi-fcgi (Debian's libfcgi-bin) as nginx would pass them, so the site sees its own wwwroot host and port; a
 * tsdb_test_http subclass keeps the session's cookies and follows redirects within the pool.
 *
 * The site's own pool (nginx at wwwroot) stays as it is; this one runs beside it on another port.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * One php-fpm master with a static pool of two workers running as root (as the site's own pool), in a directory of
 * the test.
 */
final class tsdb_test_site_pool {
    /** @var int FastCGI port on 127.0.0.1 */
    public $port;

    /** @var string directory of the pool's configuration and logs */
    public $dir;

    /** @var resource|null the master */
    protected $proc = null;

    /**
     * Starts the pool and waits until it accepts connections.
     *
     * @param string $dir a directory of the test (fpm.conf, fpm.log and fpm.out go there)
     * @param bool $extension load the tsdb extension
     * @param array $adminvalues tsdb.* values fixed by the pool: php_admin_value[tsdb.KEY] (KEY => value)
     * @param array $ini php.ini directives of the master (name => value, -d), e.g. tsdb.* as php.ini sets them
     */
    public function __construct(string $dir, bool $extension = true, array $adminvalues = [], array $ini = []) {
        if (trim((string) shell_exec('command -v cgi-fcgi')) === '') {
            throw new \RuntimeException('cgi-fcgi is not installed (Debian: libfcgi-bin)');
        }
        $fpm = trim((string) shell_exec('command -v php-fpm8.2 || command -v php-fpm'));
        if ($fpm === '') {
            throw new \RuntimeException('php-fpm is not installed');
        }
        $this->dir = $dir;
        @mkdir($dir, 0777, true);
        $this->port = self::free_port();
        $conf = "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\nprocess_control_timeout = 20s\n\n"
            . "[tsdbtest]\nuser = root\nlisten = 127.0.0.1:{$this->port}\npm = static\npm.max_children = 2\n"
            . "pm.max_requests = 500\ncatch_workers_output = yes\nphp_admin_value[max_input_vars] = 5000\n"
            . "php_admin_value[memory_limit] = 512M\n";
        foreach ($adminvalues as $key => $value) {
            $conf .= "php_admin_value[tsdb.$key] = $value\n";
        }
        file_put_contents("$dir/fpm.conf", $conf);
        $cmd = array_merge([$fpm, '-R'], tsdb_test_site::php_args($extension), tsdb_test_site::ini_args($ini),
            ['-y', "$dir/fpm.conf", '-F']);
        $this->proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'],
            2 => ['file', "$dir/fpm.out", 'a']], $pipes);
        for ($i = 0; $i < 100; $i++) {
            $c = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $errstr, 0.2);
            if ($c) {
                fclose($c);
                return;
            }
            if (!proc_get_status($this->proc)['running']) {
                break;
            }
            usleep(100000);
        }
        $out = (string) @file_get_contents("$dir/fpm.out");
        $this->stop();
        throw new \RuntimeException("php-fpm did not start:\n$out");
    }

    /**
     * A TCP port nothing listens on (the kernel's choice, released at once).
     *
     * @return int
     */
    public static function free_port(): int {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /**
     * Stops the pool: SIGQUIT (workers finish their request and run MSHUTDOWN, which flushes the extension), then
     * SIGKILL for a master still there after 30 s.
     */
    public function stop(): void {
        if (!$this->proc) {
            return;
        }
        $pid = proc_get_status($this->proc)['pid'];
        if (proc_get_status($this->proc)['running']) {
            posix_kill($pid, SIGQUIT);
            for ($i = 0; $i < 300 && proc_get_status($this->proc)['running']; $i++) {
                usleep(100000);
            }
            if (proc_get_status($this->proc)['running']) {
                foreach (array_filter(explode("\n", trim((string) shell_exec("pgrep -P $pid")))) as $child) {
                    posix_kill((int) $child, SIGKILL);
                }
                posix_kill($pid, SIGKILL);
            }
        }
        proc_close($this->proc);
        $this->proc = null;
    }

    /**
     * Stops the pool if the test did not.
     */
    public function __destruct() {
        $this->stop();
    }

    /**
     * The PHP errors the pool's workers wrote to their stderr (fpm.log with catch_workers_output), one line each.
     *
     * @return string[]
     */
    public function php_errors(): array {
        return tsdb_test_site::php_notices((string) @file_get_contents("{$this->dir}/fpm.log"));
    }

    /**
     * One FastCGI request as nginx passes it for the site (the wwwroot's host and port, the client on 127.0.0.1).
     *
     * @param string $method GET or POST
     * @param string $uri path and query from the web root, e.g. /course/view.php?id=2
     * @param string $cookie the Cookie header ('' for none)
     * @param string|null $body urlencoded form body for POST
     * @return array [status, headers (lower-case name => values[]), body]
     */
    public function request(string $method, string $uri, string $cookie = '', ?string $body = null): array {
        $info = tsdb_test_site::$info;
        $path = (string) parse_url($uri, PHP_URL_PATH);
        $query = (string) parse_url($uri, PHP_URL_QUERY);
        $script = $path;
        $pathinfo = '';
        if (preg_match('~^(.+?\.php)(/.*)$~', $path, $m)) {
            [, $script, $pathinfo] = $m;
        }
        $env = ['GATEWAY_INTERFACE' => 'CGI/1.1', 'SERVER_SOFTWARE' => 'nginx', 'REQUEST_METHOD' => $method,
            'SCRIPT_FILENAME' => $info->webroot . $script, 'SCRIPT_NAME' => $script, 'PATH_INFO' => $pathinfo,
            'REQUEST_URI' => $uri, 'DOCUMENT_URI' => $path, 'DOCUMENT_ROOT' => $info->webroot, 'QUERY_STRING' => $query,
            'SERVER_PROTOCOL' => 'HTTP/1.1', 'REQUEST_SCHEME' => 'http', 'REMOTE_ADDR' => '127.0.0.1',
            'REMOTE_PORT' => '40000', 'SERVER_ADDR' => '127.0.0.1', 'SERVER_PORT' => (string) $info->port,
            'SERVER_NAME' => '127.0.0.1', 'HTTP_HOST' => '127.0.0.1:' . $info->port, 'REDIRECT_STATUS' => '200',
            'HTTP_USER_AGENT' => 'logstore_tsdb tests', 'PATH' => getenv('PATH')];
        if ($cookie !== '') {
            $env['HTTP_COOKIE'] = $cookie;
        }
        if ($body !== null) {
            $env['CONTENT_TYPE'] = 'application/x-www-form-urlencoded';
            $env['CONTENT_LENGTH'] = (string) strlen($body);
        }
        // This environment only (cgi-fcgi passes its whole environment on as the request's parameters).
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        $proc = proc_open(['cgi-fcgi', '-bind', '-connect', "127.0.0.1:{$this->port}"], $spec, $pipes, null, $env);
        fwrite($pipes[0], $body ?? '');
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        proc_close($proc);
        $parts = preg_split('/\r?\n\r?\n/', $out, 2);
        $headers = [];
        $status = 200;
        foreach (preg_split('/\r?\n/', $parts[0]) as $line) {
            if (strpos($line, ':') === false) {
                continue;
            }
            [$name, $value] = array_map('trim', explode(':', $line, 2));
            $name = strtolower($name);
            $headers[$name][] = $value;
            if ($name === 'status') {
                $status = (int) $value;
            } else if ($name === 'location' && $status === 200) {
                $status = 302;
            }
        }
        return [$status, $headers, $parts[1] ?? ''];
    }
}

/**
 * tsdb_test_http (login, get, post, sesskey) through a tsdb_test_site_pool instead of the site's nginx: a cookie jar
 * of its own, redirects followed within the pool.
 */
class tsdb_test_pool_http extends tsdb_test_http {
    /** @var tsdb_test_site_pool */
    protected $pool;

    /** @var string[] cookie name => value */
    protected $jar = [];

    /**
     * A client of that pool, without a session.
     *
     * @param tsdb_test_site_pool $pool
     */
    public function __construct(tsdb_test_site_pool $pool) {
        parent::__construct();
        $this->pool = $pool;
    }

    /**
     * One request through the pool, following redirects.
     *
     * @param string $path
     * @param string|null $body
     * @return string
     */
    protected function request(string $path, ?string $body): string {
        $wwwroot = rtrim(tsdb_test_site::$info->wwwroot, '/');
        $method = $body === null ? 'GET' : 'POST';
        for ($hop = 0; $hop < 10; $hop++) {
            if (strpos($path, $wwwroot) === 0) {
                $path = substr($path, strlen($wwwroot));
            }
            if (preg_match('~^https?://~', $path)) {
                throw new \RuntimeException("redirect off the site: $path");
            }
            $cookie = implode('; ', array_map(function($name, $value) {
                return "$name=$value";
            }, array_keys($this->jar), $this->jar));
            [$status, $headers, $out] = $this->pool->request($method, $path ?: '/', $cookie, $body);
            foreach ($headers['set-cookie'] ?? [] as $set) {
                [$pair] = explode(';', $set, 2);
                [$name, $value] = array_map('trim', explode('=', $pair, 2)) + [1 => ''];
                if ($value === '' || $value === 'deleted') {
                    unset($this->jar[$name]);
                } else {
                    $this->jar[$name] = $value;
                }
            }
            $this->status = $status;
            $this->url = $wwwroot . $path;
            if (!in_array($status, [301, 302, 303, 307, 308], true) || empty($headers['location'])) {
                return $out;
            }
            $path = $headers['location'][0];
            if ($status !== 307 && $status !== 308) {
                $method = 'GET';
                $body = null;
            }
        }
        throw new \RuntimeException("too many redirects from $path");
    }
}
