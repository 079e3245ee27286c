//! Insights that survive metric changes (reference C.4).
//!
//! Instagram fails a whole insights request for one metric it does not serve: one removed
//! (`impressions` and `plays` became `views` on 2025-04-21) or one that does not apply to the
//! media's product type. So before sending, the request consults a table of metrics
//! ([`MEDIA_METRICS`], [`ACCOUNT_METRICS`]: where each applies, and when it came or went):
//! an inapplicable metric is dropped, a removed one is mapped to its replacement, each with a
//! `tracing` warning and an entry in the [`InsightsReport`]. A metric the table does not know
//! is sent as asked; if Instagram's answer names a metric it refuses, that metric is dropped
//! and the request sent once more. "Not enough viewers" (#10) and an answer without data are
//! said so ([`Availability`]), never read as zero.

use crate::actions::GraphAction;
use crate::{Error, GraphClient, MediaField};
use igdisplay_model::{Insight, ListResponse, MediaId, MediaProductType, MediaType, Timestamp};
use std::fmt;

/// 2025-04-21T00:00:00Z: `impressions`, `plays`, `clips_replays_count` and
/// `ig_reels_aggregated_all_plays_count` were removed from every API version.
const APRIL_21_2025: Timestamp = Timestamp::from_unix(1_745_193_600);

/// Where a metric applies, and when it came and went.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct MetricRule {
    /// The metric's name.
    pub name: &'static str,
    /// The product types whose media serve it (empty: an account metric, or any).
    pub products: &'static [Product],
    /// Whether only videos serve it (reels' watch time).
    pub videos_only: bool,
    /// From when Instagram serves it (`None`: for as long as igdisplay knows).
    pub added: Option<Timestamp>,
    /// When it was removed, and what replaces it.
    pub removed: Option<(Timestamp, Option<&'static str>)>,
}

/// A media product type a metric may apply to: the copyable subset of
/// [`MediaProductType`] the table names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Product {
    /// Feed posts (images, videos, albums).
    Feed,
    /// Reels.
    Reels,
    /// Stories (insights only while live).
    Story,
}

impl Product {
    fn of(product: &MediaProductType) -> Option<Self> {
        match product {
            MediaProductType::Feed => Some(Product::Feed),
            MediaProductType::Reels => Some(Product::Reels),
            MediaProductType::Story => Some(Product::Story),
            _ => None,
        }
    }
}

const fn metric(name: &'static str, products: &'static [Product]) -> MetricRule {
    MetricRule {
        name,
        products,
        videos_only: false,
        added: None,
        removed: None,
    }
}

const fn removed(name: &'static str, products: &'static [Product], to: Option<&'static str>) -> MetricRule {
    MetricRule {
        removed: Some((APRIL_21_2025, to)),
        ..metric(name, products)
    }
}

const ALL: &[Product] = &[Product::Feed, Product::Reels, Product::Story];
const POSTS: &[Product] = &[Product::Feed, Product::Reels];
const FEED_STORY: &[Product] = &[Product::Feed, Product::Story];
const REELS: &[Product] = &[Product::Reels];
const STORY: &[Product] = &[Product::Story];

/// The media metrics of Instagram Login (reference C.4). One line per metric: changing what
/// Instagram serves is changing one line, and the table's test.
pub const MEDIA_METRICS: &[MetricRule] = &[
    metric("views", ALL),
    metric("reach", ALL),
    metric("shares", ALL),
    metric("total_interactions", ALL),
    metric("likes", POSTS),
    metric("comments", POSTS),
    metric("saved", POSTS),
    metric("follows", FEED_STORY),
    metric("profile_visits", FEED_STORY),
    metric("profile_activity", FEED_STORY),
    metric("navigation", STORY),
    metric("replies", STORY),
    MetricRule {
        videos_only: true,
        ..metric("ig_reels_avg_watch_time", REELS)
    },
    MetricRule {
        videos_only: true,
        ..metric("ig_reels_video_view_total_time", REELS)
    },
    removed("impressions", FEED_STORY, Some("views")),
    removed("plays", REELS, Some("views")),
    removed("clips_replays_count", REELS, Some("views")),
    removed("ig_reels_aggregated_all_plays_count", REELS, Some("views")),
    removed("video_views", &[Product::Feed], Some("views")),
];

/// The account metrics of Instagram Login (`/me/insights`, reference C.4).
pub const ACCOUNT_METRICS: &[MetricRule] = &[
    metric("views", &[]),
    metric("reach", &[]),
    metric("accounts_engaged", &[]),
    metric("total_interactions", &[]),
    metric("likes", &[]),
    metric("comments", &[]),
    metric("shares", &[]),
    metric("saves", &[]),
    metric("replies", &[]),
    metric("follows_and_unfollows", &[]),
    metric("profile_links_taps", &[]),
    metric("follower_count", &[]),
    metric("online_followers", &[]),
    metric("engaged_audience_demographics", &[]),
    metric("reached_audience_demographics", &[]),
    metric("follower_demographics", &[]),
    removed("impressions", &[], Some("views")),
];

/// Why a metric asked for was not sent, or not answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// It does not apply to this media's product type (or media type).
    Inapplicable {
        /// The media's product type.
        product: MediaProductType,
    },
    /// Instagram removed it, and nothing replaces it.
    Removed {
        /// When.
        since: Timestamp,
    },
    /// Instagram serves it only from a later date.
    NotYetAvailable {
        /// From when.
        from: Timestamp,
    },
    /// Instagram refused it by name; its message.
    Refused {
        /// What Instagram said.
        message: String,
    },
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Inapplicable { product } => write!(f, "does not apply to {product} media"),
            DropReason::Removed { since } => write!(f, "removed by Instagram on {}", since.to_rfc3339()),
            DropReason::NotYetAvailable { from } => write!(f, "served only from {}", from.to_rfc3339()),
            DropReason::Refused { message } => write!(f, "refused by Instagram: {message}"),
        }
    }
}

/// A metric asked for and not sent (or refused), with why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DroppedMetric {
    /// The metric.
    pub name: String,
    /// Why.
    pub reason: DropReason,
}

/// A removed metric asked for, and what was asked instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplacedMetric {
    /// The metric asked for.
    pub from: String,
    /// Its replacement, sent instead.
    pub to: &'static str,
    /// When the old one was removed.
    pub since: Timestamp,
}

/// Whether the answer holds data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Availability {
    /// Metrics with values.
    Values,
    /// An empty answer: no data yet (it can lag 48 hours) or none kept (2 years). Not zero.
    NoData,
    /// Instagram shows no insights for media with too few viewers (#10). Not zero.
    NotEnoughViewers,
    /// Every metric asked for was dropped: nothing was sent.
    NothingToAsk,
}

/// What an insights request returned, and what happened to the metrics asked for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsightsReport {
    /// The metrics answered.
    pub insights: Vec<Insight>,
    /// Whether there is data.
    pub availability: Availability,
    /// Metrics asked for that were not sent, or were refused.
    pub dropped: Vec<DroppedMetric>,
    /// Removed metrics asked for, replaced.
    pub replaced: Vec<ReplacedMetric>,
}

impl InsightsReport {
    /// The answered metric `name`.
    pub fn get(&self, name: &str) -> Option<&Insight> {
        self.insights.iter().find(|i| i.name == name)
    }
}

/// What to send for `asked` under `table`, at `now`, for media of `product` and `media_type`
/// (`None` for an account, or media whose type is unknown: then only dates are checked).
/// Without I/O: the table's test calls it directly.
pub fn plan_metrics(
    table: &[MetricRule],
    asked: &[&str],
    product: Option<&MediaProductType>,
    media_type: Option<&MediaType>,
    now: Timestamp,
) -> (Vec<String>, Vec<DroppedMetric>, Vec<ReplacedMetric>) {
    let (mut send, mut dropped, mut replaced) = (Vec::<String>::new(), Vec::new(), Vec::new());
    let push = |name: &str, send: &mut Vec<String>| {
        if !send.iter().any(|s| s == name) {
            send.push(name.to_owned());
        }
    };
    for &name in asked {
        let name = name.trim();
        let Some(rule) = table.iter().find(|r| r.name == name) else {
            push(name, &mut send);
            continue;
        };
        let drop = |reason| DroppedMetric {
            name: name.to_owned(),
            reason,
        };
        match rule.removed {
            Some((since, Some(to))) if now >= since => {
                replaced.push(ReplacedMetric {
                    from: name.to_owned(),
                    to,
                    since,
                });
                push(to, &mut send);
                continue;
            }
            Some((since, None)) if now >= since => {
                dropped.push(drop(DropReason::Removed { since }));
                continue;
            }
            _ => {}
        }
        if let Some(from) = rule.added.filter(|from| now < *from) {
            dropped.push(drop(DropReason::NotYetAvailable { from }));
            continue;
        }
        let applies = match product.and_then(Product::of) {
            Some(product) => rule.products.is_empty() || rule.products.contains(&product),
            None => true,
        } && !(rule.videos_only && media_type.is_some_and(|t| *t != MediaType::Video));
        if applies {
            push(name, &mut send);
        } else {
            let product = product
                .cloned()
                .unwrap_or(MediaProductType::Unknown(String::new()));
            dropped.push(drop(DropReason::Inapplicable { product }));
        }
    }
    for entry in &dropped {
        tracing::warn!(metric = %entry.name, reason = %entry.reason, "an insights metric was dropped");
    }
    for entry in &replaced {
        tracing::warn!(metric = %entry.from, replacement = entry.to, "a removed insights metric was replaced");
    }
    (send, dropped, replaced)
}

/// The metric an error message names, of those sent: by its place (`metric[2] must be one
/// of ...`, where the message goes on to list the valid ones), else by its name as a word
/// (`reach` is not in `reached_audience_demographics`).
fn named_metric<'a>(message: &str, sent: &'a [String]) -> Option<&'a str> {
    if let Some(index) = message
        .split("metric[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(|index| index.parse::<usize>().ok())
    {
        return sent.get(index).map(String::as_str);
    }
    let words = message.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    sent.iter()
        .map(String::as_str)
        .find(|name| words.clone().any(|word| word == *name))
}

/// Insights (Instagram Login, `instagram_business_manage_insights`).
impl GraphClient {
    /// A media item's insights for `metrics`, checked against [`MEDIA_METRICS`] for its
    /// product and media type (read first, in one request) at the client's time.
    ///
    /// # Errors
    ///
    /// Every [`Error`] of the two requests, but a refusal naming a metric (that metric is
    /// dropped and the request sent again, once) and "Not enough viewers" (a report saying so).
    pub async fn media_insights(&self, media: &MediaId, metrics: &[&str]) -> Result<InsightsReport, Error> {
        let node = self
            .media(media)
            .fields(&[MediaField::MediaProductType, MediaField::MediaType])
            .send()
            .await?;
        let now = Timestamp::from_system_time(self.clock().now());
        let plan = plan_metrics(
            MEDIA_METRICS,
            metrics,
            node.media_product_type.as_ref(),
            node.media_type.as_ref(),
            now,
        );
        self.insights(media.as_str(), plan, &[]).await
    }

    /// The account's insights for `metrics` over `period` (`day`, `week`, `days_28`,
    /// `lifetime`), as totals (`metric_type=total_value`), optionally broken down by
    /// `breakdown` (`media_product_type`, `follow_type`, ...), checked against
    /// [`ACCOUNT_METRICS`].
    ///
    /// # Errors
    ///
    /// As [`media_insights`](Self::media_insights).
    pub async fn user_insights(
        &self,
        metrics: &[&str],
        period: &str,
        breakdown: Option<&str>,
    ) -> Result<InsightsReport, Error> {
        let now = Timestamp::from_system_time(self.clock().now());
        let plan = plan_metrics(ACCOUNT_METRICS, metrics, None, None, now);
        let mut params = vec![
            ("period", period.to_owned()),
            ("metric_type", "total_value".to_owned()),
        ];
        if let Some(breakdown) = breakdown {
            params.push(("breakdown", breakdown.to_owned()));
        }
        self.insights("me", plan, &params).await
    }

    /// Sends the planned metrics of `id` (once more without a metric Instagram refuses by
    /// name) and reads the answer into a report.
    async fn insights(
        &self,
        id: &str,
        (mut send, mut dropped, replaced): (Vec<String>, Vec<DroppedMetric>, Vec<ReplacedMetric>),
        params: &[(&'static str, String)],
    ) -> Result<InsightsReport, Error> {
        let report = |insights: Vec<Insight>, availability, dropped| InsightsReport {
            insights,
            availability,
            dropped,
            replaced: replaced.clone(),
        };
        let mut retried = false;
        loop {
            if send.is_empty() {
                return Ok(report(Vec::new(), Availability::NothingToAsk, dropped));
            }
            let mut action: GraphAction<ListResponse<Insight>> =
                GraphAction::get(self, id, "/insights").param("metric", send.join(","));
            for (name, value) in params {
                action = action.param(name, value.clone());
            }
            match action.send().await {
                Ok(list) if list.data.is_empty() => {
                    return Ok(report(Vec::new(), Availability::NoData, dropped));
                }
                Ok(list) => return Ok(report(list.data, Availability::Values, dropped)),
                Err(error) if error.code() == Some(10) && mentions_viewers(&error) => {
                    return Ok(report(Vec::new(), Availability::NotEnoughViewers, dropped));
                }
                Err(error) if !retried && error.code() == Some(100) => {
                    let message = error.graph_error().map(|e| e.message.clone()).unwrap_or_default();
                    let Some(name) = named_metric(&message, &send).map(str::to_owned) else {
                        return Err(error);
                    };
                    tracing::warn!(metric = %name, %message, "Instagram refused an insights metric; asking without it");
                    send.retain(|s| *s != name);
                    dropped.push(DroppedMetric {
                        name,
                        reason: DropReason::Refused { message },
                    });
                    retried = true;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

fn mentions_viewers(error: &Error) -> bool {
    error
        .graph_error()
        .is_some_and(|e| e.message.to_ascii_lowercase().contains("viewers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix(1_768_478_400);

    #[test]
    fn removed_metrics_are_replaced_and_inapplicable_ones_dropped_before_sending() {
        let (send, dropped, replaced) = plan_metrics(
            MEDIA_METRICS,
            &[
                "impressions",
                "reach",
                "plays",
                "navigation",
                "views",
                "brand_new_metric",
            ],
            Some(&MediaProductType::Feed),
            Some(&MediaType::Image),
            NOW,
        );
        assert_eq!(
            send,
            ["views", "reach", "brand_new_metric"],
            "views once; the unknown sent as asked"
        );
        assert_eq!(replaced.len(), 2);
        assert_eq!(
            (replaced[0].from.as_str(), replaced[0].to),
            ("impressions", "views")
        );
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].name, "navigation", "a story metric on a feed post");
        assert!(matches!(dropped[0].reason, DropReason::Inapplicable { .. }));
    }

    #[test]
    fn before_its_removal_a_metric_is_sent_and_a_future_one_is_not() {
        let before = Timestamp::from_unix(1_700_000_000);
        let (send, _, replaced) = plan_metrics(
            MEDIA_METRICS,
            &["impressions"],
            Some(&MediaProductType::Feed),
            None,
            before,
        );
        assert_eq!((send, replaced.len()), (vec!["impressions".to_owned()], 0));
        let table = [MetricRule {
            added: Some(Timestamp::from_unix(1_900_000_000)),
            ..metric("tomorrow", ALL)
        }];
        let (send, dropped, _) = plan_metrics(&table, &["tomorrow"], None, None, NOW);
        assert!(send.is_empty());
        assert!(matches!(dropped[0].reason, DropReason::NotYetAvailable { .. }));
    }

    #[test]
    fn watch_time_is_asked_of_reels_videos_only_and_any_metric_of_unknown_media() {
        let (send, dropped, _) = plan_metrics(
            MEDIA_METRICS,
            &["ig_reels_avg_watch_time"],
            Some(&MediaProductType::Reels),
            Some(&MediaType::Image),
            NOW,
        );
        assert!(send.is_empty() && dropped.len() == 1);
        let (send, _, _) = plan_metrics(MEDIA_METRICS, &["navigation"], None, None, NOW);
        assert_eq!(
            send,
            ["navigation"],
            "a media type Instagram did not say: its answer decides"
        );
    }

    #[test]
    fn a_refusal_names_its_metric_by_place_or_as_a_word() {
        let sent: Vec<String> = ["reach", "reached_audience_demographics", "views"]
            .map(String::from)
            .to_vec();
        let by_place = "(#100) metric[1] must be one of the following values: reach, views";
        assert_eq!(
            named_metric(by_place, &sent),
            Some("reached_audience_demographics")
        );
        let by_word =
            "(#100) The Media Insights API does not support the views metric for this media product type";
        assert_eq!(named_metric(by_word, &sent), Some("views"));
        let other = "(#100) The reached_audience_demographics metric needs a breakdown";
        assert_eq!(
            named_metric(other, &sent),
            Some("reached_audience_demographics"),
            "not `reach`"
        );
        assert_eq!(named_metric("(#100) Invalid parameter", &sent), None);
        assert_eq!(
            named_metric("(#100) metric[7] is wrong", &sent),
            None,
            "no such place"
        );
    }

    #[tokio::test]
    async fn an_empty_answer_is_no_data_and_nothing_left_to_ask_sends_nothing() {
        use igdisplay_http::test_util::{CapturingBackend, FnBackend, json_response};
        let backend = CapturingBackend::new(FnBackend::new(|request| {
            Ok(if request.uri().path().ends_with("/insights") {
                json_response(200, r#"{"data":[]}"#)
            } else {
                json_response(
                    200,
                    r#"{"id":"1","media_product_type":"FEED","media_type":"IMAGE"}"#,
                )
            })
        }));
        let graph = GraphClient::with_token(
            std::sync::Arc::new(backend.clone()),
            crate::GraphEndpoint::new(igdisplay_model::Platform::InstagramLogin),
            igdisplay_model::AccessToken::new("T"),
        );
        let report = graph
            .media_insights(&MediaId::new("1"), &["views"])
            .await
            .unwrap();
        assert_eq!(report.availability, Availability::NoData, "not zero");
        assert!(report.insights.is_empty());
        let sent = backend.count();
        let report = graph
            .media_insights(&MediaId::new("1"), &["navigation"])
            .await
            .unwrap();
        assert_eq!(report.availability, Availability::NothingToAsk);
        assert_eq!(backend.count(), sent + 1, "only the media node was read");
    }

    #[test]
    fn every_metric_of_the_tables_is_named_once() {
        for table in [MEDIA_METRICS, ACCOUNT_METRICS] {
            for (i, rule) in table.iter().enumerate() {
                assert!(
                    table[i + 1..].iter().all(|r| r.name != rule.name),
                    "{}",
                    rule.name
                );
                if let Some((_, Some(to))) = rule.removed {
                    assert!(table.iter().any(|r| r.name == to && r.removed.is_none()), "{to}");
                }
            }
        }
    }
}
