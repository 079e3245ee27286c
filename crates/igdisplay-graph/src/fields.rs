//! Typed field selection: an enum of fields per node, default and "all" sets per platform,
//! and the `fields=` value, comma-joined without duplicates.

use igdisplay_model::Platform;
use std::fmt;

/// A field of a node: its name on the wire and the sets each platform serves.
pub trait Field: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// The field's name on the wire.
    fn as_str(self) -> &'static str;

    /// Every field `platform` serves on this node.
    fn all(platform: Platform) -> &'static [Self];

    /// The fields a request asks for unless told otherwise.
    fn defaults(platform: Platform) -> &'static [Self];
}

/// A closed enum of wire names: the variants, `as_str`, `VARIANTS`, and [`Field`] from the
/// per-platform sets given after the variants.
macro_rules! field_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
        all: |$all_platform:ident| $all:expr;
        defaults: |$def_platform:ident| $defaults:expr;
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every field, in declaration order.
            pub const VARIANTS: &'static [$name] = &[$($name::$variant),+];

            /// The field's name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// Every field `platform` serves.
            pub fn all(platform: Platform) -> &'static [$name] {
                <$name as Field>::all(platform)
            }

            /// The fields requested unless told otherwise.
            pub fn defaults(platform: Platform) -> &'static [$name] {
                <$name as Field>::defaults(platform)
            }
        }

        impl Field for $name {
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }

            #[allow(unused_imports)]
            fn all($all_platform: Platform) -> &'static [$name] {
                use $name::*;
                $all
            }

            #[allow(unused_imports)]
            fn defaults($def_platform: Platform) -> &'static [$name] {
                use $name::*;
                $defaults
            }
        }
    };
}

field_enum! {
    /// A field of the User node.
    UserField {
        /// `id`, the app-scoped user id.
        Id => "id",
        /// `user_id`, the professional account id (Instagram Login).
        UserId => "user_id",
        /// `username`.
        Username => "username",
        /// `name`, the display name (Instagram Login).
        Name => "name",
        /// `account_type`.
        AccountType => "account_type",
        /// `profile_picture_url` (Instagram Login).
        ProfilePictureUrl => "profile_picture_url",
        /// `followers_count` (Instagram Login).
        FollowersCount => "followers_count",
        /// `follows_count` (Instagram Login).
        FollowsCount => "follows_count",
        /// `media_count`.
        MediaCount => "media_count",
        /// `biography` (Instagram Login; documented, not in every answer).
        Biography => "biography",
        /// `website` (Instagram Login; documented, not in every answer).
        Website => "website",
    }
    all: |platform| match platform {
        Platform::BasicDisplay => &[Id, Username, AccountType, MediaCount],
        _ => UserField::VARIANTS,
    };
    // What a profile page needs: the id, the handle, the account type and the media count
    // (plus the display name and picture on Instagram Login).
    defaults: |platform| match platform {
        Platform::BasicDisplay => &[Id, Username, AccountType, MediaCount],
        _ => &[Id, UserId, Username, Name, AccountType, ProfilePictureUrl, MediaCount],
    };
}

field_enum! {
    /// A field of the Media node.
    MediaField {
        /// `id`.
        Id => "id",
        /// `caption` (not on album children).
        Caption => "caption",
        /// `media_type`.
        MediaType => "media_type",
        /// `media_product_type` (Instagram Login).
        MediaProductType => "media_product_type",
        /// `media_url`.
        MediaUrl => "media_url",
        /// `permalink`.
        Permalink => "permalink",
        /// `thumbnail_url` (videos).
        ThumbnailUrl => "thumbnail_url",
        /// `shortcode` (Instagram Login).
        Shortcode => "shortcode",
        /// `timestamp`.
        Timestamp => "timestamp",
        /// `username`.
        Username => "username",
        /// `owner` (Instagram Login).
        Owner => "owner",
        /// `like_count` (Instagram Login).
        LikeCount => "like_count",
        /// `comments_count` (Instagram Login).
        CommentsCount => "comments_count",
        /// `is_comment_enabled` (Instagram Login).
        IsCommentEnabled => "is_comment_enabled",
        /// `is_shared_to_feed` (reels).
        IsSharedToFeed => "is_shared_to_feed",
        /// `alt_text` (Instagram Login, images).
        AltText => "alt_text",
    }
    all: |platform| match platform {
        Platform::BasicDisplay => &[
            Id, Caption, MediaType, MediaUrl, Permalink, ThumbnailUrl, Timestamp, Username, IsSharedToFeed,
        ],
        _ => MediaField::VARIANTS,
    };
    // What a gallery needs: id, caption, type, URLs, permalink and timestamp.
    defaults: |_platform| &[Id, Caption, MediaType, MediaUrl, ThumbnailUrl, Permalink, Timestamp];
}

field_enum! {
    /// A field of a comment or a reply (Instagram Login; reference C.2).
    CommentField {
        /// `id`.
        Id => "id",
        /// `text`.
        Text => "text",
        /// `timestamp`.
        Timestamp => "timestamp",
        /// `username`, the commenter's.
        Username => "username",
        /// `from`, the commenter's id and username.
        From => "from",
        /// `like_count`.
        LikeCount => "like_count",
        /// `hidden`.
        Hidden => "hidden",
        /// `parent_id`, on a reply.
        ParentId => "parent_id",
        /// `media`, the media item commented on.
        Media => "media",
    }
    all: |platform| match platform {
        Platform::BasicDisplay => &[Id],
        _ => CommentField::VARIANTS,
    };
    // What a moderation page shows: who wrote what and when, its likes, whether it is hidden,
    // and whether it is a reply.
    defaults: |platform| match platform {
        Platform::BasicDisplay => &[Id],
        _ => &[Id, Text, Timestamp, Username, LikeCount, Hidden, ParentId],
    };
}

impl MediaField {
    /// The fields album children can carry (no caption, no counts).
    pub fn child_fields() -> &'static [MediaField] {
        use MediaField::*;
        &[Id, MediaType, MediaUrl, ThumbnailUrl, Permalink, Timestamp]
    }
}

/// A `fields=` value under construction: names in first-seen order, no duplicates, and an
/// optional expansion of one edge (`children{...}` of an album, `replies{...}` of a comment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldList {
    names: Vec<&'static str>,
    /// The expanded edge's name and its fields.
    expansion: Option<(&'static str, Vec<&'static str>)>,
}

impl FieldList {
    /// The fields of `fields`, deduplicated.
    pub fn new<I: IntoIterator<Item = &'static str>>(fields: I) -> Self {
        let mut list = Self::default();
        list.extend(fields);
        list
    }

    /// The names of typed `fields`, deduplicated.
    pub fn of<F: Field>(fields: &[F]) -> Self {
        Self::new(fields.iter().map(|f| f.as_str()))
    }

    /// Adds fields not yet present.
    pub fn extend<I: IntoIterator<Item = &'static str>>(&mut self, fields: I) {
        let fields = fields.into_iter();
        self.names.reserve(fields.size_hint().0);
        for name in fields {
            if !self.names.contains(&name) {
                self.names.push(name);
            }
        }
    }

    /// Replaces the plain fields with `id` and then `fields` (each once), keeping any
    /// expansion already asked for.
    pub fn replace<I: IntoIterator<Item = &'static str>>(&mut self, fields: I) {
        self.names.clear();
        self.extend(std::iter::once("id").chain(fields));
    }

    /// Adds `children{...}` with `fields` (deduplicated, `id` always), so album items come in
    /// the same response: one request per page, not one per album.
    pub fn expand_children<I: IntoIterator<Item = &'static str>>(&mut self, fields: I) {
        self.expand("children", fields);
    }

    /// Adds `{edge}{...}` with `fields` (deduplicated, `id` always), replacing another
    /// expansion: the edge's first page comes in the same response.
    pub fn expand<I: IntoIterator<Item = &'static str>>(&mut self, edge: &'static str, fields: I) {
        let mut expanded = FieldList::new(fields);
        expanded.extend(["id"]);
        self.expansion = Some((edge, expanded.names));
    }

    /// The plain fields, in the order they are sent (an expansion aside).
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Whether `children{...}` is requested.
    pub fn has_children(&self) -> bool {
        self.expansion
            .as_ref()
            .is_some_and(|(edge, _)| *edge == "children")
    }

    /// The wire value, e.g. `id,caption,children{id,media_url}`.
    pub fn to_param(&self) -> String {
        let mut param = String::new();
        self.write_param(|part| param.push_str(part));
        param
    }

    /// Gives the wire value to `push` in parts (names and separators), for writing it without
    /// assembling it first.
    pub(crate) fn write_param(&self, mut push: impl FnMut(&'static str)) {
        fn joined(names: &[&'static str], push: &mut impl FnMut(&'static str)) {
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    push(",");
                }
                push(name);
            }
        }
        joined(&self.names, &mut push);
        if let Some((edge, fields)) = &self.expansion {
            if !self.names.is_empty() {
                push(",");
            }
            push(edge);
            push("{");
            joined(fields, &mut push);
            push("}");
        }
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
    }

    #[test]
    fn the_children_expansion_survives_a_field_replacement() {
        let mut list = FieldList::new(["id", "caption"]);
        list.expand_children(MediaField::child_fields().iter().map(|f| f.as_str()));
        assert!(list.has_children());
        list.replace(["username", "id"]);
        assert_eq!(
            list.to_param(),
            "id,username,children{id,media_type,media_url,thumbnail_url,permalink,timestamp}"
        );
    }

    #[test]
    fn basic_display_serves_only_its_four_user_fields() {
        let basic: Vec<_> = UserField::all(Platform::BasicDisplay)
            .iter()
            .map(|f| f.as_str())
            .collect();
        assert_eq!(basic, ["id", "username", "account_type", "media_count"]);
        assert!(UserField::all(Platform::InstagramLogin).contains(&UserField::FollowersCount));
        assert!(!MediaField::all(Platform::BasicDisplay).contains(&MediaField::LikeCount));
    }

    #[test]
    fn defaults_are_served_by_their_platform() {
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

    #[test]
    fn wire_names_are_unique() {
        let mut names: Vec<_> = MediaField::VARIANTS.iter().map(|f| f.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MediaField::VARIANTS.len());
    }
}
