<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: admin settings tree, scheduled tasks, status checks, messages.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace {

    /** Moodle's part_of_admin_tree (marker). */
    interface part_of_admin_tree {
    }

    /** Moodle's admin_category. */
    class admin_category implements part_of_admin_tree {
        /** @var string */
        public $name;
        /** @var string */
        public $visiblename;
        /** @var part_of_admin_tree[] */
        public $children = [];

        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param bool $hidden
         */
        public function __construct($name, $visiblename, $hidden = false) {
            $this->name = $name;
            $this->visiblename = $visiblename;
        }
    }

    /** Moodle's admin_root (the part used: add()). */
    class admin_root extends admin_category {
        /** @var array parent => [part_of_admin_tree] */
        public $added = [];
        /** @var bool whether the settings themselves are loaded (Moodle: settings pages and search), not just navigation */
        public $fulltree;

        /**
         * Moodle's admin_root::__construct($fulltree).
         *
         * @param bool $fulltree
         */
        public function __construct($fulltree) {
            parent::__construct('root', 'Administration');
            $this->fulltree = $fulltree;
        }

        /**
         * Moodle's admin_root::add().
         *
         * @param string $parentname
         * @param part_of_admin_tree $something
         * @param string|null $beforesibling
         * @return bool
         */
        public function add($parentname, $something, $beforesibling = null) {
            if (!$something instanceof part_of_admin_tree) {
                throw new coding_exception('Not an admin tree part');
            }
            $this->added[$parentname][] = $something;
            return true;
        }
    }

    /** Moodle's admin_externalpage. */
    class admin_externalpage implements part_of_admin_tree {
        /** @var string */
        public $name;
        /** @var string */
        public $visiblename;
        /** @var string */
        public $url;
        /** @var array */
        public $req_capability;

        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|moodle_url $url
         * @param string|array $reqcapability
         * @param bool $hidden
         * @param mixed $context
         */
        public function __construct($name, $visiblename, $url, $reqcapability = 'moodle/site:config', $hidden = false,
                $context = null) {
            $this->name = $name;
            $this->visiblename = $visiblename;
            $this->url = $url instanceof moodle_url ? $url->out(false) : (string) $url;
            $this->req_capability = (array) $reqcapability;
        }
    }

    /** Moodle's admin_settingpage. */
    class admin_settingpage implements part_of_admin_tree {
        /** @var string */
        public $name;
        /** @var string */
        public $visiblename;
        /** @var stdClass settings by name */
        public $settings;

        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|array $reqcapability
         * @param bool $hidden
         * @param mixed $context
         */
        public function __construct($name, $visiblename, $reqcapability = 'moodle/site:config', $hidden = false,
                $context = null) {
            $this->name = $name;
            $this->visiblename = $visiblename;
            $this->settings = new stdClass();
        }

        /**
         * Moodle's add().
         *
         * @param admin_setting $setting
         * @return bool
         */
        public function add($setting) {
            if (!$setting instanceof admin_setting) {
                throw new coding_exception('error - not a setting');
            }
            $this->settings->{$setting->name} = $setting;
            return true;
        }
    }

    /** Moodle's admin_setting (the part used). */
    abstract class admin_setting {
        /** @var string */
        public $name;
        /** @var string|null */
        public $plugin;
        /** @var string */
        public $visiblename;
        /** @var string */
        public $description;
        /** @var mixed */
        public $defaultsetting;
        /** @var bool Moodle's admin_setting::$nosave: true for headings (nothing to store). */
        public $nosave = false;

        /**
         * Constructor.
         *
         * @param string $name "plugin/name" or "name"
         * @param string|lang_string $visiblename
         * @param string|lang_string $description
         * @param mixed $defaultsetting
         */
        public function __construct($name, $visiblename, $description, $defaultsetting) {
            if (strpos($name, '/') !== false) {
                [$this->plugin, $this->name] = explode('/', $name, 2);
            } else {
                $this->name = $name;
            }
            $this->visiblename = (string) $visiblename;
            $this->description = (string) $description;
            $this->defaultsetting = $defaultsetting;
        }

        /**
         * Moodle's config_read().
         *
         * @param string $name
         * @return mixed
         */
        public function config_read($name) {
            return get_config($this->plugin ?? 'core', $name);
        }

        /**
         * Moodle's config_write().
         *
         * @param string $name
         * @param mixed $value
         * @return bool
         */
        public function config_write($name, $value) {
            return set_config($name, $value, $this->plugin);
        }

        /**
         * Moodle's get_setting().
         *
         * @return mixed
         */
        public function get_setting() {
            $v = $this->config_read($this->name);
            return $v === false ? null : $v;
        }

        /**
         * Moodle's get_defaultsetting().
         *
         * @return mixed
         */
        public function get_defaultsetting() {
            return $this->defaultsetting;
        }

        /**
         * Moodle's write_setting().
         *
         * @param mixed $data
         * @return string '' or an error
         */
        public function write_setting($data) {
            return $this->config_write($this->name, $data) ? '' : 'Error';
        }

        /**
         * Moodle's output_html().
         *
         * @param mixed $data
         * @param string $query
         * @return string
         */
        public function output_html($data, $query = '') {
            return '<input name="s_' . $this->plugin . '_' . $this->name . '" value="' . s((string) $data) . '">';
        }
    }

    /** Moodle's admin_setting_heading. */
    class admin_setting_heading extends admin_setting {
        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $heading
         * @param string|lang_string $information
         */
        public function __construct($name, $heading, $information) {
            $this->nosave = true;
            parent::__construct($name, $heading, $information, '');
        }

        /**
         * Moodle's admin_setting_heading::get_setting(): always true (a heading is never a new setting).
         *
         * @return bool
         */
        public function get_setting() {
            return true;
        }

        /**
         * Moodle's admin_setting_heading::get_defaultsetting().
         *
         * @return bool
         */
        public function get_defaultsetting() {
            return true;
        }

        /**
         * Nothing to save.
         *
         * @param mixed $data
         * @return string
         */
        public function write_setting($data) {
            return '';
        }
    }

    /** Moodle's admin_setting_description. */
    class admin_setting_description extends admin_setting_heading {
    }

    /** Moodle's admin_setting_configtext. */
    class admin_setting_configtext extends admin_setting {
        /** @var mixed */
        public $paramtype;
        /** @var int */
        public $size;

        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|lang_string $description
         * @param mixed $defaultsetting
         * @param mixed $paramtype
         * @param int|null $size
         */
        public function __construct($name, $visiblename, $description, $defaultsetting, $paramtype = PARAM_RAW,
                $size = null) {
            $this->paramtype = $paramtype;
            $this->size = $size ?? 30;
            parent::__construct($name, $visiblename, $description, $defaultsetting);
        }

        /**
         * Moodle's validate(): true or an error string.
         *
         * @param string $data
         * @return true|string
         */
        public function validate($data) {
            // As Moodle: a /regex/ paramtype must match, PARAM_RAW takes anything, any other PARAM_* type takes only
            // a value that clean_param() leaves unchanged (so PARAM_RAW_TRIMMED refuses surrounding white space).
            if (preg_match('#^/.*/$#', (string) $this->paramtype)) {
                return preg_match($this->paramtype, (string) $data) ? true : get_string('validateerror', 'admin');
            }
            if ($this->paramtype === PARAM_RAW) {
                return true;
            }
            $cleaned = clean_param($data, $this->paramtype);
            return "$data" === "$cleaned" ? true : get_string('validateerror', 'admin');
        }

        /**
         * Moodle's write_setting(): validates first.
         *
         * @param mixed $data
         * @return string
         */
        public function write_setting($data) {
            if ($this->paramtype === PARAM_INT && $data === '') {
                $data = 0;
            }
            $validated = $this->validate($data);
            if ($validated !== true) {
                return $validated;
            }
            return parent::write_setting($data);
        }
    }

    /** Moodle's admin_setting_configpasswordunmask. */
    class admin_setting_configpasswordunmask extends admin_setting_configtext {
        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|lang_string $description
         * @param mixed $defaultsetting
         */
        public function __construct($name, $visiblename, $description, $defaultsetting) {
            parent::__construct($name, $visiblename, $description, $defaultsetting, PARAM_RAW, 30);
        }

        /**
         * Moodle prints the value into a masked input (type=password, unmask toggle).
         *
         * @param mixed $data
         * @param string $query
         * @return string
         */
        public function output_html($data, $query = '') {
            return '<input type="password" name="s_' . $this->plugin . '_' . $this->name . '" value="' . s((string) $data) . '">';
        }
    }

    /** Moodle's admin_setting_configtextarea. */
    class admin_setting_configtextarea extends admin_setting_configtext {
        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|lang_string $description
         * @param mixed $defaultsetting
         * @param mixed $paramtype
         * @param string $cols
         * @param string $rows
         */
        public function __construct($name, $visiblename, $description, $defaultsetting, $paramtype = PARAM_RAW,
                $cols = '60', $rows = '8') {
            parent::__construct($name, $visiblename, $description, $defaultsetting, $paramtype);
        }
    }

    /** Moodle's admin_setting_configselect. */
    class admin_setting_configselect extends admin_setting {
        /** @var array */
        public $choices;

        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|lang_string $description
         * @param mixed $defaultsetting
         * @param array $choices
         */
        public function __construct($name, $visiblename, $description, $defaultsetting, $choices) {
            $this->choices = $choices;
            parent::__construct($name, $visiblename, $description, $defaultsetting);
        }

        /**
         * Moodle's write_setting(): refuses a value that is not a choice.
         *
         * @param mixed $data
         * @return string
         */
        public function write_setting($data) {
            if (empty($this->choices)) {
                return '';
            }
            if (!array_key_exists($data, $this->choices)) {
                // Moodle ignores a value that is not a choice: nothing is stored, and no error is shown.
                return '';
            }
            return parent::write_setting($data);
        }
    }

    /** Moodle's admin_setting_configcheckbox. */
    class admin_setting_configcheckbox extends admin_setting {
        /** @var string */
        public $yes;
        /** @var string */
        public $no;

        /**
         * Constructor.
         *
         * @param string $name
         * @param string|lang_string $visiblename
         * @param string|lang_string $description
         * @param string $defaultsetting
         * @param string $yes
         * @param string $no
         */
        public function __construct($name, $visiblename, $description, $defaultsetting, $yes = '1', $no = '0') {
            $this->yes = $yes;
            $this->no = $no;
            parent::__construct($name, $visiblename, $description, $defaultsetting);
        }

        /**
         * Moodle's write_setting().
         *
         * @param mixed $data
         * @return string
         */
        public function write_setting($data) {
            return parent::write_setting(((string) $data === $this->yes) ? $this->yes : $this->no);
        }
    }

    /**
     * Moodle's admin_apply_default_settings() for one settings page (install, upgrade, upgradesettings.php): every
     * setting that is not a heading gets write_setting(get_defaultsetting()); with $unconditional false, only the
     * settings whose get_setting() is null.
     *
     * @param admin_settingpage $node
     * @param bool $unconditional
     */
    function admin_apply_default_settings($node = null, $unconditional = true) {
        foreach ($node->settings as $setting) {
            if ($setting->nosave) {
                continue;
            }
            if (!$unconditional && !is_null($setting->get_setting())) {
                continue;
            }
            $defaultsetting = $setting->get_defaultsetting();
            if (is_null($defaultsetting)) {
                continue;
            }
            $setting->write_setting($defaultsetting);
        }
    }

    /**
     * Moodle's any_new_admin_settings() for one settings page: true while a setting's get_setting() is null, which
     * sends administrators to the "New settings" page (admin/upgradesettings.php) on every visit of admin/index.php.
     *
     * @param admin_settingpage $node
     * @return bool
     */
    function any_new_admin_settings($node) {
        foreach ($node->settings as $setting) {
            if ($setting->get_setting() === null) {
                return true;
            }
        }
        return false;
    }

    /**
     * HTML escaping as Moodle's s().
     *
     * @param string $var
     * @return string
     */
    function s($var) {
        return htmlspecialchars((string) $var, ENT_QUOTES | ENT_HTML401 | ENT_SUBSTITUTE);
    }
}

namespace core\task {

    /** Moodle's \core\task\task_base (the part used). */
    abstract class task_base {
        /**
         * The task's component.
         *
         * @return string
         */
        public function get_component() {
            return 'logstore_tsdb';
        }
    }

    /** Moodle's \core\task\scheduled_task. */
    abstract class scheduled_task extends task_base {
        /**
         * Name.
         *
         * @return string
         */
        abstract public function get_name();

        /**
         * Run.
         */
        abstract public function execute();
    }
}

namespace core\check {

    /** Moodle's \core\check\result. */
    class result {
        const NA = 'na';
        const OK = 'ok';
        const INFO = 'info';
        const UNKNOWN = 'unknown';
        const WARNING = 'warning';
        const ERROR = 'error';
        const CRITICAL = 'critical';
        /** @var string */
        protected $status;
        /** @var string */
        protected $summary;
        /** @var string */
        protected $details;

        /**
         * Constructor.
         *
         * @param string $status
         * @param string $summary
         * @param string $details
         */
        public function __construct($status, $summary, $details = '') {
            $this->status = $status;
            $this->summary = $summary;
            $this->details = $details;
        }

        /**
         * Status.
         *
         * @return string
         */
        public function get_status(): string {
            return $this->status;
        }

        /**
         * Summary.
         *
         * @return string
         */
        public function get_summary(): string {
            return $this->summary;
        }

        /**
         * Details.
         *
         * @return string
         */
        public function get_details(): string {
            return $this->details;
        }
    }

    /** Moodle's \core\check\check. */
    abstract class check {
        /**
         * Result.
         *
         * @return result
         */
        abstract public function get_result(): result;

        /**
         * Id.
         *
         * @return string
         */
        public function get_id(): string {
            $parts = explode('\\', get_class($this));
            return end($parts);
        }
    }
}

namespace core\hook\output {

    /** Moodle's before_standard_top_of_body_html_generation hook (4.4+). */
    final class before_standard_top_of_body_html_generation {
        /** @var string */
        protected $output = '';

        /**
         * Moodle's add_html().
         *
         * @param string|null $output
         */
        public function add_html(?string $output): void {
            if ($output) {
                $this->output .= $output;
            }
        }

        /**
         * Moodle's get_output().
         *
         * @return string
         */
        public function get_output(): string {
            return $this->output;
        }
    }
}

namespace core\message {

    /** Moodle's \core\message\message (public properties set by the sender). */
    #[\AllowDynamicProperties]
    class message {
    }
}
