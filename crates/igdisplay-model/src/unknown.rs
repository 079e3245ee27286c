//! [`UnknownFields`]: the fields of a node this version does not know, kept as sent.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The fields of a response this version of igdisplay does not model, kept as sent so that a
/// field Instagram adds (or an old one it still sends, such as `ig_id`) is never lost: read
/// it with [`get`](Self::get), and it is written back when the node is serialized.
///
/// `Debug` shows only the names: an unknown field may hold anything, a link with a token
/// included.
///
/// ```
/// use igdisplay_model::Media;
///
/// let media: Media = serde_json::from_str(
///     r#"{"id": "1", "boost_ads_list": [], "copyright_check_information": {"status": "ok"}}"#,
/// )?;
/// assert_eq!(media.extra.get("copyright_check_information").unwrap()["status"], "ok");
/// assert_eq!(format!("{:?}", media.extra), r#"UnknownFields(["boost_ads_list", "copyright_check_information"])"#);
/// let back = serde_json::to_value(&media)?;
/// assert_eq!(back["boost_ads_list"], serde_json::json!([]));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnknownFields(BTreeMap<String, serde_json::Value>);

impl UnknownFields {
    /// The value of the unknown field `name`, if it was sent.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.get(name)
    }

    /// The names of the unknown fields, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether every field was known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many unknown fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for UnknownFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnknownFields")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}
