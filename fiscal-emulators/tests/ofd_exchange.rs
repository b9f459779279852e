//! Client ↔ emulator over real HTTP on loopback: every fault mode of the OFD emulator must come
//! back from [`OfdClient::send`] as the matching [`OfdError`], and a re-sent document must be
//! acknowledged idempotently.

use fiscal::ofd::{tlv, FnNumber, OfdClient, OfdContainer, OfdError};
use fiscal_emulators::ofd::{self as emulator, EmulatorHandle, ReceivedDocument};
use serde_json::json;
use std::time::Duration;

const FN: &str = "9999078900005488";

fn receipt(fd: u32, receipt_id: &str) -> OfdContainer {
    let mut attribute = Vec::new();
    tlv::push(
        &mut attribute,
        1085,
        fiscal::register::RECEIPT_ID_ATTRIBUTE.as_bytes(),
    )
    .expect("short");
    tlv::push(&mut attribute, 1086, receipt_id.as_bytes()).expect("short");
    let mut body = Vec::new();
    tlv::push(&mut body, 1020, &150_000u32.to_le_bytes()[..3]).expect("short");
    tlv::push(&mut body, 1084, &attribute).expect("short");
    let mut document = Vec::new();
    tlv::push(&mut document, 3, &body).expect("short");
    OfdContainer {
        fn_number: FnNumber::parse(FN).expect("16 digits"),
        doc_type: 3,
        fd,
        document,
    }
}

async fn start() -> (EmulatorHandle, OfdClient) {
    let emulator = emulator::spawn("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind loopback");
    let client = OfdClient::new(&emulator.base_url(), Duration::from_millis(1500)).expect("client");
    (emulator, client)
}

async fn set_mode(emulator: &EmulatorHandle, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/control/mode", emulator.base_url()))
        .json(&body)
        .send()
        .await
        .expect("control API reachable");
    assert_eq!(response.status(), 200, "mode {body} refused");
}

async fn received(emulator: &EmulatorHandle) -> Vec<ReceivedDocument> {
    reqwest::get(format!("{}/control/received", emulator.base_url()))
        .await
        .expect("control API reachable")
        .json()
        .await
        .expect("JSON list")
}

#[tokio::test]
async fn up_mode_acknowledges_and_resend_is_idempotent() {
    let (emulator, client) = start().await;
    let document = receipt(17, "2b7c1d9e-5f00-4a1b-9c3d-000000000017");
    let first = client.send(&document).await.expect("acknowledged");
    assert_eq!((first.fd, first.code), (17, 0));
    assert_eq!(first.fn_number.as_str(), FN);
    assert_eq!(first.operator_sign.len(), 16);
    let second = client.send(&document).await.expect("acknowledged again");
    assert_eq!(
        first, second,
        "a re-sent document must get the same acknowledgement"
    );

    let list = received(&emulator).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].fn_number, FN);
    assert_eq!(list[0].fd, 17);
    assert_eq!(list[0].deliveries, 2);
    assert_eq!(
        list[0].receipt_id.as_deref(),
        Some("2b7c1d9e-5f00-4a1b-9c3d-000000000017")
    );
    // The raw JSON uses the CLI contract's field names.
    let raw: serde_json::Value = reqwest::get(format!("{}/control/received", emulator.base_url()))
        .await
        .expect("reachable")
        .json()
        .await
        .expect("JSON");
    assert_eq!(raw[0]["fn"], FN);
    assert_eq!(raw[0]["deliveries"], 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn each_fault_mode_maps_to_its_error() {
    let (emulator, client) = start().await;
    let cases = [
        (json!({"mode": "5xx"}), OfdError::Server { status: 503 }),
        (
            json!({"mode": "5xx", "status": 502}),
            OfdError::Server { status: 502 },
        ),
        (
            json!({"mode": "429", "retry_after_s": 45}),
            OfdError::RateLimited {
                retry_after: Some(Duration::from_secs(45)),
            },
        ),
        (
            json!({"mode": "401"}),
            OfdError::Unauthorized { status: 401 },
        ),
        (json!({"mode": "reject"}), OfdError::Rejected { code: 14 }),
        (
            json!({"mode": "reject", "code": 11}),
            OfdError::Rejected { code: 11 },
        ),
    ];
    for (fd, (mode, expected)) in (1..).zip(cases) {
        set_mode(&emulator, mode.clone()).await;
        let error = client
            .send(&receipt(fd, "r"))
            .await
            .expect_err("fault injected");
        assert_eq!(error, expected, "mode {mode}");
    }
    set_mode(&emulator, json!({"mode": "slow", "delay_ms": 5000})).await;
    assert_eq!(client.send(&receipt(50, "r")).await, Err(OfdError::Timeout));
    set_mode(&emulator, json!({"mode": "down"})).await;
    let error = client.send(&receipt(51, "r")).await.expect_err("down");
    assert!(matches!(error, OfdError::Unreachable(_)), "{error:?}");
    assert!(error.trips_breaker());

    // Back up: the same documents now go through.
    set_mode(&emulator, json!({"mode": "up"})).await;
    client
        .send(&receipt(51, "r"))
        .await
        .expect("acknowledged once up");
    let stats = emulator.shared().stats();
    assert_eq!(stats.requests_total, 9);
    emulator.shutdown().await;
}

#[tokio::test]
async fn refused_connection_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let client = OfdClient::new(&format!("http://{addr}"), Duration::from_secs(2)).expect("client");
    let error = client
        .send(&receipt(1, "r"))
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, OfdError::Unreachable(_)), "{error:?}");
}

#[tokio::test]
async fn control_api_refuses_bad_requests_and_bodies_are_limited() {
    let (emulator, _client) = start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", emulator.base_url());
    let bad_mode = http
        .post(url("/control/mode"))
        .json(&json!({"mode": "sideways"}))
        .send()
        .await
        .expect("reachable");
    assert!(bad_mode.status().is_client_error());
    let bad_status = http
        .post(url("/control/mode"))
        .json(&json!({"mode": "5xx", "status": 200}))
        .send()
        .await
        .expect("reachable");
    assert_eq!(bad_status.status(), 422);
    let garbage = http
        .post(url(fiscal::ofd::EXCHANGE_PATH))
        .body(vec![0u8; 100])
        .send()
        .await
        .expect("reachable");
    assert_eq!(garbage.status(), 400);
    let huge = http
        .post(url(fiscal::ofd::EXCHANGE_PATH))
        .body(vec![0u8; 200 * 1024])
        .send()
        .await
        .expect("reachable");
    assert_eq!(huge.status(), 413);
    assert!(received(&emulator).await.is_empty());
    emulator.shutdown().await;
}
