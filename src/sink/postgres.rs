//! PostgreSQL / TimescaleDB sink: being written (issue 4).

use super::{Batch, Sink, SinkError, Written};
use crate::config::Config;

pub struct PostgresSink;

impl PostgresSink {
    pub fn new(config: &Config) -> Result<PostgresSink, String> {
        Err(format!("backend: {} is not built into this extension yet", config.backend()))
    }
}

impl Sink for PostgresSink {
    fn write(&mut self, _batch: &Batch) -> Result<Written, SinkError> {
        Err(SinkError::Config("backend: postgres is not built into this extension yet".into()))
    }
}
