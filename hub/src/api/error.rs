//! HTTP error responses: a generic JSON body `{"error", "message", "correlation_id"}`, the
//! correlation id also in the `x-correlation-id` header and in the log line that carries
//! the details. Internals (SQL, Automerge errors, stack of causes) go to the log only.

use crate::db::DbError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use sync_engine::http_server::CORRELATION_HEADER;

/// An error answer of the hub's API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    /// Logged with the correlation id, never sent.
    detail: Option<String>,
    retry_after_secs: Option<u64>,
    www_authenticate: bool,
}

impl ApiError {
    /// An error with a status, a stable machine-readable code and a safe message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
            retry_after_secs: None,
            www_authenticate: false,
        }
    }

    /// Adds details for the log line (never sent to the client).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        self.detail = Some(match self.detail.take() {
            Some(earlier) => format!("{earlier}; {detail}"),
            None => detail,
        });
        self
    }

    /// 401: no usable credential (missing, malformed, unknown, expired or revoked).
    pub fn unauthorized() -> Self {
        let mut error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required",
        );
        error.www_authenticate = true;
        error
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400 with a message that names what is wrong with the request.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit_bytes} bytes"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed attempts, try again later",
        );
        error.retry_after_secs = Some(retry_after_secs.max(1));
        error
    }

    /// 404.
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 500; `detail` goes to the log.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .with_detail(detail)
    }

    /// 503; `detail` goes to the log.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "temporarily unavailable, retry later",
        )
        .with_detail(detail)
    }

    /// 503 `timeout` with `Retry-After`: the request was not answered in time (see
    /// [`crate::api::timeout`]).
    pub fn timeout() -> Self {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long, retry later",
        );
        error.retry_after_secs = Some(1);
        error
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        if error.is_client_error() {
            // Validation messages name the refused field and value (cut to 80 characters);
            // they carry no internals.
            ApiError::bad_request(error.to_string())
        } else if crate::sync::db_unavailable(&error) {
            ApiError::unavailable(error.to_string())
        } else {
            ApiError::internal(error.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let detail = self.detail.as_deref().unwrap_or("-");
        if self.status.is_server_error() {
            tracing::error!(%correlation_id, status = self.status.as_u16(), code = self.code, detail, "request failed");
        } else {
            tracing::info!(%correlation_id, status = self.status.as_u16(), code = self.code, detail, "request refused");
        }
        let body = serde_json::json!({
            "error": self.code,
            "message": self.message,
            "correlation_id": correlation_id,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&correlation_id) {
            headers.insert(CORRELATION_HEADER, value);
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
