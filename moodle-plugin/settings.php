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
 * Settings of logstore_tsdb (included by tool_log's settings.php with $settings, $ADMIN and $hassiteconfig).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\local\extension;
use logstore_tsdb\local\settings_definition;

if ($hassiteconfig) {
    $statusurl = new moodle_url('/admin/tool/log/store/tsdb/status.php');

    // The status page, linked from here and listed under Site administration > Plugins > Logging.
    $ADMIN->add('logging', new admin_externalpage('logstore_tsdb_status', new lang_string('statuspage', 'logstore_tsdb'),
        $statusurl, 'moodle/site:config'));
}

// The settings themselves only when Moodle builds the full tree (a settings page, a search): the navigation tree,
// built on every page an administrator sees, must not probe or reconfigure the extension.
if ($hassiteconfig && $ADMIN->fulltree) {
    if (!extension::is_loaded()) {
        $settings->add(new admin_setting_heading('logstore_tsdb/extensionmissing', '',
            html_writer::div(get_string('extensionmissing', 'logstore_tsdb', PHP_VERSION . (PHP_ZTS ? ' ZTS' : ' NTS')),
                'alert alert-danger')));
    } else {
        $current = \logstore_tsdb\log\store::read_plugin_config();
        if (extension::ensure_configured($current)) {
            $info = get_string('extensionloaded', 'logstore_tsdb', s(extension::version()));
            $settings->add(new admin_setting_heading('logstore_tsdb/extensionstatus', '',
                html_writer::div($info, 'alert alert-info')));
        } else {
            $settings->add(new admin_setting_heading('logstore_tsdb/extensionstatus', '',
                html_writer::div(s(get_string('configrefused', 'logstore_tsdb', extension::config_error())),
                    'alert alert-danger')));
        }
    }
    $settings->add(new admin_setting_heading('logstore_tsdb/statuslink', '',
        get_string('statuspagelink', 'logstore_tsdb', $statusurl->out())));

    $definitions = settings_definition::all();
    foreach (settings_definition::sections() as $section) {
        $settings->add(new admin_setting_heading('logstore_tsdb/heading_' . $section,
            new lang_string('heading_' . $section, 'logstore_tsdb'),
            new lang_string('heading_' . $section . '_desc', 'logstore_tsdb')));

        foreach ($definitions as $name => $def) {
            if ($def['section'] !== $section) {
                continue;
            }
            $fullname = 'logstore_tsdb/' . $name;
            $label = new lang_string('setting_' . $name, 'logstore_tsdb');
            $help = new lang_string('setting_' . $name . '_desc', 'logstore_tsdb');
            switch ($def['type']) {
                case 'select':
                    $choices = [];
                    foreach ($def['options'] as $value => $identifier) {
                        $choices[$value] = new lang_string($identifier, 'logstore_tsdb');
                    }
                    if ($name === 'mode' && (!isset($current) || ($current->mode ?? '') !== 'durable')
                            && !extension::supports_mode('durable', $current ?? null)) {
                        // Offer durable mode only when the loaded extension accepts it.
                        unset($choices['durable']);
                    }
                    $setting = new admin_setting_configselect($fullname, $label, $help, $def['default'], $choices);
                    break;
                case 'bool':
                    $setting = new admin_setting_configcheckbox($fullname, $label, $help, (string) $def['default']);
                    break;
                case 'secret':
                    $setting = new \logstore_tsdb\admin\setting_secret($fullname, $label, $help, '');
                    break;
                case 'textarea':
                    // PARAM_RAW: Moodle refuses a PARAM_RAW_TRIMMED value with surrounding white space, such as the
                    // newline after the last line of a text area; the patterns are split on white space anyway.
                    $setting = new \logstore_tsdb\admin\setting_textarea($fullname, $label, $help, $def['default'],
                        PARAM_RAW);
                    break;
                case 'int':
                    $setting = new \logstore_tsdb\admin\setting_text($fullname, $label, $help, (string) $def['default'],
                        PARAM_RAW_TRIMMED, 12);
                    break;
                default:
                    $setting = new \logstore_tsdb\admin\setting_text($fullname, $label, $help, (string) $def['default'],
                        PARAM_RAW_TRIMMED, $def['type'] === 'text' ? 30 : 60);
            }
            $settings->add($setting);
        }
    }
}
