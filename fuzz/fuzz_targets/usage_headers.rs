//! The `X-App-Usage` and `X-Business-Use-Case-Usage` headers on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::usage_headers(data));
