<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Every query of docs/analytics.md, taken from the document itself, run in the site's databases on the analytics data
 * set (analytics_fixture: the site's logstore_standard_log imported by the plugin's CLI into plain PostgreSQL,
 * TimescaleDB — its continuous aggregates kept by its own policies only, also after a second import of events days
 * and weeks old, older chunks compressed — and InfluxDB 1.6.7); each answer, and the answer of the documented
 * `standard` query over a copy of the site's logstore_standard_log, is compared with the figure computed here from the
 * rows of logstore_standard_log.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/analytics_fixture.php');

/**
 * docs/analytics.md tests.
 */
class analytics_test extends base_testcase {
    use analytics_data_set;

    /** @var string[] Where every PostgreSQL question is asked: the two layouts of the sink, and logstore_standard_log. */
    const PG = ['postgres', 'timescaledb', 'standard'];

    /** @var string[] Documented queries run so far in this process ("query:" or "standard:" and the name). */
    protected static $ran = [];

    /**
     * The SQL blocks of docs/analytics.md that start with `-- query: NAME` (the sink) or `-- standard: NAME` (the same
     * question asked of logstore_standard_log).
     *
     * @return array ['query' => name => text, 'standard' => name => text]
     */
    public static function doc_queries(): array {
        $md = file_get_contents(__DIR__ . '/../../../docs/analytics.md');
        preg_match_all('/```sql\n-- (query|standard): ([\w.]+)\n(.*?)```/s', $md, $m, PREG_SET_ORDER);
        $out = ['query' => [], 'standard' => []];
        foreach ($m as [, $kind, $name, $text]) {
            $out[$kind][$name] = trim($text);
        }
        return $out;
    }

    /**
     * Runs a documented PostgreSQL question on the sink's table in one layout, or its standard query on the copy of
     * logstore_standard_log.
     *
     * @param string $where postgres, timescaledb or standard
     * @param string $name without "pg."
     * @param array $vars extra placeholders
     * @return stdClass[]
     */
    protected function pg(string $where, string $name, array $vars = []): array {
        $kind = $where === 'standard' ? 'standard' : 'query';
        self::$ran[] = "$kind: pg.$name";
        $sql = self::doc_queries()[$kind]["pg.$name"];
        $sql = strtr($sql, ['{table}' => analytics_fixture::$name, 'mdl_logstore_standard_log' => analytics_fixture::$standard,
            '{from}' => gmdate('Y-m-d H:i:s+00', $this->from), '{to}' => gmdate('Y-m-d H:i:s+00', $this->to)] + $vars);
        $this->assertStringNotContainsString('{', preg_replace("/'[^']*'/", '', $sql), "$name: unreplaced placeholder");
        $sql = rtrim($sql, "; \n");
        if ($where === 'standard') {
            return analytics_fixture::moodle_sql($sql);
        }
        $db = analytics_fixture::pg(analytics_fixture::settings($where, analytics_fixture::$name));
        try {
            return $db->query_native($sql);
        } finally {
            $db->close();
        }
    }

    /**
     * The rows of a PostgreSQL question in each of PG, mapped.
     *
     * @param string $name
     * @param callable $row function(stdClass $r): array|[key, value]
     * @param array $vars
     * @param bool $keyed $row gives [key, value] pairs: the result is key => value
     * @return array where => rows
     */
    protected function pg_everywhere(string $name, callable $row, array $vars = [], bool $keyed = false): array {
        $out = [];
        foreach (self::PG as $where) {
            $rows = array_map($row, $this->pg($where, $name, $vars));
            $out[$where] = $keyed ? array_column($rows, 1, 0) : $rows;
        }
        return $out;
    }

    /**
     * Asserts that every PostgreSQL answer is the figure.
     *
     * @param mixed $want
     * @param array $got where => answer
     * @param string $what
     */
    protected function assert_everywhere($want, array $got, string $what): void {
        foreach ($got as $where => $answer) {
            $this->assertSame($want, $answer, "$what ($where)");
        }
    }

    /**
     * Runs a documented InfluxQL query.
     *
     * @param string $name
     * @param array $vars
     * @return array[]
     */
    protected function influx(string $name, array $vars = []): array {
        self::$ran[] = "query: influx.$name";
        $q = self::doc_queries()['query']["influx.$name"];
        $q = strtr($q, ['{from}' => analytics_fixture::influx_time($this->from),
            '{to}' => analytics_fixture::influx_time($this->to)] + $vars);
        return analytics_fixture::influx(analytics_fixture::settings('influxdb1', analytics_fixture::$name))
            ->query(preg_replace('/\s+/', ' ', $q));
    }

    /**
     * Seconds of a PostgreSQL timestamp (without time zone = UTC here) or timestamptz text.
     *
     * @param string $ts
     * @return int
     */
    protected static function ts(string $ts): int {
        return (new DateTime(preg_match('/[+-]\d\d$/', $ts) ? $ts : $ts . ' UTC'))->getTimestamp();
    }

    /**
     * Seconds of an InfluxDB time (ns).
     *
     * @param mixed $ns
     * @return int
     */
    protected static function ns($ns): int {
        return intdiv((int) $ns, 1000000000);
    }

    /**
     * Counts of the entries per key (sorted by key).
     *
     * @param callable $key function(array $e): ?string, null to leave the entry out
     * @param callable|null $distinct function(array $e): ?string, count distinct values instead of entries
     * @return array
     */
    protected static function count_by(callable $key, ?callable $distinct = null): array {
        $out = [];
        foreach (analytics_fixture::$entries as $e) {
            if (($k = $key($e)) === null) {
                continue;
            }
            if ($distinct === null) {
                $out[$k] = ($out[$k] ?? 0) + 1;
            } else if (($d = $distinct($e)) !== null) {
                $out[$k][$d] = true;
            }
        }
        ksort($out);
        return $distinct === null ? $out : array_map('count', $out);
    }

    /**
     * The start of an entry's bucket.
     *
     * @param array $e
     * @param int $size seconds
     * @return int
     */
    protected static function bucket(array $e, int $size): int {
        return $e['timecreated'] - $e['timecreated'] % $size;
    }

    /**
     * Users above 0 (distinct values).
     *
     * @param array $e
     * @return int|null
     */
    protected static function user(array $e): ?int {
        return $e['userid'] > 0 ? $e['userid'] : null;
    }

    /**
     * Active users per day (the daily aggregate), per course and day, and per hour (raw).
     */
    public function test_active_users(): void {
        $user = [self::class, 'user'];
        $hourly = self::count_by(function($e) {
            return self::bucket($e, 3600);
        }, $user);
        $daily = self::count_by(function($e) {
            return $e['userid'] > 0 ? self::bucket($e, 86400) : null;
        }, $user);
        $percourse = self::count_by(function($e) {
            return $e['userid'] > 0 ? self::bucket($e, 86400) . '|' . $e['courseid'] : null;
        }, $user);
        $this->assertGreaterThan(300, count($hourly));
        $this->assertCount(analytics_fixture::DAYS + 1, $daily, 'three weeks and today (the real events)');
        $this->assertGreaterThan(8 * analytics_fixture::DAYS, count($percourse));
        $pair = function(string $col) {
            return function($r) use ($col) {
                return [self::ts($r->$col), (int) $r->active_users];
            };
        };
        $this->assert_everywhere($hourly, $this->pg_everywhere('active_users_hourly', $pair('hour'), [], true), 'per hour');
        $this->assert_everywhere($daily, $this->pg_everywhere('active_users_daily', $pair('day'), [], true), 'per day');
        $got = $this->pg_everywhere('active_users_per_course_daily', function($r) {
            return [self::ts($r->day) . '|' . $r->courseid, (int) $r->active_users];
        }, [], true);
        foreach ($got as $where => $rows) {
            ksort($got[$where]);
        }
        $this->assert_everywhere($percourse, $got, 'per course and day');
        foreach (['active_users_hourly' => $hourly, 'active_users_daily' => $daily, 'active_users_daily_rollup' => $daily]
                as $q => $want) {
            $got = [];
            foreach ($this->influx($q) as $r) {
                $got[self::ns($r['time'])] = (int) $r['active_users'];
            }
            $this->assertSame($want, $got, "influx $q");
        }
    }

    /**
     * Events per hour, with the education levels.
     */
    public function test_activity_hourly(): void {
        $want = [];
        foreach (analytics_fixture::$entries as $e) {
            $h = self::bucket($e, 3600);
            $want[$h] = $want[$h] ?? [0, 0, 0, 0];
            $want[$h][0]++;
            $want[$h][[1 => 1, 2 => 2, 0 => 3][$e['edulevel']]]++;
        }
        ksort($want);
        $this->assert_everywhere($want, $this->pg_everywhere('activity_hourly', function($r) {
            return [self::ts($r->hour), [(int) $r->events, (int) $r->teaching, (int) $r->participating, (int) $r->other]];
        }, [], true), 'events per hour');
        $got = [];
        foreach ($this->influx('activity_hourly') as $r) {
            $got[self::ns($r['time'])] = (int) $r['events'];
        }
        $this->assertSame(array_map(function($v) {
            return $v[0];
        }, $want), $got, 'influx');
    }

    /**
     * Events and users per course.
     */
    public function test_events_per_course(): void {
        $events = self::count_by(function($e) {
            return $e['courseid'];
        });
        $users = self::count_by(function($e) {
            return $e['courseid'];
        }, function($e) {
            return $e['userid'];
        });
        $want = [];
        foreach ($events as $c => $n) {
            $want[] = [$c, $n, $users[$c]];
        }
        usort($want, function($a, $b) {
            return [$b[1], $a[0]] <=> [$a[1], $b[0]];
        });
        $this->assert_everywhere($want, $this->pg_everywhere('events_per_course', function($r) {
            return [(int) $r->courseid, (int) $r->events, (int) $r->users];
        }), 'events per course, ordered');
        foreach (['events_per_course', 'events_per_course_rollup'] as $q) {
            $got = [];
            foreach ($this->influx($q) as $r) {
                $got[(int) $r['courseid']] = (int) $r['events'];
            }
            ksort($got);
            $this->assertSame($events, $got, "influx $q");
        }
    }

    /**
     * Asserts a "top N" answer: the N largest counts in order, and every row one of the candidates (ties at the cut
     * may be broken either way, and text is ordered by the database's collation).
     *
     * @param array[] $candidates rows, count in column $col
     * @param array[] $got
     * @param int $n
     * @param int $col
     * @param string $what
     */
    protected function assert_top(array $candidates, array $got, int $n, int $col, string $what): void {
        usort($candidates, function($a, $b) use ($col) {
            return $b[$col] <=> $a[$col];
        });
        $this->assertCount(min($n, count($candidates)), $got, $what);
        $this->assertSame(array_column(array_slice($candidates, 0, $n), $col), array_column($got, $col), $what);
        foreach ($got as $row) {
            $this->assertContains($row, $candidates, $what);
        }
    }

    /**
     * Top activities.
     */
    public function test_top_activities(): void {
        $groups = self::count_by(function($e) {
            return $e['contextlevel'] === 70 ? $e['contextinstanceid'] . '|' . $e['component'] . '|' . $e['courseid'] : null;
        });
        $want = [];
        foreach ($groups as $k => $n) {
            [$cm, $component, $course] = explode('|', $k);
            $want[] = [(int) $cm, $component, (int) $course, $n];
        }
        $this->assertGreaterThan(10, count($want));
        foreach ($this->pg_everywhere('top_activities', function($r) {
            return [(int) $r->cmid, $r->component, (int) $r->courseid, (int) $r->events];
        }) as $where => $got) {
            $this->assert_top($want, $got, 10, 3, $where);
        }
        $bycontext = self::count_by(function($e) {
            return $e['contextlevel'] === 70 ? $e['contextid'] : null;
        });
        $rows = $this->influx('top_activities');
        $this->assert_top(array_map(null, array_keys($bycontext), array_values($bycontext)), array_map(function($r) {
            return [(int) $r['contextid'], (int) $r['events']];
        }, $rows), 10, 1, 'influx');
    }

    /**
     * Top events.
     */
    public function test_top_events(): void {
        $byname = self::count_by(function($e) {
            return $e['eventname'];
        });
        $want = array_map(null, array_keys($byname), array_values($byname));
        $this->assertGreaterThan(10, count($want));
        foreach ($this->pg_everywhere('top_events', function($r) {
            return [$r->eventname, (int) $r->events];
        }) as $where => $got) {
            $this->assert_top($want, $got, 20, 1, $where);
        }
        $this->assert_top($want, array_map(function($r) {
            return [$r['eventname'], (int) $r['events']];
        }, $this->influx('top_events')), 20, 1, 'influx');
    }

    /**
     * Logins and failed logins.
     */
    public function test_logins(): void {
        $want = [];
        $byname = [];
        foreach (analytics_fixture::$entries as $e) {
            $day = self::bucket($e, 86400);
            if ($e['eventname'] === '\\core\\event\\user_loggedin') {
                $want[$day][0] = ($want[$day][0] ?? 0) + 1;
            } else if ($e['eventname'] === '\\core\\event\\user_login_failed') {
                $want[$day][1] = ($want[$day][1] ?? 0) + 1;
                $u = $e['other']['username'];
                $byname[$u]['n'] = ($byname[$u]['n'] ?? 0) + 1;
                $byname[$u]['ip'][$e['ip']] = true;
            }
        }
        ksort($want);
        $want = array_map(function($v) {
            return [$v[0] ?? 0, $v[1] ?? 0];
        }, $want);
        $names = [];
        foreach ($byname as $u => $v) {
            $names[] = [(string) $u, $v['n'], count($v['ip'])];
        }
        $this->assert_everywhere($want, $this->pg_everywhere('logins_daily', function($r) {
            return [self::ts($r->day), [(int) $r->logins, (int) $r->failed_logins]];
        }, [], true), 'logins per day');
        foreach ($this->pg_everywhere('failed_logins_by_username', function($r) {
            return [$r->username, (int) $r->attempts, (int) $r->addresses];
        }) as $where => $got) {
            $this->assert_top($names, $got, 10, 1, $where);
        }
        $got = [];
        foreach ($this->influx('logins_daily') as $r) {
            $i = $r['eventname'] === '\\core\\event\\user_loggedin' ? 0 : 1;
            $got[self::ns($r['time'])][$i] = (int) $r['events'];
        }
        ksort($got);
        $got = array_map(function($v) {
            return [$v[0] ?? 0, $v[1] ?? 0];
        }, $got);
        $this->assertSame($want, $got, 'influx logins per day');
    }

    /**
     * Teaching vs participating.
     */
    public function test_teaching_vs_participating(): void {
        $want = [];
        foreach (analytics_fixture::$entries as $e) {
            $day = self::bucket($e, 86400);
            $want[$day] = $want[$day] ?? [0, 0, 0];
            $want[$day][[1 => 0, 2 => 1, 0 => 2][$e['edulevel']]]++;
        }
        ksort($want);
        $this->assert_everywhere($want, $this->pg_everywhere('teaching_vs_participating', function($r) {
            return [self::ts($r->day), [(int) $r->teaching, (int) $r->participating, (int) $r->other]];
        }, [], true), 'per day');
        $got = [];
        foreach ($this->influx('teaching_vs_participating') as $r) {
            $day = self::ns($r['time']);
            $got[$day] = $got[$day] ?? [0, 0, 0];
            $got[$day][[1 => 0, 2 => 1, 0 => 2][(int) $r['edulevel']]] = (int) $r['events'];
        }
        ksort($got);
        $this->assertSame($want, $got, 'influx');
    }

    /**
     * Course engagement per week (weeks from Monday).
     */
    public function test_course_engagement(): void {
        // 1970-01-05 was a Monday.
        $key = function($e) {
            return $e['courseid'] > 1 ? $e['timecreated'] - (($e['timecreated'] - 4 * 86400) % (7 * 86400)) . '|'
                . $e['courseid'] : null;
        };
        $users = self::count_by($key, [self::class, 'user']);
        $want = [];
        foreach (self::count_by($key) as $k => $n) {
            $want[$k] = [$users[$k] ?? 0, $n];
        }
        $this->assertGreaterThanOrEqual(3 * 8, count($want), 'at least three weeks of eight courses');
        $got = $this->pg_everywhere('course_engagement_weekly', function($r) {
            return [self::ts($r->week) . '|' . $r->courseid, [(int) $r->active_users, (int) $r->events]];
        }, [], true);
        foreach ($got as $where => $rows) {
            ksort($got[$where]);
        }
        // PostgreSQL: the weeks that start inside the range (whole buckets of `_weekly_courses`).
        $whole = array_filter($want, function($k) {
            return (int) explode('|', $k)[0] >= $this->from;
        }, ARRAY_FILTER_USE_KEY);
        $this->assertGreaterThanOrEqual(2 * 8, count($whole), 'at least two weeks of eight courses');
        if (($this->from - 4 * 86400) % (7 * 86400) !== 0) {
            $this->assertLessThan(count($want), count($whole), 'the range starts inside a week: that week left out');
        }
        $this->assert_everywhere($whole, $got, 'per course and week');
        $got = [];
        foreach ($this->influx('course_engagement_weekly') as $r) {
            $got[self::ns($r['time']) . '|' . $r['courseid']] = (int) $r['active_users'];
        }
        ksort($got);
        $this->assertSame(array_filter(array_map(function($v) {
            return $v[0];
        }, $want)), $got, 'influx (weeks of a course with no user are left out)');
    }

    /**
     * Who did what when: one user's events, in order, on every backend.
     */
    public function test_user_activity(): void {
        $user = 9;
        $mine = array_values(array_filter(analytics_fixture::$entries, function($e) use ($user) {
            return $e['userid'] === $user;
        }));
        usort($mine, function($a, $b) {
            return $a['timecreated'] <=> $b['timecreated'];
        });
        $want = array_map(function($e) {
            return [$e['timecreated'], $e['eventname'], (string) $e['courseid'], (string) $e['contextinstanceid'], $e['origin'],
                $e['ip'], $e['other']];
        }, $mine);
        $this->assertGreaterThan(100, count($want));
        $this->assert_everywhere($want, $this->pg_everywhere('user_activity', function($r) {
            return [self::ts($r->time), $r->eventname, $r->courseid, $r->contextinstanceid, $r->origin, $r->ip,
                log_dataset::canonical(json_decode((string) $r->other, true))];
        }, ['{user}' => $user]), 'user 9');
        $key = \logstore_tsdb\local\pseudonym::existing([$user])[$user];
        $got = array_map(function($r) {
            return [self::ns($r['time']), $r['eventname'], (string) $r['courseid'], (string) $r['contextinstanceid'], $r['origin'],
                $r['ip'], log_dataset::canonical(json_decode((string) ($r['other'] ?? 'null'), true))];
        }, $this->influx('user_activity', ['{userkey}' => $key]));
        $this->assertSame($want, $got, 'influx');
    }

    /**
     * What the TimescaleDB answers above were read from: TimescaleDB's scheduler compressed every chunk older than
     * two days and materialised every aggregate up to an hour before its last run (so the questions read materialised
     * buckets, the newest from the events), after the late import too: every aggregate's materialised part holds all
     * its events, and TimescaleDB's invalidation logs hold nothing below a watermark.
     */
    public function test_timescaledb_policies_ran(): void {
        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', analytics_fixture::$name));
        try {
            $name = analytics_fixture::$name;
            $chunks = $db->query('SELECT count(*) FILTER (WHERE is_compressed) AS compressed, count(*) AS n, count(*) FILTER ('
                . "WHERE range_end <= (SELECT last_run_started_at FROM timescaledb_information.job_stats WHERE hypertable_name"
                . " = ? AND job_id IN (SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'))"
                . " - interval '48 hours') AS old FROM timescaledb_information.chunks WHERE hypertable_schema = ?"
                . ' AND hypertable_name = ?', [$name, 'public', $name])[0];
            $this->assertGreaterThanOrEqual(2, (int) $chunks->old, 'days rolled up into compressed chunks');
            $this->assertSame((int) $chunks->old, (int) $chunks->compressed, 'every chunk older than 48 hours compressed');
            $watermarks = [];
            foreach (\logstore_tsdb\local\summary::AGGREGATES as $suffix => [, $bucket]) {
                $view = \logstore_tsdb\local\summary::derived($name, $suffix);
                $w = $db->query('SELECT extract(epoch FROM _timescaledb_functions.to_timestamp('
                    . '_timescaledb_functions.cagg_watermark(mat_hypertable_id)))::bigint AS w, extract(epoch FROM ('
                    . "SELECT s.last_run_started_at FROM timescaledb_information.job_stats s JOIN timescaledb_information.jobs j"
                    . " USING (job_id) WHERE j.proc_name = 'policy_refresh_continuous_aggregate' AND j.hypertable_name = ?))"
                    . '::bigint AS ran FROM _timescaledb_catalog.continuous_agg WHERE user_view_schema = ?'
                    . ' AND user_view_name = ?', [$view, 'public', $view]);
                $this->assertCount(1, $w, $suffix);
                // The watermark is the end of the newest materialised bucket: that of the last event before the
                // refresh window's end (an hour before the policy's run).
                // Buckets from Monday 1970-01-05 (weeks start on Mondays; hours and days where they always do).
                $start = function(int $t) use ($bucket): int {
                    return $t - ($t - 4 * 86400) % $bucket;
                };
                $end = $start((int) $w[0]->ran - 3600);
                $last = max(array_filter(array_column(analytics_fixture::$entries, 'timecreated'), function($t) use ($end) {
                    return $t < $end;
                }));
                $this->assertSame($start($last) + $bucket, (int) $w[0]->w, "$suffix: materialised up to its run - 1 hour");
                $watermarks[$view] = (int) $w[0]->w * 1000000;
            }
            $left = $db->query("SELECT 'raw' AS log, h.table_name AS rel, l.lowest_modified_value AS lo,"
                . ' l.greatest_modified_value AS hi FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l'
                . ' JOIN _timescaledb_catalog.hypertable h ON h.id = l.hypertable_id WHERE h.table_name = ?'
                . " UNION ALL SELECT 'mat', a.user_view_name, l.lowest_modified_value, l.greatest_modified_value"
                . ' FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l'
                . ' JOIN _timescaledb_catalog.continuous_agg a ON a.mat_hypertable_id = l.materialization_id'
                . ' WHERE a.user_view_name LIKE ?', [$name, $name . '%']);
            // Below its watermark an aggregate answers from what it materialised, so no range there may be left
            // invalid: in its own log (mat) nor in the hypertable's, which every aggregate reads (raw). Ranges above
            // the watermark are the part still read from the events (a daily bucket's can begin more than a day
            // ago, when the run was just after midnight). TimescaleDB keeps a range before the earliest valid time
            // (4714 BC) invalid: no event can be there.
            $this->assertSame([], array_values(array_filter($left, function($l) use ($watermarks) {
                $below = $l->log === 'raw' ? min($watermarks) : ($watermarks[$l->rel] ?? PHP_INT_MAX);
                return (int) $l->hi >= analytics_fixture::$from * 1000000 && (int) $l->lo < $below;
            })), 'no change in the data set below a watermark left unmaterialised: ' . json_encode($left));
        } finally {
            $db->close();
        }
    }

    /**
     * Every documented query was run by the tests above (this one runs last), every PostgreSQL question on the sink
     * has its standard query, and the questions the project ships have both a PostgreSQL and an InfluxDB query.
     */
    public function test_zz_every_documented_query_ran(): void {
        $doc = self::doc_queries();
        $pg = array_filter(array_keys($doc['query']), function($n) {
            return strpos($n, 'pg.') === 0;
        });
        $this->assertSame(array_values($pg), array_keys($doc['standard']), 'a standard query for each PostgreSQL one');
        foreach (['active_users_hourly', 'active_users_daily', 'activity_hourly', 'events_per_course', 'top_activities',
                'top_events', 'logins_daily', 'teaching_vs_participating', 'course_engagement_weekly', 'user_activity'] as $q) {
            $this->assertContains("pg.$q", $pg);
            $this->assertArrayHasKey("influx.$q", $doc['query']);
        }
        if (count(array_unique(self::$ran)) < 10) {
            $this->markTestSkipped('run the whole analytics_test class to check that every documented query is tested');
        }
        $all = array_merge(array_map(function($n) {
            return "query: $n";
        }, array_keys($doc['query'])), array_map(function($n) {
            return "standard: $n";
        }, array_keys($doc['standard'])));
        $this->assertSame([], array_values(array_diff($all, self::$ran)), 'documented queries that no test runs');
    }
}
