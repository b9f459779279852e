//! UAT-10c: the real `till-node` binary dies in the middle of draining and comes back on the
//! same data directory — no receipt is lost and none is fiscalised twice.
//!
//! The register emulator (on a pseudo-terminal) and the OFD emulator (loopback HTTP) run in
//! this test for its whole life, across the till's restarts, so they remember every fiscal
//! document and every delivery. The till reaches the register through one symlink in the
//! test's directory; before the link exists the register "is unplugged", which lets a test
//! build a backlog of sales (answered 200 `buffered`, durable) and then let the pipeline at it.
//!
//! The crashes:
//! - `pipeline.intent_persisted`: the register intent is durable, nothing was sent. After the
//!   restart the till asks the register for its last document, finds nothing for the
//!   receipt and prints it.
//! - `pipeline.register_done`: the register made the document, the till never recorded it.
//!   After the restart the register's last document carries the receipt id, so the till
//!   records that document instead of printing again.
//! - `pipeline.ofd_sent`: the OFD acknowledged a receipt, the FN was never told. The FN hands
//!   it out again and the OFD acknowledges the second delivery idempotently (`deliveries` 2).
//! - `pipeline.fn_told` (and a `kill -9` in the same window): the FN took the OFD's
//!   acknowledgement, the till never recorded it. After the restart the till reads the FN's
//!   unsent counter and records the document as acknowledged.
//! - `kill -9` while the OFD backlog drains (the OFD was down while selling; it comes back
//!   slow so the drain can be caught half-way), and `kill -9` while the register backlog is
//!   printed, with a receipt open in the register and a command unanswered (the register is
//!   slow, then silent the moment a receipt is seen open): the restart cancels that receipt
//!   and prints the sale once.
//!
//! The checks, after the last restart has drained everything ([`Rig::assert_each_once`]):
//! the receipts the register made are exactly the receipts of the session (every 200-answered
//! sale among them), each exactly once; the FN has no unsent document; the OFD has every
//! document the register made, acknowledged, delivered at most as often as the scenario
//! allows; the till's status shows nothing queued and nothing dead-lettered. The rig is in
//! `crash_support/`.

mod crash_support;

use crash_support::*;

use std::time::{Duration, Instant};

use fiscal::failpoint;
use fiscal_emulators::ofd::{Mode, ModeRequest};
use fiscal_emulators::register::{FaultMode, Faults};
/// Crash with the intent durable and nothing sent: the restart prints the receipt once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intent_persisted_then_crash() {
    let mut rig = Rig::new().await;
    rig.spawn(Some(failpoint::INTENT_PERSISTED));
    let session = rig.open_session().await;
    let mut answered = rig.sell_many("before", 6).await;
    let status = rig.status().await;
    assert_eq!(status["current_queued"], 6, "{status}");
    assert_eq!(status["stages"]["queued"], 6, "{status}");

    rig.attach_register();
    rig.expect_failpoint_exit(failpoint::INTENT_PERSISTED).await;
    assert!(
        rig.documents().await.is_empty(),
        "nothing may reach the register before the failpoint"
    );

    rig.spawn(None);
    answered.extend(rig.sell_many("after", 2).await);
    rig.wait_drained(&session).await;
    let deliveries = rig.assert_each_once(&session, &answered, 1).await;
    assert_eq!(rig.receipt_fds().await.len(), 8);
    assert!(deliveries.values().all(|&d| d == 1), "{deliveries:?}");
}

/// Crash after the register made the document, before the till recorded it: the restart
/// finds it as the register's last document and does not print it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_done_then_crash() {
    let mut rig = Rig::new().await;
    rig.spawn(Some(failpoint::REGISTER_DONE));
    let session = rig.open_session().await;
    let mut answered = rig.sell_many("before", 6).await;

    rig.attach_register();
    rig.expect_failpoint_exit(failpoint::REGISTER_DONE).await;
    // The head of the queue (the first sale) was printed, and nothing else.
    let printed = rig.receipt_fds().await;
    assert_eq!(printed.len(), 1, "{printed:?}");
    let (crashed_id, crashed_fds) = printed.iter().next().expect("one receipt");
    assert_eq!(crashed_id, &answered[0]);
    let crashed_fd = crashed_fds[0];

    rig.spawn(None);
    answered.extend(rig.sell_many("after", 2).await);
    rig.wait_drained(&session).await;
    let deliveries = rig.assert_each_once(&session, &answered, 1).await;
    assert_eq!(rig.receipt_fds().await[&answered[0]], vec![crashed_fd]);
    assert_eq!(rig.receipt_fds().await.len(), 8);
    assert!(deliveries.values().all(|&d| d == 1), "{deliveries:?}");
}

/// Crash after the OFD acknowledged a receipt, before the FN was told: after the restart the
/// FN sends it again, the OFD acknowledges it idempotently, and the register printed it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofd_sent_then_crash() {
    let mut rig = Rig::new().await;
    rig.attach_register();
    // Run 1, no failpoint: two sales all the way through, then six with the OFD down.
    rig.spawn(None);
    let session = rig.open_session().await;
    let mut answered = rig.sell_many("through", 2).await;
    rig.wait_status("two acknowledged", |s| s["stages"]["acknowledged"] == 2)
        .await;
    rig.set_ofd(&ModeRequest::from(Mode::Down));
    answered.extend(rig.sell_many("offline", 6).await);
    rig.wait_status("six fiscalised", |s| s["stages"]["fiscalised"] == 6)
        .await;
    rig.stop().await;

    // Run 2: the OFD is back; its first acknowledgement never reaches the FN.
    rig.set_ofd(&ModeRequest::from(Mode::Up));
    rig.spawn(Some(failpoint::OFD_SENT));
    rig.expect_failpoint_exit(failpoint::OFD_SENT).await;
    let third = rig
        .documents()
        .await
        .into_iter()
        .find(|d| d["receipt_id"] == answered[2].as_str())
        .expect("the third sale was printed");
    assert_eq!(third["acked"], false, "the FN was told: {third}");
    let third_fd = u32::try_from(third["fd"].as_u64().expect("fd")).expect("fd");
    let at_ofd = rig.ofd.shared().received();
    let copy = at_ofd
        .iter()
        .find(|r| r.fd == third_fd)
        .expect("the OFD has the third sale");
    assert!(copy.acknowledged && copy.deliveries == 1, "{copy:?}");

    // Run 3: the drain resumes from the FN's buffer.
    rig.spawn(None);
    answered.extend(rig.sell_many("after", 2).await);
    rig.wait_drained(&session).await;
    let deliveries = rig.assert_each_once(&session, &answered, 2).await;
    assert_eq!(rig.receipt_fds().await.len(), 10);
    let twice: Vec<u32> = deliveries
        .iter()
        .filter(|(_, &d)| d == 2)
        .map(|(&fd, _)| fd)
        .collect();
    assert_eq!(
        twice,
        vec![third_fd],
        "only the crashed one twice: {deliveries:?}"
    );
}

/// Crash after the FN took the OFD's acknowledgement, before the till recorded it: the FN no
/// longer hands the document out, so after the restart the till learns from the FN's unsent
/// counter that it is acknowledged — otherwise it would stay "fiscalised" for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fn_told_then_crash() {
    let mut rig = Rig::new().await;
    rig.attach_register();
    rig.spawn(None);
    let session = rig.open_session().await;
    // One sale all the way through, so the shift-open document is behind us.
    let mut answered = rig.sell_many("through", 1).await;
    rig.wait_status("one acknowledged", |s| s["stages"]["acknowledged"] == 1)
        .await;
    rig.set_ofd(&ModeRequest::from(Mode::Down));
    answered.extend(rig.sell_many("offline", 4).await);
    rig.wait_status("four fiscalised", |s| s["stages"]["fiscalised"] == 4)
        .await;
    rig.stop().await;

    rig.set_ofd(&ModeRequest::from(Mode::Up));
    rig.spawn(Some(failpoint::FN_TOLD));
    rig.expect_failpoint_exit(failpoint::FN_TOLD).await;
    let second = rig
        .documents()
        .await
        .into_iter()
        .find(|d| d["receipt_id"] == answered[1].as_str())
        .expect("the second sale was printed");
    assert_eq!(second["acked"], true, "the FN took it: {second}");

    rig.spawn(None);
    answered.extend(rig.sell_many("after", 1).await);
    rig.wait_drained(&session).await;
    rig.assert_each_once(&session, &answered, 1).await;
}

/// `kill -9` half-way through draining 30 receipts to the OFD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_draining_the_ofd_backlog() {
    let mut rig = Rig::new().await;
    rig.attach_register();
    rig.set_ofd(&ModeRequest::from(Mode::Down));
    rig.spawn(None);
    let session = rig.open_session().await;
    let answered = rig.sell_many("offline", 30).await;
    rig.wait_status("30 fiscalised", |s| s["stages"]["fiscalised"] == 30)
        .await;

    // Back, but slow: 30 documents take seconds, so the kill lands in the middle.
    rig.set_ofd(&ModeRequest {
        delay_ms: Some(150),
        ..ModeRequest::from(Mode::Slow)
    });
    rig.drain_now().await;
    rig.wait_status("the first acknowledgements", |s| {
        s["stages"]["acknowledged"].as_u64() >= Some(3)
    })
    .await;
    rig.kill_9();
    let acknowledged = rig
        .documents()
        .await
        .iter()
        .filter(|d| d["type"] == "receipt" && d["acked"] == true)
        .count();
    assert!(
        (3..30).contains(&acknowledged),
        "the kill did not land mid-drain: {acknowledged} of 30 acknowledged"
    );

    rig.set_ofd(&ModeRequest::from(Mode::Up));
    rig.spawn(None);
    rig.wait_drained(&session).await;
    let deliveries = rig.assert_each_once(&session, &answered, 2).await;
    assert_eq!(rig.receipt_fds().await.len(), 30);
    let twice = deliveries.values().filter(|&&d| d == 2).count();
    assert!(
        twice <= 1,
        "one document at most was in flight: {deliveries:?}"
    );
}

/// `kill -9` half-way through printing a backlog of 20 receipts, while a receipt is open in
/// the register and the till waits for an answer to its next command: the restart cancels the
/// open receipt, prints that sale once and the rest after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_printing_the_register_backlog() {
    let mut rig = Rig::new().await;
    rig.spawn(None);
    let session = rig.open_session().await;
    let answered = rig.sell_many("unplugged", 20).await;

    let slow = Faults {
        mode: FaultMode::Slow,
        delay_ms: 40,
        count: None,
    };
    rig.set_register_faults(slow);
    rig.attach_register();
    // Killed with a receipt open in the register, after at least three were closed: once one
    // is seen open the register falls silent (it swallows the till's next command), so the
    // receipt stays open; if it closed in the meantime, the register resumes and we wait for
    // the next one.
    let started = Instant::now();
    loop {
        let state = rig.register_state().await;
        if state["receipt_open"] == true && rig.receipt_fds().await.len() >= 3 {
            rig.set_register_faults(Faults {
                mode: FaultMode::Silent,
                ..slow
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            if rig.register_state().await["receipt_open"] == true {
                break;
            }
            rig.set_register_faults(slow);
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no receipt caught open: {state}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rig.kill_9();
    let state = rig.register_state().await;
    assert_eq!(state["receipt_open"], true, "{state}");
    let printed = rig.receipt_fds().await.len();
    assert!(
        (3..20).contains(&printed),
        "the kill did not land mid-backlog: {printed} of 20 printed"
    );

    rig.set_register_faults(Faults::default());
    rig.spawn(None);
    rig.wait_drained(&session).await;
    rig.assert_each_once(&session, &answered, 1).await;
    assert_eq!(rig.receipt_fds().await.len(), 20);
    assert_eq!(rig.register_state().await["receipt_open"], false);
}

/// Crash after the FN was told of the OFD's acknowledgement, before the till recorded it:
/// the FN no longer hands the document out, so the till must learn from the FN's backlog
/// (status `unsent`) that it is acknowledged — or it stays "fiscalised" for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_fn_took_the_acknowledgement() {
    let mut rig = Rig::new().await;
    rig.attach_register();
    rig.set_ofd(&ModeRequest::from(Mode::Down));
    rig.spawn(None);
    let session = rig.open_session().await;
    let answered = rig.sell_many("offline", 3).await;
    rig.wait_status("three fiscalised", |s| s["stages"]["fiscalised"] == 3)
        .await;

    // The emulator executes a command at once and answers after the delay: the FN records
    // the acknowledgement (FF33) while the till waits 1.5 s for the answer.
    rig.set_register_faults(Faults {
        mode: FaultMode::Slow,
        delay_ms: 1_500,
        count: None,
    });
    rig.set_ofd(&ModeRequest::from(Mode::Up));
    rig.drain_now().await;
    let started = Instant::now();
    while !rig
        .documents()
        .await
        .iter()
        .any(|d| d["type"] == "receipt" && d["acked"] == true)
    {
        assert!(
            started.elapsed() < TIMEOUT,
            "no receipt acknowledged in the FN"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rig.kill_9();

    rig.set_register_faults(Faults::default());
    rig.spawn(None);
    rig.wait_drained(&session).await;
    rig.assert_each_once(&session, &answered, 2).await;
}
