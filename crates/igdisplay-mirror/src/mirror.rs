//! [`Mirror`]: one account's sync. List every page (album items by field expansion: one
//! request per 100 posts), download what is new once, make its variants, write the feed
//! atomically, then drop the files of posts that are gone. When listing fails, the last good
//! feed stays and says why.

use crate::blob::{BlobError, BlobStore, check_key};
use crate::feed::{Feed, FeedItem, FeedStatus, MirroredImage, Variant};
use crate::images;
use bytes::Bytes;
use igdisplay_graph::{GraphClient, MediaField};
use igdisplay_http::http::{self, Method, StatusCode};
use igdisplay_http::{SharedBackend, SharedClock, SystemClock};
use igdisplay_model::{Media, MediaType, Platform, Timestamp, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The fields a sync lists (album items get the same by expansion).
const FIELDS: &[MediaField] = &[
    MediaField::Id,
    MediaField::Caption,
    MediaField::MediaType,
    MediaField::MediaUrl,
    MediaField::ThumbnailUrl,
    MediaField::Permalink,
    MediaField::Timestamp,
];
/// Posts per listing request: Instagram's useful maximum.
const PAGE: u32 = 100;
/// The shortest and longest wait between two polls of an account.
const POLL_MIN: Duration = Duration::from_secs(15 * 60);
const POLL_MAX: Duration = Duration::from_secs(6 * 3600);
/// After a failed listing, the next try; after a revoked token, a day (a new login syncs at once).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);
const AFTER_REVOCATION: Duration = Duration::from_secs(24 * 3600);
/// Instagram's usage is over a rolling hour: a sync put off for the budget waits that long.
const BUDGET_WINDOW: Duration = Duration::from_secs(3600);

/// A sync failed: listing, or writing the mirror. The last good feed is kept either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Instagram did not list the media (down, rate-limited, the token revoked): the feed
    /// keeps its last good items and is marked stale.
    #[error("the media could not be listed; the last good feed ({kept} items) is kept")]
    Listing {
        /// Items still served.
        kept: usize,
        /// Why.
        #[source]
        source: igdisplay_graph::Error,
    },
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A stored feed does not read.
    #[error("the stored feed of {user} is not valid")]
    CorruptFeed {
        /// Whose.
        user: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// Posts in the feed.
    pub items: usize,
    /// Listing requests sent (pages, plus one per page listed again to repair expired links).
    pub graph_calls: usize,
    /// Files downloaded.
    pub downloaded: usize,
    /// Images already mirrored, not downloaded again.
    pub reused: usize,
    /// Pages listed again because a link had expired.
    pub repaired: usize,
    /// Posts gone since the last sync (their files deleted).
    pub removed: usize,
    /// Posts or album items without a mirrored image (no URL, not decodable).
    pub unavailable: usize,
    /// The sync was put off: the usage Instagram reported is at or above the mirror's share
    /// of the budget ([`Mirror::with_budget_share`]); the feed is kept as it was.
    pub deferred: bool,
}

/// Keeps accounts' media mirrored in a [`BlobStore`]. Cheap to clone. The crate's
/// documentation has an example against the mock.
#[derive(Clone, Debug)]
pub struct Mirror {
    blobs: Arc<dyn BlobStore>,
    backend: SharedBackend,
    clock: SharedClock,
    widths: Vec<u32>,
    budget_share: u8,
}

/// Where one image comes from, and whether its link had expired.
enum Fetched {
    Image(MirroredImage),
    Expired,
    Unavailable,
}

impl Mirror {
    /// A mirror into `blobs`, downloading through `backend`, with variants 320, 640 and
    /// 1080 pixels wide.
    pub fn new(blobs: Arc<dyn BlobStore>, backend: SharedBackend) -> Self {
        Self {
            blobs,
            backend,
            clock: Arc::new(SystemClock),
            widths: vec![320, 640, 1080],
            budget_share: 50,
        }
    }

    /// The share of the rate budget (percent, as the usage headers report it) the mirror may
    /// use: a sync that finds the usage at or above it is put off for an hour and the feed
    /// kept, so the site's other calls keep their room. Default 50; a first sync always runs.
    #[must_use]
    pub fn with_budget_share(mut self, percent: u8) -> Self {
        self.budget_share = percent.min(100);
        self
    }

    /// Reads the time from `clock` (stamps and poll schedules).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The variant widths, in pixels (sorted; zeros dropped).
    #[must_use]
    pub fn with_widths(mut self, widths: &[u32]) -> Self {
        let mut widths: Vec<u32> = widths.iter().copied().filter(|w| *w > 0).collect();
        widths.sort_unstable();
        widths.dedup();
        self.widths = widths;
        self
    }

    /// The blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The blob key of `user`'s feed.
    pub fn feed_key(user: &UserId) -> Result<String, BlobError> {
        let key = format!("feeds/{}.json", user.as_str());
        check_key(&key)?;
        Ok(key)
    }

    /// `user`'s last written feed, if any.
    ///
    /// # Errors
    ///
    /// [`SyncError::Blob`] or [`SyncError::CorruptFeed`].
    pub async fn feed(&self, user: &UserId) -> Result<Option<Feed>, SyncError> {
        let Some(bytes) = self.blobs.get(&Self::feed_key(user)?).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| SyncError::CorruptFeed {
                user: user.to_string(),
                source,
            })
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(self.clock.now())
    }

    /// Syncs `user`'s media through `graph` (a client acting as `user`).
    ///
    /// # Errors
    ///
    /// [`SyncError::Listing`] when Instagram did not list the media: the feed keeps its last
    /// good items, marked [`FeedStatus::Stale`]. [`SyncError::Blob`] when the store failed:
    /// the previous feed is untouched.
    pub async fn sync(&self, user: &UserId, graph: &GraphClient) -> Result<SyncReport, SyncError> {
        let previous = self.feed(user).await?;
        let spent = graph.usage().and_then(|usage| usage.max_percent());
        if let (Some(percent), Some(mut feed)) = (spent, previous.clone())
            && percent >= self.budget_share
        {
            tracing::debug!(%user, percent, "the rate budget's share is spent; the sync is put off");
            feed.next_poll_at = later(self.now(), BUDGET_WINDOW);
            self.write(user, &feed).await?;
            return Ok(SyncReport {
                items: feed.items.len(),
                deferred: true,
                ..SyncReport::default()
            });
        }
        let known: HashMap<String, MirroredImage> = previous
            .iter()
            .flat_map(|feed| &feed.items)
            .flat_map(|item| std::iter::once(item).chain(&item.children))
            .filter_map(|item| Some((item.id.clone(), item.image.clone()?)))
            .collect();
        let mut report = SyncReport::default();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match self.list(graph, cursor.as_deref(), &mut report).await {
                Ok(page) => page,
                Err(error) => return Err(self.keep_last_good(user, previous, error).await?),
            };
            let mut mirrored = Vec::with_capacity(page.items.len());
            let mut expired = false;
            for media in &page.items {
                let (item, link_expired) = self.mirror_item(media, &known, &mut report).await?;
                expired |= link_expired;
                mirrored.push(item);
            }
            if expired {
                // Links expire while a long sync runs: list the page again for fresh ones
                // (one request for up to 100 posts), never one call per item.
                report.repaired += 1;
                let fresh = match self.list(graph, cursor.as_deref(), &mut report).await {
                    Ok(fresh) => fresh,
                    Err(error) => return Err(self.keep_last_good(user, previous, error).await?),
                };
                mirrored.clear();
                for media in &fresh.items {
                    mirrored.push(self.mirror_item(media, &known, &mut report).await?.0);
                }
            }
            report.unavailable += mirrored
                .iter()
                .flat_map(|item| std::iter::once(item).chain(&item.children))
                .filter(|item| item.image.is_none() && item.media_type != MediaType::CarouselAlbum.as_str())
                .count();
            items.extend(mirrored);
            match page.after {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        report.items = items.len();
        let now = self.now();
        let feed = Feed {
            user_id: user.to_string(),
            synced_at: Some(now),
            status: FeedStatus::Fresh,
            next_poll_at: next_poll(&items, now),
            items,
        };
        self.write(user, &feed).await?;
        // Only now that the new feed is written: the files of posts that are gone.
        if let Some(previous) = &previous {
            let (removed, gone) = gone_files(previous, &feed);
            report.removed = removed;
            for key in gone {
                self.blobs.delete(&key).await?;
            }
        }
        Ok(report)
    }

    /// One listing request.
    async fn list(
        &self,
        graph: &GraphClient,
        cursor: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<igdisplay_graph::Page<Media>, igdisplay_graph::Error> {
        // `alt_text` exists on Instagram Login only (Basic Display refuses the field).
        let mut fields = FIELDS.to_vec();
        if graph.endpoint().platform == Platform::InstagramLogin {
            fields.push(MediaField::AltText);
        }
        let mut request = graph.my_media().fields(&fields).with_children().limit(PAGE);
        if let Some(cursor) = cursor {
            request = request.after(cursor.to_owned());
        }
        report.graph_calls += 1;
        request.send().await
    }

    /// The feed after a failed listing: the last good items, marked stale since the first
    /// failure; an account that must log in again is polled no more until it does.
    async fn keep_last_good(
        &self,
        user: &UserId,
        previous: Option<Feed>,
        error: igdisplay_graph::Error,
    ) -> Result<SyncError, SyncError> {
        let now = self.now();
        let needs_login = error.requires_login();
        let mut feed = previous.unwrap_or_else(|| Feed {
            user_id: user.to_string(),
            synced_at: None,
            status: FeedStatus::Fresh,
            next_poll_at: now,
            items: Vec::new(),
        });
        let since = match &feed.status {
            FeedStatus::Stale { since, .. } => *since,
            FeedStatus::Fresh => now,
        };
        feed.status = FeedStatus::Stale {
            since,
            reason: error.to_string(),
            needs_login,
        };
        let wait = if needs_login {
            AFTER_REVOCATION
        } else {
            RETRY_AFTER_FAILURE
        };
        feed.next_poll_at = later(now, wait);
        self.write(user, &feed).await?;
        tracing::warn!(%user, %error, kept = feed.items.len(), "the media could not be listed; serving the last good feed");
        Ok(SyncError::Listing {
            kept: feed.items.len(),
            source: error,
        })
    }

    async fn write(&self, user: &UserId, feed: &Feed) -> Result<(), SyncError> {
        let json = serde_json::to_vec(feed).map_err(|source| SyncError::CorruptFeed {
            user: user.to_string(),
            source,
        })?;
        Ok(self.blobs.put(&Self::feed_key(user)?, Bytes::from(json)).await?)
    }

    /// A post (with its album items) as a feed item, its images mirrored; and whether a link
    /// had expired.
    async fn mirror_item(
        &self,
        media: &Media,
        known: &HashMap<String, MirroredImage>,
        report: &mut SyncReport,
    ) -> Result<(FeedItem, bool), SyncError> {
        let mut expired = false;
        let mut children = Vec::with_capacity(media.children().len());
        for child in media.children() {
            let (item, child_expired) = Box::pin(self.mirror_item(child, known, report)).await?;
            expired |= child_expired;
            children.push(item);
        }
        let is_album = media.media_type == Some(MediaType::CarouselAlbum);
        let image = if is_album {
            None
        } else {
            match self.image_of(media, known, report).await? {
                Fetched::Image(image) => Some(image),
                Fetched::Expired => {
                    expired = true;
                    None
                }
                Fetched::Unavailable => None,
            }
        };
        let caption = media.caption.clone();
        let item = FeedItem {
            id: media.id.to_string(),
            media_type: media
                .media_type
                .as_ref()
                .map_or("IMAGE", MediaType::as_str)
                .to_owned(),
            alt: media.alt_text.clone().or_else(|| caption.clone()),
            caption,
            permalink: media.permalink.clone(),
            timestamp: media.timestamp,
            image,
            children,
        };
        Ok((item, expired))
    }

    /// The mirrored image of `media`: already there, or downloaded and processed now.
    async fn image_of(
        &self,
        media: &Media,
        known: &HashMap<String, MirroredImage>,
        report: &mut SyncReport,
    ) -> Result<Fetched, SyncError> {
        let id = media.id.to_string();
        if let Some(image) = known.get(&id) {
            report.reused += 1;
            return Ok(Fetched::Image(image.clone()));
        }
        // Mirrored by a sync that stopped before it wrote its feed (a crash, a full disk): its
        // record is written after its files, so a record means the files are whole.
        let record = format!("media/{id}/image.json");
        if check_key(&record).is_ok()
            && let Some(bytes) = self.blobs.get(&record).await?
            && let Ok(image) = serde_json::from_slice::<MirroredImage>(&bytes)
        {
            report.reused += 1;
            return Ok(Fetched::Image(image));
        }
        let source = match media.media_type {
            Some(MediaType::Video) => media.thumbnail_url.as_deref(),
            _ => media.media_url.as_deref(),
        };
        let (Some(url), Ok(())) = (source, check_key(&format!("media/{id}"))) else {
            return Ok(Fetched::Unavailable);
        };
        let bytes = match self.download(url).await {
            Download::Bytes(bytes) => bytes,
            Download::Expired => return Ok(Fetched::Expired),
            Download::Failed => return Ok(Fetched::Unavailable),
        };
        report.downloaded += 1;
        let widths = self.widths.clone();
        let decoded = bytes.clone();
        let processed = tokio::task::spawn_blocking(move || images::process(&decoded, &widths)).await;
        let Ok(Ok(processed)) = processed else {
            tracing::debug!(%id, "a downloaded file did not decode");
            return Ok(Fetched::Unavailable);
        };
        let original = format!("media/{id}/original");
        self.blobs.put(&original, bytes).await?;
        let mut variants = Vec::with_capacity(processed.variants.len());
        for (width, height, jpeg) in processed.variants {
            let key = format!("media/{id}/{width}.jpg");
            self.blobs.put(&key, Bytes::from(jpeg)).await?;
            variants.push(Variant { key, width, height });
        }
        let image = MirroredImage {
            original,
            width: processed.width,
            height: processed.height,
            color: processed.color,
            variants,
        };
        let json = serde_json::to_vec(&image).map_err(|source| SyncError::CorruptFeed {
            user: id.clone(),
            source,
        })?;
        self.blobs.put(&record, Bytes::from(json)).await?;
        Ok(Fetched::Image(image))
    }

    /// GETs a CDN link.
    async fn download(&self, url: &str) -> Download {
        let Ok(request) = http::Request::builder()
            .method(Method::GET)
            .uri(url)
            .body(Bytes::new())
        else {
            return Download::Failed;
        };
        match self.backend.send(request).await {
            Ok(response) if response.status().is_success() => Download::Bytes(response.into_body()),
            // The CDN's answer to a link past its `oe` expiry.
            Ok(response) if response.status() == StatusCode::FORBIDDEN => Download::Expired,
            Ok(_) | Err(_) => Download::Failed,
        }
    }
}

/// The posts of `previous` missing from `current`, and the files only they used.
fn gone_files(previous: &Feed, current: &Feed) -> (usize, Vec<String>) {
    let all = |feed: &Feed| -> Vec<FeedItem> {
        feed.items
            .iter()
            .flat_map(|item| std::iter::once(item.clone()).chain(item.children.iter().cloned()))
            .collect()
    };
    let kept: HashSet<String> = all(current)
        .iter()
        .filter_map(|item| item.image.as_ref())
        .flat_map(|image| image.keys().collect::<Vec<_>>())
        .collect();
    let live: HashSet<&str> = current.items.iter().map(|i| i.id.as_str()).collect();
    let removed = previous
        .items
        .iter()
        .filter(|i| !live.contains(i.id.as_str()))
        .count();
    let gone = all(previous)
        .iter()
        .filter_map(|item| item.image.as_ref())
        .flat_map(|image| image.keys().collect::<Vec<_>>())
        .filter(|key| !kept.contains(key))
        .collect();
    (removed, gone)
}

enum Download {
    Bytes(Bytes),
    Expired,
    Failed,
}

fn later(now: Timestamp, wait: Duration) -> Timestamp {
    Timestamp::from_unix(
        now.unix()
            .saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX)),
    )
}

/// When to poll next: a quarter of the median gap between the ten newest posts, between 15
/// minutes and 6 hours (an account that posts hourly is polled every 15 minutes; one that
/// posts weekly, every 6 hours).
fn next_poll(items: &[FeedItem], now: Timestamp) -> Timestamp {
    let mut stamps: Vec<i64> = items
        .iter()
        .filter_map(|i| i.timestamp)
        .map(Timestamp::unix)
        .take(10)
        .collect();
    stamps.sort_unstable_by(|a, b| b.cmp(a));
    let mut gaps: Vec<u64> = stamps.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
    gaps.sort_unstable();
    let wait = gaps
        .get(gaps.len() / 2)
        .map_or(POLL_MAX, |median| Duration::from_secs(median / 4))
        .clamp(POLL_MIN, POLL_MAX);
    later(now, wait)
}
