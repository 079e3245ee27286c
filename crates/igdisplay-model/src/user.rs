//! The User node (`/me`, `/{user-id}`) of both platforms.

use crate::{AccountType, ListResponse, Media, UnknownFields, UserId};
use serde::{Deserialize, Serialize};

/// An Instagram user as the User node returns it.
///
/// Every field but `id` is optional: Instagram omits fields that were not requested, that the
/// token's scopes do not cover, and (observed) everything but `id` for some private accounts.
/// Decoding also accepts the `{"data":[{...}]}` wrapping shown in the Instagram Login docs;
/// when that form carries only `user_id`, it becomes `id` as well (a flat body without `id` is
/// an error: there `user_id` is another id). Fields this version does not know are kept in
/// [`extra`](Self::extra).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawUser")]
#[non_exhaustive]
pub struct User {
    /// The app-scoped user id.
    pub id: UserId,
    /// Instagram Login: the professional account id (`<IG_ID>`), the one webhooks use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The handle, without `@`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Instagram Login: the display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Business, creator or personal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<AccountType>,
    /// Instagram Login: a signed CDN URL that expires like media URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    /// Instagram Login: number of followers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followers_count: Option<u64>,
    /// Instagram Login: number of accounts followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_count: Option<u64>,
    /// Number of media items (Basic Display needs the `user_media` scope for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_count: Option<u64>,
    /// Instagram Login: the profile's biography (reference C.1b: documented, never required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biography: Option<String>,
    /// Instagram Login: the profile's website (reference C.1b: documented, never required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// The first page of the user's media, when asked for by edge expansion
    /// (`fields=id,media{id,caption}` or `media.limit(5){...}`), with its own paging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<ListResponse<Media>>,
    /// Every field this version does not model, as sent (the older `ig_id`, say).
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

impl User {
    /// A user with only an id, as a private account's `/me` may return.
    pub fn new(id: impl Into<UserId>) -> Self {
        Self {
            id: id.into(),
            user_id: None,
            username: None,
            name: None,
            account_type: None,
            profile_picture_url: None,
            followers_count: None,
            follows_count: None,
            media_count: None,
            biography: None,
            website: None,
            media: None,
            extra: UnknownFields::default(),
        }
    }
}

#[derive(Deserialize)]
struct RawUser {
    id: Option<UserId>,
    user_id: Option<UserId>,
    username: Option<String>,
    name: Option<String>,
    account_type: Option<AccountType>,
    profile_picture_url: Option<String>,
    followers_count: Option<u64>,
    follows_count: Option<u64>,
    media_count: Option<u64>,
    biography: Option<String>,
    website: Option<String>,
    media: Option<ListResponse<Media>>,
    data: Option<Vec<RawUser>>,
    #[serde(flatten)]
    extra: UnknownFields,
}

impl TryFrom<RawUser> for User {
    type Error = &'static str;

    fn try_from(raw: RawUser) -> Result<Self, Self::Error> {
        if let Some(inner) = raw.data {
            let inner = inner
                .into_iter()
                .next()
                .ok_or("the `data` array of the user response is empty")?;
            // The documented Instagram Login form: there `user_id` is the user's id.
            let id = inner.id.clone().or_else(|| inner.user_id.clone());
            return User::from_raw(inner, id);
        }
        let id = raw.id.clone();
        User::from_raw(raw, id)
    }
}

impl User {
    fn from_raw(raw: RawUser, id: Option<UserId>) -> Result<Self, &'static str> {
        let id = id.ok_or("missing field `id`")?;
        Ok(User {
            id,
            user_id: raw.user_id,
            username: raw.username,
            name: raw.name,
            account_type: raw.account_type,
            profile_picture_url: raw.profile_picture_url,
            followers_count: raw.followers_count,
            follows_count: raw.follows_count,
            media_count: raw.media_count,
            biography: raw.biography,
            website: raw.website,
            media: raw.media,
            extra: raw.extra,
        })
    }
}
