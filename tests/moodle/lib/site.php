<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The real Moodle site a test runs in: where it is, running PHP code and Moodle's CLI tools in new processes of the
 * site, and talking to it over HTTP as a logged-in user.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * The site of this run (site.json, written by tests/servers/moodle.sh) and new processes in it.
 */
final class tsdb_test_site {
    /** @var \stdClass site.json: version, release, coderoot, webroot, plugindir, dataroot, wwwroot, dbname, phpargs... */
    public static $info;

    /**
     * Reads site.json.
     *
     * @param string $dir the site's directory
     */
    public static function load(string $dir): void {
        self::$info = json_decode(file_get_contents("$dir/site.json"));
    }

    /**
     * Moodle 5.1 and later: code under public/.
     *
     * @return bool
     */
    public static function is_public_layout(): bool {
        return self::$info->webroot !== self::$info->coderoot;
    }

    /**
     * The site's PHP settings (-d ...), with or without the tsdb extension.
     *
     * @param bool $extension load the extension under test
     * @return string[]
     */
    public static function php_args(bool $extension = true): array {
        $args = self::$info->phpargs;
        if (!$extension) {
            $out = [];
            for ($i = 0; $i < count($args); $i += 2) {
                if (strpos($args[$i + 1], 'extension=') !== 0) {
                    array_push($out, $args[$i], $args[$i + 1]);
                }
            }
            $args = $out;
        }
        return $args;
    }

    /**
     * Runs a command and collects its output.
     *
     * @param string[] $cmd
     * @param array $env extra environment
     * @param string|null $cwd
     * @param string|null $stdin
     * @return array [exit code, stdout, stderr]
     */
    public static function run(array $cmd, array $env = [], ?string $cwd = null, ?string $stdin = null): array {
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        $proc = proc_open($cmd, $spec, $pipes, $cwd, array_merge(getenv(), $env));
        if ($stdin !== null) {
            fwrite($pipes[0], $stdin);
        }
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        return [proc_close($proc), $out, $err];
    }

    /**
     * Runs PHP code as a CLI script of the site (CLI_SCRIPT, the site's config.php), in a new process.
     *
     * @param string $code PHP code without <?php, run after config.php
     * @param array $env extra environment
     * @param array $ini more php.ini directives (name => value)
     * @param bool $extension load the tsdb extension
     * @return array [exit code, stdout, stderr]
     */
    public static function run_code(string $code, array $env = [], array $ini = [], bool $extension = true): array {
        $dir = self::$info->dir . '/scripts';
        @mkdir($dir, 0777, true);
        $script = tempnam($dir, 'step-');
        file_put_contents($script, "<?php\ndefine('CLI_SCRIPT', true);\nrequire(" . var_export(self::$info->coderoot
            . '/config.php', true) . ");\n" . $code . "\n");
        try {
            return self::run(array_merge([PHP_BINARY], self::php_args($extension), self::ini_args($ini), [$script]), $env);
        } finally {
            unlink($script);
        }
    }

    /**
     * Runs one of Moodle's CLI tools (or the plugin's), as an admin runs it from the code root.
     *
     * @param string $script path from the code root, e.g. admin/cli/scheduled_task.php
     * @param string[] $args
     * @param array $env
     * @param bool $extension load the tsdb extension
     * @return array [exit code, stdout, stderr]
     */
    public static function run_cli(string $script, array $args = [], array $env = [], bool $extension = true): array {
        return self::run(array_merge([PHP_BINARY], self::php_args($extension), [$script], $args), $env,
            self::$info->coderoot);
    }

    /**
     * The plugin's own CLI script path, from the code root (public/ on 5.1).
     *
     * @param string $name e.g. import_standard_log.php
     * @return string
     */
    public static function plugin_cli(string $name): string {
        return substr(self::$info->plugindir, strlen(self::$info->coderoot) + 1) . '/cli/' . $name;
    }

    /**
     * -d arguments.
     *
     * @param array $ini name => value
     * @return string[]
     */
    public static function ini_args(array $ini): array {
        $args = [];
        foreach ($ini as $name => $value) {
            array_push($args, '-d', "$name=$value");
        }
        return $args;
    }

    /**
     * PHP errors and Moodle debugging messages in a page or in a script's output, one line each ([] when clean).
     *
     * @param string $output
     * @return string[]
     */
    public static function php_notices(string $output): array {
        $found = [];
        $patterns = [
            '~(<b>)?(PHP )?(Warning|Notice|Deprecated|Fatal error|Parse error|Strict Standards)(</b>)?:\s+.{0,300}~',
            '~<div class="notifytiny debuggingmessage".{0,400}~s',
            '~Debug info:.{0,300}~',
            '~Coding error detected.{0,300}~',
        ];
        foreach ($patterns as $re) {
            if (preg_match_all($re, $output, $m)) {
                foreach ($m[0] as $hit) {
                    $found[] = trim(strip_tags($hit));
                }
            }
        }
        return $found;
    }
}

/**
 * A browser-like HTTP client of the site: cookies, a login with the login form's token, GET and POST.
 */
class tsdb_test_http {
    /** @var string cookie jar file */
    protected $cookies;

    /** @var int status of the last response */
    public $status = 0;

    /** @var string final URL of the last response (after redirects) */
    public $url = '';

    /**
     * A client without a session.
     */
    public function __construct() {
        $this->cookies = tempnam(sys_get_temp_dir(), 'tsdb-cookies-');
    }

    /**
     * Removes the cookie jar.
     */
    public function __destruct() {
        @unlink($this->cookies);
    }

    /**
     * Logs in through login/index.php, as a browser does.
     *
     * @param string $username
     * @param string $password
     * @return self
     */
    public function login(string $username, string $password): self {
        $page = $this->get('/login/index.php');
        if (!preg_match('~name="logintoken" value="([^"]+)"~', $page, $m)) {
            throw new \RuntimeException("no login token on the login page (HTTP {$this->status})");
        }
        $this->post('/login/index.php', ['username' => $username, 'password' => $password, 'logintoken' => $m[1]]);
        if (strpos($this->url, '/login/index.php') !== false) {
            throw new \RuntimeException("login as $username failed: still on {$this->url}");
        }
        return $this;
    }

    /**
     * Logs in as the site's administrator.
     *
     * @return self
     */
    public function login_admin(): self {
        return $this->login(tsdb_test_site::$info->adminuser, tsdb_test_site::$info->adminpass);
    }

    /**
     * GET a path of the site (or a full URL).
     *
     * @param string $path e.g. /admin/index.php
     * @return string body
     */
    public function get(string $path): string {
        return $this->request($path, null);
    }

    /**
     * POST a form.
     *
     * @param string $path
     * @param array $fields
     * @return string body
     */
    public function post(string $path, array $fields): string {
        return $this->request($path, http_build_query($fields, '', '&'));
    }

    /**
     * The sesskey of the current session, read from a page.
     *
     * @param string $page any page body of the logged-in session
     * @return string
     */
    public static function sesskey(string $page): string {
        if (!preg_match('~"sesskey":"([^"]+)"~', $page, $m) && !preg_match('~name="sesskey" value="([^"]+)"~', $page, $m)) {
            throw new \RuntimeException('no sesskey on the page');
        }
        return $m[1];
    }

    /**
     * One request, following redirects.
     *
     * @param string $path
     * @param string|null $body form body for POST
     * @return string
     */
    protected function request(string $path, ?string $body): string {
        $url = preg_match('~^https?://~', $path) ? $path : rtrim(tsdb_test_site::$info->wwwroot, '/') . $path;
        $ch = curl_init($url);
        curl_setopt_array($ch, [
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => true,
            CURLOPT_MAXREDIRS => 10,
            CURLOPT_COOKIEJAR => $this->cookies,
            CURLOPT_COOKIEFILE => $this->cookies,
            CURLOPT_TIMEOUT => 300,
            // As a browser: Moodle reads the user agent unchecked in places (a failed login, for one).
            CURLOPT_USERAGENT => 'Mozilla/5.0 (X11; Linux x86_64) logstore_tsdb tests',
        ]);
        if ($body !== null) {
            curl_setopt($ch, CURLOPT_POST, true);
            curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
        }
        $out = curl_exec($ch);
        if ($out === false) {
            $error = curl_error($ch);
            curl_close($ch);
            throw new \RuntimeException("HTTP request to $url failed: $error");
        }
        $this->status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        $this->url = (string) curl_getinfo($ch, CURLINFO_EFFECTIVE_URL);
        curl_close($ch);
        return (string) $out;
    }
}
