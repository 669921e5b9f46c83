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
 * Upgrade steps of logstore_tsdb.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

/**
 * Upgrades logstore_tsdb from $oldversion.
 *
 * @param int $oldversion the version installed before this upgrade
 * @return bool
 */
function xmldb_logstore_tsdb_upgrade($oldversion) {
    global $DB;

    if ($oldversion < 2025070101) {
        // Until this version an empty spool_dir meant "the default directory", and the spool was used in durable
        // mode only. The spool is now used in every write mode and an empty spool_dir turns it off: a site that kept
        // the old empty value gets the default directory it was using, rather than losing its spool.
        if (get_config('logstore_tsdb', 'spool_dir') === '') {
            set_config('spool_dir', \logstore_tsdb\local\settings_definition::default_spool_dir(), 'logstore_tsdb');
        }
        upgrade_plugin_savepoint(true, 2025070101, 'logstore', 'tsdb');
    }
    if ($oldversion < 2025070102) {
        // gzip was a checkbox whose default, 1, compressed every InfluxDB request; it is now Automatic / Always /
        // Never with Automatic as the default, which compresses only for a server off this machine. A stored '1' is
        // the old default rather than a choice, and 'auto' still compresses for every remote server (only a
        // server on this machine, where compression saves no network bytes, gets plain bodies); '0' stays Never.
        if (get_config('logstore_tsdb', 'gzip') === '1') {
            set_config('gzip', 'auto', 'logstore_tsdb');
        }
        upgrade_plugin_savepoint(true, 2025070102, 'logstore', 'tsdb');
    }
    if ($oldversion < 2025070104) {
        // The sink reports an events table it made again (dropped under it): counted site-wide, and when and why;
        // a process's last error keeps its own time (not the time of the report that carried it).
        $dbman = $DB->get_manager();
        $fields = [
            'logstore_tsdb_workers' => [
                new xmldb_field('schema_recreated', XMLDB_TYPE_INTEGER, '18', null, XMLDB_NOTNULL, null, '0', 'batches'),
                new xmldb_field('schemarecreatedat', XMLDB_TYPE_INTEGER, '10', null, XMLDB_NOTNULL, null, '0', 'extversion'),
                new xmldb_field('schemarecreatedmsg', XMLDB_TYPE_TEXT, null, null, null, null, null, 'schemarecreatedat'),
                new xmldb_field('lasterrorat', XMLDB_TYPE_INTEGER, '10', null, XMLDB_NOTNULL, null, '0', 'lastsuccessat'),
            ],
            'logstore_tsdb_metrics' => [
                new xmldb_field('schema_recreated', XMLDB_TYPE_INTEGER, '18', null, XMLDB_NOTNULL, null, '0', 'batches'),
            ],
        ];
        foreach ($fields as $tablename => $tablefields) {
            $table = new xmldb_table($tablename);
            foreach ($tablefields as $field) {
                if (!$dbman->field_exists($table, $field)) {
                    $dbman->add_field($table, $field);
                }
            }
        }
        upgrade_plugin_savepoint(true, 2025070104, 'logstore', 'tsdb');
    }
    if ($oldversion < 2025070105) {
        // New setting create_database (InfluxDB 1.x): its default, off, as before, so that the upgrade asks nothing.
        if (get_config('logstore_tsdb', 'create_database') === false) {
            set_config('create_database', 0, 'logstore_tsdb');
        }
        upgrade_plugin_savepoint(true, 2025070105, 'logstore', 'tsdb');
    }
    if ($oldversion < 2025070106) {
        // New setting countfromaggregate (TimescaleDB): off, the counts as before.
        if (get_config('logstore_tsdb', 'countfromaggregate') === false) {
            set_config('countfromaggregate', 0, 'logstore_tsdb');
        }
        upgrade_plugin_savepoint(true, 2025070106, 'logstore', 'tsdb');
    }
    if ($oldversion < 2025070107) {
        // New cache definition dataspan (db/caches.php), which the upgrade registers: nothing to change here.
        upgrade_plugin_savepoint(true, 2025070107, 'logstore', 'tsdb');
    }
    return true;
}
