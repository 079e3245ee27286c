#![doc = include_str!("../README.md")]

mod assets;
mod builder;
mod clock;
mod comments;
mod error;
mod faults;
mod fields;
mod handle;
mod headers;
mod journal;
mod rng;
mod routes;
mod seed;
mod server;
mod state;
mod tls;
mod wire;

pub mod cli;

/// A map keyed by text looked up on every request (tokens, media ids, `fields` values):
/// Fx hashing reads a 150-character token in a fraction of SipHash's time, and the mock, a
/// test server, has no untrusted keys to defend against flooding.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

pub use builder::{MockBuilder, RequestLog};
pub use clock::{DEFAULT_START, LATEST, MockClock};
pub use error::MockError;
pub use faults::{Fault, FaultKind, Stub, hostile_links};
pub use handle::{CallbackKind, IssuedToken, MockApp, MockServer, MockTime, MockUser, TokenLifetime};
pub use journal::{JournalEntry, JournalMismatch};
pub use seed::{Generated, MockPlatform, Seed, SeedApp, SeedKind, SeedMedia, SeedShape, SeedUser};
pub use state::{AssetSizes, ExpiredTokenForm, MockOptions, TokenShape, UsageKeys};
