//! Fiscal-result tests: round trip, status only moving forward, refusals, writes after
//! close, documents older than the `fiscal` map, and concurrent writers converging on
//! the furthest status.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use uuid::Uuid;

use crate::error::SessionError;
use crate::ids::ReceiptId;
use crate::receipt::{PaymentMethod, ReceiptKind};
use crate::session::tests::{hlc, open_doc, receipt};
use crate::session::{
    append_receipt, close, read, read_fiscal, record_fiscal, FiscalNumbers, FiscalRecord,
    FiscalTarget, OfdState,
};

fn fiscal(fd_number: u32, status: OfdState, acknowledged_at_ms: Option<u64>) -> FiscalRecord {
    FiscalRecord {
        numbers: FiscalNumbers {
            fn_number: "9999078900012345".to_owned(),
            fd_number,
            fiscal_sign: 3_522_315_041,
            shift_number: 12,
            receipt_number: 7,
            datetime_unix: 1_767_000_000,
        },
        ofd_status: status,
        ofd_acknowledged_at_ms: acknowledged_at_ms,
    }
}

fn doc_with_sale(n: u128) -> (AutoCommit, FiscalTarget) {
    let mut doc = open_doc();
    let sale = receipt(n, ReceiptKind::Sale, 2_000, &[(PaymentMethod::Cash, 100)]);
    append_receipt(&mut doc, &sale).expect("append");
    doc.commit();
    (doc, FiscalTarget::Receipt(sale.id))
}

#[test]
fn fiscal_results_round_trip_and_advance() {
    let (mut doc, target) = doc_with_sale(90);
    assert!(read_fiscal(&doc).expect("readable").is_empty());
    record_fiscal(&mut doc, target, &fiscal(5, OfdState::Pending, None)).expect("pending");
    let acknowledged = fiscal(5, OfdState::Acknowledged, Some(9_000));
    record_fiscal(&mut doc, target, &acknowledged).expect("acknowledged");
    record_fiscal(
        &mut doc,
        FiscalTarget::ShiftClose,
        &fiscal(6, OfdState::Pending, None),
    )
    .expect("z");
    doc.commit();
    let expected = BTreeMap::from([
        (target.key(), acknowledged.clone()),
        ("z".to_owned(), fiscal(6, OfdState::Pending, None)),
    ]);
    assert_eq!(read_fiscal(&doc).ok(), Some(expected.clone()));
    assert_eq!(read(&doc).map(|view| view.fiscal).ok(), Some(expected));
    let loaded = AutoCommit::load(&doc.save()).expect("loads");
    assert_eq!(read(&loaded).ok(), read(&doc).ok());
    // The same state again changes nothing; a later acknowledgement keeps the first time.
    let heads = doc.get_heads();
    record_fiscal(&mut doc, target, &acknowledged).expect("idempotent");
    let later = fiscal(5, OfdState::Acknowledged, Some(9_500));
    record_fiscal(&mut doc, target, &later).expect("idempotent");
    doc.commit();
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(
        read_fiscal(&doc).expect("readable").get(&target.key()),
        Some(&acknowledged)
    );
    // The receipt body is never rewritten.
    assert_eq!(read(&doc).expect("readable").receipts.len(), 1);
}

#[test]
fn fiscal_refuses_backwards_unknown_and_invalid_records() {
    let (mut doc, target) = doc_with_sale(91);
    let field_of = |result: Result<(), SessionError>| match result {
        Err(SessionError::InvalidField { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    };
    record_fiscal(
        &mut doc,
        target,
        &fiscal(5, OfdState::Acknowledged, Some(9_000)),
    )
    .expect("acknowledged");
    let pending = record_fiscal(&mut doc, target, &fiscal(5, OfdState::Pending, None));
    assert_eq!(field_of(pending), "ofd_status");
    let dead = record_fiscal(&mut doc, target, &fiscal(5, OfdState::DeadLetter, None));
    assert_eq!(field_of(dead), "ofd_status");
    let other_document = fiscal(8, OfdState::Acknowledged, Some(9_000));
    assert_eq!(
        field_of(record_fiscal(&mut doc, target, &other_document)),
        "fd_number"
    );

    let unknown = ReceiptId::new(Uuid::from_u128(999));
    let refused = record_fiscal(
        &mut doc,
        FiscalTarget::Receipt(unknown),
        &fiscal(5, OfdState::Pending, None),
    );
    match refused {
        Err(error @ SessionError::InvalidReceipt { id, .. }) if id == unknown => {
            assert!(error.to_string().contains(&unknown.to_string()));
        }
        other => panic!("expected an unknown receipt, got {other:?}"),
    }
    let z = FiscalTarget::ShiftClose;
    for fn_number in ["", "12a4", "12345678901234567", "１２"] {
        let mut bad = fiscal(5, OfdState::Pending, None);
        bad.numbers.fn_number = fn_number.to_owned();
        assert_eq!(field_of(record_fiscal(&mut doc, z, &bad)), "fn_number");
    }
    let zero = record_fiscal(&mut doc, z, &fiscal(0, OfdState::Pending, None));
    assert_eq!(field_of(zero), "fd_number");
    let no_time = record_fiscal(&mut doc, z, &fiscal(5, OfdState::Acknowledged, None));
    assert_eq!(field_of(no_time), "ofd_acknowledged_at_ms");
    let early_time = record_fiscal(&mut doc, z, &fiscal(5, OfdState::Pending, Some(1)));
    assert_eq!(field_of(early_time), "ofd_acknowledged_at_ms");
    let mut far = fiscal(5, OfdState::Pending, None);
    far.numbers.datetime_unix = u64::MAX;
    assert_eq!(field_of(record_fiscal(&mut doc, z, &far)), "datetime_unix");
    assert_eq!(read_fiscal(&doc).expect("readable").len(), 1);
}

#[test]
fn fiscal_results_are_accepted_after_close() {
    let (mut doc, target) = doc_with_sale(92);
    record_fiscal(&mut doc, target, &fiscal(5, OfdState::Pending, None)).expect("pending");
    close(&mut doc, &hlc(9_000), "Петрова").expect("close");
    doc.commit();
    record_fiscal(
        &mut doc,
        target,
        &fiscal(5, OfdState::Acknowledged, Some(20_000)),
    )
    .expect("late acknowledgement");
    record_fiscal(
        &mut doc,
        FiscalTarget::ShiftClose,
        &fiscal(6, OfdState::DeadLetter, None),
    )
    .expect("z report");
    let view = read(&doc).expect("readable");
    assert!(view.is_closed() && view.verify_close().is_ok());
    assert_eq!(view.fiscal.len(), 2);
    assert_eq!(
        view.fiscal.get("z").map(|r| r.ofd_status),
        Some(OfdState::DeadLetter)
    );
}

#[test]
fn document_without_fiscal_map_reads_empty_and_gains_one() {
    let (mut doc, target) = doc_with_sale(93);
    // Documents opened before the map existed have no `fiscal` key at all.
    doc.delete(ROOT, "fiscal").expect("delete");
    doc.commit();
    assert!(read(&doc).expect("readable").fiscal.is_empty());
    let mut browser = doc
        .fork()
        .with_actor(ActorId::from(b"S1/T1/browser".to_vec()));
    let sale = receipt(94, ReceiptKind::Sale, 2_100, &[(PaymentMethod::Card, 300)]);
    append_receipt(&mut browser, &sale).expect("append");
    // Both replicas make the map concurrently; the merge keeps both results.
    record_fiscal(&mut doc, target, &fiscal(5, OfdState::Pending, None)).expect("daemon");
    let other = FiscalTarget::Receipt(sale.id);
    record_fiscal(&mut browser, other, &fiscal(6, OfdState::Pending, None)).expect("browser");
    doc.merge(&mut browser).expect("merge");
    let merged = read_fiscal(&doc).expect("readable");
    assert_eq!(merged.len(), 2);
    let ack = fiscal(6, OfdState::Acknowledged, Some(7_000));
    record_fiscal(&mut doc, other, &ack).expect("acknowledged");
    record_fiscal(&mut doc, target, &fiscal(5, OfdState::Pending, None)).expect("same state");
    assert_eq!(
        read_fiscal(&doc).expect("readable").get(&other.key()),
        Some(&ack)
    );
    browser.merge(&mut doc).expect("merge");
    assert_eq!(read(&browser).ok(), read(&doc).ok());
}

#[test]
fn concurrent_fiscal_writes_converge_to_the_furthest_status() {
    for shared_map in [false, true] {
        let (mut daemon, target) = doc_with_sale(95);
        if shared_map {
            record_fiscal(&mut daemon, target, &fiscal(5, OfdState::Pending, None)).expect("put");
            daemon.commit();
        }
        let mut browser = daemon
            .fork()
            .with_actor(ActorId::from(b"S1/T1/browser".to_vec()));
        let acknowledged = fiscal(5, OfdState::Acknowledged, Some(9_000));
        record_fiscal(&mut daemon, target, &acknowledged).expect("acknowledged");
        record_fiscal(&mut browser, target, &fiscal(5, OfdState::DeadLetter, None))
            .expect("dead letter");
        let mut third = browser
            .fork()
            .with_actor(ActorId::from(b"S1/T1/other".to_vec()));
        record_fiscal(
            &mut third,
            target,
            &fiscal(5, OfdState::Acknowledged, Some(8_000)),
        )
        .expect("acknowledged earlier");
        daemon.merge(&mut browser).expect("merge");
        browser.merge(&mut daemon).expect("merge");
        let merged = read_fiscal(&daemon).expect("read never fails after a merge");
        assert_eq!(
            merged.get(&target.key()),
            Some(&acknowledged),
            "shared {shared_map}"
        );
        assert_eq!(read_fiscal(&browser).ok(), Some(merged));
        // A later pending write is refused; the earliest acknowledgement time wins.
        let pending = record_fiscal(&mut browser, target, &fiscal(5, OfdState::Pending, None));
        assert!(matches!(pending, Err(SessionError::InvalidField { .. })));
        daemon.merge(&mut third).expect("merge");
        let merged = read_fiscal(&daemon).expect("readable");
        let record = merged.get(&target.key()).expect("present");
        assert!(record.validate().is_ok());
        assert_eq!(record.ofd_acknowledged_at_ms, Some(8_000));
    }
}

#[test]
fn corrupt_fiscal_entries_are_reported_on_read() {
    let (mut doc, target) = doc_with_sale(96);
    record_fiscal(&mut doc, target, &fiscal(5, OfdState::Pending, None)).expect("pending");
    let fiscal_map = match doc.get(ROOT, "fiscal") {
        Ok(Some((_, obj))) => obj,
        other => panic!("no fiscal map: {other:?}"),
    };
    let entry = match doc.get(&fiscal_map, target.key()) {
        Ok(Some((_, obj))) => obj,
        other => panic!("no entry: {other:?}"),
    };
    doc.put(&entry, "ofd_status", "lost").expect("put");
    assert!(matches!(read(&doc), Err(SessionError::Corrupt { .. })));
    doc.put(&entry, "ofd_status", "pending").expect("put");
    doc.put(&entry, "ofd_acknowledged_at_ms", 5_i64)
        .expect("put");
    assert!(matches!(
        read_fiscal(&doc),
        Err(SessionError::Corrupt { .. })
    ));
    doc.delete(&entry, "ofd_acknowledged_at_ms")
        .expect("delete");
    assert!(read_fiscal(&doc).is_ok());
    let stranger = ReceiptId::new(Uuid::from_u128(998)).to_string();
    doc.put(&fiscal_map, stranger, "x").expect("put");
    assert!(matches!(
        read_fiscal(&doc),
        Err(SessionError::Corrupt { .. })
    ));
}

/// The scalars of an entry, by name, as stored.
fn stored_entry(doc: &AutoCommit, key: &str) -> BTreeMap<String, ScalarValue> {
    let Ok(Some((_, fiscal_map))) = doc.get(ROOT, "fiscal") else {
        panic!("no fiscal map");
    };
    let Ok(Some((_, entry))) = doc.get(&fiscal_map, key) else {
        panic!("no entry {key}");
    };
    doc.keys(&entry)
        .map(|name| match doc.get(&entry, name.as_str()) {
            Ok(Some((Value::Scalar(value), _))) => (name, value.into_owned()),
            other => panic!("{name} is not a scalar: {other:?}"),
        })
        .collect()
}

#[test]
fn an_entry_is_stored_field_by_field_as_before() {
    let (mut doc, target) = doc_with_sale(97);
    let acknowledged = fiscal(5, OfdState::Acknowledged, Some(9_000));
    record_fiscal(&mut doc, target, &acknowledged).expect("acknowledged");
    let expected = BTreeMap::from([
        (
            "fn_number".to_owned(),
            ScalarValue::Str("9999078900012345".into()),
        ),
        ("fd_number".to_owned(), ScalarValue::Int(5)),
        ("fiscal_sign".to_owned(), ScalarValue::Int(3_522_315_041)),
        ("shift_number".to_owned(), ScalarValue::Int(12)),
        ("receipt_number".to_owned(), ScalarValue::Int(7)),
        ("datetime_unix".to_owned(), ScalarValue::Int(1_767_000_000)),
        (
            "ofd_status".to_owned(),
            ScalarValue::Str("acknowledged".into()),
        ),
        ("ofd_acknowledged_at_ms".to_owned(), ScalarValue::Int(9_000)),
    ]);
    assert_eq!(stored_entry(&doc, &target.key()), expected);
}

#[test]
fn an_entry_written_in_the_stored_layout_reads_back() {
    let (mut doc, target) = doc_with_sale(98);
    // Written scalar by scalar, as a till of an earlier build wrote it.
    let fiscal_map = doc
        .put_object(ROOT, "fiscal", ObjType::Map)
        .expect("fiscal map");
    let entry = doc
        .put_object(&fiscal_map, target.key(), ObjType::Map)
        .expect("entry");
    doc.put(&entry, "fn_number", "9999078900012345")
        .expect("put");
    doc.put(&entry, "fd_number", 5_i64).expect("put");
    doc.put(&entry, "fiscal_sign", 3_522_315_041_i64)
        .expect("put");
    doc.put(&entry, "shift_number", 12_i64).expect("put");
    doc.put(&entry, "receipt_number", 7_i64).expect("put");
    doc.put(&entry, "datetime_unix", 1_767_000_000_i64)
        .expect("put");
    doc.put(&entry, "ofd_status", "acknowledged").expect("put");
    doc.put(&entry, "ofd_acknowledged_at_ms", 9_000_i64)
        .expect("put");
    doc.commit();
    let loaded = AutoCommit::load(&doc.save()).expect("loads");
    let expected = BTreeMap::from([(target.key(), fiscal(5, OfdState::Acknowledged, Some(9_000)))]);
    assert_eq!(read_fiscal(&loaded).ok(), Some(expected));
}
