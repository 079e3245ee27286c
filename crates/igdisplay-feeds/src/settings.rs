//! [`FeedSettings`]: what a feed shows and to whom, as an operator sets it through the admin
//! API. Stored with the feed as JSON and applied on every render, so a change shows on the
//! next read without a sync.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A kind of post a feed may show. Reels are videos (Instagram lists them as `VIDEO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A photo.
    Image,
    /// A video or a reel.
    Video,
    /// An album (`CAROUSEL_ALBUM`).
    Album,
}

impl MediaKind {
    /// The kind of a post of Instagram's `media_type`; `None` for a type this version does not
    /// know (such a post is never shown).
    pub fn of(media_type: &str) -> Option<Self> {
        match media_type {
            "IMAGE" => Some(MediaKind::Image),
            "VIDEO" => Some(MediaKind::Video),
            "CAROUSEL_ALBUM" => Some(MediaKind::Album),
            _ => None,
        }
    }
}

/// The most posts a feed shows.
pub const MAX_POSTS: u32 = 200;
/// The most words, ids or origins in one list.
pub const MAX_LIST: usize = 100;
/// The longest word, id or origin.
pub const MAX_ENTRY: usize = 200;
/// The shortest sync interval a feed may ask for.
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// The longest sync interval a feed may ask for.
pub const MAX_SYNC_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// A feed's settings (Behold's and Curator's, point by point). Every field has a default, so
/// `{}` is a feed of the latest 24 posts of every kind, shown on any site.
///
/// ```
/// use igdisplay_feeds::{FeedSettings, MediaKind};
///
/// let settings: FeedSettings = serde_json::from_str(
///     r##"{"media_types": ["image", "album"], "exclude_words": ["#ad"], "max_posts": 12,
///         "allowed_origins": ["https://cafe-nova.example"]}"##,
/// )?;
/// settings.validate()?;
/// assert!(settings.shows_kind(MediaKind::Album) && !settings.shows_kind(MediaKind::Video));
/// assert!(!settings.shows_caption(Some("New menu! #AD")));
/// assert!(settings.allows_origin("https://cafe-nova.example"));
/// assert!(!settings.allows_origin("https://elsewhere.example"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedSettings {
    /// The kinds of post shown (all by default).
    pub media_types: Vec<MediaKind>,
    /// When not empty, a post is shown only if its caption holds one of these (letter case
    /// aside; `#sale` matches `#Sale`).
    pub include_words: Vec<String>,
    /// A post whose caption holds one of these is not shown.
    pub exclude_words: Vec<String>,
    /// Media ids never shown.
    pub hidden: Vec<String>,
    /// Media ids shown first, in this order (when the account still has them).
    pub pinned: Vec<String>,
    /// The most posts shown, pinned ones included (1 to [`MAX_POSTS`]).
    pub max_posts: u32,
    /// The origins (`https://site.example`, with a port where it is not the default) whose
    /// pages may read the feed; empty: any page.
    pub allowed_origins: Vec<String>,
    /// The shortest time between two syncs of the account, in seconds (a busy account is
    /// synced no more often).
    pub sync_min_seconds: u64,
    /// The longest time between two syncs, in seconds (a quiet account is synced at least
    /// this often).
    pub sync_max_seconds: u64,
    /// The Instagram username (without `@`) of the only account that may connect the feed:
    /// a login as anyone else through its connect link is refused and leaves the link
    /// usable, so a stranger who got hold of the link before its owner binds nothing. `None`:
    /// whoever opens the link first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_username: Option<String>,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            media_types: vec![MediaKind::Image, MediaKind::Video, MediaKind::Album],
            include_words: Vec::new(),
            exclude_words: Vec::new(),
            hidden: Vec::new(),
            pinned: Vec::new(),
            max_posts: 24,
            allowed_origins: Vec::new(),
            sync_min_seconds: 5 * 60,
            sync_max_seconds: 6 * 3600,
            connect_username: None,
        }
    }
}

/// Settings that cannot be kept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsError {
    /// `max_posts` is 0 or over [`MAX_POSTS`].
    #[error("max_posts must be from 1 to {MAX_POSTS}, not {0}")]
    MaxPosts(u32),
    /// A list is longer than [`MAX_LIST`], or one of its entries empty or longer than
    /// [`MAX_ENTRY`].
    #[error("{0} holds too many entries, an empty one or one longer than {MAX_ENTRY} characters")]
    List(&'static str),
    /// An allowed origin is not `scheme://host[:port]`.
    #[error("`{0}` is not an origin: write it as https://host or https://host:port, nothing after")]
    Origin(String),
    /// No kind of post would be shown.
    #[error("media_types is empty: the feed would show nothing")]
    NoKinds,
    /// The sync bounds are outside a minute to a week, or the shorter is the longer.
    #[error(
        "sync_min_seconds and sync_max_seconds must lie from 60 to 604800, the first no more than the second"
    )]
    SyncBounds,
    /// `connect_username` is not an Instagram username (1 to 30 letters, digits, `.` and `_`).
    #[error("connect_username must be an Instagram username: 1 to 30 letters, digits, . and _")]
    Username,
}

impl FeedSettings {
    /// Checks every bound.
    ///
    /// # Errors
    ///
    /// The first [`SettingsError`] found.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_posts == 0 || self.max_posts > MAX_POSTS {
            return Err(SettingsError::MaxPosts(self.max_posts));
        }
        if self.media_types.is_empty() {
            return Err(SettingsError::NoKinds);
        }
        for (name, list) in [
            ("include_words", &self.include_words),
            ("exclude_words", &self.exclude_words),
            ("hidden", &self.hidden),
            ("pinned", &self.pinned),
            ("allowed_origins", &self.allowed_origins),
        ] {
            let bad_entry = |entry: &String| entry.trim().is_empty() || entry.chars().count() > MAX_ENTRY;
            if list.len() > MAX_LIST || list.iter().any(bad_entry) {
                return Err(SettingsError::List(name));
            }
        }
        if let Some(origin) = self.allowed_origins.iter().find(|o| !is_origin(o)) {
            return Err(SettingsError::Origin(origin.clone()));
        }
        let (min, max) = (self.sync_min_seconds, self.sync_max_seconds);
        let bounds = MIN_SYNC_INTERVAL.as_secs()..=MAX_SYNC_INTERVAL.as_secs();
        if !bounds.contains(&min) || !bounds.contains(&max) || min > max {
            return Err(SettingsError::SyncBounds);
        }
        if let Some(username) = &self.connect_username {
            let allowed = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_';
            if username.is_empty() || username.len() > 30 || !username.chars().all(allowed) {
                return Err(SettingsError::Username);
            }
        }
        Ok(())
    }

    /// Whether the account named `username` may connect the feed (letter case aside, as
    /// Instagram's usernames are).
    pub fn may_connect(&self, username: Option<&str>) -> bool {
        match (&self.connect_username, username) {
            (None, _) => true,
            (Some(wanted), Some(got)) => wanted.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
        }
    }

    /// Whether posts of `kind` are shown.
    pub fn shows_kind(&self, kind: MediaKind) -> bool {
        self.media_types.contains(&kind)
    }

    /// Whether a post with `caption` passes the caption filters.
    pub fn shows_caption(&self, caption: Option<&str>) -> bool {
        let caption = caption.unwrap_or("").to_lowercase();
        let holds = |word: &String| caption.contains(&word.to_lowercase());
        (self.include_words.is_empty() || self.include_words.iter().any(holds))
            && !self.exclude_words.iter().any(holds)
    }

    /// Whether a page of `origin` (a request's `Origin` header) may read the feed.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty()
            || self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    /// `wanted` (the account's own pace) kept within the feed's sync bounds.
    pub fn sync_interval(&self, wanted: Duration) -> Duration {
        wanted.clamp(
            Duration::from_secs(self.sync_min_seconds),
            Duration::from_secs(self.sync_max_seconds.max(self.sync_min_seconds)),
        )
    }
}

/// Whether `text` is `http(s)://host[:port]` and nothing more.
fn is_origin(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_show_everything_to_everyone() {
        let settings: FeedSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, FeedSettings::default());
        settings.validate().unwrap();
        assert!(settings.allows_origin("https://anywhere.example"));
        assert!(settings.shows_caption(None));
    }

    #[test]
    fn every_bound_is_checked() {
        let bad = |change: fn(&mut FeedSettings)| {
            let mut settings = FeedSettings::default();
            change(&mut settings);
            settings.validate().unwrap_err()
        };
        assert_eq!(bad(|s| s.max_posts = 0), SettingsError::MaxPosts(0));
        assert_eq!(bad(|s| s.max_posts = 201), SettingsError::MaxPosts(201));
        assert_eq!(bad(|s| s.media_types.clear()), SettingsError::NoKinds);
        assert_eq!(
            bad(|s| s.exclude_words = vec![" ".into()]),
            SettingsError::List("exclude_words")
        );
        assert_eq!(
            bad(|s| s.hidden = vec!["1".into(); 101]),
            SettingsError::List("hidden")
        );
        assert_eq!(
            bad(|s| s.pinned = vec!["9".repeat(201)]),
            SettingsError::List("pinned")
        );
        for origin in [
            "cafe.example",
            "https://cafe.example/",
            "https://cafe.example/page",
            "ftp://x",
            "https://",
            "https://a:b",
        ] {
            let settings = FeedSettings {
                allowed_origins: vec![origin.into()],
                ..FeedSettings::default()
            };
            assert_eq!(
                settings.validate(),
                Err(SettingsError::Origin(origin.into())),
                "{origin}"
            );
        }
        assert_eq!(bad(|s| s.sync_min_seconds = 59), SettingsError::SyncBounds);
        assert_eq!(
            bad(|s| s.sync_max_seconds = 8 * 86_400),
            SettingsError::SyncBounds
        );
        assert_eq!(
            bad(|s| (s.sync_min_seconds, s.sync_max_seconds) = (3600, 600)),
            SettingsError::SyncBounds
        );
        for username in ["", "@cafe_nova", "cafe nova", "x".repeat(31).as_str(), "café"] {
            let settings = FeedSettings {
                connect_username: Some(username.to_owned()),
                ..FeedSettings::default()
            };
            assert_eq!(settings.validate(), Err(SettingsError::Username), "{username}");
        }
        assert!(
            serde_json::from_str::<FeedSettings>(r#"{"max_post": 3}"#).is_err(),
            "a misspelt field is refused"
        );
    }

    #[test]
    fn only_the_named_account_may_connect_letter_case_aside() {
        let open = FeedSettings::default();
        assert!(open.may_connect(Some("anyone")) && open.may_connect(None));
        let named = FeedSettings {
            connect_username: Some("Cafe_Nova".into()),
            ..FeedSettings::default()
        };
        assert!(named.validate().is_ok());
        assert!(named.may_connect(Some("cafe_nova")));
        assert!(!named.may_connect(Some("jayposiris")));
        assert!(
            !named.may_connect(None),
            "an account whose name Instagram did not say"
        );
    }

    #[test]
    fn captions_are_matched_without_letter_case() {
        let settings = FeedSettings {
            include_words: vec!["#Menu".into(), "coffee".into()],
            exclude_words: vec!["#ad".into()],
            ..FeedSettings::default()
        };
        assert!(settings.shows_caption(Some("The new #menu is here")));
        assert!(settings.shows_caption(Some("COFFEE time")));
        assert!(!settings.shows_caption(Some("Coffee #AD")));
        assert!(!settings.shows_caption(Some("Tea")));
        assert!(!settings.shows_caption(None));
    }

    #[test]
    fn origins_match_exactly_with_a_port_where_one_is_named() {
        let settings = FeedSettings {
            allowed_origins: vec!["https://cafe.example".into(), "http://127.0.0.1:8080".into()],
            ..FeedSettings::default()
        };
        settings.validate().unwrap();
        assert!(settings.allows_origin("https://CAFE.example"));
        assert!(settings.allows_origin("http://127.0.0.1:8080"));
        assert!(!settings.allows_origin("http://127.0.0.1:8081"));
        assert!(!settings.allows_origin("https://cafe.example.evil.example"));
        assert!(!settings.allows_origin("null"));
    }

    #[test]
    fn the_accounts_pace_is_kept_within_the_bounds() {
        let settings = FeedSettings::default();
        assert_eq!(
            settings.sync_interval(Duration::from_secs(10)),
            Duration::from_secs(300)
        );
        assert_eq!(
            settings.sync_interval(Duration::from_secs(86_400)),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(
            settings.sync_interval(Duration::from_secs(900)),
            Duration::from_secs(900)
        );
    }
}
