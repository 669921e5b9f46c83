<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Real web requests served by the site's nginx and PHP-FPM pool with the extension: a student's login, course and
 * activity pages, a guest's and a visitor's requests. The events they log reach the TSDB store once each with origin
 * web and the client's IP, exactly as logstore_standard stores them; with logguests off the guest's and the visitor's
 * events are skipped by both stores alike.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

/**
 * Web request tests.
 */
class web_requests_test extends base_testcase {
    use tsdb_test_ops;

    /** @var \stdClass a course that allows guests */
    protected $course;

    /** @var \stdClass a page in it */
    protected $page;

    /** @var \stdClass a student of it, with a password */
    protected $student;

    /**
     * A course open to guests with a page, a student; the events of making them are forgotten.
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $this->course = $this->gen()->create_course();
        $this->page = $this->gen()->create_module('page', ['course' => $this->course->id]);
        $this->student = $this->user_with_password();
        $this->gen()->enrol_user($this->student->id, $this->course->id, 'student');
        $DB->set_field('enrol', 'status', ENROL_INSTANCE_ENABLED, ['courseid' => $this->course->id, 'enrol' => 'guest']);
        $this->forget_events_so_far();
        $this->mark_fpm_log();
    }

    /**
     * Waits until the site's PHP-FPM workers wrote at least $n rows to the sink (their flush threads write on their
     * own schedule, after the response), then returns the rows.
     *
     * @param int $n
     * @return array[]
     */
    protected function wait_for_rows(int $n): array {
        for ($i = 0; $i < 300; $i++) {
            $rows = $this->file_rows($this->sink);
            if (count($rows) >= $n) {
                return $rows;
            }
            usleep(100000);
        }
        return $rows;
    }

    /**
     * Asserts that the sink holds exactly what logstore_standard holds, row for row.
     *
     * @param array[] $standard
     * @param array[] $rows
     */
    protected function assert_same_events(array $standard, array $rows): void {
        $this->assertCount(count($standard), $rows, 'once each: ' . implode(', ', array_column($rows, 'eventname')));
        $standard = self::sorted_rows($standard);
        $rows = self::sorted_rows($rows);
        foreach ($standard as $i => $ref) {
            $this->assert_row_matches_standard($ref, $rows[$i], "event $i ({$ref['eventname']})");
        }
    }

    /**
     * A student's login, three course views and an activity view in the default (async) mode: every event the
     * requests logged is in the TSDB once, with origin web and the client's IP, as logstore_standard has it.
     */
    public function test_student_requests_reach_the_store_once_each(): void {
        $http = (new tsdb_test_http())->login($this->student->username, $this->student->clearpassword);
        for ($i = 0; $i < 3; $i++) {
            $html = $http->get('/course/view.php?id=' . $this->course->id);
            $this->assertSame(200, $http->status);
            $this->assert_no_php_notice($html, 'course page');
        }
        $html = $http->get('/mod/page/view.php?id=' . $this->page->cmid);
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'page activity');
        $standard = $this->standard_rows();
        $names = array_column($standard, 'eventname');
        $this->assertContains('\\core\\event\\user_loggedin', $names);
        $this->assertSame(3, count(array_keys($names, '\\core\\event\\course_viewed')));
        $this->assertSame(1, count(array_keys($names, '\\mod_page\\event\\course_module_viewed')));
        $rows = $this->wait_for_rows(count($standard));
        $this->assert_same_events($standard, $rows);
        $this->assertSame(['web'], array_values(array_unique(array_column($rows, 'origin'))));
        $this->assertSame(['127.0.0.1'], array_values(array_unique(array_column($rows, 'ip'))), 'the client\'s address');
        $this->assertSame([(int) $this->student->id], array_values(array_unique(array_column($rows, 'userid'))));
        $this->assert_fpm_log_clean();
    }

    /**
     * With logguests off (both stores): a visitor's failed login and a guest's login and course view are skipped by
     * both stores; the student's requests are logged by both. With logguests on, the guest's events are in both.
     */
    public function test_guests_are_skipped_like_the_standard_store(): void {
        global $CFG;
        // Sync mode: every event is written before its request answers, so what is absent is absent.
        $this->configure(['logguests' => 0, 'mode' => 'sync']);
        set_config('logguests', 0, 'logstore_standard');
        $this->assertSame('1', (string) $CFG->guestloginbutton, 'the login page offers guest access');
        $this->visitor_and_guest();
        $this->assertSame([], $this->standard_rows(), 'logstore_standard skipped the visitor and the guest');
        $this->assertSame([], $this->read_back(), 'so did the TSDB store');

        $http = (new tsdb_test_http())->login($this->student->username, $this->student->clearpassword);
        $http->get('/course/view.php?id=' . $this->course->id);
        $standard = $this->standard_rows();
        $this->assertNotEmpty($standard);
        $this->assertSame([(int) $this->student->id], array_map('intval', array_unique(array_column($standard, 'userid'))));
        $this->assert_same_events($standard, $this->read_back());

        // With logguests on, the same visits are logged by both.
        $this->forget_events_so_far();
        $this->configure(['logguests' => 1]);
        set_config('logguests', 1, 'logstore_standard');
        $this->visitor_and_guest();
        $standard = $this->standard_rows();
        $names = array_column($standard, 'eventname');
        $this->assertContains('\\core\\event\\user_login_failed', $names);
        $this->assertContains('\\core\\event\\course_viewed', $names);
        $this->assertContains((string) guest_user()->id, array_column($standard, 'userid'));
        $this->assert_same_events($standard, $this->read_back());
        $this->assert_fpm_log_clean();
    }

    /**
     * A visitor who fails to log in, then a guest who logs in with the login page's guest button and opens the course.
     */
    protected function visitor_and_guest(): void {
        $visitor = new tsdb_test_http();
        $page = $visitor->get('/login/index.php');
        preg_match('~name="logintoken" value="([^"]+)"~', $page, $m);
        $visitor->post('/login/index.php', ['username' => $this->student->username, 'password' => 'wrong',
            'logintoken' => $m[1]]);
        $guest = new tsdb_test_http();
        $page = $guest->get('/login/index.php');
        preg_match('~name="logintoken" value="([^"]+)"~', $page, $m);
        $guest->post('/login/index.php', ['username' => 'guest', 'password' => 'guest', 'logintoken' => $m[1]]);
        $html = $guest->get('/course/view.php?id=' . $this->course->id);
        $this->assertSame(200, $guest->status);
        $this->assertStringContainsString(s($this->course->fullname), $html);
        $this->assertStringNotContainsString('/login/index.php', $guest->url, 'the guest is in the course');
        $this->assert_no_php_notice($html, 'course page as guest');
    }
}
