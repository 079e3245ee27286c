//! Typed field selection: an enum of fields per node, default and "all" sets per platform,
//! and the `fields=` value, comma-joined without duplicates.

use igdisplay_model::Platform;

/// A field of the User node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserField {
    /// `id`, the app-scoped user id.
    Id,
    /// `user_id`, the professional account id (Instagram Login).
    UserId,
    /// `username`.
    Username,
    /// `name`, the display name (Instagram Login).
    Name,
    /// `account_type`.
    AccountType,
    /// `profile_picture_url` (Instagram Login).
    ProfilePictureUrl,
    /// `followers_count` (Instagram Login).
    FollowersCount,
    /// `follows_count` (Instagram Login).
    FollowsCount,
    /// `media_count`.
    MediaCount,
}

impl UserField {
    /// The field's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            UserField::Id => "id",
            UserField::UserId => "user_id",
            UserField::Username => "username",
            UserField::Name => "name",
            UserField::AccountType => "account_type",
            UserField::ProfilePictureUrl => "profile_picture_url",
            UserField::FollowersCount => "followers_count",
            UserField::FollowsCount => "follows_count",
            UserField::MediaCount => "media_count",
        }
    }

    /// Every field `platform` serves.
    pub fn all(platform: Platform) -> &'static [UserField] {
        use UserField::*;
        match platform {
            Platform::BasicDisplay => &[Id, Username, AccountType, MediaCount],
            _ => &[
                Id,
                UserId,
                Username,
                Name,
                AccountType,
                ProfilePictureUrl,
                FollowersCount,
                FollowsCount,
                MediaCount,
            ],
        }
    }

    /// What a profile page needs: the id, the handle, the account type and the media count
    /// (plus the display name and picture on Instagram Login).
    pub fn defaults(platform: Platform) -> &'static [UserField] {
        use UserField::*;
        match platform {
            Platform::BasicDisplay => &[Id, Username, AccountType, MediaCount],
            _ => &[
                Id,
                UserId,
                Username,
                Name,
                AccountType,
                ProfilePictureUrl,
                MediaCount,
            ],
        }
    }
}

/// A field of the Media node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaField {
    /// `id`.
    Id,
    /// `caption` (not on album children).
    Caption,
    /// `media_type`.
    MediaType,
    /// `media_product_type` (Instagram Login).
    MediaProductType,
    /// `media_url`.
    MediaUrl,
    /// `permalink`.
    Permalink,
    /// `thumbnail_url` (videos).
    ThumbnailUrl,
    /// `shortcode` (Instagram Login).
    Shortcode,
    /// `timestamp`.
    Timestamp,
    /// `username`.
    Username,
    /// `owner` (Instagram Login).
    Owner,
    /// `like_count` (Instagram Login).
    LikeCount,
    /// `comments_count` (Instagram Login).
    CommentsCount,
    /// `is_comment_enabled` (Instagram Login).
    IsCommentEnabled,
    /// `is_shared_to_feed` (reels).
    IsSharedToFeed,
    /// `alt_text` (Instagram Login, images).
    AltText,
}

impl MediaField {
    /// The field's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaField::Id => "id",
            MediaField::Caption => "caption",
            MediaField::MediaType => "media_type",
            MediaField::MediaProductType => "media_product_type",
            MediaField::MediaUrl => "media_url",
            MediaField::Permalink => "permalink",
            MediaField::ThumbnailUrl => "thumbnail_url",
            MediaField::Shortcode => "shortcode",
            MediaField::Timestamp => "timestamp",
            MediaField::Username => "username",
            MediaField::Owner => "owner",
            MediaField::LikeCount => "like_count",
            MediaField::CommentsCount => "comments_count",
            MediaField::IsCommentEnabled => "is_comment_enabled",
            MediaField::IsSharedToFeed => "is_shared_to_feed",
            MediaField::AltText => "alt_text",
        }
    }

    /// Every field `platform` serves on a media item.
    pub fn all(platform: Platform) -> &'static [MediaField] {
        use MediaField::*;
        match platform {
            Platform::BasicDisplay => &[
                Id,
                Caption,
                MediaType,
                MediaUrl,
                Permalink,
                ThumbnailUrl,
                Timestamp,
                Username,
                IsSharedToFeed,
            ],
            _ => &[
                Id,
                Caption,
                MediaType,
                MediaProductType,
                MediaUrl,
                Permalink,
                ThumbnailUrl,
                Shortcode,
                Timestamp,
                Username,
                Owner,
                LikeCount,
                CommentsCount,
                IsCommentEnabled,
                IsSharedToFeed,
                AltText,
            ],
        }
    }

    /// What a gallery needs: id, caption, type, URLs, permalink and timestamp.
    pub fn defaults(_platform: Platform) -> &'static [MediaField] {
        use MediaField::*;
        &[
            Id,
            Caption,
            MediaType,
            MediaUrl,
            ThumbnailUrl,
            Permalink,
            Timestamp,
        ]
    }

    /// The fields album children can carry (no caption, no counts).
    pub fn child_fields() -> &'static [MediaField] {
        use MediaField::*;
        &[Id, MediaType, MediaUrl, ThumbnailUrl, Permalink, Timestamp]
    }
}

/// A `fields=` value under construction: names in first-seen order, no duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldList {
    names: Vec<&'static str>,
    children: Option<Vec<&'static str>>,
}

impl FieldList {
    /// The fields of `fields`, deduplicated.
    pub fn new<I: IntoIterator<Item = &'static str>>(fields: I) -> Self {
        let mut list = Self::default();
        list.extend(fields);
        list
    }

    /// Adds fields not yet present.
    pub fn extend<I: IntoIterator<Item = &'static str>>(&mut self, fields: I) {
        for name in fields {
            if !self.names.contains(&name) {
                self.names.push(name);
            }
        }
    }

    /// Replaces the plain fields with `id` and then `fields` (each once), keeping any
    /// `children{...}` expansion already asked for.
    pub fn replace<I: IntoIterator<Item = &'static str>>(&mut self, fields: I) {
        self.names.clear();
        self.extend(std::iter::once("id").chain(fields));
    }

    /// Adds `children{...}` with `fields` (deduplicated), so album items come in the same
    /// response: one request per page, not one per album.
    pub fn expand_children<I: IntoIterator<Item = &'static str>>(&mut self, fields: I) {
        let mut children = FieldList::new(fields);
        children.extend(["id"]);
        self.children = Some(children.names);
    }

    /// Whether `children{...}` is requested.
    pub fn has_children(&self) -> bool {
        self.children.is_some()
    }

    /// The wire value, e.g. `id,caption,children{id,media_url}`.
    pub fn to_param(&self) -> String {
        let mut out = self.names.join(",");
        if let Some(children) = &self.children {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str("children{");
            out.push_str(&children.join(","));
            out.push('}');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_comma_joined_once_each_in_first_seen_order() {
        let mut list = FieldList::new(["id", "caption", "id", "media_url"]);
        list.extend(["caption", "timestamp"]);
        assert_eq!(list.to_param(), "id,caption,media_url,timestamp");
        list.expand_children(MediaField::child_fields().iter().map(|f| f.as_str()));
        assert_eq!(
            list.to_param(),
            "id,caption,media_url,timestamp,children{id,media_type,media_url,thumbnail_url,permalink,timestamp}"
        );
        assert!(list.has_children());
        list.replace(["username", "id"]);
        assert_eq!(
            list.to_param(),
            "id,username,children{id,media_type,media_url,thumbnail_url,permalink,timestamp}"
        );
    }

    #[test]
    fn platform_sets_only_name_fields_the_platform_serves() {
        let basic: Vec<_> = UserField::all(Platform::BasicDisplay)
            .iter()
            .map(|f| f.as_str())
            .collect();
        assert_eq!(basic, ["id", "username", "account_type", "media_count"]);
        assert!(UserField::all(Platform::InstagramLogin).contains(&UserField::FollowersCount));
        assert!(!MediaField::all(Platform::BasicDisplay).contains(&MediaField::LikeCount));
        for platform in Platform::ALL {
            for field in UserField::defaults(platform) {
                assert!(UserField::all(platform).contains(field));
            }
            for field in MediaField::defaults(platform) {
                assert!(MediaField::all(platform).contains(field));
            }
        }
        assert!(!MediaField::child_fields().contains(&MediaField::Caption));
    }
}
