//! The real `till-node` binary: `--listen 127.0.0.1:0` logs the bound port, the API answers,
//! a sale is accepted, SIGTERM stops it cleanly, and a restart still has the sale.

mod daemon_support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-token-binary-test";
const HUB: &str = "hub-token-binary-test";

fn start(dir: &std::path::Path) -> (Child, String) {
    let (child, address) =
        daemon_support::spawn_listening(daemon_support::command(dir, ADMIN, HUB), &[ADMIN, HUB]);
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert!(
        !address.ends_with(":0"),
        "the real port is logged: {address}"
    );
    (child, address)
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "clean exit after SIGTERM: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn binary_serves_sells_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let (child, address) = start(dir.path());
    let base = format!("http://{address}");
    let health = client
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .expect("health answers");
    assert_eq!(health.status(), 200);
    let open = client
        .post(format!("{base}/v1/session/open"))
        .body(r#"{"cashier":"Иванова","opening_cash":0}"#)
        .send()
        .await
        .expect("open");
    assert_eq!(open.status(), 200);
    let sale = client
        .post(format!("{base}/v1/kkt/receipt"))
        .header("Idempotency-Key", "bin-1")
        .body(
            r#"{"pos_id":"T1","type":"sale","items":[{"sku":"F-1","name":"Оправа","qty":1,"price":150000,"vat":"vat22"}],"payments":[{"method":"cash","amount":150000}]}"#,
        )
        .send()
        .await
        .expect("sale");
    assert_eq!(sale.status(), 200);
    stop(child);

    let (child, address) = start(dir.path());
    let current: serde_json::Value = client
        .get(format!("http://{address}/v1/session/current"))
        .send()
        .await
        .expect("current")
        .json()
        .await
        .expect("json");
    assert_eq!(current["receipts_count"], 1);
    assert_eq!(current["sales_total"], 150_000);
    stop(child);
}

/// Runs `till-node run` with `extra` flags on a fresh directory; returns the exit code and
/// stderr. Used for settings the daemon must refuse before it starts.
fn refused_run(extra: &[&str], admin_token: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = daemon_support::command(dir.path(), admin_token, HUB)
        .args(extra)
        .output()
        .expect("till-node runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_invalid_device_or_a_short_admin_token_is_a_settings_error() {
    let (code, stderr) = refused_run(&["--device", "Касса 2"], ADMIN);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("device"), "{stderr}");
    let (code, stderr) = refused_run(&[], "short-token");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("admin-token"), "{stderr}");
    assert!(stderr.contains("16"), "{stderr}");
    assert!(
        !stderr.contains("short-token"),
        "the token is not echoed: {stderr}"
    );
}
