//! Starting and stopping the daemon: open the store and the node, bind the listener, run the
//! HTTP API, the sync loop and the hourly retention job, and stop cleanly on SIGTERM / Ctrl-C.
//!
//! Shutdown order: stop accepting requests and let running ones finish (axum's graceful
//! shutdown), then stop the sync loop (a round in flight may be cut off: every step persists
//! atomically, so the next start simply syncs again), then drop the node, which closes SQLite.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::api::{app, AppState};
use crate::config::RunConfig;
use crate::metrics::Metrics;
use crate::node::{Node, NodeConfig, NodeHandle};
use crate::pos::logins::Logins;
use crate::store::Store;
use crate::sync_loop::{SyncTiming, Syncer};
use crate::time::now_ms;

/// How often sealed sessions past retention are dropped.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);
/// How long the sync loop gets to stop at shutdown.
const SYNC_STOP_GRACE: Duration = Duration::from_secs(3);

/// Opens the store and the node and builds the API state (no listener, no tasks).
pub fn open_state(config: &RunConfig) -> anyhow::Result<AppState> {
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    tracing::info!(
        store = %config.store_id,
        till = %config.till_id,
        database = %store.path().display(),
        schema_version = store.schema_version(),
        "store opened"
    );
    let metrics = Metrics::new().context("cannot register metrics")?;
    let node_config = NodeConfig {
        store: crdt_model::StoreId::new(config.store_id.as_str())?,
        till: crdt_model::TillId::new(config.till_id.as_str())?,
        device: config.device.clone(),
        retention_days: config.retention_days,
        buffer_capacity: config.buffer_capacity,
        fiscal_enabled: config.fiscal.is_some(),
    };
    let logins = Logins::default();
    let node = Node::open(store, node_config, metrics.clone(), logins.clone())
        .context("cannot load the replica")?;
    let identity = node.core().identity().clone();
    tracing::info!(device = %identity.device, "writing as this device");
    let node = NodeHandle::new(node);
    let syncer = Syncer::new(
        node.clone(),
        config.hub_url.as_str(),
        config.hub_token.expose(),
        SyncTiming {
            heartbeat: Duration::from_secs(config.heartbeat_secs),
            probe: Duration::from_secs(config.probe_secs),
        },
        metrics.clone(),
    )
    .context("cannot set up the hub client")?;
    Ok(AppState::new(
        node,
        logins,
        identity,
        Arc::new(syncer),
        metrics,
        config.admin_token.expose(),
        config.buffer_capacity,
    )
    .with_print_wait(Duration::from_millis(config.print_wait_ms))
    .with_web_dir(config.web_dir.clone()))
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub async fn serve(config: RunConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let state = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_state(&config)).await??
    };
    run_retention(&state).await;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        startup_ms = started.elapsed().as_millis(),
        "listening on {address}"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut state = state;
    let mut tasks = Vec::new();
    if let Some(fiscal) = &config.fiscal {
        let (link, pipeline) =
            crate::fiscal_link::start(fiscal, state.node().clone(), stop_rx.clone())?;
        tracing::info!(
            register = %fiscal.serial_path.display(),
            ofd = %fiscal.ofd_url,
            "fiscal pipeline started"
        );
        state = state.with_fiscal(link);
        tasks.push(tokio::spawn(pipeline));
    } else {
        tracing::warn!("no --register: the fiscal pipeline is off (development only)");
    }
    tasks.push(tokio::spawn(
        Arc::clone(state.syncer()).run_loop(stop_rx.clone()),
    ));
    tasks.push(tokio::spawn(retention_loop(state.clone(), stop_rx)));

    axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;

    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for task in tasks {
        let abort = task.abort_handle();
        if tokio::time::timeout(SYNC_STOP_GRACE, task).await.is_err() {
            abort.abort();
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn run_retention(state: &AppState) {
    match state
        .node()
        .call(|node| node.retention().apply(now_ms()))
        .await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(dropped)) => tracing::info!(dropped, "retention applied"),
        Ok(Err(error)) => tracing::warn!(%error, "retention failed"),
        Err(error) => tracing::warn!(%error, "retention failed"),
    }
}

async fn retention_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(RETENTION_INTERVAL) => run_retention(&state).await,
        }
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
