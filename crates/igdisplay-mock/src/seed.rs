//! What the mock starts with: the app, the users and their media. A [`Seed`] is plain data,
//! JSON-serializable (`--seed file.json`), with a [`Seed::demo`] set and a generator for large
//! libraries.
//!
//! A seed says what exists, not what it is called on the wire: ids, shortcodes, tokens and
//! cursors are drawn from the seed's number when the mock starts, so two mocks with the same
//! seed agree to the byte and a test can compare whole responses. Generated libraries
//! ([`Seed::with_generated_user`]) are built when the mock starts, a hundred-odd bytes an item,
//! and rendered as JSON only when asked for.
//!
//! # A seed file
//!
//! `igdisplay-mock --seed shop.json` reads the JSON form of [`Seed`]. The fields named after the
//! example may be left out:
//!
//! ```
//! let seed = igdisplay_mock::Seed::from_json(r#"
//! {
//!   "seed": 7,
//!   "app": {
//!     "id": "684477648739411",
//!     "secret": "a-secret-for-tests",
//!     "name": "My Shop",
//!     "redirect_uris": ["https://shop.example/auth/", "http://127.0.0.1:8788/callback"],
//!     "live_mode": false
//!   },
//!   "users": [
//!     {
//!       "username": "shop_owner", "name": "The Shop", "account_type": "BUSINESS", "tester": true,
//!       "followers": 120, "follows": 3,
//!       "media": [
//!         {"kind": "image", "caption": "Opening day"},
//!         {"kind": "album", "caption": "The team", "children": ["image", "video"]},
//!         {"kind": "reel", "likes": 40, "comments": 2},
//!         {"kind": "image", "copyright_flagged": true},
//!         {"kind": "reel", "licensed_audio": true, "reels_tab_only": true},
//!         {"kind": "image", "shape": "tall"}
//!       ],
//!       "generated": {"count": 500, "album_every": 10}
//!     }
//!   ]
//! }
//! "#)?;
//! assert_eq!(seed.users[0].media.len(), 6);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Optional: the app's `deauthorize_callback`, `data_deletion_callback` and `live_mode`
//! (false: only testers may log in); a user's `followers`, `follows`, `biography`, `website`, `media`, `generated`
//! and `stories` (items as in `media`, an hour apart); an item's `caption`, `children`,
//! `likes`, `comments`, `copyright_flagged`, `licensed_audio`, `reels_tab_only` and `shape`
//! (`square`, `tall`, `wide`).
//! Media are listed newest first; generated items follow them, older still.

use serde::{Deserialize, Serialize};

/// The platform the mock plays: which hosts' rules, scopes, field sets, token shapes and error
/// texts it follows. One mock plays one platform; start two to test both.
///
/// ```
/// use igdisplay_mock::MockPlatform;
///
/// assert_eq!(MockPlatform::parse("Basic_Display"), Some(MockPlatform::BasicDisplay));
/// assert_eq!(MockPlatform::InstagramLogin.as_str(), "instagram-login");
/// assert_eq!(MockPlatform::default(), MockPlatform::InstagramLogin);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MockPlatform {
    /// The Instagram API with Instagram Login.
    #[default]
    InstagramLogin,
    /// The Instagram Basic Display API.
    BasicDisplay,
}

impl MockPlatform {
    /// Parses `instagram-login` or `basic-display`, in any case, with `_` for `-`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "instagram-login" => Some(MockPlatform::InstagramLogin),
            "basic-display" => Some(MockPlatform::BasicDisplay),
            _ => None,
        }
    }

    /// `instagram-login` or `basic-display`.
    pub fn as_str(self) -> &'static str {
        match self {
            MockPlatform::InstagramLogin => "instagram-login",
            MockPlatform::BasicDisplay => "basic-display",
        }
    }
}

/// The registered app: its credentials, its redirect URIs and callbacks, and whether it is
/// live. The demo app's secret starts `mock-app-secret-`; nothing in it is a real credential.
///
/// ```
/// let app = igdisplay_mock::Seed::demo().app;
/// assert!(!app.live_mode, "the demo app is in development mode: only testers may log in");
/// assert!(app.redirect_uris.iter().any(|uri| uri.starts_with("http://127.0.0.1")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedApp {
    /// The Instagram App ID (numeric).
    pub id: String,
    /// The Instagram App Secret.
    pub secret: String,
    /// The name shown in the authorize window.
    pub name: String,
    /// Valid OAuth redirect URIs, matched byte for byte: a trailing slash, a case change or
    /// an extra query parameter makes another URI, as on Instagram.
    pub redirect_uris: Vec<String>,
    /// Where the mock posts deauthorize callbacks.
    #[serde(default)]
    pub deauthorize_callback: Option<String>,
    /// Where the mock posts data-deletion requests.
    #[serde(default)]
    pub data_deletion_callback: Option<String>,
    /// In live mode anyone may authorize; in development mode (the default) only accepted
    /// testers, and others are refused with `Insufficient developer role`.
    #[serde(default)]
    pub live_mode: bool,
}

/// A kind of media item, as a seed names it (`"image"`, `"video"`, `"reel"`, `"album"`).
///
/// ```
/// use igdisplay_mock::SeedKind;
///
/// let kind: SeedKind = serde_json::from_str(r#""reel""#).unwrap();
/// assert_eq!(kind, SeedKind::Reel);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedKind {
    /// A photo.
    Image,
    /// A video with a thumbnail.
    Video,
    /// A reel (a video with a `/reel/` permalink, product type REELS).
    Reel,
    /// An album; its `children` give the items.
    Album,
}

/// A media item of a seeded user. Its id, shortcode and timestamp are not seeded: the mock
/// draws the ids from the seed and spaces the timestamps seven hours apart, newest first.
///
/// ```
/// use igdisplay_mock::{SeedKind, SeedMedia};
///
/// let mut post = SeedMedia::new(SeedKind::Image, Some("Opening day"));
/// post.likes = 40;
/// post.copyright_flagged = true; // served without `media_url` and `permalink`
/// assert_eq!(post.kind, SeedKind::Image);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedMedia {
    /// Its kind.
    pub kind: SeedKind,
    /// The caption, if any.
    #[serde(default)]
    pub caption: Option<String>,
    /// Album items (images and videos), 2 to 10.
    #[serde(default)]
    pub children: Vec<SeedKind>,
    /// Likes.
    #[serde(default)]
    pub likes: u64,
    /// Comments.
    #[serde(default)]
    pub comments: u64,
    /// A copyright-flagged item has no `media_url` and no `permalink`.
    #[serde(default)]
    pub copyright_flagged: bool,
    /// A video whose music is licensed: served with its `thumbnail_url` and `permalink` but
    /// without `media_url`, as Instagram serves such reels.
    #[serde(default)]
    pub licensed_audio: bool,
    /// A reel posted to the Reels tab only: `is_shared_to_feed` is `false`.
    #[serde(default)]
    pub reels_tab_only: bool,
    /// The shape of its picture (an image's file, a video's thumbnail): square by default.
    #[serde(default)]
    pub shape: SeedShape,
}

/// The shape of a seeded picture: the CDN serves a real JPEG of it.
///
/// ```
/// use igdisplay_mock::SeedShape;
///
/// let shape: SeedShape = serde_json::from_str(r#""tall""#).unwrap();
/// assert_eq!(shape, SeedShape::Tall);
/// assert_eq!(SeedShape::default(), SeedShape::Square);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedShape {
    /// 320 × 320 (one of six photos, picked by the item's id).
    #[default]
    Square,
    /// 60 × 960: sixteen times as tall as wide.
    Tall,
    /// 960 × 60: sixteen times as wide as tall.
    Wide,
}

impl SeedMedia {
    /// An item of `kind` with `caption`.
    ///
    /// ```
    /// use igdisplay_mock::{SeedKind, SeedMedia};
    ///
    /// let video = SeedMedia::new(SeedKind::Video, Some("a clip"));
    /// assert!(video.children.is_empty());
    /// ```
    pub fn new(kind: SeedKind, caption: Option<&str>) -> Self {
        Self {
            kind,
            caption: caption.map(str::to_owned),
            children: Vec::new(),
            likes: 0,
            comments: 0,
            copyright_flagged: false,
            licensed_audio: false,
            reels_tab_only: false,
            shape: SeedShape::Square,
        }
    }

    /// An album of `children`.
    ///
    /// ```
    /// use igdisplay_mock::{SeedKind, SeedMedia};
    ///
    /// let album = SeedMedia::album(None, &[SeedKind::Image, SeedKind::Video]);
    /// assert_eq!(album.children.len(), 2);
    /// ```
    pub fn album(caption: Option<&str>, children: &[SeedKind]) -> Self {
        Self {
            children: children.to_vec(),
            ..Self::new(SeedKind::Album, caption)
        }
    }
}

/// A seeded user: one Instagram account that can log in to the app.
///
/// ```
/// let demo = igdisplay_mock::Seed::demo();
/// let jay = demo.users.iter().find(|u| u.username == "jayposiris").unwrap();
/// assert_eq!((jay.account_type.as_str(), jay.tester), ("MEDIA_CREATOR", true));
/// assert_eq!(jay.media.len(), 40);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedUser {
    /// The handle.
    pub username: String,
    /// The display name.
    pub name: String,
    /// `BUSINESS`, `MEDIA_CREATOR` or `PERSONAL`. Instagram Login refuses personal accounts;
    /// Basic Display serves all three.
    pub account_type: String,
    /// An accepted Instagram Tester of the app: while the app is in development mode, only
    /// testers get past the authorize window.
    pub tester: bool,
    /// Followers.
    #[serde(default)]
    pub followers: u64,
    /// Accounts followed.
    #[serde(default)]
    pub follows: u64,
    /// The profile's biography (Instagram Login's `biography`; left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biography: Option<String>,
    /// The profile's website (Instagram Login's `website`; left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Media, newest first; each gets an id, a shortcode and a timestamp when the mock starts
    /// (one post every seven hours, back from the clock's start).
    #[serde(default)]
    pub media: Vec<SeedMedia>,
    /// Additional generated media, after the listed ones: `count` items, every
    /// `album_every`-th an album of 3 (0: no albums).
    #[serde(default)]
    pub generated: Option<Generated>,
    /// Live stories (images and videos), newest first: the first posted an hour before the
    /// clock's start, each next an hour earlier. Instagram Login lists them on
    /// `/{user}/stories` for 24 hours after they were posted, then they are gone; Basic
    /// Display has no stories.
    #[serde(default)]
    pub stories: Vec<SeedMedia>,
}

/// A generated library: `count` items after the listed ones, photos with a video every
/// seventh, and every `album_every`-th item an album of a photo, a video and a photo.
///
/// ```
/// let seed = igdisplay_mock::Seed::demo().with_generated_user("bulk", 1_000, 10);
/// let generated = seed.users.last().and_then(|u| u.generated).unwrap();
/// assert_eq!((generated.count, generated.album_every), (1_000, 10));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    /// How many items (100,000 is fine; the media edge pages through them like any others).
    pub count: usize,
    /// Every n-th item is an album of three (0: none). Albums make a client's children
    /// expansion visible: a page of 100 with ten albums is still one request.
    pub album_every: usize,
}

/// Everything the mock starts with: the seed number, the app and the users. See the module
/// docs for the JSON form of a seed file.
///
/// ```
/// use igdisplay_mock::{MockServer, Seed, SeedKind, SeedMedia};
///
/// let mut seed = Seed::demo();
/// seed.users[0].media.insert(0, SeedMedia::new(SeedKind::Image, Some("the newest post")));
/// let mock = MockServer::builder().seed(seed).start()?;
/// assert_eq!(mock.users()[0].media_count, 41);
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seed {
    /// Drives every id, token, code, cursor and trace id: two mocks with the same seed, asked
    /// the same things in the same order, answer byte for byte alike. Cursors carry it, so a
    /// cursor from a mock with another seed is refused.
    pub seed: u64,
    /// The one app that clients log in to.
    pub app: SeedApp,
    /// The accounts that can log in, in the order `/_mock/state` and the banner list them.
    pub users: Vec<SeedUser>,
}

impl Seed {
    /// The demo set: an app with loopback and example redirect URIs; `jayposiris` (creator,
    /// tester, 40 media: images, videos, reels, albums of 2-10, emoji captions, no caption, an
    /// HTML-looking caption; within its first twelve, a video with licensed audio (no
    /// `media_url`), an album whose first item is a video, a very tall and a very wide photo,
    /// a reel kept off the feed grid; further down, a copyright-flagged photo and video; two
    /// live stories, a photo an hour old and a video two hours old), `cafe_nova` (business,
    /// tester), `sam_personal` (personal, tester: Basic Display only) and `not_a_tester`
    /// (creator, not an accepted tester).
    pub fn demo() -> Self {
        use SeedKind::*;
        let media = demo_library();
        let user =
            |username: &str, name: &str, account_type: &str, tester: bool, media: Vec<SeedMedia>| SeedUser {
                username: username.to_owned(),
                name: name.to_owned(),
                account_type: account_type.to_owned(),
                tester,
                followers: 1520,
                follows: 85,
                biography: None,
                website: None,
                media,
                generated: None,
                stories: Vec::new(),
            };
        Seed {
            seed: 1,
            app: SeedApp {
                id: "684477648739411".to_owned(),
                secret: "mock-app-secret-6c8f2a91d4e7b350".to_owned(),
                name: "igdisplay demo".to_owned(),
                redirect_uris: vec![
                    "http://127.0.0.1:8788/callback".to_owned(),
                    "http://localhost:8788/callback".to_owned(),
                    "https://app.example/auth/".to_owned(),
                ],
                deauthorize_callback: None,
                data_deletion_callback: None,
                live_mode: false,
            },
            users: vec![
                SeedUser {
                    stories: vec![
                        SeedMedia::new(Image, Some("Behind the scenes")),
                        SeedMedia::new(Video, None),
                    ],
                    biography: Some("Photographs of light and water. Lisbon ⇄ everywhere.".to_owned()),
                    ..user("jayposiris", "Jay Posiris", "MEDIA_CREATOR", true, media)
                },
                SeedUser {
                    biography: Some("Bakery & café · open 7–19".to_owned()),
                    website: Some("https://cafe-nova.example/".to_owned()),
                    ..user(
                        "cafe_nova",
                        "Café Nova",
                        "BUSINESS",
                        true,
                        vec![
                            SeedMedia {
                                likes: 212,
                                comments: 9,
                                ..SeedMedia::new(Image, Some("Fresh bread every morning 🥖"))
                            },
                            SeedMedia::album(Some("The new room"), &[Image, Image, Image]),
                            SeedMedia::new(Video, None),
                        ],
                    )
                },
                user(
                    "sam_personal",
                    "Sam",
                    "PERSONAL",
                    true,
                    vec![SeedMedia::new(Image, Some("hello"))],
                ),
                user("not_a_tester", "Not A Tester", "MEDIA_CREATOR", false, Vec::new()),
            ],
        }
    }

    /// Adds a user `username` with a generated library of `count` items, every
    /// `album_every`-th an album (for benchmarks: 100,000 items is fine; they are built when the
    /// mock starts and rendered only when asked for).
    ///
    /// ```
    /// let seed = igdisplay_mock::Seed::demo().with_generated_user("bulk", 10_000, 10);
    /// assert_eq!(seed.users.last().map(|u| u.username.as_str()), Some("bulk"));
    /// ```
    #[must_use]
    pub fn with_generated_user(mut self, username: &str, count: usize, album_every: usize) -> Self {
        self.users.push(SeedUser {
            username: username.to_owned(),
            name: username.to_owned(),
            account_type: "BUSINESS".to_owned(),
            tester: true,
            followers: 0,
            follows: 0,
            biography: None,
            website: None,
            media: Vec::new(),
            generated: Some(Generated { count, album_every }),
            stories: Vec::new(),
        });
        self
    }

    /// Adds a fleet: `count` business accounts, all testers, named `{prefix}000001` and up, each
    /// with `media_each` generated items: many connected accounts at once, for a keeper's
    /// tests and benchmarks. Mint their tokens in one call with
    /// [`MockServer::issue_tokens`](crate::MockServer::issue_tokens).
    ///
    /// ```
    /// let seed = igdisplay_mock::Seed::demo().with_fleet("fleet-", 1_000, 2);
    /// assert_eq!(seed.users.last().map(|u| u.username.as_str()), Some("fleet-001000"));
    /// ```
    #[must_use]
    pub fn with_fleet(mut self, prefix: &str, count: usize, media_each: usize) -> Self {
        for n in 1..=count {
            let username = format!("{prefix}{n:06}");
            self = self.with_generated_user(&username, media_each, 0);
        }
        self
    }

    /// Parses a seed file's JSON: the shape of [`Seed`], as `serde` writes it.
    ///
    /// ```
    /// let demo = igdisplay_mock::Seed::demo();
    /// let json = serde_json::to_string(&demo)?;
    /// let back = igdisplay_mock::Seed::from_json(&json)?;
    /// assert_eq!(back.users.len(), demo.users.len());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the JSON does not describe a seed.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// The demo user's 40 posts: every kind of post a feed must show (a video with licensed
/// audio, an album opening with a video, a very tall and a very wide photo, a reel kept to
/// the Reels tab, two copyright-flagged videos), with captions that test escaping.
fn demo_library() -> Vec<SeedMedia> {
    use SeedKind::*;
    let captions = [
        Some("Sunset at the beach 🌅 #tbt"),
        None,
        Some("Morning coffee ☕️ and a good book 📚"),
        Some("<script>alert('caption')</script> is just text"),
        Some("Trip highlights — Lisbon 🇵🇹"),
        Some("New menu 🍜 @cafe_nova"),
        Some("Line one\nline two & \"quotes\""),
        Some("🎉🎉🎉"),
    ];
    let mut media = Vec::new();
    for i in 0..40usize {
        let caption = captions[i % captions.len()];
        let item = match i % 6 {
            0 | 3 => SeedMedia::new(Image, caption),
            1 => SeedMedia::new(Video, caption),
            // The second album opens with a video: its cover is the video's thumbnail.
            2 if i == 8 => SeedMedia::album(caption, &[Video, Image, Image]),
            2 => SeedMedia::album(
                caption,
                &[
                    Image, Video, Image, Image, Video, Image, Image, Image, Video, Image,
                ][..2 + (i / 6) % 9],
            ),
            4 => SeedMedia::new(Reel, caption),
            _ => SeedMedia::new(Image, caption),
        };
        media.push(SeedMedia {
            likes: (i as u64 * 37) % 500,
            comments: (i as u64 * 7) % 40,
            copyright_flagged: i == 17 || i == 19,
            licensed_audio: i == 7,
            reels_tab_only: i == 10,
            shape: match i {
                9 => SeedShape::Tall,
                11 => SeedShape::Wide,
                _ => SeedShape::Square,
            },
            ..item
        });
    }
    media
}
