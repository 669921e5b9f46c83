//! Importing existing logs (`logstore_standard_log`) in large chunks: `tsdb_import()`.
//!
//! Every row gets an identity derived from the source, not from the process that imports it:
//! - producer: a stable 64-bit hash of the source's name (`producer_of`) with the top bit set
//!   (`IMPORT_BIT`; live processes never set it, so an import never shares a live process's ledger);
//! - seq: the row's own `id` (increasing within a chunk, with gaps);
//! - time_ns: `timecreated` seconds plus `id mod 10⁹` nanoseconds (`time_ns`): distinct for the rows of one
//!   second, the same on every run.
//!
//! Sending a row again is therefore harmless: the PostgreSQL ledger skips the `(producer, seq)` it already
//! holds, and InfluxDB overwrites the point with the same measurement, tags and time. A resumed import
//! needs no recovery, only the last id it wrote (a checkpoint after each chunk).
//!
//! A chunk is parsed here (`prepare`) from COPY text lines — `pg_copy_to()` of the columns in `COLUMNS`
//! order — with the store's filters, IP setting and pseudonyms applied as the live store would, and `other`
//! converted to JSON (PHP `serialize()` text from sites whose standard store had `jsonformat` off included),
//! then written synchronously to the configured sink with retries (`Writer`), outside the live queue.

use crate::config::Config;
use crate::event::{EventId, IntField, StrField};
use crate::record::RecordWriter;
use crate::retry::{random_unit, Backoff};
use crate::sink::{self, write_bisecting, Batch, Final, Sink, SinkError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The columns of a row, in the order of a COPY line (`logstore_standard_log`'s own order).
pub const COLUMNS: [&str; 21] = [
    "id",
    "eventname",
    "component",
    "action",
    "target",
    "objecttable",
    "objectid",
    "crud",
    "edulevel",
    "contextid",
    "contextlevel",
    "contextinstanceid",
    "userid",
    "courseid",
    "relateduserid",
    "anonymous",
    "other",
    "timecreated",
    "origin",
    "ip",
    "realuserid",
];

/// The field each column after `id` fills.
#[derive(Clone, Copy)]
enum Col {
    Int(IntField),
    Str(StrField),
}

const FIELDS: [Col; 20] = [
    Col::Str(StrField::EventName),
    Col::Str(StrField::Component),
    Col::Str(StrField::Action),
    Col::Str(StrField::Target),
    Col::Str(StrField::ObjectTable),
    Col::Int(IntField::ObjectId),
    Col::Str(StrField::Crud),
    Col::Int(IntField::EduLevel),
    Col::Int(IntField::ContextId),
    Col::Int(IntField::ContextLevel),
    Col::Int(IntField::ContextInstanceId),
    Col::Int(IntField::UserId),
    Col::Int(IntField::CourseId),
    Col::Int(IntField::RelatedUserId),
    Col::Int(IntField::Anonymous),
    Col::Str(StrField::Other),
    Col::Int(IntField::TimeCreated),
    Col::Str(StrField::Origin),
    Col::Str(StrField::Ip),
    Col::Int(IntField::RealUserId),
];

/// Set in every import producer, never in a live process's (`Pipeline::start` clears it).
pub const IMPORT_BIT: u64 = 1 << 63;

/// The producer of an import source: FNV-1a (64 bits) of its name, with `IMPORT_BIT` set. Stable across
/// runs, machines and versions.
pub fn producer_of(source: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in source {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | IMPORT_BIT
}

/// The time of imported row `id`: its second plus `id mod 10⁹` nanoseconds.
pub fn time_ns(timecreated: i64, id: u64) -> i64 {
    timecreated.saturating_mul(1_000_000_000).saturating_add((id % 1_000_000_000) as i64)
}

// ---------------------------------------------------------------------------------------------
// Options

/// The store's filters (`includeevents`, `excludeevents`, `minedulevel`, `skipanonymous`).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    include: Vec<Vec<u8>>,
    exclude: Vec<Vec<u8>>,
    pub min_edulevel: i64,
    pub skip_anonymous: bool,
}

impl Filters {
    /// Patterns as the plugin's settings hold them: separated by white space or commas; an event class
    /// name (leading backslash optional) or a component; `*` matches any run of characters.
    pub fn set_include(&mut self, text: &[u8]) {
        self.include = split_patterns(text);
    }

    pub fn set_exclude(&mut self, text: &[u8]) {
        self.exclude = split_patterns(text);
    }

    /// Whether the store would leave the event out (`store::write()`'s order of tests).
    fn leaves_out(&self, edulevel: Option<i64>, anonymous: Option<i64>, eventname: &[u8], component: &[u8]) -> bool {
        if edulevel.unwrap_or(0) < self.min_edulevel {
            return true;
        }
        if self.skip_anonymous && anonymous.unwrap_or(0) != 0 {
            return true;
        }
        let matches =
            |ps: &[Vec<u8>]| ps.iter().any(|p| pattern_matches(p, eventname) || pattern_matches(p, component));
        if !self.exclude.is_empty() && matches(&self.exclude) {
            return true;
        }
        !self.include.is_empty() && !matches(&self.include)
    }
}

fn split_patterns(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|b| b.is_ascii_whitespace() || *b == b',')
        .map(|p| {
            let start = p.iter().position(|&b| b != b'\\').unwrap_or(p.len());
            p[start..].to_vec()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// `^\\?(?:pattern)$` with `*` as `.*`, as `store::compile_patterns()`.
fn pattern_matches(pattern: &[u8], value: &[u8]) -> bool {
    let v = value.strip_prefix(b"\\").unwrap_or(value);
    glob(pattern, v) || (v.len() < value.len() && glob(pattern, value))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// How a chunk is imported.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The source's name (the producer is its hash).
    pub source: Vec<u8>,
    /// The store's filters; `None`: every row.
    pub filters: Option<Filters>,
    /// False: `ip` is stored empty (the store's *Record IP addresses* off).
    pub drop_ip: bool,
    /// Pseudonyms of user ids (InfluxDB): `Some` replaces userid, relateduserid and realuserid (when not
    /// 0) by their pseudonym; a user without one stops the chunk (`Need::Pseudonyms`).
    pub pseudonyms: Option<HashMap<i64, i64>>,
    /// `other` as JSON (or absent) for rows whose `other` this module cannot convert, by id (given by
    /// the caller after `Need::Convert`).
    pub other: HashMap<u64, Option<Vec<u8>>>,
    /// The time window `[from, to)` of `timecreated`: rows outside it are passed over.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Count only; write nothing.
    pub dry_run: bool,
    pub max_string: usize,
    pub max_other: usize,
}

impl Options {
    pub fn new(source: &[u8], config: &Config) -> Options {
        Options {
            source: source.to_vec(),
            max_string: config.hot().max_string,
            max_other: config.hot().max_other,
            ..Options::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Why a chunk cannot be prepared as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// These rows' `other` (id, text) is neither JSON nor `serialize()` text this module converts: the caller
    /// converts it (PHP `unserialize()`) and passes the JSON in `Options::other`.
    Convert(Vec<(u64, Vec<u8>)>),
    /// These user ids have no pseudonym in `Options::pseudonyms` yet.
    Pseudonyms(Vec<i64>),
    /// The chunk cannot be imported (ids not increasing, a line without an id).
    Refused(String),
}

/// What happened to the rows of a chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Rows given.
    pub rows: u64,
    /// Events handed to the sink (after filters); in a dry run, those it would get.
    pub events: u64,
    pub written: u64,
    /// Refused by the sink (a value the backend cannot hold, older than `retention_days`...).
    pub rejected: u64,
    /// Left out by the store's filters.
    pub filtered: u64,
    /// Outside the time window.
    pub outside: u64,
    /// Rows that are not events (no event name or time, a number that is not one).
    pub invalid: u64,
    /// Events stored with a value cut to its cap.
    pub truncated: u64,
    /// Rows whose `other` was PHP `serialize()` text, converted here.
    pub unserialized: u64,
    /// The largest id given: every row up to it is settled once the chunk is written.
    pub last_id: u64,
    /// The range of `timecreated` of the events handed to the sink.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// The first messages of invalid and rejected rows (at most `MAX_MESSAGES`, each once).
    pub messages: Vec<String>,
}

const MAX_MESSAGES: usize = 10;

impl Report {
    fn note(&mut self, msg: String) {
        if self.messages.len() < MAX_MESSAGES && !self.messages.contains(&msg) {
            self.messages.push(msg);
        }
    }
}

/// A chunk ready to write: its records (ids increasing), cut into runs, and what became of its rows so far.
///
/// A run is a byte range of `records` holding consecutive source rows: a row passed over because it is
/// outside the time window ends it. The PostgreSQL ledger settles each batch from its first to its last
/// sequence number (gaps of missing ids included), so a batch must never span a row that a later import
/// with another window could still send. Rows left out by the store's filters or invalid do not end a run:
/// they are settled with their neighbours (as the previous importer counted them done), which keeps
/// batches large however the filters interleave.
pub struct Prepared {
    pub records: Vec<u8>,
    pub runs: Vec<(usize, usize)>,
    pub report: Report,
}

/// The fields of one row: `None` is NULL. Values borrow the line unless they had escapes (then `scratch`).
struct Row<'a> {
    fields: [Option<std::borrow::Cow<'a, [u8]>>; 21],
}

/// Splits a COPY text line (tab-separated, `\N` for NULL, backslash escapes) into its 21 fields.
fn parse_line(line: &[u8]) -> Result<Row<'_>, String> {
    let mut fields: [Option<std::borrow::Cow<'_, [u8]>>; 21] = Default::default();
    let mut n = 0;
    for raw in line.split(|&b| b == b'\t') {
        if n == fields.len() {
            return Err(format!("more than {} columns", COLUMNS.len()));
        }
        fields[n] = if raw == b"\\N" {
            None
        } else if raw.contains(&b'\\') {
            Some(std::borrow::Cow::Owned(unescape(raw)))
        } else {
            Some(std::borrow::Cow::Borrowed(raw))
        };
        n += 1;
    }
    if n != fields.len() {
        return Err(format!("{n} columns instead of {}", COLUMNS.len()));
    }
    Ok(Row { fields })
}

/// COPY text escapes: `\b \f \n \r \t \v \\`, octal `\NNN` and `\xHH`; any other escaped byte is itself.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut k = 0;
                while k < 2 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// Appends one field to a COPY text line (`None` as `\N`), escaping what COPY escapes.
pub fn push_copy_field(line: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(v) = value else {
        line.extend_from_slice(b"\\N");
        return;
    };
    for &b in v {
        match b {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\t' => line.extend_from_slice(b"\\t"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
}

/// An integer column: `Ok(None)` for NULL or empty, an error for anything but an integer.
fn int_field(v: Option<&[u8]>) -> Result<Option<i64>, ()> {
    let Some(v) = v else { return Ok(None) };
    let t = v.trim_ascii();
    if t.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(t).ok().and_then(|s| s.strip_prefix('+').unwrap_or(s).parse::<i64>().ok()).map(Some).ok_or(())
}

/// The lines of a chunk: each element of `parts` holds one or more lines (`pg_copy_to()` gives one per
/// element, ending in a newline). Empty lines and COPY's end marker `\.` are skipped.
pub fn lines<'a, I: IntoIterator<Item = &'a [u8]>>(parts: I) -> impl Iterator<Item = &'a [u8]> {
    parts.into_iter().flat_map(|p| p.split(|&b| b == b'\n')).filter(|l| !l.is_empty() && *l != b"\\.").map(|l| {
        // A CRLF file: the CR is not part of the last field.
        l.strip_suffix(b"\r").unwrap_or(l)
    })
}

/// Turns a chunk of COPY lines into records. Nothing is written here.
pub fn prepare<'a>(lines: impl Iterator<Item = &'a [u8]>, opts: &Options) -> Result<Prepared, Need> {
    let producer = producer_of(&opts.source);
    let mut records = Vec::new();
    let mut report = Report::default();
    let mut convert: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut missing: Vec<i64> = Vec::new();
    let mut other_json = Vec::new();
    let mut prev: Option<u64> = None;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut run_start: Option<usize> = None;
    for (i, line) in lines.enumerate() {
        report.rows += 1;
        let row = match parse_line(line) {
            Ok(r) => r,
            Err(why) => return Err(Need::Refused(format!("line {}: {why}", i + 1))),
        };
        let id = match int_field(row.fields[0].as_deref()) {
            Ok(Some(id)) if id > 0 => id as u64,
            _ => return Err(Need::Refused(format!("line {}: the id is not a positive integer", i + 1))),
        };
        if prev.is_some_and(|p| id <= p) {
            return Err(Need::Refused(format!(
                "ids must increase along a chunk (id {id} after {}): read ORDER BY id",
                prev.unwrap_or(0)
            )));
        }
        prev = Some(id);
        report.last_id = id;
        let f = |c: usize| row.fields[c + 1].as_deref();

        let mut ints = [None; 11];
        let mut bad: Option<&str> = None;
        for (c, col) in FIELDS.iter().enumerate() {
            if let Col::Int(field) = col {
                match int_field(f(c)) {
                    Ok(v) => ints[*field as usize] = v,
                    Err(()) => bad = bad.or(Some(field.name())),
                }
            }
        }
        let eventname = f(0).unwrap_or(b"");
        let timecreated = ints[IntField::TimeCreated as usize];
        let why = match (bad, eventname.is_empty(), timecreated) {
            (Some(name), _, _) => Some(format!("{name} is not an integer")),
            (None, true, _) => Some("no eventname".to_string()),
            (None, false, None) => Some("no timecreated".to_string()),
            _ => None,
        };
        if let Some(why) = why {
            report.invalid += 1;
            report.note(format!("row {id}: not an event: {why}"));
            continue;
        }
        let t = timecreated.unwrap_or(0);
        if opts.from.is_some_and(|f| t < f) || opts.to.is_some_and(|to| t >= to) {
            report.outside += 1;
            if let Some(s) = run_start.take() {
                runs.push((s, records.len()));
            }
            continue;
        }
        if let Some(flt) = &opts.filters {
            let edu = ints[IntField::EduLevel as usize];
            let anon = ints[IntField::Anonymous as usize];
            if flt.leaves_out(edu, anon, eventname, f(1).unwrap_or(b"")) {
                report.filtered += 1;
                continue;
            }
        }
        if let Some(map) = &opts.pseudonyms {
            for field in [IntField::UserId, IntField::RelatedUserId, IntField::RealUserId] {
                let slot = &mut ints[field as usize];
                match *slot {
                    None | Some(0) => {}
                    Some(u) => match map.get(&u) {
                        Some(&p) => *slot = Some(p),
                        None if !missing.contains(&u) => missing.push(u),
                        None => {}
                    },
                }
            }
        }
        // `other`: JSON as it is, `serialize()` text converted, anything else by the caller.
        other_json.clear();
        let other = match opts.other.get(&id) {
            Some(given) => given.as_deref(),
            None => match other_kind(f(15)) {
                Other::Absent => None,
                Other::Json(v) => Some(v),
                Other::Text(v) => {
                    crate::json::write_str(&mut other_json, v);
                    Some(&other_json[..])
                }
                Other::Serialized(v) => {
                    if unserialize_to_json(v, &mut other_json).is_some() {
                        report.unserialized += 1;
                        Some(&other_json[..])
                    } else {
                        convert.push((id, v.to_vec()));
                        continue;
                    }
                }
            },
        };
        if !missing.is_empty() || !convert.is_empty() {
            continue; // Only the needs are collected from here on.
        }

        let start = records.len();
        let mut w = RecordWriter::begin(&mut records);
        for (c, col) in FIELDS.iter().enumerate() {
            match *col {
                Col::Int(field) => {
                    if let Some(v) = ints[field as usize] {
                        w.set_int(field, v);
                    }
                }
                Col::Str(StrField::Other) => {
                    if let Some(json) = other {
                        put_other(&mut w, json, opts.max_other);
                    }
                }
                Col::Str(StrField::Ip) if opts.drop_ip => {
                    w.put_str(StrField::Ip, b"", opts.max_string);
                }
                Col::Str(field) => {
                    if let Some(v) = f(c) {
                        w.put_str(field, v, opts.max_string);
                    }
                }
            }
        }
        if w.is_truncated() {
            report.truncated += 1;
        }
        w.finish(EventId { producer, seq: id }, time_ns(t, id));
        run_start.get_or_insert(start);
        report.events += 1;
        report.min_time = Some(report.min_time.map_or(t, |m| m.min(t)));
        report.max_time = Some(report.max_time.map_or(t, |m| m.max(t)));
    }
    if !missing.is_empty() {
        return Err(Need::Pseudonyms(missing));
    }
    if !convert.is_empty() {
        return Err(Need::Convert(convert));
    }
    if let Some(s) = run_start {
        runs.push((s, records.len()));
    }
    Ok(Prepared { records, runs, report })
}

enum Other<'a> {
    Absent,
    Json(&'a [u8]),
    /// Not JSON, not `serialize()`d: kept as a JSON string holding the text.
    Text(&'a [u8]),
    Serialized(&'a [u8]),
}

/// What `other` holds, as `tool_log`'s `decode_other()` tells `serialize()` text from JSON (`N;`, or a
/// character then a colon). `null`, `N;`, empty and NULL are absent (the live store passes no `other`).
fn other_kind(v: Option<&[u8]>) -> Other<'_> {
    let Some(v) = v else { return Other::Absent };
    match v {
        b"" | b"null" | b"N;" => Other::Absent,
        _ if v.len() >= 2 && v[1] == b':' => Other::Serialized(v),
        _ if serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok() => Other::Json(v),
        _ => Other::Text(v),
    }
}

/// Writes `other` (JSON) into a record, replaced by the truncation marker object beyond `cap`.
fn put_other(w: &mut RecordWriter<'_>, json: &[u8], cap: usize) {
    let open = w.open_str(StrField::Other);
    w.out().extend_from_slice(json);
    crate::record::shrink_other(w, &open, cap, json.len());
    w.close_str(open);
}

// ---------------------------------------------------------------------------------------------
// PHP serialize() → JSON

/// Nesting limit, as for `other` given to `tsdb_log_event()`.
const MAX_DEPTH: usize = 32;

/// Converts PHP `serialize()` text of arrays, scalars and `stdClass` objects to the JSON the extension
/// would have made of the same value (lists `[...]`, other arrays and objects `{...}`). `None` (and `out`
/// as it was) for anything else — other classes, references, malformed text — which PHP converts.
pub fn unserialize_to_json(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut p = Unser { s, at: 0 };
    let r = p.value(out, 0).filter(|_| p.at == s.len());
    if r.is_none() {
        out.truncate(start);
    }
    r
}

struct Unser<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Unser<'a> {
    fn eat(&mut self, want: &[u8]) -> Option<()> {
        if self.s.get(self.at..self.at + want.len())? == want {
            self.at += want.len();
            Some(())
        } else {
            None
        }
    }

    /// The bytes up to (not including) `end`, consumed with it.
    fn until(&mut self, end: u8) -> Option<&'a [u8]> {
        let rest = self.s.get(self.at..)?;
        let n = rest.iter().position(|&b| b == end)?;
        self.at += n + 1;
        Some(&rest[..n])
    }

    fn int(&mut self, end: u8) -> Option<i64> {
        std::str::from_utf8(self.until(end)?).ok()?.parse().ok()
    }

    fn len(&mut self, end: u8) -> Option<usize> {
        usize::try_from(self.int(end)?).ok()
    }

    /// `s:N:"...";` after the `s:`.
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.len(b':')?;
        self.eat(b"\"")?;
        let v = self.s.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        self.eat(b"\";")?;
        Some(v)
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        let tag = *self.s.get(self.at)?;
        if tag == b'N' {
            self.eat(b"N;")?;
            out.extend_from_slice(b"null");
            return Some(());
        }
        self.at += 1;
        self.eat(b":")?;
        match tag {
            b'b' => match self.until(b';')? {
                b"0" => out.extend_from_slice(b"false"),
                b"1" => out.extend_from_slice(b"true"),
                _ => return None,
            },
            b'i' => crate::json::write_i64(out, self.int(b';')?),
            b'd' => {
                let t = std::str::from_utf8(self.until(b';')?).ok()?;
                let v: f64 = match t {
                    "INF" => f64::INFINITY,
                    "-INF" => f64::NEG_INFINITY,
                    "NAN" => f64::NAN,
                    _ => t.parse().ok()?,
                };
                crate::json::write_f64(out, v);
            }
            b's' => crate::json::write_str(out, self.string()?),
            b'a' => {
                let n = self.len(b':')?;
                self.members(out, n, depth, true)?;
            }
            b'O' => {
                let name_len = self.len(b':')?;
                self.eat(b"\"")?;
                let name = self.s.get(self.at..self.at.checked_add(name_len)?)?;
                if name != b"stdClass" {
                    return None;
                }
                self.at += name_len;
                self.eat(b"\":")?;
                let n = self.len(b':')?;
                self.members(out, n, depth, false)?;
            }
            _ => return None,
        }
        Some(())
    }

    /// `{key value ...}` of an array (`may_be_list`) or an object, after the count.
    fn members(&mut self, out: &mut Vec<u8>, n: usize, depth: usize, may_be_list: bool) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.eat(b"{")?;
        let start = out.len();
        out.push(b'{');
        let mut list = may_be_list;
        let mut values: Vec<(usize, usize)> = Vec::new();
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            let tag = *self.s.get(self.at)?;
            self.at += 1;
            self.eat(b":")?;
            match tag {
                b'i' => {
                    let k = self.int(b';')?;
                    list &= k == i as i64;
                    out.push(b'"');
                    crate::json::write_i64(out, k);
                    out.push(b'"');
                }
                b's' => {
                    list = false;
                    crate::json::write_str(out, self.string()?);
                }
                _ => return None,
            }
            out.push(b':');
            let v = out.len();
            self.value(out, depth + 1)?;
            values.push((v, out.len()));
        }
        self.eat(b"}")?;
        if list {
            let body: Vec<u8> = out[start..].to_vec();
            out.truncate(start);
            out.push(b'[');
            for (i, (a, b)) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&body[a - start..b - start]);
            }
            out.push(b']');
        } else {
            out.push(b'}');
        }
        Some(())
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The sink an import writes through: its own instance (and connection) of the configured backend,
/// kept between chunks while the configuration stays the same.
pub struct Writer {
    config: Config,
    sink: Option<Box<dyn Sink>>,
    /// What the sink created again (a dropped table), reported once.
    pub recreated: Vec<String>,
}

/// Why a chunk could not be written: the backend did not take it within the retry budget, or the
/// configuration cannot work. Rows already written stay written (sending them again is harmless).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailed(pub String);

impl Writer {
    pub fn new(config: Config) -> Writer {
        Writer { config, sink: None, recreated: Vec::new() }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Writes the runs of a prepared chunk, each in batches of at most `max_batch` events, each retried
    /// as the live pipeline retries (`retry_*` settings); a batch the server refuses is halved until the
    /// refused events stand alone (counted in `rejected`). Adds to `report`.
    pub fn write(&mut self, p: &Prepared, max_batch: usize, report: &mut Report) -> Result<(), WriteFailed> {
        for &(start, end) in &p.runs {
            self.write_run(&p.records[start..end], max_batch, report)?;
        }
        Ok(())
    }

    fn write_run(&mut self, records: &[u8], max_batch: usize, report: &mut Report) -> Result<(), WriteFailed> {
        let mut at = 0;
        while at < records.len() {
            let (len, n) = batch_len(&records[at..], max_batch.max(1));
            if n == 0 {
                return Err(WriteFailed("internal: a corrupt import record".into()));
            }
            let batch = Batch::new(records[at..at + len].to_vec())
                .map_err(|e| WriteFailed(format!("internal: a corrupt import batch: {e}")))?;
            at += len;
            let mut failed: Option<String> = None;
            let config = self.config.clone();
            write_bisecting(
                batch,
                |b| self.write_with_retry(b),
                |b, fin| {
                    match fin {
                        Final::Written(w) => {
                            report.written += w.written as u64;
                            report.rejected += w.rejected as u64;
                            report.truncated += w.truncated as u64;
                            if let Some(e) = w.error.filter(|_| w.rejected > 0) {
                                report.note(config.redact(&e));
                            }
                        }
                        Final::Rejected(msg) => {
                            report.rejected += b.len() as u64;
                            report.note(config.redact(&msg));
                        }
                        Final::Failed(msg) => {
                            failed.get_or_insert(config.redact(&msg));
                            return false;
                        }
                    }
                    true
                },
            );
            if let Some(s) = self.sink.as_mut() {
                self.recreated.extend(s.take_recreated().iter().map(|m| self.config.redact(m)));
            }
            if let Some(msg) = failed {
                return Err(WriteFailed(msg));
            }
        }
        Ok(())
    }

    fn write_with_retry(&mut self, batch: &Batch) -> Result<sink::Written, SinkError> {
        let backoff = Backoff { base: self.config.ms("retry_base_ms"), cap: self.config.ms("retry_max_ms") };
        let budget = self.config.ms("retry_max_elapsed_ms");
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            if self.sink.is_none() {
                self.sink = Some(sink::open(&self.config).map_err(SinkError::Config)?);
            }
            let Some(s) = self.sink.as_mut() else { continue };
            let (msg, delay) = match s.write(batch) {
                Ok(w) => return Ok(w),
                Err(e @ SinkError::Split(_)) => return Err(e),
                Err(SinkError::Retry { msg, after }) => {
                    (msg, after.unwrap_or_else(|| backoff.delay(attempt, random_unit())))
                }
                Err(SinkError::Config(msg)) => (msg, backoff.cap),
            };
            if started.elapsed() + delay > budget {
                return Err(SinkError::Retry {
                    msg: format!("gave up after {} attempts: {msg}", attempt + 1),
                    after: None,
                });
            }
            attempt += 1;
            std::thread::sleep(delay.min(Duration::from_secs(60)));
        }
    }
}

/// A chunk written: its report (parsing and writing), and the error that stopped its writing, if any.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub report: Report,
    pub error: Option<String>,
    /// What the sink created again (a dropped table) while writing it.
    pub recreated: Vec<String>,
}

/// The import writer of this process and the chunk it writes in the background, if any.
struct Slot {
    /// The process it belongs to: a forked child makes its own (a connection is never shared across a fork).
    pid: u32,
    /// Idle (`None` while a background write holds it).
    writer: Option<Writer>,
    inflight: Option<std::thread::JoinHandle<(Writer, Done)>>,
}

static SLOT: parking_lot::Mutex<Option<Slot>> = parking_lot::Mutex::new(None);

fn this_process(slot: &mut Option<Slot>) -> &mut Slot {
    let pid = std::process::id();
    if slot.as_ref().is_none_or(|s| s.pid != pid) {
        // A parent's background thread does not exist in a child: forget it without joining.
        *slot = Some(Slot { pid, writer: None, inflight: None });
    }
    slot.get_or_insert_with(|| Slot { pid, writer: None, inflight: None })
}

/// Waits for the chunk written in the background, if any.
fn join(s: &mut Slot) -> Option<Done> {
    let handle = s.inflight.take()?;
    match handle.join() {
        Ok((writer, done)) => {
            s.writer = Some(writer);
            Some(done)
        }
        Err(_) => Some(Done { error: Some("internal: the import writer stopped".into()), ..Done::default() }),
    }
}

fn write_with(mut w: Writer, prepared: &Prepared, max_batch: usize) -> (Writer, Done) {
    let mut report = prepared.report.clone();
    let error = w.write(prepared, max_batch, &mut report).err().map(|e| e.0);
    let recreated = std::mem::take(&mut w.recreated);
    (w, Done { report, error, recreated })
}

fn writer_for(s: &mut Slot, config: &Config) -> Writer {
    match s.writer.take() {
        Some(w) if w.config() == config => w,
        _ => Writer::new(config.clone()),
    }
}

/// Waits for the chunk this process writes in the background (`write_behind`), if any.
pub fn wait() -> Option<Done> {
    let mut slot = SLOT.lock();
    join(this_process(&mut slot))
}

/// Writes a prepared chunk now, with this process's import writer for `config` (kept between chunks, made
/// again when the configuration changes). Returns the chunk written in the background before, if any, and
/// this one.
pub fn write_now(config: &Config, prepared: &Prepared, max_batch: usize) -> (Option<Done>, Done) {
    let mut slot = SLOT.lock();
    let s = this_process(&mut slot);
    let before = join(s);
    let (w, done) = write_with(writer_for(s, config), prepared, max_batch);
    s.writer = Some(w);
    (before, done)
}

/// Starts writing a prepared chunk in a background thread, once the chunk written there before is done
/// (returned): the caller reads the next chunk meanwhile.
pub fn write_behind(config: &Config, prepared: Prepared, max_batch: usize) -> Result<Option<Done>, WriteFailed> {
    let mut slot = SLOT.lock();
    let s = this_process(&mut slot);
    let before = join(s);
    let w = writer_for(s, config);
    let handle = std::thread::Builder::new()
        .name("tsdb-import".into())
        .spawn(move || write_with(w, &prepared, max_batch))
        .map_err(|e| WriteFailed(format!("cannot start the import writer thread: {e}")))?;
    s.inflight = Some(handle);
    Ok(before)
}

/// Bytes and count of the first at most `max` records of `buf` (any producer, any sequence numbers).
fn batch_len(buf: &[u8], max: usize) -> (usize, usize) {
    let mut at = 0;
    let mut n = 0;
    while at < buf.len() && n < max {
        match crate::record::read(&buf[at..]) {
            Ok(r) => at += r.bytes.len(),
            Err(_) => break,
        }
        n += 1;
    }
    (at, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;

    fn opts() -> Options {
        Options::new(b"moodle:site:mdl_logstore_standard_log", &Config::defaults())
    }

    /// A COPY line of logstore_standard_log's columns.
    fn line(id: u64, eventname: &str, other: Option<&str>, timecreated: i64) -> Vec<u8> {
        let mut l = Vec::new();
        let values: [Option<String>; 21] = [
            Some(id.to_string()),
            Some(eventname.into()),
            Some("core".into()),
            Some("viewed".into()),
            Some("course".into()),
            None,
            None,
            Some("r".into()),
            Some("2".into()),
            Some("25".into()),
            Some("50".into()),
            Some("3".into()),
            Some("7".into()),
            Some("3".into()),
            None,
            Some("0".into()),
            other.map(str::to_string),
            Some(timecreated.to_string()),
            Some("web".into()),
            Some("10.0.0.1".into()),
            None,
        ];
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                l.push(b'\t');
            }
            push_copy_field(&mut l, v.as_deref().map(str::as_bytes));
        }
        l.push(b'\n');
        l
    }

    fn events(p: &Prepared) -> Vec<record::Record<'_>> {
        record::records(&p.records).collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn identity_comes_from_the_source_and_the_row() {
        let a = producer_of(b"moodle:abc:mdl_logstore_standard_log");
        assert_eq!(a, producer_of(b"moodle:abc:mdl_logstore_standard_log"), "stable");
        assert_ne!(a, producer_of(b"moodle:abd:mdl_logstore_standard_log"));
        assert_eq!(a & IMPORT_BIT, IMPORT_BIT);
        // FNV-1a of the empty string, marked: a fixed value, whatever the Rust version.
        assert_eq!(producer_of(b""), 0xcbf2_9ce4_8422_2325 | IMPORT_BIT);
        assert_eq!(time_ns(1_700_000_000, 42), 1_700_000_000_000_000_042);
        assert_eq!(time_ns(1_700_000_000, 3_000_000_007), 1_700_000_000_000_000_007);
        let seconds: std::collections::HashSet<i64> = (1..100_000u64).map(|id| time_ns(5, id)).collect();
        assert_eq!(seconds.len(), 99_999, "distinct within a second");
    }

    #[test]
    fn copy_lines_become_records_with_every_column() {
        let mut chunk = line(5, "\\core\\event\\course_viewed", Some("{\"a\":1}"), 1_700_000_000);
        chunk.extend(line(9, "\\mod_forum\\event\\post_created", None, 1_700_000_003));
        let p = prepare(lines([&chunk[..]]), &opts()).unwrap();
        let r = &p.report;
        assert_eq!(
            (r.rows, r.events, r.last_id, r.min_time, r.max_time),
            (2, 2, 9, Some(1_700_000_000), Some(1_700_000_003))
        );
        let ev = events(&p);
        let e = ev[0].event;
        assert_eq!(e.id, EventId { producer: producer_of(&opts().source), seq: 5 });
        assert_eq!(e.time_ns, 1_700_000_000_000_000_005);
        assert_eq!(e.str(StrField::EventName), Some(&b"\\core\\event\\course_viewed"[..]));
        assert_eq!(e.str(StrField::ObjectTable), None);
        assert_eq!(e.int(IntField::ObjectId), None);
        assert_eq!(e.int(IntField::ContextId), Some(25));
        assert_eq!(e.int(IntField::CourseId), Some(3));
        assert_eq!(e.int(IntField::UserId), Some(7));
        assert_eq!(e.int(IntField::RelatedUserId), None);
        assert_eq!(e.str(StrField::Other), Some(&b"{\"a\":1}"[..]));
        assert_eq!(e.str(StrField::Ip), Some(&b"10.0.0.1"[..]));
        assert_eq!(ev[1].event.str(StrField::Other), None);
        assert_eq!(ev[1].event.id.seq, 9);
        sink::Batch::new(p.records.clone()).expect("one batch: one producer, ids increasing with gaps");
    }

    #[test]
    fn escapes_round_trip() {
        let nasty = "tab\there\nnew\\line\r";
        let mut l = Vec::new();
        push_copy_field(&mut l, Some(nasty.as_bytes()));
        assert_eq!(unescape(&l), nasty.as_bytes());
        assert_eq!(unescape(b"\\101\\x41\\b\\v\\f\\q"), b"AA\x08\x0b\x0cq");
        let chunk = line(1, "\\core\\event\\x", Some(&serde_json::to_string(nasty).unwrap()), 1);
        let p = prepare(lines([&chunk[..]]), &opts()).unwrap();
        let other = events(&p)[0].event.str(StrField::Other).unwrap().to_vec();
        assert_eq!(serde_json::from_slice::<String>(&other).unwrap(), nasty);
    }

    #[test]
    fn other_forms() {
        let cases: [(Option<&str>, Option<&str>); 8] = [
            (None, None),
            (Some("null"), None),
            (Some("N;"), None),
            (Some("[1,2]"), Some("[1,2]")),
            (Some("a:2:{i:0;s:1:\"x\";i:1;b:1;}"), Some("[\"x\",true]")),
            (Some("a:2:{s:6:\"quizid\";i:4;s:2:\"ok\";d:0.5;}"), Some("{\"quizid\":4,\"ok\":0.5}")),
            (Some("not json {"), Some("\"not json {\"")),
            (Some("i:5;"), Some("5")),
        ];
        for (id, (given, want)) in cases.iter().enumerate() {
            let chunk = line(id as u64 + 1, "\\core\\event\\x", *given, 1);
            let p = prepare(lines([&chunk[..]]), &opts()).unwrap();
            let got = events(&p)[0].event.str(StrField::Other).map(|b| String::from_utf8(b.to_vec()).unwrap());
            assert_eq!(got.as_deref(), *want, "{given:?}");
        }
    }

    #[test]
    fn unserialize_matches_what_the_extension_makes_of_the_array() {
        let ok = |s: &str| {
            let mut o = Vec::new();
            unserialize_to_json(s.as_bytes(), &mut o).map(|()| String::from_utf8(o).unwrap())
        };
        assert_eq!(ok("a:0:{}").as_deref(), Some("[]"));
        assert_eq!(ok("a:1:{i:1;i:2;}").as_deref(), Some("{\"1\":2}"), "not a list: keys must be 0..n-1");
        assert_eq!(ok("a:2:{i:1;i:2;i:0;i:1;}").as_deref(), Some("{\"1\":2,\"0\":1}"), "nor out of order");
        assert_eq!(ok("O:8:\"stdClass\":1:{s:1:\"a\";a:1:{i:0;N;}}").as_deref(), Some("{\"a\":[null]}"));
        assert_eq!(ok("O:8:\"stdClass\":0:{}").as_deref(), Some("{}"));
        assert_eq!(ok("s:4:\"hé\"\";").as_deref(), Some("\"hé\\\"\""), "length in bytes, quotes inside");
        assert_eq!(ok("d:1.0E+25;").as_deref(), Some("1e25"));
        assert_eq!(ok("d:INF;").as_deref(), Some("null"));
        assert_eq!(ok("b:0;").as_deref(), Some("false"));
        for bad in
            ["O:3:\"Foo\":0:{}", "a:1:{i:0;R:1;}", "a:1:{i:0;i:1;", "s:9:\"short\";", "i:1;trailing", "x:1;", "a:-1:{}"]
        {
            let mut o = b"keep".to_vec();
            assert_eq!(unserialize_to_json(bad.as_bytes(), &mut o), None, "{bad}");
            assert_eq!(o, b"keep");
        }
        let deep = format!("{}i:1;{}", "a:1:{i:0;".repeat(40), "}".repeat(40));
        assert_eq!(ok(&deep), None, "deeper than the extension takes");
    }

    #[test]
    fn what_cannot_be_converted_is_asked_for_then_taken() {
        let mut chunk = line(1, "\\core\\event\\x", Some("O:3:\"Foo\":0:{}"), 1);
        chunk.extend(line(2, "\\core\\event\\x", Some("a:0:{}"), 1));
        let mut o = opts();
        match prepare(lines([&chunk[..]]), &o) {
            Err(Need::Convert(rows)) => assert_eq!(rows, vec![(1, b"O:3:\"Foo\":0:{}".to_vec())]),
            other => panic!("{:?}", other.map(|p| p.report)),
        }
        o.other.insert(1, Some(b"{\"__PHP_Incomplete_Class_Name\":\"Foo\"}".to_vec()));
        let p = prepare(lines([&chunk[..]]), &o).unwrap();
        assert_eq!(p.report.unserialized, 1);
        let ev = events(&p);
        assert_eq!(ev[0].event.str(StrField::Other), Some(&b"{\"__PHP_Incomplete_Class_Name\":\"Foo\"}"[..]));
        assert_eq!(ev[1].event.str(StrField::Other), Some(&b"[]"[..]));
    }

    #[test]
    fn filters_ip_and_pseudonyms_as_the_live_store() {
        let mut chunk = Vec::new();
        for (id, name) in [
            (1, "\\core\\event\\user_loggedin"),
            (2, "\\mod_page\\event\\course_module_viewed"),
            (3, "\\core\\event\\course_viewed"),
        ] {
            chunk.extend(line(id, name, None, 1));
        }
        let mut o = opts();
        let mut f = Filters::default();
        f.set_exclude(b"\\core\\event\\user_logged*, mod_page\\event\\*");
        o.filters = Some(f.clone());
        o.drop_ip = true;
        let p = prepare(lines([&chunk[..]]), &o).unwrap();
        assert_eq!((p.report.events, p.report.filtered, p.report.last_id), (1, 2, 3));
        let ev = events(&p);
        assert_eq!(ev[0].event.id.seq, 3);
        assert_eq!(ev[0].event.str(StrField::Ip), Some(&b""[..]));

        f.set_include(b"core");
        f.min_edulevel = 3;
        o.filters = Some(f);
        assert_eq!(prepare(lines([&chunk[..]]), &o).unwrap().report.filtered, 3, "edulevel 2 < 3");

        let mut o = opts();
        o.pseudonyms = Some(HashMap::from([(7, 1 << 41)]));
        assert_eq!(prepare(lines([&chunk[..]]), &o).err(), None, "user 7, no related or real user");
        o.pseudonyms = Some(HashMap::new());
        assert_eq!(prepare(lines([&chunk[..]]), &o).err(), Some(Need::Pseudonyms(vec![7])));
        o.pseudonyms = Some(HashMap::from([(7, 1 << 41)]));
        let p = prepare(lines([&chunk[..]]), &o).unwrap();
        assert!(events(&p).iter().all(|r| r.event.int(IntField::UserId) == Some(1 << 41)));
    }

    #[test]
    fn rows_outside_the_window_end_a_run_filtered_rows_do_not() {
        let mut chunk = Vec::new();
        for (id, t, name) in [
            (1, 100, "\\core\\event\\a"),
            (2, 101, "\\core\\event\\a"),
            (3, 99, "\\core\\event\\a"),
            (5, 102, "\\core\\event\\a"),
            (6, 103, "\\core\\event\\skip"),
            (8, 104, "\\core\\event\\a"),
            (9, 200, "\\core\\event\\a"),
        ] {
            chunk.extend(line(id, name, None, t));
        }
        let mut o = opts();
        o.from = Some(100);
        o.to = Some(200);
        let mut f = Filters::default();
        f.set_exclude(b"*skip");
        o.filters = Some(f);
        let p = prepare(lines([&chunk[..]]), &o).unwrap();
        assert_eq!((p.report.events, p.report.outside, p.report.filtered, p.report.last_id), (4, 2, 1, 9));
        let seqs = |(a, b): (usize, usize)| -> Vec<u64> {
            record::records(&p.records[a..b]).map(|r| r.unwrap().event.id.seq).collect()
        };
        let runs: Vec<Vec<u64>> = p.runs.iter().map(|&r| seqs(r)).collect();
        assert_eq!(runs, vec![vec![1, 2], vec![5, 8]], "row 3 (before the window) splits; the filtered row 6 does not");
    }

    #[test]
    fn patterns_as_compile_patterns() {
        assert!(pattern_matches(b"core\\event\\*", b"\\core\\event\\course_viewed"));
        assert!(pattern_matches(b"*_viewed", b"\\core\\event\\course_viewed"));
        assert!(pattern_matches(b"mod_quiz", b"mod_quiz"));
        assert!(!pattern_matches(b"mod_quiz", b"mod_quiz_x"));
        assert!(!pattern_matches(b"quiz", b"\\mod_quiz\\event\\x"));
        assert!(glob(b"a*b*c", b"axxbyyc") && !glob(b"a*b*c", b"axxbyy") && glob(b"*", b""));
        assert_eq!(split_patterns(b" \\a,b\n\n*c "), vec![b"a".to_vec(), b"b".to_vec(), b"*c".to_vec()]);
    }

    #[test]
    fn rows_that_are_not_events_are_counted_and_bad_chunks_refused() {
        let mut chunk = line(1, "", None, 1);
        chunk.extend(line(2, "\\core\\event\\x", None, 1));
        let mut bad_int = line(3, "\\core\\event\\x", None, 1);
        let pos = bad_int.windows(3).position(|w| w == b"\t25").unwrap();
        bad_int.splice(pos + 1..pos + 3, b"2x".iter().copied());
        chunk.extend(bad_int);
        let p = prepare(lines([&chunk[..]]), &opts()).unwrap();
        assert_eq!((p.report.events, p.report.invalid, p.report.last_id), (1, 2, 3));
        assert_eq!(
            p.report.messages,
            vec!["row 1: not an event: no eventname", "row 3: not an event: contextid is not an integer"]
        );

        let mut back = line(5, "\\core\\event\\x", None, 1);
        back.extend(line(4, "\\core\\event\\x", None, 1));
        assert!(
            matches!(prepare(lines([&back[..]]), &opts()), Err(Need::Refused(m)) if m.contains("ids must increase"))
        );
        assert!(matches!(prepare(lines([&b"1\t2\n"[..]]), &opts()), Err(Need::Refused(_))));
        // Long values are cut at the caps, as for live events.
        let mut o = opts();
        o.max_other = 1024;
        let big = format!("[\"{}\"]", "x".repeat(5000));
        let p = prepare(lines([&line(1, "\\core\\event\\x", Some(&big), 1)[..]]), &o).unwrap();
        assert_eq!(p.report.truncated, 1);
        assert!(events(&p)[0].event.str(StrField::Other).unwrap().starts_with(b"{\"tsdb_truncated\":5004"));
    }

    #[test]
    fn a_chunk_is_written_once_and_again_harmlessly_to_the_file_sink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let config =
            Config::from_pairs([("backend", "file"), ("format", "json"), ("path", path.to_str().unwrap())]).unwrap();
        let mut chunk = Vec::new();
        for id in [3u64, 4, 10, 11, 12] {
            chunk.extend(line(id, "\\core\\event\\x", None, 1_700_000_000));
        }
        let p = prepare(lines([&chunk[..]]), &opts()).unwrap();
        let mut report = p.report.clone();
        let mut w = Writer::new(config);
        w.write(&p, 2, &mut report).unwrap();
        assert_eq!((report.written, report.rejected), (5, 0));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("\"time_ns\":1700000000000000012"), "{text}");
    }
}
