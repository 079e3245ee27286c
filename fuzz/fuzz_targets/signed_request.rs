//! `signed_request` verification on any text, and on any payload signed with the right
//! secret (so the fuzzer reaches the payload decoding past the signature check).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::signed_request(data));
