//! PHP glue (being written).
