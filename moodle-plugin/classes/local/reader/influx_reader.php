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
 * Reads log events back from InfluxDB with InfluxQL, for the queries InfluxQL can answer exactly.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\reader;

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pseudonym;

/**
 * Translates Moodle's reader fragments to InfluxQL (the `/query` endpoint of InfluxDB 1.x, 2.x with a DBRP mapping,
 * and 3.x) when the answer is exactly the one PostgreSQL would give over logstore_standard_log, and throws
 * unsupported_query otherwise. What is translated:
 *
 * - `AND`, `OR`, parentheses; `=`, `<>`/`!=` and `IN`/`NOT IN` on every column; `<`, `<=`, `>`, `>=`, `BETWEEN` on
 *   integer fields; `IS [NOT] NULL` on integer tags; constant comparisons (`1 = 1`);
 * - `timecreated` comparisons that are top-level conjuncts (`timecreated > :date`), as a range on the point's time;
 * - sort `timecreated ASC|DESC` (plus `id`, which InfluxDB does not have: points are ordered by time, unique per event);
 * - user ids that the store pseudonymised: `userid = 5` matches both 5 and its pseudonym, and pseudonyms in the rows
 *   are mapped back (a forgotten user's pseudonym becomes 0: the event stays, anonymised).
 *
 * Refused: `NOT`, `LIKE`, functions, arithmetic, `id`, comparisons of strings other than `=`, `<>` and `NOT IN` on
 * string tags (an empty tag value and a missing tag are the same point in InfluxDB, not in SQL), `IS NULL` on fields,
 * ranges on tags (compared as strings) or on pseudonymised user ids, `timecreated` under OR, a column stored both as a
 * tag and as a field (a changed tag set), and sorts on other columns.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class influx_reader {

    /** @var string[] Integer columns. */
    const INTS = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
        'relateduserid', 'anonymous', 'realuserid'];

    /** @var string[] String columns. */
    const STRINGS = ['eventname', 'component', 'action', 'target', 'objecttable', 'crud', 'other', 'origin', 'ip'];

    /** @var string[] Columns that may hold pseudonyms. */
    const USERCOLS = ['userid', 'relateduserid', 'realuserid'];

    /** @var string[] Fields every Moodle event has (the first one that is a field is counted). */
    const ALWAYS = ['anonymous', 'contextid', 'contextinstanceid', 'contextlevel', 'edulevel', 'userid'];

    /** @var int Rows per request when iterating. */
    const PAGE = 5000;

    /** @var \stdClass plugin config */
    protected $cfg;

    /** @var influx_client */
    protected $client;

    /** @var array|null column => 'tag' | 'field' | 'both' (from the server, else the configured tags) */
    protected $kinds = null;

    /** @var array user id => pseudonym or false (none), looked up once per query */
    protected $pseudocache = [];

    /** @var string|null The last InfluxQL statement (tests, debugging). */
    public $lastquery = null;

    /**
     * Constructor.
     *
     * @param \stdClass $cfg plugin config
     * @param influx_client|null $client
     */
    public function __construct(#[\SensitiveParameter] \stdClass $cfg, ?influx_client $client = null) {
        $this->cfg = $cfg;
        $this->client = $client ?? new influx_client($cfg);
    }

    /**
     * Tag or field, per column: what the measurement holds (SHOW TAG KEYS / SHOW FIELD KEYS), completed with the
     * configured tag set for columns not written yet.
     *
     * @return array column => 'tag' | 'field' | 'both'
     */
    public function kinds(): array {
        if ($this->kinds !== null) {
            return $this->kinds;
        }
        $configured = $this->client->tags();
        $kinds = [];
        foreach (array_merge(self::INTS, self::STRINGS) as $col) {
            $kinds[$col] = in_array($col, $configured, true) ? 'tag' : 'field';
        }
        $m = $this->client->measurement();
        $tags = array_column($this->client->query('SHOW TAG KEYS FROM ' . $m), 'tagKey');
        $fields = array_column($this->client->query('SHOW FIELD KEYS FROM ' . $m), 'fieldKey');
        foreach (array_keys($kinds) as $col) {
            $istag = in_array($col, $tags, true);
            $isfield = in_array($col, $fields, true);
            if ($istag && $isfield) {
                $kinds[$col] = 'both';
            } else if ($istag) {
                $kinds[$col] = 'tag';
            } else if ($isfield) {
                $kinds[$col] = 'field';
            }
        }
        return $this->kinds = $kinds;
    }

    /**
     * Throws the refusal for this backend.
     *
     * @param string $reason
     * @throws unsupported_query
     */
    protected function refuse(string $reason): void {
        throw new unsupported_query($reason, (string) $this->cfg->backend);
    }

    /**
     * The InfluxQL condition for a fragment.
     *
     * @param string $selectwhere
     * @param array $params
     * @return string|null " WHERE ..." (or '') to append, null when no row can match
     */
    public function where(string $selectwhere, array $params): ?string {
        $this->pseudocache = [];
        $fragment = fragment::parse($selectwhere, $params);
        try {
            $tree = $fragment->tree();
        } catch (unsupported_query $e) {
            $this->refuse($e->reason);
        }
        $conjuncts = $tree === null ? [] : ($tree[0] === 'and' ? $tree[1] : [$tree]);
        $lower = null;
        $upper = null;
        $parts = [];
        foreach ($conjuncts as $node) {
            $range = null;
            if ($node[0] === 'cmp' && $node[1] === 'timecreated') {
                if (!in_array($node[2], ['=', '<', '<=', '>', '>='], true)) {
                    $this->refuse('timecreated ' . $node[2]);
                }
                $range = fragment::bound($node[2], $node[3]);
                if ($node[3] === null) {
                    return null;
                }
            } else if ($node[0] === 'between' && $node[1] === 'timecreated' && !$node[4]) {
                if ($node[2] === null || $node[3] === null) {
                    return null;
                }
                $lo = fragment::bound('>=', $node[2]);
                $hi = fragment::bound('<=', $node[3]);
                $range = [$lo[0], $hi[1]];
                if ($lo[0] === null || $hi[1] === null) {
                    $range = null;
                }
            }
            if ($range !== null) {
                if ($range === [null, null]) {
                    $this->refuse('timecreated compared with a value that is not a number');
                }
                if ($range[0] !== null) {
                    $lower = $lower === null ? $range[0] : max($lower, $range[0]);
                }
                if ($range[1] !== null) {
                    $upper = $upper === null ? $range[1] : min($upper, $range[1]);
                }
                continue;
            }
            $sql = $this->node($node);
            if ($sql === false) {
                return null;
            }
            if ($sql !== true) {
                $parts[] = $sql;
            }
        }
        if ($lower !== null && $upper !== null && $lower >= $upper) {
            return null;
        }
        if ($lower !== null) {
            $parts[] = 'time >= ' . self::ns($lower);
        }
        if ($upper !== null) {
            $parts[] = 'time < ' . self::ns($upper);
        }
        return $parts ? ' WHERE ' . implode(' AND ', $parts) : '';
    }

    /**
     * Seconds as an InfluxQL nanosecond literal.
     *
     * @param int $seconds
     * @return string
     */
    protected static function ns(int $seconds): string {
        $seconds = max(-9223372036, min(9223372035, $seconds));
        return $seconds === 0 ? '0' : $seconds . '000000000';
    }

    /**
     * Translates one node: a condition string, or true / false when it is constant.
     *
     * @param array $node
     * @return string|bool
     */
    protected function node(array $node) {
        switch ($node[0]) {
            case 'and':
            case 'or':
                $out = [];
                foreach ($node[1] as $child) {
                    $sql = $this->node($child);
                    if ($sql === ($node[0] === 'or')) {
                        return $sql; // True in an OR, false in an AND decides it.
                    }
                    if (is_string($sql)) {
                        $out[] = $sql;
                    }
                }
                if (!$out) {
                    return $node[0] === 'and';
                }
                return count($out) === 1 ? $out[0] : '(' . implode($node[0] === 'and' ? ' AND ' : ' OR ', $out) . ')';
            case 'const':
                return $node[1];
            case 'not':
                $this->refuse('NOT');
                return false;
            case 'cmp':
                return $this->compare($node[1], $node[2], $node[3]);
            case 'in':
                if (in_array($node[1], self::USERCOLS, true)) {
                    $this->pseudonyms($node[2]); // One lookup for the whole list (a report_log group).
                }
                $items = [];
                foreach ($node[2] as $v) {
                    if ($v === null) {
                        if ($node[3]) {
                            return false; // NOT IN (..., NULL) is never true in SQL.
                        }
                        continue;
                    }
                    $items[] = ['cmp', $node[1], $node[3] ? '<>' : '=', $v];
                }
                return $this->node([$node[3] ? 'and' : 'or', $items]);
            case 'between':
                if ($node[4]) {
                    $this->refuse('NOT BETWEEN');
                }
                return $this->node(['and', [['cmp', $node[1], '>=', $node[2]], ['cmp', $node[1], '<=', $node[3]]]]);
            case 'isnull':
                $kind = $this->kind($node[1]);
                if ($kind !== 'tag' || !in_array($node[1], self::INTS, true)) {
                    $this->refuse($node[1] . ' IS ' . ($node[2] ? 'NOT ' : '') . 'NULL (only integer tags can be tested)');
                }
                return influx_client::quote_identifier($node[1]) . ($node[2] ? " != ''" : " = ''");
        }
        $this->refuse($node[0]);
        return false;
    }

    /**
     * Tag or field of a column (refuses unknown columns and columns stored both ways).
     *
     * @param string $col
     * @return string
     */
    protected function kind(string $col): string {
        if ($col === 'timecreated') {
            $this->refuse('timecreated inside OR, NOT or with <> (only top-level ranges are translated)');
        }
        if ($col === 'id') {
            $this->refuse('id (InfluxDB points have no id)');
        }
        $kinds = $this->kinds();
        if (!isset($kinds[$col])) {
            $this->refuse('unknown column ' . $col);
        }
        if ($kinds[$col] === 'both') {
            $this->refuse($col . ' is stored as a tag in some points and as a field in others (the tag set was changed)');
        }
        return $kinds[$col];
    }

    /**
     * One comparison of a column with a value.
     *
     * @param string $col
     * @param string $op = <> < <= > >=
     * @param mixed $value
     * @return string|bool
     */
    protected function compare(string $col, string $op, $value) {
        $kind = $this->kind($col);
        if ($value === null) {
            return false; // Comparisons with NULL are never true.
        }
        $q = influx_client::quote_identifier($col);
        $iop = $op === '<>' ? '!=' : $op;
        if (in_array($col, self::INTS, true)) {
            if (is_bool($value)) {
                $value = (int) $value;
            }
            $v = is_string($value) ? trim($value) : $value;
            if (!is_int($v) && !(is_string($v) && preg_match('/^[+-]?[0-9]{1,18}$/', $v))) {
                if (is_numeric($v) && in_array($op, ['=', '<>'], true)) {
                    // An integer column never equals a fraction.
                    return $op === '<>' ? $this->compare($col, '<>', PHP_INT_MIN + 1) : false;
                }
                $this->refuse($col . ' ' . $op . ' a value that is not an integer');
            }
            $v = (int) $v;
            $candidates = [$v];
            if (in_array($col, self::USERCOLS, true)) {
                if (!in_array($op, ['=', '<>'], true)) {
                    $this->refuse($col . ' ' . $op . ' (user ids may be pseudonymised: only = and <> are exact)');
                }
                if ($v > 0 && $v < pseudonym::MIN) {
                    $p = $this->pseudonyms([$v]);
                    if ($p[$v]) {
                        $candidates[] = $p[$v];
                    }
                }
            }
            $out = [];
            foreach ($candidates as $c) {
                if ($kind === 'tag') {
                    if (!in_array($op, ['=', '<>'], true)) {
                        $this->refuse($col . ' ' . $op . ' (a tag compares as text)');
                    }
                    $out[] = $q . ' ' . $iop . ' ' . influx_client::quote_string((string) $c);
                } else {
                    $out[] = $q . ' ' . $iop . ' ' . $c;
                }
            }
            if ($kind === 'tag' && $op === '<>') {
                $out[] = $q . " != ''"; // A missing tag is NULL: never different from anything in SQL.
            }
            $glue = $op === '<>' ? ' AND ' : ' OR ';
            return count($out) === 1 ? $out[0] : '(' . implode($glue, $out) . ')';
        }
        if (!is_scalar($value)) {
            $this->refuse($col . ' compared with a value that is not a scalar');
        }
        $value = (string) $value;
        if (!in_array($op, ['=', '<>'], true)) {
            $this->refuse($col . ' ' . $op . ' (strings are compared with = and <> only)');
        }
        if ($kind === 'tag' && ($op === '<>' || $value === '')) {
            $this->refuse($col . ($op === '<>' ? ' <> / NOT IN' : " = ''")
                . ' on a tag (InfluxDB does not tell an empty tag from a missing one)');
        }
        return $q . ' ' . $iop . ' ' . influx_client::quote_string($value);
    }

    /**
     * Pseudonyms of user ids (cached for this reader).
     *
     * @param array $values user ids (any scalars; non-integers are ignored)
     * @return array user id => pseudonym, or false when the user has none
     */
    protected function pseudonyms(array $values): array {
        $want = [];
        foreach ($values as $v) {
            if (is_numeric($v) && (int) $v > 0 && (int) $v < pseudonym::MIN && !array_key_exists((int) $v, $this->pseudocache)) {
                $want[] = (int) $v;
            }
        }
        if ($want) {
            $found = pseudonym::existing($want);
            foreach ($want as $id) {
                $this->pseudocache[$id] = $found[$id] ?? false;
            }
        }
        $out = [];
        foreach ($values as $v) {
            if (is_numeric($v) && isset($this->pseudocache[(int) $v])) {
                $out[(int) $v] = $this->pseudocache[(int) $v];
            }
        }
        return $out;
    }

    /**
     * ORDER BY of a Moodle sort.
     *
     * @param string $sort
     * @return string
     */
    public function order_by(string $sort): string {
        $dir = null;
        foreach (array_filter(array_map('trim', explode(',', $sort)), 'strlen') as $i => $item) {
            if (!preg_match('/^(timecreated|id)(?:\s+(ASC|DESC))?$/i', $item, $m)) {
                $this->refuse('sort "' . $sort . '" (InfluxDB orders by time only)');
            }
            if (strtolower($m[1]) === 'timecreated') {
                if ($dir !== null) {
                    $this->refuse('sort "' . $sort . '"');
                }
                $dir = strtoupper($m[2] ?? 'ASC');
            } else if ($dir === null) {
                // Sorting by id first: InfluxDB has no ids; time order is the only order.
                $this->refuse('sort "' . $sort . '" (InfluxDB points have no id)');
            }
        }
        return ' ORDER BY time ' . ($dir ?? 'ASC');
    }

    /**
     * Rows of a page, with the standard columns plus `time_ns`.
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return \stdClass[]
     */
    public function get_rows(string $selectwhere, array $params, string $sort, int $limitfrom, int $limitnum): array {
        $where = $this->where($selectwhere, $params);
        $order = $this->order_by($sort);
        if ($where === null) {
            return [];
        }
        $q = 'SELECT * FROM ' . $this->client->measurement() . $where . $order;
        if ($limitnum > 0) {
            $q .= ' LIMIT ' . (int) $limitnum;
        }
        if ($limitfrom > 0) {
            $q .= ' OFFSET ' . (int) $limitfrom;
        }
        $this->lastquery = $q;
        return $this->rows($this->client->query($q));
    }

    /**
     * Rows one by one, in pages.
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return \Generator
     */
    public function iterate_rows(string $selectwhere, array $params, string $sort, int $limitfrom, int $limitnum): \Generator {
        $left = $limitnum > 0 ? $limitnum : PHP_INT_MAX;
        $offset = max(0, $limitfrom);
        while ($left > 0) {
            $n = min(self::PAGE, $left);
            $rows = $this->get_rows($selectwhere, $params, $sort, $offset, $n);
            foreach ($rows as $row) {
                yield $row;
            }
            if (count($rows) < $n) {
                return;
            }
            $offset += $n;
            $left -= $n;
        }
    }

    /**
     * The field counted for "how many events".
     *
     * @return string
     */
    protected function count_field(): string {
        foreach (self::ALWAYS as $col) {
            if (($this->kinds()[$col] ?? 'tag') === 'field') {
                return $col;
            }
        }
        $this->refuse('count (no field that every event has: ' . implode(', ', self::ALWAYS) . ' are all tags)');
        return '';
    }

    /**
     * Number of matching events.
     *
     * @param string $selectwhere
     * @param array $params
     * @return int
     */
    public function count(string $selectwhere, array $params): int {
        $where = $this->where($selectwhere, $params);
        if ($where === null) {
            return 0;
        }
        $field = influx_client::quote_identifier($this->count_field());
        $this->lastquery = 'SELECT count(' . $field . ') FROM ' . $this->client->measurement() . $where;
        $rows = $this->client->query($this->lastquery);
        return $rows ? (int) $rows[0]['count'] : 0;
    }

    /**
     * Is there a matching event?
     *
     * @param string $selectwhere
     * @param array $params
     * @return bool
     */
    public function exists(string $selectwhere, array $params): bool {
        $where = $this->where($selectwhere, $params);
        if ($where === null) {
            return false;
        }
        $field = influx_client::quote_identifier($this->count_field());
        $this->lastquery = 'SELECT ' . $field . ' FROM ' . $this->client->measurement() . $where . ' LIMIT 1';
        return !empty($this->client->query($this->lastquery));
    }

    /**
     * InfluxDB rows as logstore_standard_log rows (values as strings, like Moodle's DML), user ids un-pseudonymised.
     *
     * @param array[] $points
     * @return \stdClass[]
     */
    protected function rows(array $points): array {
        $pseudo = [];
        foreach ($points as $p) {
            foreach (self::USERCOLS as $col) {
                if (isset($p[$col]) && is_numeric($p[$col]) && (int) $p[$col] >= pseudonym::MIN) {
                    $pseudo[(int) $p[$col]] = true;
                }
            }
        }
        $users = $pseudo ? pseudonym::users(array_keys($pseudo)) : [];
        $out = [];
        foreach ($points as $p) {
            $timens = (int) $p['time'];
            $row = new \stdClass();
            $row->id = null;
            foreach (pg_reader::COLUMNS as $col) {
                if ($col === 'id') {
                    continue;
                }
                if ($col === 'timecreated') {
                    $row->timecreated = (string) intdiv($timens - ($timens % 1000000000 + 1000000000) % 1000000000,
                        1000000000);
                    continue;
                }
                $v = $p[$col] ?? null;
                if ($v === '' && in_array($col, self::INTS, true)) {
                    $v = null;
                }
                if ($v === '' && ($this->kinds()[$col] ?? '') === 'tag') {
                    $v = null;
                }
                if ($v !== null && in_array($col, self::USERCOLS, true) && (int) $v >= pseudonym::MIN) {
                    $v = $users[(int) $v] ?? 0;
                }
                if (is_float($v) && in_array($col, self::INTS, true)) {
                    $v = (int) $v;
                }
                $row->$col = $v === null ? null : (is_bool($v) ? (string) (int) $v : (string) $v);
            }
            $row->time_ns = $timens;
            $out[] = $row;
        }
        return $out;
    }
}
