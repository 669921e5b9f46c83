<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Every query of docs/analytics.md, taken from the document itself, run in the site's databases on the analytics data
 * set (analytics_fixture: the site's logstore_standard_log imported by the plugin's importer into plain PostgreSQL,
 * TimescaleDB — its continuous aggregates kept by its own policies, older chunks compressed — and InfluxDB 1.6.7);
 * each answer is compared with the figure computed here from the rows of logstore_standard_log.
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


    /** @var string[] PostgreSQL backends every SQL query runs on. */
    const PG = ['postgres', 'timescaledb'];

    /** @var string[] Documented queries run so far in this process. */
    protected static $ran = [];

    /**
     * The named queries of docs/analytics.md.
     *
     * @return array name => text
     */
    public static function doc_queries(): array {
        $md = file_get_contents(__DIR__ . '/../../../docs/analytics.md');
        preg_match_all('/```sql\n-- query: ([\w.]+)\n(.*?)```/s', $md, $m, PREG_SET_ORDER);
        $out = [];
        foreach ($m as [, $name, $text]) {
            $out[$name] = trim($text);
        }
        return $out;
    }

    /**
     * Runs a documented SQL query on one PostgreSQL backend.
     *
     * @param string $backend postgres or timescaledb
     * @param string $name
     * @param array $vars extra placeholders
     * @return stdClass[]
     */
    protected function pg(string $backend, string $name, array $vars = []): array {
        self::$ran[] = "pg.$name";
        $sql = self::doc_queries()["pg.$name"];
        $sql = strtr($sql, ['{table}' => analytics_fixture::$name, '{from}' => gmdate('Y-m-d H:i:s+00', $this->from),
            '{to}' => gmdate('Y-m-d H:i:s+00', $this->to)] + $vars);
        $this->assertStringNotContainsString('{', preg_replace("/'[^']*'/", '', $sql), "$name: unreplaced placeholder");
        $db = analytics_fixture::pg(analytics_fixture::settings($backend, analytics_fixture::$name));
        try {
            return $db->query_native(rtrim($sql, "; \n"));
        } finally {
            $db->close();
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
        self::$ran[] = "influx.$name";
        $q = self::doc_queries()["influx.$name"];
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
     * Distinct users (userid > 0) per bucket of the entries.
     *
     * @param array[] $entries
     * @param int $bucket seconds
     * @return array bucket start => users
     */
    public static function users_per(array $entries, int $bucket): array {
        $u = [];
        foreach ($entries as $e) {
            if ($e['userid'] > 0) {
                $u[$e['timecreated'] - $e['timecreated'] % $bucket][$e['userid']] = true;
            }
        }
        ksort($u);
        return array_map('count', $u);
    }

    /**
     * Active users per hour and per day (raw and summaries).
     */
    public function test_active_users(): void {
        $entries = analytics_fixture::$entries;
        $hourly = self::users_per($entries, 3600);
        $daily = self::users_per($entries, 86400);
        $this->assertGreaterThan(300, count($hourly));
        $this->assertCount(analytics_fixture::DAYS + 1, $daily, 'three weeks and today (the real events)');
        foreach (self::PG as $backend) {
            $got = [];
            foreach ($this->pg($backend, 'active_users_hourly') as $r) {
                $got[self::ts($r->hour)] = (int) $r->active_users;
            }
            $this->assertSame($hourly, $got, "$backend hourly");
            foreach (['active_users_daily' => 'day', 'active_users_daily_summary' => 'day'] as $q => $col) {
                $got = [];
                foreach ($this->pg($backend, $q) as $r) {
                    $got[self::ts($r->$col)] = (int) $r->active_users;
                }
                $this->assertSame($daily, $got, "$backend $q");
            }
        }
        $got = [];
        foreach ($this->influx('active_users_hourly') as $r) {
            $got[self::ns($r['time'])] = (int) $r['active_users'];
        }
        $this->assertSame($hourly, $got, 'influx hourly');
        foreach (['active_users_daily', 'active_users_daily_rollup'] as $q) {
            $got = [];
            foreach ($this->influx($q) as $r) {
                $got[self::ns($r['time'])] = (int) $r['active_users'];
            }
            $this->assertSame($daily, $got, "influx $q");
        }
    }

    /**
     * Events per course (raw and summaries).
     */
    public function test_events_per_course(): void {
        $events = [];
        $users = [];
        foreach (analytics_fixture::$entries as $e) {
            $events[$e['courseid']] = ($events[$e['courseid']] ?? 0) + 1;
            $users[$e['courseid']][$e['userid']] = true;
        }
        $want = [];
        foreach ($events as $c => $n) {
            $want[] = [$c, $n, count($users[$c])];
        }
        usort($want, function($a, $b) {
            return [$b[1], $a[0]] <=> [$a[1], $b[0]];
        });
        foreach (self::PG as $backend) {
            $got = array_map(function($r) {
                return [(int) $r->courseid, (int) $r->events, (int) $r->users];
            }, $this->pg($backend, 'events_per_course'));
            $this->assertSame($want, $got, "$backend: events per course, ordered");
            $got = array_map(function($r) {
                return [(int) $r->courseid, (int) $r->events];
            }, $this->pg($backend, 'events_per_course_summary'));
            $this->assertSame(array_map(function($w) {
                return [$w[0], $w[1]];
            }, $want), $got, "$backend: from the hourly summary");
        }
        ksort($events);
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
     * Top activities.
     */
    public function test_top_activities(): void {
        $groups = [];
        $bycontext = [];
        foreach (analytics_fixture::$entries as $e) {
            if ($e['contextlevel'] !== 70) {
                continue;
            }
            $k = $e['contextinstanceid'] . '|' . $e['component'] . '|' . $e['courseid'];
            $groups[$k]['events'] = ($groups[$k]['events'] ?? 0) + 1;
            $groups[$k]['users'][$e['userid']] = true;
            $bycontext[$e['contextid']] = ($bycontext[$e['contextid']] ?? 0) + 1;
        }
        $want = [];
        foreach ($groups as $k => $g) {
            [$cm, $component, $course] = explode('|', $k);
            $want[] = [(int) $cm, $component, (int) $course, $g['events'], count($g['users'])];
        }
        usort($want, function($a, $b) {
            return [$b[3], $a[0], $a[1]] <=> [$a[3], $b[0], $b[1]];
        });
        foreach (self::PG as $backend) {
            $got = array_map(function($r) {
                return [(int) $r->cmid, $r->component, (int) $r->courseid, (int) $r->events, (int) $r->users];
            }, $this->pg($backend, 'top_activities'));
            // Ties at the tenth place may be broken by component: compare the ordered counts and every row's figures.
            $this->assertCount(10, $got);
            $this->assertSame(array_column(array_slice($want, 0, 10), 3), array_column($got, 3), $backend);
            foreach ($got as $row) {
                $this->assertContains($row, $want, $backend);
            }
        }
        $rows = $this->influx('top_activities');
        $this->assertCount(10, $rows);
        arsort($bycontext);
        $this->assertSame(array_slice(array_values($bycontext), 0, 10), array_map('intval', array_column($rows, 'events')),
            'influx: the ten largest counts');
        foreach ($rows as $r) {
            $this->assertSame($bycontext[(int) $r['contextid']], (int) $r['events'], 'influx: count of context ' . $r['contextid']);
        }
    }

    /**
     * Logins and failed logins.
     */
    public function test_logins(): void {
        $want = [];
        $byname = [];
        foreach (analytics_fixture::$entries as $e) {
            $day = $e['timecreated'] - $e['timecreated'] % 86400;
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
        usort($names, function($a, $b) {
            return [$b[1], $a[0]] <=> [$a[1], $b[0]];
        });
        foreach (self::PG as $backend) {
            $got = [];
            foreach ($this->pg($backend, 'logins_daily') as $r) {
                $got[self::ts($r->day)] = [(int) $r->logins, (int) $r->failed_logins];
            }
            $this->assertSame($want, $got, "$backend: logins per day");
            $got = array_map(function($r) {
                return [$r->username, (int) $r->attempts, (int) $r->addresses];
            }, $this->pg($backend, 'failed_logins_by_username'));
            // PostgreSQL orders text by the database's collation, PHP by bytes: compare the ranks by count.
            $this->assertCount(10, $got);
            $this->assertSame(array_column(array_slice($names, 0, 10), 1), array_column($got, 1), $backend);
            foreach ($got as $row) {
                $this->assertContains($row, $names, $backend);
            }
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
            $day = $e['timecreated'] - $e['timecreated'] % 86400;
            $want[$day] = $want[$day] ?? [0, 0, 0];
            $want[$day][[1 => 0, 2 => 1, 0 => 2][$e['edulevel']]]++;
        }
        ksort($want);
        foreach (self::PG as $backend) {
            $got = [];
            foreach ($this->pg($backend, 'teaching_vs_participating') as $r) {
                $got[self::ts($r->day)] = [(int) $r->teaching, (int) $r->participating, (int) $r->other];
            }
            $this->assertSame($want, $got, $backend);
        }
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
        $users = [];
        $events = [];
        foreach (analytics_fixture::$entries as $e) {
            if ($e['courseid'] <= 1) {
                continue;
            }
            // 1970-01-05 was a Monday.
            $week = $e['timecreated'] - (($e['timecreated'] - 4 * 86400) % (7 * 86400));
            $k = $week . '|' . $e['courseid'];
            $events[$k] = ($events[$k] ?? 0) + 1;
            if ($e['userid'] > 0) {
                $users[$k][$e['userid']] = true;
            }
        }
        ksort($events);
        $want = [];
        foreach ($events as $k => $n) {
            $want[$k] = [count($users[$k] ?? []), $n];
        }
        $this->assertGreaterThanOrEqual(3 * 8, count($want), 'at least three weeks of eight courses');
        foreach (self::PG as $backend) {
            $got = [];
            foreach ($this->pg($backend, 'course_engagement_weekly') as $r) {
                $got[self::ts($r->week) . '|' . $r->courseid] = [(int) $r->active_users, (int) $r->events];
            }
            ksort($got);
            $this->assertSame($want, $got, $backend);
        }
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
        foreach (self::PG as $backend) {
            $got = array_map(function($r) {
                return [self::ts($r->time), $r->eventname, $r->courseid, $r->contextinstanceid, $r->origin, $r->ip,
                    log_dataset::canonical(json_decode((string) $r->other, true))];
            }, $this->pg($backend, 'user_activity', ['{user}' => $user]));
            $this->assertSame($want, $got, $backend);
        }
        $key = \logstore_tsdb\local\pseudonym::existing([$user])[$user];
        $got = array_map(function($r) {
            return [self::ns($r['time']), $r['eventname'], (string) $r['courseid'], (string) $r['contextinstanceid'], $r['origin'],
                $r['ip'], log_dataset::canonical(json_decode((string) ($r['other'] ?? 'null'), true))];
        }, $this->influx('user_activity', ['{userkey}' => $key]));
        $this->assertSame($want, $got, 'influx');
    }

    /**
     * What the TimescaleDB answers above were read from: the data set's chunks older than 7 days compressed by the
     * compression policy, and the continuous aggregates materialised up to the refresh policy's end offset (one hour
     * before now), so that the summary queries read materialised buckets and only the newest from the raw table.
     */
    public function test_timescaledb_policies_ran(): void {
        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', analytics_fixture::$name));
        try {
            $chunks = $db->query('SELECT count(*) FILTER (WHERE is_compressed) AS compressed, count(*) AS n,'
                . ' count(*) FILTER (WHERE range_end <= now() - interval \'7 days\') AS old'
                . ' FROM timescaledb_information.chunks WHERE hypertable_schema = ? AND hypertable_name = ?',
                ['public', analytics_fixture::$name])[0];
            $this->assertGreaterThanOrEqual(analytics_fixture::DAYS - 8, (int) $chunks->old);
            $this->assertSame((int) $chunks->old, (int) $chunks->compressed, 'every chunk older than 7 days compressed');
            $now = time();
            foreach (['_hourly' => 3600, '_daily_users' => 86400] as $suffix => $bucket) {
                $w = $db->query('SELECT extract(epoch FROM _timescaledb_functions.to_timestamp('
                    . '_timescaledb_functions.cagg_watermark(mat_hypertable_id)))::bigint AS w'
                    . ' FROM _timescaledb_catalog.continuous_agg WHERE user_view_schema = ? AND user_view_name = ?',
                    ['public', \logstore_tsdb\local\summary::derived(analytics_fixture::$name, $suffix)]);
                $this->assertCount(1, $w, $suffix);
                // The watermark is the end of the newest materialised bucket: that of the last event before the
                // refresh window's end.
                $end = $now - 3600 - ($now - 3600) % $bucket;
                $last = max(array_filter(array_column(analytics_fixture::$entries, 'timecreated'), function($t) use ($end) {
                    return $t < $end;
                }));
                $this->assertSame($last - $last % $bucket + $bucket, (int) $w[0]->w, "$suffix: materialised up to now - 1 hour");
            }
        } finally {
            $db->close();
        }
    }

    /**
     * Every documented query was run by the tests above (this one runs last), and every question has a query for both
     * backends.
     */
    public function test_zz_every_documented_query_ran(): void {
        $names = array_keys(self::doc_queries());
        foreach (['active_users_hourly', 'active_users_daily', 'events_per_course', 'top_activities', 'logins_daily',
                'teaching_vs_participating', 'course_engagement_weekly', 'user_activity'] as $q) {
            $this->assertContains("pg.$q", $names);
            $this->assertContains("influx.$q", $names);
        }
        if (count(array_unique(self::$ran)) < 10) {
            $this->markTestSkipped('run the whole analytics_test class to check that every documented query is tested');
        }
        $this->assertSame([], array_values(array_diff($names, self::$ran)), 'documented queries that no test runs');
    }
}
