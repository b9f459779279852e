//! The fiscal rows, on the real till-node with `--register serial:<pty> --ofd <url>`:
//! the register emulator and the OFD emulator run in this process (the `fiscal` library, in the
//! bench's runtime); the hub address is a closed port, since these rows measure the till alone.
//!
//! - `print`: "Pay" → register document, one cashier selling one sale after another, with the
//!   register emulator at 0 ms and at 300 ms per command (its `slow` fault).
//! - `drain`: receipts fiscalised while the OFD is down, then the OFD comes back: time until the
//!   OFD has acknowledged them all, with the operator's reset and forced drain (and the rate that
//!   gives), and without any operator action (waited for up to a cap).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use fiscal_emulators::ofd::{self as ofd_emulator, EmulatorHandle, Mode, ModeRequest};
use fiscal_emulators::register::{self as register_emulator, EmulatorConfig, RunningEmulator};
use serde_json::{json, Value};
use tests::{free_port, Binaries, SaleGen, TillClient, TillProcess, TillSpec, STORE};

use crate::scenarios::{ms, percentile};
use crate::{Row, Scale, Unit};

/// Poll interval of the buffer status and of the register's document list.
const POLL: Duration = Duration::from_millis(10);
/// Longest a setup step (warm-up drained, sales fiscalised) may take.
const SETUP_LIMIT: Duration = Duration::from_secs(300);
/// Longest the forced drain may take before the bench gives up (the seeds allow 10 min).
const FORCED_DRAIN_LIMIT: Duration = Duration::from_secs(600);
/// Sales made and acknowledged before anything is timed.
const WARMUP_SALES: usize = 5;
/// Print wait of the slow register: long enough that every answer is `printed`.
const SLOW_PRINT_WAIT_MS: u64 = 30_000;
/// The seeds' drain target: 200 receipts in 10 minutes.
const SEEDS_DRAIN_MS: f64 = 600_000.0;
const SEEDS_DRAIN_RECEIPTS: f64 = 200.0;

/// till-node on the register emulator's pseudo-terminal, with the OFD emulator.
struct Rig {
    till: TillProcess,
    register: Option<RunningEmulator>,
    ofd: Option<EmulatorHandle>,
    register_control: String,
    http: reqwest::Client,
    sales: SaleGen,
    /// Dropped last: holds the till's data directory and log.
    _work: tempfile::TempDir,
}

impl Rig {
    async fn start(
        bins: &Binaries,
        print_wait_ms: Option<u64>,
        buffer_capacity: Option<usize>,
    ) -> anyhow::Result<Rig> {
        let register = register_emulator::start(EmulatorConfig::ephemeral())
            .await
            .context("starting the register emulator")?;
        let ofd = ofd_emulator::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("starting the OFD emulator")?;
        let work = tests::work_dir("bench-fiscal")?;
        // Nobody listens there: the till keeps its receipts for a hub that never comes.
        let hub_url = format!("http://127.0.0.1:{}", free_port()?);
        let mut spec = TillSpec::new(STORE, "T1", work.path(), &hub_url, "hub-token-unused")
            .arg(
                "--register",
                &format!("serial:{}", register.serial_path.display()),
            )
            .arg("--ofd", &ofd.base_url());
        if let Some(wait) = print_wait_ms {
            spec = spec.arg("--print-wait-ms", &wait.to_string());
        }
        if let Some(capacity) = buffer_capacity {
            spec = spec.arg("--buffer-capacity", &capacity.to_string());
        }
        let till = TillProcess::start(bins, spec).await?;
        Ok(Rig {
            till,
            register_control: format!("http://{}", register.control_addr),
            register: Some(register),
            ofd: Some(ofd),
            http: tests::http::http_client()?,
            sales: SaleGen::new(31, "T1"),
            _work: work,
        })
    }

    fn client(&self) -> anyhow::Result<&TillClient> {
        self.till.client()
    }

    fn ofd(&self) -> anyhow::Result<&EmulatorHandle> {
        self.ofd.as_ref().context("the OFD emulator is stopped")
    }

    fn set_ofd(&self, mode: Mode) -> anyhow::Result<()> {
        Ok(self.ofd()?.shared().set_mode(&ModeRequest::from(mode))?)
    }

    /// `POST /faults` of the register emulator: `slow` with `delay_ms` per command, or `ok`.
    async fn set_register_delay(&self, delay_ms: u64) -> anyhow::Result<()> {
        let body = if delay_ms == 0 {
            json!({"mode": "ok"})
        } else {
            json!({"mode": "slow", "delay_ms": delay_ms})
        };
        let response = self
            .http
            .post(format!("{}/faults", self.register_control))
            .json(&body)
            .send()
            .await
            .context("POST /faults")?;
        ensure!(
            response.status().is_success(),
            "POST /faults: HTTP {}",
            response.status()
        );
        Ok(())
    }

    /// The register's `GET /documents`.
    async fn documents(&self) -> anyhow::Result<Vec<Value>> {
        let response = self
            .http
            .get(format!("{}/documents", self.register_control))
            .send()
            .await
            .context("GET /documents")?;
        match response.json().await.context("GET /documents: not JSON")? {
            Value::Array(documents) => Ok(documents),
            other => bail!("GET /documents is not a list: {other}"),
        }
    }

    /// `components.circuit_breaker` of `GET /v1/health`.
    async fn breaker(&self) -> anyhow::Result<Value> {
        let health = self.client()?.health().await?.body;
        Ok(health["components"]["circuit_breaker"].clone())
    }

    /// An admin `POST` to the till; returns the status.
    async fn admin_post(&self, path: &str) -> anyhow::Result<u16> {
        let response = self
            .http
            .post(format!("{}{path}", self.client()?.base()))
            .bearer_auth(&self.till.spec().admin_token)
            .json(&json!({}))
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        Ok(response.status().as_u16())
    }

    /// One sale that must be accepted; returns its reply body.
    async fn sell(&mut self, key: &str) -> anyhow::Result<Value> {
        let body = self.sales.sale().body;
        self.client()?
            .sell(key, &body)
            .await?
            .expect_status(200, "sale")
    }

    /// Polls the buffer status until `done` holds; `None` when `limit` passes first.
    async fn wait_buffer(
        &self,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Option<(Value, Instant)>> {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.client()?.buffer_status().await?;
            if done(&status) {
                return Ok(Some((status, Instant::now())));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Like [`Rig::wait_buffer`], but running out of time is an error.
    async fn require_buffer(
        &self,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        match self.wait_buffer(SETUP_LIMIT, done).await? {
            Some((status, _)) => Ok(status),
            None => bail!(
                "{what}: not within {SETUP_LIMIT:?}; buffer status {}",
                self.client()?.buffer_status().await?
            ),
        }
    }

    /// Opens the session and makes a few sales, all acknowledged by the OFD.
    async fn warm_up(&mut self) -> anyhow::Result<()> {
        self.client()?.open_session("Иванова", 0).await?;
        for n in 0..WARMUP_SALES {
            self.sell(&format!("warmup-{n}")).await?;
        }
        self.require_buffer("warm-up sales acknowledged", |s| s["current_queued"] == 0)
            .await?;
        Ok(())
    }

    /// Every receipt the register made, by receipt id; fails if one was fiscalised twice.
    async fn receipts_once(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut receipts = BTreeMap::new();
        for document in self.documents().await? {
            if document["type"] != "receipt" {
                continue;
            }
            let id = document["receipt_id"]
                .as_str()
                .with_context(|| format!("a receipt without our id: {document}"))?;
            let fd = document["fd"].as_u64().unwrap_or_default();
            if let Some(first) = receipts.insert(id.to_owned(), fd) {
                bail!("receipt {id} fiscalised twice: FD {first} and FD {fd}");
            }
        }
        Ok(receipts)
    }

    async fn shutdown(mut self) {
        self.till.stop().await;
        if let Some(register) = self.register.take() {
            register.shutdown();
        }
        if let Some(ofd) = self.ofd.take() {
            ofd.shutdown().await;
        }
    }
}

/// "Pay" → register document at 0 ms and at 300 ms per register command.
pub async fn print(bins: &Binaries, scale: &Scale) -> anyhow::Result<Vec<Row>> {
    let mut rows = print_at(bins, 0, scale.print_sales_fast, None).await?;
    rows.extend(
        print_at(
            bins,
            fiscal_emulators::register::serial::DEFAULT_SLOW_DELAY_MS,
            scale.print_sales_slow,
            Some(SLOW_PRINT_WAIT_MS),
        )
        .await?,
    );
    Ok(rows)
}

async fn print_at(
    bins: &Binaries,
    delay_ms: u64,
    sales: usize,
    print_wait_ms: Option<u64>,
) -> anyhow::Result<Vec<Row>> {
    eprintln!("print: register at {delay_ms} ms per command, {sales} sales");
    let mut rig = Rig::start(bins, print_wait_ms, None).await?;
    rig.warm_up().await?;
    rig.set_register_delay(delay_ms).await?;
    let mut samples = Vec::with_capacity(sales);
    let mut buffered = 0;
    for n in 0..sales {
        let started = Instant::now();
        let reply = rig.sell(&format!("print-{delay_ms}-{n}")).await?;
        match reply["status"].as_str() {
            Some("printed") => samples.push(ms(started.elapsed())),
            Some("buffered") => {
                // Answered before the register finished: time until the register lists it.
                buffered += 1;
                let id = reply["receipt_id"]
                    .as_str()
                    .with_context(|| format!("sale reply without receipt_id: {reply}"))?;
                let deadline = started + SETUP_LIMIT;
                while !rig.documents().await?.iter().any(|d| d["receipt_id"] == id) {
                    ensure!(Instant::now() < deadline, "receipt {id} never fiscalised");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                samples.push(ms(started.elapsed()));
            }
            _ => bail!("sale reply is neither printed nor buffered: {reply}"),
        }
    }
    rig.set_register_delay(0).await?;
    let made = rig.receipts_once().await?.len();
    ensure!(
        made == WARMUP_SALES + sales,
        "the register made {made} receipts, expected {}",
        WARMUP_SALES + sales
    );
    rig.shutdown().await;
    samples.sort_by(f64::total_cmp);
    let wait_ms = print_wait_ms.unwrap_or(3_000);
    let note = format!(
        "{sales} sequential sales to till-node --register serial:<pty> (register emulator \
         in-process, POST /faults {}), OFD emulator up; time from sending POST /v1/kkt/receipt \
         to its 200 with status \"printed\" (print wait {wait_ms} ms); {buffered} of {sales} \
         answered \"buffered\" and were timed until the register's GET /documents listed them; \
         between sales the pipeline also carries each document to the OFD over the same serial \
         line, as on a real till",
        if delay_ms == 0 {
            "ok".to_owned()
        } else {
            format!("slow, {delay_ms} ms per command")
        }
    );
    let (target_ms, seeds_ms) = if delay_ms == 0 {
        (Some(50.0), Some(7_000.0))
    } else {
        (None, Some(7_000.0))
    };
    Ok([
        (0.50, "P50", None, None),
        (0.95, "P95", target_ms, seeds_ms),
        (0.99, "P99", None, None),
    ]
    .into_iter()
    .map(|(q, label, target, seeds)| {
        Row::millis(
            format!(
                "Pay → register document {label}, register {delay_ms} ms/command ({sales} sales)"
            ),
            percentile(&samples, q),
            target,
            seeds,
            note.clone(),
        )
    })
    .collect())
}

/// What one drain run saw.
struct DrainRun {
    receipts: usize,
    printed: usize,
    outage: Duration,
    /// The outage was held until the breaker opened.
    outage_opened_breaker: bool,
    /// The breaker when the OFD came back, from `GET /v1/health`.
    breaker: String,
    /// From the OFD back up to all acknowledged; `None` when the cap passed first.
    acknowledged_after: Option<Duration>,
}

/// How one drain run goes.
#[derive(Debug, Clone, Copy)]
struct DrainPlan {
    receipts: usize,
    /// Keep the OFD down until the breaker is OPEN.
    outage_opens_breaker: bool,
    /// Reset the breaker and force a drain once the OFD is back.
    operator: bool,
    /// Stop waiting for the acknowledgements after this long.
    cap: Duration,
}

/// `receipts` sales fiscalised while the OFD is down; then the OFD comes back (and, with
/// `operator`, the breaker is reset and a drain forced): time until all are acknowledged.
async fn drain_once(bins: &Binaries, plan: DrainPlan) -> anyhow::Result<DrainRun> {
    let DrainPlan {
        receipts,
        outage_opens_breaker,
        operator,
        cap,
    } = plan;
    // Capacity = the receipts: the buffer ends exactly full, as in the seeds' scenario.
    let mut rig = Rig::start(bins, None, Some(receipts)).await?;
    rig.warm_up().await?;
    rig.set_ofd(Mode::Down)?;
    let down_at = Instant::now();
    let mut printed = 0;
    for n in 0..receipts {
        let reply = rig.sell(&format!("drain-{n}")).await?;
        if reply["status"] == "printed" {
            printed += 1;
        }
    }
    let expected = WARMUP_SALES + receipts;
    let deadline = Instant::now() + SETUP_LIMIT;
    while rig.receipts_once().await?.len() < expected {
        ensure!(
            Instant::now() < deadline,
            "the register did not fiscalise every sale"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = rig.client()?.buffer_status().await?;
    ensure!(
        status["current_queued"] == receipts,
        "expected {receipts} unacknowledged receipts: {status}"
    );
    let mut breaker = rig.breaker().await?;
    if outage_opens_breaker {
        eprintln!("drain: OFD down until its circuit breaker opens");
        while breaker["state"] != "OPEN" {
            ensure!(
                Instant::now() < deadline,
                "the breaker did not open: {breaker}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            breaker = rig.breaker().await?;
        }
    }
    let breaker = format!(
        "{} after {} failures",
        breaker["state"].as_str().unwrap_or("?"),
        breaker["failure_count"]
    );

    rig.set_ofd(Mode::Up)?;
    let up_at = Instant::now();
    let outage = up_at - down_at;
    if operator {
        let reset = rig.admin_post("/v1/kkt/circuit_breaker/reset").await?;
        ensure!(reset == 200, "circuit breaker reset: HTTP {reset}");
        rig.client()?.force_sync().await?;
    }
    let done = rig
        .wait_buffer(cap.saturating_sub(up_at.elapsed()), |s| {
            s["current_queued"] == 0
        })
        .await?;
    let acknowledged_after = done.map(|(_, at)| at - up_at);
    if acknowledged_after.is_some() {
        let made = rig.receipts_once().await?;
        let received = rig.ofd()?.shared().received();
        let acknowledged = made
            .keys()
            .filter(|id| {
                received
                    .iter()
                    .any(|d| d.acknowledged && d.receipt_id.as_deref() == Some(id.as_str()))
            })
            .count();
        ensure!(
            acknowledged == expected,
            "the OFD acknowledged {acknowledged} of {expected} receipts"
        );
    }
    rig.shutdown().await;
    Ok(DrainRun {
        receipts,
        printed,
        outage,
        outage_opened_breaker: outage_opens_breaker,
        breaker,
        acknowledged_after,
    })
}

fn drain_setup(run: &DrainRun) -> String {
    format!(
        "OFD emulator down (connections dropped) while {} sales were made ({} answered \
         \"printed\") and fiscalised by the register emulator (0 ms/command), buffer capacity \
         {} (full); outage {:.1} s ({}), breaker {} when the OFD came back",
        run.receipts,
        run.printed,
        run.receipts,
        run.outage.as_secs_f64(),
        if run.outage_opened_breaker {
            "held until the breaker opened on the pipeline's own retries"
        } else {
            "only while selling"
        },
        run.breaker
    )
}

/// The drain rows: forced (time and rate) and without operator action (capped).
pub async fn drain(bins: &Binaries, scale: &Scale) -> anyhow::Result<Vec<Row>> {
    let receipts = scale.drain_receipts;
    eprintln!("drain: {receipts} receipts, breaker reset + forced drain");
    let plan = DrainPlan {
        receipts,
        outage_opens_breaker: scale.drain_outage_opens_breaker,
        operator: true,
        cap: FORCED_DRAIN_LIMIT,
    };
    let forced = drain_once(bins, plan).await?;
    let forced_after = forced
        .acknowledged_after
        .with_context(|| format!("the forced drain took more than {FORCED_DRAIN_LIMIT:?}"))?;
    let forced_note = format!(
        "{}; then OFD up, POST /v1/kkt/circuit_breaker/reset and POST \
         /v1/kkt/buffer/sync?force=true (admin), timed from OFD up until GET \
         /v1/kkt/buffer/status shows current_queued 0 (polled every 10 ms); each document goes \
         FN → OFD and the acknowledgement back into the FN over the serial line, one at a time; \
         rate = receipts ÷ that time",
        drain_setup(&forced)
    );
    let mut rows = vec![
        Row::millis(
            format!("{receipts} buffered receipts: OFD back up → all acknowledged (reset + forced drain)"),
            ms(forced_after),
            None,
            Some(SEEDS_DRAIN_MS),
            forced_note.clone(),
        ),
        Row {
            what: format!("drain rate to the OFD emulator ({receipts} buffered receipts, forced)"),
            unit: Unit::PerSecond,
            ours: receipts as f64 / forced_after.as_secs_f64(),
            capped: false,
            target: None,
            seeds: Some(SEEDS_DRAIN_RECEIPTS / (SEEDS_DRAIN_MS / 1_000.0)),
            note: forced_note,
        },
    ];

    let cap = scale.drain_idle_cap;
    eprintln!("drain: {receipts} receipts, no operator action (waiting at most {cap:?})");
    let plan = DrainPlan {
        operator: false,
        cap,
        ..plan
    };
    let idle = drain_once(bins, plan).await?;
    rows.push(Row {
        what: format!(
            "{receipts} buffered receipts: OFD back up → all acknowledged (no operator action)"
        ),
        unit: Unit::Millis,
        ours: ms(idle.acknowledged_after.unwrap_or(cap)),
        capped: idle.acknowledged_after.is_none(),
        target: None,
        seeds: Some(SEEDS_DRAIN_MS),
        note: format!(
            "{}; then OFD up and nothing else: the pipeline retries on its own backoff (5 s \
             doubling to 5 min, with jitter) and the breaker's 60 s open period; timed from OFD \
             up until current_queued 0, waiting at most {:.0} s",
            drain_setup(&idle),
            cap.as_secs_f64()
        ),
    });
    Ok(rows)
}
