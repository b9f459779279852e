//! The generic sync endpoint: `POST {SYNC_PATH}` answered by an application-supplied
//! [`SyncService`], through the one handler [`super::serve_round`].
//!
//! Authentication is the application's job: its middleware verifies the caller and inserts an
//! [`AuthenticatedPeer`] request extension; without it the handler answers 401 (fail closed).
//! The application implements [`SyncService`] (typically: `Server::plan`, load, `respond`, persist
//! in one transaction) and mounts [`sync_router`] or [`sync_handler`].
//!
//! | condition | status |
//! |---|---|
//! | no [`AuthenticatedPeer`] extension | 401 |
//! | content type neither ours, `application/octet-stream` nor absent | 415 |
//! | body over [`MAX_ENVELOPE_BYTES`] (when mounted with [`sync_router`]) | 413 |
//! | body that is not a valid envelope | 400, with the decoder's message |
//! | [`SyncServiceError::Forbidden`] | 403 |
//! | [`SyncServiceError::Rejected`] | 422, generic body |
//! | [`SyncServiceError::Unavailable`] / [`SyncServiceError::Internal`] | 503 / 500, generic body |
//!
//! Every error body is JSON `{"error", "message", "correlation_id"}`; the correlation id is also
//! in the `x-correlation-id` header and in the log line that holds the details.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use super::{
    error_response, serve_round, ContentTypeRule, Refusal, SyncEndpoint, CORRELATION_HEADER,
};
use crate::envelope::{Envelope, CONTENT_TYPE, MAX_ENVELOPE_BYTES};
use crate::error::SyncError;
use crate::id::{DocId, PeerId};
use crate::SYNC_PATH;

/// The peer the application's authentication established for this request.
///
/// Insert it as a request extension in the authentication middleware; the handler extracts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedPeer {
    /// Who is calling.
    pub peer: PeerId,
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedPeer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthenticatedPeer>()
            .cloned()
            .ok_or_else(|| {
                error_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "authentication required",
                )
            })
    }
}

/// Why a [`SyncService`] did not answer a round.
#[derive(Debug, thiserror::Error)]
pub enum SyncServiceError {
    /// The share policy refused a document (403).
    #[error("forbidden: doc {doc}")]
    Forbidden {
        /// Which document.
        doc: DocId,
    },
    /// The request was well-formed but refused (422); the text goes to the log only.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A dependency (database) is unavailable; retry later (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else (500); the text goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<SyncError> for SyncServiceError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Forbidden { doc, .. } => Self::Forbidden { doc },
            SyncError::Apply { .. } => Self::Internal(error.to_string()),
            other => Self::Rejected(other.to_string()),
        }
    }
}

/// The application's answer to one sync round.
pub trait SyncService: Send + Sync + 'static {
    /// Processes `request` from the authenticated `peer` and returns the reply envelope.
    fn sync(
        &self,
        peer: AuthenticatedPeer,
        request: Envelope,
    ) -> impl Future<Output = Result<Envelope, SyncServiceError>> + Send;
}

/// A router with `POST {SYNC_PATH}` bound to `service` and the body limit set to
/// [`MAX_ENVELOPE_BYTES`]; merge it into the application's router (any state type).
pub fn sync_router<S: SyncService, T: Clone + Send + Sync + 'static>(service: Arc<S>) -> Router<T> {
    Router::new()
        .route(SYNC_PATH, post(sync_handler::<S>))
        .layer(DefaultBodyLimit::max(MAX_ENVELOPE_BYTES))
        .with_state(service)
}

/// The handler of `POST …/sync`. Mount it with `DefaultBodyLimit::max(MAX_ENVELOPE_BYTES)`
/// (axum's default limit is 2 MB) and the service as state, or use [`sync_router`].
pub async fn sync_handler<S: SyncService>(
    State(service): State<Arc<S>>,
    peer: AuthenticatedPeer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_round(&ServiceEndpoint(service), peer, &headers, body).await
}

/// [`SyncService`] as a [`SyncEndpoint`]: the lenient content-type rule, no sender check here
/// (the service refuses a wrong sender, 422), errors as in the module doc's table.
struct ServiceEndpoint<S>(Arc<S>);

impl<S: SyncService> SyncEndpoint for ServiceEndpoint<S> {
    type Caller = AuthenticatedPeer;
    type Error = Response;

    fn content_type_rule(&self) -> ContentTypeRule {
        ContentTypeRule::Lenient
    }

    fn expected_sender(&self, _caller: &AuthenticatedPeer) -> Option<PeerId> {
        None
    }

    fn refuse(&self, _caller: &AuthenticatedPeer, refusal: Refusal<'_>) -> Response {
        match refusal {
            Refusal::UnsupportedMediaType => error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &format!("send the envelope as {CONTENT_TYPE}"),
            ),
            Refusal::TooLarge(_) => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("a sync envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
            ),
            Refusal::UnreadableBody(_) => error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "unreadable request body",
            ),
            Refusal::InvalidEnvelope(error) => error_response(
                StatusCode::BAD_REQUEST,
                "invalid_envelope",
                &format!("invalid sync envelope: {error}"),
            ),
            Refusal::SenderMismatch { .. } => error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rejected",
                "the sync request was refused",
            ),
        }
    }

    fn encode_failed(&self, caller: &AuthenticatedPeer, detail: String) -> Response {
        internal_error(caller, &detail)
    }

    async fn round(
        &self,
        peer: &AuthenticatedPeer,
        request: Envelope,
    ) -> Result<Envelope, Response> {
        match self.0.sync(peer.clone(), request).await {
            Ok(reply) => Ok(reply),
            Err(SyncServiceError::Forbidden { doc }) => Err(error_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!("access to document {doc} is not allowed"),
            )),
            Err(SyncServiceError::Rejected(detail)) => {
                let response = error_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "rejected",
                    "the sync request was refused",
                );
                log_with_id(&response, peer, &detail);
                Err(response)
            }
            Err(SyncServiceError::Unavailable(detail)) => {
                let response = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "sync is temporarily unavailable, retry later",
                );
                log_with_id(&response, peer, &detail);
                Err(response)
            }
            Err(SyncServiceError::Internal(detail)) => Err(internal_error(peer, &detail)),
        }
    }
}

fn internal_error(peer: &AuthenticatedPeer, detail: &str) -> Response {
    let response = error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error while syncing",
    );
    log_with_id(&response, peer, detail);
    response
}

fn log_with_id(response: &Response, peer: &AuthenticatedPeer, detail: &str) {
    let correlation_id = response
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::warn!(
        %correlation_id,
        peer = %peer.peer,
        status = response.status().as_u16(),
        detail,
        "sync round failed"
    );
}
