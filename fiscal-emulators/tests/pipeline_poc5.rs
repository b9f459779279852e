//! POC-5 on the pipeline: a flapping OFD link (down for minutes, up for a moment, again and
//! again, on the pipeline's clock) while 30 receipts drain. The breaker opens instead of
//! hammering the OFD, recovers through its half-open probe, and at the end every receipt is
//! fiscalised once, in HLC order, and acknowledged in the FN's order. (The other half of POC-5,
//! concurrent forced syncs answered 409, is `till-node/tests/routes.rs`
//! `forced_sync_answers_409_while_one_runs`.)

mod pipeline_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fiscal::breaker::BreakerState;
use fiscal::pipeline::{Stage, Transition};
use fiscal_emulators::ofd::{Mode, ModeRequest};
use pipeline_support::{queue, sale_at, MemoryJobStore, Rig};

#[tokio::test]
async fn a_flapping_ofd_opens_the_breaker_which_recovers_and_order_is_kept() {
    let store = Arc::new(MemoryJobStore::default());
    let base = 1_795_461_000_000u64;
    let mut expected = Vec::new();
    // Queued out of order; the HLC decides.
    for i in (0..30u64).rev() {
        expected.push((i, queue(&store, sale_at(base + i * 1000, 500 + i as i64))));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let rig = Rig::start(Arc::clone(&store)).await;
    let mut saw_open = false;
    // Ten cycles: down for 8 clock-minutes, up for 30 clock-seconds.
    for _ in 0..10 {
        rig.ofd
            .shared()
            .set_mode(&ModeRequest::from(Mode::Down))
            .expect("mode");
        for _ in 0..16 {
            rig.clock.advance(30_000);
            rig.handle.wake();
            tokio::time::sleep(Duration::from_millis(10)).await;
            saw_open |= rig.guard.snapshot().state != BreakerState::Closed;
        }
        rig.ofd
            .shared()
            .set_mode(&ModeRequest::from(Mode::Up))
            .expect("mode");
        rig.clock.advance(30_000);
        rig.handle.wake();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(saw_open, "the breaker opened while the link flapped");
    assert!(rig.guard.snapshot().opens_total >= 1);

    rig.wait_for("all acknowledged", Duration::from_secs(120), |rig| {
        rig.clock.advance(5_000);
        rig.store.count(Stage::Acknowledged) == 30
    })
    .await;
    assert_eq!(
        rig.guard.snapshot().state,
        BreakerState::Closed,
        "recovered"
    );
    assert_eq!(store.count(Stage::DeadLetter), 0);

    let documents = rig.documents().await;
    let receipts: Vec<String> = documents
        .iter()
        .filter(|doc| doc["type"] == "receipt")
        .filter_map(|doc| doc["receipt_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(receipts, expected, "fiscalised once each, in HLC order");
    // Acknowledged in the FN's order, which is the fiscalisation order.
    let acked: Vec<u32> = store
        .transitions()
        .into_iter()
        .filter_map(|t| match t {
            Transition::OfdAcknowledged { fd_number, .. } => Some(fd_number),
            _ => None,
        })
        .collect();
    let mut sorted = acked.clone();
    sorted.sort_unstable();
    assert_eq!(acked, sorted, "FN order");
    let unique: HashSet<u32> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "each acknowledged once");
    let received = rig.ofd.shared().received();
    assert!(received
        .iter()
        .filter(|d| d.receipt_id.is_some())
        .all(|d| d.acknowledged));
}
