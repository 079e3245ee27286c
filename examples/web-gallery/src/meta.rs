//! Meta's callbacks: deauthorize and data deletion (each verified: signature and age), and
//! the status page of a deletion. A deletion purges the account's mirror before it answers,
//! and the same request again gets the same answer.

use crate::{App, Deletion, SIGNED_REQUEST_MAX_AGE, page, unavailable};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use igdisplay::auth::{DataDeletionResponse, SignedRequest, verify_fresh_signed_request};
use igdisplay::store::MetaCallback;
use std::collections::HashMap;
use std::sync::Arc;

/// A callback from Meta whose `signed_request` was verified (its signature, and that it was
/// issued within the last hour: an old one replayed is refused): the handlers take it as an
/// extractor, so none of them reads an unverified request.
pub(crate) struct MetaRequest {
    /// The verified request.
    request: SignedRequest,
    /// The signature part of `signed_request`, which names this request among retries.
    signature: String,
}

impl axum::extract::FromRequest<Arc<App>> for MetaRequest {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, app: &Arc<App>) -> Result<Self, Response> {
        let Form(form) = Form::<HashMap<String, String>>::from_request(request, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let value = form.get("signed_request").map(String::as_str).unwrap_or_default();
        let credentials =
            app.instagram.auth().config().credentials().map_err(|_| {
                (StatusCode::SERVICE_UNAVAILABLE, "this site has no app secret").into_response()
            })?;
        let now = app.instagram.clock().now();
        let request =
            verify_fresh_signed_request(&credentials.app_secret, value, now, SIGNED_REQUEST_MAX_AGE)
                .map_err(|_| (StatusCode::BAD_REQUEST, "invalid or stale signed_request").into_response())?;
        let signature = value.split('.').next().unwrap_or_default().to_owned();
        Ok(Self { request, signature })
    }
}

/// Forgets the user's token (in a fleet's store: marks the account deauthorized, or deletes
/// it, its event written to the store's outbox), logs them out of every session and, in owner
/// mode, purges their mirror (files, pages, index). Says what was deleted.
async fn forget(app: &App, request: &SignedRequest, callback: MetaCallback) -> Result<String, Response> {
    let failed = || (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    match &app.fleet {
        Some(fleet) => {
            fleet
                .store
                .apply_callback(request, callback)
                .await
                .map_err(|_| failed())?;
        }
        None => {
            let _ = app.instagram.tokens().logout(&request.user_id).await;
        }
    }
    app.sessions
        .forget_user(&request.user_id)
        .await
        .map_err(|_| failed())?;
    let mut deleted = "their access token".to_owned();
    if let Some(showcase) = &app.showcase {
        let purged = showcase.purge(&request.user_id).await.map_err(|error| {
            tracing::warn!(%error, "the mirror of a deleted account could not be purged; Meta will retry");
            failed()
        })?;
        if purged.had_feed {
            deleted = format!(
                "their access token, the {} mirrored files of their posts and their feed's {} pages",
                purged.files, purged.pages
            );
        }
    }
    Ok(deleted)
}

/// `POST /deauthorize`: the user removed the app; 200 once they are forgotten.
pub(crate) async fn deauthorize(
    State(app): State<Arc<App>>,
    MetaRequest { request, .. }: MetaRequest,
) -> Response {
    match forget(&app, &request, MetaCallback::Deauthorize).await {
        Ok(_) => (StatusCode::OK, "").into_response(),
        Err(response) => response,
    }
}

/// `POST /data-deletion`: the user asked for their data to go; the answer (a status URL and a
/// confirmation code) once it is gone and the deletion recorded.
pub(crate) async fn data_deletion(
    State(app): State<Arc<App>>,
    MetaRequest { request, signature }: MetaRequest,
) -> Response {
    // The same request again (a retry, or a replay within the hour) gets the same answer.
    let json = |answer: String| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            answer,
        )
            .into_response()
    };
    match app.records.answered(&signature).await {
        Ok(Some(known)) => return json(known.answer),
        Ok(None) => {}
        Err(_) => return unavailable(),
    }
    let Ok(response) = DataDeletionResponse::new(&format!("{}/deletion", app.public)) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness").into_response();
    };
    let callback = MetaCallback::DataDeletion {
        confirmation_code: response.confirmation_code.clone(),
    };
    let deleted = match forget(&app, &request, callback).await {
        Ok(deleted) => deleted,
        Err(failed) => return failed,
    };
    let deletion = Deletion {
        code: response.confirmation_code.clone(),
        user: request.user_id.to_string(),
        at: igdisplay::model::Timestamp::from_system_time(app.instagram.clock().now()).to_rfc3339(),
        deleted,
        answer: response.to_json(),
        signature,
    };
    // Kept before the answer: the status page answers from now on, after a restart too.
    if app.records.add_deletion(&deletion).await.is_err() {
        return unavailable();
    }
    json(deletion.answer)
}

#[derive(Template)]
#[template(path = "deletion.html")]
struct DeletionStatus {
    code: String,
    deletion: Option<Deletion>,
}

/// `GET /deletion?code=…`: what a deletion removed, and when; 404 for an unknown code.
pub(crate) async fn deletion_status(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let code = query.get("code").cloned().unwrap_or_default();
    let deletion = match app.records.deletion(&code).await {
        Ok(deletion) => deletion,
        Err(_) => return unavailable(),
    };
    let status = if deletion.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    page(&DeletionStatus { code, deletion }, status)
}
