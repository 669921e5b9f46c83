<?php
// This file is part of the logstore_tsdb test harness.
//
// It is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License
// as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version.

/**
 * Harness: Moodle's $DB (moodle_database API, the methods the plugin uses) on a real PostgreSQL database, with the
 * plugin's tables created from its own db/install.xml.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/** Moodle's moodle_database (abstract in Moodle; here the PDO pgsql implementation). */
class moodle_database {
    /** @var PDO */
    protected $pdo;
    /** @var string */
    public $prefix = 'mdl_';
    /** @var int */
    protected $inorequaluniqueindex = 1;

    /**
     * Connects.
     *
     * @param string $dsn
     * @param string $user
     * @param string $password
     */
    public function __construct(string $dsn, string $user, string $password) {
        $this->pdo = new PDO($dsn, $user, $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    }

    /**
     * Harness: the PDO handle.
     *
     * @return PDO
     */
    public function pdo(): PDO {
        return $this->pdo;
    }

    /**
     * {table} -> prefixed table; keeps only the named params the statement uses.
     *
     * @param string $sql
     * @param array|null $params
     * @return array [sql, params]
     */
    protected function fix(string $sql, ?array $params): array {
        $sql = preg_replace('/\{([a-z][a-z0-9_]*)\}/', $this->prefix . '$1', $sql);
        $params = $params ?? [];
        if ($params && !array_key_exists(0, $params)) {
            preg_match_all('/(?<!:):([a-z][a-z0-9_]*)/', $sql, $m);
            $used = array_flip($m[1]);
            $params = array_intersect_key($params, $used);
        } else {
            $params = array_values($params);
        }
        foreach ($params as $k => $v) {
            if (is_bool($v)) {
                $params[$k] = (int) $v;
            }
        }
        return [$sql, $params];
    }

    /**
     * Runs a statement.
     *
     * @param string $sql
     * @param array|null $params
     * @return PDOStatement
     */
    protected function run(string $sql, ?array $params): PDOStatement {
        [$sql, $params] = $this->fix($sql, $params);
        try {
            $st = $this->pdo->prepare($sql);
            $st->execute($params);
            return $st;
        } catch (PDOException $e) {
            if (preg_match('/^\s*(insert|update|delete)/i', $sql)) {
                throw new dml_write_exception('dmlwriteexception', null, $e->getMessage() . " SQL: $sql");
            }
            throw new dml_exception('dmlreadexception', null, $e->getMessage() . " SQL: $sql");
        }
    }

    /**
     * Conditions array -> where clause.
     *
     * @param array|null $conditions
     * @return array [where, params]
     */
    protected function where(?array $conditions): array {
        if (!$conditions) {
            return ['1=1', []];
        }
        $w = [];
        $p = [];
        foreach ($conditions as $k => $v) {
            if ($v === null) {
                $w[] = "$k IS NULL";
            } else {
                $w[] = "$k = ?";
                $p[] = $v;
            }
        }
        return [implode(' AND ', $w), $p];
    }

    /**
     * Rows keyed by their first column.
     *
     * @param PDOStatement $st
     * @return array
     */
    protected function keyed(PDOStatement $st): array {
        $out = [];
        while ($row = $st->fetch(PDO::FETCH_OBJ)) {
            $vars = get_object_vars($row);
            $out[reset($vars)] = $row;
        }
        return $out;
    }

    /**
     * Moodle's get_records_sql().
     *
     * @param string $sql
     * @param array|null $params
     * @param int $limitfrom
     * @param int $limitnum
     * @return array
     */
    public function get_records_sql($sql, ?array $params = null, $limitfrom = 0, $limitnum = 0) {
        if ($limitnum) {
            $sql .= ' LIMIT ' . (int) $limitnum;
        }
        if ($limitfrom) {
            $sql .= ' OFFSET ' . (int) $limitfrom;
        }
        return $this->keyed($this->run($sql, $params));
    }

    /**
     * Moodle's get_records_select().
     *
     * @param string $table
     * @param string $select
     * @param array|null $params
     * @param string $sort
     * @param string $fields
     * @param int $limitfrom
     * @param int $limitnum
     * @return array
     */
    public function get_records_select($table, $select, ?array $params = null, $sort = '', $fields = '*', $limitfrom = 0,
            $limitnum = 0) {
        $sql = "SELECT $fields FROM {" . $table . '}' . ($select ? " WHERE $select" : '') . ($sort ? " ORDER BY $sort" : '');
        return $this->get_records_sql($sql, $params, $limitfrom, $limitnum);
    }

    /**
     * Moodle's get_records().
     *
     * @param string $table
     * @param array|null $conditions
     * @param string $sort
     * @param string $fields
     * @param int $limitfrom
     * @param int $limitnum
     * @return array
     */
    public function get_records($table, ?array $conditions = null, $sort = '', $fields = '*', $limitfrom = 0, $limitnum = 0) {
        [$w, $p] = $this->where($conditions);
        return $this->get_records_select($table, $w, $p, $sort, $fields, $limitfrom, $limitnum);
    }

    /**
     * Moodle's get_record_sql().
     *
     * @param string $sql
     * @param array|null $params
     * @param int $strictness
     * @return stdClass|false
     */
    public function get_record_sql($sql, ?array $params = null, $strictness = IGNORE_MISSING) {
        $rows = $this->get_records_sql($sql, $params);
        if (!$rows) {
            if ($strictness == MUST_EXIST) {
                throw new dml_missing_record_exception('invalidrecordunknown', null, $sql);
            }
            return false;
        }
        if (count($rows) > 1 && $strictness != IGNORE_MULTIPLE) {
            debugging('Error: mdb->get_record() found more than one record!');
        }
        return reset($rows);
    }

    /**
     * Moodle's get_record().
     *
     * @param string $table
     * @param array $conditions
     * @param string $fields
     * @param int $strictness
     * @return stdClass|false
     */
    public function get_record($table, array $conditions, $fields = '*', $strictness = IGNORE_MISSING) {
        [$w, $p] = $this->where($conditions);
        return $this->get_record_sql("SELECT $fields FROM {" . $table . "} WHERE $w", $p, $strictness);
    }

    /**
     * Moodle's get_field().
     *
     * @param string $table
     * @param string $return
     * @param array $conditions
     * @param int $strictness
     * @return mixed|false
     */
    public function get_field($table, $return, array $conditions, $strictness = IGNORE_MISSING) {
        $r = $this->get_record($table, $conditions, $return, $strictness);
        return $r ? $r->$return : false;
    }

    /**
     * Moodle's get_field_sql(): the first column of the first row.
     *
     * @param string $sql
     * @param array|null $params
     * @param int $strictness
     * @return mixed|false
     */
    public function get_field_sql($sql, ?array $params = null, $strictness = IGNORE_MISSING) {
        $value = $this->run($sql, $params)->fetchColumn();
        if ($value === false && $strictness == MUST_EXIST) {
            throw new dml_missing_record_exception('invalidrecordunknown', null, $sql);
        }
        return $value;
    }

    /**
     * Moodle's get_fieldset_sql().
     *
     * @param string $sql
     * @param array|null $params
     * @return array
     */
    public function get_fieldset_sql($sql, ?array $params = null) {
        return $this->run($sql, $params)->fetchAll(PDO::FETCH_COLUMN, 0);
    }

    /**
     * Moodle's count_records_select().
     *
     * @param string $table
     * @param string $select
     * @param array|null $params
     * @return int
     */
    public function count_records_select($table, $select, ?array $params = null) {
        return (int) $this->run("SELECT COUNT(*) FROM {" . $table . '}' . ($select ? " WHERE $select" : ''), $params)
            ->fetchColumn();
    }

    /**
     * Moodle's count_records().
     *
     * @param string $table
     * @param array|null $conditions
     * @return int
     */
    public function count_records($table, ?array $conditions = null) {
        [$w, $p] = $this->where($conditions);
        return $this->count_records_select($table, $w, $p);
    }

    /**
     * Moodle's record_exists().
     *
     * @param string $table
     * @param array $conditions
     * @return bool
     */
    public function record_exists($table, array $conditions) {
        return $this->count_records($table, $conditions) > 0;
    }

    /**
     * Moodle's insert_record().
     *
     * @param string $table
     * @param object|array $dataobject
     * @param bool $returnid
     * @param bool $bulk
     * @return int|true
     */
    public function insert_record($table, $dataobject, $returnid = true, $bulk = false) {
        $data = (array) $dataobject;
        if ($returnid) {
            unset($data['id']);
        }
        $cols = array_keys($data);
        $sql = 'INSERT INTO {' . $table . '} (' . implode(',', $cols) . ') VALUES (' . implode(',', array_fill(0, count($cols), '?'))
            . ')' . ($returnid ? ' RETURNING id' : '');
        $st = $this->run($sql, array_values($data));
        return $returnid ? (int) $st->fetchColumn() : true;
    }

    /**
     * Moodle's update_record().
     *
     * @param string $table
     * @param object|array $dataobject
     * @param bool $bulk
     * @return bool
     */
    public function update_record($table, $dataobject, $bulk = false) {
        $data = (array) $dataobject;
        $id = $data['id'];
        unset($data['id']);
        $sets = [];
        foreach (array_keys($data) as $c) {
            $sets[] = "$c = ?";
        }
        $params = array_values($data);
        $params[] = $id;
        $this->run('UPDATE {' . $table . '} SET ' . implode(', ', $sets) . ' WHERE id = ?', $params);
        return true;
    }

    /**
     * Moodle's set_field().
     *
     * @param string $table
     * @param string $newfield
     * @param mixed $newvalue
     * @param array|null $conditions
     * @return bool
     */
    public function set_field($table, $newfield, $newvalue, ?array $conditions = null) {
        [$w, $p] = $this->where($conditions);
        $this->run('UPDATE {' . $table . "} SET $newfield = ? WHERE $w", array_merge([$newvalue], $p));
        return true;
    }

    /**
     * Moodle's delete_records_select().
     *
     * @param string $table
     * @param string $select
     * @param array|null $params
     * @return bool
     */
    public function delete_records_select($table, $select, ?array $params = null) {
        $this->run('DELETE FROM {' . $table . '}' . ($select ? " WHERE $select" : ''), $params);
        return true;
    }

    /**
     * Moodle's delete_records().
     *
     * @param string $table
     * @param array|null $conditions
     * @return bool
     */
    public function delete_records($table, ?array $conditions = null) {
        [$w, $p] = $this->where($conditions);
        return $this->delete_records_select($table, $w, $p);
    }

    /**
     * Moodle's execute().
     *
     * @param string $sql
     * @param array|null $params
     * @return bool
     */
    public function execute($sql, ?array $params = null) {
        $this->run($sql, $params);
        return true;
    }

    /**
     * Moodle's get_in_or_equal().
     *
     * @param mixed $items
     * @param int $type
     * @param string $prefix
     * @param bool $equal
     * @param mixed $onemptyitems
     * @return array [sql, params]
     */
    public function get_in_or_equal($items, $type = SQL_PARAMS_QM, $prefix = 'param', $equal = true, $onemptyitems = false) {
        $items = is_array($items) ? array_values($items) : [$items];
        if (!$items) {
            if ($onemptyitems === false) {
                throw new coding_exception('moodle_database::get_in_or_equal() does not accept empty arrays');
            }
            $items = [$onemptyitems];
        }
        if ($type == SQL_PARAMS_QM) {
            if (count($items) == 1) {
                return [($equal ? '= ?' : '<> ?'), $items];
            }
            return [($equal ? '' : 'NOT ') . 'IN (' . implode(',', array_fill(0, count($items), '?')) . ')', $items];
        }
        $params = [];
        $names = [];
        foreach ($items as $item) {
            $name = $prefix . $this->inorequaluniqueindex++;
            $params[$name] = $item;
            $names[] = ':' . $name;
        }
        if (count($items) == 1) {
            return [($equal ? '= ' : '<> ') . $names[0], $params];
        }
        return [($equal ? '' : 'NOT ') . 'IN (' . implode(',', $names) . ')', $params];
    }

    /**
     * Harness: creates tables from an XMLDB install.xml file (dropping them first).
     *
     * @param string $file
     * @return string[] created table names
     */
    public function install_xmldb(string $file): array {
        $xml = simplexml_load_file($file);
        if (!$xml) {
            throw new coding_exception("Invalid XMLDB file $file");
        }
        $created = [];
        foreach ($xml->TABLES->TABLE as $table) {
            $name = (string) $table['NAME'];
            $cols = [];
            $pk = null;
            foreach ($table->FIELDS->FIELD as $f) {
                $fname = (string) $f['NAME'];
                $type = (string) $f['TYPE'];
                $len = (int) $f['LENGTH'];
                $sqltype = ['int' => $len > 9 ? 'BIGINT' : ($len > 4 ? 'INTEGER' : 'SMALLINT'), 'char' => "VARCHAR($len)",
                    'text' => 'TEXT', 'number' => 'NUMERIC', 'float' => 'DOUBLE PRECISION', 'binary' => 'BYTEA'][$type] ?? null;
                if ($sqltype === null) {
                    throw new coding_exception("Unknown XMLDB type $type in $name.$fname");
                }
                if ((string) $f['SEQUENCE'] === 'true') {
                    $sqltype = 'BIGSERIAL';
                }
                $col = "$fname $sqltype";
                if ((string) $f['NOTNULL'] === 'true') {
                    $col .= ' NOT NULL';
                }
                if (isset($f['DEFAULT'])) {
                    $col .= ' DEFAULT ' . $this->pdo->quote((string) $f['DEFAULT']);
                }
                $cols[] = $col;
            }
            foreach ($table->KEYS->KEY as $k) {
                if ((string) $k['TYPE'] === 'primary') {
                    $cols[] = 'PRIMARY KEY (' . (string) $k['FIELDS'] . ')';
                }
            }
            $this->pdo->exec("DROP TABLE IF EXISTS {$this->prefix}$name");
            $this->pdo->exec("CREATE TABLE {$this->prefix}$name (" . implode(', ', $cols) . ')');
            if (isset($table->INDEXES)) {
                $i = 0;
                foreach ($table->INDEXES->INDEX as $idx) {
                    $unique = (string) $idx['UNIQUE'] === 'true' ? 'UNIQUE ' : '';
                    $this->pdo->exec("CREATE {$unique}INDEX {$this->prefix}{$name}_ix" . ($i++) . " ON {$this->prefix}$name ("
                        . (string) $idx['FIELDS'] . ')');
                }
            }
            $created[] = $name;
        }
        return $created;
    }
}
