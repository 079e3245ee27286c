//! Insights of a media item or an account (reference C.4), as the `insights` edge returns
//! them.

use crate::{Timestamp, UnknownFields};
use serde::{Deserialize, Serialize};

/// One metric of an `insights` answer: `{"name", "period", "values": [{"value"}], "title",
/// "description", "id"}`, or with `metric_type=total_value` a `total_value` instead of
/// `values`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Insight {
    /// The metric (`views`, `reach`, ...).
    pub name: String,
    /// `lifetime`, `day`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The values, oldest first (a media item's lifetime metric has one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<InsightValue>,
    /// An account metric asked with `metric_type=total_value`: its total and breakdowns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_value: Option<TotalValue>,
    /// Meta's title of the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Meta's description of the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Meta's id of this metric of this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every field this version does not model, as sent.
    #[serde(flatten, skip_serializing_if = "UnknownFields::is_empty")]
    pub extra: UnknownFields,
}

impl Insight {
    /// The metric's single number: the total value, else the last value when it is a number.
    /// `None` when the answer holds none (not zero: a metric without data has no value).
    pub fn number(&self) -> Option<i64> {
        if let Some(total) = self.total_value.as_ref().and_then(|t| t.value) {
            return Some(total);
        }
        self.values.last().and_then(|v| v.value.as_i64())
    }
}

/// One value of a metric: a number, or for breakdown metrics an object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InsightValue {
    /// The value as sent.
    #[serde(default)]
    pub value: serde_json::Value,
    /// The end of the period it counts, for periodic metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
}

/// An account metric's total, with its breakdowns as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TotalValue {
    /// The total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// The breakdowns (`media_product_type`, `follow_type`, ...), as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakdowns: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListResponse;

    #[test]
    fn media_and_account_insights_decode_and_say_their_number() {
        let media = br#"{"data":[{"name":"views","period":"lifetime","values":[{"value":412}],
            "title":"Views","description":"...","id":"17900/insights/views/lifetime"}]}"#;
        let list: ListResponse<Insight> = crate::decode(media, &[]).unwrap();
        assert_eq!(list.data[0].number(), Some(412));
        let account = br#"{"data":[{"name":"reach","period":"day","total_value":{"value":1200,
            "breakdowns":[{"dimension_keys":["media_product_type"],"results":[]}]}}]}"#;
        let list: ListResponse<Insight> = crate::decode(account, &[]).unwrap();
        assert_eq!(list.data[0].number(), Some(1200));
        assert_eq!(list.data[0].total_value.as_ref().unwrap().breakdowns.len(), 1);
        let none: Insight = crate::decode(br#"{"name":"reach","values":[]}"#, &[]).unwrap();
        assert_eq!(none.number(), None, "no data is not zero");
    }
}
