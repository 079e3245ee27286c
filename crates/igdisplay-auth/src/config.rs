//! The app's configuration: platform, credentials, the exact redirect URI and base URLs.

use igdisplay_model::AppSecret;
pub use igdisplay_model::Platform;
use serde::{Deserialize, Serialize};

/// The scopes of both platforms, typed ([`Scope`](scopes::Scope)), and their names.
pub mod scopes {
    use super::Platform;
    use std::fmt;

    /// Basic Display: the User node (required).
    pub const USER_PROFILE: &str = "user_profile";
    /// Basic Display: media, albums and `media_count`.
    pub const USER_MEDIA: &str = "user_media";
    /// Instagram Login: profile and media (required; also needed to refresh).
    pub const INSTAGRAM_BUSINESS_BASIC: &str = "instagram_business_basic";
    /// Instagram Login: publishing.
    pub const INSTAGRAM_BUSINESS_CONTENT_PUBLISH: &str = "instagram_business_content_publish";
    /// Instagram Login: comments (read, reply, hide, delete), mentions and tags.
    pub const INSTAGRAM_BUSINESS_MANAGE_COMMENTS: &str = "instagram_business_manage_comments";
    /// Instagram Login: messaging.
    pub const INSTAGRAM_BUSINESS_MANAGE_MESSAGES: &str = "instagram_business_manage_messages";
    /// Instagram Login: insights.
    pub const INSTAGRAM_BUSINESS_MANAGE_INSIGHTS: &str = "instagram_business_manage_insights";

    /// A permission an app asks for in the authorize window (reference A.3, C.1). The
    /// authorize builder takes one wherever it takes a name (`.scope(Scope::...)`).
    ///
    /// ```
    /// use igdisplay_auth::scopes::{Scope, ScopeError};
    /// use igdisplay_auth::Platform;
    ///
    /// assert_eq!(Scope::parse("instagram_business_manage_comments")?, Some(Scope::InstagramBusinessManageComments));
    /// // The names of before 2025-01-27 are refused, with the name to use instead.
    /// let old = Scope::parse("business_manage_comments").unwrap_err();
    /// assert!(old.to_string().contains("instagram_business_manage_comments"));
    /// assert_eq!(Scope::UserMedia.platform(), Platform::BasicDisplay);
    /// # Ok::<(), ScopeError>(())
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum Scope {
        /// Basic Display: the User node (required there).
        UserProfile,
        /// Basic Display: media, albums and `media_count`.
        UserMedia,
        /// Instagram Login: profile and media (required there).
        InstagramBusinessBasic,
        /// Instagram Login: comments (read, reply, hide, delete), mentions and tags.
        InstagramBusinessManageComments,
        /// Instagram Login: insights.
        InstagramBusinessManageInsights,
        /// Instagram Login: publishing.
        InstagramBusinessContentPublish,
        /// Instagram Login: messaging.
        InstagramBusinessManageMessages,
    }

    impl Scope {
        /// Every scope, each platform's required one first.
        pub const ALL: [Scope; 7] = [
            Scope::UserProfile,
            Scope::UserMedia,
            Scope::InstagramBusinessBasic,
            Scope::InstagramBusinessManageComments,
            Scope::InstagramBusinessManageInsights,
            Scope::InstagramBusinessContentPublish,
            Scope::InstagramBusinessManageMessages,
        ];

        /// The name sent in the authorize URL.
        pub const fn as_str(self) -> &'static str {
            match self {
                Scope::UserProfile => USER_PROFILE,
                Scope::UserMedia => USER_MEDIA,
                Scope::InstagramBusinessBasic => INSTAGRAM_BUSINESS_BASIC,
                Scope::InstagramBusinessManageComments => INSTAGRAM_BUSINESS_MANAGE_COMMENTS,
                Scope::InstagramBusinessManageInsights => INSTAGRAM_BUSINESS_MANAGE_INSIGHTS,
                Scope::InstagramBusinessContentPublish => INSTAGRAM_BUSINESS_CONTENT_PUBLISH,
                Scope::InstagramBusinessManageMessages => INSTAGRAM_BUSINESS_MANAGE_MESSAGES,
            }
        }

        /// The platform whose authorize window knows it.
        pub const fn platform(self) -> Platform {
            match self {
                Scope::UserProfile | Scope::UserMedia => Platform::BasicDisplay,
                _ => Platform::InstagramLogin,
            }
        }

        /// The scope named `name` (surrounding blanks ignored); `None` for a name igdisplay
        /// does not know, which is sent as written.
        ///
        /// # Errors
        ///
        /// [`ScopeError::Renamed`] for a name Instagram stopped accepting on 2025-01-27
        /// (`business_basic`, `business_manage_comments`, ...), naming its successor.
        pub fn parse(name: &str) -> Result<Option<Scope>, ScopeError> {
            let name = name.trim();
            if let Some(scope) = Scope::ALL.into_iter().find(|scope| scope.as_str() == name) {
                return Ok(Some(scope));
            }
            let renamed = Scope::ALL
                .into_iter()
                .find(|scope| scope.as_str().strip_prefix("instagram_") == Some(name));
            match renamed {
                Some(new) => Err(ScopeError::Renamed {
                    old: name.to_owned(),
                    new,
                }),
                None => Ok(None),
            }
        }

        /// Checks `name` for an authorize URL on `platform`.
        ///
        /// # Errors
        ///
        /// [`ScopeError::Renamed`] as [`parse`](Self::parse); [`ScopeError::OtherPlatform`] for a
        /// scope of the other platform, which its window refuses.
        pub fn check(name: &str, platform: Platform) -> Result<(), ScopeError> {
            match Scope::parse(name)? {
                Some(scope) if scope.platform() != platform => {
                    Err(ScopeError::OtherPlatform { scope, platform })
                }
                _ => Ok(()),
            }
        }
    }

    impl fmt::Display for Scope {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.as_str())
        }
    }

    impl From<Scope> for String {
        fn from(scope: Scope) -> Self {
            scope.as_str().to_owned()
        }
    }

    /// A scope an authorize window would refuse.
    #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum ScopeError {
        /// One of the names Instagram Login stopped accepting on 2025-01-27.
        #[error("the scope `{old}` was renamed `{new}` on 2025-01-27: ask for `{new}`")]
        Renamed {
            /// The name asked for.
            old: String,
            /// The name to ask for instead.
            new: Scope,
        },
        /// A scope of the other platform.
        #[error("the scope `{scope}` belongs to {}, not to {platform}", .scope.platform())]
        OtherPlatform {
            /// The scope asked for.
            scope: Scope,
            /// The platform of the authorize window.
            platform: Platform,
        },
    }

    /// The scope without which `platform` refuses to authorize.
    pub fn required(platform: Platform) -> &'static str {
        match platform {
            Platform::BasicDisplay => USER_PROFILE,
            _ => INSTAGRAM_BUSINESS_BASIC,
        }
    }

    /// The scopes a read-only app asks for on `platform`: profile and media.
    pub fn defaults(platform: Platform) -> &'static [&'static str] {
        match platform {
            Platform::BasicDisplay => &[USER_PROFILE, USER_MEDIA],
            _ => &[INSTAGRAM_BUSINESS_BASIC],
        }
    }
}

/// Where each kind of request goes. Production hosts by default; point them all at a mock
/// with [`Endpoints::single_origin`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Endpoints {
    /// The authorize window, a full URL (`https://www.instagram.com/oauth/authorize`).
    pub authorize_url: String,
    /// The base of `POST /oauth/access_token` (`https://api.instagram.com`).
    pub api_base: String,
    /// The base of the Graph token endpoints (`https://graph.instagram.com`).
    pub graph_base: String,
}

impl Endpoints {
    /// Instagram's own hosts for `platform`.
    pub fn production(platform: Platform) -> Self {
        let authorize_url = match platform {
            Platform::BasicDisplay => "https://api.instagram.com/oauth/authorize",
            _ => "https://www.instagram.com/oauth/authorize",
        };
        Self {
            authorize_url: authorize_url.to_owned(),
            api_base: "https://api.instagram.com".to_owned(),
            graph_base: "https://graph.instagram.com".to_owned(),
        }
    }

    /// Everything on one origin, as the bundled mock serves it: `{base}/oauth/authorize`,
    /// `{base}/oauth/access_token`, `{base}/access_token`, ...
    pub fn single_origin(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            authorize_url: format!("{base}/oauth/authorize"),
            api_base: base.to_owned(),
            graph_base: base.to_owned(),
        }
    }

    /// Who issues tokens here, as a [`TokenRecord::issued_by`](crate::TokenRecord::issued_by)
    /// holds it: the origin of `api_base` (`https://api.instagram.com` for Instagram).
    pub fn issuer(&self) -> String {
        origin(&self.api_base)
    }

    /// Whether a token whose record says it was issued by `issued_by` may be sent to the
    /// Graph base here: Instagram's tokens to Instagram's hosts only, a stand-in's (a mock's)
    /// to that stand-in only. A record that does not say (stored by hand, or before igdisplay
    /// kept this) is sent anywhere.
    pub fn accepts_tokens_of(&self, issued_by: Option<&str>) -> bool {
        match issued_by {
            None => true,
            Some(issuer) if INSTAGRAM_ORIGINS.contains(&issuer) => self.is_production(),
            Some(issuer) => origin(&self.graph_base) == issuer,
        }
    }

    /// Whether every endpoint is one of Instagram's production hosts.
    pub fn is_production(&self) -> bool {
        let real = |url: &str| {
            INSTAGRAM_ORIGINS
                .iter()
                .any(|host| url == *host || url.starts_with(&format!("{host}/")))
        };
        real(&self.authorize_url) && real(&self.api_base) && real(&self.graph_base)
    }

    fn normalized(mut self) -> Self {
        for url in [&mut self.authorize_url, &mut self.api_base, &mut self.graph_base] {
            let trimmed = url.trim().trim_end_matches('/').to_owned();
            *url = trimmed;
        }
        self
    }
}

/// A configuration the flow cannot work with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The app id is empty or not numeric.
    #[error("the app id must be the numeric Instagram App ID from the App Dashboard")]
    InvalidAppId,
    /// The app secret is empty.
    #[error("the app secret is empty")]
    EmptyAppSecret,
    /// The redirect URI is not an absolute http(s) URI without a fragment.
    #[error("the redirect URI must be an absolute http or https URI without a fragment")]
    InvalidRedirectUri,
    /// A base URL is not an absolute http(s) URL.
    #[error("the {0} endpoint must be an absolute http or https URL")]
    InvalidEndpoint(&'static str),
}

/// Everything the authorization flow needs to know about the app.
///
/// A configuration without [`AppCredentials`] ([`AppConfig::read_only`]) serves stored or
/// dashboard tokens: it refreshes them, but logins and token exchanges need the credentials
/// and fail with [`TokenError::NoAppCredentials`](crate::TokenError::NoAppCredentials).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppConfig {
    /// Which API.
    pub platform: Platform,
    /// The app's credentials, when logins are to be made.
    pub app: Option<AppCredentials>,
    /// Where requests go.
    pub endpoints: Endpoints,
}

/// What logging users in needs: the app's id and secret and its registered redirect URI.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppCredentials {
    /// The Instagram App ID (`client_id`).
    pub app_id: String,
    /// The Instagram App Secret (`client_secret`).
    pub app_secret: AppSecret,
    /// The redirect URI, byte for byte as registered in the App Dashboard (mind the
    /// trailing `/` the dashboard may add).
    pub redirect_uri: String,
}

impl AppConfig {
    /// A configuration for stored or dashboard tokens only, on Instagram's production hosts:
    /// no app id, secret or redirect URI. Tokens are refreshed (that needs only the token);
    /// logins and exchanges fail with a typed error.
    pub fn read_only(platform: Platform) -> Self {
        Self {
            platform,
            app: None,
            endpoints: Endpoints::production(platform),
        }
    }

    /// The app's credentials.
    ///
    /// # Errors
    ///
    /// [`TokenError::NoAppCredentials`](crate::TokenError::NoAppCredentials) for a read-only
    /// configuration.
    pub fn credentials(&self) -> Result<&AppCredentials, crate::TokenError> {
        self.app.as_ref().ok_or(crate::TokenError::NoAppCredentials)
    }

    /// A configuration on Instagram's production hosts.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the app id is not numeric, the secret is empty, or the redirect
    /// URI is not an absolute http(s) URI.
    pub fn new(
        platform: Platform,
        app_id: impl Into<String>,
        app_secret: AppSecret,
        redirect_uri: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let app_id = app_id.into().trim().to_owned();
        if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::InvalidAppId);
        }
        if app_secret.expose_secret().trim().is_empty() {
            return Err(ConfigError::EmptyAppSecret);
        }
        let redirect_uri = redirect_uri.into();
        if !is_absolute_http(&redirect_uri) || redirect_uri.contains('#') {
            return Err(ConfigError::InvalidRedirectUri);
        }
        Ok(Self {
            platform,
            app: Some(AppCredentials {
                app_id,
                app_secret,
                redirect_uri,
            }),
            endpoints: Endpoints::production(platform),
        })
    }

    /// Replaces the endpoints (e.g. with [`Endpoints::single_origin`] for a mock).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidEndpoint`] when one is not an absolute http(s) URL.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Result<Self, ConfigError> {
        let endpoints = endpoints.normalized();
        for (name, url) in [
            ("authorize", &endpoints.authorize_url),
            ("api", &endpoints.api_base),
            ("graph", &endpoints.graph_base),
        ] {
            if !is_absolute_http(url) {
                return Err(ConfigError::InvalidEndpoint(name));
            }
        }
        self.endpoints = endpoints;
        Ok(self)
    }
}

fn is_absolute_http(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())
}

/// Instagram's own hosts.
const INSTAGRAM_ORIGINS: [&str; 3] = [
    "https://api.instagram.com",
    "https://www.instagram.com",
    "https://graph.instagram.com",
];

/// `scheme://host[:port]` of `url`, lower-cased; the URL itself when it has no such form.
fn origin(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return lower;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_back_only_to_whoever_issued_them() {
        let instagram = Endpoints::production(Platform::InstagramLogin);
        let mock = Endpoints::single_origin("http://127.0.0.1:8787/");
        assert_eq!(instagram.issuer(), "https://api.instagram.com");
        assert_eq!(mock.issuer(), "http://127.0.0.1:8787");
        assert!(instagram.accepts_tokens_of(Some("https://api.instagram.com")));
        assert!(!instagram.accepts_tokens_of(Some("http://127.0.0.1:8787")));
        assert!(mock.accepts_tokens_of(Some("http://127.0.0.1:8787")));
        assert!(!mock.accepts_tokens_of(Some("https://api.instagram.com")));
        assert!(!mock.accepts_tokens_of(Some("http://127.0.0.1:9999")));
        assert!(
            mock.accepts_tokens_of(None) && instagram.accepts_tokens_of(None),
            "unknown: as before"
        );
    }

    fn config() -> AppConfig {
        AppConfig::new(
            Platform::InstagramLogin,
            "684477648739411",
            AppSecret::new("s3cret"),
            "https://socialsizzle.herokuapp.com/auth/",
        )
        .unwrap()
    }

    #[test]
    fn platforms_parse_and_name_their_hosts_and_scopes() {
        assert_eq!(Platform::parse("Basic_Display"), Some(Platform::BasicDisplay));
        assert_eq!(Platform::parse("graph"), None);
        assert_eq!(
            Endpoints::production(Platform::BasicDisplay).authorize_url,
            "https://api.instagram.com/oauth/authorize"
        );
        assert_eq!(
            scopes::required(Platform::InstagramLogin),
            "instagram_business_basic"
        );
        assert_eq!(
            scopes::defaults(Platform::BasicDisplay),
            ["user_profile", "user_media"]
        );
        assert!(config().endpoints.is_production());
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        let secret = || AppSecret::new("s");
        let uri = "https://example.com/cb";
        let new =
            |id: &str, secret: AppSecret, uri: &str| AppConfig::new(Platform::BasicDisplay, id, secret, uri);
        assert_eq!(new("", secret(), uri).unwrap_err(), ConfigError::InvalidAppId);
        assert_eq!(new("12a", secret(), uri).unwrap_err(), ConfigError::InvalidAppId);
        assert_eq!(
            new("1", AppSecret::new(" "), uri).unwrap_err(),
            ConfigError::EmptyAppSecret
        );
        for bad in ["/relative", "ftp://x/y", "https://x/cb#_", "not a uri"] {
            assert_eq!(
                new("1", secret(), bad).unwrap_err(),
                ConfigError::InvalidRedirectUri,
                "{bad}"
            );
        }
        let err = config()
            .with_endpoints(Endpoints::single_origin("localhost:8787"))
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidEndpoint("authorize"));
    }

    #[test]
    fn single_origin_points_everything_at_one_server() {
        let config = config()
            .with_endpoints(Endpoints::single_origin("http://127.0.0.1:8787/"))
            .unwrap();
        assert_eq!(
            config.endpoints.authorize_url,
            "http://127.0.0.1:8787/oauth/authorize"
        );
        assert_eq!(config.endpoints.api_base, "http://127.0.0.1:8787");
        assert!(!config.endpoints.is_production());
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn every_scope_parses_from_its_name_and_every_old_name_is_refused_with_its_successor() {
        use super::scopes::{Scope, ScopeError};
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Ok(Some(scope)));
            assert_eq!(
                Scope::parse(&format!(" {scope} ")),
                Ok(Some(scope)),
                "blanks ignored"
            );
        }
        for (old, new) in [
            ("business_basic", Scope::InstagramBusinessBasic),
            ("business_manage_comments", Scope::InstagramBusinessManageComments),
            ("business_manage_insights", Scope::InstagramBusinessManageInsights),
            ("business_content_publish", Scope::InstagramBusinessContentPublish),
            ("business_manage_messages", Scope::InstagramBusinessManageMessages),
        ] {
            let error = Scope::parse(old).unwrap_err();
            assert_eq!(
                error,
                ScopeError::Renamed {
                    old: old.to_owned(),
                    new
                }
            );
            assert!(error.to_string().contains(&format!("ask for `{new}`")), "{error}");
        }
        assert_eq!(
            Scope::parse("instagram_business_something_new"),
            Ok(None),
            "sent as written"
        );
        assert_eq!(
            Scope::check("user_media", Platform::InstagramLogin),
            Err(ScopeError::OtherPlatform {
                scope: Scope::UserMedia,
                platform: Platform::InstagramLogin
            })
        );
        assert!(Scope::check("instagram_business_basic", Platform::BasicDisplay).is_err());
        assert_eq!(Scope::check("user_media", Platform::BasicDisplay), Ok(()));
    }
}
