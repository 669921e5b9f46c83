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
 * Health of the log store, as seen from cron.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace logstore_tsdb\local;

defined('MOODLE_INTERNAL') || die();

use logstore_tsdb\log\store;

/**
 * Decides whether the store is failing, counts consecutive failing checks (config healthfailcount) and notifies the
 * site administrators once when the count reaches the threshold, and once when it recovers.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class health {

    /** @var int Seconds of per-minute counters one check looks at. */
    const WINDOW = 600;

    /**
     * The current problem, or null when healthy.
     *
     * @param int $now
     * @return string|null
     */
    public static function problem(int $now): ?string {
        if (!extension::is_loaded()) {
            return get_string('health_problem_extension', 'logstore_tsdb');
        }
        $cfg = store::read_plugin_config();
        if (!extension::ensure_configured($cfg)) {
            return get_string('health_problem_config', 'logstore_tsdb', extension::config_error());
        }
        if (strpos((string) $cfg->backend, 'influxdb') === 0) {
            // What the reports, privacy and Test connection ask InfluxDB: a refused password, token, database or URL
            // shows here with the server's own words and the setting to check, before any event fails.
            try {
                (new influx_client($cfg))->query('SHOW RETENTION POLICIES');
            } catch (\moodle_exception $e) {
                return get_string('health_problem_influx', 'logstore_tsdb', $e->getMessage());
            }
        }
        // The sink found its events table missing and made it again: what the table held is gone with it (said
        // first: failures meanwhile are likely its consequence).
        $recreated = status::schema_recreated(self::WINDOW, $now);
        if ($recreated !== null) {
            return get_string('health_problem_recreated', 'logstore_tsdb', status::recreated_words($recreated));
        }
        $sum = ['written' => 0, 'failed' => 0, 'dropped' => 0];
        $series = metrics::series((int) (self::WINDOW / 60), $now);
        foreach ($sum as $k => $unused) {
            $sum[$k] = array_sum($series[$k]);
        }
        if ($sum['failed'] + $sum['dropped'] > 0) {
            return get_string('health_problem_failures', 'logstore_tsdb', (object) $sum);
        }
        // With a spool an outage fails nothing: the events wait on disk. Batches still there after a whole check
        // period (the flush threads and the replay task try every minute) mean the database is not taking them.
        $stats = extension::stats();
        if (!empty($stats['spool_segments'])) {
            $oldest = time() - (int) $stats['oldest_unsent_age_s'];
            if ($now - $oldest >= self::WINDOW) {
                return get_string('health_problem_spool', 'logstore_tsdb', (object) ['segments' => $stats['spool_segments'],
                    'minutes' => intdiv($now - $oldest, 60), 'error' => (string) $stats['last_error']]);
            }
        }
        return null;
    }

    /**
     * One health check: count, notify, recover.
     *
     * @param int|null $now
     * @return string disabled, ok, failing, notified or recovered
     */
    public static function check(?int $now = null): string {
        $now = $now ?? time();
        if (!status::is_enabled()) {
            return 'disabled';
        }
        // Cron's own process reports its counters too.
        try {
            metrics::report_if_due($now);
        } catch (\Throwable $e) {
            debugging('logstore_tsdb: ' . $e->getMessage(), DEBUG_DEVELOPER);
        }
        $problem = self::problem($now);
        $notified = (bool) get_config('logstore_tsdb', 'healthnotified');
        if ($problem === null) {
            set_config('healthfailcount', 0, 'logstore_tsdb');
            set_config('healthlastproblem', '', 'logstore_tsdb');
            if ($notified) {
                set_config('healthnotified', 0, 'logstore_tsdb');
                $url = (new \moodle_url('/admin/tool/log/store/tsdb/status.php'))->out(false);
                self::notify_admins(get_string('health_recovered_subject', 'logstore_tsdb'),
                    get_string('health_recovered_body', 'logstore_tsdb', $url));
                return 'recovered';
            }
            return 'ok';
        }
        $count = (int) get_config('logstore_tsdb', 'healthfailcount') + 1;
        set_config('healthfailcount', $count, 'logstore_tsdb');
        set_config('healthlastproblem', $problem, 'logstore_tsdb');
        mtrace('logstore_tsdb: failing check ' . $count . ': ' . $problem);
        $threshold = max(1, (int) (store::read_plugin_config()->healththreshold ?? 3));
        if ($count >= $threshold && !$notified) {
            set_config('healthnotified', 1, 'logstore_tsdb');
            $url = (new \moodle_url('/admin/tool/log/store/tsdb/status.php'))->out(false);
            self::notify_admins(get_string('health_subject', 'logstore_tsdb'), get_string('health_body', 'logstore_tsdb',
                (object) ['count' => $count, 'problem' => $problem, 'url' => $url]));
            return 'notified';
        }
        return 'failing';
    }

    /**
     * Sends a notification to every site administrator.
     *
     * @param string $subject
     * @param string $body
     */
    protected static function notify_admins(string $subject, string $body): void {
        foreach (get_admins() as $admin) {
            $message = new \core\message\message();
            $message->component = 'logstore_tsdb';
            $message->name = 'healthalert';
            $message->userfrom = \core_user::get_noreply_user();
            $message->userto = $admin;
            $message->subject = $subject;
            $message->fullmessage = $body;
            $message->fullmessageformat = FORMAT_PLAIN;
            $message->fullmessagehtml = '<p>' . s($body) . '</p>';
            $message->smallmessage = $subject;
            $message->notification = 1;
            $message->contexturl = (new \moodle_url('/admin/tool/log/store/tsdb/status.php'))->out(false);
            $message->contexturlname = get_string('statuspage', 'logstore_tsdb');
            message_send($message);
        }
    }
}
