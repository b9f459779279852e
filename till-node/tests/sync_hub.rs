//! The till's sync loop against a real HTTP hub: sync-engine's server half (`MemoryReplica`)
//! behind its axum adapter on a loopback port, at `/api/v1/sync` like the hub crate.
//!
//! Checks: receipts reach the hub exactly once and the buffer empties; the store's catalogue
//! arrives, is persisted and survives a restart; sync states persist, so after a restart only
//! the new sale is unsynced; a catalogue HLC far in the future is refused by the clock and
//! counted, without stopping the sync; a wrong hub token shows as a hub error, not a crash.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use common::{sale, Till};
use crdt_model::catalogue::{self, Product};
use crdt_model::hlc::Hlc;
use crdt_model::ids::hub_actor;
use crdt_model::{Kopecks, StoreId, VatRate};
use sync_engine::http_server::{sync_router, AuthenticatedPeer, SyncService, SyncServiceError};
use sync_engine::{AllowAll, DocId, Envelope, MemoryReplica, PeerId};
use till_node::api::app;
use till_node::config::RunConfig;
use till_node::daemon::open_state;

const HUB_TOKEN: &str = "hub-token";

struct FakeHub {
    replica: Mutex<MemoryReplica>,
}

impl SyncService for FakeHub {
    async fn sync(
        &self,
        peer: AuthenticatedPeer,
        request: Envelope,
    ) -> Result<Envelope, SyncServiceError> {
        let mut replica = self
            .replica
            .lock()
            .map_err(|_| SyncServiceError::Internal("poisoned".into()))?;
        Ok(replica.serve(&peer.peer, &request)?.reply)
    }
}

async fn authenticate(mut request: Request, next: Next) -> Result<Response, StatusCode> {
    let expected = format!("Bearer {HUB_TOKEN}");
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if token != Some(expected.as_str()) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    request.extensions_mut().insert(AuthenticatedPeer {
        peer: PeerId::new("till:S1/T1").expect("peer"),
    });
    Ok(next.run(request).await)
}

/// Starts the hub with a catalogue for S1 whose price was written at `price_hlc_ms`.
async fn start_hub(price_hlc_ms: u64) -> (Arc<FakeHub>, String) {
    let actor = hub_actor("hub").expect("actor");
    let mut replica =
        MemoryReplica::new(PeerId::new("hub").expect("peer"), actor, Arc::new(AllowAll));
    let products = [Product {
        sku: "F-1".into(),
        ean: None,
        name: "Оправа".into(),
        price: Kopecks(150_000),
        cost: None,
        vat: VatRate::Vat22,
        unit: "шт".into(),
        category: None,
        brand: None,
    }];
    let hlc = Hlc::new(price_hlc_ms, 0, "hub").expect("hlc");
    replica
        .change(&catalogue_id(), price_hlc_ms, |doc| {
            let store = StoreId::new("S1").expect("store");
            catalogue::init(doc, &store, &products, &hlc).expect("catalogue");
            Ok(())
        })
        .expect("catalogue written");
    let hub = Arc::new(FakeHub {
        replica: Mutex::new(replica),
    });
    let router: Router = Router::new()
        .nest("/api", sync_router(Arc::clone(&hub)))
        .layer(middleware::from_fn(authenticate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (hub, url)
}

fn catalogue_id() -> DocId {
    DocId::new("catalogue/S1").expect("doc")
}

fn till_config(dir: &std::path::Path, hub_url: &str, token: &str) -> RunConfig {
    let mut config = common::config(dir);
    config.hub_url = hub_url.parse().expect("url");
    config.hub_token = till_node::config::Secret::new(token);
    config
}

fn open_till(dir: &std::path::Path, hub_url: &str, token: &str) -> Till {
    let state = open_state(&till_config(dir, hub_url, token)).expect("till opens");
    let router = app(state.clone());
    Till { state, router }
}

fn hub_receipts(hub: &FakeHub, session: &str) -> usize {
    let replica = hub.replica.lock().expect("hub");
    let id = DocId::new(format!("session/S1/T1/{session}")).expect("doc");
    let doc = replica.doc(&id).expect("the hub holds the session");
    crdt_model::session::read(doc)
        .expect("reads")
        .receipts
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_the_hub_once_and_the_catalogue_comes_back() {
    let now = till_node::time::now_ms();
    let (hub, url) = start_hub(now).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let session = {
        let till = open_till(dir.path(), &url, HUB_TOKEN);
        let session = till.open_session(0).await;
        for i in 0..3 {
            let reply = till.receipt(&format!("s-{i}"), &sale(1000, "cash")).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        let report = till.state.syncer().sync_now().await.expect("sync works");
        assert_eq!(report.receipts_synced, 3);
        assert!(report.docs_changed >= 1, "the catalogue arrived");
        assert_eq!(hub_receipts(&hub, &session), 3);

        let status = till.get("/v1/kkt/buffer/status").await;
        assert_eq!(status.body["current_queued"], 0);
        assert_eq!(status.body["network_status"], "online");
        assert!(status.body["last_sync"].is_string());
        let has_catalogue = till
            .state
            .node()
            .call(|node| node.replica().get(&catalogue_id()).is_some())
            .await
            .expect("node");
        assert!(has_catalogue);
        let metrics = till.get("/metrics").await;
        let text = metrics.body.as_str().expect("text");
        assert!(text.contains("kkt_receipts_synced_total 3"), "{text}");
        assert!(text.contains("kkt_hlc_remote_rejected_total 0"), "{text}");

        // An idle sync changes nothing and counts nothing.
        let idle = till.state.syncer().sync_now().await.expect("idle sync");
        assert_eq!(idle.receipts_synced, 0);
        assert_eq!(idle.docs_changed, 0);
        session
    };

    // Restart: the catalogue and the sync states were persisted.
    let till = open_till(dir.path(), &url, HUB_TOKEN);
    let (has_catalogue, unsynced) = till
        .state
        .node()
        .call(|node| {
            (
                node.replica().get(&catalogue_id()).is_some(),
                node.replica().unsynced_total().receipts,
            )
        })
        .await
        .expect("node");
    assert!(has_catalogue, "the catalogue survives a restart");
    assert_eq!(unsynced, 0, "sync state survives a restart");
    let reply = till.receipt("after-restart", &sale(2000, "card")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let status = till.get("/v1/kkt/buffer/status").await;
    assert_eq!(status.body["current_queued"], 1);
    let report = till.state.syncer().sync_now().await.expect("sync");
    assert_eq!(report.receipts_synced, 1);
    assert_eq!(hub_receipts(&hub, &session), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_catalogue_timestamp_is_refused_by_the_clock_but_sync_goes_on() {
    let two_hours_ahead = till_node::time::now_ms() + 2 * 3600 * 1000;
    let (_hub, url) = start_hub(two_hours_ahead).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let till = open_till(dir.path(), &url, HUB_TOKEN);
    till.open_session(0).await;
    till.state.syncer().sync_now().await.expect("sync works");
    let health = till.get("/v1/health").await;
    let drift = health.body["components"]["clock"]["hlc_drift_seconds"]
        .as_f64()
        .expect("drift");
    assert!(drift < 60.0, "the clock did not jump two hours: {drift}");
    let metrics = till.get("/metrics").await;
    let text = metrics.body.as_str().expect("text");
    assert!(text.contains("kkt_hlc_remote_rejected_total 1"), "{text}");
    let reply = till.receipt("k", &sale(1000, "cash")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_hub_error_and_sales_go_on() {
    let (hub, url) = start_hub(till_node::time::now_ms()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let till = open_till(dir.path(), &url, "revoked-token");
    let session = till.open_session(0).await;
    assert_eq!(
        till.receipt("k", &sale(1000, "cash")).await.status,
        StatusCode::OK
    );
    let error = till
        .state
        .syncer()
        .sync_now()
        .await
        .expect_err("401 from the hub");
    assert!(error.to_string().contains("401"), "{error}");
    let link = till.state.syncer().link();
    assert_eq!(link.state, till_node::link::LinkState::Degraded);
    assert!(link.last_error.is_some());
    let replica = hub.replica.lock().expect("hub");
    let id = DocId::new(format!("session/S1/T1/{session}")).expect("doc");
    assert!(replica.doc(&id).is_none(), "nothing reached the hub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_sessions_are_dropped_only_after_retention_and_once_the_hub_has_them() {
    let (_hub, url) = start_hub(till_node::time::now_ms()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let till = open_till(dir.path(), &url, HUB_TOKEN);
    let closed = till.open_session(0).await;
    assert_eq!(
        till.receipt("a", &sale(1000, "cash")).await.status,
        StatusCode::OK
    );
    let close = till
        .post_json("/v1/session/close", &serde_json::json!({}))
        .await;
    assert_eq!(close.status, StatusCode::OK);
    let open = till.open_session(0).await;
    assert_eq!(
        till.receipt("b", &sale(1000, "cash")).await.status,
        StatusCode::OK
    );

    let day_ms = 86_400_000;
    let now = till_node::time::now_ms();
    let retention = |at: u64| {
        let node = till.state.node().clone();
        async move {
            node.call(move |node| node.apply_retention(at))
                .await
                .expect("node")
                .expect("retention")
        }
    };
    assert_eq!(
        retention(now + 8 * day_ms).await,
        0,
        "the hub does not hold it yet"
    );
    till.state.syncer().sync_now().await.expect("sync");
    assert_eq!(retention(now + day_ms).await, 0, "not old enough");
    assert_eq!(
        retention(now + 8 * day_ms).await,
        1,
        "closed, old and on the hub"
    );
    let gone = till.get(&format!("/v1/session/{closed}/receipts")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let kept = till.get(&format!("/v1/session/{open}/receipts")).await;
    assert_eq!(
        kept.status,
        StatusCode::OK,
        "the open session is never dropped"
    );
    assert_eq!(kept.body["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_during_syncs_all_reach_the_hub_exactly_once() {
    let (hub, url) = start_hub(till_node::time::now_ms()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Arc::new(open_till(dir.path(), &url, HUB_TOKEN));
    let session = till.open_session(0).await;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let till = Arc::clone(&till);
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                let reply = till
                    .receipt(&format!("w{worker}-{i}"), &sale(100 + i, "cash"))
                    .await;
                assert_eq!(reply.status, StatusCode::OK);
            }
        }));
    }
    let syncs = {
        let till = Arc::clone(&till);
        tokio::spawn(async move {
            for _ in 0..5 {
                let _ = till.state.syncer().sync_now().await;
            }
        })
    };
    for task in tasks {
        task.await.expect("sales");
    }
    syncs.await.expect("syncs");
    till.state.syncer().sync_now().await.expect("final sync");
    assert_eq!(hub_receipts(&hub, &session), 60);
    let status = till.get("/v1/kkt/buffer/status").await;
    assert_eq!(status.body["current_queued"], 0);
    let metrics = till.get("/metrics").await;
    let text = metrics.body.as_str().expect("text");
    assert!(text.contains("kkt_receipts_synced_total 60"), "{text}");
}
