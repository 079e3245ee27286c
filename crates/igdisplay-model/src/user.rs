//! The User node (`/me`, `/{user-id}`) of both platforms.

use crate::{AccountType, UserId};
use serde::{Deserialize, Serialize};

/// An Instagram user as the User node returns it.
///
/// Every field but `id` is optional: Instagram omits fields that were not requested, that the
/// token's scopes do not cover, and (observed) everything but `id` for some private accounts.
/// Decoding also accepts the `{"data":[{...}]}` wrapping shown in the Instagram Login docs;
/// when that form carries only `user_id`, it becomes `id` as well.
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
    data: Option<Vec<RawUser>>,
}

impl TryFrom<RawUser> for User {
    type Error = &'static str;

    fn try_from(raw: RawUser) -> Result<Self, Self::Error> {
        if let Some(inner) = raw.data {
            return inner
                .into_iter()
                .next()
                .ok_or("the `data` array of the user response is empty")
                .and_then(User::try_from);
        }
        let id = raw
            .id
            .or_else(|| raw.user_id.clone())
            .ok_or("missing field `id`")?;
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
        })
    }
}
