<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Helpers of the operations tests (tasks, status and settings pages, PHP-FPM pools, the spool, upgrades): the test
 * PostgreSQL as a backend, the scheduled tasks through Moodle's CLI, and the site's PHP-FPM log.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/site_pool.php');

/**
 * For base_testcase subclasses.
 */
trait tsdb_test_ops {

    /** @var string[] tables of the test PostgreSQL this test created (dropped by drop_pg_tables()) */
    protected $pgtables = [];

    /** @var int size of the site's PHP-FPM log when the test started */
    protected $fpmlogstart = 0;

    /**
     * The plugin's settings for the postgres backend on the test PostgreSQL, with a table of this test's own.
     *
     * @param string $prefix start of the table name
     * @return array settings (the table name is $this->pgtables' last)
     */
    protected function pg_settings(string $prefix): array {
        $this->server_env('TSDB_TEST_PG_HOST');
        $table = $prefix . '_' . getmypid() . '_' . bin2hex(random_bytes(3));
        $this->pgtables[] = $table;
        return ['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'), 'port' => getenv('TSDB_TEST_PG_PORT'),
            'user' => getenv('TSDB_TEST_PG_USER'), 'dbname' => getenv('TSDB_TEST_PG_DB'),
            'password' => (string) getenv('TSDB_TEST_PG_PASSWORD'), 'schema' => 'public', 'table' => $table,
            'retry_max_elapsed_ms' => 5000];
    }

    /**
     * A connection to the test PostgreSQL (not through the plugin: what the backend really holds).
     *
     * @return \PDO
     */
    protected static function pg(): \PDO {
        static $pdo = null;
        if ($pdo === null) {
            $pdo = new \PDO(sprintf('pgsql:host=%s;port=%s;dbname=%s', getenv('TSDB_TEST_PG_HOST'),
                getenv('TSDB_TEST_PG_PORT'), getenv('TSDB_TEST_PG_DB')), getenv('TSDB_TEST_PG_USER'),
                (string) getenv('TSDB_TEST_PG_PASSWORD'), [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION]);
        }
        return $pdo;
    }

    /**
     * Rows of a query on the test PostgreSQL.
     *
     * @param string $sql
     * @param array $params
     * @return array[]
     */
    protected static function pg_query(string $sql, array $params = []): array {
        $st = self::pg()->prepare($sql);
        $st->execute($params);
        return $st->fetchAll(\PDO::FETCH_ASSOC);
    }

    /**
     * Does a table (or view) exist in the test PostgreSQL?
     *
     * @param string $name
     * @return bool
     */
    protected static function pg_exists(string $name): bool {
        return self::pg_query('SELECT to_regclass(?) AS t', ['public."' . $name . '"'])[0]['t'] !== null;
    }

    /**
     * The log rows of an extension table in the test PostgreSQL, with the columns of logstore_standard_log, by id.
     *
     * @param string $table
     * @param string $where SQL condition, '' for all
     * @return array[]
     */
    protected function pg_log_rows(string $table, string $where = ''): array {
        if (!self::pg_exists($table)) {
            return [];
        }
        return self::pg_query('SELECT ' . implode(', ', self::COLUMNS) . ', "time", producer, seq FROM public."' . $table . '"'
            . ($where !== '' ? " WHERE $where" : '') . ' ORDER BY id');
    }

    /**
     * Asserts that rows of the extension's PostgreSQL table hold, column for column, what logstore_standard stored
     * for the same events, in the same order.
     *
     * @param array[] $standard logstore_standard_log rows
     * @param array[] $rows pg_log_rows()
     * @param string $msg
     */
    protected function assert_pg_rows_match_standard(array $standard, array $rows, string $msg): void {
        $this->assertCount(count($standard), $rows, "$msg: number of rows");
        foreach (array_values($standard) as $i => $ref) {
            $row = $rows[$i];
            foreach (self::COLUMNS as $col) {
                $want = $ref[$col];
                $got = $row[$col];
                if ($col === 'other') {
                    $this->assertSame(self::canonical(json_decode((string) $want, true)),
                        $got === null ? null : self::canonical(json_decode($got, true)), "$msg: row $i other");
                    continue;
                }
                if (in_array($col, self::INTS, true)) {
                    $want = $want === null ? null : (int) $want;
                    $got = $got === null ? null : (int) $got;
                }
                $this->assertSame($want, $got, "$msg: row $i ({$ref['eventname']}) column $col");
            }
            $this->assertNotNull($row['producer'], "$msg: row $i producer");
            $this->assertNotNull($row['seq'], "$msg: row $i seq");
            $this->assertNotEmpty($row['time'], "$msg: row $i time");
        }
    }

    /**
     * Sorts log rows by their columns (PHP-FPM workers write in parallel, each in its own order).
     *
     * @param array[] $rows
     * @return array[]
     */
    protected static function sorted_rows(array $rows): array {
        $key = function(array $r): string {
            $out = [];
            foreach (self::COLUMNS as $col) {
                $out[] = $col === 'other' ? json_encode(self::canonical(json_decode((string) $r[$col], true))) : (string) $r[$col];
            }
            return implode("\x1f", $out);
        };
        usort($rows, function($a, $b) use ($key) {
            return strcmp($key($a), $key($b));
        });
        return $rows;
    }

    /**
     * Drops the tables (with their companions) this test created in the test PostgreSQL.
     */
    protected function drop_pg_tables(): void {
        foreach ($this->pgtables as $table) {
            self::stop_jobs(self::pg(), 'public', $table);
            $like = str_replace('_', '\\_', $table) . '%';
            foreach (self::pg_query("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    . " WHERE n.nspname = 'public' AND c.relname LIKE ? AND c.relkind IN ('r', 'p', 'v', 'm')"
                    . " ORDER BY c.relkind = 'v' DESC", [$like]) as $r) {
                self::pg()->exec(($r['relkind'] === 'v' ? 'DROP VIEW' : 'DROP TABLE') . ' IF EXISTS public."'
                    . $r['relname'] . '" CASCADE');
            }
        }
        $this->pgtables = [];
    }

    /**
     * Runs PHP code as a CLI script of the site in a new process; fails on an error or a PHP notice; returns what the
     * code printed as JSON (after anything Moodle printed first).
     *
     * @param string $code PHP code without <?php, run after config.php
     * @param array $ini php.ini directives of that PHP (name => value)
     * @return array
     */
    protected function run_json(string $code, array $ini = []): array {
        [$rc, $out, $err] = tsdb_test_site::run_code($code, [], $ini);
        $this->assertSame(0, $rc, "stdout: $out\nstderr: $err");
        $this->assert_no_php_notice($out . $err, 'the script');
        $r = json_decode(substr($out, (int) strpos($out, '{')), true);
        $this->assertIsArray($r, $out);
        return $r;
    }

    /**
     * Runs one of the plugin's scheduled tasks as an administrator does: admin/cli/scheduled_task.php --execute.
     *
     * @param string $name task class name without namespace, e.g. replay_spool
     * @param bool $extension the CLI's PHP loads the tsdb extension
     * @param array $ini php.ini directives of the CLI's PHP (name => value)
     * @return string what the task printed
     */
    protected function run_task(string $name, bool $extension = true, array $ini = []): string {
        [$rc, $out, $err] = tsdb_test_site::run(array_merge([PHP_BINARY], tsdb_test_site::php_args($extension),
            tsdb_test_site::ini_args($ini), ['admin/cli/scheduled_task.php', '--execute=\\logstore_tsdb\\task\\' . $name]),
            [], tsdb_test_site::$info->coderoot);
        $all = $out . $err;
        $this->assertSame(0, $rc, "scheduled_task.php --execute=$name: $all");
        $this->assertStringContainsString("Scheduled task complete: ", $all, "task $name: $all");
        $this->assertStringNotContainsString('Scheduled task failed', $all, "task $name: $all");
        $this->assert_no_php_notice($all, "task $name");
        return $all;
    }

    /**
     * Remembers where the site's PHP-FPM log ends now.
     */
    protected function mark_fpm_log(): void {
        clearstatcache();
        $log = tsdb_test_site::$info->dir . '/fpm/fpm.log';
        $this->fpmlogstart = is_file($log) ? filesize($log) : 0;
    }

    /**
     * Asserts that the site's PHP-FPM workers logged no PHP error since mark_fpm_log().
     */
    protected function assert_fpm_log_clean(): void {
        clearstatcache();
        $log = tsdb_test_site::$info->dir . '/fpm/fpm.log';
        $new = is_file($log) ? (string) file_get_contents($log, false, null, $this->fpmlogstart) : '';
        $this->assertSame([], tsdb_test_site::php_notices($new), "the site's PHP-FPM log has PHP errors:\n$new");
    }

    /**
     * The fields a browser would submit with a form of a page, as the page fills them (hidden fields, text, the
     * selected option, checked boxes, text areas; no buttons).
     *
     * @param string $html the page
     * @param string $id the form's id
     * @return array name => value, in document order
     */
    protected static function form_fields(string $html, string $id): array {
        $doc = new \DOMDocument();
        $previous = libxml_use_internal_errors(true);
        $doc->loadHTML('<?xml encoding="UTF-8">' . $html);
        libxml_clear_errors();
        libxml_use_internal_errors($previous);
        $xpath = new \DOMXPath($doc);
        $form = $xpath->query("//form[@id='$id']")->item(0);
        if (!$form) {
            throw new \RuntimeException("no form #$id on the page");
        }
        $fields = [];
        foreach ($xpath->query('.//input|.//select|.//textarea', $form) as $el) {
            $name = $el->getAttribute('name');
            if ($name === '' || $el->hasAttribute('disabled')) {
                continue;
            }
            if ($el->nodeName === 'select') {
                $options = $xpath->query('.//option', $el);
                $value = $options->length ? $options->item(0)->getAttribute('value') : '';
                foreach ($options as $option) {
                    if ($option->hasAttribute('selected')) {
                        $value = $option->getAttribute('value');
                    }
                }
                $fields[$name] = $value;
            } else if ($el->nodeName === 'textarea') {
                $fields[$name] = $el->textContent;
            } else {
                $type = strtolower($el->getAttribute('type') ?: 'text');
                if (in_array($type, ['submit', 'button', 'image', 'file', 'reset'], true)
                        || (in_array($type, ['checkbox', 'radio'], true) && !$el->hasAttribute('checked'))) {
                    continue;
                }
                $fields[$name] = $el->getAttribute('value');
            }
        }
        return $fields;
    }

    /**
     * A setting of the plugin as stored in the site's database now (another process may have saved it).
     *
     * @param string $name
     * @return string|null null when not stored
     */
    protected static function stored(string $name): ?string {
        global $DB;
        $value = $DB->get_field('config_plugins', 'value', ['plugin' => 'logstore_tsdb', 'name' => $name]);
        return $value === false ? null : (string) $value;
    }

    /**
     * A page of the site made of $code (run after the site's config.php, as any page of the plugin does), for a
     * request to read what only the serving PHP knows (its tsdb_stats(), its configuration). It is written into the
     * plugin's folder of the site and removed by remove_steps() (run.sh replaces that folder anyway).
     *
     * @param string $code PHP code without <?php
     * @return string its path from the web root
     */
    protected function site_step(string $code): string {
        $info = tsdb_test_site::$info;
        $name = 'teststep_' . getmypid() . '_' . bin2hex(random_bytes(4)) . '.php';
        file_put_contents("$info->plugindir/$name", "<?php\nrequire(__DIR__ . '/../../../../../config.php');\n$code\n");
        return substr($info->plugindir, strlen($info->webroot)) . "/$name";
    }

    /**
     * Removes the pages site_step() wrote.
     */
    protected function remove_steps(): void {
        foreach (glob(tsdb_test_site::$info->plugindir . '/teststep_' . getmypid() . '_*.php') as $file) {
            unlink($file);
        }
    }

    /**
     * A user with a password, to log in over HTTP.
     *
     * @param string $password
     * @param array $record more fields
     * @return \stdClass with ->password in clear
     */
    protected function user_with_password(string $password = 'Test123!x', array $record = []): \stdClass {
        $user = $this->gen()->create_user($record + ['username' => 'u' . strtolower(bin2hex(random_bytes(5))),
            'password' => $password]);
        $user->clearpassword = $password;
        return $user;
    }
}
