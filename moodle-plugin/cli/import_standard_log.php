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
 * Imports logstore_standard_log (or a CSV / JSON export of it) into the time series database.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('CLI_SCRIPT', true);

// Six levels up: Moodle 4.4/4.5's config.php, or Moodle 5.1's public/config.php (which loads the config.php above
// public/).
require(__DIR__ . '/../../../../../../config.php');
require_once($CFG->libdir . '/clilib.php');

[$options, $unrecognised] = cli_get_params([
    'help' => false,
    'from' => null,
    'to' => null,
    'file' => null,
    'format' => null,
    'chunk' => 5000,
    'dry-run' => false,
    'restart' => false,
    'status' => false,
    'no-filters' => false,
    'all' => false,
], [
    'h' => 'help',
    'n' => 'dry-run',
]);

if ($unrecognised) {
    cli_error('Unknown option(s): ' . implode(' ', $unrecognised) . "\nRun with --help for the options.");
}

$help = <<<EOT
Imports existing Moodle logs into the time series database log store (logstore_tsdb), through the tsdb extension.

Reads logstore_standard_log of this site (or an export of it with --file) by id ranges and writes every row as the
store writes live events, with the store's settings (backend, filters, pseudonyms). It can be stopped at any time
and run again: it continues where it stopped and never stores a row twice (its position is kept in the plugin
config). At the end it checks the counts against the source.

Options:
  --from=DATE        Only events at or after DATE (YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], UTC, or unix seconds).
  --to=DATE          Only events before DATE. Default: the first event this store captured live (plugin config
                     livesince), so that a period when both stores were enabled is not imported twice.
  --all              No default --to: import up to the newest row.
  --file=PATH        Import from an export instead of the database: CSV with a header row, JSON lines (one object
                     per row) or a JSON array. Rows are keyed by their id column (export ORDER BY id), else by row number.
  --format=FMT       csv, jsonl or json (default: from the file name / content).
  --chunk=N          Rows per chunk (default 5000).
  -n, --dry-run      Read and count what would be imported; write nothing.
  --no-filters       Import every row, ignoring the store's include/exclude/edulevel/anonymous filters (the IP
                     and pseudonym settings still apply).
  --restart          Forget the position of this source and target (rows will be imported again!).
  --status           Show the position and totals, and exit.
  -h, --help         This help.

Examples (from Moodle's root; Moodle 5.1: public/admin/...):
  php admin/tool/log/store/tsdb/cli/import_standard_log.php --dry-run
  php admin/tool/log/store/tsdb/cli/import_standard_log.php --from=2024-09-01
  php admin/tool/log/store/tsdb/cli/import_standard_log.php --file=/tmp/log.jsonl

EOT;

if ($options['help']) {
    echo $help;
    exit(0);
}

/**
 * Parses a date option (UTC).
 *
 * @param string|null $value
 * @param string $name
 * @return int|null
 */
function logstore_tsdb_import_date(?string $value, string $name): ?int {
    if ($value === null || $value === '') {
        return null;
    }
    if (preg_match('/^[0-9]+$/', $value)) {
        return (int) $value;
    }
    if (!preg_match('/^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$/', $value)) {
        cli_error("--$name: expected YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (UTC) or unix seconds, got \"$value\"");
    }
    $dt = \DateTime::createFromFormat('!Y-m-d H:i:s', strlen($value) === 10 ? "$value 00:00:00"
        : (strlen($value) === 16 ? "$value:00" : $value), new \DateTimeZone('UTC'));
    if (!$dt) {
        cli_error("--$name: invalid date \"$value\"");
    }
    return $dt->getTimestamp();
}

$cfg = \logstore_tsdb\log\store::read_plugin_config();
$opts = [
    'from' => logstore_tsdb_import_date($options['from'], 'from'),
    'dryrun' => (bool) $options['dry-run'],
    'filters' => !$options['no-filters'],
    'chunk' => (int) $options['chunk'],
];
if ($options['to'] !== null || $options['all']) {
    $opts['to'] = $options['all'] ? null : logstore_tsdb_import_date($options['to'], 'to');
}
if ($opts['chunk'] < 1 || $opts['chunk'] > 100000) {
    cli_error('--chunk: between 1 and 100000');
}

try {
    $source = $options['file'] !== null
        ? new \logstore_tsdb\local\import\file_source($options['file'], $options['format'])
        : new \logstore_tsdb\local\import\db_source();
    $opts['out'] = function(string $line) {
        cli_writeln($line);
    };
    $opts['progress'] = $options['status'] ? null : new \logstore_tsdb\local\import\progress();
    $importer = new \logstore_tsdb\local\import\importer($cfg, $source, $opts);

    if ($options['status']) {
        $state = $importer->get_state();
        cli_writeln('Source: ' . $source->name());
        cli_writeln('Target: ' . $cfg->backend);
        cli_writeln('Runs: ' . ($state['runs'] ?? 0) . ', events imported: ' . ($state['totals']['imported'] ?? 0)
            . ', rejected by the sink: ' . ($state['totals']['rejected'] ?? 0));
        foreach ($state['done'] as [$k1, $k2, $t1, $t2]) {
            cli_writeln(sprintf('  done: keys %d-%d, time [%s, %s)', $k1, $k2, $t1 === null ? '…' : gmdate('Y-m-d H:i:s', $t1),
                $t2 === null ? '…' : gmdate('Y-m-d H:i:s', $t2)));
        }
        cli_writeln('In flight: ' . (empty($state['inflight']) ? 'none' : 'keys ' . $state['inflight']['first'] . '-'
            . $state['inflight']['last'] . ' (finished by the next run)'));
        exit(0);
    }
    if ($options['restart']) {
        $importer->forget_state();
        cli_writeln('Position forgotten: the next run imports this source again from the start.');
        exit(0);
    }
    if (!isset($opts['to']) && empty($cfg->livesince)) {
        cli_writeln('Note: this store has not captured any event yet (no livesince): importing up to the newest row. '
            . 'Events logged by both stores after that would be imported again by a later run: pass --to.');
    }

    $report = $importer->run();
} catch (\moodle_exception $e) {
    cli_error('Import failed: ' . $e->getMessage());
}

$c = $report['counts'];
cli_writeln('');
if (!empty($report['recovered'])) {
    cli_writeln('Interrupted chunk finished: ' . $report['recovered']['imported'] . ' events imported, '
        . $report['recovered']['present'] . ' were already there.');
}
cli_writeln(($opts['dryrun'] ? 'Dry run: would import ' : 'Imported ') . $c['imported'] . ' events in '
    . \logstore_tsdb\local\import\progress::duration((float) $report['seconds']) . ' ('
    . number_format($c['read'] / max(0.001, (float) $report['seconds'])) . ' rows/s).');
cli_writeln("Rows read: {$c['read']}; already imported: {$c['skipped']}; left out by the store's filters: {$c['filtered']}; "
    . "older than retention_days: {$c['expired']}; not events: {$c['invalid']}; refused by the extension: {$c['refused']}; "
    . "rejected by the sink: {$c['rejected']}.");
foreach ($report['checks'] as $name => [$ok, $text]) {
    cli_writeln(($ok ? 'OK    ' : 'FAIL  ') . "$name: $text");
}
exit($report['ok'] ? 0 : 1);
