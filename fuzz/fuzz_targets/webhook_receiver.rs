//! Meta's webhook receiver on any handshake query and any delivery, unsigned and signed with
//! the right secret.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::webhook_receiver(data));
