//! The real `till-node` binary with a register and an OFD: the register emulator on a
//! pseudo-terminal and the OFD emulator on loopback HTTP (both from the `fiscal` crate, run in
//! this test's runtime). A sale comes back `printed` with its fiscal document, reaches the OFD,
//! and health, status and metrics show the pipeline. UAT-10b: at capacity the next sale is
//! refused with 503 and a reason, alerts at 80 % and 100 %, and the emergency drain unblocks.

mod daemon_support;

use std::process::Child;
use std::time::{Duration, Instant};

use fiscal_emulators::ofd::{self as ofd_emulator, EmulatorHandle, Mode, ModeRequest};
use fiscal_emulators::register::{self as emulator, EmulatorConfig, RunningEmulator};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-fiscal-test";

struct Rig {
    child: Child,
    base: String,
    register: RunningEmulator,
    ofd: EmulatorHandle,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(capacity: u32) -> Rig {
    let register = emulator::start(EmulatorConfig::ephemeral())
        .await
        .expect("register emulator");
    let ofd = ofd_emulator::spawn("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("OFD emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = daemon_support::command(dir.path(), ADMIN, "hub-token-fiscal-test");
    command
        .arg("--register")
        .arg(format!("serial:{}", register.serial_path.display()))
        .args(["--ofd", &ofd.base_url()])
        .args(["--buffer-capacity", &capacity.to_string()]);
    let (child, address) = daemon_support::spawn_listening(command, &[ADMIN]);
    Rig {
        child,
        base: format!("http://{address}"),
        register,
        ofd,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Rig {
    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        response.json().await.expect("json")
    }

    async fn post(&self, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn sell(&self, key: &str, price: i64) -> (u16, Value) {
        let body = json!({
            "pos_id": "T1", "type": "sale",
            "items": [{"sku": "F-1", "name": "Оправа", "qty": 1, "price": price, "vat": "vat22"}],
            "payments": [{"method": "cash", "amount": price}],
        });
        self.post("/v1/kkt/receipt", Some(key), body).await
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let status = self.get("/v1/kkt/buffer/status").await;
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn documents(&self) -> Vec<Value> {
        let url = format!("http://{}/documents", self.register.control_addr);
        let list: Value = reqwest::get(url)
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        list.as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn a_sale_is_printed_fiscalised_once_and_acknowledged() {
    let rig = start(200).await;
    let (status, _) = rig
        .post("/v1/session/open", None, json!({"cashier": "Иванова"}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = rig.sell("sale-1", 150_000).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "printed", "{body}");
    let fd = body["fiscal_doc"]["fd_number"].as_u64().expect("an FD");
    let receipt_id = body["receipt_id"].as_str().expect("id").to_owned();

    let status = rig
        .wait_for("acknowledged", |s| s["stages"]["acknowledged"] == 1)
        .await;
    assert_eq!(status["current_queued"], 0);
    assert_eq!(status["circuit_state"], "CLOSED");
    let documents = rig.documents().await;
    let ours: Vec<_> = documents
        .iter()
        .filter(|d| d["receipt_id"] == receipt_id.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "fiscalised once: {documents:?}");
    assert_eq!(ours[0]["fd"].as_u64(), Some(fd));
    let received = rig.ofd.shared().received();
    assert!(received
        .iter()
        .any(|d| d.receipt_id.as_deref() == Some(receipt_id.as_str()) && d.acknowledged));

    // The same key again: the same sale, not a second one.
    let (status, _) = rig.sell("sale-1", 150_000).await;
    assert_eq!(status, 200);
    assert_eq!(
        rig.documents()
            .await
            .iter()
            .filter(|d| d["type"] == "receipt")
            .count(),
        1
    );

    let health = rig.get("/v1/health").await;
    assert_eq!(health["components"]["circuit_breaker"]["state"], "CLOSED");
    assert_eq!(health["components"]["register"]["status"], "ok");
    let metrics = rig
        .http
        .get(format!("{}/metrics", rig.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "kkt_buffer_size",
        "kkt_buffer_percent_full",
        "kkt_circuit_breaker_state",
        "kkt_circuit_breaker_opens_total",
        "kkt_sync_duration_seconds",
        "kkt_receipts_synced_total",
        "kkt_dlq_size",
        "kkt_hlc_drift_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    let (status, body) = rig.post("/v1/session/x_report", None, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = rig.post("/v1/session/close", None, json!({})).await;
    assert_eq!(status, 200);
    let started = Instant::now();
    while !rig
        .documents()
        .await
        .iter()
        .any(|d| d["type"] == "shift_close")
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no Z report");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn uat_10b_a_full_buffer_refuses_sales_until_the_emergency_drain() {
    let rig = start(5).await;
    rig.ofd
        .shared()
        .set_mode(&ModeRequest::from(Mode::Down))
        .expect("mode");
    rig.post("/v1/session/open", None, json!({"cashier": "Петрова"}))
        .await;
    for i in 0..4 {
        let (status, body) = rig.sell(&format!("s-{i}"), 10_000 + i).await;
        assert_eq!(status, 200, "{body}");
    }
    let status = rig.get("/v1/kkt/buffer/status").await;
    assert_eq!(status["current_queued"], 4);
    assert_eq!(status["alert"], "warning", "80 %: {status}");
    let (status, _) = rig.sell("s-4", 10_004).await;
    assert_eq!(status, 200);
    let status = rig.get("/v1/kkt/buffer/status").await;
    assert_eq!(status["alert"], "full", "100 %: {status}");
    let (status, body) = rig.sell("s-5", 10_005).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "buffer_full");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("ОФД")));

    // The OFD returns; support drains at once instead of waiting for the backoff.
    rig.ofd
        .shared()
        .set_mode(&ModeRequest::from(Mode::Up))
        .expect("mode");
    let (status, _) = rig
        .post("/v1/kkt/circuit_breaker/reset", None, json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = rig
        .post("/v1/kkt/buffer/sync?force=true", None, json!({}))
        .await;
    assert!(status == 202 || status == 409, "{status}");
    rig.wait_for("drained", |s| s["current_queued"] == 0).await;
    let (status, body) = rig.sell("s-6", 10_006).await;
    assert_eq!(status, 200, "{body}");
    let logs = rig.get("/v1/kkt/buffer/logs?level=WARN&limit=10").await;
    assert!(
        logs["entries"].as_array().is_some_and(|e| !e.is_empty()),
        "the outage is in the log: {logs}"
    );
}

async fn register_fault(rig: &Rig, mode: &str) {
    let url = format!("http://{}/faults", rig.register.control_addr);
    let response = rig
        .http
        .post(url)
        .json(&json!({"mode": mode}))
        .send()
        .await
        .expect("POST /faults");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn a_refund_waits_for_its_original_then_is_made_once() {
    let rig = start(200).await;
    rig.post("/v1/session/open", None, json!({"cashier": "Иванова"}))
        .await;
    // The register falls silent: the sale is durable but not fiscalised.
    register_fault(&rig, "silent").await;
    let (status, sale) = rig.sell("sale-r", 99_000).await;
    assert_eq!(status, 200, "{sale}");
    assert_eq!(sale["status"], "buffered");
    let original = sale["receipt_id"].as_str().expect("id").to_owned();

    let refund = json!({"original_receipt_id": original});
    let response = rig
        .http
        .post(format!("{}/v1/pos/refund", rig.base))
        .header("Idempotency-Key", "refund-1")
        .json(&refund)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 409);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "original_not_fiscalised", "{body}");
    assert_eq!(body["retry_after_seconds"], 5);

    // The register is back: the original is fiscalised and the saga makes the refund itself.
    register_fault(&rig, "ok").await;
    let started = Instant::now();
    let refund_doc = loop {
        let documents = rig.documents().await;
        if let Some(doc) = documents
            .iter()
            .find(|d| d["type"] == "receipt" && d["operation"] == 2)
        {
            break doc.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no refund: {documents:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refund_doc["total"], 99_000);
    // The client's retry gets the refund the saga made, not a second one.
    let (status, first) = rig
        .post("/v1/pos/refund", Some("refund-1"), refund.clone())
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = rig.post("/v1/pos/refund", Some("refund-1"), refund).await;
    assert_eq!(status, 200);
    assert_eq!(first["receipt_id"], again["receipt_id"]);
    assert_eq!(first["receipt_id"], refund_doc["receipt_id"]);
    let refunds = rig
        .documents()
        .await
        .iter()
        .filter(|d| d["operation"] == 2)
        .count();
    assert_eq!(refunds, 1, "refunded once");
}

#[tokio::test]
async fn bad_refunds_are_refused_with_the_reason() {
    let rig = start(200).await;
    rig.post("/v1/session/open", None, json!({"cashier": "Иванова"}))
        .await;
    let (_, sale) = rig.sell("sale-b", 5_000).await;
    let original = sale["receipt_id"].as_str().expect("id").to_owned();
    let unknown = "00000000-0000-4000-8000-000000000000";
    let cases = [
        (
            None,
            json!({"original_receipt_id": original}),
            400,
            "missing_idempotency_key",
        ),
        (
            Some("b1"),
            json!({"original_receipt_id": unknown}),
            409,
            "original_not_found",
        ),
        (
            Some("b2"),
            json!({"original_receipt_id": "not-a-uuid"}),
            422,
            "invalid_field",
        ),
        (
            Some("b3"),
            json!({"original_receipt_id": original, "payments": [{"method": "cash", "amount": 5000}]}),
            422,
            "invalid_field",
        ),
        (
            Some("b4"),
            json!({"original_receipt_id": original, "extra": 1}),
            422,
            "invalid_field",
        ),
    ];
    for (key, body, status, code) in cases {
        let (got, answer) = rig.post("/v1/pos/refund", key, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body} → {answer}"
        );
    }
    // Only sales are refunded: a refund of the refund is refused.
    let (status, refund) = rig
        .post(
            "/v1/pos/refund",
            Some("b5"),
            json!({"original_receipt_id": original}),
        )
        .await;
    assert_eq!(status, 200, "{refund}");
    let (status, answer) = rig
        .post(
            "/v1/pos/refund",
            Some("b6"),
            json!({"original_receipt_id": refund["receipt_id"]}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("not_refundable"))
    );
}
