//! InfluxDB line protocol: one line per event, escaped exactly per the spec so that no byte of an
//! event can add a point, a tag or a field.
//!
//! - measurement: escape `,` and space;
//! - tag keys, tag values, field keys: escape `,`, `=` and space;
//! - string field values: in double quotes, escape `"` and `\`;
//! - a tag value that is empty is omitted (InfluxDB refuses empty tags); a tag value that cannot be
//!   written as a tag (a line break, or a trailing backslash that InfluxDB 1.x refuses) has those
//!   characters replaced by U+FFFD, and the event is flagged as altered;
//! - invalid UTF-8 becomes U+FFFD; string fields longer than `MAX_FIELD_BYTES` are cut with a marker.

use crate::config::Config;
use crate::event::{EventRef, IntField, StrField, INT_FIELDS, STR_FIELDS};

/// InfluxDB's limit for one string field value.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
pub const TRUNCATION_MARKER: &str = "…[truncated by tsdb]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Int(IntField),
    Str(StrField),
}

/// A prepared encoder for one configuration (measurement and tag set).
#[derive(Clone, Debug)]
pub struct Encoder {
    measurement: Vec<u8>,
    tags: Vec<(Col, &'static str)>,
    fields: Vec<(Col, &'static str)>,
}

/// What encoding one event changed, to be counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Alterations {
    pub truncated: bool,
    pub replaced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A point needs at least one field.
    NoFields,
}

fn col_of(name: &str) -> Option<(Col, &'static str)> {
    INT_FIELDS
        .iter()
        .find(|f| f.name() == name)
        .map(|&f| (Col::Int(f), f.name()))
        .or_else(|| STR_FIELDS.iter().find(|f| f.name() == name).map(|&f| (Col::Str(f), f.name())))
}

impl Encoder {
    pub fn new(config: &Config) -> Encoder {
        Encoder::with(config.get("measurement"), &config.tags())
    }

    pub fn with(measurement: &str, tag_names: &[&str]) -> Encoder {
        let mut m = Vec::new();
        escape(&mut m, measurement.as_bytes(), b",  ");
        // Tags in key order: InfluxDB sorts them anyway, pre-sorted input is cheaper to index.
        let mut tags: Vec<_> = tag_names.iter().filter_map(|t| col_of(t)).collect();
        tags.sort_by_key(|t| t.1);
        let mut fields: Vec<_> = INT_FIELDS
            .iter()
            .filter(|f| **f != IntField::TimeCreated)
            .map(|&f| (Col::Int(f), f.name()))
            .chain(STR_FIELDS.iter().map(|&f| (Col::Str(f), f.name())))
            .filter(|c| !tags.iter().any(|t| t.0 == c.0))
            .collect();
        fields.sort_by_key(|f| f.1);
        Encoder { measurement: m, tags, fields }
    }

    /// Appends one line (with its trailing `\n`). On error nothing is appended.
    pub fn encode(&self, e: &EventRef<'_>, out: &mut Vec<u8>) -> Result<Alterations, EncodeError> {
        let start = out.len();
        let mut alt = Alterations::default();
        out.extend_from_slice(&self.measurement);
        for (col, key) in &self.tags {
            let mut tmp = itoa::Buffer::new();
            let value: &[u8] = match *col {
                Col::Int(f) => match e.int(f) {
                    Some(v) => tmp.format(v).as_bytes(),
                    None => continue,
                },
                Col::Str(f) => match e.str(f) {
                    Some(v) if !v.is_empty() => v,
                    _ => continue,
                },
            };
            out.push(b',');
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            alt.replaced |= write_tag_value(out, value);
        }
        let mut sep = b' ';
        for (col, key) in &self.fields {
            match *col {
                Col::Int(f) => {
                    if let Some(v) = e.int(f) {
                        out.push(sep);
                        out.extend_from_slice(key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
                        out.push(b'i');
                        sep = b',';
                    }
                }
                Col::Str(f) => {
                    if let Some(v) = e.str(f) {
                        out.push(sep);
                        out.extend_from_slice(key.as_bytes());
                        out.extend_from_slice(b"=\"");
                        let w = write_field_string(out, v);
                        alt.truncated |= w.truncated;
                        alt.replaced |= w.replaced;
                        out.push(b'"');
                        sep = b',';
                    }
                }
            }
        }
        if sep == b' ' {
            out.truncate(start);
            return Err(EncodeError::NoFields);
        }
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(e.time_ns).as_bytes());
        out.push(b'\n');
        Ok(alt)
    }
}

/// Appends `s` with a backslash before every byte in `special`.
fn escape(out: &mut Vec<u8>, s: &[u8], special: &[u8]) {
    for &b in s {
        if special.contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Tag value: escape `,` `=` space; replace what line protocol cannot carry in a tag. Returns true
/// when it replaced anything.
fn write_tag_value(out: &mut Vec<u8>, v: &[u8]) -> bool {
    let mut replaced = false;
    for chunk in v.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\n' | '\r' => {
                    out.extend_from_slice("\u{FFFD}".as_bytes());
                    replaced = true;
                }
                ',' | '=' | ' ' => {
                    out.push(b'\\');
                    out.push(ch as u8);
                }
                _ => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            replaced = true;
        }
    }
    if v.ends_with(b"\\") {
        // Only a value's own last backslash can end the output: it would escape the separator after it.
        out.pop();
        out.extend_from_slice("\u{FFFD}".as_bytes());
        replaced = true;
    }
    replaced
}

/// String field value without the quotes: escape `"` and `\`, cut at `MAX_FIELD_BYTES` with a marker.
fn write_field_string(out: &mut Vec<u8>, v: &[u8]) -> Alterations {
    let text = String::from_utf8_lossy(v);
    let replaced = matches!(text, std::borrow::Cow::Owned(_));
    let quoted = |c: char| c == '"' || c == '\\';
    let escaped_len = text.len() + text.chars().filter(|&c| quoted(c)).count();
    let limit = if escaped_len > MAX_FIELD_BYTES { MAX_FIELD_BYTES - TRUNCATION_MARKER.len() } else { usize::MAX };
    let mut n = 0;
    for ch in text.chars() {
        let w = ch.len_utf8() + usize::from(quoted(ch));
        if n + w > limit {
            out.extend_from_slice(TRUNCATION_MARKER.as_bytes());
            return Alterations { truncated: true, replaced };
        }
        if quoted(ch) {
            out.push(b'\\');
        }
        let mut b = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        n += w;
    }
    Alterations { truncated: false, replaced }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    fn ev<'a>(strs: [Option<&'a [u8]>; 9]) -> EventRef<'a> {
        let mut ints = [None; 11];
        ints[IntField::CourseId as usize] = Some(12);
        ints[IntField::UserId as usize] = Some(34);
        ints[IntField::TimeCreated as usize] = Some(1_700_000_000);
        EventRef { id: EventId { producer: 1, seq: 1 }, time_ns: 1_700_000_000_000_000_001, ints, strs }
    }

    fn line(e: &EventRef<'_>) -> String {
        let mut out = Vec::new();
        Encoder::with("moodle events", &["eventname", "courseid", "origin"]).encode(e, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_event() {
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::EventName as usize] = Some(b"\\core\\event\\course_viewed");
        s[StrField::Other as usize] = Some(b"{\"a\":\"b\"}");
        s[StrField::Origin as usize] = Some(b"");
        assert_eq!(
            line(&ev(s)),
            "moodle\\ events,courseid=12,eventname=\\core\\event\\course_viewed other=\"{\\\"a\\\":\\\"b\\\"}\",userid=34i 1700000000000000001\n"
        );
    }

    #[test]
    fn hostile_tag_cannot_add_tags_or_lines() {
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::EventName as usize] = Some(b"x,evil=1 injected=2i\nm2 f=1i 0\\");
        let l = line(&ev(s));
        assert_eq!(l.matches('\n').count(), 1);
        assert!(
            l.starts_with(
                "moodle\\ events,courseid=12,eventname=x\\,evil\\=1\\ injected\\=2i\u{FFFD}m2\\ f\\=1i\\ 0\u{FFFD} "
            ),
            "{l}"
        );
    }

    #[test]
    fn long_field_is_cut_with_marker() {
        let big = "é".repeat(40_000);
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::Other as usize] = Some(big.as_bytes());
        let mut out = Vec::new();
        let alt = Encoder::with("m", &[]).encode(&ev(s), &mut out).unwrap();
        assert!(alt.truncated);
        let text = String::from_utf8(out).expect("still UTF-8");
        assert!(text.contains(TRUNCATION_MARKER));
        let value = text.split("other=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(value.len() <= MAX_FIELD_BYTES);
    }

    #[test]
    fn event_without_fields_is_refused() {
        let e = EventRef { id: EventId { producer: 1, seq: 1 }, time_ns: 5, ints: [None; 11], strs: [None; 9] };
        let mut out = b"keep".to_vec();
        assert_eq!(Encoder::with("m", &[]).encode(&e, &mut out), Err(EncodeError::NoFields));
        assert_eq!(out, b"keep");
    }
}
