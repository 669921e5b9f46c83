<?php
// The parts of the scale benchmark that run inside the Moodle site start here: a CLI script of the site (its real
// config.php, $DB, $CFG, log manager), with the run's helpers.

define('CLI_SCRIPT', true);
require_once(__DIR__ . '/../lib/common.php');
require(scale_site()['coderoot'] . '/config.php');

/** The plugin's effective configuration, as the store reads it. */
function scale_plugin_config(): stdClass {
    return \logstore_tsdb\log\store::read_plugin_config();
}

/** A new connection to the site's own database (the one holding logstore_standard_log), for COPY. */
function scale_moodle_pg() {
    return scale_pg(scale_site()['dbname']);
}
