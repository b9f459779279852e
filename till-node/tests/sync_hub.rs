//! The till's sync loop against a real HTTP hub: sync-engine's server half (`MemoryReplica`)
//! behind its axum adapter on a loopback port, at `/api/v1/sync` like the hub crate.
//!
//! Checks: receipts reach the hub exactly once and the buffer empties; the store's catalogue
//! arrives, is persisted and survives a restart; sync states persist, so after a restart only
//! the new sale is unsynced; a catalogue HLC far in the future is refused by the clock and
//! counted and shown in health, without stopping the sync; a wrong hub token shows as a hub
//! error, not a crash; an idle poll is one round trip with no changes; the sync loop delivers
//! buffered receipts to a hub that comes back with no operator action, and a sale wakes it
//! whatever the link state.

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
    /// Every (request, reply) served, in order.
    exchanges: Mutex<Vec<(Envelope, Envelope)>>,
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
        let reply = replica.serve(&peer.peer, &request)?.reply;
        self.exchanges
            .lock()
            .map_err(|_| SyncServiceError::Internal("poisoned".into()))?
            .push((request, reply.clone()));
        Ok(reply)
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    start_hub_on(listener, price_hlc_ms)
}

/// A loopback port where nothing listens yet (bound, read, released).
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

/// Starts the hub on `listener`.
fn start_hub_on(listener: tokio::net::TcpListener, price_hlc_ms: u64) -> (Arc<FakeHub>, String) {
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
        exchanges: Mutex::new(Vec::new()),
    });
    let router: Router = Router::new()
        .nest("/api", sync_router(Arc::clone(&hub)))
        .layer(middleware::from_fn(authenticate));
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (hub, url)
}

/// Changes carried by one envelope entry's sync message.
fn change_count(entry: &sync_engine::DocEntry) -> usize {
    entry.message.as_deref().map_or(0, |bytes| {
        automerge::sync::Message::decode(bytes)
            .expect("a valid sync message")
            .changes
            .len()
    })
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
            .call(|node| node.core().replica().get(&catalogue_id()).is_some())
            .await
            .expect("node");
        assert!(has_catalogue);
        let metrics = till.get("/metrics").await;
        let text = metrics.body.as_str().expect("text");
        assert!(text.contains("kkt_receipts_synced_total 3"), "{text}");
        assert!(text.contains("kkt_hlc_remote_rejected_total 0"), "{text}");

        // An idle sync is one round trip that carries no changes either way.
        hub.exchanges.lock().expect("hub").clear();
        let idle = till.state.syncer().sync_now().await.expect("idle sync");
        assert_eq!(idle.receipts_synced, 0);
        assert_eq!(idle.docs_changed, 0);
        assert_eq!(idle.rounds, 1, "an idle poll is one round trip");
        let exchanges = hub.exchanges.lock().expect("hub").clone();
        assert_eq!(exchanges.len(), 1, "the hub saw one request");
        let (request, reply) = &exchanges[0];
        assert!(
            !request.entries.is_empty(),
            "the poll lists the till's documents"
        );
        for entry in request.entries.iter().chain(reply.entries.iter()) {
            assert_eq!(change_count(entry), 0, "{} carries changes", entry.doc);
        }
        session
    };

    // Restart: the catalogue and the sync states were persisted.
    let till = open_till(dir.path(), &url, HUB_TOKEN);
    let (has_catalogue, unsynced) = till
        .state
        .node()
        .call(|node| {
            (
                node.core().replica().get(&catalogue_id()).is_some(),
                node.core().replica().unsynced_total().receipts,
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
    // Support sees it in health: the clock is degraded, with the count and the offending value.
    assert_eq!(health.body["status"], "degraded", "{}", health.body);
    let clock = &health.body["components"]["clock"];
    assert_eq!(clock["status"], "degraded", "{clock}");
    assert_eq!(clock["remote_rejected"], 1, "{clock}");
    let offending = clock["last_rejected"]["hlc"].as_str().expect("the value");
    let parsed: Hlc = offending.parse().expect("an HLC");
    assert_eq!(parsed.physical_ms, two_hours_ahead);
    assert_eq!(clock["last_rejected"]["doc"], "catalogue/S1");
    let reply = till.receipt("k", &sale(1000, "cash")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Waits (up to `limit`) until `done` holds; panics naming `what` otherwise.
async fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn hub_receipt_count(hub: &FakeHub, session: &str) -> usize {
    let replica = hub.replica.lock().expect("hub");
    let id = DocId::new(format!("session/S1/T1/{session}")).expect("doc");
    // Between the rounds of a session the hub may hold the document still empty.
    replica.doc(&id).map_or(0, |doc| {
        crdt_model::session::read(doc).map_or(0, |view| view.receipts.len())
    })
}

/// A till syncing with `url` at the given heartbeat and probe, its sync loop running; stop it
/// with the returned sender.
fn running_till(
    dir: &std::path::Path,
    url: &str,
    heartbeat_secs: u64,
    probe_secs: u64,
) -> (
    Till,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let mut config = till_config(dir, url, HUB_TOKEN);
    config.heartbeat_secs = heartbeat_secs;
    config.probe_secs = probe_secs;
    let state = open_state(&config).expect("till opens");
    let till = Till {
        router: app(state.clone()),
        state,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sync_loop = tokio::spawn(Arc::clone(till.state.syncer()).run_loop(stopped));
    (till, stop, sync_loop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_receipts_reach_a_returning_hub_with_no_operator_action() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    // A heartbeat of an hour: only the probe (1 s while not online) can bring the sales over.
    let (till, stop, sync_loop) = running_till(dir.path(), &url, 3600, 1);
    let session = till.open_session(0).await;
    for i in 0..200 {
        let reply = till
            .receipt(&format!("offline-{i}"), &sale(100 + i, "cash"))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let syncer = Arc::clone(till.state.syncer());
    wait_for(
        "a failed attempt",
        std::time::Duration::from_secs(30),
        || syncer.link().consecutive_failures > 0,
    )
    .await;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the hub takes the port back");
    let (hub, _) = start_hub_on(listener, till_node::time::now_ms());
    let back = std::time::Instant::now();
    wait_for(
        "200 receipts on the hub",
        std::time::Duration::from_secs(60),
        || hub_receipt_count(&hub, &session) == 200,
    )
    .await;
    // Informational only (timed assertions belong to the bench, not to tests).
    eprintln!(
        "200 receipts on the hub {:?} after it came back",
        back.elapsed()
    );
    let _ = stop.send(true);
    sync_loop.await.expect("the loop stops");
    let status = till.get("/v1/kkt/buffer/status").await;
    assert_eq!(status.body["current_queued"], 0, "{}", status.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_wakes_the_sync_loop_whatever_the_link_state() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    // Neither the heartbeat nor the probe fires within the test: only a sale can start a sync.
    let (till, stop, sync_loop) = running_till(dir.path(), &url, 3600, 3600);
    let session = till.open_session(0).await;
    let syncer = Arc::clone(till.state.syncer());
    wait_for(
        "the first attempt to fail",
        std::time::Duration::from_secs(30),
        || syncer.link().consecutive_failures > 0,
    )
    .await;
    assert_eq!(syncer.link().state, till_node::link::LinkState::Offline);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the hub takes the port back");
    let (hub, _) = start_hub_on(listener, till_node::time::now_ms());
    let reply = till.receipt("wake", &sale(1000, "cash")).await;
    assert_eq!(reply.status, StatusCode::OK);
    wait_for(
        "the sale on the hub",
        std::time::Duration::from_secs(30),
        || hub_receipt_count(&hub, &session) == 1,
    )
    .await;
    let _ = stop.send(true);
    sync_loop.await.expect("the loop stops");
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
            node.call(move |node| node.retention().apply(at))
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
