//! Starting the real `till-node` binary from tests: the base command line (a fresh data
//! directory, store S1, till T1, a hub address nobody listens on, tokens from the
//! environment) and spawning it until it logs the port it bound.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `till-node run` on `dir` with the given tokens; add flags before spawning.
pub fn command(dir: &Path, admin_token: &str, hub_token: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_till-node"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .args([
            "--store",
            "S1",
            "--till",
            "T1",
            "--hub",
            "http://127.0.0.1:9",
        ])
        .env("TILL_NODE_HUB_TOKEN", hub_token)
        .env("TILL_NODE_ADMIN_TOKEN", admin_token)
        .stdout(Stdio::null());
    command
}

/// Spawns `command` and waits for its `listening on ADDR` line; returns the child and the
/// address. Every stderr line is checked never to contain one of `secrets`.
pub fn spawn_listening(mut command: Command, secrets: &[&str]) -> (Child, String) {
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("till-node starts");
    let stderr = child.stderr.take().expect("stderr");
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            assert!(
                !secrets.iter().any(|secret| line.contains(secret.as_str())),
                "token logged: {line}"
            );
            if !sent {
                if let Some(at) = line.find("listening on ") {
                    let address = line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(address);
                    sent = true;
                }
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a `listening on` line");
    (child, address)
}

/// Every stderr line of a spawned `till-node`, collected while it runs (the newest
/// [`LOG_LINES_MAX`] kept), for tests that assert on the log or print it when they fail.
pub type LogLines = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>;

/// How many stderr lines [`spawn_listening_logged`] keeps.
pub const LOG_LINES_MAX: usize = 5_000;

/// As [`spawn_listening`], and every stderr line is also kept in the returned [`LogLines`].
pub fn spawn_listening_logged(mut command: Command, secrets: &[&str]) -> (Child, String, LogLines) {
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("till-node starts");
    let stderr = child.stderr.take().expect("stderr");
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    let lines = LogLines::default();
    let kept = std::sync::Arc::clone(&lines);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            assert!(
                !secrets.iter().any(|secret| line.contains(secret.as_str())),
                "token logged: {line}"
            );
            if !sent {
                if let Some(at) = line.find("listening on ") {
                    let address = line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(address);
                    sent = true;
                }
            }
            let mut kept = kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() == LOG_LINES_MAX {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a `listening on` line");
    (child, address, lines)
}
