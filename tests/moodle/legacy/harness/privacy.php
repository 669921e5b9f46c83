<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: the privacy API classes a log store uses.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace core_privacy\local\metadata {

    /** Moodle's metadata provider interface. */
    interface provider {
        /**
         * Metadata.
         *
         * @param collection $collection
         * @return collection
         */
        public static function get_metadata(collection $collection): collection;
    }

    /** Moodle's collection. */
    class collection {
        /** @var string */
        protected $component;
        /** @var array */
        protected $collection = [];

        /**
         * Constructor.
         *
         * @param string $component
         */
        public function __construct($component) {
            $this->component = $component;
        }

        /**
         * Moodle's add_external_location_link().
         *
         * @param string $name
         * @param array $privacyfields
         * @param string $summary
         * @return collection
         */
        public function add_external_location_link($name, array $privacyfields, $summary = '') {
            $this->collection[] = new types\external_location($name, $privacyfields, $summary);
            return $this;
        }

        /**
         * Moodle's add_database_table().
         *
         * @param string $name
         * @param array $privacyfields
         * @param string $summary
         * @return collection
         */
        public function add_database_table($name, array $privacyfields, $summary = '') {
            $this->collection[] = new types\database_table($name, $privacyfields, $summary);
            return $this;
        }

        /**
         * Moodle's get_collection().
         *
         * @return types\type[]
         */
        public function get_collection() {
            return $this->collection;
        }

        /**
         * Moodle's get_component().
         *
         * @return string
         */
        public function get_component() {
            return $this->component;
        }
    }
}

namespace core_privacy\local\metadata\types {

    /** Moodle's type interface. */
    interface type {
        /**
         * Name.
         *
         * @return string
         */
        public function get_name();

        /**
         * Fields.
         *
         * @return array
         */
        public function get_privacy_fields();

        /**
         * Summary.
         *
         * @return string
         */
        public function get_summary();
    }

    /** Shared implementation. */
    abstract class base_type implements type {
        /** @var string */
        protected $name;
        /** @var array */
        protected $privacyfields;
        /** @var string */
        protected $summary;

        /**
         * Constructor.
         *
         * @param string $name
         * @param array $privacyfields
         * @param string $summary
         */
        public function __construct($name, array $privacyfields = [], $summary = '') {
            $this->name = $name;
            $this->privacyfields = $privacyfields;
            $this->summary = $summary;
        }

        /**
         * Name.
         *
         * @return string
         */
        public function get_name() {
            return $this->name;
        }

        /**
         * Fields.
         *
         * @return array
         */
        public function get_privacy_fields() {
            return $this->privacyfields;
        }

        /**
         * Summary.
         *
         * @return string
         */
        public function get_summary() {
            return $this->summary;
        }
    }

    /** Moodle's external_location. */
    class external_location extends base_type {
    }

    /** Moodle's database_table. */
    class database_table extends base_type {
    }
}

namespace core_privacy\local\request {

    /** Moodle's contextlist. */
    class contextlist implements \Countable {
        /** @var int[] */
        protected $contextids = [];
        /** @var string */
        protected $component = '';

        /**
         * Moodle's add_from_sql(): runs the query on Moodle's database.
         *
         * @param string $sql
         * @param array $params
         * @return contextlist
         */
        public function add_from_sql(string $sql, array $params): contextlist {
            global $DB;
            foreach ($DB->get_fieldset_sql($sql, $params) as $id) {
                $this->contextids[] = (int) $id;
            }
            $this->contextids = array_values(array_unique($this->contextids));
            return $this;
        }

        /**
         * Moodle's add_system_context().
         *
         * @return contextlist
         */
        public function add_system_context(): contextlist {
            $this->contextids[] = \context_system::instance()->id;
            return $this;
        }

        /**
         * Moodle's get_contextids().
         *
         * @return int[]
         */
        public function get_contextids(): array {
            return $this->contextids;
        }

        /**
         * Moodle's get_contexts().
         *
         * @return \context[]
         */
        public function get_contexts(): array {
            return array_map(function($id) {
                return \context::instance_by_id($id);
            }, $this->contextids);
        }

        /**
         * Moodle's set_component().
         *
         * @param string $component
         */
        public function set_component($component) {
            $this->component = $component;
        }

        /**
         * Countable.
         *
         * @return int
         */
        public function count(): int {
            return count($this->contextids);
        }
    }

    /** Moodle's approved_contextlist. */
    class approved_contextlist extends contextlist {
        /** @var \stdClass */
        protected $user;

        /**
         * Constructor.
         *
         * @param \stdClass $user
         * @param string $component
         * @param array $contextids
         */
        public function __construct(\stdClass $user, string $component, array $contextids) {
            $this->user = $user;
            $this->component = $component;
            $this->contextids = array_map('intval', $contextids);
        }

        /**
         * Moodle's get_user().
         *
         * @return \stdClass
         */
        public function get_user(): \stdClass {
            return $this->user;
        }
    }

    /** Moodle's userlist. */
    class userlist implements \Countable {
        /** @var \context */
        protected $context;
        /** @var string */
        protected $component;
        /** @var int[] */
        protected $userids = [];

        /**
         * Constructor.
         *
         * @param \context $context
         * @param string $component
         */
        public function __construct(\context $context, string $component) {
            $this->context = $context;
            $this->component = $component;
        }

        /**
         * Moodle's add_users().
         *
         * @param int[] $userids
         * @return userlist
         */
        public function add_users(array $userids): userlist {
            $this->userids = array_values(array_unique(array_merge($this->userids, array_map('intval', $userids))));
            return $this;
        }

        /**
         * Moodle's add_user().
         *
         * @param int $userid
         * @return userlist
         */
        public function add_user(int $userid): userlist {
            return $this->add_users([$userid]);
        }

        /**
         * Moodle's get_userids().
         *
         * @return int[]
         */
        public function get_userids(): array {
            return $this->userids;
        }

        /**
         * Moodle's get_context().
         *
         * @return \context
         */
        public function get_context(): \context {
            return $this->context;
        }

        /**
         * Moodle's get_component().
         *
         * @return string
         */
        public function get_component(): string {
            return $this->component;
        }

        /**
         * Countable.
         *
         * @return int
         */
        public function count(): int {
            return count($this->userids);
        }
    }

    /** Moodle's approved_userlist. */
    class approved_userlist extends userlist {
        /**
         * Constructor.
         *
         * @param \context $context
         * @param string $component
         * @param array $userids
         */
        public function __construct(\context $context, string $component, array $userids) {
            parent::__construct($context, $component);
            $this->add_users($userids);
        }
    }

    /** Moodle's transform (the part used). */
    class transform {
        /**
         * Moodle's transform::datetime().
         *
         * @param int $datetime
         * @return string
         */
        public static function datetime($datetime) {
            return gmdate('l, j F Y, g:i A', (int) $datetime);
        }

        /**
         * Moodle's transform::yesno().
         *
         * @param bool $value
         * @return string
         */
        public static function yesno($value) {
            return $value ? 'Yes' : 'No';
        }

        /**
         * Moodle's transform::user().
         *
         * @param int $userid
         * @return int
         */
        public static function user(int $userid) {
            return $userid;
        }
    }

    /** Moodle's writer (harness: keeps exports in memory per context). */
    class writer {
        /** @var content_writer|null */
        protected static $writer = null;

        /**
         * Moodle's writer::with_context().
         *
         * @param \context $context
         * @return content_writer
         */
        public static function with_context(\context $context): content_writer {
            if (!self::$writer) {
                self::$writer = new content_writer();
            }
            return self::$writer->set_context($context);
        }

        /**
         * Harness: the test content writer.
         *
         * @return content_writer
         */
        public static function harness(): content_writer {
            if (!self::$writer) {
                self::$writer = new content_writer();
            }
            return self::$writer;
        }

        /**
         * Harness: forget exports.
         */
        public static function reset(): void {
            self::$writer = null;
        }
    }

    /** Moodle's content_writer (as \core_privacy\tests\request\content_writer: export_data() and get_data()). */
    class content_writer {
        /** @var \context */
        protected $context;
        /** @var array contextid => [path => data] */
        public $data = [];

        /**
         * Moodle's set_context().
         *
         * @param \context $context
         * @return content_writer
         */
        public function set_context(\context $context): content_writer {
            $this->context = $context;
            return $this;
        }

        /**
         * Moodle's export_data().
         *
         * @param array $subcontext
         * @param \stdClass $data
         * @return content_writer
         */
        public function export_data(array $subcontext, \stdClass $data): content_writer {
            $this->data[$this->context->id][implode('/', $subcontext)] = $data;
            return $this;
        }

        /**
         * As the test writer's get_data().
         *
         * @param \context $context
         * @param array $subcontext
         * @return \stdClass|array
         */
        public function get_data_in(\context $context, array $subcontext = []) {
            return $this->data[$context->id][implode('/', $subcontext)] ?? [];
        }
    }
}

namespace core_privacy\local\request {

    /** Moodle's data_provider (marker). */
    interface data_provider {
    }

    /** Moodle's shared_data_provider (marker). */
    interface shared_data_provider extends data_provider {
    }

    /** Moodle's userlist_provider (marker). */
    interface userlist_provider {
    }

    /** Moodle's shared_userlist_provider (marker). */
    interface shared_userlist_provider extends userlist_provider {
    }
}

namespace core_privacy\local\request\plugin {

    /** Moodle's subplugin_provider (marker). */
    interface subplugin_provider extends \core_privacy\local\request\shared_data_provider {
    }
}

namespace tool_log\local\privacy {

    /** Moodle's logstore_provider. */
    interface logstore_provider extends \core_privacy\local\request\plugin\subplugin_provider {
        /**
         * Add contexts.
         *
         * @param \core_privacy\local\request\contextlist $contextlist
         * @param int $userid
         */
        public static function add_contexts_for_userid(\core_privacy\local\request\contextlist $contextlist, $userid);

        /**
         * Export.
         *
         * @param \core_privacy\local\request\approved_contextlist $contextlist
         */
        public static function export_user_data(\core_privacy\local\request\approved_contextlist $contextlist);

        /**
         * Delete context.
         *
         * @param \context $context
         */
        public static function delete_data_for_all_users_in_context(\context $context);

        /**
         * Delete user.
         *
         * @param \core_privacy\local\request\approved_contextlist $contextlist
         */
        public static function delete_data_for_user(\core_privacy\local\request\approved_contextlist $contextlist);
    }

    /** Moodle's logstore_userlist_provider. */
    interface logstore_userlist_provider extends
            \core_privacy\local\request\plugin\subplugin_provider,
            \core_privacy\local\request\shared_userlist_provider {
        /**
         * Add users.
         *
         * @param \core_privacy\local\request\userlist $userlist
         */
        public static function add_userids_for_context(\core_privacy\local\request\userlist $userlist);

        /**
         * Delete users.
         *
         * @param \core_privacy\local\request\approved_userlist $userlist
         */
        public static function delete_data_for_userlist(\core_privacy\local\request\approved_userlist $userlist);
    }
}
