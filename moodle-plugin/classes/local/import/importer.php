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

use logstore_tsdb\local\extension;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\pseudonym;

/**
 * Glue between a source (logstore_standard_log or an export of it) and tsdb_import(), which does the work: chunks of
 * rows are read in id order and handed over whole; the extension applies the store's filters, IP setting and
 * pseudonyms, converts `other`, and writes the events synchronously with an identity of their own (producer = hash of
 * the source, seq = row id, time = timecreated + id mod 10⁹ ns).
 *
 * Exactly once without any recovery: a row sent again is skipped by the PostgreSQL ledger and overwrites the same
 * point in InfluxDB. The position (the last id of the last chunk written, per time window and filters) is saved in the
 * plugin's config (`importstate_<hash of source and target>`) after each chunk; a run killed at any point resumes from
 * it and sends the chunk that was being written again, harmlessly.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class importer {

    /** @var int Default rows per chunk. */
    const CHUNK = 20000;

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

    /** @var bool Apply the store's filters. */
    protected $filters;

    /** @var int Rows per chunk. */
    protected $chunk;

    /** @var string|null The identity of the rows' origin, instead of the source's own. */
    protected $identity;

    /** @var progress|null */
    protected $progress;

    /** @var callable|null line printer */
    protected $out;

    /** @var string */
    protected $statekey;

    /** @var array */
    protected $state;

    /** @var int[]|null userid => pseudonym, with pseudonymisation (InfluxDB) */
    protected $pseudonyms = null;

    /** @var int|null The imported events' producer (as PostgreSQL's bigint), from tsdb_import(). */
    protected $producer = null;

    /** @var array [min, max] timecreated of the events written by this run. */
    protected $times = [null, null];

    /** @var int Byte offset after the last chunk finished (files: the progress). */
    protected $lastoffset = 0;

    /** @var array Counters of this run. */
    public $counts = [];

    /** @var float[] Seconds spent reading the source and in tsdb_import() (where the time goes). */
    public $timings = ['read' => 0.0, 'import' => 0.0, 'state' => 0.0];

    /** @var callable|null Test hook: called after a chunk is written and before its position is saved. */
    public $afterwrite = null;

    /**
     * Constructor.
     *
     * @param \stdClass $cfg plugin config (store::read_plugin_config())
     * @param source $source
     * @param array $options from, to (unix seconds, window [from, to); `to` defaults to livesince), dryrun,
     *                       filters (default true), chunk, identity, progress (a progress or null), out (callable
     *                       printing a line)
     */
    public function __construct(#[\SensitiveParameter] \stdClass $cfg, source $source, array $options = []) {
        $this->cfg = $cfg;
        $this->source = $source;
        $this->from = $options['from'] ?? null;
        $this->to = array_key_exists('to', $options) ? $options['to'] : (empty($cfg->livesince) ? null : (int) $cfg->livesince);
        $this->dryrun = !empty($options['dryrun']);
        $this->filters = $options['filters'] ?? true;
        $this->chunk = max(1, min(200000, (int) ($options['chunk'] ?? self::CHUNK)));
        $this->identity = $options['identity'] ?? null;
        $this->progress = $options['progress'] ?? null;
        $this->out = $options['out'] ?? null;
        $this->statekey = self::state_key($source->descriptor(), $cfg);
        $this->state = self::load_state($this->statekey);
        $this->counts = array_fill_keys(['read', 'imported', 'rejected', 'filtered', 'outside', 'invalid', 'truncated',
            'unserialized', 'converted'], 0);
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
     * The saved state: positions (window and filters => [last id, byte offset]), totals, runs; `legacy`: the id
     * ranges × windows the plugin's previous importer recorded as done (its rows carry another identity: they are
     * left out).
     *
     * @param string $key
     * @return array
     */
    public static function load_state(string $key): array {
        $json = get_config('logstore_tsdb', $key);
        $state = $json ? json_decode($json, true) : null;
        $state = is_array($state) ? $state : [];
        if (!isset($state['version'])) {
            // The previous importer's state: its done ranges become exclusions, its in-flight chunk is sent again.
            $legacy = array_map(function($r) {
                return array_slice($r, 0, 4);
            }, $state['done'] ?? []);
            $state = ['version' => 2, 'positions' => [], 'totals' => $state['totals'] ?? [], 'runs' => $state['runs'] ?? 0,
                'legacy' => $legacy, 'legacyinflight' => $state['inflight'] ?? null];
        }
        return $state;
    }

    /**
     * Saves the state (Moodle's config: written at once, survives the process).
     */
    protected function save_state(): void {
        $t0 = microtime(true);
        $this->state['source'] = $this->source->descriptor();
        $this->state['updated'] = time();
        set_config($this->statekey, json_encode($this->state), 'logstore_tsdb');
        $this->timings['state'] += microtime(true) - $t0;
    }

    /**
     * Forgets the positions (--restart): the next run reads the source again from the start. Rows already imported
     * are not stored twice (the previous importer's done ranges stay excluded).
     */
    public function forget_state(): void {
        $this->state['positions'] = [];
        $this->state['totals'] = [];
        $this->save_state();
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
     * The store's filters as tsdb_import() takes them (null: --no-filters).
     *
     * @return array|null
     */
    protected function filter_options(): ?array {
        if (!$this->filters) {
            return null;
        }
        return ['include' => (string) ($this->cfg->includeevents ?? ''), 'exclude' => (string) ($this->cfg->excludeevents ?? ''),
            'minedulevel' => (int) ($this->cfg->minedulevel ?? 0), 'skipanonymous' => !empty($this->cfg->skipanonymous)];
    }

    /**
     * The name of this run's position: its window and filters (another window or other filters start from the
     * beginning; what is already there is not stored twice).
     *
     * @return string
     */
    public function position_key(): string {
        return ($this->from ?? '') . '/' . ($this->to ?? '') . '/' . substr(sha1(json_encode($this->filter_options())), 0, 8);
    }

    /**
     * The position of this window and these filters.
     *
     * @return int[] [last id, byte offset]
     */
    protected function position(): array {
        return $this->state['positions'][$this->position_key()] ?? [0, 0];
    }

    /**
     * Runs the import.
     *
     * @return array report: counts, window, checks (name => [ok, text]), ok, seconds, timings
     */
    public function run(): array {
        if (!function_exists('tsdb_import')) {
            // An extension of a release before tsdb_import() is not the same problem as none at all.
            if (extension_loaded('tsdb')) {
                throw new \moodle_exception('importoldextension', 'logstore_tsdb', '',
                    function_exists('tsdb_version') ? tsdb_version() : '?');
            }
            throw new \moodle_exception('importnoextension', 'logstore_tsdb');
        }
        $lock = $this->lock();
        try {
            // A chunk another importer of this process left in the background (it stopped with an exception) is
            // finished first, and its report dropped: its position was not saved, so it is sent again, harmlessly.
            tsdb_import([], ['source' => '-', 'async' => true]);
            return $this->import();
        } finally {
            tsdb_import([], ['source' => '-', 'async' => true]);
            if ($lock) {
                flock($lock, LOCK_UN);
                fclose($lock);
            }
            $this->source->close();
        }
    }

    /**
     * The import itself.
     *
     * @return array
     */
    protected function import(): array {
        // The store's configuration, as the live store pushes it (php.ini when Configuration source says so).
        if (!extension::ensure_configured($this->cfg)) {
            throw new \moodle_exception('importwritefailed', 'logstore_tsdb', '', (string) extension::config_error());
        }
        $started = microtime(true);
        $this->say('Source: ' . $this->source->name());
        $this->say('Window: ' . $this->window_text());
        if (!empty($this->state['legacyinflight'])) {
            $f = $this->state['legacyinflight'];
            $this->say("Note: an import by the plugin's previous version was stopped while it wrote the rows with keys "
                . "{$f['first']}-{$f['last']}; those are imported again (some of them may then be there twice).");
        }
        if (!$this->dryrun) {
            $this->state['runs'] = ($this->state['runs'] ?? 0) + 1;
            $this->state['legacyinflight'] = null;
            $this->save_state();
        }
        $this->source->set_exclusions($this->state['legacy'] ?? []);
        if ($this->source instanceof db_source) {
            $this->source->set_window($this->from, $this->to);
        }
        [$lastid, $offset] = $this->position();
        $startid = $lastid;
        $total = $this->source->count_after($lastid);
        $size = $this->source instanceof file_source ? $this->source->size() : null;
        $options = ['source' => $this->identity ?? $this->source->identity(), 'from' => $this->from, 'to' => $this->to,
            'filters' => $this->filter_options(), 'logip' => !isset($this->cfg->logip) || (bool) $this->cfg->logip,
            'dry_run' => $this->dryrun, 'batch_size' => $this->chunk];
        $pseudonymise = strpos((string) $this->cfg->backend, 'influxdb') === 0
            && (!isset($this->cfg->pseudonymise) || $this->cfg->pseudonymise);
        if ($pseudonymise) {
            $this->pseudonyms = [];
        }
        $this->producer = null;
        $this->times = [null, null];
        // Chunk k + 1 is read while the extension writes chunk k in the background (`async`); a chunk's position is
        // saved once it is written.
        $queued = [];
        $progress = function() use ($total, $size) {
            if ($this->progress) {
                $this->progress->update($total !== null ? $this->counts['read'] : $this->lastoffset, $total ?? $size,
                    $this->counts['read'], $total !== null ? 'rows' : 'bytes');
            }
        };
        while (true) {
            $t0 = microtime(true);
            $batch = $this->source->read($lastid, $offset, $this->chunk);
            $this->timings['read'] += microtime(true) - $t0;
            if (!$batch['rows']) {
                break;
            }
            $t0 = microtime(true);
            try {
                $r = $this->import_chunk($batch['rows'], $options + ['async' => !$this->dryrun]);
            } catch (\ValueError | \TypeError $e) {
                // Rows the extension cannot take as a chunk (ids not increasing, a line without 21 columns, a value of
                // the wrong type): nothing of this chunk is written; the chunk before it is finished and its position
                // saved, so that the message says where a run after the fix resumes.
                foreach (tsdb_import([], $options + ['async' => true])['finished'] as $done) {
                    $this->finished($done, $queued);
                }
                throw new \moodle_exception('importrefused', 'logstore_tsdb', '', (object) ['after' => $this->position()[0],
                    'error' => $e->getMessage()]);
            }
            $this->timings['import'] += microtime(true) - $t0;
            [$lastid, $offset] = [(int) $r['last_id'], (int) $batch['offset']];
            $queued[$lastid] = $offset;
            foreach ($r['finished'] as $done) {
                $this->finished($done, $queued);
                $progress();
            }
            if ($r['status'] !== 'queued') {
                $this->finished($r, $queued);
                $progress();
            }
            if ($batch['end']) {
                break;
            }
        }
        $t0 = microtime(true);
        foreach (tsdb_import([], $options + ['async' => true])['finished'] as $done) {
            $this->finished($done, $queued);
        }
        $this->timings['import'] += microtime(true) - $t0;
        $lastid = $this->dryrun ? $lastid : $this->position()[0];
        $producer = $this->producer;
        $times = $this->times;
        if ($this->progress) {
            $this->progress->update($total !== null ? $this->counts['read'] : (int) $size, $total ?? $size, $this->counts['read'],
                $total !== null ? 'rows' : 'bytes', true);
            $this->progress->finish();
        }
        if (!$this->dryrun && $times[0] !== null && $this->cfg->backend === 'postgres') {
            // Plain PostgreSQL: summary buckets already materialised for the imported period are recomputed
            // (TimescaleDB's own refresh policies cover every day the events exist for).
            $db = pgdb::from_config($this->cfg, 'logstore_tsdb_import');
            try {
                (new \logstore_tsdb\local\summary($db, $this->cfg))->invalidate($times[0], $times[1] + 1);
            } finally {
                $db->close();
            }
        }
        return $this->report($startid, $lastid, $producer, microtime(true) - $started);
    }

    /**
     * A chunk written (or counted, in a dry run): its counts, then its position saved.
     *
     * @param array $r tsdb_import()'s report of the chunk
     * @param array $queued last id => byte offset of the chunks handed over and not yet finished
     */
    protected function finished(array $r, array &$queued): void {
        if ($r['status'] === 'failed') {
            throw new \moodle_exception('importwritefailed', 'logstore_tsdb', '', $r['error']);
        }
        $this->producer = $r['producer'];
        foreach (['filtered', 'outside', 'invalid', 'truncated', 'unserialized', 'rejected'] as $k) {
            $this->counts[$k] += $r[$k];
        }
        $this->counts['read'] += $r['rows'];
        $this->counts['imported'] += $this->dryrun ? $r['events'] : $r['written'];
        foreach ($r['messages'] as $m) {
            $this->say($m);
        }
        foreach ($r['recreated'] as $m) {
            $this->say("The target was made again: $m");
        }
        if ($r['min_time'] !== null) {
            $this->times = [min($this->times[0] ?? $r['min_time'], $r['min_time']),
                max($this->times[1] ?? $r['max_time'], $r['max_time'])];
        }
        if ($this->afterwrite) {
            ($this->afterwrite)($this);
        }
        $lastid = (int) $r['last_id'];
        $offset = $queued[$lastid] ?? 0;
        unset($queued[$lastid]);
        $this->lastoffset = $offset;
        if (!$this->dryrun) {
            $this->state['positions'][$this->position_key()] = [$lastid, $offset];
            $totals = $this->state['totals'];
            $this->state['totals'] = ['imported' => ($totals['imported'] ?? 0) + $r['written'],
                'rejected' => ($totals['rejected'] ?? 0) + $r['rejected']];
            $this->save_state();
        }
    }

    /**
     * Hands one chunk to the extension, answering what it asks for first: `other` it cannot convert (PHP's
     * unserialize(), for objects of classes other than stdClass and the like) and pseudonyms of new users.
     *
     * @param array $rows
     * @param array $options
     * @return array tsdb_import()'s result
     */
    protected function import_chunk(array $rows, array $options): array {
        $other = [];
        for ($round = 0; $round < 4; $round++) {
            $r = tsdb_import($rows, $options + ['pseudonyms' => $this->pseudonyms, 'other' => $other]);
            switch ($r['status']) {
                case 'convert':
                    foreach ($r['convert'] as $id => $text) {
                        $other[$id] = self::other_json($text);
                        $this->counts['converted']++;
                    }
                    break;
                case 'pseudonyms':
                    $this->pseudonyms += pseudonym::existing($r['users']);
                    foreach ($r['users'] as $userid) {
                        if (!isset($this->pseudonyms[$userid])) {
                            $this->pseudonyms[$userid] = pseudonym::get((int) $userid);
                        }
                    }
                    break;
                default:
                    return $r;
            }
        }
        throw new \coding_exception('tsdb_import() kept asking: ' . json_encode(array_keys($r)));
    }

    /**
     * `other` the extension cannot convert itself (`serialize()` text of objects other than stdClass, references):
     * decoded as the standard store's reader decodes it, as JSON; what does not decode is kept as a JSON string.
     *
     * @param string $text
     * @return string|null
     */
    public static function other_json(string $text): ?string {
        $decoded = @\logstore_tsdb\log\store::decode_other($text);
        if ($decoded === null || $decoded === false) {
            return json_encode($text, JSON_INVALID_UTF8_SUBSTITUTE);
        }
        $json = json_encode($decoded, JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
        return $json === false ? json_encode($text, JSON_INVALID_UTF8_SUBSTITUTE) : $json;
    }

    /**
     * The final report and count checks.
     *
     * @param int $startid position before the run
     * @param int $lastid position after it
     * @param int|null $producer the imported events' producer (as PostgreSQL's bigint)
     * @param float $seconds
     * @return array
     */
    protected function report(int $startid, int $lastid, ?int $producer, float $seconds): array {
        $c = $this->counts;
        $checks = [];
        $accounted = $c['imported'] + $c['rejected'] + $c['filtered'] + $c['outside'] + $c['invalid'];
        $source = $lastid > $startid ? $this->source->count_after($startid, $lastid) : null;
        if ($source !== null) {
            $checks['source'] = [$source === $c['read'] && $c['read'] === $accounted,
                "source rows read by this run: $source; read: {$c['read']}; accounted for: $accounted"];
        }
        if (!$this->dryrun && $this->cfg->backend === 'postgres' && $producer !== null) {
            // The events of this source with ids in the range this run read and timecreated in its window: exactly
            // those it imported (none twice: the table has no unique index, the ledger alone keeps them once).
            $db = pgdb::from_config($this->cfg, 'logstore_tsdb_import');
            try {
                $p = $db->uses_pdo() ? array_fill(0, 5, '?') : ['$1', '$2', '$3', '$4', '$5'];
                $n = (int) $db->query_native('SELECT count(*) AS n FROM ' . $db->table()
                    . " WHERE producer = {$p[0]}::bigint AND seq > {$p[1]}::bigint AND seq <= {$p[2]}::bigint"
                    . " AND timecreated >= {$p[3]}::bigint AND timecreated < {$p[4]}::bigint",
                    [$producer, $startid, $lastid, $this->from ?? PHP_INT_MIN, $this->to ?? PHP_INT_MAX])[0]->n;
            } finally {
                $db->close();
            }
            $checks['target'] = [$n === $c['imported'], "rows of this source in the table for the ids and window read by "
                . "this run: $n; imported: {$c['imported']}"];
        }
        $ok = true;
        foreach ($checks as $check) {
            $ok = $ok && $check[0];
        }
        return ['counts' => $c, 'window' => $this->window_text(), 'checks' => $checks, 'ok' => $ok,
            'timings' => array_map(function($v) {
                return round($v, 3);
            }, $this->timings),
            'seconds' => $seconds, 'state' => $this->state];
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
}
