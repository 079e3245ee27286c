//! Token endpoint responses: the code exchange, and the long-lived exchange and refresh.

use crate::{AccessToken, UserId};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// `POST /oauth/access_token`: a short-lived token (1 hour) for one user.
///
/// Decodes every shape seen on both platforms: flat `{access_token, user_id}` (Basic
/// Display), flat with a `permissions` array (Instagram Login, observed), and wrapped in
/// `{"data":[{...}]}` with a comma-separated `permissions` string (Instagram Login,
/// documented). `user_id` may be a JSON number above 2^53 or a string.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "RawCodeExchange")]
#[non_exhaustive]
pub struct CodeExchangeResponse {
    /// The short-lived token.
    pub access_token: AccessToken,
    /// The Instagram-scoped id of the user who authorized the app.
    pub user_id: UserId,
    /// The granted scopes, when Instagram lists them (Instagram Login).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawCodeExchange {
    access_token: Option<AccessToken>,
    user_id: Option<UserId>,
    #[serde(default, deserialize_with = "permissions")]
    permissions: Option<Vec<String>>,
    data: Option<Vec<RawCodeExchange>>,
}

impl TryFrom<RawCodeExchange> for CodeExchangeResponse {
    type Error = &'static str;

    fn try_from(raw: RawCodeExchange) -> Result<Self, Self::Error> {
        if let Some(inner) = raw.data {
            return inner
                .into_iter()
                .next()
                .ok_or("the `data` array of the token response is empty")
                .and_then(CodeExchangeResponse::try_from);
        }
        Ok(CodeExchangeResponse {
            access_token: raw.access_token.ok_or("missing field `access_token`")?,
            user_id: raw.user_id.ok_or("missing field `user_id`")?,
            permissions: raw.permissions,
        })
    }
}

/// Accepts `"a,b"`, `["a","b"]` or `null`; blanks are dropped.
fn permissions<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Permissions;

    impl<'de> Visitor<'de> for Permissions {
        type Value = Option<Vec<String>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a comma-separated string or an array of scope names")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_str<E: de::Error>(self, csv: &str) -> Result<Self::Value, E> {
            Ok(Some(
                csv.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut scopes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
            while let Some(scope) = seq.next_element::<String>()? {
                if !scope.trim().is_empty() {
                    scopes.push(scope.trim().to_owned());
                }
            }
            Ok(Some(scopes))
        }
    }

    deserializer.deserialize_any(Permissions)
}

/// `GET /access_token` (`ig_exchange_token`) and `GET /refresh_access_token`
/// (`ig_refresh_token`): a long-lived token valid `expires_in` seconds from the request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LongLivedTokenResponse {
    /// The long-lived token; store it, it may differ from the one sent.
    pub access_token: AccessToken,
    /// Always `bearer` in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Seconds of validity counted from when the request was sent (about 5,184,000, 60 days).
    pub expires_in: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_array_is_an_error_that_says_so() {
        let err = serde_json::from_str::<CodeExchangeResponse>(r#"{"data":[]}"#).unwrap_err();
        assert!(err.to_string().contains("`data` array"), "{err}");
    }

    #[test]
    fn missing_token_is_named() {
        let err = serde_json::from_str::<CodeExchangeResponse>(r#"{"user_id":1}"#).unwrap_err();
        assert!(err.to_string().contains("access_token"), "{err}");
    }

    #[test]
    fn permissions_of_the_wrong_type_are_rejected() {
        let err = serde_json::from_str::<CodeExchangeResponse>(
            r#"{"access_token":"t","user_id":1,"permissions":5}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("comma-separated"), "{err}");
        let ok: CodeExchangeResponse =
            serde_json::from_str(r#"{"access_token":"t","user_id":1,"permissions":null}"#).unwrap();
        assert_eq!(ok.permissions, None);
        let blanks: CodeExchangeResponse =
            serde_json::from_str(r#"{"access_token":"t","user_id":1,"permissions":" a, ,b "}"#).unwrap();
        assert_eq!(blanks.permissions, Some(vec!["a".to_owned(), "b".to_owned()]));
    }
}
