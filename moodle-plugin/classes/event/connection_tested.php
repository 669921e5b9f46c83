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
 * An administrator tested the connection of the time series database log store.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\event;

defined('MOODLE_INTERNAL') || die();

/**
 * Triggered by Test connection on the status page: the event is also the marker that is written to the time series
 * database and read back (other['marker'], a random value), so every store records the test as any other action.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class connection_tested extends \core\event\base {

    /**
     * No object, not educational (created in the system context).
     */
    protected function init() {
        $this->data['crud'] = 'r';
        $this->data['edulevel'] = self::LEVEL_OTHER;
    }

    /**
     * The event's name in the log reports.
     *
     * @return string
     */
    public static function get_name() {
        return get_string('eventconnectiontested', 'logstore_tsdb');
    }

    /**
     * What happened, for the log reports (not localised, as core's descriptions).
     *
     * @return string
     */
    public function get_description() {
        $marker = (string) ($this->other['marker'] ?? '');
        return "The user with id '$this->userid' tested the connection of the time series database log store"
            . ($marker !== '' ? " (marker '$marker')." : '.');
    }

    /**
     * The status page, where the test is run.
     *
     * @return \moodle_url
     */
    public function get_url() {
        return new \moodle_url('/admin/tool/log/store/tsdb/status.php');
    }

    /**
     * The marker is required.
     *
     * @throws \coding_exception
     */
    protected function validate_data() {
        parent::validate_data();
        if (!isset($this->other['marker'])) {
            throw new \coding_exception('The \'marker\' value must be set in other.');
        }
    }

    /**
     * The marker is not an id: nothing to map when course logs are restored.
     *
     * @return bool
     */
    public static function get_other_mapping() {
        return false;
    }
}
