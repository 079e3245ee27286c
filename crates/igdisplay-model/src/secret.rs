//! Secret newtypes: values that must never reach a log, an error message or a snapshot.
//!
//! Each type prints `[redacted]` under `Debug`, has no `Display`, no derived `PartialEq`
//! (comparing secrets is done in constant time by the crates that need it) and gives its
//! value only through [`expose_secret`](AccessToken::expose_secret). They serialize as a
//! plain string so that token stores can persist them. The value is shared, not copied:
//! cloning one (a token for each request) counts a reference.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The secret itself. Call it only where the value leaves the process on purpose:
            /// a request to Instagram, or a token store.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// Whether the value is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }
    };
}

secret_type!(
    /// The Instagram App Secret (`client_secret`), shown in the App Dashboard.
    AppSecret
);
secret_type!(
    /// An Instagram User Access Token, short-lived (1 hour) or long-lived (60 days).
    AccessToken
);
secret_type!(
    /// The single-use authorization code Instagram appends to the redirect URI.
    AuthorizationCode
);
secret_type!(
    /// The CSRF `state` value sent in the authorize URL and echoed on the redirect.
    CsrfState
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_value_is_reachable() {
        let token = AccessToken::new("IGQVJcanary");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(
            format!("{:#?}", Some(token.clone())),
            "Some(\n    AccessToken([redacted]),\n)"
        );
        assert_eq!(token.expose_secret(), "IGQVJcanary");
        assert_eq!(format!("{:?}", AppSecret::new("s")), "AppSecret([redacted])");
        assert_eq!(
            format!("{:?}", AuthorizationCode::new("c")),
            "AuthorizationCode([redacted])"
        );
        assert_eq!(format!("{:?}", CsrfState::new("c")), "CsrfState([redacted])");
    }

    #[test]
    fn serde_is_a_plain_string() {
        let json = serde_json::to_string(&AccessToken::new("abc")).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: CsrfState = serde_json::from_str("\"xyz\"").unwrap();
        assert_eq!(back.expose_secret(), "xyz");
        assert!(!back.is_empty());
        assert!(AppSecret::new("").is_empty());
    }
}
