//! The OFD link under failure, end to end on loopback: the circuit breaker opens after five
//! failures and then keeps every request away from the emulator, probes once after its window
//! and recovers; backoff honours `Retry-After`; twenty failures dead-letter a document.
//!
//! The breaker reads a manual clock, so "after the window" is an explicit step and a slow,
//! loaded machine cannot let a probe slip through early.

use fiscal::backoff::{Backoff, BackoffConfig, Decision};
use fiscal::breaker::{BreakerConfig, BreakerState};
use fiscal::ofd::{next_step, FnNumber, GuardedOfd, OfdClient, OfdContainer, OfdError};
use fiscal_emulators::ofd::{self as emulator, EmulatorHandle, Mode, ModeRequest};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WINDOW_MS: u64 = 200;

fn document(fd: u32) -> OfdContainer {
    OfdContainer {
        fn_number: FnNumber::parse("9999078900005488").expect("16 digits"),
        doc_type: 3,
        fd,
        document: vec![0x03, 0x00, 0x00, 0x00],
    }
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

async fn start() -> (EmulatorHandle, GuardedOfd<OfdClient>, ManualClock) {
    let emulator = emulator::spawn("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind loopback");
    let client = OfdClient::new(&emulator.base_url(), Duration::from_secs(2)).expect("client");
    let config = BreakerConfig {
        failure_threshold: 5,
        open_duration_ms: WINDOW_MS,
    };
    let clock = ManualClock(Arc::new(AtomicU64::new(1_000_000)));
    let reader = clock.clone();
    let guarded = GuardedOfd::with_clock(client, config, Arc::new(move || reader.now()));
    (emulator, guarded, clock)
}

#[tokio::test]
async fn breaker_opens_keeps_requests_away_probes_and_recovers() {
    let (emulator, guarded, clock) = start().await;
    emulator
        .shared()
        .set_mode(&ModeRequest::from(Mode::ServerError))
        .expect("mode");
    for fd in 1..=5 {
        let error = guarded.send(&document(fd)).await.expect_err("5xx");
        assert_eq!(error, OfdError::Server { status: 503 });
    }
    let snapshot = guarded.snapshot();
    assert_eq!(snapshot.state, BreakerState::Open);
    assert_eq!(snapshot.failure_count, 5);
    assert_eq!(snapshot.opens_total, 1);

    // While OPEN nothing reaches the emulator, even after it is back up.
    emulator
        .shared()
        .set_mode(&ModeRequest::from(Mode::Up))
        .expect("mode");
    for fd in 6..=20 {
        let error = guarded.send(&document(fd)).await.expect_err("circuit open");
        assert!(matches!(error, OfdError::CircuitOpen { .. }), "{error:?}");
    }
    assert_eq!(emulator.shared().stats().requests_total, 5);

    // After the window one probe goes through; it succeeds and closes the circuit.
    clock.advance(WINDOW_MS - 1);
    assert!(matches!(
        guarded.send(&document(6)).await,
        Err(OfdError::CircuitOpen { .. })
    ));
    clock.advance(1);
    guarded
        .send(&document(6))
        .await
        .expect("probe acknowledged");
    assert_eq!(guarded.snapshot().state, BreakerState::Closed);
    assert_eq!(guarded.snapshot().failure_count, 0);
    for fd in 7..=10 {
        guarded
            .send(&document(fd))
            .await
            .expect("closed circuit sends");
    }
    assert_eq!(emulator.shared().stats().requests_total, 10);
    assert_eq!(emulator.shared().received().len(), 5);
    emulator.shutdown().await;
}

#[tokio::test]
async fn failed_probe_reopens_and_sends_exactly_one_request() {
    let (emulator, guarded, clock) = start().await;
    emulator
        .shared()
        .set_mode(&ModeRequest::from(Mode::Down))
        .expect("mode");
    for fd in 1..=5 {
        let error = guarded.send(&document(fd)).await.expect_err("down");
        assert!(matches!(error, OfdError::Unreachable(_)), "{error:?}");
    }
    assert_eq!(guarded.snapshot().state, BreakerState::Open);
    clock.advance(WINDOW_MS - 1);
    assert!(matches!(
        guarded.send(&document(6)).await,
        Err(OfdError::CircuitOpen { .. })
    ));
    clock.advance(1);
    let before = emulator.shared().stats().requests_total;
    assert!(guarded.send(&document(1)).await.is_err());
    assert_eq!(
        emulator.shared().stats().requests_total,
        before + 1,
        "one probe only"
    );
    let snapshot = guarded.snapshot();
    assert_eq!(snapshot.state, BreakerState::Open);
    assert_eq!(snapshot.opens_total, 2);
    let next = snapshot
        .next_attempt_time_ms
        .expect("open circuit has a next attempt");
    assert_eq!(
        next,
        clock.now() + WINDOW_MS,
        "a full window after the failed probe"
    );

    // Admin reset closes it at once.
    emulator
        .shared()
        .set_mode(&ModeRequest::from(Mode::Up))
        .expect("mode");
    guarded.reset();
    guarded.send(&document(1)).await.expect("sent after reset");
    emulator.shutdown().await;
}

#[tokio::test]
async fn rejection_does_not_open_the_breaker_and_dead_letters_at_once() {
    let (emulator, guarded, _clock) = start().await;
    emulator
        .shared()
        .set_mode(&ModeRequest::from(Mode::Reject))
        .expect("mode");
    let mut rng = StdRng::seed_from_u64(3);
    for fd in 1..=8 {
        let error = guarded.send(&document(fd)).await.expect_err("rejected");
        assert_eq!(error, OfdError::Rejected { code: 14 });
        let mut backoff = Backoff::new(BackoffConfig::default());
        assert_eq!(
            next_step(&mut backoff, &error, 0, &mut rng),
            Decision::DeadLetter
        );
    }
    assert_eq!(guarded.snapshot().state, BreakerState::Closed);
    emulator.shutdown().await;
}

#[tokio::test]
async fn retry_after_from_the_emulator_sets_the_next_attempt() {
    let (emulator, guarded, _clock) = start().await;
    let mut request = ModeRequest::from(Mode::RateLimited);
    request.retry_after_s = Some(120);
    emulator.shared().set_mode(&request).expect("mode");
    let error = guarded.send(&document(1)).await.expect_err("429");
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut rng = StdRng::seed_from_u64(11);
    let now_ms = 1_000_000;
    // Jitter alone would give 5 s on a first failure; the server asked for 120 s.
    assert_eq!(
        next_step(&mut backoff, &error, now_ms, &mut rng),
        Decision::RetryAt(now_ms + 120_000)
    );
    assert_eq!(
        backoff.attempts(),
        0,
        "a rate limit is the link's failure, not the document's: no step towards the dead letter"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn twenty_failed_attempts_dead_letter_the_document() {
    let (emulator, guarded, _clock) = start().await;
    emulator
        .shared()
        .set_mode(&ModeRequest::from(Mode::ServerError))
        .expect("mode");
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut rng = StdRng::seed_from_u64(5);
    let mut now_ms = 0;
    let mut sent = 0;
    let decision = loop {
        // Keep the breaker out of the way: this test is about the attempt budget.
        guarded.reset();
        let error = guarded.send(&document(1)).await.expect_err("5xx");
        sent += 1;
        match next_step(&mut backoff, &error, now_ms, &mut rng) {
            Decision::RetryAt(at) => {
                assert!(at >= now_ms + 5_000 && at <= now_ms + 300_000);
                now_ms = at;
            }
            decision @ Decision::DeadLetter => break decision,
        }
    };
    assert_eq!(decision, Decision::DeadLetter);
    assert_eq!(sent, 20);
    assert_eq!(backoff.attempts(), 20);
    assert_eq!(emulator.shared().stats().requests_total, 20);
    emulator.shutdown().await;
}
