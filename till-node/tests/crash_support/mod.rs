//! The rig of the UAT-10c crash tests (`fiscal_crash.rs`): the register and OFD emulators
//! living across the till's restarts, the till binary started and killed on one data
//! directory, and the once-and-only-once checks.

#![allow(dead_code)]

#[path = "../daemon_support/mod.rs"]
mod daemon_support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use daemon_support::LogLines;
use fiscal::failpoint;
use fiscal_emulators::ofd::{self as ofd_emulator, EmulatorHandle, ModeRequest};
use fiscal_emulators::register::{self as emulator, EmulatorConfig, Faults, RunningEmulator};
use serde_json::{json, Value};

pub const ADMIN: &str = "admin-token-fiscal-crash";
pub const HUB: &str = "hub-token-fiscal-crash";
/// Generous: a debug build on a busy two-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);
pub const POLL: Duration = Duration::from_millis(20);
/// `abort()` ends the process with this signal.
pub const SIGABRT: i32 = 6;

/// One run of the till binary.
pub struct Till {
    pub child: Child,
    pub base: String,
    pub log: LogLines,
}

pub struct Rig {
    pub register: RunningEmulator,
    pub ofd: EmulatorHandle,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub till: Option<Till>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(till) = self.till.as_mut() {
            let _ = till.child.kill();
            let _ = till.child.wait();
        }
    }
}

impl Rig {
    /// Both emulators up; the register not yet linked where the till looks for it.
    pub async fn new() -> Rig {
        let register = emulator::start(EmulatorConfig::ephemeral())
            .await
            .expect("register emulator");
        let ofd = ofd_emulator::spawn("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("OFD emulator");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Rig {
            register,
            ofd,
            http,
            dir: tempfile::tempdir().expect("tempdir"),
            till: None,
        }
    }

    /// The data directory every run of the till shares.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the till opens the register: a symlink to the emulator's pty.
    pub fn register_link(&self) -> PathBuf {
        self.dir.path().join("register")
    }

    /// "Plugs the register in": the till connects on its next reconnect round.
    pub fn attach_register(&self) {
        std::os::unix::fs::symlink(&self.register.serial_path, self.register_link())
            .expect("linking the register");
    }

    /// Starts the till on the shared data directory, with `failpoint` armed when given.
    pub fn spawn(&mut self, failpoint: Option<&str>) {
        assert!(self.till.is_none(), "one till at a time");
        let mut command: Command = daemon_support::command(&self.data_dir(), ADMIN, HUB);
        command
            .arg("--register")
            .arg(format!("serial:{}", self.register_link().display()))
            .args(["--ofd", &self.ofd.base_url()])
            .args(["--print-wait-ms", "0"]);
        match failpoint {
            Some(name) => command.env(failpoint::ENV, name),
            None => command.env_remove(failpoint::ENV),
        };
        let (child, address, log) = daemon_support::spawn_listening_logged(command, &[ADMIN]);
        self.till = Some(Till {
            child,
            base: format!("http://{address}"),
            log,
        });
    }

    pub fn till(&self) -> &Till {
        self.till.as_ref().expect("a running till")
    }

    pub fn log_tail(&self) -> String {
        let Some(till) = self.till.as_ref() else {
            return String::new();
        };
        let lines = till.log.lock().unwrap_or_else(|e| e.into_inner());
        let skip = lines.len().saturating_sub(40);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the till to abort at `name`: killed by SIGABRT, having said so on stderr.
    pub async fn expect_failpoint_exit(&mut self, name: &str) {
        let started = Instant::now();
        let status = loop {
            let till = self.till.as_mut().expect("a running till");
            if let Some(status) = till.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "the till never reached {name}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        };
        assert!(!status.success(), "exited normally at {name}: {status:?}");
        assert_eq!(
            status.signal(),
            Some(SIGABRT),
            "not the failpoint's abort: {status:?}; log:\n{}",
            self.log_tail()
        );
        // The reader thread sees the last lines once the pipe closes.
        let said = format!("failpoint {name} reached");
        let started = Instant::now();
        while !self.log_tail().contains(&said) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no `{said}` line; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
        self.till = None;
    }

    /// `kill -9` and reap.
    pub fn kill_9(&mut self) {
        let mut till = self.till.take().expect("a running till");
        till.child.kill().expect("SIGKILL");
        let status = till.child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }

    /// Stops the till with SIGTERM (an orderly stop, not a crash) and reaps it.
    pub async fn stop(&mut self) {
        let mut till = self.till.take().expect("a running till");
        let sent = Command::new("kill")
            .args(["-TERM", &till.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let started = Instant::now();
        while till.child.try_wait().expect("try_wait").is_none() {
            assert!(started.elapsed() < TIMEOUT, "the till ignores SIGTERM");
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.till().base);
        let response = self.http.get(url).send().await.expect("GET");
        response.json().await.expect("json")
    }

    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: Value,
    ) -> reqwest::Result<(u16, Value)> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.till().base))
            .bearer_auth(ADMIN)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Opens the cash session; returns its id.
    pub async fn open_session(&self) -> String {
        let (status, body) = self
            .post(
                "/v1/session/open",
                None,
                json!({"cashier": "Иванова", "opening_cash": 0}),
            )
            .await
            .expect("POST /v1/session/open");
        assert_eq!(status, 200, "{body}");
        let current = self.get("/v1/session/current").await;
        current["session_id"]
            .as_str()
            .expect("an open session")
            .to_owned()
    }

    /// Sells one frame; the receipt id when the till answered 200, `None` when the till was
    /// gone before answering (a crash races the sale: it may or may not be stored).
    pub async fn sell(&self, key: &str, price: i64) -> Option<String> {
        let body = json!({
            "pos_id": "T1", "type": "sale",
            "items": [{"sku": "F-1", "name": "Оправа", "qty": 1, "price": price, "vat": "vat22"}],
            "payments": [{"method": "cash", "amount": price}],
        });
        let (status, body) = self.post("/v1/kkt/receipt", Some(key), body).await.ok()?;
        assert_eq!(status, 200, "sale {key}: {body}");
        Some(body["receipt_id"].as_str().expect("receipt_id").to_owned())
    }

    /// Sells `count` frames keyed `{prefix}-{i}`; every sale must be answered.
    pub async fn sell_many(&self, prefix: &str, count: i64) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..count {
            let id = self
                .sell(&format!("{prefix}-{i}"), 100_000 + i * 100)
                .await
                .unwrap_or_else(|| {
                    panic!("sale {prefix}-{i} unanswered; log:\n{}", self.log_tail())
                });
            ids.push(id);
        }
        ids
    }

    pub async fn status(&self) -> Value {
        self.get("/v1/kkt/buffer/status").await
    }

    pub async fn wait_status(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "timed out waiting for {what}: {status}\nlog:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every receipt of the session is acknowledged by the OFD.
    pub async fn wait_drained(&self, session_id: &str) -> Value {
        let sold = self.session_receipts(session_id).await.len();
        self.wait_status("everything acknowledged", |s| {
            s["current_queued"] == 0 && s["stages"]["acknowledged"].as_u64() == Some(sold as u64)
        })
        .await
    }

    /// Every document the register made (`GET /documents` of its control API).
    pub async fn documents(&self) -> Vec<Value> {
        let url = format!("http://{}/documents", self.register.control_addr);
        let list: Value = self
            .http
            .get(url)
            .send()
            .await
            .expect("GET /documents")
            .json()
            .await
            .expect("json");
        list.as_array().cloned().expect("a list of documents")
    }

    /// The register's `GET /state` (FN counters, whether a receipt is open).
    pub async fn register_state(&self) -> Value {
        let url = format!("http://{}/state", self.register.control_addr);
        let response = self.http.get(url).send().await.expect("GET /state");
        response.json().await.expect("json")
    }

    /// Receipt id → the FDs of every receipt document the register made for it.
    pub async fn receipt_fds(&self) -> BTreeMap<String, Vec<u64>> {
        let mut fds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for document in self.documents().await {
            if document["type"] == "receipt" {
                let id = document["receipt_id"]
                    .as_str()
                    .expect("receipt id")
                    .to_owned();
                fds.entry(id)
                    .or_default()
                    .push(document["fd"].as_u64().expect("fd"));
            }
        }
        fds
    }

    /// The receipt ids the till holds in the session (durable sales, answered or not).
    pub async fn session_receipts(&self, session_id: &str) -> BTreeSet<String> {
        let current = self.get("/v1/session/current").await;
        assert_eq!(current["session_id"], session_id, "{current}");
        current["receipt_ids"]
            .as_array()
            .expect("receipt_ids")
            .iter()
            .map(|id| id.as_str().expect("id").to_owned())
            .collect()
    }

    pub fn set_ofd(&self, request: &ModeRequest) {
        self.ofd.shared().set_mode(request).expect("OFD mode");
    }

    pub fn set_register_faults(&self, faults: Faults) {
        *self
            .register
            .shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Support's emergency drain: close the breaker and retry the OFD at once.
    pub async fn drain_now(&self) {
        let (status, body) = self
            .post("/v1/kkt/circuit_breaker/reset", None, json!({}))
            .await
            .expect("reset");
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .post("/v1/kkt/buffer/sync?force=true", None, json!({}))
            .await
            .expect("force sync");
        assert!(status == 202 || status == 409, "{status} {body}");
    }

    /// The UAT-10c verdict, after [`Rig::wait_drained`]: see the module header. Returns the
    /// OFD's deliveries per FD for scenario-specific checks.
    pub async fn assert_each_once(
        &self,
        session_id: &str,
        answered: &[String],
        deliveries_max: u32,
    ) -> BTreeMap<u32, u32> {
        let sold = self.session_receipts(session_id).await;
        for id in answered {
            assert!(sold.contains(id), "a sale answered 200 is lost: {id}");
        }
        let fiscalised = self.receipt_fds().await;
        for (id, fds) in &fiscalised {
            assert_eq!(fds.len(), 1, "receipt {id} fiscalised twice: FDs {fds:?}");
        }
        let fiscalised_ids: BTreeSet<String> = fiscalised.keys().cloned().collect();
        assert_eq!(
            fiscalised_ids, sold,
            "the register's receipts are not the session's receipts"
        );

        let documents = self.documents().await;
        let fds: Vec<u64> = documents
            .iter()
            .map(|d| d["fd"].as_u64().expect("fd"))
            .collect();
        let expected: Vec<u64> = (1..=fds.len() as u64).collect();
        assert_eq!(fds, expected, "FD numbers are not 1..n");
        for document in &documents {
            assert_eq!(document["acked"], true, "the FN still holds {document}");
        }

        let received = self.ofd.shared().received();
        let mut deliveries = BTreeMap::new();
        for document in &documents {
            let fd = u32::try_from(document["fd"].as_u64().expect("fd")).expect("fd");
            let copies: Vec<_> = received.iter().filter(|r| r.fd == fd).collect();
            assert_eq!(copies.len(), 1, "FD {fd} at the OFD: {copies:?}");
            let copy = copies[0];
            assert!(copy.acknowledged, "FD {fd} not acknowledged: {copy:?}");
            assert_eq!(
                copy.receipt_id.as_deref(),
                document["receipt_id"].as_str(),
                "FD {fd}"
            );
            assert!(
                (1..=deliveries_max).contains(&copy.deliveries),
                "FD {fd} delivered {} times: {copy:?}",
                copy.deliveries
            );
            deliveries.insert(fd, copy.deliveries);
        }
        assert_eq!(
            received.len(),
            documents.len(),
            "the OFD has unknown documents"
        );

        let status = self.status().await;
        assert_eq!(status["current_queued"], 0, "{status}");
        assert_eq!(
            status["stages"]["acknowledged"].as_u64(),
            Some(sold.len() as u64),
            "{status}"
        );
        assert_eq!(status["stages"]["dead_letter"], 0, "{status}");
        assert_eq!(status["dlq_size"], 0, "{status}");
        deliveries
    }
}
