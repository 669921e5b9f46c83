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
 * Facts shown on the status page.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * Gathers what the status page shows (kept out of status.php so that it can be tested).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class status {

    /**
     * Size and age of the spool (batches kept through an outage, and durable mode's journals).
     *
     * @param \stdClass $cfg plugin config
     * @return array|null ['files' => int, 'bytes' => int, 'oldest' => int unix time] or null when there is none
     */
    public static function spool_info(#[\SensitiveParameter] \stdClass $cfg): ?array {
        $dir = settings_definition::extension_config($cfg)['spool_dir'];
        if ($dir === '' || !is_dir($dir)) {
            return null;
        }
        $files = 0;
        $bytes = 0;
        $oldest = 0;
        $it = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator($dir, \FilesystemIterator::SKIP_DOTS));
        foreach ($it as $file) {
            if (!$file->isFile()) {
                continue;
            }
            $files++;
            $bytes += $file->getSize();
            $oldest = $oldest ? min($oldest, $file->getMTime()) : $file->getMTime();
        }
        return ['files' => $files, 'bytes' => $bytes, 'oldest' => $oldest];
    }

    /**
     * Is logstore_tsdb enabled in Manage log stores?
     *
     * @return bool
     */
    public static function is_enabled(): bool {
        $enabled = (string) get_config('tool_log', 'enabled_stores');
        return in_array('logstore_tsdb', array_map('trim', explode(',', $enabled)), true);
    }
}
