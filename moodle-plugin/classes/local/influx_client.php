<?php
// This file is part of Moodle - http://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <http://www.gnu.org/licenses/>.

/**
 * Minimal InfluxDB HTTP client for queries and deletes (writes are done by the extension).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Speaks InfluxQL through the v1 `/query` endpoint, which InfluxDB 1.x serves natively, 2.x serves for every
 * bucket (virtual DBRP mapping, database = bucket name) and 3.x Core serves for every database. Deletes use
 * InfluxQL `DELETE` on 1.x and `/api/v2/delete` on 2.x; InfluxDB 3 Core cannot delete single points.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class influx_client {

    /** @var \stdClass plugin config */
    protected $cfg;

    /** @var int Longest InfluxQL sent in a URL (GET); longer statements go in a form body (POST). */
    const MAX_GET_QUERY = 6000;

    /** @var \CurlHandle|null The handle of this client's requests (keeps its connection alive between them). */
    protected $curl = null;

    /**
     * Constructor.
     *
     * @param \stdClass $cfg plugin config (store::read_plugin_config())
     */
    public function __construct(#[\SensitiveParameter] \stdClass $cfg) {
        $this->cfg = $cfg;
    }

    /**
     * The database name to query: database (1.x, 3.x) or bucket (2.x).
     *
     * @return string
     */
    public function database(): string {
        if ($this->cfg->backend === 'influxdb2') {
            return (string) $this->cfg->bucket;
        }
        return (string) ($this->cfg->database !== '' ? $this->cfg->database : $this->cfg->bucket);
    }

    /**
     * The measurement, quoted for InfluxQL.
     *
     * @return string
     */
    public function measurement(): string {
        return self::quote_identifier((string) ($this->cfg->measurement ?: 'moodle_events'));
    }

    /**
     * Quotes an InfluxQL identifier.
     *
     * @param string $name
     * @return string
     */
    public static function quote_identifier(string $name): string {
        return '"' . str_replace(['\\', '"'], ['\\\\', '\\"'], $name) . '"';
    }

    /**
     * Quotes an InfluxQL string literal.
     *
     * @param string $value
     * @return string
     */
    public static function quote_string(string $value): string {
        return "'" . str_replace(['\\', "'"], ['\\\\', "\\'"], $value) . "'";
    }

    /**
     * The tags configured for the extension.
     *
     * @return string[]
     */
    public function tags(): array {
        return array_filter(array_map('trim', explode(',', (string) $this->cfg->tags)));
    }

    /**
     * Runs one InfluxQL statement and returns the rows of its first series merged (column => value).
     *
     * @param string $influxql
     * @param bool $write true for statements that modify data (sent as POST)
     * @return array[] rows
     * @throws \moodle_exception influxerror, naming the server's error and the setting to check
     */
    public function query(string $influxql, bool $write = false): array {
        return array_merge([], ...$this->statements([$influxql], $write));
    }

    /**
     * Runs several InfluxQL statements in one request (one round trip) and returns the rows of each.
     *
     * @param string[] $statements
     * @param bool $write true for statements that modify data (sent as POST)
     * @param int|null $budgetms give up after this long and return null (InfluxDB stops a query whose client is gone)
     * @return array[][]|null per statement (in order): its rows, the rows of every series merged (column => value);
     *     null when the budget ran out
     * @throws \moodle_exception influxerror, naming the server's error and the setting to check
     */
    public function statements(array $statements, bool $write = false, ?int $budgetms = null): ?array {
        $params = ['db' => $this->database(), 'q' => implode('; ', $statements), 'epoch' => 'ns'];
        if ($this->cfg->backend === 'influxdb1' && (string) $this->cfg->retention_policy !== '') {
            $params['rp'] = (string) $this->cfg->retention_policy;
        }
        // Statements that change data are POSTed; so are long ones (a report page reads its series in one request).
        $post = $write || strlen($params['q']) > self::MAX_GET_QUERY;
        $body = $this->request('/query', $post ? [] : $params, $post ? 'POST' : 'GET', $post ? $params : null, $budgetms);
        if ($body === null) {
            return null;
        }
        $json = json_decode($body, true);
        if (!is_array($json)) {
            throw $this->failure('influx_notjson', self::server_error($body), ['url']);
        }
        $out = array_fill(0, count($statements), []);
        foreach ($json['results'] ?? [] as $i => $result) {
            if (isset($result['error'])) {
                throw $this->failure('influx_queryerror', (string) $result['error'], $this->checks_for_query_error(
                    (string) $result['error']));
            }
            $index = (int) ($result['statement_id'] ?? $i);
            foreach ($result['series'] ?? [] as $series) {
                foreach ($series['values'] ?? [] as $values) {
                    $row = array_combine($series['columns'], $values);
                    foreach ($series['tags'] ?? [] as $k => $v) {
                        $row[$k] = $v;
                    }
                    $out[$index][] = $row;
                }
            }
        }
        return $out;
    }

    /**
     * Deletes every point of the measurement whose tags equal the given values (joined by AND).
     *
     * @param array $equalities tag => value
     * @throws \moodle_exception on InfluxDB 3 (no point deletes) or when a name is not configured as a tag
     */
    public function delete_where_tags(array $equalities): void {
        foreach (array_keys($equalities) as $tag) {
            if (!in_array($tag, $this->tags(), true)) {
                throw new \moodle_exception('influxdeletenottag', 'logstore_tsdb', '', $tag);
            }
        }
        switch ($this->cfg->backend) {
            case 'influxdb1':
                $where = [];
                foreach ($equalities as $tag => $value) {
                    $where[] = self::quote_identifier($tag) . ' = ' . self::quote_string((string) $value);
                }
                $this->query('DELETE FROM ' . $this->measurement() . ' WHERE ' . implode(' AND ', $where), true);
                return;
            case 'influxdb2':
                $predicate = '_measurement="' . addcslashes((string) ($this->cfg->measurement ?: 'moodle_events'), '"\\') . '"';
                foreach ($equalities as $tag => $value) {
                    $predicate .= ' AND ' . $tag . '="' . addcslashes((string) $value, '"\\') . '"';
                }
                $this->request('/api/v2/delete', ['org' => (string) $this->cfg->org, 'bucket' => (string) $this->cfg->bucket],
                    'POST', json_encode(['start' => '1970-01-01T00:00:00Z', 'stop' => '2262-04-11T00:00:00Z',
                        'predicate' => $predicate]));
                return;
            default:
                throw new \moodle_exception('influxdeleteunsupported', 'logstore_tsdb', '', $this->cfg->backend);
        }
    }

    /**
     * Encodes request parameters: the only place the plugin builds a query string or a form body.
     *
     * `http_build_query()` without a separator joins with `arg_separator.output`, which Moodle's lib/setup.php sets to
     * `&amp;` for every page and CLI script: InfluxDB would then see one parameter `amp;q` and no `q`. The separator is
     * given here, and RFC 3986 encoding (`%20`, not `+`) is the same whatever PHP is configured with.
     *
     * @param array $params name => value
     * @return string
     */
    public static function encode_params(#[\SensitiveParameter] array $params): string {
        return http_build_query($params, '', '&', PHP_QUERY_RFC3986);
    }

    /**
     * The proxy the plugin and the extension reach InfluxDB through: Moodle's web proxy (Site administration > Server >
     * HTTP: proxyhost, proxyport, proxytype, proxyuser, proxypassword) unless the InfluxDB host is in proxybypass, as
     * Moodle's own curl class decides. The process environment (http_proxy, HTTPS_PROXY, NO_PROXY...) is never used:
     * cron (which inherits the shell's environment) and PHP-FPM (which clears it) must take the same way.
     *
     * @param string $url the InfluxDB URL
     * @return string proxy URL for curl and the extension's `proxy` key ('' = connect directly)
     */
    public static function moodle_proxy(string $url): string {
        global $CFG;
        if (empty($CFG->proxyhost) || trim($url) === '') {
            return '';
        }
        if (function_exists('is_proxybypass') && is_proxybypass($url)) {
            return '';
        }
        $scheme = ($CFG->proxytype ?? '') === 'SOCKS5' ? 'socks5://' : 'http://';
        $auth = '';
        if (!empty($CFG->proxyuser) && !empty($CFG->proxypassword)) {
            $auth = rawurlencode((string) $CFG->proxyuser) . ':' . rawurlencode((string) $CFG->proxypassword) . '@';
        }
        $host = (string) $CFG->proxyhost;
        if (strpos($host, ':') !== false && $host[0] !== '[') {
            $host = '[' . $host . ']'; // An IPv6 address.
        }
        return $scheme . $auth . $host . (!empty($CFG->proxyport) ? ':' . (int) $CFG->proxyport : '');
    }

    /**
     * The proxy of this configuration: the one the extension has (Configuration source = php.ini, or a PHP-FPM pool's
     * php_admin_value[tsdb.proxy]), else Moodle's web proxy for the InfluxDB URL.
     *
     * @return string
     */
    public function proxy(): string {
        if (isset($this->cfg->proxy)) {
            return (string) $this->cfg->proxy;
        }
        if (extension_loaded('tsdb')) {
            $entry = (ini_get_all('tsdb', true) ?: [])['tsdb.proxy'] ?? null;
            $fixed = $entry !== null && ((int) $entry['access'] & INI_USER) === 0;
            if ($entry !== null && ($fixed || ($this->cfg->configsource ?? 'plugin') === 'phpini')) {
                return (string) $entry['local_value'];
            }
        }
        return self::moodle_proxy((string) $this->cfg->url);
    }

    /**
     * The InfluxDB URL as shown in messages: without user info, query or fragment.
     *
     * @return string
     */
    public function shown_url(): string {
        $url = rtrim((string) $this->cfg->url, '/');
        $url = preg_replace('~^([a-z][a-z0-9+.-]*://)[^/@]*@~i', '$1', $url);
        return preg_replace('~[?#].*$~s', '', $url);
    }

    /**
     * One HTTP request.
     *
     * @param string $path
     * @param array $params query string
     * @param string $method GET or POST
     * @param array|string|null $body POST body: form fields (array) or JSON (string)
     * @param int|null $budgetms the time allowed, instead of the timeout; null is returned when it runs out after the
     *     connection was made
     * @return string|null response body
     * @throws \moodle_exception influxerror when InfluxDB does not answer or answers with an error status
     */
    protected function request(string $path, #[\SensitiveParameter] array $params, string $method,
            #[\SensitiveParameter] $body = null, ?int $budgetms = null): ?string {
        $url = rtrim((string) $this->cfg->url, '/') . $path . ($params ? '?' . self::encode_params($params) : '');
        $headers = ['Accept: application/json'];
        if ($this->cfg->backend !== 'influxdb1' && (string) $this->cfg->token !== '') {
            $headers[] = 'Authorization: Token ' . $this->cfg->token;
        }
        // One handle per client, reset for each request: its connection stays open for the next request (a report page
        // asks several queries), while no option of a previous request carries over.
        $ch = $this->curl = $this->curl ?? curl_init();
        curl_reset($ch);
        if ($method === 'POST') {
            if (is_array($body)) {
                curl_setopt($ch, CURLOPT_POSTFIELDS, self::encode_params($body));
                $headers[] = 'Content-Type: application/x-www-form-urlencoded';
            } else {
                curl_setopt($ch, CURLOPT_POSTFIELDS, (string) $body);
                $headers[] = 'Content-Type: application/json';
            }
            curl_setopt($ch, CURLOPT_POST, true);
        }
        if ($this->cfg->backend === 'influxdb1' && (string) $this->cfg->username !== '') {
            // HTTP Basic, as the extension authenticates: a password never travels in a URL.
            curl_setopt($ch, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_setopt($ch, CURLOPT_USERPWD, $this->cfg->username . ':' . $this->cfg->password);
        }
        $statusline = '';
        curl_setopt_array($ch, [
            CURLOPT_URL => $url,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_CONNECTTIMEOUT_MS => (int) ($this->cfg->connect_timeout_ms ?: 3000),
            CURLOPT_TIMEOUT_MS => $budgetms ?? max(30000, (int) ($this->cfg->timeout_ms ?: 10000)),
            CURLOPT_SSL_VERIFYPEER => (bool) $this->cfg->tls_verify,
            CURLOPT_SSL_VERIFYHOST => $this->cfg->tls_verify ? 2 : 0,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            // An empty proxy also tells libcurl to ignore http_proxy / HTTPS_PROXY / ALL_PROXY in the environment.
            CURLOPT_PROXY => $this->proxy(),
            CURLOPT_HEADERFUNCTION => function($ch, string $line) use (&$statusline): int {
                if (preg_match('~^HTTP/\S+\s+\d{3}~', $line)) {
                    $statusline = trim($line); // The last one: a proxy's CONNECT answer comes first.
                }
                return strlen($line);
            },
        ]);
        if (!empty($this->cfg->ca_file)) {
            curl_setopt($ch, CURLOPT_CAINFO, (string) $this->cfg->ca_file);
        }
        $response = curl_exec($ch);
        $status = (int) curl_getinfo($ch, CURLINFO_HTTP_CODE);
        $connected = (int) curl_getinfo($ch, CURLINFO_CONNECT_TIME_T) > 0;
        $errno = curl_errno($ch);
        $error = curl_error($ch);
        if ($response === false && $errno === 28 && $budgetms !== null && $connected) {
            return null; // The budget ran out before an answer.
        }
        if ($response === false) {
            $checks = ['url', 'connect_timeout_ms', 'proxy'];
            if (in_array($errno, [35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91], true)) {
                $checks = ['url', 'tls_verify', 'ca_file']; // TLS: the certificate or the CA file.
            } else if ($errno === 28) {
                $checks = ['url', 'timeout_ms', 'connect_timeout_ms', 'proxy'];
            }
            throw $this->failure('influx_noanswer', $error !== '' ? $error : "curl error $errno", $checks);
        }
        if ($status >= 300) {
            $reason = preg_match('~^HTTP/\S+\s+(\d{3}(?:\s.*)?)$~', $statusline, $m) ? trim($m[1]) : (string) $status;
            throw $this->failure('influx_answered', self::server_error((string) $response), $this->checks_for_status($status),
                $reason);
        }
        return (string) $response;
    }

    /**
     * The settings to check after an HTTP error status.
     *
     * @param int $status
     * @return string[] setting names (or 'proxy' for Moodle's web proxy)
     */
    protected function checks_for_status(int $status): array {
        $v1 = $this->cfg->backend === 'influxdb1';
        $v2 = $this->cfg->backend === 'influxdb2';
        if ($status === 401 || $status === 403) {
            return $v1 ? ['username', 'password'] : ['token'];
        }
        if ($status === 407) {
            return ['proxy'];
        }
        if ($status === 404) {
            return $v2 ? ['url', 'org', 'bucket'] : ['url', 'database'];
        }
        if ($status >= 500) {
            return ['url'];
        }
        return $v2 ? ['bucket', 'org', 'measurement'] : ($v1 ? ['database', 'retention_policy', 'measurement']
            : ['database', 'measurement']);
    }

    /**
     * The settings to check after an error InfluxDB reported for a statement (HTTP 200, `results[].error`).
     *
     * @param string $error
     * @return string[]
     */
    protected function checks_for_query_error(string $error): array {
        $v1 = $this->cfg->backend === 'influxdb1';
        if (stripos($error, 'auth') !== false || stripos($error, 'privilege') !== false) {
            return $v1 ? ['username', 'password'] : ['token'];
        }
        if (stripos($error, 'retention policy') !== false) {
            return ['retention_policy'];
        }
        if (stripos($error, 'database') !== false) {
            return [$this->cfg->backend === 'influxdb2' ? 'bucket' : 'database'];
        }
        return [$this->cfg->backend === 'influxdb2' ? 'bucket' : 'database', 'measurement', 'tags'];
    }

    /**
     * The error a server's reply body states: `error` (1.x, 3.x) or `message` (2.x) of a JSON body, else the text.
     *
     * @param string $body
     * @return string
     */
    public static function server_error(string $body): string {
        $json = json_decode($body, true);
        if (is_array($json)) {
            foreach (['error', 'message'] as $k) {
                if (isset($json[$k]) && is_scalar($json[$k]) && (string) $json[$k] !== '') {
                    return (string) $json[$k];
                }
            }
        }
        $text = trim(preg_replace('~\s+~', ' ', strip_tags($body)));
        return $text === '' ? '(empty reply)' : $text;
    }

    /**
     * The exception of a failed request: the server's own words, the URL, and the settings to check; never a secret.
     *
     * @param string $identifier lang string: influx_answered, influx_noanswer, influx_queryerror, influx_notjson
     * @param string $error what the server (or curl) said
     * @param string[] $checks setting names, or 'proxy' for Moodle's web proxy
     * @param string $status the status line's code and reason, for influx_answered
     * @return \moodle_exception
     */
    protected function failure(string $identifier, string $error, array $checks, string $status = ''): \moodle_exception {
        $names = [];
        foreach ($checks as $name) {
            if ($name === 'proxy') {
                $names[] = get_string('influx_check_proxy', 'logstore_tsdb');
            } else {
                $names[] = get_string('influx_check_setting', 'logstore_tsdb', (object) [
                    'name' => get_string('setting_' . $name, 'logstore_tsdb'), 'setting' => 'logstore_tsdb | ' . $name]);
            }
        }
        $error = \core_text::substr(preg_replace('~[\x00-\x1f\x7f]+~', ' ', $error), 0, 500);
        $message = get_string($identifier, 'logstore_tsdb', (object) ['url' => $this->shown_url(), 'status' => $status,
            'error' => $error, 'check' => implode(', ', $names)]);
        return new \moodle_exception('influxerror', 'logstore_tsdb', '', $this->redact($message));
    }

    /**
     * Replaces every secret of this configuration (password, token, the proxy's password) found in a text.
     *
     * @param string $text
     * @return string
     */
    protected function redact(string $text): string {
        global $CFG;
        $secrets = [(string) ($this->cfg->password ?? ''), (string) ($this->cfg->token ?? ''),
            (string) ($CFG->proxypassword ?? '')];
        foreach ($secrets as $secret) {
            if (strlen($secret) >= 3) {
                $text = str_replace([$secret, rawurlencode($secret)], '********', $text);
            }
        }
        return $text;
    }
}
