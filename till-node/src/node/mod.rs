//! The till's replica node: the durable [`Core`] (store, live documents, HLC clock, open
//! shift) and the operations that borrow it, behind one synchronous API. The daemon keeps one
//! [`Node`] behind one mutex ([`NodeHandle`]) and calls it from blocking threads, so writers
//! are serialized and no SQLite call runs on the async runtime.
//!
//! The durable path is `commit` ([`Core::commit`]): change documents in memory → ONE
//! [`WriteBatch`](crate::store::WriteBatch) with their new chunks, whatever else the operation
//! writes (idempotency record with the exact answer, sync states, outbox jobs) and the HLC
//! high-water mark → `store.commit` → only then answer. If the commit fails, [`Core::rollback`]
//! rebuilds the touched documents from the store, so nothing that is not durable is ever
//! visible or acknowledged; if even that fails the node is *broken* and refuses every write
//! until restarted. A poisoned store (I/O failure) likewise refuses writes.
//!
//! The operations, each a small type borrowing the core for one call:
//! - [`Shifts`] (`shift`, `refund`): open and close a cash shift, cash movements, sales,
//!   refunds (with their sagas), the reads of a shift. Writes return [`Recorded`] (the JSON
//!   answer as stored for its idempotency key); `api` turns it into HTTP.
//! - [`HubSync`] (`hub_sync`): the steps of a sync round with the hub.
//! - [`PageSync`] (`page_sync`): the till as the sync server of its browser POS.
//! - [`FiscalQueue`] (`fiscal_queue`): the fiscal jobs' transitions and the outbox mappings.
//! - [`Retention`] (`retention`): dropping sealed shifts the hub holds, purging old records.
//!
//! Logins are not here: [`Logins`](crate::pos::logins::Logins) answers token and staff reads
//! without the node lock; the node only makes a login's record durable and tells the cache.
//! Other submodules: [`replica`] (live documents, unsynced counts), `identity` (actor and peer
//! ids, the per-install device name), `handle` (the mutex and the blocking-thread calls),
//! `views` (JSON shapes of answers), `error` ([`NodeError`]).

mod commit;
mod core;
mod error;
mod fiscal_queue;
mod handle;
mod hub_sync;
mod identity;
mod page_sync;
mod refund;
pub mod replica;
mod retention;
mod shift;
#[cfg(test)]
mod tests;
pub mod views;

use crdt_model::{StoreId, TillId};
use fiscal::pipeline::Transition;

use crate::metrics::Metrics;
use crate::pos::logins::Logins;
use crate::pos::tokens::{token_meta_key, PosLogin};
use crate::store::{Store, WriteBatch};
use shift::CachedHeader;

pub use self::core::Core;
pub use error::{ClockRejection, ClockRejections, NodeError};
pub use fiscal_queue::{stamp_of, FiscalQueue, FiscalSettings};
pub use handle::{NodeHandle, NodeTaskError};
pub use hub_sync::{HubSync, ReplyOutcome};
pub use identity::{
    resolve_device, Identity, DEVICE_META_KEY, GENERATED_DEVICE_LEN, GENERATED_DEVICE_PREFIX,
};
pub use page_sync::{PageRound, PageSync};
pub use refund::{RefundOutcome, REFUND_RETRY_SECONDS};
pub use retention::Retention;
pub use shift::{IdempotencyRequest, Recorded, Shifts};

/// Compact a document once this many change chunks sit on top of its snapshot.
pub const COMPACT_AFTER_CHUNKS: usize = 200;
/// Largest lead of a remote HLC over our wall clock that the clock adopts (10 minutes).
pub const MAX_CLOCK_LEAD_MS: u64 = 10 * 60 * 1000;

/// What the node needs to know about itself.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The store.
    pub store: StoreId,
    /// The till.
    pub till: TillId,
    /// The device part of the actor id (`S1/T1/<device>`) when given explicitly; `None` uses
    /// the per-install name kept in the store ([`resolve_device`]).
    pub device: Option<String>,
    /// Days a sealed session stays on the till once the hub holds it.
    pub retention_days: u32,
    /// Capacity of the fiscal buffer (receipts the OFD has not acknowledged).
    pub buffer_capacity: u32,
    /// Queue fiscal jobs for a register (and refuse sales when the buffer is full).
    pub fiscal_enabled: bool,
}

/// The replica node: the durable core and the settings its operations need. See the module
/// documentation.
#[derive(Debug)]
pub struct Node {
    core: Core,
    fiscal: FiscalSettings,
    retention_days: u32,
    /// Who opened which shift and when (the register's shift), read once per shift.
    shift_header: Option<CachedHeader>,
}

impl Node {
    /// Loads every stored document, restores the clock and finds the open shift.
    /// The actor's device is `config.device` or the per-install name ([`resolve_device`]).
    /// `logins` is told the staff list and the stored login records, and kept up to date.
    pub fn open(
        store: Store,
        config: NodeConfig,
        metrics: Metrics,
        logins: Logins,
    ) -> Result<Node, NodeError> {
        let core = Core::open(store, &config, metrics, logins)?;
        let node = Node {
            core,
            fiscal: FiscalSettings {
                enabled: config.fiscal_enabled,
                buffer_capacity: config.buffer_capacity,
            },
            retention_days: config.retention_days,
            shift_header: None,
        };
        node.refresh_gauges();
        Ok(node)
    }

    /// The durable core, for reads (identity, replica, store, clock facts).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Refuses every later write: the memory may no longer match the store.
    pub fn mark_broken(&mut self, reason: impl Into<String>) {
        self.core.mark_broken(reason);
    }

    /// Cash shifts, sales and refunds.
    pub fn shifts(&mut self) -> Shifts<'_> {
        Shifts {
            core: &mut self.core,
            fiscal: self.fiscal,
            header: &mut self.shift_header,
        }
    }

    /// The steps of a sync round with the hub.
    pub fn hub_sync(&mut self) -> HubSync<'_> {
        HubSync {
            core: &mut self.core,
            fiscal: self.fiscal,
            retention_days: self.retention_days,
        }
    }

    /// Sync rounds with the browser POS.
    pub fn page_sync(&mut self) -> PageSync<'_> {
        PageSync {
            core: &mut self.core,
            fiscal: self.fiscal,
        }
    }

    /// The fiscal queue.
    pub fn fiscal(&mut self) -> FiscalQueue<'_> {
        FiscalQueue {
            core: &mut self.core,
            settings: self.fiscal,
        }
    }

    /// Retention of sealed shifts and old records.
    pub fn retention(&mut self) -> Retention<'_> {
        Retention {
            core: &mut self.core,
            fiscal: self.fiscal,
            retention_days: self.retention_days,
        }
    }

    /// Persists what the fiscal pipeline reports, then makes the refunds that waited for a
    /// receipt it just fiscalised.
    pub fn apply_fiscal(&mut self, transition: Transition, now_ms: u64) -> Result<(), NodeError> {
        if let Some(receipt) = self.fiscal().apply(transition, now_ms)? {
            self.shifts().run_refund_sagas(&receipt)?;
        }
        Ok(())
    }

    /// Sets the buffer and clock gauges from the current state.
    pub fn refresh_gauges(&self) {
        self.fiscal.refresh_gauges(&self.core);
    }

    /// Makes a login's record durable under its token's digest, then tells the login cache.
    pub fn record_login(&mut self, token: &str, login: &PosLogin) -> Result<(), NodeError> {
        self.core.ensure_writable()?;
        let value = serde_json::to_vec(login).map_err(|e| NodeError::encode("a login", &e))?;
        let key = token_meta_key(token);
        let mut batch = WriteBatch::new();
        batch.put_meta(key.clone(), value);
        self.core.store.commit(batch)?;
        self.core.logins.stored(key, login.clone());
        Ok(())
    }

    /// Ends the login of `token` durably, then tells the login cache.
    pub fn end_login(&mut self, token: &str) -> Result<(), NodeError> {
        self.core.ensure_writable()?;
        let key = token_meta_key(token);
        let mut batch = WriteBatch::new();
        batch.delete_meta(key.clone());
        self.core.store.commit(batch)?;
        self.core.logins.deleted([&key]);
        Ok(())
    }
}

/// `part` as a percentage of `whole` (a gauge, not money).
pub fn percent(part: usize, whole: u32) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    part as f64 * 100.0 / f64::from(whole)
}
