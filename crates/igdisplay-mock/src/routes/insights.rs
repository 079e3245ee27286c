//! Insights on Instagram Login (reference C.4), following the metric rules as Instagram
//! does: one metric it does not serve for this media (removed on 2025-04-21, or not for its
//! product type) fails the whole request with code 100 naming it; media with too few viewers
//! answer #10 "Not enough viewers"; album children have none. Needs the
//! `instagram_business_manage_insights` scope (code 10 without it).
//!
//! The values are a rule of the seed: derived from the post's likes and comments (an
//! account's from all its posts), so they are the same on every run.
//!
//! The metric lists are written here again on purpose: the mock shares no code with the
//! client's table, so a mistake in one is caught by the other.

use crate::state::{Kind, Media, MediaRef, World};
use crate::wire::{GraphFailure, Req};
use serde_json::{Value, json};

/// 2025-04-21T00:00:00Z, when the metrics of `REMOVED` stopped being served.
const REMOVAL: i64 = 1_745_193_600;

/// The metrics removed on 2025-04-21.
const REMOVED: &[&str] = &[
    "impressions",
    "plays",
    "clips_replays_count",
    "ig_reels_aggregated_all_plays_count",
    "video_views",
];

/// The media metrics by product type: every product, posts (feed and reels), feed and
/// stories, stories, reels.
const ANY: &[&str] = &["views", "reach", "shares", "total_interactions"];
const POSTS: &[&str] = &["likes", "comments", "saved"];
const FEED_AND_STORY: &[&str] = &["follows", "profile_visits", "profile_activity"];
const REELS_ONLY: &[&str] = &["ig_reels_avg_watch_time", "ig_reels_video_view_total_time"];

/// The account metrics served with `metric_type=total_value`.
const ACCOUNT: &[&str] = &[
    "views",
    "reach",
    "accounts_engaged",
    "total_interactions",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "follows_and_unfollows",
    "profile_links_taps",
    "follower_count",
    "online_followers",
];

/// Code 100 naming `metric`.
fn unsupported(metric: &str) -> GraphFailure {
    super::graph::refused(&format!(
        "The Media Insights API does not support the {metric} metric for this media product type"
    ))
}

/// Code 100 for a metric removed on 2025-04-21.
fn removed(metric: &str) -> GraphFailure {
    super::graph::refused(&format!(
        "Starting from April 21, 2025, the {metric} metric is no longer supported for any version; use views"
    ))
}

/// A metric's answer: the shape of the reference's `data` items.
fn insight(object: &str, name: &str, period: &str, value: Value) -> Value {
    json!({
        "name": name,
        "period": period,
        "values": [{"value": value}],
        "title": name.replace('_', " "),
        "description": format!("The {} of this object.", name.replace('_', " ")),
        "id": format!("{object}/insights/{name}/{period}"),
    })
}

impl World {
    /// Answers `/{media}/insights` and `/{user}/insights`, or `None` when `segments` is not
    /// an insights path. Only on Instagram Login.
    pub(crate) fn insights_route(
        &self,
        req: &Req,
        segments: &[&str],
        user: usize,
        allowed: bool,
    ) -> Option<Result<Vec<u8>, GraphFailure>> {
        if self.options.platform != crate::MockPlatform::InstagramLogin || req.method != http::Method::GET {
            return None;
        }
        let [node, "insights"] = segments else {
            return None;
        };
        let body = match self.media_index.get(*node).copied() {
            _ if !allowed && self.is_self(node, user) => Err(super::graph::no_permission()),
            _ if self.is_self(node, user) => self.account_insights(req, user),
            Some(MediaRef::Item { user: owner, .. } | MediaRef::Child { user: owner, .. })
                if owner == user && !allowed =>
            {
                Err(super::graph::no_permission())
            }
            Some(MediaRef::Item { user: owner, index }) if owner == user => {
                self.media_insights(req, &self.users[owner].media[index])
            }
            Some(MediaRef::Child { user: owner, .. }) if owner == user => Err(super::graph::refused(
                "Insights are not available for the items of an album",
            )),
            _ => Err(super::graph::unknown_object(node)),
        };
        Some(body.and_then(|value| crate::wire::render_json(&value)))
    }

    /// A media item's lifetime metrics, every one checked first: one it does not serve fails
    /// the whole request.
    fn media_insights(&self, req: &Req, media: &Media) -> Result<Value, GraphFailure> {
        let story = media.traits.story;
        let reel = media.kind == Kind::Reel;
        let metrics = requested(req)?;
        for metric in &metrics {
            if REMOVED.contains(metric) && self.now() >= REMOVAL {
                return Err(removed(metric));
            }
            let serves = ANY.contains(metric)
                || (POSTS.contains(metric) && !story)
                || (FEED_AND_STORY.contains(metric) && !reel)
                || (*metric == "navigation" || *metric == "replies") && story
                || REELS_ONLY.contains(metric) && reel;
            if !serves {
                return Err(unsupported(metric));
            }
        }
        if media.likes == 0 {
            return Err(GraphFailure::new(
                400,
                "IGApiException",
                10,
                "(#10) Not enough viewers for the media to show insights",
            ));
        }
        let data: Vec<Value> = metrics
            .iter()
            .map(|metric| insight(&media.id, metric, "lifetime", json!(media_value(media, metric))))
            .collect();
        Ok(json!({ "data": data }))
    }

    /// The account's totals over `period`, with `breakdown` by product type when asked.
    fn account_insights(&self, req: &Req, user: usize) -> Result<Value, GraphFailure> {
        let period = req
            .param("period")
            .ok_or_else(|| super::graph::refused("The parameter period is required"))?;
        let metrics = requested(req)?;
        let media = &self.users[user].media;
        // Seeded counts come from a seed file: summed without overflowing.
        let likes = media.iter().fold(0u64, |sum, m| sum.saturating_add(m.likes));
        for metric in &metrics {
            if REMOVED.contains(metric) && self.now() >= REMOVAL {
                return Err(removed(metric));
            }
            if !ACCOUNT.contains(metric) {
                return Err(super::graph::refused(&format!(
                    "The {metric} metric is not available for accounts"
                )));
            }
        }
        let me = &self.users[user];
        let data: Vec<Value> = metrics
            .iter()
            .map(|metric| {
                let total = match *metric {
                    "follower_count" => me.followers,
                    "views" => likes.saturating_mul(11),
                    "reach" | "accounts_engaged" => likes.saturating_mul(7) / 2,
                    _ => likes / 3,
                };
                let mut item = json!({
                    "name": metric,
                    "period": period,
                    "title": metric.replace('_', " "),
                    "total_value": {"value": total},
                    "id": format!("{}/insights/{metric}/{period}", me.ig_id),
                });
                if req.param("breakdown") == Some("media_product_type") {
                    let reels = media
                        .iter()
                        .filter(|m| m.kind == Kind::Reel)
                        .fold(0u64, |sum, m| sum.saturating_add(m.likes));
                    item["total_value"]["breakdowns"] = json!([{
                        "dimension_keys": ["media_product_type"],
                        "results": [
                            {"dimension_values": ["REELS"], "value": reels},
                            {"dimension_values": ["FEED"], "value": likes.saturating_sub(reels)},
                        ],
                    }]);
                }
                item
            })
            .collect();
        Ok(json!({ "data": data }))
    }
}

/// The `metric` parameter's names; code 100 when there are none.
fn requested(req: &Req) -> Result<Vec<&str>, GraphFailure> {
    let metrics: Vec<&str> = req
        .param("metric")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if metrics.is_empty() {
        return Err(super::graph::refused("The parameter metric is required"));
    }
    Ok(metrics)
}

/// A media item's value of `metric`, from its likes and comments.
fn media_value(media: &Media, metric: &str) -> u64 {
    let (likes, comments) = (media.likes, media.comments);
    let saved = likes / 5;
    let shares = likes / 9;
    match metric {
        "views" => likes.saturating_mul(11).saturating_add(40),
        "reach" => likes.saturating_mul(7).saturating_add(30),
        "likes" => likes,
        "comments" => comments,
        "saved" => saved,
        "shares" => shares,
        "total_interactions" => likes
            .saturating_add(comments)
            .saturating_add(saved)
            .saturating_add(shares),
        "ig_reels_avg_watch_time" => 7_400,
        "ig_reels_video_view_total_time" => likes.saturating_mul(52_000),
        _ => likes / 8,
    }
}
