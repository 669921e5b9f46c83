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
 * The single list of the plugin's settings: names, types, defaults and limits.
 *
 * settings.php, the store (which builds the array handed to tsdb_configure()) and the tests all read this
 * list, so a setting cannot exist in one place and be forgotten in another.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Definitions of every setting of logstore_tsdb.
 *
 * Each setting is an array with:
 *  - section: the heading it is shown under in settings.php;
 *  - type: int, text, url, path, secret, select, bool, textarea;
 *  - default: the default value (same as the extension's own default for extension keys);
 *  - min / max: for int settings;
 *  - options: for select settings (value => lang string identifier);
 *  - ext: true when the setting is a key of the extension's configuration (tsdb_configure());
 *  - emptyisvalue: true when an empty value is a choice of the admin (e.g. "no spool"), not "use the default".
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class settings_definition {

    /** @var string[] Backends understood by the extension. */
    const BACKENDS = ['file', 'influxdb1', 'influxdb2', 'influxdb3', 'postgres'];

    /** @var string The default InfluxDB tag set of this plugin (the extension's default plus contextid, see privacy). */
    const DEFAULT_TAGS = 'eventname,component,action,target,crud,edulevel,contextlevel,origin,courseid,contextid';

    /**
     * All settings, in the order settings.php shows them.
     *
     * @return array name => definition
     */
    public static function all(): array {
        $gib = 1024 * 1024 * 1024;
        $db = self::moodle_database();
        return [
            // General.
            'configsource' => ['section' => 'general', 'type' => 'select', 'default' => 'plugin',
                'options' => ['plugin' => 'configsource_plugin', 'phpini' => 'configsource_phpini']],
            // PostgreSQL on Moodle's own database server (see moodle_database()): the password is all a site on
            // PostgreSQL has to give. The file backend is for tests.
            'backend' => ['section' => 'general', 'type' => 'select', 'default' => 'postgres', 'ext' => true,
                'options' => ['influxdb2' => 'backend_influxdb2', 'influxdb1' => 'backend_influxdb1',
                    'influxdb3' => 'backend_influxdb3', 'postgres' => 'backend_postgres', 'file' => 'backend_file']],
            'mode' => ['section' => 'general', 'type' => 'select', 'default' => 'async', 'ext' => true,
                'options' => ['async' => 'mode_async', 'sync' => 'mode_sync', 'durable' => 'mode_durable']],

            // What is logged.
            'logguests' => ['section' => 'filters', 'type' => 'bool', 'default' => 1],
            'includeevents' => ['section' => 'filters', 'type' => 'textarea', 'default' => ''],
            'excludeevents' => ['section' => 'filters', 'type' => 'textarea', 'default' => ''],
            'minedulevel' => ['section' => 'filters', 'type' => 'select', 'default' => '0',
                'options' => ['0' => 'minedulevel_0', '1' => 'minedulevel_1', '2' => 'minedulevel_2']],
            'skipanonymous' => ['section' => 'filters', 'type' => 'bool', 'default' => 0],
            'logip' => ['section' => 'filters', 'type' => 'bool', 'default' => 1],

            // File sink (tests, debugging, shipping with another agent).
            'path' => ['section' => 'file', 'type' => 'path', 'default' => '/tmp/tsdb-events.lp', 'ext' => true],
            'format' => ['section' => 'file', 'type' => 'select', 'default' => 'line', 'ext' => true,
                'options' => ['line' => 'format_line', 'json' => 'format_json']],

            // InfluxDB.
            'url' => ['section' => 'influxdb', 'type' => 'url', 'default' => 'http://127.0.0.1:8086', 'ext' => true],
            'org' => ['section' => 'influxdb', 'type' => 'text', 'default' => '', 'ext' => true],
            'bucket' => ['section' => 'influxdb', 'type' => 'text', 'default' => 'moodle', 'ext' => true],
            'token' => ['section' => 'influxdb', 'type' => 'secret', 'default' => '', 'ext' => true],
            'database' => ['section' => 'influxdb', 'type' => 'text', 'default' => 'moodle', 'ext' => true],
            'retention_policy' => ['section' => 'influxdb', 'type' => 'text', 'default' => '', 'ext' => true],
            'create_database' => ['section' => 'influxdb', 'type' => 'bool', 'default' => 0, 'ext' => true],
            'username' => ['section' => 'influxdb', 'type' => 'text', 'default' => '', 'ext' => true],
            'measurement' => ['section' => 'influxdb', 'type' => 'text', 'default' => 'moodle_events', 'ext' => true],
            'tags' => ['section' => 'influxdb', 'type' => 'text', 'default' => self::DEFAULT_TAGS, 'ext' => true],
            // Automatic: compress only for a server off this machine (see the help text and db/upgrade.php).
            'gzip' => ['section' => 'influxdb', 'type' => 'select', 'default' => 'auto', 'ext' => true,
                'options' => ['auto' => 'gzip_auto', '1' => 'gzip_always', '0' => 'gzip_never']],
            'max_batch_bytes' => ['section' => 'influxdb', 'type' => 'int', 'default' => 8388608,
                'min' => 1024, 'max' => 67108864, 'ext' => true],
            'timeout_ms' => ['section' => 'influxdb', 'type' => 'int', 'default' => 10000, 'min' => 100, 'max' => 600000,
                'ext' => true],
            'tls_verify' => ['section' => 'influxdb', 'type' => 'bool', 'default' => 1, 'ext' => true],
            'pseudonymise' => ['section' => 'influxdb', 'type' => 'bool', 'default' => 1],

            // PostgreSQL / TimescaleDB.
            'host' => ['section' => 'postgres', 'type' => 'text', 'default' => $db['host'], 'ext' => true],
            'port' => ['section' => 'postgres', 'type' => 'int', 'default' => $db['port'], 'min' => 1, 'max' => 65535,
                'ext' => true],
            'dbname' => ['section' => 'postgres', 'type' => 'text', 'default' => $db['dbname'], 'ext' => true],
            'user' => ['section' => 'postgres', 'type' => 'text', 'default' => $db['user'], 'ext' => true],
            'sslmode' => ['section' => 'postgres', 'type' => 'select', 'default' => 'disable', 'ext' => true,
                'options' => ['disable' => 'sslmode_disable', 'require' => 'sslmode_require',
                    'verify-full' => 'sslmode_verifyfull']],
            'schema' => ['section' => 'postgres', 'type' => 'text', 'default' => 'public', 'ext' => true],
            'table' => ['section' => 'postgres', 'type' => 'text', 'default' => 'logstore_tsdb_log', 'ext' => true],
            'application_name' => ['section' => 'postgres', 'type' => 'text', 'default' => 'logstore_tsdb', 'ext' => true],
            'statement_timeout_ms' => ['section' => 'postgres', 'type' => 'int', 'default' => 30000, 'min' => 0,
                'max' => 3600000, 'ext' => true],
            'idle_close_ms' => ['section' => 'postgres', 'type' => 'int', 'default' => 60000, 'min' => 0,
                'max' => 86400000, 'ext' => true],
            'retention_days' => ['section' => 'postgres', 'type' => 'int', 'default' => 0, 'min' => 0, 'max' => 36500,
                'ext' => true],

            // Secrets and TLS shared by InfluxDB 1.x and PostgreSQL.
            'password' => ['section' => 'credentials', 'type' => 'secret', 'default' => '', 'ext' => true],
            'ca_file' => ['section' => 'credentials', 'type' => 'path', 'default' => '', 'ext' => true],

            // Buffering, batching, retries.
            'batch_size' => ['section' => 'performance', 'type' => 'int', 'default' => 5000, 'min' => 1, 'max' => 100000,
                'ext' => true],
            'flush_interval_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 1000, 'min' => 10,
                'max' => 600000, 'ext' => true],
            'memory_limit_bytes' => ['section' => 'performance', 'type' => 'int', 'default' => 67108864,
                'min' => 1048576, 'max' => 4 * $gib, 'ext' => true],
            'shutdown_timeout_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 5000, 'min' => 0,
                'max' => 600000, 'ext' => true],
            'sync_timeout_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 5000, 'min' => 1,
                'max' => 600000, 'ext' => true],
            'max_string_bytes' => ['section' => 'performance', 'type' => 'int', 'default' => 65536, 'min' => 64,
                'max' => 16777216, 'ext' => true],
            'max_other_bytes' => ['section' => 'performance', 'type' => 'int', 'default' => 1048576, 'min' => 1024,
                'max' => 67108864, 'ext' => true],
            'retry_base_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 500, 'min' => 1,
                'max' => 600000, 'ext' => true],
            'retry_max_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 30000, 'min' => 1,
                'max' => 3600000, 'ext' => true],
            'retry_max_elapsed_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 180000, 'min' => 0,
                'max' => 86400000, 'ext' => true],
            // TimescaleDB: counts of the Logs reports and the privacy provider from the daily aggregates while they
            // are exact (ignored on plain PostgreSQL).
            'countfromaggregate' => ['section' => 'performance', 'type' => 'bool', 'default' => 1],
            // InfluxDB and PostgreSQL alike.
            'connect_timeout_ms' => ['section' => 'performance', 'type' => 'int', 'default' => 3000, 'min' => 100,
                'max' => 600000, 'ext' => true],

            // The on-disk spool, in every write mode (see docs/reliability.md). Empty spool_dir: no spool.
            'spool_dir' => ['section' => 'spool', 'type' => 'path', 'default' => self::default_spool_dir(), 'ext' => true,
                'emptyisvalue' => true],
            'spool_limit_bytes' => ['section' => 'spool', 'type' => 'int', 'default' => 1073741824, 'min' => 1048576,
                'max' => 1024 * $gib, 'ext' => true],

            // Health check.
            'healththreshold' => ['section' => 'health', 'type' => 'int', 'default' => 3, 'min' => 1, 'max' => 1000],
        ];
    }

    /**
     * Where the log table goes by default: the PostgreSQL server and database of Moodle itself, as config.php names
     * them (the table is the extension's own, logstore_tsdb_log, beside Moodle's tables as logstore_standard_log is);
     * 127.0.0.1, moodle, moodle for a site on another database.
     *
     * @return array host, port, dbname, user
     */
    public static function moodle_database(): array {
        global $CFG;
        if (($CFG->dbtype ?? '') !== 'pgsql') {
            return ['host' => '127.0.0.1', 'port' => 5432, 'dbname' => 'moodle', 'user' => 'moodle'];
        }
        return ['host' => (string) ($CFG->dbhost ?: '127.0.0.1'), 'port' => (int) (($CFG->dboptions['dbport'] ?? '') ?: 5432),
            'dbname' => (string) $CFG->dbname, 'user' => (string) $CFG->dbuser];
    }

    /**
     * The sections, in display order.
     *
     * @return string[]
     */
    public static function sections(): array {
        return ['general', 'filters', 'file', 'influxdb', 'postgres', 'credentials', 'performance', 'spool', 'health'];
    }

    /** @var string[] The sections of tuning knobs, on a page of their own: the defaults suit most sites. */
    const TUNING_SECTIONS = ['performance', 'spool', 'health'];

    /** @var array The settings that only some backends use (name => backends); every other one is used by all. */
    const BACKEND_ONLY = [
        'path' => ['file'],
        'format' => ['file'],
        'url' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'org' => ['influxdb2'],
        'bucket' => ['influxdb2'],
        'token' => ['influxdb2', 'influxdb3'],
        'database' => ['influxdb1', 'influxdb3'],
        'retention_policy' => ['influxdb1'],
        'create_database' => ['influxdb1'],
        'username' => ['influxdb1'],
        'measurement' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'tags' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'gzip' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'max_batch_bytes' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'timeout_ms' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'tls_verify' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'pseudonymise' => ['influxdb1', 'influxdb2', 'influxdb3'],
        'host' => ['postgres'],
        'port' => ['postgres'],
        'dbname' => ['postgres'],
        'user' => ['postgres'],
        'sslmode' => ['postgres'],
        'schema' => ['postgres'],
        'table' => ['postgres'],
        'application_name' => ['postgres'],
        'statement_timeout_ms' => ['postgres'],
        'idle_close_ms' => ['postgres'],
        'retention_days' => ['postgres'],
        'countfromaggregate' => ['postgres'],
        'password' => ['influxdb1', 'postgres'],
        'ca_file' => ['influxdb1', 'influxdb2', 'influxdb3', 'postgres'],
        'connect_timeout_ms' => ['influxdb1', 'influxdb2', 'influxdb3', 'postgres'],
    ];

    /**
     * The backends that use a setting, or the settings of a section.
     *
     * @param string $name a setting, or heading_SECTION
     * @return string[]|null null when every backend does
     */
    public static function used_by(string $name): ?array {
        if (strpos($name, 'heading_') !== 0) {
            return self::BACKEND_ONLY[$name] ?? null;
        }
        $union = [];
        foreach (self::all() as $setting => $def) {
            if ('heading_' . $def['section'] === $name) {
                if (!isset(self::BACKEND_ONLY[$setting])) {
                    return null;
                }
                $union = array_merge($union, self::BACKEND_ONLY[$setting]);
            }
        }
        return array_values(array_intersect(self::BACKENDS, $union));
    }

    /**
     * The default spool directory: logstore_tsdb/spool under the site's data directory.
     *
     * @return string
     */
    public static function default_spool_dir(): string {
        global $CFG;
        return rtrim((string) $CFG->dataroot, '/') . '/logstore_tsdb/spool';
    }

    /**
     * Validates one value against its definition.
     *
     * @param string $name setting name
     * @param mixed $value the submitted value
     * @return string|null null when valid, else a message that starts with the setting name
     */
    public static function validate(string $name, #[\SensitiveParameter] $value): ?string {
        $defs = self::all();
        if (!isset($defs[$name])) {
            return $name . ': unknown setting';
        }
        $def = $defs[$name];
        $value = is_string($value) ? trim($value) : $value;
        switch ($def['type']) {
            case 'int':
                if ($value === '' || $value === null) {
                    return null; // Empty means the default.
                }
                if (!preg_match('/^[0-9]+$/', (string) $value) || (int) $value < $def['min'] || (int) $value > $def['max']) {
                    return get_string('error_int', 'logstore_tsdb',
                        (object) ['name' => $name, 'min' => $def['min'], 'max' => $def['max']]);
                }
                return null;
            case 'url':
                if ($value === '' || $value === null) {
                    return null;
                }
                if (!preg_match('~^https?://[^\s/?#]+(/[^\s?#]*)?$~i', (string) $value)) {
                    return get_string('error_url', 'logstore_tsdb', $name);
                }
                return null;
            case 'select':
                if (!array_key_exists((string) $value, $def['options'])) {
                    return get_string('error_select', 'logstore_tsdb', $name);
                }
                return null;
            case 'path':
                if ($value !== '' && $value !== null && strpos((string) $value, '/') !== 0) {
                    return get_string('error_path', 'logstore_tsdb', $name);
                }
                return null;
            case 'text':
                if ($name === 'tags' && $value !== '' && !preg_match('/^[a-z_]+(,[a-z_]+)*$/', (string) $value)) {
                    return get_string('error_tags', 'logstore_tsdb', $name);
                }
                if (in_array($name, ['schema', 'table', 'measurement'], true) && $value !== ''
                        && !preg_match('/^[A-Za-z_][A-Za-z0-9_]{0,62}$/', (string) $value)) {
                    return get_string('error_identifier', 'logstore_tsdb', $name);
                }
                return null;
            case 'textarea':
                foreach (self::split_patterns((string) $value) as $pattern) {
                    if (!preg_match('/^[A-Za-z0-9_\\\\*]+$/', $pattern)) {
                        return get_string('error_pattern', 'logstore_tsdb',
                            (object) ['name' => $name, 'pattern' => $pattern]);
                    }
                }
                return null;
            default:
                return null;
        }
    }

    /**
     * Splits a pattern list (one per line or comma separated) into trimmed, non-empty patterns.
     *
     * @param string $text
     * @return string[]
     */
    public static function split_patterns(string $text): array {
        $out = [];
        foreach (preg_split('/[\s,]+/', $text) as $p) {
            if ($p !== '') {
                $out[] = $p;
            }
        }
        return $out;
    }

    /**
     * The extension's configuration as php.ini / the PHP-FPM pool sets it (Configuration source = php.ini).
     *
     * These are the tsdb.* values the extension itself reads, so every part of the plugin (readers, privacy, tasks,
     * the status page) uses the sink the extension writes to. A key the extension does not report (the extension is
     * not loaded) keeps the plugin's default. Booleans are normalised to 1 / 0 (gzip to auto / 1 / 0) as the extension
     * reads them.
     *
     * @return array setting name => value, for every extension key
     */
    public static function ini_values(): array {
        $values = [];
        foreach (self::all() as $name => $def) {
            if (empty($def['ext'])) {
                continue;
            }
            $value = ini_get('tsdb.' . $name);
            if ($value === false) {
                $value = $def['default'];
            } else if ($name === 'gzip') {
                // auto / 1 / 0 as the extension reads it: "auto", or a boolean in any of its spellings.
                $value = strtolower(trim($value));
                $value = $value === 'auto' ? 'auto' : (in_array($value, ['1', 'true', 'on', 'yes'], true) ? '1' : '0');
            } else if ($def['type'] === 'bool') {
                $value = in_array(strtolower(trim($value)), ['1', 'true', 'on', 'yes'], true) ? 1 : 0;
            }
            $values[$name] = $value;
        }
        return $values;
    }

    /**
     * The extension keys that the server fixed for this process: PHP-FPM's php_admin_value[tsdb.KEY].
     *
     * PHP marks such an entry as not modifiable by the application (its access lacks INI_USER): ini_set() cannot
     * change it and neither can tsdb_configure(), which keeps the pool's value (and reports the conflict in
     * tsdb_stats()['warning']). php.ini, -d and php_value entries stay defaults the page's settings override.
     *
     * @return string[] setting names, empty without the extension
     */
    public static function server_fixed_keys(): array {
        if (!extension_loaded('tsdb')) {
            return [];
        }
        $entries = ini_get_all('tsdb', true) ?: [];
        $fixed = [];
        foreach (self::all() as $name => $def) {
            $entry = $entries['tsdb.' . $name] ?? null;
            if (!empty($def['ext']) && $entry !== null && ((int) $entry['access'] & INI_USER) === 0) {
                $fixed[] = $name;
            }
        }
        return $fixed;
    }

    /**
     * Builds the configuration array for tsdb_configure() from the plugin config.
     *
     * Every extension key is always sent (the setting or its default), so the extension ends up in the same state
     * whether it merges or replaces its configuration. The spool is sent in every write mode: an outage of the
     * backend fills the spool instead of losing events; an empty spool_dir (the admin's choice) sends no spool.
     *
     * @param \stdClass $pluginconfig the result of get_config('logstore_tsdb')
     * @return array key => value
     */
    public static function extension_config(#[\SensitiveParameter] \stdClass $pluginconfig): array {
        $config = [];
        foreach (self::all() as $name => $def) {
            if (empty($def['ext'])) {
                continue;
            }
            $value = $pluginconfig->$name ?? null;
            $unset = $value === null || $value === false;
            $blank = is_string($value) && trim($value) === '';
            if ($unset || ($blank && $def['type'] !== 'secret' && empty($def['emptyisvalue']))) {
                $value = $def['default'];
            }
            switch ($def['type']) {
                case 'int':
                    $value = (int) $value;
                    break;
                case 'bool':
                    $value = (bool) (int) $value;
                    break;
                case 'secret':
                    $value = (string) $value;
                    break;
                default:
                    $value = trim((string) $value);
            }
            $config[$name] = $value;
        }
        // Moodle's web proxy (proxybypass applied to the InfluxDB URL), the way the plugin's own requests go too. Only
        // for an extension that knows the key (it registers tsdb.proxy): an older one would refuse the configuration.
        if (ini_get('tsdb.proxy') !== false) {
            $config['proxy'] = influx_client::moodle_proxy((string) $config['url']);
        }
        return $config;
    }
}
