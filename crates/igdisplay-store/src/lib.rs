#![doc = include_str!("../README.md")]

mod accounts;
mod events;
mod keeper;
mod keys;
mod schedule;
mod schema;
mod sql;
mod webhook;

pub use accounts::{AccountSummary, MetaCallback, Rotation};
pub use events::{Event, Events};
pub use keeper::{Keeper, KeeperBuilder, KeeperSettings, Tally};
pub use keys::{Key, KeyError, KeyRing};
pub use schedule::{AccountState, RefreshSchedule};
pub use sql::{Account, Error, ON_DEMAND_WAIT, SqlStore};
pub use webhook::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookError, WebhookSender, verify_webhook,
};
