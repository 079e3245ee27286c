#![doc = include_str!("../README.md")]

mod blob;
mod download;
mod feed;
#[cfg(feature = "server")]
mod files;
mod images;
mod mirror;
#[cfg(feature = "s3")]
mod s3;

pub use blob::{BlobError, BlobStore, FsBlobStore, check_key, content_type};
pub use download::{Download, DownloadError, DownloadPolicy, Downloaded, Downloader, INSTAGRAM_CDN};
pub use feed::{
    FEED_JSON_SCHEMA, FEED_SCHEMA, Feed, FeedIndex, FeedItem, FeedStatus, MirroredImage, MirroredVideo,
    PageRef, Variant,
};
#[cfg(feature = "server")]
pub use files::{FileBody, FileServer, ServeLimits, serve};
pub use mirror::{
    DEFAULT_DECODES, DEFAULT_VIDEO_BYTES, Mirror, PurgeReport, SYNC_LEASE, SyncError, SyncReport,
};
#[cfg(feature = "s3")]
pub use s3::{ObjectBlobStore, S3Config};
