//! An event as the Rust integration tests build it, and how it goes into a record.

#![allow(dead_code)] // each test file uses part of it

use tsdb::event::{IntField, StrField, INT_FIELDS, STR_FIELDS};
use tsdb::record::RecordWriter;

#[derive(Clone, Debug, Default)]
pub struct Ev {
    pub ints: [Option<i64>; 11],
    pub strs: [Option<Vec<u8>>; 9],
    pub time_ns: i64,
}

impl Ev {
    pub fn new(time_ns: i64) -> Ev {
        Ev { time_ns, ..Ev::default() }
    }

    pub fn int(mut self, f: IntField, v: i64) -> Ev {
        self.ints[f as usize] = Some(v);
        self
    }

    pub fn str(mut self, f: StrField, v: &[u8]) -> Ev {
        self.strs[f as usize] = Some(v.to_vec());
        self
    }
}

/// Puts the fields of `e` into a record being written, strings capped at `cap` bytes.
pub fn fill(w: &mut RecordWriter<'_>, e: &Ev, cap: usize) {
    for f in INT_FIELDS {
        if let Some(v) = e.ints[f as usize] {
            w.set_int(f, v);
        }
    }
    for f in STR_FIELDS {
        if let Some(v) = &e.strs[f as usize] {
            w.put_str(f, v, cap);
        }
    }
}
