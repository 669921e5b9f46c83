#![no_main]
//! Fuzz target `pg_copy`: see `tsdb_fuzz::oracles::check_pg_copy` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tsdb_fuzz::oracles::check_pg_copy(data));
