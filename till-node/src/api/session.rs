//! Handlers of the cash-shift routes (`/v1/session/...`, `/v1/kkt/receipt`, `/v1/pos/refund`):
//! shifts, cash movements, sales and refunds, run on the node's `Shifts`.
//!
//! Each write parses and validates its body here, then runs on the node (blocking thread,
//! node lock) where it is committed durably before the answer is built. A successful write
//! wakes the sync loop, which pushes it to the hub at once when the link is online.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use crdt_model::receipt::ReceiptDraft;
use crdt_model::SessionId;
use till_api::session::{
    CashRequest, CloseRequest, OpenSessionRequest, RefundRequest, SessionReceipts, SessionSummary,
};

use super::body::{idempotency, json_value, typed};
use super::error::ApiError;
use super::{Answer, AppState};
use crate::node::{NodeError, Recorded, RefundOutcome, Shifts};

/// Turns a node answer into an HTTP response (marking replays).
fn respond(state: &AppState, answer: Answer) -> Response {
    if !answer.replayed {
        state.syncer().notify_sale();
    }
    let mut response = (answer.status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if answer.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Runs a shift write on the node and answers with what it recorded.
async fn run_write<F>(state: &AppState, write: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut Shifts<'_>) -> Result<Recorded, NodeError> + Send + 'static,
{
    let recorded = state
        .node()
        .call(|node| write(&mut node.shifts()))
        .await??;
    wake_pipeline(state);
    Ok(respond(state, recorded.into()))
}

/// A write may have queued a fiscal job: let the pipeline know at once.
fn wake_pipeline(state: &AppState) {
    if let Some(link) = state.fiscal() {
        link.handle.wake();
    }
}

/// `POST /v1/session/open`.
pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_value(body, false)?;
    let idem = idempotency(&headers, &value, false)?;
    let body: OpenSessionRequest = typed(value)?;
    run_write(&state, move |shifts| {
        shifts.open(body.cashier, body.opening_cash, idem.as_ref())
    })
    .await
}

/// `POST /v1/session/cash`.
pub async fn cash(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_value(body, false)?;
    let idem = idempotency(&headers, &value, false)?;
    let body: CashRequest = typed(value)?;
    run_write(&state, move |shifts| {
        shifts.cash_movement(body.kind.into(), body.amount, body.reason, idem.as_ref())
    })
    .await
}

/// `POST /v1/session/close`.
pub async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_value(body, true)?;
    let idem = idempotency(&headers, &value, false)?;
    let body: CloseRequest = if value.is_null() {
        CloseRequest::default()
    } else {
        typed(value)?
    };
    run_write(&state, move |shifts| {
        shifts.close(body.cashier, idem.as_ref())
    })
    .await
}

/// `GET /v1/session/current`.
pub async fn current(State(state): State<AppState>) -> Result<Json<SessionSummary>, ApiError> {
    match state.node().call(|node| node.shifts().summary()).await? {
        Ok(summary) => Ok(Json(summary)),
        // Asking "what is open?" when nothing is open is a lookup that found nothing.
        Err(NodeError::NoOpenShift) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_open_session",
            "No cash session is open on this till.",
        )),
        Err(error) => Err(error.into()),
    }
}

/// `GET /v1/session/{session_id}/receipts`.
pub async fn receipts(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    let session_id: SessionId = session_id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_session_id",
            "The session id must be a UUID.",
        )
        .with_field("session_id")
    })?;
    let receipts = state
        .node()
        .call(move |node| node.shifts().receipts(session_id))
        .await??;
    Ok(Json(SessionReceipts {
        session_id,
        count: receipts.len(),
        receipts,
    })
    .into_response())
}

/// `POST /v1/kkt/receipt`: `Idempotency-Key` required; answered only after the commit.
pub async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_value(body, false)?;
    let idem = idempotency(&headers, &value, true)?;
    let draft: ReceiptDraft = typed(value)?;
    let recorded = state
        .node()
        .call(move |node| node.shifts().sell(draft, idem.as_ref()))
        .await??;
    wake_pipeline(&state);
    let answer = super::printed::upgrade(&state, recorded.into()).await;
    Ok(respond(&state, answer))
}

/// `POST /v1/pos/refund`: `Idempotency-Key` required. 200 with the refund receipt (`printed`
/// or `buffered`), or 409 `original_not_fiscalised` with `retry_after_seconds` while the
/// original waits for the register — the till makes the refund by itself as soon as it can,
/// and a retry with the same key gets its answer.
pub async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_value(body, false)?;
    let idem = idempotency(&headers, &value, true)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "The Idempotency-Key header is required.",
        )
    })?;
    let body: RefundRequest = typed(value)?;
    let outcome = state
        .node()
        .call(move |node| node.shifts().refund(body, &idem))
        .await??;
    wake_pipeline(&state);
    match outcome {
        RefundOutcome::Done(recorded) => {
            let answer = super::printed::upgrade(&state, recorded.into()).await;
            Ok(respond(&state, answer))
        }
        RefundOutcome::Pending {
            retry_after_seconds,
        } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "original_not_fiscalised",
            "The original receipt is not fiscalised yet; the refund is kept and will be made \
             automatically. Retry with the same Idempotency-Key to get its result.",
        )
        .with_field("original_receipt_id")
        .with_retry_after(retry_after_seconds)),
    }
}
