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
 * Renders a table of label => value rows (values already escaped), without a header row.
 *
 * @param array $rows label => value
 * @return string
 */
function logstore_tsdb_status_table(array $rows): string {
    $table = new html_table();
    $table->attributes['class'] = 'generaltable table-sm w-auto';
    foreach ($rows as $label => $value) {
        $header = new html_table_cell(s($label));
        $header->header = true;
        $header->scope = 'row';
        $table->data[] = new html_table_row([$header, new html_table_cell($value)]);
    }
    return html_writer::table($table);
}

/**
 * A time of the extension or of a report as a date and how long ago, or "Never".
 *
 * @param mixed $time seconds, milliseconds or nanoseconds since 1970, 0 for never
 * @return string
 */
function logstore_tsdb_status_time($time): string {
    $seconds = metrics::seconds($time);
    if ($seconds <= 0) {
        return get_string('status_never', 'logstore_tsdb');
    }
    return s(get_string('status_ago', 'logstore_tsdb', (object) ['date' => userdate($seconds),
        'ago' => status::age($seconds)]));
}

// The verdict first: System status's check of the store, with its reason. The health check notifies only after
// several failing checks; meanwhile batches waiting in the spool (the database is not taking them: now), or else
// events lost in the last hour, make it a warning that says so.
$verdict = (new \logstore_tsdb\check\extension_check())->get_result();
$hour = status::last_hour();
$spool = status::spool_info($cfg);
if ($verdict->get_status() === \core\check\result::OK && $spool && $spool['files']) {
    $verdict = new \core\check\result(\core\check\result::WARNING, s(get_string('status_verdict_spool', 'logstore_tsdb',
        (object) ['files' => $spool['files'], 'age' => status::age($spool['oldest'])])));
} else if ($verdict->get_status() === \core\check\result::OK && $hour['failed'] + $hour['dropped'] > 0) {
    $verdict = new \core\check\result(\core\check\result::WARNING,
        s(get_string('status_verdict_losses', 'logstore_tsdb', (object) $hour)));
}
echo html_writer::div($OUTPUT->check_result($verdict) . ' ' . html_writer::span($verdict->get_summary()),
    'logstore-tsdb-verdict lead mb-3');
if (extension::is_loaded()) {
    extension::ensure_configured($cfg);
    $stats = extension::stats();
    if (($stats['warning'] ?? '') !== '') {
        // Allowed but unsafe (clear text off this machine), or a page setting the PHP-FPM pool overrides.
        echo $OUTPUT->notification(s(get_string('status_warning', 'logstore_tsdb', $stats['warning'])), 'warning');
    }
} else {
    $stats = null;
    echo $OUTPUT->notification(get_string('extensionmissing', 'logstore_tsdb', PHP_VERSION . (PHP_ZTS ? ' ZTS' : ' NTS')),
        'error');
}

// Test connection, on the first screen.
echo $OUTPUT->single_button(new moodle_url('/admin/tool/log/store/tsdb/status.php', ['action' => 'test', 'sesskey' => sesskey()]),
    get_string('testconnection', 'logstore_tsdb'), 'post');

// The figures that matter.
$totals = metrics::site_totals();
$rows = [
    get_string('status_lastsuccess', 'logstore_tsdb') => logstore_tsdb_status_time(max((int) $totals['lastsuccessat'],
        metrics::seconds($stats['last_success_at'] ?? 0))),
    get_string('status_lasthour', 'logstore_tsdb') => s(get_string('status_lasthour_value', 'logstore_tsdb', (object) $hour)),
    get_string('status_waiting', 'logstore_tsdb') => s(get_string('status_waiting_processes', 'logstore_tsdb',
        (object) ['events' => $totals['pending'], 'processes' => $totals['liveworkers']])),
    get_string('status_spool', 'logstore_tsdb') => $spool && $spool['files']
        ? s(get_string('status_spoolsize', 'logstore_tsdb', (object) ['files' => $spool['files'],
            'size' => display_size($spool['bytes']), 'age' => status::age($spool['oldest'])]))
        : get_string('status_spoolempty', 'logstore_tsdb'),
    get_string('status_lasterror', 'logstore_tsdb') => $totals['lasterror'] !== ''
        ? s($totals['lasterror']) . ' (' . logstore_tsdb_status_time($totals['lasterrorat']) . ')'
        : get_string('status_none', 'logstore_tsdb'),
    get_string('status_recreated', 'logstore_tsdb') => ($recreated = status::schema_recreated()) !== null
        ? s(get_string('status_recreated_value', 'logstore_tsdb', status::recreated_words($recreated)))
        : get_string('status_none', 'logstore_tsdb'),
    get_string('status_backend', 'logstore_tsdb') => s(get_string('backend_' . $cfg->backend, 'logstore_tsdb')),
    get_string('status_mode', 'logstore_tsdb') => s((string) ($stats['mode'] ?? $cfg->mode)),
    get_string('status_version', 'logstore_tsdb') => s((string) (extension::version() ?? '-')),
];
echo logstore_tsdb_status_table($rows);

// TimescaleDB's policy jobs of the log table, as its scheduler ran them.
$jobs = status::timescale_jobs($cfg);
if ($jobs !== null) {
    echo $OUTPUT->heading(get_string('status_jobs', 'logstore_tsdb'), 3);
    if (isset($jobs['error'])) {
        echo $OUTPUT->notification(s(get_string('status_jobs_error', 'logstore_tsdb', $jobs['error'])), 'warning');
    } else {
        $table = new html_table();
        $table->attributes['class'] = 'generaltable table-sm w-auto logstore-tsdb-jobs';
        $table->head = [get_string('status_job', 'logstore_tsdb'), get_string('status_job_target', 'logstore_tsdb'),
            get_string('status_job_lastrun', 'logstore_tsdb'), get_string('status_job_lastsuccess', 'logstore_tsdb'),
            get_string('status_job_next', 'logstore_tsdb')];
        foreach ($jobs as $job) {
            $lastrun = (string) ($job->last_run_status ?? '-');
            if ((string) $job->last_error !== '') {
                $lastrun = get_string('status_job_failed', 'logstore_tsdb', $job->last_error);
            }
            $table->data[] = [s($job->proc_name), s((string) $job->target), s($lastrun),
                logstore_tsdb_status_time((int) $job->last_success), $job->next_start ? userdate((int) $job->next_start) : '-'];
        }
        echo html_writer::table($table);
    }
}

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

// The raw counters, for support: collapsed.
$details = '';
if ($stats !== null) {
    $rows = [];
    foreach ($stats as $key => $value) {
        if (!is_scalar($value) || in_array($key, ['backend', 'mode', 'version', 'warning'], true)) {
            continue;
        }
        $label = get_string_manager()->string_exists('stat_' . $key, 'logstore_tsdb')
            ? get_string('stat_' . $key, 'logstore_tsdb') : $key;
        if (substr($key, -3) === '_at') {
            $rows[$label] = logstore_tsdb_status_time($value);
        } else if (substr($key, -6) === '_age_s') {
            $rows[$label] = s(format_time((int) $value));
        } else {
            $rows[$label] = s((string) $value);
        }
    }
    $details .= $OUTPUT->heading(get_string('status_thisprocess', 'logstore_tsdb'), 4) . logstore_tsdb_status_table($rows);
}
$rows = [get_string('status_workers', 'logstore_tsdb') => (string) $totals['workers']];
foreach (metrics::COUNTERS as $key) {
    $rows[get_string('stat_' . $key, 'logstore_tsdb')] = (string) $totals[$key];
}
$details .= $OUTPUT->heading(get_string('status_site', 'logstore_tsdb'), 4) . logstore_tsdb_status_table($rows);
echo html_writer::tag('details', html_writer::tag('summary', get_string('status_details', 'logstore_tsdb')) . $details,
    ['class' => 'logstore-tsdb-details mt-3']);

echo $OUTPUT->footer();
