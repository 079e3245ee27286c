//! The queries as complete request values: resource handle → [`GraphRequest`] → `.send()`.
//!
//! A request renders its whole [`HttpRequest`] for a token without I/O
//! ([`to_http`](GraphRequest::to_http)) and reads a response without I/O
//! ([`parse`](GraphRequest::parse)); [`send`](GraphRequest::send) is the pipeline between
//! the two. One generic request serves every node: the node type says the path, the fields
//! and what the body decodes to.

use crate::fields::{CommentField, Field, FieldList, MediaField, UserField};
use crate::{Error, GraphClient};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use igdisplay_http::{HttpRequest, HttpResponse, QueryWriter};
use igdisplay_model::{
    AccessToken, Comment, CommentId, ErrorBody, ErrorClass, ListResponse, Media, MediaByIds, MediaId,
    Platform, Timestamp, User, UserId,
};
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;

/// Empty pages tolerated in a row before a stream gives up.
pub const MAX_EMPTY_PAGES: u32 = 3;

/// A stream of items over every page.
pub type ItemStream<T> = BoxStream<'static, Result<T, Error>>;
/// A stream of media over every page.
pub type MediaStream = ItemStream<Media>;
/// A stream of comments (or replies) over every page.
pub type CommentStream = ItemStream<Comment>;

/// `GET /me` or `GET /{user-id}`.
pub type UserRequest = GraphRequest<UserNode>;
/// `GET /{comment-id}`.
pub type CommentRequest = GraphRequest<CommentNode>;
/// `GET /{media-id}/comments`: a media item's top-level comments.
pub type CommentsRequest = GraphRequest<CommentsEdge>;
/// `GET /{comment-id}/replies`: a comment's replies.
pub type RepliesRequest = GraphRequest<RepliesEdge>;
/// `GET /me/tags`: the media the account is tagged in.
pub type TagsRequest = GraphRequest<TagsEdge>;
/// `GET /{media-id}`.
pub type MediaRequest = GraphRequest<MediaNode>;
/// `GET /{media-id}/children`: an album's images and videos.
pub type ChildrenRequest = GraphRequest<ChildrenEdge>;
/// `GET /{user-id}/media`: one page with `send`, every item with `into_stream`.
pub type MediaListRequest = GraphRequest<MediaEdge>;
/// `GET /?ids=a,b`: several media items in one request.
pub type MediaBatchRequest = GraphRequest<MediaBatch>;

/// The most ids one batch read may name (the Graph API's limit).
pub const MAX_BATCH_IDS: usize = 50;

/// One page of an edge.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items, newest first for the media edge.
    pub items: Vec<T>,
    /// The cursor of the page before this one.
    pub before: Option<String>,
    /// The cursor of the page after this one, when Instagram says there is one.
    pub after: Option<String>,
}

impl<T> Page<T> {
    fn from_list(list: ListResponse<T>) -> Self {
        let after = list.next_cursor().map(str::to_owned);
        let before = list
            .paging
            .as_ref()
            .filter(|p| p.previous.is_some())
            .and_then(|p| p.before())
            .map(str::to_owned);
        Self {
            items: list.data,
            before,
            after,
        }
    }

    /// Whether another page follows.
    pub fn has_next(&self) -> bool {
        self.after.is_some()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A node or edge of the Graph API: where it lives, its fields and what its body decodes to.
/// Implemented by [`UserNode`], [`MediaNode`], [`ChildrenEdge`] and [`MediaEdge`] only.
pub trait Node: sealed::Sealed + Send + Sync + 'static {
    /// The node's fields.
    type Field: Field;
    /// What a success body decodes to.
    type Output: Send;

    /// What follows the id in the path: `""` for a node, `"/media"` for an edge.
    #[doc(hidden)]
    const SUFFIX: &'static str;

    /// Decodes a success body.
    #[doc(hidden)]
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Self::Output, Error>;
}

/// The User node: `/me` or `/{user-id}`, decoded as [`User`].
#[derive(Debug)]
pub struct UserNode;
/// The Media node: `/{media-id}`, decoded as [`Media`].
#[derive(Debug)]
pub struct MediaNode;
/// An album's children: `/{media-id}/children`, one [`Page`] of [`Media`].
#[derive(Debug)]
pub struct ChildrenEdge;
/// A user's media: `/{user-id}/media`, one [`Page`] of [`Media`] per request.
#[derive(Debug)]
pub struct MediaEdge;
/// A batch read: `/?ids=a,b`, each item keyed by its id ([`MediaByIds`]).
#[derive(Debug)]
pub struct MediaBatch;
/// A comment: `/{comment-id}`, decoded as [`Comment`].
#[derive(Debug)]
pub struct CommentNode;
/// A media item's top-level comments: `/{media-id}/comments`, one [`Page`] of [`Comment`] per
/// request.
#[derive(Debug)]
pub struct CommentsEdge;
/// A comment's replies: `/{comment-id}/replies`, one [`Page`] of [`Comment`] per request.
#[derive(Debug)]
pub struct RepliesEdge;
/// The media a user is tagged in: `/{user-id}/tags`, one [`Page`] of [`Media`] per request.
#[derive(Debug)]
pub struct TagsEdge;

impl sealed::Sealed for UserNode {}
impl sealed::Sealed for MediaNode {}
impl sealed::Sealed for ChildrenEdge {}
impl sealed::Sealed for MediaEdge {}
impl sealed::Sealed for MediaBatch {}
impl sealed::Sealed for CommentNode {}
impl sealed::Sealed for CommentsEdge {}
impl sealed::Sealed for RepliesEdge {}
impl sealed::Sealed for TagsEdge {}

impl Node for UserNode {
    type Field = UserField;
    type Output = User;
    const SUFFIX: &'static str = "";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<User, Error> {
        Ok(igdisplay_model::decode(body, secrets)?)
    }
}

impl Node for MediaNode {
    type Field = MediaField;
    type Output = Media;
    const SUFFIX: &'static str = "";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Media, Error> {
        Ok(igdisplay_model::decode(body, secrets)?)
    }
}

impl Node for ChildrenEdge {
    type Field = MediaField;
    type Output = Page<Media>;
    const SUFFIX: &'static str = "/children";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Page<Media>, Error> {
        Ok(Page::from_list(igdisplay_model::decode(body, secrets)?))
    }
}

impl Node for MediaEdge {
    type Field = MediaField;
    type Output = Page<Media>;
    const SUFFIX: &'static str = "/media";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Page<Media>, Error> {
        Ok(Page::from_list(igdisplay_model::decode(body, secrets)?))
    }
}

impl Node for MediaBatch {
    type Field = MediaField;
    type Output = MediaByIds;
    // Its path is the root: the ids go in the query.
    const SUFFIX: &'static str = "";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<MediaByIds, Error> {
        Ok(igdisplay_model::decode(body, secrets)?)
    }
}

impl Node for CommentNode {
    type Field = CommentField;
    type Output = Comment;
    const SUFFIX: &'static str = "";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Comment, Error> {
        Ok(igdisplay_model::decode(body, secrets)?)
    }
}

impl Node for CommentsEdge {
    type Field = CommentField;
    type Output = Page<Comment>;
    const SUFFIX: &'static str = "/comments";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Page<Comment>, Error> {
        Ok(Page::from_list(igdisplay_model::decode(body, secrets)?))
    }
}

impl Node for RepliesEdge {
    type Field = CommentField;
    type Output = Page<Comment>;
    const SUFFIX: &'static str = "/replies";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Page<Comment>, Error> {
        Ok(Page::from_list(igdisplay_model::decode(body, secrets)?))
    }
}

impl Node for TagsEdge {
    type Field = MediaField;
    type Output = Page<Media>;
    const SUFFIX: &'static str = "/tags";
    fn decode(body: &[u8], secrets: &[&str]) -> Result<Page<Media>, Error> {
        Ok(Page::from_list(igdisplay_model::decode(body, secrets)?))
    }
}

/// An edge listed a page at a time by cursor: the media edge, tags, comments, replies.
pub trait PagedEdge: Node<Output = Page<Self::Item>> {
    /// What a page holds.
    type Item: Send + 'static;
}
impl PagedEdge for MediaEdge {
    type Item = Media;
}
impl PagedEdge for TagsEdge {
    type Item = Media;
}
impl PagedEdge for CommentsEdge {
    type Item = Comment;
}
impl PagedEdge for RepliesEdge {
    type Item = Comment;
}

/// Nodes whose requests can carry album children by field expansion.
pub trait ExpandsChildren: Node<Field = MediaField> {}
impl ExpandsChildren for MediaNode {}
impl ExpandsChildren for MediaEdge {}
impl ExpandsChildren for MediaBatch {}
impl ExpandsChildren for TagsEdge {}

impl GraphClient {
    /// The token's own user (`/me`).
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"id":"17841405793187218","username":"jayposiris","account_type":"BUSINESS"}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_graph::UserField;
    ///
    /// let me = graph.me().fields(&[UserField::Id, UserField::Username, UserField::AccountType]).send().await?;
    /// assert_eq!(me.username.as_deref(), Some("jayposiris"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn me(&self) -> UserRequest {
        GraphRequest::new(self.clone(), Cow::Borrowed("me"))
    }

    /// A user by id (`/{user-id}`).
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"id":"17841405793187218","username":"jayposiris"}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_model::UserId;
    ///
    /// let user = graph.user(&UserId::new("17841405793187218")).send().await?;
    /// assert_eq!(user.username.as_deref(), Some("jayposiris"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user(&self, id: &UserId) -> UserRequest {
        GraphRequest::new(self.clone(), Cow::Owned(id.as_str().to_owned()))
    }

    /// The token user's media (`/me/media`): one page with `.send()`, every page as a stream
    /// with `.into_stream()`.
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"data":[{"id":"1","media_type":"IMAGE"},{"id":"2","media_type":"CAROUSEL_ALBUM","children":{"data":[{"id":"3"}]}}]}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use futures_util::TryStreamExt;
    ///
    /// let all: Vec<_> = graph.my_media().with_children().into_stream().try_collect().await?;
    /// assert_eq!(all.len(), 2);
    /// assert_eq!(all[1].children().len(), 1, "album items came with their album");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn my_media(&self) -> MediaListRequest {
        GraphRequest::new(self.clone(), Cow::Borrowed("me"))
    }

    /// The token user's live stories (`/me/stories`, Instagram Login only): the stories
    /// posted in the last 24 hours, each a [`Media`] whose `media_product_type` is `STORY`,
    /// paged like [`my_media`](Self::my_media) (the media edge leaves stories out). Basic
    /// Display has no stories: there the request fails before anything is sent
    /// ([`Error::InvalidRequest`]).
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"data":[{"id":"1","media_type":"IMAGE","media_product_type":"STORY"}]}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_model::MediaProductType;
    ///
    /// let page = graph.my_stories().send().await?;
    /// assert_eq!(page.items[0].media_product_type, Some(MediaProductType::Story));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn my_stories(&self) -> MediaListRequest {
        let mut request: MediaListRequest = GraphRequest::new(self.clone(), Cow::Borrowed("me"));
        request.edge = "/stories";
        if self.endpoint().platform != Platform::InstagramLogin {
            request.id = Err("stories are listed on Instagram Login only");
        }
        request
    }

    /// A user's media (`/{user-id}/media`).
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"data":[{"id":"1"},{"id":"2"}],"paging":{"cursors":{"after":"QVFI"}}}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_model::UserId;
    ///
    /// let page = graph.user_media(&UserId::new("17841405793187218")).limit(2).send().await?;
    /// assert_eq!(page.items.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user_media(&self, id: &UserId) -> MediaListRequest {
        GraphRequest::new(self.clone(), Cow::Owned(id.as_str().to_owned()))
    }

    /// A media item (`/{media-id}`).
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"id":"17895695668004550","media_type":"VIDEO","thumbnail_url":"https://cdn.example/t.jpg"}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_model::{MediaId, MediaType};
    ///
    /// let media = graph.media(&MediaId::new("17895695668004550")).send().await?;
    /// assert_eq!(media.media_type, Some(MediaType::Video));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn media(&self, id: &MediaId) -> MediaRequest {
        GraphRequest::new(self.clone(), Cow::Owned(id.as_str().to_owned()))
    }

    /// Several media items in one request (`/?ids=a,b`), keyed by id: a feed refreshing the
    /// URLs of the posts it shows costs one request, not one per post. At most
    /// [`MAX_BATCH_IDS`] ids; an id Instagram does not know fails the whole request.
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"1":{"id":"1","media_url":"https://cdn.example/1.jpg"},"2":{"id":"2","media_url":"https://cdn.example/2.jpg"}}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_model::MediaId;
    ///
    /// let fresh = graph.media_by_ids(&[MediaId::new("1"), MediaId::new("2")]).send().await?;
    /// assert_eq!(fresh[&MediaId::new("2")].media_url.as_deref(), Some("https://cdn.example/2.jpg"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn media_by_ids(&self, ids: &[MediaId]) -> MediaBatchRequest {
        let mut request: MediaBatchRequest = GraphRequest::new(self.clone(), Cow::Borrowed("me"));
        request.id = if ids.is_empty() || ids.len() > MAX_BATCH_IDS {
            Err("a batch read names 1 to 50 ids")
        } else {
            ids.iter()
                .try_for_each(|id| check_id(id.as_str()))
                .map(|()| Cow::Borrowed(""))
        };
        request.params.ids = Some(ids.iter().map(MediaId::as_str).collect::<Vec<_>>().join(","));
        request
    }

    /// An album's items (`/{media-id}/children`), with the fields children can carry. (A
    /// listing `.with_children()` brings them along without this extra request.)
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"data":[{"id":"18001"},{"id":"18002"}]}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use igdisplay_model::MediaId;
    ///
    /// let items = graph.children(&MediaId::new("17920000000000001")).send().await?;
    /// assert_eq!(items.items.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn children(&self, album: &MediaId) -> ChildrenRequest {
        let mut request = GraphRequest::new(self.clone(), Cow::Owned(album.as_str().to_owned()));
        request.fields = Some(FieldList::of(MediaField::child_fields()));
        request
    }
}

/// Reading and moderating comments (reference C.2): Instagram Login only, with the
/// `instagram_business_manage_comments` scope. On Basic Display each request fails before
/// anything is sent ([`Error::InvalidRequest`]).
impl GraphClient {
    /// A media item's top-level comments (`/{media-id}/comments`), newest first: one page with
    /// `.send()`, all of them with `.into_stream()`, each with its first replies with
    /// `.with_replies()`.
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"data":[{"id":"178001","text":"Lovely","replies":{"data":[{"id":"178002","text":"Thanks","parent_id":"178001"}]}}]}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use futures_util::TryStreamExt;
    /// use igdisplay_model::MediaId;
    ///
    /// let comments: Vec<_> = graph.comments(&MediaId::new("17895695668004550")).with_replies().into_stream().try_collect().await?;
    /// assert_eq!(comments[0].text.as_deref(), Some("Lovely"));
    /// assert_eq!(comments[0].replies()[0].text.as_deref(), Some("Thanks"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn comments(&self, media: &MediaId) -> CommentsRequest {
        self.login_only(GraphRequest::new(
            self.clone(),
            Cow::Owned(media.as_str().to_owned()),
        ))
    }

    /// A comment's replies (`/{comment-id}/replies`), paged like [`comments`](Self::comments).
    pub fn replies(&self, comment: &CommentId) -> RepliesRequest {
        self.login_only(GraphRequest::new(
            self.clone(),
            Cow::Owned(comment.as_str().to_owned()),
        ))
    }

    /// One comment or reply (`/{comment-id}`).
    pub fn comment(&self, comment: &CommentId) -> CommentRequest {
        self.login_only(GraphRequest::new(
            self.clone(),
            Cow::Owned(comment.as_str().to_owned()),
        ))
    }

    /// The media the token's account is tagged in (`/me/tags`, reference C.3), newest first,
    /// with the media fields: one page with `.send()`, all of them with `.into_stream()`.
    /// Needs the comments scope; media of private accounts never appear.
    ///
    /// ```
    /// # use igdisplay_graph::{GraphClient, GraphEndpoint};
    /// # use igdisplay_http::test_util::{ReplayBackend, json_response};
    /// # use igdisplay_model::{AccessToken, Platform};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let backend = ReplayBackend::new([Ok(json_response(200, r#"{"data":[{"id":"17900000000000009","username":"cafe_nova"}]}"#))]);
    /// # let graph = GraphClient::with_token(Arc::new(backend), GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("IGAAfake"));
    /// use futures_util::TryStreamExt;
    ///
    /// let tagged: Vec<_> = graph.tags().into_stream().try_collect().await?;
    /// assert_eq!(tagged[0].username.as_deref(), Some("cafe_nova"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tags(&self) -> TagsRequest {
        self.login_only(GraphRequest::new(self.clone(), Cow::Borrowed("me")))
    }

    /// `request`, refused before sending on a platform without comments.
    fn login_only<N: Node>(&self, mut request: GraphRequest<N>) -> GraphRequest<N> {
        if self.endpoint().platform != Platform::InstagramLogin {
            request.id = Err(LOGIN_ONLY);
        }
        request
    }
}

/// The request of `method` to `uri` (a Graph URL, its query written), asking for JSON.
pub(crate) fn graph_request(method: http::Method, uri: String) -> Result<HttpRequest, Error> {
    let uri = http::Uri::try_from(uri)
        .map_err(|_| Error::InvalidRequest("the base URL and path do not form a valid URI"))?;
    // Built in place: `http::Request::builder` moves its parts through a `Result` per step.
    let mut request = HttpRequest::new(Bytes::new());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(request)
}

/// Why a request of Instagram Login's wider read side is refused on Basic Display.
pub(crate) const LOGIN_ONLY: &str =
    "comments, tags, insights and webhook subscriptions exist on Instagram Login only";

/// Refuses ids that could change the path (`/`, `?`, `..`): ids are digits, or `me`.
pub(crate) fn check_id(id: &str) -> Result<(), &'static str> {
    let valid =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then_some(()).ok_or("an id must be alphanumeric")
}

/// The query parameters beyond `fields`: paging for the media edge, ids for a batch read.
#[derive(Clone, Debug, Default)]
struct Params {
    ids: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
    before: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

/// A Graph query of node `N` as a value: build it from a [`GraphClient`] handle
/// ([`me`](GraphClient::me), [`my_media`](GraphClient::my_media), ...), adjust it, then
/// [`send`](Self::send) it, or render it yourself with [`to_http`](Self::to_http).
///
/// ```
/// use igdisplay_graph::{GraphClient, GraphEndpoint, UserField};
/// use igdisplay_http::test_util::{FnBackend, json_response};
/// use igdisplay_model::{AccessToken, Platform};
/// use std::sync::Arc;
///
/// let backend = Arc::new(FnBackend::new(|_| Ok(json_response(200, "{}"))));
/// let client = GraphClient::with_token(backend, GraphEndpoint::new(Platform::InstagramLogin), AccessToken::new("T0KEN"));
/// let request = client.me().fields(&[UserField::Username]).to_http(&AccessToken::new("T0KEN"))?;
/// assert_eq!(
///     request.uri(),
///     "https://graph.instagram.com/me?fields=id%2Cusername&access_token=T0KEN"
/// );
/// # Ok::<(), igdisplay_graph::Error>(())
/// ```
#[must_use = "a request does nothing until .send() is awaited"]
pub struct GraphRequest<N: Node> {
    client: GraphClient,
    /// The id the path starts with (the node's suffix follows it), or why it cannot be used.
    id: Result<Cow<'static, str>, &'static str>,
    /// What follows the id: the node's suffix, or another edge of the same shape (the media
    /// edge's `/stories`).
    edge: &'static str,
    /// `None`: the platform's default fields (built only when they are sent or changed).
    fields: Option<FieldList>,
    params: Params,
    node: PhantomData<fn() -> N>,
}

impl<N: Node> Clone for GraphRequest<N> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            id: self.id.clone(),
            edge: self.edge,
            fields: self.fields.clone(),
            params: self.params.clone(),
            node: PhantomData,
        }
    }
}

impl<N: Node> std::fmt::Debug for GraphRequest<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRequest")
            .field("node", &std::any::type_name::<N>())
            .field("id", &self.id)
            .field("fields", &self.field_param())
            .finish_non_exhaustive()
    }
}

impl<N: Node> GraphRequest<N> {
    /// The request for `id`, validated now, with the platform's default fields.
    fn new(client: GraphClient, id: Cow<'static, str>) -> Self {
        Self {
            id: check_id(&id).map(|()| id),
            edge: N::SUFFIX,
            client,
            fields: None,
            params: Params::default(),
            node: PhantomData,
        }
    }

    /// Requests exactly `fields` (`id` is always included; a `children{...}` expansion is kept).
    pub fn fields(mut self, fields: &[N::Field]) -> Self {
        let names = fields.iter().map(|f| f.as_str());
        match &mut self.fields {
            Some(list) => list.replace(names),
            // The defaults have no `children{...}` to keep.
            None => self.fields = Some(FieldList::new(std::iter::once("id").chain(names))),
        }
        self
    }

    /// Requests every field the platform serves.
    pub fn all_fields(self) -> Self {
        let platform = self.client.endpoint().platform;
        self.fields(N::Field::all(platform))
    }

    /// The `fields=` value as it will be sent.
    pub fn field_param(&self) -> String {
        match &self.fields {
            Some(list) => list.to_param(),
            None => self.default_fields().to_param(),
        }
    }

    /// The platform's default fields for this node.
    fn default_fields(&self) -> FieldList {
        FieldList::of(N::Field::defaults(self.client.endpoint().platform))
    }

    /// The fields, the defaults made explicit, for a change.
    fn fields_mut(&mut self) -> &mut FieldList {
        if self.fields.is_none() {
            self.fields = Some(self.default_fields());
        }
        self.fields.get_or_insert_default()
    }

    /// The whole request for `token`, built without I/O: `GET
    /// {base}[/{version}]/{path}?fields=...[&paging]&access_token=...`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] for an id that is not alphanumeric, or a base URL that does
    /// not form a URI.
    pub fn to_http(&self, token: &AccessToken) -> Result<HttpRequest, Error> {
        let id = self
            .id
            .as_deref()
            .map_err(|reason| Error::InvalidRequest(reason))?;
        let defaults;
        let fields = match &self.fields {
            Some(list) => list,
            None => {
                defaults = self.default_fields();
                &defaults
            }
        };
        let paging = &self.params;
        let limit = paging.limit.map(|l| l.to_string());
        let since = paging.since.map(|s| s.to_string());
        let until = paging.until.map(|u| u.to_string());
        let pairs = [
            ("limit", limit.as_deref()),
            ("since", since.as_deref()),
            ("until", until.as_deref()),
            ("after", paging.after.as_deref()),
            ("before", paging.before.as_deref()),
            ("access_token", Some(token.expose_secret())),
        ];
        // Room for the whole query, escapes at their widest: one allocation.
        let mut field_chars = 0usize;
        fields.write_param(|part| field_chars = field_chars.saturating_add(part.len()));
        let room = pairs
            .iter()
            .chain([&("ids", paging.ids.as_deref())])
            .filter_map(|(k, v)| Some(k.len() + (*v)?.len().saturating_mul(3) + 2))
            .fold(
                field_chars.saturating_mul(3).saturating_add(8),
                usize::saturating_add,
            );
        let mut uri = self.client.endpoint().url(&[id, self.edge], room);
        let mut query = QueryWriter::new(&mut uri);
        if let Some(ids) = &paging.ids {
            query.pair("ids", ids);
        }
        // Written from its parts: the value is never assembled into a string of its own.
        query.pair_with("fields", |value| {
            fields.write_param(|part| {
                value.push(part);
            });
        });
        for (name, value) in pairs {
            if let Some(value) = value {
                query.pair(name, value);
            }
        }
        graph_request(http::Method::GET, uri)
    }

    /// Reads a response to this request, sent with `token`, without I/O: the decoded body,
    /// or the typed error an error response means. A rate-limit error carries no pause here:
    /// the pipeline adds the one it computes.
    ///
    /// # Errors
    ///
    /// [`Error::Api`], [`Error::RateLimited`], [`Error::UnexpectedResponse`] for an error
    /// status; [`Error::Decode`] for a success body of the wrong shape.
    pub fn parse(&self, response: &HttpResponse, token: &AccessToken) -> Result<N::Output, Error> {
        let secrets = [token.expose_secret()];
        if response.status().is_success() {
            return N::decode(response.body(), &secrets);
        }
        Err(error_response(response, &secrets))
    }

    /// Sends the request through the client's pipeline (pacing, token, retries).
    ///
    /// # Errors
    ///
    /// Every [`Error`]; [`Error::requires_login`] says when only a new login helps and
    /// [`Error::is_retryable`] when a later try may succeed.
    // Not `async fn`: that would hold the request twice, as its argument and as a local.
    #[allow(clippy::manual_async_fn)]
    pub fn send(self) -> impl Future<Output = Result<N::Output, Error>> + Send + 'static {
        async move { self.client.execute(&self).await }
    }
}

/// A Graph query is a read: the send loop may send it again, with a token fetched for each
/// attempt (borrowed when it is fixed).
impl<N: Node> igdisplay_http::Exchange<std::borrow::Cow<'_, AccessToken>> for GraphRequest<N> {
    type Output = N::Output;
    type Error = Error;

    fn kind(&self) -> igdisplay_http::RequestKind {
        igdisplay_http::RequestKind::Idempotent
    }

    fn render(&self, token: &std::borrow::Cow<'_, AccessToken>) -> Result<HttpRequest, Error> {
        self.to_http(token)
    }

    fn parse(
        &self,
        response: &HttpResponse,
        token: &std::borrow::Cow<'_, AccessToken>,
    ) -> Result<N::Output, Error> {
        GraphRequest::parse(self, response, token)
    }
}

/// The typed error an error response means.
pub(crate) fn error_response(response: &HttpResponse, secrets: &[&str]) -> Error {
    let status = response.status().as_u16();
    let graph = match ErrorBody::parse(response.body()) {
        Some(ErrorBody::Graph(body)) => Some(body.error),
        _ => None,
    };
    let class = graph
        .as_ref()
        .map(|e| e.class(status))
        .unwrap_or_else(|| igdisplay_model::classify(0, None, false, status));
    match graph {
        _ if class == ErrorClass::RateLimited => Error::RateLimited {
            usage: None,
            retry_after: None,
            error: graph.map(Box::new),
        },
        Some(error) => Error::Api {
            status,
            class,
            error: Box::new(error),
            attempts: 1,
        },
        None => Error::UnexpectedResponse {
            status,
            snippet: igdisplay_model::snippet(response.body(), secrets),
            attempts: 1,
        },
    }
}

impl<N: ExpandsChildren> GraphRequest<N> {
    /// Fetches album items in the same request by field expansion (`children{...}`): a whole
    /// library costs one request per page, not one per album.
    pub fn with_children(mut self) -> Self {
        self.fields_mut()
            .expand_children(MediaField::child_fields().iter().map(|f| f.as_str()));
        self
    }
}

impl<N: PagedEdge> GraphRequest<N> {
    /// Items per page (Instagram's default is 25; about 100 is the useful maximum).
    pub fn limit(mut self, limit: u32) -> Self {
        self.params.limit = Some(limit.max(1));
        self
    }

    /// Starts after this cursor.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.params.after = Some(cursor.into());
        self
    }

    /// Ends before this cursor.
    pub fn before(mut self, cursor: impl Into<String>) -> Self {
        self.params.before = Some(cursor.into());
        self
    }

    /// Every item over every page, newest first, holding one page in memory: the items of
    /// [`pages`](Self::pages) one by one. After an error it ends.
    pub fn into_stream(self) -> ItemStream<N::Item> {
        let state = StreamState {
            pages: self.pages(),
            buffer: VecDeque::new(),
        };
        stream::unfold(state, StreamState::next).boxed()
    }

    /// The pages one at a time, each one request, with the page just read listed again on
    /// demand ([`Pages::again`]: fresh media links for a page whose links expired, one
    /// request for the whole page).
    ///
    /// Each next request is rebuilt from the `after` cursor against the configured base URL;
    /// `paging.next` is never followed, so the token never goes to a host it names. The walk
    /// ends after the page without a next cursor, and fails with [`Error::PaginationLoop`] on a
    /// repeated cursor or [`Error::TooManyEmptyPages`] after [`MAX_EMPTY_PAGES`] empty pages in
    /// a row.
    pub fn pages(mut self) -> Pages<N> {
        self.params.before = None;
        Pages {
            cursor: self.params.after.take(),
            current: None,
            template: self,
            seen: HashSet::new(),
            empty_run: 0,
            finished: false,
        }
    }
}

impl GraphRequest<MediaEdge> {
    /// Only media published at or after this instant.
    pub fn since(mut self, instant: Timestamp) -> Self {
        self.params.since = Some(instant.unix());
        self
    }

    /// Only media published at or before this instant.
    pub fn until(mut self, instant: Timestamp) -> Self {
        self.params.until = Some(instant.unix());
        self
    }
}

impl GraphRequest<CommentsEdge> {
    /// Brings each comment's first page of replies in the same request (`replies{...}`, with
    /// the fields asked of the comments); a comment with more replies pages them with
    /// [`GraphClient::replies`].
    pub fn with_replies(mut self) -> Self {
        let fields: Vec<&'static str> = match &self.fields {
            Some(list) => list.names().to_vec(),
            None => self.default_fields().names().to_vec(),
        };
        self.fields_mut().expand("replies", fields);
        self
    }
}

/// The pages of an edge, one request each ([`GraphRequest::pages`]).
#[derive(Debug)]
pub struct Pages<N: PagedEdge = MediaEdge> {
    template: GraphRequest<N>,
    /// The cursor of the next page.
    cursor: Option<String>,
    /// The cursor the last page was read with.
    current: Option<String>,
    seen: HashSet<String>,
    empty_run: u32,
    finished: bool,
}

impl<N: PagedEdge> Pages<N> {
    /// The next page; `None` after the last one, or after an error.
    ///
    /// # Errors
    ///
    /// The request's [`Error`], [`Error::PaginationLoop`] or [`Error::TooManyEmptyPages`].
    pub async fn next_page(&mut self) -> Option<Result<Page<N::Item>, Error>> {
        if self.finished {
            return None;
        }
        let mut request = self.template.clone();
        request.params.after = self.cursor.clone();
        let page = match request.send().await {
            Ok(page) => page,
            Err(error) => return Some(Err(self.fail(error))),
        };
        self.current = self.cursor.take();
        if page.items.is_empty() {
            self.empty_run += 1;
            if self.empty_run >= MAX_EMPTY_PAGES && page.after.is_some() {
                let run = self.empty_run;
                return Some(Err(self.fail(Error::TooManyEmptyPages(run))));
            }
        } else {
            self.empty_run = 0;
        }
        match &page.after {
            None => self.finished = true,
            Some(cursor) if !self.seen.insert(cursor.clone()) => {
                return Some(Err(self.fail(Error::PaginationLoop)));
            }
            Some(cursor) => self.cursor = Some(cursor.clone()),
        }
        Some(Ok(page))
    }

    /// The page [`next_page`](Self::next_page) returned last, listed again: its links fresh.
    /// The walk goes on where it was.
    ///
    /// # Errors
    ///
    /// The request's [`Error`].
    pub async fn again(&self) -> Result<Page<N::Item>, Error> {
        let mut request = self.template.clone();
        request.params.after = self.current.clone();
        request.send().await
    }

    fn fail(&mut self, error: Error) -> Error {
        self.finished = true;
        error
    }
}

struct StreamState<N: PagedEdge> {
    pages: Pages<N>,
    buffer: VecDeque<N::Item>,
}

impl<N: PagedEdge> StreamState<N> {
    async fn next(mut self) -> Option<(Result<N::Item, Error>, Self)> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some((Ok(item), self));
            }
            match self.pages.next_page().await? {
                Ok(page) => self.buffer = page.items.into(),
                Err(error) => return Some((Err(error), self)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{GraphClient, GraphEndpoint, MediaField, UserField};
    use igdisplay_http::test_util::{FnBackend, json_response};
    use igdisplay_model::{AccessToken, Platform};
    use std::sync::Arc;

    fn client() -> GraphClient {
        let backend = Arc::new(FnBackend::new(|_| Ok(json_response(200, "{}"))));
        GraphClient::with_token(
            backend,
            GraphEndpoint::new(Platform::InstagramLogin),
            AccessToken::new("T"),
        )
    }

    #[test]
    fn the_default_fields_are_sent_unless_changed_and_changes_start_from_them() {
        let graph = client();
        assert_eq!(
            graph.me().field_param(),
            "id,user_id,username,name,account_type,profile_picture_url,media_count"
        );
        assert_eq!(graph.me().fields(&[UserField::Name]).field_param(), "id,name");
        let media = graph.my_media().with_children();
        assert_eq!(
            media.field_param(),
            "id,caption,media_type,media_url,thumbnail_url,permalink,timestamp,\
             children{id,media_type,media_url,thumbnail_url,permalink,timestamp}"
        );
        assert_eq!(
            media.fields(&[MediaField::Caption]).field_param(),
            "id,caption,children{id,media_type,media_url,thumbnail_url,permalink,timestamp}",
            "the expansion survives a field change"
        );
    }

    #[test]
    fn stories_are_their_own_edge_on_instagram_login_and_refused_unsent_on_basic_display() {
        let token = AccessToken::new("T");
        let request = client().my_stories().limit(10).to_http(&token).unwrap();
        let uri = request.uri().to_string();
        assert!(uri.contains("/me/stories?"), "{uri}");
        assert!(uri.contains("limit=10"), "paged like the media edge: {uri}");
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let basic = GraphClient::with_token(
            Arc::new(FnBackend::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(json_response(200, "{}"))
            })),
            GraphEndpoint::new(Platform::BasicDisplay),
            token.clone(),
        );
        assert!(matches!(
            basic.my_stories().to_http(&token),
            Err(crate::Error::InvalidRequest(_))
        ));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(runtime.block_on(basic.my_stories().send()).is_err());
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing sent");
    }
}
