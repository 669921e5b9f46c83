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
 * Validation of an admin setting against the plugin's settings definition.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\admin;

defined('MOODLE_INTERNAL') || die();

/**
 * For subclasses of Moodle's admin_setting_configtext (and configtextarea): validate() runs the parent's check (the
 * PARAM_* type), then \logstore_tsdb\local\settings_definition::validate(); every error message names the field.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
trait validated_setting {

    /**
     * Validates the submitted value.
     *
     * @param string $data
     * @return true|string true, or an error message that starts with the setting name
     */
    public function validate($data) {
        $parent = parent::validate($data);
        if ($parent !== true) {
            return $this->name . ': ' . $parent;
        }
        $error = \logstore_tsdb\local\settings_definition::validate($this->name, $data);
        return $error === null ? true : $error;
    }
}
