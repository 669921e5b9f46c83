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
 * Progress bar, rate and ETA of the import on a terminal.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\import;

defined('MOODLE_INTERNAL') || die();

/**
 * One line, redrawn in place on a terminal (`\r`), or printed every few seconds when the output is a file or a pipe:
 * `[#########...........]  45.2%  123,456 / 273,000 rows  12,345 rows/s  ETA 0:00:12`.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class progress {

    /** @var resource */
    protected $out;

    /** @var bool */
    protected $tty;

    /** @var float */
    protected $start;

    /** @var float */
    protected $lastprint = 0.0;

    /** @var int Seconds between lines when not on a terminal. */
    protected $every;

    /** @var string The last line (tests). */
    public $lastline = '';

    /** @var int Lines printed. */
    public $lines = 0;

    /**
     * Constructor.
     *
     * @param resource|null $out default STDOUT
     * @param bool|null $tty default: detected
     * @param int $every
     */
    public function __construct($out = null, ?bool $tty = null, int $every = 5) {
        $this->out = $out ?? (defined('STDOUT') ? STDOUT : fopen('php://output', 'w'));
        $this->tty = $tty ?? (function_exists('posix_isatty') && @posix_isatty($this->out));
        $this->start = microtime(true);
        $this->every = $every;
    }

    /**
     * Formats one progress line.
     *
     * @param int $done units done
     * @param int|null $total units in all (null: unknown)
     * @param int $rows rows handled so far (for the rate)
     * @param float $elapsed seconds
     * @param string $unit
     * @return string
     */
    public static function line(int $done, ?int $total, int $rows, float $elapsed, string $unit = 'rows'): string {
        $rate = $elapsed > 0 ? $rows / $elapsed : 0.0;
        if ($total !== null && $total > 0) {
            $fraction = min(1.0, max(0.0, $done / $total));
            $width = 30;
            $filled = (int) floor($fraction * $width);
            $bar = '[' . str_repeat('#', $filled) . str_repeat('.', $width - $filled) . ']';
            $eta = ($fraction > 0 && $fraction < 1) ? self::duration($elapsed / $fraction - $elapsed) : ($fraction >= 1 ? '0:00:00'
                : '?');
            return sprintf('%s %5.1f%%  %s / %s %s  %s rows/s  ETA %s', $bar, $fraction * 100, number_format($done),
                number_format($total), $unit, number_format($rate), $eta);
        }
        return sprintf('%s %s  %s rows/s  %s', number_format($done), $unit, number_format($rate), self::duration($elapsed));
    }

    /**
     * H:MM:SS.
     *
     * @param float $seconds
     * @return string
     */
    public static function duration(float $seconds): string {
        $s = (int) round($seconds);
        return sprintf('%d:%02d:%02d', intdiv($s, 3600), intdiv($s % 3600, 60), $s % 60);
    }

    /**
     * Shows progress (rate-limited when not on a terminal).
     *
     * @param int $done
     * @param int|null $total
     * @param int $rows
     * @param string $unit
     * @param bool $force print even if printed recently
     */
    public function update(int $done, ?int $total, int $rows, string $unit = 'rows', bool $force = false): void {
        $now = microtime(true);
        if (!$force && !$this->tty && $now - $this->lastprint < $this->every) {
            return;
        }
        $this->lastprint = $now;
        $this->lastline = self::line($done, $total, $rows, $now - $this->start, $unit);
        $this->lines++;
        fwrite($this->out, $this->tty ? "\r" . $this->lastline . "\033[K" : $this->lastline . "\n");
    }

    /**
     * Ends the progress line.
     */
    public function finish(): void {
        if ($this->tty) {
            fwrite($this->out, "\n");
        }
    }

    /**
     * Seconds since the start.
     *
     * @return float
     */
    public function elapsed(): float {
        return microtime(true) - $this->start;
    }
}
