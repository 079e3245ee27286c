//! The end-to-end test package. Everything lives in the `it` integration binary
//! (`tests/it/main.rs`); this library is empty on purpose.
