//! The graph and auth clients on a fuzzed response (status, headers, body), over a test
//! backend and a manual clock: retries, pacing, decoding, token lifetimes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::response_pipeline(data));
