//! Insights through the client (reference C.4), over both backends: removed metrics replaced
//! and inapplicable ones dropped before sending, a metric refused by name dropped and asked
//! again, "Not enough viewers" said so, an account's totals with breakdowns.

use crate::cases;
use futures_util::TryStreamExt;
use igdisplay::auth::scopes::Scope;
use igdisplay::graph::{Availability, DropReason, MediaField};
use igdisplay::model::{MediaProductType, Platform};

#[tokio::test]
async fn insights_survive_removed_inapplicable_and_unknown_metrics() {
    for case in cases()
        .into_iter()
        .filter(|c| c.platform == Platform::InstagramLogin)
    {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = crate::login_granting(
            &mock,
            &instagram,
            "jayposiris",
            &[Scope::InstagramBusinessManageInsights],
        )
        .await;
        let graph = instagram.graph(&token.user_id);
        let media: Vec<_> = graph
            .my_media()
            .fields(&[MediaField::LikeCount, MediaField::MediaProductType])
            .into_stream()
            .try_collect()
            .await
            .unwrap();
        let feed = media
            .iter()
            .find(|m| m.media_product_type == Some(MediaProductType::Feed) && m.like_count > Some(0))
            .unwrap();

        let report = graph
            .media_insights(
                &feed.id,
                &["impressions", "reach", "navigation", "brand_new_metric"],
            )
            .await
            .unwrap();
        assert_eq!(report.availability, Availability::Values, "{case:?}");
        assert!(
            report.get("views").and_then(|i| i.number()).is_some(),
            "impressions became views"
        );
        assert!(report.get("reach").is_some());
        assert_eq!(report.replaced[0].from, "impressions");
        let dropped: Vec<_> = report
            .dropped
            .iter()
            .map(|d| (d.name.as_str(), &d.reason))
            .collect();
        assert!(
            matches!(
                dropped[..],
                [
                    ("navigation", DropReason::Inapplicable { .. }),
                    ("brand_new_metric", DropReason::Refused { .. })
                ]
            ),
            "{case:?}: {dropped:?}"
        );

        let unseen = media.iter().find(|m| m.like_count == Some(0)).unwrap();
        let report = graph.media_insights(&unseen.id, &["views"]).await.unwrap();
        assert_eq!(report.availability, Availability::NotEnoughViewers);
        assert!(report.insights.is_empty(), "not zero: nothing");

        let account = graph
            .user_insights(&["impressions", "reach"], "day", Some("media_product_type"))
            .await
            .unwrap();
        assert!(
            account
                .get("views")
                .and_then(|i| i.total_value.as_ref())
                .is_some_and(|t| !t.breakdowns.is_empty())
        );
        assert_eq!(account.replaced.len(), 1);
    }
}
