//! The OAuth redirect parser on any text, and what a parsed callback shows.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::callback(data));
