#![no_main]
//! Fuzz target `lineproto`: see `tsdb_fuzz::oracles::check_lineproto` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tsdb_fuzz::oracles::check_lineproto(data));
