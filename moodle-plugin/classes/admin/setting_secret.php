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
 * A secret setting that is never printed back.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\admin;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->libdir . '/adminlib.php');

/**
 * Password-unmask setting whose saved value never reaches the page: the form shows an empty field, an empty
 * submission keeps the saved secret (or stores the empty default when nothing is saved yet) and a single "-"
 * removes it.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class setting_secret extends \admin_setting_configpasswordunmask {
    use marked_setting;

    /** @var string The value that removes the saved secret. */
    const CLEAR = '-';

    /**
     * Renders the field without the saved value, saying when one is stored.
     *
     * @param mixed $data
     * @param string $query
     * @return string
     */
    public function output_html(#[\SensitiveParameter] $data, $query = '') {
        if ((string) $this->get_setting() === '') {
            return $this->marked(parent::output_html('', $query));
        }
        // Stored: the field stays empty (the value never reaches the page), and says that a value is kept.
        $description = $this->description;
        $this->description = \html_writer::div(get_string('secretstored', 'logstore_tsdb'), 'text-success') . $description;
        try {
            return $this->marked(parent::output_html('', $query));
        } finally {
            $this->description = $description;
        }
    }

    /**
     * Saves a new secret; empty keeps the saved one; "-" removes it.
     *
     * @param mixed $data
     * @return string '' or an error
     */
    public function write_setting(#[\SensitiveParameter] $data) {
        $data = (string) $data;
        if ($data === '') {
            if ($this->get_setting() === null) {
                // Nothing saved yet: store the empty default. Moodle applies defaults at install and upgrade with
                // write_setting(''), and lists a setting whose get_setting() is null as new on every visit of
                // the notifications page (any_new_admin_settings()).
                return $this->config_write($this->name, '') ? '' : get_string('errorsetting', 'admin');
            }
            return '';
        }
        if (trim($data) === self::CLEAR) {
            $data = '';
        }
        if (preg_match('/[\x00\r\n]/', $data)) {
            return get_string('error_linebreak', 'logstore_tsdb', $this->name);
        }
        return $this->config_write($this->name, $data) ? '' : get_string('errorsetting', 'admin');
    }
}
