<?php
// Part of docs/grafana/render_data.php: the test suite's Grafana expansion (tests/moodle/tests/grafana_test.php) used
// on the data of render.py, so the pictures show what the tested queries return, expanded by the tested code.

use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\summary;

/**
 * grafana_test's macro and variable expansion and query runners, on the render databases.
 */
class render_probe extends grafana_test {

    /**
     * Every panel of every dashboard, run.
     *
     * @param int $from the activity boards' time range
     * @param int $to
     * @param int $healthfrom the health board's time range (the minutes the load took)
     * @param int $healthto
     * @return array boards with their panels, expanded queries and results
     */
    public static function all_panels(int $from, int $to, int $healthfrom, int $healthto): array {
        analytics_fixture::$name = RENDER_TABLE;
        $probe = new self('render');
        $out = [];
        $backends = ['postgres'];
        if (getenv('TSDB_TEST_INFLUX_URL')) {
            $backends[] = 'influxdb';
        }
        foreach ($backends as $backend) {
            $probe->prepare($backend, $from, $to);
            $vars = $probe->render_vars($backend);
            foreach (self::dashboards($backend) as $file => $board) {
                $health = $file === 'system-health.json';
                $probe->from = $health ? $healthfrom : $from;
                $probe->to = $health ? $healthto : $to;
                $panels = [];
                foreach ($board['panels'] as $panel) {
                    $targets = [];
                    foreach ($panel['targets'] as $target) {
                        $targets[] = $probe->run_target($health ? 'moodle' : $backend, $target, $vars);
                    }
                    $panels[] = ['title' => $panel['title'], 'type' => $panel['type'], 'gridPos' => $panel['gridPos'],
                        'targets' => $targets];
                }
                $shown = array_intersect_key($vars, array_flip(array_column($board['templating']['list'], 'name')));
                $out[] = ['backend' => $backend, 'file' => $file, 'title' => $board['title'], 'from' => $probe->from,
                    'to' => $probe->to, 'vars' => $shown, 'panels' => $panels];
            }
        }
        return $out;
    }

    /**
     * The summaries the boards read: the plugin's own (summary on plain PostgreSQL; the shipped backfill statements
     * of the InfluxDB rollups, as the continuous queries would have filled them).
     *
     * @param string $backend
     * @param int $from
     * @param int $to
     */
    protected function prepare(string $backend, int $from, int $to): void {
        if ($backend === 'postgres') {
            $cfg = render_config('postgres');
            $db = pgdb::from_config($cfg);
            (new summary($db, $cfg))->refresh(time());
            $db->close();
            return;
        }
        $q = analytics_fixture::influxql_statements(RENDER_INFLUX_DB);
        foreach (['backfill_hourly', 'backfill_daily_users'] as $name) {
            self::run_influxql(str_replace(['FROM_TIME', 'TO_TIME'],
                [analytics_fixture::influx_time($from), analytics_fixture::influx_time($to)], $q[$name]));
        }
    }

    /**
     * The variables as picked for the pictures: the two busiest courses, the busiest user of those others acted on (graded).
     *
     * @param string $backend
     * @return array
     */
    protected function render_vars(string $backend): array {
        $courses = array_column(array_map('get_object_vars', self::run_sql('SELECT courseid::text AS c FROM ' . RENDER_TABLE
            . ' WHERE courseid > 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2')), 'c');
        // The busiest user of those others acted on; on little data, the busiest user.
        $user = (int) self::run_sql('SELECT userid FROM ' . RENDER_TABLE . ' WHERE userid > 0 GROUP BY 1'
            . ' ORDER BY bool_or(userid IN (SELECT relateduserid FROM ' . RENDER_TABLE . ' WHERE relateduserid IS NOT NULL))'
            . ' DESC, count(*) DESC, 1 LIMIT 1')[0]->userid;
        sort($courses);
        return ['table' => RENDER_TABLE, 'prefix' => $GLOBALS['CFG']->prefix, 'course' => $courses, 'user' => $user,
            'userkey' => (string) $user, 'rollup' => 'rollup_5y', '__interval' => '1h', '__interval_ms' => '3600000'];
    }

    /**
     * Runs InfluxQL on the render database.
     *
     * @param string $q
     * @return array[] series
     */
    protected static function run_influxql(string $q): array {
        analytics_fixture::$name = RENDER_INFLUX_DB;
        try {
            return parent::run_influxql($q);
        } finally {
            analytics_fixture::$name = RENDER_TABLE;
        }
    }

    /**
     * One query, expanded and run.
     *
     * @param string $db postgres (the log table), moodle (the site's database: the health board) or influxdb
     * @param array $target
     * @param array $vars
     * @return array query, format, and rows (PostgreSQL: objects as arrays) or series (InfluxDB)
     */
    protected function run_target(string $db, array $target, array $vars): array {
        if ($db !== 'influxdb') {
            $sql = $this->expand_sql_macros(self::expand_vars($target['rawSql'], $vars, 'postgres'));
            return ['query' => $sql, 'format' => $target['format'],
                'rows' => array_map('get_object_vars', self::run_sql($sql, $db))];
        }
        $q = str_replace('$timeFilter', 'time >= ' . $this->from . '000ms and time <= ' . $this->to . '000ms',
            self::expand_vars($target['query'], $vars, 'influxdb'));
        return ['query' => $q, 'format' => $target['resultFormat'], 'alias' => $target['alias'] ?? '',
            'series' => self::run_influxql($q)];
    }
}
