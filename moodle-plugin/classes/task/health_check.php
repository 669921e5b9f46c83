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
 * Scheduled task health_check.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\task;

defined('MOODLE_INTERNAL') || die();

/**
 * Checks that events are being written and notifies the site administrators after repeated failures.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class health_check extends \core\task\scheduled_task {

    /**
     * Name of the task.
     *
     * @return string
     */
    public function get_name() {
        return get_string('task_health_check', 'logstore_tsdb');
    }

    /**
     * Runs one check.
     */
    public function execute() {
        $state = \logstore_tsdb\local\health::check();
        mtrace('logstore_tsdb: health ' . $state);
        \logstore_tsdb\local\metrics::cleanup(time());
    }
}
