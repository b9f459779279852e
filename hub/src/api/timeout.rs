//! The hub's request timeout: every request, body reading included, must be answered
//! within [`crate::api::ApiSettings::request_timeout`] (30 s by default).
//!
//! Why: a client that sends its body a byte a minute, or a handler stuck behind a database
//! that stopped answering, would otherwise hold a connection (and possibly a document lock
//! and a pool connection) forever. Dropping the handler's future rolls back its database
//! transaction. The answer is 503 with `Retry-After`, which a till treats as "try again
//! later", never as a refusal of its data.

use crate::api::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Default time limit of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the rest of the stack under the time limit `limit`.
pub async fn limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout()
            .with_detail(format!(
                "{method} {path} not answered within {} ms",
                limit.as_millis()
            ))
            .into_response(),
    }
}
