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
 * Privacy provider of logstore_tsdb.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\privacy;

defined('MOODLE_INTERNAL') || die();

use context;
use core_privacy\local\metadata\collection;
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\local\reader\influx_reader;
use logstore_tsdb\local\reader\pg_reader;
use logstore_tsdb\log\store;

/**
 * Finds, exports and deletes a user's events in the time series database, by the standard store's rules: a user's
 * events are those where they are userid, relateduserid or realuserid; deleting a user deletes the events they are
 * the author (userid) of in the approved contexts; deleting a context deletes all its events. The export is the
 * standard store's, word for word (tool_log's helper transforms each row).
 *
 * - postgres (and TimescaleDB, compressed chunks included): SQL on the log table, read through the store's reader.
 * - influxdb1: InfluxQL through the store's reader (user ids matched through their pseudonyms); a user's points are
 *   deleted one by one (a point is its series' tags and its time), a context by its `contextid` tag; a pseudonym
 *   nothing refers to any more is deleted.
 * - influxdb2/3: finding and exporting as 1.x; deleting a user deletes their pseudonym (their points stay, anonymised:
 *   these servers cannot delete single points through InfluxQL); deleting a context by tag on 2.x, refused on 3.x.
 * - file: reads and rewrites the JSON lines file (a test and debugging sink); the line protocol format cannot be read.
 *
 * A backend that fails (unreachable, refusing, unreadable) fails the request with an exception that names the backend
 * and its settings: tool_dataprivacy then notifies the privacy officers instead of reporting the request as done.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class provider implements
        \core_privacy\local\metadata\provider,
        \tool_log\local\privacy\logstore_provider,
        \tool_log\local\privacy\logstore_userlist_provider {

    /** @var string[] Columns of a stored event, as in logstore_standard_log. */
    const COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel',
        'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other',
        'timecreated', 'origin', 'ip', 'realuserid'];

    /** @var string The standard store's condition "the user is in the event". */
    const INVOLVES = '(userid = :u1 OR relateduserid = :u2 OR realuserid = :u3)';

    /** @var string[] Settings to check when a backend fails, by backend. */
    const SETTINGS = [
        'postgres' => 'host, port, dbname, user, password, sslmode, ca_file, schema, table',
        'influxdb1' => 'url, database, retention_policy, username, password, tls_verify, ca_file',
        'influxdb2' => 'url, org, bucket, token, tls_verify, ca_file',
        'influxdb3' => 'url, database, token, tls_verify, ca_file',
        'file' => 'path, format',
    ];

    /** @var int TimescaleDB: attempts to refresh the per-user daily aggregate, a second apart. */
    const REFRESH_ATTEMPTS = 60;

    /** @var int InfluxDB 1.x: points read, then deleted, per round; DELETE statements per request. */
    const INFLUX_PAGE = 1000;

    /**
     * Describes the personal data this plugin sends out of Moodle and keeps inside it.
     *
     * @param collection $collection
     * @return collection
     */
    public static function get_metadata(collection $collection): collection {
        $fields = [];
        foreach (self::COLUMNS as $field) {
            $fields[$field] = 'privacy:metadata:tsdb:' . $field;
        }
        $collection->add_external_location_link('tsdb', $fields, 'privacy:metadata:tsdb');
        $collection->add_database_table(pseudonym::TABLE, [
            'userid' => 'privacy:metadata:pseudonym:userid',
            'pseudoid' => 'privacy:metadata:pseudonym:pseudoid',
            'timecreated' => 'privacy:metadata:pseudonym:timecreated',
        ], 'privacy:metadata:pseudonym');
        return $collection;
    }

    /**
     * Adds the contexts where the user has events.
     *
     * @param contextlist $contextlist
     * @param int $userid
     */
    public static function add_contexts_for_userid(contextlist $contextlist, $userid) {
        global $DB;
        $contextids = self::guarded(__FUNCTION__, function(#[\SensitiveParameter] \stdClass $cfg) use ($userid) {
            return self::distinct($cfg, 'contextid', self::INVOLVES, self::user_params((int) $userid));
        });
        foreach (array_chunk($contextids, 1000) as $chunk) {
            [$insql, $params] = $DB->get_in_or_equal($chunk, SQL_PARAMS_NAMED);
            $contextlist->add_from_sql("SELECT id FROM {context} WHERE id $insql", $params);
        }
    }

    /**
     * Adds the users who have events in a context.
     *
     * @param userlist $userlist
     */
    public static function add_userids_for_context(userlist $userlist) {
        $contextid = (int) $userlist->get_context()->id;
        $userids = self::guarded(__FUNCTION__, function(#[\SensitiveParameter] \stdClass $cfg) use ($contextid) {
            $ids = [];
            foreach (['userid', 'relateduserid', 'realuserid'] as $column) {
                $ids = array_merge($ids, self::distinct($cfg, $column, 'contextid = :contextid', ['contextid' => $contextid]));
            }
            return array_values(array_unique($ids));
        });
        if ($userids) {
            $userlist->add_users($userids);
        }
    }

    /**
     * Exports the user's events in the approved contexts, as logstore_standard exports its own.
     *
     * @param approved_contextlist $contextlist
     */
    public static function export_user_data(approved_contextlist $contextlist) {
        $userid = (int) $contextlist->get_user()->id;
        $path = [get_string('privacy:path:logs', 'tool_log'), get_string('pluginname', 'logstore_tsdb')];
        self::guarded(__FUNCTION__, function(#[\SensitiveParameter] \stdClass $cfg) use ($contextlist, $userid, $path) {
            // As the standard store: the rows of one context at a time, written when the next context starts.
            $contextid = null;
            $data = [];
            foreach (self::user_rows($cfg, $userid, array_map('intval', $contextlist->get_contextids())) as $row) {
                if ($contextid !== null && $contextid !== (int) $row->contextid) {
                    writer::with_context(context::instance_by_id($contextid))->export_data($path, (object) ['logs' => $data]);
                    $data = [];
                }
                $contextid = (int) $row->contextid;
                $data[] = \tool_log\local\privacy\helper::transform_standard_log_record_for_userid($row, $userid);
            }
            if ($contextid !== null) {
                writer::with_context(context::instance_by_id($contextid))->export_data($path, (object) ['logs' => $data]);
            }
        });
    }

    /**
     * Deletes every event of a context.
     *
     * @param context $context
     */
    public static function delete_data_for_all_users_in_context(context $context) {
        self::delete_events(__FUNCTION__, [(int) $context->id], null);
    }

    /**
     * Deletes the user's events in the approved contexts.
     *
     * @param approved_contextlist $contextlist
     */
    public static function delete_data_for_user(approved_contextlist $contextlist) {
        $contextids = array_map('intval', $contextlist->get_contextids());
        if ($contextids) {
            self::delete_events(__FUNCTION__, $contextids, [(int) $contextlist->get_user()->id]);
        }
    }

    /**
     * Deletes the events of some users in one context.
     *
     * @param approved_userlist $userlist
     */
    public static function delete_data_for_userlist(approved_userlist $userlist) {
        $userids = array_map('intval', $userlist->get_userids());
        if ($userids) {
            self::delete_events(__FUNCTION__, [(int) $userlist->get_context()->id], $userids);
        }
    }

    /**
     * Runs a step of a privacy request against the configured backend. Whatever fails becomes an exception naming the
     * backend, where it is and the settings to check (never a secret): a request must not look done with data left.
     *
     * @param string $step the provider method
     * @param callable $work function(\stdClass $cfg), its parameter #[\SensitiveParameter]
     * @return mixed what $work returns
     * @throws \moodle_exception privacybackendfailed
     */
    protected static function guarded(string $step, callable $work) {
        $cfg = store::read_plugin_config();
        try {
            return $work($cfg);
        } catch (\Throwable $e) {
            $backend = (string) $cfg->backend;
            $where = (string) $cfg->path;
            if ($backend === 'postgres') {
                $where = "{$cfg->host}:{$cfg->port}/{$cfg->dbname} {$cfg->schema}.{$cfg->table}";
            } else if (strpos($backend, 'influxdb') === 0) {
                $where = (new influx_client($cfg))->shown_url() . ' ' . ($backend === 'influxdb2' ? $cfg->bucket : $cfg->database);
            }
            $error = $e->getMessage();
            foreach ([(string) $cfg->password, (string) $cfg->token] as $secret) {
                if (strlen($secret) >= 3) {
                    $error = str_replace([$secret, rawurlencode($secret)], '********', $error);
                }
            }
            throw new \moodle_exception('privacybackendfailed', 'logstore_tsdb', '', (object) [
                'backend' => $backend, 'where' => $where, 'step' => $step, 'error' => $error,
                'settings' => 'logstore_tsdb | ' . (self::SETTINGS[$backend] ?? 'backend')]);
        }
    }

    /**
     * Named parameters of INVOLVES.
     *
     * @param int $userid
     * @return array
     */
    protected static function user_params(int $userid): array {
        return ['u1' => $userid, 'u2' => $userid, 'u3' => $userid];
    }

    /**
     * The store's reader of the backend (the PostgreSQL or InfluxDB one), or null for the file backend.
     *
     * @param \stdClass $cfg
     * @return pg_reader|influx_reader|null
     */
    protected static function reader(#[\SensitiveParameter] \stdClass $cfg) {
        if ($cfg->backend === 'postgres') {
            return new pg_reader($cfg);
        }
        return strpos((string) $cfg->backend, 'influxdb') === 0 ? new influx_reader($cfg) : null;
    }

    /**
     * Distinct non-zero values of an integer column in the events matching a condition.
     *
     * @param \stdClass $cfg
     * @param string $column contextid, userid, relateduserid or realuserid
     * @param string $where condition over the standard columns, named parameters
     * @param array $params
     * @return int[] sorted
     */
    protected static function distinct(#[\SensitiveParameter] \stdClass $cfg, string $column, string $where,
            array $params): array {
        $reader = self::reader($cfg);
        $ids = [];
        if ($reader instanceof pg_reader) {
            $db = $reader->db();
            if ($db->table_exists()) {
                [$sql, $values] = pg_reader::where($db, $where, $params);
                foreach ($db->query_native("SELECT DISTINCT $column AS v FROM " . $db->table() . $sql, $values) as $r) {
                    $ids[] = (int) $r->v;
                }
            }
            $reader->close();
        } else if ($reader instanceof influx_reader) {
            $raw = array_map('intval', $reader->distinct_values($column, $where, $params));
            // Pseudonyms back to user ids (a forgotten pseudonym is nobody); raw ids stay.
            $users = pseudonym::users(array_filter($raw, function($v) {
                return $v >= pseudonym::MIN;
            }));
            foreach ($raw as $v) {
                $ids[] = $v >= pseudonym::MIN ? ($users[$v] ?? 0) : $v;
            }
        } else {
            foreach (self::rows($cfg, $where, $params) as $row) {
                $ids[] = (int) $row->$column;
            }
        }
        $ids = array_values(array_unique(array_filter($ids)));
        sort($ids);
        return $ids;
    }

    /**
     * The user's events in some contexts, context by context, oldest first: PostgreSQL sorts them as the standard store
     * does (contextid, timecreated, id) in one query per 1000 contexts; InfluxDB (which sorts by time only) and the file
     * are read context by context.
     *
     * @param \stdClass $cfg
     * @param int $userid
     * @param int[] $contextids
     * @return \Generator of \stdClass
     */
    protected static function user_rows(#[\SensitiveParameter] \stdClass $cfg, int $userid, array $contextids): \Generator {
        if ($cfg->backend === 'postgres') {
            foreach (array_chunk($contextids, 1000) as $chunk) {
                [$insql, $params] = self::in_params('contextid', $chunk);
                yield from self::rows($cfg, self::INVOLVES . " AND $insql", self::user_params($userid) + $params,
                    'contextid ASC, timecreated ASC');
            }
            return;
        }
        foreach ($contextids as $contextid) {
            yield from self::rows($cfg, self::INVOLVES . ' AND contextid = :contextid',
                self::user_params($userid) + ['contextid' => $contextid]);
        }
    }

    /**
     * The events matching a condition, oldest first, as logstore_standard_log records (the columns and an id).
     *
     * @param \stdClass $cfg
     * @param string $where INVOLVES and/or contextid = :contextid (the file backend knows only these)
     * @param array $params
     * @param string $sort
     * @return \Generator of \stdClass
     */
    protected static function rows(#[\SensitiveParameter] \stdClass $cfg, string $where, array $params,
            string $sort = 'timecreated ASC'): \Generator {
        $reader = self::reader($cfg);
        if ($reader) {
            try {
                foreach ($reader->iterate_rows($where, $params, $sort, 0, 0) as $row) {
                    yield self::standard_record($row);
                }
            } finally {
                if ($reader instanceof pg_reader) {
                    $reader->close();
                }
            }
            return;
        }
        foreach (self::file_rows($cfg) as $i => $row) {
            $row = self::standard_record((object) ($row + ['id' => $i + 1]));
            if (self::matches($row, $params)) {
                yield $row;
            }
        }
    }

    /**
     * Does a row match the parameters of INVOLVES and/or contextid = :contextid (file backend)?
     *
     * @param \stdClass $row
     * @param array $params
     * @return bool
     */
    protected static function matches(\stdClass $row, array $params): bool {
        if (isset($params['contextid']) && (int) $row->contextid !== (int) $params['contextid']) {
            return false;
        }
        return !isset($params['u1']) || in_array((int) $params['u1'],
            [(int) $row->userid, (int) $row->relateduserid, (int) $row->realuserid], true);
    }

    /**
     * A row with exactly the fields of a logstore_standard_log record (what tool_log's helper restores events from).
     *
     * @param \stdClass $row
     * @return \stdClass
     */
    protected static function standard_record(\stdClass $row): \stdClass {
        $record = (object) ['id' => $row->id ?? 0];
        foreach (self::COLUMNS as $column) {
            $record->$column = $row->$column ?? null;
        }
        return $record;
    }

    /**
     * Deletes the events of some contexts: all of them, or only those whose author (userid) is one of the users.
     *
     * @param string $step the provider method
     * @param int[] $contextids
     * @param int[]|null $userids null: every user
     */
    protected static function delete_events(string $step, array $contextids, ?array $userids): void {
        self::guarded($step, function(#[\SensitiveParameter] \stdClass $cfg) use ($contextids, $userids) {
            if ($cfg->backend === 'postgres') {
                self::pg_delete($cfg, $contextids, $userids);
            } else if ($cfg->backend === 'influxdb1') {
                self::influx_delete($cfg, $contextids, $userids);
            } else if (strpos((string) $cfg->backend, 'influxdb') === 0) {
                $client = new influx_client($cfg);
                if ($userids !== null && !empty($cfg->pseudonymise)) {
                    pseudonym::forget($userids);
                    return;
                }
                foreach ($contextids as $c) {
                    foreach ($userids ?? [null] as $u) {
                        $client->delete_where_tags(['contextid' => (string) $c] + ($u === null ? [] : ['userid' => (string) $u]));
                    }
                }
            } else {
                $contexts = array_flip($contextids);
                $users = $userids === null ? null : array_flip($userids);
                self::file_rewrite($cfg, function(array $row) use ($users, $contexts) {
                    return !(isset($contexts[(int) $row['contextid']]) && ($users === null || isset($users[(int) $row['userid']])));
                });
            }
        });
    }

    /**
     * PostgreSQL / TimescaleDB: DELETE by contextid, or by userid AND contextid. On TimescaleDB, rows in compressed
     * chunks are decompressed to be deleted: only the batches that can hold them are (by course and time span), and the
     * per-transaction cap on decompressed rows (100 000 by default, a day of a busy site) is lifted for this
     * transaction. The per-user daily summary then follows.
     *
     * @param \stdClass $cfg
     * @param int[] $contextids
     * @param int[]|null $userids
     */
    protected static function pg_delete(#[\SensitiveParameter] \stdClass $cfg, array $contextids, ?array $userids): void {
        $db = pgdb::from_config($cfg);
        try {
            if (!$db->table_exists()) {
                return;
            }
            $table = $db->table();
            $where = 'contextid = ANY(?::bigint[])';
            $params = [pgdb::int_array($contextids)];
            if ($userids !== null) {
                $where .= ' AND userid = ANY(?::bigint[])';
                $params[] = pgdb::int_array($userids);
            }
            $db->execute('BEGIN');
            try {
                $db->execute('SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0');
                $affected = $userids ?? array_map(function($r) {
                    return (int) $r->userid;
                }, $db->query("SELECT DISTINCT userid FROM $table WHERE $where AND userid > 0", $params));
                // One DELETE per course, within the time span of its rows: TimescaleDB then decompresses only the
                // batches of those courses (segmentby) and times (orderby metadata), not every batch of the table;
                // the native layout prunes partitions by time.
                foreach ($db->query("SELECT courseid, min(\"time\") AS lo, max(\"time\") AS hi FROM $table WHERE $where"
                        . ' GROUP BY courseid', $params) as $span) {
                    $course = $span->courseid === null ? 'courseid IS NULL' : 'courseid = ' . (int) $span->courseid;
                    $db->execute("DELETE FROM $table WHERE $where AND $course AND \"time\" >= ?::timestamptz"
                        . ' AND "time" <= ?::timestamptz', array_merge($params, [$span->lo, $span->hi]));
                }
                $db->execute('COMMIT');
            } catch (\Throwable $e) {
                $db->execute('ROLLBACK');
                throw $e;
            }
            // TimescaleDB refuses to refresh the continuous aggregate while its refresh policy job does (every 30
            // minutes): wait for it rather than fail a deletion whose rows are gone.
            for ($attempt = 1; $affected; $attempt++) {
                try {
                    (new \logstore_tsdb\local\summary($db, $cfg))->users_deleted($affected);
                    break;
                } catch (\Throwable $e) {
                    if ($attempt >= self::REFRESH_ATTEMPTS || strpos($e->getMessage(), 'due to a concurrent refresh') === false) {
                        throw $e;
                    }
                    sleep(1);
                }
            }
        } finally {
            $db->close();
        }
    }

    /**
     * InfluxDB 1.x: a context's points by its `contextid` tag in one statement; otherwise point by point: InfluxDB keeps
     * one point per series (measurement and tag values) and time, so `DELETE ... WHERE` every tag of the point `AND time
     * = t` deletes that point and no other. Then the pseudonyms of deleted users that no point refers to any more go.
     *
     * @param \stdClass $cfg
     * @param int[] $contextids
     * @param int[]|null $userids
     */
    protected static function influx_delete(#[\SensitiveParameter] \stdClass $cfg, array $contextids, ?array $userids): void {
        $client = new influx_client($cfg);
        $reader = new influx_reader($cfg, $client);
        $m = $client->measurement();
        if ($userids === null && ($reader->kinds()['contextid'] ?? '') === 'tag') {
            foreach (array_chunk($contextids, 100) as $chunk) {
                $client->query(implode('; ', array_map(function($c) use ($m) {
                    return "DELETE FROM $m WHERE \"contextid\" = " . influx_client::quote_string((string) $c);
                }, $chunk)), true);
            }
            return;
        }
        $tags = array_column($client->query("SHOW TAG KEYS FROM $m"), 'tagKey');
        foreach (array_chunk($contextids, 200) as $chunk) {
            [$insql, $params] = self::in_params('contextid', $chunk);
            if ($userids !== null) {
                [$usersql, $userparams] = self::in_params('userid', $userids);
                $insql .= " AND $usersql";
                $params += $userparams;
            }
            $where = $reader->where($insql, $params);
            $previous = [];
            while ($where !== null && ($points = $client->query("SELECT * FROM $m$where LIMIT " . self::INFLUX_PAGE))) {
                $statements = [];
                foreach ($points as $point) {
                    $key = [];
                    foreach ($tags as $tag) {
                        $key[] = $reader->tag_equals($point, $tag);
                    }
                    $key[] = 'time = ' . (int) $point['time'];
                    $statement = "DELETE FROM $m WHERE " . implode(' AND ', $key);
                    if (isset($previous[$statement])) {
                        // Deleted in the last round, still there: never loop, never report it gone.
                        throw new \moodle_exception('privacyinfluxnotdeleted', 'logstore_tsdb', '', $statement);
                    }
                    $statements[$statement] = true;
                }
                foreach (array_chunk(array_keys($statements), 100) as $batch) {
                    $client->query(implode('; ', $batch), true);
                }
                $previous = $statements;
            }
        }
        if ($userids !== null && !empty($cfg->pseudonymise)) {
            foreach ($userids as $userid) {
                if (!$reader->exists(self::INVOLVES, self::user_params($userid))) {
                    pseudonym::forget([$userid]);
                }
            }
        }
    }

    /**
     * "column IN (...)" with named parameters of its own.
     *
     * @param string $column
     * @param int[] $values
     * @return array [sql, params]
     */
    protected static function in_params(string $column, array $values): array {
        $names = [];
        $params = [];
        foreach (array_values($values) as $i => $v) {
            $names[] = ":{$column}{$i}";
            $params["{$column}{$i}"] = (int) $v;
        }
        return ["$column IN (" . implode(', ', $names) . ')', $params];
    }

    /**
     * Rows of the file sink. Only the JSON lines format can be read back: a line protocol file that exists holds events
     * this provider can neither find nor delete, which must not pass for "no data".
     *
     * @param \stdClass $cfg
     * @return array[]
     * @throws \moodle_exception privacyfileformat
     */
    protected static function file_rows(#[\SensitiveParameter] \stdClass $cfg): array {
        $path = (string) $cfg->path;
        clearstatcache(true, $path);
        if (!is_file($path)) {
            return [];
        }
        if ($cfg->format !== 'json') {
            throw new \moodle_exception('privacyfileformat', 'logstore_tsdb', '', $path);
        }
        $fh = fopen($path, 'r');
        if (!$fh) {
            throw new \moodle_exception('privacyfileunreadable', 'logstore_tsdb', '', $path);
        }
        $rows = [];
        while (($line = fgets($fh)) !== false) {
            $row = json_decode($line, true);
            if (is_array($row)) {
                $rows[] = $row;
            }
        }
        fclose($fh);
        return $rows;
    }

    /**
     * Rewrites the JSON lines file in place under the lock the extension appends under, keeping the rows for which
     * $keep returns true.
     *
     * @param \stdClass $cfg
     * @param callable $keep
     */
    protected static function file_rewrite(#[\SensitiveParameter] \stdClass $cfg, callable $keep): void {
        if (!self::file_rows($cfg)) {
            return;
        }
        $fh = fopen((string) $cfg->path, 'c+');
        if (!$fh || !flock($fh, LOCK_EX)) {
            throw new \moodle_exception('privacyfileunreadable', 'logstore_tsdb', '', (string) $cfg->path);
        }
        $kept = '';
        while (($line = fgets($fh)) !== false) {
            $row = json_decode($line, true);
            if (!is_array($row) || $keep($row)) {
                $kept .= $line;
            }
        }
        ftruncate($fh, 0);
        rewind($fh);
        fwrite($fh, $kept);
        fflush($fh);
        flock($fh, LOCK_UN);
        fclose($fh);
    }
}
