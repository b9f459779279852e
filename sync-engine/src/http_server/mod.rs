//! axum adapter for the answering side of a sync round: ONE handler, [`serve_round`], for every
//! HTTP endpoint that takes an encoded [`Envelope`] and answers with one — the hub's
//! `POST /api/v1/sync`, the till's `POST /v1/pos/sync` (the browser POS), and the generic
//! [`sync_router`] that tests mount.
//!
//! [`serve_round`] does, in this order, and stops at the first failure:
//! 1. content type, by the endpoint's [`ContentTypeRule`] → [`Refusal::UnsupportedMediaType`];
//! 2. body size (the route's body limit; axum reports it as a body rejection) →
//!    [`Refusal::TooLarge`], any other unreadable body → [`Refusal::UnreadableBody`];
//! 3. decode → [`Refusal::InvalidEnvelope`];
//! 4. sender check: the envelope's sender must be the peer the caller authenticated as
//!    ([`SyncEndpoint::expected_sender`]: the hub's device token, the till's cashier login)
//!    → [`Refusal::SenderMismatch`];
//! 5. the round itself ([`SyncEndpoint::round`]), then the reply encoded with our content type.
//!
//! What differs per endpoint is behind [`SyncEndpoint`]: the error type and body (each keeps
//! its own codes and texts; all carry a correlation id), the sender, the round, and the metrics
//! hook [`SyncEndpoint::observe`], called once per request with the outcome and duration.
//!
//! Submodule `service`: [`SyncService`], [`AuthenticatedPeer`] and [`sync_router`], the
//! endpoint over an application-supplied service, with the status table in its doc.

mod service;

pub use service::{sync_handler, sync_router, AuthenticatedPeer, SyncService, SyncServiceError};

use std::future::Future;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::envelope::{Envelope, EnvelopeError, CONTENT_TYPE};
use crate::id::PeerId;

/// Header carrying the correlation id of an error response.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Which request content types an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentTypeRule {
    /// Ours ([`CONTENT_TYPE`], parameters allowed), `application/octet-stream`, or no header:
    /// the hub, whose tills' HTTP client has always sent ours but older tools sent neither.
    Lenient,
    /// Exactly [`CONTENT_TYPE`], nothing else: the till's page endpoint, whose only client is
    /// the POS page, which always sends it.
    Exact,
}

impl ContentTypeRule {
    /// Whether `headers` carry an acceptable content type.
    pub fn accepts(self, headers: &HeaderMap) -> bool {
        let value = headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str);
        match self {
            ContentTypeRule::Exact => matches!(value, Some(Ok(v)) if v == CONTENT_TYPE),
            ContentTypeRule::Lenient => match value {
                None => true,
                Some(Ok(value)) => {
                    let media = value.split(';').next().unwrap_or("").trim();
                    media.eq_ignore_ascii_case(CONTENT_TYPE)
                        || media.eq_ignore_ascii_case("application/octet-stream")
                }
                Some(Err(_)) => false,
            },
        }
    }
}

/// Why [`serve_round`] refused a request before the round.
#[derive(Debug)]
pub enum Refusal<'a> {
    /// The content type breaks the endpoint's [`ContentTypeRule`] (415 by convention).
    UnsupportedMediaType,
    /// The body is over the route's limit (413 by convention).
    TooLarge(&'a BytesRejection),
    /// The body could not be read for another reason.
    UnreadableBody(&'a BytesRejection),
    /// The body is not a valid envelope; the decoder's message describes the client's own
    /// bytes, so it is safe to return.
    InvalidEnvelope(EnvelopeError),
    /// The envelope names another sender than the peer the caller authenticated as.
    SenderMismatch {
        /// The authenticated peer.
        expected: PeerId,
        /// The envelope's sender.
        found: PeerId,
    },
}

/// One HTTP sync endpoint: what [`serve_round`] asks of its caller.
pub trait SyncEndpoint: Send + Sync {
    /// Who is calling, as the endpoint's authentication established it.
    type Caller: Send;
    /// The endpoint's error answer (its own codes and body, with a correlation id).
    type Error: IntoResponse + Send;

    /// The content types this endpoint accepts.
    fn content_type_rule(&self) -> ContentTypeRule;

    /// The peer the envelope's sender must be; `None` leaves the check to [`Self::round`].
    fn expected_sender(&self, caller: &Self::Caller) -> Option<PeerId>;

    /// The error answer for a request refused before the round.
    fn refuse(&self, caller: &Self::Caller, refusal: Refusal<'_>) -> Self::Error;

    /// The error answer when the reply cannot be encoded (`detail` is for the log only).
    fn encode_failed(&self, caller: &Self::Caller, detail: String) -> Self::Error;

    /// Runs the round.
    fn round(
        &self,
        caller: &Self::Caller,
        request: Envelope,
    ) -> impl Future<Output = Result<Envelope, Self::Error>> + Send;

    /// Metrics hook: called once per request with its outcome and how long it took.
    fn observe(&self, _outcome: Result<(), &Self::Error>, _elapsed: Duration) {}
}

/// The sync handler (see the module doc): checks, decodes, runs `endpoint`'s round, answers.
pub async fn serve_round<E: SyncEndpoint>(
    endpoint: &E,
    caller: E::Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = answer(endpoint, caller, headers, body).await;
    endpoint.observe(result.as_ref().map(|_| ()), started.elapsed());
    match result {
        Ok(bytes) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn answer<E: SyncEndpoint>(
    endpoint: &E,
    caller: E::Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<u8>, E::Error> {
    if !endpoint.content_type_rule().accepts(headers) {
        return Err(endpoint.refuse(&caller, Refusal::UnsupportedMediaType));
    }
    let body = match &body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(endpoint.refuse(&caller, Refusal::TooLarge(rejection)));
        }
        Err(rejection) => return Err(endpoint.refuse(&caller, Refusal::UnreadableBody(rejection))),
    };
    let request = match Envelope::decode(body) {
        Ok(request) => request,
        Err(error) => return Err(endpoint.refuse(&caller, Refusal::InvalidEnvelope(error))),
    };
    if let Some(expected) = endpoint.expected_sender(&caller) {
        if request.sender != expected {
            let found = request.sender.clone();
            return Err(endpoint.refuse(&caller, Refusal::SenderMismatch { expected, found }));
        }
    }
    let reply = endpoint.round(&caller, request).await?;
    reply
        .encode()
        .map_err(|e| endpoint.encode_failed(&caller, e.to_string()))
}

/// A JSON error body `{"error", "message", "correlation_id"}` with a fresh correlation id (also
/// set as the [`CORRELATION_HEADER`] header): the shape every sync endpoint answers with.
pub fn error_response(status: StatusCode, error: &str, message: &str) -> Response {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "error": error,
        "message": message,
        "correlation_id": correlation_id,
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(content_type: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    #[test]
    fn the_exact_rule_takes_only_our_type_and_the_lenient_one_also_bytes_or_none() {
        let ours_with_parameter = format!("{CONTENT_TYPE}; charset=binary");
        let cases = [
            (Some(CONTENT_TYPE), true, true),
            (Some(ours_with_parameter.as_str()), false, true),
            (Some("application/octet-stream"), false, true),
            (None, false, true),
            (Some("application/json"), false, false),
        ];
        for (content_type, exact, lenient) in cases {
            let headers = with(content_type);
            assert_eq!(
                ContentTypeRule::Exact.accepts(&headers),
                exact,
                "{content_type:?}"
            );
            assert_eq!(
                ContentTypeRule::Lenient.accepts(&headers),
                lenient,
                "{content_type:?}"
            );
        }
    }
}
