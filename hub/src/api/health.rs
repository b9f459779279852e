//! `GET /v1/health` (database reachability) and `GET /metrics` (Prometheus text).

use crate::api::error::ApiError;
use crate::api::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::{Duration, Instant};

/// A health probe must answer quickly even when the database hangs.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /v1/health` → 200 `{"status": "healthy", ...}` or 503 `{"status": "unhealthy", ...}`.
pub async fn health(State(app): State<AppState>) -> Response {
    let started = Instant::now();
    let ping = tokio::time::timeout(PING_TIMEOUT, app.db.ping()).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status, db_status, error) = match ping {
        Ok(Ok(())) => (StatusCode::OK, "up", None),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database ping failed");
            (StatusCode::SERVICE_UNAVAILABLE, "down", Some("ping failed"))
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "down",
            Some("ping timed out"),
        ),
    };
    let backend = match app.db.backend_kind() {
        crate::db::BackendKind::Sqlite => "sqlite",
        crate::db::BackendKind::Postgres => "postgres",
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "healthy" } else { "unhealthy" },
        "components": {
            "database": {
                "status": db_status,
                "backend": backend,
                "latency_ms": latency_ms,
                "error": error,
            }
        },
        "version": env!("CARGO_PKG_VERSION"),
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> Result<Response, ApiError> {
    let text = app
        .metrics
        .render()
        .map_err(|e| ApiError::internal(format!("metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
