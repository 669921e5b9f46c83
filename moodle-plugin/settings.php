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
    // The tuning knobs, on a page of their own: a first configuration is the page tool_log adds ($settings).
    $tuning = new admin_settingpage('logstore_tsdb_tuning', new lang_string('tuningpage', 'logstore_tsdb'),
        'moodle/site:config');
    $ADMIN->add('logging', $tuning);
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
    $settings->add(new admin_setting_heading('logstore_tsdb/tuninglink', '',
        get_string('tuningpagelink', 'logstore_tsdb', $tuning->get_settings_page_url()->out())));

    $definitions = settings_definition::all();
    $groups = [];
    foreach (settings_definition::sections() as $section) {
        $page = in_array($section, settings_definition::TUNING_SECTIONS, true) ? $tuning : $settings;
        $heading = new \logstore_tsdb\admin\setting_heading('logstore_tsdb/heading_' . $section,
            new lang_string('heading_' . $section, 'logstore_tsdb'),
            new lang_string('heading_' . $section . '_desc', 'logstore_tsdb'));
        $page->add($heading);
        $members = ['heading_' . $section => $heading];

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
                    $setting = new \logstore_tsdb\admin\setting_select($fullname, $label, $help, $def['default'], $choices);
                    break;
                case 'bool':
                    $setting = new \logstore_tsdb\admin\setting_checkbox($fullname, $label, $help,
                        (string) $def['default']);
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
            $page->add($setting);
            $members[$name] = $setting;
        }

        // Only what the chosen backend uses is shown, and with the php.ini source none of what the extension takes
        // from php.ini: Moodle's show/hide rules, one per group of settings (a marker, see marked_setting), on the
        // page of the backend setting. Moodle's script shows or hides the items of each marker on its own, so a
        // setting carries one marker: its backends and whether php.ini replaces it.
        if ($page === $settings) {
            $extonly = true;
            foreach ($members as $name => $setting) {
                $extonly = $extonly && ($setting === $heading || !empty($definitions[$name]['ext']));
            }
            foreach ($members as $name => $setting) {
                $backends = settings_definition::used_by($name);
                $fromphpini = $setting === $heading ? $extonly : !empty($definitions[$name]['ext']);
                if ($backends === null && !$fromphpini) {
                    continue;
                }
                // Short names: Moodle 4.5 wants all the rules of a page in 1024 characters.
                $marker = 'for_' . ($backends === null ? 'all' : str_replace(['influxdb', 'file', 'postgres'], ['', 'f', 'p'],
                    implode('', $backends))) . ($fromphpini ? '_ini' : '');
                $setting->set_markers([$marker]);
                $groups[$marker] = [$backends, $fromphpini];
            }
        }
    }
    foreach ($groups as $marker => [$backends, $fromphpini]) {
        if ($backends !== null) {
            $settings->hide_if('logstore_tsdb/' . $marker, 'logstore_tsdb/backend', 'in',
                implode('|', array_diff(settings_definition::BACKENDS, $backends)));
        }
        if ($fromphpini) {
            $settings->hide_if('logstore_tsdb/' . $marker, 'logstore_tsdb/configsource', 'eq', 'phpini');
        }
    }
}
