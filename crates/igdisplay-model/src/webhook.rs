//! Meta's webhook notifications for Instagram Login (reference C.5): the `comments`,
//! `live_comments` and `mentions` changes, and the messaging events (`messages`,
//! `message_reactions`, `messaging_postbacks`, `messaging_referral`, `messaging_seen`).
//! Every type keeps the fields it does not model, and a change of a field this version does
//! not know (or of a known field in a shape it does not expect) is kept whole as
//! [`WebhookChange::Other`]: a notification is never refused for its content.

use crate::{CommentId, Commenter, MediaId, MediaProductType, UnknownFields, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One delivery: `{"object": "instagram", "entry": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookNotification {
    /// `instagram`.
    pub object: String,
    /// One entry per account and moment.
    #[serde(default)]
    pub entry: Vec<WebhookEntry>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

/// What happened to one account: field changes, or messaging events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookEntry {
    /// The account's professional id (the `user_id` of `/me`).
    pub id: UserId,
    /// When, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// The changes of subscribed fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<WebhookChange>,
    /// The messaging events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messaging: Vec<MessagingEvent>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

/// A change of a subscribed field: `{"field": ..., "value": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawChange", into = "RawChange")]
#[non_exhaustive]
pub enum WebhookChange {
    /// `comments`: a comment on one of the account's media.
    Comments(CommentEvent),
    /// `live_comments`: a comment on one of the account's live videos.
    LiveComments(CommentEvent),
    /// `mentions`: the account was @mentioned in a comment or a caption.
    Mentions(MentionEvent),
    /// Another field, or a known one in a shape this version does not read: kept as sent.
    Other {
        /// The field.
        field: String,
        /// Its value.
        value: Value,
    },
}

impl WebhookChange {
    /// The subscribed field this change is of.
    pub fn field(&self) -> &str {
        match self {
            WebhookChange::Comments(_) => "comments",
            WebhookChange::LiveComments(_) => "live_comments",
            WebhookChange::Mentions(_) => "mentions",
            WebhookChange::Other { field, .. } => field,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RawChange {
    field: String,
    #[serde(default)]
    value: Value,
}

impl From<RawChange> for WebhookChange {
    fn from(raw: RawChange) -> Self {
        let typed = match raw.field.as_str() {
            "comments" => serde_json::from_value(raw.value.clone())
                .ok()
                .map(WebhookChange::Comments),
            "live_comments" => serde_json::from_value(raw.value.clone())
                .ok()
                .map(WebhookChange::LiveComments),
            "mentions" => serde_json::from_value(raw.value.clone())
                .ok()
                .map(WebhookChange::Mentions),
            _ => None,
        };
        typed.unwrap_or(WebhookChange::Other {
            field: raw.field,
            value: raw.value,
        })
    }
}

impl From<WebhookChange> for RawChange {
    fn from(change: WebhookChange) -> Self {
        let field = change.field().to_owned();
        let value = match change {
            WebhookChange::Comments(event) | WebhookChange::LiveComments(event) => {
                serde_json::to_value(event).unwrap_or_default()
            }
            WebhookChange::Mentions(event) => serde_json::to_value(event).unwrap_or_default(),
            WebhookChange::Other { value, .. } => value,
        };
        RawChange { field, value }
    }
}

/// A comment, as a `comments` or `live_comments` change carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommentEvent {
    /// The comment's id.
    pub id: CommentId,
    /// What was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Commenter>,
    /// The media commented on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<WebhookMedia>,
    /// A reply's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<CommentId>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

/// A media item named by a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookMedia {
    /// Its id.
    pub id: MediaId,
    /// Feed, reels, story, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_product_type: Option<MediaProductType>,
}

/// An @mention of the account, as a `mentions` change carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MentionEvent {
    /// The media the mention is in (or under).
    pub media_id: MediaId,
    /// The comment the mention is in; absent for a caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

/// A messaging event (`messages`, `message_reactions`, `messaging_postbacks`,
/// `messaging_referral`, `messaging_seen`): which one is [`MessagingEvent::kind`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessagingEvent {
    /// Who sent it.
    pub sender: Party,
    /// Who received it.
    pub recipient: Party,
    /// When, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// `messages`: a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// `message_reactions`: a reaction to a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<Reaction>,
    /// `messaging_postbacks`: a tapped button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postback: Option<Postback>,
    /// `messaging_referral`: how the conversation was reached, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Value>,
    /// `messaging_seen`: the message read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Seen>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

/// Which messaging field a [`MessagingEvent`] is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessagingKind {
    /// `messages`.
    Message,
    /// `message_reactions`.
    Reaction,
    /// `messaging_postbacks`.
    Postback,
    /// `messaging_referral`.
    Referral,
    /// `messaging_seen`.
    Seen,
    /// None of these: see [`MessagingEvent::extra`].
    Other,
}

impl MessagingEvent {
    /// Which messaging field this event is of.
    pub fn kind(&self) -> MessagingKind {
        if self.message.is_some() {
            MessagingKind::Message
        } else if self.reaction.is_some() {
            MessagingKind::Reaction
        } else if self.postback.is_some() {
            MessagingKind::Postback
        } else if self.referral.is_some() {
            MessagingKind::Referral
        } else if self.read.is_some() {
            MessagingKind::Seen
        } else {
            MessagingKind::Other
        }
    }
}

/// A sender or recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Party {
    /// Their Instagram-scoped id.
    pub id: UserId,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Its id.
    pub mid: String,
    /// Its text, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether the account itself sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_echo: Option<bool>,
    /// Its attachments, as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Value>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

/// A reaction to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reaction {
    /// The message reacted to.
    pub mid: String,
    /// `react` or `unreact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The reaction's name (`love`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    /// The emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

/// A tapped button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Postback {
    /// The message the button was in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// The button's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The button's payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// A message read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Seen {
    /// The last message read.
    pub mid: String,
}

/// The app's webhook subscription for an account, as `GET /me/subscribed_apps` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AppSubscription {
    /// The app's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The app's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The fields the app is told about for the account.
    #[serde(default)]
    pub subscribed_fields: Vec<String>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the webhook_receiver fuzz target: a number of an unknown field, read and
    /// written back, drifted by one unit in the last place.
    #[test]
    fn a_number_of_an_unknown_field_is_written_back_as_sent() {
        let body = br#"{"object":"instagram","entry":[{"id":"1","tile":118446744073709551615,"x":0.1}]}"#;
        let read: WebhookNotification = crate::decode(body, &[]).unwrap();
        let again: WebhookNotification = serde_json::from_slice(&serde_json::to_vec(&read).unwrap()).unwrap();
        assert_eq!(again, read);
    }

    #[test]
    fn every_field_of_the_reference_decodes_typed_and_anything_else_is_kept() {
        let body = br#"{"object":"instagram","entry":[
          {"id":"17841400000000001","time":1768478400,"changes":[
            {"field":"comments","value":{"id":"18000000000000001","text":"Lovely","from":{"id":"1784","username":"ana"},
              "media":{"id":"17900000000000001","media_product_type":"FEED"},"new":1}},
            {"field":"live_comments","value":{"id":"18000000000000002","text":"Live!"}},
            {"field":"mentions","value":{"media_id":"17900000000000002","comment_id":"18000000000000003"}},
            {"field":"story_insights","value":{"media_id":"1","reach":5}},
            {"field":"comments","value":{"unexpected":"shape"}}]},
          {"id":"17841400000000001","time":1768478401,"messaging":[
            {"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1768478401000,"message":{"mid":"m1","text":"hi"}},
            {"sender":{"id":"1"},"recipient":{"id":"2"},"reaction":{"mid":"m1","action":"react","reaction":"love","emoji":"\u2764"}},
            {"sender":{"id":"1"},"recipient":{"id":"2"},"postback":{"mid":"m2","title":"Yes","payload":"YES"}},
            {"sender":{"id":"1"},"recipient":{"id":"2"},"referral":{"ref":"ad"}},
            {"sender":{"id":"1"},"recipient":{"id":"2"},"read":{"mid":"m1"}},
            {"sender":{"id":"1"},"recipient":{"id":"2"},"typing":true}]}]}"#;
        let notification: WebhookNotification = crate::decode(body, &[]).unwrap();
        let changes = &notification.entry[0].changes;
        assert!(
            matches!(&changes[0], WebhookChange::Comments(c) if c.text.as_deref() == Some("Lovely") && c.extra.get("new").is_some())
        );
        assert!(matches!(&changes[1], WebhookChange::LiveComments(_)));
        assert!(matches!(&changes[2], WebhookChange::Mentions(m) if m.comment_id.is_some()));
        assert!(matches!(&changes[3], WebhookChange::Other { field, .. } if field == "story_insights"));
        assert!(
            matches!(&changes[4], WebhookChange::Other { field, .. } if field == "comments"),
            "a shape not read: kept"
        );
        let kinds: Vec<_> = notification.entry[1]
            .messaging
            .iter()
            .map(MessagingEvent::kind)
            .collect();
        assert_eq!(
            kinds,
            [
                MessagingKind::Message,
                MessagingKind::Reaction,
                MessagingKind::Postback,
                MessagingKind::Referral,
                MessagingKind::Seen,
                MessagingKind::Other
            ]
        );
        // What is kept is written back: nothing lost in a round trip.
        let again: WebhookNotification =
            serde_json::from_value(serde_json::to_value(&notification).unwrap()).unwrap();
        assert_eq!(again, notification);
    }
}
