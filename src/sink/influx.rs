//! InfluxDB sink (v1 `/write`, v2 `/api/v2/write`, v3 `/api/v3/write_lp`): being written (issue 3).

use super::{Batch, Sink, SinkError, Written};
use crate::config::Config;

pub struct InfluxSink;

impl InfluxSink {
    pub fn new(config: &Config) -> Result<InfluxSink, String> {
        Err(format!("backend: {} is not built into this extension yet", config.backend()))
    }
}

impl Sink for InfluxSink {
    fn write(&mut self, _batch: &Batch) -> Result<Written, SinkError> {
        Err(SinkError::Config("backend: influxdb is not built into this extension yet".into()))
    }
}
