#![doc = include_str!("../README.md")]

mod builder;
mod clock;
mod error;
mod faults;
mod handle;
mod journal;
mod rng;
mod routes;
mod seed;
mod server;
mod state;
mod tls;
mod wire;

pub mod cli;

pub use builder::{MockBuilder, RequestLog};
pub use clock::{DEFAULT_START, LATEST, MockClock};
pub use error::MockError;
pub use faults::{Fault, FaultKind, Stub};
pub use handle::{CallbackKind, IssuedToken, MockApp, MockServer, MockTime, MockUser, TokenLifetime};
pub use journal::{JournalEntry, JournalMismatch};
pub use seed::{Generated, MockPlatform, Seed, SeedApp, SeedKind, SeedMedia, SeedShape, SeedUser};
pub use state::{AssetSizes, ExpiredTokenForm, MockOptions, TokenShape, UsageKeys};
