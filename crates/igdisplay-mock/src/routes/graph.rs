//! The Graph side: `/me`, `/{user-id}`, `/{user-id}/media`, `/{media-id}`,
//! `/{media-id}/children`, an optional `/vNN.N/` prefix, field selection with the real defaults
//! and errors, `children{...}` expansion, cursor paging with absolute links, per-user rate
//! limits with usage headers, and signed, expiring CDN links.
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
use crate::seed::MockPlatform;
use crate::state::{Child, Kind, Media, MediaRef, World};
use crate::wire::{GraphFailure, Reply, Req, encode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// The fields of the User node on Basic Display (reference A.8): asking for any other one is
/// `(#100) Tried accessing nonexisting field`.
const USER_FIELDS_BASIC: &[&str] = &["id", "username", "account_type", "media_count"];
/// The fields of the User node on Instagram Login (reference B.6): the professional account's
/// id, name, picture and follower counts on top of Basic Display's four.
const USER_FIELDS_LOGIN: &[&str] = &[
    "id",
    "user_id",
    "username",
    "name",
    "account_type",
    "profile_picture_url",
    "followers_count",
    "follows_count",
    "media_count",
];
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
const DEFAULT_LIMIT: usize = 25;
/// The most a page holds, whatever `limit` asks (larger values are clamped, as observed).
const MAX_LIMIT: usize = 100;

/// A parsed `fields` value: plain names, and the fields of a `children{...}` expansion.
#[derive(Debug, Default)]
struct Fields {
    names: Vec<String>,
    children: Option<Vec<String>>,
}

/// Reads a `fields` value: comma-separated names, and at most one `children{...}` expansion
/// whose inner names apply to album items. No value (or a blank one) means `id` alone, as
/// Instagram answers a request without `fields`. Braces nest only one level deep, which is
/// all the Graph API accepts here; deeper braces are folded into the expansion.
fn parse_fields(text: Option<&str>) -> Fields {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Fields {
            names: vec!["id".to_owned()],
            children: None,
        };
    };
    let mut fields = Fields::default();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut inner = String::new();
    for c in text.chars() {
        match (c, depth) {
            ('{', _) => depth += 1,
            ('}', _) => depth = depth.saturating_sub(1),
            (',', 0) => fields.names.push(std::mem::take(&mut current)),
            (c, 0) => current.push(c),
            (c, _) => inner.push(c),
        }
    }
    fields.names.push(current);
    fields.names.retain(|n| !n.trim().is_empty());
    for name in &mut fields.names {
        *name = name.trim().to_owned();
    }
    if let Some(index) = fields.names.iter().position(|n| n == "children") {
        fields.names.remove(index);
        let inner: Vec<String> = inner
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        fields.children = Some(if inner.is_empty() {
            vec!["id".to_owned()]
        } else {
            inner
        });
    }
    fields
}

/// `(#100) Tried accessing nonexisting field (x) on node type (Media)`: code 100 with the field
/// and node named, as Instagram words it (reference A.13, B.8).
fn nonexisting(field: &str, node: &str) -> GraphFailure {
    GraphFailure::new(
        400,
        "OAuthException",
        100,
        format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node})"),
    )
}

/// Code 10: a Basic Display token without the `user_media` scope asks for media (reference
/// A.13, "Application does not have permission for this action").
fn no_media_permission() -> GraphFailure {
    GraphFailure::new(
        400,
        "IGApiException",
        10,
        "Application does not have permission for this action",
    )
}

/// Code 100 subcode 33: an object that does not exist or is not the token user's. Instagram
/// does not tell the two apart, so a client cannot probe for other users' media.
fn unknown_object(id: &str) -> GraphFailure {
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
        if req.method != http::Method::GET {
            return Err(super::oauth::unsupported_method(&req.method));
        }
        let token = req
            .param("access_token")
            .map(str::to_owned)
            .or_else(|| bearer(&req.headers))
            .ok_or_else(|| {
                GraphFailure::new(
                    400,
                    "OAuthException",
                    104,
                    "An access token is required to request this resource.",
                )
            })?;
        let (record, user) = self.check_token(&token)?;
        let scopes = record.scopes.clone();
        let usage = self.count_call(user)?;
        let fields = parse_fields(req.param("fields"));
        let media_allowed = match self.options.platform {
            MockPlatform::BasicDisplay => scopes.iter().any(|s| s == "user_media"),
            MockPlatform::InstagramLogin => true,
        };
        let body = match segments {
            [node] if self.is_self(node, user) => self.user_node(user, &fields, media_allowed)?,
            [node] => match self.media_index.get(*node).copied() {
                Some(found) if owner(found) == user && media_allowed => {
                    Value::Object(self.media_node(found, &fields)?)
                }
                Some(_) if !media_allowed => return Err(no_media_permission()),
                _ => return Err(unknown_object(node)),
            },
            [node, "media"] if self.is_self(node, user) => {
                if !media_allowed {
                    return Err(no_media_permission());
                }
                self.media_edge(req, user, &fields, &token)?
            }
            [node, "children"] => match self.media_index.get(*node).copied() {
                Some(found @ MediaRef::Item { user: u, index }) if u == user && media_allowed => {
                    if self.users[u].media[index].kind != Kind::Album {
                        return Err(unknown_object(node));
                    }
                    self.children_edge(found, &fields)?
                }
                _ => return Err(unknown_object(node)),
            },
            _ => {
                return Err(GraphFailure::new(
                    400,
                    "IGApiException",
                    2500,
                    format!("Unknown path components: /{}", segments.join("/")),
                ));
            }
        };
        let mut reply =
            Reply::json(200, &body).header("instagram-api-version", self.options.link_version.clone());
        if let Some((name, value)) = usage {
            reply = reply.header(name, value);
        }
        Ok(reply)
    }

    /// Whether `node` names the token's own user: `me`, the app-scoped id, or (as `paging.next`
    /// links do) the professional account id.
    fn is_self(&self, node: &str, user: usize) -> bool {
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
                json!({"call_count": percent, "total_cputime": percent / 4, "total_time": percent / 3})
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
    /// user.
    fn user_node(&self, user: usize, fields: &Fields, media_allowed: bool) -> Result<Value, GraphFailure> {
        let known = match self.options.platform {
            MockPlatform::BasicDisplay => USER_FIELDS_BASIC,
            MockPlatform::InstagramLogin => USER_FIELDS_LOGIN,
        };
        let u = &self.users[user];
        let mut out = Map::new();
        for name in &fields.names {
            if !known.contains(&name.as_str()) {
                return Err(nonexisting(name, "User"));
            }
            let value = match name.as_str() {
                "id" => json!(u.id),
                "user_id" => json!(u.ig_id),
                "username" => json!(u.username),
                "name" => json!(u.name),
                "account_type" => json!(u.account_type),
                "profile_picture_url" => json!(self.cdn_url(&format!("{}_profile.jpg", u.id))),
                "followers_count" => json!(u.followers),
                "follows_count" => json!(u.follows),
                "media_count" if !media_allowed => return Err(no_media_permission()),
                "media_count" => json!(u.media.len()),
                _ => continue,
            };
            out.insert(name.clone(), value);
        }
        if fields.children.is_some() {
            return Err(nonexisting("children", "User"));
        }
        Ok(Value::Object(out))
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
                return Err(nonexisting(name, "Media"));
            }
            let value = match name.as_str() {
                "id" => json!(media.id),
                "caption" => match &media.caption {
                    Some(caption) => json!(caption),
                    None => continue,
                },
                "media_type" => json!(media_type(media.kind)),
                "media_product_type" => json!(if media.kind == Kind::Reel { "REELS" } else { "FEED" }),
                "media_url" if media.copyright_flagged => continue,
                "media_url" => match (media.kind, media.children.first()) {
                    (Kind::Album, Some(first)) => json!(self.asset_url(&first.id, first.kind.is_video())),
                    _ => json!(self.asset_url(&media.id, media.kind.is_video())),
                },
                "permalink" if media.copyright_flagged => continue,
                "permalink" => json!(permalink(media)),
                "thumbnail_url" if media.kind.is_video() => {
                    json!(self.cdn_url(&format!("{}_thumb.jpg", media.id)))
                }
                "thumbnail_url" => continue,
                "shortcode" => json!(media.shortcode),
                "timestamp" => json!(instagram_timestamp(media.timestamp)),
                "username" => json!(owner.username),
                "owner" => json!({"id": owner.ig_id}),
                "like_count" => json!(media.likes),
                "comments_count" => json!(media.comments),
                "is_comment_enabled" => json!(true),
                "is_shared_to_feed" if media.kind == Kind::Reel => json!(true),
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

    /// Album items carry no caption and no counts: only their id, type, URLs, the album's
    /// permalink and timestamp, the owner's name and id; a caption or a count asked of a child
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
                return Err(nonexisting(name, "Media"));
            }
            let value = match name.as_str() {
                "id" => json!(child.id),
                "media_type" => json!(media_type(child.kind)),
                "media_url" => json!(self.asset_url(&child.id, child.kind.is_video())),
                "permalink" => json!(permalink(parent)),
                "thumbnail_url" if child.kind.is_video() => {
                    json!(self.cdn_url(&format!("{}_thumb.jpg", child.id)))
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
    /// `limit` (default 25, at most 100), `since`/`until` (Unix seconds, inclusive) and one of
    /// `after`/`before` (a cursor of this mock; a foreign or garbled one is code 100). The page
    /// carries `paging.cursors` and, when there is more, absolute `next`/`previous` links that
    /// repeat the token and name the professional account id (reference A.15: that id can
    /// differ from `/me`'s), as recorded traffic shows.
    fn media_edge(
        &mut self,
        req: &Req,
        user: usize,
        fields: &Fields,
        token: &str,
    ) -> Result<Value, GraphFailure> {
        let invalid = |what: &str| {
            GraphFailure::new(
                400,
                "OAuthException",
                100,
                format!("(#100) Invalid parameter: {what}"),
            )
        };
        let limit = match req.param("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| invalid("limit"))?
                .clamp(1, MAX_LIMIT),
        };
        let bound = |name: &str| -> Result<Option<i64>, GraphFailure> {
            req.param(name)
                .map(|t| t.trim().parse::<i64>().map_err(|_| invalid(name)))
                .transpose()
        };
        let (since, until) = (bound("since")?, bound("until")?);
        let media = &self.users[user].media;
        let visible: Vec<usize> = (0..media.len())
            .filter(|i| {
                since.is_none_or(|s| media[*i].timestamp >= s)
                    && until.is_none_or(|u| media[*i].timestamp <= u)
            })
            .collect();
        let position = |cursor: &str| -> Result<usize, GraphFailure> {
            let id = self.decode_cursor(cursor).ok_or_else(|| invalid("cursor"))?;
            visible
                .iter()
                .position(|i| media[*i].id == id)
                .ok_or_else(|| invalid("cursor"))
        };
        let (start, end) = match (req.param("after"), req.param("before")) {
            (Some(after), _) => {
                let start = position(after)? + 1;
                (start, (start + limit).min(visible.len()))
            }
            (None, Some(before)) => {
                let end = position(before)?;
                (end.saturating_sub(limit), end)
            }
            (None, None) => (0, limit.min(visible.len())),
        };
        let page = &visible[start.min(end)..end];
        let data = page
            .iter()
            .map(|i| self.render_media(user, &media[*i], fields).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = json!({ "data": data });
        if let (Some(first), Some(last)) = (page.first(), page.last()) {
            let (before, after) = (self.cursor(&media[*first].id), self.cursor(&media[*last].id));
            let mut paging = json!({"cursors": {"before": before, "after": after}});
            let link = |which: &str, cursor: &str| {
                let mut url = format!(
                    "{}/{}/{}/media?access_token={}&fields={}&limit={limit}",
                    self.base,
                    self.options.link_version,
                    self.users[user].ig_id,
                    encode(token),
                    encode(req.param("fields").unwrap_or("id")),
                );
                for (name, value) in [("since", since), ("until", until)] {
                    if let Some(value) = value {
                        url.push_str(&format!("&{name}={value}"));
                    }
                }
                url.push_str(&format!("&{which}={cursor}"));
                url
            };
            if end < visible.len() {
                paging["next"] = json!(link("after", &after));
            }
            if start > 0 {
                paging["previous"] = json!(link("before", &before));
            }
            body["paging"] = paging;
        }
        Ok(body)
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
    fn cursor(&self, media_id: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("QVFI{}", engine.encode(format!("{}:{media_id}", self.seed.seed)))
    }

    /// The media id a cursor of this mock names, if it is one (cursors of another seed are not).
    fn decode_cursor(&self, cursor: &str) -> Option<String> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let raw = engine.decode(cursor.strip_prefix("QVFI")?).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (seed, id) = text.split_once(':')?;
        (seed == self.seed.seed.to_string()).then(|| id.to_owned())
    }

    /// The signed CDN link of a media file: `.mp4` for videos, `.jpg` otherwise.
    fn asset_url(&self, id: &str, video: bool) -> String {
        self.cdn_url(&format!("{id}.{}", if video { "mp4" } else { "jpg" }))
    }

    /// `{base}/cdn/v/{file}?oe={hex expiry}&_nc_sig={signature}`: the shape of Instagram's CDN
    /// links (reference A.15), valid for `media_url_ttl` seconds of mock time; after that the
    /// CDN answers 403 `URL signature expired`, and a tampered link 403 `Bad URL hash`.
    pub(crate) fn cdn_url(&self, file: &str) -> String {
        let expires = self.now() + self.options.media_url_ttl;
        let oe = format!("{expires:X}");
        format!(
            "{}/cdn/v/{file}?oe={oe}&_nc_sig={}",
            self.base,
            self.cdn_signature(file, &oe)
        )
    }

    /// The signature binding a file to its expiry: an HMAC of both under this mock's CDN key,
    /// so an expiry cannot be extended by editing the link.
    pub(crate) fn cdn_signature(&self, file: &str, oe: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.cdn_key.as_bytes()) else {
            return String::new();
        };
        mac.update(format!("{file}:{oe}").as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
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
    let kind = if media.kind == Kind::Reel { "reel" } else { "p" };
    format!("https://www.instagram.com/{kind}/{}/", media.shortcode)
}

/// The token of an `Authorization: Bearer ...` (or `OAuth ...`) header, which the Graph API
/// accepts as well as the `access_token` parameter.
fn bearer(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_with_children_expansion() {
        let fields = parse_fields(Some("id, caption,children{id,media_url},timestamp"));
        assert_eq!(fields.names, ["id", "caption", "timestamp"]);
        assert_eq!(fields.children.unwrap(), ["id", "media_url"]);
        assert_eq!(parse_fields(None).names, ["id"]);
        assert_eq!(parse_fields(Some("children")).children.unwrap(), ["id"]);
    }
}
