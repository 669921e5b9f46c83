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
 * Site-wide counters of the extension, reported by the workers.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * tsdb_stats() describes one PHP process. To show the whole site, every process reports its counters at the end
 * of a request, at most once a minute: a cheap MUC lookup decides, and only then one row of
 * logstore_tsdb_workers is written and the growth since the previous report is added to the current minute of
 * logstore_tsdb_metrics (the chart of the status page).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class metrics {

    /** @var int Seconds between two reports of the same process. */
    const INTERVAL = 60;

    /** @var string[] Cumulative counters of tsdb_stats(). */
    const COUNTERS = ['accepted', 'written', 'failed', 'dropped', 'retried', 'batches', 'schema_recreated'];

    /**
     * Reports this process's counters if the last report is older than INTERVAL.
     *
     * @param int|null $now
     * @return bool reported
     */
    public static function report_if_due(?int $now = null): bool {
        $stats = extension::stats();
        if (!$stats) {
            return false;
        }
        $now = $now ?? time();
        $host = (string) gethostname();
        $pid = (int) ($stats['pid'] ?? getmypid());
        $cache = \cache::make('logstore_tsdb', 'workerreport');
        $key = 'w' . sha1($host . '/' . $pid);
        $last = $cache->get($key);
        if ($last !== false && $now - (int) $last < self::INTERVAL) {
            return false;
        }
        $cache->set($key, $now);
        self::record($host, $pid, $stats, $now);
        return true;
    }

    /**
     * Stores one report.
     *
     * @param string $host
     * @param int $pid
     * @param array $stats tsdb_stats()
     * @param int $now
     */
    public static function record(string $host, int $pid, array $stats, int $now): void {
        global $DB;
        $prev = $DB->get_record('logstore_tsdb_workers', ['hostname' => $host, 'pid' => $pid]);
        // A smaller counter than last time: a new process got the same pid.
        $restarted = $prev && (int) ($stats['accepted'] ?? 0) < (int) $prev->accepted;
        $row = new \stdClass();
        $row->hostname = $host;
        $row->pid = $pid;
        $delta = [];
        foreach (self::COUNTERS as $c) {
            $cur = (int) ($stats[$c] ?? 0);
            $row->$c = $cur;
            $delta[$c] = ($prev && !$restarted) ? max(0, $cur - (int) $prev->$c) : $cur;
        }
        $row->pending = (int) ($stats['pending'] ?? 0);
        $row->queuedbytes = (int) ($stats['queued_bytes'] ?? 0);
        $row->lasterror = \core_text::substr((string) ($stats['last_error'] ?? ''), 0, 1000);
        $row->lastsuccessat = self::seconds($stats['last_success_at'] ?? 0);
        $row->lasterrorat = $row->lasterror !== '' ? self::seconds($stats['last_error_at'] ?? 0) : 0;
        $row->backend = (string) ($stats['backend'] ?? '');
        $row->extversion = (string) ($stats['version'] ?? '');
        $row->schemarecreatedat = self::seconds($stats['schema_recreated_at'] ?? 0);
        $row->schemarecreatedmsg = \core_text::substr((string) ($stats['schema_recreated_message'] ?? ''), 0, 1000);
        $row->timereported = $now;
        if ($prev) {
            $row->id = $prev->id;
            $DB->update_record('logstore_tsdb_workers', $row);
        } else {
            $DB->insert_record('logstore_tsdb_workers', $row);
        }
        if (array_sum($delta) > 0) {
            self::add_to_minute($now - $now % 60, $delta);
        }
    }

    /**
     * Adds counts to one minute of the history.
     *
     * @param int $minute unix time of the minute
     * @param int[] $delta counter => growth
     */
    protected static function add_to_minute(int $minute, array $delta): void {
        global $DB;
        for ($attempt = 0; $attempt < 3; $attempt++) {
            $row = $DB->get_record('logstore_tsdb_metrics', ['timeminute' => $minute]);
            if ($row) {
                foreach ($delta as $c => $n) {
                    $row->$c = (int) $row->$c + $n;
                }
                $DB->update_record('logstore_tsdb_metrics', $row);
                return;
            }
            $row = (object) array_merge(['timeminute' => $minute], $delta);
            try {
                $DB->insert_record('logstore_tsdb_metrics', $row);
                return;
            } catch (\dml_exception $e) {
                continue; // Another worker inserted this minute first: add to its row.
            }
        }
    }

    /**
     * A timestamp of the extension in seconds (it may report seconds, milliseconds or nanoseconds).
     *
     * @param mixed $value
     * @return int
     */
    public static function seconds($value): int {
        $v = (float) $value;
        if ($v > 1e17) {
            return (int) ($v / 1e9);
        }
        if ($v > 1e11) {
            return (int) ($v / 1e3);
        }
        return (int) $v;
    }

    /**
     * Totals over the workers that reported recently.
     *
     * Events waiting in memory (pending, queuedbytes) are counted only for the processes still running that reported
     * in the last two intervals: a CLI script reports at its end what its shutdown writes a moment later, and an old
     * report of any process says nothing about now.
     *
     * @param int $withinseconds
     * @param int|null $now
     * @return array counters, pending, queuedbytes, workers, liveworkers, lasterror, lastsuccessat
     */
    public static function site_totals(int $withinseconds = 900, ?int $now = null): array {
        global $DB;
        $now = $now ?? time();
        $totals = array_fill_keys(self::COUNTERS, 0) + ['pending' => 0, 'queuedbytes' => 0, 'workers' => 0,
            'liveworkers' => 0, 'lasterror' => '', 'lastsuccessat' => 0, 'lasterrorat' => 0];
        $rows = $DB->get_records_select('logstore_tsdb_workers', 'timereported >= ?', [$now - $withinseconds],
            'timereported ASC');
        foreach ($rows as $r) {
            foreach (self::COUNTERS as $c) {
                $totals[$c] += (int) $r->$c;
            }
            if ($now - (int) $r->timereported <= 2 * self::INTERVAL && self::running($r)) {
                $totals['pending'] += (int) $r->pending;
                $totals['queuedbytes'] += (int) $r->queuedbytes;
                $totals['liveworkers']++;
            }
            $totals['workers']++;
            $totals['lastsuccessat'] = max($totals['lastsuccessat'], (int) $r->lastsuccessat);
            // The newest error of all, at its own time (a report of an older one may be newer).
            $errorat = (int) $r->lasterrorat ?: (int) $r->timereported;
            if ($r->lasterror !== null && $r->lasterror !== '' && $errorat >= $totals['lasterrorat']) {
                $totals['lasterror'] = $r->lasterror;
                $totals['lasterrorat'] = $errorat;
            }
        }
        return $totals;
    }

    /**
     * Is the process of a report still running? Known for the processes of this machine (its pid); a process of
     * another web server is taken as running.
     *
     * @param \stdClass $row a logstore_tsdb_workers row
     * @return bool
     */
    protected static function running(\stdClass $row): bool {
        if ((string) $row->hostname !== (string) gethostname() || !function_exists('posix_kill')) {
            return true;
        }
        // Signal 0 only asks; EPERM (1) means running as another user.
        return posix_kill((int) $row->pid, 0) || posix_get_last_error() === 1;
    }

    /**
     * Per-minute history for the chart, with empty minutes as zeros.
     *
     * @param int $minutes how many minutes back
     * @param int|null $now
     * @return array ['minutes' => int[], 'written' => int[], 'failed' => int[], 'dropped' => int[]]
     */
    public static function series(int $minutes = 60, ?int $now = null): array {
        global $DB;
        $now = $now ?? time();
        $last = $now - $now % 60;
        $first = $last - ($minutes - 1) * 60;
        $rows = $DB->get_records_select('logstore_tsdb_metrics', 'timeminute >= ? AND timeminute <= ?', [$first, $last]);
        $bymin = [];
        foreach ($rows as $r) {
            $bymin[(int) $r->timeminute] = $r;
        }
        $out = ['minutes' => [], 'written' => [], 'failed' => [], 'dropped' => []];
        for ($t = $first; $t <= $last; $t += 60) {
            $out['minutes'][] = $t;
            foreach (['written', 'failed', 'dropped'] as $c) {
                $out[$c][] = isset($bymin[$t]) ? (int) $bymin[$t]->$c : 0;
            }
        }
        return $out;
    }

    /**
     * Deletes old history and workers that stopped reporting.
     *
     * @param int $now
     * @param int $keepseconds
     */
    public static function cleanup(int $now, int $keepseconds = 7 * 86400): void {
        global $DB;
        $DB->delete_records_select('logstore_tsdb_metrics', 'timeminute < ?', [$now - $keepseconds]);
        $DB->delete_records_select('logstore_tsdb_workers', 'timereported < ?', [$now - 86400]);
    }
}
