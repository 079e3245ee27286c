#![doc = include_str!("../README.md")]

mod keys;
mod schema;
mod sqlite;

pub use keys::{Key, KeyError, KeyRing};
pub use sqlite::{Account, Error, SqliteStore};
