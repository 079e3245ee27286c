#![doc = include_str!("../README.md")]

mod callback;
mod client;
mod config;
mod error;
mod flow;
mod manager;
mod signed_request;
mod store;
mod token;
pub mod webhooks;

pub use callback::{Callback, CallbackOutcome, MAX_CALLBACK_LEN};
pub use client::{AuthClient, ResponseObserver};
pub use config::{AppConfig, AppCredentials, ConfigError, Endpoints, Platform, scopes};
pub use error::{CallbackError, StoreError, TokenError};
pub use flow::{
    Authorization, AuthorizationGrant, AuthorizeBuilder, AuthorizeError, DEFAULT_STATE_TTL,
    PendingAuthorization, PendingAuthorizations, RandomnessError, STATE_BYTES, hex, random_hex,
};
pub use manager::{LoginError, TokenManager};
pub use signed_request::{
    DataDeletionResponse, MAX_SIGNED_REQUEST_LEN, SignedRequest, SignedRequestError, sign_signed_request,
    verify_fresh_signed_request, verify_signed_request,
};
pub use store::{FileStore, MemoryStore, PrivateFile, RefreshLock, TokenStore, is_temporary, write_private};
pub use token::{
    LONG_LIVED, MAX_LIFETIME, MIN_AGE_BEFORE_REFRESH, RefreshSchedule, SHORT_LIVED, TokenKind, TokenRecord,
};
