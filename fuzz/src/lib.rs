//! Shared code of the fuzz targets: input decoding, an independent line-protocol reader, and the
//! properties (`oracles`). `tests/security_fuzz_corpus.rs` includes the same files to replay the
//! corpus in `cargo test`.

pub mod input;
pub mod lp;
pub mod oracles;
