//! The measurements behind each row of the bench table, each on fresh processes (the restart
//! row reuses its generated data set). Every figure is wall time seen by an HTTP client.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tests::{
    free_port, Binaries, HubDb, HubEnv, HubProcess, SaleGen, TillProcess, TillSpec, STORE,
};

use crate::{Row, Scale};

/// Poll interval while waiting for the hub; the resolution of the convergence rows.
const POLL: Duration = Duration::from_millis(10);
/// Longest any convergence may take before the bench gives up.
const CONVERGENCE_LIMIT: Duration = Duration::from_secs(600);
/// Heartbeat of the offline rows' tills (the largest allowed): no heartbeat sync lands inside a
/// measurement; what brings the sales over is the probe (buffered) or the forced syncs (fleet).
const IDLE_HEARTBEAT_SECS: u64 = 3600;

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// The `q`-quantile (nearest rank) of sorted samples.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Waits until the hub's summary of the store counts `receipts`; returns when it saw it.
async fn until_hub_counts(hub: &HubProcess, token: &str, receipts: u64) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + CONVERGENCE_LIMIT;
    loop {
        let summary = hub.client().summary(token, STORE).await?;
        if summary.receipts >= receipts {
            ensure!(
                summary.receipts == receipts,
                "hub counts {} receipts, expected {receipts}",
                summary.receipts
            );
            return Ok(Instant::now());
        }
        ensure!(
            Instant::now() < deadline,
            "hub stuck at {} of {receipts} receipts",
            summary.receipts
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn sell_many(till: &TillProcess, seed: u64, count: usize, tag: &str) -> anyhow::Result<()> {
    let client = till.client()?;
    let mut sales = SaleGen::new(seed, &till.spec().till);
    for n in 0..count {
        client
            .sell_ok(&format!("{tag}-{n}"), &sales.sale().body)
            .await?;
    }
    Ok(())
}

/// Receipt latency over HTTP, one cashier selling one sale after another, hub up.
pub async fn latency(bins: &Binaries, scale: &Scale) -> anyhow::Result<Vec<Row>> {
    let work = tests::work_dir("bench")?;
    let env = HubEnv::sqlite(bins, work.path());
    let token = env.enroll_till(STORE, "T1").await?;
    let hub = env.serve("hub", "127.0.0.1:0").await?;
    let till = TillProcess::start(
        bins,
        TillSpec::new(STORE, "T1", work.path(), &hub.url(), &token),
    )
    .await?;
    let client = till.client()?;
    client.open_session("Иванова", 0).await?;
    sell_many(&till, 1, 20, "warmup").await?;
    let mut sales = SaleGen::new(2, "T1");
    let mut samples = Vec::with_capacity(scale.latency_sales);
    for n in 0..scale.latency_sales {
        let body = sales.sale().body;
        let started = Instant::now();
        client.sell_ok(&format!("timed-{n}"), &body).await?;
        samples.push(ms(started.elapsed()));
    }
    samples.sort_by(f64::total_cmp);
    let note = format!(
        "{} sequential sales over HTTP to one till-node (hub up, the till pushes after each sale); \
         time from request to the 200 sent after the SQLite commit (no register: the fiscal \
         pipeline is off; the `print` rows time a sale through the register)",
        scale.latency_sales
    );
    Ok([
        (0.50, "P50", None, None),
        (0.95, "P95", Some(50.0), Some(7_000.0)),
        (0.99, "P99", None, None),
    ]
    .into_iter()
    .map(|(q, label, target_ms, seeds_ms)| {
        Row::millis(
            format!("receipt latency {label} ({} sales)", scale.latency_sales),
            percentile(&samples, q),
            target_ms,
            seeds_ms,
            note.clone(),
        )
    })
    .collect())
}

/// Sales buffered while the hub is down, then the hub starts: time from spawning the hub until
/// its summary has them, with no forced sync (the till's own probe brings them over).
pub async fn buffered(bins: &Binaries, scale: &Scale) -> anyhow::Result<Vec<Row>> {
    let work = tests::work_dir("bench")?;
    let env = HubEnv::sqlite(bins, work.path());
    env.create_admin().await?;
    let token = env.enroll_till(STORE, "T1").await?;
    let port = free_port()?;
    // An hour's heartbeat: only the probe while the link is down (`--probe-secs`, default
    // 1 s) can bring the sales over.
    let spec = TillSpec::new(
        STORE,
        "T1",
        work.path(),
        &format!("http://127.0.0.1:{port}"),
        &token,
    )
    .heartbeat(IDLE_HEARTBEAT_SECS)
    .arg("--buffer-capacity", "100000");
    let till = TillProcess::start(bins, spec).await?;
    till.client()?.open_session("Иванова", 0).await?;
    sell_many(&till, 3, scale.buffered_sales, "offline").await?;
    let started = Instant::now();
    let hub = env.serve("hub", &format!("127.0.0.1:{port}")).await?;
    let listening = started.elapsed();
    let admin = hub.admin_token().await?;
    let done = until_hub_counts(&hub, &admin, scale.buffered_sales as u64).await?;
    Ok(vec![Row::millis(
        format!(
            "{} buffered receipts reach the hub after the link returns",
            scale.buffered_sales
        ),
        ms(done - started),
        Some(2_000.0),
        Some(600_000.0),
        format!(
            "hub started after the sales, no forced sync, no operator action: from spawning the \
             hub process (listening after {:.0} ms) until its summary counts them all (polled \
             every 10 ms); the till probes the hub every 1 s while the link is down \
             (--probe-secs default), heartbeat 1 h",
            ms(listening)
        ),
    )])
}

/// Many tills sell offline, then all reconnect at once: time until the hub counts every sale.
pub async fn fleet(bins: &Binaries, scale: &Scale) -> anyhow::Result<Vec<Row>> {
    let work = tests::work_dir("bench")?;
    let env = HubEnv::sqlite(bins, work.path());
    env.create_admin().await?;
    let port = free_port()?;
    let hub_url = format!("http://127.0.0.1:{port}");
    let mut tills = Vec::with_capacity(scale.fleet_tills);
    for index in 1..=scale.fleet_tills {
        let till = format!("T{index}");
        let token = env.enroll_till(STORE, &till).await?;
        let spec = TillSpec::new(STORE, &till, work.path(), &hub_url, &token)
            .heartbeat(IDLE_HEARTBEAT_SECS)
            .arg("--buffer-capacity", "100000");
        tills.push(TillProcess::start(bins, spec).await?);
    }
    eprintln!(
        "fleet: {} tills up, selling {} each offline",
        tills.len(),
        scale.fleet_sales
    );
    stream::iter(tills.iter().enumerate())
        .map(|(index, till)| async move {
            till.client()?.open_session("Иванова", 0).await?;
            sell_many(till, 100 + index as u64, scale.fleet_sales, "offline").await
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    let expected = (scale.fleet_tills * scale.fleet_sales) as u64;
    let hub = env.serve("hub", &format!("127.0.0.1:{port}")).await?;
    let admin = hub.admin_token().await?;
    let started = Instant::now();
    futures::future::try_join_all(
        tills
            .iter()
            .map(|till| async move { till.client()?.force_sync().await }),
    )
    .await?;
    let done = until_hub_counts(&hub, &admin, expected).await?;
    Ok(vec![Row::millis(
        format!(
            "{} tills × {} offline receipts reconnect at once → hub converged",
            scale.fleet_tills, scale.fleet_sales
        ),
        ms(done - started),
        Some(10_000.0),
        None,
        format!(
            "{} till-node processes and the hub (embedded SQLite) on one machine; from the forced \
             syncs (all at once) until the summary counts all {expected}",
            scale.fleet_tills
        ),
    )])
}

/// What the restart row's generated data set needs to be reused.
#[derive(Debug, Serialize, Deserialize)]
struct RestartData {
    hub_token: String,
    sessions: usize,
    receipts: usize,
}

/// Generates the restart row's data over HTTP: closed sessions, then one open session.
async fn generate_restart_data(
    bins: &Binaries,
    scale: &Scale,
    dir: &Path,
) -> anyhow::Result<RestartData> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let env = HubEnv::new(bins, HubDb::Sqlite(dir.join("hub-data")), dir);
    let hub_token = env.enroll_till(STORE, "T1").await?;
    let hub = env.serve("hub", "127.0.0.1:0").await?;
    let mut spec =
        TillSpec::new(STORE, "T1", dir, &hub.url(), &hub_token).arg("--buffer-capacity", "100000");
    spec.data_dir = dir.join("till");
    let mut till = TillProcess::start(bins, spec).await?;
    let sessions = scale.restart_days * scale.restart_sessions_per_day;
    for session in 0..sessions {
        eprintln!(
            "restart: generating closed session {}/{sessions}",
            session + 1
        );
        till.client()?.open_session("Иванова", 0).await?;
        sell_many(
            &till,
            session as u64,
            scale.restart_receipts,
            &format!("s{session}"),
        )
        .await?;
        till.client()?.close_session().await?;
    }
    till.client()?.open_session("Иванова", 0).await?;
    let client = till.client()?.clone();
    tests::wait_until(
        "the data set to reach the hub",
        Duration::from_secs(300),
        || async {
            client.force_sync().await?;
            Ok((client.buffer_status().await?["unsynced_receipts"] == 0).then_some(()))
        },
    )
    .await?;
    till.stop().await;
    drop(hub);
    let data = RestartData {
        hub_token,
        sessions,
        receipts: sessions * scale.restart_receipts,
    };
    std::fs::write(dir.join("ready.json"), serde_json::to_vec_pretty(&data)?)?;
    Ok(data)
}

/// Till restart to the first accepted sale, with days of closed sessions on disk.
pub async fn restart(bins: &Binaries, scale: &Scale, data_root: &Path) -> anyhow::Result<Vec<Row>> {
    let dir = data_root.join(format!(
        "restart-{}d-{}x{}",
        scale.restart_days, scale.restart_sessions_per_day, scale.restart_receipts
    ));
    let ready = std::fs::read(dir.join("ready.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<RestartData>(&b).ok());
    let data = match ready {
        Some(data) => {
            eprintln!("restart: reusing the data set in {}", dir.display());
            data
        }
        None => generate_restart_data(bins, scale, &dir).await?,
    };
    let db_bytes = std::fs::metadata(dir.join("till").join("till.db")).map_or(0, |m| m.len());
    let env = HubEnv::new(bins, HubDb::Sqlite(dir.join("hub-data")), &dir);
    let hub = env.serve("hub", "127.0.0.1:0").await?;
    let mut samples = Vec::with_capacity(scale.restarts);
    let mut sales = SaleGen::new(77, "T1");
    for attempt in 0..scale.restarts {
        let mut spec = TillSpec::new(STORE, "T1", &dir, &hub.url(), &data.hub_token)
            .arg("--buffer-capacity", "100000");
        spec.data_dir = dir.join("till");
        let body = sales.sale().body;
        let key = format!("restart-{}-{attempt}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let mut till = TillProcess::start(bins, spec).await?;
        till.client()?
            .sell_ok(&key, &body)
            .await
            .context("first sale after restart")?;
        samples.push(ms(started.elapsed()));
        till.stop().await;
    }
    samples.sort_by(f64::total_cmp);
    Ok(vec![Row::millis(
        format!(
            "till restart → first accepted sale ({} days of closed sessions)",
            scale.restart_days
        ),
        percentile(&samples, 0.5),
        Some(1_000.0),
        Some(120_000.0),
        format!(
            "median of {} restarts (max {}) from spawning till-node to the 200 of a sale; on disk: \
             {} closed sessions × {} receipts + the open session, till.db {:.1} MiB, all held by \
             the hub (sessions generated over HTTP just before, so none past retention)",
            samples.len(),
            samples.last().map_or_else(String::new, |max| format!("{max:.0} ms")),
            data.sessions,
            scale.restart_receipts,
            db_bytes as f64 / (1024.0 * 1024.0),
        ),
    )])
}
