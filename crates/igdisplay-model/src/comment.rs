//! Comments on a media item and their replies (reference C.2), and the answers of the calls
//! that moderate them.

use crate::{CommentId, ListResponse, MediaId, Timestamp, UnknownFields, UserId};
use serde::{Deserialize, Serialize};

/// A comment on a media item, or a reply to one (`parent_id` set).
///
/// Every field but `id` is optional: Instagram returns only the fields asked for. Fields this
/// version does not know are kept in [`extra`](Self::extra).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comment {
    /// The comment id.
    pub id: CommentId,
    /// What was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The commenter's username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The commenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Commenter>,
    /// Likes of the comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like_count: Option<u64>,
    /// Whether the account hid it (others no longer see it; it cannot be replied to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// A reply's comment; absent on a top-level comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<CommentId>,
    /// The media item commented on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaRef>,
    /// The first page of replies, when asked for by expansion (`replies{...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<ListResponse<Comment>>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

impl Comment {
    /// Whether it is a reply to another comment, as far as the fields read tell (a comment
    /// read without `parent_id` counts as top-level).
    pub fn is_reply(&self) -> bool {
        self.parent_id.is_some()
    }

    /// The replies that came with it by expansion; empty when none were asked for.
    pub fn replies(&self) -> &[Comment] {
        self.replies.as_ref().map_or(&[], |page| page.data.as_slice())
    }
}

/// Who wrote a comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Commenter {
    /// Their Instagram-scoped id.
    pub id: UserId,
    /// Their username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A media item named by a comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MediaRef {
    /// Its id.
    pub id: MediaId,
}

/// The answer of a call that changes something (hide, delete, comments on or off):
/// `{"success": true}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Success {
    /// Whether Instagram says it was done.
    #[serde(default)]
    pub success: bool,
}

/// The answer of a call that creates something (a reply): its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Created {
    /// The id of what was created.
    pub id: CommentId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_with_expanded_replies_decodes_and_keeps_unknown_fields() {
        let body = r#"{"id":"17858893269000001","text":"Lovely light","timestamp":"2026-01-15T10:00:00+0000",
            "username":"ana","like_count":3,"hidden":false,"from":{"id":"1784","username":"ana"},
            "media":{"id":"17895695668004550"},"new_field":1,
            "replies":{"data":[{"id":"17858893269000002","text":"Thank you!","parent_id":"17858893269000001"}]}}"#;
        let comment: Comment = crate::decode(body.as_bytes(), &[]).unwrap();
        assert_eq!(comment.text.as_deref(), Some("Lovely light"));
        assert!(!comment.is_reply());
        assert_eq!(comment.replies().len(), 1);
        assert!(comment.replies()[0].is_reply());
        assert_eq!(comment.media.unwrap().id.as_str(), "17895695668004550");
        assert!(comment.extra.get("new_field").is_some());
        let success: Success = crate::decode(br#"{"success":true}"#, &[]).unwrap();
        assert!(success.success);
        let created: Created = crate::decode(br#"{"id":17858893269000003}"#, &[]).unwrap();
        assert_eq!(created.id.as_str(), "17858893269000003");
    }
}
