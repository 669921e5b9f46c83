//! InfluxDB line protocol: one line per event, escaped so that the server stores the event's exact
//! values wherever the protocol can carry them, and so that no byte of an event can add a point, a tag
//! or a field. The rules below were checked against the real InfluxDB 1.6.7 server (tests/influx.rs
//! reads every nasty case back) and against the source of the InfluxDB 3 parser; docs/influxdb.md
//! has the table of what is stored for each case.
//!
//! Three dialects, because the servers unescape tag values differently (the InfluxDB sink asks the
//! server which one it is, see `sink::influx`):
//! - [`Dialect::Go`]: InfluxDB 1.x and 2.x (and the `file` sink). A tag value loses a backslash only
//!   before `,`, `=` or space: `a\\b` is stored as `a\\b` (two backslashes), so backslashes are
//!   written as they are and only `,` `=` space get one in front.
//! - [`Dialect::Iox`]: InfluxDB 3. Its parser also turns `\\` into `\`, and ends a tag value at a tab,
//!   so backslashes are doubled and tabs cannot be carried in tags.
//! - [`Dialect::Portable`]: any other server speaking line protocol (VictoriaMetrics): tags as for
//!   InfluxDB 3 (VictoriaMetrics unescapes `\\` too), and no line break inside string fields either,
//!   because VictoriaMetrics splits lines at every newline, even inside quotes.
//!
//! All: measurement escapes `,` and space; string fields are quoted with `"` and `\` escaped, and
//! carry every other character as it is (newline, CR, tab, NUL included; portable: no newline). A tag
//! value cannot hold a line break (nor a tab in InfluxDB 3 and portable) and cannot end with a
//! backslash; those characters become U+FFFD. In the Go dialect a rare tag/newline combination that
//! would confuse the server's line splitter is detected and altered too (see `go_line_end`). Invalid UTF-8 becomes U+FFFD. An empty tag value omits the tag. Strings longer than 64 KiB
//! are cut, with a marker (`other`: replaced by a JSON object holding its head). Every such change is
//! reported in [`Alterations`] so the caller counts it.

use crate::config::Config;
use crate::event::{EventRef, IntField, StrField, INT_FIELDS, STR_FIELDS};
use crate::json;
use crate::record::utf8_floor;

/// Largest string field value (stored bytes, after unescaping) InfluxDB 2 and 3 accept.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// InfluxDB's limit for a series key (measurement plus escaped tag set).
pub const MAX_SERIES_KEY_BYTES: usize = 65_535;
/// Appended to a string that had to be cut.
pub const TRUNCATION_MARKER: &str = "…[truncated by tsdb]";
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// How the target server unescapes tag values (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// InfluxDB 1.x / 2.x, VictoriaMetrics: backslashes in tag values are taken literally.
    Go,
    /// InfluxDB 3: `\\` in a tag value is one backslash; a tab ends the value.
    Iox,
    /// Unknown servers (VictoriaMetrics): InfluxDB 3's tag rules, and no newline in string fields.
    Portable,
}

impl Dialect {
    /// The dialect of a backend name (`influxdb3` is the only one with the InfluxDB 3 parser).
    pub fn for_backend(backend: &str) -> Dialect {
        if backend == "influxdb3" {
            Dialect::Iox
        } else {
            Dialect::Go
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Int(IntField),
    Str(StrField),
}

/// A prepared encoder for one configuration (measurement, tag set, dialect).
#[derive(Clone, Debug)]
pub struct Encoder {
    measurement: Vec<u8>,
    tags: Vec<(Col, &'static str)>,
    fields: Vec<(Col, &'static str)>,
    dialect: Dialect,
    /// Cap on one tag value's input bytes, so that the series key stays under InfluxDB's limit.
    tag_cap: usize,
}

/// What encoding one event changed, to be counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Alterations {
    /// A value was cut to fit a size limit.
    pub truncated: bool,
    /// A character the protocol cannot carry in that place was replaced by U+FFFD.
    pub replaced: bool,
}

impl Alterations {
    pub fn any(self) -> bool {
        self.truncated || self.replaced
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A point needs at least one field. Not returned any more: an event without any field is
    /// written with `timecreated` as its field. Kept for callers that match on it.
    NoFields,
}

fn col_of(name: &str) -> Option<(Col, &'static str)> {
    INT_FIELDS
        .iter()
        .find(|f| f.name() == name)
        .map(|&f| (Col::Int(f), f.name()))
        .or_else(|| STR_FIELDS.iter().find(|f| f.name() == name).map(|&f| (Col::Str(f), f.name())))
}

/// Why a measurement name cannot be used, if it cannot. InfluxDB would treat a leading `#` as a
/// comment, strip leading whitespace, and unescape backslashes differently between versions.
pub fn check_measurement(m: &str) -> Result<(), String> {
    if m.is_empty() {
        return Err("measurement: must not be empty".into());
    }
    if m.starts_with('#') || m.starts_with('_') {
        return Err("measurement: must not start with # or _".into());
    }
    if m.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f) {
        return Err("measurement: must not contain backslashes or control characters".into());
    }
    if m.len() > 1024 {
        return Err("measurement: at most 1024 bytes".into());
    }
    Ok(())
}

impl Encoder {
    /// The encoder for a configuration: its measurement and tags, the dialect of its backend.
    pub fn new(config: &Config) -> Encoder {
        Encoder::with_dialect(config.get("measurement"), &config.tags(), Dialect::for_backend(config.backend()))
    }

    /// An encoder in the InfluxDB 1.x/2.x dialect.
    pub fn with(measurement: &str, tag_names: &[&str]) -> Encoder {
        Encoder::with_dialect(measurement, tag_names, Dialect::Go)
    }

    pub fn with_dialect(measurement: &str, tag_names: &[&str], dialect: Dialect) -> Encoder {
        let mut m = Vec::new();
        for &b in measurement.as_bytes() {
            match b {
                b',' | b' ' => m.extend_from_slice(&[b'\\', b]),
                b'\n' | b'\r' | b'\t' | b'\\' => m.extend_from_slice(REPLACEMENT),
                _ => m.push(b),
            }
        }
        // Tags in key order: InfluxDB sorts them anyway, pre-sorted input is cheaper to index.
        let mut tags: Vec<_> = tag_names.iter().filter_map(|t| col_of(t)).collect();
        tags.sort_by_key(|t| t.1);
        tags.dedup();
        let mut fields: Vec<_> = INT_FIELDS
            .iter()
            .filter(|f| **f != IntField::TimeCreated)
            .map(|&f| (Col::Int(f), f.name()))
            .chain(STR_FIELDS.iter().map(|&f| (Col::Str(f), f.name())))
            .filter(|c| !tags.iter().any(|t| t.0 == c.0))
            .collect();
        fields.sort_by_key(|f| f.1);
        // Worst case a tag value's input byte becomes 3 output bytes (U+FFFD for an invalid byte).
        let keys: usize = tags.iter().map(|t| t.1.len() + 2).sum();
        let room = MAX_SERIES_KEY_BYTES.saturating_sub(m.len() + keys + 64);
        let tag_cap = (room / (3 * tags.len().max(1))).max(256);
        Encoder { measurement: m, tags, fields, dialect, tag_cap }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Longest tag value (input bytes) written whole; longer ones are cut with the marker.
    pub fn tag_cap(&self) -> usize {
        self.tag_cap
    }

    /// Appends one line (with its trailing `\n`).
    pub fn encode(&self, e: &EventRef<'_>, out: &mut Vec<u8>) -> Result<Alterations, EncodeError> {
        let start = out.len();
        let alt = self.encode_line(e, out, false);
        if let Some(a) = alt {
            return Ok(a);
        }
        // A tag value made InfluxDB 1.x/2.x's line splitter lose track of quoting (see
        // `go_line_end`): write the line again with the backslashes that caused it replaced.
        out.truncate(start);
        let mut a = self.encode_line(e, out, true).unwrap_or_default();
        a.replaced = true;
        Ok(a)
    }

    /// Writes the line; `None` when `safe` is off and the line would be split wrongly by the server.
    fn encode_line(&self, e: &EventRef<'_>, out: &mut Vec<u8>, safe: bool) -> Option<Alterations> {
        let start = out.len();
        let mut alt = Alterations::default();
        let mut exposed = false;
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
            let t = write_tag_value(out, value, self.dialect, self.tag_cap, safe);
            alt.truncated |= t.truncated;
            alt.replaced |= t.replaced;
            exposed |= t.exposed;
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
                        let w = write_field_string(out, v, f == StrField::Other, self.dialect);
                        alt.truncated |= w.truncated;
                        alt.replaced |= w.replaced;
                        out.push(b'"');
                        sep = b',';
                    }
                }
            }
        }
        if sep == b' ' {
            // No field at all: InfluxDB needs one. `timecreated` is part of the event (and of its
            // timestamp), so it is the field rather than dropping the event.
            out.extend_from_slice(b" timecreated=");
            out.extend_from_slice(itoa::Buffer::new().format(e.timecreated()).as_bytes());
            out.push(b'i');
        }
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(e.time_ns).as_bytes());
        out.push(b'\n');
        if exposed && go_line_end(&out[start..]) != out.len() - start - 1 {
            return None;
        }
        Some(alt)
    }
}

/// Byte classes for tag values: 0 copy as is; 1 escape with a backslash; 2 cannot be carried
/// (U+FFFD); 3 backslash.
const fn tag_classes(dialect: Dialect) -> [u8; 256] {
    let mut t = [0u8; 256];
    t[b',' as usize] = 1;
    t[b'=' as usize] = 1;
    t[b' ' as usize] = 1;
    t[b'\n' as usize] = 2;
    t[b'\\' as usize] = 3;
    if !matches!(dialect, Dialect::Go) {
        t[b'\t' as usize] = 2;
    }
    t
}
const GO_TAG: [u8; 256] = tag_classes(Dialect::Go);
const IOX_TAG: [u8; 256] = tag_classes(Dialect::Iox);

#[derive(Default)]
struct TagOut {
    truncated: bool,
    replaced: bool,
    /// Go dialect: an odd run of backslashes stands before an escaped character, so InfluxDB's
    /// line splitter (which skips `\` plus the next byte) sees that character unescaped.
    exposed: bool,
}

/// Appends a tag value (non-empty input) escaped for `dialect`.
fn write_tag_value(out: &mut Vec<u8>, v: &[u8], dialect: Dialect, cap: usize, safe: bool) -> TagOut {
    let mut r = TagOut::default();
    let (v, cut) = if v.len() > cap { (&v[..utf8_floor(v, cap - TRUNCATION_MARKER.len())], true) } else { (v, false) };
    let start = out.len();
    let classes = if dialect == Dialect::Go { &GO_TAG } else { &IOX_TAG };
    // Length of the run of backslashes just written (Go dialect, for `exposed`).
    let mut run = 0usize;
    for chunk in v.utf8_chunks() {
        let s = chunk.valid().as_bytes();
        let mut copied = 0;
        for (i, &b) in s.iter().enumerate() {
            let class = classes[b as usize];
            if class == 0 {
                run = 0;
                continue;
            }
            out.extend_from_slice(&s[copied..i]);
            copied = i + 1;
            match class {
                1 => {
                    if dialect == Dialect::Go && run % 2 == 1 {
                        if safe {
                            // Replace the run's last backslash so the splitter sees the escape.
                            out.pop();
                            out.extend_from_slice(REPLACEMENT);
                            r.replaced = true;
                        } else {
                            r.exposed = true;
                        }
                    }
                    out.push(b'\\');
                    out.push(b);
                    run = 0;
                }
                2 => {
                    out.extend_from_slice(REPLACEMENT);
                    r.replaced = true;
                    run = 0;
                }
                _ => {
                    if dialect != Dialect::Go {
                        out.push(b'\\');
                    }
                    out.push(b'\\');
                    run += 1;
                }
            }
        }
        out.extend_from_slice(&s[copied..]);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(REPLACEMENT);
            r.replaced = true;
            run = 0;
        }
    }
    if cut {
        r.truncated = true;
        for &b in TRUNCATION_MARKER.as_bytes() {
            if b == b' ' {
                out.push(b'\\');
            }
            out.push(b);
        }
    } else if out.len() > start && out[out.len() - 1] == b'\\' {
        // A value cannot end with a backslash: it would escape the separator after it (1.x/2.x) or
        // is refused (3.x). The last backslash becomes U+FFFD.
        out.pop();
        if dialect != Dialect::Go {
            out.pop();
        }
        out.extend_from_slice(REPLACEMENT);
        r.replaced = true;
    }
    r
}

/// Where InfluxDB 1.x/2.x's line splitter (`scanLine` in models/points.go) ends the line that starts
/// at `buf[0]`: it skips a backslash and the byte after it, switches to "fields" at the first space
/// it sees, then counts `=` and `,` to tell an opening quote, and ends the line at a newline outside
/// quotes. A tag value with an odd run of backslashes before an escaped space can make it enter
/// "fields" early and misjudge the quotes, so a newline inside a string field would split the point.
pub fn go_line_end(buf: &[u8]) -> usize {
    let (mut i, mut quoted, mut fields, mut equals, mut commas) = (0usize, false, false, 0usize, 0usize);
    while i < buf.len() {
        let b = buf[i];
        if b == b'\\' && i + 2 < buf.len() {
            i += 2;
            continue;
        }
        if b == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && b == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && b == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if b == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if b == b'\n' && !quoted {
            break;
        }
        i += 1;
    }
    i
}

/// Appends `s` (valid UTF-8) with `"` and `\` escaped.
fn escape_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut copied = 0;
    for (i, &b) in s.iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&s[copied..i]);
            out.push(b'\\');
            out.push(b);
            copied = i + 1;
        }
    }
    out.extend_from_slice(&s[copied..]);
}

/// String field value without the quotes: `"` and `\` escaped, invalid UTF-8 replaced, cut to
/// `MAX_FIELD_BYTES` stored bytes. A cut `other` becomes `{"tsdb_truncated":BYTES,"head":"..."}`
/// (still JSON, like the capture-time cut); any other string gets `TRUNCATION_MARKER` appended.
fn write_field_string(out: &mut Vec<u8>, v: &[u8], is_json: bool, dialect: Dialect) -> Alterations {
    let mut text = String::from_utf8_lossy(v);
    let mut replaced = matches!(text, std::borrow::Cow::Owned(_));
    if dialect == Dialect::Portable && text.contains('\n') {
        text = std::borrow::Cow::Owned(text.replace('\n', "\u{FFFD}"));
        replaced = true;
    }
    if text.len() <= MAX_FIELD_BYTES {
        escape_string(out, text.as_bytes());
        return Alterations { truncated: false, replaced };
    }
    let mut cut = Vec::with_capacity(MAX_FIELD_BYTES);
    if is_json {
        cut.extend_from_slice(b"{\"tsdb_truncated\":");
        cut.extend_from_slice(itoa::Buffer::new().format(v.len()).as_bytes());
        cut.extend_from_slice(b",\"head\":");
        let budget = MAX_FIELD_BYTES - cut.len() - 3;
        let mut used = 0;
        let mut end = 0;
        for (i, ch) in text.char_indices() {
            let w = match ch {
                '"' | '\\' | '\n' | '\r' | '\t' => 2,
                c if (c as u32) < 0x20 => 6,
                c => c.len_utf8(),
            };
            if used + w > budget {
                break;
            }
            used += w;
            end = i + ch.len_utf8();
        }
        json::write_str(&mut cut, &text.as_bytes()[..end]);
        cut.push(b'}');
    } else {
        let keep = utf8_floor(text.as_bytes(), MAX_FIELD_BYTES - TRUNCATION_MARKER.len());
        cut.extend_from_slice(&text.as_bytes()[..keep]);
        cut.extend_from_slice(TRUNCATION_MARKER.as_bytes());
    }
    escape_string(out, &cut);
    Alterations { truncated: true, replaced }
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

    fn line_in(e: &EventRef<'_>, d: Dialect) -> (String, Alterations) {
        let mut out = Vec::new();
        let alt = Encoder::with_dialect("moodle events", &["eventname", "courseid", "origin"], d)
            .encode(e, &mut out)
            .unwrap();
        (String::from_utf8(out).unwrap(), alt)
    }

    fn line(e: &EventRef<'_>) -> String {
        line_in(e, Dialect::Go).0
    }

    fn with_name(name: &[u8]) -> [Option<&[u8]>; 9] {
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::EventName as usize] = Some(name);
        s
    }

    /// The tag value part of a line (between `eventname=` and the next unescaped separator).
    fn tag_of(l: &str) -> &str {
        let rest = l.split_once("eventname=").unwrap().1;
        let b = rest.as_bytes();
        let mut i = 0;
        while i < b.len() && !((b[i] == b' ' || b[i] == b',') && (i == 0 || b[i - 1] != b'\\')) {
            i += 1;
        }
        &rest[..i]
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
        let (l3, alt) = line_in(&ev(s), Dialect::Iox);
        assert!(l3.contains(",eventname=\\\\core\\\\event\\\\course_viewed "), "{l3}");
        assert!(!alt.any());
    }

    #[test]
    fn go_tag_escaping_matches_influxdb_1_6() {
        // Verified against influxd 1.6.7: stored value ← written bytes.
        let cases: &[(&[u8], &str)] = &[
            (b"a\\\\b", "a\\\\b"), // two backslashes are stored as two
            (b"a\\,b", "a\\\\,b"), // backslash comma
            (b"a,b=c d", "a\\,b\\=c\\ d"),
            (b"a\tb\rc\x00", "a\tb\rc\x00"),
            (b"q\"x", "q\"x"),
            (b"=x", "\\=x"),
        ];
        for (input, want) in cases {
            assert_eq!(tag_of(&line(&ev(with_name(input)))), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn iox_tag_escaping() {
        let cases: &[(&[u8], &str)] =
            &[(b"a\\\\b", "a\\\\\\\\b"), (b"a\\,b", "a\\\\\\,b"), (b"a\tb", "a\u{FFFD}b"), (b"x\\", "x\u{FFFD}")];
        for (input, want) in cases {
            let (l, _) = line_in(&ev(with_name(input)), Dialect::Iox);
            assert_eq!(tag_of(&l), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn hostile_tag_cannot_add_tags_or_lines() {
        let l = line(&ev(with_name(b"x,evil=1 injected=2i\nm2 f=1i 0\\")));
        assert_eq!(l.matches('\n').count(), 1);
        assert!(
            l.starts_with(
                "moodle\\ events,courseid=12,eventname=x\\,evil\\=1\\ injected\\=2i\u{FFFD}m2\\ f\\=1i\\ 0\u{FFFD} "
            ),
            "{l}"
        );
    }

    #[test]
    fn trailing_backslashes_and_empty_values() {
        assert_eq!(tag_of(&line(&ev(with_name(b"x\\")))), "x\u{FFFD}");
        assert_eq!(tag_of(&line(&ev(with_name(b"x\\\\")))), "x\\\u{FFFD}");
        assert_eq!(tag_of(&line(&ev(with_name(b"\\")))), "\u{FFFD}");
        assert!(!line(&ev(with_name(b""))).contains("eventname"));
    }

    #[test]
    fn splitter_confusion_is_detected_and_avoided() {
        // `p\ q` then `r\,s` as tags and a newline in a string: InfluxDB 1.6.7 splits this line in
        // two when written naively (checked on the real server). The encoder must notice.
        let mut s = with_name(b"p\\ q");
        s[StrField::Origin as usize] = Some(b"r\\,s");
        s[StrField::Other as usize] = Some(b"1\n2");
        let (l, alt) = line_in(&ev(s), Dialect::Go);
        assert_eq!(go_line_end(l.as_bytes()), l.len() - 1, "{l:?}");
        assert!(alt.replaced);
        // Alone, the same tag is carried exactly.
        let mut s = with_name(b"p\\ q");
        s[StrField::Other as usize] = Some(b"1\n2");
        let (l, alt) = line_in(&ev(s), Dialect::Go);
        assert!(l.contains("eventname=p\\\\ q "), "{l}");
        assert!(!alt.any());
    }

    #[test]
    fn strings_carry_everything() {
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::Ip as usize] = Some(b"a\"b\\c\nd\r\te\\");
        let l = line(&ev(s));
        assert!(l.contains("ip=\"a\\\"b\\\\c\nd\r\te\\\\\""), "{l}");
        assert_eq!(go_line_end(l.as_bytes()), l.len() - 1);
    }

    #[test]
    fn portable_dialect() {
        let mut s = with_name(b"a\\b\tc\\");
        s[StrField::Ip as usize] = Some(b"x\ny\r");
        let (l, alt) = line_in(&ev(s), Dialect::Portable);
        assert_eq!(tag_of(&l), "a\\\\b\u{FFFD}c\u{FFFD}");
        assert!(l.contains("ip=\"x\u{FFFD}y\r\""), "{l}");
        assert_eq!(l.matches('\n').count(), 1);
        assert!(alt.replaced);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut s = with_name(b"a\xffb");
        s[StrField::Ip as usize] = Some(b"\xc3");
        let (l, alt) = line_in(&ev(s), Dialect::Go);
        assert!(l.contains("eventname=a\u{FFFD}b") && l.contains("ip=\"\u{FFFD}\""), "{l}");
        assert!(alt.replaced && !alt.truncated);
    }

    #[test]
    fn long_field_is_cut_with_marker() {
        let big = "é\"".repeat(30_000);
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::Ip as usize] = Some(big.as_bytes());
        let mut out = Vec::new();
        let alt = Encoder::with("m", &[]).encode(&ev(s), &mut out).unwrap();
        assert!(alt.truncated);
        let text = String::from_utf8(out).expect("still UTF-8");
        let value = text.split("ip=\"").nth(1).unwrap().rsplit_once("\",userid").unwrap().0.replace("\\\"", "\"");
        assert!(value.ends_with(TRUNCATION_MARKER));
        assert!(value.len() <= MAX_FIELD_BYTES && value.len() > MAX_FIELD_BYTES - 8, "{}", value.len());
    }

    #[test]
    fn long_other_stays_json() {
        let big = format!("{{\"x\":\"{}\"}}", "ab\\n\u{1}".repeat(20_000));
        let mut s: [Option<&[u8]>; 9] = [None; 9];
        s[StrField::Other as usize] = Some(big.as_bytes());
        let mut out = Vec::new();
        let alt = Encoder::with("m", &[]).encode(&ev(s), &mut out).unwrap();
        assert!(alt.truncated);
        let text = String::from_utf8(out).unwrap();
        let raw = text.split("other=\"").nth(1).unwrap().rsplit_once("\",userid").unwrap().0;
        let stored = raw.replace("\\\\", "\u{0}").replace("\\\"", "\"").replace('\u{0}', "\\");
        assert!(stored.len() <= MAX_FIELD_BYTES && stored.len() > MAX_FIELD_BYTES - 16, "{}", stored.len());
        let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["tsdb_truncated"], big.len());
        assert!(big.starts_with(v["head"].as_str().unwrap()));
    }

    #[test]
    fn long_tag_is_cut_under_the_series_key_limit() {
        let big = ",".repeat(200_000);
        let (l, alt) = line_in(&ev(with_name(big.as_bytes())), Dialect::Go);
        assert!(alt.truncated);
        assert!(l.split(' ').next().unwrap().len() < MAX_SERIES_KEY_BYTES);
        assert!(tag_of(&l).ends_with("…[truncated\\ by\\ tsdb]"));
    }

    #[test]
    fn event_without_fields_gets_timecreated() {
        let e =
            EventRef { id: EventId { producer: 1, seq: 1 }, time_ns: 5_000_000_007, ints: [None; 11], strs: [None; 9] };
        let mut out = Vec::new();
        Encoder::with("m", &[]).encode(&e, &mut out).unwrap();
        assert_eq!(out, b"m timecreated=5i 5000000007\n");
    }

    #[test]
    fn measurement_rules() {
        assert!(check_measurement("moodle_events").is_ok());
        assert!(check_measurement("moodle events,x").is_ok());
        for bad in ["", "#m", "_m", "a\\b", "a\tb"] {
            assert!(check_measurement(bad).is_err(), "{bad}");
        }
    }
}
