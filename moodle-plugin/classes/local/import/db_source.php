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
 * Reads {logstore_standard_log} by id ranges (keyset: `id > :last ORDER BY id`, the primary key), restricted to a
 * time window with the timecreated index giving the id bounds.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class db_source extends source {

    /** @var string Moodle table name (without prefix). */
    protected $table;

    /** @var array cache of id bounds per window */
    protected $bounds = [];

    /**
     * Constructor.
     *
     * @param string $table
     */
    public function __construct(string $table = 'logstore_standard_log') {
        $this->table = $table;
    }

    /**
     * Identity.
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
        return '{' . $this->table . '}';
    }

    /**
     * The time window as SQL.
     *
     * @param int|null $from
     * @param int|null $to
     * @return array [sql, params]
     */
    protected static function window(?int $from, ?int $to): array {
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
        return [$w ? ' AND ' . implode(' AND ', $w) : '', $p];
    }

    /**
     * Smallest and largest id in a window (null, null when empty).
     *
     * @param int|null $from
     * @param int|null $to
     * @return array
     */
    public function id_bounds(?int $from, ?int $to): array {
        global $DB;
        $k = "$from/$to";
        if (!isset($this->bounds[$k])) {
            [$w, $p] = self::window($from, $to);
            $r = $DB->get_record_sql('SELECT MIN(id) AS lo, MAX(id) AS hi FROM {' . $this->table . '} WHERE 1 = 1' . $w, $p);
            $this->bounds[$k] = [$r->lo === null ? null : (int) $r->lo, $r->hi === null ? null : (int) $r->hi];
        }
        return $this->bounds[$k];
    }

    /**
     * Rows after a key.
     *
     * @param int $afterkey
     * @param int $afteroffset unused
     * @param int $limit
     * @param int|null $from
     * @param int|null $to
     * @return array
     */
    public function read(int $afterkey, int $afteroffset, int $limit, ?int $from, ?int $to): array {
        global $DB;
        [$lo, $hi] = $this->id_bounds($from, $to);
        if ($lo === null || $afterkey >= $hi) {
            return ['rows' => [], 'end' => true];
        }
        $afterkey = max($afterkey, $lo - 1);
        [$w, $p] = self::window($from, $to);
        $rows = $DB->get_records_sql('SELECT id, ' . implode(', ', self::COLUMNS) . ' FROM {' . $this->table . '}'
            . ' WHERE id > ? AND id <= ?' . $w . ' ORDER BY id', array_merge([$afterkey, $hi], $p), 0, $limit);
        $out = [];
        foreach ($rows as $r) {
            $out[] = [(int) $r->id, (array) $r, 0];
        }
        return ['rows' => $out, 'end' => count($out) < $limit];
    }

    /**
     * Rows in a window and key range.
     *
     * @param int|null $from
     * @param int|null $to
     * @param int $afterkey
     * @param int|null $lastkey
     * @return int
     */
    public function count(?int $from, ?int $to, int $afterkey = 0, ?int $lastkey = null): ?int {
        global $DB;
        [$w, $p] = self::window($from, $to);
        $sql = 'id > ?' . ($lastkey !== null ? ' AND id <= ?' : '') . $w;
        $params = array_merge([$afterkey], $lastkey !== null ? [$lastkey] : [], $p);
        return (int) $DB->count_records_select($this->table, $sql, $params);
    }
}
