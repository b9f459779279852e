//! Calls to the till (same origin: the till serves the page): fetch with a bearer token, a
//! timeout on every call (an `AbortController`), and one error type that tells the page
//! whether the till is unreachable, the login expired, or the till refused.

use std::time::Duration;

use crdt_model::{Kopecks, ReceiptId};
use js_sys::Uint8Array;
use leptos::prelude::set_timeout_with_handle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use till_api::{
    ApproveAnswer, ApproveRequest, BufferStatus, CashKind, CashRequest, CloseRecord, CloseRequest,
    ErrorBody, LoginAnswer, LoginRequest, MovementAck, OpenSessionRequest, ReceiptAnswer,
    RefundRequest,
};

/// A sync round may carry a catalogue: the architecture's 10 s sync timeout.
const SYNC_TIMEOUT_MS: u64 = 10_000;
/// Every other call.
const CALL_TIMEOUT_MS: u64 = 5_000;
/// The status poll runs every 2 s; an answer later than that is as good as none.
const STATUS_TIMEOUT_MS: u64 = 2_500;

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No answer (server down, network gone, timeout).
    Unreachable(String),
    /// 401: the login expired or was revoked.
    Unauthorized,
    /// The till answered with an error.
    Refused {
        /// HTTP status.
        status: u16,
        /// Its error body.
        body: ErrorBody,
    },
    /// The answer could not be read.
    BadAnswer(String),
}

impl ApiError {
    /// The till's error code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Refused { body, .. } => Some(body.error.as_str()),
            _ => None,
        }
    }

    /// A short text for the cashier (the till's own message when it gave one).
    pub fn describe(&self) -> String {
        match self {
            ApiError::Unreachable(reason) => reason.clone(),
            ApiError::Unauthorized => "401".to_owned(),
            ApiError::Refused { status, body } if body.message.is_empty() => {
                format!("{status} {}", body.error)
            }
            ApiError::Refused { body, .. } => body.message.clone(),
            ApiError::BadAnswer(reason) => reason.clone(),
        }
    }
}

enum Body<'a> {
    Empty,
    Json(String),
    Binary(&'a [u8], &'a str),
}

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    body: Body<'a>,
    idempotency_key: Option<&'a str>,
    timeout_ms: u64,
}

fn js_text(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            js_sys::JSON::stringify(value)
                .ok()
                .and_then(|s| s.as_string())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Sends the call and reads the whole answer body as bytes, under one timeout.
async fn send(call: Call<'_>) -> Result<(u16, Vec<u8>), ApiError> {
    let unreachable = |value: JsValue| ApiError::Unreachable(js_text(&value));
    let window = web_sys::window().ok_or_else(|| ApiError::Unreachable("no window".into()))?;
    let headers = Headers::new().map_err(unreachable)?;
    let init = RequestInit::new();
    init.set_method(call.method);
    if let Some(token) = call.token {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(unreachable)?;
    }
    if let Some(key) = call.idempotency_key {
        headers.set("Idempotency-Key", key).map_err(unreachable)?;
    }
    match &call.body {
        Body::Empty => {}
        Body::Json(json) => {
            headers
                .set("Content-Type", "application/json")
                .map_err(unreachable)?;
            init.set_body(&JsValue::from_str(json));
        }
        Body::Binary(bytes, content_type) => {
            headers
                .set("Content-Type", content_type)
                .map_err(unreachable)?;
            init.set_body(&Uint8Array::from(*bytes).into());
        }
    }
    init.set_headers_headers(&headers);
    let controller = AbortController::new().map_err(unreachable)?;
    init.set_signal(Some(&controller.signal()));
    let request = Request::new_with_str_and_init(call.path, &init).map_err(unreachable)?;
    let timer = set_timeout_with_handle(
        move || controller.abort(),
        Duration::from_millis(call.timeout_ms),
    )
    .ok();
    let result = async {
        let response: Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(unreachable)?
            .dyn_into()
            .map_err(|_| ApiError::BadAnswer("not a response".into()))?;
        let buffer = JsFuture::from(response.array_buffer().map_err(unreachable)?)
            .await
            .map_err(unreachable)?;
        Ok((response.status(), Uint8Array::new(&buffer).to_vec()))
    }
    .await;
    if let Some(timer) = timer {
        timer.clear();
    }
    result
}

/// Sends and checks the status: 2xx gives the body, 401 and errors become [`ApiError`].
async fn call_raw(call: Call<'_>) -> Result<Vec<u8>, ApiError> {
    let (status, body) = send(call).await?;
    match status {
        200..=299 => Ok(body),
        401 => Err(ApiError::Unauthorized),
        _ => Err(ApiError::Refused {
            status,
            body: serde_json::from_slice(&body).unwrap_or_default(),
        }),
    }
}

async fn call_json<T: DeserializeOwned>(call: Call<'_>) -> Result<T, ApiError> {
    let body = call_raw(call).await?;
    serde_json::from_slice(&body).map_err(|error| ApiError::BadAnswer(error.to_string()))
}

fn json<T: Serialize>(value: &T) -> Result<Body<'static>, ApiError> {
    serde_json::to_string(value)
        .map(Body::Json)
        .map_err(|error| ApiError::BadAnswer(error.to_string()))
}

fn post<'a>(path: &'a str, token: Option<&'a str>, body: Body<'a>) -> Call<'a> {
    Call {
        method: "POST",
        path,
        token,
        body,
        idempotency_key: None,
        timeout_ms: CALL_TIMEOUT_MS,
    }
}

/// `POST /v1/pos/login`.
pub async fn login(pin: &str, device: &str) -> Result<LoginAnswer, ApiError> {
    let body = json(&LoginRequest {
        pin: pin.to_owned(),
        device: device.to_owned(),
    })?;
    call_json(post("/v1/pos/login", None, body)).await
}

/// `POST /v1/pos/approve`: a manager approves a discount above the cashier's limit.
pub async fn approve(token: &str, secret: &str) -> Result<ApproveAnswer, ApiError> {
    let body = json(&ApproveRequest {
        secret: secret.to_owned(),
    })?;
    call_json(post("/v1/pos/approve", Some(token), body)).await
}

/// `POST /v1/pos/logout`.
pub async fn logout(token: &str) -> Result<(), ApiError> {
    call_raw(post("/v1/pos/logout", Some(token), Body::Empty))
        .await
        .map(|_| ())
}

/// `POST /v1/pos/sync`: one round trip of the sync protocol.
pub async fn sync_round(token: &str, envelope: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut call = post(
        "/v1/pos/sync",
        Some(token),
        Body::Binary(envelope, sync_engine::CONTENT_TYPE),
    );
    call.timeout_ms = SYNC_TIMEOUT_MS;
    call_raw(call).await
}

/// `POST /v1/session/open`.
pub async fn open_session(
    token: &str,
    cashier: &str,
    opening_cash: Kopecks,
) -> Result<(), ApiError> {
    let body = json(&OpenSessionRequest {
        cashier: cashier.to_owned(),
        opening_cash,
    })?;
    call_raw(post("/v1/session/open", Some(token), body))
        .await
        .map(|_| ())
}

/// `POST /v1/session/cash` with its idempotency key (reused on a retry).
pub async fn cash(
    token: &str,
    kind: CashKind,
    amount: Kopecks,
    reason: &str,
    key: &str,
) -> Result<MovementAck, ApiError> {
    let body = json(&CashRequest {
        kind,
        amount,
        reason: reason.to_owned(),
    })?;
    let mut call = post("/v1/session/cash", Some(token), body);
    call.idempotency_key = Some(key);
    call_json(call).await
}

/// `POST /v1/session/x_report`.
pub async fn x_report(token: &str) -> Result<(), ApiError> {
    call_raw(post("/v1/session/x_report", Some(token), Body::Empty))
        .await
        .map(|_| ())
}

/// `POST /v1/session/close` (Z).
pub async fn close_session(token: &str, cashier: &str) -> Result<CloseRecord, ApiError> {
    let body = json(&CloseRequest {
        cashier: Some(cashier.to_owned()),
    })?;
    call_json(post("/v1/session/close", Some(token), body)).await
}

/// `POST /v1/pos/refund` of a whole sale, with its idempotency key (reused on a retry).
pub async fn refund(
    token: &str,
    original: ReceiptId,
    pos_id: &str,
    key: &str,
) -> Result<ReceiptAnswer, ApiError> {
    let body = json(&RefundRequest {
        original_receipt_id: original,
        pos_id: Some(pos_id.to_owned()),
        items: None,
        payments: None,
        buyer_contact: None,
    })?;
    let mut call = post("/v1/pos/refund", Some(token), body);
    call.idempotency_key = Some(key);
    call_json(call).await
}

/// `GET /v1/kkt/buffer/status` (with the token when logged in).
pub async fn buffer_status(token: Option<&str>) -> Result<BufferStatus, ApiError> {
    call_json(Call {
        method: "GET",
        path: "/v1/kkt/buffer/status",
        token,
        body: Body::Empty,
        idempotency_key: None,
        timeout_ms: STATUS_TIMEOUT_MS,
    })
    .await
}
