//! Each injected fault of the register emulator gives the driver error or retry behaviour
//! the pipeline relies on: corrupted answers are asked for again, silence is a timeout,
//! slow answers still work, paper out is a typed refusal; and after the fault the link works.

mod register_support;

use std::time::{Duration, Instant};

use fiscal::register::{FiscalRegister, RegisterError};
use fiscal::shtrih::{DeviceError, FrameError};
use register_support::{fault, get, sale, start};
use serde_json::json;

#[tokio::test]
async fn corrupted_answers_are_retried_and_the_receipt_is_made_once() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("shift opens");
    fault(&running, json!({"mode": "corrupt", "count": 2})).await;
    let document = driver
        .receipt(&sale(10_000))
        .await
        .expect("retried to success");
    assert_eq!(document.numbers.fd_number, 2);
    let documents = get(&running, "/documents").await;
    assert_eq!(
        documents.as_array().map(Vec::len),
        Some(2),
        "exactly one receipt"
    );
    assert_eq!(get(&running, "/state").await["faults"]["mode"], "ok");
    running.shutdown();
}

#[tokio::test]
async fn always_corrupt_fails_with_a_link_error_then_recovers() {
    let (running, mut driver) = start(None).await;
    fault(&running, json!({"mode": "corrupt"})).await;
    let error = driver.status().await.expect_err("never a good answer");
    assert!(
        matches!(error, RegisterError::Link(FrameError::BadLrc { .. })),
        "{error:?}"
    );
    assert!(error.outcome_unknown());
    fault(&running, json!({"mode": "ok"})).await;
    driver.status().await.expect("link recovers");
    running.shutdown();
}

#[tokio::test]
async fn silence_is_a_timeout_and_the_link_recovers() {
    let (running, mut driver) = start(None).await;
    fault(&running, json!({"mode": "silent"})).await;
    let started = Instant::now();
    let error = driver.status().await.expect_err("silent register");
    assert!(
        matches!(error, RegisterError::Timeout { stage: "enq" }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fails fast: 3 × ENQ timeout"
    );
    fault(&running, json!({"mode": "ok"})).await;
    let status = driver.status().await.expect("link recovers");
    assert_eq!(status.last_fd, 0);
    running.shutdown();
}

#[tokio::test]
async fn slow_answers_still_work_within_the_timeouts() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("shift opens");
    fault(&running, json!({"mode": "slow", "delay_ms": 300})).await;
    let started = Instant::now();
    let document = driver.receipt(&sale(25_000)).await.expect("slow but fine");
    // 0x8D, FF0C, FF46, FF45, FF40, FF01: six commands at 300 ms each.
    assert!(
        started.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(document.numbers.fd_number, 2);
    running.shutdown();
}

#[tokio::test]
async fn paper_out_is_a_typed_refusal_and_makes_no_document() {
    let (running, mut driver) = start(None).await;
    driver.open_shift("Кассир").await.expect("shift opens");
    fault(&running, json!({"mode": "paper_out"})).await;
    let error = driver.receipt(&sale(10_000)).await.expect_err("no paper");
    assert!(
        matches!(error, RegisterError::Device(DeviceError::PaperOut)),
        "{error:?}"
    );
    assert!(!error.outcome_unknown());
    assert!(driver.status().await.expect("status").paper_out);
    assert!(matches!(
        driver.x_report().await,
        Err(RegisterError::Device(DeviceError::PaperOut))
    ));
    assert_eq!(
        get(&running, "/documents").await.as_array().map(Vec::len),
        Some(1)
    );
    fault(&running, json!({"mode": "ok"})).await;
    let document = driver.receipt(&sale(10_000)).await.expect("paper loaded");
    assert_eq!(document.numbers.fd_number, 2);
    running.shutdown();
}
