//! Identifier newtypes that survive values above 2^53.
//!
//! Instagram ids are numeric strings of 16 to 18 digits in Graph responses but a JSON
//! *number* in the code-exchange response. A JavaScript or `f64` parse loses precision above
//! 2^53, so these types accept a JSON string or an unsigned integer and keep the exact
//! digits as a string.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id given as text.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as the decimal string Instagram uses in paths.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an integer, when it is one (Instagram's always are).
            pub fn as_u64(&self) -> Option<u64> {
                self.0.parse().ok()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<u64> for $name {
            fn from(id: u64) -> Self {
                Self(id.to_string())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(IdVisitor($what)).map(Self)
            }
        }
    };
}

id_type!(
    /// An Instagram user id: app-scoped (`id` of `/me`) or the professional account id
    /// (`user_id` under Instagram Login).
    UserId,
    "a user id as a string or an unsigned integer"
);
id_type!(
    /// An Instagram media id (image, video, album or album child).
    MediaId,
    "a media id as a string or an unsigned integer"
);
id_type!(
    /// An Instagram comment id (a comment on a media item, or a reply to one).
    CommentId,
    "a comment id as a string or an unsigned integer"
);

/// Accepts a JSON string or a non-negative integer; rejects floats, which have already lost
/// digits by the time they reach us.
struct IdVisitor(&'static str);

impl Visitor<'_> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        u64::try_from(v)
            .map(|v| v.to_string())
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_above_2_pow_53_keeps_every_digit() {
        let id: UserId = serde_json::from_str("17841405793187218").unwrap();
        assert_eq!(id.as_str(), "17841405793187218");
        assert_eq!(id.as_u64(), Some(17_841_405_793_187_218));
        // 2^53 + 1 is the first integer an f64 cannot hold.
        let id: MediaId = serde_json::from_str("9007199254740993").unwrap();
        assert_eq!(id.to_string(), "9007199254740993");
        let id: MediaId = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(id.as_str(), "18446744073709551615");
    }

    #[test]
    fn string_form_is_kept_and_serialized_as_string() {
        let id: UserId = serde_json::from_str("\"27640875392278831\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"27640875392278831\"");
        assert_eq!(format!("{id:?}"), "UserId(\"27640875392278831\")");
    }

    #[test]
    fn floats_and_negatives_are_rejected_with_a_clear_error() {
        let err = serde_json::from_str::<UserId>("1.7841400774391E+16").unwrap_err();
        assert!(err.to_string().contains("a user id"), "{err}");
        assert!(serde_json::from_str::<MediaId>("-5").is_err());
        assert!(serde_json::from_str::<MediaId>("true").is_err());
    }
}
