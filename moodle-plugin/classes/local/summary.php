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
 * Summaries of the log table on plain PostgreSQL, the same relations as TimescaleDB's continuous aggregates.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * With TimescaleDB the sink keeps nine real-time continuous aggregates (src/sink/postgres/timescale.rs): `<table>_daily`,
 * `_daily_courses`, `_daily_users`, `_daily_active_users`, `_hourly`, `_activity`, `_daily_events`, `_hourly_site` and
 * `_weekly_courses`. On plain PostgreSQL (the sink's daily partitions) this class gives the same nine relations, with the
 * same names, columns and types, so that every documented query and dashboard runs unchanged on both:
 *
 * - `<table><suffix>_mat`: the materialised buckets of each (tables made from the definition itself);
 * - `<table>_summary`: the watermark (every day before it is materialised) and, per day, the change counter of its
 *   partition when it was last materialised;
 * - views `<table><suffix>`: the materialised buckets before the watermark UNION ALL the raw table aggregated from the
 *   watermark on (real-time, like TimescaleDB's `materialized_only = false`); for weeks, before and from the start of
 *   the watermark's week.
 *
 * refresh() (the scheduled task `summarise`) materialises whole UTC days, one transaction per day: every day up to the
 * start of today, the last LOOKBACK_DAYS again, and any older day whose partition changed since it was materialised
 * (PostgreSQL's counters of inserted, updated and deleted rows per partition: late events, imports, deletions), never
 * a day whose partition retention dropped (the summaries outlive the raw events). A week (Monday to Monday, UTC, as
 * TimescaleDB's time_bucket() and date_trunc('week') have it) is materialised whole, with the last of its days that a
 * refresh materialises, once it has ended before today and none of its days was dropped.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class summary {

    /** @var int Days before the watermark materialised again on every refresh, whatever the counters say. */
    const LOOKBACK_DAYS = 1;

    /** @var string Marks the objects of this version (comment of the state table). */
    const VERSION = 'logstore_tsdb summary 2';

    /**
     * @var array[] The aggregates as in timescale.rs: suffix => [bucket column, bucket seconds, grouping columns,
     *      aggregates]. The expressions are TimescaleDB's (`numeric` counts of `_daily_courses` and `_daily_active_users`:
     *      their type when TimescaleDB's were sums over `_daily` and `_daily_users`).
     */
    const AGGREGATES = [
        '_daily' => ['day', 86400, 'courseid, userid', 'count(*) AS events, '
            . 'count(*) FILTER (WHERE anonymous <> 0) AS anonymous_events, '
            . 'count(*) FILTER (WHERE edulevel = 1) AS teaching, count(*) FILTER (WHERE edulevel = 2) AS participating'],
        '_daily_courses' => ['day', 86400, 'courseid', 'count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users, '
            . 'count(*)::numeric AS events, (count(*) FILTER (WHERE anonymous <> 0))::numeric AS anonymous_events, '
            . '(count(*) FILTER (WHERE edulevel = 1))::numeric AS teaching, '
            . '(count(*) FILTER (WHERE edulevel = 2))::numeric AS participating, '
            . "count(*) FILTER (WHERE eventname = '\\core\\event\\user_loggedin') AS logins, "
            . "count(*) FILTER (WHERE eventname = '\\core\\event\\user_login_failed') AS failed_logins"],
        '_daily_users' => ['day', 86400, 'userid', 'count(*) AS events, '
            . 'count(*) FILTER (WHERE anonymous <> 0) AS anonymous_events'],
        '_daily_active_users' => ['day', 86400, '', 'count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users, '
            . 'count(*)::numeric AS events'],
        '_hourly' => ['bucket', 3600, 'courseid', 'count(*) AS events, count(*) FILTER (WHERE edulevel = 0) AS other, '
            . 'count(*) FILTER (WHERE edulevel = 1) AS teaching, count(*) FILTER (WHERE edulevel = 2) AS participating, '
            . "count(*) FILTER (WHERE eventname = '\\core\\event\\user_loggedin') AS logins, "
            . "count(*) FILTER (WHERE eventname = '\\core\\event\\user_login_failed') AS failed_logins"],
        '_activity' => ['day', 86400, 'courseid, contextlevel, contextinstanceid, component, eventname', 'count(*) AS events'],
        '_daily_events' => ['day', 86400, 'eventname, origin', 'count(*) AS events'],
        '_hourly_site' => ['bucket', 3600, '', 'count(*) AS events, count(*) FILTER (WHERE edulevel = 0) AS other, '
            . 'count(*) FILTER (WHERE edulevel = 1) AS teaching, count(*) FILTER (WHERE edulevel = 2) AS participating, '
            . "count(*) FILTER (WHERE eventname = '\\core\\event\\user_loggedin') AS logins, "
            . "count(*) FILTER (WHERE eventname = '\\core\\event\\user_login_failed') AS failed_logins, "
            . 'count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users'],
        '_weekly_courses' => ['week', self::WEEK, 'courseid', 'count(DISTINCT userid) FILTER (WHERE userid > 0) AS active_users, '
            . 'count(*) AS events'],
    ];

    /** @var int Seconds of a week. */
    const WEEK = 604800;

    /** @var int Unix time of Monday 1970-01-05 00:00 UTC: buckets start there (weeks on Mondays; hours and days, whose
     * lengths divide it, where they always do). */
    const ORIGIN = 345600;

    /**
     * @var string[][] Aggregates added, or columns added to one, after the summaries' version: column => its type. A
     *      summary without that column gets it (made, or the column added, from the events still there).
     */
    const ADDED = ['_daily_events' => ['events', 'bigint'], '_hourly_site' => ['active_users', 'bigint'],
        '_weekly_courses' => ['active_users', 'bigint']];

    /** @var pgdb */
    protected $db;

    /** @var \stdClass */
    protected $cfg;

    /** @var string */
    protected $schema;

    /** @var string */
    protected $table;

    /**
     * Constructor.
     *
     * @param pgdb $db
     * @param \stdClass $cfg plugin config
     */
    public function __construct(pgdb $db, #[\SensitiveParameter] \stdClass $cfg) {
        $this->db = $db;
        $this->cfg = $cfg;
        $this->schema = (string) ($cfg->schema ?: 'public');
        $this->table = (string) ($cfg->table ?: 'logstore_tsdb_log');
    }

    /**
     * `table` + suffix within PostgreSQL's 63 bytes, exactly as the sink names its companions (Names::derived).
     *
     * @param string $table
     * @param string $suffix
     * @return string
     */
    public static function derived(string $table, string $suffix): string {
        $full = $table . $suffix;
        if (strlen($full) <= 63) {
            return $full;
        }
        $hash = sprintf('_%08x', crc32($table));
        return substr($table, 0, 63 - strlen($suffix) - strlen($hash)) . $hash . $suffix;
    }

    /**
     * A quoted companion object.
     *
     * @param string $suffix
     * @return string
     */
    public function q(string $suffix): string {
        return pgdb::quote_identifier($this->schema) . '.' . pgdb::quote_identifier(self::derived($this->table, $suffix));
    }

    /**
     * The sink's layout: 'timescaledb', 'native', or null when the table does not exist yet.
     *
     * @return string|null
     */
    public function layout(): ?string {
        $rows = $this->db->query('SELECT to_regclass(?) AS t', [$this->q('_schema')]);
        if (!$rows || $rows[0]->t === null) {
            return $this->db->table_exists() ? 'native' : null;
        }
        $rows = $this->db->query('SELECT layout FROM ' . $this->q('_schema') . ' LIMIT 1');
        return $rows ? (string) $rows[0]->layout : 'native';
    }

    /**
     * The SELECT of an aggregate over the events matching a condition.
     *
     * @param string $suffix
     * @param string $where
     * @return string
     */
    protected function select(string $suffix, string $where): string {
        [$col, $seconds, $group, $aggregates] = self::AGGREGATES[$suffix];
        $keys = $group === '' ? [] : explode(', ', $group);
        $origin = self::ORIGIN;
        return "SELECT to_timestamp(floor((extract(epoch FROM \"time\") - $origin) / $seconds) * $seconds + $origin) AS $col, "
            . implode('', array_map(function($k) {
                return "$k, ";
            }, $keys)) . $aggregates . ' FROM ' . $this->db->table() . " WHERE $where GROUP BY "
            . implode(', ', range(1, count($keys) + 1));
    }

    /**
     * Creates the tables and views (native layout), idempotent; replaces the objects of the first version (`_hourly`
     * by event name and `_daily_users` only): dropped, or with retention kept as `<table>_hourly_v1` and
     * `<table>_daily_users_v1` since they may hold days whose events are gone.
     */
    public function ensure(): void {
        if ($this->exists()) {
            $this->add_daily_courses();
            foreach (self::ADDED as $suffix => [$column, $type]) {
                $this->add_missing($suffix, $column, $type);
            }
            return;
        }
        $state = $this->q('_summary');
        $this->db->execute('BEGIN');
        try {
            $this->db->execute('SELECT pg_advisory_xact_lock(?)', [$this->lock()]);
            if ($this->exists()) {
                $this->db->execute('COMMIT');
                return;
            }
            foreach (['_daily_active_users', '_hourly', '_daily_users'] as $view) {
                $this->db->execute('DROP VIEW IF EXISTS ' . $this->q($view));
            }
            foreach (['_hourly', '_daily_users'] as $old) {
                if ((int) ($this->cfg->retention_days ?? 0) > 0) {
                    $this->db->execute('ALTER TABLE IF EXISTS ' . $this->q($old . '_mat') . ' RENAME TO '
                        . pgdb::quote_identifier(self::derived($this->table, $old . '_v1')));
                }
            }
            $this->db->execute("DROP TABLE IF EXISTS $state");
            $this->db->execute("CREATE TABLE $state (day timestamptz PRIMARY KEY, changes bigint NOT NULL)");
            foreach (array_keys(self::AGGREGATES) as $suffix) {
                $this->db->execute('DROP TABLE IF EXISTS ' . $this->q($suffix . '_mat'));
                $this->create($suffix);
            }
            $this->db->execute("COMMENT ON TABLE $state IS '" . self::VERSION . "'");
            $this->db->execute('COMMIT');
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * The watermark in SQL (every day before it is materialised; -infinity before the first refresh), for buckets of
     * a week the start of its week.
     *
     * @param int $seconds the aggregate's bucket
     * @return string
     */
    protected function watermark_sql(int $seconds = 86400): string {
        $day = "COALESCE((SELECT max(day) + interval '1 day' FROM {$this->q('_summary')}), '-infinity'::timestamptz)";
        return $seconds === self::WEEK ? "(date_trunc('week', $day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')" : $day;
    }

    /**
     * Creates the table of an aggregate's materialised buckets (empty) and its view.
     *
     * @param string $suffix
     */
    protected function create(string $suffix): void {
        $col = self::AGGREGATES[$suffix][0];
        $mat = $this->q($suffix . '_mat');
        $this->db->execute("CREATE TABLE $mat AS " . $this->select($suffix, 'false') . ' WITH NO DATA');
        $this->db->execute('CREATE INDEX ' . pgdb::quote_identifier(self::derived($this->table, $suffix . '_mat_ix'))
            . " ON $mat ($col)");
        $this->create_view($suffix);
    }

    /**
     * Creates an aggregate's view: its materialised buckets before the watermark, the events aggregated from there.
     *
     * @param string $suffix
     */
    protected function create_view(string $suffix): void {
        [$col, $seconds] = self::AGGREGATES[$suffix];
        $watermark = $this->watermark_sql($seconds);
        $this->db->execute('CREATE VIEW ' . $this->q($suffix) . ' AS SELECT * FROM ' . $this->q($suffix . '_mat')
            . " WHERE $col < $watermark UNION ALL " . $this->select($suffix, "\"time\" >= $watermark"));
    }

    /**
     * Summaries made by the plugin before `_daily_courses` existed, or before it had `logins` and `failed_logins`, get
     * it made again, its materialised days from `_daily_mat` and `_hourly_mat` (the same figures, also of days whose
     * events retention dropped); nothing else is made again.
     */
    protected function add_daily_courses(): void {
        $mat = $this->q('_daily_courses_mat');
        $current = function() use ($mat): bool {
            return (int) $this->db->query('SELECT count(*) AS n FROM pg_attribute WHERE attrelid = to_regclass(?) '
                . "AND attname = 'failed_logins' AND NOT attisdropped", [$mat])[0]->n === 1;
        };
        if ($current()) {
            return;
        }
        $this->db->execute('BEGIN');
        try {
            $this->db->execute('SELECT pg_advisory_xact_lock(?)', [$this->lock()]);
            if (!$current()) {
                $this->db->execute('DROP VIEW IF EXISTS ' . $this->q('_daily_courses'));
                $this->db->execute("DROP TABLE IF EXISTS $mat");
                $this->create('_daily_courses');
                $this->db->execute("INSERT INTO $mat SELECT d.day, d.courseid, count(*) FILTER (WHERE d.userid > 0), "
                    . 'sum(d.events), sum(d.anonymous_events), sum(d.teaching), sum(d.participating), '
                    . 'COALESCE(max(h.logins), 0), COALESCE(max(h.failed_logins), 0) FROM ' . $this->q('_daily_mat') . ' d '
                    . 'LEFT JOIN (SELECT to_timestamp(floor(extract(epoch FROM bucket) / 86400) * 86400) AS day, courseid, '
                    . 'sum(logins) AS logins, sum(failed_logins) AS failed_logins FROM ' . $this->q('_hourly_mat')
                    . ' GROUP BY 1, 2) h ON h.day = d.day AND h.courseid = d.courseid GROUP BY 1, 2');
            }
            $this->db->execute('COMMIT');
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * Summaries made by the plugin before an aggregate, or a column of one, existed get it: a new aggregate has its
     * buckets from the events still there (like a new continuous aggregate on TimescaleDB, no row for days whose
     * events retention dropped); a new column is added, and the buckets whose events are all still there are made
     * again from them (older ones keep their counts, the new column NULL: not known any more).
     *
     * @param string $suffix a key of ADDED
     * @param string $column the column it has from this version on
     * @param string $type its type
     */
    protected function add_missing(string $suffix, string $column, string $type): void {
        $mat = $this->q($suffix . '_mat');
        $missing = function() use ($mat, $column): bool {
            return (int) $this->db->query('SELECT count(*) AS n FROM pg_attribute WHERE attrelid = to_regclass(?) '
                . 'AND attname = ? AND NOT attisdropped', [$mat, $column])[0]->n === 0;
        };
        if (!$missing()) {
            return;
        }
        $this->db->execute('BEGIN');
        try {
            $this->db->execute('SELECT pg_advisory_xact_lock(?)', [$this->lock()]);
            if ($missing()) {
                [$col, $seconds] = self::AGGREGATES[$suffix];
                // From the first whole bucket of the events still there (retention drops whole days: a week may
                // have lost some).
                $first = $this->db->query('SELECT extract(epoch FROM min("time"))::bigint AS t FROM '
                    . $this->db->table())[0]->t;
                $ceil = $seconds > 86400 && (int) ($this->cfg->retention_days ?? 0) > 0 ? $seconds - 1 : 0;
                $from = $first === null ? 'infinity' : gmdate('Y-m-d H:i:s+00',
                    self::bucket_start((int) $first + $ceil, $seconds));
                if ($this->db->query('SELECT to_regclass(?) AS t', [$mat])[0]->t === null) {
                    $this->create($suffix);
                } else {
                    $this->db->execute('DROP VIEW IF EXISTS ' . $this->q($suffix));
                    $this->db->execute("ALTER TABLE $mat ADD COLUMN " . pgdb::quote_identifier($column) . " $type");
                    $this->create_view($suffix);
                    $this->db->execute("DELETE FROM $mat WHERE $col >= ?::timestamptz", [$from]);
                }
                $this->db->execute("INSERT INTO $mat " . $this->select($suffix,
                    '"time" >= ?::timestamptz AND "time" < ' . $this->watermark_sql($seconds)), [$from]);
            }
            $this->db->execute('COMMIT');
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * The start of the bucket a time is in.
     *
     * @param int $time unix seconds
     * @param int $seconds the bucket's length
     * @return int
     */
    protected static function bucket_start(int $time, int $seconds): int {
        return $time - (($time - self::ORIGIN) % $seconds + $seconds) % $seconds;
    }

    /**
     * The advisory lock taken by every change of the summaries of this table.
     *
     * @return int
     */
    protected function lock(): int {
        return crc32('logstore_tsdb summary ' . $this->schema . '.' . $this->table);
    }

    /**
     * The watermark: every day before it is materialised (null before the first refresh).
     *
     * @return int|null
     */
    public function watermark(): ?int {
        $rows = $this->db->query('SELECT extract(epoch FROM max(day))::bigint AS d FROM ' . $this->q('_summary'));
        return $rows && $rows[0]->d !== null ? (int) $rows[0]->d + 86400 : null;
    }

    /**
     * The change counter (rows inserted + updated + deleted, as PostgreSQL's cumulative statistics count them) of each
     * daily partition of the events table (`<table>_pYYYYMMDD`, as the sink names them).
     *
     * @return int[] day => counter
     */
    protected function partition_changes(): array {
        $out = [];
        $rows = $this->db->query('SELECT c.relname, COALESCE(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) AS n '
            . 'FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid '
            . 'WHERE i.inhparent = to_regclass(?)', [$this->db->table()]);
        foreach ($rows as $r) {
            if (preg_match('/(\d{4})(\d\d)(\d\d)$/', $r->relname, $m)) {
                $day = gmmktime(0, 0, 0, (int) $m[2], (int) $m[3], (int) $m[1]);
                if (self::derived($this->table, '_p' . gmdate('Ymd', $day)) === $r->relname) {
                    $out[$day] = (int) $r->n;
                }
            }
        }
        return $out;
    }

    /**
     * The first day whose events can still exist (retention), or null without retention.
     *
     * @param int $now
     * @return int|null
     */
    protected function raw_since(int $now): ?int {
        $days = (int) ($this->cfg->retention_days ?? 0);
        if ($days <= 0) {
            return null;
        }
        // The sink drops a day's partition once its end is older than retention_days: keep whole days after that.
        $cut = $now - $days * 86400;
        return $cut - ($cut % 86400) + 86400;
    }

    /**
     * Brings the summaries up to date: materialises every day from the watermark (on a first refresh, from the oldest
     * event) to the start of today, the LOOKBACK_DAYS before it and every older day whose partition changed since it
     * was materialised, oldest first; the watermark is then the start of today.
     *
     * @param int|null $now
     * @param int $maxseconds stop after this long (the next run continues)
     * @return array ['from' => first day, 'to' => end of the last day, 'days' => days materialised]
     */
    public function refresh(?int $now = null, int $maxseconds = 240): array {
        $now = $now ?? time();
        $started = time();
        $this->ensure();
        $today = $now - $now % 86400;
        // Read before the days are recomputed: a change counted later is seen by the next refresh.
        $changes = $this->partition_changes();
        $watermark = $this->watermark();
        if ($watermark === null) {
            $min = $this->db->query('SELECT extract(epoch FROM min("time"))::bigint AS t FROM ' . $this->db->table());
            $watermark = $min && $min[0]->t !== null ? min($today, (int) $min[0]->t - (int) $min[0]->t % 86400) : $today;
        }
        $seen = $this->seen();
        $days = range(min($watermark, $today) - self::LOOKBACK_DAYS * 86400, $today, 86400);
        foreach ($changes as $day => $n) {
            if (($seen[$day] ?? null) !== $n) {
                $days[] = $day;
            }
        }
        $since = $this->raw_since($now);
        $days = array_unique(array_filter($days, function($d) use ($since, $today) {
            return ($since === null || $d >= $since) && $d < $today;
        }));
        sort($days);
        $out = ['from' => $days ? $days[0] : $today, 'to' => $today, 'days' => 0];
        $weeks = $this->weeks($days, $since, $today, $seen, $changes);
        foreach ($days as $day) {
            if (time() - $started > $maxseconds) {
                $out['to'] = $day;
                break;
            }
            $this->recompute($day, $changes[$day] ?? -1, $weeks[$day] ?? null);
            $out['days']++;
        }
        return $out;
    }

    /**
     * The days materialised so far, with their partitions' counters then.
     *
     * @return int[] day => counter
     */
    protected function seen(): array {
        $seen = [];
        foreach ($this->db->query('SELECT extract(epoch FROM day)::bigint AS d, changes FROM ' . $this->q('_summary')) as $r) {
            $seen[(int) $r->d] = (int) $r->changes;
        }
        return $seen;
    }

    /**
     * The weeks materialised with a list of days: day => the start of its week, for the last day of each week in the
     * list, when the week has ended by $end and has all its events: it starts after $since (not null: retention) and
     * none of its days was dropped (materialised when it had a partition, the partition gone now). A week that lost
     * days keeps its rows.
     *
     * A refresh that stops early leaves its last day's week for the next one, which materialises that day again
     * (LOOKBACK_DAYS) or the later days of the week, which are then not recorded yet.
     *
     * @param int[] $days sorted
     * @param int|null $since
     * @param int $end
     * @param int[] $seen seen()
     * @param int[] $changes partition_changes()
     * @return int[]
     */
    protected function weeks(array $days, ?int $since, int $end, array $seen, array $changes): array {
        $lost = [];
        foreach ($seen as $day => $counter) {
            if ($counter >= 0 && !isset($changes[$day])) {
                $lost[self::bucket_start($day, self::WEEK)] = true;
            }
        }
        $last = [];
        foreach ($days as $day) {
            $last[self::bucket_start($day, self::WEEK)] = $day;
        }
        $out = [];
        foreach ($last as $week => $day) {
            if (($since === null || $week >= $since) && $week + self::WEEK <= $end && !isset($lost[$week])) {
                $out[$day] = $week;
            }
        }
        return $out;
    }

    /**
     * Materialises one day of every aggregate by day or hour, and a week of those by week if asked, in one transaction
     * (serialised with any other change of the summaries), and records the day with its partition's counter.
     *
     * @param int $day
     * @param int $changes the partition's counter, read before
     * @param int|null $week the start of a week to materialise too
     */
    protected function recompute(int $day, int $changes, ?int $week = null): void {
        $this->db->execute('BEGIN');
        try {
            $this->db->execute('SELECT pg_advisory_xact_lock(?)', [$this->lock()]);
            foreach (self::AGGREGATES as $suffix => [$col, $seconds]) {
                $from = $seconds === self::WEEK ? $week : $day;
                if ($from === null) {
                    continue;
                }
                $to = $from + max($seconds, 86400);
                $mat = $this->q($suffix . '_mat');
                $this->db->execute("DELETE FROM $mat WHERE $col >= to_timestamp(?) AND $col < to_timestamp(?)",
                    [$from, $to]);
                $this->db->execute("INSERT INTO $mat " . $this->select($suffix,
                    '"time" >= to_timestamp(?) AND "time" < to_timestamp(?)'), [$from, $to]);
            }
            $this->db->execute('INSERT INTO ' . $this->q('_summary') . ' (day, changes) VALUES (to_timestamp(?), ?) '
                . 'ON CONFLICT (day) DO UPDATE SET changes = EXCLUDED.changes', [$day, $changes]);
            $this->db->execute('COMMIT');
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * Materialises again the days of a time range before the watermark (after an import of older events), if the
     * summaries exist. Days from the watermark on are read from the events anyway.
     *
     * @param int $from
     * @param int $to exclusive
     */
    public function invalidate(int $from, int $to): void {
        if ($this->layout() !== 'native' || !$this->exists() || ($watermark = $this->watermark()) === null) {
            return;
        }
        $changes = $this->partition_changes();
        $days = [];
        for ($day = $from - $from % 86400; $day < min($to, $watermark); $day += 86400) {
            $days[] = $day;
        }
        $weeks = $this->weeks($days, $this->raw_since(time()), $watermark, $this->seen(), $changes);
        foreach ($days as $day) {
            $this->recompute($day, $changes[$day] ?? -1, $weeks[$day] ?? null);
        }
    }

    /**
     * After events of some users were deleted (privacy): their rows in the per-user aggregates (`_daily`,
     * `_daily_users`) are made again from the events left, so none remains where they have no event left; the
     * counts without user ids follow at the next refresh (the partitions' counters changed). TimescaleDB: those
     * aggregates are refreshed now (their policies would within 30 minutes).
     *
     * @param int[] $userids
     */
    public function users_deleted(array $userids): void {
        $layout = $this->layout();
        if ($layout === 'timescaledb') {
            // From the oldest chunk on: TimescaleDB logs the range retention dropped as changed, so refreshing it
            // would empty those days; there the users' rows are deleted instead (below).
            $since = $this->db->query('SELECT min(range_start) AS t FROM timescaledb_information.chunks '
                . 'WHERE hypertable_schema = ? AND hypertable_name = ?', [$this->schema, $this->table])[0]->t;
            foreach ($since === null ? [] : ['_daily', '_daily_courses', '_daily_users', '_daily_active_users'] as $suffix) {
                $this->db->execute('CALL refresh_continuous_aggregate(?::regclass, ?::timestamptz, NULL)',
                    [$this->q($suffix), $since]);
            }
            $this->db->execute('BEGIN');
            try {
                $this->db->execute('SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0');
                foreach (['_daily', '_daily_users'] as $suffix) {
                    $mat = $this->db->query('SELECT format(\'%I.%I\', materialization_hypertable_schema, '
                        . 'materialization_hypertable_name) AS m FROM timescaledb_information.continuous_aggregates '
                        . 'WHERE view_schema = ? AND view_name = ?', [$this->schema, self::derived($this->table, $suffix)]);
                    $this->db->execute('DELETE FROM ' . $mat[0]->m . ' WHERE userid = ANY(?::bigint[]) AND day < '
                        . "COALESCE(?::timestamptz, 'infinity')", [pgdb::int_array($userids), $since]);
                }
                $this->db->execute('COMMIT');
            } catch (\Throwable $e) {
                $this->db->execute('ROLLBACK');
                throw $e;
            }
            return;
        }
        if ($layout !== 'native' || !$this->exists() || ($watermark = $this->watermark()) === null) {
            return;
        }
        $ids = pgdb::int_array($userids);
        $this->db->execute('BEGIN');
        try {
            $this->db->execute('SELECT pg_advisory_xact_lock(?)', [$this->lock()]);
            foreach (['_daily', '_daily_users'] as $suffix) {
                $mat = $this->q($suffix . '_mat');
                $this->db->execute("DELETE FROM $mat WHERE userid = ANY(?::bigint[])", [$ids]);
                $this->db->execute("INSERT INTO $mat " . $this->select($suffix,
                    'userid = ANY(?::bigint[]) AND "time" < to_timestamp(?)'), [$ids, $watermark]);
            }
            $this->db->execute('COMMIT');
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * Do the summaries of this version exist?
     *
     * @return bool
     */
    public function exists(): bool {
        $rows = $this->db->query('SELECT obj_description(to_regclass(?), \'pg_class\') AS c', [$this->q('_summary')]);
        return $rows && $rows[0]->c === self::VERSION;
    }
}
