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
 * Summary tables of the log table on plain PostgreSQL, shaped like the TimescaleDB continuous aggregates.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * With TimescaleDB the sink creates continuous aggregates `<table>_hourly` (bucket, courseid, eventname, events) and
 * `<table>_daily_users` (day, userid, events), real-time (materialised buckets plus the recent raw rows), and the view
 * `<table>_daily_active_users` (day, active_users). On plain PostgreSQL this class gives the same three relations, with
 * the same names, columns and types, so that every query and dashboard works on both:
 *
 * - `<table>_hourly_mat` and `<table>_daily_users_mat`: materialised buckets (tables);
 * - `<table>_summary`: per aggregate, the watermark (every bucket before it is materialised) and the last refresh;
 * - views `<table>_hourly` and `<table>_daily_users`: the materialised buckets before the watermark UNION ALL the raw
 *   table aggregated from the watermark on (real-time, like `materialized_only = false`); `<table>_daily_active_users`.
 *
 * refresh() (the scheduled task `summarise`, every 15 minutes) recomputes complete buckets from the earliest changed
 * point: the last `LOOKBACK` days before the watermark (late events, spool replays), never earlier than the raw data that
 * retention keeps (so aggregates outlive raw rows), in one transaction per day. Buckets are in UTC.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class summary {

    /** @var int Days recomputed before the watermark on every refresh (late events). */
    const LOOKBACK_DAYS = 3;

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
     * Creates the summary tables and views (native layout), idempotent.
     */
    public function ensure(): void {
        $main = $this->db->table();
        $state = $this->q('_summary');
        $hmat = $this->q('_hourly_mat');
        $dmat = $this->q('_daily_users_mat');
        $lock = crc32('logstore_tsdb summary ' . $this->schema . '.' . $this->table);
        $this->db->execute('SELECT pg_advisory_lock(?)', [$lock]);
        try {
            $this->db->execute("CREATE TABLE IF NOT EXISTS $state (name varchar(20) PRIMARY KEY, watermark timestamptz, "
                . 'refreshed_at timestamptz)');
            $this->db->execute("INSERT INTO $state (name) VALUES ('hourly'), ('daily_users') ON CONFLICT DO NOTHING");
            $this->db->execute("CREATE TABLE IF NOT EXISTS $hmat (bucket timestamptz NOT NULL, courseid bigint, "
                . 'eventname varchar(255), events bigint NOT NULL)');
            $hix = pgdb::quote_identifier(self::derived($this->table, '_hourly_mat_ix'));
            $this->db->execute("CREATE INDEX IF NOT EXISTS $hix ON $hmat (bucket, courseid)");
            $this->db->execute("CREATE TABLE IF NOT EXISTS $dmat (day timestamptz NOT NULL, userid bigint, "
                . 'events bigint NOT NULL)');
            $dix = pgdb::quote_identifier(self::derived($this->table, '_daily_users_mat_ix'));
            $this->db->execute("CREATE INDEX IF NOT EXISTS $dix ON $dmat (day, userid)");
            $w = function(string $name) use ($state): string {
                return "COALESCE((SELECT watermark FROM $state WHERE name = '$name'), '-infinity'::timestamptz)";
            };
            $this->db->execute('CREATE OR REPLACE VIEW ' . $this->q('_hourly') . " AS SELECT bucket, courseid, eventname, events"
                . " FROM $hmat WHERE bucket < " . $w('hourly')
                . ' UNION ALL SELECT to_timestamp(floor(extract(epoch FROM "time") / 3600) * 3600) AS bucket, courseid,'
                . " eventname, count(*) AS events FROM $main WHERE \"time\" >= " . $w('hourly') . ' GROUP BY 1, 2, 3');
            $this->db->execute('CREATE OR REPLACE VIEW ' . $this->q('_daily_users') . " AS SELECT day, userid, events"
                . " FROM $dmat WHERE day < " . $w('daily_users')
                . ' UNION ALL SELECT to_timestamp(floor(extract(epoch FROM "time") / 86400) * 86400) AS day, userid,'
                . " count(*) AS events FROM $main WHERE userid > 0 AND \"time\" >= " . $w('daily_users') . ' GROUP BY 1, 2');
            $this->db->execute('CREATE OR REPLACE VIEW ' . $this->q('_daily_active_users')
                . ' AS SELECT day, count(*) AS active_users FROM ' . $this->q('_daily_users') . ' GROUP BY day');
        } finally {
            $this->db->execute('SELECT pg_advisory_unlock(?)', [$lock]);
        }
    }

    /**
     * The oldest time raw rows can still exist at (retention), or null without retention.
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
     * Brings the summary up to date: recomputes complete buckets from (watermark - LOOKBACK) and moves the watermark to
     * the start of the current hour / day. A first refresh backfills from the oldest raw row, one day per transaction.
     *
     * @param int|null $now
     * @param int $maxseconds stop after this long (the next run continues)
     * @return array name => ['from' => int, 'to' => int, 'buckets' => int] of what was recomputed
     */
    public function refresh(?int $now = null, int $maxseconds = 240): array {
        $now = $now ?? time();
        $started = time();
        $this->ensure();
        $out = [];
        foreach (['hourly' => 3600, 'daily_users' => 86400] as $name => $bucket) {
            $end = $now - ($now % $bucket);
            $row = $this->db->query('SELECT extract(epoch FROM watermark)::bigint AS w FROM ' . $this->q('_summary')
                . ' WHERE name = ?', [$name]);
            $watermark = $row && $row[0]->w !== null ? (int) $row[0]->w : null;
            if ($watermark === null) {
                $min = $this->db->query('SELECT extract(epoch FROM min("time"))::bigint AS t FROM ' . $this->db->table());
                if (!$min || $min[0]->t === null) {
                    continue;
                }
                $start = (int) $min[0]->t;
            } else {
                $start = min($watermark, $end) - self::LOOKBACK_DAYS * 86400;
            }
            $since = $this->raw_since($now);
            if ($since !== null) {
                $start = max($start, $since);
            }
            $start -= $start % $bucket;
            $out[$name] = ['from' => $start, 'to' => $start, 'buckets' => 0];
            for ($from = $start; $from < $end; $from += 86400) {
                $to = min($end, $from + 86400);
                $out[$name]['buckets'] += $this->recompute($name, $from, $to, $watermark === null || $to > $watermark);
                $out[$name]['to'] = $to;
                if (time() - $started > $maxseconds) {
                    return $out;
                }
            }
        }
        return $out;
    }

    /**
     * Recomputes the buckets of [from, to) of one aggregate in one transaction.
     *
     * @param string $name hourly or daily_users
     * @param int $from
     * @param int $to
     * @param bool $advance move the watermark to $to
     * @return int buckets written
     */
    public function recompute(string $name, int $from, int $to, bool $advance = true): int {
        $main = $this->db->table();
        $this->db->execute('BEGIN');
        try {
            if ($name === 'hourly') {
                $mat = $this->q('_hourly_mat');
                $this->db->execute("DELETE FROM $mat WHERE bucket >= to_timestamp(?) AND bucket < to_timestamp(?)", [$from, $to]);
                $n = $this->db->execute("INSERT INTO $mat (bucket, courseid, eventname, events)"
                    . ' SELECT to_timestamp(floor(extract(epoch FROM "time") / 3600) * 3600), courseid, eventname, count(*)'
                    . " FROM $main WHERE \"time\" >= to_timestamp(?) AND \"time\" < to_timestamp(?) GROUP BY 1, 2, 3",
                    [$from, $to]);
            } else {
                $mat = $this->q('_daily_users_mat');
                $this->db->execute("DELETE FROM $mat WHERE day >= to_timestamp(?) AND day < to_timestamp(?)", [$from, $to]);
                $n = $this->db->execute("INSERT INTO $mat (day, userid, events)"
                    . ' SELECT to_timestamp(floor(extract(epoch FROM "time") / 86400) * 86400), userid, count(*)'
                    . " FROM $main WHERE userid > 0 AND \"time\" >= to_timestamp(?) AND \"time\" < to_timestamp(?)"
                    . ' GROUP BY 1, 2', [$from, $to]);
            }
            if ($advance) {
                $this->db->execute('UPDATE ' . $this->q('_summary') . ' SET watermark = GREATEST(COALESCE(watermark,'
                    . " '-infinity'::timestamptz), to_timestamp(?)), refreshed_at = now() WHERE name = ?", [$to, $name]);
            } else {
                $this->db->execute('UPDATE ' . $this->q('_summary') . ' SET refreshed_at = now() WHERE name = ?', [$name]);
            }
            $this->db->execute('COMMIT');
            return $n;
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * Recomputes the materialised buckets overlapping a time range (after an import of older events), if the summary
     * exists. Buckets at or after the watermark are read from the raw table anyway.
     *
     * @param int $from
     * @param int $to exclusive
     */
    public function invalidate(int $from, int $to): void {
        if ($this->layout() !== 'native' || !$this->exists()) {
            return;
        }
        foreach (['hourly' => 3600, 'daily_users' => 86400] as $name => $bucket) {
            $start = $from - ($from % $bucket);
            for ($f = $start; $f < $to; $f += 86400) {
                $this->recompute($name, $f, min($f + 86400, $to + ($bucket - ($to % $bucket)) % $bucket), false);
            }
        }
    }

    /**
     * After events of some users were deleted (privacy): their per-day rows are recomputed, so none remains for days
     * where they have no event left. TimescaleDB: the aggregate is refreshed as the sink's documentation says.
     *
     * @param int[] $userids
     */
    public function users_deleted(array $userids): void {
        $layout = $this->layout();
        if ($layout === 'timescaledb') {
            $this->db->execute('CALL refresh_continuous_aggregate(?::regclass, NULL, NULL)', [$this->q('_daily_users')]);
            return;
        }
        if ($layout !== 'native' || !$this->exists()) {
            return;
        }
        $mat = $this->q('_daily_users_mat');
        $state = $this->q('_summary');
        $ids = pgdb::int_array($userids);
        $this->db->execute('BEGIN');
        try {
            $this->db->execute("DELETE FROM $mat WHERE userid = ANY(?::bigint[])", [$ids]);
            $this->db->execute("INSERT INTO $mat (day, userid, events)"
                . ' SELECT to_timestamp(floor(extract(epoch FROM "time") / 86400) * 86400), userid, count(*) FROM '
                . $this->db->table() . " WHERE userid = ANY(?::bigint[]) AND \"time\" < (SELECT watermark FROM $state"
                . " WHERE name = 'daily_users') GROUP BY 1, 2", [$ids]);
            $this->db->execute('COMMIT');
        } catch (\Throwable $e) {
            $this->db->execute('ROLLBACK');
            throw $e;
        }
    }

    /**
     * Do the summary tables exist?
     *
     * @return bool
     */
    public function exists(): bool {
        $rows = $this->db->query('SELECT to_regclass(?) AS t', [$this->q('_summary')]);
        return $rows && $rows[0]->t !== null;
    }
}
