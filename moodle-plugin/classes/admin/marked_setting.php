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
 * Markers that let Moodle's show/hide rules hide a group of settings at once.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\admin;

defined('MOODLE_INTERNAL') || die();

/**
 * Moodle's show/hide script (admin_settingpage::hide_if()) hides the form item around every field of a given name.
 * A setting with markers carries a disabled, empty field named after each marker inside its form item, so that one
 * rule per marker hides every setting that carries it (one rule per group of settings rather than one per setting:
 * Moodle 4.5 hands the rules to its script as call arguments, which it wants under 1024 characters). Disabled fields
 * are never submitted.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
trait marked_setting {

    /** @var string[] marker names (hide_if('PLUGIN/MARKER', ...) hides this setting) */
    protected $markers = [];

    /**
     * Sets the markers of this setting.
     *
     * @param string[] $markers
     * @return self
     */
    public function set_markers(array $markers): self {
        $this->markers = $markers;
        return $this;
    }

    /**
     * The setting as Moodle renders it, with its markers inside its form item.
     *
     * @param mixed $data
     * @param string $query
     * @return string
     */
    public function output_html(#[\SensitiveParameter] $data, $query = '') {
        return $this->marked(parent::output_html($data, $query));
    }

    /**
     * Puts the markers inside the outermost element of a setting's HTML (its form item).
     *
     * @param string $html
     * @return string
     */
    protected function marked(string $html): string {
        $end = strrpos($html, '</div>');
        if (!$this->markers || $end === false) {
            return $html;
        }
        $fields = '';
        foreach ($this->markers as $marker) {
            $fields .= \html_writer::empty_tag('input', ['type' => 'hidden', 'disabled' => 'disabled',
                'name' => 's_' . $this->plugin . '_' . $marker, 'value' => '']);
        }
        return substr_replace($html, $fields, $end, 0);
    }
}
