//! logstore_tsdb: Moodle's event log shipped to a time-series database from a PHP extension.
//!
//! The core (everything but `php`) never touches the Zend API, so it is tested in plain Rust:
//! `event` (the model), `record` (the in-process byte format), `config` (the vocabulary), `import` (imports),
//! `lineproto` and `json` (encoders), `pipeline` and `process` (queue, flush thread, fork awareness),
//! `sink` (file, InfluxDB, PostgreSQL), `retry`, `stats`.

pub mod config;
pub mod event;
pub mod import;
pub mod json;
pub mod lineproto;
pub mod pipeline;
pub mod process;
pub mod record;
pub mod retry;
pub mod sink;
pub mod spool;
pub mod stats;

#[cfg(feature = "php")]
mod php;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
