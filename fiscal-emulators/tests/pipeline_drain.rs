//! The fiscal pipeline end to end on the real emulators: the register emulator on a pty (the
//! Shtrih-M bytes), the OFD emulator over loopback HTTP, the pipeline task between them over an
//! in-memory job store.
//!
//! - Receipts queued out of order are fiscalised in HLC order, each exactly once, and every
//!   document reaches the OFD once.
//! - A job left in "register intent" whose document the register already made is reconciled:
//!   recorded from the register's last document, never printed again.
//! - POC-4: eight hours of OFD outage on the pipeline's clock with 50 receipts: the register
//!   keeps fiscalising, the breaker opens instead of hammering the OFD, nothing is
//!   dead-lettered, and when the OFD returns everything is acknowledged, nothing twice.

mod pipeline_support;

use std::collections::HashMap;
use std::time::Duration;

use fiscal::breaker::BreakerState;
use fiscal::pipeline::Stage;
use fiscal::register::{FiscalReceipt, FiscalRegister};
use fiscal_emulators::ofd::{Mode, ModeRequest};
use pipeline_support::{queue, register_support, sale_at, MemoryJobStore, Rig};
use std::sync::Arc;

fn receipt_ids(documents: &[serde_json::Value]) -> Vec<String> {
    documents
        .iter()
        .filter(|doc| doc["type"] == "receipt")
        .filter_map(|doc| doc["receipt_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn receipts_are_fiscalised_in_hlc_order_once_and_reach_the_ofd_once() {
    let store = Arc::new(MemoryJobStore::default());
    let base = 1_795_461_000_000;
    // Queued in a scrambled order; the HLC decides.
    let mut expected = Vec::new();
    for i in [7u64, 2, 9, 0, 4, 1, 8, 3, 6, 5] {
        let id = queue(&store, sale_at(base + i * 1000, 10_000 + i as i64));
        expected.push((i, id));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let rig = Rig::start(Arc::clone(&store)).await;
    rig.wait_for("all acknowledged", Duration::from_secs(60), |rig| {
        rig.store.count(Stage::Acknowledged) == 10
    })
    .await;

    let documents = rig.documents().await;
    assert_eq!(receipt_ids(&documents), expected, "HLC order, each once");
    for job in rig.store.jobs() {
        let stamp = job.stamp.expect("a fiscal stamp");
        assert_eq!(stamp.numbers.fn_number.len(), 16);
        assert!(stamp.numbers.fiscal_sign != 0);
    }
    let received = rig.ofd.shared().received();
    let ours: Vec<_> = received.iter().filter(|d| d.receipt_id.is_some()).collect();
    assert_eq!(
        ours.len(),
        10,
        "every receipt reached the OFD: {received:?}"
    );
    assert!(ours.iter().all(|d| d.deliveries == 1 && d.acknowledged));
    let status = rig.handle.status();
    assert!(status.register_up, "{status:?}");
    assert_eq!(status.fiscalised_total, 10);
}

#[tokio::test]
async fn an_intent_whose_document_exists_is_reconciled_not_printed_again() {
    // The register already made the first document (its answer was lost before the till
    // recorded it); the second job was in flight but never reached the register.
    let (register, ofd) = pipeline_support::emulators().await;
    let printed = sale_at(1_795_461_000_000, 25_000);
    let unsent = sale_at(1_795_461_001_000, 30_000);
    {
        let mut driver = register_support::connect(&register, register_support::test_config());
        driver.open_shift("Иванова").await.expect("shift opens");
        driver
            .receipt(&FiscalReceipt::from_receipt(&printed).expect("converts"))
            .await
            .expect("printed");
    }
    let store = Arc::new(MemoryJobStore::default());
    let printed_id = queue(&store, printed);
    let unsent_id = queue(&store, unsent);
    for job in store.jobs() {
        store.push(
            &job.record.id,
            &job.record.hlc,
            job.record.job,
            Stage::RegisterIntent,
        );
    }

    let rig = Rig::attach(register, ofd, Arc::clone(&store));
    rig.wait_for("both acknowledged", Duration::from_secs(60), |rig| {
        rig.store.count(Stage::Acknowledged) == 2
    })
    .await;
    let documents = rig.documents().await;
    assert_eq!(
        receipt_ids(&documents),
        vec![printed_id.clone(), unsent_id.clone()],
        "the first was not printed again, the second was printed once"
    );
    let fd_of = |id: &str| {
        documents
            .iter()
            .find(|doc| doc["receipt_id"] == id)
            .and_then(|doc| doc["fd"].as_u64())
            .expect("document")
    };
    let stamps: HashMap<String, u64> = store
        .jobs()
        .into_iter()
        .map(|job| {
            (
                job.record.id,
                u64::from(job.stamp.expect("stamp").numbers.fd_number),
            )
        })
        .collect();
    assert_eq!(stamps[&printed_id], fd_of(&printed_id));
    assert_eq!(stamps[&unsent_id], fd_of(&unsent_id));
}

#[tokio::test]
async fn poc4_eight_hours_without_the_ofd_then_everything_is_acknowledged_once() {
    let store = Arc::new(MemoryJobStore::default());
    let rig = Rig::start(Arc::clone(&store)).await;
    rig.ofd
        .shared()
        .set_mode(&ModeRequest::from(Mode::Down))
        .expect("mode");
    let base = 1_795_461_000_000;
    for i in 0..50u64 {
        queue(&store, sale_at(base + i * 1000, 1_000 + i as i64));
    }
    rig.handle.wake();
    rig.wait_for("50 fiscalised", Duration::from_secs(120), |rig| {
        rig.store.count(Stage::Fiscalised) == 50
    })
    .await;

    // Eight hours on the pipeline's clock, a minute at a time.
    let mut saw_open = false;
    for _ in 0..(8 * 60) {
        rig.clock.advance(60_000);
        rig.handle.wake();
        tokio::time::sleep(Duration::from_millis(5)).await;
        saw_open |= rig.guard.snapshot().state != BreakerState::Closed;
    }
    assert!(saw_open, "the breaker opened during the outage");
    assert!(rig.guard.snapshot().opens_total >= 1);
    assert_eq!(
        store.count(Stage::DeadLetter),
        0,
        "an outage dead-letters nothing"
    );
    assert_eq!(
        store.count(Stage::Fiscalised),
        50,
        "nothing acknowledged while down"
    );
    let requests = rig.ofd.shared().stats();
    // Hammering would be one request per wake (480); backoff up to 5 min keeps it far lower.
    assert!(requests.requests_total < 320, "{requests:?}");
    let status = rig.handle.status();
    assert!(
        status.ofd_error.is_some(),
        "the failure is reported: {status:?}"
    );

    rig.ofd
        .shared()
        .set_mode(&ModeRequest::from(Mode::Up))
        .expect("mode");
    // The next probe is at most one backoff ceiling (5 min) away.
    rig.clock.advance(301_000);
    rig.wait_for("all acknowledged", Duration::from_secs(120), |rig| {
        rig.clock.advance(1_000);
        rig.store.count(Stage::Acknowledged) == 50
    })
    .await;
    let received = rig.ofd.shared().received();
    let ours: Vec<_> = received.iter().filter(|d| d.receipt_id.is_some()).collect();
    assert_eq!(ours.len(), 50);
    assert!(
        ours.iter().all(|d| d.deliveries == 1),
        "{ours:?} after {requests:?}"
    );
    let documents = rig.documents().await;
    let ids = receipt_ids(&documents);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (50, 50),
        "no receipt fiscalised twice"
    );
    assert_eq!(rig.guard.snapshot().state, BreakerState::Closed);
}
