#![no_main]
//! Fuzz target `json`: see `tsdb_fuzz::oracles::check_json` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tsdb_fuzz::oracles::check_json(data));
