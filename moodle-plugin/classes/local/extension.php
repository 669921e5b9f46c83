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
 * Thin, guarded access to the tsdb PHP extension.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Every call into the extension goes through here, so that a site without the extension never hits a fatal
 * error and the configuration is pushed once per request, only when it changed.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class extension {

    /** @var int How many times tsdb_configure() was called by this process (diagnostics and tests). */
    public static $configurecalls = 0;

    /** @var string|null Signature of the configuration last handed to tsdb_configure() in this request. */
    protected static $pushedsignature = null;

    /** @var string|null The message of the \ValueError of the last push, null when it was accepted. */
    protected static $configerror = null;

    /** @var array|null The configuration last pushed (secrets included; never printed). */
    protected static $pushedconfig = null;

    /** @var array Modes tested with tsdb_configure(): mode => bool. */
    protected static $modesupport = [];

    /**
     * Is the extension loaded in this PHP?
     *
     * @return bool
     */
    public static function is_loaded(): bool {
        return function_exists('tsdb_log_event') && function_exists('tsdb_configure');
    }

    /**
     * Extension version, or null without the extension.
     *
     * @return string|null
     */
    public static function version(): ?string {
        return function_exists('tsdb_version') ? (string) tsdb_version() : null;
    }

    /**
     * Live counters of this process, or null without the extension.
     *
     * @return array|null
     */
    public static function stats(): ?array {
        return function_exists('tsdb_stats') ? tsdb_stats() : null;
    }

    /**
     * Pushes the configuration to the extension when it differs from the one pushed last in this request.
     *
     * The extension treats a repeated identical configuration as free, so one push per request is cheap; pushes
     * within the same request (several stores, tests, CLI loops) are skipped entirely.
     *
     * With Configuration source = php.ini nothing of this page is handed over: tsdb_configure([]) gives every key its
     * tsdb.* value, so a worker that had this page's settings before the switch writes where php.ini says, and a bad
     * tsdb.* value is reported ("php.ini: tsdb.KEY: ...") like a refused setting.
     *
     * @param \stdClass $pluginconfig store::read_plugin_config()
     * @return bool true when the extension is loaded and its configuration is valid
     */
    public static function ensure_configured(#[\SensitiveParameter] \stdClass $pluginconfig): bool {
        if (!self::is_loaded()) {
            return false;
        }
        if (($pluginconfig->configsource ?? 'plugin') === 'phpini') {
            $config = [];
        } else {
            $config = settings_definition::extension_config(self::page_config($pluginconfig));
        }
        $signature = sha1(serialize($config));
        if ($signature === self::$pushedsignature) {
            return self::$configerror === null;
        }
        return self::push($config, $signature);
    }

    /**
     * The page's settings: store::read_plugin_config() with the page's own values put back for the keys the server
     * fixed (php_admin_value). The extension keeps the server's values anyway; handing it the page's values lets it
     * name each conflict in tsdb_stats()['warning'].
     *
     * @param \stdClass $pluginconfig store::read_plugin_config()
     * @return \stdClass
     */
    protected static function page_config(#[\SensitiveParameter] \stdClass $pluginconfig): \stdClass {
        if (empty($pluginconfig->pagevalues)) {
            return $pluginconfig;
        }
        $page = clone $pluginconfig;
        foreach ($pluginconfig->pagevalues as $name => $value) {
            $page->$name = $value;
        }
        return $page;
    }

    /**
     * Calls tsdb_configure().
     *
     * @param array $config
     * @param string|null $signature
     * @return bool accepted
     */
    protected static function push(#[\SensitiveParameter] array $config, ?string $signature = null): bool {
        self::$configurecalls++;
        self::$pushedsignature = $signature ?? sha1(serialize($config));
        self::$pushedconfig = $config;
        try {
            tsdb_configure($config);
            self::$configerror = null;
            return true;
        } catch (\ValueError | \TypeError $e) {
            // No debugging() here: the store pushes the configuration in every request that logs an event, so a
            // refused one would print on every page of every user where debugging is displayed, and would turn
            // Moodle's redirects (login, saving a form) into "Error output, so disabling automatic redirect" pages.
            // The status page, the settings page, System status and the health check's notifications say it.
            self::$configerror = $e->getMessage();
            return false;
        }
    }

    /**
     * The message of the last refused configuration, or null.
     *
     * @return string|null
     */
    public static function config_error(): ?string {
        return self::$configerror;
    }

    /**
     * Does the loaded extension accept this write mode? Detected by trying it, then restoring the configuration.
     *
     * With Configuration source = php.ini the probe changes only the mode (and a spool directory when php.ini has
     * none), every other key keeps its tsdb.* value, and the restore hands tsdb_configure() nothing, which is the
     * php.ini configuration again.
     *
     * @param string $mode e.g. 'durable'
     * @param \stdClass|null $pluginconfig current plugin config, used to restore the extension afterwards
     * @return bool
     */
    public static function supports_mode(string $mode, #[\SensitiveParameter] ?\stdClass $pluginconfig = null): bool {
        if (!self::is_loaded()) {
            return false;
        }
        if (array_key_exists($mode, self::$modesupport)) {
            return self::$modesupport[$mode];
        }
        $pluginconfig = $pluginconfig ?? \logstore_tsdb\log\store::read_plugin_config();
        $probe = clone $pluginconfig;
        $probe->mode = $mode;
        if (trim((string) ($probe->spool_dir ?? '')) === '') {
            // Durable mode needs a spool: probe the mode itself, not the admin's choice of no spool.
            $probe->spool_dir = settings_definition::default_spool_dir();
        }
        if (($pluginconfig->configsource ?? 'plugin') === 'phpini') {
            $probeconfig = ['mode' => $mode, 'spool_dir' => $probe->spool_dir];
        } else {
            $probeconfig = settings_definition::extension_config(self::page_config($probe));
        }
        $supported = true;
        try {
            tsdb_configure($probeconfig);
        } catch (\ValueError $e) {
            // Another bad key would also throw: only a message that names "mode" means the mode is refused.
            $supported = !preg_match('/(^|[ .;])mode:/', $e->getMessage());
        }
        self::$modesupport[$mode] = $supported;
        // Restore: force a fresh push of the real configuration.
        self::$pushedsignature = null;
        self::ensure_configured($pluginconfig);
        return $supported;
    }

    /**
     * Hands one event to the extension. Never throws.
     *
     * An `other` that the extension refuses because it holds objects (a bug in the plugin that triggered the
     * event, which core Moodle would have serialised anyway) is JSON-encoded here and retried once.
     *
     * @param array $entry the event row
     * @return bool false when the event was dropped or refused
     */
    public static function log_event(array $entry): bool {
        try {
            return tsdb_log_event($entry);
        } catch (\TypeError $e) {
            if (isset($entry['other']) && !is_string($entry['other'])) {
                $entry['other'] = json_encode($entry['other'], JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_UNESCAPED_UNICODE);
                try {
                    return tsdb_log_event($entry);
                } catch (\Throwable $e2) {
                    $e = $e2;
                }
            }
            debugging('logstore_tsdb: event refused by the tsdb extension: ' . $e->getMessage(), DEBUG_DEVELOPER);
            return false;
        } catch (\Throwable $e) {
            debugging('logstore_tsdb: event refused by the tsdb extension: ' . $e->getMessage(), DEBUG_DEVELOPER);
            return false;
        }
    }

    /**
     * Forgets the per-request state (tests only).
     */
    public static function reset_for_tests(): void {
        self::$configurecalls = 0;
        self::$pushedsignature = null;
        self::$configerror = null;
        self::$pushedconfig = null;
        self::$modesupport = [];
    }
}
