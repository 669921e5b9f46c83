<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The SQL fragment handling of the readers, in the site's classes without a database: tokens, placeholders, the timecreated range (which
 * must never be wider than the fragment allows nor narrower) and the expression tree.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use logstore_tsdb\local\reader\fragment;
use logstore_tsdb\local\reader\unsupported_query;

/**
 * Fragment tests.
 */
class fragment_test extends base_testcase {

    /**
     * Placeholders become $n (pgsql) or ? (PDO) with their values in order; quoted text is never touched.
     */
    public function test_placeholders(): void {
        $f = fragment::parse("courseid = :c AND origin <> 'a?:b\$1''x' AND \"userid\" IN (:u, :v) AND other::text <> :c",
            ['u' => 1, ':v' => 2, 'c' => 3, 'unused' => 9]);
        $this->assertSame(["courseid = \$1 AND origin <> 'a?:b\$1''x' AND \"userid\" IN (\$2, \$3) AND other::text <> \$4",
            [3, 1, 2, 3]], $f->to_sql(true));
        $this->assertSame(["courseid = ? AND origin <> 'a?:b\$1''x' AND \"userid\" IN (?, ?) AND other::text <> ?",
            [3, 1, 2, 3]], $f->to_sql(false));
        $this->assertSame(['userid = $5 AND crud = $6', [7, 'r']], fragment::parse('userid = ? AND crud = ?', [7, 'r'])
            ->to_sql(true, 5));
        $this->assertSame(['x = $1 AND y = $2', ['b', 'a']], fragment::parse('x = $2 AND y = $1', ['a', 'b'])->to_sql(true));
        $this->assertSame(['a = $1', [1]], fragment::parse('a = :t', ['t' => true])->to_sql(true));
        $this->assertSame(["e = E'it\\'s ?' AND d = \$1", [5]], fragment::parse("e = E'it\\'s ?' AND d = ?", [5])->to_sql(true));
        $this->assertSame(['a = $1  ', [1]], fragment::parse('a = ? /* ? :x */', [1])->to_sql(true));
        $this->assertTrue(fragment::parse('  ', [])->is_empty());
        foreach ([['a = :x AND b = ?', ['x' => 1, 2], 'mixed'], ['a = :x', [], 'missing named'], ['a = ?', [], 'more ?'],
                ['a = ?', [1, 2], '2 parameters for 1'], ["a = 'open", [], 'unterminated'], ['a = :x', ['x' => [1]], 'scalars']]
                as [$sql, $params, $msg]) {
            try {
                fragment::parse($sql, $params);
                $this->fail("$sql accepted");
            } catch (coding_exception $e) {
                $this->assertStringContainsString(explode(' ', $msg)[0], $e->getMessage(), $sql);
            }
        }
    }

    /**
     * The timecreated range: exact for top-level conjuncts of every shape, nothing when it could be wrong.
     */
    public function test_timecreated_range(): void {
        $cases = [
            ['timecreated > :a', ['a' => 100], [101, null]],
            ['timecreated >= :a', ['a' => 100], [100, null]],
            ['timecreated < :a', ['a' => 100], [null, 100]],
            ['timecreated <= :a', ['a' => 100], [null, 101]],
            ['timecreated = :a', ['a' => 100], [100, 101]],
            ['timecreated = :a', ['a' => 100.5], [101, 101]],
            ['timecreated > :a', ['a' => 100.5], [101, null]],
            ['timecreated >= :a', ['a' => '100.5'], [101, null]],
            ['timecreated < :a', ['a' => 100.5], [null, 101]],
            ['timecreated <= :a', ['a' => 100.5], [null, 101]],
            [':a < timecreated', ['a' => 100], [101, null]],
            ['100 >= timecreated', [], [null, 101]],
            ['timecreated > :a AND timecreated < :b', ['a' => 100, 'b' => 200], [101, 200]],
            ['courseid = 3 AND (timecreated > :a AND timecreated < :b) AND anonymous = 0', ['a' => 1, 'b' => 9], [2, 9]],
            ['timecreated BETWEEN :a AND :b AND x = 1', ['a' => 10, 'b' => 20], [10, 21]],
            ['timecreated > :a AND timecreated > :b', ['a' => 10, 'b' => 20], [21, null]],
            ['TimeCreated > 5', [], [6, null]],
            ['"timecreated" > 5', [], [6, null]],
            // Nothing that could be wrong.
            ['timecreated > :a OR courseid = 3', ['a' => 1], [null, null]],
            ['NOT timecreated > :a', ['a' => 1], [null, null]],
            ['NOT (timecreated > :a AND x = 1)', ['a' => 1], [null, null]],
            ['timecreated > :a + 5', ['a' => 1], [null, null]],
            ['timecreated > :a::bigint', ['a' => 1], [null, null]],
            ['timecreated <> :a', ['a' => 1], [null, null]],
            ['timecreated > :a', ['a' => null], [null, null]],
            ['timecreated > :a', ['a' => 'abc'], [null, null]],
            ['l.timecreated > 5', [], [null, null]],
            ['timecreated IN (1, 2)', [], [null, null]],
            ['(timecreated > 1 OR x = 2) AND y = 3', [], [null, null]],
            ['x BETWEEN 1 AND 5 AND timecreated < 9', [], [null, 9]],
        ];
        foreach ($cases as [$sql, $params, $want]) {
            $this->assertSame($want, fragment::parse($sql, $params)->timecreated_range(), $sql);
        }
        // Brute force: the range never excludes a second the fragment accepts, and bounds it exactly.
        foreach (['>', '>=', '<', '<=', '='] as $op) {
            foreach ([99, 99.5, 100, '100', 100.25] as $v) {
                [$lo, $hi] = fragment::parse("timecreated $op :v", ['v' => $v])->timecreated_range();
                for ($t = 95; $t <= 105; $t++) {
                    $match = ['>' => $t > $v, '>=' => $t >= $v, '<' => $t < $v, '<=' => $t <= $v, '=' => $t == $v][$op];
                    $inrange = ($lo === null || $t >= $lo) && ($hi === null || $t < $hi);
                    $this->assertSame($match, $inrange, "timecreated $op $v at $t");
                }
            }
        }
    }

    /**
     * The expression tree (InfluxQL translation input), and what it refuses.
     */
    public function test_tree(): void {
        $tree = fragment::parse('courseid = :c AND (crud IN (\'c\', \'u\') OR userid <> 5) AND relateduserid IS NOT NULL '
            . 'AND objectid NOT IN (1) AND 1 = 1 AND timecreated BETWEEN 1 AND 2', ['c' => 4])->tree();
        $this->assertSame(['and', [
            ['cmp', 'courseid', '=', 4],
            ['or', [['in', 'crud', ['c', 'u'], false], ['cmp', 'userid', '<>', '5']]],
            ['isnull', 'relateduserid', true],
            ['in', 'objectid', ['1'], true],
            ['const', true],
            ['between', 'timecreated', '1', '2', false],
        ]], $tree);
        $this->assertSame(['cmp', 'userid', '>', '5'], fragment::parse('5 < userid', [])->tree());
        $this->assertSame(['cmp', 'x', '<>', null], fragment::parse('x != NULL', [])->tree());
        $this->assertNull(fragment::parse('', [])->tree());
        foreach (['a LIKE :x' => 'LIKE', 'lower(a) = 1' => 'lower(', 'a = b' => 'two columns', 'a.b = 1' => 'a.',
                'a = 1 +' => '+', 'EXISTS (SELECT 1)' => 'EXISTS', '(a = 1' => ')', "a = E'x'" => "E'x'",
                'a IS 5' => 'IS without NULL', 'a' => 'without a comparison'] as $sql => $reason) {
            try {
                fragment::parse($sql, ['x' => 1])->tree();
                $this->fail("$sql parsed");
            } catch (unsupported_query $e) {
                $this->assertStringContainsString($reason, $e->getMessage(), $sql);
            }
        }
    }
}
