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
 * Scheduled task: maintain the summary tables on plain PostgreSQL.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\task;

defined('MOODLE_INTERNAL') || die();

/**
 * Refreshes the summaries `<table>_daily`, `_daily_courses`, `_daily_users`, `_daily_active_users`, `_hourly`,
 * `_activity`, `_daily_events`, `_hourly_site` and `_weekly_courses` (see \logstore_tsdb\local\summary) on plain
 * PostgreSQL; TimescaleDB refreshes its continuous aggregates itself, InfluxDB downsamples with continuous queries / tasks.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class summarise extends \core\task\scheduled_task {

    /**
     * Name of the task.
     *
     * @return string
     */
    public function get_name() {
        return get_string('task_summarise', 'logstore_tsdb');
    }

    /**
     * Refreshes the summary.
     *
     * @param int|null $now
     * @return array|null what was recomputed, null when not applicable
     */
    public function execute(?int $now = null) {
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        if ($cfg->backend !== 'postgres') {
            mtrace('logstore_tsdb: summary tables are for the postgres backend (backend ' . $cfg->backend . ').');
            return null;
        }
        $db = \logstore_tsdb\local\pgdb::from_config($cfg, 'logstore_tsdb_summary');
        try {
            $summary = new \logstore_tsdb\local\summary($db, $cfg);
            $layout = $summary->layout();
            if ($layout === null) {
                mtrace('logstore_tsdb: the log table does not exist yet.');
                return null;
            }
            if ($layout === 'timescaledb') {
                mtrace('logstore_tsdb: TimescaleDB refreshes its continuous aggregates with its own policies.');
                return null;
            }
            $done = $summary->refresh($now);
            mtrace('logstore_tsdb: summaries: ' . $done['days'] . ' days materialised between '
                . gmdate('Y-m-d', $done['from']) . ' and ' . gmdate('Y-m-d', $done['to']) . ' (UTC).');
            return $done;
        } finally {
            $db->close();
        }
    }
}
