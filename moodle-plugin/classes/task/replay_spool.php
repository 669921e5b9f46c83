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
 * Scheduled task replay_spool.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\task;

defined('MOODLE_INTERNAL') || die();

/**
 * Replays the spool through tsdb_replay_spool(), bounded in time: batches kept on disk while the backend was
 * unreachable (any write mode) and journals of PHP processes that died in durable mode.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class replay_spool extends \core\task\scheduled_task {

    /**
     * Name of the task.
     *
     * @return string
     */
    public function get_name() {
        return get_string('task_replay_spool', 'logstore_tsdb');
    }

    /** @var int Longest time one run may spend replaying (ms): well under the one-minute schedule. */
    const MAX_MS = 45000;

    /**
     * Replays the spool when the extension can.
     */
    public function execute() {
        if (!\logstore_tsdb\local\extension::is_loaded() || !function_exists('tsdb_replay_spool')) {
            mtrace('logstore_tsdb: the loaded tsdb extension has no spool to replay (tsdb_replay_spool() is missing).');
            return;
        }
        if (!\logstore_tsdb\local\extension::ensure_configured(\logstore_tsdb\log\store::read_plugin_config())) {
            mtrace('logstore_tsdb: configuration refused: ' . \logstore_tsdb\local\extension::config_error());
            return;
        }
        try {
            $result = tsdb_replay_spool(self::MAX_MS);
        } catch (\ValueError $e) {
            // No spool_dir (the admin emptied the setting): there is nothing to replay.
            mtrace('logstore_tsdb: spool replay skipped: ' . $e->getMessage());
            return;
        }
        mtrace('logstore_tsdb: spool replay: ' . json_encode($result));
    }
}
