//! The Graph side: `/me`, `/{user-id}`, `/{user-id}/media`, `/{media-id}`,
//! `/{media-id}/children`, an optional `/vNN.N/` prefix, field selection with the real defaults
//! and errors, `children{...}` expansion, cursor paging with absolute links, per-user rate
//! limits with usage headers; media links are the CDN's (`cdn.rs` signs them and checks them).
//!
//! Reads are strict where Instagram is strict and lenient where it is lenient:
//!
//! - an unknown field fails the whole request with code 100 (Instagram does not drop it);
//! - a field that does not apply to an item (a caption on an album child, a thumbnail on an
//!   image) is left out of that item, never sent as `null`;
//! - `limit` above 100 is clamped, not refused; a garbled cursor or bound is code 100;
//! - another user's object, or one that does not exist, is the same code 100/33;
//! - a Basic Display token without `user_media` gets code 10 for anything about media.
//!
//! Rate limits count Graph calls per user over the last hour of mock time. Token requests are
//! not counted, as on Instagram. Usage headers appear from half the budget on; at the budget,
//! code 17 with `is_transient` and a usage header at 100 % saying when access comes back.

use crate::clock::instagram_timestamp;
use crate::fields::{Fields, parse_fields};
use crate::seed::{MockPlatform, SeedShape};
use crate::state::{Child, Kind, Media, MediaRef, User, World};
use crate::wire::{Field, GraphFailure, Node, Reply, Req, encode};
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// How long a story is listed after it was posted: 24 hours.
const STORY_LIFETIME: i64 = 24 * 3600;

/// `(#100) Invalid parameter: {what}`: a limit, bound or cursor the API cannot read.
fn invalid_parameter(what: &str) -> GraphFailure {
    GraphFailure::new(
        400,
        "OAuthException",
        100,
        format!("(#100) Invalid parameter: {what}"),
    )
}

/// Code 2500 for a path the Graph API does not have.
fn unknown_path(segments: &[&str]) -> GraphFailure {
    GraphFailure::new(
        400,
        "IGApiException",
        2500,
        format!("Unknown path components: /{}", segments.join("/")),
    )
}

/// What selects one page of a user's media.
pub(super) struct PageQuery<'a> {
    /// Items per page, already clamped to 1..=100.
    pub(super) limit: usize,
    /// Only items published at or after this time, Unix seconds.
    pub(super) since: Option<i64>,
    /// Only items published at or before this time, Unix seconds.
    pub(super) until: Option<i64>,
    /// Start after the item this cursor names.
    pub(super) after: Option<&'a str>,
    /// End before the item this cursor names.
    pub(super) before: Option<&'a str>,
    /// The `fields` value as asked, repeated in the `next`/`previous` links.
    pub(super) fields_text: &'a str,
    /// The API version the links name: the one asked in, else the options' `link_version`.
    pub(super) version: &'a str,
}

/// A time bound as Instagram reads `since`/`until` (strtotime): Unix seconds, a date
/// (`2026-01-14`, midnight UTC), an RFC 3339 UTC time, or `now`, `today`, `yesterday`,
/// `tomorrow` (midnights, UTC) measured from `now`.
fn parse_time(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    if let Ok(unix) = text.parse::<i64>() {
        return Some(unix);
    }
    let midnight = now - now.rem_euclid(86_400);
    match text.to_ascii_lowercase().as_str() {
        "now" => return Some(now),
        "today" | "midnight" => return Some(midnight),
        "yesterday" => return Some(midnight - 86_400),
        "tomorrow" => return Some(midnight + 86_400),
        _ => {}
    }
    crate::clock::parse_rfc3339(text).or_else(|| crate::clock::parse_rfc3339(&format!("{text}T00:00:00Z")))
}

/// The fields of the Media node on Basic Display (reference A.10); `children` is the album
/// edge, valid only as an expansion.
const MEDIA_FIELDS_BASIC: &[&str] = &[
    "id",
    "caption",
    "media_type",
    "media_url",
    "permalink",
    "thumbnail_url",
    "timestamp",
    "username",
    "is_shared_to_feed",
    "children",
];
/// The fields of the Media node on Instagram Login (reference B.7): counts, shortcode, owner,
/// product type and alt text on top of Basic Display's.
const MEDIA_FIELDS_LOGIN: &[&str] = &[
    "id",
    "caption",
    "media_type",
    "media_product_type",
    "media_url",
    "permalink",
    "thumbnail_url",
    "shortcode",
    "timestamp",
    "username",
    "owner",
    "like_count",
    "comments_count",
    "is_comment_enabled",
    "is_shared_to_feed",
    "alt_text",
    "view_count",
    "children",
];
/// Page size when no `limit` is given (reference A.9: 25).
pub(super) const DEFAULT_LIMIT: usize = 25;
/// The most a page holds, whatever `limit` asks (larger values are clamped, as observed).
pub(super) const MAX_LIMIT: usize = 100;

/// The page size a listing's `limit` asks: the default without one, clamped to 1..=100, and
/// code 100 for one that is not a number. The media edge, tags, comments and replies read it
/// so.
pub(super) fn page_limit(req: &Req) -> Result<usize, GraphFailure> {
    match req.param("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .map(|limit| limit.clamp(1, MAX_LIMIT))
            .map_err(|_| invalid_parameter("limit")),
    }
}

/// Code 100 on Instagram Login's side (`IGApiException`), with `message` after `(#100) `: a
/// parameter missing or refused, a call that cannot be made on this object.
pub(super) fn refused(message: &str) -> GraphFailure {
    GraphFailure::new(400, "IGApiException", 100, format!("(#100) {message}"))
}

/// Code 10, "Application does not have permission for this action": a token without the
/// scope a call needs (Basic Display's `user_media` for media, reference A.13; Instagram
/// Login's comments or insights scope).
pub(super) fn no_permission() -> GraphFailure {
    GraphFailure::new(
        403,
        "IGApiException",
        10,
        "Application does not have permission for this action",
    )
}

/// Code 100 subcode 33: an object that does not exist or is not the token user's. Instagram
/// does not tell the two apart, so a client cannot probe for other users' media.
pub(super) fn unknown_object(id: &str) -> GraphFailure {
    GraphFailure::new(
        400,
        "GraphMethodException",
        100,
        format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing \
             permissions, or does not support this operation."
        ),
    )
    .subcode(33)
}

impl World {
    /// Dispatches a Graph path (version prefix already removed).
    ///
    /// The order is Instagram's: only GET is served (anything else is code 100, "Unsupported
    /// request - method type"); the token comes from `access_token` or an `Authorization:
    /// Bearer`/`OAuth` header and must be live (190 otherwise, with the subcode of why); the
    /// call is counted against the user's hour before anything is read (17 beyond it); then
    /// the node: `me` or the user's own ids, a media id, `{user}/media` or `{album}/children`.
    /// Anything else is code 2500, "Unknown path components".
    pub(crate) fn graph(&mut self, req: &Req, segments: &[&str]) -> Result<Reply, GraphFailure> {
        let writes = self.options.platform == MockPlatform::InstagramLogin
            && matches!(req.method, http::Method::POST | http::Method::DELETE);
        if req.method != http::Method::GET && !writes {
            return Err(super::oauth::unsupported_method(&req.method));
        }
        let token = req
            .param("access_token")
            .map(std::borrow::Cow::Borrowed)
            .or_else(|| bearer(&req.headers).map(std::borrow::Cow::Owned))
            .ok_or_else(|| {
                GraphFailure::new(
                    400,
                    "OAuthException",
                    104,
                    "An access token is required to request this resource.",
                )
            })?;
        let (record, user) = self.check_token(&token)?;
        let media_allowed = match self.options.platform {
            MockPlatform::BasicDisplay => record.scopes.iter().any(|s| s == "user_media"),
            MockPlatform::InstagramLogin => true,
        };
        let granted = |scope: &str| record.scopes.iter().any(|s| s == scope);
        let comments_allowed = granted("instagram_business_manage_comments");
        let insights_allowed = granted("instagram_business_manage_insights");
        let usage = self.count_call(user)?;
        let fields = self.fields_cache.get(req.param("fields"));
        let routed = match self.comment_route(req, segments, user, comments_allowed, &token, &fields) {
            Some(body) => Some(body),
            None => self
                .insights_route(req, segments, user, insights_allowed)
                .or_else(|| self.subscriptions_route(req, segments, user)),
        };
        let body = match routed {
            Some(body) => body,
            None if req.method == http::Method::GET => {
                self.graph_body(req, segments, user, &fields, media_allowed, &token)
            }
            None => Err(super::oauth::unsupported_method(&req.method)),
        };
        // The usage header rides on errors too (it was recorded on one at 0 %).
        let body = match body {
            Ok(body) => body,
            Err(failure) => return Err(usage.into_iter().fold(failure, GraphFailure::with_header)),
        };
        let mut reply = Reply::json_bytes(200, body);
        if let Some((name, value)) = usage {
            reply = reply.header(name, value);
        }
        Ok(reply)
    }

    /// The body of a Graph read, by path: a batch read, the user node, a media node, the
    /// media edge or an album's children.
    fn graph_body(
        &self,
        req: &Req,
        segments: &[&str],
        user: usize,
        fields: &Fields,
        media_allowed: bool,
        token: &str,
    ) -> Result<Vec<u8>, GraphFailure> {
        // The user node renders itself (read on every `/me`: no intermediate tree).
        if let [node] = segments
            && self.is_self(node, user)
        {
            let version = req.api_version().unwrap_or(&self.options.link_version);
            return self.user_node(user, fields, media_allowed, token, version);
        }
        let value = match segments {
            [] => match req.param("ids") {
                Some(ids) => self.media_by_ids(ids, user, fields, media_allowed)?,
                None => return Err(unknown_path(segments)),
            },
            [node] => match self.media_index.get(*node).copied() {
                Some(found) if owner(found) == user && media_allowed => {
                    Value::Object(self.media_node(found, fields)?)
                }
                Some(_) if !media_allowed => return Err(no_permission()),
                _ => return Err(unknown_object(node)),
            },
            [node, "media"] if self.is_self(node, user) => {
                if !media_allowed {
                    return Err(no_permission());
                }
                self.media_edge(req, user, fields, token)?
            }
            [node, "stories"]
                if self.is_self(node, user) && self.options.platform == MockPlatform::InstagramLogin =>
            {
                if !media_allowed {
                    return Err(no_permission());
                }
                self.stories_edge(user, fields)?
            }
            [node, "children"] => match self.media_index.get(*node).copied() {
                Some(found @ MediaRef::Item { user: u, index }) if u == user && media_allowed => {
                    if self.users[u].media[index].kind != Kind::Album {
                        return Err(unknown_object(node));
                    }
                    self.children_edge(found, fields)?
                }
                _ => return Err(unknown_object(node)),
            },
            _ => return Err(unknown_path(segments)),
        };
        crate::wire::render_json(&value)
    }

    /// An unknown field, as each platform words it (reference A.13, B.8): Basic Display
    /// `(#100) Tried accessing nonexisting field (x) on node type (Media)`; Instagram Login
    /// `Tried accessing nonexisting field (x)`, an `IGApiException` without `fbtrace_id`, as
    /// recorded.
    pub(super) fn nonexisting(&self, field: &str, node: &str) -> GraphFailure {
        match self.options.platform {
            MockPlatform::BasicDisplay => GraphFailure::new(
                400,
                "OAuthException",
                100,
                format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node})"),
            ),
            MockPlatform::InstagramLogin => GraphFailure::new(
                400,
                "IGApiException",
                100,
                format!("Tried accessing nonexisting field ({field})"),
            )
            .untraced(),
        }
    }

    /// Whether `node` names the token's own user: `me`, the app-scoped id, or (as `paging.next`
    /// links do) the professional account id.
    pub(super) fn is_self(&self, node: &str, user: usize) -> bool {
        node == "me" || node == self.users[user].id || node == self.users[user].ig_id
    }

    /// Counts a call against the user's rolling hour; refuses beyond the limit.
    ///
    /// The window is the last 3,600 seconds of mock time, so advancing the clock by an hour
    /// restores the budget. From `usage_header_from` percent on, the answer carries the usage
    /// header of the platform; at the limit the call fails with code 17 (transient, as
    /// Instagram marks it) and a header at 100 % with the minutes until the oldest call leaves
    /// the window.
    fn count_call(&mut self, user: usize) -> Result<Option<(&'static str, String)>, GraphFailure> {
        let Some(limit) = self.options.calls_per_hour else {
            return Ok(None);
        };
        let now = self.now();
        let calls = self.calls.entry(user).or_default();
        while calls.front().is_some_and(|t| *t <= now - 3600) {
            calls.pop_front();
        }
        let used = u32::try_from(calls.len()).unwrap_or(u32::MAX);
        let limit = limit.max(1);
        if used >= limit {
            let regain = calls.front().map_or(0, |oldest| (oldest + 3600 - now + 59) / 60);
            let header = self.usage_header(100, regain);
            return Err(
                GraphFailure::new(400, "OAuthException", 17, "(#17) User request limit reached")
                    .transient()
                    .with_header(header),
            );
        }
        calls.push_back(now);
        let percent = (used + 1) * 100 / limit;
        if percent < u32::from(self.options.usage_header_from) {
            return Ok(None);
        }
        Ok(Some(self.usage_header(percent.min(100), 0)))
    }

    /// The usage header at `percent`: `X-App-Usage` on Basic Display (a JSON object of
    /// percentages), `X-Business-Use-Case-Usage` on Instagram Login (keyed by the app id, with
    /// `estimated_time_to_regain_access` in minutes), both as reference A.14 and B.8 show them.
    fn usage_header(&self, percent: u32, regain_minutes: i64) -> (&'static str, String) {
        match self.options.platform {
            MockPlatform::BasicDisplay => (
                "x-app-usage",
                match self.options.usage_keys {
                    crate::UsageKeys::Instagram => json!({"call_volume": percent, "cpu_time": percent / 4}),
                    crate::UsageKeys::Facebook => {
                        json!({"call_count": percent, "total_cputime": percent / 4, "total_time": percent / 3})
                    }
                }
                .to_string(),
            ),
            MockPlatform::InstagramLogin => (
                "x-business-use-case-usage",
                json!({ self.app.id.clone(): [{
                    "type": "instagram", "call_count": percent, "total_cputime": percent / 4,
                    "total_time": percent / 3, "estimated_time_to_regain_access": regain_minutes,
                }]})
                .to_string(),
            ),
        }
    }

    /// The User node with exactly the asked `fields`: an unknown field fails the whole request
    /// (code 100), `media_count` needs the media permission, and `children` is not a field of a
    /// user. An expanded media page's links name `version`.
    fn user_node(
        &self,
        user: usize,
        fields: &Fields,
        media_allowed: bool,
        token: &str,
        version: &str,
    ) -> Result<Vec<u8>, GraphFailure> {
        let u = &self.users[user];
        let login = self.options.platform == MockPlatform::InstagramLogin;
        // The fields in the order of their names (sorted, each once), borrowed from the world.
        let mut out: Vec<(&str, Field<'_>)> = Vec::with_capacity(fields.by_name.len() + 1);
        for &i in &fields.by_name {
            let name = fields.names[i].as_str();
            match self.user_field(u, name, login, media_allowed) {
                Some(Ok(Some(value))) => out.push((name, value)),
                // A field this user lacks (a profile without a `website`) is left out, as
                // Instagram leaves it out, rather than sent as `null`.
                Some(Ok(None)) => {}
                // A refusal names the first refused field in the order asked, as Instagram does.
                _ => return Err(self.user_fields_refused(u, fields, login, media_allowed)),
            }
        }
        if fields.children.is_some() {
            return Err(self.nonexisting("children", "User"));
        }
        if let Some(edge) = &fields.media {
            if !media_allowed {
                return Err(no_permission());
            }
            let fields_text = edge.fields.join(",");
            let query = PageQuery {
                limit: edge.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
                since: None,
                until: None,
                after: None,
                before: None,
                fields_text: &fields_text,
                version,
            };
            let inner = parse_fields(Some(&fields_text));
            let page = Field::Tree(self.media_page(user, &inner, &query, token)?);
            let at = out.partition_point(|(name, _)| *name < "media");
            out.insert(at, ("media", page));
        }
        crate::wire::render_json(&Node(out))
    }

    /// The value of User field `name`: `None` for a field the platform does not serve (an
    /// `(#100) Tried accessing nonexisting field`), `Some(Err)` for `media_count` without the
    /// media permission, `Some(Ok(None))` for a field this user lacks. Basic Display serves four
    /// fields (reference A.8); Instagram Login adds the professional account's id, name,
    /// picture and follower counts (reference B.6).
    fn user_field<'a>(
        &self,
        u: &'a User,
        name: &str,
        login: bool,
        media_allowed: bool,
    ) -> Option<Result<Option<Field<'a>>, GraphFailure>> {
        let text = |t: &'a str| Some(Field::Text(t));
        let value = match name {
            "id" => text(&u.id),
            "username" => text(&u.username),
            "account_type" => text(&u.account_type),
            "media_count" if !media_allowed => return Some(Err(no_permission())),
            "media_count" => Some(Field::Number(u64::try_from(u.media.len()).unwrap_or(u64::MAX))),
            _ if !login => return None,
            "user_id" => text(&u.ig_id),
            "name" => text(&u.name),
            "profile_picture_url" => Some(Field::Owned(self.cdn_url(&format!("{}_profile.jpg", u.id)))),
            "followers_count" => Some(Field::Number(u.followers)),
            "follows_count" => Some(Field::Number(u.follows)),
            "biography" => u.biography.as_deref().and_then(text),
            "website" => u.website.as_deref().and_then(text),
            _ => return None,
        };
        Some(Ok(value))
    }

    /// The failure of a User read that asked for a field refused: the first, in the order
    /// asked.
    fn user_fields_refused(
        &self,
        u: &User,
        fields: &Fields,
        login: bool,
        media_allowed: bool,
    ) -> GraphFailure {
        for name in &fields.names {
            match self.user_field(u, name, login, media_allowed) {
                Some(Ok(_)) => {}
                Some(Err(failure)) => return failure,
                None => return self.nonexisting(name, "User"),
            }
        }
        self.nonexisting("", "User")
    }

    /// A media node by id: an item of the user's library, or an album's child (which answers
    /// with the child's own, smaller set of fields).
    fn media_node(&self, found: MediaRef, fields: &Fields) -> Result<Map<String, Value>, GraphFailure> {
        match found {
            MediaRef::Item { user, index } => self.render_media(user, &self.users[user].media[index], fields),
            MediaRef::Child { user, index, child } => {
                let parent = &self.users[user].media[index];
                self.render_child(user, parent, &parent.children[child], &fields.names)
            }
        }
    }

    /// The Media fields of the platform played.
    fn media_fields(&self) -> &'static [&'static str] {
        match self.options.platform {
            MockPlatform::BasicDisplay => MEDIA_FIELDS_BASIC,
            MockPlatform::InstagramLogin => MEDIA_FIELDS_LOGIN,
        }
    }

    /// One media item with exactly the asked `fields`.
    ///
    /// Fields that do not apply are left out rather than sent as `null`, as Instagram does: no
    /// `caption` on an uncaptioned post, no `thumbnail_url` on an image, no `media_url` or
    /// `permalink` on a copyright-flagged item, `alt_text` only on Instagram Login images,
    /// `view_count` only on videos. Media URLs are signed CDN links that expire with the clock.
    /// With `children{...}` an album carries its items inline (`children.data`), which is how a
    /// client gets a whole library at one request per page.
    fn render_media(
        &self,
        user: usize,
        media: &Media,
        fields: &Fields,
    ) -> Result<Map<String, Value>, GraphFailure> {
        let known = self.media_fields();
        let owner = &self.users[user];
        let login = self.options.platform == MockPlatform::InstagramLogin;
        let mut out = Map::new();
        for name in &fields.names {
            if !known.contains(&name.as_str()) {
                return Err(self.nonexisting(name, "Media"));
            }
            let value = match name.as_str() {
                "id" => json!(media.id),
                "caption" => match &media.caption {
                    Some(caption) => json!(caption),
                    None => continue,
                },
                "media_type" => json!(media_type(media.kind)),
                "media_product_type" => json!(match media.kind {
                    _ if media.traits.story => "STORY",
                    Kind::Reel => "REELS",
                    _ => "FEED",
                }),
                "media_url" if media.traits.without_media_url() => continue,
                // An album's media_url is its first item's; when that is a video, its cover image
                // (as recorded), never the video file.
                "media_url" => match (media.kind, media.children.first()) {
                    (Kind::Album, Some(first)) if first.kind.is_video() => {
                        json!(self.picture_url(&first.id, true, SeedShape::Square))
                    }
                    (Kind::Album, Some(first)) => {
                        json!(self.asset_url(&first.id, Kind::Image, SeedShape::Square))
                    }
                    _ => json!(self.asset_url(&media.id, media.kind, media.traits.shape)),
                },
                "permalink" if media.traits.copyright_flagged => continue,
                "permalink" => json!(permalink(media)),
                "thumbnail_url" if media.kind.is_video() => {
                    json!(self.picture_url(&media.id, true, media.traits.shape))
                }
                "thumbnail_url" => continue,
                "shortcode" => json!(media.shortcode),
                "timestamp" => json!(instagram_timestamp(media.timestamp)),
                "username" => json!(owner.username),
                "owner" => json!({"id": owner.ig_id}),
                "like_count" => json!(media.likes),
                "comments_count" => json!(self.threads.get(&media.id).map_or(media.comments, |t| t.count())),
                "is_comment_enabled" => json!(self.threads.get(&media.id).is_none_or(|t| t.enabled)),
                "is_shared_to_feed" if media.kind == Kind::Reel => json!(!media.traits.reels_tab_only),
                "alt_text" if login && media.kind == Kind::Image => {
                    json!(format!("Photo by @{}", owner.username))
                }
                "view_count" if media.kind.is_video() => json!(media.likes * 9 + 100),
                _ => continue,
            };
            out.insert(name.clone(), value);
        }
        if let Some(child_fields) = &fields.children
            && media.kind == Kind::Album
        {
            let data = media
                .children
                .iter()
                .map(|c| self.render_child(user, media, c, child_fields).map(Value::Object))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert("children".to_owned(), json!({ "data": data }));
        }
        Ok(out)
    }

    /// Album items carry no caption and no counts: only their id, type, URLs, their own
    /// permalink (as recorded), the album's timestamp, the owner's name and id; a caption or a count asked of a child
    /// is silently absent, and `children` of a child is an error.
    fn render_child(
        &self,
        user: usize,
        parent: &Media,
        child: &Child,
        names: &[String],
    ) -> Result<Map<String, Value>, GraphFailure> {
        let known = self.media_fields();
        let mut out = Map::new();
        for name in names {
            if !known.contains(&name.as_str()) || name == "children" {
                return Err(self.nonexisting(name, "Media"));
            }
            let value = match name.as_str() {
                "id" => json!(child.id),
                "media_type" => json!(media_type(child.kind)),
                "media_url" => json!(self.asset_url(&child.id, child.kind, SeedShape::Square)),
                "permalink" => json!(format!("https://www.instagram.com/p/{}/", child.shortcode)),
                "thumbnail_url" if child.kind.is_video() => {
                    json!(self.picture_url(&child.id, true, SeedShape::Square))
                }
                "timestamp" => json!(instagram_timestamp(parent.timestamp)),
                "username" => json!(self.users[user].username),
                "media_product_type" => json!("FEED"),
                "owner" => json!({"id": self.users[user].ig_id}),
                _ => continue,
            };
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    /// `/{user}/media`: one page of the user's library, newest first.
    ///
    /// `limit` (default 25, at most 100), `since`/`until` (Unix seconds, a date, an RFC 3339
    /// time, or `now`/`today`/`yesterday`/`tomorrow`, as strtotime reads them; inclusive) and
    /// one of `after`/`before` (a cursor of this mock; a foreign or garbled one is code 100).
    fn media_edge(
        &self,
        req: &Req,
        user: usize,
        fields: &Fields,
        token: &str,
    ) -> Result<Value, GraphFailure> {
        let limit = page_limit(req)?;
        let now = self.now();
        let bound = |name: &str| -> Result<Option<i64>, GraphFailure> {
            req.param(name)
                .map(|t| parse_time(t, now).ok_or_else(|| invalid_parameter(name)))
                .transpose()
        };
        let query = PageQuery {
            limit,
            since: bound("since")?,
            until: bound("until")?,
            after: req.param("after"),
            before: req.param("before"),
            fields_text: req.param("fields").unwrap_or("id"),
            version: req.api_version().unwrap_or(&self.options.link_version),
        };
        self.media_page(user, fields, &query, token)
    }

    /// `/{user}/stories` (Instagram Login): the stories posted in the last 24 hours, newest
    /// first, in one page (an account posts a few a day); an expired story is no longer
    /// listed.
    fn stories_edge(&self, user: usize, fields: &Fields) -> Result<Value, GraphFailure> {
        let now = self.now();
        let data = self.users[user]
            .stories
            .iter()
            .filter(|story| story.timestamp.saturating_add(STORY_LIFETIME) > now)
            .map(|story| self.render_media(user, story, fields).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({ "data": data }))
    }

    /// One page of `user`'s media for `query` (the media edge, and the `media{...}` expansion
    /// of a user node), by [`items_page`](Self::items_page).
    fn media_page(
        &self,
        user: usize,
        fields: &Fields,
        query: &PageQuery<'_>,
        token: &str,
    ) -> Result<Value, GraphFailure> {
        let items: Vec<(usize, &Media)> = self.users[user]
            .media
            .iter()
            .filter(|m| {
                query.since.is_none_or(|s| m.timestamp >= s) && query.until.is_none_or(|u| m.timestamp <= u)
            })
            .map(|m| (user, m))
            .collect();
        self.items_page(&items, "media", user, fields, query, token)
    }

    /// One page of `items` (each with its owner) for `query`: rendered with `fields`, and
    /// `paging` with cursors and, when there is more, absolute `next`/`previous` links to
    /// `{user's professional id}/{edge}` that repeat the token (reference A.15: that id can
    /// differ from `/me`'s), as recorded traffic shows.
    pub(super) fn items_page(
        &self,
        items: &[(usize, &Media)],
        edge: &str,
        user: usize,
        fields: &Fields,
        query: &PageQuery<'_>,
        token: &str,
    ) -> Result<Value, GraphFailure> {
        let position = |cursor: &str| -> Result<usize, GraphFailure> {
            let id = self
                .decode_cursor(cursor)
                .ok_or_else(|| invalid_parameter("cursor"))?;
            items
                .iter()
                .position(|(_, m)| m.id == id)
                .ok_or_else(|| invalid_parameter("cursor"))
        };
        let after = query.after.map(position).transpose()?;
        let before = query.before.map(position).transpose()?;
        let (start, end) = page_bounds(items.len(), query.limit, after, before);
        let page = &items[start..end];
        let data = page
            .iter()
            .map(|(owner, m)| self.render_media(*owner, m, fields).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = json!({ "data": data });
        if let (Some(first), Some(last)) = (page.first(), page.last()) {
            let (before, after) = (self.cursor(&first.1.id), self.cursor(&last.1.id));
            let mut paging = json!({"cursors": {"before": before, "after": after}});
            let link = |which: &str, cursor: &str| {
                let mut url = format!(
                    "{}/{}/{}/{edge}?access_token={}&fields={}&limit={}",
                    self.base,
                    query.version,
                    self.users[user].ig_id,
                    encode(token),
                    encode(query.fields_text),
                    query.limit,
                );
                for (name, value) in [("since", query.since), ("until", query.until)] {
                    if let Some(value) = value {
                        url.push_str(&format!("&{name}={value}"));
                    }
                }
                url.push_str(&format!("&{which}={cursor}"));
                url
            };
            if end < items.len() {
                paging["next"] = json!(link("after", &after));
            }
            if start > 0 {
                paging["previous"] = json!(link("before", &before));
            }
            body["paging"] = paging;
        }
        Ok(body)
    }

    /// `GET /?ids=a,b&fields=...`: several media items of the token's user, keyed by id. An id
    /// that is not one of the user's fails the whole request, as on Instagram.
    fn media_by_ids(
        &self,
        ids: &str,
        user: usize,
        fields: &Fields,
        media_allowed: bool,
    ) -> Result<Value, GraphFailure> {
        if !media_allowed {
            return Err(no_permission());
        }
        let mut out = Map::new();
        for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            let found = self
                .media_index
                .get(id)
                .copied()
                .filter(|found| owner(*found) == user);
            let Some(found) = found else {
                return Err(unknown_object(id));
            };
            out.insert(id.to_owned(), Value::Object(self.media_node(found, fields)?));
        }
        Ok(Value::Object(out))
    }

    /// `/{album}/children`: an album's items on one page, with cursors but never a `next` (an
    /// album holds at most 20 items).
    fn children_edge(&self, found: MediaRef, fields: &Fields) -> Result<Value, GraphFailure> {
        let MediaRef::Item { user, index } = found else {
            return Ok(json!({"data": []}));
        };
        let parent = &self.users[user].media[index];
        let data = parent
            .children
            .iter()
            .map(|c| {
                self.render_child(user, parent, c, &fields.names)
                    .map(Value::Object)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (first, last) = (parent.children.first(), parent.children.last());
        let mut body = json!({ "data": data });
        if let (Some(first), Some(last)) = (first, last) {
            body["paging"] =
                json!({"cursors": {"before": self.cursor(&first.id), "after": self.cursor(&last.id)}});
        }
        Ok(body)
    }

    /// An opaque cursor naming a media id, tied to this mock's seed.
    pub(super) fn cursor(&self, media_id: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("QVFI{}", engine.encode(format!("{}:{media_id}", self.seed.seed)))
    }

    /// The media id a cursor of this mock names, if it is one (cursors of another seed are not).
    pub(super) fn decode_cursor(&self, cursor: &str) -> Option<String> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let raw = engine.decode(cursor.strip_prefix("QVFI")?).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (seed, id) = text.split_once(':')?;
        (seed == self.seed.seed.to_string()).then(|| id.to_owned())
    }

    /// The signed CDN link of a media file: `.mp4` for videos, `.jpg` otherwise.
    fn asset_url(&self, id: &str, kind: Kind, shape: SeedShape) -> String {
        if kind.is_video() {
            self.cdn_url(&format!("{id}.mp4"))
        } else {
            self.picture_url(id, false, shape)
        }
    }

    /// The signed CDN link of a picture: a photo, or a video's thumbnail (`_thumb`), with its
    /// shape in the name (`{id}.tall.jpg`), so the CDN serves a JPEG of that shape.
    fn picture_url(&self, id: &str, thumbnail: bool, shape: SeedShape) -> String {
        let thumb = if thumbnail { "_thumb" } else { "" };
        let shape = match shape {
            SeedShape::Square => "",
            SeedShape::Tall => ".tall",
            SeedShape::Wide => ".wide",
        };
        self.cdn_url(&format!("{id}{thumb}{shape}.jpg"))
    }
}

/// The user a media item or album child belongs to.
fn owner(found: MediaRef) -> usize {
    match found {
        MediaRef::Item { user, .. } | MediaRef::Child { user, .. } => user,
    }
}

/// The `media_type` Instagram sends: reels are `VIDEO` (their product type says `REELS`).
fn media_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Image => "IMAGE",
        Kind::Video | Kind::Reel => "VIDEO",
        Kind::Album => "CAROUSEL_ALBUM",
    }
}

/// `https://www.instagram.com/p/{shortcode}/`, or `/reel/` for a reel.
fn permalink(media: &Media) -> String {
    let kind = match media.kind {
        _ if media.traits.story => "stories",
        Kind::Reel => "reel",
        _ => "p",
    };
    format!("https://www.instagram.com/{kind}/{}/", media.shortcode)
}

/// The token of an `Authorization: Bearer ...` (or `OAuth ...`) header, which the Graph API
/// The span `[start, end)` of a page of `limit` out of `len` items: after the item at
/// `after`, else before the item at `before`, else from the top. The media edge, tags,
/// comments and replies all page this way.
pub(super) fn page_bounds(
    len: usize,
    limit: usize,
    after: Option<usize>,
    before: Option<usize>,
) -> (usize, usize) {
    let (start, end) = match (after, before) {
        (Some(after), _) => {
            let start = after.saturating_add(1).min(len);
            (start, start.saturating_add(limit).min(len))
        }
        (None, Some(before)) => {
            let end = before.min(len);
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(len)),
    };
    (start.min(end), end)
}

/// accepts as well as the `access_token` parameter.
fn bearer(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim().to_owned())
}
