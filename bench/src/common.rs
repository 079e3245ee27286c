//! What the comparisons share: a read-only client on igdisplay's own backends, the `/me` body
//! every server answers, the request count the mock reports, and the hand-written page loop
//! the facade's stream is measured against.

use crate::procs::Server;
use igdisplay::Instagram;
use igdisplay::auth::Endpoints;
use igdisplay::model::{AccessToken, Platform};

/// The fields of the `/me` body used for throughput (about 150 bytes).
pub(crate) const ME_FIELDS: &str = "id,user_id,username,name,account_type,media_count,followers_count";

pub(crate) async fn me_body(mock: &Server, token: &str) -> Result<String, String> {
    let url = format!("{}/me?fields={ME_FIELDS}&access_token={token}", mock.base);
    reqwest::get(url)
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())
}

pub(crate) fn instagram_for(
    base: &str,
    backend: igdisplay::http::SharedBackend,
) -> Result<Instagram, String> {
    // Read-only: queries with a given token need no app credentials. igdisplay's own
    // backends time out by themselves: no timeout wrapper around them.
    Instagram::read_only(Platform::InstagramLogin)
        .endpoints(Endpoints::single_origin(base))
        .backend_with_own_timeout(backend)
        .build()
        .map_err(|e| e.to_string())
}

/// The query the facade sends for a page (token left out), so the hand-written loop sends the
/// same: rendered by the request value itself, with no encoding written here.
pub(crate) fn stream_query(graph: &igdisplay::graph::GraphClient) -> Result<String, String> {
    let request = graph
        .my_media()
        .with_children()
        .limit(100)
        .to_http(&AccessToken::new("-"))
        .map_err(|e| e.to_string())?;
    let query = request.uri().query().unwrap_or_default();
    Ok(query.trim_end_matches("&access_token=-").to_owned())
}

/// The hand-written page loop: GET each page of `/me/media` by its `after` cursor and hand it to
/// `on_page`, until a page has no `next`.
pub(crate) async fn hand_written_pages(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    mut on_page: impl FnMut(&serde_json::Value),
) -> Result<(), String> {
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base}/me/media?{query}&access_token={token}");
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        on_page(&page);
        match (
            page["paging"]["next"].as_str(),
            page["paging"]["cursors"]["after"].as_str(),
        ) {
            (Some(_), Some(cursor)) => after = Some(cursor.to_owned()),
            _ => return Ok(()),
        }
    }
}

pub(crate) async fn requests_seen(server: &Server) -> Result<u64, String> {
    let health: serde_json::Value = reqwest::get(format!("{}/_mock/health", server.base))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    health["requests"]
        .as_u64()
        .ok_or_else(|| "no request count".to_owned())
}
