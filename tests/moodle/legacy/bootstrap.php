<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Bootstrap of the harness: Moodle's names and signatures as the plugin uses them, the real plugin code
 * (moodle-plugin/), and Moodle's database on PostgreSQL when TSDB_TEST_PG_HOST is set.
 *
 * Environment:
 *  - HARNESS_DATAROOT: $CFG->dataroot of a script run by a test (the test's own); otherwise this process makes a
 *    directory of its own, with a new dataroot for every test, and removes it at exit;
 *  - TSDB_TEST_PG_HOST / _PORT / _USER / _DB / _PASSWORD: a PostgreSQL database for $DB (the plugin's own tables,
 *    from db/install.xml) and for the postgres backend / privacy tests.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

error_reporting(E_ALL);
ini_set('display_errors', '1');

require_once(__DIR__ . '/harness/core.php');
require_once(__DIR__ . '/harness/log.php');
require_once(__DIR__ . '/harness/privacy.php');
require_once(__DIR__ . '/harness/admin.php');
require_once(__DIR__ . '/harness/db.php');
require_once(__DIR__ . '/harness/output.php');
require_once(__DIR__ . '/harness/reports.php');

harness::$plugindir = realpath(__DIR__ . '/../../moodle-plugin');

global $CFG, $DB, $PAGE, $USER, $OUTPUT;
$OUTPUT = new harness_renderer();
$CFG = new stdClass();
$CFG->wwwroot = 'https://moodle.example.com';
$CFG->dirroot = '/var/www/moodle';
$CFG->libdir = __DIR__ . '/harness/lib';
if (getenv('HARNESS_DATAROOT')) {
    // A script run by a test: the test's dataroot, as Moodle's CLI scripts and web requests share the site's.
    $CFG->dataroot = getenv('HARNESS_DATAROOT');
} else {
    // A directory of its own (removed at exit); each test gets a new dataroot in it (base_testcase::setUp()).
    harness::make_rundir();
    harness::new_dataroot();
}

// Moodle's class autoloader, for the plugin's classes/ folder.
spl_autoload_register(function($class) {
    $prefix = 'logstore_tsdb\\';
    if (strpos($class, $prefix) === 0) {
        $file = harness::$plugindir . '/classes/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require_once($file);
        }
    }
});

$DB = null;
if (getenv('TSDB_TEST_PG_HOST')) {
    $dsn = sprintf('pgsql:host=%s;port=%s;dbname=%s', getenv('TSDB_TEST_PG_HOST'), getenv('TSDB_TEST_PG_PORT') ?: '5432',
        getenv('TSDB_TEST_PG_DB') ?: 'postgres');
    $DB = new moodle_database($dsn, getenv('TSDB_TEST_PG_USER') ?: 'postgres', getenv('TSDB_TEST_PG_PASSWORD') ?: '');
    if (!getenv('HARNESS_NO_INSTALL')) {
        // HARNESS_NO_INSTALL: a script run by a test (a CLI of the plugin) uses the tables the test created.
        $DB->pdo()->exec('DROP TABLE IF EXISTS mdl_context');
        $DB->pdo()->exec('CREATE TABLE mdl_context (id BIGINT PRIMARY KEY, contextlevel BIGINT NOT NULL, '
            . 'instanceid BIGINT NOT NULL)');
        $DB->install_xmldb(harness::$plugindir . '/db/install.xml');
    }
}

harness::reset();
if (getenv('HARNESS_CONFIG_FILE')) {
    // Moodle's config lives in its database; here a JSON file shared by a test and the scripts it runs.
    harness::$configfile = getenv('HARNESS_CONFIG_FILE');
    harness::load_config();
}
