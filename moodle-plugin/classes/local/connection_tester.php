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
 * "Test connection": log a real event through the extension and read it back from the backend.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\event\connection_tested;

/**
 * Test connection, in three steps:
 *
 * 1. the PHP side connects to the backend as the reports do (PostgreSQL: a connection and TimescaleDB's presence;
 *    InfluxDB: SHOW RETENTION POLICIES), so a wrong password, an unreachable host or a TLS failure is told at once,
 *    without waiting for the extension's retries;
 * 2. it triggers \logstore_tsdb\event\connection_tested (a real event: named "Log store connection tested" in the
 *    Logs report, with the administrator who clicked and the request's origin and IP) carrying a random marker; every
 *    enabled store records it, this one through the extension; when this store does not take it (not enabled yet in
 *    Manage log stores, or left out by its own filters), the event's row goes to the extension directly, as the store
 *    would write it;
 * 3. it waits for the extension to write it and looks for the marker in the backend.
 *
 * Every failure is a plain-language verdict (wrong credentials, nothing answering, TLS, other) followed by what the
 * server or the extension said, with the configuration's secrets replaced; a PostgreSQL database without TimescaleDB
 * is a warning that says what that means.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class connection_tester {

    /** @var string Event name of the marker. */
    const EVENTNAME = '\\logstore_tsdb\\event\\connection_tested';

    /**
     * Runs the test.
     *
     * @param \stdClass $cfg plugin config (store::read_plugin_config())
     * @param int $timeoutms how long to wait for the write
     * @return array ['ok' => bool (written), 'readback' => bool, 'level' => success|warning|error,
     *      'kind' => ok|notimescale|auth|unreachable|tls|failed, 'message' => string, 'marker' => string]
     */
    public static function run(#[\SensitiveParameter] \stdClass $cfg, int $timeoutms = 10000): array {
        $marker = 'tsdb-test-' . bin2hex(random_bytes(8));
        $result = ['ok' => false, 'readback' => false, 'level' => 'error', 'kind' => 'failed', 'message' => '',
            'marker' => $marker];
        if (!extension::is_loaded()) {
            $result['message'] = get_string('extensionmissing', 'logstore_tsdb', PHP_VERSION);
            return $result;
        }
        if (!extension::ensure_configured($cfg)) {
            $result['message'] = get_string('configrefused', 'logstore_tsdb', extension::config_error());
            return $result;
        }
        $timescale = null;
        try {
            $timescale = self::probe($cfg);
        } catch (\Throwable $e) {
            // Told at once: the extension would only retry. Anything else (a database the extension creates, a table
            // it makes) is for the write to prove.
            if (self::classify($e->getMessage()) !== 'failed') {
                return self::failure($result, $cfg, $e->getMessage());
            }
        }
        $before = tsdb_stats();
        try {
            $event = connection_tested::create(['context' => \context_system::instance(), 'other' => ['marker' => $marker]]);
            $event->trigger();
            if ((int) tsdb_stats()['accepted'] === (int) $before['accepted'] && !self::write_directly($event, $cfg)) {
                $result['message'] = get_string('testconnection_failed', 'logstore_tsdb', 'dropped (memory cap)');
                return $result;
            }
            // Probing: right after an outage the circuit breaker would keep the marker in the spool until its next
            // probe, and the test would report the outage's last error instead of trying the backend.
            $pending = tsdb_flush($timeoutms, true);
        } catch (\Throwable $e) {
            return self::failure($result, $cfg, $e->getMessage());
        }
        $after = tsdb_stats();
        if ($pending > 0 || (int) $after['written'] <= (int) $before['written']) {
            return self::failure($result, $cfg, $after['last_error'] !== '' ? (string) $after['last_error']
                : "not written within {$timeoutms} ms ({$pending} pending)");
        }
        $result['ok'] = true;
        try {
            $found = self::read_back($cfg, $marker);
        } catch (\Throwable $e) {
            $result['level'] = 'warning';
            $result['message'] = get_string('testconnection_written', 'logstore_tsdb', self::redact($cfg, $e->getMessage()));
            return $result;
        }
        if ($found === null) {
            $result['level'] = 'warning';
            $result['message'] = get_string('testconnection_written', 'logstore_tsdb', $cfg->backend);
        } else if ($found) {
            $result['readback'] = true;
            $result['level'] = 'success';
            $result['kind'] = 'ok';
            $result['message'] = get_string('testconnection_ok', 'logstore_tsdb', $marker);
            if ($timescale !== null && $timescale !== '') {
                $result['level'] = 'warning';
                $result['kind'] = 'notimescale';
                $result['message'] .= ' ' . get_string('testconnection_notimescale_' . $timescale, 'logstore_tsdb',
                    s((string) $cfg->dbname));
            }
        } else {
            $result['ok'] = false;
            $result['message'] = get_string('testconnection_failed', 'logstore_tsdb',
                "the marker $marker was reported written but is not in the backend");
        }
        return $result;
    }

    /**
     * Connects to the backend from PHP, as the reports and privacy do.
     *
     * @param \stdClass $cfg
     * @return string|null PostgreSQL: '' with TimescaleDB in the database, 'available' when the server has it but the
     *      database does not, 'absent' when the server does not have it; null for other backends
     * @throws \Throwable when the backend cannot be reached or refuses the login
     */
    protected static function probe(#[\SensitiveParameter] \stdClass $cfg): ?string {
        if ($cfg->backend === 'postgres') {
            $db = pgdb::from_config($cfg, 'logstore_tsdb_test');
            try {
                $row = $db->query("SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb') AS installed,"
                    . " (SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb') AS available")[0];
            } finally {
                $db->close();
            }
            return (int) $row->installed ? '' : ((int) $row->available ? 'available' : 'absent');
        }
        if (strpos((string) $cfg->backend, 'influxdb') === 0) {
            (new influx_client($cfg))->query('SHOW RETENTION POLICIES');
        }
        return null;
    }

    /**
     * Hands the event to the extension as the store would write it (origin, IP, real user, pseudonym), for a test
     * run while this store does not take the event itself.
     *
     * @param connection_tested $event
     * @param \stdClass $cfg
     * @return bool false when the extension dropped it
     */
    protected static function write_directly(connection_tested $event, #[\SensitiveParameter] \stdClass $cfg): bool {
        global $PAGE;
        $entry = $event->get_data();
        $entry['origin'] = $PAGE->requestorigin;
        $entry['ip'] = (!isset($cfg->logip) || $cfg->logip) ? $PAGE->requestip : '';
        $entry['realuserid'] = \core\session\manager::is_loggedinas() ? \core\session\manager::get_realuser()->id : null;
        if (strpos((string) $cfg->backend, 'influxdb') === 0 && (!isset($cfg->pseudonymise) || $cfg->pseudonymise)) {
            foreach (['userid', 'realuserid'] as $field) {
                if (!empty($entry[$field])) {
                    $entry[$field] = pseudonym::get((int) $entry[$field]);
                }
            }
        }
        return extension::log_event($entry);
    }

    /**
     * A failed test: the plain-language verdict of what the backend or the extension said, then their words.
     *
     * @param array $result
     * @param \stdClass $cfg
     * @param string $error
     * @return array the result
     */
    protected static function failure(array $result, #[\SensitiveParameter] \stdClass $cfg, string $error): array {
        $error = self::redact($cfg, $error);
        $result['kind'] = self::classify($error);
        $where = strpos((string) $cfg->backend, 'influxdb') === 0
            ? (new influx_client($cfg))->shown_url()
            : ($cfg->backend === 'postgres' ? ($cfg->host ?: '127.0.0.1') . ':' . ((int) $cfg->port ?: 5432) : (string) $cfg->path);
        $verdict = $result['kind'] === 'failed' ? get_string('testconnection_failed', 'logstore_tsdb', $error)
            : get_string('testconnection_' . $result['kind'], 'logstore_tsdb', s($where)) . ' '
                . get_string('testconnection_said', 'logstore_tsdb', $error);
        $result['message'] = $verdict;
        return $result;
    }

    /**
     * What kind of failure a message of libpq, PDO, curl, InfluxDB or the extension describes.
     *
     * @param string $error
     * @return string auth, tls, unreachable or failed
     */
    public static function classify(string $error): string {
        if (preg_match('~password authentication failed|refused the (login|credentials)|no password supplied|'
                . 'no pg_hba\.conf entry|answered 40[13]|authorization failed|unauthori[sz]ed~i', $error)) {
            return 'auth';
        }
        if (preg_match('~certificate|\bTLS\b|\bSSL\b|sslmode|handshake~i', $error)) {
            return 'tls';
        }
        if (preg_match('~connection refused|could not translate host name|lookup address|name or service not known|'
                . 'could not resolve|timed? ?out|timeout expired|no route to host|network is unreachable|did not answer|'
                . 'cannot connect|error connecting~i', $error)) {
            return 'unreachable';
        }
        return 'failed';
    }

    /**
     * Replaces the configuration's secrets (password, token) found in a text.
     *
     * @param \stdClass $cfg
     * @param string $text
     * @return string
     */
    protected static function redact(#[\SensitiveParameter] \stdClass $cfg, string $text): string {
        foreach ([(string) ($cfg->password ?? ''), (string) ($cfg->token ?? '')] as $secret) {
            if (strlen($secret) >= 3) {
                $text = str_replace([$secret, rawurlencode($secret)], '********', $text);
            }
        }
        return $text;
    }

    /**
     * Looks for the marker in the backend.
     *
     * @param \stdClass $cfg
     * @param string $marker
     * @return bool|null null when this backend cannot be read from PHP
     */
    public static function read_back(#[\SensitiveParameter] \stdClass $cfg, string $marker): ?bool {
        switch ($cfg->backend) {
            case 'file':
                clearstatcache();
                if (!is_readable($cfg->path)) {
                    return false;
                }
                // The marker is near the end: read the last 1 MiB only.
                $size = filesize($cfg->path);
                $fh = fopen($cfg->path, 'r');
                fseek($fh, max(0, $size - 1048576));
                $tail = stream_get_contents($fh);
                fclose($fh);
                return strpos($tail, $marker) !== false;
            case 'postgres':
                $db = pgdb::from_config($cfg);
                $rows = $db->query('SELECT count(*) AS n FROM ' . $db->table() . " WHERE eventname = ? AND other->>'marker' = ?",
                    [self::EVENTNAME, $marker]);
                $db->close();
                return (int) $rows[0]->n > 0;
            case 'influxdb1':
            case 'influxdb2':
            case 'influxdb3':
                $client = new influx_client($cfg);
                $rows = $client->query('SELECT "other" FROM ' . $client->measurement() . ' WHERE "eventname" = '
                    . influx_client::quote_string(self::EVENTNAME) . ' AND time > now() - 1h');
                foreach ($rows as $row) {
                    if (strpos((string) ($row['other'] ?? ''), $marker) !== false) {
                        return true;
                    }
                }
                return false;
        }
        return null;
    }
}
