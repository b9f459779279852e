//! The hub under test: [`HubEnv`] is one hub database (embedded SQLite under a directory, or
//! a PostgreSQL URL) with the `hub` CLI commands the scenarios need, and [`HubProcess`] is a
//! running `hub serve` on it. Several processes may serve one PostgreSQL database.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;

use crate::http::HubClient;
use crate::process::{Binaries, Daemon};
use crate::{ADMIN_PASSWORD, ADMIN_USER};

/// How long a hub may take to log `listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one CLI command may take (argon2 hashing, migrations).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a hub keeps its data.
#[derive(Debug, Clone)]
pub enum HubDb {
    /// Embedded SQLite under this directory (`--data DIR`).
    Sqlite(PathBuf),
    /// PostgreSQL (`--database-url URL`).
    Postgres(String),
}

impl HubDb {
    fn args(&self) -> Vec<OsString> {
        match self {
            HubDb::Sqlite(dir) => vec!["--data".into(), dir.into()],
            HubDb::Postgres(url) => vec!["--database-url".into(), url.into()],
        }
    }
}

/// One hub database and the binaries that use it; logs go under `work_dir`.
#[derive(Debug, Clone)]
pub struct HubEnv {
    bins: Binaries,
    db: HubDb,
    work_dir: PathBuf,
}

impl HubEnv {
    /// A hub environment. `work_dir` holds the log files (and, for SQLite, usually the data).
    pub fn new(bins: &Binaries, db: HubDb, work_dir: &Path) -> HubEnv {
        HubEnv {
            bins: bins.clone(),
            db,
            work_dir: work_dir.to_owned(),
        }
    }

    /// An embedded-SQLite hub with its data in `work_dir/hub-data`.
    pub fn sqlite(bins: &Binaries, work_dir: &Path) -> HubEnv {
        HubEnv::new(bins, HubDb::Sqlite(work_dir.join("hub-data")), work_dir)
    }

    /// The database.
    pub fn db(&self) -> &HubDb {
        &self.db
    }

    /// Runs `hub ARGS… <db args>` with `stdin`, returning stdout; fails on a non-zero exit.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut command = tokio::process::Command::new(&self.bins.hub);
        command
            .args(args)
            .args(self.db.args())
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run hub {}", args.join(" ")))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).await?;
            pipe.shutdown().await?;
        }
        let output = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("hub {} timed out", args.join(" ")))??;
        if !output.status.success() {
            bail!(
                "hub {} failed ({}):\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `hub admin create-user NAME --role ROLE` with the password on stdin.
    pub async fn create_user(&self, name: &str, role: &str, password: &str) -> anyhow::Result<()> {
        self.cli(
            &["admin", "create-user", name, "--role", role],
            Some(&format!("{password}\n")),
        )
        .await
        .map(drop)
    }

    /// Creates the scenarios' admin user ([`ADMIN_USER`] / [`ADMIN_PASSWORD`]).
    pub async fn create_admin(&self) -> anyhow::Result<()> {
        self.create_user(ADMIN_USER, "admin", ADMIN_PASSWORD).await
    }

    /// `hub admin enroll-till`; returns the device token (the one stdout line).
    pub async fn enroll_till(&self, store: &str, till: &str) -> anyhow::Result<String> {
        let stdout = self
            .cli(
                &["admin", "enroll-till", "--store", store, "--till", till],
                None,
            )
            .await?;
        let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        match lines.as_slice() {
            [token] => Ok(token.trim().to_owned()),
            _ => bail!(
                "enroll-till printed {} lines, expected the token alone",
                lines.len()
            ),
        }
    }

    /// `hub catalogue import --store S FILE.csv` with `csv` as the file's text.
    pub async fn import_catalogue(&self, store: &str, csv: &str) -> anyhow::Result<()> {
        let path = self.work_dir.join(format!("catalogue-{store}.csv"));
        std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
        let path_text = path.to_string_lossy().into_owned();
        self.cli(&["catalogue", "import", "--store", store, &path_text], None)
            .await
            .map(drop)
    }

    /// Starts `hub serve --listen LISTEN` and waits until it listens. `name` labels its log
    /// (`<work_dir>/<name>.log`).
    pub async fn serve(&self, name: &str, listen: &str) -> anyhow::Result<HubProcess> {
        let mut args: Vec<OsString> = vec!["serve".into(), "--listen".into(), listen.into()];
        args.extend(self.db.args());
        let log = self.work_dir.join(format!("{name}.log"));
        let mut daemon = Daemon::spawn(name, &self.bins.hub, &args, &[], &log)?;
        let addr = daemon.wait_listening(START_TIMEOUT).await?;
        let client = HubClient::new(&format!("http://{addr}"))?;
        Ok(HubProcess {
            daemon,
            addr,
            client,
        })
    }
}

/// A running `hub serve`.
#[derive(Debug)]
pub struct HubProcess {
    daemon: Daemon,
    addr: SocketAddr,
    client: HubClient,
}

impl HubProcess {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client of this hub.
    pub fn client(&self) -> &HubClient {
        &self.client
    }

    /// Logs in as the scenarios' admin.
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        self.client.login(ADMIN_USER, ADMIN_PASSWORD).await
    }

    /// The process.
    pub fn daemon_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    /// Graceful stop.
    pub async fn stop(&mut self) {
        self.daemon.stop().await;
    }
}
