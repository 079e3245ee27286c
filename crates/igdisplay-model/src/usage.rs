//! The rate-limit usage headers: `X-App-Usage` and `X-Business-Use-Case-Usage`.
//!
//! Both carry JSON in a header value. Parsing is lenient on purpose: a missing, empty or
//! garbled header, an unknown key, a float, a negative number or a value above 100 never fails
//! a call; bad values are dropped and percentages are clamped to 0..=100.

use serde_json::Value;
use std::time::Duration;

/// Name of the Platform rate-limit header (Basic Display; may appear on Instagram Login too).
pub const APP_USAGE_HEADER: &str = "x-app-usage";
/// Name of the Business Use Case rate-limit header (Instagram Login).
pub const BUSINESS_USE_CASE_USAGE_HEADER: &str = "x-business-use-case-usage";

/// `X-App-Usage`: percentages of the app's hourly budget used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppUsage {
    /// Calls, percent (`call_count`, or the older `call_volume`).
    pub call_count: Option<u8>,
    /// CPU time, percent (`total_cputime`, or the older `cpu_time`).
    pub total_cputime: Option<u8>,
    /// Total time, percent (`total_time`).
    pub total_time: Option<u8>,
}

impl AppUsage {
    /// Parses the header value; `None` when it holds no usable figure.
    pub fn parse(header: &[u8]) -> Option<Self> {
        let Value::Object(map) = serde_json::from_slice(header).ok()? else {
            return None;
        };
        let pick = |keys: &[&str]| keys.iter().find_map(|k| map.get(*k).and_then(percent));
        let usage = AppUsage {
            call_count: pick(&["call_count", "call_volume"]),
            total_cputime: pick(&["total_cputime", "cpu_time"]),
            total_time: pick(&["total_time"]),
        };
        (usage != AppUsage::default()).then_some(usage)
    }

    /// The highest of the three percentages.
    pub fn max_percent(&self) -> Option<u8> {
        [self.call_count, self.total_cputime, self.total_time]
            .into_iter()
            .flatten()
            .max()
    }
}

/// One entry of `X-Business-Use-Case-Usage`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusinessUseCase {
    /// The business or account id the entry is keyed by.
    pub account_id: String,
    /// The use case, e.g. `instagram`.
    pub kind: Option<String>,
    /// Calls, percent.
    pub call_count: Option<u8>,
    /// CPU time, percent.
    pub total_cputime: Option<u8>,
    /// Total time, percent.
    pub total_time: Option<u8>,
    /// Minutes until calls are accepted again, when throttled.
    pub estimated_time_to_regain_access: Option<u32>,
}

impl BusinessUseCase {
    /// The highest of the three percentages.
    pub fn max_percent(&self) -> Option<u8> {
        [self.call_count, self.total_cputime, self.total_time]
            .into_iter()
            .flatten()
            .max()
    }
}

/// Parses `X-Business-Use-Case-Usage`: `{"<id>": [{"type":..., "call_count":..., ...}], ...}`.
/// Entries that are not objects are skipped; the result is empty when nothing was usable.
pub fn parse_business_use_case_usage(header: &[u8]) -> Vec<BusinessUseCase> {
    let Ok(Value::Object(accounts)) = serde_json::from_slice::<Value>(header) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for (account_id, list) in accounts {
        let Value::Array(list) = list else { continue };
        for entry in list {
            let Value::Object(entry) = entry else { continue };
            let get = |key: &str| entry.get(key).and_then(percent);
            entries.push(BusinessUseCase {
                account_id: account_id.clone(),
                kind: entry.get("type").and_then(Value::as_str).map(str::to_owned),
                call_count: get("call_count"),
                total_cputime: get("total_cputime"),
                total_time: get("total_time"),
                estimated_time_to_regain_access: entry
                    .get("estimated_time_to_regain_access")
                    .and_then(minutes),
            });
        }
    }
    entries
}

/// Both usage headers of one response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// `X-App-Usage`, when present and usable.
    pub app: Option<AppUsage>,
    /// `X-Business-Use-Case-Usage` entries, possibly none.
    pub business: Vec<BusinessUseCase>,
}

impl Usage {
    /// Parses the raw header values (either may be absent).
    pub fn from_headers(app_usage: Option<&[u8]>, business_use_case_usage: Option<&[u8]>) -> Self {
        Usage {
            app: app_usage.and_then(AppUsage::parse),
            business: business_use_case_usage
                .map(parse_business_use_case_usage)
                .unwrap_or_default(),
        }
    }

    /// Whether neither header said anything.
    pub fn is_empty(&self) -> bool {
        self.app.is_none() && self.business.is_empty()
    }

    /// The highest percentage of any budget, 0..=100.
    pub fn max_percent(&self) -> Option<u8> {
        let business = self.business.iter().filter_map(BusinessUseCase::max_percent);
        self.app
            .and_then(|a| a.max_percent())
            .into_iter()
            .chain(business)
            .max()
    }

    /// The longest `estimated_time_to_regain_access` Instagram announced.
    pub fn regain_access_after(&self) -> Option<Duration> {
        self.business
            .iter()
            .filter_map(|b| b.estimated_time_to_regain_access)
            .max()
            .map(|minutes| Duration::from_secs(u64::from(minutes) * 60))
    }
}

/// A percentage from a number or numeric string: negatives and NaN dropped, above 100 clamped.
fn percent(value: &Value) -> Option<u8> {
    let number = number(value)?;
    (number >= 0.0).then(|| number.round().min(100.0) as u8)
}

/// Minutes from a number or numeric string: negatives dropped, capped at one week.
fn minutes(value: &Value) -> Option<u32> {
    let number = number(value)?;
    (number >= 0.0).then(|| number.round().min(7.0 * 24.0 * 60.0) as u32)
}

fn number(value: &Value) -> Option<f64> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    number.is_finite().then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_usage_parses_documented_and_older_keys() {
        let usage = AppUsage::parse(br#"{"call_count":28,"total_cputime":25,"total_time":25}"#).unwrap();
        assert_eq!(usage.call_count, Some(28));
        assert_eq!(usage.max_percent(), Some(28));
        let older = AppUsage::parse(br#"{"call_volume":3.6,"cpu_time":"7"}"#).unwrap();
        assert_eq!(
            (older.call_count, older.total_cputime, older.total_time),
            (Some(4), Some(7), None)
        );
    }

    #[test]
    fn garbage_never_fails_and_values_are_clamped() {
        for junk in [
            &b""[..],
            b"   ",
            b"null",
            b"[1]",
            b"{",
            b"\xff\xfe",
            b"{\"other\":1}",
            b"{\"call_count\":-5}",
        ] {
            assert_eq!(AppUsage::parse(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
        let big = AppUsage::parse(br#"{"call_count":250,"total_time":1e308,"total_cputime":"NaN"}"#).unwrap();
        assert_eq!(
            (big.call_count, big.total_time, big.total_cputime),
            (Some(100), Some(100), None)
        );
    }

    #[test]
    fn business_use_case_usage_flattens_every_account() {
        let header = br#"{"17841400000000001":[{"type":"instagram","call_count":95,"total_cputime":10,
            "total_time":12,"estimated_time_to_regain_access":3}],"2":[{"type":"x","call_count":1},"junk"],
            "3":"not a list"}"#;
        let usage = Usage::from_headers(Some(br#"{"call_count":50}"#), Some(header));
        assert_eq!(usage.business.len(), 2);
        assert_eq!(usage.max_percent(), Some(95));
        assert_eq!(usage.regain_access_after(), Some(Duration::from_secs(180)));
        assert!(!usage.is_empty());
        assert!(Usage::from_headers(None, Some(b"garbage")).is_empty());
        let huge = parse_business_use_case_usage(br#"{"1":[{"estimated_time_to_regain_access":1e12}]}"#);
        assert_eq!(huge[0].estimated_time_to_regain_access, Some(10_080));
    }
}
