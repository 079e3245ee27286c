#![doc = include_str!("../README.md")]

mod accounts;
mod budget;
mod dialect;
mod error;
mod events;
mod feeds;
mod inbound;
mod keeper;
mod keys;
mod repo;
mod schedule;
mod schema;
mod store;
mod tasks;
#[cfg(feature = "test-util")]
pub mod test_util;
mod webhook;

pub use accounts::{AccountSummary, FleetStats, MetaCallback, Rotation};
pub use budget::{AppBudget, AppQuota};
pub use error::Error;
pub use events::{Event, EventState, Events, OutboxEvent, Subscription};
pub use feeds::{ClaimedSync, DeletedFeed, FeedRow, FeedState, FeedStats, LinkState, SyncSchedule};
pub use keeper::{Keeper, KeeperBuilder, KeeperSettings, Tally};
pub use keys::{Key, KeyError, KeyRing};
pub use schedule::AccountState;
pub use store::{Account, ON_DEMAND_WAIT, SqlStore};
pub use tasks::TaskLease;
pub use webhook::{
    DELIVERY_HEADER, DeliveryTally, EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, SeenEvents,
    VerifiedWebhook, WebhookError, WebhookSender, verify_webhook,
};
