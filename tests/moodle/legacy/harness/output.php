<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: the page/output API an admin page uses (enough to run status.php and look at its HTML).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace core {

    /** Moodle's \core\chart_series. */
    class chart_series {
        /** @var string */
        public $label;
        /** @var array */
        public $values;

        /**
         * Constructor.
         *
         * @param string $label
         * @param array $values
         */
        public function __construct($label, $values) {
            $this->label = $label;
            $this->values = $values;
        }
    }

    /** Moodle's \core\chart_base (the part used). */
    class chart_base {
        /** @var chart_series[] */
        public $series = [];
        /** @var string[] */
        public $labels = [];

        /**
         * Moodle's add_series().
         *
         * @param chart_series $serie
         */
        public function add_series(chart_series $serie) {
            $this->series[] = $serie;
        }

        /**
         * Moodle's set_labels().
         *
         * @param array $labels
         */
        public function set_labels(array $labels) {
            $this->labels = $labels;
        }
    }

    /** Moodle's \core\chart_line. */
    class chart_line extends chart_base {
    }
}

namespace {

    /** Harness: what admin pages did. */
    class harness_page {
        /** @var array */
        public static $calls = [];
    }

    /**
     * Moodle's admin_externalpage_setup().
     *
     * @param string $section
     * @param string $extrabutton
     * @param array|null $extraurlparams
     * @param string $actualurl
     * @param array $options
     */
    function admin_externalpage_setup($section, $extrabutton = '', ?array $extraurlparams = null, $actualurl = '',
            array $options = []) {
        harness_page::$calls[] = ['admin_externalpage_setup', $section];
        if (!is_siteadmin()) {
            throw new require_login_exception('accessdenied', 'admin');
        }
    }

    /**
     * Moodle's require_admin().
     */
    function require_admin() {
        harness_page::$calls[] = ['require_admin'];
        if (!is_siteadmin()) {
            throw new require_login_exception('accessdenied', 'admin');
        }
    }

    /**
     * Moodle's optional_param().
     *
     * @param string $parname
     * @param mixed $default
     * @param string $type
     * @return mixed
     */
    function optional_param($parname, $default, $type) {
        if (!isset($_POST[$parname]) && !isset($_GET[$parname])) {
            return $default;
        }
        return clean_param($_POST[$parname] ?? $_GET[$parname], $type);
    }

    /**
     * Moodle's sesskey().
     *
     * @return string
     */
    function sesskey() {
        return 'harnesssesskey';
    }

    /**
     * Moodle's require_sesskey().
     */
    function require_sesskey() {
        if (optional_param('sesskey', '', PARAM_RAW) !== sesskey()) {
            throw new moodle_exception('invalidsesskey');
        }
    }

    /**
     * Moodle's userdate().
     *
     * @param int $date
     * @param string $format
     * @return string
     */
    function userdate($date, $format = '') {
        return gmdate($format === '%H:%M' ? 'H:i' : 'Y-m-d H:i:s', (int) $date);
    }

    /**
     * Moodle's display_size().
     *
     * @param int $size
     * @return string
     */
    function display_size($size) {
        return $size . ' bytes';
    }

    /**
     * Moodle's format_time().
     *
     * @param int $totalsecs
     * @return string
     */
    function format_time($totalsecs) {
        return $totalsecs . ' secs';
    }

    /** Moodle's html_table. */
    class html_table {
        /** @var array */
        public $head = [];
        /** @var array */
        public $data = [];
    }

    /**
     * Harness output: the methods of core_renderer an admin page calls.
     */
    class harness_renderer extends core_renderer {
        /**
         * Header.
         *
         * @return string
         */
        public function header() {
            return "<html><body>\n";
        }

        /**
         * Footer.
         *
         * @return string
         */
        public function footer() {
            return "</body></html>\n";
        }

        /**
         * Heading.
         *
         * @param string $text
         * @param int $level
         * @return string
         */
        public function heading($text, $level = 2) {
            return "<h$level>$text</h$level>\n";
        }

        /**
         * Single button.
         *
         * @param moodle_url|string $url
         * @param string $label
         * @param string $method
         * @return string
         */
        public function single_button($url, $label, $method = 'post') {
            return '<form method="' . s($method) . '" action="' . s((string) $url) . '"><button>' . s($label) . "</button></form>\n";
        }

        /**
         * Render.
         *
         * @param object $widget
         * @return string
         */
        public function render($widget) {
            if ($widget instanceof \core\chart_base) {
                return '<div class="chart" data-chart="' . s(json_encode(['labels' => $widget->labels,
                    'series' => $widget->series])) . "\"></div>\n";
            }
            throw new coding_exception('Cannot render ' . get_class($widget));
        }
    }
}
