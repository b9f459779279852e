//! HTTP helpers for the routes of the contract: [`TillClient`] for a till's API and
//! [`HubClient`] for the hub's JSON API, plus typed views of the replies the scenarios check
//! ([`StoreSummary`], [`DivergenceReport`]). Every request has a timeout; a reply that breaks
//! the contract is an error that quotes the status and body.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};

/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A reply: status and body (JSON when it parses, else `Value::Null`; the text is kept).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The body as text (lossy for binary bodies).
    pub text: String,
    /// The raw body.
    pub bytes: Vec<u8>,
}

impl ApiResponse {
    async fn read(response: reqwest::Response) -> anyhow::Result<ApiResponse> {
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .context("reading the reply body")?
            .to_vec();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(ApiResponse {
            status,
            body,
            text,
            bytes,
        })
    }

    /// The body when the status is `expected`, else an error quoting the reply.
    pub fn expect_status(self, expected: u16, what: &str) -> anyhow::Result<Value> {
        if self.status != expected {
            bail!(
                "{what}: expected HTTP {expected}, got {}: {}",
                self.status,
                self.text
            );
        }
        Ok(self.body)
    }

    /// A string field of the body.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

/// An HTTP client for loopback: no proxy, bounded time.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the HTTP client")
}

/// Client of one till's HTTP API.
#[derive(Debug, Clone)]
pub struct TillClient {
    http: reqwest::Client,
    base: String,
    admin_token: String,
}

impl TillClient {
    /// A client for the till at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str, admin_token: &str) -> anyhow::Result<TillClient> {
        Ok(TillClient {
            http: http_client()?,
            base: base.trim_end_matches('/').to_owned(),
            admin_token: admin_token.to_owned(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn get(&self, path: &str) -> anyhow::Result<ApiResponse> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        ApiResponse::read(response).await
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<ApiResponse> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        ApiResponse::read(response).await
    }

    /// `POST /v1/session/open`; returns the whole reply.
    pub async fn open_session_raw(
        &self,
        cashier: &str,
        opening_cash: i64,
    ) -> anyhow::Result<ApiResponse> {
        self.post(
            "/v1/session/open",
            &json!({"cashier": cashier, "opening_cash": opening_cash}),
        )
        .await
    }

    /// Opens a session and returns its id.
    pub async fn open_session(&self, cashier: &str, opening_cash: i64) -> anyhow::Result<String> {
        let body = self
            .open_session_raw(cashier, opening_cash)
            .await?
            .expect_status(200, "open session")?;
        body.get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("open session reply without session_id: {body}"))
    }

    /// `GET /v1/session/current`: `Some(body)` on 200, `None` on 404.
    pub async fn current_session(&self) -> anyhow::Result<Option<Value>> {
        let reply = self.get("/v1/session/current").await?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 => Ok(None),
            status => bail!("GET /v1/session/current: HTTP {status}: {}", reply.text),
        }
    }

    /// `POST /v1/session/cash`; returns the movement id.
    pub async fn cash(&self, kind: &str, amount: i64, reason: &str) -> anyhow::Result<String> {
        let body = self
            .post(
                "/v1/session/cash",
                &json!({"kind": kind, "amount": amount, "reason": reason}),
            )
            .await?
            .expect_status(200, "cash movement")?;
        body.get("movement_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("cash reply without movement_id: {body}"))
    }

    /// `POST /v1/session/close`; returns the close record.
    pub async fn close_session(&self) -> anyhow::Result<Value> {
        self.post("/v1/session/close", &json!({}))
            .await?
            .expect_status(200, "close session")
    }

    /// `POST /v1/kkt/receipt` with an optional `Idempotency-Key` and a raw body.
    pub async fn post_receipt_raw(
        &self,
        key: Option<&str>,
        body: &str,
    ) -> anyhow::Result<ApiResponse> {
        let mut request = self
            .http
            .post(format!("{}/v1/kkt/receipt", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.context("POST /v1/kkt/receipt")?;
        ApiResponse::read(response).await
    }

    /// `POST /v1/kkt/receipt` with `Idempotency-Key: key`.
    pub async fn sell(&self, key: &str, body: &Value) -> anyhow::Result<ApiResponse> {
        self.post_receipt_raw(Some(key), &body.to_string()).await
    }

    /// A sale that must succeed: returns the receipt id of a `buffered` 200.
    pub async fn sell_ok(&self, key: &str, body: &Value) -> anyhow::Result<String> {
        let reply = self.sell(key, body).await?;
        let body = reply.expect_status(200, "sale")?;
        if body.get("status").and_then(Value::as_str) != Some("buffered") {
            bail!("sale reply is not `buffered`: {body}");
        }
        body.get("receipt_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("sale reply without receipt_id: {body}"))
    }

    /// `GET /v1/session/{id}/receipts`: the receipts of a session.
    pub async fn session_receipts(&self, session_id: &str) -> anyhow::Result<Vec<Value>> {
        let body = self
            .get(&format!("/v1/session/{session_id}/receipts"))
            .await?
            .expect_status(200, "session receipts")?;
        receipts_array(body)
    }

    /// `GET /v1/kkt/buffer/status`.
    pub async fn buffer_status(&self) -> anyhow::Result<Value> {
        self.get("/v1/kkt/buffer/status")
            .await?
            .expect_status(200, "buffer status")
    }

    /// `POST /v1/kkt/buffer/sync?force=true` with `token` (the admin token when `None`);
    /// returns the status (202 started, 409 already running).
    pub async fn force_sync_with(&self, token: Option<&str>) -> anyhow::Result<ApiResponse> {
        let mut request = self
            .http
            .post(format!("{}/v1/kkt/buffer/sync?force=true", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.context("POST /v1/kkt/buffer/sync")?;
        ApiResponse::read(response).await
    }

    /// Forces a sync with the admin token; 202 and 409 (one is running) both count as started.
    pub async fn force_sync(&self) -> anyhow::Result<()> {
        let reply = self.force_sync_with(Some(&self.admin_token)).await?;
        match reply.status {
            202 | 409 => Ok(()),
            status => bail!("force sync: HTTP {status}: {}", reply.text),
        }
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> anyhow::Result<ApiResponse> {
        self.get("/v1/health").await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let reply = self.get("/metrics").await?;
        if reply.status != 200 {
            bail!("GET /metrics: HTTP {}", reply.status);
        }
        Ok(reply.text)
    }
}

/// The receipts list of `GET /v1/session/{id}/receipts`: a bare array, or `{"receipts": [..]}`.
fn receipts_array(body: Value) -> anyhow::Result<Vec<Value>> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => match map.remove("receipts") {
            Some(Value::Array(items)) => Ok(items),
            _ => bail!("session receipts reply has no `receipts` array"),
        },
        other => bail!("session receipts reply is not a list: {other}"),
    }
}

/// Figures of one till in a [`StoreSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TillFigures {
    /// Receipt count.
    pub receipts: u64,
    /// Total in kopecks.
    pub total: i64,
}

/// `GET /api/v1/stores/{store}/summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StoreSummary {
    /// The store.
    pub store: String,
    /// Receipt count.
    pub receipts: u64,
    /// Total in kopecks.
    pub total: i64,
    /// Per till.
    #[serde(default)]
    pub tills: BTreeMap<String, TillFigures>,
    /// Per payment method, kopecks.
    #[serde(default)]
    pub payments: BTreeMap<String, i64>,
}

/// One document row of the divergence report.
#[derive(Debug, Clone, Deserialize)]
pub struct DocDivergenceRow {
    /// Document id.
    pub doc: String,
    /// Changes the hub lacks.
    pub hub_lacks: u64,
    /// Changes the till lacks.
    pub till_lacks: u64,
    /// Age of the till's oldest unsynced change.
    #[serde(default)]
    pub oldest_unsynced_age_ms: Option<u64>,
}

/// One till of the divergence report.
#[derive(Debug, Clone, Deserialize)]
pub struct TillDivergence {
    /// `till:S/T`.
    pub peer: String,
    /// Store.
    #[serde(default)]
    pub store: String,
    /// Till.
    #[serde(default)]
    pub till: String,
    /// Last sync, Unix ms.
    #[serde(default)]
    pub last_sync_ms: Option<u64>,
    /// Per document.
    #[serde(default)]
    pub docs: Vec<DocDivergenceRow>,
}

/// `GET /api/v1/divergence`.
#[derive(Debug, Clone, Deserialize)]
pub struct DivergenceReport {
    /// When the report was made.
    #[serde(default)]
    pub generated_at_ms: u64,
    /// Per till.
    pub tills: Vec<TillDivergence>,
}

impl DivergenceReport {
    /// The entry of till `peer` (`till:S1/T1`).
    pub fn till(&self, peer: &str) -> Option<&TillDivergence> {
        self.tills.iter().find(|t| t.peer == peer)
    }
}

/// Client of the hub's JSON API.
#[derive(Debug, Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: String,
}

impl HubClient {
    /// A client for the hub at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> anyhow::Result<HubClient> {
        Ok(HubClient {
            http: http_client()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /api/v1/login`; returns the token.
    pub async fn login(&self, name: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/api/v1/login", self.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .context("POST /api/v1/login")?;
        let body = ApiResponse::read(response)
            .await?
            .expect_status(200, "login")?;
        body.get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("login reply without token: {body}"))
    }

    /// `GET path` with a bearer token.
    pub async fn get_authorized(&self, token: &str, path: &str) -> anyhow::Result<ApiResponse> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        ApiResponse::read(response).await
    }

    /// The summary of `store`.
    pub async fn summary(&self, token: &str, store: &str) -> anyhow::Result<StoreSummary> {
        let body = self
            .get_authorized(token, &format!("/api/v1/stores/{store}/summary"))
            .await?
            .expect_status(200, "store summary")?;
        serde_json::from_value(body.clone())
            .with_context(|| format!("summary does not match the contract: {body}"))
    }

    /// The divergence report.
    pub async fn divergence(&self, token: &str) -> anyhow::Result<DivergenceReport> {
        let body = self
            .get_authorized(token, "/api/v1/divergence")
            .await?
            .expect_status(200, "divergence")?;
        serde_json::from_value(body.clone())
            .with_context(|| format!("divergence does not match the contract: {body}"))
    }

    /// `POST /api/v1/sync` with raw bytes, a bearer token and a content type.
    pub async fn post_sync_raw(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<ApiResponse> {
        let mut request = self
            .http
            .post(format!("{}/api/v1/sync", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.context("POST /api/v1/sync")?;
        ApiResponse::read(response).await
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> anyhow::Result<ApiResponse> {
        let response = self
            .http
            .get(format!("{}/v1/health", self.base))
            .send()
            .await
            .context("GET /v1/health")?;
        ApiResponse::read(response).await
    }
}
