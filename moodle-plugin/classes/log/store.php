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
 * The time series database log store.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\log;

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\local\extension;
use logstore_tsdb\local\reader\influx_reader;
use logstore_tsdb\local\reader\pg_reader;
use logstore_tsdb\local\reader\unsupported_query;
use logstore_tsdb\local\metrics;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\local\settings_definition;

/**
 * Log store that hands every event to the tsdb PHP extension, which batches and ships it to InfluxDB or
 * PostgreSQL/TimescaleDB from a background thread of the PHP process.
 *
 * Nothing is buffered in PHP: write() builds the same row the standard store builds and passes it on at once.
 *
 * As a \core\log\sql_reader (Moodle's Logs and Live logs reports), it reads the events back from the backend:
 * PostgreSQL / TimescaleDB answers every fragment Moodle writes for logstore_standard_log (pg_reader); InfluxDB
 * answers the subset InfluxQL can answer exactly and refuses the rest with an exception (influx_reader); the file
 * backend cannot be read. Reading does not need the extension: it uses PHP's pgsql/PDO or HTTP.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class store implements \tool_log\log\writer, \core\log\sql_reader {
    use \tool_log\helper\store,
        \tool_log\helper\reader;

    /** @var \stdClass The plugin configuration, read once when the store is created (once per request). */
    protected $pluginconfig;

    /** @var bool Extension loaded and configuration accepted. */
    protected $available = false;

    /** @var bool Log guests and not-logged-in users (like logstore_standard). */
    protected $logguests = true;

    /** @var string|null Regular expression of the include patterns, null = include everything. */
    protected $includere = null;

    /** @var string|null Regular expression of the exclude patterns, null = exclude nothing. */
    protected $excludere = null;

    /** @var int Events with a lower edulevel are not logged. */
    protected $minedulevel = 0;

    /** @var bool Skip anonymous events. */
    protected $skipanonymous = false;

    /** @var bool Record the IP address. */
    protected $logip = true;

    /** @var bool Replace user ids with per-user pseudonyms (InfluxDB backends only). */
    protected $pseudonymise = false;

    /**
     * Constructor, called once per request by the log manager.
     *
     * @param \tool_log\log\manager $manager
     */
    public function __construct(\tool_log\log\manager $manager) {
        $this->helper_setup($manager);
        $this->pluginconfig = self::read_plugin_config();
        $cfg = $this->pluginconfig;
        $this->logguests = !isset($cfg->logguests) || (bool) $cfg->logguests;
        $this->includere = self::compile_patterns((string) ($cfg->includeevents ?? ''));
        $this->excludere = self::compile_patterns((string) ($cfg->excludeevents ?? ''));
        $this->minedulevel = (int) ($cfg->minedulevel ?? 0);
        $this->skipanonymous = !empty($cfg->skipanonymous);
        $this->logip = !isset($cfg->logip) || (bool) $cfg->logip;
        $backend = (string) ($cfg->backend ?? 'file');
        $this->pseudonymise = strpos($backend, 'influxdb') === 0 && (!isset($cfg->pseudonymise) || $cfg->pseudonymise);
        $this->available = extension::ensure_configured($cfg);
    }

    /**
     * The effective configuration: the plugin settings with the defaults of settings_definition filled in.
     *
     * With Configuration source = php.ini, the extension's keys (backend, connection, table, spool...) are the tsdb.*
     * values of php.ini / the PHP-FPM pool, which the extension writes with; only the plugin's own settings (filters,
     * pseudonymisation, health threshold) come from this page. Every reader of the configuration (the reports,
     * privacy, the tasks, the status page and its Test connection) gets it here, so all of them use the sink the
     * extension writes to.
     *
     * With Configuration source = this page, a key the PHP-FPM pool fixed with php_admin_value[tsdb.KEY] is the
     * pool's value too: tsdb_configure() keeps such a value whatever the page says. The page's own values of those
     * keys are kept in ->pagevalues (name => value), so that the extension is still handed the page's settings and
     * reports the conflict in tsdb_stats()['warning'] (shown on the status page and by the status check).
     *
     * @return \stdClass
     */
    public static function read_plugin_config(): \stdClass {
        $stored = get_config('logstore_tsdb');
        $cfg = new \stdClass();
        foreach (settings_definition::all() as $name => $def) {
            $cfg->$name = $def['default'];
        }
        foreach ((array) $stored as $name => $value) {
            $cfg->$name = $value;
        }
        if (($cfg->configsource ?? 'plugin') === 'phpini') {
            foreach (settings_definition::ini_values() as $name => $value) {
                $cfg->$name = $value;
            }
            return $cfg;
        }
        $fixed = settings_definition::server_fixed_keys();
        if ($fixed) {
            $ini = settings_definition::ini_values();
            $cfg->pagevalues = [];
            foreach ($fixed as $name) {
                $cfg->pagevalues[$name] = $cfg->$name;
                $cfg->$name = $ini[$name];
            }
        }
        return $cfg;
    }

    /**
     * Turns a pattern list into one anchored regular expression.
     *
     * A pattern is an event class name (the leading backslash is optional) or a component, with * matching
     * any run of characters: "\mod_forum\event\*", "mod_quiz", "*_viewed", "core".
     *
     * @param string $text patterns, one per line or comma separated
     * @return string|null
     */
    public static function compile_patterns(string $text): ?string {
        $parts = [];
        foreach (settings_definition::split_patterns($text) as $pattern) {
            $pattern = ltrim($pattern, '\\');
            if ($pattern === '') {
                continue;
            }
            $parts[] = str_replace('\\*', '.*', preg_quote($pattern, '/'));
        }
        if (!$parts) {
            return null;
        }
        return '/^\\\\?(?:' . implode('|', $parts) . ')$/';
    }

    /**
     * Does the event match a compiled pattern list (by event name or component)?
     *
     * @param string $re
     * @param array $entry
     * @return bool
     */
    protected static function matches(string $re, array $entry): bool {
        return preg_match($re, (string) $entry['eventname']) === 1 || preg_match($re, (string) $entry['component']) === 1;
    }

    /**
     * Should the event be ignored? Same rule as logstore_standard for guests, plus this store's filters.
     *
     * @param \core\event\base $event
     * @return bool
     */
    protected function is_event_ignored(\core\event\base $event) {
        if ((!CLI_SCRIPT || PHPUNIT_TEST) && !$this->logguests) {
            // Always log inside CLI scripts because we do not login there.
            if (!isloggedin() || isguestuser()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Writes one event: captures what the standard store captures and hands it to the extension.
     *
     * @param \core\event\base $event
     */
    public function write(\core\event\base $event) {
        global $PAGE;

        if (!$this->available) {
            return;
        }
        if ($this->is_event_ignored($event)) {
            return;
        }

        $entry = $event->get_data();
        if ((int) $entry['edulevel'] < $this->minedulevel) {
            return;
        }
        if ($this->skipanonymous && !empty($entry['anonymous'])) {
            return;
        }
        if ($this->excludere !== null && self::matches($this->excludere, $entry)) {
            return;
        }
        if ($this->includere !== null && !self::matches($this->includere, $entry)) {
            return;
        }

        // The same three values the buffered_writer trait adds. `other` stays an array: the extension encodes it.
        $entry['origin'] = $PAGE->requestorigin;
        $entry['ip'] = $this->logip ? $PAGE->requestip : '';
        $entry['realuserid'] = \core\session\manager::is_loggedinas() ? \core\session\manager::get_realuser()->id : null;

        if ($this->pseudonymise) {
            foreach (['userid', 'relateduserid', 'realuserid'] as $field) {
                if (!empty($entry[$field])) {
                    $entry[$field] = pseudonym::get((int) $entry[$field]);
                }
            }
        }

        extension::log_event($entry);
        if (empty($this->pluginconfig->livesince)) {
            // The first event this store captured: imports of older logs stop here by default.
            $this->pluginconfig->livesince = (int) $entry['timecreated'];
            set_config('livesince', $this->pluginconfig->livesince, 'logstore_tsdb');
        }
    }

    /**
     * End of the request: report this worker's counters (at most once a minute per process). Never throws.
     */
    public function dispose() {
        if ($this->reader instanceof pg_reader) {
            $this->reader->close();
        }
        if (!$this->available) {
            return;
        }
        try {
            metrics::report_if_due();
        } catch (\Throwable $e) {
            debugging('logstore_tsdb: could not report the worker counters: ' . $e->getMessage(), DEBUG_DEVELOPER);
        }
    }

    /**
     * Are events being logged? False without the extension or with a refused configuration.
     *
     * @return bool
     */
    public function is_logging() {
        return $this->available;
    }

    /** @var pg_reader|influx_reader|null The reader of the configured backend, created on first use. */
    protected $reader = null;

    /**
     * The reader of the configured backend.
     *
     * @return pg_reader|influx_reader
     * @throws unsupported_query for the file backend
     */
    public function get_reader() {
        if ($this->reader === null) {
            $backend = (string) ($this->pluginconfig->backend ?? 'file');
            if ($backend === 'postgres') {
                $this->reader = new pg_reader($this->pluginconfig);
            } else if (strpos($backend, 'influxdb') === 0) {
                $this->reader = new influx_reader($this->pluginconfig);
            } else {
                throw new unsupported_query('the ' . $backend . ' backend keeps no queryable copy of the events', $backend);
            }
        }
        return $this->reader;
    }

    /**
     * Events matching a SQL fragment over the columns of logstore_standard_log.
     *
     * @param string $selectwhere e.g. "courseid = :courseid AND timecreated > :since"
     * @param array $params bound values (named or positional), never interpolated
     * @param string $sort e.g. "timecreated DESC"
     * @param int $limitfrom
     * @param int $limitnum
     * @return \core\event\base[] keyed by the row id (PostgreSQL) or the point's time in ns (InfluxDB)
     */
    public function get_events_select($selectwhere, array $params, $sort, $limitfrom, $limitnum) {
        $events = [];
        foreach ($this->get_reader()->get_rows((string) $selectwhere, $params, (string) $sort, (int) $limitfrom,
                (int) $limitnum) as $row) {
            $key = $row->id ?? $row->time_ns;
            while (isset($events[$key])) {
                $key++;
            }
            if ($event = $this->get_log_event($row)) {
                $events[$key] = $event;
            }
        }
        return $events;
    }

    /**
     * Number of events matching a SQL fragment.
     *
     * @param string $selectwhere
     * @param array $params
     * @return int
     */
    public function get_events_select_count($selectwhere, array $params) {
        return $this->get_reader()->count((string) $selectwhere, $params);
    }

    /**
     * Is there an event matching a SQL fragment?
     *
     * @param string $selectwhere
     * @param array $params
     * @return bool
     */
    public function get_events_select_exists(string $selectwhere, array $params): bool {
        return $this->get_reader()->exists($selectwhere, $params);
    }

    /**
     * Events matching a SQL fragment, one at a time (exports of any size in bounded memory).
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return \Traversable of \core\event\base
     */
    public function get_events_select_iterator($selectwhere, array $params, $sort, $limitfrom, $limitnum) {
        $rows = $this->get_reader()->iterate_rows((string) $selectwhere, $params, (string) $sort, (int) $limitfrom,
            (int) $limitnum);
        return new \logstore_tsdb\local\reader\event_iterator($rows, [$this, 'get_log_event']);
    }

    /**
     * Builds an event from a stored row, as logstore_standard does.
     *
     * @param \stdClass $data a row with the columns of logstore_standard_log
     * @return \core\event\base|null
     */
    public function get_log_event($data) {
        $extra = ['origin' => $data->origin ?? null, 'ip' => $data->ip ?? null, 'realuserid' => $data->realuserid ?? null];
        $data = (array) $data;
        $data['other'] = self::decode_other($data['other'] ?? null);
        if ($data['other'] === false) {
            $data['other'] = [];
        }
        foreach (['origin', 'ip', 'realuserid', 'id', 'time', 'time_ns', 'event_id'] as $key) {
            unset($data[$key]);
        }
        if (!$event = \core\event\base::restore($data, $extra)) {
            return null;
        }
        return $event;
    }

    /**
     * The configuration this store was created with (defaults filled in).
     *
     * @return \stdClass
     */
    public function get_plugin_config(): \stdClass {
        return $this->pluginconfig;
    }
}
