//! [`Mirror`]: one account's sync. List every page (album items by field expansion: one
//! request per 100 posts), download what is new once, make its variants, write the feed
//! atomically, then drop the files of posts that are gone. When listing fails, the last good
//! feed stays and says why.

use crate::blob::{BlobError, BlobStore, check_key};
use crate::download::{DownloadError, Downloader};
use crate::feed::{Feed, FeedIndex, FeedItem, FeedStatus, MirroredImage, MirroredVideo, PageRef, Variant};
use crate::images;
use bytes::Bytes;
use igdisplay_graph::{GraphClient, MediaField};
use igdisplay_http::{SharedClock, SystemClock};
use igdisplay_model::{Media, MediaType, Platform, Timestamp, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Posts per listing request: Instagram's useful maximum.
const PAGE: u32 = 100;
/// A story is up for 24 hours after it was posted.
const STORY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Pages of stories read at most in one sync (an account posts a few a day).
const MAX_STORY_PAGES: usize = 10;
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
    /// Another sync of the account was running in this mirror: this one waited for it to end
    /// and did nothing (two triggers at once run one sync).
    #[error("another sync of this account was running; it has ended")]
    AlreadyRunning,
    /// A stored feed file (an index, a page, an image record) is missing or does not read.
    #[error("the stored feed file {key} is missing or not valid")]
    CorruptFeed {
        /// Its key (or, for an index, whose).
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The stored feed index was written by a later release, in a shape this one does not
    /// know ([`FEED_SCHEMA`](crate::FEED_SCHEMA)): it is neither read nor overwritten.
    #[error("the stored feed {key} has schema {schema}, newer than this release reads")]
    NewerFeed {
        /// Whose feed.
        key: String,
        /// The version it was written in.
        schema: u32,
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
    /// Requests for the account's stories: one a sync on Instagram Login (more only for an
    /// account with over 100 live stories); none on Basic Display, which has no stories.
    pub story_calls: usize,
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
    downloader: Downloader,
    clock: SharedClock,
    widths: Vec<u32>,
    budget_share: u8,
    /// The largest video mirrored, in bytes; `None`: videos are not mirrored.
    videos: Option<u64>,
    /// Images decoded at a time, across every sync of this mirror.
    decodes: Arc<tokio::sync::Semaphore>,
    /// One gate per account: a sync or a purge holds it (shared by the mirror's clones).
    gates: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// What [`Mirror::purge`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Whether the account had a feed.
    pub had_feed: bool,
    /// Files deleted (originals, variants and their records).
    pub files: usize,
    /// Feed pages deleted, and the index.
    pub pages: usize,
}

/// Where one image comes from, and whether its link had expired.
enum Fetched<T> {
    Got(T),
    Expired,
    /// Not mirrored, for this reason.
    Unavailable(String),
}

impl<T> Fetched<T> {
    /// The file, or why there is none; an expired link noted in `expired` (its page is
    /// listed again).
    fn split(self, expired: &mut bool) -> (Option<T>, Option<String>) {
        match self {
            Fetched::Got(got) => (Some(got), None),
            Fetched::Expired => {
                *expired = true;
                (None, Some(DownloadError::Expired.to_string()))
            }
            Fetched::Unavailable(reason) => (None, Some(reason)),
        }
    }
}

/// The largest video mirrored by default: 200 MiB.
pub const DEFAULT_VIDEO_BYTES: u64 = 200 * 1024 * 1024;

/// How long an instance's lease on an account's sync ([`Mirror::sync_task`]) lasts before
/// another instance may take it over, when its holder stops renewing it (it died).
pub const SYNC_LEASE: Duration = Duration::from_secs(600);

/// Images decoded at a time by default: each holds up to 64 MiB of pixels.
pub const DEFAULT_DECODES: usize = 2;

impl Mirror {
    /// A mirror into `blobs`, downloading through `downloader` (Instagram's CDN only, or an
    /// origin its policy names besides), with variants 320, 640 and 1080 pixels wide.
    pub fn new(blobs: Arc<dyn BlobStore>, downloader: Downloader) -> Self {
        Self {
            blobs,
            downloader,
            clock: Arc::new(SystemClock),
            widths: vec![320, 640, 1080],
            budget_share: 50,
            decodes: Arc::new(tokio::sync::Semaphore::new(DEFAULT_DECODES)),
            gates: Arc::default(),
            videos: Some(DEFAULT_VIDEO_BYTES),
        }
    }

    /// Mirrors videos and reels up to `bytes` each (within the downloader's own cap), or
    /// none with `None` (their pictures still are). Default [`DEFAULT_VIDEO_BYTES`].
    #[must_use]
    pub fn with_video_limit(mut self, bytes: Option<u64>) -> Self {
        self.videos = bytes;
        self
    }

    /// The name under which instances sharing a mirror agree that one of them syncs `user`
    /// (a lease on a database every instance reads, such as `igdisplay_store`'s task leases,
    /// held for [`SYNC_LEASE`] and renewed while the sync runs). Within one process, the
    /// mirror's own gate already runs one sync per account.
    ///
    /// ```
    /// use igdisplay_mirror::Mirror;
    /// use igdisplay_model::UserId;
    /// assert_eq!(Mirror::sync_task(&UserId::new("1784")), "mirror-sync:1784");
    /// ```
    pub fn sync_task(user: &UserId) -> String {
        format!("mirror-sync:{}", user.as_str())
    }

    /// `user`'s gate: held by the account's sync or purge.
    fn gate(&self, user: &UserId) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gates.entry(user.as_str().to_owned()).or_default().clone()
    }

    /// Deletes everything of `user`'s mirror: the files of every post its feed names (album
    /// items included), its pages (the retired ones too) and, last, its index, so a reader
    /// never finds an index naming a deleted page. Waits for a running sync of the account
    /// to end first. For a data-deletion request or a deauthorization.
    ///
    /// Files a sync wrote and no index names (a sync cut short before its index) are not
    /// found this way; [`FsBlobStore`](crate::FsBlobStore) keeps them under `media/{id}/`.
    ///
    /// # Errors
    ///
    /// [`SyncError::Blob`] (what was deleted stays deleted; purging again finishes the job),
    /// or [`SyncError::CorruptFeed`] when a page does not read (nothing is deleted then).
    pub async fn purge(&self, user: &UserId) -> Result<PurgeReport, SyncError> {
        let gate = self.gate(user);
        let _held = gate.lock().await;
        let index = match self.index(user).await {
            Ok(Some(index)) => index,
            Ok(None) => return Ok(PurgeReport::default()),
            // An index that does not read names nothing that can be found: it goes alone.
            Err(SyncError::CorruptFeed { .. }) => {
                self.blobs.delete(&Self::feed_key(user)?).await?;
                return Ok(PurgeReport {
                    had_feed: true,
                    pages: 1,
                    ..PurgeReport::default()
                });
            }
            Err(error) => return Err(error),
        };
        let mut files = HashSet::new();
        let mut pages: Vec<&str> = Vec::new();
        for page in &index.pages {
            files.extend(self.page(page).await?.iter().flat_map(FeedItem::keys));
            pages.push(&page.key);
        }
        files.extend(index.stories.iter().flat_map(FeedItem::keys));
        pages.extend(index.retired.iter().map(String::as_str));
        for key in &files {
            self.blobs.delete(key).await?;
        }
        for key in &pages {
            self.blobs.delete(key).await?;
        }
        self.blobs.delete(&Self::feed_key(user)?).await?;
        Ok(PurgeReport {
            had_feed: true,
            files: files.len(),
            pages: pages.len() + 1,
        })
    }

    /// Decodes at most `permits` images at a time (at least one), across every sync of
    /// this mirror: what bounds its memory, whatever the number of accounts synced at once.
    /// Default [`DEFAULT_DECODES`].
    #[must_use]
    pub fn with_decode_limit(mut self, permits: usize) -> Self {
        self.decodes = Arc::new(tokio::sync::Semaphore::new(permits.max(1)));
        self
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

    /// The blob key of `user`'s feed index.
    pub fn feed_key(user: &UserId) -> Result<String, BlobError> {
        let key = format!("feeds/{}.json", user.as_str());
        check_key(&key)?;
        Ok(key)
    }

    /// Whether the blob at `key` never changes once written, so a server may let browsers
    /// cache it for good: mirrored files (`media/...`) and feed pages
    /// (`feeds/{user}/{sync}/{n}.json`, a new sync writes new ones). A feed index
    /// (`feeds/{user}.json`) is rewritten by every sync.
    ///
    /// ```
    /// use igdisplay_mirror::Mirror;
    ///
    /// assert!(Mirror::is_immutable("media/17895/640.jpg"));
    /// assert!(Mirror::is_immutable("feeds/1784/1800000000-a1b2/0.json"));
    /// assert!(!Mirror::is_immutable("feeds/1784.json"));
    /// ```
    pub fn is_immutable(key: &str) -> bool {
        key.starts_with("media/") || (key.starts_with("feeds/") && key.matches('/').count() == 3)
    }

    /// `user`'s feed index (status, counts, page keys), if a sync ever wrote one.
    ///
    /// # Errors
    ///
    /// [`SyncError::Blob`], [`SyncError::CorruptFeed`], or [`SyncError::NewerFeed`] for an
    /// index a later release wrote.
    pub async fn index(&self, user: &UserId) -> Result<Option<FeedIndex>, SyncError> {
        let Some(bytes) = self.blobs.get(&Self::feed_key(user)?).await? else {
            return Ok(None);
        };
        let index: FeedIndex =
            serde_json::from_slice(&bytes).map_err(|source| corrupt(user.as_str(), source))?;
        if index.schema > crate::FEED_SCHEMA {
            return Err(SyncError::NewerFeed {
                key: user.to_string(),
                schema: index.schema,
            });
        }
        Ok(Some(index))
    }

    /// The items on one page of a feed.
    ///
    /// # Errors
    ///
    /// [`SyncError::Blob`], or [`SyncError::CorruptFeed`] when the page is missing or does
    /// not read (pages are kept until the sync after the one that replaced them, so a reader
    /// holding an index for less than a poll interval always finds them).
    pub async fn page(&self, page: &PageRef) -> Result<Vec<FeedItem>, SyncError> {
        let bytes = self.blobs.get(&page.key).await?.unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|source| corrupt(&page.key, source))
    }

    /// `user`'s whole feed, every page read: for a small site or a JSON export. A site that
    /// shows a page at a time reads [`Mirror::index`] and [`Mirror::available`] instead.
    ///
    /// # Errors
    ///
    /// As [`Mirror::index`] and [`Mirror::page`].
    pub async fn feed(&self, user: &UserId) -> Result<Option<Feed>, SyncError> {
        let Some(index) = self.index(user).await? else {
            return Ok(None);
        };
        let mut items = Vec::new();
        for page in &index.pages {
            items.extend(self.page(page).await?);
        }
        let now = self.now();
        Ok(Some(Feed {
            stories: index.live_stories(now).cloned().collect(),
            schema: index.schema,
            user_id: index.user_id,
            synced_at: index.synced_at,
            status: index.status,
            next_poll_at: index.next_poll_at,
            items,
        }))
    }

    /// At most `limit` of the items a site can show ([`FeedItem::is_available`]), skipping
    /// the first `offset` of them: reads only the pages they are on (the index counts each
    /// page's available items).
    ///
    /// # Errors
    ///
    /// As [`Mirror::page`].
    pub async fn available(
        &self,
        index: &FeedIndex,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FeedItem>, SyncError> {
        let mut skip = offset;
        let mut items = Vec::new();
        for page in &index.pages {
            if items.len() >= limit {
                break;
            }
            if skip >= page.available {
                skip -= page.available;
                continue;
            }
            let shown = self.page(page).await?.into_iter().filter(FeedItem::is_available);
            items.extend(shown.skip(skip).take(limit - items.len()));
            skip = 0;
        }
        Ok(items)
    }

    /// The post `id` (not an album's item), read page by page.
    ///
    /// # Errors
    ///
    /// As [`Mirror::page`].
    pub async fn find(&self, index: &FeedIndex, id: &str) -> Result<Option<FeedItem>, SyncError> {
        for page in &index.pages {
            if let Some(item) = self.page(page).await?.into_iter().find(|i| i.id == id) {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(self.clock.now())
    }

    /// Syncs `user`'s media through `graph` (a client acting as `user`). Each listed page is
    /// mirrored and written as it comes, beside the previous feed's page around the same
    /// date (both are newest first), so a sync holds two pages whatever the library's size;
    /// the new index is written last.
    ///
    /// # Errors
    ///
    /// [`SyncError::Listing`] when Instagram did not list the media: the feed keeps its last
    /// good items, marked [`FeedStatus::Stale`]. [`SyncError::Blob`] when the store failed:
    /// the previous feed is untouched. [`SyncError::AlreadyRunning`] when another sync of the
    /// account was running in this mirror (or its clones): one sync per account at a time;
    /// this call returns once that one has ended.
    pub async fn sync(&self, user: &UserId, graph: &GraphClient) -> Result<SyncReport, SyncError> {
        let gate = self.gate(user);
        let Ok(_held) = gate.clone().try_lock_owned() else {
            // Another trigger's sync of this account is under way: wait for it, then leave
            // it be (its feed is the current one).
            drop(gate.lock().await);
            return Err(SyncError::AlreadyRunning);
        };
        self.sync_held(user, graph).await
    }

    /// [`sync`](Self::sync), the account's gate held.
    async fn sync_held(&self, user: &UserId, graph: &GraphClient) -> Result<SyncReport, SyncError> {
        let previous = match self.index(user).await {
            Ok(previous) => previous,
            // Unreadable: start afresh (the files it named are not deleted, nothing is lost).
            Err(SyncError::CorruptFeed { source, .. }) => {
                tracing::warn!(%user, %source, "the stored feed index does not read; syncing afresh");
                None
            }
            Err(error) => return Err(error),
        };
        if let Some(deferred) = self.defer(user, graph, previous.as_ref()).await? {
            return Ok(deferred);
        }
        let folder = format!("feeds/{}/{}", user.as_str(), sync_id(self.now()));
        let mut walked = Walked {
            pages: Vec::new(),
            newest: Vec::new(),
            old: Previous::new(previous.as_ref().map_or(&[], |p| p.pages.as_slice())),
            rescued: HashSet::new(),
            report: SyncReport::default(),
        };
        let mut walk = listing(graph);
        loop {
            let page = match walk.next_page().await {
                None => break,
                Some(Ok(page)) => page,
                Some(Err(error)) => {
                    self.discard(&walked.pages).await;
                    return Err(self.keep_last_good(user, previous, error).await?);
                }
            };
            walked.report.graph_calls += 1;
            let mut known = HashMap::new();
            let mut matched = Vec::new();
            walked.old.take(self, &page.items, &mut known, &mut matched).await;
            let (mut mirrored, expired) = self
                .mirror_page(&page.items, &known, &mut walked.rescued, &mut walked.report)
                .await?;
            if expired {
                // Links expire while a long sync runs: list the page again for fresh ones
                // (one request for up to 100 posts), never one call per item.
                walked.report.repaired += 1;
                walked.report.graph_calls += 1;
                let fresh = match walk.again().await {
                    Ok(fresh) => fresh,
                    Err(error) => {
                        self.discard(&walked.pages).await;
                        return Err(self.keep_last_good(user, previous, error).await?);
                    }
                };
                walked
                    .old
                    .take(self, &fresh.items, &mut known, &mut matched)
                    .await;
                mirrored = self
                    .mirror_page(&fresh.items, &known, &mut walked.rescued, &mut walked.report)
                    .await?
                    .0;
            }
            self.keep_page(&folder, &mirrored, &matched, &mut walked).await?;
        }
        self.conclude(user, graph, previous.as_ref(), walked).await
    }

    /// A page mirrored: its posts counted (the unavailable ones too), the files its posts
    /// listed again no longer use marked gone (an item taken out of an album), the newest
    /// dates noted, and the page written under `folder`.
    async fn keep_page(
        &self,
        folder: &str,
        mirrored: &[FeedItem],
        matched: &[FeedItem],
        walked: &mut Walked<'_>,
    ) -> Result<(), SyncError> {
        walked.report.unavailable += mirrored
            .iter()
            .flat_map(|item| std::iter::once(item).chain(&item.children))
            .filter(|item| item.image.is_none() && item.media_type != MediaType::CarouselAlbum.as_str())
            .count();
        let used: HashSet<String> = mirrored.iter().flat_map(FeedItem::keys).collect();
        walked.old.gone.extend(
            matched
                .iter()
                .flat_map(FeedItem::keys)
                .filter(|key| !used.contains(key)),
        );
        let room = 10usize.saturating_sub(walked.newest.len());
        walked
            .newest
            .extend(mirrored.iter().filter_map(|i| i.timestamp).take(room));
        let key = format!("{folder}/{}.json", walked.pages.len());
        let json = serde_json::to_vec(mirrored).map_err(|source| corrupt(&key, source))?;
        self.blobs.put(&key, Bytes::from(json)).await?;
        walked.report.items += mirrored.len();
        walked.pages.push(PageRef {
            key,
            items: mirrored.len(),
            available: mirrored.iter().filter(|i| i.is_available()).count(),
        });
        Ok(())
    }

    /// When the app's rate budget share is spent and a feed is there to keep showing: the
    /// sync put off for [`BUDGET_WINDOW`] (the feed's next poll), and its report.
    async fn defer(
        &self,
        user: &UserId,
        graph: &GraphClient,
        previous: Option<&FeedIndex>,
    ) -> Result<Option<SyncReport>, SyncError> {
        let spent = graph.usage().and_then(|usage| usage.max_percent());
        let (Some(percent), Some(index)) = (spent, previous) else {
            return Ok(None);
        };
        if percent < self.budget_share {
            return Ok(None);
        }
        tracing::debug!(%user, percent, "the rate budget's share is spent; the sync is put off");
        let mut index = index.clone();
        index.next_poll_at = self.now().saturating_add(BUDGET_WINDOW);
        self.write_index(user, &index).await?;
        Ok(Some(SyncReport {
            items: index.items,
            deferred: true,
            ..SyncReport::default()
        }))
    }

    /// A sync's end, once every post is walked: the stories, the new feed index written, and
    /// only then the files of posts and stories gone and the pages the sync before retired.
    async fn conclude(
        &self,
        user: &UserId,
        graph: &GraphClient,
        previous: Option<&FeedIndex>,
        walked: Walked<'_>,
    ) -> Result<SyncReport, SyncError> {
        let Walked {
            pages,
            newest,
            old,
            mut rescued,
            mut report,
        } = walked;
        let before: &[FeedItem] = previous.map_or(&[], |p| p.stories.as_slice());
        let stories = self
            .mirror_stories(graph, before, &mut rescued, &mut report)
            .await?;
        // The files of stories that left since the last sync.
        let kept: HashSet<String> = stories.iter().flat_map(FeedItem::keys).collect();
        let stories_gone: Vec<String> = before
            .iter()
            .flat_map(FeedItem::keys)
            .filter(|key| !kept.contains(key))
            .collect();
        let (removed, gone) = old.finish(self).await;
        report.removed = removed;
        let now = self.now();
        let index = FeedIndex {
            stories,
            schema: crate::FEED_SCHEMA,
            user_id: user.to_string(),
            synced_at: Some(now),
            status: FeedStatus::Fresh,
            next_poll_at: next_poll(&newest, now),
            items: report.items,
            available: pages.iter().map(|p| p.available).sum(),
            retired: previous
                .map(|p| p.pages.iter().map(|p| p.key.clone()).collect())
                .unwrap_or_default(),
            pages,
        };
        self.write_index(user, &index).await?;
        // Only now that the new feed is written: the files of posts that are gone, and the
        // pages retired by the sync before (the last ones stay for readers that hold the
        // previous index).
        let retired = previous.map(|p| p.retired.clone()).unwrap_or_default();
        let gone = gone
            .iter()
            .chain(&stories_gone)
            .filter(|key| !rescued.contains(*key));
        for key in gone.chain(&retired) {
            self.blobs.delete(key).await?;
        }
        Ok(report)
    }

    /// The account's live stories, mirrored like posts (a picture, a video's file), each with
    /// its `expires_at` (24 hours after it was posted; a story without a time leaves 24 hours
    /// from now). Only Instagram Login lists stories. A listing that fails keeps the stories of
    /// `before` still live: the feed's posts were listed, and that is what the sync is for.
    async fn mirror_stories(
        &self,
        graph: &GraphClient,
        before: &[FeedItem],
        rescued: &mut HashSet<String>,
        report: &mut SyncReport,
    ) -> Result<Vec<FeedItem>, SyncError> {
        if graph.endpoint().platform != Platform::InstagramLogin {
            return Ok(Vec::new());
        }
        let now = self.now();
        // The default fields: what a gallery shows.
        let mut walk = graph.my_stories().limit(PAGE).pages();
        let mut stories = Vec::new();
        // Mirrored stories are found again by their records, like any file of the mirror.
        let known = HashMap::new();
        for _ in 0..MAX_STORY_PAGES {
            let page = match walk.next_page().await {
                None => break,
                Some(Ok(page)) => page,
                Some(Err(error)) => {
                    tracing::warn!(%error, "the stories could not be listed; the live ones are kept");
                    return Ok(before.iter().filter(|s| s.is_live(now)).cloned().collect());
                }
            };
            report.story_calls += 1;
            for story in &page.items {
                let (mut item, _) = self.mirror_item(story, &known, rescued, report).await?;
                let posted = story.timestamp.unwrap_or(now);
                item.expires_at = Some(posted.saturating_add(STORY_LIFETIME));
                if item.is_live(now) {
                    stories.push(item);
                }
            }
        }
        Ok(stories)
    }

    /// Deletes the pages a sync wrote before its listing failed: no index names them. (Their
    /// images stay: each has its record, and the next sync reuses them.)
    async fn discard(&self, pages: &[PageRef]) {
        for page in pages {
            if let Err(error) = self.blobs.delete(&page.key).await {
                tracing::warn!(key = %page.key, %error, "a page of a failed sync was not deleted");
            }
        }
    }

    /// Mirrors a listed page; and whether a link had expired.
    async fn mirror_page(
        &self,
        listed: &[Media],
        known: &HashMap<String, MirroredImage>,
        rescued: &mut HashSet<String>,
        report: &mut SyncReport,
    ) -> Result<(Vec<FeedItem>, bool), SyncError> {
        let mut mirrored = Vec::with_capacity(listed.len());
        let mut expired = false;
        for media in listed {
            let (item, link_expired) = self.mirror_item(media, known, rescued, report).await?;
            expired |= link_expired;
            mirrored.push(item);
        }
        Ok((mirrored, expired))
    }

    /// The feed after a failed listing: the last good items, marked stale since the first
    /// failure; an account that must log in again is polled no more until it does.
    async fn keep_last_good(
        &self,
        user: &UserId,
        previous: Option<FeedIndex>,
        error: igdisplay_graph::Error,
    ) -> Result<SyncError, SyncError> {
        let now = self.now();
        let needs_login = error.requires_login();
        let mut index = previous.unwrap_or_else(|| FeedIndex {
            schema: crate::FEED_SCHEMA,
            user_id: user.to_string(),
            synced_at: None,
            status: FeedStatus::Fresh,
            next_poll_at: now,
            items: 0,
            available: 0,
            pages: Vec::new(),
            retired: Vec::new(),
            stories: Vec::new(),
        });
        let since = match &index.status {
            FeedStatus::Stale { since, .. } => *since,
            FeedStatus::Fresh => now,
        };
        index.status = FeedStatus::Stale {
            since,
            reason: error.to_string(),
            needs_login,
        };
        let wait = if needs_login {
            AFTER_REVOCATION
        } else {
            RETRY_AFTER_FAILURE
        };
        index.next_poll_at = now.saturating_add(wait);
        self.write_index(user, &index).await?;
        tracing::warn!(%user, %error, kept = index.items, "the media could not be listed; serving the last good feed");
        Ok(SyncError::Listing {
            kept: index.items,
            source: error,
        })
    }

    async fn write_index(&self, user: &UserId, index: &FeedIndex) -> Result<(), SyncError> {
        let json = serde_json::to_vec(index).map_err(|source| corrupt(user.as_str(), source))?;
        Ok(self.blobs.put(&Self::feed_key(user)?, Bytes::from(json)).await?)
    }

    /// A post (with its album items) as a feed item, its images mirrored; and whether a link
    /// had expired.
    async fn mirror_item(
        &self,
        media: &Media,
        known: &HashMap<String, MirroredImage>,
        rescued: &mut HashSet<String>,
        report: &mut SyncReport,
    ) -> Result<(FeedItem, bool), SyncError> {
        let mut expired = false;
        let mut children = Vec::with_capacity(media.children().len());
        for child in media.children() {
            let (item, child_expired) = Box::pin(self.mirror_item(child, known, rescued, report)).await?;
            expired |= child_expired;
            children.push(item);
        }
        let is_album = media.media_type == Some(MediaType::CarouselAlbum);
        let (image, unavailable) = if is_album {
            (None, None)
        } else {
            self.image_of(media, known, rescued, report)
                .await?
                .split(&mut expired)
        };
        let (video, unplayable) = match (is_album, media.playback()) {
            (false, igdisplay_model::Playback::Playable { url }) => self
                .video_of(media, url, rescued, report)
                .await?
                .split(&mut expired),
            (false, igdisplay_model::Playback::Unplayable { reason }) => (None, Some(reason.to_owned())),
            _ => (None, None),
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
            // Only a page of Instagram's site: never a link a hostile answer names.
            permalink: media.instagram_permalink().map(str::to_owned),
            timestamp: media.timestamp,
            image,
            unavailable,
            video,
            unplayable,
            children,
            expires_at: None,
        };
        Ok((item, expired))
    }

    /// Mirrors a video's file from `url` (streamed to the store), or finds it mirrored by a
    /// previous sync (a video never changes under its id; found, it is `rescued` like an
    /// image found by its record: a post passed over as gone and listed again keeps it).
    async fn video_of(
        &self,
        media: &Media,
        url: &str,
        rescued: &mut HashSet<String>,
        report: &mut SyncReport,
    ) -> Result<Fetched<MirroredVideo>, SyncError> {
        let Some(limit) = self.videos else {
            return Ok(Fetched::Unavailable(
                "this mirror does not keep videos".to_owned(),
            ));
        };
        let key = format!("media/{}/video.mp4", media.id.as_str());
        if check_key(&key).is_err() {
            return Ok(Fetched::Unavailable("the media id cannot name a file".to_owned()));
        }
        if self.blobs.exists(&key).await? {
            report.reused += 1;
            rescued.insert(key.clone());
            return Ok(Fetched::Got(MirroredVideo { key }));
        }
        let download = match self.downloader.open(url).await {
            Ok(download) if download.content_type.starts_with("video/") => download,
            Ok(download) => {
                return Ok(Fetched::Unavailable(format!(
                    "the file is not a video (`{}`)",
                    download.content_type
                )));
            }
            Err(DownloadError::Expired) => return Ok(Fetched::Expired),
            Err(error) => return Ok(Fetched::Unavailable(error.to_string())),
        };
        let mut download = download.limit(usize::try_from(limit).unwrap_or(usize::MAX));
        match self.blobs.put_download(&key, &mut download).await? {
            Ok(_) => {
                report.downloaded += 1;
                Ok(Fetched::Got(MirroredVideo { key }))
            }
            Err(DownloadError::TooLarge(_)) => Ok(Fetched::Unavailable(format!(
                "the video is larger than this mirror keeps ({limit} bytes)"
            ))),
            Err(error) => Ok(Fetched::Unavailable(error.to_string())),
        }
    }

    /// The mirrored image of `media`: already there, or downloaded and processed now.
    async fn image_of(
        &self,
        media: &Media,
        known: &HashMap<String, MirroredImage>,
        rescued: &mut HashSet<String>,
        report: &mut SyncReport,
    ) -> Result<Fetched<MirroredImage>, SyncError> {
        let id = media.id.to_string();
        if let Some(image) = known.get(&id) {
            report.reused += 1;
            return Ok(Fetched::Got(image.clone()));
        }
        // Mirrored by a sync that stopped before it wrote its feed (a crash, a full disk), or
        // a post listed out of date order (passed over as gone, found again): its record is
        // written after its files, so a record means the files are whole; they are kept.
        let record = format!("media/{id}/image.json");
        if check_key(&record).is_ok()
            && let Some(bytes) = self.blobs.get(&record).await?
            && let Ok(image) = serde_json::from_slice::<MirroredImage>(&bytes)
        {
            report.reused += 1;
            rescued.extend(image.keys());
            return Ok(Fetched::Got(image));
        }
        let Some(url) = media.picture_url() else {
            return Ok(Fetched::Unavailable("Instagram gave no link".to_owned()));
        };
        if check_key(&format!("media/{id}")).is_err() {
            return Ok(Fetched::Unavailable("the media id cannot name a file".to_owned()));
        }
        let bytes = match self.downloader.get(url).await {
            Ok(downloaded) if downloaded.content_type.starts_with("image/") => downloaded.bytes,
            Ok(downloaded) => {
                return Ok(Fetched::Unavailable(format!(
                    "the file is not an image (`{}`)",
                    downloaded.content_type
                )));
            }
            Err(DownloadError::Expired) => return Ok(Fetched::Expired),
            Err(error) => {
                tracing::debug!(%id, %error, "a file was not downloaded");
                return Ok(Fetched::Unavailable(error.to_string()));
            }
        };
        report.downloaded += 1;
        let widths = self.widths.clone();
        let decoded = bytes.clone();
        let processed = {
            // Closed never: the mirror holds the semaphore.
            let _permit = self.decodes.acquire().await;
            tokio::task::spawn_blocking(move || images::process(&decoded, &widths)).await
        };
        let processed = match processed {
            Ok(Ok(processed)) => processed,
            Ok(Err(error)) => {
                tracing::debug!(%id, %error, "a downloaded file did not decode");
                return Ok(Fetched::Unavailable(error.to_string()));
            }
            Err(_) => return Ok(Fetched::Unavailable("the image could not be decoded".to_owned())),
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
            blurhash: processed.blurhash,
            variants,
        };
        let json = serde_json::to_vec(&image).map_err(|source| corrupt(&record, source))?;
        self.blobs.put(&record, Bytes::from(json)).await?;
        Ok(Fetched::Got(image))
    }
}

/// What a sync's walk of the posts leaves for its end ([`Mirror::conclude`]).
struct Walked<'a> {
    /// The pages written.
    pages: Vec<PageRef>,
    /// The dates of the newest posts (ten at most), for the next poll.
    newest: Vec<Timestamp>,
    /// The previous feed, with the files of its posts not listed again.
    old: Previous<'a>,
    /// Files a post listed again still uses.
    rescued: HashSet<String>,
    report: SyncReport,
}

/// The previous feed, read a page at a time while the listing goes (both are newest first):
/// a post listed now is looked up among the previous posts of about the same date, so a sync
/// holds a page or two of them, not the library.
struct Previous<'a> {
    pages: std::slice::Iter<'a, PageRef>,
    /// Posts read and not listed (yet).
    window: HashMap<String, FeedItem>,
    /// The date of the last post read (the oldest so far).
    oldest: Option<i64>,
    /// The files of posts passed over: gone, unless found again (`rescued`).
    gone: Vec<String>,
    removed: usize,
}

impl<'a> Previous<'a> {
    fn new(pages: &'a [PageRef]) -> Self {
        Self {
            pages: pages.iter(),
            window: HashMap::new(),
            oldest: None,
            gone: Vec::new(),
            removed: 0,
        }
    }

    /// Takes the previous versions of `listed` posts out of the previous feed: their images
    /// into `known` (by media id, album items too), the posts into `matched`.
    async fn take(
        &mut self,
        mirror: &Mirror,
        listed: &[Media],
        known: &mut HashMap<String, MirroredImage>,
        matched: &mut Vec<FeedItem>,
    ) {
        for media in listed {
            if matched.iter().any(|item| item.id == media.id.as_str()) {
                continue; // listed again to repair its links
            }
            let at = media.timestamp.map(Timestamp::unix);
            let found = loop {
                if let Some(item) = self.window.remove(media.id.as_str()) {
                    break Some(item);
                }
                // Read on while the previous feed may still reach this post's date (a page
                // not read now stays for the next post, or for `finish`).
                let further = match (at, self.oldest) {
                    (Some(at), Some(oldest)) => oldest >= at,
                    _ => true,
                };
                let Some(page) = further.then(|| self.pages.next()).flatten() else {
                    break None;
                };
                self.read(mirror, page).await;
            };
            // Previous posts newer than this one and not listed: gone (or listed out of order).
            if let Some(at) = at {
                self.pass_over(|item| item.timestamp.is_some_and(|t| t.unix() > at));
            }
            if let Some(item) = found {
                for one in std::iter::once(&item).chain(&item.children) {
                    if let Some(image) = &one.image {
                        known.insert(one.id.clone(), image.clone());
                    }
                }
                matched.push(item);
            }
        }
    }

    /// Reads a previous page into the window. One that does not read is skipped (its posts'
    /// files are then kept, never deleted by mistake).
    async fn read(&mut self, mirror: &Mirror, page: &PageRef) {
        match mirror.page(page).await {
            Ok(items) => {
                for item in items {
                    self.oldest = item.timestamp.map(Timestamp::unix);
                    self.window.insert(item.id.clone(), item);
                }
            }
            Err(error) => {
                tracing::warn!(key = %page.key, %error, "a page of the previous feed does not read")
            }
        }
    }

    /// Passes over the posts of the window that `gone` picks: counted removed, their files
    /// gone unless found again (`rescued`).
    fn pass_over(&mut self, mut gone: impl FnMut(&FeedItem) -> bool) {
        let passed: Vec<FeedItem> = self
            .window
            .extract_if(|_, item| gone(item))
            .map(|(_, item)| item)
            .collect();
        self.removed += passed.len();
        self.gone.extend(passed.iter().flat_map(FeedItem::keys));
    }

    /// The posts gone, and their files: the ones read and not listed, and the ones never
    /// reached.
    async fn finish(mut self, mirror: &Mirror) -> (usize, Vec<String>) {
        loop {
            self.pass_over(|_| true);
            let Some(page) = self.pages.next() else {
                return (self.removed, self.gone);
            };
            self.read(mirror, page).await;
        }
    }
}

fn corrupt(key: &str, source: serde_json::Error) -> SyncError {
    SyncError::CorruptFeed {
        key: key.to_owned(),
        source,
    }
}

/// A folder no other sync uses for its pages: the time, and 64 random bits in hex.
fn sync_id(now: Timestamp) -> String {
    // Without the OS's randomness (never on a supported system) the time alone names it.
    let random = igdisplay_auth::random_hex(8).unwrap_or_default();
    format!("{}-{random}", now.unix())
}

/// When to poll next: a quarter of the median gap between the ten newest posts, between 15
/// minutes and 6 hours (an account that posts hourly is polled every 15 minutes; one that
/// posts weekly, every 6 hours).
fn next_poll(newest: &[Timestamp], now: Timestamp) -> Timestamp {
    let mut stamps: Vec<i64> = newest.iter().map(|t| t.unix()).take(10).collect();
    stamps.sort_unstable_by(|a, b| b.cmp(a));
    let mut gaps: Vec<u64> = stamps.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
    gaps.sort_unstable();
    let wait = gaps
        .get(gaps.len() / 2)
        .map_or(POLL_MAX, |median| Duration::from_secs(median / 4))
        .clamp(POLL_MIN, POLL_MAX);
    now.saturating_add(wait)
}

/// The owner's media, a page at a time, with the default fields (what a gallery shows; album
/// items get the same by expansion) and album items. `alt_text` exists on Instagram Login
/// only (Basic Display refuses the field).
fn listing(graph: &GraphClient) -> igdisplay_graph::Pages {
    let platform = graph.endpoint().platform;
    let mut fields = MediaField::defaults(platform).to_vec();
    if platform == Platform::InstagramLogin {
        fields.push(MediaField::AltText);
    }
    graph
        .my_media()
        .fields(&fields)
        .with_children()
        .limit(PAGE)
        .pages()
}
