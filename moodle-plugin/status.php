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
 * Status page of logstore_tsdb: extension, counters of this process and of the site, spool, chart, connection test.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

// Five levels up: Moodle 4.4/4.5's config.php, or Moodle 5.1's public/config.php (which loads the config.php above
// public/), as core's own pages under public/ require it.
require(__DIR__ . '/../../../../../config.php');
require_once($CFG->libdir . '/adminlib.php');

use logstore_tsdb\local\connection_tester;
use logstore_tsdb\local\extension;
use logstore_tsdb\local\metrics;
use logstore_tsdb\local\status;

admin_externalpage_setup('logstore_tsdb_status');
require_admin();

$action = optional_param('action', '', PARAM_ALPHA);
$cfg = \logstore_tsdb\log\store::read_plugin_config();
$testresult = null;
if ($action === 'test') {
    require_sesskey();
    $testresult = connection_tester::run($cfg);
}

echo $OUTPUT->header();
echo $OUTPUT->heading(get_string('statuspage', 'logstore_tsdb'));

if ($testresult !== null) {
    echo $OUTPUT->notification(s($testresult['message']), $testresult['ok'] ? 'success' : 'error');
}

/**
 * Renders a two-column table.
 *
 * @param array $rows label => value (already escaped)
 * @return string
 */
function logstore_tsdb_status_table(array $rows): string {
    $table = new html_table();
    $table->head = [get_string('status_counter', 'logstore_tsdb'), get_string('status_value', 'logstore_tsdb')];
    foreach ($rows as $label => $value) {
        $table->data[] = [s($label), $value];
    }
    return html_writer::table($table);
}

if (!extension::is_loaded()) {
    echo $OUTPUT->notification(get_string('extensionmissing', 'logstore_tsdb', PHP_VERSION . (PHP_ZTS ? ' ZTS' : ' NTS')),
        'error');
} else {
    if (!extension::ensure_configured($cfg)) {
        echo $OUTPUT->notification(s(get_string('status_configerror', 'logstore_tsdb', extension::config_error())), 'error');
    }
    $stats = extension::stats();
    if (($stats['warning'] ?? '') !== '') {
        // Allowed but unsafe (clear text off this machine), or a page setting the PHP-FPM pool overrides.
        echo $OUTPUT->notification(s(get_string('status_warning', 'logstore_tsdb', $stats['warning'])), 'warning');
    }
    echo $OUTPUT->heading(get_string('status_extension', 'logstore_tsdb'), 3);
    echo logstore_tsdb_status_table([
        get_string('status_version', 'logstore_tsdb') => s(extension::version()),
        get_string('status_backend', 'logstore_tsdb') => s($stats['backend'] ?? ''),
        get_string('status_mode', 'logstore_tsdb') => s($stats['mode'] ?? ''),
    ]);

    echo $OUTPUT->heading(get_string('status_thisprocess', 'logstore_tsdb'), 3);
    $rows = [];
    foreach ($stats as $key => $value) {
        if (is_scalar($value) && !in_array($key, ['backend', 'mode', 'version'], true)) {
            $rows[$key] = s((string) $value);
        }
    }
    echo logstore_tsdb_status_table($rows);
}

// Site-wide counters reported by every PHP process.
echo $OUTPUT->heading(get_string('status_site', 'logstore_tsdb'), 3);
$totals = metrics::site_totals();
$rows = [get_string('status_workers', 'logstore_tsdb') => (string) $totals['workers']];
foreach (array_merge(metrics::COUNTERS, ['pending', 'queuedbytes']) as $key) {
    $rows[$key] = (string) $totals[$key];
}
$rows[get_string('status_lastsuccess', 'logstore_tsdb')] = $totals['lastsuccessat']
    ? userdate($totals['lastsuccessat']) : get_string('status_never', 'logstore_tsdb');
$rows[get_string('status_lasterror', 'logstore_tsdb')] = $totals['lasterror'] !== ''
    ? s($totals['lasterror']) . ' (' . userdate($totals['lasterrorat']) . ')' : get_string('status_none', 'logstore_tsdb');
$spool = status::spool_info($cfg);
$rows[get_string('status_spool', 'logstore_tsdb')] = $spool && $spool['files']
    ? get_string('status_spoolsize', 'logstore_tsdb', (object) ['files' => $spool['files'], 'size' => display_size($spool['bytes']),
        'age' => format_time(time() - $spool['oldest'])])
    : get_string('status_spoolempty', 'logstore_tsdb');
echo logstore_tsdb_status_table($rows);

// Test connection.
echo $OUTPUT->single_button(new moodle_url('/admin/tool/log/store/tsdb/status.php', ['action' => 'test', 'sesskey' => sesskey()]),
    get_string('testconnection', 'logstore_tsdb'), 'post');

// Events written, failed and dropped per minute over the last hour.
echo $OUTPUT->heading(get_string('status_chart', 'logstore_tsdb'), 3);
$series = metrics::series(60);
$chart = new \core\chart_line();
$chart->add_series(new \core\chart_series(get_string('status_written', 'logstore_tsdb'), $series['written']));
$chart->add_series(new \core\chart_series(get_string('status_failed', 'logstore_tsdb'), $series['failed']));
$chart->add_series(new \core\chart_series(get_string('status_dropped', 'logstore_tsdb'), $series['dropped']));
$chart->set_labels(array_map(function($t) {
    return userdate($t, '%H:%M');
}, $series['minutes']));
echo $OUTPUT->render($chart);

echo $OUTPUT->footer();
