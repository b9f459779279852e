//! Shared helpers of the register tests: an in-process emulator on a real pty with a driver
//! connected to it, receipt builders, and the control API client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use crdt_model::receipt::{ItemDraft, PaymentDraft, PaymentMethod, ReceiptDraft, ReceiptKind};
use crdt_model::{Hlc, Kopecks, Quantity, Receipt, ReceiptId, SessionId, StoreId, TillId, VatRate};
use fiscal::register::FiscalReceipt;
use fiscal::shtrih::{DriverConfig, LinkConfig, ShtrihDriver};
use fiscal_emulators::register::{self as emulator, EmulatorConfig, PtyStream, RunningEmulator};
use uuid::Uuid;

/// Driver timeouts sized for tests: quick failure on silence, room for 300 ms commands and
/// for a loaded CI machine (250 ms instead of the 100 ms Shtrih ENQ timeout).
pub fn test_config() -> DriverConfig {
    DriverConfig {
        link: LinkConfig {
            enq_timeout: Duration::from_millis(250),
            byte_timeout: Duration::from_millis(250),
            max_retries: 3,
            max_stale_answers: 8,
        },
        answer_timeout: Duration::from_millis(1500),
        fiscal_timeout: Duration::from_millis(2000),
        ..DriverConfig::default()
    }
}

/// Starts an emulator (persisted in `state` when given) and opens a driver on its pty.
pub async fn start(state: Option<PathBuf>) -> (RunningEmulator, ShtrihDriver<PtyStream>) {
    let config = EmulatorConfig {
        state,
        ..EmulatorConfig::ephemeral()
    };
    let running = emulator::start(config).await.expect("emulator starts");
    let driver = connect(&running, test_config());
    (running, driver)
}

/// A new driver on the emulator's serial path.
pub fn connect(running: &RunningEmulator, config: DriverConfig) -> ShtrihDriver<PtyStream> {
    let stream = PtyStream::open(&running.serial_path).expect("pty opens");
    ShtrihDriver::new(stream, config)
}

/// A validated receipt: one line per `(price, vat)`, paid by card, or by cash when `cash`.
pub fn receipt(
    kind: ReceiptKind,
    refund_of: Option<ReceiptId>,
    lines: &[(i64, VatRate)],
    cash: bool,
) -> Receipt {
    let items: Vec<ItemDraft> = lines
        .iter()
        .enumerate()
        .map(|(index, (price, vat))| ItemDraft {
            sku: None,
            name: format!("Оправа №{index}"),
            qty: Quantity::ONE,
            price: Kopecks(*price),
            vat: *vat,
            discount: None,
            payment_method: None,
            payment_object: None,
        })
        .collect();
    let total: i64 = lines.iter().map(|(price, _)| price).sum();
    let draft = ReceiptDraft {
        pos_id: "pos-1".into(),
        kind,
        items,
        payments: vec![PaymentDraft {
            method: if cash {
                PaymentMethod::Cash
            } else {
                PaymentMethod::Card
            },
            amount: Kopecks(total),
        }],
        discount: None,
        buyer_contact: None,
        refund_of,
    };
    Receipt::from_draft(
        draft,
        ReceiptId::new(Uuid::new_v4()),
        StoreId::new("S1").expect("store id"),
        TillId::new("T1").expect("till id"),
        SessionId::new(Uuid::new_v4()),
        Hlc::new(1_795_461_000_000, 0, "S1.T1").expect("valid hlc"),
    )
    .expect("valid receipt")
}

/// A one-line card sale in fiscal form.
pub fn sale(price: i64) -> FiscalReceipt {
    FiscalReceipt::from_receipt(&receipt(
        ReceiptKind::Sale,
        None,
        &[(price, VatRate::NoVat)],
        false,
    ))
    .expect("converts")
}

/// `POST` JSON to the control API.
pub async fn post(
    running: &RunningEmulator,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let url = format!("http://{}{}", running.control_addr, path);
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

/// `GET` JSON from the control API.
pub async fn get(running: &RunningEmulator, path: &str) -> serde_json::Value {
    let url = format!("http://{}{}", running.control_addr, path);
    let response = reqwest::get(url).await.expect("request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

/// Sets the fault mode.
pub async fn fault(running: &RunningEmulator, body: serde_json::Value) {
    post(running, "/faults", body).await;
}
