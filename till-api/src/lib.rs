//! The JSON of the till's HTTP API, one definition for both ends: `till-node` serialises the
//! answers and parses the request bodies, the POS page (`web`) does the reverse. The routes
//! themselves (methods, paths, access) are `till_node::api::routes()`; `docs/api.md` documents
//! them, and a till-node test checks that every route has its section there and that every
//! field of the types below is named in it ([`fields::field_names`]).
//!
//! Modules:
//! - [`pos`]: the page's login, manager approval and logout.
//! - [`session`]: the cash session (open, cash in/out, close with its Z figures, the running
//!   totals), receipts and refunds.
//! - [`status`]: the buffer status, the fiscal routes' answers and the forced sync.
//! - [`health`]: `GET /v1/health`, per component.
//! - [`error`]: the error body every route answers with.
//! - [`fields`]: the field names of a type, read through serde, for the docs check.
//!
//! Compatibility rules, because answers to writes are stored verbatim in the till's idempotency
//! records and replayed later: add fields (with `#[serde(default)]` where a reader must accept
//! older stored answers), never rename or remove one. Request bodies refuse unknown fields
//! (`deny_unknown_fields`), so a typo is a 422 naming the field rather than a silent default.
//!
//! serde only; no IO; compiles to wasm32.

pub mod error;
pub mod fields;
pub mod health;
pub mod pos;
pub mod session;
pub mod status;

pub use error::ErrorBody;
pub use health::{
    BreakerHealth, BufferHealth, ClockHealth, FiscalHealth, Health, HealthComponents,
    HubLinkHealth, RejectedClock, SessionHealth, StorageHealth,
};
pub use pos::{
    ApproveAnswer, ApproveRequest, LoginAnswer, LoginRequest, LogoutAnswer, LogoutStatus,
};
pub use session::{
    CashKind, CashRequest, CloseRecord, CloseRequest, MovementAck, OpenSessionRequest, Payments,
    ReceiptAnswer, ReceiptStatus, RefundRequest, SessionOpened, SessionReceipts, SessionSummary,
};
pub use status::{
    BreakerResetAnswer, BufferStages, BufferStatus, DeadLetter, DeadLetters, ForceSyncAnswer,
    LogEntries, LogEntry, RegisterDetails, RegisterView, RequeueAnswer, XReportAnswer,
};
