<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: events, the logging API of core and tool_log, sessions ("log in as").
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace core\event {

    /**
     * Moodle's \core\event\base (the part a log store sees).
     */
    abstract class base implements \IteratorAggregate {
        const LEVEL_OTHER = 0;
        const LEVEL_TEACHING = 1;
        const LEVEL_PARTICIPATING = 2;

        /** @var array event data, see get_data() */
        protected $data;

        /** @var bool */
        protected $triggered = false;

        /** @var bool */
        protected $restored = false;

        /** @var bool */
        protected $dispatched = false;

        /** @var array|null origin, ip, realuserid of a restored event */
        protected $logextra = null;

        /** @var string[] Moodle's base::$fields: the keys of get_data(). */
        private static $fields = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud',
            'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous',
            'other', 'timecreated'];

        /**
         * Moodle's event constructor is final and protected: events come from create().
         */
        final protected function __construct() {
        }

        /**
         * Sets crud, edulevel and objecttable.
         */
        abstract protected function init();

        /**
         * Moodle's base::create().
         *
         * @param array|null $data
         * @return static
         */
        final public static function create(?array $data = null) {
            global $USER;
            $data = $data ?? [];
            $event = new static();
            $classname = get_called_class();
            $parts = explode('\\', $classname);
            $component = $parts[0];
            $name = end($parts);
            $pos = strrpos($name, '_');
            $event->data = [
                'eventname' => '\\' . $classname,
                'component' => $component,
                'action' => substr($name, $pos + 1),
                'target' => substr($name, 0, $pos),
                'objecttable' => null,
                'objectid' => $data['objectid'] ?? null,
                'crud' => null,
                'edulevel' => null,
                'contextid' => null,
                'contextlevel' => null,
                'contextinstanceid' => null,
                'userid' => array_key_exists('userid', $data) ? $data['userid'] : ($USER->id ?? 0),
                'courseid' => $data['courseid'] ?? 0,
                'relateduserid' => $data['relateduserid'] ?? null,
                'anonymous' => (int) ($data['anonymous'] ?? 0),
                'other' => $data['other'] ?? null,
                'timecreated' => $data['timecreated'] ?? time(),
            ];
            $event->init();
            $context = $data['context'] ?? \context_system::instance();
            $event->data['contextid'] = $context->id;
            $event->data['contextlevel'] = $context->contextlevel;
            $event->data['contextinstanceid'] = $context->instanceid;
            foreach (['crud', 'edulevel', 'objecttable'] as $k) {
                if (array_key_exists($k, $data)) {
                    $event->data[$k] = $data[$k];
                }
            }
            return $event;
        }

        /**
         * Moodle's base::restore(): an event rebuilt from a log row (reports), false for a row that names no event.
         *
         * @param array $data the 17 keys of get_data()
         * @param array $logextra origin, ip, realuserid
         * @return base|false
         */
        final public static function restore(array $data, array $logextra) {
            $classname = $data['eventname'];
            $component = $data['component'];
            $action = $data['action'];
            $target = $data['target'];
            // Security: make 100% sure this really is an event class.
            if ($classname !== "\\{$component}\\event\\{$target}_{$action}") {
                return false;
            }
            if (!class_exists($classname)) {
                return self::restore_unknown($data, $logextra);
            }
            $event = new $classname();
            if (!($event instanceof \core\event\base)) {
                return false;
            }
            $event->init();
            $event->restored = true;
            $event->triggered = true;
            $event->dispatched = true;
            $event->logextra = $logextra;
            foreach (self::$fields as $key) {
                if (!array_key_exists($key, $data)) {
                    debugging("Event restore data must contain key $key");
                    $data[$key] = null;
                }
            }
            if (count($data) != count(self::$fields)) {
                foreach ($data as $key => $value) {
                    if (!in_array($key, self::$fields)) {
                        debugging("Event restore data cannot contain key $key");
                        unset($data[$key]);
                    }
                }
            }
            $event->data = $data;
            return $event;
        }

        /**
         * Moodle's base::restore_unknown().
         *
         * @param array $data
         * @param array $logextra
         * @return unknown_logged
         */
        final protected static function restore_unknown(array $data, array $logextra) {
            $event = new unknown_logged();
            $event->restored = true;
            $event->triggered = true;
            $event->dispatched = true;
            $event->data = $data;
            $event->logextra = $logextra;
            return $event;
        }

        /**
         * Moodle's base::get_logextra().
         *
         * @return array|null
         */
        public function get_logextra() {
            return $this->logextra;
        }

        /**
         * Moodle's base::is_restored().
         *
         * @return bool
         */
        public function is_restored() {
            return $this->restored;
        }

        /**
         * Moodle's base::get_data().
         *
         * @return array
         */
        final public function get_data() {
            return $this->data;
        }

        /**
         * Moodle's base::get_name().
         *
         * @return string
         */
        public static function get_name() {
            return get_called_class();
        }

        /**
         * Moodle's base::get_description().
         *
         * @return string
         */
        public function get_description() {
            return 'Harness event ' . $this->data['eventname'];
        }

        /**
         * Moodle's base::trigger(): the log manager is the only observer here.
         */
        final public function trigger() {
            if ($this->triggered) {
                throw new \coding_exception('Event already triggered');
            }
            $this->triggered = true;
            get_log_manager()->process($this);
        }

        /**
         * Magic read access to data, as in Moodle ($event->other, $event->userid...).
         *
         * @param string $name
         * @return mixed
         */
        public function __get($name) {
            if (array_key_exists($name, $this->data)) {
                return $this->data[$name];
            }
            throw new \coding_exception("Accessing non-existent event property '$name'");
        }

        /**
         * IteratorAggregate.
         *
         * @return \ArrayIterator
         */
        public function getIterator(): \Iterator {
            return new \ArrayIterator($this->data);
        }
    }

    /** Moodle's unknown_logged: a restored event whose class does not exist on this site. */
    class unknown_logged extends base {
        /** Init. */
        protected function init() {
            throw new \coding_exception('unknown events cannot be instantiated');
        }
    }

    /** A read event at course level (as core's course_viewed). */
    class course_viewed extends base {
        /** Init. */
        protected function init() {
            $this->data['crud'] = 'r';
            $this->data['edulevel'] = self::LEVEL_PARTICIPATING;
        }
    }

    /** A login event (as core's user_loggedin): edulevel other, objecttable user. */
    class user_loggedin extends base {
        /** Init. */
        protected function init() {
            $this->data['objecttable'] = 'user';
            $this->data['crud'] = 'r';
            $this->data['edulevel'] = self::LEVEL_OTHER;
        }
    }

    /** A teaching event (as core's course_module_updated). */
    class course_module_updated extends base {
        /** Init. */
        protected function init() {
            $this->data['objecttable'] = 'course_modules';
            $this->data['crud'] = 'u';
            $this->data['edulevel'] = self::LEVEL_TEACHING;
        }
    }

    /** A user event with a related user (as core's user_profile_viewed). */
    class user_profile_viewed extends base {
        /** Init. */
        protected function init() {
            $this->data['objecttable'] = 'user';
            $this->data['crud'] = 'r';
            $this->data['edulevel'] = self::LEVEL_OTHER;
        }
    }
}

namespace mod_forum\event {

    /** A module event (as mod_forum's discussion_viewed). */
    class discussion_viewed extends \core\event\base {
        /** Init. */
        protected function init() {
            $this->data['objecttable'] = 'forum_discussions';
            $this->data['crud'] = 'r';
            $this->data['edulevel'] = self::LEVEL_PARTICIPATING;
        }
    }

    /** An event that can be anonymous (as mod_forum's post_created in an anonymous forum). */
    class post_created extends \core\event\base {
        /** Init. */
        protected function init() {
            $this->data['objecttable'] = 'forum_posts';
            $this->data['crud'] = 'c';
            $this->data['edulevel'] = self::LEVEL_PARTICIPATING;
        }
    }
}

namespace mod_quiz\event {

    /** A quiz event (as mod_quiz's attempt_submitted). */
    class attempt_submitted extends \core\event\base {
        /** Init. */
        protected function init() {
            $this->data['objecttable'] = 'quiz_attempts';
            $this->data['crud'] = 'u';
            $this->data['edulevel'] = self::LEVEL_PARTICIPATING;
        }
    }
}

namespace core\log {

    /** Moodle's \core\log\manager. */
    interface manager {
        /**
         * Readers.
         *
         * @param string|null $interface
         * @return reader[]
         */
        public function get_readers($interface = null);

        /**
         * End of request.
         */
        public function dispose();
    }

    /** Moodle's \core\log\reader. */
    interface reader {
        /**
         * Localised name.
         *
         * @return string
         */
        public function get_name();

        /**
         * Localised description.
         *
         * @return string
         */
        public function get_description();

        /**
         * Is the store logging?
         *
         * @return bool
         */
        public function is_logging();
    }

    /** Moodle's \core\log\sql_reader. */
    interface sql_reader extends reader {
        /**
         * Events matching a SQL fragment.
         *
         * @param string $selectwhere
         * @param array $params
         * @param string $sort
         * @param int $limitfrom
         * @param int $limitnum
         * @return \core\event\base[]
         */
        public function get_events_select($selectwhere, array $params, $sort, $limitfrom, $limitnum);

        /**
         * Count.
         *
         * @param string $selectwhere
         * @param array $params
         * @return int
         */
        public function get_events_select_count($selectwhere, array $params);

        /**
         * Exists.
         *
         * @param string $selectwhere
         * @param array $params
         * @return bool
         */
        public function get_events_select_exists(string $selectwhere, array $params): bool;

        /**
         * Iterator.
         *
         * @param string $selectwhere
         * @param array $params
         * @param string $sort
         * @param int $limitfrom
         * @param int $limitnum
         * @return \Traversable
         */
        public function get_events_select_iterator($selectwhere, array $params, $sort, $limitfrom, $limitnum);

        /**
         * One event from a row.
         *
         * @param \stdClass $data
         * @return \core\event\base|null
         */
        public function get_log_event($data);
    }
}

namespace tool_log\log {

    /** Moodle's \tool_log\log\store. */
    interface store {
        /**
         * Constructor.
         *
         * @param manager $manager
         */
        public function __construct(manager $manager);

        /**
         * End of request.
         */
        public function dispose();
    }

    /** Moodle's \tool_log\log\writer. */
    interface writer extends store {
        /**
         * Writes one event.
         *
         * @param \core\event\base $event
         */
        public function write(\core\event\base $event);
    }

    /**
     * Moodle's \tool_log\log\manager: instantiates the enabled stores once, feeds every event to the writers,
     * disposes them at shutdown.
     */
    class manager implements \core\log\manager {
        /** @var manager|null */
        protected static $instance = null;
        /** @var store[]|null */
        protected $stores = null;
        /** @var writer[] */
        protected $writers = [];
        /** @var \core\log\reader[] */
        protected $readers = [];

        /**
         * The request's manager (harness: what get_log_manager() returns).
         *
         * @param bool $forcereload
         * @return manager
         */
        public static function instance(bool $forcereload = false): manager {
            if (self::$instance === null || $forcereload) {
                self::$instance = new manager();
            }
            return self::$instance;
        }

        /**
         * Harness: a new request.
         */
        public static function reset_for_tests(): void {
            self::$instance = null;
        }

        /**
         * Moodle's manager::init().
         */
        protected function init() {
            if ($this->stores !== null) {
                return;
            }
            $this->stores = [];
            $enabled = get_config('tool_log', 'enabled_stores');
            foreach (array_filter(explode(',', (string) $enabled)) as $plugin) {
                $classname = '\\' . $plugin . '\\log\\store';
                if (class_exists($classname)) {
                    $store = new $classname($this);
                    $this->stores[$plugin] = $store;
                    if ($store instanceof writer) {
                        $this->writers[$plugin] = $store;
                    }
                    if ($store instanceof \core\log\reader) {
                        $this->readers[$plugin] = $store;
                    }
                }
            }
            // Moodle: \core_shutdown_manager::register_function([$this, 'dispose']).
            register_shutdown_function([$this, 'dispose']);
        }

        /**
         * Moodle's manager::process(): called for every event.
         *
         * @param \core\event\base $event
         */
        public function process(\core\event\base $event) {
            $this->init();
            foreach ($this->writers as $plugin => $writer) {
                try {
                    $writer->write($event);
                } catch (\Exception $e) {
                    debugging('Exception detected when logging event ' . $event->eventname . ' in ' . $plugin . ': '
                        . $e->getMessage(), DEBUG_NORMAL);
                }
            }
        }

        /**
         * Moodle's manager::get_readers().
         *
         * @param string|null $interface
         * @return \core\log\reader[]
         */
        public function get_readers($interface = null) {
            $this->init();
            $return = [];
            foreach ($this->readers as $plugin => $reader) {
                if (empty($interface) || ($reader instanceof $interface)) {
                    $return[$plugin] = $reader;
                }
            }
            return $return;
        }

        /**
         * Moodle's manager::dispose().
         */
        public function dispose() {
            if ($this->stores) {
                foreach ($this->stores as $store) {
                    $store->dispose();
                }
            }
            $this->stores = null;
            $this->readers = [];
            $this->writers = [];
        }
    }
}

namespace tool_log\helper {

    /** Moodle's \tool_log\helper\store. */
    trait store {
        /** @var string Frankenstyle component name. */
        protected $component;
        /** @var string name of the store. */
        protected $store;
        /** @var \tool_log\log\manager */
        protected $manager;

        /**
         * Moodle's helper_setup().
         *
         * @param \tool_log\log\manager $manager
         */
        protected function helper_setup(\tool_log\log\manager $manager) {
            $this->manager = $manager;
            $called = get_called_class();
            $parts = explode('\\', $called);
            if (!isset($parts[0]) || strpos($parts[0], 'logstore_') !== 0) {
                throw new \coding_exception("Store $called doesn't define classname in correct namespace.");
            }
            $this->component = $parts[0];
            $this->store = str_replace('logstore_', '', $this->component);
        }

        /**
         * Moodle's get_config().
         *
         * @param string $name
         * @param mixed $default
         * @return mixed
         */
        protected function get_config($name, $default = null) {
            $value = get_config($this->component, $name);
            if ($value !== false) {
                return $value;
            }
            return $default;
        }
    }

    /** Moodle's \tool_log\helper\reader. */
    trait reader {
        /**
         * Moodle's get_name().
         *
         * @return string
         */
        public function get_name() {
            if (get_string_manager()->string_exists('pluginname', $this->component)) {
                return get_string('pluginname', $this->component);
            }
            return $this->store;
        }

        /**
         * Moodle's get_description().
         *
         * @return string
         */
        public function get_description() {
            if (get_string_manager()->string_exists('pluginname_desc', $this->component)) {
                return get_string('pluginname_desc', $this->component);
            }
            return $this->store;
        }

        /**
         * Moodle's tweak_sort_by_id().
         *
         * @param string $sort
         * @return string
         */
        protected static function tweak_sort_by_id($sort) {
            if (empty($sort)) {
                $sort = "id ASC";
            } else if (stripos($sort, 'timecreated') === false) {
                $sort .= ", id ASC";
            } else if (stripos($sort, 'timecreated DESC') !== false) {
                $sort .= ", id DESC";
            } else {
                $sort .= ", id ASC";
            }
            return $sort;
        }

        /**
         * Moodle's decode_other().
         *
         * @param string|null $other
         * @return mixed
         */
        public static function decode_other(?string $other) {
            if ($other === 'N;' || preg_match('~^.:~', $other ?? '')) {
                return unserialize($other);
            }
            return json_decode($other ?? '', true);
        }
    }

    /**
     * Moodle's \tool_log\helper\buffered_writer: what the standard store captures (the reference for tests).
     */
    trait buffered_writer {
        /** @var array */
        protected $buffer = [];
        /** @var int */
        protected $buffersize;
        /** @var int */
        protected $count = 0;

        /**
         * Should the event be ignored?
         *
         * @param \core\event\base $event
         * @return bool
         */
        abstract protected function is_event_ignored(\core\event\base $event);

        /**
         * Moodle's buffered_writer::write().
         *
         * @param \core\event\base $event
         */
        public function write(\core\event\base $event) {
            global $PAGE;
            if ($this->is_event_ignored($event)) {
                return;
            }
            $entry = $event->get_data();
            if ($this->jsonformat) {
                $entry['other'] = json_encode($entry['other']);
            } else {
                $entry['other'] = serialize($entry['other']);
            }
            $entry['origin'] = $PAGE->requestorigin;
            $entry['ip'] = $PAGE->requestip;
            $entry['realuserid'] = \core\session\manager::is_loggedinas() ? $GLOBALS['USER']->realuser : null;
            $this->buffer[] = $entry;
            $this->count++;
            if (!isset($this->buffersize)) {
                $this->buffersize = $this->get_config('buffersize', 50);
            }
            if ($this->count >= $this->buffersize) {
                $this->flush();
            }
        }

        /**
         * Flush.
         */
        public function flush() {
            if ($this->count == 0) {
                return;
            }
            $events = $this->buffer;
            $this->count = 0;
            $this->buffer = [];
            $this->insert_event_entries($events);
        }

        /**
         * Writes the rows.
         *
         * @param array $evententries
         */
        abstract protected function insert_event_entries($evententries);

        /**
         * Dispose.
         */
        public function dispose() {
            $this->flush();
        }
    }
}

namespace core\session {

    /** Moodle's \core\session\manager (the "log in as" part). */
    class manager {
        /**
         * Moodle's is_loggedinas().
         *
         * @return bool
         */
        public static function is_loggedinas() {
            return !empty($GLOBALS['USER']->realuser);
        }

        /**
         * Moodle's get_realuser().
         *
         * @return \stdClass
         */
        public static function get_realuser() {
            if (self::is_loggedinas()) {
                return $_SESSION['REALUSER'];
            }
            return $GLOBALS['USER'];
        }
    }
}
