//! The `file` sink: batches appended to a local file as line protocol or JSON lines. It needs no
//! server, so it is the embedded default and the way to test the pipeline alone. Several processes
//! may share one file: each batch is one locked append, so lines never interleave.

use super::{Batch, Sink, SinkError, Written};
use crate::config::Config;
use crate::event::{EventRef, INT_FIELDS, STR_FIELDS};
use crate::json;
use crate::lineproto::Encoder;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;

enum Format {
    Line(Encoder),
    Json,
}

pub struct FileSink {
    path: String,
    format: Format,
    file: Option<File>,
    buf: Vec<u8>,
}

impl FileSink {
    pub fn new(config: &Config) -> FileSink {
        let format = match config.get("format") {
            "json" => Format::Json,
            _ => Format::Line(Encoder::new(config)),
        };
        FileSink { path: config.get("path").to_string(), format, file: None, buf: Vec::new() }
    }

    /// Opens the file for appending, refusing what an attacker with write access to its directory could
    /// plant: a symlink (followed, it would append events to any file the PHP user can write, such as a
    /// script of the site), something other than a regular file, or a file another user owns.
    fn file(&mut self) -> Result<&mut File, SinkError> {
        if self.file.is_none() {
            let refuse = |why: String| SinkError::Config(format!("path: {why}"));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&self.path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => refuse(format!("{} is a symbolic link; refusing to follow it", self.path)),
                    _ => refuse(format!("cannot open {}: {e}", self.path)),
                })?;
            let meta = f.metadata().map_err(|e| refuse(format!("cannot stat {}: {e}", self.path)))?;
            if !meta.file_type().is_file() {
                return Err(refuse(format!("{} is not a regular file", self.path)));
            }
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return Err(refuse(format!(
                    "{} belongs to user {}, not to this process's user {me}",
                    self.path,
                    meta.uid()
                )));
            }
            self.file = Some(f);
        }
        self.file.as_mut().ok_or_else(|| SinkError::Config("path: not open".into()))
    }
}

/// One event as a JSON object: every field (null when absent), `other` as its JSON text,
/// `time_ns` and `event_id`.
pub fn write_json_line(e: &EventRef<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    for f in INT_FIELDS {
        json::write_str(out, f.name().as_bytes());
        out.push(b':');
        match e.int(f) {
            Some(v) => json::write_i64(out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b',');
    }
    for f in STR_FIELDS {
        json::write_str(out, f.name().as_bytes());
        out.push(b':');
        match e.str(f) {
            Some(v) => json::write_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b',');
    }
    out.extend_from_slice(b"\"time_ns\":");
    json::write_i64(out, e.time_ns);
    out.extend_from_slice(b",\"event_id\":");
    json::write_str(out, e.id.to_uuid_string().as_bytes());
    out.extend_from_slice(b"}\n");
}

impl Sink for FileSink {
    fn write(&mut self, batch: &Batch) -> Result<Written, SinkError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut written = 0;
        let mut rejected = 0;
        let mut error = None;
        let mut truncated = 0;
        for e in batch.events() {
            match &self.format {
                Format::Json => {
                    write_json_line(&e, &mut buf);
                    written += 1;
                }
                Format::Line(enc) => match enc.encode(&e, &mut buf) {
                    Ok(alt) => {
                        written += 1;
                        truncated += usize::from(alt.truncated || alt.replaced);
                    }
                    Err(err) => {
                        rejected += 1;
                        error.get_or_insert_with(|| format!("event {}: {err:?}", e.id.to_uuid_string()));
                    }
                },
            }
        }
        let result = self.file().and_then(|f| {
            let fd = f.as_raw_fd();
            // SAFETY: flock on a descriptor we own; released right after the append.
            unsafe { libc::flock(fd, libc::LOCK_EX) };
            let r = f.write_all(&buf);
            unsafe { libc::flock(fd, libc::LOCK_UN) };
            r.map_err(|e| SinkError::Retry { msg: format!("write {}: {e}", "file"), after: None })
        });
        self.buf = buf;
        if result.is_err() {
            self.file = None;
        }
        result.map(|()| Written { written, rejected, error, truncated })
    }

    fn idle(&mut self) {
        self.file = None;
    }
}
