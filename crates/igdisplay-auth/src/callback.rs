//! Reading the redirect back from the authorize window.
//!
//! Accepts the full redirect URL, its query, or the query with a leading `?`, as a browser
//! delivers it or as a person pastes it: surrounding whitespace is trimmed, the `#_` Instagram
//! appends (and any other fragment, or a trailing `%23_`) is dropped. Then it refuses, without
//! sending anything, every callback it cannot read unambiguously.

use crate::CallbackError;
use igdisplay_model::{AuthorizationCode, CsrfState};
use percent_encoding::percent_decode_str;

/// The longest callback accepted, in bytes.
pub const MAX_CALLBACK_LEN: usize = 16 * 1024;

/// A parsed callback: a code or a denial, with the state that came with it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Callback {
    /// The outcome Instagram reported.
    pub outcome: CallbackOutcome,
    /// `state`, if present.
    pub state: Option<CsrfState>,
}

/// What the authorize window reported.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// The user approved: a single-use code, valid one hour.
    Code(AuthorizationCode),
    /// The user cancelled or Instagram refused.
    Denied {
        /// `error`, usually `access_denied`.
        error: String,
        /// `error_reason`, usually `user_denied`.
        reason: String,
        /// `error_description`.
        description: String,
    },
}

impl CallbackOutcome {
    /// The code, or the denial as a [`CallbackError::Denied`].
    ///
    /// # Errors
    ///
    /// [`CallbackError::Denied`] when the user cancelled or Instagram refused.
    pub fn into_code(self) -> Result<AuthorizationCode, CallbackError> {
        match self {
            CallbackOutcome::Code(code) => Ok(code),
            CallbackOutcome::Denied {
                error,
                reason,
                description,
            } => Err(CallbackError::Denied {
                error,
                reason,
                description,
            }),
        }
    }
}

impl Callback {
    /// Parses a redirect URL or its query string.
    ///
    /// # Errors
    ///
    /// [`CallbackError::TooLarge`], [`Malformed`](CallbackError::Malformed) (bad percent-encoding,
    /// invalid UTF-8, control characters), [`DuplicateParameter`](CallbackError::DuplicateParameter),
    /// [`BothCodeAndError`](CallbackError::BothCodeAndError), [`EmptyCode`](CallbackError::EmptyCode)
    /// or [`MissingCode`](CallbackError::MissingCode).
    pub fn parse(input: &str) -> Result<Self, CallbackError> {
        if input.len() > MAX_CALLBACK_LEN {
            return Err(CallbackError::TooLarge {
                len: input.len(),
                limit: MAX_CALLBACK_LEN,
            });
        }
        let query = query_of(input.trim());
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut reason = None;
        let mut description = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match decode(name)?.as_str() {
                "code" => (&mut code, "code"),
                "state" => (&mut state, "state"),
                "error" => (&mut error, "error"),
                "error_reason" => (&mut reason, "error_reason"),
                "error_description" => (&mut description, "error_description"),
                _ => continue,
            };
            if slot.0.is_some() {
                return Err(CallbackError::DuplicateParameter(slot.1));
            }
            *slot.0 = Some(decode(value)?);
        }
        let outcome = match (code, error) {
            (Some(_), Some(_)) => return Err(CallbackError::BothCodeAndError),
            (Some(code), None) => {
                // `#_` is never part of a code, wherever a paste left it percent-encoded.
                let code = code.strip_suffix("#_").unwrap_or(&code);
                if code.is_empty() {
                    return Err(CallbackError::EmptyCode);
                }
                CallbackOutcome::Code(AuthorizationCode::new(code))
            }
            (None, Some(error)) => CallbackOutcome::Denied {
                error,
                reason: reason.unwrap_or_default(),
                description: description.unwrap_or_default(),
            },
            (None, None) => return Err(CallbackError::MissingCode),
        };
        Ok(Callback {
            outcome,
            state: state.filter(|s| !s.is_empty()).map(CsrfState::new),
        })
    }
}

/// The query part of a URL (or the input itself), without any fragment or trailing `%23_`.
fn query_of(input: &str) -> &str {
    let without_fragment = input.split('#').next().unwrap_or_default();
    let query = match without_fragment.split_once('?') {
        Some((_, query)) => query,
        None if without_fragment.contains('=') => without_fragment,
        None => "",
    };
    let query = query.strip_suffix("%23_").unwrap_or(query);
    query.strip_suffix("%23").unwrap_or(query)
}

/// Percent-decodes one component (`+` is a space), refusing invalid UTF-8 and control characters.
fn decode(component: &str) -> Result<String, CallbackError> {
    let spaced = component.replace('+', " ");
    let decoded = percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| CallbackError::Malformed("a parameter is not valid UTF-8 once decoded"))?;
    if decoded.chars().any(char::is_control) {
        return Err(CallbackError::Malformed(
            "a parameter contains control characters",
        ));
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(input: &str) -> String {
        match Callback::parse(input).unwrap().outcome {
            CallbackOutcome::Code(code) => code.expose_secret().to_owned(),
            other => panic!("not a code: {other:?}"),
        }
    }

    #[test]
    fn the_hash_underscore_suffix_and_whitespace_are_stripped() {
        assert_eq!(code_of("https://app.example/auth/?code=ABC&state=S#_"), "ABC");
        assert_eq!(code_of("  https://app.example/auth/?code=ABC#_\n"), "ABC");
        assert_eq!(code_of("code=ABC%23_"), "ABC");
        assert_eq!(code_of("?state=S&code=ABC%23_"), "ABC");
        assert_eq!(code_of("code=ABC%23_&state=S"), "ABC");
        assert_eq!(code_of("https://app.example/auth/?code=ABC#anything=else"), "ABC");
        assert_eq!(code_of("code=AQDp3TtBQQ%2Fx%3D"), "AQDp3TtBQQ/x=");
        let parsed = Callback::parse("https://app.example/cb?code=ABC&state=xyz#_").unwrap();
        assert_eq!(parsed.state.unwrap().expose_secret(), "xyz");
    }

    #[test]
    fn the_cancel_redirect_is_a_denial_with_its_details() {
        let parsed = Callback::parse(
            "https://app.example/cb?error=access_denied&error_reason=user_denied\
             &error_description=The+user+denied+your+request&state=S",
        )
        .unwrap();
        match parsed.outcome {
            CallbackOutcome::Denied {
                error,
                reason,
                description,
            } => {
                assert_eq!(
                    (error.as_str(), reason.as_str(), description.as_str()),
                    ("access_denied", "user_denied", "The user denied your request")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ambiguous_or_hostile_callbacks_are_refused() {
        let cases: &[(&str, CallbackError)] = &[
            ("code=A&error=access_denied", CallbackError::BothCodeAndError),
            ("code=A&code=B", CallbackError::DuplicateParameter("code")),
            (
                "code=A&state=1&state=2",
                CallbackError::DuplicateParameter("state"),
            ),
            ("code=&state=S", CallbackError::EmptyCode),
            ("state=S", CallbackError::MissingCode),
            ("https://app.example/cb", CallbackError::MissingCode),
            (
                "code=%00abc",
                CallbackError::Malformed("a parameter contains control characters"),
            ),
            (
                "code=%ff%fe",
                CallbackError::Malformed("a parameter is not valid UTF-8 once decoded"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(&Callback::parse(input).unwrap_err(), expected, "{input}");
        }
        let huge = format!("code={}", "A".repeat(1 << 20));
        assert!(matches!(
            Callback::parse(&huge),
            Err(CallbackError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_parameters_are_ignored_and_empty_state_is_missing() {
        let parsed = Callback::parse("code=A&state=&utm_source=x&&").unwrap();
        assert!(parsed.state.is_none());
    }
}
