#![doc = include_str!("../README.md")]

mod comment;
mod decode;
mod enums;
mod error;
mod id;
mod insight;
mod media;
mod paging;
mod secret;
mod time;
mod token;
mod unknown;
mod usage;
mod user;
mod webhook;

pub use comment::{Comment, Commenter, Created, MediaRef, Success};
pub use decode::{DecodeError, MASK, SNIPPET_CHARS, decode, mask, snippet};
pub use enums::{AccountType, MediaProductType, MediaType, Platform};
pub use error::{
    ErrorBody, ErrorClass, GraphError, GraphErrorBody, INVALID_TOKEN_SUBCODES, OAuthErrorBody, classify,
    error_chain,
};
pub use id::{CommentId, MediaId, UserId};
pub use insight::{Insight, InsightValue, TotalValue};
pub use media::{Media, MediaByIds, Owner, Playback, is_instagram_page};
pub use paging::{Cursors, ListResponse, Paging};
pub use secret::{AccessToken, AppSecret, AuthorizationCode, CsrfState};
pub use time::{MAX_UNIX, MIN_UNIX, Timestamp, TimestampError, whole_seconds};
pub use token::{CodeExchangeResponse, LongLivedTokenResponse};
pub use unknown::UnknownFields;
pub use usage::{
    APP_USAGE_HEADER, AppUsage, BUSINESS_USE_CASE_USAGE_HEADER, BusinessUseCase, Usage,
    parse_business_use_case_usage,
};
pub use user::User;
pub use webhook::{
    AppSubscription, CommentEvent, MentionEvent, Message, MessagingEvent, MessagingKind, Party, Postback,
    Reaction, Seen, WebhookChange, WebhookEntry, WebhookMedia, WebhookNotification,
};

/// Re-exported so callers can name the type of [`OAuthErrorBody::extra`] and friends.
pub use serde_json;
