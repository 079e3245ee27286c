//! Printing URIs without their secrets.

use std::fmt;

/// Query parameters whose values are masked by [`redact_uri`]: tokens, the app secret, the
/// authorization code, the CSRF state and the PKCE verifier.
pub const SENSITIVE_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "client_secret",
    "code",
    "state",
    "code_verifier",
    "fb_exchange_token",
    "input_token",
    "refresh_token",
    "signed_request",
];

/// The mask written in place of a secret.
pub const MASK: &str = "[redacted]";

/// A [`Display`](fmt::Display) view of a URI with secrets masked; see [`redact_uri`].
#[derive(Clone, Copy)]
pub struct Redacted<'a>(&'a str);

/// Masks the values of [`SENSITIVE_QUERY_PARAMS`] and any userinfo of `uri`, for logs and
/// traces. The fragment is dropped. Accepts anything printable as a URI: an [`http::Uri`],
/// a `&str` or a `String`.
///
/// ```
/// use igdisplay_http::redact_uri;
///
/// let uri = "https://graph.instagram.com/me?fields=id&access_token=IGQVJ123";
/// assert_eq!(
///     redact_uri(uri).to_string(),
///     "https://graph.instagram.com/me?fields=id&access_token=[redacted]"
/// );
/// ```
pub fn redact_uri(uri: &(impl AsRef<str> + ?Sized)) -> Redacted<'_> {
    Redacted(uri.as_ref())
}

/// Like [`redact_uri`] for an [`http::Uri`]. Nothing is formatted until the view is
/// displayed, so a trace field that no subscriber records costs nothing.
///
/// ```
/// let uri: igdisplay_http::http::Uri = "https://graph.instagram.com/me?access_token=IGQVJ123".parse()?;
/// assert_eq!(
///     igdisplay_http::redact_http_uri(&uri).to_string(),
///     "https://graph.instagram.com/me?access_token=[redacted]"
/// );
/// # Ok::<(), igdisplay_http::http::uri::InvalidUri>(())
/// ```
pub fn redact_http_uri(uri: &http::Uri) -> RedactedHttpUri<'_> {
    RedactedHttpUri(uri)
}

/// A [`Display`](fmt::Display) view of an [`http::Uri`] with secrets masked; see
/// [`redact_http_uri`].
#[derive(Clone, Copy)]
pub struct RedactedHttpUri<'a>(&'a http::Uri);

impl fmt::Display for RedactedHttpUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&redact_uri(&self.0.to_string()), f)
    }
}

impl fmt::Debug for RedactedHttpUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let without_fragment = self.0.split('#').next().unwrap_or_default();
        let (base, query) = match without_fragment.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (without_fragment, None),
        };
        write_without_userinfo(f, base)?;
        let Some(query) = query else { return Ok(()) };
        f.write_str("?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((name, _)) if is_sensitive(name) => write!(f, "{name}={MASK}")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn is_sensitive(name: &str) -> bool {
    let decoded = name.replace("%5F", "_").replace("%5f", "_");
    SENSITIVE_QUERY_PARAMS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&decoded))
}

/// Writes `scheme://host/path`, replacing any `user:password@` with the mask.
fn write_without_userinfo(f: &mut fmt::Formatter<'_>, base: &str) -> fmt::Result {
    let Some((scheme, rest)) = base.split_once("://") else {
        return f.write_str(base);
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match authority.rsplit_once('@') {
        Some((_, host)) => write!(f, "{scheme}://{MASK}@{host}{path}"),
        None => f.write_str(base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sensitive_parameter_is_masked_and_others_kept() {
        let uri = "https://graph.instagram.com/access_token?grant_type=ig_exchange_token\
                   &client_secret=SECRET&access_token=TOKEN&code=CODE&state=STATE&fields=id,username";
        let shown = redact_uri(uri).to_string();
        for canary in ["SECRET", "TOKEN", "CODE", "STATE"] {
            assert!(!shown.contains(canary), "{shown}");
        }
        assert_eq!(
            shown,
            "https://graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret=[redacted]\
             &access_token=[redacted]&code=[redacted]&state=[redacted]&fields=id,username"
        );
    }

    #[test]
    fn userinfo_fragment_and_odd_spellings_are_masked() {
        assert_eq!(
            redact_uri("https://user:pw@evil.example/x?ACCESS_TOKEN=t&access%5Ftoken=u#code=v").to_string(),
            "https://[redacted]@evil.example/x?ACCESS_TOKEN=[redacted]&access%5Ftoken=[redacted]"
        );
        assert_eq!(redact_uri("/me?access_token").to_string(), "/me?access_token");
        assert_eq!(redact_uri("not a uri").to_string(), "not a uri");
        let uri: http::Uri = "http://127.0.0.1:1/me?access_token=CANARY".parse().unwrap();
        assert_eq!(
            redact_http_uri(&uri).to_string(),
            "http://127.0.0.1:1/me?access_token=[redacted]"
        );
        assert_eq!(
            format!("{:?}", redact_http_uri(&uri)),
            "\"http://127.0.0.1:1/me?access_token=[redacted]\""
        );
        assert_eq!(format!("{:?}", redact_uri("/a?code=1")), "\"/a?code=[redacted]\"");
    }
}
