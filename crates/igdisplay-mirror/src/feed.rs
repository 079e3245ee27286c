//! [`Feed`]: what the mirror serves for one account, as JSON for a headless site; stored as
//! a small [`FeedIndex`] and pages of at most 100 items, so neither a sync nor a page view
//! holds the whole library.

use igdisplay_model::Timestamp;
use serde::{Deserialize, Serialize};

/// The version of the stored feed's shape (`schema` in a [`FeedIndex`] and a [`Feed`]),
/// described field by field in `docs/feed.md` and as JSON Schema in
/// [`FEED_JSON_SCHEMA`]. It changes only when a field is removed or changes meaning; a new
/// optional field keeps it. A mirror refuses an index of a later version
/// ([`SyncError::NewerFeed`](crate::SyncError::NewerFeed)) rather than overwrite what a newer
/// release wrote.
pub const FEED_SCHEMA: u32 = 1;

/// The feed's JSON Schema (draft 2020-12): the whole [`Feed`] at its root, and under
/// `$defs` the stored `index` ([`FeedIndex`]) with its `page_ref`s, a stored `page` (an array
/// of [`FeedItem`]s), an `item`, a `story` (an item with its `expires_at`), an `image`, a
/// `variant`, a `video` and a `status`. A headless site can check what it reads against it.
///
/// ```
/// let schema: serde_json::Value = serde_json::from_str(igdisplay_mirror::FEED_JSON_SCHEMA)?;
/// assert_eq!(schema["$defs"]["schema"]["const"], igdisplay_mirror::FEED_SCHEMA);
/// assert!(schema["$defs"]["item"]["properties"]["video"].is_object());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub const FEED_JSON_SCHEMA: &str = include_str!("../feed.schema.json");

/// Feeds written before the field existed are version 1.
fn first_schema() -> u32 {
    1
}

/// One account's mirrored feed, whole: its items newest first, each with local image
/// variants. [`Mirror::feed`](crate::Mirror::feed) assembles it from the stored index and
/// pages; a site that shows a page at a time reads [`Mirror::index`](crate::Mirror::index)
/// and [`Mirror::available`](crate::Mirror::available) instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Feed {
    /// The version of this shape ([`FEED_SCHEMA`]).
    #[serde(default = "first_schema")]
    pub schema: u32,
    /// Whose feed (the app-scoped user id).
    pub user_id: String,
    /// When the items were last listed successfully.
    pub synced_at: Option<Timestamp>,
    /// Whether the items are current.
    pub status: FeedStatus,
    /// When the next poll is due (adapted to how often the account posts).
    pub next_poll_at: Timestamp,
    /// The items, newest first.
    pub items: Vec<FeedItem>,
    /// The account's stories still live when the feed was read, newest first (Instagram
    /// Login only; each leaves at its [`FeedItem::expires_at`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stories: Vec<FeedItem>,
}

/// What a feed is made of, as stored at `feeds/{user}.json`: its status and the keys of its
/// pages (written before the index, under a key of their own per sync, so that writing the
/// index is the one atomic step that replaces a feed: a sync cut short leaves the previous
/// feed whole). When a sync fails, only the status and the next poll change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FeedIndex {
    /// The version of this shape ([`FEED_SCHEMA`]).
    #[serde(default = "first_schema")]
    pub schema: u32,
    /// Whose feed (the app-scoped user id).
    pub user_id: String,
    /// When the items were last listed successfully.
    pub synced_at: Option<Timestamp>,
    /// Whether the items are current.
    pub status: FeedStatus,
    /// When the next poll is due (adapted to how often the account posts).
    pub next_poll_at: Timestamp,
    /// Posts in the feed.
    pub items: usize,
    /// Posts a site can show ([`FeedItem::is_available`]).
    pub available: usize,
    /// The pages, newest posts first.
    pub pages: Vec<PageRef>,
    /// The keys of the previous feed's pages: deleted by the next sync, so a reader that read
    /// the previous index just before this one was written still finds its pages.
    #[serde(default)]
    pub retired: Vec<String>,
    /// The stories the last sync found live, newest first (a few a day, kept in the index);
    /// a reader shows [`live_stories`](Self::live_stories), so a story leaves at its expiry
    /// even before the next sync deletes its files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stories: Vec<FeedItem>,
}

impl FeedIndex {
    /// The stories still live at `now` (their [`FeedItem::expires_at`] is later).
    pub fn live_stories(&self, now: Timestamp) -> impl Iterator<Item = &FeedItem> {
        self.stories.iter().filter(move |story| story.is_live(now))
    }
}

/// One stored page of a feed: a JSON array of at most 100 [`FeedItem`]s. A page's key is
/// never reused, so a page can be cached for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PageRef {
    /// Its blob key (`feeds/{user}/{sync}/{n}.json`).
    pub key: String,
    /// Posts on it.
    pub items: usize,
    /// Posts on it a site can show.
    pub available: usize,
}

/// Whether a feed is current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FeedStatus {
    /// The last sync listed everything.
    Fresh,
    /// The last syncs failed since `since`; the items are the last good ones.
    Stale {
        /// The first failed sync.
        since: Timestamp,
        /// What failed, in a sentence (never a token or URL).
        reason: String,
        /// Whether the account must log in again (a revoked or expired token): polling
        /// stops until it does.
        needs_login: bool,
    },
}

/// One post, or one item of an album.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FeedItem {
    /// The media id.
    pub id: String,
    /// `IMAGE`, `VIDEO` or `CAROUSEL_ALBUM`.
    pub media_type: String,
    /// The caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Text for the image's `alt`: Instagram's `alt_text`, else the caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
    /// The post on instagram.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The local copies of its image (a video's thumbnail); `None` when it could not be
    /// mirrored (no URL, a file that does not decode): a site leaves the item out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<MirroredImage>,
    /// Why it has no image, when it has none: a link the downloader refused, a file that
    /// is not an image or is too large to decode. For the site owner, not the public page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// A video's or reel's local file, when it was mirrored; a site plays it from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MirroredVideo>,
    /// Why a video has no local file (Meta sent none, for licensed audio; over the mirror's
    /// size cap; a refused link): a site shows its picture and links to Instagram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplayable: Option<String>,
    /// An album's items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<FeedItem>,
    /// A story's end: 24 hours after it was posted. `None` for posts, which stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// A video mirrored into the blob store, as downloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MirroredVideo {
    /// Its blob key (`media/{id}/video.mp4`).
    pub key: String,
}

impl FeedItem {
    /// Whether a site can show it: it has an image, or (an album) an item that has one.
    pub fn is_available(&self) -> bool {
        self.image.is_some() || self.children.iter().any(|c| c.image.is_some())
    }

    /// Whether it is still up at `now`: a post always; a story until its `expires_at`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// Every blob key it and its album items use: each image's original, variants and record
    /// (`image.json`), and each video's file. What a purge deletes and a server may serve (less
    /// the records).
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self).chain(&self.children).flat_map(|one| {
            let images = one.image.iter().flat_map(MirroredImage::keys);
            images.chain(one.video.iter().map(|video| video.key.clone()))
        })
    }

    /// The image a grid shows for it: its own, or its first item's.
    pub fn cover(&self) -> Option<&MirroredImage> {
        self.image
            .as_ref()
            .or_else(|| self.children.iter().find_map(|c| c.image.as_ref()))
    }
}

/// An image mirrored into the blob store: the downloaded original and resized variants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MirroredImage {
    /// The blob key of the file as downloaded.
    pub original: String,
    /// The original's width in pixels.
    pub width: u32,
    /// The original's height in pixels.
    pub height: u32,
    /// The average colour, `#rrggbb`: a placeholder while the image loads.
    pub color: String,
    /// A [BlurHash](https://blurha.sh) of the image (about 30 characters): a blurred
    /// placeholder a page can paint before the file arrives. `None` in feeds written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
    /// JPEG copies no wider than each configured width, smallest first (a width the original
    /// does not reach is left out; the original stands in).
    pub variants: Vec<Variant>,
}

impl MirroredImage {
    /// The smallest variant at least `width` wide, else the largest; the original when there
    /// is none.
    pub fn best_for(&self, width: u32) -> (&str, u32, u32) {
        self.variants
            .iter()
            .find(|v| v.width >= width)
            .or_else(|| self.variants.last())
            .map_or((&self.original, self.width, self.height), |v| {
                (&v.key, v.width, v.height)
            })
    }

    /// Every blob key it uses: the original, the variants, and the record beside them
    /// (`image.json`, which lets a sync that was cut short be resumed without downloading
    /// again).
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        let record = self
            .original
            .rsplit_once('/')
            .map(|(folder, _)| format!("{folder}/image.json"));
        std::iter::once(self.original.clone())
            .chain(self.variants.iter().map(|v| v.key.clone()))
            .chain(record)
    }
}

/// One resized copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variant {
    /// Its blob key.
    pub key: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}
