<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * DEVELOPMENT AID ONLY: the tsdb_* functions written in PHP after the extension's documented contract (file
 * backend, json format). Lets the harness be exercised while the real extension is being built. run.sh uses it
 * only with --fake and then says so; the real suite always loads the real .so.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

if (function_exists('tsdb_log_event')) {
    return;
}

/** Fake state. */
final class tsdb_fake_state {
    /** @var array */
    public static $config = null;
    /** @var array */
    public static $stats = ['accepted' => 0, 'written' => 0, 'failed' => 0, 'dropped' => 0, 'retried' => 0, 'batches' => 0,
        'queued_bytes' => 0, 'pending' => 0, 'truncated' => 0, 'last_error' => '', 'last_success_at' => 0];
    /** @var array */
    public static $queue = [];
    /** @var int */
    public static $seq = 0;
    const KEYS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel', 'contextid',
        'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other', 'timecreated',
        'origin', 'ip', 'realuserid'];
    const INTS = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
        'relateduserid', 'anonymous', 'timecreated', 'realuserid'];
    const CONFIG = ['backend' => 'file', 'mode' => 'async', 'batch_size' => '5000', 'flush_interval_ms' => '1000',
        'memory_limit_bytes' => '67108864', 'shutdown_timeout_ms' => '5000', 'sync_timeout_ms' => '5000',
        'max_string_bytes' => '65536', 'max_other_bytes' => '1048576', 'retry_base_ms' => '500', 'retry_max_ms' => '30000',
        'retry_max_elapsed_ms' => '180000', 'path' => '/tmp/tsdb-events.lp', 'format' => 'line', 'url' => 'http://127.0.0.1:8086',
        'org' => '', 'bucket' => 'moodle', 'token' => '', 'database' => 'moodle', 'retention_policy' => '', 'username' => '',
        'password' => '', 'measurement' => 'moodle_events', 'tags' => '', 'gzip' => '1', 'max_batch_bytes' => '8388608',
        'timeout_ms' => '10000', 'connect_timeout_ms' => '3000', 'tls_verify' => '1', 'ca_file' => '', 'host' => '127.0.0.1',
        'port' => '5432', 'dbname' => 'moodle', 'user' => 'moodle', 'sslmode' => 'disable', 'schema' => 'public',
        'table' => 'logstore_tsdb_log', 'application_name' => 'logstore_tsdb', 'statement_timeout_ms' => '30000',
        'idle_close_ms' => '60000', 'retention_days' => '0'];
}

/**
 * Fake tsdb_configure().
 *
 * @param array $config
 */
function tsdb_configure(array $config): void {
    $errors = [];
    $new = tsdb_fake_state::CONFIG;
    foreach ($config as $k => $v) {
        if (!array_key_exists($k, $new)) {
            $errors[] = "$k: unknown configuration key";
            continue;
        }
        if ($k === 'mode' && !in_array($v, ['async', 'sync'], true)) {
            $errors[] = 'mode: must be one of async, sync';
        }
        if ($k === 'batch_size' && ((int) $v < 1 || (int) $v > 100000)) {
            $errors[] = 'batch_size: must be an integer between 1 and 100000';
        }
        $new[$k] = is_bool($v) ? ($v ? '1' : '0') : (string) $v;
    }
    if (!in_array($new['backend'], ['file'], true)) {
        $errors[] = 'backend: the PHP fake only has the file backend';
    }
    if ($errors) {
        throw new ValueError(implode('; ', $errors));
    }
    if ($new !== tsdb_fake_state::$config) {
        tsdb_flush();
        tsdb_fake_state::$config = $new;
    }
}

/**
 * Fake tsdb_log_event().
 *
 * @param array $event
 * @return bool
 */
function tsdb_log_event(array $event): bool {
    if (tsdb_fake_state::$config === null) {
        tsdb_configure([]);
    }
    $row = array_fill_keys(tsdb_fake_state::KEYS, null);
    foreach ($event as $k => $v) {
        if (!in_array($k, tsdb_fake_state::KEYS, true)) {
            throw new ValueError("$k: unknown event key");
        }
        if ($k === 'other') {
            if (is_array($v)) {
                array_walk_recursive($v, function($x) {
                    if (is_object($x)) {
                        throw new TypeError('other: objects are not allowed');
                    }
                });
                $v = json_encode($v);
            } else if (is_object($v)) {
                throw new TypeError('other: objects are not allowed');
            }
        } else if (in_array($k, tsdb_fake_state::INTS, true)) {
            $v = ($v === null || $v === '') ? null : (int) $v;
        } else if ($v !== null) {
            if (is_object($v) || is_array($v)) {
                throw new TypeError("$k: must be a string");
            }
            $v = (string) $v;
        }
        $row[$k] = $v;
    }
    $row['time_ns'] = (int) ($row['timecreated'] ?? time()) * 1000000000 + (++tsdb_fake_state::$seq);
    $row['event_id'] = bin2hex(random_bytes(16));
    tsdb_fake_state::$queue[] = $row;
    tsdb_fake_state::$stats['accepted']++;
    tsdb_fake_state::$stats['pending'] = count(tsdb_fake_state::$queue);
    if (tsdb_fake_state::$config['mode'] === 'sync') {
        tsdb_flush();
    }
    return true;
}

/**
 * Fake tsdb_log_events().
 *
 * @param array $events
 * @return int
 */
function tsdb_log_events(array $events): int {
    $n = 0;
    foreach ($events as $e) {
        $n += tsdb_log_event($e) ? 1 : 0;
    }
    return $n;
}

/**
 * Fake tsdb_flush().
 *
 * @param int $timeoutms
 * @return int
 */
function tsdb_flush(int $timeoutms = 5000): int {
    if (!tsdb_fake_state::$queue || tsdb_fake_state::$config === null) {
        return 0;
    }
    $c = tsdb_fake_state::$config;
    $out = '';
    foreach (tsdb_fake_state::$queue as $row) {
        $out .= json_encode($row, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n";
    }
    if (@file_put_contents($c['path'], $out, FILE_APPEND | LOCK_EX) === false) {
        tsdb_fake_state::$stats['failed'] += count(tsdb_fake_state::$queue);
        tsdb_fake_state::$stats['last_error'] = 'cannot write ' . $c['path'];
    } else {
        tsdb_fake_state::$stats['written'] += count(tsdb_fake_state::$queue);
        tsdb_fake_state::$stats['last_success_at'] = time();
    }
    tsdb_fake_state::$stats['batches']++;
    tsdb_fake_state::$queue = [];
    tsdb_fake_state::$stats['pending'] = 0;
    return 0;
}

/**
 * Fake tsdb_version().
 *
 * @return string
 */
function tsdb_version(): string {
    return '0.0.0-php-fake';
}

/**
 * Fake tsdb_stats().
 *
 * @return array
 */
function tsdb_stats(): array {
    return tsdb_fake_state::$stats + ['backend' => tsdb_fake_state::$config['backend'] ?? 'file',
        'mode' => tsdb_fake_state::$config['mode'] ?? 'async', 'pid' => getmypid(), 'version' => tsdb_version()];
}
