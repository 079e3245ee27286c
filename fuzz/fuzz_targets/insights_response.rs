//! The insights calls on any answer of the insights edge and any metrics asked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::insights_response(data));
