//! The till under test: [`TillSpec`] holds what `till-node run` is started with, and
//! [`TillProcess`] runs it — start, kill -9, restart on the same data directory, point it at
//! another hub — always on a port the OS picks, read from its `listening on` line.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::http::TillClient;
use crate::process::{Binaries, Daemon};

/// How long a till may take to log `listening on` (it loads its documents first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The settings of one till.
#[derive(Debug, Clone)]
pub struct TillSpec {
    /// Store id.
    pub store: String,
    /// Till id.
    pub till: String,
    /// Data directory (holds `till.db`).
    pub data_dir: PathBuf,
    /// Base URL of the hub (`http://127.0.0.1:PORT`); need not be up.
    pub hub_url: String,
    /// The till's device token at the hub.
    pub hub_token: String,
    /// Token of the till's admin routes.
    pub admin_token: String,
    /// `--heartbeat-secs`, when not the default.
    pub heartbeat_secs: Option<u64>,
    /// `--listen`.
    pub listen: String,
    /// More flags, appended as given.
    pub extra_args: Vec<String>,
    /// The log file (appended across restarts).
    pub log_path: PathBuf,
}

impl TillSpec {
    /// Till `store/till` with data and log under `work_dir`, listening on a port the OS picks.
    pub fn new(
        store: &str,
        till: &str,
        work_dir: &Path,
        hub_url: &str,
        hub_token: &str,
    ) -> TillSpec {
        TillSpec {
            store: store.to_owned(),
            till: till.to_owned(),
            data_dir: work_dir.join(format!("till-{store}-{till}")),
            hub_url: hub_url.to_owned(),
            hub_token: hub_token.to_owned(),
            admin_token: format!("admin-{}", uuid::Uuid::new_v4().simple()),
            heartbeat_secs: None,
            listen: "127.0.0.1:0".to_owned(),
            extra_args: Vec::new(),
            log_path: work_dir.join(format!("till-{store}-{till}.log")),
        }
    }

    /// Sets `--heartbeat-secs`.
    pub fn heartbeat(mut self, secs: u64) -> TillSpec {
        self.heartbeat_secs = Some(secs);
        self
    }

    /// Appends a flag and its value.
    pub fn arg(mut self, flag: &str, value: &str) -> TillSpec {
        self.extra_args.push(flag.to_owned());
        self.extra_args.push(value.to_owned());
        self
    }

    /// The till's peer id at the hub (`till:S1/T1`).
    pub fn peer(&self) -> String {
        format!("till:{}/{}", self.store, self.till)
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("till.db")
    }

    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--listen".into(),
            self.listen.clone().into(),
            "--data".into(),
            self.data_dir.clone().into(),
            "--store".into(),
            self.store.clone().into(),
            "--till".into(),
            self.till.clone().into(),
            "--hub".into(),
            self.hub_url.clone().into(),
        ];
        if let Some(secs) = self.heartbeat_secs {
            args.push("--heartbeat-secs".into());
            args.push(secs.to_string().into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }
}

/// A till daemon that can be killed and restarted on the same data.
#[derive(Debug)]
pub struct TillProcess {
    bins: Binaries,
    spec: TillSpec,
    daemon: Option<Daemon>,
    addr: Option<SocketAddr>,
    client: Option<TillClient>,
    starts: u32,
}

impl TillProcess {
    /// Starts the till and waits until it listens.
    pub async fn start(bins: &Binaries, spec: TillSpec) -> anyhow::Result<TillProcess> {
        let mut till = TillProcess {
            bins: bins.clone(),
            spec,
            daemon: None,
            addr: None,
            client: None,
            starts: 0,
        };
        till.launch().await?;
        Ok(till)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        // Tokens go through the environment, as in production: not visible in `ps`.
        let envs = [
            ("TILL_NODE_HUB_TOKEN", self.spec.hub_token.clone()),
            ("TILL_NODE_ADMIN_TOKEN", self.spec.admin_token.clone()),
        ];
        let name = format!("till {}/{}", self.spec.store, self.spec.till);
        let mut daemon = Daemon::spawn(
            &name,
            &self.bins.till,
            &self.spec.args(),
            &envs,
            &self.spec.log_path,
        )?;
        let addr = daemon.wait_listening(START_TIMEOUT).await?;
        self.client = Some(TillClient::new(
            &format!("http://{addr}"),
            &self.spec.admin_token,
        )?);
        self.addr = Some(addr);
        self.daemon = Some(daemon);
        self.starts += 1;
        Ok(())
    }

    /// The settings.
    pub fn spec(&self) -> &TillSpec {
        &self.spec
    }

    /// Times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// A client of the running till.
    pub fn client(&self) -> anyhow::Result<&TillClient> {
        self.client
            .as_ref()
            .with_context(|| format!("till {} is not running", self.spec.peer()))
    }

    /// The bound address of the running till.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// kill -9 (no chance to flush or clean up).
    pub fn kill9(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill9();
        }
        self.client = None;
        self.addr = None;
    }

    /// SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.stop().await;
        }
        self.client = None;
        self.addr = None;
    }

    /// Starts again on the same data directory (after [`TillProcess::kill9`] or
    /// [`TillProcess::stop`]; a running till is killed first).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.launch().await
    }

    /// Stops, points the till at another hub, and starts again.
    pub async fn restart_with_hub(&mut self, hub_url: &str) -> anyhow::Result<()> {
        self.stop().await;
        self.spec.hub_url = hub_url.to_owned();
        self.launch().await
    }

    /// The last lines of the till's output.
    pub fn tail(&self) -> String {
        self.daemon.as_ref().map(Daemon::tail).unwrap_or_default()
    }
}
