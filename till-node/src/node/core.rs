//! [`Core`]: the durable core of the till — the store, the live documents (replica), the HLC
//! clock, the open cash shift and the "stopped writing" flag. Every operation of the node
//! (shifts, hub sync, page sync, the fiscal queue, retention) borrows it; the one way to make
//! document writes durable and the one rollback live in `commit` ([`Core::commit`],
//! [`Core::rollback`]).
//!
//! Opening loads every stored document, restores the clock from its high-water mark and from
//! the timestamps in the documents, finds the open shift and fills the login cache's staff list.

use crdt_model::hlc::{Hlc, HlcClock};
use crdt_model::ids::DocKey;
use sync_engine::DocId;

use super::error::{ClockRejection, ClockRejections, NodeError};
use super::identity::{self, resolve_device, Identity};
use super::replica::{LoadedDoc, Replica};
use super::{NodeConfig, COMPACT_AFTER_CHUNKS, MAX_CLOCK_LEAD_MS};
use crate::metrics::Metrics;
use crate::policy::HUB_PEER;
use crate::pos::logins::Logins;
use crate::store::Store;
use crate::time::now_ms;

/// The durable core. See the module documentation.
#[derive(Debug)]
pub struct Core {
    pub(super) store: Store,
    pub(super) replica: Replica,
    pub(super) identity: Identity,
    pub(super) clock: HlcClock,
    /// The open cash shift's document.
    pub(super) open_shift: Option<DocId>,
    broken: Option<String>,
    pub(super) metrics: Metrics,
    clock_rejections: ClockRejections,
    /// The login cache, told when the staff document changes.
    pub(super) logins: Logins,
}

impl Core {
    /// Loads every stored document, restores the clock and finds the open shift.
    pub(super) fn open(
        mut store: Store,
        config: &NodeConfig,
        metrics: Metrics,
        logins: Logins,
    ) -> Result<Core, NodeError> {
        let device = resolve_device(&mut store, config.device.as_deref())?;
        let identity = identity::build(config, device)?;
        let clock_node = format!("{}/{}/{}", config.store, config.till, identity.device);
        let high_water = match store.hlc_high_water()? {
            Some(text) => Some(text.parse::<Hlc>()?),
            None => None,
        };
        let clock = HlcClock::restore(&clock_node, MAX_CLOCK_LEAD_MS, high_water.as_ref())?;
        let mut core = Core {
            store,
            replica: Replica::new(),
            identity,
            clock,
            open_shift: None,
            broken: None,
            metrics,
            clock_rejections: ClockRejections::default(),
            logins,
        };
        core.load_all()?;
        core.logins.load_tokens(&core.store)?;
        Ok(core)
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
        self.open_shift = self.find_open_shift();
        let ids: Vec<DocId> = self.replica.ids().cloned().collect();
        for id in ids {
            self.maybe_compact(&id, false);
        }
        self.refresh_staff();
        tracing::info!(
            docs = self.replica.ids().count(),
            open_session = self.open_shift.as_ref().map(DocId::as_str),
            "replica loaded"
        );
        Ok(())
    }

    /// The open shift of this till with the latest opening time, if any.
    pub(super) fn find_open_shift(&self) -> Option<DocId> {
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

    /// The id of the store's staff document.
    pub(super) fn staff_doc(&self) -> String {
        DocKey::Staff {
            store: self.identity.store.clone(),
        }
        .to_doc_id()
    }

    /// Gives the login cache the staff list as the replica holds it now.
    pub(super) fn refresh_staff(&self) {
        let staff_doc = self.staff_doc();
        let loaded = self
            .replica
            .iter()
            .find(|(id, _)| id.as_str() == staff_doc)
            .map(|(_, loaded)| loaded);
        self.logins.set_staff(&staff_doc, loaded.map(|d| &d.doc));
    }

    /// Merges a timestamp found in a document into the clock; one too far ahead of the wall
    /// clock is refused (logged and counted), and the node keeps going.
    pub(super) fn observe_hlc(&mut self, hlc: &Hlc, wall_ms: u64, doc: &str) {
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

    /// Merges the latest timestamp of document `id` into the clock.
    pub(super) fn observe_doc_hlcs(&mut self, id: &DocId, wall: u64) {
        let Ok(key) = DocKey::parse(id.as_str()) else {
            return;
        };
        let max = self.replica.get(id).and_then(|loaded| loaded.max_hlc(&key));
        if let Some(hlc) = max {
            self.observe_hlc(&hlc, wall, id.as_str());
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

    /// The store (read-only), for health checks and support reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The open shift's document id.
    pub fn open_shift(&self) -> Option<&DocId> {
        self.open_shift.as_ref()
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

    pub(super) fn ensure_writable(&self) -> Result<(), NodeError> {
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

    /// Counts a local change of `id` as not yet on the hub.
    pub(super) fn note_local_change(&mut self, id: &DocId, time_ms: u64, is_receipt: bool) {
        if let Some(loaded) = self.replica.get_mut(id) {
            loaded.unsynced.add(time_ms, is_receipt);
        }
    }

    /// Replaces the stored chunks of `id` by one snapshot when enough have piled up (or
    /// always with `force`, e.g. at shift close). A failure only costs load time; logged.
    pub(super) fn maybe_compact(&mut self, id: &DocId, force: bool) {
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
}

/// The sync-engine id of a document key.
pub(super) fn doc_id(key: &DocKey) -> Result<DocId, NodeError> {
    DocId::new(key.to_doc_id()).map_err(|e| NodeError::Identity(e.to_string()))
}
