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
use core_privacy\local\request\transform;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\log\store;

/**
 * Finds, exports and deletes a user's events in the time series database.
 *
 * - postgres: SQL on the log table (same columns as logstore_standard_log), same rules as the standard store:
 *   export where the user is userid, relateduserid or realuserid; delete by contextid, or by userid AND contextid.
 * - influxdb1/2/3: user ids are pseudonymised (see \logstore_tsdb\local\pseudonym). Finding and exporting run
 *   InfluxQL queries; deleting a user removes their pseudonym, which anonymises all their points (every context,
 *   not only the approved ones: InfluxDB cannot delete by field); deleting a context deletes the points whose
 *   `contextid` tag matches (InfluxDB 1.x and 2.x; 3.x cannot delete points and throws).
 * - file: reads and rewrites the JSON lines file (a test and debugging sink).
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

    /**
     * Describes the personal data this plugin sends out of Moodle and keeps inside it.
     *
     * @param collection $collection
     * @return collection
     */
    public static function get_metadata(collection $collection): collection {
        $fields = [];
        foreach (['eventname', 'userid', 'relateduserid', 'realuserid', 'anonymous', 'contextid', 'courseid',
                'other', 'timecreated', 'origin', 'ip'] as $field) {
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
     * The plugin configuration.
     *
     * @return \stdClass
     */
    protected static function config(): \stdClass {
        return store::read_plugin_config();
    }

    /**
     * Adds the contexts where the user has events.
     *
     * @param contextlist $contextlist
     * @param int $userid
     */
    public static function add_contexts_for_userid(contextlist $contextlist, $userid) {
        global $DB;
        $contextids = self::contextids_for_user((int) $userid);
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
        $userids = self::userids_in_context((int) $userlist->get_context()->id);
        if ($userids) {
            $userlist->add_users($userids);
        }
    }

    /**
     * Exports the user's events in the approved contexts.
     *
     * @param approved_contextlist $contextlist
     */
    public static function export_user_data(approved_contextlist $contextlist) {
        $userid = (int) $contextlist->get_user()->id;
        $contextids = array_map('intval', $contextlist->get_contextids());
        if (!$contextids) {
            return;
        }
        $path = [get_string('privacy:path:logs', 'logstore_tsdb'), get_string('pluginname', 'logstore_tsdb')];
        foreach (self::rows_for_user($userid, $contextids) as $contextid => $rows) {
            $data = [];
            foreach ($rows as $row) {
                $data[] = self::transform_row($row, $userid);
            }
            writer::with_context(context::instance_by_id($contextid))->export_data($path, (object) ['logs' => $data]);
        }
    }

    /**
     * Deletes every event of a context.
     *
     * @param context $context
     */
    public static function delete_data_for_all_users_in_context(context $context) {
        self::delete_events([(int) $context->id], null);
    }

    /**
     * Deletes the user's events in the approved contexts.
     *
     * @param approved_contextlist $contextlist
     */
    public static function delete_data_for_user(approved_contextlist $contextlist) {
        $userid = (int) $contextlist->get_user()->id;
        $contextids = array_map('intval', $contextlist->get_contextids());
        if ($contextids) {
            self::delete_events($contextids, [$userid]);
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
            self::delete_events([(int) $userlist->get_context()->id], $userids);
        }
    }

    /**
     * Which storage the configured backend is: postgres, influx or file.
     *
     * @param \stdClass $cfg
     * @return string
     */
    protected static function kind(#[\SensitiveParameter] \stdClass $cfg): string {
        if ($cfg->backend === 'postgres') {
            return 'postgres';
        }
        if (strpos((string) $cfg->backend, 'influxdb') === 0) {
            return 'influx';
        }
        return 'file';
    }

    /**
     * Deletes the events of some contexts: all of them, or only those whose author (userid) is one of the users
     * (the standard store's rules: by contextid, or by userid AND contextid).
     *
     * @param int[] $contextids
     * @param int[]|null $userids null: every user
     */
    protected static function delete_events(array $contextids, ?array $userids): void {
        $cfg = self::config();
        switch (self::kind($cfg)) {
            case 'postgres':
                $db = pgdb::from_config($cfg);
                $table = $db->table();
                $affected = $userids ?? [];
                foreach (array_chunk($contextids, 1000) as $chunk) {
                    $where = 'contextid = ANY(?::bigint[])';
                    $params = [pgdb::int_array($chunk)];
                    if ($userids !== null) {
                        $where .= ' AND userid = ANY(?::bigint[])';
                        $params[] = pgdb::int_array($userids);
                    } else {
                        foreach ($db->query("SELECT DISTINCT userid FROM $table WHERE $where AND userid > 0", $params) as $r) {
                            $affected[] = (int) $r->userid;
                        }
                    }
                    $db->execute("DELETE FROM $table WHERE $where", $params);
                }
                if ($affected) {
                    // The per-user daily summary must not keep what was deleted.
                    (new \logstore_tsdb\local\summary($db, $cfg))->users_deleted(array_values(array_unique($affected)));
                }
                $db->close();
                return;
            case 'influx':
                if ($userids !== null && !empty($cfg->pseudonymise)) {
                    // Unlink: the points stay, nobody can tell whose they are (in every context).
                    pseudonym::forget($userids);
                    return;
                }
                $client = new influx_client($cfg);
                foreach ($contextids as $c) {
                    foreach ($userids ?? [null] as $u) {
                        $client->delete_where_tags(['contextid' => (string) $c] + ($u === null ? [] : ['userid' => (string) $u]));
                    }
                }
                return;
            case 'file':
                $contexts = array_flip($contextids);
                $users = $userids === null ? null : array_flip($userids);
                self::file_rewrite($cfg, function(array $row) use ($users, $contexts) {
                    return !(isset($contexts[(int) $row['contextid']]) && ($users === null || isset($users[(int) $row['userid']])));
                });
                return;
        }
    }

    /**
     * Context ids where the user is userid, relateduserid or realuserid.
     *
     * @param int $userid
     * @return int[]
     */
    public static function contextids_for_user(int $userid): array {
        $cfg = self::config();
        $ids = [];
        switch (self::kind($cfg)) {
            case 'postgres':
                $db = pgdb::from_config($cfg);
                foreach ($db->query('SELECT DISTINCT contextid FROM ' . $db->table()
                        . ' WHERE userid = ? OR relateduserid = ? OR realuserid = ?', [$userid, $userid, $userid]) as $r) {
                    $ids[] = (int) $r->contextid;
                }
                $db->close();
                break;
            case 'influx':
                $client = new influx_client($cfg);
                $where = self::influx_user_where($cfg, $userid);
                if ($where === null) {
                    break;
                }
                if (in_array('contextid', $client->tags(), true)) {
                    $rows = $client->query('SELECT count("userid") FROM ' . $client->measurement() . " WHERE $where GROUP BY \"contextid\"");
                } else {
                    $rows = $client->query('SELECT "contextid" FROM ' . $client->measurement() . " WHERE $where");
                }
                foreach ($rows as $r) {
                    $ids[] = (int) $r['contextid'];
                }
                break;
            case 'file':
                foreach (self::file_rows($cfg) as $r) {
                    if (self::involves($r, $userid)) {
                        $ids[] = (int) $r['contextid'];
                    }
                }
                break;
        }
        $ids = array_values(array_unique(array_filter($ids)));
        sort($ids);
        return $ids;
    }

    /**
     * Users with events in a context (as userid, relateduserid or realuserid).
     *
     * @param int $contextid
     * @return int[]
     */
    public static function userids_in_context(int $contextid): array {
        $cfg = self::config();
        $ids = [];
        switch (self::kind($cfg)) {
            case 'postgres':
                $db = pgdb::from_config($cfg);
                $t = $db->table();
                $rows = $db->query("SELECT userid AS u FROM $t WHERE contextid = ? UNION SELECT relateduserid FROM $t WHERE contextid = ?"
                    . " UNION SELECT realuserid FROM $t WHERE contextid = ?", [$contextid, $contextid, $contextid]);
                foreach ($rows as $r) {
                    $ids[] = (int) $r->u;
                }
                $db->close();
                break;
            case 'influx':
                $client = new influx_client($cfg);
                $where = in_array('contextid', $client->tags(), true) ? '"contextid" = ' . influx_client::quote_string((string) $contextid)
                    : '"contextid" = ' . $contextid;
                $keys = [];
                foreach ($client->query('SELECT "userid", "relateduserid", "realuserid" FROM ' . $client->measurement() . " WHERE $where") as $r) {
                    foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                        if (!empty($r[$f])) {
                            $keys[] = (int) $r[$f];
                        }
                    }
                }
                $ids = !empty($cfg->pseudonymise) ? array_values(pseudonym::users($keys)) : $keys;
                break;
            case 'file':
                foreach (self::file_rows($cfg) as $r) {
                    if ((int) $r['contextid'] === $contextid) {
                        $ids[] = (int) $r['userid'];
                        $ids[] = (int) $r['relateduserid'];
                        $ids[] = (int) $r['realuserid'];
                    }
                }
                break;
        }
        $ids = array_values(array_unique(array_filter($ids)));
        sort($ids);
        return $ids;
    }

    /**
     * The user's rows in some contexts, grouped by context and ordered by time.
     *
     * @param int $userid
     * @param int[] $contextids
     * @return array contextid => \stdClass[] (columns of logstore_standard_log)
     */
    public static function rows_for_user(int $userid, array $contextids): array {
        $cfg = self::config();
        $out = [];
        switch (self::kind($cfg)) {
            case 'postgres':
                $db = pgdb::from_config($cfg);
                $cols = implode(', ', array_merge(['id'], self::COLUMNS));
                foreach (array_chunk($contextids, 1000) as $chunk) {
                    $rows = $db->query("SELECT $cols FROM " . $db->table()
                        . ' WHERE (userid = ? OR relateduserid = ? OR realuserid = ?) AND contextid = ANY(?::bigint[])'
                        . ' ORDER BY contextid, timecreated, id', [$userid, $userid, $userid, pgdb::int_array($chunk)]);
                    foreach ($rows as $r) {
                        $out[(int) $r->contextid][] = $r;
                    }
                }
                $db->close();
                break;
            case 'influx':
                $client = new influx_client($cfg);
                $where = self::influx_user_where($cfg, $userid);
                if ($where === null) {
                    break;
                }
                $map = [];
                foreach ($client->query('SELECT * FROM ' . $client->measurement() . " WHERE $where") as $r) {
                    $row = (object) array_intersect_key($r + array_fill_keys(self::COLUMNS, null), array_flip(self::COLUMNS));
                    if (!in_array((int) $row->contextid, $contextids, true)) {
                        continue;
                    }
                    foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                        if (!empty($row->$f) && !empty($cfg->pseudonymise)) {
                            $map[(int) $row->$f] = true;
                        }
                    }
                    $out[(int) $row->contextid][] = $row;
                }
                if (!empty($cfg->pseudonymise)) {
                    $users = pseudonym::users(array_keys($map));
                    foreach ($out as $rows) {
                        foreach ($rows as $row) {
                            foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                                if (!empty($row->$f)) {
                                    $row->$f = $users[(int) $row->$f] ?? 0;
                                }
                            }
                        }
                    }
                }
                break;
            case 'file':
                $wanted = array_flip($contextids);
                foreach (self::file_rows($cfg) as $r) {
                    if (self::involves($r, $userid) && isset($wanted[(int) $r['contextid']])) {
                        $out[(int) $r['contextid']][] = (object) $r;
                    }
                }
                break;
        }
        foreach ($out as &$rows) {
            usort($rows, function($a, $b) {
                return [(int) $a->timecreated, (int) ($a->id ?? 0)] <=> [(int) $b->timecreated, (int) ($b->id ?? 0)];
            });
        }
        ksort($out);
        return $out;
    }

    /**
     * InfluxQL condition "the user is userid, relateduserid or realuserid", on the id their points carry (their
     * pseudonym when pseudonymised), or null when they have no pseudonym (so no points).
     *
     * @param \stdClass $cfg
     * @param int $userid
     * @return string|null
     */
    protected static function influx_user_where(#[\SensitiveParameter] \stdClass $cfg, int $userid): ?string {
        $key = $userid;
        if (!empty($cfg->pseudonymise)) {
            $key = pseudonym::existing([$userid])[$userid] ?? null;
            if ($key === null) {
                return null;
            }
        }
        $key = (int) $key;
        return "(\"userid\" = $key OR \"relateduserid\" = $key OR \"realuserid\" = $key)";
    }

    /**
     * Is the user the author, the related user or the real user of a row?
     *
     * @param array $row
     * @param int $userid
     * @return bool
     */
    protected static function involves(array $row, int $userid): bool {
        return (int) $row['userid'] === $userid || (int) $row['relateduserid'] === $userid
            || (int) $row['realuserid'] === $userid;
    }

    /**
     * Rows of the file sink (JSON lines format only).
     *
     * @param \stdClass $cfg
     * @return array[]
     */
    protected static function file_rows(#[\SensitiveParameter] \stdClass $cfg): array {
        $path = (string) $cfg->path;
        if ($cfg->format !== 'json' || !is_readable($path)) {
            return [];
        }
        $rows = [];
        $fh = fopen($path, 'r');
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
     * Rewrites the JSON lines file in place, keeping the rows for which $keep returns true.
     *
     * @param \stdClass $cfg
     * @param callable $keep
     */
    protected static function file_rewrite(#[\SensitiveParameter] \stdClass $cfg, callable $keep): void {
        $path = (string) $cfg->path;
        if ($cfg->format !== 'json' || !is_file($path)) {
            return;
        }
        $fh = fopen($path, 'c+');
        flock($fh, LOCK_EX);
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

    /**
     * Turns one stored row into what the user gets in their export (same choices as tool_log's helper).
     *
     * @param \stdClass $row
     * @param int $userid
     * @return array
     */
    public static function transform_row(\stdClass $row, int $userid): array {
        $other = $row->other ?? null;
        if (is_string($other)) {
            $decoded = json_decode($other, true);
            $other = $decoded === null && $other !== 'null' ? $other : $decoded;
        }
        $isauthor = (int) $row->userid === $userid;
        $isanonymous = !empty($row->anonymous);
        $realuserid = $row->realuserid === null || $row->realuserid === '' ? null : (int) $row->realuserid;
        $data = [
            'eventname' => (string) $row->eventname,
            'component' => (string) $row->component,
            'action' => (string) $row->action,
            'target' => (string) $row->target,
            'crud' => (string) $row->crud,
            'edulevel' => (int) $row->edulevel,
            'timecreated' => transform::datetime((int) $row->timecreated),
            'origin' => (string) $row->origin,
            'ip' => (string) $row->ip,
            'other' => $other ? $other : [],
        ];
        if ($isanonymous) {
            $data['action_was_done_anonymously'] = transform::yesno(true);
        }
        if ($isauthor || !$isanonymous) {
            $data['authorid'] = transform::user((int) $row->userid);
            $data['author_of_the_action_was_you'] = transform::yesno($isauthor);
        }
        if (!empty($row->relateduserid)) {
            $data['relateduserid'] = transform::user((int) $row->relateduserid);
            $data['related_user_was_you'] = transform::yesno((int) $row->relateduserid === $userid);
        }
        if ($realuserid !== null && $realuserid !== (int) $row->userid) {
            $data['author_of_the_action_was_masqueraded'] = transform::yesno(true);
            if ($realuserid === $userid || !$isanonymous) {
                $data['masqueradinguserid'] = transform::user($realuserid);
                $data['masquerading_user_was_you'] = transform::yesno($realuserid === $userid);
            }
        }
        return $data;
    }
}
