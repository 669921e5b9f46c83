#![no_main]
//! Fuzz target `record`: see `tsdb_fuzz::oracles::check_record` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tsdb_fuzz::oracles::check_record(data));
