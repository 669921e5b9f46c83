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
     */
    public function query(string $influxql, bool $write = false): array {
        $params = ['db' => $this->database(), 'q' => $influxql, 'epoch' => 'ns'];
        if ($this->cfg->backend === 'influxdb1' && (string) $this->cfg->retention_policy !== '') {
            $params['rp'] = (string) $this->cfg->retention_policy;
        }
        if ($this->cfg->backend === 'influxdb1' && (string) $this->cfg->username !== '') {
            $params['u'] = (string) $this->cfg->username;
            $params['p'] = (string) $this->cfg->password;
        }
        $body = $this->request('/query', $params, $write ? 'POST' : 'GET');
        $json = json_decode($body, true);
        if (!is_array($json)) {
            throw new \moodle_exception('influxerror', 'logstore_tsdb', '', substr($body, 0, 500));
        }
        $rows = [];
        foreach ($json['results'] ?? [] as $result) {
            if (isset($result['error'])) {
                throw new \moodle_exception('influxerror', 'logstore_tsdb', '', $result['error']);
            }
            foreach ($result['series'] ?? [] as $series) {
                foreach ($series['values'] ?? [] as $values) {
                    $row = array_combine($series['columns'], $values);
                    foreach ($series['tags'] ?? [] as $k => $v) {
                        $row[$k] = $v;
                    }
                    $rows[] = $row;
                }
            }
        }
        return $rows;
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
     * One HTTP request.
     *
     * @param string $path
     * @param array $params query string
     * @param string $method
     * @param string|null $body JSON body
     * @return string response body
     */
    protected function request(string $path, #[\SensitiveParameter] array $params, string $method, ?string $body = null): string {
        $url = rtrim((string) $this->cfg->url, '/') . $path;
        $headers = ['Accept: application/json'];
        if ($this->cfg->backend !== 'influxdb1' && (string) $this->cfg->token !== '') {
            $headers[] = 'Authorization: Token ' . $this->cfg->token;
        }
        $ch = curl_init();
        if ($method === 'POST') {
            if ($body === null) {
                curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query($params));
                $headers[] = 'Content-Type: application/x-www-form-urlencoded';
            } else {
                $url .= '?' . http_build_query($params);
                curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
                $headers[] = 'Content-Type: application/json';
            }
            curl_setopt($ch, CURLOPT_POST, true);
        } else {
            $url .= '?' . http_build_query($params);
        }
        curl_setopt_array($ch, [
            CURLOPT_URL => $url,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_CONNECTTIMEOUT_MS => (int) ($this->cfg->connect_timeout_ms ?: 3000),
            CURLOPT_TIMEOUT_MS => max(30000, (int) ($this->cfg->timeout_ms ?: 10000)),
            CURLOPT_SSL_VERIFYPEER => (bool) $this->cfg->tls_verify,
            CURLOPT_SSL_VERIFYHOST => $this->cfg->tls_verify ? 2 : 0,
        ]);
        if (!empty($this->cfg->ca_file)) {
            curl_setopt($ch, CURLOPT_CAINFO, (string) $this->cfg->ca_file);
        }
        $response = curl_exec($ch);
        $status = (int) curl_getinfo($ch, CURLINFO_HTTP_CODE);
        $error = curl_error($ch);
        curl_close($ch);
        if ($response === false) {
            throw new \moodle_exception('influxerror', 'logstore_tsdb', '', $error);
        }
        if ($status >= 300) {
            throw new \moodle_exception('influxerror', 'logstore_tsdb', '', 'HTTP ' . $status . ': ' . substr($response, 0, 500));
        }
        return (string) $response;
    }
}
