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
 * Reads log rows back from the PostgreSQL / TimescaleDB table of the extension.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\reader;

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\summary;

/**
 * Runs Moodle's reader queries (a WHERE fragment over the columns of logstore_standard_log, a sort, a page) against
 * the extension's table, which has the same columns plus `time` (timestamptz, inside the `timecreated` second) and
 * `event_id`.
 *
 * - The table is read through a derived table exposing exactly the standard columns (`other` as text, as in
 *   logstore_standard_log), so any fragment Moodle writes for the standard store means the same here. PostgreSQL
 *   flattens it: partition pruning and indexes work through it.
 * - Every value is a bound parameter; the fragment's text is passed on with its placeholders renumbered only.
 * - The `timecreated` range implied by the top-level conjuncts (e.g. `timecreated > :date AND timecreated < :end`) is
 *   added again as the same range on `time` (`timecreated > X` ⇔ `time >= to_timestamp(X + 1)`), which is exact
 *   because the sink always stores `timecreated = floor(extract(epoch FROM time))`. The original conditions stay.
 * - `timecreated` in the sort becomes `time` (the capture order inside a second, a refinement of the requested
 *   order), followed by `id` like the standard store's tie-break, so the (courseid, time) and (userid, time) indexes
 *   give "newest first" pages without sorting the whole course.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class pg_reader {

    /** @var string[] The columns of logstore_standard_log, in its order. */
    const COLUMNS = ['id', 'eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel',
        'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other',
        'timecreated', 'origin', 'ip', 'realuserid'];

    /** @var int Iterators with no limit or a larger one read through a server-side cursor in pages of this size. */
    const PAGE = 2000;

    /**
     * @var string The span of a hypertable's chunks (lo, hi: TimescaleDB's internal time, microseconds since 1970) from
     * its catalog tables, for schema and table (? placeholders). Not the view timescaledb_information.chunks, which
     * costs 1.5 to 3 times as much on a new connection (14.3 against 9.5 ms at 10 M events, 22–32 against 8–10 in a
     * database of 300 hypertables). A dimension slice left without its chunk widens the span: the
     * callers want one that holds every chunk (a page's windows, and the invalidations that matter to a count).
     */
    const CHUNK_SPAN = 'SELECT min(ds.range_start) AS lo, max(ds.range_end) AS hi FROM _timescaledb_catalog.hypertable h '
        . 'JOIN _timescaledb_catalog.dimension d ON d.hypertable_id = h.id AND d.interval_length IS NOT NULL '
        . 'JOIN _timescaledb_catalog.dimension_slice ds ON ds.dimension_id = d.id WHERE h.schema_name = ? AND h.table_name = ?';

    /** @var int Seconds a table's data span is taken from the site's cache (data_span()). */
    const SPAN_SECONDS = 60;

    /** @var int[] Days of the successive time windows of a page (then no window): see get_rows(). */
    const WINDOW_DAYS = [1, 4, 16, 64, 256];

    /** @var string[] Columns an equality on which selects few of a compressed chunk's batches (by their metadata). */
    const SELECTIVE = ['courseid', 'userid', 'contextid', 'contextinstanceid', 'relateduserid', 'realuserid'];

    /** @var int Age after which a page's events are taken to be compressed (the sink compresses a chunk 48 hours after
     * its end): see windows(). */
    const COMPRESSED_AGE = 2 * DAYSECS;

    /** @var string[] The columns the daily aggregates `<table>_daily` and `<table>_daily_users` are keyed by (besides the
     * day). */
    const DAILY_KEYS = ['courseid', 'userid', 'anonymous'];

    /** @var string[] The reader's session: no JIT. Report queries run for milliseconds, and PostgreSQL compiled those
     * its cost estimate finds large (a real-time aggregate over the year, counts over every chunk) for up to 77 ms
     * more (docs/SCALE.md, run G). */
    const SETTINGS = ['jit' => 'off'];

    /** @var \stdClass plugin config */
    protected $cfg;

    /** @var pgdb|null */
    protected $db;

    /** @var bool|null Whether the database has TimescaleDB (timescale()). */
    protected $timescale = null;

    /** @var bool Close $db in close() (it was opened here). */
    protected $owndb;

    /** @var string|null The last statement sent (tests, debugging). */
    public $lastsql = null;

    /** @var array The values of the last statement. */
    public $lastparams = [];

    /**
     * Constructor.
     *
     * @param \stdClass $cfg plugin config (store::read_plugin_config())
     * @param pgdb|null $db an open connection to use (else one is opened on first use)
     */
    public function __construct(#[\SensitiveParameter] \stdClass $cfg, ?pgdb $db = null) {
        $this->cfg = $cfg;
        $this->db = $db;
        $this->owndb = $db === null;
    }

    /**
     * The connection, opened on first use.
     *
     * @return pgdb
     */
    public function db(): pgdb {
        if ($this->db === null) {
            $this->db = pgdb::from_config($this->cfg, 'logstore_tsdb_reader', true, self::SETTINGS);
        }
        return $this->db;
    }

    /**
     * Closes the connection if it was opened here.
     */
    public function close(): void {
        if ($this->db && $this->owndb) {
            $this->db->close();
            $this->db = null;
        }
    }

    /**
     * The derived table with the standard columns (and `time`, for the added range).
     *
     * @param pgdb $db
     * @return string
     */
    protected static function source(pgdb $db): string {
        $cols = [];
        foreach (self::COLUMNS as $c) {
            $cols[] = $c === 'other' ? 'other::text AS other' : $c;
        }
        return '(SELECT ' . implode(', ', $cols) . ', "time" FROM ' . $db->table() . ') logstore_standard_log';
    }

    /**
     * WHERE clause with bound values.
     *
     * @param pgdb $db
     * @param string $selectwhere
     * @param array $params
     * @return array [sql (starting with " WHERE " or empty), values]
     */
    public static function where(pgdb $db, string $selectwhere, array $params): array {
        return self::where_of($db, fragment::parse($selectwhere, $params));
    }

    /**
     * WHERE clause of a parsed fragment, with the time range it implies on `time`, narrowed to a window if given.
     *
     * @param pgdb $db
     * @param fragment $fragment
     * @param array $window [lower, upper] unix seconds (null: open) that every row of the answer lies in
     * @return array [sql (starting with " WHERE " or empty), values]
     */
    protected static function where_of(pgdb $db, fragment $fragment, array $window = [null, null]): array {
        $dollar = !$db->uses_pdo();
        $where = '';
        $values = [];
        if (!$fragment->is_empty()) {
            [$sql, $values] = $fragment->to_sql($dollar, 1);
            $where = ' WHERE (' . $sql . ')';
        }
        [$lower, $upper] = $fragment->timecreated_range();
        if ($window[0] !== null) {
            $lower = $lower === null ? $window[0] : max($lower, $window[0]);
        }
        if ($window[1] !== null) {
            $upper = $upper === null ? $window[1] : min($upper, $window[1]);
        }
        foreach ([[$lower, '>='], [$upper, '<']] as [$bound, $op]) {
            if ($bound !== null) {
                $values[] = $bound;
                $where .= ($where === '' ? ' WHERE ' : ' AND ') . '"time" ' . $op . ' to_timestamp('
                    . ($dollar ? '$' . count($values) : '?') . '::bigint)';
            }
        }
        return [$where, $values];
    }

    /**
     * ORDER BY for a Moodle sort string, validated column by column, with the standard store's id tie-break.
     *
     * @param string $sort e.g. "timecreated DESC"; empty: id ASC
     * @return string
     * @throws \coding_exception on anything but "column [ASC|DESC]" items over the standard columns
     */
    public static function order_by(string $sort): string {
        $items = [];
        $hasid = false;
        $timedir = null;
        foreach (array_filter(array_map('trim', explode(',', $sort)), 'strlen') as $item) {
            if (!preg_match('/^"?([a-z]+)"?(?:\s+(ASC|DESC))?$/i', $item, $m) || !in_array(strtolower($m[1]), self::COLUMNS, true)
                    || strtolower($m[1]) === 'other') {
                throw new \coding_exception('logstore_tsdb reader: unsupported sort "' . $sort . '"');
            }
            $col = strtolower($m[1]);
            $dir = strtoupper($m[2] ?? 'ASC');
            if ($col === 'id') {
                $hasid = true;
            }
            if ($col === 'timecreated') {
                $col = '"time"';
                $timedir = $timedir ?? $dir;
            }
            $items[] = "$col $dir";
        }
        if (!$hasid) {
            // As \tool_log\helper\reader::tweak_sort_by_id(): id in the direction of timecreated, else ascending.
            $items[] = 'id ' . ($timedir === 'DESC' ? 'DESC' : 'ASC');
        }
        return ' ORDER BY ' . implode(', ', $items);
    }

    /**
     * Rows of a page.
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return \stdClass[] rows with the standard columns (values as strings)
     */
    public function get_rows(string $selectwhere, array $params, string $sort, int $limitfrom, int $limitnum): array {
        $db = $this->db();
        $fragment = fragment::parse($selectwhere, $params);
        foreach ($this->windows($db, $fragment, $sort, $limitfrom, $limitnum) as $window) {
            [$sql, $values] = $this->select_sql_of($db, $fragment, $sort, $limitfrom, $limitnum, $window);
            $rows = $this->run($db, $sql, $values);
            if (count($rows) === $limitnum || $window === [null, null]) {
                return $rows;
            }
        }
        return [];
    }

    /**
     * The time windows a page is looked for in, newest (or oldest) first, ending with no window.
     *
     * A report's first page without a time range ("course Logs, all days", newest first) would otherwise be planned
     * over every chunk of the table. A page is looked for among the events of the last day before the newest data,
     * then 4, 16... days: when a window holds a full page (limitfrom + limitnum rows), no row outside it can be on
     * the page, so the answer is exact; otherwise the next, wider window is tried, the last one being the whole range.
     * Only for pages sorted by timecreated first; the fragment's own range always applies too.
     *
     * A page of the whole site (no equality on a SELECTIVE column) among events old enough to be compressed takes its
     * window from the data instead: the time of the page's last row, read by a statement that reads nothing but
     * `time` (TimescaleDB decompresses only the columns a statement reads, and such a page reads most batches of its
     * days: the site's Logs of one old day took 32–38 ms, 11–15 in two statements at 10 M events). Every row of the page
     * is at that time or newer (older, oldest first), so the window holds the page.
     *
     * @param pgdb $db
     * @param fragment $fragment
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum 0: every row (no window helps)
     * @return array[] [lower, upper] unix seconds, null for open
     */
    protected function windows(pgdb $db, fragment $fragment, string $sort, int $limitfrom, int $limitnum): array {
        if ($limitnum <= 0 || !preg_match('/^\s*"?timecreated"?\s*(ASC|DESC)?\s*(,|$)/i', $sort, $m)) {
            return [[null, null]];
        }
        $desc = strtoupper($m[1] ?? 'ASC') === 'DESC';
        [$lower, $upper] = $fragment->timecreated_range();
        $span = $this->data_span($db);
        if ($span === null) {
            return [[null, null]];
        }
        // Where the data ends (or starts) inside the fragment's range: the anchor of the windows.
        $anchor = $desc ? ($upper === null ? $span[1] : min($upper, $span[1])) : ($lower === null ? $span[0] : max($lower,
            $span[0]));
        if ($anchor < time() - self::COMPRESSED_AGE && !$this->selective($fragment)) {
            $edge = $this->page_edge($db, $fragment, $desc, $limitfrom + $limitnum);
            return $edge === null ? [[null, null]] : [$desc ? [$edge, null] : [null, $edge + 1], [null, null]];
        }
        $windows = [];
        foreach (self::WINDOW_DAYS as $days) {
            $edge = $desc ? $anchor - $days * DAYSECS : $anchor + $days * DAYSECS;
            if ($desc ? ($edge <= ($lower ?? $span[0])) : ($edge >= ($upper ?? $span[1]))) {
                break;
            }
            $windows[] = $desc ? [$edge, null] : [null, $edge];
        }
        $windows[] = [null, null];
        return $windows;
    }

    /**
     * Whether the fragment requires an equality (or IN) on a SELECTIVE column of every row.
     *
     * @param fragment $fragment
     * @return bool
     */
    protected function selective(fragment $fragment): bool {
        foreach ($fragment->and_terms() ?? [] as $n) {
            if ((($n[0] === 'cmp' && $n[2] === '=') || ($n[0] === 'in' && !$n[3])) && in_array($n[1], self::SELECTIVE, true)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The second of the page's last row (the $rows-th in `time` order), or null when fewer rows match.
     *
     * @param pgdb $db
     * @param fragment $fragment
     * @param bool $desc newest first
     * @param int $rows limitfrom + limitnum
     * @return int|null unix seconds
     */
    protected function page_edge(pgdb $db, fragment $fragment, bool $desc, int $rows): ?int {
        [$where, $values] = self::where_of($db, $fragment);
        $found = $this->run($db, 'SELECT floor(extract(epoch FROM "time"))::bigint AS t FROM ' . self::source($db) . $where
            . ' ORDER BY "time" ' . ($desc ? 'DESC' : 'ASC') . ' LIMIT 1 OFFSET ' . ($rows - 1), $values);
        return $found ? (int) $found[0]->t : null;
    }

    /**
     * The time span the table's events lie in, as data_span_now() found it at most SPAN_SECONDS ago (the site's
     * cache `dataspan`: a report page then sends one statement, not three).
     *
     * A span that is stale by then changes how many windows a page takes, never its rows: a window is open on the side
     * the page starts from (newest first: [edge, open)), so events newer than the span are in every window, and a page
     * is taken from a window only when the window holds all of it; the last window is the whole table.
     *
     * @param pgdb $db
     * @return int[]|null
     */
    protected function data_span(pgdb $db): ?array {
        $cache = \cache::make('logstore_tsdb', 'dataspan');
        $key = sha1(json_encode([$this->cfg->host ?? '', $this->cfg->port ?? '', $this->cfg->dbname ?? '', $db->table()]));
        $cached = $cache->get($key);
        if (is_array($cached) && $cached['at'] > time() - self::SPAN_SECONDS) {
            return $cached['span'];
        }
        $span = $this->data_span_now($db);
        $cache->set($key, ['span' => $span, 'at' => time()]);
        return $span;
    }

    /**
     * The time span the table's events lie in, [first second, after the last second], or null when unknown: from the
     * start of the storage (the TimescaleDB catalog's chunk ranges: no scan of the data; plain PostgreSQL: its daily
     * partitions' names) to the newest event.
     *
     * @param pgdb $db
     * @return int[]|null
     */
    protected function data_span_now(pgdb $db): ?array {
        $table = (string) ($this->cfg->table ?: 'logstore_tsdb_log');
        $schema = (string) ($this->cfg->schema ?: 'public');
        $rows = [];
        if ($this->timescale($db)) {
            $rows = $db->query('SELECT floor(lo / 1e6)::bigint AS lo, ceil(hi / 1e6)::bigint AS hi FROM ('
                . self::CHUNK_SPAN . ') span', [$schema, $table]);
        }
        if (!$rows || $rows[0]->lo === null) {
            // Not a hypertable: the native layout's partitions are named by day.
            $rows = $db->query("SELECT min(to_date(right(c.relname, 8), 'YYYYMMDD')) AS lo, "
                . "max(to_date(right(c.relname, 8), 'YYYYMMDD')) AS hi FROM pg_inherits i "
                . 'JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(?) '
                . "AND c.relname ~ '_p[0-9]{8}$'", [$db->table()]);
            if ($rows && $rows[0]->lo !== null) {
                $rows[0]->lo = strtotime($rows[0]->lo . ' UTC');
                $rows[0]->hi = strtotime($rows[0]->hi . ' UTC') + DAYSECS;
            }
        }
        if (!$rows || $rows[0]->lo === null) {
            return null;
        }
        [$lo, $hi] = [(int) $rows[0]->lo, (int) $rows[0]->hi];
        // Chunks and partitions end up to a week after their newest event (partitions are made days ahead): a page's
        // first windows, anchored there, would hold nothing. The newest event's second, looked for in the last 8 days
        // of the storage (a statement on its newest chunks or partitions only), else in all of it.
        foreach ([$hi - 8 * DAYSECS, $lo] as $from) {
            $newest = $db->query('SELECT floor(extract(epoch FROM max("time")))::bigint AS t FROM ' . $db->table()
                . ' WHERE "time" >= to_timestamp(?::bigint)', [$from]);
            if ($newest && $newest[0]->t !== null) {
                return [$lo, min($hi, (int) $newest[0]->t + 1)];
            }
        }
        return [$lo, $hi];
    }

    /**
     * The SELECT statement of a page.
     *
     * @param pgdb $db
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return array [sql, values]
     */
    protected function select_sql(pgdb $db, string $selectwhere, array $params, string $sort, int $limitfrom,
            int $limitnum): array {
        return $this->select_sql_of($db, fragment::parse($selectwhere, $params), $sort, $limitfrom, $limitnum);
    }

    /**
     * The SELECT statement of a page of a parsed fragment, within a time window.
     *
     * @param pgdb $db
     * @param fragment $fragment
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @param array $window [lower, upper] unix seconds, null for open
     * @return array [sql, values]
     */
    protected function select_sql_of(pgdb $db, fragment $fragment, string $sort, int $limitfrom, int $limitnum,
            array $window = [null, null]): array {
        [$where, $values] = self::where_of($db, $fragment, $window);
        $sql = 'SELECT ' . implode(', ', self::COLUMNS) . ' FROM ' . self::source($db) . $where . self::order_by($sort);
        if ($limitnum > 0) {
            $sql .= ' LIMIT ' . max(0, (int) $limitnum);
        }
        if ($limitfrom > 0) {
            $sql .= ' OFFSET ' . max(0, (int) $limitfrom);
        }
        return [$sql, $values];
    }

    /**
     * Number of matching rows.
     *
     * @param string $selectwhere
     * @param array $params
     * @return int
     */
    public function count(string $selectwhere, array $params): int {
        $db = $this->db();
        $fragment = fragment::parse($selectwhere, $params);
        $aggregate = !empty($this->cfg->countfromaggregate) && $this->timescale($db);
        $n = $aggregate ? $this->count_from_daily($db, $fragment) : null;
        if ($n !== null) {
            return $n;
        }
        [$where, $values] = self::where_of($db, $fragment);
        $rows = $this->run($db, 'SELECT count(*) AS n FROM ' . self::source($db) . $where, $values);
        return (int) $rows[0]->n;
    }

    /**
     * The count from a daily aggregate: `<table>_daily` (day, courseid, userid, events, anonymous_events) for a user
     * in a course, `<table>_daily_courses` (a row per day and course) for a course alone, `<table>_daily_users` (its
     * rows ordered by user) for a user alone; when the fragment is only equalities on those keys and a range of whole
     * UTC days, and the aggregate is exact now.
     *
     * The aggregate is TimescaleDB's real-time continuous aggregate: its materialised days plus the raw rows after its
     * watermark. It is exact unless rows below the watermark changed since its last refresh (a late event, an import, a
     * deletion): TimescaleDB logs such changes in its invalidation logs, and while any is there the count is taken from
     * the events themselves. The check and the sum are one statement (one snapshot).
     *
     * With the setting countfromaggregate (on by default since the scale runs at 10 M events found every aggregate
     * equal to the events once TimescaleDB's roll-up of compressed chunks, which lost events, was no longer used).
     *
     * @param pgdb $db
     * @param fragment $fragment
     * @return int|null null when the aggregate cannot answer exactly
     */
    protected function count_from_daily(pgdb $db, fragment $fragment): ?int {
        $keys = $fragment->equalities(self::DAILY_KEYS);
        [$lower, $upper] = $fragment->timecreated_range();
        if ($keys === null || ($lower !== null && $lower % DAYSECS) || ($upper !== null && $upper % DAYSECS)
                || (isset($keys['anonymous']) && !in_array($keys['anonymous'], [0, 1], true))) {
            return null;
        }
        $table = (string) ($this->cfg->table ?: 'logstore_tsdb_log');
        $schema = (string) ($this->cfg->schema ?: 'public');
        // The smallest aggregate keyed by exactly these: a course's days (a row per day), a user's (ordered by user),
        // or a user's in a course (`_daily`, grouped by course).
        $suffix = isset($keys['courseid']) ? (isset($keys['userid']) ? '_daily' : '_daily_courses') : '_daily_users';
        $view = summary::derived($table, $suffix);
        $sum = !isset($keys['anonymous']) ? 'events' : ($keys['anonymous'] ? 'anonymous_events'
            : 'events - anonymous_events');
        unset($keys['anonymous']);
        if (!$keys) {
            // The whole site: a sum over every day of every course and user is no cheaper than the count.
            return null;
        }
        // Each value is bound where it appears (PDO's ? placeholders are positional).
        $values = [];
        $arg = function($value) use (&$values, $db) {
            $values[] = $value;
            return $db->uses_pdo() ? '?' : '$' . count($values);
        };
        // Invalidations that matter lie below the watermark and reach the oldest stored events: TimescaleDB also
        // keeps a log entry for everything before its refresh window ever started and for everything after the
        // watermark (which the real-time part reads from the events).
        $pending = function(string $log, string $column, string $id) {
            return "EXISTS (SELECT 1 FROM _timescaledb_catalog.$log l WHERE l.$column = agg.$id "
                . 'AND l.lowest_modified_value < agg.watermark AND l.greatest_modified_value >= span.lo)';
        };
        // The watermark from its catalog table, not _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id):
        // a call of that function with a column for argument anywhere in a statement keeps TimescaleDB from making
        // the real-time view's own watermark a constant when it plans the statement (constify_cagg_watermark()), and
        // the view is then planned over every chunk of the events and of the aggregate: a user's count took 20–30 ms
        // on a warm connection instead of 3–5 (10 M events).
        $sql = 'WITH agg AS (SELECT ca.mat_hypertable_id AS mat, ca.raw_hypertable_id AS raw, w.watermark '
            . 'FROM _timescaledb_catalog.continuous_agg ca JOIN _timescaledb_catalog.continuous_aggs_watermark w '
            . 'ON w.mat_hypertable_id = ca.mat_hypertable_id WHERE ca.user_view_schema = ' . $arg($schema)
            . ' AND ca.user_view_name = ' . $arg($view) . ' AND NOT ca.materialized_only), '
            . 'span AS (' . sprintf(str_replace('?', '%s', self::CHUNK_SPAN), $arg($schema), $arg($table)) . ') '
            . 'SELECT CASE WHEN ' . $pending('continuous_aggs_hypertable_invalidation_log', 'hypertable_id', 'raw')
            . ' OR ' . $pending('continuous_aggs_materialization_invalidation_log', 'materialization_id', 'mat')
            . ' THEN NULL ELSE (SELECT coalesce(sum(' . $sum . '), 0) FROM '
            . pgdb::quote_identifier($schema) . '.' . pgdb::quote_identifier($view);
        $where = [];
        foreach ($keys as $column => $value) {
            $where[] = "$column = " . $arg($value) . '::bigint';
        }
        foreach ([[$lower, '>='], [$upper, '<']] as [$bound, $op]) {
            if ($bound !== null) {
                $where[] = "day $op to_timestamp(" . $arg($bound) . '::bigint)';
            }
        }
        $sql .= ' WHERE ' . implode(' AND ', $where) . ') END AS n FROM agg, span';
        try {
            $rows = $db->query_native($sql, $values);
        } catch (\moodle_exception $e) {
            // No such aggregate (a table made before it), or TimescaleDB's catalog is not as this query knows it: count
            // the events.
            return null;
        }
        $this->lastsql = $sql;
        $this->lastparams = $values;
        return ($rows && $rows[0]->n !== null) ? (int) $rows[0]->n : null;
    }

    /**
     * Whether the database has TimescaleDB (asked once per reader: no aggregate to count from on plain PostgreSQL,
     * where the catalog query would fail and leave an error in the server's log on every count).
     *
     * @param pgdb $db
     * @return bool
     */
    protected function timescale(pgdb $db): bool {
        if ($this->timescale === null) {
            $this->timescale = $db->timescaledb_version() !== null;
        }
        return $this->timescale;
    }

    /**
     * Is there a matching row?
     *
     * @param string $selectwhere
     * @param array $params
     * @return bool
     */
    public function exists(string $selectwhere, array $params): bool {
        return !empty($this->get_rows($selectwhere, $params, 'timecreated DESC', 0, 1));
    }

    /**
     * Matching rows one by one: one query for a page of at most PAGE rows, else a server-side cursor on a connection
     * of its own read PAGE rows at a time (so exports of any size use bounded memory).
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return \Generator of \stdClass rows
     */
    public function iterate_rows(string $selectwhere, array $params, string $sort, int $limitfrom, int $limitnum): \Generator {
        if ($limitnum > 0 && $limitnum <= self::PAGE) {
            foreach ($this->get_rows($selectwhere, $params, $sort, $limitfrom, $limitnum) as $row) {
                yield $row;
            }
            return;
        }
        $db = pgdb::from_config($this->cfg, 'logstore_tsdb_reader', false, self::SETTINGS);
        [$sql, $values] = $this->select_sql($db, $selectwhere, $params, $sort, $limitfrom, $limitnum);
        $open = false;
        if (!$db->table_exists()) {
            $db->close();
            return;
        }
        try {
            $db->execute('BEGIN READ ONLY');
            $open = true;
            $this->lastsql = $sql;
            $this->lastparams = $values;
            $db->query_native('DECLARE logstore_tsdb_cursor NO SCROLL CURSOR FOR ' . $sql, $values);
            do {
                $rows = $db->query_native('FETCH ' . self::PAGE . ' FROM logstore_tsdb_cursor');
                foreach ($rows as $row) {
                    yield $row;
                }
            } while (count($rows) === self::PAGE);
        } finally {
            if ($open) {
                try {
                    $db->execute('ROLLBACK');
                } catch (\Throwable $e) {
                    // The connection is closed below anyway.
                    debugging('logstore_tsdb reader: ' . $e->getMessage(), DEBUG_DEVELOPER);
                }
            }
            $db->close();
        }
    }

    /**
     * Runs one statement.
     *
     * @param pgdb $db
     * @param string $sql
     * @param array $values
     * @return \stdClass[]
     */
    protected function run(pgdb $db, string $sql, array $values): array {
        $this->lastsql = $sql;
        $this->lastparams = $values;
        try {
            return $db->query_native($sql, $values);
        } catch (\moodle_exception $e) {
            // Before the first event the writer has not created the table yet: nothing is logged, no error.
            if (!$db->table_exists()) {
                return strpos($sql, 'SELECT count(*)') === 0 ? [(object) ['n' => '0']] : [];
            }
            throw $e;
        }
    }
}
