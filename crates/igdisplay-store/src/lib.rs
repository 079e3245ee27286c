#![doc = include_str!("../README.md")]

mod keys;
mod schema;
mod sql;

pub use keys::{Key, KeyError, KeyRing};
pub use sql::{Account, Error, SqlStore};
