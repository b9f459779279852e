//! Helpers for the HTTP-level tests: the hub's router over a fresh database, users and
//! tokens, requests through `oneshot`, and an in-memory till replica (sync-engine's
//! `MemoryReplica`) that syncs with the router exactly as a till does over HTTP.
//!
//! Shared by several test binaries, each of which uses a subset: hence the `dead_code`
//! allowance below.
#![allow(dead_code)]

use crate::write_support::WriteOnce;
use automerge::ActorId;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use crdt_model::receipt::{Receipt, ReceiptDraft};
use crdt_model::session::{self, SessionHeader};
use crdt_model::{DocKey, Hlc, Kopecks, ReceiptId, SessionId};
use hub::api::{app, AppState};
use hub::auth_types::Role;
use hub::db::{Db, DbConfig};
use std::sync::Arc;
use std::time::Duration;
use sync_engine::{AllowAll, DocId, Envelope, MemoryReplica, PeerId, CONTENT_TYPE};
use tower::ServiceExt;

/// The hub under test.
#[derive(Clone)]
pub struct Hub {
    /// Its database.
    pub db: Db,
    /// Its state (metrics, settings).
    pub state: AppState,
    /// `app(state)`.
    pub router: Router,
}

impl Hub {
    /// A hub over `config` (migrated).
    pub async fn start(config: &DbConfig) -> Hub {
        let db = Db::connect(config).await.expect("connect");
        let state = AppState::new(db.clone()).expect("state");
        let router = app(state.clone());
        Hub { db, state, router }
    }

    /// A user with `role` (and store scope) and a live session token for them.
    pub async fn user_token(&self, name: &str, role: Role, store: Option<&str>) -> String {
        let password = if role == Role::Cashier {
            "123456"
        } else {
            "correct horse battery"
        };
        self.db
            .create_user(name, role, password, store)
            .await
            .expect("create user");
        self.db
            .create_login(name, Duration::from_secs(3600))
            .await
            .expect("session")
    }

    /// Sends a request; returns the status and body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Body::from(body)).expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    }

    /// GET returning JSON (panics unless 200).
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let (status, body) = self
            .call(Method::GET, path, Some(token), None, vec![])
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("json")
    }

    /// Posts one envelope to the sync route.
    pub async fn post_envelope(&self, token: &str, envelope: &Envelope) -> (StatusCode, Vec<u8>) {
        let bytes = envelope.encode().expect("encode");
        self.post_sync_bytes(token, bytes).await
    }

    /// Posts raw bytes to the sync route.
    pub async fn post_sync_bytes(&self, token: &str, bytes: Vec<u8>) -> (StatusCode, Vec<u8>) {
        self.call(
            Method::POST,
            "/api/v1/sync",
            Some(token),
            Some(CONTENT_TYPE),
            bytes,
        )
        .await
    }

    /// Receipt count of `store` straight from the database.
    pub async fn receipts_of(&self, store: &str) -> i64 {
        self.db
            .store_summary(store)
            .await
            .expect("summary")
            .receipts
    }
}

/// An in-memory till: a `MemoryReplica` named `till:<store>/<till>` writing as `actor`.
pub struct Till {
    /// The replica.
    pub replica: MemoryReplica,
    /// Its device token on the hub.
    pub token: String,
    /// Store.
    pub store: String,
    /// Till.
    pub till: String,
}

/// The hub's peer id.
pub fn hub_peer() -> PeerId {
    PeerId::new("hub").expect("peer")
}

/// The actor of device `device` of till `store/till`.
pub fn till_actor(store: &str, till: &str, device: &str) -> ActorId {
    crdt_model::ids::actor_id(
        &store.parse().expect("store"),
        &till.parse().expect("till"),
        device,
    )
    .expect("actor")
}

impl Till {
    /// Enrols `store/till` on `hub` and makes an empty replica writing as its `node` device.
    pub async fn enrol(hub: &Hub, store: &str, till: &str) -> Till {
        let token = hub.db.enroll_till(store, till).await.expect("enroll");
        Till::with_actor(token, store, till, till_actor(store, till, "node"))
    }

    /// A replica of `store/till` that writes as `actor` (for authorship tests).
    pub fn with_actor(token: String, store: &str, till: &str, actor: ActorId) -> Till {
        let peer = PeerId::new(format!("till:{store}/{till}")).expect("peer");
        Till {
            replica: MemoryReplica::new(peer, actor, Arc::new(AllowAll)),
            token,
            store: store.to_owned(),
            till: till.to_owned(),
        }
    }

    /// Opens a session; returns its document id.
    pub fn open_session(&mut self, cashier: &str) -> DocId {
        let header = SessionHeader {
            session_id: SessionId::new(uuid::Uuid::new_v4()),
            store: self.store.parse().expect("store"),
            till: self.till.parse().expect("till"),
            cashier: cashier.to_owned(),
            opened_at: self.hlc(0),
            opening_cash: Kopecks(0),
        };
        self.open_with_header(header.doc_key(), &header)
    }

    /// Writes `header` into the document of `key` (a foreign header in a test of refusals).
    pub fn open_with_header(&mut self, key: DocKey, header: &SessionHeader) -> DocId {
        let id = DocId::new(key.to_doc_id()).expect("doc id");
        let header = header.clone();
        self.replica
            .change(&id, now_ms(), move |doc| {
                session::open(doc, &header).expect("open session");
                Ok(())
            })
            .expect("change");
        id
    }

    /// Sells one item paid `cash` + `card` kopecks into session `doc`; returns the receipt.
    pub fn sell(&mut self, doc: &DocId, cash: i64, card: i64) -> Receipt {
        let hlc = self.hlc(1);
        self.sell_stamped(doc, cash, card, hlc)
    }

    /// [`Till::sell`] with the receipt stamped `hlc` (a till whose clock is wrong).
    pub fn sell_stamped(&mut self, doc: &DocId, cash: i64, card: i64, hlc: Hlc) -> Receipt {
        let key = DocKey::parse(doc.as_str()).expect("key");
        let DocKey::Session { session, .. } = key else {
            panic!("not a session doc");
        };
        let mut payments = Vec::new();
        if cash > 0 {
            payments.push(serde_json::json!({"method": "cash", "amount": cash}));
        }
        if card > 0 {
            payments.push(serde_json::json!({"method": "card", "amount": card}));
        }
        let draft: ReceiptDraft = serde_json::from_value(serde_json::json!({
            "pos_id": self.till,
            "type": "sale",
            "items": [{"sku": "F-1", "name": "Оправа", "qty": 1, "price": cash + card, "vat": "vat22"}],
            "payments": payments,
        }))
        .expect("draft");
        let receipt = Receipt::from_draft(
            draft,
            ReceiptId::new(uuid::Uuid::new_v4()),
            self.store.parse().expect("store"),
            self.till.parse().expect("till"),
            session,
            hlc,
        )
        .expect("valid receipt");
        let stored = receipt.clone();
        self.replica
            .change(doc, now_ms(), move |d| {
                session::append_receipt(d, &stored).expect("append receipt");
                Ok(())
            })
            .expect("change");
        receipt
    }

    /// A timestamp of this till's `node` device, `now_ms()` + `lead_ms`.
    pub fn hlc_ahead(&self, lead_ms: u64, logical: u32) -> Hlc {
        Hlc::new(
            now_ms() + lead_ms,
            logical,
            &format!("{}/{}/node", self.store, self.till),
        )
        .expect("hlc")
    }

    fn hlc(&self, logical: u32) -> Hlc {
        self.hlc_ahead(0, logical)
    }

    /// Runs a whole sync round with `hub`; `Err` with the status and body of the first
    /// refused request.
    pub async fn sync(&mut self, hub: &Hub) -> Result<usize, (StatusCode, String)> {
        let server = hub_peer();
        let mut round = self.replica.start_round(&server);
        let mut rounds = 0;
        while let Some(request) = self.replica.next_request(&mut round).expect("request") {
            rounds += 1;
            let (status, body) = hub.post_envelope(&self.token, &request).await;
            if status != StatusCode::OK {
                return Err((status, String::from_utf8_lossy(&body).into_owned()));
            }
            let reply = Envelope::decode(&body).expect("reply decodes");
            self.replica
                .apply_reply(&mut round, &server, &reply)
                .expect("apply reply");
        }
        Ok(rounds)
    }

    /// The first request of a fresh session (for tests that tamper with it).
    pub fn first_request(&mut self) -> Envelope {
        let mut round = self.replica.start_round(&hub_peer());
        self.replica
            .next_request(&mut round)
            .expect("request")
            .expect("a first request always goes out")
    }
}

/// Wall clock, ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).expect("ms"))
        .expect("clock")
}
