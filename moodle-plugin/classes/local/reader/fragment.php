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
 * A SQL WHERE fragment of Moodle's log readers, tokenised with its parameters bound.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\reader;

defined('MOODLE_INTERNAL') || die();

/**
 * Moodle's reports hand a reader a SQL fragment over the columns of logstore_standard_log with `:named`, `?` or `$1`
 * placeholders (e.g. `courseid = :courseid AND timecreated > :date AND anonymous = 0`). This class tokenises it
 * (string literals, quoted identifiers and comments are single tokens, so a `?` or `:x` inside them is never taken
 * for a placeholder) and attaches each placeholder's value, then:
 *
 *  - renders it for PostgreSQL with every value bound as a parameter (`$n` for pgsql, `?` for PDO), never
 *    interpolated;
 *  - finds the exact range of `timecreated` implied by its top-level conjuncts, so the PostgreSQL reader can add the
 *    equivalent range on `time` (partition pruning, the (courseid, time) and (userid, time) indexes);
 *  - parses it into a small expression tree for the InfluxQL translation (a strict subset; anything else is refused).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class fragment {

    /** @var string Token types. */
    const T_SPACE = 'space';
    /** @var string */
    const T_STRING = 'string';
    /** @var string */
    const T_QIDENT = 'qident';
    /** @var string */
    const T_IDENT = 'ident';
    /** @var string */
    const T_NUMBER = 'number';
    /** @var string */
    const T_PARAM = 'param';
    /** @var string */
    const T_OP = 'op';
    /** @var string */
    const T_PUNCT = 'punct';
    /** @var string */
    const T_COMMENT = 'comment';

    /** @var array[] tokens: ['t' => type, 's' => source text, 'v' => bound value (T_PARAM only)] */
    protected $tokens = [];

    /**
     * Tokenises a fragment and binds its parameters the way Moodle's DML does (one placeholder style per statement).
     *
     * @param string $sql
     * @param array $params named (with or without the leading colon), or a list for `?` / `$n`
     * @return self
     * @throws \coding_exception on mixed placeholder styles, a missing named parameter or a wrong number of `?` values
     */
    public static function parse(string $sql, array $params): self {
        $f = new self();
        $f->tokens = self::tokenize($sql);
        $styles = [];
        foreach ($f->tokens as $tok) {
            if ($tok['t'] === self::T_PARAM) {
                $styles[$tok['s'][0]] = true;
            }
        }
        if (count($styles) > 1) {
            throw new \coding_exception('logstore_tsdb reader: mixed types of SQL parameters in "' . $sql . '"');
        }
        $named = [];
        foreach ($params as $k => $v) {
            if (is_string($k)) {
                $named[ltrim($k, ':')] = $v;
            }
        }
        $list = array_values($params);
        $qindex = 0;
        foreach ($f->tokens as $i => $tok) {
            if ($tok['t'] !== self::T_PARAM) {
                continue;
            }
            $name = substr($tok['s'], 1);
            switch ($tok['s'][0]) {
                case ':':
                    if (!array_key_exists($name, $named)) {
                        throw new \coding_exception("logstore_tsdb reader: missing named parameter \"$name\"");
                    }
                    $value = $named[$name];
                    break;
                case '$':
                    $n = (int) $name;
                    if ($n < 1 || $n > count($list)) {
                        throw new \coding_exception("logstore_tsdb reader: missing parameter \$$n");
                    }
                    $value = $list[$n - 1];
                    break;
                default:
                    if ($qindex >= count($list)) {
                        throw new \coding_exception('logstore_tsdb reader: more ? placeholders than parameters');
                    }
                    $value = $list[$qindex++];
            }
            if (is_bool($value)) {
                $value = (int) $value;
            }
            if ($value !== null && !is_scalar($value)) {
                throw new \coding_exception('logstore_tsdb reader: parameter values must be scalars or null');
            }
            $f->tokens[$i]['v'] = $value;
        }
        if (isset($styles['?']) && $qindex !== count($list)) {
            throw new \coding_exception('logstore_tsdb reader: ' . count($list) . ' parameters for ' . $qindex
                . ' ? placeholders');
        }
        return $f;
    }

    /**
     * Splits SQL into tokens. Unknown characters become one-character operator tokens (they are passed on to
     * PostgreSQL unchanged and refused by the InfluxQL translation).
     *
     * @param string $sql
     * @return array[]
     */
    public static function tokenize(string $sql): array {
        // One anchored pattern per token type, tried at the current offset (\G): linear in the fragment's length, so
        // report_log's "userid IN (1,2,...)" of a large group stays cheap.
        static $patterns = [
            [self::T_SPACE, '/\G\s+/'],
            [self::T_COMMENT, '/\G(?:--[^\n]*|\/\*.*?\*\/)/s'],
            [self::T_STRING, "/\\G[eE]'(?:[^'\\\\]|\\\\.|'')*'/s"],
            [self::T_STRING, "/\\G'(?:[^']|'')*'/s"],
            [self::T_QIDENT, '/\G"(?:[^"]|"")*"/s'],
            [self::T_PARAM, '/\G\$[1-9][0-9]*/'],
            ['dollarquote', '/\G\$([A-Za-z_][A-Za-z0-9_]*)?\$/'],
            [self::T_OP, '/\G::/'],
            [self::T_PARAM, '/\G:[A-Za-z_][A-Za-z0-9_]*/'],
            [self::T_PARAM, '/\G\?/'],
            [self::T_IDENT, '/\G[A-Za-z_][A-Za-z0-9_$]*/'],
            [self::T_NUMBER, '/\G(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/'],
            [self::T_OP, '/\G(?:<=|>=|<>|!=|\|\|)/'],
            [self::T_PUNCT, '/\G[(),.;\[\]]/'],
        ];
        $tokens = [];
        $len = strlen($sql);
        $i = 0;
        while ($i < $len) {
            $found = false;
            foreach ($patterns as [$type, $re]) {
                if (!preg_match($re, $sql, $m, 0, $i)) {
                    continue;
                }
                $text = $m[0];
                if ($type === 'dollarquote') {
                    // Dollar-quoted string: $tag$ ... $tag$.
                    $end = strpos($sql, $text, $i + strlen($text));
                    if ($end === false) {
                        throw new \coding_exception('logstore_tsdb reader: unterminated dollar-quoted string in SQL fragment');
                    }
                    $text = substr($sql, $i, $end + strlen($m[0]) - $i);
                    $type = self::T_STRING;
                }
                $tokens[] = ['t' => $type, 's' => $text];
                $i += strlen($text);
                $found = true;
                break;
            }
            if (!$found) {
                $c = $sql[$i];
                if ($c === "'" || $c === '"') {
                    throw new \coding_exception('logstore_tsdb reader: unterminated ' . ($c === "'" ? 'string literal'
                        : 'quoted identifier') . ' in SQL fragment');
                }
                $tokens[] = ['t' => self::T_OP, 's' => $c];
                $i++;
            }
        }
        return $tokens;
    }

    /**
     * Is the fragment empty (no condition)?
     *
     * @return bool
     */
    public function is_empty(): bool {
        foreach ($this->tokens as $tok) {
            if ($tok['t'] !== self::T_SPACE && $tok['t'] !== self::T_COMMENT) {
                return false;
            }
        }
        return true;
    }

    /**
     * The fragment with its placeholders renumbered for PostgreSQL and the values in order.
     *
     * @param bool $dollar true: `$n` placeholders (pgsql), false: `?` (PDO, which skips quoted text)
     * @param int $first number of the first placeholder ($n style)
     * @return array [sql, values]
     */
    public function to_sql(bool $dollar, int $first = 1): array {
        $sql = '';
        $values = [];
        $n = $first;
        foreach ($this->tokens as $tok) {
            if ($tok['t'] === self::T_PARAM) {
                $sql .= $dollar ? '$' . $n++ : '?';
                $values[] = $tok['v'];
            } else if ($tok['t'] === self::T_COMMENT) {
                $sql .= ' ';
            } else {
                $sql .= $tok['s'];
            }
        }
        return [$sql, $values];
    }

    /**
     * The significant tokens (no spaces, no comments).
     *
     * @return array[]
     */
    protected function significant(): array {
        $out = [];
        foreach ($this->tokens as $tok) {
            if ($tok['t'] !== self::T_SPACE && $tok['t'] !== self::T_COMMENT) {
                $out[] = $tok;
            }
        }
        return $out;
    }

    /**
     * Is this token the keyword $word?
     *
     * @param array|null $tok
     * @param string $word upper case
     * @return bool
     */
    protected static function is_keyword(?array $tok, string $word): bool {
        return $tok !== null && $tok['t'] === self::T_IDENT && strtoupper($tok['s']) === $word;
    }

    /**
     * The column a token names (lower case), or null when it is not a plain column reference.
     *
     * @param array $tok
     * @return string|null
     */
    protected static function column_name(array $tok): ?string {
        if ($tok['t'] === self::T_IDENT) {
            $word = strtolower($tok['s']);
            return in_array(strtoupper($word), ['AND', 'OR', 'NOT', 'NULL', 'TRUE', 'FALSE', 'IN', 'IS', 'BETWEEN',
                'LIKE', 'ILIKE', 'SELECT', 'EXISTS', 'CASE', 'WHEN'], true) ? null : $word;
        }
        if ($tok['t'] === self::T_QIDENT) {
            return str_replace('""', '"', substr($tok['s'], 1, -1));
        }
        return null;
    }

    /**
     * A literal or bound value token: [true, value] or [false, null] when the token is not a single value.
     *
     * @param array $tok
     * @return array
     */
    protected static function value_of(array $tok): array {
        if ($tok['t'] === self::T_PARAM) {
            return [true, $tok['v']];
        }
        if ($tok['t'] === self::T_NUMBER) {
            return [true, $tok['s']];
        }
        if ($tok['t'] === self::T_STRING && $tok['s'][0] === "'") {
            return [true, str_replace("''", "'", substr($tok['s'], 1, -1))];
        }
        if (self::is_keyword($tok, 'NULL')) {
            return [true, null];
        }
        return [false, null];
    }

    /**
     * Splits significant tokens into top-level conjuncts (AND at parenthesis depth 0, not the AND of BETWEEN).
     * A list with an OR at depth 0 is one conjunct.
     *
     * @param array[] $toks
     * @return array[][]
     */
    protected static function conjuncts(array $toks): array {
        $parts = [[]];
        $depth = 0;
        $between = false;
        foreach ($toks as $tok) {
            if ($tok['t'] === self::T_PUNCT && $tok['s'] === '(') {
                $depth++;
            } else if ($tok['t'] === self::T_PUNCT && $tok['s'] === ')') {
                $depth--;
            } else if ($depth === 0 && self::is_keyword($tok, 'OR')) {
                return [$toks];
            } else if ($depth === 0 && self::is_keyword($tok, 'BETWEEN')) {
                $between = true;
            } else if ($depth === 0 && self::is_keyword($tok, 'AND')) {
                if ($between) {
                    $between = false;
                } else {
                    $parts[] = [];
                    continue;
                }
            }
            $parts[count($parts) - 1][] = $tok;
        }
        return $parts;
    }

    /**
     * Does a token list consist of one parenthesised group?
     *
     * @param array[] $toks
     * @return bool
     */
    protected static function is_wrapped(array $toks): bool {
        $n = count($toks);
        if ($n < 2 || $toks[0]['s'] !== '(' || $toks[$n - 1]['s'] !== ')' || $toks[0]['t'] !== self::T_PUNCT) {
            return false;
        }
        $depth = 0;
        foreach ($toks as $i => $tok) {
            if ($tok['t'] === self::T_PUNCT && $tok['s'] === '(') {
                $depth++;
            } else if ($tok['t'] === self::T_PUNCT && $tok['s'] === ')') {
                $depth--;
                if ($depth === 0 && $i < $n - 1) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * The exact range of `timecreated` (integer seconds) that every matching row satisfies, from the top-level
     * conjuncts of the form `timecreated OP value`, `value OP timecreated` and `timecreated BETWEEN a AND b`,
     * where value is one bound parameter or literal number. Conjuncts of other shapes add nothing.
     *
     * @return array [lower inclusive or null, upper exclusive or null]
     */
    public function timecreated_range(): array {
        $lower = null;
        $upper = null;
        $queue = [$this->significant()];
        while ($queue) {
            $toks = array_shift($queue);
            foreach (self::conjuncts($toks) as $part) {
                if (self::is_wrapped($part)) {
                    $inner = array_slice($part, 1, -1);
                    if (count(self::conjuncts($inner)) > 1) {
                        $queue[] = $inner;
                        continue;
                    }
                    $part = $inner;
                }
                foreach (self::range_of_conjunct($part) as [$lo, $hi]) {
                    if ($lo !== null) {
                        $lower = $lower === null ? $lo : max($lower, $lo);
                    }
                    if ($hi !== null) {
                        $upper = $upper === null ? $hi : min($upper, $hi);
                    }
                }
            }
        }
        return [$lower, $upper];
    }

    /**
     * The timecreated range of one conjunct.
     *
     * @param array[] $part significant tokens
     * @return array list of [lower or null, upper or null]
     */
    protected static function range_of_conjunct(array $part): array {
        $n = count($part);
        if ($n === 3) {
            $op = $part[1]['t'] === self::T_OP ? $part[1]['s'] : null;
            if ($op === null) {
                return [];
            }
            if (self::column_name($part[0]) === 'timecreated') {
                [$ok, $v] = self::value_of($part[2]);
            } else if (self::column_name($part[2]) === 'timecreated') {
                [$ok, $v] = self::value_of($part[0]);
                $op = ['<' => '>', '>' => '<', '<=' => '>=', '>=' => '<=', '=' => '=', '<>' => '<>', '!=' => '!='][$op]
                    ?? null;
            } else {
                return [];
            }
            if (!$ok || $op === null) {
                return [];
            }
            return [self::bound($op, $v)];
        }
        if ($n === 5 && self::column_name($part[0]) === 'timecreated' && self::is_keyword($part[1], 'BETWEEN')
                && self::is_keyword($part[3], 'AND')) {
            [$ok1, $a] = self::value_of($part[2]);
            [$ok2, $b] = self::value_of($part[4]);
            if ($ok1 && $ok2) {
                return [self::bound('>=', $a), self::bound('<=', $b)];
            }
        }
        return [];
    }

    /**
     * The integer range of an integer column compared with a value: `timecreated OP v`.
     *
     * @param string $op
     * @param mixed $v
     * @return array [lower inclusive or null, upper exclusive or null]
     */
    public static function bound(string $op, $v): array {
        if ($v === null || !is_numeric($v)) {
            return [null, null];
        }
        $v = is_string($v) ? trim($v) : $v;
        if (is_string($v) && preg_match('/^[+-]?[0-9]+$/', $v) && abs((float) $v) < 9.0e15) {
            $floor = (int) $v;
            $ceil = (int) $v;
        } else {
            $f = (float) $v;
            if (!is_finite($f) || abs($f) >= 9.0e15) {
                return [null, null];
            }
            $floor = (int) floor($f);
            $ceil = (int) ceil($f);
        }
        switch ($op) {
            case '>':
                return [$floor + 1, null];
            case '>=':
                return [$ceil, null];
            case '<':
                return [null, $ceil];
            case '<=':
                return [null, $floor + 1];
            case '=':
                return [$ceil, $floor + 1];
            default:
                return [null, null];
        }
    }

    /**
     * The fragment as equalities on some columns, when that is all it says besides a `timecreated` range: e.g.
     * `courseid = :c AND anonymous = 0` gives ['courseid' => 3, 'anonymous' => 0]. Such a fragment can be answered
     * from a table keyed by those columns (the daily aggregate), with timecreated_range() for the time.
     *
     * @param string[] $columns the columns that may appear in equalities
     * @return array|null column => integer value, or null when the fragment says anything else
     */
    public function equalities(array $columns): ?array {
        $terms = $this->and_terms();
        if ($terms === null) {
            return null;
        }
        $equal = [];
        foreach ($terms as $n) {
            if ($n === ['const', true]) {
                continue;
            }
            if (($n[0] === 'cmp' || $n[0] === 'between') && $n[1] === 'timecreated' && ($n[0] === 'cmp'
                    ? $n[2] !== '<>' : !$n[4])) {
                continue;
            }
            if ($n[0] !== 'cmp' || $n[2] !== '=' || !in_array($n[1], $columns, true) || !is_numeric($n[3])
                    || (string) (int) $n[3] !== trim((string) $n[3])) {
                return null;
            }
            if (array_key_exists($n[1], $equal) && $equal[$n[1]] !== (int) $n[3]) {
                return null;
            }
            $equal[$n[1]] = (int) $n[3];
        }
        return $equal;
    }

    /**
     * The conditions every matching row meets: the nodes of tree() joined by its ANDs, at any depth.
     *
     * @return array[]|null [] for an empty fragment, null when it cannot be parsed
     */
    public function and_terms(): ?array {
        try {
            $node = $this->tree();
        } catch (unsupported_query $e) {
            return null;
        }
        $pending = $node === null ? [] : [$node];
        $terms = [];
        while ($pending) {
            $n = array_shift($pending);
            if ($n[0] === 'and') {
                array_push($pending, ...$n[1]);
            } else {
                $terms[] = $n;
            }
        }
        return $terms;
    }

    /**
     * Parses the fragment into an expression tree (for the InfluxQL translation).
     *
     * Nodes: ['and', [nodes]], ['or', [nodes]], ['not', node], ['cmp', column, op, value], ['in', column, [values], negated],
     * ['isnull', column, negated], ['between', column, low, high, negated], ['const', bool].
     *
     * @return array|null null for an empty fragment
     * @throws unsupported_query when the fragment is outside the subset (functions, LIKE, subqueries, arithmetic...)
     */
    public function tree(): ?array {
        $toks = $this->significant();
        if (!$toks) {
            return null;
        }
        $pos = 0;
        $node = self::parse_or($toks, $pos);
        if ($pos !== count($toks)) {
            throw new unsupported_query('unexpected "' . $toks[$pos]['s'] . '"');
        }
        return $node;
    }

    /**
     * OR level.
     *
     * @param array[] $toks
     * @param int $pos
     * @return array
     */
    protected static function parse_or(array $toks, int &$pos): array {
        $items = [self::parse_and($toks, $pos)];
        while (self::is_keyword($toks[$pos] ?? null, 'OR')) {
            $pos++;
            $items[] = self::parse_and($toks, $pos);
        }
        return count($items) === 1 ? $items[0] : ['or', $items];
    }

    /**
     * AND level.
     *
     * @param array[] $toks
     * @param int $pos
     * @return array
     */
    protected static function parse_and(array $toks, int &$pos): array {
        $items = [self::parse_not($toks, $pos)];
        while (self::is_keyword($toks[$pos] ?? null, 'AND')) {
            $pos++;
            $items[] = self::parse_not($toks, $pos);
        }
        return count($items) === 1 ? $items[0] : ['and', $items];
    }

    /**
     * NOT level.
     *
     * @param array[] $toks
     * @param int $pos
     * @return array
     */
    protected static function parse_not(array $toks, int &$pos): array {
        if (self::is_keyword($toks[$pos] ?? null, 'NOT')) {
            $pos++;
            return ['not', self::parse_not($toks, $pos)];
        }
        $tok = $toks[$pos] ?? null;
        if ($tok === null) {
            throw new unsupported_query('incomplete condition');
        }
        if ($tok['t'] === self::T_PUNCT && $tok['s'] === '(') {
            $pos++;
            $node = self::parse_or($toks, $pos);
            if (($toks[$pos]['s'] ?? null) !== ')') {
                throw new unsupported_query('missing ")"');
            }
            $pos++;
            return $node;
        }
        return self::parse_predicate($toks, $pos);
    }

    /**
     * One comparison.
     *
     * @param array[] $toks
     * @param int $pos
     * @return array
     */
    protected static function parse_predicate(array $toks, int &$pos): array {
        $left = self::parse_operand($toks, $pos);
        $tok = $toks[$pos] ?? null;
        if ($tok === null) {
            throw new unsupported_query('a condition without a comparison');
        }
        $negated = false;
        if (self::is_keyword($tok, 'IS')) {
            $pos++;
            if (self::is_keyword($toks[$pos] ?? null, 'NOT')) {
                $negated = true;
                $pos++;
            }
            if (!self::is_keyword($toks[$pos] ?? null, 'NULL')) {
                throw new unsupported_query('IS without NULL');
            }
            $pos++;
            return ['isnull', self::need_column($left), $negated];
        }
        if (self::is_keyword($tok, 'NOT')) {
            $negated = true;
            $pos++;
            $tok = $toks[$pos] ?? null;
        }
        if (self::is_keyword($tok, 'IN')) {
            $pos++;
            if (($toks[$pos]['s'] ?? null) !== '(') {
                throw new unsupported_query('IN without a list');
            }
            $pos++;
            $values = [];
            while (true) {
                $values[] = self::need_value(self::parse_operand($toks, $pos));
                $sep = $toks[$pos]['s'] ?? null;
                $pos++;
                if ($sep === ')') {
                    break;
                }
                if ($sep !== ',') {
                    throw new unsupported_query('IN list');
                }
            }
            return ['in', self::need_column($left), $values, $negated];
        }
        if (self::is_keyword($tok, 'BETWEEN')) {
            $pos++;
            $low = self::need_value(self::parse_operand($toks, $pos));
            if (!self::is_keyword($toks[$pos] ?? null, 'AND')) {
                throw new unsupported_query('BETWEEN without AND');
            }
            $pos++;
            $high = self::need_value(self::parse_operand($toks, $pos));
            return ['between', self::need_column($left), $low, $high, $negated];
        }
        if ($negated) {
            throw new unsupported_query('NOT ' . $tok['s']);
        }
        if ($tok['t'] !== self::T_OP || !in_array($tok['s'], ['=', '<>', '!=', '<', '<=', '>', '>='], true)) {
            throw new unsupported_query('operator "' . $tok['s'] . '"');
        }
        $op = $tok['s'] === '!=' ? '<>' : $tok['s'];
        $pos++;
        $right = self::parse_operand($toks, $pos);
        if ($left[0] === 'value' && $right[0] === 'value') {
            return ['const', self::compare_constants($left[1], $op, $right[1])];
        }
        if ($left[0] === 'value') {
            $op = ['<' => '>', '>' => '<', '<=' => '>=', '>=' => '<=', '=' => '=', '<>' => '<>'][$op];
            [$left, $right] = [$right, $left];
        }
        if ($right[0] !== 'value') {
            throw new unsupported_query('comparison of two columns');
        }
        return ['cmp', $left[1], $op, $right[1]];
    }

    /**
     * A column or a value.
     *
     * @param array[] $toks
     * @param int $pos
     * @return array ['column', name] or ['value', value]
     */
    protected static function parse_operand(array $toks, int &$pos): array {
        $tok = $toks[$pos] ?? null;
        if ($tok === null) {
            throw new unsupported_query('incomplete condition');
        }
        [$isvalue, $value] = self::value_of($tok);
        if ($isvalue) {
            $pos++;
            return ['value', $value];
        }
        $col = self::column_name($tok);
        if ($col === null) {
            throw new unsupported_query('"' . $tok['s'] . '"');
        }
        $next = $toks[$pos + 1] ?? null;
        if ($next !== null && (($next['t'] === self::T_PUNCT && in_array($next['s'], ['(', '.', '['], true))
                || ($next['t'] === self::T_OP && !in_array($next['s'], ['=', '<>', '!=', '<', '<=', '>', '>='], true)))) {
            throw new unsupported_query('expression "' . $tok['s'] . $next['s'] . '"');
        }
        $pos++;
        return ['column', $col];
    }

    /**
     * The column of an operand.
     *
     * @param array $operand
     * @return string
     */
    protected static function need_column(array $operand): string {
        if ($operand[0] !== 'column') {
            throw new unsupported_query('a value where a column is expected');
        }
        return $operand[1];
    }

    /**
     * The value of an operand.
     *
     * @param array $operand
     * @return mixed
     */
    protected static function need_value(array $operand) {
        if ($operand[0] !== 'value') {
            throw new unsupported_query('a column where a value is expected');
        }
        return $operand[1];
    }

    /**
     * Compares two constants as PostgreSQL would for the simple cases Moodle writes (`1 = 1`, `1 = 0`).
     *
     * @param mixed $a
     * @param string $op
     * @param mixed $b
     * @return bool
     */
    protected static function compare_constants($a, string $op, $b): bool {
        if ($a === null || $b === null) {
            return false;
        }
        if (!is_numeric($a) || !is_numeric($b)) {
            throw new unsupported_query('comparison of two constants that are not numbers');
        }
        $a = (float) $a;
        $b = (float) $b;
        switch ($op) {
            case '=':
                return $a == $b;
            case '<>':
                return $a != $b;
            case '<':
                return $a < $b;
            case '<=':
                return $a <= $b;
            case '>':
                return $a > $b;
            default:
                return $a >= $b;
        }
    }
}
