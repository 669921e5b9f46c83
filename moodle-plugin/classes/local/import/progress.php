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
 * The rate is measured over the last minute (`WINDOW`), not since the start: the first seconds of an import (the
 * count, the connection, the first chunks into an empty table) are not typical of the rest. The ETA is the units still
 * to do (rows still to read, counted at the start; bytes for a file) over that rate.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class progress {

    /** @var int Seconds of the recent window the rate is measured over. */
    const WINDOW = 60;

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

    /** @var array[] Recent [time, units done, rows], oldest first, spanning at least WINDOW seconds when there is more. */
    protected $samples = [];

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
     * @param float|null $start the time of the start (tests), default now
     */
    public function __construct($out = null, ?bool $tty = null, int $every = 5, ?float $start = null) {
        $this->out = $out ?? (defined('STDOUT') ? STDOUT : fopen('php://output', 'w'));
        $this->tty = $tty ?? (function_exists('posix_isatty') && @posix_isatty($this->out));
        $this->start = $start ?? microtime(true);
        $this->every = $every;
    }

    /**
     * Formats one progress line.
     *
     * @param int $done units done
     * @param int|null $total units in all (null: unknown)
     * @param float $rate rows per second
     * @param float|null $eta seconds left (null: not known yet)
     * @param float $elapsed seconds
     * @param string $unit
     * @return string
     */
    public static function line(int $done, ?int $total, float $rate, ?float $eta, float $elapsed, string $unit = 'rows'): string {
        if ($total !== null && $total > 0) {
            $fraction = min(1.0, max(0.0, $done / $total));
            $width = 30;
            $filled = (int) floor($fraction * $width);
            $bar = '[' . str_repeat('#', $filled) . str_repeat('.', $width - $filled) . ']';
            $etatext = $fraction >= 1 ? '0:00:00' : ($eta === null ? '?' : self::duration($eta));
            return sprintf('%s %5.1f%%  %s / %s %s  %s rows/s  ETA %s', $bar, $fraction * 100, number_format($done),
                number_format($total), $unit, number_format($rate), $etatext);
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
     * The rate of rows and of units over the recent window (since the start while it is shorter).
     *
     * @param float $now
     * @param int $done
     * @param int $rows
     * @return float[] [rows per second, units per second]
     */
    protected function rates(float $now, int $done, int $rows): array {
        $this->samples[] = [$now, $done, $rows];
        // Keep one sample at or before the window's start.
        while (count($this->samples) > 2 && $this->samples[1][0] <= $now - self::WINDOW) {
            array_shift($this->samples);
        }
        [$t0, $d0, $r0] = $this->samples[0];
        if (count($this->samples) < 2 || $now - $t0 <= 0) {
            $elapsed = max(0.001, $now - $this->start);
            return [$rows / $elapsed, $done / $elapsed];
        }
        return [($rows - $r0) / ($now - $t0), ($done - $d0) / ($now - $t0)];
    }

    /**
     * Records progress and shows it (rate-limited when not on a terminal).
     *
     * @param int $done units done (rows read, or bytes of a file)
     * @param int|null $total units in all
     * @param int $rows rows read
     * @param string $unit
     * @param bool $force print even if printed recently
     * @param float|null $now the time (tests), default microtime(true)
     */
    public function update(int $done, ?int $total, int $rows, string $unit = 'rows', bool $force = false,
            ?float $now = null): void {
        $now = $now ?? microtime(true);
        [$rate, $unitrate] = $this->rates($now, $done, $rows);
        if (!$force && !$this->tty && $now - $this->lastprint < $this->every) {
            return;
        }
        $this->lastprint = $now;
        $eta = ($total !== null && $unitrate > 0) ? max(0, $total - $done) / $unitrate : null;
        $this->lastline = self::line($done, $total, $rate, $eta, $now - $this->start, $unit);
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
