//! Node-level tests of the durable path: a failed commit leaves memory equal to the store,
//! the clock never goes backwards across restarts, the per-install actor survives a reload,
//! oversized documents are reported after a sync round.

use automerge::ReadDoc;
use crdt_model::receipt::ReceiptDraft;
use crdt_model::{Kopecks, StoreId, TillId};

use super::*;
use crate::pos::logins::Logins;
use crate::pos::tokens::PosLogin;
use crate::store::{Store, WriteBatch, WriteOp};
use sync_engine::DocId;

mod page_sync;

fn config() -> NodeConfig {
    NodeConfig {
        store: StoreId::new("S1").expect("store"),
        till: TillId::new("T1").expect("till"),
        device: None,
        retention_days: 7,
        buffer_capacity: 200,
        fiscal_enabled: false,
    }
}

fn open(dir: &std::path::Path) -> Node {
    let store = Store::open(dir).expect("store");
    Node::open(
        store,
        config(),
        Metrics::new().expect("metrics"),
        Logins::default(),
    )
    .expect("node")
}

/// One local edit of `id` made durable through the core's one commit path.
fn commit_change(
    node: &mut Node,
    id: &DocId,
    message: &str,
    side: WriteBatch,
) -> Result<(), NodeError> {
    let core = &mut node.core;
    let mut commit = core.begin("test");
    commit.side = side;
    core.seal(&mut commit, id, message.to_owned(), 1)?;
    core.commit(commit)
}

fn draft(price: i64) -> ReceiptDraft {
    serde_json::from_value(serde_json::json!({
        "pos_id": "T1", "type": "sale",
        "items": [{"name": "Линза", "qty": 2, "price": price, "vat": "vat22"}],
        "payments": [{"method": "card", "amount": price * 2}],
    }))
    .expect("draft")
}

fn idem(key: &str) -> IdempotencyRequest {
    IdempotencyRequest {
        key: key.to_owned(),
        request_sha256: [1; 32],
    }
}

#[test]
fn a_failed_commit_rebuilds_the_document_from_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("Иванова".into(), Kopecks(0), None)
        .expect("open");
    node.shifts()
        .sell(draft(1000), Some(&idem("a")))
        .expect("sale");
    let id = node.core.open_shift().cloned().expect("session");
    let heads_before = node.core.replica.get_mut(&id).expect("doc").doc.get_heads();

    // Append a receipt in memory, then make the store refuse the batch (an invalid write is
    // refused before any SQL runs, exactly like a failed fsync from the node's point of view).
    let receipt_count = |node: &Node| {
        let doc = &node.core.replica.get(&id).expect("doc").doc;
        crdt_model::session::read(doc).expect("read").receipts.len()
    };
    {
        let loaded = node.core.replica.get_mut(&id).expect("doc");
        let view = crdt_model::session::read(&loaded.doc).expect("read");
        let mut receipt = view.receipts[0].clone();
        receipt.id = crdt_model::ReceiptId::new(uuid::Uuid::new_v4());
        crdt_model::session::append_receipt(&mut loaded.doc, &receipt).expect("append");
    }
    let mut bad = WriteBatch::new();
    bad.push(WriteOp::PutMeta {
        key: String::new(),
        value: Vec::new(),
    });
    let error = commit_change(&mut node, &id, "receipt:x", bad).expect_err("refused");
    assert!(matches!(error, NodeError::Store(_)), "{error}");
    assert_eq!(receipt_count(&node), 1, "the unsaved receipt is gone");
    let loaded = node.core.replica.get_mut(&id).expect("doc");
    assert_eq!(loaded.doc.get_heads(), heads_before);
    assert_eq!(loaded.saved_heads, heads_before);
    assert_eq!(loaded.doc.get_actor(), &node.core.identity.actor);

    // And the node still sells.
    node.shifts()
        .sell(draft(500), Some(&idem("b")))
        .expect("sale after failure");
    assert_eq!(receipt_count(&node), 2);
}

#[test]
fn a_broken_node_refuses_writes_but_replays_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("Иванова".into(), Kopecks(0), None)
        .expect("open");
    let first = node
        .shifts()
        .sell(draft(1000), Some(&idem("a")))
        .expect("sale");
    node.mark_broken("disk gone");
    assert!(matches!(
        node.shifts().sell(draft(1000), Some(&idem("b"))),
        Err(NodeError::Unavailable(_))
    ));
    let replay = node
        .shifts()
        .sell(draft(1000), Some(&idem("a")))
        .expect("replay");
    assert!(replay.replayed);
    assert_eq!(replay.body, first.body);
}

#[test]
fn clock_and_actor_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = {
        let mut node = open(dir.path());
        node.shifts()
            .open("Иванова".into(), Kopecks(0), None)
            .expect("open");
        for _ in 0..3 {
            node.shifts().sell(draft(100), None).expect("sale");
        }
        node.core.clock.last().cloned().expect("clock used")
    };
    let mut node = open(dir.path());
    let next = node.core.clock.now(0);
    assert!(
        next > last,
        "{next} must follow {last} even with the wall clock at 0"
    );
    let id = node.core.open_shift().cloned().expect("session reopened");
    let actor = node.core.identity.actor.clone();
    let doc = &mut node.core.replica.get_mut(&id).expect("doc").doc;
    assert_eq!(doc.get_actor(), &actor);
    let stored_device = node.core.store.meta_string(DEVICE_META_KEY).expect("meta");
    let expected = format!(
        "S1/T1/{}",
        stored_device.expect("a device name was persisted")
    );
    assert_eq!(doc.get_actor().to_bytes(), expected.as_bytes());
    let actors: std::collections::BTreeSet<Vec<u8>> = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.actor_id().to_bytes().to_vec())
        .collect();
    assert_eq!(actors.len(), 1, "one actor across restarts");
    assert!(doc.length(automerge::ROOT) > 0);
}

#[test]
fn unsynced_counts_follow_sales_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut node = open(dir.path());
        node.shifts()
            .open("Иванова".into(), Kopecks(0), None)
            .expect("open");
        for _ in 0..4 {
            node.shifts().sell(draft(100), None).expect("sale");
        }
        let total = node.core.replica.unsynced_total();
        assert_eq!(total.receipts, 4);
        assert_eq!(total.changes, 5);
    }
    let node = open(dir.path());
    let total = node.core.replica.unsynced_total();
    assert_eq!(
        total.receipts, 4,
        "recounted from the stored commit messages"
    );
    assert!(total.oldest_receipt_ms.is_some());
}

/// A hub for the sync-loop tests: sync-engine's `MemoryReplica` behind its axum adapter on a
/// loopback port, at `/api/v1/sync`, taking every caller for till S1/T1.
mod fake_hub {
    use std::sync::{Arc, Mutex};

    use axum::extract::Request;
    use axum::middleware::{self, Next};
    use axum::response::Response;
    use crdt_model::ids::hub_actor;
    use sync_engine::http_server::{sync_router, AuthenticatedPeer, SyncService, SyncServiceError};
    use sync_engine::{AllowAll, Envelope, MemoryReplica, PeerId};

    struct Hub(Mutex<MemoryReplica>);

    impl SyncService for Hub {
        async fn sync(
            &self,
            peer: AuthenticatedPeer,
            request: Envelope,
        ) -> Result<Envelope, SyncServiceError> {
            let mut replica = self
                .0
                .lock()
                .map_err(|_| SyncServiceError::Internal("poisoned".into()))?;
            Ok(replica.serve(&peer.peer, &request)?.reply)
        }
    }

    async fn as_till(mut request: Request, next: Next) -> Response {
        request.extensions_mut().insert(AuthenticatedPeer {
            peer: PeerId::new("till:S1/T1").expect("peer"),
        });
        next.run(request).await
    }

    /// Starts the hub; returns its base URL.
    pub async fn start() -> String {
        let replica = MemoryReplica::new(
            PeerId::new("hub").expect("peer"),
            hub_actor("hub").expect("actor"),
            Arc::new(AllowAll),
        );
        let router = axum::Router::new()
            .nest("/api", sync_router(Arc::new(Hub(Mutex::new(replica)))))
            .layer(middleware::from_fn(as_till));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_too_large_to_sync_is_reported_after_the_session() {
    use automerge::transaction::Transactable;
    use rand::RngCore;
    use std::time::Duration;

    use crate::sync_loop::{SyncTiming, Syncer};

    let hub = fake_hub::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new().expect("metrics");
    let store = Store::open(dir.path()).expect("store");
    let mut node = Node::open(store, config(), metrics.clone(), Logins::default()).expect("node");
    node.shifts()
        .open("Иванова".into(), Kopecks(0), None)
        .expect("open");
    node.shifts().sell(draft(1000), None).expect("sale");
    let timing = SyncTiming {
        heartbeat: Duration::from_secs(30),
        probe: Duration::from_secs(1),
    };
    let handle = NodeHandle::new(node);
    let syncer =
        Syncer::new(handle.clone(), &hub, "hub-token", timing, metrics.clone()).expect("syncer");
    let report = syncer.sync_now().await.expect("a normal session");
    assert_eq!(report.receipts_synced, 1);
    assert!(syncer.oversized_docs().is_empty());
    assert_eq!(metrics.sync_oversized_docs.get(), 0);

    // Incompressible bytes over the sync message limit: this change can never be sent.
    let id = handle
        .call(|node| {
            let id = node.core.open_shift().cloned().expect("session");
            let mut blob = vec![0u8; sync_engine::MAX_MESSAGE_BYTES + 1024 * 1024];
            rand::rng().fill_bytes(&mut blob);
            node.core
                .replica
                .get_mut(&id)
                .expect("doc")
                .doc
                .put(
                    automerge::ROOT,
                    "attachment",
                    automerge::ScalarValue::Bytes(blob),
                )
                .expect("put");
            commit_change(node, &id, "attachment", WriteBatch::new()).expect("stored");
            id
        })
        .await
        .expect("node");
    syncer
        .sync_now()
        .await
        .expect("the session ends, without the document");
    assert_eq!(syncer.oversized_docs(), vec![id]);
    assert_eq!(metrics.sync_oversized_docs.get(), 1);
    let text = metrics.render().expect("render");
    assert!(text.contains("kkt_sync_oversized_docs 1"), "{text}");
}

#[test]
fn logins_are_durable_and_answered_from_the_cache_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open_with = |logins: &Logins| {
        let store = Store::open(dir.path()).expect("store");
        Node::open(
            store,
            config(),
            Metrics::new().expect("metrics"),
            logins.clone(),
        )
        .expect("node")
    };
    let login = PosLogin {
        login: "ivanova".into(),
        role: "cashier".into(),
        device: "tab1".into(),
        peer: "pos:S1/T1/tab1".into(),
        expires_at_ms: 10_000,
    };
    {
        let logins = Logins::default();
        let mut node = open_with(&logins);
        assert!(
            logins.staff_members().expect("staff").is_none(),
            "no staff document yet"
        );
        node.record_login("token-a", &login).expect("login");
        node.record_login("token-b", &login).expect("login");
        assert_eq!(logins.login("token-a", 1_000), Some(login.clone()));
        assert_eq!(logins.login("token-a", 10_000), None, "expired");
        node.end_login("token-b").expect("logout");
        assert_eq!(logins.login("token-b", 1_000), None);
    }
    let logins = Logins::default();
    let mut node = open_with(&logins);
    assert_eq!(
        logins.login("token-a", 1_000),
        Some(login),
        "survives a restart"
    );
    assert_eq!(logins.login("token-b", 1_000), None, "the logout too");
    assert_eq!(node.retention().purge_logins(20_000).expect("purge"), 1);
    assert_eq!(
        logins.login("token-a", 1_000),
        None,
        "purged from the cache as well"
    );
}

#[test]
fn the_login_cache_follows_every_commit_of_the_staff_document() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use crdt_model::staff::{self, StaffMember, StaffRole};

    let dir = tempfile::tempdir().expect("tempdir");
    let logins = Logins::default();
    let store = Store::open(dir.path()).expect("store");
    let mut node = Node::open(
        store,
        config(),
        Metrics::new().expect("metrics"),
        logins.clone(),
    )
    .expect("node");
    let member = |login: &str| StaffMember {
        login: login.to_owned(),
        role: StaffRole::Cashier,
        secret_hash: argon2::Argon2::default()
            .hash_password(
                b"2580",
                &SaltString::encode_b64(format!("salt-for-{login}").as_bytes()).expect("salt"),
            )
            .expect("hash")
            .to_string(),
        active: true,
        updated_at: crdt_model::hlc::Hlc::new(1_700_000_000_000, 0, "hub/hub").expect("hlc"),
    };
    let id = DocId::new(node.core.staff_doc()).expect("staff id");
    let mut loaded = replica::LoadedDoc::empty(&node.core.identity.actor);
    staff::init(&mut loaded.doc, &node.core.identity.store).expect("init");
    staff::put_member(&mut loaded.doc, &member("ivanova")).expect("put");
    node.core.replica.insert(id.clone(), loaded);
    commit_change(&mut node, &id, "staff", WriteBatch::new()).expect("stored");
    let names = |logins: &Logins| -> Vec<String> {
        let members = logins.staff_members().expect("staff").expect("received");
        members.iter().map(|m| m.login.clone()).collect()
    };
    assert_eq!(names(&logins), ["ivanova"]);

    let doc = &mut node.core.replica.get_mut(&id).expect("doc").doc;
    staff::put_member(doc, &member("petrova")).expect("put");
    commit_change(&mut node, &id, "staff", WriteBatch::new()).expect("stored");
    assert_eq!(names(&logins).len(), 2);
}
