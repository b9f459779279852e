//! The axum handler of `POST /api/v1/sync`, mounted through the route table with
//! [`crate::api::Access::Device`] (the auth middleware has already resolved the till).
//!
//! It follows `sync_engine::http_server::sync_handler` (same statuses and error body shape)
//! and adds what that generic handler cannot know: a sender that is not the authenticated
//! till is 403 (the generic handler says 422), and every outcome is counted in the metrics
//! by reason.
//!
//! | condition | status |
//! |---|---|
//! | content type neither ours, `application/octet-stream` nor absent | 415 |
//! | body over `MAX_ENVELOPE_BYTES` | 413 |
//! | undecodable envelope, malformed message or corrupt change | 400 |
//! | envelope sender ≠ authenticated till, forbidden document or author | 403 |
//! | session document that cannot be projected (or projected rows refused) | 422 |
//! | a new entry stamped too far ahead of the hub's clock | 422 `clock_ahead` |
//! | database unavailable / anything else | 503 / 500 |

use crate::api::auth::CurrentDevice;
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::sync::SyncRoundError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::time::Instant;
use sync_engine::{Envelope, SyncError, CONTENT_TYPE, MAX_ENVELOPE_BYTES};

/// `POST /api/v1/sync`: one sync round (see the module doc).
pub async fn sync(
    State(app): State<AppState>,
    Extension(device): Extension<CurrentDevice>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = handle(&app, &device, &headers, body).await;
    app.metrics
        .sync_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(bytes) => {
            app.metrics.sync_requests.with_label_values(&["ok"]).inc();
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response()
        }
        Err((reason, error)) => {
            app.metrics.sync_error(reason);
            let error = error.with_detail(format!("peer {} reason {reason}", device.till.peer));
            error.into_response()
        }
    }
}

type Failure = (&'static str, ApiError);

async fn handle(
    app: &AppState,
    device: &CurrentDevice,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<u8>, Failure> {
    if !acceptable_content_type(headers) {
        return Err((
            "unsupported_media_type",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the envelope as {CONTENT_TYPE}"),
            ),
        ));
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(("too_large", ApiError::payload_too_large(MAX_ENVELOPE_BYTES)));
        }
        Err(_) => {
            return Err((
                "bad_request",
                ApiError::bad_request("unreadable request body"),
            ))
        }
    };
    let request = Envelope::decode(&body).map_err(|e| {
        (
            "invalid_envelope",
            // The decoder's message describes the client's own bytes: safe to return.
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_envelope",
                format!("invalid sync envelope: {e}"),
            ),
        )
    })?;
    if request.sender != device.till.peer {
        return Err((
            "sender_mismatch",
            ApiError::forbidden("the envelope's sender is not the authenticated till"),
        ));
    }
    let reply = app
        .sync
        .round(&device.till, request)
        .await
        .map_err(|e| (e.reason(), round_error(e)))?;
    reply.encode().map_err(|e| {
        (
            "internal",
            ApiError::internal(format!("reply encoding: {e}")),
        )
    })
}

fn round_error(error: SyncRoundError) -> ApiError {
    match error {
        SyncRoundError::Sync(SyncError::Forbidden { doc, reason }) => {
            ApiError::forbidden(format!("access to document {doc} is not allowed"))
                .with_detail(reason.to_string())
        }
        SyncRoundError::Sync(SyncError::UnexpectedSender { .. }) => {
            ApiError::forbidden("the envelope's sender is not the authenticated till")
        }
        SyncRoundError::Sync(e @ SyncError::Apply { .. }) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            "the sync request was refused",
        )
        .with_detail(e.to_string()),
        // Format, limits and message checks: the text describes the client's own input.
        SyncRoundError::Sync(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_envelope", e.to_string())
        }
        // The text describes the till's own entry and the hub's clock: safe to return, and
        // the till's operator needs it to fix the clock.
        SyncRoundError::ClockAhead(far) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "clock_ahead",
            far.to_string(),
        ),
        SyncRoundError::Projection(detail) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            "a session document was refused: it does not read as a valid session of this till",
        )
        .with_detail(detail),
        // Rows derived from the till's documents that the database layer refused (a
        // receipt whose payments do not add up, a document filed under another owner).
        SyncRoundError::Db(e) if e.is_client_error() => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            "a document was refused: its projection is invalid",
        )
        .with_detail(e.to_string()),
        SyncRoundError::Db(e) => ApiError::from(e),
        other => ApiError::internal(other.to_string()),
    }
}

fn acceptable_content_type(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        None => true,
        Some(Ok(value)) => {
            let media = value.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case(CONTENT_TYPE)
                || media.eq_ignore_ascii_case("application/octet-stream")
        }
        Some(Err(_)) => false,
    }
}
