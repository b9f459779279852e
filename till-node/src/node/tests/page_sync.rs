//! Node-level tests of the page's sync round: receipts sold in the browser replica reach the
//! till and get exactly one fiscal job each, however often the page syncs; a receipt the till
//! already holds never gets a second one; a round with a forged author or a broken receipt
//! stores nothing.

use std::collections::BTreeMap;

use automerge::transaction::CommitOptions;
use automerge::AutoCommit;
use crdt_model::hlc::HlcClock;
use crdt_model::ids::actor_id;
use crdt_model::receipt::{Receipt, ReceiptDraft};
use crdt_model::{session, Kopecks, ReceiptId, SessionId, StoreId, TillId};
use sync_engine::{AllowAll, DocId, PeerId, SyncRound};
use uuid::Uuid;

use crate::node::*;
use crate::pos::tokens::PosLogin;

fn open(dir: &std::path::Path) -> Node {
    let store = Store::open(dir).expect("store");
    let config = NodeConfig {
        store: StoreId::new("S1").expect("store"),
        till: TillId::new("T1").expect("till"),
        device: None,
        retention_days: 7,
        buffer_capacity: 200,
        fiscal_enabled: true,
    };
    Node::open(
        store,
        config,
        Metrics::new().expect("metrics"),
        Logins::default(),
    )
    .expect("node")
}

/// A browser replica driven by hand: its documents and its persisted sync states.
struct Page {
    device: String,
    peer: PeerId,
    docs: BTreeMap<DocId, AutoCommit>,
    states: BTreeMap<DocId, Vec<u8>>,
    clock: HlcClock,
}

impl Page {
    fn new(device: &str) -> Page {
        Page {
            device: device.to_owned(),
            peer: PeerId::new(format!("pos:S1/T1/{device}")).expect("peer"),
            docs: BTreeMap::new(),
            states: BTreeMap::new(),
            clock: HlcClock::new(&format!("S1/T1/{device}"), 600_000).expect("clock"),
        }
    }

    fn login(&self) -> PosLogin {
        PosLogin {
            login: "ivanova".into(),
            role: "cashier".into(),
            device: self.device.clone(),
            peer: self.peer.to_string(),
            expires_at_ms: u64::MAX,
        }
    }

    /// Runs a whole sync round with the node, as the page's loop does.
    fn sync(&mut self, node: &mut Node) -> Result<usize, NodeError> {
        let till = node.core.identity().peer.clone();
        let mut round = SyncRound::new(self.peer.clone(), till, self.states.clone());
        let mut new_receipts = 0;
        let login = self.login();
        while let Some(request) = round.next_request(&mut self.docs, &AllowAll)? {
            let answered = node.page_sync().round(&login, &request)?;
            new_receipts += answered.new_receipts;
            let outcome = round.apply_reply(&mut self.docs, &AllowAll, &answered.reply)?;
            for done in outcome.docs {
                self.states.insert(done.doc, done.state);
            }
        }
        Ok(new_receipts)
    }

    fn session_doc(&mut self) -> (DocId, &mut AutoCommit) {
        let (id, doc) = self
            .docs
            .iter_mut()
            .find(|(id, _)| id.as_str().starts_with("session/"))
            .expect("the page holds the open session");
        (id.clone(), doc)
    }

    /// Sells one receipt into the page's replica, as the page does offline.
    fn sell(&mut self, price: i64) -> ReceiptId {
        let actor = actor_id(
            &"S1".parse().expect("store"),
            &"T1".parse().expect("till"),
            &self.device,
        )
        .expect("actor");
        let hlc = self.clock.now(crate::time::now_ms());
        let (id, doc) = self.session_doc();
        let session_id = session_of(&id);
        doc.set_actor(actor);
        let receipt_id = ReceiptId::new(Uuid::new_v4());
        let receipt = Receipt::from_draft(
            draft(price),
            receipt_id,
            "S1".parse().expect("store"),
            "T1".parse().expect("till"),
            session_id,
            hlc,
        )
        .expect("receipt");
        session::append_receipt(doc, &receipt).expect("append");
        doc.commit_with(
            CommitOptions::default().with_message(crdt_model::commit_tag::receipt(receipt_id)),
        );
        receipt_id
    }
}

/// The session id of a session document id.
fn session_of(id: &DocId) -> SessionId {
    match crdt_model::ids::DocKey::parse(id.as_str()) {
        Ok(crdt_model::ids::DocKey::Session { session, .. }) => session,
        other => panic!("not a session: {other:?}"),
    }
}

fn draft(price: i64) -> ReceiptDraft {
    serde_json::from_value(serde_json::json!({
        "pos_id": "web", "type": "sale",
        "items": [{"name": "Оправа", "qty": 1, "price": price, "vat": "vat22"}],
        "payments": [{"method": "cash", "amount": price}],
    }))
    .expect("draft")
}

fn queued(node: &Node) -> u64 {
    node.core()
        .store()
        .outbox_stats()
        .expect("stats")
        .unacknowledged()
}

#[test]
fn receipts_sold_in_the_page_get_one_fiscal_job_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("ivanova".into(), Kopecks(0), None)
        .expect("open");
    let mut page = Page::new("wpage1");
    assert_eq!(page.sync(&mut node).expect("first sync"), 0);
    assert_eq!(page.docs.len(), 1, "the page receives the open session");

    let sold: Vec<ReceiptId> = (0..3).map(|i| page.sell(1_000 + i)).collect();
    assert_eq!(page.sync(&mut node).expect("push"), 3);
    assert_eq!(queued(&node), 3);
    // Syncing again (and again after a restart of the node) queues nothing more.
    assert_eq!(page.sync(&mut node).expect("idle"), 0);
    drop(node);
    let mut node = open(dir.path());
    page.states.clear(); // the page lost its sync states: it resends everything
    assert_eq!(page.sync(&mut node).expect("resend"), 0);
    assert_eq!(queued(&node), 3);
    let id = node.core.open_shift().cloned().expect("session");
    let held = session::receipt_ids(&node.core.replica().get(&id).expect("doc").doc).expect("ids");
    for receipt in sold {
        assert!(held.contains(&receipt));
    }
}

#[test]
fn a_receipt_sold_through_the_api_is_not_queued_twice_when_the_page_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("ivanova".into(), Kopecks(0), None)
        .expect("open");
    node.shifts().sell(draft(500), None).expect("api sale");
    assert_eq!(queued(&node), 1);
    let mut page = Page::new("wpage2");
    page.sync(&mut node).expect("sync");
    page.sell(700);
    assert_eq!(page.sync(&mut node).expect("push"), 1);
    assert_eq!(queued(&node), 2);
}

#[test]
fn a_change_by_another_tills_device_refuses_the_round_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("ivanova".into(), Kopecks(0), None)
        .expect("open");
    let mut page = Page::new("wpage3");
    page.sync(&mut node).expect("sync");
    let forged = actor_id(
        &"S1".parse().expect("store"),
        &"T2".parse().expect("till"),
        "wx",
    )
    .expect("actor");
    let (_, doc) = page.session_doc();
    doc.set_actor(forged);
    // Sell with the forged actor (sell() resets the actor, so append by hand).
    let hlc = page.clock.now(crate::time::now_ms());
    let (id, doc) = page.session_doc();
    let session_id: SessionId = session_of(&id);
    let receipt = Receipt::from_draft(
        draft(900),
        ReceiptId::new(Uuid::new_v4()),
        "S1".parse().expect("store"),
        "T1".parse().expect("till"),
        session_id,
        hlc,
    )
    .expect("receipt");
    session::append_receipt(doc, &receipt).expect("append");
    doc.commit();
    let error = page.sync(&mut node).expect_err("forged author refused");
    assert!(matches!(error, NodeError::Sync(_)), "{error}");
    assert_eq!(queued(&node), 0);
    let held = session::receipt_ids(&node.core.replica().get(&id).expect("doc").doc).expect("ids");
    assert!(held.is_empty(), "nothing of the refused round is held");
    drop(node);
    let node = open(dir.path());
    let held = session::receipt_ids(&node.core.replica().get(&id).expect("doc").doc).expect("ids");
    assert!(held.is_empty(), "nothing of the refused round was stored");
}

#[test]
fn another_page_cannot_use_this_pages_peer_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("ivanova".into(), Kopecks(0), None)
        .expect("open");
    let mut page = Page::new("wpage4");
    let till = node.core.identity().peer.clone();
    let mut round = SyncRound::new(page.peer.clone(), till, BTreeMap::new());
    let request = round
        .next_request(&mut page.docs, &AllowAll)
        .expect("request")
        .expect("some");
    let mut other = page.login();
    other.peer = "pos:S1/T1/wother".into();
    other.device = "wother".into();
    let error = node
        .page_sync()
        .round(&other, &request)
        .expect_err("sender mismatch");
    assert!(matches!(error, NodeError::Sync(_)), "{error}");
}

#[test]
fn the_page_may_not_rewrite_a_receipt_the_till_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("ivanova".into(), Kopecks(0), None)
        .expect("open");
    let mut page = Page::new("wpage5");
    page.sync(&mut node).expect("sync");
    let sold = page.sell(1_000);
    page.sync(&mut node).expect("push");
    // The page overwrites its receipt with a cheaper one under the same id.
    let (id, doc) = page.session_doc();
    let session_id: SessionId = session_of(&id);
    let hlc = crdt_model::hlc::Hlc::new(crate::time::now_ms(), 9, "S1/T1/wpage5").expect("hlc");
    let cheaper = Receipt::from_draft(
        draft(1),
        sold,
        "S1".parse().expect("store"),
        "T1".parse().expect("till"),
        session_id,
        hlc,
    )
    .expect("receipt");
    let receipts = match automerge::ReadDoc::get(doc, automerge::ROOT, "receipts") {
        Ok(Some((automerge::Value::Object(_), obj))) => obj,
        other => panic!("no receipts map: {other:?}"),
    };
    automerge::transaction::Transactable::put(
        doc,
        &receipts,
        sold.to_string(),
        serde_json::to_string(&cheaper).expect("json"),
    )
    .expect("put");
    doc.commit();
    let error = page.sync(&mut node).expect_err("rewrite refused");
    assert!(matches!(error, NodeError::PageChange(_)), "{error}");
    let held = node.shifts().receipts(session_id).expect("receipts");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].total, Kopecks(1_000), "the till kept the original");
}

#[test]
fn a_session_the_till_does_not_hold_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = open(dir.path());
    node.shifts()
        .open("ivanova".into(), Kopecks(0), None)
        .expect("open");
    let mut page = Page::new("wpage6");
    page.sync(&mut node).expect("sync");
    // A session of this till the till no longer holds (dropped after retention).
    let old = DocId::new(format!("session/S1/T1/{}", Uuid::now_v7())).expect("id");
    let mut doc = AutoCommit::new();
    let header = crdt_model::session::SessionHeader {
        session_id: session_of(&old),
        store: "S1".parse().expect("store"),
        till: "T1".parse().expect("till"),
        cashier: "ivanova".into(),
        opened_at: crdt_model::hlc::Hlc::new(crate::time::now_ms(), 0, "S1/T1/wpage6")
            .expect("hlc"),
        opening_cash: Kopecks(0),
    };
    doc.set_actor(
        actor_id(
            &"S1".parse().expect("s"),
            &"T1".parse().expect("t"),
            "wpage6",
        )
        .expect("a"),
    );
    session::open(&mut doc, &header).expect("open");
    doc.commit();
    page.docs.insert(old.clone(), doc);
    let error = page.sync(&mut node).expect_err("refused");
    assert!(matches!(error, NodeError::Sync(_)), "{error}");
    assert!(node.core.replica().get(&old).is_none());
}
