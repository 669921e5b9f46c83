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
 * A log query this backend cannot answer exactly.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\reader;

defined('MOODLE_INTERNAL') || die();

/**
 * Thrown instead of answering a query with rows that could be wrong (InfluxDB readers, the file backend).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class unsupported_query extends \moodle_exception {

    /** @var string What could not be translated. */
    public $reason;

    /**
     * Constructor.
     *
     * @param string $reason what could not be translated, e.g. 'operator "LIKE"'
     * @param string $backend the configured backend
     * @param string $identifier the message: readerunsupported (no exact answer) or readertooslow (an exact answer
     *     would read the whole store)
     */
    public function __construct(string $reason, string $backend = 'influxdb', string $identifier = 'readerunsupported') {
        $this->reason = $reason;
        parent::__construct($identifier, 'logstore_tsdb', '', (object) ['backend' => $backend, 'reason' => $reason]);
    }
}
