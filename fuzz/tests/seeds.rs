//! Every seed of every fuzz target, run through the target's code on stable in the normal
//! suite: the boundary values that found issue 13's defects stay covered even where no
//! nightly toolchain is present to fuzz.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

fn each_seed(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        run(&data);
        count += 1;
    }
    assert!(count > 0, "no seed in {}", dir.display());
}

#[test]
fn callback_seeds() {
    each_seed("callback", igdisplay_fuzz::callback);
}

#[test]
fn signed_request_seeds() {
    each_seed("signed_request", igdisplay_fuzz::signed_request);
}

#[test]
fn model_decode_seeds() {
    each_seed("model_decode", igdisplay_fuzz::model_decode);
}

#[test]
fn usage_headers_seeds() {
    each_seed("usage_headers", igdisplay_fuzz::usage_headers);
}

#[test]
fn response_pipeline_seeds() {
    each_seed("response_pipeline", igdisplay_fuzz::response_pipeline);
}

#[test]
fn mock_requests_seeds() {
    each_seed("mock_requests", igdisplay_fuzz::mock_request);
}

#[test]
fn webhook_receiver_seeds() {
    each_seed("webhook_receiver", igdisplay_fuzz::webhook_receiver);
}

#[test]
fn insights_response_seeds() {
    each_seed("insights_response", igdisplay_fuzz::insights_response);
}
