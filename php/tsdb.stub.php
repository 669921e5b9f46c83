<?php
// IDE stubs for the tsdb extension (kept in sync with src/php.rs by php/tests/StubTest.php).
// @generate-function-entries

/**
 * Copies one Moodle event into this process's queue and returns at once; the flush thread writes it.
 *
 * Keys: eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid, contextlevel,
 * contextinstanceid, userid, courseid, relateduserid, anonymous, other, timecreated, origin, ip, realuserid.
 * `eventname` and `timecreated` are required. Integers may be given as int, numeric string, bool or null;
 * `other` as null, a nested array of scalars (JSON-encoded by the extension) or a JSON string.
 *
 * @param array $event
 * @return bool false only when the event was dropped because the memory cap is reached (counted in tsdb_stats()['dropped'])
 * @throws ValueError an unknown key, a missing required key, a non-numeric integer, invalid JSON in `other`, nesting over 32 levels
 * @throws TypeError an object, resource or closure anywhere in the event (the message names the key path)
 */
function tsdb_log_event(array $event): bool {}

/**
 * Logs many events; stops at the first invalid one (the events before it are kept) and throws naming its index.
 *
 * @param array $events list of event arrays
 * @return int how many were accepted
 */
function tsdb_log_events(array $events): int {}

/**
 * Validates and applies a configuration; keys not given take their tsdb.* ini value. See docs/configuration.md.
 * The same array again costs one comparison; a new one drains what was logged before to the old sink, then switches.
 *
 * @param array $config key => scalar (`tags` may also be a list); #[\SensitiveParameter]: stack traces never show it
 * @throws ValueError naming every bad key and why
 * @throws TypeError a non-scalar value
 */
function tsdb_configure(#[\SensitiveParameter] array $config): void {}

/**
 * Waits until what is queued is written or the timeout passes.
 *
 * @param int $timeout_ms
 * @return int events still pending (accepted but not yet written, failed or rejected)
 */
function tsdb_flush(int $timeout_ms = 5000): int {}

/**
 * This process's counters: accepted, written, failed, rejected, dropped, truncated, retried, batches, pending,
 * queued_bytes, spooled, replayed, replay_rejected, spool_dropped, spool_bytes, spool_segments, quarantined,
 * oldest_unsent_age_s, breaker (open/closed), last_error (secrets redacted), last_error_at, last_success_at
 * (unix seconds), schema_recreated (times the sink found its table or database gone and made it again),
 * schema_recreated_at (unix seconds, 0: never), schema_recreated_message (what it made again), warning (what is allowed but unsafe: credentials or events in clear text off this machine),
 * backend, mode, pid, version. accepted = written + failed + rejected + spooled + pending.
 *
 * @return array
 */
function tsdb_stats(): array {}

/**
 * Replays spooled batches to the configured backend for up to `max_ms` (for a scheduled task or a CLI script).
 * Segments another process holds are skipped; a corrupt segment is moved to quarantine/ with the reason.
 *
 * @param int $max_ms
 * @return array segments, written, rejected, quarantined, busy, timed_out, error, remaining_segments,
 *               remaining_bytes, quarantined_total
 * @throws ValueError when no spool_dir is configured
 */
function tsdb_replay_spool(int $max_ms = 30000): array {}

/**
 * The extension's version.
 */
function tsdb_version(): string {}
