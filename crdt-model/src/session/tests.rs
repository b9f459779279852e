//! Session tests: idempotent appends, closing, totals and cash balance, read-back
//! validation, concurrent writers of one till, save/load.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc, ROOT};
use uuid::Uuid;

use super::*;
use crate::error::SessionError;
use crate::ids::{MovementId, ReceiptId};
use crate::money::Quantity;
use crate::receipt::{ItemDraft, PaymentDraft, PaymentMethod, ReceiptDraft, ReceiptKind};
use crate::vat::VatRate;

pub(super) fn hlc(physical_ms: u64) -> Hlc {
    Hlc::new(physical_ms, 0, "T1").expect("valid hlc")
}

fn header() -> SessionHeader {
    SessionHeader {
        session_id: SessionId::new(Uuid::from_u128(7)),
        store: StoreId::new("S1").expect("valid store"),
        till: TillId::new("T1").expect("valid till"),
        cashier: "Иванова".to_owned(),
        opened_at: hlc(1_000),
        opening_cash: Kopecks(50_000),
    }
}

pub(super) fn open_doc() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"S1/T1/daemon".to_vec()));
    open(&mut doc, &header()).expect("open");
    doc.commit();
    doc
}

pub(super) fn receipt(
    n: u128,
    kind: ReceiptKind,
    at: u64,
    payments: &[(PaymentMethod, i64)],
) -> Receipt {
    let total: i64 = payments.iter().map(|(_, amount)| amount).sum();
    let draft = ReceiptDraft {
        pos_id: "POS-1".to_owned(),
        kind,
        items: vec![ItemDraft {
            sku: Some("RB3025".to_owned()),
            name: "Оправа".to_owned(),
            qty: Quantity::ONE,
            price: Kopecks(total),
            vat: VatRate::NoVat,
            discount: None,
            payment_method: None,
            payment_object: None,
        }],
        payments: payments
            .iter()
            .map(|&(method, amount)| PaymentDraft {
                method,
                amount: Kopecks(amount),
            })
            .collect(),
        discount: None,
        buyer_contact: None,
        refund_of: (kind == ReceiptKind::Refund).then(|| ReceiptId::new(Uuid::from_u128(1))),
    };
    let h = header();
    Receipt::from_draft(
        draft,
        ReceiptId::new(Uuid::from_u128(n)),
        h.store,
        h.till,
        h.session_id,
        hlc(at),
    )
    .expect("valid receipt")
}

fn movement(n: u128, kind: MovementKind, amount: i64, at: u64) -> CashMovement {
    CashMovement {
        id: MovementId::new(Uuid::from_u128(n)),
        kind,
        amount: Kopecks(amount),
        hlc: hlc(at),
        reason: "размен".to_owned(),
    }
}

#[test]
fn open_and_read_back() {
    let doc = open_doc();
    let view = read(&doc).expect("readable");
    assert_eq!(view.header, header());
    assert!(view.receipts.is_empty() && view.movements.is_empty() && !view.is_closed());
    assert_eq!(view.cash_balance(), Kopecks(50_000));
    assert_eq!(
        header().doc_key().to_doc_id(),
        "session/S1/T1/00000000-0000-0000-0000-000000000007"
    );
}

#[test]
fn open_refuses_bad_headers_and_used_documents() {
    let mut doc = open_doc();
    assert!(matches!(
        open(&mut doc, &header()),
        Err(SessionError::NotEmpty)
    ));
    let mut fresh = AutoCommit::new();
    let mut bad = header();
    bad.cashier = String::new();
    assert!(matches!(
        open(&mut fresh, &bad),
        Err(SessionError::InvalidField {
            field: "cashier",
            ..
        })
    ));
    bad = header();
    bad.opening_cash = Kopecks(-1);
    assert!(matches!(
        open(&mut fresh, &bad),
        Err(SessionError::InvalidField {
            field: "opening_cash",
            ..
        })
    ));
    assert!(matches!(read(&fresh), Err(SessionError::NotASession)));
}

#[test]
fn append_is_idempotent_and_refuses_conflicts() {
    let mut doc = open_doc();
    let sale = receipt(
        10,
        ReceiptKind::Sale,
        2_000,
        &[(PaymentMethod::Cash, 10_000)],
    );
    assert_eq!(append_receipt(&mut doc, &sale).ok(), Some(Appended::New));
    assert_eq!(
        append_receipt(&mut doc, &sale).ok(),
        Some(Appended::AlreadyPresent)
    );
    let mut changed = sale.clone();
    changed.pos_id = "POS-2".to_owned();
    assert!(matches!(
        append_receipt(&mut doc, &changed),
        Err(SessionError::ReceiptConflict { .. })
    ));
    assert_eq!(receipt_ids(&doc).ok(), Some(vec![sale.id]));
    assert_eq!(get_receipt(&doc, sale.id).ok().flatten(), Some(sale));
    assert_eq!(
        get_receipt(&doc, ReceiptId::new(Uuid::from_u128(99)))
            .ok()
            .flatten(),
        None
    );
}

#[test]
fn append_refuses_foreign_and_invalid_receipts() {
    let mut doc = open_doc();
    let mut foreign = receipt(11, ReceiptKind::Sale, 2_000, &[(PaymentMethod::Cash, 100)]);
    foreign.session = SessionId::new(Uuid::from_u128(8));
    assert!(matches!(
        append_receipt(&mut doc, &foreign),
        Err(SessionError::WrongSession { .. })
    ));
    let mut other_till = receipt(12, ReceiptKind::Sale, 2_000, &[(PaymentMethod::Cash, 100)]);
    other_till.till = TillId::new("T2").expect("valid till");
    assert!(matches!(
        append_receipt(&mut doc, &other_till),
        Err(SessionError::WrongTill { .. })
    ));
    let mut tampered = receipt(13, ReceiptKind::Sale, 2_000, &[(PaymentMethod::Cash, 100)]);
    tampered.total = Kopecks(99);
    assert!(matches!(
        append_receipt(&mut doc, &tampered),
        Err(SessionError::InvalidReceipt { .. })
    ));
    assert_eq!(receipt_ids(&doc).ok(), Some(vec![]));
}

#[test]
fn totals_and_cash_balance() {
    let mut doc = open_doc();
    let entries = [
        receipt(
            20,
            ReceiptKind::Sale,
            2_000,
            &[(PaymentMethod::Cash, 30_000), (PaymentMethod::Card, 20_000)],
        ),
        receipt(
            21,
            ReceiptKind::Sale,
            3_000,
            &[(PaymentMethod::Prepayment, 5_000)],
        ),
        receipt(
            22,
            ReceiptKind::Refund,
            4_000,
            &[(PaymentMethod::Cash, 10_000)],
        ),
        receipt(
            23,
            ReceiptKind::Correction,
            5_000,
            &[(PaymentMethod::Card, 1_000)],
        ),
    ];
    // Appended out of order: reads come back in HLC order.
    for entry in entries.iter().rev() {
        append_receipt(&mut doc, entry).expect("append");
    }
    append_movement(
        &mut doc,
        &movement(30, MovementKind::CashIn, 100_000, 2_500),
    )
    .expect("cash in");
    append_movement(
        &mut doc,
        &movement(31, MovementKind::CashOut, 40_000, 6_000),
    )
    .expect("cash out");
    let view = read(&doc).expect("readable");
    let order: Vec<ReceiptId> = view.receipts.iter().map(|r| r.id).collect();
    assert_eq!(order, entries.iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(
        view.totals(),
        SessionTotals {
            receipts: 4,
            sales_total: Kopecks(55_000),
            refunds_total: Kopecks(10_000),
            corrections_total: Kopecks(1_000),
            net_total: Kopecks(46_000),
            payments: PaymentTotals {
                cash: Kopecks(20_000),
                card: Kopecks(21_000),
                prepayment: Kopecks(5_000),
            },
            cash_in: Kopecks(100_000),
            cash_out: Kopecks(40_000),
        }
    );
    // 500 opening + 300 cash sale − 100 cash refund + 1000 in − 400 out.
    assert_eq!(view.cash_balance(), Kopecks(130_000));
}

#[test]
fn cash_out_beyond_the_drawer_is_refused() {
    let mut doc = open_doc();
    let too_much = movement(40, MovementKind::CashOut, 50_001, 2_000);
    assert!(matches!(
        append_movement(&mut doc, &too_much),
        Err(SessionError::InsufficientCash {
            available: Kopecks(50_000),
            ..
        })
    ));
    let ok = movement(41, MovementKind::CashOut, 50_000, 2_000);
    assert_eq!(append_movement(&mut doc, &ok).ok(), Some(Appended::New));
    assert_eq!(
        append_movement(&mut doc, &ok).ok(),
        Some(Appended::AlreadyPresent)
    );
    let mut different = ok;
    different.reason = "инкассация".to_owned();
    assert!(matches!(
        append_movement(&mut doc, &different),
        Err(SessionError::MovementConflict { .. })
    ));
    let zero = movement(42, MovementKind::CashIn, 0, 2_000);
    assert!(matches!(
        append_movement(&mut doc, &zero),
        Err(SessionError::InvalidField {
            field: "amount",
            ..
        })
    ));
}

#[test]
fn closed_session_refuses_new_entries_but_accepts_retries() {
    let mut doc = open_doc();
    let sale = receipt(
        50,
        ReceiptKind::Sale,
        2_000,
        &[(PaymentMethod::Cash, 10_000)],
    );
    append_receipt(&mut doc, &sale).expect("append");
    let closed = close(&mut doc, &hlc(9_000), "Петрова").expect("close");
    doc.commit();
    assert_eq!(closed.totals.receipts, 1);
    assert_eq!(closed.totals.sales_total, Kopecks(10_000));
    assert_eq!(closed.cash_balance, Kopecks(60_000));
    let view = read(&doc).expect("readable");
    assert_eq!(view.close.as_ref(), Some(&closed));
    assert!(view.verify_close().is_ok());

    let late = receipt(51, ReceiptKind::Sale, 9_500, &[(PaymentMethod::Cash, 1)]);
    assert!(matches!(
        append_receipt(&mut doc, &late),
        Err(SessionError::Closed)
    ));
    assert_eq!(
        append_receipt(&mut doc, &sale).ok(),
        Some(Appended::AlreadyPresent)
    );
    let cash_in = movement(52, MovementKind::CashIn, 1, 9_600);
    assert!(matches!(
        append_movement(&mut doc, &cash_in),
        Err(SessionError::Closed)
    ));
    assert!(matches!(
        close(&mut doc, &hlc(9_700), "Петрова"),
        Err(SessionError::Closed)
    ));
}

#[test]
fn close_before_open_is_refused() {
    let mut doc = open_doc();
    assert!(matches!(
        close(&mut doc, &hlc(500), "Петрова"),
        Err(SessionError::InvalidField {
            field: "closed_at",
            ..
        })
    ));
}

#[test]
fn save_and_load_round_trip() {
    let mut doc = open_doc();
    append_receipt(
        &mut doc,
        &receipt(
            60,
            ReceiptKind::Sale,
            2_000,
            &[(PaymentMethod::Card, 123_456)],
        ),
    )
    .expect("append");
    append_movement(&mut doc, &movement(61, MovementKind::CashIn, 1_000, 2_100)).expect("movement");
    close(&mut doc, &hlc(3_000), "Иванова").expect("close");
    doc.commit();
    let loaded = AutoCommit::load(&doc.save()).expect("loads");
    assert_eq!(read(&loaded).ok(), read(&doc).ok());
    assert!(read(&loaded).expect("readable").is_closed());
}

#[test]
fn corrupt_entries_are_reported_on_read() {
    let mut doc = open_doc();
    let sale = receipt(70, ReceiptKind::Sale, 2_000, &[(PaymentMethod::Cash, 100)]);
    append_receipt(&mut doc, &sale).expect("append");
    let receipts = match doc.get(ROOT, "receipts") {
        Ok(Some((_, obj))) => obj,
        other => panic!("no receipts map: {other:?}"),
    };
    // A receipt whose money no longer adds up, written behind the model's back.
    let mut tampered = sale.clone();
    tampered.lines[0].sum = Kopecks(50);
    let json = serde_json::to_string(&tampered).expect("serialises");
    doc.put(&receipts, sale.id.to_string(), json).expect("put");
    assert!(matches!(read(&doc), Err(SessionError::Corrupt { .. })));
    assert!(matches!(
        get_receipt(&doc, sale.id),
        Err(SessionError::Corrupt { .. })
    ));

    let mut doc = open_doc();
    let receipts = match doc.get(ROOT, "receipts") {
        Ok(Some((_, obj))) => obj,
        other => panic!("no receipts map: {other:?}"),
    };
    doc.put(&receipts, "not-a-uuid", "{}").expect("put");
    assert!(matches!(read(&doc), Err(SessionError::Corrupt { .. })));
    assert!(matches!(
        receipt_ids(&doc),
        Err(SessionError::Corrupt { .. })
    ));
}

#[test]
fn daemon_and_browser_append_concurrently() {
    let mut daemon = open_doc();
    let mut browser = daemon
        .fork()
        .with_actor(ActorId::from(b"S1/T1/browser".to_vec()));
    append_receipt(
        &mut daemon,
        &receipt(80, ReceiptKind::Sale, 2_000, &[(PaymentMethod::Cash, 100)]),
    )
    .expect("append");
    append_receipt(
        &mut browser,
        &receipt(81, ReceiptKind::Sale, 2_001, &[(PaymentMethod::Card, 200)]),
    )
    .expect("append");
    // The daemon closes without having seen the browser's sale.
    close(&mut daemon, &hlc(3_000), "Иванова").expect("close");
    daemon.merge(&mut browser).expect("merge");
    browser.merge(&mut daemon).expect("merge");
    let view = read(&daemon).expect("readable");
    assert_eq!(view.receipts.len(), 2);
    assert_eq!(read(&browser).ok(), Some(view.clone()));
    assert_eq!(view.close.as_ref().map(|c| c.totals.receipts), Some(1));
    assert!(matches!(
        view.verify_close(),
        Err(SessionError::Corrupt { .. })
    ));
}

#[test]
fn unknown_schema_is_refused() {
    let mut doc = open_doc();
    doc.put(ROOT, "schema", 2_i64).expect("put");
    assert!(matches!(read(&doc), Err(SessionError::Corrupt { .. })));
}
