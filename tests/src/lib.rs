//! Test support for OpticsERP Edge's end-to-end scenarios, simulation tests and benchmark:
//! real `hub` and `till-node` processes on loopback, driven over HTTP.
//!
//! Map of the crate:
//! - [`process`]: [`Daemon`], a spawned binary whose logs are captured, whose bound address
//!   is read from its `listening on …` line, and which is killed (never left behind) on drop;
//!   [`free_port`]; [`work_dir`] (kept with `E2E_KEEP=1`); [`Binaries`] and the [`binaries!`] macro that finds them.
//! - [`hub`]: [`HubEnv`] — one hub database (embedded SQLite or PostgreSQL) with its CLI
//!   (create users, enrol tills, import a catalogue) — and [`HubProcess`], a running `hub serve`.
//! - [`till`]: [`TillSpec`] and [`TillProcess`]: start, kill -9, restart on the same data dir.
//! - [`http`]: [`TillClient`] and [`HubClient`], typed helpers for the contract's routes.
//! - [`sales`]: deterministic receipt bodies and the [`Tally`] that predicts hub summaries.
//! - [`replica`]: [`ScriptedTill`], an in-memory till replica syncing with a real hub over
//!   HTTP (two hubs at once, tampered envelopes), and the till-side share policy.
//! - [`pg`]: [`PgDatabase`], a fresh PostgreSQL database per test (or a skip when there is
//!   no server and none is required).
//! - [`wait`]: [`wait_until`], polling with a deadline.
//!
//! Integration tests get the binaries with [`binaries!`] (`CARGO_BIN_EXE_*`), so that
//! `cargo test` builds what the tests spawn; the bench binary looks next to itself.

pub mod browser;
pub mod http;
pub mod hub;
pub mod pg;
pub mod pos_rig;
pub mod process;
pub mod replica;
pub mod sales;
pub mod till;
pub mod wait;

pub use http::{ApiResponse, DivergenceReport, HubClient, StoreSummary, TillClient};
pub use hub::{HubDb, HubEnv, HubProcess};
pub use pg::PgDatabase;
pub use process::{free_port, work_dir, Binaries, Daemon};
pub use replica::{fetch_from_hub, ScriptedTill};
pub use sales::{Sale, SaleGen, Tally};
pub use till::{TillProcess, TillSpec};
pub use wait::wait_until;

/// The store every scenario uses unless it needs two.
pub const STORE: &str = "S1";
/// Password of the admin user the scenarios create.
pub const ADMIN_PASSWORD: &str = "correct-horse-battery-staple-42";
/// Name of that admin user.
pub const ADMIN_USER: &str = "admin";
