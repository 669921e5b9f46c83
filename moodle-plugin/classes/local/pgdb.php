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
 * Connection to the PostgreSQL / TimescaleDB database the extension writes to.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

/**
 * A small client for the log database (not Moodle's own database): PHP's pgsql extension when it is loaded
 * (every Moodle site on PostgreSQL has it), else PDO pgsql. Statements use `?` placeholders and every value is
 * bound, never interpolated. Identifiers (schema, table) come from validated settings and are quoted.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class pgdb {

    /** @var bool Use PDO even when pgsql is available (tests exercise both drivers). */
    public static $forcepdo = false;

    /** @var resource|\PgSql\Connection|null */
    protected $conn = null;

    /** @var \PDO|null */
    protected $pdo = null;

    /** @var string Quoted "schema"."table". */
    protected $table;

    /** @var bool The connection outlives the request (pg_pconnect): close() leaves it open. */
    protected $persistent = false;

    /**
     * Opens a connection with the plugin settings.
     *
     * @param \stdClass $cfg plugin config (store::read_plugin_config())
     * @param string $appname application_name of this connection
     * @param bool $persistent keep the connection open for the next request of this PHP process (the reports' reader:
     *      a new connection costs the authentication and a server process with cold caches on every page)
     * @param string[] $settings server settings of this connection (name => value, sent with the connection request)
     * @return self
     * @throws \moodle_exception when no driver is available or the connection fails
     */
    public static function from_config(#[\SensitiveParameter] \stdClass $cfg, string $appname = 'logstore_tsdb_moodle',
            bool $persistent = false, array $settings = []): self {
        $params = [
            'host' => (string) ($cfg->host ?: '127.0.0.1'),
            'port' => (string) ((int) ($cfg->port ?: 5432)),
            'dbname' => (string) ($cfg->dbname ?: 'moodle'),
            'user' => (string) ($cfg->user ?: 'moodle'),
            'password' => (string) ($cfg->password ?? ''),
            'sslmode' => (string) ($cfg->sslmode ?: 'disable'),
            'application_name' => $appname,
            'connect_timeout' => '5',
        ];
        if (!empty($cfg->ca_file)) {
            $params['sslrootcert'] = (string) $cfg->ca_file;
        }
        if ($settings) {
            $params['options'] = implode(' ', array_map(function($name, $value) {
                return '-c ' . $name . '=' . $value;
            }, array_keys($settings), $settings));
        }
        return new self($params, (string) ($cfg->schema ?: 'public'), (string) ($cfg->table ?: 'logstore_tsdb_log'),
            $persistent);
    }

    /**
     * Constructor.
     *
     * @param array $params libpq connection parameters
     * @param string $schema
     * @param string $table
     * @param bool $persistent pg_pconnect() / PDO::ATTR_PERSISTENT: PHP rolls back what a request left open
     */
    public function __construct(#[\SensitiveParameter] array $params, string $schema, string $table,
            bool $persistent = false) {
        $this->table = self::quote_identifier($schema) . '.' . self::quote_identifier($table);
        $this->persistent = $persistent;
        $conninfo = [];
        foreach ($params as $k => $v) {
            $conninfo[] = $k . "='" . str_replace(['\\', "'"], ['\\\\', "\\'"], $v) . "'";
        }
        $conninfo = implode(' ', $conninfo);
        if (function_exists('pg_connect') && !self::$forcepdo) {
            $conn = $persistent ? @pg_pconnect($conninfo) : @pg_connect($conninfo, PGSQL_CONNECT_FORCE_NEW);
            if (!$conn) {
                $error = error_get_last();
                throw new \moodle_exception('pgconnectfailed', 'logstore_tsdb', '', $error['message'] ?? 'pg_connect');
            }
            $this->conn = $conn;
        } else if (class_exists('PDO') && in_array('pgsql', \PDO::getAvailableDrivers(), true)) {
            try {
                $this->pdo = new \PDO('pgsql:' . $conninfo, null, null, [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION,
                    \PDO::ATTR_PERSISTENT => $persistent]);
            } catch (\PDOException $e) {
                throw new \moodle_exception('pgconnectfailed', 'logstore_tsdb', '', $e->getMessage());
            }
        } else {
            throw new \moodle_exception('pgnodriver', 'logstore_tsdb');
        }
    }

    /**
     * Quotes an identifier.
     *
     * @param string $name
     * @return string
     */
    public static function quote_identifier(string $name): string {
        return '"' . str_replace('"', '""', $name) . '"';
    }

    /**
     * The quoted log table.
     *
     * @return string
     */
    public function table(): string {
        return $this->table;
    }

    /**
     * Runs a statement and returns its rows as objects.
     *
     * @param string $sql with ? placeholders
     * @param array $params
     * @return \stdClass[]
     */
    public function query(string $sql, array $params = []): array {
        if ($this->pdo) {
            $st = $this->pdo->prepare($sql);
            $st->execute(array_values($params));
            return $st->fetchAll(\PDO::FETCH_OBJ);
        }
        $result = $this->pg_query(self::numbered($sql), self::values($params));
        if ($result === false) {
            throw new \moodle_exception('pgqueryfailed', 'logstore_tsdb', '', pg_last_error($this->conn));
        }
        $rows = [];
        while ($row = pg_fetch_object($result)) {
            $rows[] = $row;
        }
        pg_free_result($result);
        return $rows;
    }

    /**
     * Runs a statement and returns the number of affected rows.
     *
     * @param string $sql with ? placeholders
     * @param array $params
     * @return int
     */
    public function execute(string $sql, array $params = []): int {
        if ($this->pdo) {
            $st = $this->pdo->prepare($sql);
            $st->execute(array_values($params));
            return $st->rowCount();
        }
        $result = $this->pg_query(self::numbered($sql), self::values($params));
        if ($result === false) {
            throw new \moodle_exception('pgqueryfailed', 'logstore_tsdb', '', pg_last_error($this->conn));
        }
        $n = pg_affected_rows($result);
        pg_free_result($result);
        return $n;
    }

    /**
     * Does this connection go through PDO (placeholders `?`) rather than pgsql (placeholders `$n`)?
     *
     * @return bool
     */
    public function uses_pdo(): bool {
        return $this->pdo !== null;
    }

    /**
     * Runs a statement whose placeholders are already in the driver's style (see uses_pdo()): `$1, $2...` for
     * pgsql, `?` for PDO. Nothing is rewritten, so a `?` inside a string literal stays text. Rows come back as
     * objects with every non-null value as a string, whichever the driver (as Moodle's DML returns them).
     *
     * @param string $sql
     * @param array $params
     * @return \stdClass[]
     */
    public function query_native(string $sql, array $params = []): array {
        $params = self::values($params);
        if ($this->pdo) {
            try {
                $st = $this->pdo->prepare($sql);
                $st->execute($params);
            } catch (\PDOException $e) {
                throw new \moodle_exception('pgqueryfailed', 'logstore_tsdb', '', $e->getMessage());
            }
            $rows = [];
            while ($row = $st->fetch(\PDO::FETCH_OBJ)) {
                foreach ($row as $k => $v) {
                    if ($v !== null && !is_string($v)) {
                        $row->$k = is_bool($v) ? ($v ? 't' : 'f') : (string) $v;
                    }
                }
                $rows[] = $row;
            }
            return $rows;
        }
        $result = $this->pg_query($sql, $params);
        if ($result === false) {
            throw new \moodle_exception('pgqueryfailed', 'logstore_tsdb', '', pg_last_error($this->conn));
        }
        $rows = [];
        while ($row = pg_fetch_object($result)) {
            $rows[] = $row;
        }
        pg_free_result($result);
        return $rows;
    }

    /**
     * A PostgreSQL array literal for a list of integers, bound as one parameter (`= ANY(?::bigint[])`).
     *
     * @param int[] $ids
     * @return string
     */
    public static function int_array(array $ids): string {
        return '{' . implode(',', array_map('intval', $ids)) . '}';
    }

    /**
     * pg_query_params() on this connection. A persistent connection whose server went away since the last request
     * (a restart) fails once and is then broken: it is reset and the statement sent again, once.
     *
     * @param string $sql with $n placeholders
     * @param array $params
     * @return resource|\PgSql\Result|false
     */
    protected function pg_query(string $sql, array $params) {
        $result = @pg_query_params($this->conn, $sql, $params);
        if ($result === false && $this->persistent && pg_connection_status($this->conn) === PGSQL_CONNECTION_BAD
                && @pg_connection_reset($this->conn)) {
            $result = @pg_query_params($this->conn, $sql, $params);
        }
        return $result;
    }

    /**
     * Rewrites ? placeholders as $1, $2... for pg_query_params().
     *
     * @param string $sql
     * @return string
     */
    protected static function numbered(string $sql): string {
        $n = 0;
        return preg_replace_callback('/\?/', function() use (&$n) {
            return '$' . (++$n);
        }, $sql);
    }

    /**
     * Parameter values for pg_query_params (booleans as 0/1, null kept).
     *
     * @param array $params
     * @return array
     */
    protected static function values(array $params): array {
        $out = [];
        foreach (array_values($params) as $v) {
            $out[] = is_bool($v) ? (int) $v : $v;
        }
        return $out;
    }

    /**
     * Does the log table exist?
     *
     * @return bool
     */
    public function table_exists(): bool {
        $rows = $this->query('SELECT to_regclass(?) AS t', [$this->table]);
        return !empty($rows) && $rows[0]->t !== null;
    }

    /**
     * TimescaleDB version installed in this database, or null.
     *
     * @return string|null
     */
    public function timescaledb_version(): ?string {
        $rows = $this->query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
        return $rows ? (string) $rows[0]->extversion : null;
    }

    /**
     * Closes the connection.
     */
    public function close(): void {
        if ($this->conn && !$this->persistent) {
            pg_close($this->conn);
        }
        $this->conn = null;
        $this->pdo = null;
    }
}
