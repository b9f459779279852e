//! The hub's HTTP API: ONE route table ([`ROUTES`]) from which [`app`] builds the router,
//! and which the auth-matrix test walks.
//!
//! Every route declares its [`Access`]:
//! - [`Access::Public`] — exactly `GET /v1/health`, `GET /metrics`, and `POST /api/v1/login`
//!   (public by nature: it is how a user gets a token).
//! - [`Access::Device`] — a till's device token; only `POST /api/v1/sync`. User tokens are
//!   refused there (403), and device tokens everywhere else (403).
//! - [`Access::Roles`] — a user session token whose role is listed. A user limited to one
//!   store may only use a route's `{store}` parameter for that store (403 otherwise), and
//!   cross-store views (divergence) are filtered to the user's store.
//!
//! Anonymous, malformed, unknown, expired and revoked credentials get 401. Each route has
//! a body limit (413 beyond it), and every request a time limit ([`timeout`], 503 beyond
//! it). Error bodies are generic with a correlation id ([`error::ApiError`]).
//!
//! Submodules: [`auth`] (the middleware and bearer parsing), [`error`], [`login`],
//! [`reports`] (store summary, divergence), [`health`] (health and metrics), [`timeout`],
//! [`sync`] (`POST /api/v1/sync`, over `sync_engine::http_server`).

pub mod auth;
pub mod error;
pub mod health;
pub mod login;
pub mod reports;
pub mod sync;
pub mod timeout;

use crate::auth_types::Role;
use crate::db::{Db, LoginLimit};
use crate::metrics::Metrics;
use crate::sync::HubSync;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// Body limit of the JSON routes.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// An enrolled, non-revoked till (device token).
    Device,
    /// A logged-in user with one of these roles.
    Roles(&'static [Role]),
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
}

impl HttpMethod {
    /// The `http` method.
    pub fn method(self) -> Method {
        match self {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            HttpMethod::Get => MethodFilter::GET,
            HttpMethod::Post => MethodFilter::POST,
        }
    }
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Method.
    pub method: HttpMethod,
    /// Path, axum syntax (`{store}` for a parameter).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Largest request body accepted.
    pub body_limit: usize,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

const REPORT_ROLES: &[Role] = &[Role::Admin, Role::Manager, Role::Accountant, Role::Support];
const SUPPORT_ROLES: &[Role] = &[Role::Admin, Role::Support];
const ALL_ROLES: &[Role] = &Role::ALL;

/// Every route of the hub. Nothing is routed that is not listed here.
pub const ROUTES: &[Route] = &[
    Route {
        method: HttpMethod::Get,
        path: "/v1/health",
        access: Access::Public,
        body_limit: 0,
        handler: |m| on(m, health::health),
    },
    Route {
        method: HttpMethod::Get,
        path: "/metrics",
        access: Access::Public,
        body_limit: 0,
        handler: |m| on(m, health::metrics),
    },
    Route {
        method: HttpMethod::Post,
        path: "/api/v1/login",
        access: Access::Public,
        body_limit: login::LOGIN_BODY_LIMIT,
        handler: |m| on(m, login::login),
    },
    Route {
        method: HttpMethod::Post,
        path: "/api/v1/logout",
        access: Access::Roles(ALL_ROLES),
        body_limit: JSON_BODY_LIMIT,
        handler: |m| on(m, login::logout),
    },
    Route {
        method: HttpMethod::Get,
        path: "/api/v1/stores/{store}/summary",
        access: Access::Roles(REPORT_ROLES),
        body_limit: 0,
        handler: |m| on(m, reports::store_summary),
    },
    Route {
        method: HttpMethod::Get,
        path: "/api/v1/divergence",
        access: Access::Roles(SUPPORT_ROLES),
        body_limit: 0,
        handler: |m| on(m, reports::divergence),
    },
    Route {
        method: HttpMethod::Post,
        path: "/api/v1/sync",
        access: Access::Device,
        body_limit: sync_engine::MAX_ENVELOPE_BYTES,
        handler: |m| on(m, sync::sync),
    },
];

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Lifetime of a login session.
    pub session_ttl: Duration,
    /// Failed-login throttling.
    pub login_limit: LoginLimit,
    /// Time limit of one request, body reading included.
    pub request_timeout: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            session_ttl: Duration::from_secs(12 * 3600),
            login_limit: LoginLimit::default(),
            request_timeout: timeout::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database (the only state; hubs are otherwise stateless).
    pub db: Db,
    /// This process's metrics.
    pub metrics: Arc<Metrics>,
    /// The sync service.
    pub sync: Arc<HubSync>,
    /// Tunables.
    pub settings: Arc<ApiSettings>,
}

/// Why an [`AppState`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Metric registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The hub's actor or peer id is invalid.
    #[error("hub identity: {0}")]
    Identity(String),
}

impl AppState {
    /// State over `db` with default settings.
    pub fn new(db: Db) -> Result<AppState, StateError> {
        AppState::with_settings(db, ApiSettings::default())
    }

    /// State over `db` with `settings`.
    pub fn with_settings(db: Db, settings: ApiSettings) -> Result<AppState, StateError> {
        let metrics = Arc::new(Metrics::new()?);
        let actor = crdt_model::ids::hub_actor(crate::HUB_NAME)
            .map_err(|e| StateError::Identity(e.to_string()))?;
        let sync = HubSync::new(db.clone(), actor, metrics.clone())
            .map_err(|e| StateError::Identity(e.to_string()))?;
        Ok(AppState {
            db,
            metrics,
            sync: Arc::new(sync),
            settings: Arc::new(settings),
        })
    }
}

/// The hub's router: [`ROUTES`], each behind its access check and body limit; anything
/// else is a JSON 404; everything under the request time limit.
pub fn app(state: AppState) -> Router {
    let request_timeout = state.settings.request_timeout;
    let mut router = Router::new();
    for route in ROUTES {
        let methods = (route.handler)(route.method.filter())
            .layer(DefaultBodyLimit::max(route.body_limit))
            .route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), route.access),
                auth::authorize,
            ));
        router = router.route(route.path, methods);
    }
    router
        .fallback(|| async { error::ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            timeout::limit,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_public_routes_are_the_allow_list() {
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ROUTES.len());
        let public: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.access == Access::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(public, ["/v1/health", "/metrics", "/api/v1/login"]);
    }
}
