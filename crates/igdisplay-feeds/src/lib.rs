#![doc = include_str!("../README.md")]

mod admin;
mod connect;
mod meta;
mod public;
mod scheduler;
mod service;
mod settings;
mod view;

pub use scheduler::Pass;
pub use service::{Answer, FeedService, FeedsConfig, Renderer, WIDGET_JS};
pub use settings::{
    FeedSettings, MAX_ENTRY, MAX_LIST, MAX_POSTS, MAX_SYNC_INTERVAL, MIN_SYNC_INTERVAL, MediaKind,
    SettingsError,
};
pub use view::{
    DEFAULT_PAGE, FeedState, MAX_PAGE, Snapshot, cursor, etag_of, offset_of, render_page, select,
};
