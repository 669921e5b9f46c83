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
 * Imports existing log rows into the time series database through the tsdb extension.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\import;

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\local\settings_definition;

/**
 * Streams a source (logstore_standard_log or an export of it) into the configured backend, chunk by chunk, through
 * tsdb_log_event(): the events are normalised, capped and written exactly as live events are.
 *
 * Exactly once, with the extension as it is (it gives every event its own identity at capture: producer = a random
 * number per process, seq = a counter; time = timecreated + a sub-second offset):
 *
 * 1. The state (plugin config `importstate_<hash of source and target>`) holds the key ranges × time windows already
 *    imported. Rows inside them are skipped, so running twice stores each row once, whatever the windows.
 * 2. Before a chunk is logged, the state records it as in flight: its keys in logging order, the process's producer and
 *    the sequence number of its first event (learnt from a probe event written to a temporary file). Only then are the
 *    events handed to the extension, flushed, and checked in the table (PostgreSQL: by event_id, which is exactly
 *    producer + seq). Then the chunk's range is added to the state and the in-flight record removed.
 * 3. A run that finds an in-flight chunk (the previous one was killed between 2's steps) first finds which of its
 *    events reached the table — PostgreSQL: by their event ids; InfluxDB: by content (time second, event, user,
 *    context, object, course, origin, ip), counted as a multiset — and imports only the others.
 *
 * With a future extension that accepts a caller-supplied event id and time (see docs/install.md, "Importing"), step 3
 * becomes unnecessary: re-sent rows would be skipped by the sink's own exactly-once ledger (PostgreSQL) and overwrite
 * themselves (InfluxDB).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class importer {

    /** @var string[] Integer columns. */
    const INTS = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
        'relateduserid', 'anonymous', 'timecreated', 'realuserid'];

    /** @var \stdClass plugin config */
    protected $cfg;

    /** @var source */
    protected $source;

    /** @var int|null */
    protected $from;

    /** @var int|null */
    protected $to;

    /** @var bool */
    protected $dryrun;

    /** @var bool Apply the store's filters (patterns, minimum edulevel, anonymous, IP). */
    protected $filters;

    /** @var int Rows per chunk. */
    protected $chunk;

    /** @var progress|null */
    protected $progress;

    /** @var callable|null line printer */
    protected $out;

    /** @var string */
    protected $statekey;

    /** @var array */
    protected $state;

    /** @var pgdb|null */
    protected $db = null;

    /** @var influx_client|null */
    protected $influx = null;

    /** @var string|null 16 hex digits: this process's producer */
    protected $producer = null;

    /** @var int The seq the next accepted event gets. */
    protected $nextseq = 0;

    /** @var int|null Oldest timecreated imported by this run. */
    protected $runtmin = null;

    /** @var int|null Newest timecreated imported by this run. */
    protected $runtmax = null;

    /** @var int The seq of the first event of the main part of this run (after a recovery). */
    protected $firstseq = 0;

    /** @var int|null Events older than this are refused by the sink (retention). */
    protected $expiredbefore = null;

    /** @var string|null compiled include patterns */
    protected $includere = null;

    /** @var string|null compiled exclude patterns */
    protected $excludere = null;

    /** @var array Counters of this run. */
    public $counts = [];

    /** @var int Rows read from the source in this run. */
    protected $rowsread = 0;

    /** @var float[] Seconds spent per phase: read, convert, log, flush, verify, state (where the time goes). */
    public $timings = ['read' => 0.0, 'convert' => 0.0, 'log' => 0.0, 'flush' => 0.0, 'verify' => 0.0, 'state' => 0.0];

    /** @var callable|null Test hook: called after a chunk is written and before the state says so. */
    public $afterwrite = null;

    /**
     * Constructor.
     *
     * @param \stdClass $cfg plugin config (store::read_plugin_config())
     * @param source $source
     * @param array $options from, to (unix seconds, window [from, to)), dryrun, filters (default true), chunk,
     *                       progress (a progress or null), out (callable printing a line)
     */
    public function __construct(#[\SensitiveParameter] \stdClass $cfg, source $source, array $options = []) {
        $this->cfg = $cfg;
        $this->source = $source;
        $this->from = $options['from'] ?? null;
        $this->to = array_key_exists('to', $options) ? $options['to'] : (empty($cfg->livesince) ? null : (int) $cfg->livesince);
        $this->dryrun = !empty($options['dryrun']);
        $this->filters = $options['filters'] ?? true;
        $this->chunk = max(1, min(100000, (int) ($options['chunk'] ?? 5000)));
        $this->progress = $options['progress'] ?? null;
        $this->out = $options['out'] ?? null;
        $this->statekey = self::state_key($source->descriptor(), $cfg);
        $this->state = self::load_state($this->statekey);
        $this->counts = array_fill_keys(['read', 'imported', 'skipped', 'present', 'filtered', 'expired', 'invalid',
            'refused', 'rejected'], 0);
        if ($this->filters) {
            $this->includere = \logstore_tsdb\log\store::compile_patterns((string) ($cfg->includeevents ?? ''));
            $this->excludere = \logstore_tsdb\log\store::compile_patterns((string) ($cfg->excludeevents ?? ''));
        }
        $days = (int) ($cfg->retention_days ?? 0);
        if ($days > 0 && $cfg->backend === 'postgres') {
            $cut = time() - $days * 86400;
            $this->expiredbefore = $cut - (($cut % 86400) + 86400) % 86400;
        }
    }

    /**
     * The state's config name for a source and the configured target.
     *
     * @param string $descriptor
     * @param \stdClass $cfg
     * @return string
     */
    public static function state_key(string $descriptor, #[\SensitiveParameter] \stdClass $cfg): string {
        if ($cfg->backend === 'postgres') {
            $target = "postgres://{$cfg->host}:{$cfg->port}/{$cfg->dbname}/{$cfg->schema}.{$cfg->table}";
        } else {
            $target = "{$cfg->backend}:{$cfg->url}/" . ($cfg->backend === 'influxdb2' ? $cfg->bucket : $cfg->database)
                . "/{$cfg->measurement}";
        }
        return 'importstate_' . substr(sha1($descriptor . '|' . $target), 0, 16);
    }

    /**
     * The saved state.
     *
     * @param string $key
     * @return array
     */
    public static function load_state(string $key): array {
        $json = get_config('logstore_tsdb', $key);
        $state = $json ? json_decode($json, true) : null;
        if (!is_array($state)) {
            $state = ['done' => [], 'inflight' => null, 'totals' => [], 'producers' => [], 'runs' => 0];
        }
        return $state;
    }

    /**
     * Saves the state (Moodle's config: written at once, survives the process).
     */
    protected function save_state(): void {
        $this->state['source'] = $this->source->descriptor();
        $this->state['updated'] = time();
        set_config($this->statekey, json_encode($this->state), 'logstore_tsdb');
    }

    /**
     * Forgets the state of a source (--restart): the next run imports everything again.
     */
    public function forget_state(): void {
        unset_config($this->statekey, 'logstore_tsdb');
        $this->state = self::load_state($this->statekey);
    }

    /**
     * The state (tests, --status).
     *
     * @return array
     */
    public function get_state(): array {
        return $this->state;
    }

    /**
     * Prints a line.
     *
     * @param string $line
     */
    protected function say(string $line): void {
        if ($this->out) {
            ($this->out)($line);
        }
    }

    /**
     * The window as text.
     *
     * @return string
     */
    public function window_text(): string {
        $f = function($t) {
            return $t === null ? '…' : gmdate('Y-m-d H:i:s', $t) . ' UTC';
        };
        return '[' . $f($this->from) . ', ' . $f($this->to) . ')';
    }

    /**
     * Is (key, time) inside a done rectangle?
     *
     * @param int $key
     * @param int|null $t
     * @return bool
     */
    protected function is_done(int $key, ?int $t): bool {
        foreach ($this->state['done'] as [$k1, $k2, $t1, $t2]) {
            if ($key >= $k1 && $key <= $k2 && $t !== null && ($t1 === null || $t >= $t1) && ($t2 === null || $t < $t2)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Where to start: the end of the covered prefix for this window (rectangles whose window contains it).
     *
     * @return array [key, offset]
     */
    protected function start_position(): array {
        $key = 0;
        $offset = 0;
        $rects = $this->state['done'];
        usort($rects, function($a, $b) {
            return $a[0] <=> $b[0];
        });
        foreach ($rects as $r) {
            [$k1, $k2, $t1, $t2] = $r;
            $contains = ($t1 === null || ($this->from !== null && $this->from >= $t1))
                && ($t2 === null || ($this->to !== null && $this->to <= $t2));
            if ($contains && $k1 <= $key + 1 && $k2 > $key) {
                $key = $k2;
                $offset = (int) ($r[4] ?? 0);
            }
        }
        return [$key, $offset];
    }

    /**
     * Adds a processed key range for the current window, merged with an adjacent one of the same window.
     *
     * @param int $k1
     * @param int $k2
     * @param int $offset byte offset after $k2 (files)
     */
    protected function add_done(int $k1, int $k2, int $offset): void {
        foreach ($this->state['done'] as $i => $r) {
            if ($r[2] === $this->from && $r[3] === $this->to && $r[1] + 1 >= $k1 && $r[0] <= $k1) {
                $this->state['done'][$i][1] = max($r[1], $k2);
                $this->state['done'][$i][4] = $k2 >= $r[1] ? $offset : ($r[4] ?? 0);
                return;
            }
        }
        $this->state['done'][] = [$k1, $k2, $this->from, $this->to, $offset];
    }

    /**
     * A source row as the event array the extension takes (what the live store would have captured), or null when
     * the row cannot be an event (no eventname or timecreated).
     *
     * @param array $row
     * @return array|null
     */
    public static function entry_from_row(array $row): ?array {
        $e = [];
        foreach (source::COLUMNS as $col) {
            $v = $row[$col] ?? null;
            if (in_array($col, self::INTS, true)) {
                if ($v === null || $v === '') {
                    $v = null;
                } else if (is_numeric($v) && preg_match('/^\s*[+-]?[0-9]+\s*$/', (string) $v)) {
                    $v = (int) $v;
                } else {
                    return null;
                }
            } else if ($col === 'other') {
                $v = self::other_value($v);
            } else if ($v !== null) {
                $v = (string) $v;
            }
            $e[$col] = $v;
        }
        if ($e['eventname'] === null || $e['eventname'] === '' || $e['timecreated'] === null) {
            return null;
        }
        return $e;
    }

    /**
     * `other` of the standard store (JSON, or serialize() when its jsonformat setting was off) as the value the
     * live store passes: an array or null; anything else is kept as a JSON string holding the original text.
     *
     * @param string|null $text
     * @return array|string|null
     */
    public static function other_value(?string $text) {
        if ($text === null || $text === '' || $text === 'N;' || $text === 'null') {
            return null;
        }
        $decoded = \logstore_tsdb\log\store::decode_other($text);
        if (is_object($decoded)) {
            $decoded = json_decode(json_encode($decoded), true);
        }
        if (is_array($decoded)) {
            $decoded = json_decode(json_encode($decoded, JSON_PARTIAL_OUTPUT_ON_ERROR), true);
            if (is_array($decoded) && self::depth($decoded) <= 30) {
                return $decoded;
            }
        }
        if ($decoded === null && $text !== 'null') {
            return json_encode($text);
        }
        // A scalar: store its JSON.
        return is_array($decoded) ? json_encode($text) : json_encode($decoded);
    }

    /**
     * Nesting depth of an array.
     *
     * @param array $a
     * @return int
     */
    protected static function depth(array $a): int {
        $max = 0;
        foreach ($a as $v) {
            if (is_array($v)) {
                $max = max($max, self::depth($v));
            }
        }
        return $max + 1;
    }

    /**
     * Does the entry pass the store's filters (unless --no-filters)? Also applies the IP setting and pseudonyms
     * (InfluxDB), always.
     *
     * @param array $e entry (modified)
     * @return string|null null to import, or why it is left out: filtered, expired
     */
    protected function prepare(array &$e): ?string {
        if ($this->expiredbefore !== null && $e['timecreated'] < $this->expiredbefore) {
            return 'expired';
        }
        $cfg = $this->cfg;
        if ($this->filters) {
            if ((int) $e['edulevel'] < (int) ($cfg->minedulevel ?? 0)) {
                return 'filtered';
            }
            if (!empty($cfg->skipanonymous) && !empty($e['anonymous'])) {
                return 'filtered';
            }
            foreach ([[$this->excludere, true], [$this->includere, false]] as [$re, $exclude]) {
                if ($re === null) {
                    continue;
                }
                $match = preg_match($re, (string) $e['eventname']) === 1 || preg_match($re, (string) $e['component']) === 1;
                if ($match === $exclude) {
                    return 'filtered';
                }
            }
        }
        // The privacy settings apply even with --no-filters.
        if (isset($cfg->logip) && !$cfg->logip) {
            $e['ip'] = '';
        }
        if (strpos($cfg->backend, 'influxdb') === 0 && (!isset($cfg->pseudonymise) || $cfg->pseudonymise)) {
            foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                if (!empty($e[$f])) {
                    $e[$f] = pseudonym::get((int) $e[$f]);
                }
            }
        }
        return null;
    }

    /**
     * The extension's configuration for the import process: the plugin's, in async mode and without a spool (a
     * replay could deliver an interrupted chunk's events after the next run re-imported them; a failed chunk is
     * reported and imported again by the next run instead).
     *
     * @return array
     */
    protected function extension_config(): array {
        $cfg = clone $this->cfg;
        $cfg->mode = 'async';
        $cfg->spool_dir = '';
        $config = settings_definition::extension_config($cfg);
        $config['batch_size'] = max($this->chunk, 1000);
        $config['memory_limit_bytes'] = max((int) $config['memory_limit_bytes'], 268435456);
        return $config;
    }

    /**
     * Learns this process's producer and next sequence number from a probe event written to a temporary file
     * (the file backend's JSON lines carry event_id = producer and seq), then configures the real backend.
     */
    protected function start_extension(): void {
        if (!function_exists('tsdb_log_event')) {
            throw new \moodle_exception('importnoextension', 'logstore_tsdb');
        }
        $path = tempnam(sys_get_temp_dir(), 'tsdb-import-probe-');
        try {
            tsdb_configure(['backend' => 'file', 'format' => 'json', 'path' => $path, 'mode' => 'async']);
            tsdb_log_event(['eventname' => '\\logstore_tsdb\\event\\import_probe', 'timecreated' => time()]);
            tsdb_flush(10000);
            $lines = file($path, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES);
            $probe = json_decode((string) end($lines), true);
            $hex = str_replace('-', '', (string) ($probe['event_id'] ?? ''));
            if (!preg_match('/^[0-9a-f]{32}$/', $hex)) {
                throw new \moodle_exception('importprobe', 'logstore_tsdb', '', (string) end($lines));
            }
            $this->producer = substr($hex, 0, 16);
            $this->nextseq = (int) hexdec(substr($hex, 16)) + 1;
        } finally {
            @unlink($path);
        }
        tsdb_configure($this->extension_config());
        \logstore_tsdb\local\extension::reset_for_tests();
        if (!in_array($this->producer, $this->state['producers'], true)) {
            $this->state['producers'][] = $this->producer;
        }
    }

    /**
     * The event_id (uuid text) of a producer and seq.
     *
     * @param string $producer 16 hex digits
     * @param int $seq
     * @return string
     */
    public static function uuid(string $producer, int $seq): string {
        $h = $producer . sprintf('%016x', $seq);
        return substr($h, 0, 8) . '-' . substr($h, 8, 4) . '-' . substr($h, 12, 4) . '-' . substr($h, 16, 4) . '-'
            . substr($h, 20);
    }

    /**
     * Key ranges of a list of keys in order: [[first, last], ...] (consecutive keys merged).
     *
     * @param int[] $keys
     * @return array
     */
    public static function ranges(array $keys): array {
        $out = [];
        foreach ($keys as $k) {
            $n = count($out);
            if ($n && $out[$n - 1][1] + 1 === $k) {
                $out[$n - 1][1] = $k;
            } else {
                $out[] = [$k, $k];
            }
        }
        return $out;
    }

    /**
     * Keys of ranges.
     *
     * @param array $ranges
     * @return int[]
     */
    public static function expand(array $ranges): array {
        $out = [];
        foreach ($ranges as [$a, $b]) {
            for ($k = $a; $k <= $b; $k++) {
                $out[] = $k;
            }
        }
        return $out;
    }

    /**
     * The PostgreSQL connection to the target.
     *
     * @return pgdb
     */
    protected function db(): pgdb {
        if ($this->db === null) {
            $this->db = pgdb::from_config($this->cfg, 'logstore_tsdb_import');
        }
        return $this->db;
    }

    /**
     * The InfluxDB client of the target.
     *
     * @return influx_client
     */
    protected function influx(): influx_client {
        if ($this->influx === null) {
            $this->influx = new influx_client($this->cfg);
        }
        return $this->influx;
    }

    /**
     * Runs the import.
     *
     * @return array report: counts, window, checks (name => [ok, text]), ok
     */
    public function run(): array {
        $backend = (string) $this->cfg->backend;
        if ($backend !== 'postgres' && strpos($backend, 'influxdb') !== 0) {
            throw new \moodle_exception('importbackend', 'logstore_tsdb', '', $backend);
        }
        $lock = $this->lock();
        try {
            $this->say('Source: ' . $this->source->name());
            $this->say('Window: ' . $this->window_text());
            $recovered = null;
            if (!$this->dryrun) {
                $this->start_extension();
                $this->state['runs']++;
                $this->save_state();
                if (!empty($this->state['inflight'])) {
                    $this->recover();
                    $recovered = $this->counts;
                    $this->counts = array_fill_keys(array_keys($this->counts), 0);
                    $this->rowsread = 0;
                }
            }
            [$key, $offset] = $this->start_position();
            $startkey = $key;
            $this->firstseq = $this->nextseq;
            $total = $this->source instanceof db_source ? $this->source->count($this->from, $this->to, $key) : null;
            $size = $this->source instanceof file_source ? $this->source->size() : null;
            // Pipelined: chunk k+1 is read and prepared while the extension writes chunk k; chunk k is finished (and
            // recorded) before chunk k+1 is handed to the extension, so at most one chunk is ever in flight.
            $writing = null;
            while (true) {
                $t = microtime(true);
                $batch = $this->source->read($key, $offset, $this->chunk, $this->from, $this->to);
                $this->timings['read'] += microtime(true) - $t;
                if (!$batch['rows']) {
                    break;
                }
                $next = $this->prepare_chunk($batch['rows'], $key, $offset);
                if ($writing !== null) {
                    $this->finish_chunk($writing);
                }
                $this->start_chunk($next);
                $writing = $next;
                $last = end($batch['rows']);
                [$key, $offset] = [$last[0], $last[2]];
                if ($this->progress) {
                    $done = $total !== null ? $this->rowsread : $offset;
                    $this->progress->update($done, $total ?? $size, $this->rowsread,
                        $total !== null ? 'rows' : ($this->source instanceof file_source && $size !== null ? 'bytes' : 'rows'));
                }
                if ($batch['end']) {
                    break;
                }
            }
            if ($writing !== null) {
                $this->finish_chunk($writing);
            }
            if ($this->progress) {
                $this->progress->update($total !== null ? $this->rowsread : (int) $size, $total ?? $size, $this->rowsread,
                    $total !== null ? 'rows' : 'bytes', true);
                $this->progress->finish();
            }
            $report = $this->report($startkey, $key);
            $report['recovered'] = $recovered;
            if (!$this->dryrun && $this->cfg->backend === 'postgres' && $this->runtmin !== null) {
                // Summary buckets already materialised for the imported period are recomputed (plain PostgreSQL).
                (new \logstore_tsdb\local\summary($this->db(), $this->cfg))->invalidate($this->runtmin, $this->runtmax + 1);
            }
            return $report;
        } finally {
            if ($lock) {
                flock($lock, LOCK_UN);
                fclose($lock);
            }
            $this->source->close();
            if ($this->db) {
                $this->db->close();
                $this->db = null;
            }
        }
    }

    /**
     * One import at a time per source and target (a lock file in dataroot).
     *
     * @return resource|null
     */
    protected function lock() {
        global $CFG;
        $dir = rtrim($CFG->dataroot, '/') . '/logstore_tsdb';
        @mkdir($dir, 0700, true);
        $fh = @fopen($dir . '/' . $this->statekey . '.lock', 'c');
        if (!$fh) {
            return null;
        }
        if (!flock($fh, LOCK_EX | LOCK_NB)) {
            fclose($fh);
            throw new \moodle_exception('importrunning', 'logstore_tsdb');
        }
        return $fh;
    }

    /**
     * Imports one chunk of source rows (all in the window, keys after $afterkey): prepare, write, finish.
     *
     * @param array $rows [[key, row, offset after], ...]
     * @param int $afterkey key before the first row (the chunk covers (afterkey, last key])
     * @param int $offsetbefore
     * @param array $present keys already in the target (recovery): key => true
     */
    protected function process(array $rows, int $afterkey, int $offsetbefore, array $present = []): void {
        $chunk = $this->prepare_chunk($rows, $afterkey, $offsetbefore, $present);
        $this->start_chunk($chunk);
        $this->finish_chunk($chunk);
    }

    /**
     * Turns source rows into the events to write (skipping rows already imported or left out, and counting them).
     *
     * @param array $rows
     * @param int $afterkey
     * @param int $offsetbefore
     * @param array $present
     * @return array the chunk: entries, keys, tmin, tmax, range, present
     */
    protected function prepare_chunk(array $rows, int $afterkey, int $offsetbefore, array $present = []): array {
        $entries = [];
        $keys = [];
        $tmin = null;
        $tmax = null;
        $t0 = microtime(true);
        foreach ($rows as [$k, $row]) {
            $this->rowsread++;
            $this->counts['read']++;
            $t = isset($row['timecreated']) && is_numeric($row['timecreated']) ? (int) $row['timecreated'] : null;
            if ($this->is_done($k, $t)) {
                $this->counts['skipped']++;
                continue;
            }
            if (isset($present[$k])) {
                $this->counts['present']++;
                continue;
            }
            $e = self::entry_from_row($row);
            if ($e === null) {
                $this->counts['invalid']++;
                continue;
            }
            $why = $this->prepare($e);
            if ($why !== null) {
                $this->counts[$why]++;
                continue;
            }
            $entries[] = $e;
            $keys[] = $k;
            $tmin = $tmin === null ? $e['timecreated'] : min($tmin, $e['timecreated']);
            $tmax = $tmax === null ? $e['timecreated'] : max($tmax, $e['timecreated']);
        }
        $last = end($rows);
        $this->timings['convert'] += microtime(true) - $t0;
        $knownpresent = array_keys($present);
        sort($knownpresent);
        return ['entries' => $entries, 'keys' => $keys, 'tmin' => $tmin, 'tmax' => $tmax, 'first' => $afterkey + 1,
            'last' => $last[0], 'offsetbefore' => $offsetbefore, 'offsetafter' => (int) $last[2], 'present' => $knownpresent,
            'accepted' => [], 'before' => null];
    }

    /**
     * Records the chunk as in flight, then hands its events to the extension (whose flush thread starts writing them
     * while the caller prepares the next chunk).
     *
     * @param array $chunk from prepare_chunk(), updated
     */
    protected function start_chunk(array &$chunk): void {
        if ($this->dryrun) {
            $this->counts['imported'] += count($chunk['entries']);
            return;
        }
        if (!$chunk['entries']) {
            return;
        }
        $keys = $chunk['keys'];
        $this->state['inflight'] = ['first' => $chunk['first'], 'last' => $chunk['last'],
            'offsetbefore' => $chunk['offsetbefore'], 'offsetafter' => $chunk['offsetafter'], 'producer' => $this->producer,
            'firstseq' => $this->nextseq, 'keys' => self::ranges($keys), 'present' => self::ranges($chunk['present']),
            'tmin' => $chunk['tmin'], 'tmax' => $chunk['tmax'], 'from' => $this->from, 'to' => $this->to];
        $t0 = microtime(true);
        $this->save_state();
        $this->timings['state'] += microtime(true) - $t0;
        $t0 = microtime(true);
        $chunk['before'] = tsdb_stats();
        $accepted = [];
        foreach ($chunk['entries'] as $i => $e) {
            try {
                while (!tsdb_log_event($e)) {
                    tsdb_flush(30000);
                }
                $accepted[] = $keys[$i];
                $this->nextseq++;
            } catch (\ValueError | \TypeError $ex) {
                $this->counts['refused']++;
                $this->say("Row {$keys[$i]} refused by the extension: " . $ex->getMessage());
                // Record at once which keys the sequence numbers belong to, before any later event is logged.
                $this->state['inflight']['keys'] = self::ranges(array_merge($accepted, array_slice($keys, $i + 1)));
                $this->save_state();
            }
        }
        $chunk['accepted'] = $accepted;
        $this->timings['log'] += microtime(true) - $t0;
    }

    /**
     * Waits until the chunk is written, checks it is in the target (PostgreSQL: every event by its event id), and
     * records it as imported.
     *
     * @param array $chunk
     */
    protected function finish_chunk(array $chunk): void {
        if ($this->dryrun) {
            return;
        }
        if ($chunk['entries']) {
            $accepted = $chunk['accepted'];
            $before = $chunk['before'];
            $t0 = microtime(true);
            $pending = tsdb_flush(max(60000, (int) ($this->cfg->retry_max_elapsed_ms ?? 0) + 10000));
            $this->timings['flush'] += microtime(true) - $t0;
            $t0 = microtime(true);
            $after = tsdb_stats();
            if ($pending > 0 || (int) $after['failed'] > (int) $before['failed']) {
                throw new \moodle_exception('importwritefailed', 'logstore_tsdb', '', (string) $after['last_error']);
            }
            $rejected = (int) $after['rejected'] - (int) $before['rejected'];
            $written = count($accepted) - $rejected;
            if ($this->cfg->backend === 'postgres') {
                $found = $this->present_in_postgres($this->state['inflight'], $accepted, $chunk['entries'], $chunk['keys']);
                if (count($found) + $rejected !== count($accepted)) {
                    throw new \moodle_exception('importverifyfailed', 'logstore_tsdb', '',
                        count($accepted) . ' events logged, ' . count($found) . ' found in the table, ' . $rejected
                        . ' rejected by the sink');
                }
                $written = count($found);
            }
            $this->timings['verify'] += microtime(true) - $t0;
            if ($this->afterwrite) {
                ($this->afterwrite)($this);
            }
            $this->counts['imported'] += $written;
            $this->counts['rejected'] += $rejected;
            $this->runtmin = $this->runtmin === null ? $chunk['tmin'] : min($this->runtmin, $chunk['tmin']);
            $this->runtmax = $this->runtmax === null ? $chunk['tmax'] : max($this->runtmax, $chunk['tmax']);
            $this->state['totals']['imported'] = ($this->state['totals']['imported'] ?? 0) + $written;
            $this->state['totals']['rejected'] = ($this->state['totals']['rejected'] ?? 0) + $rejected;
        }
        $t0 = microtime(true);
        $this->add_done($chunk['first'], $chunk['last'], $chunk['offsetafter']);
        $this->state['inflight'] = null;
        $this->save_state();
        $this->timings['state'] += microtime(true) - $t0;
    }

    /**
     * Which keys of an in-flight chunk are in the PostgreSQL table, by event_id (producer + seq), checking that each
     * found row is the event it should be (same timecreated; and event names, in the aggregate check).
     *
     * @param array $inflight
     * @param int[] $keys keys in logging order
     * @param array[]|null $entries the entries of those keys (to check the content), null to skip the check
     * @param int[]|null $entrykeys keys of $entries
     * @return array key => true
     */
    protected function present_in_postgres(array $inflight, array $keys, ?array $entries = null, ?array $entrykeys = null): array {
        if (!$keys) {
            return [];
        }
        $byuuid = [];
        foreach (array_values($keys) as $i => $k) {
            $byuuid[self::uuid($inflight['producer'], $inflight['firstseq'] + $i)] = $k;
        }
        $db = $this->db();
        // The chunk's event ids are one producer's consecutive sequence numbers: one range of the unique index.
        $params = [self::uuid($inflight['producer'], (int) $inflight['firstseq']),
            self::uuid($inflight['producer'], (int) $inflight['firstseq'] + count($keys) - 1),
            (int) $inflight['tmin'], (int) $inflight['tmax'] + 1];
        $p = $db->uses_pdo() ? ['?', '?', '?', '?'] : ['$1', '$2', '$3', '$4'];
        $where = " WHERE event_id BETWEEN {$p[0]}::uuid AND {$p[1]}::uuid AND \"time\" >= to_timestamp({$p[2]}::bigint)"
            . " AND \"time\" < to_timestamp({$p[3]}::bigint)";
        if ($entries !== null) {
            // Usually every event is there: one row of aggregates checks the count and the content (timecreated and
            // event name of each event id) without transferring the rows.
            $keyset = array_flip($keys);
            $sum = 0;
            $md5 = 0;
            foreach ($entrykeys as $i => $k) {
                if (isset($keyset[$k])) {
                    $sum += (int) $entries[$i]['timecreated'];
                    $md5 += (int) hexdec(substr(md5($entries[$i]['eventname']), 0, 8));
                }
            }
            $agg = $db->query_native('SELECT count(*) AS n, COALESCE(sum(timecreated), 0) AS t, '
                . "COALESCE(sum(('x' || substr(md5(eventname), 1, 8))::bit(32)::bigint), 0) AS h FROM " . $db->table()
                . $where, $params)[0];
            if ((int) $agg->n === count($keys) && (int) $agg->t === $sum && (string) $agg->h === (string) $md5) {
                return array_fill_keys($keys, true);
            }
        }
        $rows = $db->query_native('SELECT event_id::text AS e, timecreated FROM ' . $db->table() . $where, $params);
        $want = [];
        if ($entries !== null) {
            foreach ($entrykeys as $i => $k) {
                $want[$k] = $entries[$i];
            }
        }
        $found = [];
        foreach ($rows as $r) {
            if (!isset($byuuid[$r->e])) {
                continue;
            }
            $k = $byuuid[$r->e];
            // The second of each event must match (an event name may have been cut or scrubbed by the extension).
            if (isset($want[$k]) && (int) $r->timecreated !== (int) $want[$k]['timecreated']) {
                throw new \moodle_exception('importverifyfailed', 'logstore_tsdb', '', "event {$r->e} is not row $k:"
                    . ' another event was logged by this process during the import');
            }
            $found[$k] = true;
        }
        return $found;
    }

    /**
     * Finishes the chunk a previous run left in flight: imports only its rows that did not reach the target.
     */
    protected function recover(): void {
        $inflight = $this->state['inflight'];
        $keys = self::expand($inflight['keys']);
        [$savedfrom, $savedto] = [$this->from, $this->to];
        [$this->from, $this->to] = [$inflight['from'], $inflight['to']];
        try {
            $rows = [];
            $key = $inflight['first'] - 1;
            $offset = (int) $inflight['offsetbefore'];
            while ($key < $inflight['last']) {
                $batch = $this->source->read($key, $offset, $this->chunk, $this->from, $this->to);
                foreach ($batch['rows'] as $r) {
                    if ($r[0] <= $inflight['last']) {
                        $rows[] = $r;
                    }
                }
                if (!$batch['rows'] || $batch['end']) {
                    break;
                }
                $lastrow = end($batch['rows']);
                [$key, $offset] = [$lastrow[0], $lastrow[2]];
            }
            if ($this->cfg->backend === 'postgres') {
                $present = $this->present_in_postgres($inflight, $keys);
            } else {
                $present = $this->present_in_influx($inflight, $keys, $rows);
            }
            $newlyfound = count($present);
            // Keys an earlier recovery of this chunk had already found in the target.
            foreach (self::expand($inflight['present'] ?? []) as $k) {
                $present[$k] = true;
            }
            $this->say('Resuming an interrupted chunk (keys ' . $inflight['first'] . '-' . $inflight['last'] . '): '
                . $newlyfound . ' of its ' . count($keys) . ' events had reached the target.');
            $this->state['totals']['imported'] = ($this->state['totals']['imported'] ?? 0) + $newlyfound;
            if ($rows) {
                $this->process($rows, $inflight['first'] - 1, (int) $inflight['offsetbefore'], $present);
            } else {
                $this->add_done($inflight['first'], $inflight['last'], (int) $inflight['offsetafter']);
                $this->state['inflight'] = null;
                $this->save_state();
            }
        } finally {
            [$this->from, $this->to] = [$savedfrom, $savedto];
        }
    }

    /**
     * The content of an event as InfluxDB keeps it (for matching an interrupted chunk's events with the points).
     *
     * @param array $e entry (pseudonymised) or point (InfluxQL row)
     * @param bool $point
     * @return string
     */
    protected static function fingerprint(array $e, bool $point): string {
        $t = $point ? intdiv((int) $e['time'], 1000000000) : (int) $e['timecreated'];
        $parts = [$t];
        foreach (['eventname', 'userid', 'contextid', 'objectid', 'courseid', 'relateduserid', 'realuserid', 'crud',
                'anonymous', 'origin', 'ip'] as $f) {
            $v = $e[$f] ?? null;
            $parts[] = ($v === null || $v === '') ? '' : (string) $v;
        }
        return implode("\x1f", $parts);
    }

    /**
     * Which keys of an in-flight chunk have a matching point in InfluxDB (multiset of fingerprints over the chunk's time
     * range: each point accounts for one event).
     *
     * @param array $inflight
     * @param int[] $keys
     * @param array $rows the chunk's source rows
     * @return array key => true
     */
    protected function present_in_influx(array $inflight, array $keys, array $rows): array {
        $client = $this->influx();
        $points = $client->query('SELECT * FROM ' . $client->measurement() . ' WHERE time >= ' . ((int) $inflight['tmin'])
            . '000000000 AND time < ' . ((int) $inflight['tmax'] + 1) . '000000000');
        $have = [];
        foreach ($points as $p) {
            $fp = self::fingerprint($p, true);
            $have[$fp] = ($have[$fp] ?? 0) + 1;
        }
        $byk = [];
        foreach ($rows as [$k, $row]) {
            $byk[$k] = $row;
        }
        $present = [];
        foreach ($keys as $k) {
            if (!isset($byk[$k]) || !($e = self::entry_from_row($byk[$k]))) {
                continue;
            }
            $this->prepare($e);
            $fp = self::fingerprint($e, false);
            if (!empty($have[$fp])) {
                $have[$fp]--;
                $present[$k] = true;
            }
        }
        return $present;
    }

    /**
     * The final report and count checks.
     *
     * @param int $startkey
     * @param int $endkey
     * @return array
     */
    protected function report(int $startkey, int $endkey): array {
        $c = $this->counts;
        $checks = [];
        $accounted = $c['imported'] + $c['skipped'] + $c['present'] + $c['filtered'] + $c['expired'] + $c['invalid']
            + $c['refused'] + $c['rejected'];
        $source = $this->source->count($this->from, $this->to, $startkey, $endkey);
        if ($source !== null && $endkey > $startkey) {
            $checks['source'] = [$source === $c['read'] && $c['read'] === $accounted,
                "source rows in the window read by this run: $source; read: {$c['read']}; accounted for: $accounted"];
        }
        if (!$this->dryrun && $this->cfg->backend === 'postgres' && $this->producer !== null) {
            // The event ids of this run: this process's producer, the sequence numbers from the first to the last chunk.
            $db = $this->db();
            $p = $db->uses_pdo() ? ['?', '?'] : ['$1', '$2'];
            $n = (int) $db->query_native('SELECT count(*) AS n FROM ' . $db->table()
                . " WHERE event_id BETWEEN {$p[0]}::uuid AND {$p[1]}::uuid",
                [self::uuid($this->producer, $this->firstseq), self::uuid($this->producer, max(0, $this->nextseq - 1))])[0]->n;
            $checks['target'] = [$n === $c['imported'],
                "rows this run wrote to the table (by event id): $n; imported: {$c['imported']}"];
        }
        $ok = true;
        foreach ($checks as $check) {
            $ok = $ok && $check[0];
        }
        return ['counts' => $c, 'window' => $this->window_text(), 'checks' => $checks, 'ok' => $ok,
            'timings' => array_map(function($v) {
                return round($v, 3);
            }, $this->timings),
            'seconds' => $this->progress ? $this->progress->elapsed() : null, 'state' => $this->state];
    }
}
