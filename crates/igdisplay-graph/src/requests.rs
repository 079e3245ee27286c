//! The queries: resource handle → builder → `.send().await`. Builders own a cheap client
//! clone, render their query without I/O (`to_query`), and are `#[must_use]`.

use crate::fields::{FieldList, MediaField, UserField};
use crate::{Error, GraphClient};
use futures_util::stream::{self, BoxStream, StreamExt};
use igdisplay_model::{ListResponse, Media, MediaId, Timestamp, User, UserId};
use std::collections::{HashSet, VecDeque};

/// Empty pages tolerated in a row before a stream gives up.
pub const MAX_EMPTY_PAGES: u32 = 3;

/// A stream of media over every page.
pub type MediaStream = BoxStream<'static, Result<Media, Error>>;

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

impl GraphClient {
    /// The token's own user (`/me`).
    pub fn me(&self) -> UserRequest {
        UserRequest::new(self.clone(), "me".to_owned())
    }

    /// A user by id (`/{user-id}`).
    pub fn user(&self, id: &UserId) -> UserRequest {
        UserRequest::new(self.clone(), id.as_str().to_owned())
    }

    /// The token user's media (`/me/media`).
    pub fn my_media(&self) -> MediaListRequest {
        MediaListRequest::new(self.clone(), "me".to_owned())
    }

    /// A user's media (`/{user-id}/media`).
    pub fn user_media(&self, id: &UserId) -> MediaListRequest {
        MediaListRequest::new(self.clone(), id.as_str().to_owned())
    }

    /// A media item (`/{media-id}`).
    pub fn media(&self, id: &MediaId) -> MediaRequest {
        let fields = FieldList::new(
            MediaField::defaults(self.config().platform)
                .iter()
                .map(|f| f.as_str()),
        );
        MediaRequest {
            client: self.clone(),
            id: id.as_str().to_owned(),
            fields,
        }
    }

    /// An album's items (`/{media-id}/children`).
    pub fn children(&self, album: &MediaId) -> ChildrenRequest {
        ChildrenRequest {
            client: self.clone(),
            id: album.as_str().to_owned(),
            fields: FieldList::new(MediaField::child_fields().iter().map(|f| f.as_str())),
        }
    }
}

/// Refuses ids that could change the path (`/`, `?`, `..`): ids are digits, or `me`.
fn path_segment(id: &str) -> Result<&str, Error> {
    let valid =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid
        .then_some(id)
        .ok_or(Error::InvalidRequest("an id must be alphanumeric"))
}

/// `GET /me` or `GET /{user-id}`.
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until .send() is awaited"]
pub struct UserRequest {
    client: GraphClient,
    id: String,
    fields: FieldList,
}

impl UserRequest {
    fn new(client: GraphClient, id: String) -> Self {
        let fields = FieldList::new(
            UserField::defaults(client.config().platform)
                .iter()
                .map(|f| f.as_str()),
        );
        Self { client, id, fields }
    }

    /// Requests exactly `fields` (`id` is always included; a `children{...}` expansion is kept).
    pub fn fields(mut self, fields: &[UserField]) -> Self {
        self.fields.replace(fields.iter().map(|f| f.as_str()));
        self
    }

    /// Requests every field the platform serves.
    pub fn all_fields(self) -> Self {
        let platform = self.client.config().platform;
        self.fields(UserField::all(platform))
    }

    /// The query, without the token.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        vec![("fields", self.fields.to_param())]
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// Any [`Error`].
    pub async fn send(self) -> Result<User, Error> {
        let path = path_segment(&self.id)?.to_owned();
        self.client.get(&path, &self.to_query()).await
    }
}

/// `GET /{media-id}`.
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until .send() is awaited"]
pub struct MediaRequest {
    client: GraphClient,
    id: String,
    fields: FieldList,
}

impl MediaRequest {
    /// Requests exactly `fields` (`id` is always included; a `children{...}` expansion is kept).
    pub fn fields(mut self, fields: &[MediaField]) -> Self {
        self.fields.replace(fields.iter().map(|f| f.as_str()));
        self
    }

    /// Requests every field the platform serves.
    pub fn all_fields(self) -> Self {
        let platform = self.client.config().platform;
        self.fields(MediaField::all(platform))
    }

    /// Also fetches an album's items in the same request (`children{...}`).
    pub fn with_children(mut self) -> Self {
        self.fields
            .expand_children(MediaField::child_fields().iter().map(|f| f.as_str()));
        self
    }

    /// The query, without the token.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        vec![("fields", self.fields.to_param())]
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// Any [`Error`].
    pub async fn send(self) -> Result<Media, Error> {
        let path = path_segment(&self.id)?.to_owned();
        self.client.get(&path, &self.to_query()).await
    }
}

/// `GET /{media-id}/children`: an album's images and videos.
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until .send() is awaited"]
pub struct ChildrenRequest {
    client: GraphClient,
    id: String,
    fields: FieldList,
}

impl ChildrenRequest {
    /// Requests exactly `fields` (`id` is always included; a `children{...}` expansion is kept).
    pub fn fields(mut self, fields: &[MediaField]) -> Self {
        self.fields.replace(fields.iter().map(|f| f.as_str()));
        self
    }

    /// The query, without the token.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        vec![("fields", self.fields.to_param())]
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// Any [`Error`].
    pub async fn send(self) -> Result<Page<Media>, Error> {
        let path = format!("{}/children", path_segment(&self.id)?);
        let list: ListResponse<Media> = self.client.get(&path, &self.to_query()).await?;
        Ok(Page::from_list(list))
    }
}

/// `GET /{user-id}/media`: one page with [`send`](Self::send), or every item with
/// [`into_stream`](Self::into_stream).
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until .send() is awaited or the stream is polled"]
pub struct MediaListRequest {
    client: GraphClient,
    owner: String,
    fields: FieldList,
    limit: Option<u32>,
    after: Option<String>,
    before: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

impl MediaListRequest {
    fn new(client: GraphClient, owner: String) -> Self {
        let fields = FieldList::new(
            MediaField::defaults(client.config().platform)
                .iter()
                .map(|f| f.as_str()),
        );
        Self {
            client,
            owner,
            fields,
            limit: None,
            after: None,
            before: None,
            since: None,
            until: None,
        }
    }

    /// Requests exactly `fields` (`id` is always included; a `children{...}` expansion is kept).
    pub fn fields(mut self, fields: &[MediaField]) -> Self {
        self.fields.replace(fields.iter().map(|f| f.as_str()));
        self
    }

    /// Requests every field the platform serves.
    pub fn all_fields(self) -> Self {
        let platform = self.client.config().platform;
        self.fields(MediaField::all(platform))
    }

    /// Fetches album items with each page by field expansion (`children{...}`): a whole
    /// library costs one request per page, not one per album.
    pub fn with_children(mut self) -> Self {
        self.fields
            .expand_children(MediaField::child_fields().iter().map(|f| f.as_str()));
        self
    }

    /// Items per page (Instagram's default is 25; about 100 is the useful maximum).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit.max(1));
        self
    }

    /// Starts after this cursor.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = Some(cursor.into());
        self
    }

    /// Ends before this cursor.
    pub fn before(mut self, cursor: impl Into<String>) -> Self {
        self.before = Some(cursor.into());
        self
    }

    /// Only media published at or after this instant.
    pub fn since(mut self, instant: Timestamp) -> Self {
        self.since = Some(instant.unix());
        self
    }

    /// Only media published at or before this instant.
    pub fn until(mut self, instant: Timestamp) -> Self {
        self.until = Some(instant.unix());
        self
    }

    /// The query, without the token.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("fields", self.fields.to_param())];
        let optional = [
            ("limit", self.limit.map(|l| l.to_string())),
            ("since", self.since.map(|s| s.to_string())),
            ("until", self.until.map(|u| u.to_string())),
            ("after", self.after.clone()),
            ("before", self.before.clone()),
        ];
        query.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        query
    }

    /// Sends the request for one page.
    ///
    /// # Errors
    ///
    /// Any [`Error`].
    pub async fn send(self) -> Result<Page<Media>, Error> {
        let path = format!("{}/media", path_segment(&self.owner)?);
        let list: ListResponse<Media> = self.client.get(&path, &self.to_query()).await?;
        Ok(Page::from_list(list))
    }

    /// Every item over every page, newest first, holding one page in memory.
    ///
    /// Each next request is rebuilt from the `after` cursor against the configured base URL;
    /// `paging.next` is never followed, so the token never goes to a host it names. The stream
    /// ends after the page without a next cursor, and fails with [`Error::PaginationLoop`] on a
    /// repeated cursor or [`Error::TooManyEmptyPages`] after [`MAX_EMPTY_PAGES`] empty pages in
    /// a row. After an error it ends.
    pub fn into_stream(self) -> MediaStream {
        let state = StreamState {
            cursor: self.after.clone(),
            template: MediaListRequest { before: None, ..self },
            buffer: VecDeque::new(),
            seen: HashSet::new(),
            empty_run: 0,
            finished: false,
        };
        stream::unfold(state, StreamState::next).boxed()
    }
}

struct StreamState {
    template: MediaListRequest,
    cursor: Option<String>,
    buffer: VecDeque<Media>,
    seen: HashSet<String>,
    empty_run: u32,
    finished: bool,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<Media, Error>, Self)> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some((Ok(item), self));
            }
            if self.finished {
                return None;
            }
            let request = MediaListRequest {
                after: self.cursor.take(),
                ..self.template.clone()
            };
            let page = match request.send().await {
                Ok(page) => page,
                Err(error) => return self.fail(error),
            };
            if page.items.is_empty() {
                self.empty_run += 1;
                if self.empty_run >= MAX_EMPTY_PAGES && page.after.is_some() {
                    let run = self.empty_run;
                    return self.fail(Error::TooManyEmptyPages(run));
                }
            } else {
                self.empty_run = 0;
            }
            match page.after {
                None => self.finished = true,
                Some(cursor) if !self.seen.insert(cursor.clone()) => return self.fail(Error::PaginationLoop),
                Some(cursor) => self.cursor = Some(cursor),
            }
            self.buffer = page.items.into();
        }
    }

    fn fail(mut self, error: Error) -> Option<(Result<Media, Error>, Self)> {
        self.finished = true;
        self.buffer.clear();
        Some((Err(error), self))
    }
}
