//! The mock's world: the app, users, media, codes, tokens, the clock, rate windows, faults,
//! stubs and the journal. Guarded by one mutex that is never held across an await.
//!
//! The world is built once from the seed (`World::new`) and changed only by requests: codes
//! and tokens are issued and spent, call windows fill and drain with the clock, faults and
//! stubs are added and used up, the journal grows to its capacity. A reset rebuilds it from
//! the same seed, so ids stay the same across resets while codes and tokens start over.
//!
//! Everything that expires compares against `World::now`, the mock's clock, never the system
//! time: a test moves the clock and every code, token, CDN link and rate window ages with it.

use crate::FastMap;
use crate::assets::Assets;
use crate::clock::MockClock;
use crate::faults::{Fault, Stub};
use crate::fields::FieldsCache;
use crate::headers::HeaderCache;
use crate::journal::Journal;
use crate::rng::Rng;
use crate::seed::{MockPlatform, Seed, SeedApp, SeedKind, SeedMedia, SeedShape};
use std::collections::{HashMap, VecDeque};

/// One hour: authorization codes and short-lived tokens.
pub(crate) const HOUR: i64 = 3600;
/// Sixty days: long-lived tokens.
pub(crate) const LONG_LIVED_SECONDS: i64 = 60 * 24 * HOUR;

/// How the code-exchange response of Instagram Login is shaped. Instagram's documentation
/// shows one shape and its API sends another; a client must read both, and the mock can send
/// either.
///
/// ```json
/// {"access_token": "IGAA...", "user_id": 17841400000000000, "permissions": ["instagram_business_basic"]}
/// {"data": [{"access_token": "IGAA...", "user_id": "17841400000000000", "permissions": "instagram_business_basic"}]}
/// ```
///
/// ```
/// use igdisplay_mock::{MockServer, TokenShape};
///
/// let documented = MockServer::builder().token_shape(TokenShape::Wrapped).start()?;
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenShape {
    /// Flat, numeric `user_id`, `permissions` array (what the API sends today).
    #[default]
    Flat,
    /// Wrapped in `data[]`, string `user_id`, comma-separated `permissions` (what the docs show).
    Wrapped,
}

/// How an expired token is reported. Where the recordings and the documentation disagree, the
/// mock sends what was recorded by default and the documented form on request.
///
/// A client should treat both as "log in again": igdisplay classifies any 190 as an invalid
/// token, subcode or not.
///
/// ```
/// use igdisplay_mock::{ExpiredTokenForm, MockOptions, MockServer};
///
/// // A client written against the documentation expects 463: test it against both forms.
/// let options = MockOptions { expired_token: ExpiredTokenForm::Facebook, ..MockOptions::default() };
/// let documented = MockServer::builder().options(options).start()?;
/// let recorded = MockServer::start()?; // ExpiredTokenForm::Instagram
/// # let _ = (documented, recorded);
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiredTokenForm {
    /// graph.instagram.com's form, as recorded three times (2021-2022): code 190 with the
    /// expiry dates in the message and no `error_subcode`.
    #[default]
    Instagram,
    /// graph.facebook.com's form, in the documentation: code 190 with `error_subcode` 463.
    Facebook,
}

/// The keys of Basic Display's `X-App-Usage` header. Both forms carry percentages of the
/// app's budget; a client must read either (igdisplay's `AppUsage` does).
///
/// ```
/// use igdisplay_mock::{MockOptions, MockPlatform, MockServer, UsageKeys};
///
/// let options = MockOptions {
///     platform: MockPlatform::BasicDisplay,
///     usage_keys: UsageKeys::Facebook,
///     ..MockOptions::default()
/// };
/// let mock = MockServer::builder().options(options).start()?;
/// # let _ = mock;
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsageKeys {
    /// `{"call_volume":N,"cpu_time":N}`: the only form recorded from an Instagram host.
    #[default]
    Instagram,
    /// `{"call_count":N,"total_cputime":N,"total_time":N}`: graph.facebook.com's documented form.
    Facebook,
}

/// Behaviour switches of a mock, for [`MockBuilder::options`](crate::MockBuilder::options).
/// Each also has its own builder method.
///
/// ```
/// use igdisplay_mock::MockOptions;
///
/// let options = MockOptions::default();
/// assert_eq!(options.calls_per_hour, Some(200));
/// assert_eq!(options.usage_header_from, 0);
/// assert_eq!(options.media_url_ttl, 3 * 24 * 3600);
/// ```
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// The platform played: its hosts' rules, scopes, field sets, shapes and messages.
    pub platform: MockPlatform,
    /// Graph calls per user per rolling hour of mock time; `None` for no limit. Default 200,
    /// the figure commonly cited for Instagram's per-user budget (reference A.14).
    pub calls_per_hour: Option<u32>,
    /// From this percentage of the limit on, responses carry the usage header. Default 0: the
    /// one recorded from an Instagram host came at 0 %, on an error; the documentation says
    /// "once enough calls have been made", which a higher value plays.
    pub usage_header_from: u8,
    /// The Instagram Login code-exchange shape: the API's flat form by default.
    pub token_shape: TokenShape,
    /// Requests remembered by the journal; older ones are dropped (the total still counts
    /// them). Default 1,000: memory stays flat however long the mock runs.
    pub journal_capacity: usize,
    /// The version used in generated `paging` links and the `instagram-api-version` header.
    /// Default `v21.0`.
    pub link_version: String,
    /// How an expired token is reported (Instagram's recorded form by default).
    pub expired_token: ExpiredTokenForm,
    /// The keys of Basic Display's usage header (the recorded ones by default).
    pub usage_keys: UsageKeys,
    /// How long CDN links stay valid, in seconds of mock time. Default 3 days, about what
    /// recorded links lasted; after that the CDN answers 403 `URL signature expired`.
    pub media_url_ttl: i64,
    /// The sizes of the files the CDN serves (default: the real files, a few kilobytes).
    pub asset_sizes: AssetSizes,
}

/// The sizes of the CDN's files, for measuring large downloads: each photo and the clip are
/// padded to at least these many bytes with deterministic filler that keeps them valid (after
/// the JPEG's end marker; in an MP4 `free` box). 0, or a size below a file's own, leaves it as
/// it is; sizes above [`AssetSizes::MAX`] are clamped to it.
///
/// ```
/// let mock = igdisplay_mock::MockServer::builder()
///     .asset_sizes(igdisplay_mock::AssetSizes { image: 1 << 20, video: 10 << 20 })
///     .start()?;
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssetSizes {
    /// Bytes of each `.jpg`.
    pub image: usize,
    /// Bytes of each `.mp4`.
    pub video: usize,
}

impl AssetSizes {
    /// The largest padded size: 64 MiB.
    pub const MAX: usize = 64 << 20;
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            platform: MockPlatform::default(),
            calls_per_hour: Some(200),
            usage_header_from: 0,
            token_shape: TokenShape::Flat,
            journal_capacity: 1000,
            link_version: "v21.0".to_owned(),
            media_url_ttl: 3 * 24 * HOUR,
            expired_token: ExpiredTokenForm::default(),
            usage_keys: UsageKeys::default(),
            asset_sizes: AssetSizes::default(),
        }
    }
}

/// What a media item is, as the fake renders it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `IMAGE`, a `.jpg` on the CDN.
    Image,
    /// `VIDEO` in the feed: an `.mp4` and a thumbnail.
    Video,
    /// A reel: `media_type` `VIDEO`, `media_product_type` `REELS`, a `/reel/` permalink.
    Reel,
    /// `CAROUSEL_ALBUM`: its children are the images and videos.
    Album,
}

impl Kind {
    /// The kind of a seeded item.
    fn of(seed: SeedKind) -> Self {
        match seed {
            SeedKind::Image => Kind::Image,
            SeedKind::Video => Kind::Video,
            SeedKind::Reel => Kind::Reel,
            SeedKind::Album => Kind::Album,
        }
    }

    /// Whether the item is a video file (with a thumbnail).
    pub(crate) fn is_video(self) -> bool {
        matches!(self, Kind::Video | Kind::Reel)
    }
}

/// An item of an album: it has its own id, file and permalink (as recorded), and borrows the
/// album's timestamp and owner.
#[derive(Clone, Debug)]
pub(crate) struct Child {
    /// The child's media id (above 2^53).
    pub(crate) id: String,
    /// Image or video.
    pub(crate) kind: Kind,
    /// The shortcode of the child's own permalink.
    pub(crate) shortcode: String,
}

/// One item of a user's library, fixed at start from the seed.
#[derive(Clone, Debug)]
pub(crate) struct Media {
    /// The media id (above 2^53, drawn from the seed).
    pub(crate) id: String,
    /// What it is.
    pub(crate) kind: Kind,
    /// The caption, if the post has one (then the field is absent, not `null`).
    pub(crate) caption: Option<String>,
    /// When it was published, Unix seconds: one post every 7 hours back from the start.
    pub(crate) timestamp: i64,
    /// The 11-character code of its permalink.
    pub(crate) shortcode: String,
    /// `like_count` (Instagram Login).
    pub(crate) likes: u64,
    /// `comments_count` (Instagram Login).
    pub(crate) comments: u64,
    /// How Instagram serves it beyond its kind (flags and the shape of its picture).
    pub(crate) traits: Traits,
    /// An album's items, in order; empty for anything else.
    pub(crate) children: Vec<Child>,
}

/// What a post of a seeded user is, before its ids are drawn: the seed's own post at
/// `index`, or past them one of the generated ones (every `album_every`-th an album of an
/// image, a video and an image; every seventh of the rest a video).
struct Planned {
    kind: Kind,
    caption: Option<String>,
    children: Vec<Kind>,
    likes: u64,
    comments: u64,
    traits: Traits,
}

impl Planned {
    fn of(seeded: &crate::seed::SeedUser, index: usize) -> Self {
        if let Some(m) = seeded.media.get(index) {
            return Self {
                kind: Kind::of(m.kind),
                caption: m.caption.clone(),
                children: m.children.iter().map(|k| Kind::of(*k)).collect(),
                likes: m.likes,
                comments: m.comments,
                traits: Traits::of(m),
            };
        }
        let n = index - seeded.media.len();
        let every = seeded.generated.map_or(0, |g| g.album_every);
        let (kind, caption, children) = if every > 0 && n % every == every - 1 {
            (
                Kind::Album,
                format!("Album {n}"),
                vec![Kind::Image, Kind::Video, Kind::Image],
            )
        } else {
            let kind = if n % 7 == 3 { Kind::Video } else { Kind::Image };
            (kind, format!("Post {n}"), Vec::new())
        };
        Self {
            kind,
            caption: Some(caption),
            children,
            likes: 0,
            comments: 0,
            traits: Traits::default(),
        }
    }
}

/// An album's items, each with its id and code drawn in order and indexed under the post.
fn draw_children(
    kinds: Vec<Kind>,
    user: usize,
    index: usize,
    rng: &mut Rng,
    media_index: &mut FastMap<String, MediaRef>,
) -> Vec<Child> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(child, kind)| {
            let id = child_id(rng);
            media_index.insert(id.clone(), MediaRef::Child { user, index, child });
            Child {
                id,
                kind,
                shortcode: rng.token(11),
            }
        })
        .collect()
}

/// A user's stories, an hour apart, the newest an hour before `start`.
fn draw_stories(stories: &[SeedMedia], start: i64, rng: &mut Rng) -> Vec<Media> {
    stories
        .iter()
        .enumerate()
        .map(|(n, story)| Media {
            id: media_id(rng),
            kind: Kind::of(story.kind),
            caption: story.caption.clone(),
            timestamp: start - 3600 * (i64::try_from(n).unwrap_or(i64::MAX / 8) + 1),
            shortcode: rng.token(11),
            likes: 0,
            comments: 0,
            traits: Traits {
                story: true,
                ..Traits::of(story)
            },
            children: Vec::new(),
        })
        .collect()
}

/// A new post's id (above 2^53, as Instagram's are), drawn from the seed's numbers.
fn media_id(rng: &mut Rng) -> String {
    (17_900_000_000_000_000 + rng.below(999_999_999_999_999)).to_string()
}

/// A new album item's id, drawn from the seed's numbers.
fn child_id(rng: &mut Rng) -> String {
    (18_000_000_000_000_000 + rng.below(999_999_999_999_999)).to_string()
}

/// How a seeded item is served beyond its kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traits {
    /// Copyright-flagged: no `media_url`, no `permalink`, as Instagram serves such posts.
    pub(crate) copyright_flagged: bool,
    /// Licensed audio: no `media_url`; the thumbnail and the permalink stay.
    pub(crate) licensed_audio: bool,
    /// A reel kept to the Reels tab: `is_shared_to_feed` is `false`.
    pub(crate) reels_tab_only: bool,
    /// The shape of its picture.
    pub(crate) shape: SeedShape,
    /// A story: `media_product_type` `STORY`, listed on `/stories` while live.
    pub(crate) story: bool,
}

impl Traits {
    /// The traits a seed gives an item.
    pub(crate) fn of(seed: &SeedMedia) -> Self {
        Self {
            copyright_flagged: seed.copyright_flagged,
            licensed_audio: seed.licensed_audio,
            reels_tab_only: seed.reels_tab_only,
            shape: seed.shape,
            story: false,
        }
    }

    /// Whether `media_url` is left out.
    pub(crate) fn without_media_url(self) -> bool {
        self.copyright_flagged || self.licensed_audio
    }
}

/// A seeded Instagram account, with its two ids.
#[derive(Clone, Debug)]
pub(crate) struct User {
    /// The app-scoped id: `id` of `/me`, `user_id` of the code exchange.
    pub(crate) id: String,
    /// The professional account id: `user_id` of `/me` on Instagram Login, and the id in
    /// `paging.next` links (reference A.15: the two differ).
    pub(crate) ig_id: String,
    /// The handle.
    pub(crate) username: String,
    /// The display name (Instagram Login's `name`).
    pub(crate) name: String,
    /// `BUSINESS`, `MEDIA_CREATOR` or `PERSONAL`.
    pub(crate) account_type: String,
    /// Whether the account accepted the app's tester invitation (needed in development mode).
    pub(crate) tester: bool,
    /// `followers_count`.
    pub(crate) followers: u64,
    /// `follows_count`.
    pub(crate) follows: u64,
    /// Instagram Login's `biography`, when the profile has one.
    pub(crate) biography: Option<String>,
    /// Instagram Login's `website`, when the profile has one.
    pub(crate) website: Option<String>,
    /// Newest first.
    pub(crate) media: Vec<Media>,
    /// Stories, newest first, live for 24 hours after their timestamp (Instagram Login's
    /// `/stories` edge); listed only, not nodes of their own here.
    pub(crate) stories: Vec<Media>,
}

/// Where a media id points.
#[derive(Clone, Copy, Debug)]
pub(crate) enum MediaRef {
    /// Item `index` of user `user`'s library.
    Item {
        /// The owner's index in `World::users`.
        user: usize,
        /// The item's index in the owner's library.
        index: usize,
    },
    /// Child `child` of album `index` of user `user`.
    Child {
        /// The owner's index in `World::users`.
        user: usize,
        /// The album's index in the owner's library.
        index: usize,
        /// The child's index in the album.
        child: usize,
    },
}

/// The two lifetimes of a user token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// One hour, from the code exchange; can only be exchanged for a long-lived one.
    ShortLived,
    /// Sixty days; refreshable once a day old.
    LongLived,
}

/// An issued user token and everything the Graph side checks about it.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    /// Whose it is (index in `World::users`).
    pub(crate) user: usize,
    /// Short- or long-lived.
    pub(crate) kind: TokenKind,
    /// When it was issued, mock time (a refresh needs it 24 hours old).
    pub(crate) issued_at: i64,
    /// When it stops working, mock time.
    pub(crate) expires_at: i64,
    /// The scopes granted at authorization (they decide media access and refresh).
    pub(crate) scopes: Vec<String>,
    /// Invalidated before its expiry (a replayed code revokes its whole line): 190/460.
    pub(crate) revoked: bool,
    /// The code this token descends from, so a reused code revokes the whole line.
    pub(crate) code: Option<String>,
}

/// An authorization code the window issued.
#[derive(Clone, Debug)]
pub(crate) struct Code {
    /// Who approved.
    pub(crate) user: usize,
    /// The redirect URI of the authorize request: the exchange must send the same.
    pub(crate) redirect_uri: String,
    /// The scopes approved.
    pub(crate) scopes: Vec<String>,
    /// When it was issued; it is good for one hour.
    pub(crate) issued_at: i64,
    /// Spent: a second exchange is refused and revokes what the first gave.
    pub(crate) used: bool,
}

/// The whole mutable state, behind the server's one mutex: a request is decided under the
/// lock, and nothing waits while holding it.
#[derive(Debug)]
pub(crate) struct World {
    /// The behaviour switches.
    pub(crate) options: MockOptions,
    /// The seed it was built from (kept for resets and cursors).
    pub(crate) seed: Seed,
    /// `http://127.0.0.1:PORT`, for absolute links.
    pub(crate) base: String,
    /// The app: id, secret, name, redirect URIs, callbacks, live mode.
    pub(crate) app: SeedApp,
    /// The accounts, with their libraries.
    pub(crate) users: Vec<User>,
    /// Every media id (items and album children) to where it lives.
    pub(crate) media_index: FastMap<String, MediaRef>,
    /// Issued authorization codes.
    pub(crate) codes: HashMap<String, Code>,
    /// Issued user tokens.
    pub(crate) tokens: FastMap<String, Token>,
    /// The mock's time.
    pub(crate) clock: MockClock,
    /// The seeded generator of ids, codes, tokens and fault rolls.
    pub(crate) rng: Rng,
    /// The key that signs CDN links.
    pub(crate) cdn_key: String,
    /// Each user's Graph calls in the rolling hour, oldest first.
    pub(crate) calls: HashMap<usize, VecDeque<i64>>,
    /// The bounded record of answered requests.
    pub(crate) journal: Journal,
    /// Active faults, first match wins.
    pub(crate) faults: Vec<Fault>,
    /// Active stubs, first match wins.
    pub(crate) stubs: Vec<Stub>,
    /// Successful refreshes by user (index in `users`): a fleet test checks each account was
    /// refreshed exactly once.
    pub(crate) refreshes: HashMap<usize, u64>,
    /// The test root of an HTTPS mock, PEM, for `GET /_mock/ca.pem`.
    pub(crate) root_pem: Option<String>,
    /// The files the CDN serves, at the sizes the options ask (not domain data: kept here
    /// because the answers are made under the world's lock; the type is `assets.rs`'s).
    pub(crate) assets: Assets,
    /// `fields` values already parsed (`fields.rs`).
    pub(crate) fields_cache: FieldsCache,
    /// Header values made once (`headers.rs`).
    pub(crate) headers: HeaderCache,
    /// The comment threads made so far, by media id (`comments.rs`: made on first use).
    pub(crate) threads: FastMap<String, crate::comments::Thread>,
    /// Which media item each comment made so far is on.
    pub(crate) comment_media: FastMap<String, String>,
    /// The webhook fields the app is subscribed to, per user (`/me/subscribed_apps`).
    pub(crate) subscriptions: HashMap<usize, Vec<String>>,
    /// Where Meta's webhook notifications go (the App Dashboard's callback URL), if set.
    pub(crate) webhook_callback: Option<String>,
}

impl World {
    /// Builds the world from `seed`: every id, shortcode and code drawn from the seed's
    /// generator in a fixed order, so the same seed gives the same world.
    pub(crate) fn new(
        seed: Seed,
        options: MockOptions,
        clock: MockClock,
        base: String,
        root_pem: Option<String>,
    ) -> Self {
        let mut rng = Rng::new(seed.seed);
        let start = clock.now();
        let mut users = Vec::with_capacity(seed.users.len());
        let mut media_index = FastMap::default();
        for (u, seeded) in seed.users.iter().enumerate() {
            let id = (17_841_400_000_000_000 + rng.below(99_999_999_999)).to_string();
            let ig_id = (17_841_450_000_000_000 + rng.below(99_999_999_999)).to_string();
            let mut media = Vec::new();
            let generated = seeded.generated.map_or(0, |g| g.count);
            let total = seeded.media.len() + generated;
            for index in 0..total {
                let planned = Planned::of(seeded, index);
                // The draws in this order (the post's id, each item's id and code, the post's
                // code), so a seed's ids stay as they were.
                let media_id = media_id(&mut rng);
                let children = draw_children(planned.children, u, index, &mut rng, &mut media_index);
                media_index.insert(media_id.clone(), MediaRef::Item { user: u, index });
                media.push(Media {
                    id: media_id,
                    kind: planned.kind,
                    caption: planned.caption,
                    // Newest first: one post every 7 hours back from the start.
                    timestamp: start - 3600 - 7 * 3600 * i64::try_from(index).unwrap_or(i64::MAX / 8),
                    shortcode: rng.token(11),
                    likes: planned.likes,
                    comments: planned.comments,
                    traits: planned.traits,
                    children,
                });
            }
            users.push(User {
                id,
                ig_id,
                username: seeded.username.clone(),
                name: seeded.name.clone(),
                account_type: seeded.account_type.clone(),
                tester: seeded.tester,
                followers: seeded.followers,
                follows: seeded.follows,
                biography: seeded.biography.clone(),
                website: seeded.website.clone(),
                media,
                stories: Vec::new(),
            });
        }
        let cdn_key = rng.token(32);
        // Stories draw their ids last, so a seed's other ids stay as they were without them.
        for (user, seeded) in users.iter_mut().zip(&seed.users) {
            user.stories = draw_stories(&seeded.stories, start, &mut rng);
        }
        let journal = Journal::new(options.journal_capacity);
        let assets = Assets::new(options.asset_sizes);
        World {
            app: seed.app.clone(),
            seed,
            options,
            base,
            users,
            media_index,
            codes: HashMap::new(),
            tokens: FastMap::default(),
            clock,
            rng,
            cdn_key,
            calls: HashMap::new(),
            journal,
            faults: Vec::new(),
            stubs: Vec::new(),
            refreshes: HashMap::new(),
            root_pem,
            assets,
            fields_cache: FieldsCache::default(),
            headers: HeaderCache::default(),
            threads: FastMap::default(),
            comment_media: FastMap::default(),
            subscriptions: HashMap::new(),
            webhook_callback: None,
        }
    }

    /// Publishes `post` as `username`'s newest item, at the mock's now. Returns its id, or
    /// `None` for an unknown user.
    pub(crate) fn publish(&mut self, username: &str, post: &SeedMedia) -> Option<String> {
        let user = self.user_by_name(username)?;
        let media_id = media_id(&mut self.rng);
        let children = post
            .children
            .iter()
            .map(|kind| Child {
                id: child_id(&mut self.rng),
                kind: Kind::of(*kind),
                shortcode: self.rng.token(11),
            })
            .collect();
        let media = Media {
            id: media_id.clone(),
            kind: Kind::of(post.kind),
            caption: post.caption.clone(),
            timestamp: self.now(),
            shortcode: self.rng.token(11),
            likes: post.likes,
            comments: post.comments,
            traits: Traits::of(post),
            children,
        };
        self.users[user].media.insert(0, media);
        self.reindex(user);
        Some(media_id)
    }

    /// Deletes the post `id` (an album goes with its items). Returns whether there was one.
    pub(crate) fn delete_media(&mut self, id: &str) -> bool {
        let Some(MediaRef::Item { user, index }) = self.media_index.get(id).copied() else {
            return false;
        };
        self.users[user].media.remove(index);
        self.reindex(user);
        true
    }

    /// Sets the caption of the post `id` (`None`: removes it). Returns whether there was one.
    pub(crate) fn set_caption(&mut self, id: &str, caption: Option<String>) -> bool {
        let Some(MediaRef::Item { user, index }) = self.media_index.get(id).copied() else {
            return false;
        };
        self.users[user].media[index].caption = caption;
        true
    }

    /// Rebuilds the index entries of `user`'s library after it changed.
    fn reindex(&mut self, user: usize) {
        self.media_index.retain(|_, place| match place {
            MediaRef::Item { user: u, .. } | MediaRef::Child { user: u, .. } => *u != user,
        });
        for (index, media) in self.users[user].media.iter().enumerate() {
            self.media_index
                .insert(media.id.clone(), MediaRef::Item { user, index });
            for (child, item) in media.children.iter().enumerate() {
                self.media_index
                    .insert(item.id.clone(), MediaRef::Child { user, index, child });
            }
        }
    }

    /// Back to the seeded state: same ids, no codes or tokens, same clock start.
    pub(crate) fn reset(&mut self, clock: MockClock) {
        let fresh = World::new(
            self.seed.clone(),
            self.options.clone(),
            clock,
            self.base.clone(),
            self.root_pem.clone(),
        );
        *self = fresh;
    }

    /// The mock's current time, Unix seconds: what every expiry compares against.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The user named `username` (case-insensitive, with or without a leading `@`).
    pub(crate) fn user_by_name(&self, username: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.username.eq_ignore_ascii_case(username.trim_start_matches('@')))
    }

    /// A fresh `fbtrace_id` for an error body: `A` and 22 base64url characters, as Meta's look,
    /// drawn from the seeded generator so error bodies repeat with the seed.
    pub(crate) fn fbtrace_id(&mut self) -> String {
        let mut id = Vec::with_capacity(23);
        self.push_fbtrace_id(&mut id);
        crate::rng::ascii(id)
    }

    /// Appends a fresh `fbtrace_id` (see [`World::fbtrace_id`]).
    pub(crate) fn push_fbtrace_id(&mut self, out: &mut Vec<u8>) {
        out.push(b'A');
        self.rng.push_token(out, 22);
    }

    /// A fresh token string in the platform's style.
    pub(crate) fn new_token(&mut self) -> String {
        let prefix = match self.options.platform {
            MockPlatform::BasicDisplay => "IGQVJ",
            MockPlatform::InstagramLogin => "IGAA",
        };
        format!("{prefix}{}", self.rng.alphanumeric(140))
    }

    /// Issues a token of `kind` for `user` with `scopes`, descending from `code` (so that a
    /// replay of the code revokes it), valid from now for an hour or sixty days. Tokens are
    /// never removed: an expired one answers 190/463 with its dates, as Instagram's do.
    pub(crate) fn issue_token(
        &mut self,
        user: usize,
        kind: TokenKind,
        scopes: Vec<String>,
        code: Option<String>,
    ) -> String {
        let token = self.new_token();
        let now = self.now();
        let lifetime = match kind {
            TokenKind::ShortLived => HOUR,
            TokenKind::LongLived => LONG_LIVED_SECONDS,
        };
        self.tokens.insert(
            token.clone(),
            Token {
                user,
                kind,
                issued_at: now,
                expires_at: now + lifetime,
                scopes,
                revoked: false,
                code,
            },
        );
        token
    }
}
