#![doc = include_str!("../README.md")]

mod blob;
mod feed;
mod images;
mod mirror;

pub use blob::{BlobError, BlobStore, FsBlobStore, check_key};
pub use feed::{Feed, FeedItem, FeedStatus, MirroredImage, Variant};
pub use mirror::{Mirror, SyncError, SyncReport};
