//! `fiscal ofd-emulator --listen ADDR` as the acceptance scripts run it: it prints
//! `listening on ADDR`, serves the control API, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn cli_listens_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fiscal"))
        .args(["ofd-emulator", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats: serde_json::Value = runtime.block_on(async {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("http://{addr}/control/mode"))
            .json(&serde_json::json!({"mode": "429"}))
            .send()
            .await
            .expect("control API reachable");
        assert_eq!(response.status(), 200);
        client
            .get(format!("http://{addr}/control/stats"))
            .send()
            .await
            .expect("reachable")
            .json()
            .await
            .expect("JSON")
    });
    assert_eq!(stats["mode"], "429");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn cli_refuses_missing_listen() {
    let output = Command::new(env!("CARGO_BIN_EXE_fiscal"))
        .arg("ofd-emulator")
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
}
