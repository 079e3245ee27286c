//! What `GET /v1/feeds/{id}` answers: the account's mirrored posts chosen by the feed's
//! settings ([`select`]), and their JSON a page at a time with an `ETag` ([`render_page`]).

use crate::settings::{FeedSettings, MediaKind};
use base64::Engine as _;
use igdisplay::model::Timestamp;
pub use igdisplay::store::FeedState;
use igdisplay_mirror::{FeedIndex, FeedItem, Mirror, MirroredImage, SyncError};
use serde_json::{Value, json};

/// The most posts one page of the public API holds.
pub const MAX_PAGE: usize = 100;
/// The posts a page holds when the request names no `limit`.
pub const DEFAULT_PAGE: usize = 50;

/// The posts `settings` shows of the feed whose index is `index`, in order: the pinned ones
/// still there (a pin wins over the filters, a hide over a pin), then the newest that pass
/// the filters, up to `max_posts`; only posts a page can show (with an image). Reads the
/// feed's pages only until it has enough.
///
/// # Errors
///
/// [`SyncError`] when a page cannot be read from the blob store.
pub async fn select(
    mirror: &Mirror,
    index: &FeedIndex,
    settings: &FeedSettings,
) -> Result<Vec<FeedItem>, SyncError> {
    let max = usize::try_from(settings.max_posts).unwrap_or(usize::MAX);
    let mut chosen: Vec<FeedItem> = Vec::new();
    for id in settings.pinned.iter().filter(|id| !settings.hidden.contains(id)) {
        if chosen.len() >= max || chosen.iter().any(|item| &item.id == id) {
            continue;
        }
        if let Some(item) = mirror.find(index, id).await?.filter(FeedItem::is_available) {
            chosen.push(item);
        }
    }
    let pinned = chosen.len();
    for page in &index.pages {
        if chosen.len() >= max {
            break;
        }
        if page.available == 0 {
            continue;
        }
        for item in mirror.page(page).await? {
            if chosen.len() >= max {
                break;
            }
            let shown = item.is_available()
                && !settings.hidden.contains(&item.id)
                && !chosen[..pinned].iter().any(|p| p.id == item.id)
                && MediaKind::of(&item.media_type).is_some_and(|kind| settings.shows_kind(kind))
                && settings.shows_caption(item.caption.as_deref());
            if shown {
                chosen.push(item);
            }
        }
    }
    Ok(chosen)
}

/// What a page of a feed is rendered from.
#[derive(Debug)]
pub struct Snapshot<'a> {
    /// The feed's id.
    pub feed_id: &'a str,
    /// Where it stands.
    pub state: &'a FeedState,
    /// When the account was last synced, if ever.
    pub synced_at: Option<Timestamp>,
    /// The posts shown, in order ([`select`]).
    pub items: &'a [FeedItem],
    /// How many of them lead as pinned.
    pub pinned: &'a [String],
    /// Where media are served from: a URL each blob key is appended to (`{base}/{key}`).
    pub media_base: &'a str,
}

/// A page's cursor: where it starts in the feed's posts. Opaque to clients.
pub fn cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o{offset}"))
}

/// The offset a cursor names, or `None` for one this service did not make.
pub fn offset_of(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&bytes).ok()?.strip_prefix('o')?.parse().ok()
}

/// The JSON of the page of `limit` posts from `offset`, and its strong `ETag` (a digest of
/// the bytes, quoted).
pub fn render_page(snapshot: &Snapshot<'_>, offset: usize, limit: usize) -> (Vec<u8>, String) {
    let end = offset.saturating_add(limit).min(snapshot.items.len());
    let start = offset.min(end);
    let items: Vec<Value> = snapshot.items[start..end]
        .iter()
        .map(|item| {
            let mut value = item_json(item, snapshot.media_base);
            if snapshot.pinned.contains(&item.id) {
                value["pinned"] = Value::Bool(true);
            }
            value
        })
        .collect();
    let mut page = json!({
        "id": snapshot.feed_id,
        "state": snapshot.state.name(),
        "items": items,
        "next": (end < snapshot.items.len()).then(|| cursor(end)),
    });
    if let Some(synced) = snapshot.synced_at {
        page["synced_at"] = Value::String(synced.to_string());
    }
    match snapshot.state {
        FeedState::Stale { since } | FeedState::NeedsLogin { since: Some(since) } => {
            page["stale_since"] = Value::String(since.to_string());
        }
        _ => {}
    }
    // A `Value` always renders.
    let body = serde_json::to_vec(&page).unwrap_or_default();
    let etag = etag_of(&body);
    (body, etag)
}

/// A strong validator of `body`: 128 bits of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(body);
    format!("\"{}\"", igdisplay::auth::hex(&digest[..16]))
}

/// One post (or album item) as the public API shows it.
fn item_json(item: &FeedItem, base: &str) -> Value {
    let url = |key: &str| format!("{}/{key}", base.trim_end_matches('/'));
    let kind = match MediaKind::of(&item.media_type) {
        Some(MediaKind::Image) => "image",
        Some(MediaKind::Video) => "video",
        Some(MediaKind::Album) => "album",
        None => "other",
    };
    let mut value = json!({
        "id": item.id,
        "type": kind,
        "caption": item.caption,
        "alt": item.alt.as_deref().or(item.caption.as_deref()).unwrap_or(""),
        "permalink": item.permalink,
        "timestamp": item.timestamp.map(|t| t.to_string()),
        "playable": item.video.is_some(),
    });
    if let Some(image) = item.cover() {
        value["image"] = image_json(image, &url);
    }
    if let Some(video) = &item.video {
        value["video"] = Value::String(url(&video.key));
    }
    if !item.children.is_empty() {
        value["children"] = item
            .children
            .iter()
            .filter(|child| child.is_available())
            .map(|child| item_json(child, base))
            .collect();
    }
    value
}

fn image_json(image: &MirroredImage, url: &dyn Fn(&str) -> String) -> Value {
    let (key, width, height) = image.best_for(640);
    json!({
        "url": url(key),
        "width": width,
        "height": height,
        "color": image.color,
        "blurhash": image.blurhash,
        "variants": image.variants.iter().map(|v| json!({"url": url(&v.key), "width": v.width, "height": v.height}))
            .chain(std::iter::once(json!({"url": url(&image.original), "width": image.width, "height": image.height})))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        for offset in [0, 1, 50, 123_456] {
            assert_eq!(offset_of(&cursor(offset)), Some(offset));
        }
        for foreign in ["", "o12", "eDE", "!!!", &cursor(3)[1..]] {
            assert_eq!(offset_of(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn an_etag_is_a_quoted_digest_that_changes_with_the_body() {
        let a = etag_of(b"{}");
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34, "{a}");
        assert_ne!(a, etag_of(b"{ }"));
        assert_eq!(a, etag_of(b"{}"));
    }

    #[test]
    fn a_pending_feed_renders_an_empty_page() {
        let snapshot = Snapshot {
            feed_id: "f1",
            state: &FeedState::Pending,
            synced_at: None,
            items: &[],
            pinned: &[],
            media_base: "https://cdn.example/media/",
        };
        let (body, _) = render_page(&snapshot, 0, 10);
        let page: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            page,
            json!({"id": "f1", "state": "pending", "items": [], "next": null})
        );
    }
}
