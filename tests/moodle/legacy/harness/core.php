<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: global Moodle functions, constants, exceptions and small core classes used by logstore_tsdb.
 *
 * Names and signatures are Moodle's (4.4 - 5.1); the behaviour is the part the plugin relies on, no more.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('MOODLE_INTERNAL', true);
if (!defined('CLI_SCRIPT')) {
    define('CLI_SCRIPT', true);
}
define('PHPUNIT_TEST', true);
define('DEBUG_NONE', 0);
define('DEBUG_MINIMAL', E_ERROR | E_PARSE);
define('DEBUG_NORMAL', E_ERROR | E_PARSE | E_WARNING | E_NOTICE);
define('DEBUG_ALL', E_ALL & ~E_STRICT);
define('DEBUG_DEVELOPER', E_ALL);
define('PARAM_INT', 'int');
define('PARAM_RAW', 'raw');
define('PARAM_RAW_TRIMMED', 'raw_trimmed');
define('PARAM_TEXT', 'text');
define('PARAM_URL', 'url');
define('PARAM_PATH', 'path');
define('PARAM_ALPHANUMEXT', 'alphanumext');
define('PARAM_BOOL', 'bool');
define('PARAM_ALPHA', 'alpha');
define('SQL_PARAMS_NAMED', 1);
define('SQL_PARAMS_QM', 2);
define('SQL_PARAMS_DOLLAR', 4);
define('IGNORE_MISSING', 0);
define('IGNORE_MULTIPLE', 1);
define('MUST_EXIST', 2);
define('FORMAT_PLAIN', '2');
define('FORMAT_HTML', '1');
define('FORMAT_MARKDOWN', '4');
define('CONTEXT_SYSTEM', 10);
define('CONTEXT_USER', 30);
define('CONTEXT_COURSECAT', 40);
define('CONTEXT_COURSE', 50);
define('CONTEXT_MODULE', 70);
define('CONTEXT_BLOCK', 80);

/**
 * Harness state (not a Moodle class): config, strings, debugging messages, sent messages.
 */
class harness {
    /** @var array plugin => [name => value] */
    public static $config = [];
    /** @var array debugging() calls: [message, level] */
    public static $debugging = [];
    /** @var \Exception[]|null When an array: an exception made where each debugging() call was (the stack there) */
    public static $debugtraces = null;
    /** @var array message_send() calls */
    public static $messages = [];
    /** @var array upgrade_plugin_savepoint() calls: [component, version] */
    public static $savepoints = [];
    /** @var array loaded strings: component => [id => string] */
    public static $strings = [];
    /** @var string Directory of the plugin under test */
    public static $plugindir;
    /** @var string|null JSON file the config is kept in (shared with scripts a test runs), null = memory only */
    public static $configfile = null;
    /** @var string|null This process's directory of dataroots (removed at exit), null when given by HARNESS_DATAROOT */
    public static $rundir = null;
    /** @var int Dataroots made so far by this process */
    protected static $datarootcount = 0;

    /**
     * Creates this process's directory of dataroots (unique, 0700) and removes it when the process exits.
     */
    public static function make_rundir(): void {
        do {
            $dir = sys_get_temp_dir() . '/logstore_tsdb_harness_' . getmypid() . '_' . bin2hex(random_bytes(4));
        } while (!@mkdir($dir, 0700));
        self::$rundir = $dir;
        register_shutdown_function(function() use ($dir) {
            harness::remove_tree($dir);
        });
    }

    /**
     * Gives $CFG->dataroot a new, empty directory (one per test: the spool under it is the test's own).
     *
     * @return string the new dataroot
     */
    public static function new_dataroot(): string {
        global $CFG;
        if (self::$rundir === null) {
            // A script run by a test shares the test's dataroot (HARNESS_DATAROOT), as Moodle's CLI shares the site's.
            return $CFG->dataroot;
        }
        self::$datarootcount++;
        $CFG->dataroot = self::$rundir . '/dataroot' . self::$datarootcount;
        mkdir($CFG->dataroot, 0700);
        return $CFG->dataroot;
    }

    /**
     * Removes a directory tree (never following links).
     *
     * @param string $dir
     */
    public static function remove_tree(string $dir): void {
        if (is_link($dir) || !is_dir($dir)) {
            @unlink($dir);
            return;
        }
        foreach (scandir($dir) ?: [] as $name) {
            if ($name !== '.' && $name !== '..') {
                self::remove_tree($dir . '/' . $name);
            }
        }
        @rmdir($dir);
    }

    /**
     * Loads the config from $configfile.
     */
    public static function load_config(): void {
        if (self::$configfile && is_file(self::$configfile)) {
            $data = json_decode((string) file_get_contents(self::$configfile), true);
            if (is_array($data)) {
                self::$config = $data;
            }
        }
    }

    /**
     * Writes the config to $configfile at once (as Moodle's set_config() writes its table).
     */
    public static function save_config(): void {
        if (self::$configfile) {
            $tmp = self::$configfile . '.' . getmypid();
            file_put_contents($tmp, json_encode(self::$config));
            rename($tmp, self::$configfile);
        }
    }

    /**
     * Resets everything between tests.
     */
    public static function reset(): void {
        global $USER, $PAGE;
        self::$config = ['tool_log' => ['enabled_stores' => 'logstore_tsdb']];
        self::$debugging = [];
        self::$debugtraces = null;
        self::$messages = [];
        self::$savepoints = [];
        $USER = (object) ['id' => 0];
        $_SESSION = [];
        $PAGE = new moodle_page();
        \tool_log\log\manager::reset_for_tests();
        cache::reset_all();
    }

    /**
     * Logs in a user (0 = nobody, 1 = guest).
     *
     * @param int $userid
     */
    public static function login(int $userid): void {
        global $USER;
        $USER = (object) ['id' => $userid];
        unset($_SESSION['REALUSER']);
    }

    /**
     * "Log in as": the real user $realid acts as $asid (what \core\session\manager::loginas() leaves behind).
     *
     * @param int $realid
     * @param int $asid
     */
    public static function login_as(int $realid, int $asid): void {
        global $USER;
        $_SESSION['REALUSER'] = (object) ['id' => $realid];
        $USER = (object) ['id' => $asid, 'realuser' => $realid];
    }
}

/**
 * Moodle's get_config().
 *
 * @param string $plugin
 * @param string|null $name
 * @return mixed
 */
function get_config($plugin, $name = null) {
    if ($name !== null) {
        return harness::$config[$plugin][$name] ?? false;
    }
    return (object) (harness::$config[$plugin] ?? []);
}

/**
 * Moodle's set_config().
 *
 * @param string $name
 * @param mixed $value
 * @param string|null $plugin
 * @return bool
 */
function set_config($name, $value, $plugin = null) {
    $plugin = $plugin ?? 'core';
    if ($value === null) {
        unset(harness::$config[$plugin][$name]);
    } else {
        harness::$config[$plugin][$name] = (string) $value;
    }
    harness::save_config();
    return true;
}

/**
 * Moodle's unset_config().
 *
 * @param string $name
 * @param string $plugin
 * @return bool
 */
function unset_config($name, $plugin = null) {
    unset(harness::$config[$plugin ?? 'core'][$name]);
    harness::save_config();
    return true;
}

/**
 * Moodle's upgrade_plugin_savepoint(): recorded.
 *
 * @param bool $result
 * @param int|float $version
 * @param string $type
 * @param string $plugin
 * @param bool $allowabort
 */
function upgrade_plugin_savepoint($result, $version, $type, $plugin, $allowabort = true) {
    harness::$savepoints[] = [$type . '_' . $plugin, (int) $version];
}

/**
 * Moodle's get_string(): reads the plugin's real lang file; other components return "[id,component]".
 *
 * @param string $identifier
 * @param string $component
 * @param mixed $a
 * @return string
 */
function get_string($identifier, $component = '', $a = null) {
    if ($component === 'logstore_tsdb') {
        if (!isset(harness::$strings[$component])) {
            $string = [];
            require(harness::$plugindir . '/lang/en/logstore_tsdb.php');
            harness::$strings[$component] = $string;
        }
        if (!isset(harness::$strings[$component][$identifier])) {
            throw new coding_exception("Invalid get_string() identifier: '$identifier' for component '$component'");
        }
        $s = harness::$strings[$component][$identifier];
        if ($a !== null) {
            if (is_object($a) || is_array($a)) {
                foreach ((array) $a as $k => $v) {
                    if (is_scalar($v)) {
                        $s = str_replace('{$a->' . $k . '}', (string) $v, $s);
                    }
                }
            } else {
                $s = str_replace('{$a}', (string) $a, $s);
            }
        }
        return $s;
    }
    return "[$identifier,$component]";
}

/**
 * Moodle's clean_param() for the PARAM_* types the plugin's settings and pages use. Any other type is not
 * reproduced here and throws, rather than cleaning in a way Moodle does not.
 *
 * @param mixed $param
 * @param string $type
 * @return mixed
 */
function clean_param($param, $type) {
    if (is_array($param) || is_object($param)) {
        throw new coding_exception('clean_param() can not process arrays or objects, please use clean_param_array() instead.');
    }
    switch ($type) {
        case PARAM_RAW:
            return $param;
        case PARAM_RAW_TRIMMED:
            return trim((string) $param);
        case PARAM_INT:
            return (int) $param;
        case PARAM_ALPHA:
            return preg_replace('/[^a-zA-Z]/i', '', (string) $param);
        case PARAM_ALPHANUMEXT:
            return preg_replace('/[^a-zA-Z0-9_-]/i', '', (string) $param);
    }
    throw new coding_exception("harness: clean_param() type '$type' is not reproduced");
}

/**
 * Moodle's get_string_manager() (the part used: string_exists()).
 *
 * @return harness_string_manager
 */
function get_string_manager() {
    return new harness_string_manager();
}

/**
 * Moodle's core_string_manager_standard, string_exists() only: the plugin's strings are those of its lang file.
 */
class harness_string_manager {
    /**
     * Moodle's string_exists().
     *
     * @param string $identifier
     * @param string $component
     * @return bool
     */
    public function string_exists($identifier, $component) {
        if ($component !== 'logstore_tsdb') {
            return false;
        }
        get_string('pluginname', 'logstore_tsdb');
        return isset(harness::$strings[$component][$identifier]);
    }
}

/**
 * Moodle's lang_string (lazy string).
 */
class lang_string {
    /** @var string */
    protected $identifier;
    /** @var string */
    protected $component;
    /** @var mixed */
    protected $a;

    /**
     * Constructor.
     *
     * @param string $identifier
     * @param string $component
     * @param mixed $a
     */
    public function __construct($identifier, $component = '', $a = null) {
        $this->identifier = $identifier;
        $this->component = $component;
        $this->a = $a;
    }

    /**
     * The string.
     *
     * @return string
     */
    public function out() {
        return get_string($this->identifier, $this->component, $this->a);
    }

    /**
     * The string.
     *
     * @return string
     */
    public function __toString() {
        return $this->out();
    }
}

/**
 * Moodle's debugging(): recorded for the tests.
 *
 * @param string $message
 * @param int $level
 * @return bool
 */
function debugging($message = '', $level = DEBUG_NORMAL) {
    harness::$debugging[] = [$message, $level];
    if (harness::$debugtraces !== null) {
        harness::$debugtraces[] = new Exception((string) $message);
    }
    return true;
}

/**
 * Moodle's mtrace().
 *
 * @param string $string
 * @param string $eol
 */
function mtrace($string, $eol = "\n") {
    if (getenv('HARNESS_MTRACE')) {
        echo $string . $eol;
    }
    harness::$debugging[] = ['mtrace: ' . $string, 0];
}

/**
 * Moodle's isloggedin().
 *
 * @return bool
 */
function isloggedin() {
    global $USER;
    return !empty($USER->id);
}

/**
 * Moodle's isguestuser().
 *
 * @param mixed $user
 * @return bool
 */
function isguestuser($user = null) {
    global $USER;
    $id = $user === null ? ($USER->id ?? 0) : (is_object($user) ? $user->id : $user);
    return (int) $id === 1;
}

/**
 * Moodle's is_siteadmin().
 *
 * @param mixed $user
 * @return bool
 */
function is_siteadmin($user = null) {
    global $USER;
    $id = $user === null ? ($USER->id ?? 0) : (is_object($user) ? $user->id : $user);
    return (int) $id === 2;
}

/**
 * Moodle's get_admins().
 *
 * @return array
 */
function get_admins() {
    return [2 => (object) ['id' => 2, 'username' => 'admin', 'email' => 'admin@example.com']];
}

/**
 * Moodle's message_send(): recorded.
 *
 * @param \core\message\message $eventdata
 * @return int|false
 */
function message_send(\core\message\message $eventdata) {
    harness::$messages[] = $eventdata;
    return count(harness::$messages);
}

/**
 * Moodle's get_log_manager().
 *
 * @param bool $forcereload
 * @return \core\log\manager
 */
function get_log_manager($forcereload = false) {
    return \tool_log\log\manager::instance($forcereload);
}

/** Moodle's exceptions. */
class moodle_exception extends Exception {
    /** @var string */
    public $errorcode;
    /** @var string */
    public $module;
    /** @var mixed */
    public $a;
    /** @var string|null */
    public $debuginfo;

    /**
     * Constructor.
     *
     * @param string $errorcode
     * @param string $module
     * @param string $link
     * @param mixed $a
     * @param string|null $debuginfo
     */
    public function __construct($errorcode, $module = '', $link = '', $a = null, $debuginfo = null) {
        $this->errorcode = $errorcode;
        $this->module = $module;
        $this->a = $a;
        $this->debuginfo = $debuginfo;
        $message = $module === 'logstore_tsdb' ? get_string($errorcode, $module, $a) : "$errorcode ($module)";
        parent::__construct($message . ($debuginfo ? " ($debuginfo)" : ''));
    }
}

/** Moodle's coding_exception. */
class coding_exception extends moodle_exception {
    /**
     * Constructor.
     *
     * @param string $hint
     * @param string|null $debuginfo
     */
    public function __construct($hint, $debuginfo = null) {
        Exception::__construct('Coding error detected, it must be fixed by a programmer: ' . $hint);
    }
}

/** Moodle's dml_exception. */
class dml_exception extends moodle_exception {
    /**
     * Constructor.
     *
     * @param string $errorcode
     * @param mixed $a
     * @param string|null $debuginfo
     */
    public function __construct($errorcode, $a = null, $debuginfo = null) {
        Exception::__construct("$errorcode: " . (is_scalar($a) ? $a : '') . ' ' . $debuginfo);
    }
}

/** Moodle's dml_write_exception. */
class dml_write_exception extends dml_exception {
}

/** Moodle's dml_missing_record_exception. */
class dml_missing_record_exception extends dml_exception {
}

/** Moodle's require_login_exception. */
class require_login_exception extends moodle_exception {
}

/** Moodle's core_text (the part used). */
class core_text {
    /**
     * Multibyte-safe substr.
     *
     * @param string $text
     * @param int $start
     * @param int|null $len
     * @return string
     */
    public static function substr($text, $start, $len = null) {
        return mb_substr((string) $text, $start, $len, 'UTF-8');
    }
}

/** Moodle's core_user (the part used). */
class core_user {
    /**
     * The no-reply user.
     *
     * @return stdClass
     */
    public static function get_noreply_user() {
        return (object) ['id' => -10, 'username' => 'noreply', 'email' => 'noreply@example.com'];
    }
}

/** Moodle's moodle_url (the part used). */
class moodle_url {
    /** @var string */
    protected $url;
    /** @var array */
    protected $params;

    /**
     * Constructor.
     *
     * @param string $url
     * @param array|null $params
     */
    public function __construct($url, ?array $params = null) {
        $this->url = (string) $url;
        $this->params = $params ?? [];
    }

    /**
     * The URL.
     *
     * @return string
     */
    public function out($escaped = true) {
        global $CFG;
        $q = $this->params ? '?' . http_build_query($this->params) : '';
        return (strpos($this->url, '/') === 0 ? $CFG->wwwroot : '') . $this->url . $q;
    }

    /**
     * The URL.
     *
     * @return string
     */
    public function __toString() {
        return $this->out();
    }
}

/**
 * Moodle's moodle_page: request origin and IP (magic read-only properties, set by the harness).
 */
class moodle_page {
    /** @var string page type, as moodle_page::$pagetype ('admin-index' is Site administration > Notifications) */
    public $pagetype = 'site-index';
    /** @var string|null set by tests */
    public $harnessorigin = null;
    /** @var string|null set by tests */
    public $harnessip = null;

    /**
     * Magic getter, like moodle_page::__get() -> magic_get_requestorigin() / magic_get_requestip().
     *
     * @param string $name
     * @return mixed
     */
    public function __get($name) {
        if ($name === 'requestorigin') {
            if ($this->harnessorigin !== null) {
                return $this->harnessorigin;
            }
            return CLI_SCRIPT ? 'cli' : 'web';
        }
        if ($name === 'requestip') {
            return $this->harnessip ?? '0.0.0.0';
        }
        throw new coding_exception('Unrecognised property: ' . $name);
    }
}

/**
 * Moodle's MUC entry point (the part used): an in-memory application cache per definition.
 */
class cache {
    /** @var cache[] */
    protected static $instances = [];
    /** @var array */
    protected $data = [];

    /**
     * Moodle's cache::make().
     *
     * @param string $component
     * @param string $area
     * @param array $identifiers
     * @param string|null $unused
     * @return cache
     */
    public static function make($component, $area, array $identifiers = [], $unused = null) {
        global $CFG;
        $defs = [];
        $file = harness::$plugindir . '/db/caches.php';
        if ($component === 'logstore_tsdb') {
            $definitions = [];
            include($file);
            if (!isset($definitions[$area])) {
                throw new coding_exception("Unknown cache definition $component/$area");
            }
        }
        return self::$instances["$component/$area"] ??= new cache();
    }

    /**
     * Moodle's cache::get().
     *
     * @param string|int $key
     * @param int $strictness
     * @return mixed false when missing
     */
    public function get($key, $strictness = IGNORE_MISSING) {
        return $this->data[$key] ?? false;
    }

    /**
     * Moodle's cache::set().
     *
     * @param string|int $key
     * @param mixed $data
     * @return bool
     */
    public function set($key, $data) {
        $this->data[$key] = $data;
        return true;
    }

    /**
     * Moodle's cache::delete().
     *
     * @param string|int $key
     * @param bool $recurse
     * @return bool
     */
    public function delete($key, $recurse = true) {
        unset($this->data[$key]);
        return true;
    }

    /**
     * Harness: forget all caches.
     */
    public static function reset_all(): void {
        self::$instances = [];
    }
}

/** Moodle's cache_store (constants used by db/caches.php). */
class cache_store {
    const MODE_APPLICATION = 1;
    const MODE_SESSION = 2;
    const MODE_REQUEST = 4;
}

/**
 * Moodle's context classes (the part used).
 */
abstract class context {
    /** @var context[] id => context */
    protected static $byid = [];
    /** @var int */
    protected static $nextid = 1;
    /** @var int */
    public $id;
    /** @var int */
    public $contextlevel;
    /** @var int */
    public $instanceid;

    /**
     * Harness constructor.
     *
     * @param int $level
     * @param int $instanceid
     */
    protected function __construct(int $level, int $instanceid) {
        global $DB;
        $this->id = self::$nextid++;
        $this->contextlevel = $level;
        $this->instanceid = $instanceid;
        self::$byid[$this->id] = $this;
        if ($DB) {
            $DB->insert_record('context', (object) ['id' => $this->id, 'contextlevel' => $level, 'instanceid' => $instanceid],
                false, true);
        }
    }

    /**
     * Moodle's context::instance_by_id().
     *
     * @param int $id
     * @param int $strictness
     * @return context|false
     */
    public static function instance_by_id($id, $strictness = MUST_EXIST) {
        if (!isset(self::$byid[(int) $id])) {
            if ($strictness === MUST_EXIST) {
                throw new dml_missing_record_exception('invalidrecord', 'context', "id=$id");
            }
            return false;
        }
        return self::$byid[(int) $id];
    }

    /**
     * Harness: find or create.
     *
     * @param int $level
     * @param int $instanceid
     * @return context
     */
    protected static function find_or_create(int $level, int $instanceid) {
        foreach (self::$byid as $c) {
            if ($c->contextlevel === $level && $c->instanceid === $instanceid) {
                return $c;
            }
        }
        $class = [CONTEXT_SYSTEM => 'context_system', CONTEXT_USER => 'context_user', CONTEXT_COURSE => 'context_course',
            CONTEXT_MODULE => 'context_module'][$level];
        return new $class($level, $instanceid);
    }

    /**
     * Harness: forget all contexts.
     */
    public static function reset_all(): void {
        self::$byid = [];
        self::$nextid = 1;
    }
}

/** Moodle's context_system. */
class context_system extends context {
    /**
     * Moodle's context_system::instance().
     *
     * @param int $instanceid
     * @param int $strictness
     * @param bool $cache
     * @return context_system
     */
    public static function instance($instanceid = 0, $strictness = IGNORE_MISSING, $cache = true) {
        return self::find_or_create(CONTEXT_SYSTEM, 0);
    }
}

/** Moodle's context_user. */
class context_user extends context {
    /**
     * Moodle's context_user::instance().
     *
     * @param int $userid
     * @param int $strictness
     * @return context_user
     */
    public static function instance($userid, $strictness = MUST_EXIST) {
        return self::find_or_create(CONTEXT_USER, (int) $userid);
    }
}

/** Moodle's context_course. */
class context_course extends context {
    /**
     * Moodle's context_course::instance().
     *
     * @param int $courseid
     * @param int $strictness
     * @return context_course
     */
    public static function instance($courseid, $strictness = MUST_EXIST) {
        return self::find_or_create(CONTEXT_COURSE, (int) $courseid);
    }
}

/** Moodle's context_module. */
class context_module extends context {
    /**
     * Moodle's context_module::instance().
     *
     * @param int $cmid
     * @param int $strictness
     * @return context_module
     */
    public static function instance($cmid, $strictness = MUST_EXIST) {
        return self::find_or_create(CONTEXT_MODULE, (int) $cmid);
    }
}

define('MATURITY_ALPHA', 50);
define('MATURITY_BETA', 100);
define('MATURITY_RC', 150);
define('MATURITY_STABLE', 200);

/** Moodle's html_writer (the part used). */
class html_writer {
    /**
     * A div.
     *
     * @param string $content
     * @param string $class
     * @param array|null $attributes
     * @return string
     */
    public static function div($content, $class = '', $attributes = null) {
        return '<div class="' . s($class) . '">' . $content . '</div>';
    }

    /**
     * A tag.
     *
     * @param string $tagname
     * @param string $contents
     * @param array|null $attributes
     * @return string
     */
    public static function tag($tagname, $contents, $attributes = null) {
        return "<$tagname>" . $contents . "</$tagname>";
    }

    /**
     * A table.
     *
     * @param html_table $table
     * @return string
     */
    public static function table($table) {
        $out = '<table><tr><th>' . implode('</th><th>', $table->head) . "</th></tr>\n";
        foreach ($table->data as $row) {
            $out .= '<tr><td>' . implode('</td><td>', $row) . "</td></tr>\n";
        }
        return $out . "</table>\n";
    }
}

/**
 * Moodle's has_capability() (harness: site administrators have every capability).
 *
 * @param string $capability
 * @param context $context
 * @param mixed $user
 * @return bool
 */
function has_capability($capability, context $context, $user = null) {
    return is_siteadmin($user);
}

/** Moodle's core_renderer (the part used). */
class core_renderer {
    /**
     * Moodle's notification().
     *
     * @param string $message
     * @param string $type
     * @param bool $closebutton
     * @return string
     */
    public function notification($message, $type = 'info', $closebutton = true) {
        return '<div class="alert alert-' . s($type) . '">' . $message . '</div>';
    }
}
