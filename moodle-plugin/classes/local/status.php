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
 * Facts shown on the status page.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Gathers what the status page shows (kept out of status.php so that it can be tested).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class status {

    /**
     * Size and age of the spool (batches kept through an outage, and durable mode's journals).
     *
     * @param \stdClass $cfg plugin config
     * @return array|null ['files' => int, 'bytes' => int, 'oldest' => int unix time] or null when there is none
     */
    public static function spool_info(#[\SensitiveParameter] \stdClass $cfg): ?array {
        $dir = settings_definition::extension_config($cfg)['spool_dir'];
        if ($dir === '' || !is_dir($dir)) {
            return null;
        }
        $files = 0;
        $bytes = 0;
        $oldest = 0;
        $it = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator($dir, \FilesystemIterator::SKIP_DOTS));
        foreach ($it as $file) {
            if (!$file->isFile()) {
                continue;
            }
            $files++;
            $bytes += $file->getSize();
            $oldest = $oldest ? min($oldest, $file->getMTime()) : $file->getMTime();
        }
        return ['files' => $files, 'bytes' => $bytes, 'oldest' => $oldest];
    }

    /**
     * Events written, failed and dropped in the last hour, from the per-minute counters every process reports.
     *
     * @param int|null $now
     * @return int[] written, failed, dropped
     */
    public static function last_hour(?int $now = null): array {
        $series = metrics::series(60, $now);
        return ['written' => array_sum($series['written']), 'failed' => array_sum($series['failed']),
            'dropped' => array_sum($series['dropped'])];
    }

    /**
     * TimescaleDB's policy jobs of the log table (compression, retention, the refreshes of its continuous aggregates)
     * and their last result, as TimescaleDB's scheduler reports them.
     *
     * @param \stdClass $cfg plugin config
     * @return array|null [job => \stdClass{job_id, proc_name, target, last_run_status, last_success, next_start,
     *      total_failures}] or ['error' => message]; null when the backend is not a TimescaleDB
     */
    public static function timescale_jobs(#[\SensitiveParameter] \stdClass $cfg): ?array {
        if ($cfg->backend !== 'postgres') {
            return null;
        }
        try {
            $db = pgdb::from_config($cfg, 'logstore_tsdb_status');
        } catch (\moodle_exception $e) {
            return ['error' => $e->getMessage()];
        }
        try {
            if ($db->timescaledb_version() === null) {
                return null;
            }
            $table = (string) ($cfg->table ?: 'logstore_tsdb_log');
            $schema = (string) ($cfg->schema ?: 'public');
            // The policies of a continuous aggregate name the aggregate's view as their hypertable.
            return $db->query("SELECT j.job_id, j.proc_name, j.hypertable_name AS target, s.last_run_status,
                    extract(epoch FROM s.last_successful_finish)::bigint AS last_success,
                    extract(epoch FROM s.next_start)::bigint AS next_start, s.total_failures
                FROM timescaledb_information.jobs j
                LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
                WHERE j.hypertable_schema = ? AND (j.hypertable_name = ? OR j.hypertable_name IN (
                    SELECT c.view_name FROM timescaledb_information.continuous_aggregates c
                    WHERE c.view_schema = ? AND c.hypertable_schema = ? AND c.hypertable_name = ?))
                ORDER BY j.job_id", [$schema, $table, $schema, $schema, $table]);
        } catch (\moodle_exception $e) {
            return ['error' => $e->getMessage()];
        } finally {
            $db->close();
        }
    }

    /**
     * Is logstore_tsdb enabled in Manage log stores?
     *
     * @return bool
     */
    public static function is_enabled(): bool {
        $enabled = (string) get_config('tool_log', 'enabled_stores');
        return in_array('logstore_tsdb', array_map('trim', explode(',', $enabled)), true);
    }
}
