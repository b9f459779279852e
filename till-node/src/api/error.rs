//! Error answers of the till API: `{"error": code, "message": text, "field"?: path,
//! "correlation_id": uuid}`.
//!
//! `error` is a stable machine code the POS switches on; `message` is English for support (the
//! POS shows its own Russian text per code); `field` names the offending request field
//! (`items[0].price`). Internals (SQLite messages, paths, Automerge errors) never reach the body:
//! they are logged with the same correlation id, which the cashier can read out to support.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use crdt_model::SessionError;
use till_api::ErrorBody;
use uuid::Uuid;

use crate::node::{NodeError, NodeTaskError};
use crate::store::StoreError;

/// An error answer. Build with the constructors, or convert from [`NodeError`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Logged, never sent.
    internal: Option<String>,
    www_authenticate: bool,
    retry_after_seconds: Option<u64>,
}

impl ApiError {
    /// An error with `status`, machine `code` and human `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            internal: None,
            www_authenticate: false,
            retry_after_seconds: None,
        }
    }

    /// Tells the client when to try again (`retry_after_seconds` and `Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// Names the offending request field.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Attaches detail for the log only.
    pub fn with_internal(mut self, detail: impl Into<String>) -> ApiError {
        self.internal = Some(detail.into());
        self
    }

    /// 401 for a missing or malformed bearer token.
    pub fn unauthorized() -> ApiError {
        let mut error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This route needs `Authorization: Bearer <admin token>`.",
        );
        error.www_authenticate = true;
        error
    }

    /// 403 for a wrong token.
    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The token does not grant this route.",
        )
    }

    /// 500 with detail for the log.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The till could not complete the request; nothing was recorded. Tell support the correlation id.",
        )
        .with_internal(detail)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let correlation_id = Uuid::new_v4().to_string();
        if self.status.is_server_error() {
            tracing::error!(
                %correlation_id,
                status = self.status.as_u16(),
                code = self.code,
                detail = self.internal.as_deref().unwrap_or(""),
                "request failed"
            );
        } else {
            tracing::debug!(
                %correlation_id,
                status = self.status.as_u16(),
                code = self.code,
                field = self.field.as_deref().unwrap_or(""),
                "request refused"
            );
        }
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            field: self.field,
            retry_after_seconds: self.retry_after_seconds,
            correlation_id: correlation_id.clone(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&correlation_id) {
            response.headers_mut().insert("x-correlation-id", value);
        }
        if self.www_authenticate {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<NodeTaskError> for ApiError {
    fn from(error: NodeTaskError) -> ApiError {
        ApiError::internal(error.to_string())
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> ApiError {
        let conflict = |code, message: String| ApiError::new(StatusCode::CONFLICT, code, message);
        match error {
            NodeError::Store(store) => from_store(store),
            NodeError::Unavailable(reason) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_failed",
                "The till stopped recording after a storage failure; nothing was recorded. Call support.",
            )
            .with_internal(reason),
            NodeError::NoOpenShift => conflict(
                "no_open_session",
                "No cash session is open on this till; open one first.".to_owned(),
            ),
            NodeError::ShiftAlreadyOpen(id) => conflict(
                "session_already_open",
                format!("Cash session {id} is already open; close it first."),
            ),
            NodeError::ShiftNotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "session_not_found",
                format!("Cash session {id} is not on this till."),
            ),
            NodeError::BufferFull { count, capacity } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "buffer_full",
                format!(
                    "Продажи приостановлены: {count} из {capacity} чеков ещё не подтверждены ОФД. \
                     Позовите старшего кассира или поддержку. / Sales are paused: {count} of \
                     {capacity} receipts are not yet acknowledged by the OFD; call support."
                ),
            ),
            NodeError::NotRefundable(id) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_refundable",
                format!("Receipt {id} is not a sale; only sales can be refunded."),
            )
            .with_field("original_receipt_id"),
            NodeError::RefundField(field) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("A partial refund needs both items and payments; {field} is missing."),
            )
            .with_field(field),
            NodeError::OriginalNotFound(id) => conflict(
                "original_not_found",
                format!("The original receipt {id} is not known on this till yet; retry later."),
            )
            .with_field("refund_of"),
            NodeError::InvalidReceipt(error) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_receipt",
                error.to_string(),
            )
            .with_field(error.field),
            NodeError::Session(session) => from_session(session),
            NodeError::PageChange(why) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "sync_refused", why)
            }
            NodeError::IdempotencyConflict => conflict(
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request body.".to_owned(),
            ),
            other @ (NodeError::Load { .. }
            | NodeError::Clock(_)
            | NodeError::Identity(_)
            | NodeError::Sync(_)
            | NodeError::RefundStored(_)
            | NodeError::Encode { .. }) => ApiError::internal(other.to_string()),
        }
    }
}

fn from_store(error: StoreError) -> ApiError {
    match error {
        StoreError::Io { .. } | StoreError::PreviousIo { .. } | StoreError::Busy { .. } => {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "The till could not save this; nothing was recorded. Try again; if it repeats, call support.",
            )
            .with_internal(error.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}

fn from_session(error: SessionError) -> ApiError {
    let conflict = |code, message: String| ApiError::new(StatusCode::CONFLICT, code, message);
    match error {
        SessionError::Closed => {
            conflict("session_closed", "The cash session is closed.".to_owned())
        }
        SessionError::Full { max } => conflict(
            "session_full",
            format!(
                "The cash session holds its maximum of {max} entries; close it and open a new one."
            ),
        ),
        SessionError::InsufficientCash {
            available,
            requested,
        } => conflict(
            "insufficient_cash",
            format!("Cash out of {requested} RUB exceeds the {available} RUB in the drawer."),
        )
        .with_field("amount"),
        SessionError::InvalidField { field, reason } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {reason}"),
        )
        .with_field(field),
        SessionError::InvalidReceipt { source, .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_receipt",
            source.to_string(),
        )
        .with_field(source.field),
        other => ApiError::internal(other.to_string()),
    }
}
