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
 * Per-user pseudonyms for the InfluxDB backends.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Maps a Moodle user id to a random, stable pseudonymous id kept in the Moodle table logstore_tsdb_pseudonym.
 *
 * InfluxDB can delete points only by tag equality and time, and user ids as tags would multiply the series
 * cardinality by the number of users. With pseudonymisation on, userid, relateduserid and realuserid are sent to
 * InfluxDB as these random ids (plain integer fields), and deleting a user's row in the mapping table leaves their
 * points in InfluxDB without any link to the person: the privacy provider's deletion for InfluxDB.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class pseudonym {

    /** @var string The mapping table. */
    const TABLE = 'logstore_tsdb_pseudonym';

    /** @var int Smallest pseudonym: far above any real user id, so the two can never be confused. */
    const MIN = 1099511627776; // 2^40.

    /** @var int Largest pseudonym: fits a double exactly (JSON, Grafana). */
    const MAX = 9007199254740991; // 2^53 - 1.

    /** @var int[] userid => pseudonym, for this request. */
    protected static $cache = [];

    /**
     * The pseudonym of a user, created on first use.
     *
     * @param int $userid
     * @return int
     */
    public static function get(int $userid): int {
        global $DB;
        if (isset(self::$cache[$userid])) {
            return self::$cache[$userid];
        }
        $pseudoid = $DB->get_field(self::TABLE, 'pseudoid', ['userid' => $userid]);
        if (!$pseudoid) {
            for ($attempt = 0; $attempt < 5 && !$pseudoid; $attempt++) {
                $candidate = random_int(self::MIN, self::MAX);
                try {
                    $DB->insert_record(self::TABLE, (object) ['userid' => $userid, 'pseudoid' => $candidate,
                        'timecreated' => time()]);
                    $pseudoid = $candidate;
                } catch (\dml_exception $e) {
                    // Another request created it at the same time (unique userid), or the random id collided.
                    $pseudoid = $DB->get_field(self::TABLE, 'pseudoid', ['userid' => $userid]);
                }
            }
        }
        return self::$cache[$userid] = (int) $pseudoid;
    }

    /**
     * Existing pseudonyms of some users (no creation).
     *
     * @param int[] $userids
     * @return int[] userid => pseudonym
     */
    public static function existing(array $userids): array {
        global $DB;
        $out = [];
        foreach (array_chunk(array_values(array_unique(array_map('intval', $userids))), 1000) as $chunk) {
            [$insql, $params] = $DB->get_in_or_equal($chunk);
            foreach ($DB->get_records_select(self::TABLE, "userid $insql", $params, '', 'id, userid, pseudoid') as $r) {
                $out[(int) $r->userid] = (int) $r->pseudoid;
            }
        }
        return $out;
    }

    /**
     * Users behind some pseudonyms.
     *
     * @param int[] $pseudoids
     * @return int[] pseudonym => userid
     */
    public static function users(array $pseudoids): array {
        global $DB;
        $out = [];
        foreach (array_chunk(array_values(array_unique(array_map('intval', $pseudoids))), 1000) as $chunk) {
            [$insql, $params] = $DB->get_in_or_equal($chunk);
            foreach ($DB->get_records_select(self::TABLE, "pseudoid $insql", $params, '', 'id, userid, pseudoid') as $r) {
                $out[(int) $r->pseudoid] = (int) $r->userid;
            }
        }
        return $out;
    }

    /**
     * Forgets users: their points already in InfluxDB can no longer be linked to them.
     *
     * @param int[] $userids
     */
    public static function forget(array $userids): void {
        global $DB;
        foreach (array_chunk(array_values(array_unique(array_map('intval', $userids))), 1000) as $chunk) {
            [$insql, $params] = $DB->get_in_or_equal($chunk);
            $DB->delete_records_select(self::TABLE, "userid $insql", $params);
        }
        foreach ($userids as $userid) {
            unset(self::$cache[(int) $userid]);
        }
    }

    /**
     * Forgets the per-request cache (tests).
     */
    public static function reset_cache(): void {
        self::$cache = [];
    }
}
