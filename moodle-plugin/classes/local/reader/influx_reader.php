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

    /** @var int Seconds of a shard group when the retention policy does not say (InfluxDB 1.x's for an infinite one). */
    const SHARD_GROUP = 604800;

    /** @var int Milliseconds a count may take (a report page counts, then reads its rows) before it is refused. */
    const COUNT_BUDGET_MS = 10000;

    /** @var int Windows before the last, which reaches the end of the range (1 + 1 + 2 + ... + 64 = 128 shard groups). */
    const WINDOWS = 8;

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

    /** @var array[] The time windows [lower ns or null, upper ns or null] the last page was read in (tests). */
    public $windows = [];

    /** @var int Rows per request when iterating (tests make it small). */
    public $pagesize = self::PAGE;

    /** @var int Milliseconds a count may take before it is refused (tests make it small). */
    public $countbudgetms = self::COUNT_BUDGET_MS;

    /** @var int|null Seconds of a shard group of the retention policy written to (read with kinds()). */
    protected $shardgroup = null;

    /** @var string[] The tag keys of the measurement (read with kinds()): together they name a point's series. */
    protected $tagkeys = [];

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
     * configured tag set for columns not written yet. A column that is a tag in some points and a field in others
     * (the tag set was changed while the site was writing) is 'both': conditions on it test the tag or the field.
     * The same round trip reads the shard group duration of the retention policy (InfluxDB 1.x).
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
        $statements = ['SHOW TAG KEYS FROM ' . $m, 'SHOW FIELD KEYS FROM ' . $m];
        $v1 = $this->cfg->backend === 'influxdb1';
        if ($v1) {
            $statements[] = 'SHOW RETENTION POLICIES ON ' . influx_client::quote_identifier($this->client->database());
        }
        $answers = $this->client->statements($statements);
        $tags = $this->tagkeys = array_column($answers[0], 'tagKey');
        $fields = array_column($answers[1], 'fieldKey');
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
        $this->shardgroup = self::SHARD_GROUP;
        foreach ($v1 ? $answers[2] : [] as $rp) {
            $wanted = (string) $this->cfg->retention_policy;
            if ($wanted === '' ? !empty($rp['default']) : ($rp['name'] ?? '') === $wanted) {
                $this->shardgroup = self::duration_seconds((string) ($rp['shardGroupDuration'] ?? '')) ?: self::SHARD_GROUP;
            }
        }
        return $this->kinds = $kinds;
    }

    /**
     * Seconds of an InfluxDB duration as SHOW RETENTION POLICIES prints it (`168h0m0s`).
     *
     * @param string $duration
     * @return int 0 when it cannot be read
     */
    protected static function duration_seconds(string $duration): int {
        if (!preg_match('/^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/', $duration, $m) || $duration === '') {
            return 0;
        }
        return (int) ($m[1] ?? 0) * 3600 + (int) ($m[2] ?? 0) * 60 + (int) ($m[3] ?? 0);
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
        $t = $this->translate($selectwhere, $params);
        return $t === null ? null : self::where_clause($t[0], $t[1], $t[2]);
    }

    /**
     * A fragment as InfluxQL conditions without the time range, and the time range apart (the reader narrows it).
     *
     * @param string $selectwhere
     * @param array $params
     * @return array|null [conditions (string[], joined by AND), lower bound ns (inclusive) or null, upper bound ns
     *     (exclusive) or null], null when no row can match
     */
    protected function translate(string $selectwhere, array $params): ?array {
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
        return [$parts, $lower === null ? null : self::ns($lower), $upper === null ? null : self::ns($upper)];
    }

    /**
     * " WHERE ..." of conditions and a time range (or '' when there is neither).
     *
     * @param string[] $parts
     * @param int|null $lower ns, inclusive
     * @param int|null $upper ns, exclusive
     * @return string
     */
    protected static function where_clause(array $parts, ?int $lower, ?int $upper): string {
        if ($lower !== null) {
            $parts[] = 'time >= ' . $lower;
        }
        if ($upper !== null) {
            $parts[] = 'time < ' . $upper;
        }
        return $parts ? ' WHERE ' . implode(' AND ', $parts) : '';
    }

    /**
     * Seconds as nanoseconds (InfluxDB's time), within the range InfluxDB accepts.
     *
     * @param int $seconds
     * @return int
     */
    protected static function ns(int $seconds): int {
        return max(-9223372036, min(9223372035, $seconds)) * 1000000000;
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
                    // A field that is absent fails every comparison, so IS NULL on a field cannot be written.
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
            if ($kind !== 'field' && !in_array($op, ['=', '<>'], true)) {
                $this->refuse($col . ' ' . $op . ' (a tag compares as text)');
            }
            $glue = $op === '<>' ? ' AND ' : ' OR ';
            $tag = [];
            $field = [];
            foreach ($candidates as $c) {
                $tag[] = $iop . ' ' . influx_client::quote_string((string) $c);
                $field[] = $iop . ' ' . $c;
            }
            if ($op === '<>') {
                $tag[] = "!= ''"; // A missing tag is NULL: never different from anything in SQL.
            }
            return self::tag_or_field($kind, $q, $tag, $field, $glue);
        }
        if (!is_scalar($value)) {
            $this->refuse($col . ' compared with a value that is not a scalar');
        }
        $value = (string) $value;
        if (!in_array($op, ['=', '<>'], true)) {
            $this->refuse($col . ' ' . $op . ' (strings are compared with = and <> only)');
        }
        if ($kind !== 'field' && ($op === '<>' || $value === '')) {
            $this->refuse($col . ($op === '<>' ? ' <> / NOT IN' : " = ''")
                . ' on a tag (InfluxDB does not tell an empty tag from a missing one)');
        }
        $v = $iop . ' ' . influx_client::quote_string($value);
        return self::tag_or_field($kind, $q, [$v], [$v], '');
    }

    /**
     * The condition on a column by its kind: on the tag, on the field, or, for a column stored both ways (the tag set
     * was changed), on either (a point has one of the two; an absent field fails every comparison, an absent tag is '').
     *
     * @param string $kind tag, field or both
     * @param string $q the quoted column
     * @param string[] $tag conditions on the tag ("= '5'"), joined by $glue
     * @param string[] $field conditions on the field ("= 5"), joined by $glue
     * @param string $glue ' AND ' / ' OR ' ('' for a single condition)
     * @return string
     */
    protected static function tag_or_field(string $kind, string $q, array $tag, array $field, string $glue): string {
        $join = function(string $ref, array $conds) use ($glue): string {
            $conds = array_map(function($c) use ($ref) {
                return $ref . ' ' . $c;
            }, $conds);
            return count($conds) === 1 ? $conds[0] : '(' . implode($glue, $conds) . ')';
        };
        if ($kind !== 'both') {
            return $join($q, $kind === 'tag' ? $tag : $field);
        }
        return '(' . $join($q . '::tag', $tag) . ' OR ' . $join($q . '::field', $field) . ')';
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
     * The direction of a Moodle sort: InfluxDB orders by time only, so `timecreated [ASC|DESC]`, optionally followed by
     * `id` (points are unique per event and time, so time order is the event order).
     *
     * @param string $sort
     * @return bool true for newest first
     */
    public function descending(string $sort): bool {
        $dir = null;
        foreach (array_filter(array_map('trim', explode(',', $sort)), 'strlen') as $item) {
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
        return $dir === 'DESC';
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
        $t = $this->translate($selectwhere, $params);
        $desc = $this->descending($sort);
        if ($t === null) {
            return [];
        }
        return $this->rows($this->points($t[0], $t[1], $t[2], $desc, max(0, $limitfrom), max(0, $limitnum)));
    }

    /**
     * Rows one by one, in pages: each page continues from the time of the last point of the one before (never an
     * OFFSET that InfluxDB would have to read through).
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return \Generator
     */
    public function iterate_rows(string $selectwhere, array $params, string $sort, int $limitfrom, int $limitnum): \Generator {
        $t = $this->translate($selectwhere, $params);
        $desc = $this->descending($sort);
        if ($t === null) {
            return;
        }
        [$conds, $lower, $upper] = $t;
        $left = $limitnum > 0 ? $limitnum : PHP_INT_MAX;
        $skip = max(0, $limitfrom);
        while ($left > 0) {
            $n = min($this->pagesize, $left);
            $points = $this->points($conds, $lower, $upper, $desc, $skip, $n);
            foreach ($this->rows($points) as $row) {
                yield $row;
            }
            if (count($points) < $n) {
                return;
            }
            $left -= $n;
            // The next page: up to (or from) the last point's time, inclusive, skipping the points of that very
            // nanosecond already given (two events of different series can share it).
            $last = (int) $points[count($points) - 1]['time'];
            $skip = 0;
            foreach ($points as $p) {
                $skip += (int) ((int) $p['time'] === $last);
            }
            if ($desc) {
                $upper = $last + 1;
            } else {
                $lower = $last;
            }
        }
    }

    /**
     * The points matching conditions in a time range, in time order, after skipping some.
     *
     * With a limit, newest first (or oldest first from a lower bound), the range is read in windows: the shard group
     * the range ends in, then the one before it, then 2, 4, 8... shard groups further back, the last window reaching to
     * the end of the range, until the page is complete. InfluxDB opens every shard a query's range covers and a
     * cursor for each matching series in each: a window of the shard groups that hold the page keeps a report page
     * from touching a year of shards. The windows are disjoint and adjacent, so the page is exactly the one a
     * single query would give. Points skipped (a later page) are counted per window and whole windows are passed over.
     *
     * @param string[] $conds
     * @param int|null $lower ns, inclusive
     * @param int|null $upper ns, exclusive
     * @param bool $desc newest first
     * @param int $skip points to pass over
     * @param int $need points wanted (0: all)
     * @param string $select what to select (default every column)
     * @return array[] points (column => value, `time` in ns)
     */
    protected function points(array $conds, ?int $lower, ?int $upper, bool $desc, int $skip, int $need,
            string $select = '*'): array {
        $m = $this->client->measurement();
        $order = ' ORDER BY time ' . ($desc ? 'DESC' : 'ASC');
        $limit = function(int $n, int $offset): string {
            return ($n > 0 ? ' LIMIT ' . $n : '') . ($offset > 0 ? ' OFFSET ' . $offset : '');
        };
        $this->kinds(); // The shard group duration and the tag keys.
        if ($need === 0) {
            // All points: one query.
            $this->lastquery = "SELECT $select FROM $m" . self::where_clause($conds, $lower, $upper) . $order
                . $limit(0, $skip);
            return $this->client->query($this->lastquery);
        }
        // A page of whole points is found with one field and the tags (the series) of each point, then read series by
        // series (see complete()).
        $probe = $select;
        if ($select === '*') {
            $probe = influx_client::quote_identifier($this->count_field());
            foreach ($this->tagkeys as $i => $tag) {
                $probe .= ', ' . influx_client::quote_identifier($tag);
                if (($this->kinds[$tag] ?? 'tag') === 'both') {
                    $probe .= '::tag AS ' . influx_client::quote_identifier('tag_' . $i);
                }
            }
        }
        if (!$desc && $lower === null) {
            // Oldest first from the beginning: one query.
            $this->lastquery = "SELECT $probe FROM $m" . self::where_clause($conds, $lower, $upper) . $order
                . $limit($need, $skip);
            $points = $this->client->query($this->lastquery);
            return $select === '*' ? $this->complete($conds, $points) : $points;
        }
        $group = $this->shardgroup * 1000000000;
        // Shard groups start at multiples of their duration counted from Go's zero time (0001-01-01 UTC).
        $offset = ((-62135596800 % $this->shardgroup) + $this->shardgroup) % $this->shardgroup * 1000000000;
        $start = function(int $ns) use ($group, $offset): int {
            return $ns - ((($ns - $offset) % $group + $group) % $group);
        };
        if ($desc) {
            $hi = $upper;
            $lo = $start(($upper ?? time() * 1000000000) - 1);
        } else {
            $lo = $lower;
            $hi = $start($lower) + $group;
        }
        $points = [];
        $this->windows = [];
        for ($k = 0, $span = 1; ; $k++) {
            $last = $k >= self::WINDOWS;
            if ($desc && ($last || ($lower !== null && $lo <= $lower))) {
                [$lo, $last] = [$lower, true];
            } else if (!$desc && ($last || ($upper !== null && $hi >= $upper))) {
                [$hi, $last] = [$upper, true];
            }
            $where = self::where_clause($conds, $lo, $hi);
            $this->windows[] = [$lo, $hi];
            $passed = false;
            if ($skip > 0) {
                $field = influx_client::quote_identifier($this->count_field());
                $rows = $this->client->query("SELECT count($field) FROM $m$where");
                $n = $rows ? (int) $rows[0]['count'] : 0;
                if ($n <= $skip) {
                    $skip -= $n;
                    $passed = true;
                }
            }
            if (!$passed) {
                $this->lastquery = "SELECT $probe FROM $m$where$order" . $limit($need - count($points), $skip);
                $skip = 0;
                array_push($points, ...$this->client->query($this->lastquery));
            }
            if (count($points) >= $need || $last) {
                return $select === '*' ? $this->complete($conds, $points) : $points;
            }
            if ($k > 0) {
                $span *= 2;
            }
            if ($desc) {
                [$hi, $lo] = [$lo, $lo - $span * $group];
            } else {
                [$lo, $hi] = [$hi, $hi + $span * $group];
            }
        }
    }

    /**
     * The whole points of a page found by their time and series: one statement per series of the page (all of its tags
     * equal, between its first and last point of the page), all in one request. InfluxDB then opens a cursor for each
     * field of those few series only, where `SELECT *` over the page's time range would open one for every field of
     * every series of the shard (thousands on a site, most of them with nothing in the range). A point of the series in
     * that range that matches the conditions is a point of the page, and only those are kept.
     *
     * @param string[] $conds
     * @param array[] $found points with `time`, one field and the tags (tag_N for a key that is also a field)
     * @return array[] the points of SELECT *, in the order found
     */
    protected function complete(array $conds, array $found): array {
        $series = [];
        $keys = [];
        foreach ($found as $n => $p) {
            $key = [];
            foreach ($this->tagkeys as $i => $tag) {
                $both = ($this->kinds[$tag] ?? 'tag') === 'both';
                $key[] = influx_client::quote_identifier($tag) . ($both ? '::tag' : '') . ' = '
                    . influx_client::quote_string((string) ($both ? $p['tag_' . $i] ?? '' : $p[$tag] ?? ''));
            }
            $id = implode(' AND ', $key);
            $t = (int) $p['time'];
            $keys[$n] = [$id, $t];
            $series[$id] = [min($series[$id][0] ?? $t, $t), max($series[$id][1] ?? $t, $t)];
        }
        if (!$series) {
            return [];
        }
        $m = $this->client->measurement();
        $statements = [];
        foreach ($series as $id => [$lo, $hi]) {
            $statements[] = "SELECT * FROM $m WHERE " . implode(' AND ', array_merge($conds, [$id, "time >= $lo", "time <= $hi"]));
        }
        $this->lastquery = implode('; ', $statements);
        $rows = [];
        foreach (array_combine(array_keys($series), $this->client->statements($statements)) as $id => $answer) {
            foreach ($answer as $row) {
                $rows[$id . '|' . $row['time']][] = $row;
            }
        }
        $out = [];
        foreach ($keys as [$id, $t]) {
            // Points of two series can share a nanosecond: each point found takes a row of its own series.
            if (!empty($rows[$id . '|' . $t])) {
                $out[] = array_shift($rows[$id . '|' . $t]);
            }
        }
        return $out;
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
        $this->refuse('count (none of the columns every event has is a field in every point: ' . implode(', ', self::ALWAYS)
            . ')');
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
        $t = $this->translate($selectwhere, $params);
        if ($t === null) {
            return 0;
        }
        $field = influx_client::quote_identifier($this->count_field());
        $this->lastquery = 'SELECT count(' . $field . ') FROM ' . $this->client->measurement()
            . self::where_clause($t[0], $t[1], $t[2]);
        // InfluxDB counts by reading every matching point, through a cursor per series and shard: a count that no tag
        // (course) and no time range narrows reads the whole store. Within the budget it is exact; past it, refused.
        $answer = $this->client->statements([$this->lastquery], false, $this->countbudgetms);
        if ($answer === null) {
            throw new unsupported_query('counting these events took longer than ' . round($this->countbudgetms / 1000, 1)
                . ' s', (string) $this->cfg->backend, 'readertooslow');
        }
        return $answer[0] ? (int) $answer[0][0]['count'] : 0;
    }

    /**
     * Is there a matching event? Looked for newest first, in windows (see points()).
     *
     * @param string $selectwhere
     * @param array $params
     * @return bool
     */
    public function exists(string $selectwhere, array $params): bool {
        $t = $this->translate($selectwhere, $params);
        if ($t === null) {
            return false;
        }
        $field = influx_client::quote_identifier($this->count_field());
        return (bool) $this->points($t[0], $t[1], $t[2], true, 0, 1, $field);
    }

    /**
     * The distinct values of a column among the matching events, as stored (pseudonyms stay pseudonyms): the values of
     * the tag (GROUP BY) and of the field (DISTINCT), both for a column stored both ways.
     *
     * @param string $column
     * @param string $selectwhere
     * @param array $params
     * @return array values (tags as strings, fields as stored)
     */
    public function distinct_values(string $column, string $selectwhere, array $params): array {
        $where = $this->where($selectwhere, $params);
        $kind = $this->kind($column);
        if ($where === null) {
            return [];
        }
        $m = $this->client->measurement();
        $q = influx_client::quote_identifier($column);
        $statements = [];
        if ($kind !== 'tag') {
            $statements['field'] = "SELECT DISTINCT($q" . ($kind === 'both' ? '::field' : '') . ") AS v FROM $m$where";
        }
        if ($kind !== 'field') {
            $field = influx_client::quote_identifier($this->count_field());
            $statements['tag'] = "SELECT count($field) FROM $m$where GROUP BY $q";
        }
        $answers = array_combine(array_keys($statements), $this->client->statements(array_values($statements)));
        $values = array_column($answers['field'] ?? [], 'v');
        foreach ($answers['tag'] ?? [] as $row) {
            if ((string) ($row[$column] ?? '') !== '') {
                $values[] = $row[$column]; // A point without the tag is in the group of ''.
            }
        }
        return array_values(array_unique($values));
    }

    /**
     * "tag = value of the point" ('' when the point does not have the tag), for a DELETE of that point: a key that is
     * also a field (the tag set was changed) is named `key_1` in a point of `SELECT *` and needs `::tag` in a DELETE
     * (InfluxDB 1.x takes a plain name for the field there and refuses the statement).
     *
     * @param array $point a point of SELECT *
     * @param string $tag
     * @return string
     */
    public function tag_equals(array $point, string $tag): string {
        $both = ($this->kinds()[$tag] ?? 'tag') === 'both';
        return influx_client::quote_identifier($tag) . ($both ? '::tag' : '') . ' = '
            . influx_client::quote_string((string) ($both ? $point[$tag . '_1'] ?? '' : $point[$tag] ?? ''));
    }

    /**
     * InfluxDB rows as logstore_standard_log rows (values as strings, like Moodle's DML), user ids un-pseudonymised.
     *
     * @param array[] $points
     * @return \stdClass[]
     */
    protected function rows(array $points): array {
        $kinds = $this->kinds();
        // A column stored both ways: SELECT * names the field `col` and the tag `col_1`.
        $value = function(array $p, string $col) use ($kinds) {
            return $p[$col] ?? ($kinds[$col] === 'both' ? $p[$col . '_1'] ?? null : null);
        };
        $pseudo = [];
        foreach ($points as $p) {
            foreach (self::USERCOLS as $col) {
                $v = $value($p, $col);
                if (is_numeric($v) && (int) $v >= pseudonym::MIN) {
                    $pseudo[(int) $v] = true;
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
                $v = $value($p, $col);
                if ($v === '' && (in_array($col, self::INTS, true) || $kinds[$col] !== 'field')) {
                    $v = null; // An absent tag.
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
