//! `till-node`: the till daemon of OpticsERP Edge. It keeps the store's replica in SQLite,
//! sells with no network, syncs with the hub and its browser POS, and drives the fiscal
//! pipeline (register over the serial port, OFD) when started with a register.
//!
//! Map of the crate:
//! - [`store`] — the durable storage: Automerge documents as snapshot + change chunks, sync
//!   states, idempotency records, the HLC high-water mark, meta values and the fiscal outbox,
//!   in one SQLite file with WAL + `synchronous=FULL`. Synchronous API; one owner.
//! - [`node`] — the replica node: the durable core (store, live documents, HLC clock, open
//!   shift) with ONE commit path and ONE rollback, and the operations that borrow it (shifts,
//!   hub sync, page sync, fiscal queue, retention); every write is one durable store commit
//!   before it is answered. One mutex, blocking threads.
//! - [`api`] — the HTTP API from one route table; [`api::app`] builds the router and turns the
//!   node's domain results and errors into HTTP answers.
//! - [`sync_loop`] — sync rounds with the hub (heartbeat, push after a sale, forced sync),
//!   feeding the link monitor and the metrics.
//! - [`fiscal_link`] — the running fiscal pipeline (register, OFD) with the node as its job
//!   store.
//! - [`policy`] — what the till accepts from the hub (its store's catalogue, its own sessions).
//! - [`pos`] — the browser POS: its share policy, PIN check against the replicated staff
//!   document, wrong-PIN throttling, login tokens and the login cache ([`pos::logins`]) that
//!   serves them without the node lock.
//! - [`link`] — online / degraded / offline with hysteresis.
//! - [`metrics`] — Prometheus metrics with the seeds' names.
//! - [`daemon`] — start-up, listener, background tasks, graceful shutdown.
//! - [`config`] — settings from the command line, environment and TOML file, validated into
//!   [`config::RunConfig`]; secrets redacted in `Debug`.
//! - [`cli`] — the `till-node` command line (`run`, `check-store`) and logging set-up.
//! - [`time`] — the wall clock and RFC 3339 formatting.
//!
//! Architecture invariant: only this crate opens the till's SQLite file and the register's
//! serial port; nothing depends on `till-node` except `tests/`.

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
