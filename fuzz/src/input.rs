//! Turning fuzzer bytes into structured inputs (events, configurations) without any dependency
//! beyond the standard library, so the same decoding is used by the fuzz targets and by the
//! corpus replay test (`tests/security_fuzz_corpus.rs`), and seeds can be written with `encode_*`.
//!
//! Every reader returns zeros once the input is exhausted: any byte string decodes to something.

use tsdb::event::{EventId, EventRef, INT_FIELDS, STR_FIELDS};

/// A cursor over fuzzer bytes.
pub struct Bytes<'a> {
    d: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(d: &'a [u8]) -> Self {
        Bytes { d }
    }

    pub fn is_empty(&self) -> bool {
        self.d.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.d
    }

    pub fn u8(&mut self) -> u8 {
        match self.d.split_first() {
            Some((&b, rest)) => {
                self.d = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.d.len());
        let (a, b) = self.d.split_at(n);
        self.d = b;
        a
    }
}

/// Largest string value an input may expand to (above InfluxDB's 64 KiB limits, so cuts are reached).
pub const MAX_EXPANDED: usize = 100_000;

/// An event owned by the harness.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedEvent {
    pub producer: u64,
    pub seq: u64,
    pub time_ns: i64,
    pub ints: [Option<i64>; 11],
    pub strs: [Option<Vec<u8>>; 9],
}

impl OwnedEvent {
    pub fn as_ref(&self) -> EventRef<'_> {
        let mut strs: [Option<&[u8]>; 9] = [None; 9];
        for (i, s) in self.strs.iter().enumerate() {
            strs[i] = s.as_deref();
        }
        EventRef {
            id: EventId { producer: self.producer, seq: self.seq },
            time_ns: self.time_ns,
            ints: self.ints,
            strs,
        }
    }
}

/// Header byte of a string given with a u32 length (seeds and tests of long values).
const LONG: u8 = 0xEF;

/// A string value: a header byte `h`; `0xEF`: a u32 length and that many bytes (up to
/// `MAX_EXPANDED`); other `h < 0xF0`: `h` bytes follow; otherwise a u16 length `n`,
/// `n` bytes, repeated `1 << (h & 0x0F)` times (capped at `MAX_EXPANDED`), so that a few bytes of
/// input reach the 64 KiB limits.
pub fn string(b: &mut Bytes<'_>) -> Vec<u8> {
    let h = b.u8();
    if h == LONG {
        let n = u32::from_le_bytes([b.u8(), b.u8(), b.u8(), b.u8()]) as usize;
        return b.take(n.min(MAX_EXPANDED)).to_vec();
    }
    if h < 0xF0 {
        return b.take(h as usize).to_vec();
    }
    let n = b.u16() as usize;
    let unit = b.take(n);
    let reps = 1usize << (h & 0x0F);
    let mut v = Vec::new();
    if unit.is_empty() {
        return v;
    }
    for _ in 0..reps {
        if v.len() + unit.len() > MAX_EXPANDED {
            break;
        }
        v.extend_from_slice(unit);
    }
    v
}

/// Encodes `s` so that `string` returns it (used to write seeds).
pub fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < LONG as usize {
        out.push(s.len() as u8);
    } else {
        assert!(s.len() <= MAX_EXPANDED);
        out.push(LONG);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

/// Encodes `unit` repeated `1 << pow` times.
pub fn encode_repeated(out: &mut Vec<u8>, unit: &[u8], pow: u8) {
    out.push(0xF0 | (pow & 0x0F));
    out.extend_from_slice(&(unit.len() as u16).to_le_bytes());
    out.extend_from_slice(unit);
}

/// An event: time (8 bytes), int presence (u16) and each present int (8 bytes), string presence
/// (u16) and each present string (`string`).
pub fn event(b: &mut Bytes<'_>) -> OwnedEvent {
    let mut e = OwnedEvent { time_ns: b.u64() as i64, ..Default::default() };
    let ints = b.u16();
    for f in INT_FIELDS {
        if ints & (1 << f as u16) != 0 {
            e.ints[f as usize] = Some(b.u64() as i64);
        }
    }
    let strs = b.u16();
    for f in STR_FIELDS {
        if strs & (1 << f as u16) != 0 {
            e.strs[f as usize] = Some(string(b));
        }
    }
    e
}

/// Encodes an event so that `event` returns it (strings up to `MAX_EXPANDED` bytes).
pub fn encode_event(out: &mut Vec<u8>, e: &OwnedEvent) {
    out.extend_from_slice(&e.time_ns.to_le_bytes());
    let mut ints = 0u16;
    for f in INT_FIELDS {
        if e.ints[f as usize].is_some() {
            ints |= 1 << f as u16;
        }
    }
    out.extend_from_slice(&ints.to_le_bytes());
    for f in INT_FIELDS {
        if let Some(v) = e.ints[f as usize] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let mut strs = 0u16;
    for f in STR_FIELDS {
        if e.strs[f as usize].is_some() {
            strs |= 1 << f as u16;
        }
    }
    out.extend_from_slice(&strs.to_le_bytes());
    for f in STR_FIELDS {
        if let Some(v) = &e.strs[f as usize] {
            encode_string(out, v);
        }
    }
}
