//! The CLI's what an export refuses to fetch.

use super::*;

/// Graph answers whose links name a listener on loopback, the metadata address, a private
/// network, another host and `file:`, and a redirect from the mock's CDN path to loopback:
/// the export connects to none of them, marks those items unavailable with the reason,
/// exports the rest and succeeds.
#[test]
fn an_export_never_fetches_links_naming_internal_or_foreign_hosts() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let good = env.first_image();
    let (internal, connections) = counting_listener();
    let hostile = env.mock.stub_hostile_listing(internal, good.clone());
    let out = env.dir.path().join("export");
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection to the listener"
    );
    assert_eq!(summary["unavailable"], 2 * hostile.len(), "{summary}");
    let id = good["id"].as_str().unwrap();
    assert!(
        out.join(format!("{id}.jpg")).exists(),
        "the CDN's file is exported"
    );
    let index = read_index(&out);
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), hostile.len() + 1);
    for item in items.iter().filter(|item| item["id"] != id) {
        assert!(item["unavailable"].is_string(), "{item}");
        assert!(item["files"].as_array().unwrap().is_empty(), "{item}");
        assert!(
            item["permalink"].is_null(),
            "only Instagram's pages are kept: {item}"
        );
    }
}

#[test]
fn a_download_redirected_to_another_scheme_is_refused_and_the_rest_exported() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    // Stays on loopback even if the policy were broken: ftp is simply not followed.
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", &format!("/cdn/v/{id}.jpg"), 302, serde_json::json!(null))
            .header("location", "ftp://127.0.0.1/elsewhere")
            .times(2),
    );
    let out = env.dir.path().join("export");
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(summary["unavailable"], 1, "{summary}");
    assert!(!out.join(format!("{id}.jpg")).exists());
    let index = read_index(&out);
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the other items are kept");
    let refused = items.iter().find(|item| item["id"] == id.as_str()).unwrap();
    assert!(
        refused["unavailable"].as_str().unwrap().contains("scheme"),
        "{refused}"
    );
}

#[test]
fn a_media_id_listed_twice_is_exported_once() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let image = env.first_image();
    // A page that repeats an item, as a misbehaving API might: one download, one entry.
    let page = serde_json::json!({"data": [image.clone(), image.clone()]});
    env.mock
        .stub(igdisplay_mock::Stub::json("GET", "/me/media", 200, page).times(1));
    let out = env.dir.path().join("export");
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(
        (summary["items"].as_u64(), summary["downloaded"].as_u64()),
        (Some(1), Some(1)),
        "{summary}"
    );
    let index = read_index(&out);
    assert_eq!(index["items"].as_array().unwrap().len(), 1);
}
