//! The access check every route passes through ([`authorize`]), and bearer-token parsing.
//!
//! Tokens are opaque random strings (64 hex characters) looked up by hash: device tokens in
//! `devices`, user tokens in `user_sessions`. The kind of a token decides what it may call:
//! a device token is accepted only on [`Access::Device`] routes, a user token only on
//! [`Access::Roles`] routes (each refusal is 403: the caller is known, the action is not
//! allowed). Anything unusable — no header, another scheme, a malformed, unknown, expired
//! or revoked token — is 401. Tokens never reach a log line.

use crate::api::error::ApiError;
use crate::api::{Access, AppState};
use crate::auth_types::Role;
use crate::db::{Device, User};
use crate::sync::policy::TillPeer;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sync_engine::http_server::AuthenticatedPeer;

/// Longest bearer token looked at; longer ones are malformed.
const MAX_TOKEN_CHARS: usize = 512;

/// The credential of a request, as found in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <token>` with a plausible token.
    Malformed,
    /// A token.
    Token(&'a str),
}

/// Reads `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Bearer::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Bearer::Malformed;
    };
    let token = token.trim();
    let plausible = !token.is_empty()
        && token.len() <= MAX_TOKEN_CHARS
        && token.bytes().all(|b| b.is_ascii_graphic());
    if scheme.eq_ignore_ascii_case("bearer") && plausible {
        Bearer::Token(token)
    } else {
        Bearer::Malformed
    }
}

/// The user a request was authenticated as (request extension on [`Access::Roles`] routes).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl CurrentUser {
    /// Whether the user may see `store`'s data (unscoped users see every store).
    pub fn may_see_store(&self, store: &str) -> bool {
        self.0.store.as_deref().is_none_or(|own| own == store)
    }
}

/// The till a request was authenticated as (request extension on [`Access::Device`] routes).
#[derive(Debug, Clone)]
pub struct CurrentDevice {
    /// The device row.
    pub device: Device,
    /// Its peer identity.
    pub till: TillPeer,
}

/// The middleware of every route: checks the route's [`Access`] and stores the caller in the
/// request extensions ([`CurrentUser`], or [`CurrentDevice`] + [`AuthenticatedPeer`]).
pub async fn authorize(
    State((app, access)): State<(AppState, Access)>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let result = match access {
        Access::Public => Ok(()),
        Access::Device => authorize_device(&app, &mut request).await,
        Access::Roles(roles) => authorize_user(&app, roles, params.ok(), &mut request).await,
    };
    match result {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn authorize_device(app: &AppState, request: &mut Request) -> Result<(), ApiError> {
    let Bearer::Token(token) = bearer(request.headers()) else {
        return Err(ApiError::unauthorized());
    };
    if let Some(device) = app.db.device_by_token(token).await? {
        let till = TillPeer::new(&device.store, &device.till)
            .map_err(|e| ApiError::internal(format!("enrolled device is not a till: {e}")))?;
        request.extensions_mut().insert(AuthenticatedPeer {
            peer: till.peer.clone(),
        });
        request
            .extensions_mut()
            .insert(CurrentDevice { device, till });
        return Ok(());
    }
    if app
        .db
        .login_user(token, crate::db::now_ms())
        .await?
        .is_some()
    {
        return Err(ApiError::forbidden(
            "this route takes a till's device token, not a user token",
        ));
    }
    Err(ApiError::unauthorized())
}

async fn authorize_user(
    app: &AppState,
    roles: &[Role],
    params: Option<RawPathParams>,
    request: &mut Request,
) -> Result<(), ApiError> {
    let Bearer::Token(token) = bearer(request.headers()) else {
        return Err(ApiError::unauthorized());
    };
    let Some(user) = app.db.login_user(token, crate::db::now_ms()).await? else {
        if app.db.device_by_token(token).await?.is_some() {
            return Err(ApiError::forbidden(
                "a till's device token may only be used to sync",
            ));
        }
        return Err(ApiError::unauthorized());
    };
    if !roles.contains(&user.role) {
        return Err(ApiError::forbidden("your role may not use this route")
            .with_detail(format!("user {} role {}", user.name, user.role)));
    }
    let user = CurrentUser(user);
    let store = params
        .iter()
        .flat_map(|p| p.iter())
        .find(|(name, _)| *name == "store")
        .map(|(_, value)| value.to_owned());
    if let Some(store) = store {
        if !user.may_see_store(&store) {
            return Err(ApiError::forbidden("you may not see this store's data")
                .with_detail(format!("user {} asked for store {store}", user.0.name)));
        }
    }
    request.extensions_mut().insert(user);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn parses_bearer_tokens() {
        assert_eq!(bearer(&HeaderMap::new()), Bearer::Missing);
        assert_eq!(bearer(&with("Bearer abc")), Bearer::Token("abc"));
        assert_eq!(bearer(&with("bearer abc")), Bearer::Token("abc"));
        assert_eq!(bearer(&with("Basic abc")), Bearer::Malformed);
        assert_eq!(bearer(&with("Bearer")), Bearer::Malformed);
        assert_eq!(bearer(&with("Bearer ")), Bearer::Malformed);
        assert_eq!(bearer(&with("Bearer a b")), Bearer::Malformed);
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_CHARS + 1));
        assert_eq!(bearer(&with(&long)), Bearer::Malformed);
    }
}
