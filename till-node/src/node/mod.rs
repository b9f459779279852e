//! The till's replica node: the store, the live documents, the HLC clock and the current
//! session, behind one synchronous API. The daemon keeps one [`Node`] behind one mutex
//! ([`NodeHandle`]) and calls it from blocking threads, so writers are serialized and no
//! SQLite call runs on the async runtime.
//!
//! The durable path (every write goes through `Node::commit_change`): change the document in
//! memory → commit with a message and the wall time → `save_after(saved_heads)` → ONE
//! [`WriteBatch`] with that chunk, whatever else the operation writes (the idempotency record
//! with the exact response, sync states) and the HLC high-water mark → `store.commit` → only then
//! answer. If the commit fails, the document is rebuilt from the store, so nothing that is not
//! durable is ever visible or acknowledged. If even that fails the node is *broken*: it refuses
//! every write until restarted. A poisoned store (I/O failure) likewise refuses writes.
//!
//! Submodules: [`replica`] (live documents, unsynced counts), `identity` (actor and peer ids,
//! the per-install device name), `handle` (the mutex and the blocking-thread calls), `ops`
//! (sessions, cash, sales), `views` (JSON shapes of answers), `sync` (sync-session steps and
//! retention).

mod fiscal;
mod handle;
mod identity;
mod ops;
mod pos_login;
mod pos_sync;
mod refund;
pub mod replica;
mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pos;
pub mod views;

use automerge::transaction::CommitOptions;
use automerge::ChangeHash;
use crdt_model::hlc::{Hlc, HlcClock};
use crdt_model::ids::DocKey;
use crdt_model::{ClockError, ReceiptError, ReceiptId, SessionError, SessionId, StoreId, TillId};
use sync_engine::{DocId, SyncError};

use crate::metrics::Metrics;
use crate::policy::{TillPolicy, HUB_PEER};
use crate::store::{Store, StoreError, WriteBatch};
use crate::time::now_ms;
use replica::{LoadedDoc, Replica};

pub use fiscal::stamp_of;
pub use handle::{NodeHandle, NodeTaskError};
pub use identity::{
    resolve_device, Identity, DEVICE_META_KEY, GENERATED_DEVICE_LEN, GENERATED_DEVICE_PREFIX,
};
pub use ops::{Answer, IdempotencyRequest};
pub use pos_sync::PosRound;
pub use refund::{RefundOutcome, REFUND_RETRY_SECONDS};
pub use sync::RoundOutcome;

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

/// The parts of a session header the fiscal side needs, kept so that sales and status reads
/// do not parse the whole session document.
#[derive(Debug, Clone)]
struct CachedHeader {
    doc: DocId,
    cashier: String,
    opened_ms: u64,
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store refused or failed the operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node stopped writing (storage failure); reads still work.
    #[error("the till stopped writing after a storage failure: {0}")]
    Unavailable(String),
    /// No session is open.
    #[error("no cash session is open")]
    NoOpenSession,
    /// A session is already open.
    #[error("cash session {0} is already open")]
    SessionAlreadyOpen(SessionId),
    /// The session is not on this till.
    #[error("cash session {0} is not on this till")]
    SessionNotFound(String),
    /// The fiscal buffer is full: the OFD has not acknowledged `count` receipts.
    #[error(
        "the fiscal buffer is full ({count} of {capacity} receipts not acknowledged by the OFD)"
    )]
    BufferFull {
        /// Receipts waiting.
        count: u64,
        /// The capacity.
        capacity: u32,
    },
    /// Only sales can be refunded.
    #[error("receipt {0} is not a sale and cannot be refunded")]
    NotRefundable(ReceiptId),
    /// A refund body names items without payments or the other way round.
    #[error("a partial refund needs both items and payments; {0} is missing")]
    RefundField(&'static str),
    /// A stored refund request no longer reads back.
    #[error("stored refund request: {0}")]
    RefundStored(String),
    /// A refund names a receipt this till does not hold.
    #[error("the original receipt {0} is not known on this till")]
    OriginalNotFound(ReceiptId),
    /// The receipt breaks a rule.
    #[error("invalid receipt: {0}")]
    InvalidReceipt(ReceiptError),
    /// The session document refused the change.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    /// A stored document could not be loaded.
    #[error("cannot load document {doc}: {reason}")]
    Load {
        /// The document.
        doc: String,
        /// Why.
        reason: String,
    },
    /// The clock state could not be restored.
    #[error("clock: {0}")]
    Clock(#[from] ClockError),
    /// The store or till id makes no valid actor or peer id.
    #[error("invalid identity: {0}")]
    Identity(String),
    /// A sync step failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The browser POS changed something in a session it may not (it may only add sales).
    #[error("refused change from the page: {0}")]
    PageChange(String),
}

/// A remote timestamp the clock refused for running too far ahead of the wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockRejection {
    /// The offending timestamp, in its text form.
    pub hlc: String,
    /// The document that carried it.
    pub doc: String,
    /// When it was refused (Unix ms).
    pub at_ms: u64,
}

/// Remote timestamps refused since the node opened (for `/v1/health`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockRejections {
    /// How many.
    pub count: u64,
    /// The latest one.
    pub last: Option<ClockRejection>,
}

/// The replica node. See the module documentation.
#[derive(Debug)]
pub struct Node {
    store: Store,
    replica: Replica,
    identity: Identity,
    clock: HlcClock,
    current_session: Option<DocId>,
    broken: Option<String>,
    retention_days: u32,
    buffer_capacity: u32,
    fiscal_enabled: bool,
    /// Who opened which session and when (the register's shift), read once per session.
    session_header: Option<CachedHeader>,
    metrics: Metrics,
    clock_rejections: ClockRejections,
}

impl Node {
    /// Loads every stored document, restores the clock and finds the open session.
    /// The actor's device is `config.device` or the per-install name ([`resolve_device`]).
    pub fn open(mut store: Store, config: NodeConfig, metrics: Metrics) -> Result<Node, NodeError> {
        let device = resolve_device(&mut store, config.device.as_deref())?;
        let identity = identity::build(&config, device)?;
        let clock_node = format!("{}/{}/{}", config.store, config.till, identity.device);
        let high_water = match store.hlc_high_water()? {
            Some(text) => Some(text.parse::<Hlc>()?),
            None => None,
        };
        let clock = HlcClock::restore(&clock_node, MAX_CLOCK_LEAD_MS, high_water.as_ref())?;
        let mut node = Node {
            store,
            replica: Replica::new(),
            identity,
            clock,
            current_session: None,
            broken: None,
            retention_days: config.retention_days,
            buffer_capacity: config.buffer_capacity,
            fiscal_enabled: config.fiscal_enabled,
            session_header: None,
            metrics,
            clock_rejections: ClockRejections::default(),
        };
        node.load_all()?;
        node.refresh_gauges();
        Ok(node)
    }

    fn load_all(&mut self) -> Result<(), NodeError> {
        let wall = now_ms();
        for stored in self.store.load_docs()? {
            let Ok(key) = DocKey::parse(&stored.doc_id) else {
                tracing::warn!(doc = %stored.doc_id, "ignoring a stored document with an unknown id");
                continue;
            };
            let id = doc_id(&key)?;
            let mut loaded = LoadedDoc::load(&stored.bytes, &self.identity.actor).map_err(|e| {
                NodeError::Load {
                    doc: stored.doc_id.clone(),
                    reason: e.to_string(),
                }
            })?;
            loaded.chunks_since_snapshot = stored.chunk_count;
            let state = self.store.sync_state(&stored.doc_id, HUB_PEER)?;
            let shared = sync_engine::decode_state(state.as_deref()).shared_heads;
            loaded.set_hub_shared_heads(shared);
            if let Some(hlc) = loaded.max_hlc(&key) {
                self.observe_hlc(&hlc, wall, &stored.doc_id);
            }
            self.replica.insert(id, loaded);
        }
        self.current_session = self.find_open_session();
        let ids: Vec<DocId> = self.replica.ids().cloned().collect();
        for id in ids {
            self.maybe_compact(&id, false);
        }
        tracing::info!(
            docs = self.replica.ids().count(),
            open_session = self.current_session.as_ref().map(DocId::as_str),
            "replica loaded"
        );
        Ok(())
    }

    /// The open session of this till with the latest opening time, if any.
    fn find_open_session(&self) -> Option<DocId> {
        let mut best: Option<(Hlc, DocId)> = None;
        for (id, loaded) in self.replica.iter() {
            let Ok(DocKey::Session { till, store, .. }) = DocKey::parse(id.as_str()) else {
                continue;
            };
            if store != self.identity.store || till != self.identity.till {
                continue;
            }
            let Ok(view) = crdt_model::session::read(&loaded.doc) else {
                tracing::warn!(doc = %id, "session document does not read back");
                continue;
            };
            if view.is_closed() {
                continue;
            }
            if let Some((hlc, other)) = &best {
                tracing::warn!(doc = %id, other = %other, "more than one open session");
                if &view.header.opened_at <= hlc {
                    continue;
                }
            }
            best = Some((view.header.opened_at, id.clone()));
        }
        best.map(|(_, id)| id)
    }

    /// Merges a timestamp found in a document into the clock; one too far ahead of the wall
    /// clock is refused (logged and counted), and the node keeps going.
    fn observe_hlc(&mut self, hlc: &Hlc, wall_ms: u64, doc: &str) {
        if let Err(error) = self.clock.observe(hlc, wall_ms) {
            self.metrics.hlc_remote_rejected_total.inc();
            self.clock_rejections.count += 1;
            self.clock_rejections.last = Some(ClockRejection {
                hlc: hlc.to_string(),
                doc: doc.to_owned(),
                at_ms: wall_ms,
            });
            tracing::warn!(%doc, hlc = %hlc, %error, "remote timestamp refused by the clock");
        }
    }

    /// Remote timestamps refused since the node opened. Sticky until a restart: the document
    /// still holds the value, and support has to see it (a restart re-checks every document).
    pub fn clock_rejections(&self) -> &ClockRejections {
        &self.clock_rejections
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The replica (read-only).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The store (read-only), for health checks.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Why writes are refused, if they are.
    pub fn write_block(&self) -> Option<String> {
        self.store
            .poisoned()
            .map(str::to_owned)
            .or_else(|| self.broken.clone())
    }

    /// Refuses every later write: the memory may no longer match the store.
    pub fn mark_broken(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::error!(%reason, "the node stops writing");
        self.broken = Some(reason);
    }

    fn ensure_writable(&self) -> Result<(), NodeError> {
        match self.write_block() {
            Some(reason) => Err(NodeError::Unavailable(reason)),
            None => Ok(()),
        }
    }

    /// How far the HLC runs ahead of the wall clock, in milliseconds (0 when it does not:
    /// an idle clock trailing the wall clock is not drift).
    pub fn hlc_drift_ms(&self) -> i64 {
        self.clock.drift_ms(now_ms()).max(0)
    }

    /// The open session's document id.
    pub fn current_session(&self) -> Option<&DocId> {
        self.current_session.as_ref()
    }

    /// The sync policy for the current step (documents held now, retention cut-off).
    pub fn policy(&self) -> TillPolicy {
        let retention_ms = u64::from(self.retention_days) * 86_400_000;
        TillPolicy::new(
            self.identity.store.clone(),
            self.identity.till.clone(),
            now_ms().saturating_sub(retention_ms),
            self.replica.ids().cloned().collect(),
        )
    }

    /// Commits the open transaction of `id` with `message` and makes it durable together
    /// with `extra`; see the module documentation. Returns the chunk's new heads.
    fn commit_change(
        &mut self,
        id: &DocId,
        message: String,
        time_ms: u64,
        extra: WriteBatch,
    ) -> Result<Vec<ChangeHash>, NodeError> {
        let Some(loaded) = self.replica.get_mut(id) else {
            return Err(NodeError::Load {
                doc: id.to_string(),
                reason: "not in memory".to_owned(),
            });
        };
        let time = i64::try_from(time_ms).unwrap_or(i64::MAX);
        loaded.doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(time),
        );
        let chunk = loaded.doc.save_after(&loaded.saved_heads);
        let heads = loaded.doc.get_heads();
        let mut batch = WriteBatch::new();
        if !chunk.is_empty() {
            batch.append_chunk(id.as_str(), chunk);
        }
        for op in extra.ops() {
            batch.push(op.clone());
        }
        if let Some(last) = self.clock.last() {
            batch.put_hlc_high_water(last.to_string());
        }
        if let Err(error) = self.store.commit(batch) {
            tracing::error!(doc = %id, %error, "commit failed; rebuilding the document from the store");
            self.reload_doc(id);
            return Err(error.into());
        }
        if let Some(loaded) = self.replica.get_mut(id) {
            loaded.saved_heads = heads.clone();
            loaded.chunks_since_snapshot += 1;
        }
        self.maybe_compact(id, false);
        Ok(heads)
    }

    /// Rebuilds `id` from the store after a failed commit (removes it if nothing is stored).
    fn reload_doc(&mut self, id: &DocId) {
        let shared = self
            .replica
            .get(id)
            .map(|d| d.hub_shared_heads.clone())
            .unwrap_or_default();
        let result = self.store.load_doc(id.as_str()).map(|stored| {
            stored.map(|stored| {
                LoadedDoc::load(&stored.bytes, &self.identity.actor)
                    .map(|mut d| {
                        d.chunks_since_snapshot = stored.chunk_count;
                        d
                    })
                    .map_err(|e| e.to_string())
            })
        });
        match result {
            Ok(Some(Ok(mut loaded))) => {
                loaded.set_hub_shared_heads(shared);
                self.replica.insert(id.clone(), loaded);
            }
            Ok(None) => {
                self.replica.remove(id);
                if self.current_session.as_ref() == Some(id) {
                    self.current_session = None;
                }
            }
            Ok(Some(Err(reason))) => {
                self.replica.remove(id);
                self.mark_broken(format!("document {id} does not reload: {reason}"));
            }
            Err(error) => {
                self.replica.remove(id);
                self.mark_broken(format!("document {id} does not reload: {error}"));
            }
        }
        self.current_session = self.find_open_session();
    }

    /// Replaces the stored chunks of `id` by one snapshot when enough have piled up (or
    /// always with `force`, e.g. at session close). A failure only costs load time; logged.
    fn maybe_compact(&mut self, id: &DocId, force: bool) {
        let Some(loaded) = self.replica.get_mut(id) else {
            return;
        };
        if loaded.chunks_since_snapshot == 0
            || (!force && loaded.chunks_since_snapshot < COMPACT_AFTER_CHUNKS)
        {
            return;
        }
        let snapshot = loaded.doc.save();
        let heads: Vec<u8> = loaded
            .saved_heads
            .iter()
            .flat_map(|h| h.0.iter().copied())
            .collect();
        let result = self
            .store
            .last_chunk_id(id.as_str())
            .and_then(|up_to| self.store.compact(id.as_str(), &snapshot, &heads, up_to));
        match result {
            Ok(deleted) => {
                tracing::debug!(doc = %id, deleted, bytes = snapshot.len(), "document compacted");
                if let Some(loaded) = self.replica.get_mut(id) {
                    loaded.chunks_since_snapshot = 0;
                }
            }
            Err(error) => tracing::warn!(doc = %id, %error, "compaction failed"),
        }
    }

    /// Sets the buffer and clock gauges from the current state.
    pub fn refresh_gauges(&self) {
        let unsynced = self.replica.unsynced_total();
        let unsynced_count = i64::try_from(unsynced.receipts).unwrap_or(i64::MAX);
        self.metrics.unsynced_receipts.set(unsynced_count);
        // The buffer is the fiscal one when a register is attached, else "not on the hub".
        let buffered = if self.fiscal_enabled {
            self.store
                .outbox_stats()
                .map_or(unsynced.receipts, |stats| {
                    usize::try_from(stats.unacknowledged()).unwrap_or(usize::MAX)
                })
        } else {
            unsynced.receipts
        };
        self.metrics
            .buffer_size
            .set(i64::try_from(buffered).unwrap_or(i64::MAX));
        self.metrics
            .buffer_percent_full
            .set(percent(buffered, self.buffer_capacity));
        self.metrics
            .hlc_drift_seconds
            .set(self.hlc_drift_ms() as f64 / 1000.0);
    }
}

/// `part` as a percentage of `whole` (a gauge, not money).
pub fn percent(part: usize, whole: u32) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    part as f64 * 100.0 / f64::from(whole)
}

fn doc_id(key: &DocKey) -> Result<DocId, NodeError> {
    DocId::new(key.to_doc_id()).map_err(|e| NodeError::Identity(e.to_string()))
}
