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
 * Events built one by one from a stream of rows.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\reader;

defined('MOODLE_INTERNAL') || die();

/**
 * What \core\dml\recordset_walk is to the standard store: walks rows and hands out the events built from them,
 * skipping rows that give no event. close() releases the rows (a server-side cursor) early.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class event_iterator implements \Iterator {

    /** @var \Generator|null */
    protected $rows;

    /** @var callable row => event or null */
    protected $builder;

    /** @var \core\event\base|null */
    protected $current = null;

    /** @var mixed */
    protected $key = null;

    /** @var bool */
    protected $started = false;

    /**
     * Constructor.
     *
     * @param \Generator $rows
     * @param callable $builder
     */
    public function __construct(\Generator $rows, callable $builder) {
        $this->rows = $rows;
        $this->builder = $builder;
    }

    /**
     * Moves to the next row that gives an event.
     */
    protected function fetch(): void {
        $this->current = null;
        $this->key = null;
        while ($this->rows !== null && $this->rows->valid()) {
            $row = $this->rows->current();
            $this->rows->next();
            $event = ($this->builder)($row);
            if ($event) {
                $this->current = $event;
                $this->key = $row->id ?? $row->time_ns ?? null;
                return;
            }
        }
    }

    /**
     * Starts the walk (once: the rows are a stream).
     */
    public function rewind(): void {
        if (!$this->started) {
            $this->started = true;
            $this->fetch();
        }
    }

    /**
     * The current event.
     *
     * @return \core\event\base|null
     */
    #[\ReturnTypeWillChange]
    public function current() {
        return $this->current;
    }

    /**
     * The current row's id.
     *
     * @return mixed
     */
    #[\ReturnTypeWillChange]
    public function key() {
        return $this->key;
    }

    /**
     * Next event.
     */
    public function next(): void {
        if (!$this->started) {
            $this->rewind();
        }
        $this->fetch();
    }

    /**
     * Is there a current event?
     *
     * @return bool
     */
    public function valid(): bool {
        if (!$this->started) {
            $this->rewind();
        }
        return $this->current !== null;
    }

    /**
     * Releases the rows.
     */
    public function close(): void {
        $this->rows = null;
        $this->current = null;
    }
}
