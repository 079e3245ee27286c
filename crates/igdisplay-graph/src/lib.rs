#![doc = include_str!("../README.md")]

mod actions;
mod client;
mod config;
mod error;
mod fields;
mod insights;
mod pacer;
mod request;
mod token;

pub use actions::{GraphAction, ReplyRefused, WebhookField};
pub use client::{GraphClient, GraphClientBuilder};
pub use config::{GraphEndpoint, GraphPolicy, Quota, RateLimitPolicy, RetryPolicy, WhenExhausted};
pub use error::Error;
pub use fields::{CommentField, Field, FieldList, MediaField, UserField};
pub use igdisplay_http::RATE_LIMIT_WAIT;
pub use insights::{
    ACCOUNT_METRICS, Availability, DropReason, DroppedMetric, InsightsReport, MEDIA_METRICS, MetricRule,
    Product, ReplacedMetric, plan_metrics,
};
pub use pacer::{MAX_PAUSE, Pacer, Scope, reported_usage};
pub use request::{
    ChildrenEdge, ChildrenRequest, CommentNode, CommentRequest, CommentStream, CommentsEdge, CommentsRequest,
    ExpandsChildren, GraphRequest, ItemStream, MAX_BATCH_IDS, MAX_EMPTY_PAGES, MediaBatch, MediaBatchRequest,
    MediaEdge, MediaListRequest, MediaNode, MediaRequest, MediaStream, Node, Page, PagedEdge, Pages,
    RepliesEdge, RepliesRequest, TagsEdge, TagsRequest, UserNode, UserRequest,
};
pub use token::{LoginRequired, StaticToken, TokenSource, TokenUnavailable};
