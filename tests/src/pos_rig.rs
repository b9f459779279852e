//! The store behind the browser POS scenarios and the POS bench: a hub (embedded SQLite) with
//! a cashier and a manager of store S1 and a catalogue, a till with the register emulator on a
//! pseudo-terminal and the OFD emulator (both run in this process, from the `fiscal` library),
//! serving the POS bundle (`--web`). The till listens on a fixed port so that a restarted till
//! is the same origin for the page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use fiscal_emulators::ofd::{self as ofd_emulator, EmulatorHandle};
use fiscal_emulators::register::{self as register_emulator, EmulatorConfig, RunningEmulator};
use serde_json::{json, Value};

use crate::{free_port, Binaries, HubEnv, HubProcess, TillProcess, TillSpec};

/// The store of the scenarios.
pub const POS_STORE: &str = "S1";
/// The till of the scenarios.
pub const POS_TILL: &str = "T1";
/// The cashier's login and PIN.
pub const CASHIER: &str = "ivanova";
/// The cashier's PIN.
pub const CASHIER_PIN: &str = "2580";
/// The store manager's login.
pub const MANAGER: &str = "petrova";
/// The store manager's secret (approves discounts above 10 %).
pub const MANAGER_SECRET: &str = "manager-secret-1";

/// The EAN-13 of product `i` of [`catalogue_csv`]: `460` (Russia), nine digits of `i`, and
/// the check digit.
pub fn ean(i: usize) -> String {
    let base = format!("460{:09}", i % 1_000_000_000);
    let sum: u32 = base
        .bytes()
        .enumerate()
        .map(|(pos, b)| u32::from(b - b'0') * if pos % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{base}{}", (10 - sum % 10) % 10)
}

/// The SKU of product `i`.
pub fn sku(i: usize) -> String {
    format!("F-{i:05}")
}

/// The price of product `i` in kopecks.
pub fn price(i: usize) -> i64 {
    150_000 + (i as i64 % 97) * 1_000
}

/// A catalogue of `n` frames and lenses.
pub fn catalogue_csv(n: usize) -> String {
    let mut csv = String::from("sku,ean,name,price,vat\n");
    for i in 0..n {
        let kind = if i % 2 == 0 {
            "Оправа"
        } else {
            "Линза"
        };
        csv.push_str(&format!(
            "{},{},{kind} модель {i},{},vat22\n",
            sku(i),
            ean(i),
            price(i)
        ));
    }
    csv
}

/// The POS bundle: `$OPTICS_WEB_DIST` or `web/dist` (built by scripts/build-web.sh).
pub fn web_dist() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("OPTICS_WEB_DIST").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/dist"),
        PathBuf::from,
    );
    ensure!(
        dir.join("index.html").is_file(),
        "the POS bundle is not built at {}: run ./scripts/build-web.sh",
        dir.display()
    );
    Ok(dir)
}

/// What to build.
#[derive(Debug, Clone)]
pub struct PosRigOptions {
    /// Products in the catalogue.
    pub products: usize,
    /// `--buffer-capacity` of the till.
    pub buffer_capacity: Option<usize>,
}

impl Default for PosRigOptions {
    fn default() -> Self {
        Self {
            products: 20,
            buffer_capacity: None,
        }
    }
}

/// A running store for the page.
pub struct PosRig {
    /// The hub's command line and database.
    pub env: HubEnv,
    /// The hub.
    pub hub: HubProcess,
    /// The till.
    pub till: TillProcess,
    /// The register emulator.
    pub register: RunningEmulator,
    /// The OFD emulator.
    pub ofd: EmulatorHandle,
    /// The page's address (`http://127.0.0.1:PORT/`).
    pub url: String,
    http: reqwest::Client,
    /// Holds every data directory and log; dropped last.
    pub work: tempfile::TempDir,
}

impl std::fmt::Debug for PosRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PosRig")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PosRig {
    /// Starts the hub, the emulators and the till, and waits until the till has its staff list.
    pub async fn start(
        bins: &Binaries,
        scenario: &str,
        options: PosRigOptions,
    ) -> anyhow::Result<PosRig> {
        let dist = web_dist()?;
        let work = crate::work_dir(scenario)?;
        let env = HubEnv::sqlite(bins, work.path());
        env.cli(
            &[
                "admin",
                "create-user",
                CASHIER,
                "--role",
                "cashier",
                "--store",
                POS_STORE,
            ],
            Some(&format!("{CASHIER_PIN}\n")),
        )
        .await?;
        env.cli(
            &[
                "admin",
                "create-user",
                MANAGER,
                "--role",
                "manager",
                "--store",
                POS_STORE,
            ],
            Some(&format!("{MANAGER_SECRET}\n")),
        )
        .await?;
        env.import_catalogue(POS_STORE, &catalogue_csv(options.products))
            .await?;
        let token = env.enroll_till(POS_STORE, POS_TILL).await?;
        let hub = env.serve("hub", "127.0.0.1:0").await?;
        let register = register_emulator::start(EmulatorConfig::ephemeral())
            .await
            .context("starting the register emulator")?;
        let ofd = ofd_emulator::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("starting the OFD emulator")?;
        let port = free_port()?;
        let mut spec = TillSpec::new(POS_STORE, POS_TILL, work.path(), &hub.url(), &token)
            .heartbeat(1)
            .arg(
                "--register",
                &format!("serial:{}", register.serial_path.display()),
            )
            .arg("--ofd", &ofd.base_url())
            .arg("--web", &dist.to_string_lossy());
        spec.listen = format!("127.0.0.1:{port}");
        if let Some(capacity) = options.buffer_capacity {
            spec = spec.arg("--buffer-capacity", &capacity.to_string());
        }
        let till = TillProcess::start(bins, spec).await?;
        let rig = PosRig {
            env,
            hub,
            till,
            register,
            ofd,
            url: format!("http://127.0.0.1:{port}/"),
            http: crate::http::http_client()?,
            work,
        };
        rig.wait_for_staff().await?;
        Ok(rig)
    }

    /// Waits until the till can log the cashier in: the hub's staff list arrived (the hub
    /// offers it in the same first round as the catalogue; the page's scans wait for the
    /// catalogue themselves).
    async fn wait_for_staff(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self
                .http
                .post(format!("{}v1/pos/login", self.url))
                .json(&json!({"pin": CASHIER_PIN, "device": "wrigprobe"}))
                .send()
                .await?;
            if reply.status().is_success() {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the till never received its staff list: HTTP {}",
                    reply.status()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The register's fiscal documents (`GET /documents` of its control API).
    pub async fn register_documents(&self) -> anyhow::Result<Vec<Value>> {
        let url = format!("http://{}/documents", self.register.control_addr);
        match self.http.get(&url).send().await?.json().await? {
            Value::Array(documents) => Ok(documents),
            other => bail!("GET /documents is not a list: {other}"),
        }
    }

    /// How many register documents carry `receipt_id`.
    pub async fn documents_for(&self, receipt_id: &str) -> anyhow::Result<usize> {
        Ok(self
            .register_documents()
            .await?
            .iter()
            .filter(|d| d["receipt_id"] == receipt_id)
            .count())
    }
}
