//! Test support: a till on a temp dir driven through `app()` with `oneshot`, pointed at a hub
//! address where nothing listens.

#![allow(dead_code)]

use std::path::Path;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use till_node::api::{app, AppState};
use till_node::config::{PartialRunConfig, RunConfig, Secret};
use till_node::daemon::open_state;

/// The admin token of test tills.
pub const ADMIN_TOKEN: &str = "admin-secret-for-tests";
/// A hub URL where nothing listens (port 9, discard, is closed on test machines).
pub const DEAD_HUB: &str = "http://127.0.0.1:9";

/// Settings of a test till storing in `dir`.
pub fn config(dir: &Path) -> RunConfig {
    RunConfig::from_partial(PartialRunConfig {
        listen: Some("127.0.0.1:0".into()),
        data: Some(dir.to_owned()),
        store: Some("S1".into()),
        till: Some("T1".into()),
        hub: Some(DEAD_HUB.into()),
        hub_token: Some(Secret::new("hub-token")),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        heartbeat_secs: Some(30),
        ..PartialRunConfig::default()
    })
    .expect("valid test config")
}

/// A till under test.
pub struct Till {
    pub state: AppState,
    pub router: Router,
}

/// A response: status, headers we look at, JSON body (or the text as a JSON string).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl Till {
    /// Opens (or reopens) the till stored in `dir`.
    pub fn open(dir: &Path) -> Till {
        let state = open_state(&config(dir)).expect("till opens");
        let router = app(state.clone());
        Till { state, router }
    }

    /// Sends one request.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(bytes) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("router answers");
        let status = response.status();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            body,
            replayed,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("json");
        self.send(Method::POST, path, &[], Some(bytes)).await
    }

    pub async fn open_session(&self, opening_cash: i64) -> String {
        let reply = self
            .post_json(
                "/v1/session/open",
                &json!({"cashier": "Иванова", "opening_cash": opening_cash}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned()
    }

    /// Posts a receipt with an idempotency key.
    pub async fn receipt(&self, key: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("json");
        self.send(
            Method::POST,
            "/v1/kkt/receipt",
            &[("Idempotency-Key", key)],
            Some(bytes),
        )
        .await
    }
}

/// A one-line sale paid in one way.
pub fn sale(price: i64, method: &str) -> Value {
    json!({
        "pos_id": "T1",
        "type": "sale",
        "items": [{"sku": "F-1", "name": "Оправа", "qty": 1, "price": price, "vat": "vat22"}],
        "payments": [{"method": method, "amount": price}],
    })
}
