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

    /** @var int Seconds an events table made again is reported on the status page and in System status. */
    const RECREATED_WITHIN = 86400;

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
     *      total_failures, last_error (job_errors' message of a failed last run)}] or ['error' => message]; null when
     *      the backend is not a TimescaleDB
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
            // The policies of a continuous aggregate name the aggregate's view as their hypertable. A job that never
            // succeeded has -infinity as its last success (which no bigint holds).
            return $db->query("SELECT j.job_id, j.proc_name, j.hypertable_name AS target, s.last_run_status,
                    CASE WHEN isfinite(s.last_successful_finish)
                        THEN extract(epoch FROM s.last_successful_finish)::bigint END AS last_success,
                    CASE WHEN isfinite(s.next_start) THEN extract(epoch FROM s.next_start)::bigint END AS next_start,
                    s.total_failures,
                    CASE WHEN s.last_run_status = 'Failed' THEN (SELECT e.err_message
                        FROM timescaledb_information.job_errors e WHERE e.job_id = j.job_id
                        ORDER BY e.finish_time DESC NULLS LAST LIMIT 1) END AS last_error
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
     * The newest report of the sink making the store's events table again (someone dropped it, or a restore lacked
     * it) in the last $within seconds, from this process and from every process's report (metrics::record()). Only a
     * report naming what the store writes to now counts (PostgreSQL: "schema"."table"; InfluxDB: the database or
     * bucket), not one of a table the store has left.
     *
     * @param int $within seconds back
     * @param int|null $now
     * @return array|null ['at' => unix time, 'message' => the extension's words] or null when none
     */
    public static function schema_recreated(int $within = self::RECREATED_WITHIN, ?int $now = null): ?array {
        global $DB;
        $now = $now ?? time();
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        if ($cfg->backend === 'postgres') {
            $table = '"' . (($cfg->schema ?? '') ?: 'public') . '"."' . (($cfg->table ?? '') ?: 'logstore_tsdb_log') . '"';
        } else if (strpos((string) $cfg->backend, 'influxdb') === 0) {
            // Quoted as the extension names it: database "moodle" is not database "moodle_old".
            $name = (string) (($cfg->backend === 'influxdb2' ? $cfg->bucket : $cfg->database) ?? '');
            $table = $name === '' ? '' : '"' . $name . '"';
        } else {
            return null;
        }
        $stats = extension::stats();
        $reports = [['at' => metrics::seconds($stats['schema_recreated_at'] ?? 0),
            'message' => (string) ($stats['schema_recreated_message'] ?? '')]];
        foreach ($DB->get_records_select('logstore_tsdb_workers', 'schemarecreatedat >= ?', [$now - $within],
                'schemarecreatedat DESC', 'id, schemarecreatedat, schemarecreatedmsg') as $row) {
            $reports[] = ['at' => (int) $row->schemarecreatedat, 'message' => (string) $row->schemarecreatedmsg];
        }
        $found = null;
        foreach ($reports as $report) {
            if ($report['at'] >= $now - $within && $report['at'] > ($found['at'] ?? 0)
                    && $table !== '' && strpos($report['message'], $table) !== false) {
                $found = $report;
            }
        }
        return $found;
    }

    /**
     * What the language strings about a table made again take.
     *
     * @param array $recreated schema_recreated()
     * @return \stdClass date, ago, message
     */
    public static function recreated_words(array $recreated): \stdClass {
        return (object) ['date' => userdate($recreated['at']), 'ago' => self::age($recreated['at']),
            'message' => $recreated['message']];
    }

    /**
     * How long ago a time was, for "... ago" and "the oldest ... old": at least 1 sec, since Moodle's format_time()
     * says "now" for 0, which makes "now ago".
     *
     * @param int $at unix time
     * @return string
     */
    public static function age(int $at): string {
        return format_time(max(1, time() - $at));
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
