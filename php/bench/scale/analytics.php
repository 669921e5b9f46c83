<?php
// The analytics the project ships, timed on the sink's schema against the same answer from logstore_standard_log:
//  - every PostgreSQL query of docs/analytics.md (the `-- query: pg.NAME` blocks; {table}, {from}, {to}, {user}
//    filled in);
//  - every panel and variable query of docs/grafana/dashboards/postgres/*.json, with Grafana's macros and template
//    variables expanded as Grafana expands them ($__timeFilter, $__timeGroupAlias..., a multi-value $course as a
//    quoted list), except the dashboards that read no event (system-health: the plugin's metrics tables in Moodle's
//    database), which are listed as such.
// The time range is the whole generated window. The standard answer is plain SQL over logstore_standard_log: the one
// docs/analytics.md gives under the query (`-- standard: pg.NAME`) when it does; else, for a query that only sums the
// counts of one continuous aggregate, the same query over the events (scale_flat_twin()),
// else the same SQL with every relation of the sink replaced by its definition, read from the catalog: the events
// table becomes logstore_standard_log with `time` = to_timestamp(timecreated) and `other` as jsonb (the standard
// store's 'null' text as SQL NULL, as the sink keeps it), restricted to the range; a continuous aggregate or view
// becomes its own SELECT over that, time_bucket() as date_bin() with TimescaleDB's origin. So no twin is written by
// hand and the twins follow schema changes. Each side: one warm-up, then the median of 5
// (3 when the warm-up took over 10 s). Answers must agree (timestamps to the second: the sink's `time` holds a
// sub-second offset); a query with LIMIT whose cut falls in a tie is checked against both sides' full answers.
//   php analytics.php OUT.json

require_once(__DIR__ . '/lib/common.php');

$out = $argv[1];
$root = dirname(__DIR__, 3);
$load = scale_read(dirname($out) . '/load.json');
$reports = scale_read(dirname($out) . '/reports.json');
[$start, $end] = $load['window'];
$picks = $reports['picks'] ?? null;
$table = explode('.', $load['tsdb_table'] ?? 'public.logstore_tsdb_log')[1];
$ts = scale_pg(scale_ts_dbname());
$std = scale_pg(scale_site()['dbname']);
// Both sessions as docs/analytics.md asks of the dashboards' database (`jit = off`): with PostgreSQL's default, a query
// over many chunks pays the compilation of its expressions for each (seconds), and the standard table's long scans
// were not faster with it either (docs/SCALE.md).
scale_rows($ts, 'SET jit = off');
scale_rows($std, 'SET jit = off');
$failures = [];

// ---- the queries ----------------------------------------------------------------------------------------------------
$queries = [];
$md = (string) file_get_contents("$root/docs/analytics.md");
$fill = fn(string $sql) => trim(rtrim(trim(strtr($sql, ['{table}' => $table, '{from}' => gmdate('Y-m-d H:i:s+00', $start),
    '{to}' => gmdate('Y-m-d H:i:s+00', $end), '{user}' => (string) ($picks['user_site'] ?? 2)])), ';'));
// The page's own plain-SQL twin of a query (`-- standard: pg.NAME`), when it gives one.
preg_match_all('/```sql\n-- standard: (pg\.\w+)\n(.*?)```/s', $md, $m, PREG_SET_ORDER);
$documented = [];
foreach ($m as [, $name, $sql]) {
    $documented[$name] = $fill($sql);
}
preg_match_all('/```sql\n-- query: (pg\.\w+)\n(.*?)```/s', $md, $m, PREG_SET_ORDER);
foreach ($m as [, $name, $sql]) {
    $queries[] = ['source' => 'docs/analytics.md', 'name' => $name, 'sql' => $fill($sql),
        'standard_sql' => $documented[$name] ?? null];
}

/** Grafana's SQL macros for the range (grafana-postgresql-datasource). */
function scale_grafana_macros(string $sql, int $from, int $to): string {
    $iso = fn(int $t) => gmdate('Y-m-d\TH:i:s\Z', $t);
    $seconds = function(string $interval): int {
        if (!preg_match('/^(\d+)(s|m|h|d|w)$/', trim($interval, " '"), $m)) {
            throw new RuntimeException("interval $interval");
        }
        return (int) $m[1] * ['s' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, 'w' => 604800][$m[2]];
    };
    return preg_replace_callback('/\$__(\w+)\(([^()]*(?:\([^()]*\)[^()]*)*)\)/', function($m) use ($from, $to, $iso, $seconds) {
        $args = array_map('trim', $m[2] === '' ? [] : explode(',', $m[2]));
        switch ($m[1]) {
            case 'time':
                return "{$args[0]} AS \"time\"";
            case 'timeFilter':
                return "{$args[0]} BETWEEN '{$iso($from)}' AND '{$iso($to)}'";
            case 'timeFrom':
                return "'{$iso($from)}'";
            case 'timeTo':
                return "'{$iso($to)}'";
            case 'timeGroup':
            case 'timeGroupAlias':
                $s = $seconds($args[1]);
                return "floor(extract(epoch from {$args[0]})/$s)*$s" . ($m[1] === 'timeGroupAlias' ? ' AS "time"' : '');
            case 'unixEpochFilter':
                return "{$args[0]} >= $from AND {$args[0]} <= $to";
        }
        throw new RuntimeException('unknown Grafana macro ' . $m[0]);
    }, $sql);
}

/** Grafana's template variables: $name, ${name}, [[name]]; a multi-value variable as a quoted SQL list. */
function scale_grafana_vars(string $sql, array $vars): string {
    return preg_replace_callback('/\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]/', function($m) use ($vars) {
        $name = $m[1] !== '' ? $m[1] : ($m[2] !== '' ? $m[2] : $m[3]);
        if (!array_key_exists($name, $vars)) {
            return $m[0];
        }
        $v = $vars[$name];
        return is_array($v) ? implode(',', array_map(fn($x) => "'" . str_replace("'", "''", (string) $x) . "'", $v))
            : str_replace("'", "''", (string) $v);
    }, $sql);
}

$vars = ['table' => $table, 'course' => [$picks['course_big'] ?? 2, $picks['course_median'] ?? 3],
    'user' => $picks['user_site'] ?? 2];
$excluded = [];
foreach (glob("$root/docs/grafana/dashboards/postgres/*.json") as $file) {
    $board = json_decode((string) file_get_contents($file), true);
    $items = [];
    foreach ($board['templating']['list'] ?? [] as $v) {
        if (($v['type'] ?? '') === 'query') {
            $items[] = ["variable \${$v['name']}", is_array($v['query']) ? ($v['query']['query'] ?? '') : $v['query']];
        }
    }
    foreach ($board['panels'] ?? [] as $p) {
        foreach ($p['targets'] ?? [] as $t) {
            $items[] = ["panel \"{$p['title']}\"", $t['rawSql'] ?? ''];
        }
    }
    $bytable = array_filter($items, fn($i) => strpos($i[1], '${table}') !== false || strpos($i[1], '$table') !== false);
    if (!$bytable) {
        $excluded[] = basename($file) . ': ' . count($items) . ' queries on Moodle\'s own tables (no event of the log)';
        continue;
    }
    foreach ($items as [$what, $sql]) {
        $queries[] = ['source' => 'grafana ' . basename($file), 'name' => $what,
            'sql' => scale_grafana_macros(scale_grafana_vars($sql, $vars), $start, $end)];
    }
}

// ---- the standard twin of a query -----------------------------------------------------------------------------------
/** The SELECT defining a relation of the sink (continuous aggregate or view), or null for the events table. */
function scale_definition($ts, string $rel, string $table): ?string {
    if ($rel === $table) {
        return null;
    }
    $def = scale_value($ts, 'SELECT view_definition FROM timescaledb_information.continuous_aggregates
        WHERE view_name = $1', [$rel]) ?? scale_value($ts, 'SELECT pg_get_viewdef(to_regclass($1))', [$rel]);
    if ($def === null) {
        throw new RuntimeException("no definition of $rel to compute it from logstore_standard_log");
    }
    return rtrim(trim($def), ';');
}

/** The query with every relation of the sink in FROM / JOIN replaced by its standard twin (recursively). */
function scale_standard_twin($ts, string $sql, string $table, int $from, int $to, int $depth = 0): string {
    if ($depth > 5) {
        throw new RuntimeException('relations nested too deep');
    }
    $sql = preg_replace_callback('/\b(FROM|JOIN)\s+(?:public\.)?"?(' . $table . '\w*)"?(?=[\s;)]|$)/i',
        function($m) use ($ts, $table, $from, $to, $depth) {
            $def = scale_definition($ts, $m[2], $table);
            if ($def === null) {
                $cols = "id, eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid,
                    contextlevel, contextinstanceid, userid, courseid, relateduserid, anonymous, NULLIF(other, 'null')::jsonb AS other,
                    timecreated, origin, ip, realuserid, to_timestamp(timecreated) AS \"time\"";
                // The range of the question, widened by a day so that every bucket starting in it is whole.
                $inner = "SELECT $cols FROM mdl_logstore_standard_log WHERE timecreated >= $from AND timecreated < " .
                    ($to + 86400);
            } else {
                $inner = scale_standard_twin($ts, $def, $table, $from, $to, $depth + 1);
            }
            return "{$m[1]} ($inner) {$m[2]}";
        }, $sql);
    // time_bucket(width, ts) is date_bin(width, ts, origin) with TimescaleDB's default origin (a Monday, 2000-01-03).
    return preg_replace('/\btime_bucket\(((?:[^(),]|\([^()]*\))+),((?:[^()]|\([^()]*\))+)\)/',
        "date_bin($1,$2, '2000-01-03 00:00:00+00'::timestamptz)", $sql);
}

/** Splits a SELECT list (or any comma list) at its top-level commas. */
function scale_split_list(string $list): array {
    $items = [];
    $depth = 0;
    $cur = '';
    foreach (preg_split("/('(?:[^']|'')*')/", $list, -1, PREG_SPLIT_DELIM_CAPTURE) as $i => $part) {
        if ($i % 2 === 1) {
            $cur .= $part;
            continue;
        }
        foreach (str_split($part) as $ch) {
            $depth += $ch === '(' ? 1 : ($ch === ')' ? -1 : 0);
            if ($ch === ',' && $depth === 0) {
                $items[] = trim($cur);
                $cur = '';
            } else {
                $cur .= $ch;
            }
        }
    }
    $items[] = trim($cur);
    return $items;
}

/**
 * The plain SQL one would write on logstore_standard_log instead of reading a continuous aggregate of counts, when it
 * is the same question: the query reads one aggregate defined as `SELECT time_bucket(W, time) AS B, col..., count(*)
 * [FILTER (WHERE c)] AS C... FROM events [WHERE P] GROUP BY ...`, groups or deduplicates its rows, and uses each C only
 * as sum(C) (its other aggregates being count(DISTINCT), min or max of the grouping columns): then it is the same
 * query over the events, sum(C) becoming count(*) [FILTER (WHERE c)] and B the bucket of each event. Null when the
 * query is not of that shape (its twin then computes the aggregate from its definition).
 */
function scale_flat_twin($ts, string $sql, string $table, int $from, int $to): ?string {
    preg_match_all('/\b(?:FROM|JOIN)\s+(?:public\.)?"?(' . $table . '\w*)"?/i', $sql, $rels);
    if (count($rels[1]) !== 1 || $rels[1][0] === $table) {
        return null;
    }
    $rel = $rels[1][0];
    $def = scale_value($ts, 'SELECT view_definition FROM timescaledb_information.continuous_aggregates WHERE view_name = $1',
        [$rel]);
    if ($def === null || !preg_match('/^\s*SELECT\s+(.*?)\s+FROM\s+(?:public\.)?"?' . $table . '"?\s+(?:WHERE\s+(.*?)\s+)?GROUP BY\s/is',
            $def, $m)) {
        return null;
    }
    $strip = fn(string $x) => preg_replace('/\b' . $table . '\./', '', $x);
    $where = isset($m[2]) && $m[2] !== '' ? $strip($m[2]) : 'true';
    $bucket = null;
    $counts = [];
    foreach (scale_split_list($m[1]) as $item) {
        if ($bucket === null && preg_match('/^time_bucket\(([^,]+),\s*(?:\w+\.)?"?time"?\)\s+AS\s+(\w+)$/is', $item, $b)) {
            $bucket = [$b[2], $b[1]];
        } else if (preg_match('/^count\(\*\)(?:\s+FILTER\s+\(WHERE\s+(.*)\))?\s+AS\s+(\w+)$/is', $item, $c)) {
            $counts[$c[2]] = 'count(*)' . ($c[1] !== '' ? ' FILTER (WHERE ' . $strip($c[1]) . ')' : '');
        } else if (!preg_match('/^(?:\w+\.)?"?\w+"?$/', $item)) {
            return null;
        }
    }
    if ($bucket === null || !$counts) {
        return null;
    }
    if (!preg_match('/\bGROUP BY\b|\bDISTINCT\b|\b(sum|min|max)\s*\(/i', $sql)
            || preg_match('/\bcount\s*\(\s*(?!DISTINCT\b)|\bavg\s*\(/i', $sql)) {
        return null;
    }
    // Every use of a count is sum(count): none is left once the sums, literals and quoted names are taken out.
    $sumre = fn(string $c) => '/\bsum\(\s*"?' . $c . '"?\s*\)/i';
    $bare = preg_replace(array_merge(array_map($sumre, array_keys($counts)), ["/'(?:[^']|'')*'/", '/"[^"]*"/']),
        array_merge(array_fill(0, count($counts), ''), ["''", '""']), $sql);
    foreach (array_keys($counts) as $c) {
        if (preg_match('/\b' . $c . '\b/', $bare)) {
            return null;
        }
    }
    foreach ($counts as $c => $expr) {
        $sql = preg_replace($sumre($c), $expr, $sql);
    }
    // The bucket column, outside string literals and quoted names.
    $parts = preg_split("/('(?:[^']|'')*'|\"[^\"]*\")/", $sql, -1, PREG_SPLIT_DELIM_CAPTURE);
    foreach ($parts as $i => $part) {
        if ($i % 2 === 0) {
            $parts[$i] = preg_replace('/\b' . $bucket[0] . '\b/',
                "date_bin({$bucket[1]}, \"time\", '2000-01-03 00:00:00+00'::timestamptz)", $part);
        }
    }
    $sql = implode('', $parts);
    $raw = scale_standard_twin($ts, "SELECT * FROM $table", $table, $from, $to);
    return preg_replace('/\b(FROM|JOIN)\s+(?:public\.)?"?' . $rel . '"?(?=[\s;)]|$)/i',
        "$1 (SELECT * FROM ($raw) e WHERE $where) $rel", $sql);
}

// ---- running and comparing ------------------------------------------------------------------------------------------
/** Runs a query warm: one warm-up, then 5 timed runs (3 when the warm-up took over 10 s). */
function scale_time_query($db, string $sql): array {
    $t = hrtime(true);
    $rows = scale_rows($db, $sql);
    $first = scale_ms($t);
    $runs = $first > 10000 ? 3 : 5;
    $samples = [];
    for ($i = 0; $i < $runs; $i++) {
        $t = hrtime(true);
        scale_rows($db, $sql);
        $samples[] = scale_ms($t);
    }
    return [$rows, scale_median($samples), $samples, $first];
}

/** JSON with object keys sorted at every level. */
function scale_sorted_json($v) {
    if (is_array($v)) {
        if ($v !== [] && array_keys($v) !== range(0, count($v) - 1)) {
            ksort($v);
        }
        return array_map('scale_sorted_json', $v);
    }
    return $v;
}

/**
 * Rows as a sorted list of canonical rows: numbers as numbers, timestamps to the second, JSON (`other`: the standard
 * store's json_encode() text, the sink's jsonb) as the same value, the standard store's 'null' text as NULL.
 */
function scale_canonical_rows(array $rows): array {
    $out = [];
    foreach ($rows as $row) {
        $r = [];
        foreach ($row as $v) {
            if ($v === 'null') {
                $v = null;
            } else if ($v !== null && ($v[0] ?? '') === '{' && is_array($j = json_decode($v, true))) {
                $v = json_encode(scale_sorted_json($j), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
            } else if ($v !== null && preg_match('/^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)\.\d+(.*)$/', $v, $m)) {
                $v = $m[1] . $m[2];
            } else if ($v !== null && is_numeric($v)) {
                $v = (string) ((float) $v == (int) $v ? (int) $v : round((float) $v, 6));
            }
            $r[] = $v;
        }
        $out[] = json_encode($r);
    }
    sort($out);
    return $out;
}

$results = [];
foreach ($queries as $q) {
    $r = ['source' => $q['source'], 'name' => $q['name'], 'tsdb_sql' => $q['sql']];
    try {
        if (!empty($q['standard_sql'])) {
            $r['standard_twin'] = 'documented';
            $r['standard_sql'] = $q['standard_sql'];
        } else {
            $flat = scale_flat_twin($ts, $q['sql'], $table, $start, $end);
            preg_match_all('/\\b(?:FROM|JOIN)\\s+(?:public\\.)?"?(' . $table . '\\w*)"?/i', $q['sql'], $rels);
            $r['standard_twin'] = $flat !== null ? 'flat' : (array_unique($rels[1]) === [$table] ? 'events' : 'definition');
            $r['standard_sql'] = $flat ?? scale_standard_twin($ts, $q['sql'], $table, $start, $end);
        }
        [$trows, $r['tsdb_ms'], $r['tsdb_samples'], $r['tsdb_first_ms']] = scale_time_query($ts, $q['sql']);
        [$srows, $r['standard_ms'], $r['standard_samples'], $r['standard_first_ms']] = scale_time_query($std, $r['standard_sql']);
        $r['rows'] = count($trows);
        $a = scale_canonical_rows($srows);
        $b = scale_canonical_rows($trows);
        $r['same_answer'] = $a === $b ? 'match' : 'mismatch';
        if ($a !== $b && preg_match('/\bLIMIT\s+\d+\s*$/i', $q['sql'])) {
            // A LIMIT cutting through equal sort keys: the full answers must agree and each cut come from them.
            $strip = fn(string $s) => preg_replace('/\bLIMIT\s+\d+\s*$/i', '', $s);
            $fa = scale_canonical_rows(scale_rows($std, $strip($r['standard_sql'])));
            $fb = scale_canonical_rows(scale_rows($ts, $strip($q['sql'])));
            if ($fa === $fb && !array_diff($a, $fa) && !array_diff($b, $fb) && count($a) === count($b)) {
                $r['same_answer'] = 'tie';
            }
        }
        if ($r['same_answer'] === 'mismatch') {
            $diff = array_values(array_diff($a, $b));
            $r['difference'] = ['standard_rows' => count($a), 'tsdb_rows' => count($b),
                'first_standard_only' => array_slice($diff, 0, 3), 'first_tsdb_only' => array_slice(array_values(array_diff($b, $a)), 0, 3)];
            $failures[] = "analytics {$q['source']} {$q['name']}: the answers differ ({$r['difference']['standard_rows']} " .
                "standard rows, {$r['difference']['tsdb_rows']} tsdb rows; e.g. standard " .
                json_encode($r['difference']['first_standard_only'][0] ?? null) . ', tsdb ' .
                json_encode($r['difference']['first_tsdb_only'][0] ?? null) . ')';
        }
        $r['speedup'] = $r['tsdb_ms'] > 0 ? round($r['standard_ms'] / $r['tsdb_ms'], 2) : null;
        scale_say(sprintf('%-40s standard %9.1f ms  tsdb %9.1f ms  %6.1fx  %s', substr("{$q['name']}", 0, 40),
            $r['standard_ms'], $r['tsdb_ms'], $r['speedup'], $r['same_answer']));
    } catch (\Throwable $e) {
        $r['error'] = $e->getMessage();
        $failures[] = "analytics {$q['source']} {$q['name']}: " . $e->getMessage();
        scale_say("{$q['name']}: ERROR " . $e->getMessage());
    }
    $results[] = $r;
}
scale_write($out, ['range' => [$start, $end], 'variables' => $vars, 'queries' => $results, 'excluded' => $excluded,
    'failures' => $failures]);
exit($failures ? 1 : 0);
