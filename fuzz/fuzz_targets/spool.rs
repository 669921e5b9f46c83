#![no_main]
//! Fuzz target `spool`: see `tsdb_fuzz::oracles::check_spool` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tsdb_fuzz::oracles::check_spool(data));
