//! The mock's the CDN's bytes, the demo library and stories.

use super::*;

#[tokio::test]
async fn cdn_links_serve_real_bytes_until_they_expire() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let (_, _, page) = get(&graph(
        &mock,
        "/me/media?limit=10&fields=media_type,media_url,thumbnail_url",
        &token,
    ))
    .await;
    let media = page["data"].as_array().unwrap();
    let image = media.iter().find(|m| m["media_type"] == "IMAGE").unwrap()["media_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let video = media.iter().find(|m| m["media_type"] == "VIDEO").unwrap();
    let bytes = http().get(&image).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "a JPEG");
    let clip = http()
        .get(video["media_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(clip.headers()["content-type"], "video/mp4");
    assert_eq!(&clip.bytes().await.unwrap()[4..8], b"ftyp");
    let tampered = image.replace("_nc_sig=", "_nc_sig=0");
    assert_eq!(
        http().get(&tampered).send().await.unwrap().text().await.unwrap(),
        "Bad URL hash"
    );
    mock.advance(Duration::from_secs(3 * 24 * 3600));
    let expired = http().get(&image).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert_eq!(expired.text().await.unwrap(), "URL signature expired");
}

#[tokio::test]
async fn the_cdn_answers_a_byte_range_as_a_player_asks() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let (_, _, page) = get(&graph(
        &mock,
        "/me/media?limit=5&fields=media_type,media_url",
        &token,
    ))
    .await;
    let video = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["media_type"] == "VIDEO")
        .unwrap()["media_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let whole = http().get(&video).send().await.unwrap();
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    let part = http()
        .get(&video)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-199/{}", whole.len())
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(100..200));
    let tail = http()
        .get(&video)
        .header("range", "bytes=-8")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), whole.slice(whole.len() - 8..));
    let past = http()
        .get(&video)
        .header("range", format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{}", whole.len())
    );
}

#[tokio::test]
async fn the_demo_library_holds_every_case_a_feed_must_show() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let fields = "media_type,media_product_type,is_shared_to_feed,media_url,thumbnail_url,permalink,\
                  children{media_type,media_url,thumbnail_url}";
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/me/media?limit=25&fields={fields}"),
        &token,
    ))
    .await;
    let media = page["data"].as_array().unwrap();
    let first_twelve = &media[..12];
    let licensed = first_twelve
        .iter()
        .find(|m| m["media_type"] == "VIDEO" && m.get("media_url").is_none())
        .expect("a video with licensed audio");
    assert!(licensed["thumbnail_url"].is_string() && licensed["permalink"].is_string());
    let album = first_twelve
        .iter()
        .find(|m| m["children"]["data"][0]["media_type"] == "VIDEO")
        .expect("an album that opens with a video");
    let cover = album["media_url"].as_str().unwrap();
    assert!(
        cover.contains("_thumb"),
        "its cover is the video's thumbnail: {cover}"
    );
    let reel = first_twelve
        .iter()
        .find(|m| m["media_product_type"] == "REELS" && m["is_shared_to_feed"] == false)
        .expect("a reel kept to the Reels tab");
    assert!(reel["permalink"].as_str().unwrap().contains("/reel/"));
    for shape in ["tall", "wide"] {
        let photo = first_twelve
            .iter()
            .find(|m| {
                m["media_url"]
                    .as_str()
                    .is_some_and(|u| u.contains(&format!(".{shape}.jpg")))
            })
            .unwrap_or_else(|| panic!("a {shape} photo"));
        let bytes = http()
            .get(photo["media_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..2], [0xFF, 0xD8], "a JPEG");
    }
    let flagged_video = media
        .iter()
        .find(|m| m["media_type"] == "VIDEO" && m.get("media_url").is_none() && m.get("permalink").is_none())
        .expect("a copyright-flagged video");
    assert!(flagged_video["thumbnail_url"].is_string(), "its thumbnail stays");
}

#[tokio::test]
async fn stories_are_listed_for_twenty_four_hours_then_gone() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let stories = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["media_type"].as_str().unwrap().to_owned())
            .collect()
    };
    let fields = "fields=id,media_type,media_product_type,media_url,thumbnail_url,timestamp";
    let (status, _, body) = get(&graph(&mock, &format!("/me/stories?{fields}"), &token)).await;
    assert_eq!(status, 200);
    assert_eq!(stories(&body), ["IMAGE", "VIDEO"], "newest first");
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["media_product_type"] == "STORY")
    );
    assert!(
        body["data"][1]["thumbnail_url"].is_string(),
        "a video story has its poster"
    );
    let (_, _, media) = get(&graph(&mock, "/me/media?limit=100&fields=id", &token)).await;
    let story = body["data"][0]["id"].as_str().unwrap();
    assert!(
        media["data"].as_array().unwrap().iter().all(|m| m["id"] != story),
        "the media edge excludes stories"
    );
    // Posted one and two hours before the start: the older is gone 22 hours on.
    mock.advance(Duration::from_secs(22 * 3600 + 1));
    let (_, _, body) = get(&graph(&mock, &format!("/me/stories?{fields}"), &token)).await;
    assert_eq!(stories(&body), ["IMAGE"]);
    mock.advance(Duration::from_secs(3600));
    let (_, _, body) = get(&graph(&mock, &format!("/me/stories?{fields}"), &token)).await;
    assert!(stories(&body).is_empty());
}
