//! The mock at fleet size (issue 16): thousands of accounts seeded at once, their tokens
//! minted in one control call, and refreshes counted per account.

use super::*;

#[tokio::test]
async fn a_fleet_is_minted_in_one_call_and_its_refreshes_are_counted_per_account() {
    let mock = MockServer::builder()
        .seed(Seed::demo().with_fleet("fleet-", 2_000, 1))
        .calls_per_hour(None)
        .start()
        .unwrap();
    let bulk = serde_json::json!({"prefix": "fleet-", "kind": "long_lived"});
    let (_, minted) = post(&format!("{}/_mock/tokens/bulk", mock.base_url()), Some(bulk)).await;
    let tokens = minted["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2_000);
    mock.advance(Duration::from_secs(25 * 3600));
    let refresh = |token: &str| {
        format!(
            "{}/refresh_access_token?grant_type=ig_refresh_token&access_token={token}",
            mock.base_url()
        )
    };
    // Two accounts refreshed once, and one twice with the same (still valid) old token: the
    // double refresh a fleet test must catch.
    for token in [&tokens[0], &tokens[1], &tokens[2], &tokens[2]] {
        assert_eq!(
            get(&refresh(token["access_token"].as_str().unwrap())).await.0,
            200
        );
    }
    let (_, _, counts) = get(&format!("{}/_mock/refreshes", mock.base_url())).await;
    let id = |n: usize| tokens[n]["user_id"].as_str().unwrap().to_owned();
    assert_eq!(
        counts,
        serde_json::json!({id(0): 1, id(1): 1, id(2): 2}),
        "one entry per refreshed account, none for the others"
    );
    assert_eq!(mock.refresh_counts().get(&id(2)), Some(&2));
}
