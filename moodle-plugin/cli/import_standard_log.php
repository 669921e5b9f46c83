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
    'source' => null,
    'chunk' => \logstore_tsdb\local\import\importer::CHUNK,
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

$chunkdefault = \logstore_tsdb\local\import\importer::CHUNK;
$help = <<<EOT
Imports existing Moodle logs into the time series database log store (logstore_tsdb), through the tsdb extension.

Reads logstore_standard_log of this site (or an export of it with --file) in id order, in chunks, and hands each chunk
to the extension, which writes the rows as the store writes live events, with the store's settings (backend, filters,
IP setting, pseudonyms). Every row keeps an identity of its own (the source and its id), so a row sent twice is stored
once: the import can be stopped at any time (even killed) and run again; it continues from the last chunk written
(its position is kept in the plugin config). At the end it checks the counts against the source (and, with
PostgreSQL, against the table).

Options:
  --from=DATE        Only events at or after DATE (YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], UTC, or unix seconds).
  --to=DATE          Only events before DATE. Default: the first event this store captured live (plugin config
                     livesince), so that a period when both stores were enabled is not imported twice.
  --all              No default --to: import up to the newest row.
  --file=PATH        Import from an export instead of the database: CSV with a header row, JSON lines (one object
                     per row) or a JSON array. Rows are keyed by their id column (export ORDER BY id), else by row number.
  --format=FMT       csv, jsonl or json (default: from the file name / content).
  --source=NAME      Where the rows come from, if not from where they are read: the identity of the imported events
                     is derived from it. Default: this site's table (moodle:SITEIDENTIFIER:PREFIXlogstore_standard_log),
                     or for --file the file (file:PATH). An export of this site's own table imported with
                     --source=this-site is stored once with the table's rows.
  --chunk=N          Rows per chunk (default $chunkdefault).
  -n, --dry-run      Read and count what would be imported; write nothing.
  --no-filters       Import every row, ignoring the store's include/exclude/edulevel/anonymous filters (the IP
                     and pseudonym settings still apply).
  --restart          Forget the positions of this source and target: the next run reads it again from the start
                     (rows already imported are not stored twice).
  --status           Show the positions and totals, and exit.
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
if ($opts['chunk'] < 1 || $opts['chunk'] > 200000) {
    cli_error('--chunk: between 1 and 200000');
}

try {
    $source = $options['file'] !== null
        ? new \logstore_tsdb\local\import\file_source($options['file'], $options['format'])
        : new \logstore_tsdb\local\import\db_source();
    if ($options['source'] !== null) {
        $opts['identity'] = $options['source'] === 'this-site'
            ? (new \logstore_tsdb\local\import\db_source())->identity() : (string) $options['source'];
    }
    $opts['out'] = function(string $line) {
        cli_writeln($line);
    };
    $opts['progress'] = $options['status'] ? null : new \logstore_tsdb\local\import\progress();
    $importer = new \logstore_tsdb\local\import\importer($cfg, $source, $opts);

    if ($options['status']) {
        $state = $importer->get_state();
        cli_writeln('Source: ' . $source->name());
        cli_writeln('Target: ' . $cfg->backend);
        cli_writeln('Runs: ' . ($state['runs'] ?? 0) . ', events written (a chunk sent again after a stop counts twice '
            . 'here, never in the target): ' . ($state['totals']['imported'] ?? 0) . ', rejected by the sink: '
            . ($state['totals']['rejected'] ?? 0));
        foreach ($state['positions'] as $window => [$lastid]) {
            [$from, $to] = explode('/', $window);
            cli_writeln(sprintf('  window [%s, %s): imported up to id %d', $from === '' ? '…' : gmdate('Y-m-d H:i:s', (int) $from),
                $to === '' ? '…' : gmdate('Y-m-d H:i:s', (int) $to), $lastid));
        }
        foreach ($state['legacy'] ?? [] as [$k1, $k2]) {
            cli_writeln("  imported by the plugin's previous version: keys $k1-$k2");
        }
        exit(0);
    }
    if ($options['restart']) {
        $importer->forget_state();
        cli_writeln('Positions forgotten: the next run reads this source again from the start (rows already imported are '
            . 'not stored twice).');
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
cli_writeln(($opts['dryrun'] ? 'Dry run: would import ' : 'Imported ') . $c['imported'] . ' events in '
    . \logstore_tsdb\local\import\progress::duration((float) $report['seconds']) . ' ('
    . number_format($c['read'] / max(0.001, (float) $report['seconds'])) . ' rows/s).');
cli_writeln("Rows read: {$c['read']}; left out by the store's filters: {$c['filtered']}; outside the window: {$c['outside']}; "
    . "not events: {$c['invalid']}; rejected by the sink: {$c['rejected']}; values cut to their cap: {$c['truncated']}; "
    . "serialize()d other converted: " . ($c['unserialized'] + $c['converted']) . '.');
// Where the time went: the source (a slow source database or file) or the writes (the tsdb backend), which overlap.
$t = $report['timings'];
cli_writeln("Time reading the source: {$t['read']} s; handing chunks to the extension, waiting for the previous chunk's "
    . "write: {$t['import']} s; saving the position: {$t['state']} s.");
foreach ($report['checks'] as $name => [$ok, $text]) {
    cli_writeln(($ok ? 'OK    ' : 'FAIL  ') . "$name: $text");
}
exit($report['ok'] ? 0 : 1);
