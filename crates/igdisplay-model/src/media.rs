//! The Media node (`/{media-id}`) and album children, with the fields of both platforms.

use crate::{ListResponse, MediaId, MediaProductType, MediaType, Timestamp, UnknownFields, UserId};
use serde::{Deserialize, Serialize};

/// An image, video, reel or album, or one item of an album.
///
/// Every field but `id` is optional: Instagram returns only the requested fields, omits
/// `caption` on album children, `media_url` on copyright-flagged items, `like_count` when likes
/// are hidden, and `thumbnail_url` on anything but videos. Fields this version does not know
/// are kept in [`extra`](Self::extra) and written back when serialized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Media {
    /// The media id.
    pub id: MediaId,
    /// The caption, UTF-8 with emoji; never present on album children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Image, video or album.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Instagram Login: feed, story, reels or ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_product_type: Option<MediaProductType>,
    /// A signed CDN URL that expires (see the `oe=` parameter); re-fetch the node for a fresh one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    /// The public page of the post, `https://www.instagram.com/p/{shortcode}/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
    /// Videos only: a signed URL of the cover image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// Instagram Login: the shortcode of the permalink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcode: Option<String>,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The owner's username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Instagram Login: the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Instagram Login: number of likes, absent when the owner hides them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like_count: Option<u64>,
    /// Instagram Login: number of comments, replies included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments_count: Option<u64>,
    /// Instagram Login: whether comments are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_comment_enabled: Option<bool>,
    /// Reels only: whether the reel may appear in the feed as well as the Reels tab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_shared_to_feed: Option<bool>,
    /// Instagram Login: the alternative text of an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    /// Instagram Login: number of views, where Instagram reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_count: Option<u64>,
    /// The album's items, when requested by field expansion (`children{...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<ListResponse<Media>>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, default, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

impl Media {
    /// A media item with only an id.
    pub fn new(id: impl Into<MediaId>) -> Self {
        Self {
            id: id.into(),
            caption: None,
            media_type: None,
            media_product_type: None,
            media_url: None,
            permalink: None,
            thumbnail_url: None,
            shortcode: None,
            timestamp: None,
            username: None,
            owner: None,
            like_count: None,
            comments_count: None,
            is_comment_enabled: None,
            is_shared_to_feed: None,
            alt_text: None,
            view_count: None,
            children: None,
            extra: UnknownFields::default(),
        }
    }

    /// Whether this is an album.
    pub fn is_album(&self) -> bool {
        self.media_type == Some(MediaType::CarouselAlbum)
    }

    /// The album items fetched by field expansion; empty when none were requested.
    pub fn children(&self) -> &[Media] {
        self.children.as_ref().map_or(&[], |list| &list.data)
    }

    /// The permalink, only when it is a page of Instagram's site (`https://www.instagram.com/…`):
    /// what a site may render as a link. Anything else an answer names (`javascript:`, another
    /// host, plain http) is dropped.
    ///
    /// ```
    /// use igdisplay_model::Media;
    ///
    /// let mut media = Media::new("1");
    /// media.permalink = Some("https://www.instagram.com/p/Cx1/".into());
    /// assert_eq!(media.instagram_permalink(), Some("https://www.instagram.com/p/Cx1/"));
    /// media.permalink = Some("javascript:alert(1)".into());
    /// assert_eq!(media.instagram_permalink(), None);
    /// ```
    pub fn instagram_permalink(&self) -> Option<&str> {
        self.permalink.as_deref().filter(|link| is_instagram_page(link))
    }
}

/// Whether `url` is a page of Instagram's site: `https://www.instagram.com/` and a path, with
/// nothing that could make a browser read it otherwise (whitespace, control characters,
/// backslashes, quotes, angle brackets).
pub fn is_instagram_page(url: &str) -> bool {
    url.strip_prefix("https://www.instagram.com/")
        .is_some_and(|rest| {
            rest.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '\\' | '"' | '\'' | '<' | '>' | '`'))
        })
}

/// The answer of `GET /?ids=a,b&fields=...`: each requested media item keyed by its id (a
/// batch read, one request for up to 50 items).
pub type MediaByIds = std::collections::BTreeMap<MediaId, Media>;

/// `owner` of a media item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Owner {
    /// The owner's Instagram user id.
    pub id: UserId,
}
