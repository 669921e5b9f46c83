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
 * An export of logstore_standard_log (CSV or JSON) as an import source.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local\import;

defined('MOODLE_INTERNAL') || die();

/**
 * Reads an export of the table:
 *
 * - CSV with a header row naming the columns (`psql -c "\copy (SELECT * FROM mdl_logstore_standard_log ORDER BY id)
 *   TO 'log.csv' CSV HEADER"`, MySQL `SELECT ... INTO OUTFILE` with a header). An empty field or `\N` is NULL in the
 *   integer and nullable text columns.
 * - JSON lines, one object per row (`\copy (SELECT row_to_json(l) FROM mdl_logstore_standard_log l ORDER BY id) TO
 *   'log.jsonl'`), streamed; or one JSON array of objects (read whole: for small exports).
 *
 * The key of a row is its `id` when the file has that column (it must increase: export ORDER BY id), else its row
 * number; tsdb_import() takes it as the row's id. A position is the key plus the byte offset after it, so a resumed
 * run seeks instead of re-reading.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class file_source extends source {

    /** @var string */
    protected $path;

    /** @var string csv, jsonl, json */
    protected $format;

    /** @var resource|null */
    protected $fh = null;

    /** @var string[]|null CSV header */
    protected $header = null;

    /** @var int Byte offset of the first data row. */
    protected $dataoffset = 0;

    /** @var bool Keys are the id column. */
    protected $idkeys = false;

    /** @var array|null JSON array rows */
    protected $array = null;

    /** @var array Rows already imported by the previous importer: [[first id, last id, from|null, to|null], ...]. */
    protected $exclusions = [];

    /** @var int Largest JSON array file read whole. */
    const MAX_ARRAY_BYTES = 268435456;

    /**
     * Opens the file and reads its header.
     *
     * @param string $path
     * @param string|null $format csv, jsonl, json; null: from the extension, then from the first character
     */
    public function __construct(string $path, ?string $format = null) {
        if (!is_file($path) || !is_readable($path)) {
            throw new \moodle_exception('importfileunreadable', 'logstore_tsdb', '', $path);
        }
        $this->path = realpath($path);
        $fh = fopen($this->path, 'rb');
        $this->fh = $fh;
        if ($format === null) {
            $ext = strtolower(pathinfo($path, PATHINFO_EXTENSION));
            if ($ext === 'csv') {
                $format = 'csv';
            } else if (in_array($ext, ['jsonl', 'ndjson'], true)) {
                $format = 'jsonl';
            } else {
                $head = ltrim((string) fread($fh, 64));
                $format = ($head !== '' && $head[0] === '[') ? 'json' : (($head !== '' && $head[0] === '{') ? 'jsonl' : 'csv');
            }
        }
        if (!in_array($format, ['csv', 'jsonl', 'json'], true)) {
            throw new \moodle_exception('importfileformat', 'logstore_tsdb', '', $format);
        }
        $this->format = $format;
        rewind($fh);
        if ($format === 'csv') {
            $header = fgetcsv($fh, 0, ',', '"', '');
            if (!$header) {
                throw new \moodle_exception('importfileformat', 'logstore_tsdb', '', 'CSV without a header row');
            }
            $header[0] = preg_replace('/^\xEF\xBB\xBF/', '', (string) $header[0]);
            $this->header = array_map(function($h) {
                return strtolower(trim((string) $h));
            }, $header);
            $this->dataoffset = ftell($fh);
            $this->idkeys = in_array('id', $this->header, true);
        } else if ($format === 'json') {
            if (filesize($this->path) > self::MAX_ARRAY_BYTES) {
                throw new \moodle_exception('importfileformat', 'logstore_tsdb', '',
                    'a JSON array this large must be converted to JSON lines (one object per line)');
            }
            $this->array = json_decode((string) file_get_contents($this->path), true);
            if (!is_array($this->array)) {
                throw new \moodle_exception('importfileformat', 'logstore_tsdb', '', 'not a JSON array: ' . json_last_error_msg());
            }
            $this->array = array_values($this->array);
            $this->idkeys = isset($this->array[0]) && is_array($this->array[0]) && array_key_exists('id', $this->array[0]);
        } else {
            $line = fgets($fh);
            $first = json_decode((string) $line, true);
            $this->idkeys = is_array($first) && array_key_exists('id', $first);
            $this->dataoffset = 0;
        }
    }

    /**
     * Identity: the file's path and how rows are keyed.
     *
     * @return string
     */
    public function descriptor(): string {
        return 'file:' . $this->path . ':' . ($this->idkeys ? 'id' : 'row');
    }

    /**
     * Name.
     *
     * @return string
     */
    public function name(): string {
        return $this->path . ' (' . $this->format . ', ' . ($this->idkeys ? 'keyed by id' : 'keyed by row number') . ')';
    }

    /**
     * The file (the same export imported again is stored once; the CLI's --source names another origin, such as
     * this site's table the file was exported from).
     *
     * @return string
     */
    public function identity(): string {
        return 'file:' . $this->path . ($this->idkeys ? '' : ':rows');
    }

    /**
     * Leaves out rows an import by the plugin's previous version already wrote.
     *
     * @param array $rectangles [[first id, last id, from|null, to|null], ...]
     */
    public function set_exclusions(array $rectangles): void {
        $this->exclusions = $rectangles;
    }

    /**
     * Does the file have an id column?
     *
     * @return bool
     */
    public function has_ids(): bool {
        return $this->idkeys;
    }

    /**
     * Normalises one raw row: column names, NULL markers, only the table's columns.
     *
     * @param array $raw
     * @return array
     */
    protected function normalise(array $raw): array {
        $row = [];
        foreach (array_merge(['id'], self::COLUMNS) as $col) {
            $v = $raw[$col] ?? null;
            if ($this->format === 'csv' && $v !== null && ($v === '\\N'
                    || ($v === '' && !in_array($col, ['eventname', 'component', 'action', 'target', 'crud'], true)))) {
                $v = null;
            }
            if ($col === 'other' && $v !== null && !is_string($v)) {
                $v = json_encode($v); // JSON exports may hold `other` as an object.
            }
            $row[$col] = $v;
        }
        return $row;
    }

    /**
     * Rows after a position, as arrays with their key as id.
     *
     * @param int $afterkey
     * @param int $afteroffset
     * @param int $limit
     * @return array
     */
    public function read(int $afterkey, int $afteroffset, int $limit): array {
        $out = [];
        if ($this->format === 'json') {
            $index = $afteroffset > 0 ? $afteroffset : 0;
            $n = count($this->array);
            $prevkey = null;
            for (; $index < $n && count($out) < $limit; $index++) {
                $row = $this->normalise((array) $this->array[$index]);
                $key = $this->idkeys ? (int) $row['id'] : $index + 1;
                $this->check_order($prevkey, $key);
                $prevkey = $key;
                if ($key > $afterkey && !$this->excluded($key, $row)) {
                    $row['id'] = $key;
                    $out[] = $row;
                }
            }
            return ['rows' => $out, 'end' => $index >= $n, 'offset' => $index];
        }
        fseek($this->fh, $afteroffset > 0 ? $afteroffset : $this->dataoffset);
        $rownumber = null;
        $prevkey = null;
        while (count($out) < $limit) {
            if ($this->format === 'csv') {
                $fields = fgetcsv($this->fh, 0, ',', '"', '');
                if ($fields === false) {
                    return ['rows' => $out, 'end' => true, 'offset' => ftell($this->fh)];
                }
                if ($fields === [null]) {
                    continue; // Blank line.
                }
                $raw = array_combine(array_slice($this->header, 0, count($fields)),
                    array_slice($fields, 0, count($this->header)));
            } else {
                $line = fgets($this->fh);
                if ($line === false) {
                    return ['rows' => $out, 'end' => true, 'offset' => ftell($this->fh)];
                }
                if (trim($line) === '') {
                    continue;
                }
                $raw = json_decode($line, true);
                if (!is_array($raw)) {
                    throw new \moodle_exception('importfileformat', 'logstore_tsdb', '', 'a line that is not a JSON object at byte '
                        . (ftell($this->fh) - strlen($line)));
                }
            }
            $row = $this->normalise($raw);
            if ($this->idkeys) {
                $key = (int) $row['id'];
            } else {
                // Row numbers: the offset tells where we are; without one, count from the start.
                if ($rownumber === null) {
                    $rownumber = $afteroffset > 0 ? $afterkey : 0;
                }
                $key = ++$rownumber;
            }
            $this->check_order($prevkey, $key);
            $prevkey = $key;
            if ($key > $afterkey && !$this->excluded($key, $row)) {
                $row['id'] = $key;
                $out[] = $row;
            }
        }
        $pos = ftell($this->fh);
        $end = fgetc($this->fh) === false;
        fseek($this->fh, $pos);
        return ['rows' => $out, 'end' => $end, 'offset' => $pos];
    }

    /**
     * Was the row imported by the previous importer?
     *
     * @param int $key
     * @param array $row
     * @return bool
     */
    protected function excluded(int $key, array $row): bool {
        foreach ($this->exclusions as [$k1, $k2, $t1, $t2]) {
            $t = is_numeric($row['timecreated']) ? (int) $row['timecreated'] : null;
            if ($key >= $k1 && $key <= $k2 && $t !== null && ($t1 === null || $t >= $t1) && ($t2 === null || $t < $t2)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Keys must increase.
     *
     * @param int|null $prev
     * @param int $key
     */
    protected function check_order(?int $prev, int $key): void {
        if ($prev !== null && $key <= $prev) {
            throw new \moodle_exception('importfileformat', 'logstore_tsdb', '',
                "ids must increase along the file (id $key after $prev): export with ORDER BY id");
        }
    }

    /**
     * Counting a file means reading it: not done (the progress bar counts bytes instead).
     *
     * @param int $afterid
     * @param int|null $lastid
     * @return int|null
     */
    public function count_after(int $afterid, ?int $lastid = null): ?int {
        return null;
    }

    /**
     * Size of the file (progress) and where an offset is in it.
     *
     * @return int
     */
    public function size(): int {
        return $this->format === 'json' ? count($this->array) : (int) filesize($this->path);
    }

    /**
     * Closes the file.
     */
    public function close(): void {
        if ($this->fh) {
            fclose($this->fh);
            $this->fh = null;
        }
    }
}
