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
 * @param bool $probe with the circuit breaker open (the backend failed and batches go to the spool until the next
 *      probe, breaker_open_ms), try the backend now: a connection test right after an outage
 * @return int events still pending (accepted but not yet written, failed or rejected)
 */
function tsdb_flush(int $timeout_ms = 5000, bool $probe = false): int {}

/**
 * This process's counters: accepted, written, failed, rejected, dropped, truncated, retried, batches, pending,
 * queued_bytes, spooled, replayed, replay_rejected, spool_dropped, spool_bytes, spool_segments, quarantined,
 * spool_other_segments (segments spooled for another target: another backend, database or table; the flush thread
 * leaves them, tsdb_replay_spool() delivers them to the configured one), oldest_unsent_age_s, breaker (open/closed), last_error (secrets redacted), last_error_at, last_success_at
 * (unix seconds), schema_recreated (times the sink found its table or database gone and made it again),
 * schema_recreated_at (unix seconds, 0: never), schema_recreated_message (what it made again), warning (what is allowed but unsafe: credentials or events in clear text off this machine),
 * backend, mode, pid, version. accepted = written + failed + rejected + spooled + pending.
 *
 * @return array
 */
function tsdb_stats(): array {}

/**
 * Replays spooled batches, whatever target they were spooled for, to the configured backend for up to `max_ms` (for
 * a scheduled task or a CLI script).
 * Segments another process holds are skipped; a corrupt segment is moved to quarantine/ with the reason.
 *
 * @param int $max_ms
 * @return array segments, written, rejected, quarantined, busy, timed_out, error, remaining_segments,
 *               remaining_bytes, quarantined_total
 * @throws ValueError when no spool_dir is configured
 */
function tsdb_replay_spool(int $max_ms = 30000): array {}

/**
 * Imports a chunk of existing log rows (`logstore_standard_log`), written synchronously (or in the background with
 * `async`) through this process's own connection to the configured backend — not the live queue — with the usual
 * retries. The rows get an identity of their own: producer = a hash of `source` with the top bit set (no live
 * process has it; PostgreSQL shows it as a negative bigint), seq = the row's id, time = timecreated seconds +
 * (id mod 10⁹) ns. A row sent again, by any run, is therefore stored once: the PostgreSQL ledger skips it, InfluxDB
 * overwrites the same point. A resumed import only needs the last id written.
 *
 * Rows: COPY text lines as `pg_copy_to()` returns them (one or more lines per string; tab-separated, `\N` for NULL)
 * of the columns id, eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid,
 * contextlevel, contextinstanceid, userid, courseid, relateduserid, anonymous, other, timecreated, origin, ip,
 * realuserid — the table's own order — or arrays keyed by those names (a recordset's rows, `(array) $record`).
 * Ids must increase along the chunk. `other` may be JSON or PHP `serialize()` text (the standard store's jsonformat
 * off): arrays, scalars and stdClass are converted here as the extension encodes `other` arrays; `null`, `N;` and
 * empty are no `other`; other text is kept as a JSON string.
 *
 * Options:
 * - `source` (string, required): where the rows come from, e.g. `moodle:SITEIDENTIFIER:mdl_logstore_standard_log`.
 * - `from`, `to` (int|null): the `timecreated` window `[from, to)`; rows outside it are passed over (`outside`).
 * - `filters` (array|null): the store's filters — `include`, `exclude` (pattern lists as the settings hold them),
 *   `minedulevel` (int), `skipanonymous` (bool); null: none. Rows left out count in `filtered`.
 * - `logip` (bool, default true): false stores `ip` empty.
 * - `pseudonyms` (array|null): userid => pseudonym; an array replaces userid, relateduserid and realuserid (when not
 *   0) by their pseudonym (InfluxDB). A user missing from it makes the call return status `pseudonyms`.
 * - `other` (array): id => JSON (or null) for rows a previous call returned with status `convert`.
 * - `dry_run` (bool): parse, filter and count; write nothing.
 * - `async` (bool): return once the chunk is parsed (status `queued`) and write it in a background thread, after the
 *   chunk written there before (its report is in `finished`); call with no rows to wait for the last one.
 * - `batch_size` (int, default 50000): at most this many events per write (one transaction / request series).
 *
 * @param array $rows COPY text lines or row arrays
 * @param array $options
 * @return array status: `done` (written), `failed` (`error` says why; rows written stay written, send them again),
 *               `queued` (async), `idle` (async, no rows given), `convert` (nothing written: `convert` => [id => text]
 *               of `other` to convert with PHP's unserialize() and give back in `other`), `pseudonyms` (nothing
 *               written: `users` => user ids to add to `pseudonyms`); the chunk's counts: rows, events (handed to the
 *               sink), written (stored, or already there), rejected (refused by the sink), filtered, outside, invalid
 *               (not events), truncated, unserialized; last_id (the largest id given: every row up to it is settled
 *               once the chunk is done), min_time / max_time (timecreated of the events, or null), producer (as a
 *               bigint), messages (the first reasons of invalid and rejected rows), error, recreated (what the sink
 *               made again), finished (the reports of chunks written in the background and finished meanwhile)
 * @throws ValueError an unknown option, no source, ids not increasing, a line without 21 columns
 * @throws TypeError a row that is neither a string nor an array, a value of the wrong type
 */
function tsdb_import(array $rows, array $options): array {}

/**
 * The extension's version.
 */
function tsdb_version(): string {}
