//! `hub serve`: connect and migrate, bind, log `listening on ADDR` (the real port when
//! `--listen 127.0.0.1:0`), serve [`crate::api::app`] until SIGINT or SIGTERM, then drain
//! in-flight requests and close the database.

use crate::api::{app, AppState};
use crate::config::ServeConfig;
use crate::db::Db;
use anyhow::Context;
use std::time::Duration;

/// How often expired login sessions are deleted.
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Runs the server until a shutdown signal.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let db = Db::connect(&config.db)
        .await
        .with_context(|| format!("cannot open the database {:?}", config.db))?;
    tracing::info!(db = ?config.db, "database connected and migrated");
    let state = AppState::new(db.clone()).context("cannot set up the API")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!("listening on {addr}");
    let sweeper = tokio::spawn(sweep_sessions(db.clone()));
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed");
    sweeper.abort();
    db.close().await;
    tracing::info!("stopped");
    result
}

/// Deletes expired login sessions now and then (they are refused anyway; this keeps the
/// table small).
async fn sweep_sessions(db: Db) {
    let mut tick = tokio::time::interval(SESSION_SWEEP_EVERY);
    loop {
        tick.tick().await;
        match delete_expired(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired login sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired login sessions"),
        }
    }
}

async fn delete_expired(db: &Db) -> Result<u64, crate::db::DbError> {
    let mut tx = db.begin().await?;
    let deleted = tx.delete_expired(crate::db::now_ms()).await?;
    tx.commit().await?;
    Ok(deleted)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining requests");
}
