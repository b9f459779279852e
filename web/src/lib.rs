//! The cashier's POS in the browser: a Leptos CSR app compiled to WASM, served by the till,
//! selling from its own Automerge replica in IndexedDB and syncing it with the till through
//! `sync-engine` (the same protocol as every other hop).
//!
//! Pure modules, compiled and unit-tested on every target (`cargo nextest run -p web`):
//! - [`cart`]: lines, quantities, discounts and their limits, payment and change, the
//!   receipt request.
//! - [`lookup`]: the catalogue index behind the scan field (exact EAN/SKU, name search).
//! - [`replica`]: the browser replica — sales committed into the open session document,
//!   sync rounds with the till, receipt states; sans-IO, it says what to persist.
//! - [`policy`]: what the browser accepts from its till.
//! - [`status`]: receipt, network, buffer and shift states for the state bar.
//! - [`format`]: money, quantities and ages as the cashier reads and types them.
//! - [`i18n`]: the page's texts, Russian and English.
//!
//! Browser-only modules (`wasm32`): `idb` (IndexedDB via rexie), `api` (fetch to the till),
//! `tablock` (one selling tab per browser, Web Locks) and `app` (the Leptos components),
//! started by [`start`].

pub mod cart;
pub mod format;
pub mod i18n;
pub mod lookup;
pub mod policy;
pub mod replica;
pub mod status;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod idb;
#[cfg(target_arch = "wasm32")]
mod tablock;

/// The WASM entry point: mounts the app into `document.body`.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
