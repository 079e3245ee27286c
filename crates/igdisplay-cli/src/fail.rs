//! Failures as one clear sentence, the fix where one is known, and an exit code:
//! 1 for API or runtime failures, 2 for usage or configuration errors.

use igdisplay::auth::{CallbackError, LoginError, StoreError, TokenError};
use std::fmt;

/// A failed command.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) code: u8,
    /// No answer came from this side of Instagram (a connect failure, a timeout, a reset):
    /// [`Failure::with_host`] names the host and says what to check.
    pub(crate) unreachable: Option<Side>,
}

/// Which of Instagram's hosts a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The Graph API (profile, media).
    Graph,
    /// The OAuth token endpoints (login, refresh).
    Api,
}

impl Failure {
    /// A configuration or usage error (exit code 2).
    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
            code: 2,
            unreachable: None,
        }
    }

    /// A runtime failure (exit code 1).
    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: 1,
            unreachable: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn unreachable(mut self, side: Side) -> Self {
        self.unreachable = Some(side);
        self
    }

    /// For a failure that got no answer: names the host it tried (`host`, given the side) and
    /// what to check, a mock that is not running when `mock` is set.
    pub(crate) fn with_host(self, host: impl Fn(Side) -> String, mock: Option<&str>) -> Self {
        let Some(side) = self.unreachable else {
            return self;
        };
        let message = format!("could not reach {}: {}", host(side), self.message);
        let hint = match mock {
            Some(base) => format!(
                "is the mock running at {base}? Start one with `igdisplay mock serve`, or correct --mock (IGDISPLAY_MOCK)"
            ),
            None => "check the network connection; to try igdisplay without Instagram, start `igdisplay mock serve` \
                     and pass --mock http://127.0.0.1:8787"
                .to_owned(),
        };
        Self {
            message,
            hint: Some(hint),
            ..self
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// An error with its sources, `a: b: c`, each part once.
pub(crate) use igdisplay::model::error_chain as chain;

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Self {
        let failure = Failure::runtime(chain(&error));
        match &error {
            TokenError::NotATester { .. } => failure.hint(
                "invite the account under App Dashboard > App roles > Roles > Instagram Testers, then accept the \
                 invitation in Instagram under Settings > Apps and websites > Tester invites",
            ),
            TokenError::InvalidClient { .. } => failure.hint(
                "use the Instagram App ID and Secret (Instagram > API setup), not the Facebook app's",
            ),
            TokenError::RedirectUriMismatch { .. } => failure.hint(
                "--redirect-uri must equal the registered one byte for byte, trailing slash included",
            ),
            TokenError::CodeAlreadyUsed { .. } | TokenError::InvalidCode { .. } => {
                failure.hint("a code works once and for one hour: run `igdisplay login` again")
            }
            e if e.requires_reauthorization() => failure.hint("run `igdisplay login` again"),
            TokenError::TooEarly { .. } => failure.hint("Instagram refreshes a token only once it is 24 hours old"),
            TokenError::Transport { .. } => failure.unreachable(Side::Api),
            _ => failure,
        }
    }
}

impl From<CallbackError> for Failure {
    fn from(error: CallbackError) -> Self {
        let failure = Failure::runtime(chain(&error));
        match error {
            CallbackError::Denied { .. } => {
                failure.hint("the login was cancelled in Instagram; run it again to retry")
            }
            CallbackError::StateMismatch
            | CallbackError::StateAlreadyUsed
            | CallbackError::AuthorizationExpired => {
                failure.hint("start again with `igdisplay auth url` or `igdisplay login`")
            }
            _ => failure.hint("pass the whole URL the browser was sent to, in quotes"),
        }
    }
}

impl From<LoginError> for Failure {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Callback(e) => e.into(),
            LoginError::Token(e) => e.into(),
            other => Failure::runtime(chain(&other)),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::runtime(chain(&error)).hint("check the token file's directory, or pass --token-file")
    }
}

impl From<igdisplay::graph::Error> for Failure {
    fn from(error: igdisplay::graph::Error) -> Self {
        let failure = Failure::runtime(chain(&error));
        match &error {
            e if e.requires_login() => {
                failure.hint("run `igdisplay login` again (or `igdisplay token import`)")
            }
            e if e.is_rate_limited() => {
                failure.hint("Instagram is rate limiting this account; wait and try again")
            }
            igdisplay::graph::Error::Transport { .. } => failure.unreachable(Side::Graph),
            igdisplay::graph::Error::UnexpectedResponse { status, attempts, .. } if *status >= 500 => failure
                .hint(format!(
                    "the server answered {status} to all {attempts} attempt(s): Instagram is having trouble; \
                     try again in a few minutes"
                )),
            _ => failure,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::runtime(chain(&error))
    }
}
