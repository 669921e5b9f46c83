<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The reader half of logstore_standard, over mdl_logstore_standard_log through the harness $DB (real PostgreSQL): the
 * reference every answer of the tsdb reader is compared with.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_standardref;

/**
 * logstore_standard's get_events_select*() and get_log_event(), as in Moodle 5.1.
 */
class reader implements \core\log\sql_reader {
    use \tool_log\helper\reader;

    /** @var string */
    protected $component = 'logstore_tsdb';

    /** @var string */
    protected $store = 'tsdb';

    /**
     * Always logging.
     *
     * @return bool
     */
    public function is_logging() {
        return true;
    }

    /**
     * Rows.
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return array
     */
    protected function rows($selectwhere, array $params, $sort, $limitfrom, $limitnum) {
        global $DB;
        return $DB->get_records_select('logstore_standard_log', $selectwhere, $params, self::tweak_sort_by_id($sort), '*',
            $limitfrom, $limitnum);
    }

    /**
     * Events.
     *
     * @param string $selectwhere
     * @param array $params
     * @param string $sort
     * @param int $limitfrom
     * @param int $limitnum
     * @return array
     */
    public function get_events_select($selectwhere, array $params, $sort, $limitfrom, $limitnum) {
        $events = [];
        foreach ($this->rows($selectwhere, $params, $sort, $limitfrom, $limitnum) as $data) {
            if ($event = $this->get_log_event($data)) {
                $events[$data->id] = $event;
            }
        }
        return $events;
    }

    /**
     * Count.
     *
     * @param string $selectwhere
     * @param array $params
     * @return int
     */
    public function get_events_select_count($selectwhere, array $params) {
        global $DB;
        return $DB->count_records_select('logstore_standard_log', $selectwhere, $params);
    }

    /**
     * Exists.
     *
     * @param string $selectwhere
     * @param array $params
     * @return bool
     */
    public function get_events_select_exists(string $selectwhere, array $params): bool {
        return $this->get_events_select_count($selectwhere, $params) > 0;
    }

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
    public function get_events_select_iterator($selectwhere, array $params, $sort, $limitfrom, $limitnum) {
        return new \ArrayIterator(array_values($this->get_events_select($selectwhere, $params, $sort, $limitfrom, $limitnum)));
    }

    /**
     * logstore_standard's get_log_event().
     *
     * @param \stdClass $data
     * @return \core\event\base|null
     */
    public function get_log_event($data) {
        $extra = ['origin' => $data->origin, 'ip' => $data->ip, 'realuserid' => $data->realuserid];
        $data = (array) $data;
        $data['other'] = self::decode_other($data['other']);
        if ($data['other'] === false) {
            $data['other'] = [];
        }
        unset($data['origin'], $data['ip'], $data['realuserid'], $data['id']);
        if (!$event = \core\event\base::restore($data, $extra)) {
            return null;
        }
        return $event;
    }
}
