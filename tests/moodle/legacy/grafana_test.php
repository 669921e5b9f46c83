<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The Grafana dashboards of docs/grafana/: every panel query and every variable query, with Grafana's macros and
 * template variables expanded the way Grafana expands them, run against the real PostgreSQL, InfluxDB and Moodle
 * database of the analytics fixture; each must return rows of the shape its panel format needs, and the headline
 * figures must equal the ones computed from the generated events. The provisioning files are checked too.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/analytics_fixture.php');

/**
 * Grafana tests.
 */
class grafana_test extends base_testcase {

    /** @var int Dashboard time range. */
    protected $from;

    /** @var int */
    protected $to;

    /** @var string[] Courses picked in the course variable. */
    const COURSES = ['3', '5'];

    /** @var int The user of the user dashboards. */
    const USER = 9;

    /**
     * The fixture; the dashboards' time range is the three weeks of data.
     */
    protected function setUp(): void {
        parent::setUp();
        if (!analytics_fixture::setup()) {
            $this->skip_without_server('SKIPPED: needs PostgreSQL and InfluxDB (TSDB_TEST_PG_HOST, TSDB_TEST_INFLUX_URL)');
        }
        $this->from = log_dataset::START;
        $this->to = log_dataset::START + analytics_fixture::DAYS * 86400;
    }

    /**
     * The dashboards.
     *
     * @param string $backend postgres or influxdb
     * @return array file => decoded JSON
     */
    protected static function dashboards(string $backend): array {
        $out = [];
        foreach (glob(__DIR__ . "/../../../docs/grafana/dashboards/$backend/*.json") as $file) {
            $json = json_decode(file_get_contents($file), true);
            if (!is_array($json)) {
                throw new RuntimeException("$file is not JSON");
            }
            $out[basename($file)] = $json;
        }
        return $out;
    }

    /**
     * Grafana's SQL macros (grafana-postgresql-datasource, pkg/tsdb/.../macros.go) for the time range.
     *
     * @param string $sql
     * @return string
     */
    protected function expand_sql_macros(string $sql): string {
        $from = gmdate('Y-m-d\TH:i:s\Z', $this->from);
        $to = gmdate('Y-m-d\TH:i:s\Z', $this->to);
        $seconds = function(string $interval): int {
            if (!preg_match('/^(\d+)(s|m|h|d|w)$/', trim($interval, " '"), $m)) {
                throw new RuntimeException("interval $interval");
            }
            return (int) $m[1] * ['s' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, 'w' => 604800][$m[2]];
        };
        return preg_replace_callback('/\$__(\w+)\(([^()]*(?:\([^()]*\)[^()]*)*)\)/', function($m) use ($from, $to, $seconds) {
            $args = array_map('trim', $m[2] === '' ? [] : explode(',', $m[2]));
            switch ($m[1]) {
                case 'time':
                    return "{$args[0]} AS \"time\"";
                case 'timeEpoch':
                    return "extract(epoch from {$args[0]}) as \"time\"";
                case 'timeFilter':
                    return "{$args[0]} BETWEEN '$from' AND '$to'";
                case 'timeFrom':
                    return "'$from'";
                case 'timeTo':
                    return "'$to'";
                case 'timeGroup':
                case 'timeGroupAlias':
                    $s = $seconds($args[1]);
                    return "floor(extract(epoch from {$args[0]})/$s)*$s" . ($m[1] === 'timeGroupAlias' ? ' AS "time"' : '');
                case 'unixEpochFilter':
                    return "{$args[0]} >= {$this->from} AND {$args[0]} <= {$this->to}";
                case 'unixEpochGroup':
                case 'unixEpochGroupAlias':
                    $s = $seconds($args[1]);
                    return "floor({$args[0]}/$s)*$s" . ($m[1] === 'unixEpochGroupAlias' ? ' AS "time"' : '');
            }
            throw new RuntimeException('unknown macro ' . $m[0]);
        }, $sql);
    }

    /**
     * Grafana's template variable interpolation: $name, ${name}, [[name]]; multi-value variables as the datasource
     * formats them (SQL: quoted list; InfluxQL: regex alternation).
     *
     * @param string $text
     * @param array $vars name => string or list
     * @param string $backend
     * @return string
     */
    protected static function expand_vars(string $text, array $vars, string $backend): string {
        return preg_replace_callback('/\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]/', function($m) use ($vars, $backend) {
            $name = $m[1] !== '' ? $m[1] : ($m[2] !== '' ? $m[2] : $m[3]);
            if (!array_key_exists($name, $vars)) {
                return $m[0]; // Grafana's own ($timeFilter, $__interval, $tag_x in aliases).
            }
            $v = $vars[$name];
            if (is_array($v)) {
                if ($backend === 'postgres') {
                    return implode(',', array_map(function($x) {
                        return "'" . str_replace("'", "''", $x) . "'";
                    }, $v));
                }
                return '(' . implode('|', array_map(function($x) {
                    return preg_quote($x, '/');
                }, $v)) . ')';
            }
            return $backend === 'postgres' ? str_replace("'", "''", (string) $v) : (string) $v;
        }, $text);
    }

    /**
     * The variables of a dashboard as the test picks them.
     *
     * @return array
     */
    protected function vars(): array {
        $key = \logstore_tsdb\local\pseudonym::existing([self::USER])[self::USER];
        return ['table' => analytics_fixture::$table, 'prefix' => 'mdl_', 'course' => self::COURSES, 'user' => self::USER,
            'userkey' => (string) $key, 'rollup' => 'rollup_5y', '__interval' => '1h', '__interval_ms' => '3600000'];
    }

    /**
     * Runs SQL on the fixture's database.
     *
     * @param string $sql
     * @return stdClass[]
     */
    protected static function run_sql(string $sql): array {
        $db = analytics_fixture::pg();
        try {
            return $db->query_native($sql);
        } finally {
            $db->close();
        }
    }

    /**
     * Runs InfluxQL on the fixture's database, returning InfluxDB's raw series (as Grafana receives them).
     *
     * @param string $q
     * @return array[] series
     */
    protected static function run_influxql(string $q): array {
        $url = rtrim(getenv('TSDB_TEST_INFLUX_URL'), '/') . '/query?' . http_build_query(['db' => analytics_fixture::$database,
            'q' => $q, 'epoch' => 'ms']);
        $json = json_decode((string) file_get_contents($url), true);
        $result = $json['results'][0] ?? [];
        if (isset($result['error'])) {
            throw new RuntimeException("InfluxQL error: {$result['error']} in $q");
        }
        return $result['series'] ?? [];
    }

    /**
     * Every PostgreSQL panel (and the health board on Moodle's tables) returns rows of its format's shape.
     */
    public function test_postgres_panels(): void {
        $boards = self::dashboards('postgres');
        $this->assertSame(['course-activity.json', 'site-activity.json', 'system-health.json', 'user-activity.json'],
            array_keys($boards));
        $panels = 0;
        $figures = [];
        foreach ($boards as $file => $board) {
            $this->assert_board_metadata($board, 'grafana-postgresql-datasource');
            foreach ($board['templating']['list'] as $var) {
                if ($var['type'] === 'query') {
                    $rows = self::run_sql($this->expand_sql_macros(self::expand_vars($var['query'], $this->vars(), 'postgres')));
                    $values = array_map(function($r) {
                        return (string) reset($r);
                    }, array_map('get_object_vars', $rows));
                    foreach (self::COURSES as $c) {
                        $this->assertContains($c, $values, "$file variable {$var['name']} offers course $c");
                    }
                }
            }
            foreach ($board['panels'] as $panel) {
                foreach ($panel['targets'] as $target) {
                    $sql = $this->expand_sql_macros(self::expand_vars($target['rawSql'], $this->vars(), 'postgres'));
                    $this->assertStringNotContainsString('$', preg_replace("/'[^']*'/", '', $sql), "$file {$panel['title']}");
                    $rows = self::run_sql($sql);
                    $where = "$file: {$panel['title']}";
                    $this->assertNotEmpty($rows, "$where returns rows");
                    if ($target['format'] === 'time_series') {
                        $this->assert_pg_time_series($rows, $where);
                    } else if ($panel['type'] === 'stat') {
                        $this->assertCount(1, $rows, "$where: one row");
                        $v = get_object_vars($rows[0]);
                        $this->assertCount(1, $v);
                        $this->assertIsNumeric(reset($v), "$where: a number");
                    }
                    $figures[$file][$panel['title']] = $rows;
                    $panels++;
                }
            }
        }
        $this->assertGreaterThanOrEqual(25, $panels);

        if (getenv('GRAFANA_RENDER_DIR')) {
            // Pictures of a few panels drawn from these query results (docs/grafana/img/; not Grafana's rendering).
            foreach ([['site-activity.json', 'Events per hour', 'events-per-hour.svg'],
                    ['site-activity.json', 'Active users per day', 'active-users-per-day.svg'],
                    ['site-activity.json', 'Teaching and participating per hour', 'teaching-participating.svg'],
                    ['system-health.json', 'Events per second', 'health-events-per-second.svg']] as [$f, $title, $svg]) {
                file_put_contents(getenv('GRAFANA_RENDER_DIR') . '/' . $svg, self::svg($title, $figures[$f][$title]));
            }
        }

        // Headline figures against the generated events and the fixture's counters.
        $entries = analytics_fixture::$entries;
        $site = $figures['site-activity.json'];
        $this->assertSame(count($entries), (int) $site['Events'][0]->events);
        $this->assertSame(count(array_unique(array_filter(array_column($entries, 'userid')))),
            (int) $site['Active users'][0]->users);
        $hourly = [];
        foreach ($entries as $e) {
            $b = $e['timecreated'] - $e['timecreated'] % 3600;
            $hourly[$b] = ($hourly[$b] ?? 0) + 1;
        }
        ksort($hourly);
        $got = [];
        foreach ($site['Events per hour'] as $r) {
            $got[(new DateTime($r->time))->getTimestamp()] = (int) $r->events;
        }
        $this->assertSame($hourly, $got, 'events per hour from the summary (materialised + raw)');
        $health = $figures['system-health.json'];
        $this->assertSame(array_sum(array_column(analytics_fixture::$metrics, 'failed')), (int) $health['Failed'][0]->failed);
        $this->assertSame(12, (int) $health['Dropped'][0]->dropped);
        $this->assertCount(2, $health['PHP processes (last report of each)']);
        $mine = array_filter($entries, function($e) {
            return $e['userid'] === self::USER;
        });
        $this->assertSame(count($mine), count($figures['user-activity.json']['Who did what, when']));
        $incourses = array_filter($entries, function($e) {
            return in_array((string) $e['courseid'], self::COURSES, true);
        });
        $sum = 0;
        foreach ($figures['course-activity.json']['Events per hour'] as $r) {
            $sum += (int) $r->events;
        }
        $this->assertSame(count($incourses), $sum, 'course board: every event of the chosen courses');
    }

    /**
     * A plain SVG line chart of time series rows (time first, one line per other numeric column).
     *
     * @param string $title
     * @param stdClass[] $rows
     * @return string
     */
    protected static function svg(string $title, array $rows): string {
        $w = 900;
        $h = 260;
        $left = 50;
        $bottom = 30;
        $top = 30;
        $cols = array_values(array_diff(array_keys(get_object_vars($rows[0])), ['time', 'metric']));
        $ts = array_map(function($r) {
            return is_numeric($r->time) ? (int) $r->time : (new DateTime($r->time))->getTimestamp();
        }, $rows);
        [$t0, $t1] = [min($ts), max($ts)];
        $max = 1;
        foreach ($rows as $r) {
            foreach ($cols as $c) {
                $max = max($max, (float) $r->$c);
            }
        }
        $x = function($t) use ($t0, $t1, $w, $left) {
            return $left + ($w - $left - 10) * ($t - $t0) / max(1, $t1 - $t0);
        };
        $y = function($v) use ($max, $h, $bottom, $top) {
            return $h - $bottom - ($h - $bottom - $top) * $v / $max;
        };
        $colours = ['#3274d9', '#e0752d', '#56a64b', '#a352cc'];
        $out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"$w\" height=\"$h\" font-family=\"sans-serif\" font-size=\"11\">"
            . "<rect width=\"$w\" height=\"$h\" fill=\"#ffffff\"/><text x=\"$left\" y=\"18\" font-size=\"13\">"
            . htmlspecialchars($title) . '</text>';
        foreach ([0, 0.5, 1] as $f) {
            $yy = round($y($max * $f), 1);
            $out .= "<line x1=\"$left\" x2=\"" . ($w - 10) . "\" y1=\"$yy\" y2=\"$yy\" stroke=\"#dddddd\"/>"
                . '<text x="' . ($left - 6) . "\" y=\"" . ($yy + 4) . '" text-anchor="end">' . round($max * $f) . '</text>';
        }
        for ($d = $t0 - $t0 % 86400; $d <= $t1; $d += 7 * 86400) {
            if ($d >= $t0) {
                $xx = round($x($d), 1);
                $out .= "<text x=\"$xx\" y=\"" . ($h - 10) . '" text-anchor="middle">' . gmdate('Y-m-d', $d) . '</text>';
            }
        }
        foreach ($cols as $i => $c) {
            $pts = [];
            foreach ($rows as $j => $r) {
                $pts[] = round($x($ts[$j]), 1) . ',' . round($y((float) $r->$c), 1);
            }
            $colour = $colours[$i % count($colours)];
            $out .= "<polyline fill=\"none\" stroke=\"$colour\" stroke-width=\"1.2\" points=\"" . implode(' ', $pts) . '"/>'
                . '<text x="' . ($w - 10) . '" y="' . (18 + 14 * $i) . "\" text-anchor=\"end\" fill=\"$colour\">"
                . htmlspecialchars($c) . '</text>';
        }
        return $out . "</svg>\n";
    }

    /**
     * A PostgreSQL time series: a "time" column first, ascending, numeric values (plus an optional "metric" label).
     *
     * @param stdClass[] $rows
     * @param string $where
     */
    protected function assert_pg_time_series(array $rows, string $where): void {
        $cols = array_keys(get_object_vars($rows[0]));
        $this->assertSame('time', $cols[0], "$where: first column is time");
        $this->assertGreaterThanOrEqual(2, count($cols), "$where: at least one value column");
        $prev = null;
        foreach ($rows as $r) {
            $t = is_numeric($r->time) ? (int) $r->time : (new DateTime($r->time))->getTimestamp();
            $this->assertGreaterThanOrEqual($this->from, $t, "$where: time inside the range");
            $this->assertLessThanOrEqual($this->to, $t);
            if ($prev !== null) {
                $this->assertGreaterThanOrEqual($prev, $t, "$where: ordered by time");
            }
            $prev = $t;
            foreach (get_object_vars($r) as $c => $v) {
                if ($c === 'time' || $c === 'metric') {
                    continue;
                }
                $this->assertTrue($v === null || is_numeric($v), "$where: column $c is numeric");
            }
        }
    }

    /**
     * Every InfluxDB panel returns series of its format's shape (InfluxQL with $timeFilter and $__interval).
     */
    public function test_influxdb_panels(): void {
        $boards = self::dashboards('influxdb');
        $this->assertSame(['course-activity.json', 'site-activity.json', 'user-activity.json'], array_keys($boards));
        $timefilter = 'time >= ' . $this->from . '000ms and time <= ' . $this->to . '000ms';
        $panels = 0;
        $figures = [];
        foreach ($boards as $file => $board) {
            $this->assert_board_metadata($board, 'influxdb');
            foreach ($board['templating']['list'] as $var) {
                if ($var['type'] === 'query') {
                    $series = self::run_influxql(self::expand_vars($var['query'], $this->vars(), 'influxdb'));
                    $values = array_column($series[0]['values'], 1);
                    foreach (self::COURSES as $c) {
                        $this->assertContains($c, $values, "$file variable {$var['name']} offers course $c");
                    }
                }
            }
            foreach ($board['panels'] as $panel) {
                foreach ($panel['targets'] as $target) {
                    $q = self::expand_vars($target['query'], $this->vars(), 'influxdb');
                    $q = str_replace('$timeFilter', $timefilter, $q);
                    $this->assertDoesNotMatchRegularExpression('/\$\w|\$\{|\[\[/', $q, "$file {$panel['title']}: unexpanded");
                    $series = self::run_influxql($q);
                    $where = "$file: {$panel['title']}";
                    $this->assertNotEmpty($series, "$where returns series");
                    foreach ($series as $s) {
                        $this->assertSame('time', $s['columns'][0], "$where: time first");
                        $this->assertNotEmpty($s['values'], "$where: values");
                        foreach ($s['values'] as $row) {
                            $this->assertIsInt($row[0]);
                            if ($target['resultFormat'] === 'time_series' && count($s['values']) > 1) {
                                $this->assertGreaterThanOrEqual($this->from * 1000, $row[0], "$where: inside the range");
                            }
                        }
                    }
                    $figures[$file][$panel['title']] = $series;
                    $panels++;
                }
            }
        }
        $this->assertGreaterThanOrEqual(15, $panels);
        $site = $figures['site-activity.json'];
        $n = count(analytics_fixture::$entries);
        $this->assertSame($n, $site['Events'][0]['values'][0][1]);
        $this->assertSame($n, $site['Events in the rollup'][0]['values'][0][1]);
        $this->assertSame($n, array_sum(array_map(function($r) {
            return $r[1];
        }, $site['Events per hour'][0]['values'])));
        $mine = array_filter(analytics_fixture::$entries, function($e) {
            return $e['userid'] === self::USER;
        });
        $this->assertCount(count($mine), $figures['user-activity.json']['Who did what, when'][0]['values']);
    }

    /**
     * Metadata every importable dashboard needs: uid, title, a datasource variable of the right plugin, panels that
     * use it, unique panel ids, grid positions.
     *
     * @param array $board
     * @param string $plugin
     */
    protected function assert_board_metadata(array $board, string $plugin): void {
        $this->assertMatchesRegularExpression('/^logstore-tsdb-[a-z-]+$/', $board['uid']);
        $this->assertStringStartsWith('Moodle: ', $board['title']);
        $dsvars = array_filter($board['templating']['list'], function($v) {
            return $v['type'] === 'datasource';
        });
        $this->assertCount(1, $dsvars);
        $dsvar = reset($dsvars);
        $this->assertSame($plugin, $dsvar['query']);
        $ids = [];
        foreach ($board['panels'] as $p) {
            $ids[] = $p['id'];
            $this->assertSame('${' . $dsvar['name'] . '}', $p['datasource']['uid'], $p['title']);
            $this->assertSame($plugin, $p['datasource']['type']);
            $this->assertArrayHasKey('gridPos', $p);
            $this->assertNotEmpty($p['targets']);
        }
        $this->assertSame(count($ids), count(array_unique($ids)));
    }

    /**
     * The provisioning files are valid YAML with the datasources and the dashboard provider.
     */
    public function test_provisioning_files(): void {
        $dir = __DIR__ . '/../../../docs/grafana/provisioning';
        $python = trim((string) shell_exec('command -v python3'));
        if ($python === '' || trim((string) shell_exec("$python -c 'import yaml' 2>&1; echo \$?")) !== '0') {
            $this->markTestSkipped('SKIPPED: python3 with PyYAML is needed to parse the YAML files');
        }
        $load = function(string $file) use ($python) {
            return json_decode((string) shell_exec(escapeshellarg($python)
                . " -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' " . escapeshellarg($file)),
                true);
        };
        $ds = $load("$dir/datasources/logstore_tsdb.yaml");
        $this->assertSame(1, $ds['apiVersion']);
        $types = array_column($ds['datasources'], 'type', 'uid');
        $this->assertSame(['logstore-tsdb-pg' => 'grafana-postgresql-datasource', 'logstore-tsdb-influx' => 'influxdb',
            'moodle-db' => 'grafana-postgresql-datasource'], $types);
        foreach ($ds['datasources'] as $d) {
            $this->assertArrayHasKey('password', $d['secureJsonData'], 'secrets in secureJsonData');
            $this->assertStringStartsWith('${', $d['secureJsonData']['password'], 'from the environment');
        }
        $prov = $load("$dir/dashboards/logstore_tsdb.yaml");
        $this->assertSame('file', $prov['providers'][0]['type']);
        $this->assertTrue($prov['providers'][0]['options']['foldersFromFilesStructure']);
        $this->assertArrayNotHasKey('folder', $prov['providers'][0], 'foldersFromFilesStructure needs no folder');
    }
}
