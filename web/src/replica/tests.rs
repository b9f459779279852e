//! The browser replica against an in-memory "till" (`sync_engine::MemoryReplica` serving
//! through the real `Server` and the binary envelope codec): a sale made offline reaches the
//! till exactly once, across reloads and lost replies, and the fiscal stamps come back.

use std::collections::BTreeMap;
use std::sync::Arc;

use crdt_model::catalogue::Product;
use crdt_model::ids::{actor_id, hub_actor};
use crdt_model::receipt::{ItemDraft, PaymentDraft, PaymentMethod, ReceiptKind};
use crdt_model::session::{FiscalNumbers, FiscalRecord, FiscalTarget, OfdState};
use crdt_model::{Kopecks, Quantity, SessionId, VatRate};
use sync_engine::{Access, MemoryReplica, PolicyTable, SyncError};

use super::*;

mod prune;

const NOW: u64 = 1_769_850_000_000;

/// IndexedDB as the browser keeps it: documents, states and meta, written per transaction.
#[derive(Debug, Default, Clone)]
struct FakeIdb {
    docs: BTreeMap<String, Vec<u8>>,
    states: BTreeMap<String, Vec<u8>>,
    meta: ReplicaMeta,
}

impl FakeIdb {
    fn put_sale(&mut self, write: &SaleWrite) {
        self.docs
            .insert(write.doc.to_string(), write.doc_bytes.clone());
        self.meta = write.meta.clone();
    }

    fn put_sync(&mut self, write: &SyncWrite) {
        for (id, bytes) in &write.docs {
            self.docs.insert(id.to_string(), bytes.clone());
        }
        for (id, bytes) in &write.states {
            self.states.insert(id.to_string(), bytes.clone());
        }
        self.meta = write.meta.clone();
    }

    /// Drops documents with their sync states (one transaction in the browser).
    fn forget(&mut self, ids: &[DocId]) {
        for id in ids {
            self.docs.remove(id.as_str());
            self.states.remove(id.as_str());
        }
    }

    fn stored(&self) -> StoredReplica {
        StoredReplica {
            docs: self.docs.clone().into_iter().collect(),
            states: self.states.clone().into_iter().collect(),
            meta: self.meta.clone(),
        }
    }
}

fn identity() -> Identity {
    Identity::new(
        "S1",
        "T1",
        "w0123456789ab",
        "pos:S1/T1/w0123456789ab",
        "till:S1/T1",
    )
    .expect("identity")
}

fn browser_peer() -> PeerId {
    PeerId::new("pos:S1/T1/w0123456789ab").expect("peer")
}

fn store() -> StoreId {
    StoreId::new("S1").expect("store")
}

fn till_id() -> TillId {
    TillId::new("T1").expect("till")
}

/// The till: serves the browser its store's catalogue and its sessions.
fn till_with_actor(actor: ActorId) -> MemoryReplica {
    let policy = PolicyTable::new()
        .grant(&browser_peer(), "catalogue/S1", Access::ReadWrite)
        .grant(&browser_peer(), "session/S1/T1/", Access::ReadWrite);
    MemoryReplica::new(
        PeerId::new("till:S1/T1").expect("peer"),
        actor,
        Arc::new(policy),
    )
}

fn till() -> MemoryReplica {
    till_with_actor(actor_id(&store(), &till_id(), "node").expect("actor"))
}

fn frame() -> Product {
    Product {
        sku: "FR-001".to_owned(),
        ean: Some("4601234567890".to_owned()),
        name: "Оправа".to_owned(),
        price: Kopecks(150_000),
        cost: None,
        vat: VatRate::NoVat,
        unit: "шт".to_owned(),
        category: None,
        brand: None,
    }
}

fn catalogue_id() -> DocId {
    DocId::new("catalogue/S1").expect("doc")
}

/// The till makes its catalogue and opens a session; returns the session's document id.
fn till_opens(till: &mut MemoryReplica, session: u128) -> DocId {
    let hlc = Hlc::new(NOW - 60_000, 0, "S1/T1/node").expect("hlc");
    till.change(&catalogue_id(), NOW, |doc| {
        catalogue::init(doc, &store(), &[frame()], &hlc).expect("catalogue");
        Ok(())
    })
    .expect("catalogue change");
    till_opens_session(till, session)
}

/// The till opens a session; returns its document id.
fn till_opens_session(till: &mut MemoryReplica, session: u128) -> DocId {
    let hlc = Hlc::new(NOW - 60_000 + session as u64, 0, "S1/T1/node").expect("hlc");
    let header = SessionHeader {
        session_id: SessionId::new(Uuid::from_u128(session)),
        store: store(),
        till: till_id(),
        cashier: "Иванова".to_owned(),
        opened_at: hlc,
        opening_cash: Kopecks(500_000),
    };
    let id = DocId::new(header.doc_key().to_doc_id()).expect("doc");
    till.change(&id, NOW, |doc| {
        session::open(doc, &header).expect("open");
        Ok(())
    })
    .expect("session change");
    id
}

/// Runs a whole sync round through the codec, persisting every reply.
fn sync(browser: &mut Replica, till: &mut MemoryReplica, idb: &mut FakeIdb) -> Vec<ReceiptId> {
    let mut round = browser.start_sync();
    let mut sent = Vec::new();
    while let Some(request) = browser.next_request(&mut round).expect("request") {
        let request = Envelope::decode(&request.encode().expect("encode")).expect("decode");
        let reply = till.serve(&browser_peer(), &request).expect("served").reply;
        let reply = Envelope::decode(&reply.encode().expect("encode")).expect("decode");
        let write = browser.apply_reply(&mut round, &reply).expect("applied");
        assert!(write.failed.is_empty(), "{:?}", write.failed);
        idb.put_sync(&write);
        sent.extend(write.newly_sent);
    }
    sent
}

fn sale_draft(qty_milli: i64) -> ReceiptDraft {
    let amount = 150 * qty_milli;
    ReceiptDraft {
        pos_id: "w0123456789ab".to_owned(),
        kind: ReceiptKind::Sale,
        items: vec![ItemDraft {
            sku: Some("FR-001".to_owned()),
            name: "Оправа".to_owned(),
            qty: Quantity::from_milli(qty_milli),
            price: Kopecks(150_000),
            vat: VatRate::NoVat,
            discount: None,
            payment_method: None,
            payment_object: None,
        }],
        payments: vec![PaymentDraft {
            method: PaymentMethod::Cash,
            amount: Kopecks(amount),
        }],
        discount: None,
        buyer_contact: None,
        refund_of: None,
    }
}

fn receipt_id(n: u128) -> ReceiptId {
    ReceiptId::new(Uuid::from_u128(0xabc0 + n))
}

fn till_receipts(till: &MemoryReplica, doc: &DocId) -> Vec<Receipt> {
    session::read(till.doc(doc).expect("till holds the session"))
        .expect("readable")
        .receipts
}

fn fiscal(fd: u32, status: OfdState) -> FiscalRecord {
    FiscalRecord {
        numbers: FiscalNumbers {
            fn_number: "9999078900001234".to_owned(),
            fd_number: fd,
            fiscal_sign: 1000 + fd,
            shift_number: 1,
            receipt_number: fd,
            datetime_unix: NOW / 1000,
        },
        ofd_status: status,
        ofd_acknowledged_at_ms: (status == OfdState::Acknowledged).then_some(NOW + 5_000),
    }
}

fn fresh_browser(till: &mut MemoryReplica, idb: &mut FakeIdb) -> Replica {
    let mut browser = Replica::load(identity(), idb.stored()).expect("load");
    sync(&mut browser, till, idb);
    browser
}

#[test]
fn the_first_sync_brings_the_catalogue_and_the_open_session() {
    let mut till = till();
    let session_doc = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let browser = fresh_browser(&mut till, &mut idb);
    assert_eq!(browser.products(), vec![frame()]);
    let open = browser.open_session().expect("open session");
    assert_eq!(open.doc, session_doc);
    assert_eq!(open.header.cashier, "Иванова");
    // Persisted: a reload without the till still sells.
    assert!(idb.docs.contains_key("catalogue/S1"));
    assert!(idb.states.contains_key(session_doc.as_str()));
    let reloaded = Replica::load(identity(), idb.stored()).expect("load");
    assert_eq!(reloaded.products(), vec![frame()]);
    assert!(reloaded.open_session().is_some());
}

#[test]
fn offline_sales_reach_the_till_exactly_once_and_fiscal_stamps_come_back() {
    let mut till = till();
    let session_doc = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);

    // The till is down: three sales, each durable before anything else.
    for n in 1..=3 {
        let write = browser
            .sell(sale_draft(1000), receipt_id(n), NOW + n as u64)
            .expect("sold");
        idb.put_sale(&write);
        assert_eq!(
            browser.receipt_state(receipt_id(n)),
            Some(ReceiptState::Saved)
        );
    }
    assert_eq!(browser.unsent().len(), 3);

    // The page reloads before the till is back.
    let mut browser = Replica::load(identity(), idb.stored()).expect("reload");
    assert_eq!(browser.unsent().len(), 3);
    assert_eq!(
        browser.receipt_state(receipt_id(2)),
        Some(ReceiptState::Saved)
    );

    let sent = sync(&mut browser, &mut till, &mut idb);
    assert_eq!(sent.len(), 3);
    assert!(browser.unsent().is_empty());
    assert!(idb.meta.unsent.is_empty());
    let on_till = till_receipts(&till, &session_doc);
    assert_eq!(on_till.len(), 3);
    for n in 1..=3 {
        assert_eq!(
            browser.receipt_state(receipt_id(n)),
            Some(ReceiptState::Sent)
        );
        assert!(on_till.iter().any(|receipt| receipt.id == receipt_id(n)));
    }
    // Another round, and another reload: still once each.
    sync(&mut browser, &mut till, &mut idb);
    let mut browser = Replica::load(identity(), idb.stored()).expect("reload");
    assert!(sync(&mut browser, &mut till, &mut idb).is_empty());
    assert_eq!(till_receipts(&till, &session_doc).len(), 3);

    // The till's register fiscalises them, the OFD acknowledges the first.
    till.change(&session_doc, NOW, |doc| {
        for n in 1..=3u32 {
            let target = FiscalTarget::Receipt(receipt_id(u128::from(n)));
            session::record_fiscal(doc, target, &fiscal(n, OfdState::Pending)).expect("fiscal");
        }
        Ok(())
    })
    .expect("fiscal change");
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(
        browser.receipt_state(receipt_id(1)),
        Some(ReceiptState::Fiscalised)
    );
    till.change(&session_doc, NOW, |doc| {
        let target = FiscalTarget::Receipt(receipt_id(1));
        session::record_fiscal(doc, target, &fiscal(1, OfdState::Acknowledged)).expect("ack");
        Ok(())
    })
    .expect("ack change");
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(
        browser.receipt_state(receipt_id(1)),
        Some(ReceiptState::Acknowledged)
    );
    assert_eq!(
        browser.receipt_state(receipt_id(2)),
        Some(ReceiptState::Fiscalised)
    );
    // The stamps are durable here too.
    let reloaded = Replica::load(identity(), idb.stored()).expect("reload");
    assert_eq!(
        reloaded.receipt_state(receipt_id(1)),
        Some(ReceiptState::Acknowledged)
    );
    assert_eq!(reloaded.receipt_state(receipt_id(99)), None);
}

#[test]
fn a_lost_reply_only_resends_the_same_receipt() {
    let mut till = till();
    let session_doc = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);
    let write = browser
        .sell(sale_draft(2000), receipt_id(1), NOW)
        .expect("sold");
    idb.put_sale(&write);

    // The request carrying the receipt reaches the till, its reply is lost, the tab closes.
    let mut round = browser.start_sync();
    loop {
        let request = browser
            .next_request(&mut round)
            .expect("request")
            .expect("the receipt is still to send");
        let reply = till.serve(&browser_peer(), &request).expect("served").reply;
        if !till_receipts(&till, &session_doc).is_empty() {
            break;
        }
        let write = browser.apply_reply(&mut round, &reply).expect("applied");
        idb.put_sync(&write);
    }
    assert_eq!(till_receipts(&till, &session_doc).len(), 1);

    let mut browser = Replica::load(identity(), idb.stored()).expect("reload");
    assert_eq!(
        browser.receipt_state(receipt_id(1)),
        Some(ReceiptState::Saved)
    );
    let sent = sync(&mut browser, &mut till, &mut idb);
    assert_eq!(sent, vec![receipt_id(1)]);
    assert_eq!(till_receipts(&till, &session_doc).len(), 1);
    // The next sale continues the actor's sequence (no fork after the reload).
    let write = browser
        .sell(sale_draft(1000), receipt_id(2), NOW + 10)
        .expect("sold");
    idb.put_sale(&write);
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(till_receipts(&till, &session_doc).len(), 2);
}

#[test]
fn sales_need_an_open_session_and_a_valid_unique_receipt() {
    let mut till = till();
    let mut idb = FakeIdb::default();
    let mut empty = fresh_browser(&mut till, &mut idb);
    assert!(matches!(
        empty.sell(sale_draft(1000), receipt_id(1), NOW),
        Err(ReplicaError::NoOpenSession)
    ));

    let session_doc = till_opens(&mut till, 1);
    let mut browser = fresh_browser(&mut till, &mut idb);
    let mut bad = sale_draft(1000);
    bad.payments[0].amount = Kopecks(1);
    assert!(matches!(
        browser.sell(bad, receipt_id(1), NOW),
        Err(ReplicaError::Receipt(_))
    ));
    assert!(browser.unsent().is_empty());
    browser
        .sell(sale_draft(1000), receipt_id(1), NOW)
        .expect("sold");
    // The same id with other content is refused and changes nothing.
    let before = browser.session(&session_doc).expect("session");
    assert!(matches!(
        browser.sell(sale_draft(2000), receipt_id(1), NOW + 1),
        Err(ReplicaError::Session(_))
    ));
    assert_eq!(browser.session(&session_doc), Some(before));
    assert_eq!(browser.unsent().len(), 1);
}

#[test]
fn a_session_closed_on_the_till_is_no_longer_open_here() {
    let mut till = till();
    let session_doc = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);
    let closed_at = Hlc::new(NOW + 1000, 0, "S1/T1/node").expect("hlc");
    till.change(&session_doc, NOW, |doc| {
        session::close(doc, &closed_at, "Иванова").expect("close");
        Ok(())
    })
    .expect("close change");
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(browser.open_session(), None);
    assert!(matches!(
        browser.sell(sale_draft(1000), receipt_id(1), NOW),
        Err(ReplicaError::NoOpenSession)
    ));
    // A new shift arrives with the next sync.
    let next = till_opens_session(&mut till, 2);
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(browser.open_session().map(|open| open.doc), Some(next));
}

#[test]
fn a_forged_author_refuses_the_whole_reply() {
    // A "till" whose session changes are authored by a hub actor.
    let mut forger = till_with_actor(hub_actor("hub").expect("actor"));
    till_opens(&mut forger, 1);
    let mut browser = Replica::load(identity(), StoredReplica::default()).expect("load");
    let mut round = browser.start_sync();
    let request = browser
        .next_request(&mut round)
        .expect("request")
        .expect("first request");
    let reply = forger
        .serve(&browser_peer(), &request)
        .expect("served")
        .reply;
    match browser.apply_reply(&mut round, &reply) {
        Err(SyncError::Forbidden { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Nothing was taken, not even the (legitimately authored by a hub) catalogue.
    assert!(browser.products().is_empty());
    assert!(browser.open_session().is_none());
}

#[test]
fn stored_entries_out_of_scope_or_corrupt_are_skipped() {
    let stored = StoredReplica {
        docs: vec![
            ("catalogue/S2".to_owned(), vec![]),
            ("session/S1/T1/not-a-uuid".to_owned(), vec![]),
            ("catalogue/S1".to_owned(), vec![1, 2, 3]),
        ],
        states: vec![("catalogue/S1".to_owned(), vec![9])],
        meta: ReplicaMeta::default(),
    };
    let replica = Replica::load(identity(), stored).expect("load");
    assert_eq!(replica.skipped().len(), 3);
    assert!(replica.products().is_empty());
}

#[test]
fn identities_and_device_ids_are_validated() {
    assert!(Identity::new("S1", "T1", "bad device", "pos:x", "till:S1/T1").is_err());
    assert!(Identity::new("S 1", "T1", "w0", "pos:x", "till:S1/T1").is_err());
    assert!(Identity::new("S1", "T1", "w0", "pos x", "till:S1/T1").is_err());
    let long = "a".repeat(32);
    assert!(Identity::new(&long, &long, &long, "pos:x", "till:x").is_err());
    let id = identity();
    assert_eq!(id.clock_node(), "S1/T1/w0123456789ab");
    assert_eq!(id.actor().to_bytes(), b"S1/T1/w0123456789ab");
    let device = new_device_id();
    assert!(is_device_id(&device), "{device}");
    assert_ne!(device, new_device_id());
    assert!(!is_device_id("w0123456789aB"));
    assert!(!is_device_id("x0123456789ab"));
    assert!(!is_device_id("w0123"));
}

#[test]
fn the_hlc_high_water_mark_survives_a_reload() {
    let mut till = till();
    till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);
    let first = browser
        .sell(sale_draft(1000), receipt_id(1), NOW + 5_000)
        .expect("sold");
    idb.put_sale(&first);
    let mut browser = Replica::load(identity(), idb.stored()).expect("reload");
    // The wall clock went back: the next receipt still sorts after the first.
    let second = browser
        .sell(sale_draft(1000), receipt_id(2), NOW)
        .expect("sold");
    assert!(second.receipt.hlc > first.receipt.hlc);
}
