//! The FN rules of the emulator seen through the driver: the 24-hour shift and the 30-day
//! unsent limit on the injectable clock, FN warnings, restart keeping numbering, the OFD
//! exchange through the driver, corrections, cash movements, and exactly-once recovery with
//! `last_document()` after a crash between sending a receipt and reading its answer.

mod register_support;

use std::time::Duration;

use crdt_model::receipt::ReceiptKind;
use crdt_model::{Kopecks, VatRate};
use fiscal::ofd::container::{FnNumber, OfdAck, OfdContainer};
use fiscal::ofd::tlv::find_receipt_id;
use fiscal::register::{DocumentKind, FiscalCorrection, FiscalRegister, RegisterError, ShiftState};
use fiscal::shtrih::DeviceError;
use register_support::{connect, fault, get, post, receipt, sale, start, test_config};
use serde_json::json;

const DAY: i64 = 86_400;

/// Acknowledges every message in the FN's OFD buffer; returns the FDs acknowledged.
async fn drain_ofd<R: FiscalRegister>(driver: &mut R) -> Vec<u32> {
    let mut acked = Vec::new();
    while let Some(message) = driver.read_ofd_message().await.expect("reads") {
        let container = OfdContainer::decode(&message.bytes).expect("a valid FN–OFD message");
        assert_eq!(container.fd, message.fd_number);
        let ack = OfdAck {
            fn_number: container.fn_number.clone(),
            fd: container.fd,
            code: 0,
            received_at_unix_s: 1_795_461_000,
            ofd_inn: "7704211201  ".into(),
            operator_sign: vec![1; 16],
        };
        driver
            .write_ofd_ack(&ack.encode().expect("encodes"))
            .await
            .expect("FN accepts the ack");
        acked.push(container.fd);
        assert!(acked.len() < 1000, "the buffer drains");
    }
    acked
}

#[tokio::test]
async fn a_shift_older_than_24_hours_refuses_receipts_until_closed() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    driver
        .receipt(&sale(1_000))
        .await
        .expect("fresh shift sells");
    post(&running, "/clock", json!({"advance_secs": DAY - 60})).await;
    driver
        .receipt(&sale(1_000))
        .await
        .expect("23 h 59 min still sells");
    post(&running, "/clock", json!({"advance_secs": 60})).await;
    let error = driver
        .receipt(&sale(1_000))
        .await
        .expect_err("24 h reached");
    assert!(
        matches!(error, RegisterError::Device(DeviceError::ShiftExpired)),
        "{error:?}"
    );
    assert_eq!(
        driver.status().await.expect("status").shift,
        ShiftState::Expired
    );
    assert_eq!(
        driver.shift_state().await.expect("short status"),
        ShiftState::Expired
    );
    let z = driver
        .close_shift("Кассир")
        .await
        .expect("Z is allowed after 24 h");
    assert_eq!(z.numbers.fd_number, 4);
    assert_eq!(
        driver.shift_state().await.expect("short status"),
        ShiftState::Closed
    );
    let open = driver.open_shift("Кассир").await.expect("new shift");
    assert_eq!(
        driver.shift_state().await.expect("short status"),
        ShiftState::Open
    );
    assert_eq!(open.numbers.shift_number, 2);
    let document = driver.receipt(&sale(1_000)).await.expect("sells again");
    assert_eq!(
        (
            document.numbers.shift_number,
            document.numbers.receipt_number
        ),
        (2, 1)
    );
    running.shutdown();
}

#[tokio::test]
async fn thirty_days_unsent_blocks_the_register_until_the_backlog_is_delivered() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    let sold = driver.receipt(&sale(5_000)).await.expect("sells");
    driver.close_shift("Кассир").await.expect("closes");
    assert!(!driver.status().await.expect("status").warnings.ofd_timeout);

    post(&running, "/clock", json!({"advance_secs": 2 * DAY + 60})).await;
    let status = driver.status().await.expect("status");
    assert!(status.warnings.ofd_timeout, "1053 after two days");
    assert_eq!((status.unsent.count, status.unsent.first_fd), (3, 1));

    post(&running, "/clock", json!({"advance_secs": 28 * DAY})).await;
    let error = driver
        .open_shift("Кассир")
        .await
        .expect_err("30 days unsent");
    assert!(
        matches!(error, RegisterError::Device(DeviceError::OfdSendLimit)),
        "{error:?}"
    );

    let first = driver
        .read_ofd_message()
        .await
        .expect("reads")
        .expect("a message");
    let container = OfdContainer::decode(&first.bytes).expect("decodes");
    assert_eq!((container.fd, container.doc_type), (1, 2));
    assert_eq!(drain_ofd(&mut driver).await, vec![1, 2, 3]);
    let status = driver.status().await.expect("status");
    assert_eq!(status.unsent.count, 0);
    assert!(!status.warnings.ofd_timeout);
    driver.open_shift("Кассир").await.expect("unblocked");
    let documents = get(&running, "/documents").await;
    assert_eq!(documents[1]["acked"], true);
    assert_eq!(
        documents[1]["receipt_id"],
        sold.receipt_id.map(|id| id.to_string()).unwrap_or_default()
    );
    running.shutdown();
}

#[tokio::test]
async fn ofd_messages_carry_the_document_and_the_receipt_id() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    let fiscal = sale(7_700);
    driver.receipt(&fiscal).await.expect("sells");
    assert_eq!(drain_ofd(&mut driver).await.len(), 2);
    assert!(driver.read_ofd_message().await.expect("reads").is_none());
    let documents = get(&running, "/documents").await;
    assert!(documents
        .as_array()
        .expect("array")
        .iter()
        .all(|doc| doc["acked"] == true));
    running.shutdown();

    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    driver.receipt(&fiscal).await.expect("sells");
    let _shift = driver
        .read_ofd_message()
        .await
        .expect("reads")
        .expect("shift doc");
    // Nothing was acknowledged, so the oldest message stays first; ack it and read the next.
    assert_eq!(drain_ofd(&mut driver).await, vec![1, 2]);
    running.shutdown();
    let fn_number = FnNumber::parse("9999000000000001").expect("valid");
    assert_eq!(fn_number.as_str().len(), 16);
    let message = OfdContainer {
        fn_number,
        doc_type: 3,
        fd: 9,
        document: vec![],
    };
    assert!(find_receipt_id(&message.document).is_none());
}

#[tokio::test]
async fn receipt_messages_contain_our_receipt_id() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    let fiscal = sale(3_300);
    driver.receipt(&fiscal).await.expect("sells");
    let _ = driver.read_ofd_message().await.expect("reads");
    drain_ofd(&mut driver).await;
    driver.receipt(&fiscal).await.expect("sells again");
    let message = driver
        .read_ofd_message()
        .await
        .expect("reads")
        .expect("receipt");
    let container = OfdContainer::decode(&message.bytes).expect("decodes");
    assert_eq!(container.doc_type, 3);
    assert_eq!(
        find_receipt_id(&container.document),
        Some(fiscal.receipt_id.to_string())
    );
    running.shutdown();
}

#[tokio::test]
async fn a_restart_keeps_numbering_and_the_open_shift() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (running, mut driver) = start(Some(dir.path().to_path_buf())).await;
    driver.open_shift("Кассир").await.expect("opens");
    for _ in 0..3 {
        driver.receipt(&sale(1_000)).await.expect("sells");
    }
    let before = driver.status().await.expect("status");
    running.shutdown();
    drop(driver);

    let (running, mut driver) = start(Some(dir.path().to_path_buf())).await;
    let after = driver.status().await.expect("status");
    assert_eq!(after.fn_number, before.fn_number);
    assert_eq!(
        (after.last_fd, after.receipt_number, after.shift),
        (4, 3, ShiftState::Open)
    );
    let next = driver
        .receipt(&sale(1_000))
        .await
        .expect("sells after restart");
    assert_eq!(
        (next.numbers.fd_number, next.numbers.receipt_number),
        (5, 4)
    );
    running.shutdown();
}

#[tokio::test]
async fn last_document_tells_whether_a_receipt_lost_in_a_crash_was_made() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    fault(&running, json!({"mode": "slow", "delay_ms": 400})).await;
    let fiscal = sale(12_345);
    let pending = {
        let fiscal = fiscal.clone();
        tokio::spawn(async move { driver.receipt(&fiscal).await })
    };
    // The "crash": the pipeline dies after the register made the document, before the answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(&running, "/state").await["last_fd"] != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the receipt is made"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pending.abort();
    fault(&running, json!({"mode": "ok"})).await;

    let mut recovered = connect(&running, test_config());
    // The register may still be busy with the lost command: like the pipeline, retry while
    // the link times out.
    let mut attempts = 0;
    let last = loop {
        match recovered.last_document().await {
            Err(error) if error.outcome_unknown() && attempts < 20 => attempts += 1,
            other => break other.expect("reads").expect("exists"),
        }
    };
    assert_eq!(last.kind, DocumentKind::Receipt);
    assert_eq!(
        (last.numbers.fd_number, last.receipt_id),
        (2, Some(fiscal.receipt_id))
    );
    assert_eq!(last.total, Kopecks(12_345));
    assert!(!recovered.status().await.expect("status").receipt_open);
    running.shutdown();
}

#[tokio::test]
async fn a_receipt_left_open_by_a_crash_is_cancelled_without_a_document() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("opens");
    fault(&running, json!({"mode": "slow", "delay_ms": 300})).await;
    let fiscal = sale(1_000);
    let pending = tokio::spawn(async move { driver.receipt(&fiscal).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(&running, "/state").await["receipt_open"] != true {
        assert!(tokio::time::Instant::now() < deadline, "the receipt opens");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pending.abort();
    fault(&running, json!({"mode": "ok"})).await;
    let mut recovered = connect(&running, test_config());
    let mut attempts = 0;
    let status = loop {
        match recovered.status().await {
            Err(error) if error.outcome_unknown() && attempts < 20 => attempts += 1,
            other => break other.expect("status"),
        }
    };
    assert!(status.receipt_open);
    recovered.cancel_open_receipt().await.expect("cancels");
    let status = recovered.status().await.expect("status");
    assert!(!status.receipt_open);
    assert_eq!(status.last_fd, 1, "no FD for the cancelled receipt");
    recovered
        .cancel_open_receipt()
        .await
        .expect("no-op when none is open");
    running.shutdown();
}

#[tokio::test]
async fn corrections_cash_movements_and_refusals() {
    let (running, mut driver) = start(None).await;
    let error = driver.receipt(&sale(1_000)).await.expect_err("no shift");
    assert!(
        matches!(error, RegisterError::Device(DeviceError::ShiftNotOpen)),
        "{error:?}"
    );
    driver.open_shift("Кассир").await.expect("opens");
    let error = driver.open_shift("Кассир").await.expect_err("already open");
    assert!(
        matches!(error, RegisterError::Device(DeviceError::WrongState)),
        "{error:?}"
    );

    let source = receipt(ReceiptKind::Sale, None, &[(4_200, VatRate::Vat20)], true);
    let correction = FiscalCorrection::from_receipt(&source, 1_795_000_000).expect("converts");
    let document = driver
        .correction(&correction)
        .await
        .expect("correction made");
    assert_eq!(document.kind, DocumentKind::Correction);
    assert_eq!(document.receipt_id, Some(source.id));
    assert_eq!(get(&running, "/documents").await[1]["type"], "correction");

    driver.cash_in(Kopecks(100_000)).await.expect("cash in");
    driver.cash_out(Kopecks(50_000)).await.expect("cash out");
    assert!(matches!(
        driver.cash_in(Kopecks(0)).await,
        Err(RegisterError::InvalidAmount(_))
    ));
    let mut unbalanced = sale(1_000);
    unbalanced.payments.electronic = Kopecks(500);
    assert!(matches!(
        driver.receipt(&unbalanced).await,
        Err(RegisterError::InvalidReceipt(_))
    ));
    assert_eq!(driver.status().await.expect("status").last_fd, 2);
    running.shutdown();
}
