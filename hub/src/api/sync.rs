//! The hub's `POST /api/v1/sync`, mounted through the route table with
//! [`crate::api::Access::Device`] (the auth middleware has already resolved the till).
//!
//! The handler is sync-engine's one sync handler (`sync_engine::http_server::serve_round`);
//! this file is the hub's [`SyncEndpoint`]: the sender must be the till of the device token
//! (403 otherwise), errors are [`ApiError`]s, and every outcome is counted in the metrics by
//! reason, with the round's duration.
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
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::time::Duration;
use sync_engine::http_server::{serve_round, ContentTypeRule, Refusal, SyncEndpoint};
use sync_engine::{Envelope, PeerId, SyncError, CONTENT_TYPE, MAX_ENVELOPE_BYTES};

/// `POST /api/v1/sync`: one sync round (see the module doc).
pub async fn sync(
    State(app): State<AppState>,
    Extension(device): Extension<CurrentDevice>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_round(&HubEndpoint(&app), device, &headers, body).await
}

/// A refused round: the metrics reason, the answer, and the till for the log line.
#[derive(Debug)]
pub struct Failure {
    reason: &'static str,
    error: ApiError,
    peer: PeerId,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let detail = format!("peer {} reason {}", self.peer, self.reason);
        self.error.with_detail(detail).into_response()
    }
}

struct HubEndpoint<'a>(&'a AppState);

impl HubEndpoint<'_> {
    fn fail(device: &CurrentDevice, reason: &'static str, error: ApiError) -> Failure {
        Failure {
            reason,
            error,
            peer: device.till.peer.clone(),
        }
    }
}

impl SyncEndpoint for HubEndpoint<'_> {
    type Caller = CurrentDevice;
    type Error = Failure;

    fn content_type_rule(&self) -> ContentTypeRule {
        ContentTypeRule::Lenient
    }

    fn expected_sender(&self, device: &CurrentDevice) -> Option<PeerId> {
        Some(device.till.peer.clone())
    }

    fn refuse(&self, device: &CurrentDevice, refusal: Refusal<'_>) -> Failure {
        let (reason, error) = match refusal {
            Refusal::UnsupportedMediaType => (
                "unsupported_media_type",
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("send the envelope as {CONTENT_TYPE}"),
                ),
            ),
            Refusal::TooLarge(_) => ("too_large", ApiError::payload_too_large(MAX_ENVELOPE_BYTES)),
            Refusal::UnreadableBody(_) => (
                "bad_request",
                ApiError::bad_request("unreadable request body"),
            ),
            Refusal::InvalidEnvelope(e) => (
                "invalid_envelope",
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_envelope",
                    format!("invalid sync envelope: {e}"),
                ),
            ),
            Refusal::SenderMismatch { .. } => (
                "sender_mismatch",
                ApiError::forbidden("the envelope's sender is not the authenticated till"),
            ),
        };
        Self::fail(device, reason, error)
    }

    fn encode_failed(&self, device: &CurrentDevice, detail: String) -> Failure {
        Self::fail(
            device,
            "internal",
            ApiError::internal(format!("reply encoding: {detail}")),
        )
    }

    async fn round(&self, device: &CurrentDevice, request: Envelope) -> Result<Envelope, Failure> {
        self.0
            .sync
            .round(&device.till, request)
            .await
            .map_err(|e| Self::fail(device, e.reason(), round_error(e)))
    }

    fn observe(&self, outcome: Result<(), &Failure>, elapsed: Duration) {
        let metrics = &self.0.metrics;
        metrics.sync_duration.observe(elapsed.as_secs_f64());
        match outcome {
            Ok(()) => metrics.sync_requests.with_label_values(&["ok"]).inc(),
            Err(failure) => metrics.sync_error(failure.reason),
        }
    }
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
