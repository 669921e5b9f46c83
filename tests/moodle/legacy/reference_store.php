<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * A store built like logstore_standard (buffered_writer trait, JSON other) that keeps its rows in memory: the
 * reference of what a store must capture.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_reference\log;

/**
 * Reference store.
 */
class store implements \tool_log\log\writer {
    use \tool_log\helper\store,
        \tool_log\helper\buffered_writer;

    /** @var array rows "inserted" */
    public static $rows = [];
    /** @var bool */
    protected $jsonformat = true;

    /**
     * Constructor.
     *
     * @param \tool_log\log\manager $manager
     */
    public function __construct(\tool_log\log\manager $manager) {
        $this->helper_setup($manager);
        $this->buffersize = 1;
        self::$rows = [];
    }

    /**
     * Standard store's rule.
     *
     * @param \core\event\base $event
     * @return bool
     */
    protected function is_event_ignored(\core\event\base $event) {
        return false;
    }

    /**
     * "Inserts".
     *
     * @param array $evententries
     */
    protected function insert_event_entries($evententries) {
        foreach ($evententries as $e) {
            self::$rows[] = $e;
        }
    }
}
