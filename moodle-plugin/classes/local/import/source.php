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
 * A stream of logstore_standard_log rows in increasing id order (the row id for the table, the row number for a file
 * without an id column), read in chunks. A position (the last id read, plus a byte offset for files) lets a later run
 * continue where an earlier one stopped.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
abstract class source {

    /** @var string[] The columns of logstore_standard_log besides id, in the table's order (tsdb_import()'s). */
    const COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel', 'contextid',
        'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other', 'timecreated',
        'origin', 'ip', 'realuserid'];

    /**
     * A stable identity of the source and how it is read (the import position is kept per source and target).
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
     * Where the rows come from: the imported events' identity (their producer) is derived from it, so the same row
     * imported twice, by any run, is stored once.
     *
     * @return string
     */
    abstract public function identity(): string;

    /**
     * The rows after a position, in id order: every row (the time window is applied by tsdb_import(), which must see
     * the rows it passes over).
     *
     * @param int $afterid rows with a larger id (0: from the start)
     * @param int $afteroffset where the row after $afterid starts (files; 0 = unknown)
     * @param int $limit at most this many rows
     * @return array ['rows' => COPY text lines or row arrays with their id, 'end' => bool (nothing after them),
     *               'offset' => position after the last row (files)]
     */
    abstract public function read(int $afterid, int $afteroffset, int $limit): array;

    /**
     * How many rows are left after a position (for the progress bar's ETA and the final check).
     *
     * @param int $afterid
     * @param int|null $lastid only up to this id
     * @return int|null null when it cannot be known without reading everything
     */
    abstract public function count_after(int $afterid, ?int $lastid = null): ?int;

    /**
     * Leaves out rows an import by the plugin's previous version already wrote (with another identity).
     *
     * @param array $rectangles [[first id, last id, from|null, to|null], ...]
     */
    abstract public function set_exclusions(array $rectangles): void;

    /**
     * Closes files.
     */
    public function close(): void {
    }
}
