<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The Grafana dashboards of docs/grafana/: every panel query and every variable query, with Grafana's macros and
 * template variables expanded the way Grafana expands them, run in the site's databases — the analytics data set
 * (analytics_fixture) in plain PostgreSQL, TimescaleDB and InfluxDB 1.6.7, and the store's own counters in the
 * site's Moodle database, reported through the plugin's metrics API — and each answer compared with the figure
 * computed here from the rows of logstore_standard_log (or from the reported counters). The provisioning files are
 * checked too.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/analytics_fixture.php');

use logstore_tsdb\local\metrics;
use logstore_tsdb\local\pgdb;

/**
 * Grafana tests.
 */
class grafana_test extends base_testcase {
    use analytics_data_set;


    /** @var string[] Courses picked in the course variable. */
    const COURSES = ['3', '5'];

    /** @var int The user of the user dashboards. */
    const USER = 9;

    /** @var int The first minute of the store's counters reported for the health board. */
    const HEALTH_FROM = 1741824000;

    /** @var int Minutes of counters. */
    const HEALTH_MINUTES = 180;

    /** @var array[] The counters reported: minute => [host, deltas]; and host => last report. */
    protected static $reports = [];

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
        global $CFG;
        $key = \logstore_tsdb\local\pseudonym::existing([self::USER])[self::USER];
        return ['table' => analytics_fixture::$name, 'prefix' => $CFG->prefix, 'course' => self::COURSES, 'user' => self::USER,
            'userkey' => (string) $key, 'rollup' => 'rollup_5y', '__interval' => '1h', '__interval_ms' => '3600000'];
    }

    /**
     * Runs SQL as a Grafana datasource does (its own connection): on the data set's table in plain PostgreSQL or
     * TimescaleDB, or on the site's Moodle database (moodle).
     *
     * @param string $sql
     * @param string $backend postgres, timescaledb or moodle
     * @return stdClass[]
     */
    protected static function run_sql(string $sql, string $backend = 'postgres'): array {
        if ($backend === 'moodle') {
            return analytics_fixture::moodle_sql($sql);
        }
        $db = analytics_fixture::pg(analytics_fixture::settings($backend, analytics_fixture::$name));
        try {
            return $db->query_native($sql);
        } finally {
            $db->close();
        }
    }

    /**
     * Runs InfluxQL on the data set's database, returning InfluxDB's raw series (as Grafana receives them).
     *
     * @param string $q
     * @return array[] series
     */
    protected static function run_influxql(string $q): array {
        $url = rtrim(getenv('TSDB_TEST_INFLUX_URL'), '/') . '/query?' . http_build_query(['db' => analytics_fixture::$name,
            'q' => $q, 'epoch' => 'ms'], '', '&');
        $json = json_decode((string) file_get_contents($url), true);
        $result = $json['results'][0] ?? [];
        if (isset($result['error'])) {
            throw new RuntimeException("InfluxQL error: {$result['error']} in $q");
        }
        return $result['series'] ?? [];
    }

    /**
     * The store's counters of two PHP processes, reported once a minute for HEALTH_MINUTES through the plugin's own
     * metrics::record() into the site's logstore_tsdb_workers / logstore_tsdb_metrics (emptied first).
     */
    protected static function report_counters(): void {
        global $DB;
        $DB->delete_records('logstore_tsdb_workers');
        $DB->delete_records('logstore_tsdb_metrics');
        mt_srand(61);
        $totals = ['web1' => array_fill_keys(metrics::COUNTERS, 0), 'web2' => array_fill_keys(metrics::COUNTERS, 0)];
        self::$reports = ['minutes' => [], 'hosts' => []];
        for ($m = 0; $m < self::HEALTH_MINUTES; $m++) {
            $host = $m % 2 ? 'web2' : 'web1';
            $d = ['accepted' => mt_rand(100, 900), 'failed' => $m % 37 === 0 ? mt_rand(1, 50) : 0, 'dropped' => $m === 77 ? 12 : 0,
                'retried' => mt_rand(0, 3), 'batches' => mt_rand(1, 5)];
            $d['written'] = $d['accepted'] - $d['failed'] - $d['dropped'];
            foreach ($d as $k => $v) {
                $totals[$host][$k] += $v;
            }
            $now = self::HEALTH_FROM + 60 * $m;
            $stats = $totals[$host] + ['pending' => $host === 'web1' ? 3 : 5, 'queued_bytes' => 2048,
                'last_error' => $host === 'web2' ? 'postgres: connection refused' : '', 'last_success_at' => $now - 10,
                'backend' => 'postgres', 'version' => '0.1.0'];
            metrics::record($host, $host === 'web1' ? 101 : 202, $stats, $now);
            self::$reports['minutes'][$now] = $d;
            self::$reports['hosts'][$host] = $stats + ['pid' => $host === 'web1' ? 101 : 202, 'at' => $now];
        }
    }

    /**
     * Rows with every value canonical: timestamps as unix seconds (whole), numbers as their shortest text, the rest as
     * text (null stays null).
     *
     * @param array[] $rows
     * @return array[]
     */
    protected static function canon(array $rows): array {
        return array_map(function($row) {
            return array_map(function($v) {
                if ($v === null || is_bool($v)) {
                    return $v;
                }
                $v = (string) $v;
                if (preg_match('/^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)?$/', $v)) {
                    $dt = new DateTime(preg_match('/(Z|[+-]\d\d(:?\d\d)?)$/', $v) ? $v : "$v UTC");
                    return (string) $dt->getTimestamp();
                }
                return is_numeric($v) ? (string) round((float) $v, 6) : $v;
            }, array_values($row));
        }, $rows);
    }

    /**
     * Asserts what a panel returned against the figure: the same rows (in order when the panel orders them fully);
     * for a "top N" table, the same counts in order and every row one of the candidates (ties at the cut may be broken
     * either way).
     *
     * @param array $want ['rows' => rows] or ['set' => rows] or ['top' => candidate rows, 'n' => N, 'col' => count column]
     * @param array[] $got rows
     * @param string $where
     */
    protected function assert_figure(array $want, array $got, string $where): void {
        $got = self::canon($got);
        if (isset($want['rows'])) {
            $this->assertSame(self::canon($want['rows']), $got, $where);
        } else if (isset($want['set'])) {
            analytics_fixture::assert_same_rows(self::canon($want['set']), $got, $where);
        } else {
            $all = self::canon($want['top']);
            usort($all, function($a, $b) use ($want) {
                return (float) $b[$want['col']] <=> (float) $a[$want['col']];
            });
            $this->assertSame(array_column(array_slice($all, 0, $want['n']), $want['col']), array_column($got, $want['col']),
                "$where: the largest counts in order");
            foreach ($got as $row) {
                $this->assertContains($row, $all, $where);
            }
        }
    }

    /**
     * Counts per key of the entries that pass a filter.
     *
     * @param callable $filter function(array $e): bool
     * @param callable $key function(array $e): string
     * @param array[]|null $entries default: the data set
     * @return array key => [events, distinct users > 0, entries]
     */
    protected static function group(callable $filter, callable $key, ?array $entries = null): array {
        $out = [];
        foreach ($entries ?? analytics_fixture::$entries as $e) {
            if (!$filter($e)) {
                continue;
            }
            $k = $key($e);
            $out[$k]['n'] = ($out[$k]['n'] ?? 0) + 1;
            $out[$k]['e'][] = $e;
            if ($e['userid'] > 0) {
                $out[$k]['u'][$e['userid']] = true;
            }
        }
        ksort($out);
        return array_map(function($g) {
            return [$g['n'], count($g['u'] ?? []), $g['e']];
        }, $out);
    }

    /**
     * The entries the dashboards select: all, those of the chosen courses, those of the chosen user.
     *
     * @return callable[] [all, incourses, mine]: function(array $e): bool
     */
    protected static function filters(): array {
        return [function() {
            return true;
        }, function($e) {
            return in_array((string) $e['courseid'], self::COURSES, true);
        }, function($e) {
            return $e['userid'] === self::USER;
        }];
    }

    /**
     * Bucket start of a time.
     *
     * @param int $t
     * @param int $size seconds
     * @return int
     */
    protected static function bucket(int $t, int $size): int {
        return $t - $t % $size;
    }

    /**
     * The figure of every PostgreSQL panel, from the entries of logstore_standard_log and the reported counters.
     *
     * @return array file => title => figure (assert_figure())
     */
    protected function pg_figures(): array {
        [$all, $incourses, $mine] = self::filters();
        $hour = function($e) {
            return self::bucket($e['timecreated'], 3600);
        };
        $day = function($e) {
            return self::bucket($e['timecreated'], 86400);
        };
        $week = function($e) {
            return $e['timecreated'] - (($e['timecreated'] - 4 * 86400) % (7 * 86400)); // 1970-01-05 was a Monday.
        };
        $count = function(array $es, callable $f) {
            return count(array_filter($es, $f));
        };
        $edu = function(int $level) {
            return function($e) use ($level) {
                return $e['edulevel'] === $level;
            };
        };
        $named = function(string $event) {
            return function($e) use ($event) {
                return $e['eventname'] === '\\core\\event\\' . $event;
            };
        };
        $rows = function(array $groups, callable $row) {
            $out = [];
            foreach ($groups as $k => $g) {
                $out[] = $row(explode('|', (string) $k), $g[0], $g[1], $g[2]);
            }
            return $out;
        };
        $e = analytics_fixture::$entries;
        $site = [
            'Events' => ['rows' => [[count($e)]]],
            'Active users' => ['rows' => [[count(self::group(function($e) {
                return $e['userid'] > 0;
            }, function($e) {
                return $e['userid'];
            }))]]],
            'Courses with activity' => ['rows' => [[count(self::group(function($e) {
                return $e['courseid'] > 1;
            }, function($e) {
                return $e['courseid'];
            }))]]],
            'Failed logins' => ['rows' => [[$count($e, $named('user_login_failed'))]]],
            'Events per hour' => ['rows' => $rows(self::group($all, $hour), function($k, $n) {
                return [$k[0], $n];
            })],
            'Active users per day' => ['rows' => array_values(array_filter($rows(self::group($all, $day), function($k, $n, $u) {
                return [$k[0], $u];
            }), function($r) {
                return $r[1] > 0;
            }))],
            'Logins and failed logins per hour' => ['rows' => $rows(self::group(function($e) use ($named) {
                return $named('user_loggedin')($e) || $named('user_login_failed')($e);
            }, $hour), function($k, $n, $u, $es) use ($count, $named) {
                return [$k[0], $count($es, $named('user_loggedin')), $count($es, $named('user_login_failed'))];
            })],
            'Teaching and participating per hour' => ['rows' => $rows(self::group($all, $hour),
                function($k, $n, $u, $es) use ($count, $edu) {
                    return [$k[0], $count($es, $edu(1)), $count($es, $edu(2)), $count($es, $edu(0))];
                })],
            'Most active courses' => ['n' => 15, 'col' => 1, 'top' => $rows(self::group(function($e) {
                return $e['courseid'] > 1;
            }, function($e) {
                return $e['courseid'];
            }), function($k, $n) {
                return [$k[0], $n];
            })],
            'Most frequent events' => ['n' => 20, 'col' => 1, 'top' => $rows(self::group($all, function($e) {
                return $e['eventname'];
            }), function($k, $n) {
                return [$k[0], $n];
            })],
            'Events by origin' => ['set' => $rows(self::group($all, function($e) {
                return $e['origin'];
            }), function($k, $n) {
                return [$k[0], $n];
            })],
        ];
        $course = [
            'Events per hour' => ['set' => $rows(self::group($incourses, function($e) use ($hour) {
                return $hour($e) . '|' . $e['courseid'];
            }), function($k, $n) {
                return [$k[0], $k[1], $n];
            })],
            'Active users per day' => ['set' => array_values(array_filter($rows(self::group($incourses,
                function($e) use ($day) {
                    return $day($e) . '|' . $e['courseid'];
                }), function($k, $n, $u) {
                    return [$k[0], $k[1], $u];
                }), function($r) {
                    return $r[2] > 0;
                }))],
            'Teaching and participating per day' => ['rows' => $rows(self::group($incourses, $day),
                function($k, $n, $u, $es) use ($count, $edu) {
                    return [$k[0], $count($es, $edu(1)), $count($es, $edu(2))];
                })],
            'Most used activities' => ['n' => 20, 'col' => 3, 'top' => $rows(self::group(function($e) use ($incourses) {
                return $incourses($e) && $e['contextlevel'] === 70;
            }, function($e) {
                return $e['contextinstanceid'] . '|' . $e['component'] . '|' . $e['courseid'];
            }), function($k, $n) {
                return [$k[0], $k[1], $k[2], $n];
            })],
            'Most active users' => ['n' => 20, 'col' => 1, 'top' => $rows(self::group(function($e) use ($incourses) {
                return $incourses($e) && $e['userid'] > 0;
            }, function($e) {
                return $e['userid'];
            }), function($k, $n, $u, $es) use ($count, $edu) {
                return [$k[0], $n, $count($es, $edu(2)), self::bucket(max(array_column($es, 'timecreated')), 86400)];
            })],
            // The weeks that start inside the range (rows of `_weekly_courses`): not the one it starts in.
            'Weekly engagement' => ['set' => $rows(self::group(function($e) use ($incourses, $week) {
                return $incourses($e) && $week($e) >= analytics_fixture::$from;
            }, function($e) use ($week) {
                return $week($e) . '|' . $e['courseid'];
            }), function($k, $n, $u) {
                return [$k[0], $k[1], $u, $n];
            })],
        ];
        $user = [
            'Events per hour' => ['rows' => $rows(self::group($mine, $hour), function($k, $n) {
                return [$k[0], $n];
            })],
            'Courses' => ['set' => $rows(self::group($mine, function($e) {
                return $e['courseid'];
            }), function($k, $n, $u, $es) {
                return [$k[0], $n, min(array_column($es, 'timecreated')), max(array_column($es, 'timecreated'))];
            })],
            'Who did what, when' => ['set' => array_map(function($e) {
                return [$e['timecreated'], $e['eventname'], $e['component'], $e['action'], $e['target'], $e['courseid'],
                    $e['contextinstanceid'], $e['relateduserid'], $e['origin'], $e['ip'], $e['realuserid']];
            }, array_filter($e, $mine))],
            'Done to this user by others' => ['set' => array_map(function($e) {
                return [$e['timecreated'], $e['userid'], $e['eventname'], $e['courseid']];
            }, array_filter($e, function($e) {
                return $e['relateduserid'] === self::USER;
            }))],
        ];
        $minutes = self::$reports['minutes'];
        $health = [
            'Events per second' => ['rows' => array_map(function($t, $d) {
                return [$t, $d['accepted'] / 60, $d['written'] / 60];
            }, array_keys($minutes), $minutes)],
            'Failed, dropped, retried per minute' => ['rows' => array_map(function($t, $d) {
                return [$t, $d['failed'], $d['dropped'], $d['retried']];
            }, array_keys($minutes), $minutes)],
            'Failed' => ['rows' => [[array_sum(array_column($minutes, 'failed'))]]],
            'Dropped' => ['rows' => [[array_sum(array_column($minutes, 'dropped'))]]],
            'Pending in workers' => ['rows' => [[array_sum(array_column(self::$reports['hosts'], 'pending'))]]],
            'Workers reporting' => ['rows' => [[count(self::$reports['hosts'])]]],
            'PHP processes (last report of each)' => ['set' => array_map(function($host, $r) {
                return [$host, $r['pid'], $r['backend'], $r['version'], $r['accepted'], $r['written'], $r['failed'],
                    $r['dropped'], $r['pending'], $r['queued_bytes'], $r['last_success_at'], $r['last_error'], $r['at']];
            }, array_keys(self::$reports['hosts']), self::$reports['hosts'])],
        ];
        return ['site-activity.json' => $site, 'course-activity.json' => $course, 'user-activity.json' => $user,
            'system-health.json' => $health];
    }

    /**
     * Every PostgreSQL panel, on plain PostgreSQL and on TimescaleDB (the health board on the site's Moodle database),
     * returns rows of its format's shape holding the figure computed from logstore_standard_log.
     */
    public function test_postgres_panels(): void {
        self::report_counters();
        $boards = self::dashboards('postgres');
        $this->assertSame(['course-activity.json', 'site-activity.json', 'system-health.json', 'user-activity.json'],
            array_keys($boards));
        $figures = $this->pg_figures();
        $courses = array_map('strval', array_keys(self::group(function($e) {
            return $e['courseid'] > 1;
        }, function($e) {
            return $e['courseid'];
        })));
        $panels = 0;
        $results = [];
        foreach (['postgres', 'timescaledb'] as $backend) {
            foreach ($boards as $file => $board) {
                $health = $file === 'system-health.json';
                if ($health && $backend === 'timescaledb') {
                    continue;
                }
                [$this->from, $this->to] = $health ? [self::HEALTH_FROM, self::HEALTH_FROM + 60 * (self::HEALTH_MINUTES - 1)]
                    : [analytics_fixture::$from, analytics_fixture::$to];
                $db = $health ? 'moodle' : $backend;
                $this->assert_board_metadata($board, 'grafana-postgresql-datasource');
                foreach ($board['templating']['list'] as $var) {
                    if ($var['type'] === 'query') {
                        $rows = self::run_sql($this->expand_sql_macros(self::expand_vars($var['query'], $this->vars(),
                            'postgres')), $db);
                        $this->assertSame($courses, array_map(function($r) {
                            return (string) reset($r);
                        }, array_map('get_object_vars', $rows)), "$backend $file variable {$var['name']}: the courses");
                    }
                }
                foreach ($board['panels'] as $panel) {
                    $where = "$backend $file: {$panel['title']}";
                    $this->assertArrayHasKey($panel['title'], $figures[$file], "$where: a figure to compare with");
                    foreach ($panel['targets'] as $target) {
                        $sql = $this->expand_sql_macros(self::expand_vars($target['rawSql'], $this->vars(), 'postgres'));
                        $this->assertStringNotContainsString('$', preg_replace("/'[^']*'/", '', $sql), $where);
                        $rows = self::run_sql($sql, $db);
                        $this->assertNotEmpty($rows, "$where returns rows");
                        if ($target['format'] === 'time_series') {
                            $this->assert_pg_time_series($rows, $where);
                        } else if ($panel['type'] === 'stat') {
                            $this->assertCount(1, $rows, "$where: one row");
                            $this->assertCount(1, get_object_vars($rows[0]), "$where: one value");
                        }
                        $this->assert_figure($figures[$file][$panel['title']], array_map('get_object_vars', $rows), $where);
                        $results[$file][$panel['title']] = $rows;
                        $panels++;
                    }
                }
            }
        }
        $this->assertSame(2 * 21 + 7, $panels, 'every panel of the four boards (three on both PostgreSQL backends)');

        if (getenv('GRAFANA_RENDER_DIR')) {
            // Pictures of a few panels drawn from these query results (docs/grafana/img/; not Grafana's rendering).
            foreach ([['site-activity.json', 'Events per hour', 'events-per-hour.svg'],
                    ['site-activity.json', 'Active users per day', 'active-users-per-day.svg'],
                    ['site-activity.json', 'Teaching and participating per hour', 'teaching-participating.svg'],
                    ['system-health.json', 'Events per second', 'health-events-per-second.svg']] as [$f, $title, $svg]) {
                file_put_contents(getenv('GRAFANA_RENDER_DIR') . '/' . $svg, self::svg($title, $results[$f][$title]));
            }
        }
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
            $this->assertGreaterThanOrEqual($this->from - $this->from % 86400, $t, "$where: time inside the range");
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
     * The figure of every InfluxDB panel, as rows of [values of the series' columns (time in seconds)..., its tags
     * (sorted by name)...].
     *
     * @return array file => title => figure (assert_figure())
     */
    protected function influx_figures(): array {
        [$all, $incourses, $mine] = self::filters();
        $from = $this->from;
        // GROUP BY time(size) fill(0): every bucket from the range's first to its last, per tag value.
        $filled = function(callable $filter, int $size, callable $tag) use ($from) {
            $groups = self::group($filter, function($e) use ($tag, $size) {
                return $tag($e) . '|' . self::bucket($e['timecreated'], $size);
            });
            $out = [];
            foreach (array_unique(array_map(function($k) {
                return explode('|', $k)[0];
            }, array_keys($groups))) as $t) {
                for ($b = self::bucket($from, $size); $b <= $this->to; $b += $size) {
                    $out[] = array_merge([$b, $groups["$t|$b"][0] ?? 0], $t === '' ? [] : [$t]);
                }
            }
            return $out;
        };
        $bytag = function(callable $filter, callable $tag, int $col = 0) use ($from) {
            $out = [];
            foreach (self::group($filter, $tag) as $k => $g) {
                $out[] = [$from, $g[$col], (string) $k];
            }
            return $out;
        };
        $e = analytics_fixture::$entries;
        $failed = function($e) {
            return $e['eventname'] === '\\core\\event\\user_login_failed';
        };
        $login = function($e) use ($failed) {
            return $failed($e) || $e['eventname'] === '\\core\\event\\user_loggedin';
        };
        $days = [];
        foreach (self::group(function($e) {
            return $e['userid'] > 0;
        }, function($e) {
            return self::bucket($e['timecreated'], 86400);
        }) as $d => $g) {
            $days[] = [$d, $g[1]];
        }
        $site = [
            'Events' => ['rows' => [[$from, count($e)]]],
            'Active users' => ['rows' => [[$from, count(self::group(function($e) {
                return $e['userid'] > 0;
            }, function($e) {
                return $e['userid'];
            }))]]],
            'Failed logins' => ['rows' => [[$from, count(array_filter($e, $failed))]]],
            'Events in the rollup' => ['rows' => [[$from, count($e)]]],
            'Events per hour' => ['rows' => $filled($all, 3600, function() {
                return '';
            })],
            'Active users per day' => ['rows' => $days],
            'Logins and failed logins' => ['set' => $filled($login, 3600, function($e) {
                return $e['eventname'];
            })],
            'Events by education level (0 other, 1 teaching, 2 participating)' => ['set' => $filled($all, 3600, function($e) {
                return $e['edulevel'];
            })],
            'Most active courses' => ['n' => 15, 'col' => 1, 'top' => $bytag($all, function($e) {
                return $e['courseid'];
            })],
            'Events by origin' => ['set' => $bytag($all, function($e) {
                return $e['origin'];
            })],
        ];
        $course = [
            'Events per hour' => ['set' => $filled($incourses, 3600, function($e) {
                return $e['courseid'];
            })],
            'Active users per day' => ['set' => array_map(function($k, $g) {
                [$c, $d] = explode('|', $k);
                return [$d, $g[1], $c];
            }, array_keys($groups = self::group(function($e) use ($incourses) {
                return $incourses($e) && $e['userid'] > 0;
            }, function($e) {
                return $e['courseid'] . '|' . self::bucket($e['timecreated'], 86400);
            })), $groups)],
            'Teaching and participating per day' => ['set' => $filled(function($e) use ($incourses) {
                return $incourses($e) && in_array($e['edulevel'], [1, 2], true);
            }, 86400, function($e) {
                return $e['edulevel'];
            })],
            'Most used activities (context ids)' => ['n' => 20, 'col' => 1, 'top' => $bytag(function($e) use ($incourses) {
                return $incourses($e) && $e['contextlevel'] === 70;
            }, function($e) {
                return $e['contextid'];
            })],
        ];
        $user = [
            'Events per hour' => ['rows' => array_map(function($k, $g) {
                return [$k, $g[0]];
            }, array_keys($groups = self::group($mine, function($e) {
                return self::bucket($e['timecreated'], 3600);
            })), $groups)],
            'Courses' => ['set' => $bytag($mine, function($e) {
                return $e['courseid'];
            })],
            'Who did what, when' => ['set' => array_map(function($e) {
                return [$e['timecreated'], $e['eventname'], $e['component'], $e['action'], $e['target'], $e['courseid'],
                    $e['contextinstanceid'], $e['origin'], $e['ip']];
            }, array_filter($e, $mine))],
        ];
        return ['site-activity.json' => $site, 'course-activity.json' => $course, 'user-activity.json' => $user];
    }

    /**
     * Every InfluxDB panel (InfluxQL with $timeFilter and $__interval) returns series of its format's shape holding the
     * figure computed from logstore_standard_log.
     */
    public function test_influxdb_panels(): void {
        $boards = self::dashboards('influxdb');
        $this->assertSame(['course-activity.json', 'site-activity.json', 'user-activity.json'], array_keys($boards));
        $timefilter = 'time >= ' . $this->from . '000ms and time <= ' . $this->to . '000ms';
        $figures = $this->influx_figures();
        $courses = array_map('strval', array_keys(self::group(function() {
            return true;
        }, function($e) {
            return $e['courseid'];
        })));
        $panels = 0;
        foreach ($boards as $file => $board) {
            $this->assert_board_metadata($board, 'influxdb');
            foreach ($board['templating']['list'] as $var) {
                if ($var['type'] === 'query') {
                    $series = self::run_influxql(self::expand_vars($var['query'], $this->vars(), 'influxdb'));
                    $values = array_column($series[0]['values'], 1);
                    sort($values);
                    $this->assertSame($courses, $values, "$file variable {$var['name']}: the courses");
                }
            }
            foreach ($board['panels'] as $panel) {
                $where = "$file: {$panel['title']}";
                $this->assertArrayHasKey($panel['title'], $figures[$file], "$where: a figure to compare with");
                foreach ($panel['targets'] as $target) {
                    $q = self::expand_vars($target['query'], $this->vars(), 'influxdb');
                    $q = str_replace('$timeFilter', $timefilter, $q);
                    $this->assertDoesNotMatchRegularExpression('/\$\w|\$\{|\[\[/', $q, "$where: unexpanded");
                    $series = self::run_influxql($q);
                    $this->assertNotEmpty($series, "$where returns series");
                    $rows = [];
                    foreach ($series as $s) {
                        $this->assertSame('time', $s['columns'][0], "$where: time first");
                        $this->assertNotEmpty($s['values'], "$where: values");
                        $tags = $s['tags'] ?? [];
                        ksort($tags);
                        foreach ($s['values'] as $row) {
                            $this->assertIsInt($row[0]);
                            $row[0] = intdiv($row[0], 1000);
                            $rows[] = array_merge($row, array_values($tags));
                        }
                    }
                    $this->assert_figure($figures[$file][$panel['title']], $rows, $where);
                    $panels++;
                }
            }
        }
        $this->assertSame(17, $panels, 'every panel of the three boards');
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
        $load = function(string $file) {
            [$rc, $out, $err] = tsdb_test_site::run(['python3', '-c',
                'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', $file]);
            $this->assertSame(0, $rc, "python3 with PyYAML reads $file: $err");
            return json_decode($out, true);
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
