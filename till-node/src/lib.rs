//! `till-node`: the till daemon of OpticsERP Edge. It keeps the store's replica in SQLite,
//! sells with no network, syncs with the hub and (next issue) drives the fiscal pipeline.
//!
//! Map of the crate:
//! - [`store`] — the durable storage: Automerge documents as snapshot + change chunks, sync
//!   states, idempotency records, the HLC high-water mark, meta values and the fiscal outbox,
//!   in one SQLite file with WAL + `synchronous=FULL`. Synchronous API; one owner.
//! - [`node`] — the replica node: live documents, HLC clock, current session; every write is
//!   one durable store commit before it is answered. One mutex, blocking threads.
//! - [`api`] — the HTTP API from one route table; [`api::app`] builds the router.
//! - [`sync_loop`] — sync sessions with the hub (heartbeat, push after a sale, forced sync),
//!   feeding the link monitor and the metrics.
//! - [`policy`] — what the till accepts from the hub (its store's catalogue, its own sessions).
//! - [`pos`] — the browser POS: its share policy, PIN check against the replicated staff
//!   document, wrong-PIN throttling and login tokens.
//! - [`link`] — online / degraded / offline with hysteresis.
//! - [`metrics`] — Prometheus metrics with the seeds' names.
//! - [`daemon`] — start-up, listener, background tasks, graceful shutdown.
//! - [`config`] — settings from the command line, environment and TOML file, validated into
//!   [`config::RunConfig`]; secrets redacted in `Debug`.
//! - [`cli`] — the `till-node` command line (`run`, `check-store`) and logging set-up.
//! - [`time`] — the wall clock and RFC 3339 formatting.
//!
//! Architecture invariant: only this crate opens the till's SQLite file (and, later, the
//! serial port); nothing depends on `till-node` except `tests/`.

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod fiscal_link;
pub mod link;
pub mod metrics;
pub mod node;
pub mod policy;
pub mod pos;
pub mod store;
pub mod sync_loop;
pub mod time;

use anyhow::Context;

pub use config::RunConfig;
pub use store::{Store, StoreError};

/// Runs the daemon with validated settings until SIGTERM or Ctrl-C.
pub fn run(config: RunConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("till-node")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(daemon::serve(config))
}
