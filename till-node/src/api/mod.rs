//! The till's HTTP API, built from ONE route table ([`routes`]) so that tests can walk every
//! route (the auth matrix) and nothing is routed that the table does not list.
//!
//! Access rules:
//! - [`RouteAccess::Admin`] routes need `Authorization: Bearer <admin token>` (`--admin-token`):
//!   401 when missing or malformed, 403 when wrong. Tokens are compared as SHA-256 digests in
//!   constant time and never logged.
//! - [`RouteAccess::Cashier`] routes need `Authorization: Bearer <token>` from a PIN login
//!   (`POST /v1/pos/login`): 401 `login_required` otherwise. Tokens are checked against the
//!   login cache ([`Logins`]), without the node lock.
//! - [`RouteAccess::Public`] routes are open on this local daemon, which listens on the till's own
//!   address for the POS page of that till: anything that can reach the port can call them
//!   (the HTTP cashier routes of `session` and `kkt` included).
//!
//! Every body is limited to [`MAX_BODY_BYTES`] (413 beyond), and every request to
//! [`REQUEST_TIMEOUT`] from its headers to its answer, body included (408 beyond), so a stuck
//! client or a wedged call cannot hold a connection and its task forever. [`app`] builds the router from a
//! state and is separate from starting a server, so tests drive it with `oneshot`.
//!
//! The node's operations return domain results and [`NodeError`](crate::node::NodeError);
//! the HTTP shapes are made here: `answer` ([`Answer`]: status, JSON body, replay mark),
//! `error` (error bodies and the status of every node error).
//!
//! Submodules: `session` (shift, cash, sale and refund routes), `pos` (the browser POS's login,
//! approval, logout and sync), `fiscal` (register support routes), `printed` (the `printed`
//! answer of a sale), `status` (support routes), `body` (parsing, canonical JSON, idempotency
//! key), `answer`, `error`.

mod answer;
pub mod body;
pub mod error;
mod fiscal;
mod pos;
mod printed;
mod session;
mod status;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::{Handler, HandlerWithoutStateExt};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use sha2::{Digest, Sha256};
use tower_http::trace::TraceLayer;

use crate::fiscal_link::FiscalLink;
use crate::metrics::Metrics;
use crate::node::{Identity, NodeHandle};
use crate::pos::logins::Logins;
use crate::sync_loop::Syncer;
pub use answer::Answer;
pub use error::ApiError;

/// Largest request body (256 KiB); a receipt of 500 lines is ~100 KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest a request may take, reading its body included (a sale takes milliseconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Anyone who reaches the daemon (see the module documentation).
    Public,
    /// Bearer admin token.
    Admin,
    /// Bearer token of a cashier's PIN login (`POST /v1/pos/login`).
    Cashier,
}

/// One row of the route table.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, in axum syntax (`/v1/session/{session_id}/receipts`).
    pub path: &'static str,
    /// Access rule.
    pub access: RouteAccess,
    handler: MethodRouter<AppState>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl Route {
    fn get<H, T>(path: &'static str, access: RouteAccess, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Route {
            method: Method::GET,
            path,
            access,
            handler: on(MethodFilter::GET, handler),
        }
    }

    fn post<H, T>(path: &'static str, access: RouteAccess, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Route {
            method: Method::POST,
            path,
            access,
            handler: on(MethodFilter::POST, handler),
        }
    }
}

/// THE route table.
pub fn routes() -> Vec<Route> {
    use RouteAccess::{Admin, Cashier, Public};
    vec![
        Route::post("/v1/pos/login", Public, pos::login),
        Route::post("/v1/pos/approve", Cashier, pos::approve),
        Route::post("/v1/pos/logout", Cashier, pos::logout),
        Route::post("/v1/pos/sync", Cashier, pos::sync),
        Route::post("/v1/session/open", Public, session::open),
        Route::get("/v1/session/current", Public, session::current),
        Route::post("/v1/session/cash", Public, session::cash),
        Route::post("/v1/session/close", Public, session::close),
        Route::get(
            "/v1/session/{session_id}/receipts",
            Public,
            session::receipts,
        ),
        Route::post("/v1/kkt/receipt", Public, session::receipt),
        Route::post("/v1/pos/refund", Public, session::refund),
        Route::get("/v1/kkt/buffer/status", Public, status::buffer_status),
        Route::post("/v1/kkt/buffer/sync", Admin, status::force_sync),
        Route::get("/v1/kkt/buffer/logs", Public, fiscal::logs),
        Route::post(
            "/v1/kkt/circuit_breaker/reset",
            Admin,
            fiscal::reset_breaker,
        ),
        Route::get("/v1/kkt/dlq", Admin, fiscal::dead_letters),
        Route::post("/v1/kkt/dlq/requeue", Admin, fiscal::requeue),
        Route::post("/v1/session/x_report", Public, fiscal::x_report),
        Route::get("/v1/health", Public, status::health),
        Route::get("/metrics", Public, status::metrics),
    ]
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    node: NodeHandle,
    syncer: Arc<Syncer>,
    metrics: Metrics,
    admin_token_sha256: [u8; 32],
    buffer_capacity: u32,
    fiscal: Option<FiscalLink>,
    print_wait: Duration,
    logins: Logins,
    identity: Identity,
    web_dir: Option<PathBuf>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("buffer_capacity", &self.inner.buffer_capacity)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of one daemon. `logins` is the node's login cache and `identity` the node's
    /// (fixed once it is open). Only a digest of `admin_token` is kept.
    pub fn new(
        node: NodeHandle,
        logins: Logins,
        identity: Identity,
        syncer: Arc<Syncer>,
        metrics: Metrics,
        admin_token: &str,
        buffer_capacity: u32,
    ) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                node,
                syncer,
                metrics,
                admin_token_sha256: Sha256::digest(admin_token.as_bytes()).into(),
                buffer_capacity,
                fiscal: None,
                print_wait: Duration::ZERO,
                logins,
                identity,
                web_dir: None,
            }),
        }
    }

    /// Attaches the running fiscal pipeline (call before serving).
    pub fn with_fiscal(self, link: FiscalLink) -> AppState {
        self.map_shared(|shared| shared.fiscal = Some(link))
    }

    /// How long a sale waits for the register before answering `buffered`.
    pub fn with_print_wait(self, wait: Duration) -> AppState {
        self.map_shared(|shared| shared.print_wait = wait)
    }

    /// Serves the browser POS bundle (`index.html`, JS, WASM, service worker) from `dir` at `/`.
    pub fn with_web_dir(self, dir: Option<PathBuf>) -> AppState {
        self.map_shared(|shared| shared.web_dir = dir)
    }

    /// Who this till is (store, till, device, peer ids); read without the node lock.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The browser POS's logins, staff list and wrong-secret throttles.
    pub fn logins(&self) -> &Logins {
        &self.inner.logins
    }

    /// A state with `change` applied (the settings are fixed once serving starts).
    fn map_shared(self, change: impl FnOnce(&mut Shared)) -> AppState {
        let mut shared = match Arc::try_unwrap(self.inner) {
            Ok(shared) => shared,
            Err(inner) => Shared {
                node: inner.node.clone(),
                syncer: Arc::clone(&inner.syncer),
                metrics: inner.metrics.clone(),
                admin_token_sha256: inner.admin_token_sha256,
                buffer_capacity: inner.buffer_capacity,
                fiscal: inner.fiscal.clone(),
                print_wait: inner.print_wait,
                logins: inner.logins.clone(),
                identity: inner.identity.clone(),
                web_dir: inner.web_dir.clone(),
            },
        };
        change(&mut shared);
        AppState {
            inner: Arc::new(shared),
        }
    }

    /// The fiscal pipeline, when the till has a register.
    pub fn fiscal(&self) -> Option<&FiscalLink> {
        self.inner.fiscal.as_ref()
    }

    /// How long a sale waits for the register.
    pub fn print_wait(&self) -> Duration {
        self.inner.print_wait
    }

    /// The node.
    pub fn node(&self) -> &NodeHandle {
        &self.inner.node
    }

    /// The syncer.
    pub fn syncer(&self) -> &Arc<Syncer> {
        &self.inner.syncer
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Capacity of the receipt buffer.
    pub fn buffer_capacity(&self) -> u32 {
        self.inner.buffer_capacity
    }

    fn admin_token_matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        constant_time_eq(&digest, &self.inner.admin_token_sha256)
    }
}

/// Equal-length comparison whose time does not depend on where the bytes differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The router: every route of [`routes`], its access rule, the body limit, the request timeout
/// and a JSON 404.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        let mut handler = match route.access {
            RouteAccess::Public => route.handler,
            RouteAccess::Admin => route
                .handler
                .route_layer(middleware::from_fn_with_state(state.clone(), require_admin)),
            RouteAccess::Cashier => route.handler.route_layer(middleware::from_fn_with_state(
                state.clone(),
                pos::require_cashier,
            )),
        };
        if route.path == "/v1/pos/sync" {
            handler = handler.layer(DefaultBodyLimit::max(pos::MAX_SYNC_BODY_BYTES));
        }
        router = router.route(route.path, handler);
    }
    let router = match &state.inner.web_dir {
        // The POS bundle at `/`; whatever it lacks gets the API's JSON 404.
        Some(dir) => router.fallback_service(
            tower_http::services::ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .call_fallback_on_method_not_allowed(true)
                .fallback(not_found.into_service()),
        ),
        None => router.fallback(not_found),
    };
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(limit_time))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    match presented {
        None => Err(ApiError::unauthorized()),
        Some(token) if state.admin_token_matches(token) => Ok(next.run(request).await),
        Some(_) => {
            tracing::warn!(path = %request.uri().path(), "admin route called with a wrong token");
            Err(ApiError::forbidden())
        }
    }
}

/// Answers 408 when a request takes longer than [`REQUEST_TIMEOUT`]. A node call already
/// running completes on its blocking thread (see `NodeHandle`), so a sale may still be durable:
/// the client retries with the same `Idempotency-Key` and gets the original answer.
async fn limit_time(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => {
            tracing::warn!(%path, timeout_s = REQUEST_TIMEOUT.as_secs(), "request timed out");
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request took too long and was cut off; retry it (a sale with the same \
                 Idempotency-Key returns its original answer if it was recorded).",
            )
            .into_response()
        }
    }
}

async fn not_found() -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such route on this till.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_all_bytes() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }

    #[test]
    fn route_table_has_unique_rows_and_these_admin_routes() {
        let table = routes();
        let mut seen = std::collections::BTreeSet::new();
        for route in &table {
            assert!(
                seen.insert((route.method.to_string(), route.path)),
                "{route:?} twice"
            );
        }
        let admin: Vec<&str> = table
            .iter()
            .filter(|r| r.access == RouteAccess::Admin)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            admin,
            [
                "/v1/kkt/buffer/sync",
                "/v1/kkt/circuit_breaker/reset",
                "/v1/kkt/dlq",
                "/v1/kkt/dlq/requeue"
            ]
        );
    }
}
