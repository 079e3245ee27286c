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

    /// Whether this is a video (a reel included: `media_type` `VIDEO`, whatever its
    /// `media_product_type`).
    pub fn is_video(&self) -> bool {
        self.media_type == Some(MediaType::Video)
    }

    /// The link of the picture that shows this post: the one answer for the mirror and a
    /// site's tiles.
    ///
    /// - An image (or an item of unknown type): its `media_url`.
    /// - A video or reel: its `thumbnail_url` (its `media_url` is the video), also when Meta
    ///   left the `media_url` out (copyrighted or licensed audio).
    /// - An album: the picture of its first item that has one (the items come by field
    ///   expansion), else the album's own `thumbnail_url`. Never the album's `media_url`,
    ///   which is its first item's and may be a video.
    ///
    /// ```
    /// use igdisplay_model::{Media, MediaType};
    ///
    /// let mut reel = Media::new("1");
    /// reel.media_type = Some(MediaType::Video);
    /// reel.media_url = Some("https://scontent.cdninstagram.com/v/reel.mp4".into());
    /// reel.thumbnail_url = Some("https://scontent.cdninstagram.com/v/reel.jpg".into());
    /// assert_eq!(reel.picture_url(), Some("https://scontent.cdninstagram.com/v/reel.jpg"));
    ///
    /// let mut album = Media::new("2");
    /// album.media_type = Some(MediaType::CarouselAlbum);
    /// album.media_url = reel.media_url.clone(); // its first item's: a video
    /// album.children = Some(igdisplay_model::ListResponse::new(vec![reel]));
    /// assert_eq!(album.picture_url(), Some("https://scontent.cdninstagram.com/v/reel.jpg"));
    /// ```
    pub fn picture_url(&self) -> Option<&str> {
        match self.media_type {
            Some(MediaType::Video) => self.thumbnail_url.as_deref(),
            Some(MediaType::CarouselAlbum) => self
                .children()
                .iter()
                .find_map(Media::picture_url)
                .or(self.thumbnail_url.as_deref()),
            _ => self.media_url.as_deref(),
        }
    }

    /// Whether this item plays as a video here, and from where.
    ///
    /// ```
    /// use igdisplay_model::{Media, MediaType, Playback};
    ///
    /// let mut video = Media::new("1");
    /// video.media_type = Some(MediaType::Video);
    /// video.thumbnail_url = Some("https://scontent.cdninstagram.com/v/poster.jpg".into());
    /// assert!(matches!(video.playback(), Playback::Unplayable { .. })); // no media_url
    /// video.media_url = Some("https://scontent.cdninstagram.com/v/clip.mp4".into());
    /// assert_eq!(video.playback(), Playback::Playable { url: "https://scontent.cdninstagram.com/v/clip.mp4" });
    /// assert_eq!(Media::new("2").playback(), Playback::Still);
    /// ```
    pub fn playback(&self) -> Playback<'_> {
        match (self.is_video(), self.media_url.as_deref()) {
            (false, _) => Playback::Still,
            (true, Some(url)) => Playback::Playable { url },
            (true, None) => Playback::Unplayable {
                reason: "Instagram sends no video file for this post (licensed or copyrighted audio): watch it on Instagram",
            },
        }
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

/// Whether a media item plays as a video ([`Media::playback`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Playback<'a> {
    /// Not a video: an image, or an album (its items answer for themselves).
    Still,
    /// A video or reel, from this link.
    Playable {
        /// Its `media_url`.
        url: &'a str,
    },
    /// A video Meta sent without its file: show its picture and a link to Instagram.
    Unplayable {
        /// Why, in a sentence.
        reason: &'static str,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListResponse;

    const PICTURE: &str = "https://scontent.cdninstagram.com/v/picture.jpg";
    const VIDEO: &str = "https://scontent.cdninstagram.com/v/clip.mp4";

    fn item(
        kind: MediaType,
        product: MediaProductType,
        media_url: Option<&str>,
        thumbnail: Option<&str>,
    ) -> Media {
        let mut media = Media::new("1");
        media.media_type = Some(kind);
        media.media_product_type = Some(product);
        media.media_url = media_url.map(str::to_owned);
        media.thumbnail_url = thumbnail.map(str::to_owned);
        media
    }

    fn album(children: Vec<Media>) -> Media {
        let mut album = item(
            MediaType::CarouselAlbum,
            MediaProductType::Feed,
            Some(VIDEO),
            None,
        );
        album.children = Some(ListResponse::new(children));
        album
    }

    #[test]
    fn every_kind_of_post_has_one_answer_for_its_picture_and_its_playback() {
        use MediaProductType::{Feed, Reels, Story};
        let image = || item(MediaType::Image, Feed, Some(PICTURE), None);
        let video = || item(MediaType::Video, Feed, Some(VIDEO), Some(PICTURE));
        let cases: Vec<(&str, Media, Option<&str>, Playback<'_>)> = vec![
            ("image", image(), Some(PICTURE), Playback::Still),
            ("video", video(), Some(PICTURE), Playback::Playable { url: VIDEO }),
            (
                "reel",
                item(MediaType::Video, Reels, Some(VIDEO), Some(PICTURE)),
                Some(PICTURE),
                Playback::Playable { url: VIDEO },
            ),
            (
                "video without its file (licensed audio)",
                item(MediaType::Video, Reels, None, Some(PICTURE)),
                Some(PICTURE),
                Playback::Unplayable { reason: "" },
            ),
            (
                "video without a thumbnail",
                item(MediaType::Video, Feed, Some(VIDEO), None),
                None,
                Playback::Playable { url: VIDEO },
            ),
            (
                "image story",
                item(MediaType::Image, Story, Some(PICTURE), None),
                Some(PICTURE),
                Playback::Still,
            ),
            (
                "video story",
                item(MediaType::Video, Story, Some(VIDEO), Some(PICTURE)),
                Some(PICTURE),
                Playback::Playable { url: VIDEO },
            ),
            (
                "album, an image first",
                album(vec![image(), video()]),
                Some(PICTURE),
                Playback::Still,
            ),
            (
                "album, a video first",
                album(vec![video(), image()]),
                Some(PICTURE),
                Playback::Still,
            ),
            (
                "album without its items",
                album(Vec::new()),
                None,
                Playback::Still,
            ),
            ("unknown type", Media::new("9"), None, Playback::Still),
        ];
        for (name, media, picture, playback) in &cases {
            assert_eq!(media.picture_url(), *picture, "{name}");
            match (media.playback(), playback) {
                (Playback::Unplayable { reason }, Playback::Unplayable { .. }) => assert!(!reason.is_empty()),
                (got, want) => assert_eq!(got, *want, "{name}"),
            }
        }
        // Never the video file as a picture, whatever the kind.
        assert!(
            cases
                .iter()
                .all(|(_, media, _, _)| media.picture_url() != Some(VIDEO))
        );
    }
}
