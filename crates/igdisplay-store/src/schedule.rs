//! The states an account goes through.

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountState {
    /// The token works and its refresh is scheduled.
    Active,
    /// The last refresh failed for a passing reason (network, Instagram down); it is retried
    /// with backoff while the token is still valid.
    Failing,
    /// Instagram refused the token (error 190: password changed, app removed, account
    /// checkpointed): never retried; the user must log in again.
    Revoked,
    /// The token expired before it could be refreshed; the user must log in again.
    Expired,
    /// The user removed the app (the deauthorize callback): the token is erased.
    Deauthorized,
}

impl AccountState {
    /// Every state, in order.
    pub const ALL: [AccountState; 5] = [
        AccountState::Active,
        AccountState::Failing,
        AccountState::Revoked,
        AccountState::Expired,
        AccountState::Deauthorized,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Failing => "failing",
            AccountState::Revoked => "revoked",
            AccountState::Expired => "expired",
            AccountState::Deauthorized => "deauthorized",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the user must log in again for this account to work.
    pub fn needs_login(self) -> bool {
        matches!(
            self,
            AccountState::Revoked | AccountState::Expired | AccountState::Deauthorized
        )
    }
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in AccountState::ALL {
            assert_eq!(AccountState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AccountState::parse("asleep"), None);
    }
}
