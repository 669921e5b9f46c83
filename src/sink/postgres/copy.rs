//! The table's columns and the binary COPY encoding of events (`COPY ... FROM STDIN (FORMAT binary)`).
//!
//! Values never touch SQL text: each row is encoded here, in PostgreSQL's binary wire format, and
//! streamed. What PostgreSQL text cannot hold is replaced, and the event counted in `truncated`:
//! - invalid UTF-8 (PHP strings are bytes): each maximal invalid sequence becomes U+FFFD;
//! - NUL bytes (text and jsonb cannot contain them): U+FFFD;
//! - `\u0000` escapes and unpaired surrogate escapes in `other` (jsonb refuses them): `\ufffd`;
//! - `other` that is not JSON at all (only possible from a replayed spool or a foreign producer: the
//!   extension validates it): stored as a JSON string holding the text;
//! - strings longer than their column (`varchar(n)` counts characters): cut at `n` characters, as
//!   Moodle's own columns would not hold more either.
//!
//! A `smallint` value out of range (`edulevel`, `anonymous`) cannot be represented: that event is
//! rejected (counted, never retried).

use crate::event::{EventRef, IntField, StrField};

/// How a column is filled from an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `varchar(n)`: the string field, at most `n` characters.
    Text(StrField, usize),
    /// `bigint`.
    Int8(IntField),
    /// `smallint`.
    Int2(IntField),
    /// `jsonb`: `other`.
    Json,
    /// `bigint`: `timecreated`, from the event's own time when absent.
    TimeCreated,
    /// `timestamptz`: the event's capture time (`time_ns`, microsecond precision).
    Time,
    /// `bigint`: the event's identity, its producer (one per PHP process, or per import source) and its
    /// sequence number there: what the batch ledger records, so the table needs no unique index.
    Producer,
    Seq,
}

pub struct Column {
    pub name: &'static str,
    /// The SQL type in `CREATE TABLE`.
    pub sql: &'static str,
    pub kind: Kind,
}

/// Every column the sink writes, in table order (after `id bigserial`, which the server fills).
/// Names, types and lengths are `logstore_standard_log`'s, plus `time`, `producer` and `seq`.
pub const COLUMNS: [Column; 23] = [
    Column { name: "eventname", sql: "varchar(255)", kind: Kind::Text(StrField::EventName, 255) },
    Column { name: "component", sql: "varchar(100)", kind: Kind::Text(StrField::Component, 100) },
    Column { name: "action", sql: "varchar(100)", kind: Kind::Text(StrField::Action, 100) },
    Column { name: "target", sql: "varchar(100)", kind: Kind::Text(StrField::Target, 100) },
    Column { name: "objecttable", sql: "varchar(50)", kind: Kind::Text(StrField::ObjectTable, 50) },
    Column { name: "objectid", sql: "bigint", kind: Kind::Int8(IntField::ObjectId) },
    Column { name: "crud", sql: "varchar(1)", kind: Kind::Text(StrField::Crud, 1) },
    Column { name: "edulevel", sql: "smallint", kind: Kind::Int2(IntField::EduLevel) },
    Column { name: "contextid", sql: "bigint", kind: Kind::Int8(IntField::ContextId) },
    Column { name: "contextlevel", sql: "bigint", kind: Kind::Int8(IntField::ContextLevel) },
    Column { name: "contextinstanceid", sql: "bigint", kind: Kind::Int8(IntField::ContextInstanceId) },
    Column { name: "userid", sql: "bigint", kind: Kind::Int8(IntField::UserId) },
    Column { name: "courseid", sql: "bigint", kind: Kind::Int8(IntField::CourseId) },
    Column { name: "relateduserid", sql: "bigint", kind: Kind::Int8(IntField::RelatedUserId) },
    Column { name: "anonymous", sql: "smallint", kind: Kind::Int2(IntField::Anonymous) },
    Column { name: "other", sql: "jsonb", kind: Kind::Json },
    Column { name: "timecreated", sql: "bigint", kind: Kind::TimeCreated },
    Column { name: "origin", sql: "varchar(10)", kind: Kind::Text(StrField::Origin, 10) },
    Column { name: "ip", sql: "varchar(45)", kind: Kind::Text(StrField::Ip, 45) },
    Column { name: "realuserid", sql: "bigint", kind: Kind::Int8(IntField::RealUserId) },
    Column { name: "time", sql: "timestamptz NOT NULL", kind: Kind::Time },
    Column { name: "producer", sql: "bigint NOT NULL", kind: Kind::Producer },
    Column { name: "seq", sql: "bigint NOT NULL", kind: Kind::Seq },
];

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The binary COPY header (signature, flags, no extension area).
pub fn header(out: &mut Vec<u8>) {
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
}

pub fn trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

/// The row's `time` in microseconds since the Unix epoch (what `timestamptz` keeps).
pub fn time_us(e: &EventRef<'_>) -> i64 {
    e.time_ns.div_euclid(1000)
}

/// Why one event cannot be written (it is rejected, never retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError(pub String);

/// Appends one tuple for `e`. Returns whether a value had to be cut or replaced. On error nothing
/// is appended.
pub fn encode_row(out: &mut Vec<u8>, e: &EventRef<'_>) -> Result<bool, RowError> {
    let start = out.len();
    let r = encode_fields(out, e);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_fields(out: &mut Vec<u8>, e: &EventRef<'_>) -> Result<bool, RowError> {
    let mut altered = false;
    out.extend_from_slice(&(COLUMNS.len() as i16).to_be_bytes());
    for col in &COLUMNS {
        match col.kind {
            Kind::Text(f, max) => match e.str(f) {
                None => null(out),
                Some(v) => altered |= text_field(out, v, max),
            },
            Kind::Int8(f) => match e.int(f) {
                None => null(out),
                Some(v) => {
                    out.extend_from_slice(&8i32.to_be_bytes());
                    out.extend_from_slice(&v.to_be_bytes());
                }
            },
            Kind::Int2(f) => match e.int(f) {
                None => null(out),
                Some(v) => {
                    let v = i16::try_from(v).map_err(|_| {
                        RowError(format!("{}: {v} is out of range for smallint (-32768..32767)", f.name()))
                    })?;
                    out.extend_from_slice(&2i32.to_be_bytes());
                    out.extend_from_slice(&v.to_be_bytes());
                }
            },
            Kind::Json => match e.str(StrField::Other) {
                None => null(out),
                Some(v) => altered |= jsonb_field(out, v),
            },
            Kind::TimeCreated => {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&e.timecreated().to_be_bytes());
            }
            Kind::Time => {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&(time_us(e) - PG_EPOCH_US).to_be_bytes());
            }
            Kind::Producer | Kind::Seq => {
                // Stored as bigint: the same 64 bits (u64 as i64).
                let v = if col.kind == Kind::Producer { e.id.producer } else { e.id.seq } as i64;
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    Ok(altered)
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Reserves the 4-byte length of a field; `close_len` fills it in.
fn open_len(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[0; 4]);
    out.len()
}

fn close_len(out: &mut [u8], at: usize) {
    let n = (out.len() - at) as i32;
    out[at - 4..at].copy_from_slice(&n.to_be_bytes());
}

/// A `varchar(max)` value. Returns whether it was altered.
fn text_field(out: &mut Vec<u8>, v: &[u8], max: usize) -> bool {
    let at = open_len(out);
    let altered = push_text(out, v, max);
    close_len(out, at);
    altered
}

/// Appends `v` as valid UTF-8 without NUL, at most `max_chars` characters. Returns whether it had to
/// change anything.
pub fn push_text(out: &mut Vec<u8>, v: &[u8], max_chars: usize) -> bool {
    // Fast path: short (chars <= bytes), valid, no NUL.
    if v.len() <= max_chars && !v.contains(&0) && std::str::from_utf8(v).is_ok() {
        out.extend_from_slice(v);
        return false;
    }
    let mut altered = false;
    let mut chars = 0usize;
    'outer: for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            if chars == max_chars {
                altered = true;
                break 'outer;
            }
            if c == '\0' {
                out.extend_from_slice("\u{FFFD}".as_bytes());
                altered = true;
            } else {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
            chars += 1;
        }
        if !chunk.invalid().is_empty() {
            if chars == max_chars {
                altered = true;
                break;
            }
            out.extend_from_slice("\u{FFFD}".as_bytes());
            chars += 1;
            altered = true;
        }
    }
    altered
}

/// A `jsonb` value in binary form: version byte 1, then the JSON text.
fn jsonb_field(out: &mut Vec<u8>, v: &[u8]) -> bool {
    let at = open_len(out);
    out.push(1);
    let altered = push_json(out, v);
    close_len(out, at);
    altered
}

/// Appends `v` as JSON text jsonb accepts. Returns whether it had to change anything.
pub fn push_json(out: &mut Vec<u8>, v: &[u8]) -> bool {
    let start = out.len();
    // 1. Valid UTF-8 without NUL (a raw NUL is not valid JSON anyway).
    let mut altered = push_text(out, v, usize::MAX);
    if serde_json::from_slice::<serde::de::IgnoredAny>(&out[start..]).is_err() {
        // 2. Not JSON at all: keep the text as a JSON string. `write_str` escapes every control
        // character, and NUL is gone, so the result has no escape jsonb refuses.
        let text = out[start..].to_vec();
        out.truncate(start);
        crate::json::write_str(out, &text);
        return true;
    }
    // 2b. Valid JSON with a number PostgreSQL's numeric cannot hold (e.g. 1e999999): jsonb would refuse
    // the row, so keep the text as a JSON string, as for text that is not JSON.
    if !numbers_fit_numeric(&out[start..]) {
        let text = out[start..].to_vec();
        out.truncate(start);
        crate::json::write_str(out, &text);
        return true;
    }
    // 3. Valid JSON: rewrite the escapes jsonb refuses.
    if out[start..].contains(&b'\\') {
        if let Some(fixed) = fix_escapes(&out[start..]) {
            out.truncate(start);
            out.extend_from_slice(&fixed);
            altered = true;
        }
    }
    altered
}

/// Whether every number of a JSON text fits PostgreSQL's `numeric` (at most 131072 digits before the
/// decimal point and 16383 after, once the exponent is applied). Conservative margins: more than 16000
/// digits after the point, 131000 before, or an exponent of more than six digits count as not fitting.
fn numbers_fit_numeric(s: &[u8]) -> bool {
    let mut i = 0;
    let mut in_str = false;
    while i < s.len() {
        let c = s[i];
        if in_str {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    in_str = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let n = s[i..].iter().take_while(|&&x| x.is_ascii_digit() || b"+-.eE".contains(&x)).count();
            let num = &s[i..i + n];
            let (mantissa, exp) = match num.iter().position(|&x| x == b'e' || x == b'E') {
                Some(e) => (&num[..e], &num[e + 1..]),
                None => (num, &b""[..]),
            };
            let exp_digits = exp.iter().filter(|x| x.is_ascii_digit()).count();
            let exp_value: i64 = std::str::from_utf8(exp).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
            let (int_part, frac_part) = match mantissa.iter().position(|&x| x == b'.') {
                Some(d) => (&mantissa[..d], &mantissa[d + 1..]),
                None => (mantissa, &b""[..]),
            };
            let int_digits = int_part.iter().filter(|x| x.is_ascii_digit()).count() as i64;
            let frac_digits = frac_part.len() as i64;
            // Digits after the point (scale) and before it (weight) once the exponent is applied.
            let scale = frac_digits - exp_value;
            let weight = int_digits + exp_value;
            if exp_digits > 6 || scale > 16_000 || weight > 131_000 {
                return false;
            }
            i += n;
            continue;
        }
        i += 1;
    }
    true
}

fn hex4(b: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(b.get(..4)?).ok()?;
    u16::from_str_radix(s, 16).ok()
}

/// Rewrites `\u0000` and unpaired surrogate escapes (`\ud800`..`\udfff` not forming a pair) as
/// `\ufffd`. `None` when there is nothing to change. A backslash can only occur inside a JSON string,
/// where it always starts an escape, so no string tracking is needed; for text that is not JSON
/// this is still harmless (the result is checked afterwards).
fn fix_escapes(s: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    let mut copied = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            i += 1;
            continue;
        }
        if s.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(cp) = hex4(&s[(i + 2).min(s.len())..]) else {
            i += 2;
            continue;
        };
        let replace = match cp {
            0 => true,
            0xD800..=0xDBFF => {
                // A high surrogate must be followed by a low one.
                let next = s.get(i + 6..i + 8) == Some(b"\\u");
                let low = if next { hex4(&s[(i + 8).min(s.len())..]) } else { None };
                match low {
                    Some(0xDC00..=0xDFFF) => {
                        i += 12;
                        continue;
                    }
                    _ => true,
                }
            }
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if replace {
            let o = out.get_or_insert_with(|| Vec::with_capacity(s.len()));
            o.extend_from_slice(&s[copied..i]);
            o.extend_from_slice(b"\\ufffd");
            copied = i + 6;
        }
        i += 6;
    }
    let mut o = out?;
    o.extend_from_slice(&s[copied.min(s.len())..]);
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &[u8], max: usize) -> (String, bool) {
        let mut out = Vec::new();
        let a = push_text(&mut out, v, max);
        (String::from_utf8(out).unwrap(), a)
    }

    fn json(v: &[u8]) -> (String, bool) {
        let mut out = Vec::new();
        let a = push_json(&mut out, v);
        (String::from_utf8(out).unwrap(), a)
    }

    #[test]
    fn text_is_cleaned_and_cut_by_characters() {
        assert_eq!(text(b"plain", 10), ("plain".into(), false));
        assert_eq!(text(b"a\0b", 10), ("a\u{FFFD}b".into(), true));
        assert_eq!(text(b"a\xffb\xe2\x82", 10), ("a\u{FFFD}b\u{FFFD}".into(), true));
        assert_eq!(text("ééé".as_bytes(), 3), ("ééé".into(), false));
        assert_eq!(text("éééé".as_bytes(), 3), ("ééé".into(), true));
        assert_eq!(text(b"abcd", 1), ("a".into(), true));
        assert_eq!(text(b"", 1), ("".into(), false));
    }

    #[test]
    fn json_escapes_jsonb_refuses_are_replaced() {
        assert_eq!(json(br#"{"a":1}"#), (r#"{"a":1}"#.into(), false));
        assert_eq!(json(br#"{"a":"x\u0000y"}"#), (r#"{"a":"x\ufffdy"}"#.into(), true));
        // An escaped backslash followed by u0000 is text, not an escape.
        assert_eq!(json(br#"{"a":"\\u0000"}"#), (r#"{"a":"\\u0000"}"#.into(), false));
        assert_eq!(json(br#"["\ud83d\ude00"]"#), (r#"["\ud83d\ude00"]"#.into(), false));
        assert_eq!(json(br#"["\ud83d","\ude00x"]"#), (r#"["\ufffd","\ufffdx"]"#.into(), true));
        assert_eq!(json(br#"["\U0000"]"#).0, r#""[\"\\U0000\"]""#);
    }

    #[test]
    fn non_json_becomes_a_json_string() {
        assert_eq!(json(b"a:1:{i:0;s:1:\"x\";}"), (r#""a:1:{i:0;s:1:\"x\";}""#.into(), true));
        assert_eq!(json(b"x\0y"), ("\"x\u{FFFD}y\"".into(), true));
        assert_eq!(json(b""), ("\"\"".into(), true));
        assert_eq!(json(b"{\"a\":\"\xff\"}"), ("{\"a\":\"\u{FFFD}\"}".into(), true));
        let (j, _) = json(b"bad \\u0000 text");
        assert_eq!(j, r#""bad \\u0000 text""#);
    }

    #[test]
    fn smallint_out_of_range_is_a_row_error_and_appends_nothing() {
        let mut ints = [None; 11];
        ints[IntField::EduLevel as usize] = Some(40_000);
        let e = EventRef { id: crate::event::EventId { producer: 1, seq: 1 }, time_ns: 0, ints, strs: [None; 9] };
        let mut out = vec![7u8];
        assert!(encode_row(&mut out, &e).unwrap_err().0.contains("edulevel"));
        assert_eq!(out, vec![7u8]);
    }
}
