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
 * Where imported log rows come from.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\import;

defined('MOODLE_INTERNAL') || die();

/**
 * A stream of logstore_standard_log rows, each with a key that increases along the stream (the row id for the
 * table, the row number for a file), read in chunks. A position (key, plus a byte offset for files) lets a later run
 * continue where an earlier one stopped.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
abstract class source {

    /** @var string[] The columns of logstore_standard_log besides id. */
    const COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel', 'contextid',
        'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other', 'timecreated',
        'origin', 'ip', 'realuserid'];

    /**
     * A stable identity of the source (the import state is kept per source).
     *
     * @return string
     */
    abstract public function descriptor(): string;

    /**
     * Human-readable name.
     *
     * @return string
     */
    abstract public function name(): string;

    /**
     * Rows after a position, within a time window, in key order.
     *
     * @param int $afterkey rows with a larger key (0: from the start)
     * @param int $afteroffset where the row after $afterkey starts (files; 0 = unknown, scan)
     * @param int $limit at most this many rows
     * @param int|null $from timecreated >= from
     * @param int|null $to timecreated < to
     * @return array ['rows' => [[key, row array, offset after the row], ...], 'end' => bool (nothing after the last row)]
     */
    abstract public function read(int $afterkey, int $afteroffset, int $limit, ?int $from, ?int $to): array;

    /**
     * Number of rows in a time window and key range (for progress and the final check).
     *
     * @param int|null $from
     * @param int|null $to
     * @param int $afterkey only keys above this
     * @param int|null $lastkey only keys up to this
     * @return int|null null when it cannot be known without reading everything
     */
    abstract public function count(?int $from, ?int $to, int $afterkey = 0, ?int $lastkey = null): ?int;

    /**
     * Closes files.
     */
    public function close(): void {
    }
}
