//! Sinks: where batches of events are written. The pipeline owns retries, splitting and counting;
//! a sink only answers, for one batch, what the server said.

pub mod file;
pub mod influx;
pub mod postgres;

use crate::config::Config;
use crate::event::EventRef;
use crate::record::{self, RecordError};
use std::time::Duration;

/// Identity of a batch: one producer and the first and last of the (increasing) sequence numbers it holds.
/// Batches are always formed from such runs, so the same events give the same id on every retry
/// and replay (the PostgreSQL ledger relies on it for exactly-once writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchId {
    pub producer: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// A batch of validated records, in capture order.
#[derive(Clone, Debug)]
pub struct Batch {
    pub id: BatchId,
    bytes: Vec<u8>,
    /// Start offset of each record in `bytes`.
    offsets: Vec<u32>,
}

impl Batch {
    /// Validates `bytes` (whole records, one producer, increasing sequence numbers: consecutive for live
    /// events, an import's source ids can have gaps).
    pub fn new(bytes: Vec<u8>) -> Result<Batch, RecordError> {
        let mut offsets = Vec::new();
        let mut at = 0usize;
        let mut id: Option<BatchId> = None;
        while at < bytes.len() {
            let r = record::read(&bytes[at..])?;
            let e = r.event.id;
            id = Some(match id {
                None => BatchId { producer: e.producer, first_seq: e.seq, last_seq: e.seq },
                Some(b) if b.producer == e.producer && e.seq > b.last_seq => BatchId { last_seq: e.seq, ..b },
                Some(_) => return Err(RecordError::BadLength(at)),
            });
            offsets.push(at as u32);
            at += r.bytes.len();
        }
        let id = id.ok_or(RecordError::Truncated)?;
        Ok(Batch { id, bytes, offsets })
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The events with their record flags, in order.
    pub fn records(&self) -> impl Iterator<Item = record::Record<'_>> + '_ {
        // Validated in `new`, so every read succeeds.
        self.offsets.iter().filter_map(move |&o| record::read(&self.bytes[o as usize..]).ok())
    }

    pub fn events(&self) -> impl Iterator<Item = EventRef<'_>> + '_ {
        self.records().map(|r| r.event)
    }

    /// Splits into two halves (both non-empty when `len() >= 2`), each still an increasing run.
    pub fn split(&self) -> (Batch, Batch) {
        let mid = self.offsets.len() / 2;
        let cut = self.offsets.get(mid).map_or(self.bytes.len(), |&o| o as usize);
        let part = |bytes: &[u8], offs: &[u32], base: usize| -> Batch {
            let offsets: Vec<u32> = offs.iter().map(|&o| o - base as u32).collect();
            let first = record::read(bytes).map(|r| r.event.id.seq).unwrap_or(0);
            let last = offs
                .last()
                .and_then(|&o| record::read(&bytes[o as usize - base..]).ok())
                .map_or(first, |r| r.event.id.seq);
            Batch {
                id: BatchId { producer: self.id.producer, first_seq: first, last_seq: last },
                bytes: bytes.to_vec(),
                offsets,
            }
        };
        (part(&self.bytes[..cut], &self.offsets[..mid], 0), part(&self.bytes[cut..], &self.offsets[mid..], cut))
    }
}

/// Length in bytes and count of the first batch in `buf`: at most `max` records forming a consecutive
/// run of one producer's sequence numbers. A corrupt record ends the batch before it (`n == 0` then).
pub fn cut(buf: &[u8], max: usize) -> (usize, usize) {
    let mut at = 0;
    let mut n = 0;
    let mut prev: Option<crate::event::EventId> = None;
    while at < buf.len() && n < max {
        let Ok(r) = record::read(&buf[at..]) else { break };
        let id = r.event.id;
        if let Some(p) = prev {
            // A process's own events are consecutive (a wrap past u64::MAX, or another producer after a
            // fork, ends the run); `Batch::new` also takes the gaps of an import's source ids.
            if p.producer != id.producer || p.seq.checked_add(1) != Some(id.seq) {
                break;
            }
        }
        prev = Some(id);
        at += r.bytes.len();
        n += 1;
    }
    (at, n)
}

/// The final result for one piece of a batch.
pub enum Final {
    Written(Written),
    /// One event the server refuses for its content.
    Rejected(String),
    /// The backend could not take this piece (network, configuration, retries exhausted).
    Failed(String),
}

/// Writes `batch` with `attempt`, bisecting a batch the server refuses as a whole until the refused
/// events stand alone. `done` gets each final piece in order; returning false stops the rest, which
/// is then handed to `done` as Failed too (so every event is accounted for exactly once).
pub fn write_bisecting(
    batch: Batch,
    mut attempt: impl FnMut(&Batch) -> Result<Written, SinkError>,
    mut done: impl FnMut(Batch, Final) -> bool,
) {
    let mut stack = vec![batch];
    let mut go_on = true;
    while let Some(b) = stack.pop() {
        if !go_on {
            done(b, Final::Failed("not attempted".into()));
            continue;
        }
        let fin = match attempt(&b) {
            Ok(w) => Final::Written(w),
            Err(SinkError::Split(_)) if b.len() > 1 => {
                let (left, right) = b.split();
                stack.push(right);
                stack.push(left);
                continue;
            }
            Err(SinkError::Split(msg)) => Final::Rejected(msg),
            Err(SinkError::Retry { msg, .. } | SinkError::Config(msg)) => Final::Failed(msg),
        };
        go_on = done(b, fin);
    }
}

/// What the server did with a batch it answered for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Written {
    /// Events stored.
    pub written: usize,
    /// Events the server refused for their content (InfluxDB partial write); never retried.
    pub rejected: usize,
    /// The server's first error text for the refused events (redacted by the pipeline).
    pub error: Option<String>,
    /// Events stored with a value cut or replaced to fit the backend (counted in `truncated`).
    pub truncated: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// Try the same batch again later: network error, timeout, 5xx, 429. `after` is the server's
    /// `Retry-After` when it sent one.
    Retry { msg: String, after: Option<Duration> },
    /// The batch as a whole is refused (too large, or a value a column refuses): the pipeline splits
    /// it in halves until the culprit event stands alone, then counts that one as rejected.
    Split(String),
    /// Credentials, permissions, missing database/bucket: nothing will work until an admin acts.
    /// Retried slowly (never a tight loop) and shown in `tsdb_stats()['last_error']`.
    Config(String),
}

impl SinkError {
    pub fn message(&self) -> &str {
        match self {
            SinkError::Retry { msg, .. } | SinkError::Split(msg) | SinkError::Config(msg) => msg,
        }
    }
}

pub trait Sink: Send {
    fn write(&mut self, batch: &Batch) -> Result<Written, SinkError>;

    /// `write`, told which batch comes next: a sink whose server takes a while to answer may prepare
    /// `next` (encode, compress) while it waits, and use that work when `next` is written, if it is.
    fn write_ahead(&mut self, batch: &Batch, next: Option<&Batch>) -> Result<Written, SinkError> {
        let _ = next;
        self.write(batch)
    }

    /// Called when the writer has been idle for a while: close what a sink keeps open.
    fn idle(&mut self) {}

    /// What the sink created again since it was last asked, one message each: the PostgreSQL events table
    /// found missing (dropped, or a restore without it), an InfluxDB database or retention policy (with
    /// `create_database`). Counted in `tsdb_stats()['schema_recreated']`.
    fn take_recreated(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens the sink a configuration names. Connections are made lazily, on the first write.
pub fn open(config: &Config) -> Result<Box<dyn Sink>, String> {
    match config.backend() {
        "file" => Ok(Box::new(file::FileSink::new(config))),
        "influxdb1" | "influxdb2" | "influxdb3" => Ok(Box::new(influx::InfluxSink::new(config)?)),
        "postgres" => Ok(Box::new(postgres::PostgresSink::new(config)?)),
        other => Err(format!("backend: unknown backend {other}")),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::event::{EventId, IntField, StrField};
    use crate::record::RecordWriter;

    /// Records for events `first..first+n` of producer 9, in course `seq % 3`.
    pub fn records(first: u64, n: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in first..first + n {
            let mut w = RecordWriter::begin(&mut buf);
            w.put_str(StrField::EventName, b"\\core\\event\\course_viewed", 1 << 16);
            w.set_int(IntField::CourseId, (seq % 3) as i64);
            w.set_int(IntField::UserId, seq as i64);
            w.set_int(IntField::TimeCreated, 1_700_000_000);
            w.finish(EventId { producer: 9, seq }, 1_700_000_000_000_000_000 + seq as i64);
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_and_split() {
        let b = Batch::new(testing::records(10, 5)).unwrap();
        assert_eq!(b.id, BatchId { producer: 9, first_seq: 10, last_seq: 14 });
        assert_eq!(b.len(), 5);
        let (l, r) = b.split();
        assert_eq!((l.len(), r.len()), (2, 3));
        assert_eq!((l.id.first_seq, l.id.last_seq, r.id.first_seq, r.id.last_seq), (10, 11, 12, 14));
        let users: Vec<_> = r.events().map(|e| e.int(crate::event::IntField::UserId)).collect();
        assert_eq!(users, vec![Some(12), Some(13), Some(14)]);
    }

    #[test]
    fn batch_takes_gaps_and_rejects_disorder_and_garbage() {
        let mut bytes = testing::records(1, 2);
        bytes.extend(testing::records(5, 1));
        let b = Batch::new(bytes).unwrap();
        assert_eq!((b.id.first_seq, b.id.last_seq, b.len()), (1, 5, 3));
        let mut bytes = testing::records(5, 1);
        bytes.extend(testing::records(1, 2));
        assert!(Batch::new(bytes).is_err(), "sequence numbers going back");
        let mut bytes = testing::records(1, 2);
        bytes.extend(testing::records(2, 1));
        assert!(Batch::new(bytes).is_err(), "a sequence number twice");
        assert!(Batch::new(vec![1, 2, 3]).is_err());
        assert!(Batch::new(Vec::new()).is_err());
    }
}
