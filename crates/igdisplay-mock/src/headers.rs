//! Header values the fake sends on most answers, each made once and cloned after: the `Date`
//! of the current second of mock time and the `Instagram-Api-Version`.

use http::HeaderValue;

/// The last `Date` and `Instagram-Api-Version` values made, with what they were made from.
#[derive(Debug, Default)]
pub(crate) struct HeaderCache {
    date: Option<(i64, HeaderValue)>,
    version: Option<(String, Option<HeaderValue>)>,
}

impl HeaderCache {
    /// The `Date` of an answer at Unix seconds `now` of mock time, formatted once per second.
    pub(crate) fn date(&mut self, now: i64) -> HeaderValue {
        match &self.date {
            Some((at, value)) if *at == now => value.clone(),
            _ => {
                let value = HeaderValue::try_from(http_date(now))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                self.date = Some((now, value.clone()));
                value
            }
        }
    }

    /// `Instagram-Api-Version` for `version` (none if it cannot be a header), kept until the
    /// version changes.
    pub(crate) fn api_version(&mut self, version: &str) -> Option<HeaderValue> {
        match &self.version {
            Some((text, value)) if text == version => value.clone(),
            _ => {
                let value = HeaderValue::try_from(version).ok();
                self.version = Some((version.to_owned(), value.clone()));
                value
            }
        }
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for Unix seconds `unix` (clamped to the years 1970–9999).
fn http_date(unix: i64) -> String {
    let seconds = u64::try_from(unix.clamp(0, 253_402_300_799)).unwrap_or_default();
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_again_only_when_its_input_changes() {
        let mut cache = HeaderCache::default();
        assert_eq!(cache.date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.date(784_111_778), "Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(cache.date(i64::MIN), "Thu, 01 Jan 1970 00:00:00 GMT", "clamped");
        assert_eq!(cache.api_version("v21.0").unwrap(), "v21.0");
        assert_eq!(cache.api_version("v24.0").unwrap(), "v24.0");
        assert!(cache.api_version("bad\nversion").is_none());
    }
}
