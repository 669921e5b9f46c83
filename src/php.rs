//! The PHP glue: functions, ini settings, phpinfo() and the module hooks. Everything else lives in
//! the core; this module only reads zvals into records and turns results into PHP values.
//!
//! Rules kept here (field notes, traps 4–7): ini values are read in the PHP thread on first use in the
//! process (FPM pool `php_admin_value` included), never from the flush thread; array keys and strings
//! are read as bytes (non-UTF-8 safe); hooks catch panics.

use crate::config::{self, Config, ConfigError, Kind};
use crate::event::{Field, IntField, StrField};
use crate::import;
use crate::json;
use crate::pipeline::Pipeline;
use crate::process;
use crate::record::RecordWriter;
use crate::stats::Stats;
use ext_php_rs::boxed::ZBox;
use ext_php_rs::ffi;
use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, ZendStr, Zval};
use ext_php_rs::zend::{ce, ExecutorGlobals, IniEntryDef, ModuleEntry};
use parking_lot::Mutex;
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Nesting limit for `other` (Moodle's is a flat or shallow array).
const MAX_DEPTH: usize = 32;

// ---------------------------------------------------------------------------------------------
// Errors

enum Problem {
    Type(String),
    Value(String),
}

impl From<Problem> for PhpException {
    fn from(p: Problem) -> Self {
        match p {
            Problem::Type(m) => PhpException::new(m, 0, ce::type_error()),
            Problem::Value(m) => PhpException::new(m, 0, ce::value_error()),
        }
    }
}

impl From<std::io::Error> for Problem {
    fn from(e: std::io::Error) -> Self {
        Problem::Value(format!("tsdb: cannot start the flush thread: {e}"))
    }
}

fn config_problem(e: ConfigError) -> Problem {
    Problem::Value(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Reading zvals as bytes

enum Key<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Str(s) => f.write_str(&printable(s)),
            Key::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A key or value safe to put in an error message: bounded, control characters escaped.
fn printable(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(64)]).chars().flat_map(char::escape_default).collect()
}

fn zstr_bytes<'a>(s: *const ffi::zend_string) -> &'a [u8] {
    // SAFETY: a live zend_string owned by an array or zval that outlives the borrow.
    unsafe { (*(s as *const ZendStr)).as_bytes() }
}

const IS_PACKED: u32 = 1 << 2;

/// Visits every element of a PHP array in order, reading the buckets directly (about six times
/// cheaper than the crate's iterator, and byte-exact for keys).
fn each<'a, E>(ht: &'a ZendHashTable, mut f: impl FnMut(Key<'a>, &'a Zval) -> Result<(), E>) -> Result<(), E> {
    // SAFETY: reading the documented layout of a live zend_array; UNDEF slots are skipped.
    unsafe {
        let used = ht.nNumUsed as usize;
        if ht.u.flags & IS_PACKED != 0 {
            let base = ht.__bindgen_anon_1.arPacked as *const Zval;
            for i in 0..used {
                let zv = &*base.add(i);
                if zv.u1.type_info & 0xff != 0 {
                    f(Key::Int(i as i64), zv)?;
                }
            }
        } else {
            let base = ht.__bindgen_anon_1.arData as *const ffi::Bucket;
            for i in 0..used {
                let b = &*base.add(i);
                if b.val.u1.type_info & 0xff == 0 {
                    continue;
                }
                let key = if b.key.is_null() { Key::Int(b.h as i64) } else { Key::Str(zstr_bytes(b.key)) };
                f(key, &*(&b.val as *const ffi::zval as *const Zval))?;
            }
        }
    }
    Ok(())
}

/// True when the array's keys are 0..n-1 in order (json_encode's "list").
fn is_list(ht: &ZendHashTable) -> bool {
    // SAFETY: `flags` is the u32 view of the array's flag bytes.
    if unsafe { ht.u.flags } & IS_PACKED != 0 && ht.nNumUsed == ht.nNumOfElements {
        return true;
    }
    let mut next = 0i64;
    each(ht, |k, _| match k {
        Key::Int(i) if i == next => {
            next += 1;
            Ok(())
        }
        _ => Err(()),
    })
    .is_ok()
}

/// The zval a reference or indirect slot points to.
fn deref(zv: &Zval) -> &Zval {
    let mut zv = zv;
    // SAFETY: IS_REFERENCE (10) holds a zend_reference, IS_INDIRECT (12) a zval pointer.
    unsafe {
        loop {
            match zv.u1.type_info & 0xff {
                10 => zv = &*(&(*zv.value.ref_).val as *const ffi::zval as *const Zval),
                12 => zv = &*(zv.value.zv as *const Zval),
                _ => return zv,
            }
        }
    }
}

fn type_name(zv: &Zval) -> &'static str {
    match zv.u1_type() {
        1 => "null",
        2 | 3 => "bool",
        4 => "int",
        5 => "float",
        6 => "string",
        7 => "array",
        8 => "object",
        9 => "resource",
        _ => "unknown",
    }
}

trait U1 {
    fn u1_type(&self) -> u32;
}

impl U1 for Zval {
    fn u1_type(&self) -> u32 {
        // SAFETY: every zval has a type byte.
        unsafe { self.u1.type_info & 0xff }
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// Writes one PHP event array into a record.
fn fill_event(ht: &ZendHashTable, w: &mut RecordWriter<'_>, cfg: &Config) -> Result<(), Problem> {
    let max_str = cfg.hot().max_string;
    let max_other = cfg.hot().max_other;
    let mut has_name = false;
    each(ht, |key, raw| {
        let Key::Str(k) = key else {
            return Err(Problem::Value(format!("[{key}]: unknown event key (event keys are names like eventname)")));
        };
        let field = Field::from_key(k).ok_or_else(|| Problem::Value(format!("{}: unknown event key", printable(k))))?;
        let zv = deref(raw);
        match field {
            Field::Int(f) => {
                if let Some(v) = int_value(zv, f)? {
                    w.set_int(f, v);
                }
            }
            Field::Str(StrField::Other) => put_other(w, zv, max_other)?,
            Field::Str(f) => {
                let mut tmp = itoa::Buffer::new();
                let bytes: &[u8] = match zv.u1_type() {
                    1 => return Ok(()),
                    2 => b"",
                    3 => b"1",
                    4 => tmp.format(unsafe { zv.value.lval }).as_bytes(),
                    6 => zstr_bytes(unsafe { zv.value.str_ }),
                    _ => return Err(Problem::Type(format!("{}: must be a string, {} given", f.name(), type_name(zv)))),
                };
                if f == StrField::EventName {
                    has_name = !bytes.is_empty();
                }
                w.put_str(f, bytes, max_str);
            }
        }
        Ok(())
    })?;
    if !has_name {
        return Err(Problem::Value("eventname: required (a non-empty string)".into()));
    }
    if !w.has_int(IntField::TimeCreated) {
        return Err(Problem::Value("timecreated: required (unix seconds)".into()));
    }
    Ok(())
}

fn int_value(zv: &Zval, f: IntField) -> Result<Option<i64>, Problem> {
    // SAFETY: each arm reads the union member its type byte names.
    match zv.u1_type() {
        1 => Ok(None),
        2 => Ok(Some(0)),
        3 => Ok(Some(1)),
        4 => Ok(Some(unsafe { zv.value.lval })),
        5 => {
            let d = unsafe { zv.value.dval };
            if d.fract() == 0.0 && d.abs() < 9.0e15 {
                Ok(Some(d as i64))
            } else {
                Err(Problem::Value(format!("{}: must be an integer, {d} given", f.name())))
            }
        }
        6 => {
            let s = zstr_bytes(unsafe { zv.value.str_ });
            if s.is_empty() {
                return Ok(None);
            }
            std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .map(Some)
                .ok_or_else(|| Problem::Value(format!("{}: must be an integer, \"{}\" given", f.name(), printable(s))))
        }
        _ => Err(Problem::Type(format!("{}: must be int, numeric string or null, {} given", f.name(), type_name(zv)))),
    }
}

/// `other`: null (absent), an array or scalar (JSON-encoded here) or a JSON string (validated).
/// JSON longer than `cap` is replaced by `{"tsdb_truncated":BYTES,"head":"..."}` and flagged.
fn put_other(w: &mut RecordWriter<'_>, zv: &Zval, cap: usize) -> Result<(), Problem> {
    match zv.u1_type() {
        1 => return Ok(()),
        6 => {
            let s = zstr_bytes(unsafe { zv.value.str_ });
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(s) {
                return Err(Problem::Value(format!("other: a string must be JSON ({e}); pass an array instead")));
            }
            let s_len = s.len();
            let open = w.open_str(StrField::Other);
            w.out().extend_from_slice(s);
            crate::record::shrink_other(w, &open, cap, s_len);
            w.close_str(open);
        }
        _ => {
            let open = w.open_str(StrField::Other);
            write_json(w.out(), zv, 0, None)?;
            let len = w.str_len(&open);
            crate::record::shrink_other(w, &open, cap, len);
            w.close_str(open);
        }
    }
    Ok(())
}

/// Where a value sits inside `other`, as a list on the stack (built into text only for an error).
struct Path<'p> {
    key: Key<'p>,
    parent: Option<&'p Path<'p>>,
}

fn path_text(path: Option<&Path<'_>>) -> String {
    let mut keys = Vec::new();
    let mut at = path;
    while let Some(p) = at {
        keys.push(p.key.to_string());
        at = p.parent;
    }
    keys.push("other".into());
    keys.reverse();
    keys.join(".")
}

fn write_json(out: &mut Vec<u8>, zv: &Zval, depth: usize, path: Option<&Path<'_>>) -> Result<(), Problem> {
    // SAFETY: each arm reads the union member its type byte names.
    match zv.u1_type() {
        1 => out.extend_from_slice(b"null"),
        2 => out.extend_from_slice(b"false"),
        3 => out.extend_from_slice(b"true"),
        4 => json::write_i64(out, unsafe { zv.value.lval }),
        5 => json::write_f64(out, unsafe { zv.value.dval }),
        6 => json::write_str(out, zstr_bytes(unsafe { zv.value.str_ })),
        7 => {
            if depth >= MAX_DEPTH {
                return Err(Problem::Value(format!("{}: nested deeper than {MAX_DEPTH} levels", path_text(path))));
            }
            // SAFETY: IS_ARRAY holds a live zend_array.
            let ht: &ZendHashTable = unsafe { &*zv.value.arr };
            let list = is_list(ht);
            out.push(if list { b'[' } else { b'{' });
            let mut first = true;
            each(ht, |k, v| {
                if !first {
                    out.push(b',');
                }
                first = false;
                if !list {
                    match k {
                        Key::Str(s) => json::write_str(out, s),
                        Key::Int(i) => {
                            out.push(b'"');
                            json::write_i64(out, i);
                            out.push(b'"');
                        }
                    }
                    out.push(b':');
                }
                let here = Path { key: k, parent: path };
                write_json(out, deref(v), depth + 1, Some(&here))?;
                Ok::<(), Problem>(())
            })?;
            out.push(if list { b']' } else { b'}' });
        }
        _ => {
            return Err(Problem::Type(format!(
                "{}: {} values are not allowed in an event",
                path_text(path),
                type_name(zv)
            )))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Configuration: ini defaults, overridden by tsdb_configure()

fn ini_name(key: &str) -> String {
    format!("tsdb.{key}")
}

/// One `tsdb.*` ini value; `fixed` when the server set it with FPM's `php_admin_value` (which makes an
/// entry unchangeable from PHP code): `tsdb_configure()` does not override those.
struct IniValue {
    key: &'static str,
    value: String,
    fixed: bool,
}

/// The `tsdb.*` ini values, read in the PHP thread.
fn ini_pairs() -> Vec<IniValue> {
    let eg = ExecutorGlobals::get();
    // SAFETY: EG(ini_directives) is valid during a request; entries are zend_ini_entry pointers.
    let Some(table) = (unsafe { eg.ini_directives.as_ref() }) else {
        return Vec::new();
    };
    config::SPECS
        .iter()
        .filter_map(|s| {
            let zv = table.get(ini_name(s.key).as_str())?;
            let entry = unsafe { zv.ptr::<ffi::zend_ini_entry>()?.as_ref()? };
            let value = unsafe { entry.value.as_ref() }?;
            // ZEND_INI_USER (1) cleared: only the server may change it.
            let fixed = entry.modifiable & 1 == 0;
            Some(IniValue { key: s.key, value: String::from_utf8_lossy(zstr_bytes(value)).into_owned(), fixed })
        })
        .collect()
}

fn ini_config() -> Result<Config, Problem> {
    let pairs = ini_pairs();
    Config::from_pairs(pairs.iter().map(|p| (p.key, p.value.as_str()))).map_err(|e| {
        Problem::Value(format!("php.ini: {}", e.0.iter().map(|m| format!("tsdb.{m}")).collect::<Vec<_>>().join("; ")))
    })
}

/// Converts a tsdb_configure() value to the text form every key is validated from.
fn config_value(key: &str, zv: &Zval) -> Result<String, Problem> {
    // SAFETY: each arm reads the union member its type byte names.
    Ok(match zv.u1_type() {
        1 => String::new(),
        2 => "0".into(),
        3 => "1".into(),
        4 => unsafe { zv.value.lval }.to_string(),
        5 => unsafe { zv.value.dval }.to_string(),
        6 => match std::str::from_utf8(zstr_bytes(unsafe { zv.value.str_ })) {
            Ok(s) => s.to_string(),
            Err(_) => return Err(Problem::Value(format!("{key}: must be valid UTF-8"))),
        },
        7 if config::spec(key).is_some_and(|s| s.kind == Kind::TagList) => {
            let mut parts = Vec::new();
            each(unsafe { &*zv.value.arr }, |_, v| {
                parts.push(config_value(key, deref(v))?);
                Ok::<(), Problem>(())
            })?;
            parts.join(",")
        }
        _ => return Err(Problem::Type(format!("{key}: must be a scalar, {} given", type_name(zv)))),
    })
}

/// The last tsdb_configure() input: the same array again costs one comparison.
type RawConfig = Vec<(Vec<u8>, Vec<u8>)>;
static LAST_INPUT: Mutex<Option<RawConfig>> = Mutex::new(None);

fn configure(arr: &ZendHashTable) -> Result<(), Problem> {
    let mut input = Vec::new();
    let mut errors = Vec::new();
    let mut type_error = false;
    each(arr, |k, v| {
        let key = match k {
            Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Key::Int(i) => i.to_string(),
        };
        match config_value(&key, deref(v)) {
            Ok(val) => input.push((key.into_bytes(), val.into_bytes())),
            Err(Problem::Type(m)) => {
                type_error = true;
                errors.push(m);
            }
            Err(Problem::Value(m)) => errors.push(m),
        }
        Ok::<(), Problem>(())
    })?;
    if !errors.is_empty() {
        let all = errors.join("; ");
        return Err(if type_error { Problem::Type(all) } else { Problem::Value(all) });
    }
    if process::get().is_some() && LAST_INPUT.lock().as_ref() == Some(&input) {
        return Ok(());
    }
    let ini = ini_pairs();
    let mut overridden = Vec::new();
    let strs: Vec<(String, String)> = input
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
        .filter(|(k, v)| match ini.iter().find(|p| p.fixed && p.key == k) {
            Some(p) => {
                if p.value != *v {
                    overridden.push(format!(
                        "{k}: fixed by the server (php_admin_value[tsdb.{k}]); the value given to tsdb_configure() is not used"
                    ));
                }
                false
            }
            None => true,
        })
        .collect();
    let merged =
        ini.iter().map(|p| (p.key, p.value.as_str())).chain(strs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let config = Config::from_pairs(merged).map_err(config_problem)?;
    process::configure(config)?;
    *LAST_INPUT.lock() = Some(input);
    *NOT_OVERRIDDEN.lock() = overridden;
    Ok(())
}

/// What the last tsdb_configure() asked to change that the server had fixed (`php_admin_value`).
static NOT_OVERRIDDEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn pipeline() -> Result<&'static Pipeline, Problem> {
    process::get_or_start(ini_config)
}

// ---------------------------------------------------------------------------------------------
// PHP functions

/// Copies one event into the queue and returns at once. False only when it was dropped (memory cap).
#[php_function]
pub fn tsdb_log_event(event: &ZendHashTable) -> PhpResult<bool> {
    let p = pipeline()?;
    Ok(p.log(|w, cfg| fill_event(event, w, cfg))?)
}

/// Logs many events; returns how many were accepted. Stops at the first invalid one (those before it
/// are kept) and throws naming its index and key.
#[php_function]
pub fn tsdb_log_events(events: &ZendHashTable) -> PhpResult<i64> {
    let p = pipeline()?;
    let mut accepted = 0i64;
    each(events, |k, v| {
        let v = deref(v);
        if v.u1_type() != 7 {
            return Err(Problem::Type(format!("[{k}]: each event must be an array, {} given", type_name(v))));
        }
        // SAFETY: IS_ARRAY holds a live zend_array.
        let ht = unsafe { &*v.value.arr };
        let ok = p.log(|w, cfg| fill_event(ht, w, cfg)).map_err(|e| match e {
            Problem::Type(m) => Problem::Type(format!("[{k}] {m}")),
            Problem::Value(m) => Problem::Value(format!("[{k}] {m}")),
        })?;
        accepted += i64::from(ok);
        Ok(())
    })?;
    Ok(accepted)
}

/// Validates and applies a configuration (keys not given take their `tsdb.*` ini value).
#[php_function]
pub fn tsdb_configure(config: &ZendHashTable) -> PhpResult<()> {
    Ok(configure(config)?)
}

/// Waits until what is queued is written or `timeout_ms` passes; returns the events still pending.
/// `probe`: with the circuit breaker open (an outage), try the backend now (Test connection).
#[php_function]
#[php(defaults(timeout_ms = 5000, probe = false))]
pub fn tsdb_flush(timeout_ms: i64, probe: bool) -> i64 {
    let t = Duration::from_millis(timeout_ms.max(0) as u64);
    process::get().map_or(0, |p| p.flush_with(t, probe) as i64)
}

/// This process's counters.
#[php_function]
pub fn tsdb_stats() -> PhpResult<ZBox<ZendHashTable>> {
    let mut ht = ZendHashTable::new();
    let (config, stats) = match process::get() {
        Some(p) => (p.config(), Some(p)),
        None => (std::sync::Arc::new(ini_config()?), None),
    };
    let zero = Stats::default();
    let s = stats.map_or(&zero, |p| p.stats());
    let counters = [
        ("accepted", s.accepted.load(Relaxed)),
        ("written", s.written.load(Relaxed)),
        ("failed", s.failed.load(Relaxed)),
        ("rejected", s.rejected.load(Relaxed)),
        ("dropped", s.dropped.load(Relaxed)),
        ("truncated", s.truncated.load(Relaxed)),
        ("retried", s.retried.load(Relaxed)),
        ("batches", s.batches.load(Relaxed)),
        ("pending", s.pending()),
        ("queued_bytes", stats.map_or(0, |p| p.queued_bytes() as u64)),
    ];
    for (k, v) in counters {
        ht.insert(k, v as i64)?;
    }
    let (usage, quarantined, others) = crate::spool::usage_of(&config, false);
    let now_ms = crate::stats::now_unix() * 1000;
    let spool = [
        ("spooled", s.spooled.load(Relaxed)),
        ("replayed", s.replayed.load(Relaxed)),
        ("replay_rejected", s.replay_rejected.load(Relaxed)),
        ("spool_dropped", s.spool_dropped.load(Relaxed)),
        ("spool_bytes", usage.bytes),
        ("spool_segments", usage.segments),
        ("quarantined", quarantined),
        ("spool_other_segments", others),
        ("oldest_unsent_age_s", usage.oldest_created_ms.map_or(0, |t| (now_ms - t).max(0) as u64 / 1000)),
    ];
    for (k, v) in spool {
        ht.insert(k, v as i64)?;
    }
    ht.insert("breaker", if s.breaker_open.load(Relaxed) { "open" } else { "closed" })?;
    ht.insert("last_error", s.last_error())?;
    let warnings: Vec<String> = config.warnings().into_iter().chain(NOT_OVERRIDDEN.lock().iter().cloned()).collect();
    ht.insert("warning", warnings.join("; "))?;
    ht.insert("last_error_at", s.last_error_at.load(Relaxed))?;
    ht.insert("last_success_at", s.last_success_at.load(Relaxed))?;
    ht.insert("schema_recreated", s.schema_recreated.load(Relaxed) as i64)?;
    ht.insert("schema_recreated_at", s.schema_recreated_at.load(Relaxed))?;
    ht.insert("schema_recreated_message", s.schema_recreated_message())?;
    ht.insert("backend", config.backend())?;
    ht.insert("mode", config.mode())?;
    ht.insert("pid", i64::from(std::process::id()))?;
    ht.insert("version", crate::VERSION)?;
    Ok(ht)
}

/// Replays spooled batches to the configured backend for up to `max_ms` (a Moodle scheduled task, a
/// CLI script). Segments another process holds are skipped.
#[php_function]
#[php(defaults(max_ms = 30000))]
pub fn tsdb_replay_spool(max_ms: i64) -> PhpResult<ZBox<ZendHashTable>> {
    let config = match process::get() {
        Some(p) => (*p.config()).clone(),
        None => ini_config()?,
    };
    let rep = crate::spool::replay_with(&config, Duration::from_millis(max_ms.max(0) as u64))
        .map_err(|e| Problem::Value(config.redact(&e)))?;
    if let Some(p) = process::get() {
        for msg in &rep.recreated {
            p.stats().note_recreated(&config.redact(msg));
        }
    }
    let (usage, quarantined, _) = crate::spool::usage_of(&config, true);
    let mut ht = ZendHashTable::new();
    ht.insert("segments", rep.segments as i64)?;
    ht.insert("written", rep.written as i64)?;
    ht.insert("rejected", rep.rejected as i64)?;
    ht.insert("quarantined", rep.quarantined as i64)?;
    ht.insert("busy", rep.busy as i64)?;
    ht.insert("timed_out", rep.timed_out)?;
    ht.insert("error", rep.error.map(|e| config.redact(&e)).unwrap_or_default())?;
    ht.insert("remaining_segments", usage.segments as i64)?;
    ht.insert("remaining_bytes", usage.bytes as i64)?;
    ht.insert("quarantined_total", quarantined as i64)?;
    Ok(ht)
}

// ---------------------------------------------------------------------------------------------
// Import (the logic is in `import`; this only reads the arguments and builds the result)

fn opt_bytes<'a>(key: &str, zv: &'a Zval) -> Result<&'a [u8], Problem> {
    match zv.u1_type() {
        1 => Ok(b""),
        6 => Ok(zstr_bytes(unsafe { zv.value.str_ })),
        _ => Err(Problem::Type(format!("{key}: must be a string, {} given", type_name(zv)))),
    }
}

fn opt_int(key: &str, zv: &Zval) -> Result<i64, Problem> {
    match zv.u1_type() {
        1 | 2 => Ok(0),
        3 => Ok(1),
        4 => Ok(unsafe { zv.value.lval }),
        6 => std::str::from_utf8(zstr_bytes(unsafe { zv.value.str_ }))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Problem::Value(format!("{key}: must be an integer"))),
        _ => Err(Problem::Type(format!("{key}: must be an integer, {} given", type_name(zv)))),
    }
}

fn opt_array<'a>(key: &str, zv: &'a Zval) -> Result<Option<&'a ZendHashTable>, Problem> {
    match zv.u1_type() {
        1 => Ok(None),
        // SAFETY: IS_ARRAY holds a live zend_array.
        7 => Ok(Some(unsafe { &*zv.value.arr })),
        _ => Err(Problem::Type(format!("{key}: must be an array or null, {} given", type_name(zv)))),
    }
}

/// Reads tsdb_import()'s options (php/tsdb.stub.php).
fn import_options(options: &ZendHashTable, config: &Config) -> Result<(import::Options, usize, bool), Problem> {
    let mut o = import::Options::new(b"", config);
    let mut max_batch = 50_000usize;
    let mut background = false;
    each(options, |k, v| {
        let key = match k {
            Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Key::Int(i) => i.to_string(),
        };
        let v = deref(v);
        match key.as_str() {
            "source" => o.source = opt_bytes("source", v)?.to_vec(),
            "dry_run" => o.dry_run = opt_int("dry_run", v)? != 0,
            "async" => background = opt_int("async", v)? != 0,
            "from" => o.from = (v.u1_type() != 1).then(|| opt_int("from", v)).transpose()?,
            "to" => o.to = (v.u1_type() != 1).then(|| opt_int("to", v)).transpose()?,
            "logip" => o.drop_ip = opt_int("logip", v)? == 0,
            "batch_size" => max_batch = opt_int("batch_size", v)?.clamp(1, 1_000_000) as usize,
            "filters" => {
                o.filters = match opt_array("filters", v)? {
                    None => None,
                    Some(ht) => {
                        let mut f = import::Filters::default();
                        each(ht, |fk, fv| {
                            let fv = deref(fv);
                            match fk {
                                Key::Str(b"include") => f.set_include(opt_bytes("filters.include", fv)?),
                                Key::Str(b"exclude") => f.set_exclude(opt_bytes("filters.exclude", fv)?),
                                Key::Str(b"minedulevel") => f.min_edulevel = opt_int("filters.minedulevel", fv)?,
                                Key::Str(b"skipanonymous") => {
                                    f.skip_anonymous = opt_int("filters.skipanonymous", fv)? != 0
                                }
                                other => return Err(Problem::Value(format!("filters.{other}: unknown filter"))),
                            }
                            Ok(())
                        })?;
                        Some(f)
                    }
                }
            }
            "pseudonyms" => {
                o.pseudonyms = match opt_array("pseudonyms", v)? {
                    None => None,
                    Some(ht) => {
                        let mut map = std::collections::HashMap::with_capacity(ht.len());
                        each(ht, |uk, pv| {
                            let Key::Int(user) = uk else {
                                return Err(Problem::Value("pseudonyms: keys must be user ids".into()));
                            };
                            map.insert(user, opt_int("pseudonyms", deref(pv))?);
                            Ok(())
                        })?;
                        Some(map)
                    }
                }
            }
            "other" => {
                if let Some(ht) = opt_array("other", v)? {
                    each(ht, |ik, jv| {
                        let Key::Int(id) = ik else {
                            return Err(Problem::Value("other: keys must be row ids".into()));
                        };
                        let jv = deref(jv);
                        let json = if jv.u1_type() == 1 { None } else { Some(opt_bytes("other", jv)?.to_vec()) };
                        o.other.insert(id as u64, json);
                        Ok(())
                    })?;
                }
            }
            _ => return Err(Problem::Value(format!("{}: unknown option", printable(key.as_bytes())))),
        }
        Ok(())
    })?;
    if o.source.is_empty() {
        return Err(Problem::Value("source: required (the name of the import source)".into()));
    }
    Ok((o, max_batch, background))
}

/// One row given as an array (column => value) as a COPY text line.
fn row_line(row: &ZendHashTable, out: &mut Vec<u8>) -> Result<(), Problem> {
    let mut values: [Option<&[u8]>; 21] = [None; 21];
    let mut nums: [itoa::Buffer; 21] = std::array::from_fn(|_| itoa::Buffer::new());
    let mut ints: [Option<i64>; 21] = [None; 21];
    each(row, |k, v| {
        let Key::Str(name) = k else { return Ok(()) };
        let Some(i) = import::COLUMNS.iter().position(|c| c.as_bytes() == name) else { return Ok(()) };
        let v = deref(v);
        // SAFETY: each arm reads the union member its type byte names.
        match v.u1_type() {
            1 => {}
            2 => values[i] = Some(b""),
            3 => ints[i] = Some(1),
            4 => ints[i] = Some(unsafe { v.value.lval }),
            5 if unsafe { v.value.dval }.fract() == 0.0 && unsafe { v.value.dval }.abs() < 9.0e15 => {
                ints[i] = Some(unsafe { v.value.dval } as i64)
            }
            6 => values[i] = Some(zstr_bytes(unsafe { v.value.str_ })),
            _ => {
                return Err(Problem::Type(format!(
                    "{}: must be a string, an integer or null, {} given",
                    printable(name),
                    type_name(v)
                )))
            }
        }
        Ok(())
    })?;
    for (i, num) in nums.iter_mut().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match ints[i] {
            Some(n) => out.extend_from_slice(num.format(n).as_bytes()),
            None => import::push_copy_field(out, values[i]),
        }
    }
    out.push(b'\n');
    Ok(())
}

fn zerr(e: ext_php_rs::error::Error) -> Problem {
    Problem::Value(e.to_string())
}

/// A chunk's report as tsdb_import() returns it.
fn report_array(
    r: &import::Report,
    status: &str,
    error: &str,
    recreated: &[String],
    producer: i64,
) -> Result<ZBox<ZendHashTable>, Problem> {
    let mut ht = ZendHashTable::new();
    ht.insert("status", status).map_err(zerr)?;
    for (k, v) in [
        ("rows", r.rows),
        ("events", r.events),
        ("written", r.written),
        ("rejected", r.rejected),
        ("filtered", r.filtered),
        ("outside", r.outside),
        ("invalid", r.invalid),
        ("truncated", r.truncated),
        ("unserialized", r.unserialized),
        ("last_id", r.last_id),
    ] {
        ht.insert(k, v as i64).map_err(zerr)?;
    }
    for (k, v) in [("min_time", r.min_time), ("max_time", r.max_time)] {
        match v {
            Some(t) => ht.insert(k, t).map_err(zerr)?,
            None => ht.insert(k, ()).map_err(zerr)?,
        }
    }
    ht.insert("producer", producer).map_err(zerr)?;
    ht.insert("messages", r.messages.clone()).map_err(zerr)?;
    ht.insert("error", error).map_err(zerr)?;
    ht.insert("recreated", recreated.to_vec()).map_err(zerr)?;
    Ok(ht)
}

fn done_array(d: &import::Done, producer: i64) -> Result<ZBox<ZendHashTable>, Problem> {
    let status = if d.error.is_some() { "failed" } else { "done" };
    report_array(&d.report, status, d.error.as_deref().unwrap_or(""), &d.recreated, producer)
}

fn import_chunk(rows: &ZendHashTable, options: &ZendHashTable) -> Result<ZBox<ZendHashTable>, Problem> {
    let config = match process::get() {
        Some(p) => (*p.config()).clone(),
        None => ini_config()?,
    };
    let (opts, max_batch, background) = import_options(options, &config)?;
    let producer = import::producer_of(&opts.source) as i64;
    let finished = |before: Option<import::Done>| -> Result<Vec<ZBox<ZendHashTable>>, Problem> {
        before.iter().map(|d| done_array(d, producer)).collect()
    };
    if rows.is_empty() && background {
        let mut ht = report_array(&import::Report::default(), "idle", "", &[], producer)?;
        ht.insert("finished", finished(import::wait())?).map_err(zerr)?;
        return Ok(ht);
    }
    // COPY lines as given (strings), or rows as arrays turned into lines.
    let mut parts: Vec<&[u8]> = Vec::with_capacity(rows.len());
    let mut made = Vec::new();
    each(rows, |k, v| {
        let v = deref(v);
        match v.u1_type() {
            6 if made.is_empty() => parts.push(zstr_bytes(unsafe { v.value.str_ })),
            6 => made.extend_from_slice(zstr_bytes(unsafe { v.value.str_ })),
            7 => {
                for p in parts.drain(..) {
                    made.extend_from_slice(p);
                    if !p.ends_with(b"\n") {
                        made.push(b'\n');
                    }
                }
                // SAFETY: IS_ARRAY holds a live zend_array.
                row_line(unsafe { &*v.value.arr }, &mut made).map_err(|e| match e {
                    Problem::Type(m) => Problem::Type(format!("[{k}] {m}")),
                    Problem::Value(m) => Problem::Value(format!("[{k}] {m}")),
                })?;
            }
            _ => {
                return Err(Problem::Type(format!(
                    "[{k}]: a row must be a COPY text line (string) or an array, {} given",
                    type_name(v)
                )))
            }
        }
        Ok(())
    })?;
    if !made.is_empty() {
        parts = vec![&made[..]];
    }
    let prepared = match import::prepare(import::lines(parts.iter().copied()), &opts) {
        Ok(p) => p,
        Err(import::Need::Refused(m)) => return Err(Problem::Value(m)),
        Err(import::Need::Convert(rows)) => {
            let mut list = ZendHashTable::new();
            for (id, text) in rows {
                let mut z = Zval::new();
                z.set_zend_string(ZendStr::new(&text[..], false));
                list.insert_at_index(id as i64, z).map_err(zerr)?;
            }
            let mut ht = report_array(&import::Report::default(), "convert", "", &[], producer)?;
            ht.insert("convert", list).map_err(zerr)?;
            return Ok(ht);
        }
        Err(import::Need::Pseudonyms(users)) => {
            let mut ht = report_array(&import::Report::default(), "pseudonyms", "", &[], producer)?;
            ht.insert("users", users).map_err(zerr)?;
            return Ok(ht);
        }
    };
    let (mut ht, before) = if opts.dry_run {
        (report_array(&prepared.report, "done", "", &[], producer)?, None)
    } else if background {
        let queued = report_array(&prepared.report, "queued", "", &[], producer)?;
        let before = import::write_behind(&config, prepared, max_batch).map_err(|e| Problem::Value(e.0))?;
        (queued, before)
    } else {
        let (before, done) = import::write_now(&config, &prepared, max_batch);
        (done_array(&done, producer)?, before)
    };
    ht.insert("finished", finished(before)?).map_err(zerr)?;
    Ok(ht)
}

/// Imports a chunk of existing log rows with an identity of their own (php/tsdb.stub.php).
#[php_function]
pub fn tsdb_import(rows: &ZendHashTable, options: &ZendHashTable) -> PhpResult<ZBox<ZendHashTable>> {
    Ok(import_chunk(rows, options)?)
}

#[php_function]
pub fn tsdb_version() -> &'static str {
    crate::VERSION
}

// ---------------------------------------------------------------------------------------------
// Module hooks

fn ini_entries() -> &'static [IniEntryDef] {
    let mut v: Vec<IniEntryDef> = config::SPECS
        .iter()
        .filter_map(|s| {
            let name: &'static CStr = Box::leak(CString::new(ini_name(s.key)).ok()?.into_boxed_c_str());
            let value: &'static CStr = Box::leak(CString::new(s.default).ok()?.into_boxed_c_str());
            Some(IniEntryDef::new(name, value, IniEntryPermission::All))
        })
        .collect();
    v.push(IniEntryDef::end());
    Box::leak(v.into_boxed_slice())
}

extern "C" {
    // ZEND_API since PHP 8.1 (zend_attributes.h); not among ext-php-rs's bindings.
    fn zend_add_attribute(
        attributes: *mut *mut ffi::HashTable,
        name: *mut ffi::zend_string,
        argc: u32,
        flags: u32,
        offset: u32,
        lineno: u32,
    ) -> *mut std::ffi::c_void;
}

/// Marks the first parameter of `tsdb_configure()` `#[\SensitiveParameter]`, as PHP does for
/// `password_hash()`: a stack trace (`zend.exception_ignore_args = Off`) then shows a
/// `SensitiveParameterValue` instead of the array holding the token or password.
fn mark_sensitive_parameters() {
    const NAME: &str = "tsdb_configure";
    const ZEND_ATTRIBUTE_PERSISTENT: u32 = 1;
    // SAFETY: MINIT, in the PHP thread, after the module's functions were registered in the
    // compiler's function table; what gen_stub.php emits for a parameter attribute (offset is 1-based).
    unsafe {
        let table = ffi::compiler_globals.function_table;
        if table.is_null() {
            return;
        }
        let func = ffi::zend_hash_str_find_ptr_lc(table, NAME.as_ptr().cast(), NAME.len()).cast::<ffi::zend_function>();
        if func.is_null() {
            return;
        }
        let name = *ffi::zend_known_strings.add(ffi::_zend_known_string_id_ZEND_STR_SENSITIVEPARAMETER as usize);
        zend_add_attribute(&mut (*func).common.attributes, name, 0, ZEND_ATTRIBUTE_PERSISTENT, 1, 0);
    }
}

extern "C" fn startup(_ty: i32, module_number: i32) -> i32 {
    let ok = catch_unwind(|| {
        IniEntryDef::register(ini_entries(), module_number);
        mark_sensitive_parameters();
        process::install_fork_handler();
    });
    if ok.is_ok() {
        0
    } else {
        1
    }
}

extern "C" fn shutdown(_ty: i32, _module_number: i32) -> i32 {
    let _ = catch_unwind(|| {
        if let Some(p) = process::get() {
            let timeout = p.config().ms("shutdown_timeout_ms");
            p.shutdown(timeout);
        }
    });
    0
}

extern "C" fn request_shutdown(_ty: i32, _module_number: i32) -> i32 {
    let _ = catch_unwind(|| {
        if let Some(p) = process::get() {
            p.end_request();
        }
    });
    0
}

fn info_row(k: &str, v: &str) {
    if let (Ok(k), Ok(v)) = (CString::new(k), CString::new(v.replace('\0', ""))) {
        // SAFETY: php_info_print_table_row(2, char*, char*) with NUL-terminated strings.
        unsafe { ffi::php_info_print_table_row(2, k.as_ptr(), v.as_ptr()) };
    }
}

extern "C" fn info(_module: *mut ModuleEntry) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: called by phpinfo() in the PHP thread.
        unsafe { ffi::php_info_print_table_start() };
        info_row("tsdb support", "enabled");
        info_row("Version", crate::VERSION);
        let effective = process::get().map(|p| (*p.config()).clone()).or_else(|| ini_config().ok());
        if let Some(c) = effective {
            for (k, v) in c.redacted() {
                info_row(&ini_name(k), &v);
            }
        }
        unsafe { ffi::php_info_print_table_end() };
    }));
}

#[php_module]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    module
        .startup_function(startup)
        .shutdown_function(shutdown)
        .request_shutdown_function(request_shutdown)
        .info_function(info)
        .function(wrap_function!(tsdb_log_event))
        .function(wrap_function!(tsdb_log_events))
        .function(wrap_function!(tsdb_configure))
        .function(wrap_function!(tsdb_flush))
        .function(wrap_function!(tsdb_stats))
        .function(wrap_function!(tsdb_replay_spool))
        .function(wrap_function!(tsdb_import))
        .function(wrap_function!(tsdb_version))
}
