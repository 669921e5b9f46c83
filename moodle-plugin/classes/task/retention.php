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
 * Scheduled task retention.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\task;

defined('MOODLE_INTERNAL') || die();

/**
 * Deletes events older than retention_days from a plain PostgreSQL log table, in small batches, while the writer is idle (TimescaleDB uses its own retention policy).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class retention extends \core\task\scheduled_task {

    /**
     * Name of the task.
     *
     * @return string
     */
    public function get_name() {
        return get_string('task_retention', 'logstore_tsdb');
    }

    /** @var int Rows per DELETE. */
    const BATCH = 5000;

    /** @var int Stop after this many seconds (as the standard store's cleanup). */
    const MAX_SECONDS = 300;

    /**
     * Deletes expired rows.
     *
     * @param int|null $now
     * @return int rows deleted
     */
    public function execute(?int $now = null) {
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $days = (int) $cfg->retention_days;
        if (strpos((string) $cfg->backend, 'influxdb') === 0) {
            mtrace('logstore_tsdb: InfluxDB removes old points itself, by the retention policy of the database or bucket'
                . ' (retention_days applies to PostgreSQL only).');
            return 0;
        }
        if ($cfg->backend !== 'postgres' || $days <= 0) {
            mtrace('logstore_tsdb: retention not applicable (backend ' . $cfg->backend . ', retention_days ' . $days . ').');
            return 0;
        }
        $db = \logstore_tsdb\local\pgdb::from_config($cfg, 'logstore_tsdb_retention');
        try {
            if ($db->timescaledb_version() !== null) {
                mtrace('logstore_tsdb: TimescaleDB manages retention with its retention policy.');
                return 0;
            }
            if (!$db->table_exists()) {
                mtrace('logstore_tsdb: the log table does not exist yet.');
                return 0;
            }
            $cutoff = ($now ?? time()) - $days * 86400;
            $start = time();
            $deleted = 0;
            $table = $db->table();
            $partitions = self::partitions($db, (string) $cfg->schema, (string) $cfg->table);
            if ($partitions !== null) {
                // The extension's native layout: one partition per UTC day (table_pYYYYMMDD). Drop whole days that
                // ended before the cutoff, as the writer does when it is running.
                $db->execute("SET lock_timeout = '2s'");
                foreach ($partitions as $name => $daystart) {
                    if ($daystart + 86400 <= $cutoff) {
                        $qualified = \logstore_tsdb\local\pgdb::quote_identifier($cfg->schema) . '.'
                            . \logstore_tsdb\local\pgdb::quote_identifier($name);
                        try {
                            $n = (int) $db->query("SELECT count(*) AS n FROM $qualified")[0]->n;
                            $db->execute("DROP TABLE $qualified");
                            $deleted += $n;
                        } catch (\moodle_exception $e) {
                            // Busy (lock_timeout) or already dropped by the writer: the next run will see it.
                            mtrace("logstore_tsdb: could not drop $name now: " . $e->getMessage());
                        }
                    }
                }
            } else {
                do {
                    // Yield to the writer: wait while its connection is busy.
                    for ($wait = 0; $wait < 10 && self::writer_busy($db, (string) $cfg->application_name); $wait++) {
                        sleep(1);
                    }
                    $n = $db->execute("DELETE FROM $table WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM $table"
                        . ' WHERE timecreated < ? LIMIT ' . self::BATCH . ')', [$cutoff]);
                    $deleted += $n;
                } while ($n > 0 && time() - $start < self::MAX_SECONDS);
            }
            mtrace("logstore_tsdb: deleted $deleted events older than $days days.");
            return $deleted;
        } finally {
            $db->close();
        }
    }

    /**
     * Daily partitions of a partitioned log table, or null when the table is not partitioned.
     *
     * @param \logstore_tsdb\local\pgdb $db
     * @param string $schema
     * @param string $table
     * @return array|null partition name => unix time of its UTC day
     */
    protected static function partitions(\logstore_tsdb\local\pgdb $db, string $schema, string $table): ?array {
        $parent = $db->query('SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace'
            . ' WHERE n.nspname = ? AND c.relname = ?', [$schema, $table]);
        if (!$parent || $parent[0]->relkind !== 'p') {
            return null;
        }
        $out = [];
        foreach ($db->query('SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = ?',
                [(int) $parent[0]->oid]) as $r) {
            if (preg_match('/_p([0-9]{4})([0-9]{2})([0-9]{2})$/', $r->relname, $m)) {
                $out[$r->relname] = gmmktime(0, 0, 0, (int) $m[2], (int) $m[3], (int) $m[1]);
            }
        }
        asort($out);
        return $out;
    }

    /**
     * Is a writer connection of the extension running a statement right now?
     *
     * @param \logstore_tsdb\local\pgdb $db
     * @param string $appname
     * @return bool
     */
    protected static function writer_busy(\logstore_tsdb\local\pgdb $db, string $appname): bool {
        $rows = $db->query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = ? AND state = 'active'"
            . ' AND pid <> pg_backend_pid()', [$appname]);
        return (int) $rows[0]->n > 0;
    }
}
