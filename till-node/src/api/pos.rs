//! Routes of the browser POS: PIN login, manager approval, logout and the page's sync round.
//!
//! - `POST /v1/pos/login` `{"pin", "device"}`: the PIN is checked against the staff document
//!   (argon2id, on a blocking thread); wrong PINs are throttled (429 with `retry_after_seconds`).
//!   The answer carries a bearer token, the page's peer id and the till's.
//! - `POST /v1/pos/approve` `{"secret"}` (cashier token): a store manager's secret approves a
//!   discount above the cashier's limit.
//! - `POST /v1/pos/logout` (cashier token).
//! - `POST /v1/pos/sync` (cashier token): one sync round, envelope in, envelope out
//!   (`PageSync::round`); the envelope's sender must be the page the token was issued to.
//!
//! Token checks, the staff list and the throttles are served by the login cache
//! ([`Logins`](crate::pos::logins::Logins)) without the node lock; only making a login or
//! logout durable goes through the node.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crdt_model::ids::actor_id;
use crdt_model::staff::{StaffMember, StaffRole};
use sync_engine::http_server::{serve_round, ContentTypeRule, Refusal, SyncEndpoint};
use sync_engine::{Envelope, PeerId, SyncError};
use till_api::pos::{
    ApproveAnswer, ApproveRequest, LoginAnswer, LoginRequest, LogoutAnswer, LogoutStatus,
};

use super::body::{json_value, typed};
use super::error::ApiError;
use super::AppState;
use crate::node::NodeError;
use crate::pos::pin::{find_member, role_name};
use crate::pos::policy::pos_peer_id;
use crate::pos::tokens::{new_token, PosLogin, TOKEN_TTL_MS};
use crate::time::now_ms;

/// Largest sync envelope the page may send (the hub's limit; a first sync carries the page's
/// whole session).
pub const MAX_SYNC_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The bearer token of a request, if well-formed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

fn pos_unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_required",
        "This route needs a cashier login: `Authorization: Bearer <token from POST /v1/pos/login>`.",
    )
}

/// Middleware of the cashier routes: a live login token, whose login is handed to the
/// handler as an extension.
pub async fn require_cashier(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = bearer(request.headers()).map(str::to_owned) else {
        return Err(pos_unauthorized());
    };
    let Some(login) = state.logins().login(&token, now_ms()) else {
        return Err(pos_unauthorized());
    };
    request.extensions_mut().insert(login);
    Ok(next.run(request).await)
}

/// The staff list, or 503 when the hub has not sent it to this till yet.
async fn staff(state: &AppState) -> Result<Arc<Vec<StaffMember>>, ApiError> {
    state.logins().staff_members()?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_staff_list",
            "This till has not received its staff list from the hub yet; connect it to the \
                 hub once.",
        )
    })
}

/// Checks `secret` on a blocking thread, throttled: 429 while locked, 401 when wrong. The
/// attempt counts as a failure from the start, so concurrent guesses are throttled too.
async fn check_secret(
    state: &AppState,
    secret: String,
    roles: &'static [StaffRole],
) -> Result<StaffMember, ApiError> {
    let approval = !roles.contains(&StaffRole::Cashier);
    let members = staff(state).await?;
    state
        .logins()
        .begin_attempt(approval, now_ms())
        .map_err(too_many_attempts)?;
    let found = tokio::task::spawn_blocking(move || find_member(&members, &secret, roles))
        .await
        .map_err(|e| ApiError::internal(format!("PIN check task failed: {e}")))?;
    match found {
        Some(member) => {
            state.logins().attempt_succeeded(approval);
            Ok(member)
        }
        None => {
            tracing::warn!(approval, "wrong PIN or secret at the till");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong_pin",
                "Wrong PIN.",
            ))
        }
    }
}

fn too_many_attempts(wait_ms: u64) -> ApiError {
    let seconds = wait_ms.div_ceil(1000).max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("Too many wrong PINs; try again in {seconds} s."),
    )
    .with_retry_after(seconds)
}

/// `POST /v1/pos/login`.
pub async fn login(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: LoginRequest = typed(json_value(body, false)?)?;
    let identity = state.identity();
    if body.device.starts_with("node")
        || actor_id(&identity.store, &identity.till, &body.device).is_err()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_device",
            "`device` must be a short name of letters, digits and dashes that does not start \
             with `node`.",
        )
        .with_field("device"));
    }
    let member = check_secret(&state, body.pin, &[StaffRole::Cashier, StaffRole::Manager]).await?;
    let peer = pos_peer_id(&identity.store, &identity.till, &body.device);
    PeerId::new(peer.clone()).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_device", e.to_string()).with_field("device")
    })?;
    let (token, _) = new_token();
    let login = PosLogin {
        login: member.login.clone(),
        role: role_name(member.role).to_owned(),
        device: body.device.clone(),
        peer: peer.clone(),
        expires_at_ms: now_ms().saturating_add(TOKEN_TTL_MS),
    };
    let stored = login.clone();
    let stored_token = token.clone();
    state
        .node()
        .call(move |node| node.record_login(&stored_token, &stored))
        .await??;
    tracing::info!(login = %member.login, device = %body.device, "cashier logged in");
    Ok(Json(LoginAnswer {
        token,
        login: member.login,
        role: role_name(member.role).to_owned(),
        store: identity.store.to_string(),
        till: identity.till.to_string(),
        device: body.device,
        peer,
        till_peer: identity.peer.to_string(),
        expires_at_ms: Some(login.expires_at_ms),
    })
    .into_response())
}

/// `POST /v1/pos/approve`.
pub async fn approve(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: ApproveRequest = typed(json_value(body, false)?)?;
    let member = check_secret(&state, body.secret, &[StaffRole::Manager]).await?;
    Ok(Json(ApproveAnswer {
        login: member.login,
        role: role_name(member.role).to_owned(),
    })
    .into_response())
}

/// `POST /v1/pos/logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)
        .map(str::to_owned)
        .ok_or_else(pos_unauthorized)?;
    state
        .node()
        .call(move |node| node.end_login(&token))
        .await??;
    Ok(Json(LogoutAnswer {
        status: LogoutStatus::LoggedOut,
    })
    .into_response())
}

/// `POST /v1/pos/sync`: sync-engine's one sync handler over [`PageEndpoint`].
pub async fn sync(
    State(state): State<AppState>,
    Extension(login): Extension<PosLogin>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_round(&PageEndpoint(&state), login, &headers, body).await
}

/// The page's sync endpoint: exactly our content type (the page always sends it), the sender
/// must be the page the cashier's token was issued to, errors in the till's own codes.
struct PageEndpoint<'a>(&'a AppState);

impl SyncEndpoint for PageEndpoint<'_> {
    type Caller = PosLogin;
    type Error = ApiError;

    fn content_type_rule(&self) -> ContentTypeRule {
        ContentTypeRule::Exact
    }

    /// A stored peer id that does not parse is left to the node, which reports it.
    fn expected_sender(&self, login: &PosLogin) -> Option<PeerId> {
        PeerId::new(login.peer.clone()).ok()
    }

    fn refuse(&self, _login: &PosLogin, refusal: Refusal<'_>) -> ApiError {
        match refusal {
            Refusal::UnsupportedMediaType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "A sync envelope is sent as `{}`.",
                    sync_engine::CONTENT_TYPE
                ),
            ),
            Refusal::TooLarge(rejection) | Refusal::UnreadableBody(rejection) => {
                ApiError::new(rejection.status(), "bad_body", rejection.body_text())
            }
            Refusal::InvalidEnvelope(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_envelope",
                format!("bad envelope: {e}"),
            ),
            Refusal::SenderMismatch { expected, found } => {
                sync_error(NodeError::Sync(SyncError::UnexpectedSender {
                    expected,
                    found,
                }))
            }
        }
    }

    fn encode_failed(&self, _login: &PosLogin, detail: String) -> ApiError {
        ApiError::internal(format!("encoding the reply: {detail}"))
    }

    async fn round(&self, login: &PosLogin, request: Envelope) -> Result<Envelope, ApiError> {
        let state = self.0;
        let login = login.clone();
        let round = state
            .node()
            .call(move |node| node.page_sync().round(&login, &request))
            .await?
            .map_err(sync_error)?;
        if round.new_receipts > 0 {
            if let Some(link) = state.fiscal() {
                link.handle.wake();
            }
        }
        if round.docs_changed > 0 {
            state.syncer().notify_sale();
        }
        Ok(round.reply)
    }
}

/// A refused round: the page sent something the till does not accept.
fn sync_error(error: NodeError) -> ApiError {
    match error {
        NodeError::Sync(sync) => {
            let status = match &sync {
                SyncError::UnexpectedSender { .. } | SyncError::Forbidden { .. } => {
                    StatusCode::FORBIDDEN
                }
                SyncError::Apply { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, "sync_refused", sync.to_string())
        }
        NodeError::PageChange(why) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "sync_refused", why)
        }
        NodeError::Session(session) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sync_refused",
            format!("a session document does not read back: {session}"),
        ),
        other => other.into(),
    }
}
