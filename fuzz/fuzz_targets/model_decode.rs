//! Every response type's JSON decoding, the error envelope and its classification, and
//! timestamps, on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::model_decode(data));
