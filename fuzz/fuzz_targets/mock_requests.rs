//! The bundled mock's request handling (its OAuth pages, Graph routes, CDN and control API)
//! on fuzzed requests over loopback. A panic in the mock's server task aborts the process
//! (libFuzzer's panic hook), so it is found even though it happens off this thread.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| igdisplay_fuzz::mock_request(data));
