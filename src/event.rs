//! The event model: the fields of a Moodle log event (`\core\event\base::get_data()` plus what a log store adds),
//! and a borrowed view of one captured event (`EventRef`) that every encoder reads.

/// Integer columns, in record order. Absent values are `None` (SQL NULL, omitted field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IntField {
    ObjectId = 0,
    EduLevel,
    ContextId,
    ContextLevel,
    ContextInstanceId,
    UserId,
    CourseId,
    RelatedUserId,
    Anonymous,
    TimeCreated,
    RealUserId,
}

/// String columns, in record order. Values are bytes: PHP strings need not be UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StrField {
    EventName = 0,
    Component,
    Action,
    Target,
    ObjectTable,
    Crud,
    Other,
    Origin,
    Ip,
}

pub const INT_FIELDS: [IntField; 11] = [
    IntField::ObjectId,
    IntField::EduLevel,
    IntField::ContextId,
    IntField::ContextLevel,
    IntField::ContextInstanceId,
    IntField::UserId,
    IntField::CourseId,
    IntField::RelatedUserId,
    IntField::Anonymous,
    IntField::TimeCreated,
    IntField::RealUserId,
];

pub const STR_FIELDS: [StrField; 9] = [
    StrField::EventName,
    StrField::Component,
    StrField::Action,
    StrField::Target,
    StrField::ObjectTable,
    StrField::Crud,
    StrField::Other,
    StrField::Origin,
    StrField::Ip,
];

impl IntField {
    pub const fn name(self) -> &'static str {
        match self {
            IntField::ObjectId => "objectid",
            IntField::EduLevel => "edulevel",
            IntField::ContextId => "contextid",
            IntField::ContextLevel => "contextlevel",
            IntField::ContextInstanceId => "contextinstanceid",
            IntField::UserId => "userid",
            IntField::CourseId => "courseid",
            IntField::RelatedUserId => "relateduserid",
            IntField::Anonymous => "anonymous",
            IntField::TimeCreated => "timecreated",
            IntField::RealUserId => "realuserid",
        }
    }
}

impl StrField {
    pub const fn name(self) -> &'static str {
        match self {
            StrField::EventName => "eventname",
            StrField::Component => "component",
            StrField::Action => "action",
            StrField::Target => "target",
            StrField::ObjectTable => "objecttable",
            StrField::Crud => "crud",
            StrField::Other => "other",
            StrField::Origin => "origin",
            StrField::Ip => "ip",
        }
    }
}

/// Any event key, as found in the PHP array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Int(IntField),
    Str(StrField),
}

impl Field {
    /// Maps an array key to a field. `None` for keys that are not part of an event. Dispatching on the
    /// length first keeps this to one or two comparisons per key: it runs for every key of every event.
    pub fn from_key(key: &[u8]) -> Option<Field> {
        use Field::{Int, Str};
        match key.len() {
            2 => (key == b"ip").then_some(Str(StrField::Ip)),
            4 => (key == b"crud").then_some(Str(StrField::Crud)),
            5 => (key == b"other").then_some(Str(StrField::Other)),
            6 => match key {
                b"action" => Some(Str(StrField::Action)),
                b"target" => Some(Str(StrField::Target)),
                b"userid" => Some(Int(IntField::UserId)),
                b"origin" => Some(Str(StrField::Origin)),
                _ => None,
            },
            8 => match key {
                b"objectid" => Some(Int(IntField::ObjectId)),
                b"edulevel" => Some(Int(IntField::EduLevel)),
                b"courseid" => Some(Int(IntField::CourseId)),
                _ => None,
            },
            9 => match key {
                b"eventname" => Some(Str(StrField::EventName)),
                b"component" => Some(Str(StrField::Component)),
                b"contextid" => Some(Int(IntField::ContextId)),
                b"anonymous" => Some(Int(IntField::Anonymous)),
                _ => None,
            },
            10 => (key == b"realuserid").then_some(Int(IntField::RealUserId)),
            11 => match key {
                b"objecttable" => Some(Str(StrField::ObjectTable)),
                b"timecreated" => Some(Int(IntField::TimeCreated)),
                _ => None,
            },
            12 => (key == b"contextlevel").then_some(Int(IntField::ContextLevel)),
            13 => (key == b"relateduserid").then_some(Int(IntField::RelatedUserId)),
            17 => (key == b"contextinstanceid").then_some(Int(IntField::ContextInstanceId)),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Field::Int(f) => f.name(),
            Field::Str(f) => f.name(),
        }
    }
}

/// A unique, stable identity given to each event when it is captured: the producing process's random
/// 64-bit nonce and a per-process sequence number. It travels with the event through retries and the
/// spool, so a re-sent event is recognisably the same event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub producer: u64,
    pub seq: u64,
}

impl EventId {
    /// RFC 4122 layout of the 128 bits (not a random UUID: producer then sequence), for SQL `uuid` columns.
    pub fn to_uuid_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.producer.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn to_uuid_string(self) -> String {
        let b = self.to_uuid_bytes();
        let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
    }
}

/// One captured event, borrowed from a record buffer.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_name_maps_back_to_itself() {
        for f in INT_FIELDS {
            assert_eq!(Field::from_key(f.name().as_bytes()), Some(Field::Int(f)));
        }
        for f in STR_FIELDS {
            assert_eq!(Field::from_key(f.name().as_bytes()), Some(Field::Str(f)));
        }
        for k in [&b""[..], b"i", b"IP", b"userid ", b"objectidx", b"contextinstanceId", b"\xff\xfe"] {
            assert_eq!(Field::from_key(k), None);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventRef<'a> {
    pub id: EventId,
    /// Nanoseconds since the epoch: `timecreated` seconds plus a sub-second offset unique to this event
    /// (see `record::Stamper`), so that no two events share a point in InfluxDB.
    pub time_ns: i64,
    pub ints: [Option<i64>; 11],
    pub strs: [Option<&'a [u8]>; 9],
}

impl<'a> EventRef<'a> {
    pub fn int(&self, f: IntField) -> Option<i64> {
        self.ints[f as usize]
    }

    pub fn str(&self, f: StrField) -> Option<&'a [u8]> {
        self.strs[f as usize]
    }

    pub fn timecreated(&self) -> i64 {
        self.int(IntField::TimeCreated).unwrap_or(self.time_ns.div_euclid(1_000_000_000))
    }
}
