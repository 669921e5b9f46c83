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

    /** @var \stdClass plugin config */
    protected $cfg;

    /** @var pgdb|null */
    protected $db;

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
            $this->db = pgdb::from_config($this->cfg, 'logstore_tsdb_reader');
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
        $fragment = fragment::parse($selectwhere, $params);
        if ($fragment->is_empty()) {
            return ['', []];
        }
        $dollar = !$db->uses_pdo();
        [$sql, $values] = $fragment->to_sql($dollar, 1);
        $where = ' WHERE (' . $sql . ')';
        [$lower, $upper] = $fragment->timecreated_range();
        foreach ([[$lower, '>='], [$upper, '<']] as [$bound, $op]) {
            if ($bound !== null) {
                $values[] = $bound;
                $where .= ' AND "time" ' . $op . ' to_timestamp(' . ($dollar ? '$' . count($values) : '?') . '::bigint)';
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
        [$sql, $values] = $this->select_sql($db, $selectwhere, $params, $sort, $limitfrom, $limitnum);
        return $this->run($db, $sql, $values);
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
        [$where, $values] = self::where($db, $selectwhere, $params);
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
        [$where, $values] = self::where($db, $selectwhere, $params);
        $rows = $this->run($db, 'SELECT count(*) AS n FROM ' . self::source($db) . $where, $values);
        return (int) $rows[0]->n;
    }

    /**
     * Is there a matching row?
     *
     * @param string $selectwhere
     * @param array $params
     * @return bool
     */
    public function exists(string $selectwhere, array $params): bool {
        $db = $this->db();
        [$where, $values] = self::where($db, $selectwhere, $params);
        $rows = $this->run($db, 'SELECT 1 AS one FROM ' . self::source($db) . $where . ' LIMIT 1', $values);
        return !empty($rows);
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
        $db = pgdb::from_config($this->cfg, 'logstore_tsdb_reader');
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
