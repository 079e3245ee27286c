//! Open enums: every known value has a variant, and any other value is kept verbatim in
//! `Unknown` so that a new Instagram value never fails a whole response.
//!
//! Parsing is case-insensitive (the Instagram Login docs spell `Business` and `Media_Creator`
//! while the API sends `BUSINESS` and `MEDIA_CREATOR`); serialization writes the canonical
//! upper-case form, or the unknown value as it came.
//!
//! [`Platform`] is closed: it names which of the two APIs (and so which wire shapes) is spoken.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// Every known value, in documentation order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire form: the canonical upper-case name, or the unknown value as sent.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Unknown(other) => other,
                }
            }

            /// Parses a wire value, case-insensitively; never fails.
            pub fn parse(value: &str) -> Self {
                $( if value.eq_ignore_ascii_case($wire) { return $name::$variant; } )+
                $name::Unknown(value.to_owned())
            }

            /// Whether the value is one this version does not know.
            pub fn is_unknown(&self) -> bool {
                matches!(self, $name::Unknown(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::parse(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = std::borrow::Cow::<str>::deserialize(deserializer)?;
                Ok(Self::parse(&value))
            }
        }
    };
}

open_enum!(
    /// What a media item is (`media_type`). Reels come back as [`MediaType::Video`].
    MediaType {
        /// A single photo.
        Image => "IMAGE",
        /// A video or a reel.
        Video => "VIDEO",
        /// An album ("carousel") whose items are its `children`.
        CarouselAlbum => "CAROUSEL_ALBUM",
    }
);

open_enum!(
    /// The kind of Instagram account (`account_type`).
    AccountType {
        /// A business account.
        Business => "BUSINESS",
        /// A creator account.
        MediaCreator => "MEDIA_CREATOR",
        /// A personal account (Basic Display only; Instagram Login needs a professional one).
        Personal => "PERSONAL",
    }
);

open_enum!(
    /// Where a media item was published (`media_product_type`, Instagram Login only).
    MediaProductType {
        /// An ad.
        Ad => "AD",
        /// A feed post.
        Feed => "FEED",
        /// A story.
        Story => "STORY",
        /// A reel.
        Reels => "REELS",
    }
);

/// Which Instagram API the app uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Platform {
    /// The Instagram API with Instagram Login (professional accounts; the live one).
    InstagramLogin,
    /// The Instagram Basic Display API (any account; switched off by Meta on 2024-12-04).
    BasicDisplay,
}

impl Platform {
    /// Both platforms.
    pub const ALL: [Platform; 2] = [Platform::InstagramLogin, Platform::BasicDisplay];

    /// `instagram-login` or `basic-display`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::InstagramLogin => "instagram-login",
            Platform::BasicDisplay => "basic-display",
        }
    }

    /// Parses `instagram-login` or `basic-display` (case-insensitive, `_` accepted for `-`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().replace('_', "-");
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(&text))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_parse_case_insensitively() {
        assert_eq!(MediaType::parse("CAROUSEL_ALBUM"), MediaType::CarouselAlbum);
        assert_eq!(AccountType::parse("Media_Creator"), AccountType::MediaCreator);
        assert_eq!(AccountType::parse("Business"), AccountType::Business);
        assert_eq!(MediaProductType::parse("reels"), MediaProductType::Reels);
    }

    #[test]
    fn unknown_values_are_kept_and_round_trip() {
        let reel: MediaType = serde_json::from_str("\"REEL\"").unwrap();
        assert_eq!(reel, MediaType::Unknown("REEL".into()));
        assert!(reel.is_unknown());
        assert_eq!(serde_json::to_string(&reel).unwrap(), "\"REEL\"");
        assert_eq!(
            serde_json::to_string(&AccountType::Personal).unwrap(),
            "\"PERSONAL\""
        );
    }

    #[test]
    fn every_known_value_round_trips_through_its_wire_form() {
        for value in MediaType::KNOWN {
            assert_eq!(&MediaType::parse(value.as_str()), value);
        }
        for value in AccountType::KNOWN {
            assert_eq!(&AccountType::parse(&value.to_string()), value);
        }
        for value in MediaProductType::KNOWN {
            assert!(!MediaProductType::parse(value.as_str()).is_unknown());
        }
    }

    #[test]
    fn escaped_strings_are_accepted() {
        // A JSON string with an escape cannot be borrowed; the Cow path must still work.
        let value: MediaType = serde_json::from_str("\"IM\\u0041GE\"").unwrap();
        assert_eq!(value, MediaType::Image);
    }
}
