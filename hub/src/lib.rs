//! The hub: the PostgreSQL (or embedded SQLite) replica of every store, with the sync
//! endpoint, SQL projections, reports, auth and admin commands.
//!
//! Map of the crate:
//! - [`db`] — the storage layer: [`db::Db`] over SQLite or PostgreSQL, migrations, Automerge
//!   document storage with safe compaction, sync states, peer status, devices, users, login
//!   sessions and their throttling, receipt/session projections and store summaries.
//!   Everything the hub knows lives there, so hub processes stay stateless and can run side
//!   by side.
//! - [`sync`] — one sync round from a till: share policy, plan, apply, project, persist in
//!   one transaction (no HTTP: the route lives in [`api::sync`]).
//! - [`api`] — the HTTP API: the route table with each route's access rule, [`api::app`]
//!   (the router, testable with `oneshot`), auth middleware, login, reports, health.
//! - [`metrics`] — the Prometheus metrics of one process.
//! - [`serve`] — `hub serve`: bind, log the address, serve until SIGINT/SIGTERM.
//! - [`auth_types`] — user roles and the password / PIN policy.
//! - [`config`] — the `--config FILE.toml` format and how it merges with flags.
//! - [`cli`] — the `hub` command line (clap) and what each subcommand runs.
//! - [`catalogue_import`] — `hub catalogue import`: CSV price list → the store's catalogue
//!   document.
//! - [`users`] — user administration, one service: create a user, set a password or PIN,
//!   change a role or store, each with the staff document in the same transaction.
//! - [`staff`] — cashiers' and managers' credentials (argon2id hashes) written into the
//!   store's staff document, which its tills receive read-only.
//! - [`doc_edit`] — the one path of a hub-authored document edit (lock, load, change with
//!   the hub's clock and actor, append, in the caller's transaction): staff, catalogue
//!   import.
//!
//! Money is `crdt_model::Kopecks` throughout (integer kopecks).

pub mod api;
pub mod auth_types;
pub mod catalogue_import;
pub mod cli;
pub mod config;
pub mod db;
pub mod doc_edit;
pub mod metrics;
pub mod serve;
pub mod staff;
pub mod sync;
pub mod users;

/// The name of the hub in actor ids (`hub/hub`) and HLC nodes (`hub`).
pub const HUB_NAME: &str = "hub";
