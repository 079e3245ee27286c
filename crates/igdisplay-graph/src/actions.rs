//! [`GraphAction`]: the calls that change something (reference C.2): hide or unhide a
//! comment, delete it, reply to it, turn a media item's comments off or on; and the reads
//! whose query is not `fields=` (insights). Each is a value
//! like a query, rendered and read without I/O, and sent through the client's pipeline (the
//! one send loop); whether it may be sent twice is its [`RequestKind`].

use crate::request::{check_id, error_response, graph_request};
use crate::{Error, GraphClient};
use igdisplay_http::{Exchange, HttpRequest, HttpResponse, QueryWriter, RequestKind};
use igdisplay_model::{
    AccessToken, AppSubscription, CommentId, Created, ListResponse, MediaId, Platform, Success,
};
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;

/// A call that changes something, as a value: build it from a [`GraphClient`]
/// ([`hide_comment`](GraphClient::hide_comment), [`delete_comment`](GraphClient::delete_comment),
/// [`set_comments_enabled`](GraphClient::set_comments_enabled)), then [`send`](Self::send) it.
#[must_use = "an action does nothing until .send() is awaited"]
pub struct GraphAction<T> {
    client: GraphClient,
    method: http::Method,
    /// The id the path starts with, or why it cannot be used.
    id: Result<String, &'static str>,
    /// What follows the id (`""`, `/replies`).
    edge: &'static str,
    params: Vec<(&'static str, String)>,
    kind: RequestKind,
    output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for GraphAction<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphAction")
            .field("method", &self.method)
            .field("id", &self.id)
            .field("edge", &self.edge)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> GraphAction<T> {
    fn new(client: &GraphClient, method: http::Method, id: &str, kind: RequestKind) -> Self {
        let id = if client.endpoint().platform == Platform::InstagramLogin {
            check_id(id).map(|()| id.to_owned())
        } else {
            Err(crate::request::LOGIN_ONLY)
        };
        Self {
            client: client.clone(),
            method,
            id,
            edge: "",
            params: Vec::new(),
            kind,
            output: PhantomData,
        }
    }

    /// A read of `{id}{edge}` that is not a node's or an edge's of [`GraphRequest`](crate::GraphRequest)
    /// (the insights edge: `metric=` instead of `fields=`).
    pub(crate) fn get(client: &GraphClient, id: &str, edge: &'static str) -> Self {
        let mut action = Self::new(client, http::Method::GET, id, RequestKind::Idempotent);
        action.edge = edge;
        action
    }

    pub(crate) fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }

    /// Whether the call may be sent twice: hiding, deleting and switching comments are
    /// (sent twice, they end the same); a reply is not (sent twice, it posts twice).
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// The whole request for `token`, built without I/O: `{METHOD} {base}[/{version}]/{id}{edge}
    /// ?{params}&access_token=...`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] for an id that is not alphanumeric, a platform without
    /// comments, or a base URL that does not form a URI.
    pub fn to_http(&self, token: &AccessToken) -> Result<HttpRequest, Error> {
        let id = self
            .id
            .as_deref()
            .map_err(|reason| Error::InvalidRequest(reason))?;
        let room = self
            .params
            .iter()
            .map(|(name, value)| name.len() + value.len().saturating_mul(3) + 2)
            .fold(
                token.expose_secret().len().saturating_mul(3) + 16,
                usize::saturating_add,
            );
        let mut uri = self.client.endpoint().url(&[id, self.edge], room);
        let mut query = QueryWriter::new(&mut uri);
        for (name, value) in &self.params {
            query.pair(name, value);
        }
        query.pair("access_token", token.expose_secret());
        graph_request(self.method.clone(), uri)
    }

    /// Reads the answer, sent with `token`, without I/O.
    ///
    /// # Errors
    ///
    /// The typed error an error response means; [`Error::Decode`] for a success body of the
    /// wrong shape.
    pub fn parse(&self, response: &HttpResponse, token: &AccessToken) -> Result<T, Error> {
        let secrets = [token.expose_secret()];
        if response.status().is_success() {
            return Ok(igdisplay_model::decode(response.body(), &secrets)?);
        }
        Err(error_response(response, &secrets))
    }

    /// Sends the call through the client's pipeline (pacing, token, the send loop; retried
    /// only when [`kind`](Self::kind) allows).
    ///
    /// # Errors
    ///
    /// Every [`Error`].
    // Not `async fn`: that would hold the action twice, as its argument and as a local.
    #[allow(clippy::manual_async_fn)]
    pub fn send(self) -> impl Future<Output = Result<T, Error>> + Send + 'static {
        async move { self.client.execute(&self).await }
    }
}

impl<T: DeserializeOwned + Send + 'static> Exchange<Cow<'_, AccessToken>> for GraphAction<T> {
    type Output = T;
    type Error = Error;

    fn kind(&self) -> RequestKind {
        self.kind
    }

    fn render(&self, token: &Cow<'_, AccessToken>) -> Result<HttpRequest, Error> {
        self.to_http(token)
    }

    fn parse(&self, response: &HttpResponse, token: &Cow<'_, AccessToken>) -> Result<T, Error> {
        GraphAction::parse(self, response, token)
    }
}

/// A field an app subscribes an account's webhooks to (Instagram Login, reference C.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookField {
    /// `comments` (needs Advanced Access).
    Comments,
    /// `live_comments` (needs Advanced Access).
    LiveComments,
    /// `mentions`.
    Mentions,
    /// `messages`.
    Messages,
    /// `message_reactions`.
    MessageReactions,
    /// `messaging_postbacks`.
    MessagingPostbacks,
    /// `messaging_referral`.
    MessagingReferral,
    /// `messaging_seen`.
    MessagingSeen,
}

impl WebhookField {
    /// Every field, as `subscribe --all` subscribes them.
    pub const ALL: [WebhookField; 8] = [
        WebhookField::Comments,
        WebhookField::LiveComments,
        WebhookField::Mentions,
        WebhookField::Messages,
        WebhookField::MessageReactions,
        WebhookField::MessagingPostbacks,
        WebhookField::MessagingReferral,
        WebhookField::MessagingSeen,
    ];

    /// The field's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookField::Comments => "comments",
            WebhookField::LiveComments => "live_comments",
            WebhookField::Mentions => "mentions",
            WebhookField::Messages => "messages",
            WebhookField::MessageReactions => "message_reactions",
            WebhookField::MessagingPostbacks => "messaging_postbacks",
            WebhookField::MessagingReferral => "messaging_referral",
            WebhookField::MessagingSeen => "messaging_seen",
        }
    }
}

/// Webhook subscriptions of the token's account (`/me/subscribed_apps`, Instagram Login).
impl GraphClient {
    /// Subscribes the app to `fields` of the account's webhooks (replacing the fields it had).
    pub fn subscribe(&self, fields: &[WebhookField]) -> GraphAction<Success> {
        let names: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
        let mut action = GraphAction::new(self, http::Method::POST, "me", RequestKind::Idempotent)
            .param("subscribed_fields", names.join(","));
        action.edge = "/subscribed_apps";
        action
    }

    /// The app's subscription for the account: empty when there is none.
    pub fn subscriptions(&self) -> GraphAction<ListResponse<AppSubscription>> {
        GraphAction::get(self, "me", "/subscribed_apps")
    }

    /// Ends the app's subscription for the account.
    pub fn unsubscribe(&self) -> GraphAction<Success> {
        let mut action = GraphAction::new(self, http::Method::DELETE, "me", RequestKind::Idempotent);
        action.edge = "/subscribed_apps";
        action
    }
}

/// Why a reply was refused before it was sent (reference C.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyRefused {
    /// The comment is hidden: a hidden comment cannot be replied to.
    #[error("the comment is hidden: unhide it to reply")]
    Hidden,
    /// The comment is itself a reply: only top-level comments take replies.
    #[error("the comment is a reply: reply to its top-level comment instead")]
    NotTopLevel,
}

/// Moderating comments (Instagram Login, `instagram_business_manage_comments`).
impl GraphClient {
    /// Hides a comment from everyone but its author (`hidden: true`), or shows it again
    /// (`POST /{comment-id}?hide=...`).
    pub fn hide_comment(&self, comment: &CommentId, hidden: bool) -> GraphAction<Success> {
        GraphAction::new(
            self,
            http::Method::POST,
            comment.as_str(),
            RequestKind::Idempotent,
        )
        .param("hide", if hidden { "true" } else { "false" })
    }

    /// Deletes a comment (`DELETE /{comment-id}`).
    pub fn delete_comment(&self, comment: &CommentId) -> GraphAction<Success> {
        GraphAction::new(
            self,
            http::Method::DELETE,
            comment.as_str(),
            RequestKind::Idempotent,
        )
    }

    /// Turns a media item's comments off (`enabled: false`) or on
    /// (`POST /{media-id}?comment_enabled=...`).
    pub fn set_comments_enabled(&self, media: &MediaId, enabled: bool) -> GraphAction<Success> {
        GraphAction::new(self, http::Method::POST, media.as_str(), RequestKind::Idempotent)
            .param("comment_enabled", if enabled { "true" } else { "false" })
    }

    /// The reply call itself (`POST /{comment-id}/replies?message=...`), sent once: a retry
    /// could post the reply twice. [`reply_to_comment`](Self::reply_to_comment) checks the
    /// comment first.
    pub fn reply_request(&self, comment: &CommentId, message: &str) -> GraphAction<Created> {
        let mut action = GraphAction::new(self, http::Method::POST, comment.as_str(), RequestKind::SingleUse)
            .param("message", message);
        action.edge = "/replies";
        action
    }

    /// Replies to a top-level comment and returns the reply's id. The comment is read first
    /// (`parent_id`, `hidden`), so a reply Instagram would refuse is refused here, typed, with
    /// nothing posted.
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([
    /// #     Ok(json_response(200, r#"{"id":"178002","parent_id":"178001","hidden":false}"#)),
    /// # ]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_graph::{Error, ReplyRefused};
    /// use igdisplay_model::CommentId;
    ///
    /// let refused = graph.reply_to_comment(&CommentId::new("178002"), "Thanks!").await.unwrap_err();
    /// assert!(matches!(refused, Error::CannotReply(ReplyRefused::NotTopLevel)));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::CannotReply`] for a hidden comment or a reply; every [`Error`] of the two calls.
    pub async fn reply_to_comment(&self, comment: &CommentId, message: &str) -> Result<CommentId, Error> {
        use crate::CommentField::{Hidden, ParentId};
        let target = self.comment(comment).fields(&[ParentId, Hidden]).send().await?;
        if target.is_reply() {
            return Err(Error::CannotReply(ReplyRefused::NotTopLevel));
        }
        if target.hidden == Some(true) {
            return Err(Error::CannotReply(ReplyRefused::Hidden));
        }
        Ok(self.reply_request(comment, message).send().await?.id)
    }
}
