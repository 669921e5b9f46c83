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
        analytics_fixture::$table = RENDER_TABLE;
        analytics_fixture::$database = RENDER_INFLUX_DB;
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
                        $targets[] = $probe->run_target($backend, $target, $vars);
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
        $q = downsampling_test::influxql_statements(RENDER_INFLUX_DB);
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
        $user = (int) self::run_sql('SELECT userid FROM ' . RENDER_TABLE . ' WHERE userid IN (SELECT relateduserid FROM '
            . RENDER_TABLE . ') GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1')[0]->userid;
        sort($courses);
        return ['table' => RENDER_TABLE, 'prefix' => 'mdl_', 'course' => $courses, 'user' => $user,
            'userkey' => (string) $user, 'rollup' => 'rollup_5y', '__interval' => '1h', '__interval_ms' => '3600000'];
    }

    /**
     * One query, expanded and run.
     *
     * @param string $backend
     * @param array $target
     * @param array $vars
     * @return array query, format, and rows (PostgreSQL: objects as arrays) or series (InfluxDB)
     */
    protected function run_target(string $backend, array $target, array $vars): array {
        if ($backend === 'postgres') {
            $sql = $this->expand_sql_macros(self::expand_vars($target['rawSql'], $vars, 'postgres'));
            return ['query' => $sql, 'format' => $target['format'],
                'rows' => array_map('get_object_vars', self::run_sql($sql))];
        }
        $q = str_replace('$timeFilter', 'time >= ' . $this->from . '000ms and time <= ' . $this->to . '000ms',
            self::expand_vars($target['query'], $vars, 'influxdb'));
        return ['query' => $q, 'format' => $target['resultFormat'], 'alias' => $target['alias'] ?? '',
            'series' => self::run_influxql($q)];
    }
}
