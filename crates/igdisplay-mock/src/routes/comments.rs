//! Comments on Instagram Login (reference C.2): a media item's top-level comments and a
//! comment's replies, paged by cursor like media; one comment; and the calls that change
//! them: hide or unhide, delete, reply, comments off or on. And the media the account is
//! tagged in (C.3: `/{user}/tags`). All need the `instagram_business_manage_comments` scope
//! (code 10 without it).
//!
//! Who is tagged where is a rule of the seed, not data: a user is tagged in every fifth post
//! of every other user, counted from their own place in the seed.
//!
//! The reference gives no codes for a refused reply; the fake answers code 100 with a
//! message naming why (a hidden comment, a reply, comments turned off).

use super::graph::{DEFAULT_LIMIT, MAX_LIMIT, no_permission, page_limit, refused};
use crate::comments::{MockComment, Thread, fresh_id};
use crate::fields::Fields;
use crate::state::{MediaRef, World};
use crate::wire::{GraphFailure, Req, encode};
use serde_json::{Map, Value, json};

/// The comment fields of reference C.2.
const COMMENT_FIELDS: &[&str] = &[
    "id",
    "text",
    "timestamp",
    "username",
    "from",
    "like_count",
    "hidden",
    "parent_id",
    "media",
];

/// The most comments a post's thread is made with, whatever its seed says.
const MAX_THREAD: u64 = 10_000;

/// Where a comment path points.
enum Target {
    /// A media item of the token's user: its id.
    Media(String),
    /// A comment on one: the media id and the comment id.
    Comment(String, String),
}

/// A comment-shaped page's query: its size and cursors, and how its links are written.
struct Listing<'a> {
    limit: usize,
    after: Option<String>,
    before: Option<String>,
    /// `{base}/{version}/{node}/{edge}?access_token=...&fields=...&limit=...`, without the
    /// cursor.
    link: String,
    fields: &'a Fields,
}

impl World {
    /// Answers a comment path (`/{media}/comments`, `/{comment}/replies`, `/{comment}`, or a
    /// POST to a media item), or `None` when `segments` is not one: the Graph routes answer
    /// it then. Only on Instagram Login.
    pub(crate) fn comment_route(
        &mut self,
        req: &Req,
        segments: &[&str],
        user: usize,
        allowed: bool,
        token: &str,
        fields: &Fields,
    ) -> Option<Result<Vec<u8>, GraphFailure>> {
        if self.options.platform != crate::MockPlatform::InstagramLogin {
            return None;
        }
        let (target, edge) = match segments {
            [node, "tags"] if self.is_self(node, user) => {
                if !allowed {
                    return Some(Err(no_permission()));
                }
                return Some(
                    self.tags(req, user, fields, token)
                        .and_then(|v| crate::wire::render_json(&v)),
                );
            }
            [node, edge @ ("comments" | "replies")] => (self.target(node, user)?, Some(*edge)),
            // A GET of a node is a comment's only for a comment made so far (every other
            // node's GET, `/me` the first, costs this one lookup).
            [node] if req.method == http::Method::GET && !self.comment_media.contains_key(*node) => {
                return None;
            }
            [node] => (self.target(node, user)?, None),
            _ => return None,
        };
        if !allowed {
            return Some(Err(no_permission()));
        }
        let version = req.api_version().unwrap_or(&self.options.link_version).to_owned();
        let body = match (req.method.clone(), target, edge) {
            (http::Method::GET, Target::Media(media), Some("comments")) => self
                .listing(req, &format!("{}/comments", media), &version, token, fields)
                .and_then(|listing| self.comments_page(&media, None, &listing)),
            (http::Method::GET, Target::Comment(media, id), Some("replies")) => self
                .listing(req, &format!("{id}/replies"), &version, token, fields)
                .and_then(|listing| self.comments_page(&media, Some(&id), &listing)),
            (http::Method::GET, Target::Comment(media, id), None) => {
                self.render_comment_by_id(&media, &id, fields).map(Value::Object)
            }
            (http::Method::POST, Target::Comment(media, id), Some("replies")) => {
                self.reply(req, &media, &id, user)
            }
            (http::Method::POST, Target::Comment(media, id), None) => self.hide(req, &media, &id),
            (http::Method::DELETE, Target::Comment(media, id), None) => self.delete_comment(&media, &id),
            (http::Method::POST, Target::Media(media), None) => self.comments_switch(req, &media),
            (method, ..) => Err(super::oauth::unsupported_method(&method)),
        };
        Some(body.and_then(|value| crate::wire::render_json(&value)))
    }

    /// What `node` names for `user`: one of their media items (its thread made now), or a
    /// comment on one; `None` for anything else.
    fn target(&mut self, node: &str, user: usize) -> Option<Target> {
        if let Some(MediaRef::Item { user: owner, index }) = self.media_index.get(node).copied() {
            if owner != user {
                return None;
            }
            self.thread_of(owner, index);
            return Some(Target::Media(node.to_owned()));
        }
        let media = self.comment_media.get(node)?.clone();
        match self.media_index.get(&media).copied() {
            Some(MediaRef::Item { user: owner, .. }) if owner == user => {
                Some(Target::Comment(media, node.to_owned()))
            }
            _ => None,
        }
    }

    /// The thread of `user`'s media item `index`, made on first use.
    pub(crate) fn thread_of(&mut self, user: usize, index: usize) -> &mut Thread {
        let media = &self.users[user].media[index];
        // A seed file may ask any count: at most MAX_THREAD comments are made (and then
        // `comments_count` says how many there are).
        let (id, count, posted) = (media.id.clone(), media.comments.min(MAX_THREAD), media.timestamp);
        if !self.threads.contains_key(&id) {
            let known = &self.comment_media;
            let thread = Thread::generate(self.seed.seed, &id, count, posted, |c| known.contains_key(c));
            for comment in &thread.comments {
                self.comment_media.insert(comment.id.clone(), id.clone());
            }
            self.threads.insert(id.clone(), thread);
        }
        self.threads.entry(id).or_insert_with(|| Thread {
            comments: Vec::new(),
            enabled: true,
        })
    }

    /// The page size, cursors and link base of a listing of `path` (code 100 for a `limit`
    /// that is not a number).
    fn listing<'a>(
        &self,
        req: &Req,
        path: &str,
        version: &str,
        token: &str,
        fields: &'a Fields,
    ) -> Result<Listing<'a>, GraphFailure> {
        let limit = page_limit(req)?;
        let link = format!(
            "{}/{version}/{path}?access_token={}&fields={}&limit={limit}",
            self.base,
            encode(token),
            encode(req.param("fields").unwrap_or("id")),
        );
        Ok(Listing {
            limit,
            after: req.param("after").and_then(|c| self.decode_cursor(c)),
            before: req.param("before").and_then(|c| self.decode_cursor(c)),
            link,
            fields,
        })
    }

    /// One page of `media`'s top-level comments (`parent: None`) or of `parent`'s replies,
    /// newest first, with cursors and `next`/`previous` links.
    fn comments_page(
        &self,
        media: &str,
        parent: Option<&str>,
        listing: &Listing<'_>,
    ) -> Result<Value, GraphFailure> {
        let Some(thread) = self.threads.get(media) else {
            return Ok(json!({"data": []}));
        };
        let all = match parent {
            None => thread.top_level(),
            Some(id) => thread.replies(id),
        };
        let position = |id: &String| all.iter().position(|c| &c.id == id);
        // A cursor naming a comment since deleted ends the listing rather than restarting it.
        let after = listing.after.as_ref().map(|id| position(id).unwrap_or(all.len()));
        let before = listing.before.as_ref().map(|id| position(id).unwrap_or(0));
        let (start, end) = super::graph::page_bounds(all.len(), listing.limit, after, before);
        let page = all.get(start..end).unwrap_or_default();
        let data = page
            .iter()
            .map(|c| {
                self.render_comment(media, thread, c, listing.fields)
                    .map(Value::Object)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = json!({ "data": data });
        if let (Some(first), Some(last)) = (page.first(), page.last()) {
            let (before, after) = (self.cursor(&first.id), self.cursor(&last.id));
            let mut paging = json!({"cursors": {"before": before, "after": after}});
            if end < all.len() {
                paging["next"] = json!(format!("{}&after={after}", listing.link));
            }
            if start > 0 {
                paging["previous"] = json!(format!("{}&before={before}", listing.link));
            }
            body["paging"] = paging;
        }
        Ok(body)
    }

    fn render_comment_by_id(
        &self,
        media: &str,
        id: &str,
        fields: &Fields,
    ) -> Result<Map<String, Value>, GraphFailure> {
        let thread = self
            .threads
            .get(media)
            .ok_or_else(|| super::graph::unknown_object(id))?;
        let comment = thread.find(id).ok_or_else(|| super::graph::unknown_object(id))?;
        self.render_comment(media, thread, comment, fields)
    }

    /// One comment with exactly the asked fields (an unknown one fails the request; a
    /// top-level comment has no `parent_id`); `replies{...}` brings its first replies.
    fn render_comment(
        &self,
        media: &str,
        thread: &Thread,
        comment: &MockComment,
        fields: &Fields,
    ) -> Result<Map<String, Value>, GraphFailure> {
        let mut out = Map::new();
        for name in &fields.names {
            let value = match name.as_str() {
                "id" => json!(comment.id),
                "text" => json!(comment.text),
                "timestamp" => json!(crate::clock::instagram_timestamp(comment.timestamp)),
                "username" => json!(comment.username),
                "from" => json!({"id": comment.from_id, "username": comment.username}),
                "like_count" => json!(comment.likes),
                "hidden" => json!(comment.hidden),
                "parent_id" => match &comment.parent {
                    Some(parent) => json!(parent),
                    None => continue,
                },
                "media" => json!({"id": media}),
                other if COMMENT_FIELDS.contains(&other) => continue,
                other => return Err(self.nonexisting(other, "IGComment")),
            };
            out.insert(name.clone(), value);
        }
        if let Some(edge) = &fields.replies {
            let inner = crate::fields::parse_fields(Some(&edge.fields.join(",")));
            let replies = thread.replies(&comment.id);
            let limit = edge.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
            let data = replies
                .iter()
                .take(limit)
                .map(|reply| {
                    self.render_comment(media, thread, reply, &inner)
                        .map(Value::Object)
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.insert("replies".to_owned(), json!({ "data": data }));
        }
        Ok(out)
    }

    /// `GET /{user}/tags`: the other users' posts `user` is tagged in, newest first, paged
    /// like the media edge.
    fn tags(&self, req: &Req, user: usize, fields: &Fields, token: &str) -> Result<Value, GraphFailure> {
        let mut items: Vec<(usize, &crate::state::Media)> = self
            .users
            .iter()
            .enumerate()
            .filter(|(owner, _)| *owner != user)
            .flat_map(|(owner, u)| {
                u.media
                    .iter()
                    .enumerate()
                    .filter(move |(index, _)| (index + user).is_multiple_of(5))
                    .map(move |(_, m)| (owner, m))
            })
            .collect();
        items.sort_by_key(|item| std::cmp::Reverse(item.1.timestamp));
        let limit = page_limit(req)?;
        let query = super::graph::PageQuery {
            limit,
            since: None,
            until: None,
            after: req.param("after"),
            before: req.param("before"),
            fields_text: req.param("fields").unwrap_or("id"),
            version: req.api_version().unwrap_or(&self.options.link_version),
        };
        self.items_page(&items, "tags", user, fields, &query, token)
    }

    /// `POST /{comment}/replies?message=...`: a reply by the account, to a top-level comment
    /// that is not hidden, on a media item whose comments are on.
    fn reply(&mut self, req: &Req, media: &str, id: &str, user: usize) -> Result<Value, GraphFailure> {
        let message = req
            .param("message")
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| refused("The parameter message is required"))?
            .to_owned();
        let now = self.now();
        let (username, from_id) = (self.users[user].username.clone(), self.users[user].ig_id.clone());
        let new_id = {
            let known = &self.comment_media;
            fresh_id(&mut self.rng, |c| known.contains_key(c))
        };
        let thread = self
            .threads
            .get_mut(media)
            .ok_or_else(|| super::graph::unknown_object(id))?;
        let comment = thread.find(id).ok_or_else(|| super::graph::unknown_object(id))?;
        if comment.parent.is_some() {
            return Err(refused("Replies can only be made to top-level comments"));
        }
        if comment.hidden {
            return Err(refused("A hidden comment cannot be replied to"));
        }
        if !thread.enabled {
            return Err(refused("Comments are turned off for this media"));
        }
        thread.comments.push(MockComment {
            id: new_id.clone(),
            parent: Some(id.to_owned()),
            username,
            from_id,
            text: message,
            timestamp: now,
            likes: 0,
            hidden: false,
        });
        self.comment_media.insert(new_id.clone(), media.to_owned());
        Ok(json!({ "id": new_id }))
    }

    /// `POST /{comment}?hide=true|false`.
    fn hide(&mut self, req: &Req, media: &str, id: &str) -> Result<Value, GraphFailure> {
        let hide = match req.param("hide") {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(refused("Param hide must be a boolean")),
        };
        let thread = self
            .threads
            .get_mut(media)
            .ok_or_else(|| super::graph::unknown_object(id))?;
        let comment = thread
            .comments
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| super::graph::unknown_object(id))?;
        comment.hidden = hide;
        Ok(json!({"success": true}))
    }

    /// `DELETE /{comment}`: the comment and, for a top-level one, its replies.
    fn delete_comment(&mut self, media: &str, id: &str) -> Result<Value, GraphFailure> {
        let thread = self
            .threads
            .get_mut(media)
            .ok_or_else(|| super::graph::unknown_object(id))?;
        for gone in thread.remove(id) {
            self.comment_media.remove(&gone);
        }
        Ok(json!({"success": true}))
    }

    /// `POST /{media}?comment_enabled=true|false`.
    fn comments_switch(&mut self, req: &Req, media: &str) -> Result<Value, GraphFailure> {
        let enabled = match req.param("comment_enabled") {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(refused("Param comment_enabled must be a boolean")),
        };
        let thread = self
            .threads
            .get_mut(media)
            .ok_or_else(|| super::graph::unknown_object(media))?;
        thread.enabled = enabled;
        Ok(json!({"success": true}))
    }
}

impl World {
    /// `POST /_mock/comments {media_id, text, username?}`: a top-level comment on a post,
    /// dated now; and, when the webhook callback is set and the post's owner subscribed the
    /// app to `comments`, Meta's notification of it, signed with the app secret, to deliver.
    pub(crate) fn add_comment(&mut self, req: &Req) -> super::control::Control {
        use super::control::{Control, bad_request, body_field, ok};
        let (Some(media), Some(text)) = (body_field(&req.body, "media_id"), body_field(&req.body, "text"))
        else {
            return bad_request("give {\"media_id\": \"...\", \"text\": \"...\"}");
        };
        let Some(MediaRef::Item { user, index }) = self.media_index.get(&media).copied() else {
            return bad_request("media_id names no post of a seeded user");
        };
        let username = body_field(&req.body, "username").unwrap_or_else(|| "ana.lopes".to_owned());
        let now = self.now();
        let id = {
            let known = &self.comment_media;
            fresh_id(&mut self.rng, |c| known.contains_key(c))
        };
        let from_id = format!("17841{:011}", self.rng.below(100_000_000_000));
        let comment = MockComment {
            id: id.clone(),
            parent: None,
            username: username.clone(),
            from_id: from_id.clone(),
            text: text.clone(),
            timestamp: now,
            likes: 0,
            hidden: false,
        };
        self.thread_of(user, index).comments.push(comment);
        self.comment_media.insert(id.clone(), media.clone());
        let subscribed = self
            .subscriptions
            .get(&user)
            .is_some_and(|fields| fields.iter().any(|f| f == "comments"));
        let (Some(url), true) = (self.webhook_callback.clone(), subscribed) else {
            return ok(&json!({ "id": id }));
        };
        let notification = json!({"object": "instagram", "entry": [{
            "id": self.users[user].ig_id,
            "time": now,
            "changes": [{"field": "comments", "value": {
                "id": id,
                "text": text,
                "from": {"id": from_id, "username": username},
                "media": {"id": media, "media_product_type": "FEED"},
            }}],
        }]});
        let body = notification.to_string();
        let signature = crate::wire::hub_signature(&self.app.secret, body.as_bytes());
        Control::Webhook(super::control::WebhookDelivery {
            url,
            body,
            signature,
            answer: json!({ "id": id }),
        })
    }
}
