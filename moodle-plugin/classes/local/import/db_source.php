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
 * logstore_standard_log in Moodle's database as an import source.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\import;

defined('MOODLE_INTERNAL') || die();

/**
 * Reads {logstore_standard_log} in id order (keyset: `id > :last ORDER BY id`, the primary key), between the smallest
 * and the largest id of the time window.
 *
 * On PostgreSQL the rows come as COPY text lines from pg_copy_to() on Moodle's own connection (converted in the
 * extension: no PHP array per row); on other databases (MySQL, MariaDB...) through a recordset, one PHP array per row.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class db_source extends source {

    /** @var string Moodle table name (without prefix). */
    protected $table;

    /** @var bool|null Read with COPY: null = when Moodle's database is PostgreSQL. */
    protected $copy;

    /** @var int|null Smallest id of the window (null: from the start). */
    protected $lo = null;

    /** @var int|null Largest id of the window (null: the window is empty). */
    protected $hi = null;

    /** @var string SQL excluding id ranges × time windows already imported by the previous importer. */
    protected $exclusions = '';

    /**
     * Constructor.
     *
     * @param string $table
     * @param bool|null $copy read with COPY (PostgreSQL only); null: whenever Moodle's database is PostgreSQL
     */
    public function __construct(string $table = 'logstore_standard_log', ?bool $copy = null) {
        $this->table = $table;
        $this->copy = $copy;
        $this->set_window(null, null);
    }

    /**
     * Identity of the position.
     *
     * @return string
     */
    public function descriptor(): string {
        global $CFG;
        return 'db:' . ($CFG->wwwroot ?? '') . ':' . $this->table;
    }

    /**
     * Name.
     *
     * @return string
     */
    public function name(): string {
        return '{' . $this->table . '}' . ($this->pg_handle() ? ' (COPY)' : ' (recordset)');
    }

    /**
     * The site's identifier (kept when the site moves to another address) and the table.
     *
     * @return string
     */
    public function identity(): string {
        global $CFG;
        return 'moodle:' . ($CFG->siteidentifier ?? get_site_identifier()) . ':' . $CFG->prefix . $this->table;
    }

    /**
     * Restricts the ids read to those between the smallest and the largest id of a time window (the rows in between
     * that are outside the window are read too, for tsdb_import() to pass over). Without a window: up to the largest
     * id now (rows the standard store adds meanwhile are for a later run).
     *
     * @param int|null $from
     * @param int|null $to
     */
    public function set_window(?int $from, ?int $to): void {
        global $DB;
        $w = [];
        $p = [];
        if ($from !== null) {
            $w[] = 'timecreated >= ?';
            $p[] = $from;
        }
        if ($to !== null) {
            $w[] = 'timecreated < ?';
            $p[] = $to;
        }
        if (!$w) {
            $this->lo = null;
            $hi = $DB->get_field_sql('SELECT MAX(id) FROM {' . $this->table . '}');
            $this->hi = $hi === null || $hi === false ? null : (int) $hi;
            return;
        }
        $where = implode(' AND ', $w);
        $first = $DB->get_records_sql("SELECT id FROM {{$this->table}} WHERE $where ORDER BY id", $p, 0, 1);
        $last = $DB->get_records_sql("SELECT id FROM {{$this->table}} WHERE $where ORDER BY id DESC", $p, 0, 1);
        $this->lo = $first ? (int) reset($first)->id : null;
        $this->hi = $last ? (int) reset($last)->id : null;
    }

    /**
     * Leaves out rows an import by the plugin's previous version already wrote (with another identity).
     *
     * @param array $rectangles [[first id, last id, from|null, to|null], ...]
     */
    public function set_exclusions(array $rectangles): void {
        $parts = [];
        foreach ($rectangles as $r) {
            $c = ['id BETWEEN ' . (int) $r[0] . ' AND ' . (int) $r[1]];
            if ($r[2] !== null) {
                $c[] = 'timecreated >= ' . (int) $r[2];
            }
            if ($r[3] !== null) {
                $c[] = 'timecreated < ' . (int) $r[3];
            }
            $parts[] = 'NOT (' . implode(' AND ', $c) . ')';
        }
        $this->exclusions = $parts ? ' AND ' . implode(' AND ', $parts) : '';
    }

    /**
     * Moodle's own PostgreSQL connection (pgsql extension) for COPY, or null.
     *
     * @return \PgSql\Connection|null
     */
    protected function pg_handle() {
        global $DB;
        if ($this->copy === false || $DB->get_dbfamily() !== 'postgres' || !function_exists('pg_copy_to')) {
            return null;
        }
        $handle = (function() {
            return method_exists($this, 'get_db_handle') ? $this->get_db_handle() : null;
        })->call($DB);
        return $handle instanceof \PgSql\Connection ? $handle : null;
    }

    /**
     * The id condition of the rows after a position (ints only: safe inside SQL text).
     *
     * @param int $afterid
     * @param int|null $lastid
     * @return string|null null when nothing is left
     */
    protected function where(int $afterid, ?int $lastid = null): ?string {
        if ($this->hi === null) {
            return null;
        }
        $after = max($afterid, ($this->lo ?? 1) - 1);
        $last = min($this->hi, $lastid ?? $this->hi);
        return $after >= $last ? null : "id > $after AND id <= $last" . $this->exclusions;
    }

    /**
     * Rows after an id: COPY text lines (PostgreSQL) or arrays.
     *
     * @param int $afterid
     * @param int $afteroffset unused
     * @param int $limit
     * @return array
     */
    public function read(int $afterid, int $afteroffset, int $limit): array {
        global $DB, $CFG;
        $where = $this->where($afterid);
        if ($where === null) {
            return ['rows' => [], 'end' => true, 'offset' => 0];
        }
        $columns = 'id, ' . implode(', ', self::COLUMNS);
        $pg = $this->pg_handle();
        if ($pg) {
            $rows = pg_copy_to($pg, "(SELECT $columns FROM {$CFG->prefix}{$this->table} WHERE $where ORDER BY id LIMIT "
                . (int) $limit . ')');
            if ($rows === false) {
                throw new \dml_read_exception(pg_last_error($pg));
            }
        } else {
            $rows = [];
            $rs = $DB->get_recordset_sql("SELECT $columns FROM {{$this->table}} WHERE $where ORDER BY id", [], 0, $limit);
            foreach ($rs as $r) {
                $rows[] = (array) $r;
            }
            $rs->close();
        }
        return ['rows' => $rows, 'end' => count($rows) < $limit, 'offset' => 0];
    }

    /**
     * Rows left after an id (up to $lastid).
     *
     * @param int $afterid
     * @param int|null $lastid
     * @return int
     */
    public function count_after(int $afterid, ?int $lastid = null): ?int {
        global $DB;
        $where = $this->where($afterid, $lastid);
        return $where === null ? 0 : (int) $DB->count_records_select($this->table, $where);
    }
}
