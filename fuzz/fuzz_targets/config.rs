#![no_main]
//! Fuzz target `config`: see `tsdb_fuzz::oracles::check_config` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tsdb_fuzz::oracles::check_config(data));
