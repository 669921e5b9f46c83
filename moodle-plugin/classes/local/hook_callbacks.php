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
 * Hook callbacks.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Adds a plain warning to the admin notifications page (Site administration > Notifications) when the store is
 * enabled but the tsdb extension is not loaded in the web server's PHP.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class hook_callbacks {

    /**
     * Top of the page body: on the admin notifications page only, for site administrators, when it matters.
     *
     * @param \core\hook\output\before_standard_top_of_body_html_generation $hook
     */
    public static function before_standard_top_of_body_html_generation(
            \core\hook\output\before_standard_top_of_body_html_generation $hook): void {
        global $PAGE, $OUTPUT;
        if ($PAGE->pagetype !== 'admin-index' || extension::is_loaded() || !status::is_enabled()
                || !has_capability('moodle/site:config', \context_system::instance())) {
            return;
        }
        $hook->add_html($OUTPUT->notification(get_string('extensionmissing', 'logstore_tsdb',
            PHP_VERSION . (PHP_ZTS ? ' ZTS' : ' NTS')), 'error'));
    }
}
