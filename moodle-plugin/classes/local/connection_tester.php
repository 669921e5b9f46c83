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
 * "Test connection": write a marker event through the extension and read it back from the backend.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Writes one marker event (eventname \logstore_tsdb\event\connection_tested, userid 0, other {"marker": random})
 * with the site's configuration, waits for the extension to write it, then looks for it in the backend.
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
     * @return array ['ok' => bool, 'readback' => bool, 'message' => string, 'marker' => string]
     */
    public static function run(#[\SensitiveParameter] \stdClass $cfg, int $timeoutms = 10000): array {
        $marker = 'tsdb-test-' . bin2hex(random_bytes(8));
        $result = ['ok' => false, 'readback' => false, 'message' => '', 'marker' => $marker];
        if (!extension::is_loaded()) {
            $result['message'] = get_string('extensionmissing', 'logstore_tsdb', PHP_VERSION);
            return $result;
        }
        if (!extension::ensure_configured($cfg)) {
            $result['message'] = get_string('configrefused', 'logstore_tsdb', extension::config_error());
            return $result;
        }
        $before = tsdb_stats();
        $system = \context_system::instance();
        $event = [
            'eventname' => self::EVENTNAME, 'component' => 'logstore_tsdb', 'action' => 'tested', 'target' => 'connection',
            'objecttable' => null, 'objectid' => null, 'crud' => 'r', 'edulevel' => 0, 'contextid' => $system->id,
            'contextlevel' => CONTEXT_SYSTEM, 'contextinstanceid' => 0, 'userid' => 0, 'courseid' => 0,
            'relateduserid' => null, 'anonymous' => 0, 'other' => ['marker' => $marker], 'timecreated' => time(),
            'origin' => 'cli', 'ip' => '', 'realuserid' => null,
        ];
        try {
            if (!tsdb_log_event($event)) {
                $result['message'] = 'dropped (memory cap)';
                return $result;
            }
            $pending = tsdb_flush($timeoutms);
        } catch (\Throwable $e) {
            $result['message'] = $e->getMessage();
            return $result;
        }
        $after = tsdb_stats();
        if ($pending > 0 || (int) $after['written'] <= (int) $before['written']) {
            $result['message'] = $after['last_error'] !== '' ? (string) $after['last_error']
                : "not written within {$timeoutms} ms ({$pending} pending)";
            return $result;
        }
        $result['ok'] = true;
        try {
            $found = self::read_back($cfg, $marker);
        } catch (\Throwable $e) {
            $result['message'] = get_string('testconnection_written', 'logstore_tsdb', $e->getMessage());
            return $result;
        }
        if ($found === null) {
            $result['message'] = get_string('testconnection_written', 'logstore_tsdb', $cfg->backend);
        } else if ($found) {
            $result['readback'] = true;
            $result['message'] = get_string('testconnection_ok', 'logstore_tsdb', $marker);
        } else {
            $result['ok'] = false;
            $result['message'] = get_string('testconnection_failed', 'logstore_tsdb',
                "the marker $marker was reported written but is not in the backend");
        }
        return $result;
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
