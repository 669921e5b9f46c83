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
 * English strings of logstore_tsdb.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['pluginname'] = 'Time series database log store';
$string['pluginname_desc'] = 'Sends every event to InfluxDB (1.x, 2.x, 3.x) or PostgreSQL/TimescaleDB through the tsdb PHP extension, which batches events in the background of each PHP process.';

// Extension missing.
$string['extensionmissing'] = 'The tsdb PHP extension is not loaded in this PHP ({$a}), so this log store records nothing. Build or install tsdb.so for this PHP version (NTS or ZTS as your server), add "extension=tsdb" to php.ini (and the PHP-FPM pool), restart PHP-FPM, then come back. See docs/install.md of the plugin.';
$string['extensionloaded'] = 'tsdb extension {$a} is loaded.';
$string['environmentmissing'] = 'The tsdb PHP extension is required by the time series database log store (logstore_tsdb). Without it the store stays inactive.';
$string['configrefused'] = 'The tsdb extension refused the configuration: {$a}';

// Setting sections.
$string['heading_general'] = 'General';
$string['heading_general_desc'] = 'Where events go and how they are written.';
$string['heading_filters'] = 'What is logged';
$string['heading_filters_desc'] = 'Filters applied in PHP before an event is handed to the extension.';
$string['heading_file'] = 'File backend';
$string['heading_file_desc'] = 'A local file, for testing, debugging or shipping with another agent. Not for production privacy: see the admin guide.';
$string['heading_influxdb'] = 'InfluxDB';
$string['heading_influxdb_desc'] = 'InfluxDB 2.x uses URL, organisation, bucket and token. InfluxDB 1.x uses URL, database, retention policy, user name and password. InfluxDB 3.x uses URL, database and token.';
$string['heading_postgres'] = 'TimescaleDB / PostgreSQL';
$string['heading_postgres_desc'] = 'The extension creates the table (same columns as logstore_standard_log, plus time and event_id). With the TimescaleDB extension in that database it becomes a hypertable.';
$string['heading_credentials'] = 'Password and certificates';
$string['heading_credentials_desc'] = 'Shared by InfluxDB 1.x and PostgreSQL.';
$string['heading_performance'] = 'Batching, memory and retries';
$string['heading_performance_desc'] = 'Defaults suit most sites. Events wait in memory of each PHP process until a batch is full or old enough.';
$string['heading_spool'] = 'Spool (outages)';
$string['heading_spool_desc'] = 'In every write mode, batches the time-series database cannot take (it is down or unreachable) are kept in this directory and replayed in order once it answers again, by the PHP processes themselves and by the scheduled task "Replay the time series database spool" (every minute). In durable mode (offered when the loaded extension supports it) each request\'s events are also written to a journal there before the request ends, so even a killed PHP process loses nothing.';
$string['heading_health'] = 'Health check';
$string['heading_health_desc'] = 'The health check task notifies site administrators when writing keeps failing.';
$string['statuspagelink'] = 'Status, counters and connection test: <a href="{$a}">time series database log store status</a>.';
$string['tuningpage'] = 'Time series database log store: tuning';
$string['tuningpagelink'] = 'Batching, retries, timeouts, the spool and the health check have defaults that suit most sites: <a href="{$a}">tuning</a>.';
$string['secretstored'] = 'A value is stored (not shown). Leave the field empty to keep it, enter a single - to remove it.';

// Settings.
$string['setting_configsource'] = 'Configuration source';
$string['setting_configsource_desc'] = 'Use the settings of this page, or leave the extension configured by php.ini / the PHP-FPM pool (tsdb.* directives) and ignore this page\'s backend, connection, write mode and spool settings. With php.ini, the log reports, privacy requests, the status page and the scheduled tasks also use the tsdb.* values of the PHP that runs them: give the PHP CLI that runs cron the same tsdb.* values as PHP-FPM (a file in the shared conf.d rather than the pool). The filters and the pseudonymisation below still apply.';
$string['configsource_plugin'] = 'These settings';
$string['configsource_phpini'] = 'php.ini / PHP-FPM pool (tsdb.*)';
$string['setting_backend'] = 'Backend';
$string['setting_backend_desc'] = 'Where events are written. The default is PostgreSQL on Moodle\'s own database server, in a table of its own (logstore_tsdb_log): a site on PostgreSQL only has to give the password below (with TimescaleDB in that database the table becomes a hypertable). The file backend is for tests.';
$string['backend_influxdb2'] = 'InfluxDB 2.x';
$string['backend_influxdb1'] = 'InfluxDB 1.x';
$string['backend_influxdb3'] = 'InfluxDB 3.x';
$string['backend_postgres'] = 'TimescaleDB / PostgreSQL';
$string['backend_file'] = 'File (testing)';
$string['setting_mode'] = 'Write mode';
$string['setting_mode_desc'] = 'Asynchronous: the request continues at once and a background thread writes batches. Synchronous: each event waits for its write (debugging; slow). Durable: events go to a local spool first (only offered when the extension supports it).';
$string['mode_async'] = 'Asynchronous';
$string['mode_sync'] = 'Synchronous';
$string['mode_durable'] = 'Durable (spool on disk)';
$string['setting_logguests'] = 'Log guests';
$string['setting_logguests_desc'] = 'Log the actions of guests and of visitors who are not logged in (as the standard log store).';
$string['setting_includeevents'] = 'Only these events';
$string['setting_includeevents_desc'] = 'One pattern per line (or comma separated): an event class name (\\mod_forum\\event\\discussion_viewed), a component (mod_quiz, core) or either with * as a wildcard (\\mod_forum\\event\\*, *_viewed). Empty: every event.';
$string['setting_excludeevents'] = 'Never these events';
$string['setting_excludeevents_desc'] = 'Same patterns as above. An event matching both lists is not logged.';
$string['setting_minedulevel'] = 'Minimum educational level';
$string['setting_minedulevel_desc'] = 'Events below this level are not logged.';
$string['minedulevel_0'] = 'Everything (other, teaching, participating)';
$string['minedulevel_1'] = 'Teaching and participating only';
$string['minedulevel_2'] = 'Participating only';
$string['setting_skipanonymous'] = 'Skip anonymous events';
$string['setting_skipanonymous_desc'] = 'Anonymous events (for example in anonymous forums or feedback) are kept by default, flagged anonymous, as the standard log store does. Tick to drop them.';
$string['setting_logip'] = 'Record IP addresses';
$string['setting_logip_desc'] = 'Store the IP address of each request. Untick to store an empty value (less personal data, especially in InfluxDB).';
$string['setting_path'] = 'File path';
$string['setting_path_desc'] = 'Absolute path of the file events are appended to (created with mode 0600). Every PHP process must be able to write it.';
$string['setting_format'] = 'File format';
$string['setting_format_desc'] = 'InfluxDB line protocol, or one JSON object per line (needed by this plugin\'s privacy export and by its tests).';
$string['format_line'] = 'Line protocol';
$string['format_json'] = 'JSON lines';
$string['setting_url'] = 'InfluxDB URL';
$string['setting_url_desc'] = 'Base URL, for example http://127.0.0.1:8086 or https://influx.example.org:8086. https:// verifies the certificate.';
$string['setting_org'] = 'Organisation (2.x)';
$string['setting_org_desc'] = 'InfluxDB 2.x organisation name.';
$string['setting_bucket'] = 'Bucket (2.x)';
$string['setting_bucket_desc'] = 'InfluxDB 2.x bucket.';
$string['setting_token'] = 'API token (2.x, 3.x)';
$string['setting_token_desc'] = 'Sent as "Authorization: Token ...". Never shown again once saved: leave empty to keep the saved token, enter a single - to remove it.';
$string['setting_database'] = 'Database (1.x, 3.x)';
$string['setting_database_desc'] = 'InfluxDB 1.x or 3.x database.';
$string['setting_retention_policy'] = 'Retention policy (1.x)';
$string['setting_retention_policy_desc'] = 'Empty: the database\'s default retention policy.';
$string['setting_countfromaggregate'] = 'Count from the daily aggregate (TimescaleDB)';
$string['setting_countfromaggregate_desc'] = 'The totals of the Logs reports and of the privacy provider for a course, a user, or a user in a course are summed from the daily continuous aggregates (a row per day) instead of counting the events, while TimescaleDB\'s invalidation logs say the aggregate is exact; otherwise, and on plain PostgreSQL, the events are counted. At 10 million events a year a user\'s total takes 30 ms instead of 60–80 (docs/SCALE.md). Sites upgraded from a version where this was off by default keep their setting.';
$string['setting_create_database'] = 'Create a missing database (1.x)';
$string['setting_create_database_desc'] = 'When the database or the retention policy does not exist (dropped, or a restore without it), the extension creates it (CREATE DATABASE; a missing retention policy with an infinite duration) and writes on; the status page says it happened. With authentication this needs an InfluxDB admin user. Unticked: a missing database is an error on the status page, and the events wait in the spool until an admin creates it.';
$string['setting_username'] = 'User name (1.x)';
$string['setting_username_desc'] = 'InfluxDB 1.x user. Empty: no authentication.';
$string['setting_measurement'] = 'Measurement';
$string['setting_measurement_desc'] = 'InfluxDB measurement events are written to.';
$string['setting_tags'] = 'Tags';
$string['setting_tags_desc'] = 'Comma-separated event fields written as InfluxDB tags (indexed; every other field is a field). Allowed: eventname, component, action, target, crud, edulevel, contextlevel, origin, courseid, objecttable, contextid, contextinstanceid, anonymous, userid. Keep contextid: privacy deletions of a context need it. Avoid userid (one series per user; privacy requests do not need it).';
$string['setting_gzip'] = 'Compress requests';
$string['setting_gzip_desc'] = 'gzip InfluxDB request bodies. Compression makes each request several times smaller, at the cost of CPU in every PHP worker and on the InfluxDB server. Automatic compresses only when the server is not on this machine (its host is neither localhost nor a loopback address such as 127.0.0.1 or ::1): a local server has no network bytes to save. Always also compresses for a local server; Never sends plain bodies even over a slow or metered network.';
$string['gzip_auto'] = 'Automatic: only for a server off this machine';
$string['gzip_always'] = 'Always';
$string['gzip_never'] = 'Never';
$string['setting_max_batch_bytes'] = 'Largest request (bytes)';
$string['setting_max_batch_bytes_desc'] = 'Larger batches are split before sending (before compression).';
$string['setting_timeout_ms'] = 'Request timeout (ms)';
$string['setting_timeout_ms_desc'] = 'HTTP request timeout for InfluxDB.';
$string['setting_connect_timeout_ms'] = 'Connect timeout (ms)';
$string['setting_connect_timeout_ms_desc'] = 'Connect timeout for InfluxDB and PostgreSQL.';
$string['setting_tls_verify'] = 'Verify TLS certificates';
$string['setting_tls_verify_desc'] = 'Untick only for testing.';
$string['setting_pseudonymise'] = 'Pseudonymise user ids (InfluxDB)';
$string['setting_pseudonymise_desc'] = 'Send a random per-user id instead of userid, relateduserid and realuserid to InfluxDB; the mapping stays in Moodle, so user ids never leave it. Privacy requests find, export and delete a user\'s points either way (InfluxDB 1.x deletes them point by point). On InfluxDB 2.x and 3.x, which cannot delete single points through InfluxQL, deleting a user deletes their mapping instead: their points stay without a user id, but with their IP address and event data.';
$string['setting_host'] = 'Host';
$string['setting_host_desc'] = 'PostgreSQL host name, address or Unix socket directory.';
$string['setting_port'] = 'Port';
$string['setting_port_desc'] = 'PostgreSQL port.';
$string['setting_dbname'] = 'Database name';
$string['setting_dbname_desc'] = 'PostgreSQL database.';
$string['setting_user'] = 'User';
$string['setting_user_desc'] = 'PostgreSQL user. It needs CREATE on the schema the first time (the table is created automatically), then INSERT, SELECT and DELETE.';
$string['setting_sslmode'] = 'TLS';
$string['setting_sslmode_desc'] = 'disable, require (encrypted, not verified) or verify-full (encrypted, certificate and host name verified against the CA file).';
$string['sslmode_disable'] = 'disable';
$string['sslmode_require'] = 'require';
$string['sslmode_verifyfull'] = 'verify-full';
$string['setting_schema'] = 'Schema';
$string['setting_schema_desc'] = 'PostgreSQL schema of the log table.';
$string['setting_table'] = 'Table';
$string['setting_table_desc'] = 'Name of the log table.';
$string['setting_application_name'] = 'Application name';
$string['setting_application_name_desc'] = 'Shown in pg_stat_activity.';
$string['setting_statement_timeout_ms'] = 'Statement timeout (ms)';
$string['setting_statement_timeout_ms_desc'] = '0: no timeout.';
$string['setting_idle_close_ms'] = 'Close idle connections after (ms)';
$string['setting_idle_close_ms_desc'] = 'The background thread closes its PostgreSQL connection after this long without writes. 0: keep it open.';
$string['setting_retention_days'] = 'Keep events (days)';
$string['setting_retention_days_desc'] = '0: forever. TimescaleDB: a retention policy. Plain PostgreSQL: the retention task deletes older events every night while the writer is idle.';
$string['setting_password'] = 'Password';
$string['setting_password_desc'] = 'InfluxDB 1.x or PostgreSQL password. Never shown again once saved: leave empty to keep it, enter a single - to remove it.';
$string['setting_ca_file'] = 'CA certificate file';
$string['setting_ca_file_desc'] = 'Absolute path of a PEM file of CA certificates to trust (InfluxDB https, PostgreSQL verify-full). Empty: the system store.';
$string['setting_batch_size'] = 'Batch size (events)';
$string['setting_batch_size_desc'] = 'A batch is sent when it has this many events...';
$string['setting_flush_interval_ms'] = 'Flush interval (ms)';
$string['setting_flush_interval_ms_desc'] = '...or when its oldest event is this old.';
$string['setting_memory_limit_bytes'] = 'Memory cap per PHP process (bytes)';
$string['setting_memory_limit_bytes_desc'] = 'Events waiting in memory beyond this are dropped (and counted), never blocking the request. Default 64 MiB.';
$string['setting_shutdown_timeout_ms'] = 'Shutdown wait (ms)';
$string['setting_shutdown_timeout_ms_desc'] = 'How long a graceful PHP process exit waits for its events to be written. Keep PHP-FPM\'s process_control_timeout above it.';
$string['setting_sync_timeout_ms'] = 'Synchronous wait (ms)';
$string['setting_sync_timeout_ms_desc'] = 'In synchronous mode, how long one event may wait for its write.';
$string['setting_max_string_bytes'] = 'Longest string (bytes)';
$string['setting_max_string_bytes_desc'] = 'Longer strings are cut (and counted as truncated).';
$string['setting_max_other_bytes'] = 'Longest "other" (bytes)';
$string['setting_max_other_bytes_desc'] = 'A longer JSON "other" is replaced by a truncation marker (and counted).';
$string['setting_retry_base_ms'] = 'First retry delay (ms)';
$string['setting_retry_base_ms_desc'] = 'Each retry doubles the delay, with jitter.';
$string['setting_retry_max_ms'] = 'Longest retry delay (ms)';
$string['setting_retry_max_ms_desc'] = 'Cap on one retry delay; not smaller than the first delay.';
$string['setting_retry_max_elapsed_ms'] = 'Give up after (ms)';
$string['setting_retry_max_elapsed_ms_desc'] = 'A batch still failing after this long goes to the spool, or is counted as failed when the spool is disabled.';
$string['setting_spool_dir'] = 'Spool directory';
$string['setting_spool_dir_desc'] = 'Absolute path of a directory the web server can write (created with mode 0700). The default is logstore_tsdb/spool under the data directory; on a cluster whose data directory is a network share, prefer a local disk of each node. Empty: no spool, so events are lost while the database is unreachable (durable mode needs a spool).';
$string['setting_spool_limit_bytes'] = 'Spool cap (bytes)';
$string['setting_spool_limit_bytes_desc'] = 'Largest size of the spool; beyond it the oldest spooled batches are dropped and counted.';
$string['setting_healththreshold'] = 'Notify after failing checks';
$string['setting_healththreshold_desc'] = 'The health check runs every 5 minutes; administrators are notified after this many failing checks in a row, and again when it recovers.';

// Validation errors (each names the field).
$string['error_int'] = '{$a->name}: must be an integer between {$a->min} and {$a->max}';
$string['error_url'] = '{$a}: must be an http:// or https:// base URL without query (e.g. http://127.0.0.1:8086)';
$string['error_select'] = '{$a}: not one of the choices';
$string['error_path'] = '{$a}: must be an absolute path (starting with /)';
$string['error_tags'] = '{$a}: must be a comma-separated list of field names (lower case letters and _)';
$string['error_linebreak'] = '{$a}: must not contain line breaks';
$string['error_identifier'] = '{$a}: must be a letter or _ followed by letters, digits or _, at most 63 characters';
$string['error_pattern'] = '{$a->name}: "{$a->pattern}" is not a pattern (letters, digits, _, \\ and * only)';
$string['error_required'] = '{$a->name}: required for backend {$a->backend}';

// Status page.
$string['statuspage'] = 'Time series database log store status';
$string['status_version'] = 'Extension version';
$string['status_backend'] = 'Backend';
$string['status_mode'] = 'Write mode';
$string['status_thisprocess'] = 'The PHP process that answered this page (another one may answer the next time)';
$string['status_site'] = 'All PHP processes that reported in the last 15 minutes (counters since each one started)';
$string['status_workers'] = 'Reporting processes';
$string['status_lasterror'] = 'Last error';
$string['status_recreated'] = 'Events table made again';
$string['status_recreated_value'] = '{$a->date} ({$a->ago} ago): {$a->message}';
$string['status_lastsuccess'] = 'Last successful write';
$string['status_never'] = 'Never';
$string['status_none'] = 'None';
$string['status_spool'] = 'Spool';
$string['status_spoolsize'] = '{$a->files} files, {$a->size}, the oldest {$a->age} old';
$string['status_spoolempty'] = 'Empty or not used';
$string['status_chart'] = 'Events per minute (last hour)';
$string['status_written'] = 'Written';
$string['status_failed'] = 'Failed';
$string['status_dropped'] = 'Dropped';
$string['status_warning'] = 'The tsdb extension warns: {$a}';
$string['status_verdict_losses'] = 'Events were lost in the last hour: {$a->failed} failed, {$a->dropped} dropped.';
$string['status_verdict_spool'] = 'The time series database is not taking events: {$a->files} spool files wait, the oldest for {$a->age}. They are written once it answers. Test connection says why.';
$string['status_ago'] = '{$a->date} ({$a->ago} ago)';
$string['status_lasthour'] = 'Last hour';
$string['status_lasthour_value'] = '{$a->written} events written, {$a->failed} failed, {$a->dropped} dropped';
$string['status_waiting'] = 'Waiting in memory';
$string['status_waiting_processes'] = '{$a->events} events in {$a->processes} running PHP processes that reported in the last 2 minutes';
$string['status_jobs'] = 'TimescaleDB policy jobs';
$string['status_jobs_error'] = 'TimescaleDB\'s jobs could not be read: {$a}';
$string['status_job'] = 'Job';
$string['status_job_target'] = 'Table or aggregate';
$string['status_job_lastrun'] = 'Last run';
$string['status_job_failed'] = 'Failed: {$a}';
$string['status_job_lastsuccess'] = 'Last success';
$string['status_job_next'] = 'Next run';
$string['status_details'] = 'Details: every counter';
$string['stat_accepted'] = 'Events accepted';
$string['stat_written'] = 'Events written';
$string['stat_failed'] = 'Events failed (given up after the retries)';
$string['stat_rejected'] = 'Events rejected by the database';
$string['stat_dropped'] = 'Events dropped (memory cap)';
$string['stat_truncated'] = 'Values truncated';
$string['stat_retried'] = 'Retries';
$string['stat_batches'] = 'Batches written';
$string['stat_pending'] = 'Events waiting in memory';
$string['stat_queued_bytes'] = 'Bytes waiting in memory';
$string['stat_spooled'] = 'Events put in the spool';
$string['stat_replayed'] = 'Events replayed from the spool';
$string['stat_replay_rejected'] = 'Spooled events rejected when replayed';
$string['stat_spool_dropped'] = 'Spooled events dropped (spool cap)';
$string['stat_spool_bytes'] = 'Spool size (bytes)';
$string['stat_spool_segments'] = 'Spool segments';
$string['stat_quarantined'] = 'Spool segments quarantined';
$string['stat_spool_other_segments'] = 'Spool segments of another database or table (the replay task delivers them to the configured one)';
$string['stat_oldest_unsent_age_s'] = 'Oldest event not yet written, waiting for';
$string['stat_breaker'] = 'Circuit breaker';
$string['stat_last_error'] = 'Last error';
$string['stat_last_error_at'] = 'Last error at';
$string['stat_last_success_at'] = 'Last successful write';
$string['stat_schema_recreated'] = 'Tables made again';
$string['stat_schema_recreated_at'] = 'Tables last made again';
$string['stat_schema_recreated_message'] = 'Why the tables were made again';
$string['stat_pid'] = 'Process id';
$string['testconnection'] = 'Test connection';
$string['testconnection_ok'] = 'Connection works: a marker event was written and read back ({$a}).';
$string['testconnection_written'] = 'A marker event was written (the extension reports it written); reading back is not available for this backend: {$a}';
$string['testconnection_failed'] = 'Connection test failed: {$a}';
$string['testconnection_auth'] = 'The time series database at {$a} refused the login: the user name, password or API token is wrong, or the server does not let this user in. Check them in the store\'s settings.';
$string['testconnection_unreachable'] = 'Nothing answers at {$a}: the database server is stopped, or the host name or port is wrong, or a firewall is in the way.';
$string['testconnection_tls'] = 'The secure (TLS) connection to {$a} failed: the server\'s certificate is not trusted (set the CA certificate file), does not name this host, or the server does not offer TLS. Check the TLS settings of the store.';
$string['testconnection_said'] = 'Details: {$a}';
$string['testconnection_notimescale_available'] = 'TimescaleDB is not enabled in the database {$a}: the events are in a plain PostgreSQL table partitioned by day, without compression or the daily summaries. The server has TimescaleDB: to use it, run CREATE EXTENSION timescaledb; in that database.';
$string['testconnection_notimescale_absent'] = 'TimescaleDB is not installed on this PostgreSQL server: the events of the database {$a} are in a plain PostgreSQL table partitioned by day, without compression or the daily summaries. That works; install TimescaleDB on the server for larger sites.';
$string['eventconnectiontested'] = 'Log store connection tested';

// Tasks.
$string['task_replay_spool'] = 'Replay the time series database spool';
$string['task_health_check'] = 'Time series database log store health check';
$string['task_summarise'] = 'Maintain the summary tables of the log (plain PostgreSQL)';
$string['task_retention'] = 'Delete expired events from the PostgreSQL log table';
$string['task_metrics_cleanup'] = 'Clean up time series database log store counters';

// Health notification.
$string['messageprovider:healthalert'] = 'Time series database log store is failing';
$string['health_subject'] = 'Moodle log store: events are not being written';
$string['health_body'] = 'The time series database log store failed {$a->count} health checks in a row. Last problem: {$a->problem}. Check the status page: {$a->url}';
$string['health_recovered_subject'] = 'Moodle log store: writing recovered';
$string['health_recovered_body'] = 'The time series database log store writes events again. Status page: {$a}';
$string['health_problem_extension'] = 'the tsdb extension is not loaded in the cron PHP';
$string['health_problem_failures'] = '{$a->failed} events failed and {$a->dropped} were dropped in the last check period, {$a->written} written';
$string['health_problem_spool'] = '{$a->segments} spooled batches are waiting, the oldest for {$a->minutes} minutes: the time series database is not taking them ({$a->error})';
$string['health_problem_config'] = 'configuration refused: {$a}';
$string['health_problem_influx'] = 'the plugin cannot read from InfluxDB: {$a}';
$string['health_problem_recreated'] = 'the events table was missing and was created again on {$a->date}: what it held before is gone ({$a->message})';
$string['health_problem_flush'] = 'the cron process could not write a test event: {$a}';

// Status check (Site administration > Reports > System status).
$string['cachedef_dataspan'] = 'The time span each time series database events table covers (for the Logs reports\' pages)';
$string['cachedef_workerreport'] = 'When each PHP process last reported its time series database log store counters';
$string['check_extension'] = 'tsdb PHP extension';
$string['check_extension_ok'] = 'The tsdb extension {$a} is loaded and configured.';
$string['check_health_failing'] = 'The time series database log store is failing: {$a}';
$string['check_schema_recreated'] = 'The events table was created again on {$a->date} ({$a->ago} ago): it was missing (dropped, or left out of a restore), so the events it held before are gone from it; events sent since are in it. The extension says: {$a->message}';
$string['check_warning'] = 'The time series database log store works, but the tsdb extension warns: {$a}';

// Errors.
$string['pgconnectfailed'] = 'Cannot connect to the PostgreSQL log database: {$a}';
$string['pgqueryfailed'] = 'PostgreSQL log database error: {$a}';
$string['pgnodriver'] = 'Neither the pgsql nor the pdo_pgsql PHP extension is loaded: the plugin cannot read the PostgreSQL log table.';
$string['influxerror'] = '{$a}';
$string['influx_answered'] = 'InfluxDB at {$a->url} answered {$a->status}: {$a->error} — check {$a->check}';
$string['influx_check_proxy'] = 'the web proxy (Site administration > Server > HTTP > Web proxy: proxyhost, proxybypass)';
$string['influx_check_setting'] = '{$a->name} ({$a->setting})';
$string['influx_noanswer'] = 'InfluxDB at {$a->url} did not answer: {$a->error} — check {$a->check}';
$string['influx_notjson'] = 'InfluxDB at {$a->url} answered with something that is not an InfluxDB reply: {$a->error} — check {$a->check}';
$string['influx_queryerror'] = 'InfluxDB at {$a->url} refused the query: {$a->error} — check {$a->check}';
$string['influxdeletenottag'] = 'InfluxDB can only delete points by tag: add "{$a}" to the Tags setting (existing points written without that tag cannot be deleted by it).';
$string['influxdeleteunsupported'] = 'Backend {$a} cannot delete individual points: delete by dropping the table or database, or use pseudonymisation.';
$string['readertooslow'] = 'The time series database log store ({$a->backend}) gives up on this log query rather than keep the page waiting: {$a->reason}. InfluxDB reads every matching event to count them: choose a course or a date to narrow it. The PostgreSQL / TimescaleDB backend answers every log report.';
$string['readerunsupported'] = 'The time series database log store ({$a->backend}) cannot answer this log query exactly, and refuses it rather than show wrong events: {$a->reason}. The PostgreSQL / TimescaleDB backend answers every log report; with InfluxDB, the live logs and the filters by course, user, activity, action and education level work.';

// Import (cli/import_standard_log.php).
$string['importbackend'] = 'The import writes to PostgreSQL / TimescaleDB or InfluxDB: the configured backend is {$a}.';
$string['importfileformat'] = 'The import file cannot be read: {$a}';
$string['importfileunreadable'] = 'The import file {$a} does not exist or cannot be read.';
$string['importnoextension'] = 'The tsdb PHP extension is not loaded in this PHP (CLI): the import writes through it. Load it in the CLI php.ini too.';
$string['importoldextension'] = 'The tsdb PHP extension loaded in this PHP (CLI) is version {$a}, older than this plugin: it has no tsdb_import(), which the import writes through. Install the extension of this release (its tsdb.so) for the CLI too.';
$string['importrunning'] = 'Another import of the same source into the same target is running.';
$string['importrefused'] = 'The import stopped: {$a->error}. The rows up to id {$a->after} are imported; fix the source or the option and run the import again: it resumes there.';
$string['importwritefailed'] = 'The extension could not write the imported events: {$a}. What was written stays written and is not stored twice: fix the problem and run the import again, it resumes after the last chunk written.';

// Privacy.
$string['privacy:metadata:tsdb'] = 'Every event of the site (what a user did, when, where, and from which IP address) is sent to the configured time series database (InfluxDB or PostgreSQL/TimescaleDB), outside the Moodle database.';
$string['privacy:metadata:tsdb:eventname'] = 'The event name';
$string['privacy:metadata:tsdb:component'] = 'The component of the event';
$string['privacy:metadata:tsdb:action'] = 'The action of the event';
$string['privacy:metadata:tsdb:target'] = 'The target of the event';
$string['privacy:metadata:tsdb:objecttable'] = 'The table of the object the event is about';
$string['privacy:metadata:tsdb:objectid'] = 'The ID of the object the event is about';
$string['privacy:metadata:tsdb:crud'] = 'Whether the action created, read, updated or deleted something';
$string['privacy:metadata:tsdb:edulevel'] = 'The educational level of the action (teaching, participating, other)';
$string['privacy:metadata:tsdb:contextlevel'] = 'The level of the context of the event';
$string['privacy:metadata:tsdb:contextinstanceid'] = 'The ID of the instance (course, activity, user...) of the context of the event';
$string['privacy:metadata:tsdb:userid'] = 'The ID of the user who performed the action (a pseudonymous ID for InfluxDB when pseudonymisation is on)';
$string['privacy:metadata:tsdb:relateduserid'] = 'The ID of a user the event is related to';
$string['privacy:metadata:tsdb:realuserid'] = 'The ID of the real user behind the action, when logged in as another user';
$string['privacy:metadata:tsdb:anonymous'] = 'Whether the event was flagged as anonymous';
$string['privacy:metadata:tsdb:contextid'] = 'The context of the event';
$string['privacy:metadata:tsdb:courseid'] = 'The course of the event';
$string['privacy:metadata:tsdb:other'] = 'Extra information about the event';
$string['privacy:metadata:tsdb:timecreated'] = 'The time of the event';
$string['privacy:metadata:tsdb:origin'] = 'The origin of the request (web, cli, ws, restore)';
$string['privacy:metadata:tsdb:ip'] = 'The IP address of the request';
$string['privacy:metadata:pseudonym'] = 'The random ID that stands for a user in InfluxDB (with pseudonymisation on), so that their user ID never leaves Moodle.';
$string['privacy:metadata:pseudonym:userid'] = 'The user';
$string['privacy:metadata:pseudonym:pseudoid'] = 'The random ID sent to InfluxDB instead of the user ID';
$string['privacy:metadata:pseudonym:timecreated'] = 'When the random ID was created';
$string['privacybackendfailed'] = 'Privacy request not completed: the time series database log store ({$a->backend}, {$a->where}) failed in {$a->step}: {$a->error} — check the settings {$a->settings} (Site administration > Plugins > Logging > Time series database log store) and run the request again.';
$string['privacyfileformat'] = 'The file backend writes {$a} in line protocol, which cannot be searched or rewritten: the events in it were neither exported nor deleted. Use the JSON lines format (setting format), or delete the file.';
$string['privacyfileunreadable'] = 'The events file {$a} cannot be read or locked.';
$string['privacyinfluxnotdeleted'] = 'InfluxDB accepted the deletion of a point but still holds it: {$a}';
