//! OpticsERP Edge domain model on Automerge documents. No IO: no clock, no randomness,
//! no files or network; time and ids are passed in, so the same code runs in the till
//! daemon, the hub and the browser (wasm32).
//!
//! Modules:
//! - [`money`]: [`Kopecks`] (integer money) and [`Quantity`] (fixed-point thousandths),
//!   with exact line amounts.
//! - [`vat`]: VAT rates with their FFD 1.2 codes and VAT extraction from gross amounts.
//! - [`hlc`]: the hybrid logical clock that orders master-data writes and receipts.
//! - [`ids`]: store, till, session, receipt and movement ids; document keys; readable
//!   Automerge actor ids.
//! - [`authorship`]: who may write which document (one rule per document kind, checked by
//!   the hub, the till and the browser page).
//! - [`receipt`]: the till's receipt request and the validated, immutable receipt with
//!   its money invariants.
//! - [`catalogue`]: the per-store catalogue document: last-writer-wins fields by HLC and
//!   a conflict ledger.
//! - [`session`]: the per-till, per-shift cash-session document: receipts, cash
//!   movements, Z close and totals.
//! - [`civil`]: civil dates from Unix time and back, and the RFC 3339 timestamps of the JSON
//!   answers.
//! - [`commit_tag`]: the tagged commit messages of every kind of document write.
//! - [`fiscal`]: the fiscal document a register makes, its stamp with the OFD status, and
//!   their record in the session document.
//! - [`staff`]: the per-store staff document: cashiers' and managers' credentials (argon2id
//!   hashes only) replicated from the hub to the tills, last writer by HLC wins.
//! - [`error`]: one error enum per family of operations.

pub mod authorship;
pub mod catalogue;
pub mod civil;
pub mod commit_tag;
pub mod error;
pub mod fiscal;
pub mod hlc;
pub mod ids;
pub mod money;
pub mod receipt;
pub mod session;
pub mod staff;
pub mod vat;

pub use error::{
    CatalogueError, ClockError, DiscountError, IdError, QuantityError, ReceiptError, SessionError,
    StaffError, Violation,
};
pub use hlc::{Hlc, HlcClock};
pub use ids::{DocKey, MovementId, ReceiptId, SessionId, StoreId, TillId};
pub use money::{line_amount, Kopecks, Quantity};
pub use receipt::Receipt;
pub use staff::{StaffMember, StaffRole};
pub use vat::VatRate;
