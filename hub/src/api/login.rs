//! `POST /api/v1/login` and `POST /api/v1/logout`.
//!
//! Login answers the same generic 401 for an unknown name and a wrong password (both cost
//! one argon2 verification), and counts failures per name in the database
//! ([`crate::db::LoginLimit`]): past the limit the name gets 429 with `Retry-After`, on every
//! hub sharing the database, whatever the password. A success returns a server-side
//! session token (shown once, stored hashed).

use crate::api::auth::{bearer, Bearer};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::auth_types::Role;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use crdt_model::civil::rfc3339_ms;
use serde::{Deserialize, Serialize};

/// Body limit of the login route (a name and a password fit many times over).
pub const LOGIN_BODY_LIMIT: usize = 16 * 1024;

/// The login body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub name: String,
    /// Password (or cashier PIN).
    pub password: String,
}

/// A successful login.
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    /// The user's role.
    pub role: Role,
    /// The store the user is limited to, if any.
    pub store: Option<String>,
    /// Expiry, RFC 3339 UTC.
    pub expires_at: String,
    /// Expiry, Unix ms.
    pub expires_at_ms: i64,
}

/// Maps a JSON body rejection to a generic error (413 for an oversized body).
pub fn json_rejection(rejection: &JsonRejection, limit: usize, shape: &'static str) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(limit)
    } else {
        ApiError::bad_request(shape).with_detail(rejection.body_text())
    }
}

/// `POST /api/v1/login` `{"name", "password"}` → `{"token", "role", "expires_at", ...}`.
pub async fn login(
    State(app): State<AppState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let Json(request) = body.map_err(|r| {
        json_rejection(
            &r,
            LOGIN_BODY_LIMIT,
            "the body must be JSON {\"name\": \"...\", \"password\": \"...\"}",
        )
    })?;
    let now = crate::db::now_ms();
    if let Some(until) = app.db.login_locked_until(&request.name, now).await? {
        app.metrics.login_failures.inc();
        let secs = u64::try_from(until.saturating_sub(now) / 1000).unwrap_or(1);
        return Err(ApiError::too_many_attempts(secs.saturating_add(1)));
    }
    let Some(user) = app
        .db
        .verify_password(&request.name, &request.password)
        .await?
    else {
        app.metrics.login_failures.inc();
        let mut tx = app.db.begin().await?;
        let locked = tx
            .record_login_failure(&request.name, now, &app.settings.login_limit)
            .await?;
        tx.commit().await?;
        if locked.is_some() {
            tracing::warn!(user = %request.name.chars().take(64).collect::<String>(), "login locked after repeated failures");
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong name or password",
        ));
    };
    let ttl = app.settings.session_ttl;
    let mut tx = app.db.begin().await?;
    tx.clear_login_failures(&user.name).await?;
    let token = tx.create_login(&user.name, ttl).await?;
    tx.commit().await?;
    let expires_at_ms = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    tracing::info!(user = %user.name, role = %user.role, "user logged in");
    Ok(Json(LoginResponse {
        token,
        role: user.role,
        store: user.store,
        expires_at: rfc3339_ms(expires_at_ms),
        expires_at_ms,
    }))
}

/// `POST /api/v1/logout`: ends the caller's session → 204.
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if let Bearer::Token(token) = bearer(&headers) {
        let mut tx = app.db.begin().await?;
        tx.delete_login(token).await?;
        tx.commit().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
