//! The in-process record format: how a captured event is laid out in bytes between the PHP request
//! (which writes it) and the flush thread and spool (which read it).
//!
//! Writing a record is a handful of stores into a reusable buffer, which is what keeps
//! `tsdb_log_event()` well under a microsecond; reading one is zero-copy (`EventRef` borrows the bytes).
//! The reader trusts nothing: the spool hands it bytes from disk.
//!
//! Layout (little endian):
//! ```text
//! u32 record length (including this field) | u8 version | u8 flags | u16 int-presence bitmap
//! u64 producer | u64 seq | i64 time_ns | 11 × i64 ints
//! then for each string present: u8 field | u32 length | bytes
//! ```

use crate::event::{EventId, EventRef, IntField, StrField, INT_FIELDS, STR_FIELDS};

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32 + 8 * INT_FIELDS.len();
/// Upper bound for one record, far above the configurable string caps; anything longer is corrupt.
pub const MAX_RECORD_LEN: usize = 64 << 20;

/// Flag bit: a string of this event was cut to its cap when it was captured.
pub const FLAG_TRUNCATED: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    Truncated,
    BadLength(usize),
    BadVersion(u8),
    BadField(u8),
    DuplicateField(u8),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Truncated => write!(f, "record truncated"),
            RecordError::BadLength(n) => write!(f, "bad record length {n}"),
            RecordError::BadVersion(v) => write!(f, "unknown record version {v}"),
            RecordError::BadField(x) => write!(f, "unknown string field {x}"),
            RecordError::DuplicateField(x) => write!(f, "string field {x} twice"),
        }
    }
}

/// Appends one record to a buffer. Dropping it without `finish` leaves the buffer as it was.
pub struct RecordWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    present: u16,
    flags: u8,
    done: bool,
}

impl<'b> RecordWriter<'b> {
    pub fn begin(buf: &'b mut Vec<u8>) -> Self {
        let start = buf.len();
        buf.resize(start + HEADER_LEN, 0);
        RecordWriter { buf, start, present: 0, flags: 0, done: false }
    }

    pub fn set_int(&mut self, f: IntField, v: i64) {
        let at = self.start + 32 + 8 * f as usize;
        self.buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self.present |= 1 << f as u16;
    }

    pub fn has_int(&self, f: IntField) -> bool {
        self.present & (1 << f as u16) != 0
    }

    pub fn int(&self, f: IntField) -> Option<i64> {
        if !self.has_int(f) {
            return None;
        }
        let at = self.start + 32 + 8 * f as usize;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[at..at + 8]);
        Some(i64::from_le_bytes(b))
    }

    /// Appends a string value, cut to `cap` bytes (at a UTF-8 boundary when the value is UTF-8) and
    /// ended with the truncation marker when the cap leaves room for it. Returns true when it had to cut.
    pub fn put_str(&mut self, f: StrField, value: &[u8], cap: usize) -> bool {
        let marker = crate::lineproto::TRUNCATION_MARKER.as_bytes();
        let cut = value.len() > cap;
        let (value, tail): (&[u8], &[u8]) = match (cut, cap >= 2 * marker.len()) {
            (false, _) => (value, b""),
            (true, true) => (&value[..utf8_floor(value, cap - marker.len())], marker),
            (true, false) => (&value[..utf8_floor(value, cap)], b""),
        };
        self.buf.push(f as u8);
        self.buf.extend_from_slice(&((value.len() + tail.len()) as u32).to_le_bytes());
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(tail);
        if cut {
            self.flags |= FLAG_TRUNCATED;
        }
        cut
    }

    /// Starts a string whose bytes the caller appends to `out()` (used to JSON-encode `other` in place).
    pub fn open_str(&mut self, f: StrField) -> OpenStr {
        self.buf.push(f as u8);
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        OpenStr { len_at }
    }

    pub fn out(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    pub fn close_str(&mut self, s: OpenStr) {
        let len = self.buf.len() - s.len_at - 4;
        self.buf[s.len_at..s.len_at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    }

    /// The bytes of an opened string so far (to replace them, e.g. by a truncation marker).
    pub fn truncate_str(&mut self, s: &OpenStr, keep: usize) {
        self.buf.truncate(s.len_at + 4 + keep);
    }

    pub fn str_len(&self, s: &OpenStr) -> usize {
        self.buf.len() - s.len_at - 4
    }

    pub fn str_bytes(&self, s: &OpenStr) -> &[u8] {
        &self.buf[s.len_at + 4..]
    }

    pub fn mark_truncated(&mut self) {
        self.flags |= FLAG_TRUNCATED;
    }

    pub fn is_truncated(&self) -> bool {
        self.flags & FLAG_TRUNCATED != 0
    }

    /// Completes the record; returns its length in bytes.
    pub fn finish(mut self, id: EventId, time_ns: i64) -> usize {
        let s = self.start;
        let len = self.buf.len() - s;
        let h = &mut self.buf[s..s + 32];
        h[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        h[4] = VERSION;
        h[5] = self.flags;
        h[6..8].copy_from_slice(&self.present.to_le_bytes());
        h[8..16].copy_from_slice(&id.producer.to_le_bytes());
        h[16..24].copy_from_slice(&id.seq.to_le_bytes());
        h[24..32].copy_from_slice(&time_ns.to_le_bytes());
        self.done = true;
        len
    }
}

impl Drop for RecordWriter<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.buf.truncate(self.start);
        }
    }
}

pub struct OpenStr {
    len_at: usize,
}

/// Replaces the JSON of `other` just written (`len` bytes) by `{"tsdb_truncated":BYTES,"head":"..."}` when it is
/// longer than `cap`, and flags the record (`tsdb_log_event()` and `tsdb_import()` alike).
pub fn shrink_other(w: &mut RecordWriter<'_>, open: &OpenStr, cap: usize, len: usize) {
    if len <= cap {
        return;
    }
    // The head as text (invalid bytes become U+FFFD first), cut so that JSON escaping, which at most
    // doubles it, keeps the marker object within the cap.
    let head_room = cap.saturating_sub(64) / 2;
    let all = w.str_bytes(open);
    let text = String::from_utf8_lossy(&all[..utf8_floor(all, head_room)]).into_owned();
    let head = text.as_bytes()[..utf8_floor(text.as_bytes(), head_room)].to_vec();
    w.truncate_str(open, 0);
    let out = w.out();
    out.extend_from_slice(b"{\"tsdb_truncated\":");
    crate::json::write_i64(out, len as i64);
    out.extend_from_slice(b",\"head\":");
    crate::json::write_str(out, &head);
    out.push(b'}');
    w.mark_truncated();
}

/// The largest prefix length `<= cap` that does not split a UTF-8 sequence (for UTF-8 input).
pub fn utf8_floor(s: &[u8], cap: usize) -> usize {
    if cap >= s.len() {
        return s.len();
    }
    let mut n = cap;
    // Step back over continuation bytes (at most 3) so a multi-byte character is not split.
    while n > 0 && cap - n < 3 && (s[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    if (s[n] & 0xC0) == 0x80 {
        cap
    } else {
        n
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// A decoded record: the event and its flags.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub event: EventRef<'a>,
    pub flags: u8,
    pub bytes: &'a [u8],
}

/// Reads the record at the start of `buf`.
pub fn read(buf: &[u8]) -> Result<Record<'_>, RecordError> {
    if buf.len() < 4 {
        return Err(RecordError::Truncated);
    }
    let len = u32_at(buf, 0) as usize;
    if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Err(RecordError::BadLength(len));
    }
    if buf.len() < len {
        return Err(RecordError::Truncated);
    }
    let rec = &buf[..len];
    if rec[4] != VERSION {
        return Err(RecordError::BadVersion(rec[4]));
    }
    let flags = rec[5];
    let present = u16::from_le_bytes([rec[6], rec[7]]);
    let id = EventId { producer: u64_at(rec, 8), seq: u64_at(rec, 16) };
    let time_ns = u64_at(rec, 24) as i64;
    let mut ints = [None; 11];
    for f in INT_FIELDS {
        if present & (1 << f as u16) != 0 {
            ints[f as usize] = Some(u64_at(rec, 32 + 8 * f as usize) as i64);
        }
    }
    let mut strs: [Option<&[u8]>; 9] = [None; 9];
    let mut at = HEADER_LEN;
    while at < len {
        if len - at < 5 {
            return Err(RecordError::Truncated);
        }
        let tag = rec[at];
        let slen = u32_at(rec, at + 1) as usize;
        at += 5;
        if slen > len - at {
            return Err(RecordError::Truncated);
        }
        let slot = strs.get_mut(tag as usize).ok_or(RecordError::BadField(tag))?;
        if slot.is_some() {
            return Err(RecordError::DuplicateField(tag));
        }
        *slot = Some(&rec[at..at + slen]);
        at += slen;
    }
    debug_assert_eq!(STR_FIELDS.len(), strs.len());
    Ok(Record { event: EventRef { id, time_ns, ints, strs }, flags, bytes: rec })
}

/// Iterates over the records packed in a buffer; stops at the first corrupt one (yielding its error).
pub struct Records<'a> {
    buf: &'a [u8],
    failed: bool,
}

pub fn records(buf: &[u8]) -> Records<'_> {
    Records { buf, failed: false }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.failed {
            return None;
        }
        match read(self.buf) {
            Ok(r) => {
                self.buf = &self.buf[r.bytes.len()..];
                Some(Ok(r))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Gives each event of one process a distinct nanosecond timestamp inside its `timecreated` second.
///
/// Offset = (capture-clock microsecond of the second, strictly increasing within the process) × 1000
/// plus a per-process salt in 0..1000. Inside one process no two events can share an offset unless a
/// million events share one `timecreated` second; across processes two events collide only if they
/// are captured in the same microsecond by processes with the same salt (1 in 1000) and carry the same
/// tag set. The offset is fixed at capture and stored in the record, so a retried or replayed event
/// rewrites the same InfluxDB point instead of adding a copy.
#[derive(Debug, Clone)]
pub struct Stamper {
    last_us: i64,
    salt: i64,
}

impl Stamper {
    pub fn new(producer: u64) -> Self {
        Stamper { last_us: 0, salt: (producer % 1000) as i64 }
    }

    /// `now_us`: the wall clock in microseconds since the epoch.
    pub fn stamp(&mut self, timecreated: i64, now_us: i64) -> i64 {
        let us = now_us.max(self.last_us + 1);
        self.last_us = us;
        let offset = us.rem_euclid(1_000_000) * 1000 + self.salt;
        timecreated.saturating_mul(1_000_000_000).saturating_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(buf: &mut Vec<u8>, seq: u64) -> usize {
        let mut w = RecordWriter::begin(buf);
        w.set_int(IntField::CourseId, 7);
        w.set_int(IntField::TimeCreated, 1_700_000_000);
        w.put_str(StrField::EventName, b"\\core\\event\\course_viewed", 1024);
        w.put_str(StrField::Other, b"{\"a\":1}", 1024);
        w.finish(EventId { producer: 42, seq }, 1_700_000_000_000_000_123)
    }

    #[test]
    fn roundtrip() {
        let mut buf = Vec::new();
        let n1 = sample(&mut buf, 1);
        let n2 = sample(&mut buf, 2);
        assert_eq!(buf.len(), n1 + n2);
        let got: Vec<_> = records(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2);
        let e = got[1].event;
        assert_eq!(e.id, EventId { producer: 42, seq: 2 });
        assert_eq!(e.int(IntField::CourseId), Some(7));
        assert_eq!(e.int(IntField::UserId), None);
        assert_eq!(e.str(StrField::EventName), Some(&b"\\core\\event\\course_viewed"[..]));
        assert_eq!(e.str(StrField::Ip), None);
        assert_eq!(e.time_ns, 1_700_000_000_000_000_123);
    }

    #[test]
    fn long_strings_end_with_the_marker() {
        let mut buf = Vec::new();
        let mut w = RecordWriter::begin(&mut buf);
        assert!(w.put_str(StrField::Ip, &[b'x'; 200], 100));
        assert!(!w.put_str(StrField::Action, &[b'y'; 100], 100));
        w.finish(EventId { producer: 1, seq: 1 }, 0);
        let ip = read(&buf).unwrap().event.str(StrField::Ip).unwrap();
        assert_eq!(ip.len(), 100);
        assert!(ip.ends_with(crate::lineproto::TRUNCATION_MARKER.as_bytes()));
        assert_eq!(read(&buf).unwrap().event.str(StrField::Action).unwrap().len(), 100);
    }

    #[test]
    fn dropped_writer_leaves_buffer_unchanged() {
        let mut buf = b"prefix".to_vec();
        {
            let mut w = RecordWriter::begin(&mut buf);
            w.put_str(StrField::Action, b"viewed", 100);
        }
        assert_eq!(buf, b"prefix");
    }

    #[test]
    fn truncation_respects_utf8_and_flags() {
        let mut buf = Vec::new();
        let mut w = RecordWriter::begin(&mut buf);
        assert!(w.put_str(StrField::Target, "ééé".as_bytes(), 3));
        w.finish(EventId { producer: 1, seq: 1 }, 0);
        let r = read(&buf).unwrap();
        assert_eq!(r.event.str(StrField::Target), Some("é".as_bytes()));
        assert_eq!(r.flags & FLAG_TRUNCATED, FLAG_TRUNCATED);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        sample(&mut buf, 1);
        for cut in 0..buf.len() {
            assert!(read(&buf[..cut]).is_err(), "prefix {cut} accepted");
        }
        let mut bad = buf.clone();
        bad[HEADER_LEN] = 200;
        assert_eq!(read(&bad).unwrap_err(), RecordError::BadField(200));
        let mut bad = buf.clone();
        bad[HEADER_LEN + 1] = 0xff; // string length past the end
        assert_eq!(read(&bad).unwrap_err(), RecordError::Truncated);
    }

    #[test]
    fn stamps_are_distinct_within_a_second() {
        let mut s = Stamper::new(123_456);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            // The clock does not move: 10 000 events in the same microsecond.
            assert!(seen.insert(s.stamp(1_700_000_000, 1_700_000_000_500_000)));
        }
        let t = s.stamp(1_700_000_000, 0);
        assert_eq!(t.div_euclid(1_000_000_000), 1_700_000_000);
        assert_eq!(t % 1000, 456);
    }
}
