<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Bootstrap of the plugin tests: a real Moodle site (tests/servers/moodle.sh installed it), loaded as any CLI script
 * of that site loads it. MOODLE_SITE names the site's directory (its site.json says where the code and data are).
 *
 * Moodle's own PHPUnit framework needs PHPUnit 11 (Debian has 9.6), so these tests are plain PHPUnit tests that run
 * inside the site like a CLI script: the real $DB, $CFG, event API, log manager, privacy manager and admin tree.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

$sitedir = getenv('MOODLE_SITE');
if (!$sitedir || !is_file("$sitedir/site.json")) {
    fwrite(STDERR, "MOODLE_SITE must name a site installed by tests/servers/moodle.sh (a directory with site.json)\n");
    exit(2);
}
define('CLI_SCRIPT', true);
require_once(__DIR__ . '/lib/site.php');
tsdb_test_site::load($sitedir);
require(tsdb_test_site::$info->coderoot . '/config.php');
require_once($CFG->libdir . '/clilib.php');
require_once($CFG->libdir . '/testing/generator/lib.php');
require_once(__DIR__ . '/lib/base_testcase.php');
fwrite(STDERR, "site: Moodle {$CFG->release} at {$CFG->wwwroot}, PHP " . PHP_VERSION
    . ', extension tsdb ' . (function_exists('tsdb_version') ? tsdb_version() : 'NOT LOADED') . "\n");
