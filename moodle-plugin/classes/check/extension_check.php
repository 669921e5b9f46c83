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
 * Status check of the tsdb extension.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\check;

defined('MOODLE_INTERNAL') || die();

use core\check\result;
use logstore_tsdb\local\extension;
use logstore_tsdb\local\status;

/**
 * Reports a missing extension, a refused configuration, a failing health check, an events table the sink made again
 * in the last day and the extension's warning (tsdb_stats()['warning']: clear text off this machine, page settings a
 * PHP-FPM pool overrides).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class extension_check extends \core\check\check {

    /**
     * Name of the check.
     *
     * @return string
     */
    public function get_name(): string {
        return get_string('check_extension', 'logstore_tsdb');
    }

    /**
     * Link to the status page.
     *
     * @return \action_link|null
     */
    public function get_action_link(): ?\action_link {
        return new \action_link(new \moodle_url('/admin/tool/log/store/tsdb/status.php'),
            get_string('statuspage', 'logstore_tsdb'));
    }

    /**
     * The result.
     *
     * @return result
     */
    public function get_result(): result {
        if (!status::is_enabled()) {
            return new result(result::NA, get_string('pluginname', 'logstore_tsdb'));
        }
        if (!extension::is_loaded()) {
            return new result(result::ERROR, get_string('extensionmissing', 'logstore_tsdb',
                PHP_VERSION . (PHP_ZTS ? ' ZTS' : ' NTS')));
        }
        if (!extension::ensure_configured(\logstore_tsdb\log\store::read_plugin_config())) {
            return new result(result::ERROR, s(get_string('configrefused', 'logstore_tsdb', extension::config_error())));
        }
        $problem = (string) get_config('logstore_tsdb', 'healthlastproblem');
        if ((int) get_config('logstore_tsdb', 'healthfailcount') > 0 && $problem !== '') {
            return new result(result::WARNING, s(get_string('check_health_failing', 'logstore_tsdb', $problem)));
        }
        $recreated = status::schema_recreated();
        if ($recreated !== null) {
            return new result(result::WARNING, s(get_string('check_schema_recreated', 'logstore_tsdb',
                status::recreated_words($recreated))));
        }
        $warning = (string) (extension::stats()['warning'] ?? '');
        if ($warning !== '') {
            return new result(result::WARNING, s(get_string('check_warning', 'logstore_tsdb', $warning)));
        }
        return new result(result::OK, get_string('check_extension_ok', 'logstore_tsdb', s(extension::version())));
    }
}
