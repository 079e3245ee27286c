#![doc = include_str!("../README.md")]

mod client;
mod config;
mod error;
mod fields;
mod requests;
mod token;

pub use client::GraphClient;
pub use config::{GraphConfig, Quota, RateLimitPolicy, RetryPolicy};
pub use error::Error;
pub use fields::{FieldList, MediaField, UserField};
pub use requests::{
    ChildrenRequest, MAX_EMPTY_PAGES, MediaListRequest, MediaRequest, MediaStream, Page, UserRequest,
};
pub use token::{StaticToken, TokenSource};
