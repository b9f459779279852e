//! The node's steps of a sync session with the hub, and retention of sealed sessions.
//!
//! The async sync loop owns the [`ClientSession`] and the network; the node does the rest under
//! its lock: build the next request, then check and apply the reply and persist what it did —
//! new changes and every sync state — in ONE store commit. If that commit fails, the touched
//! documents are rebuilt from the store and the session ends with an error; the persisted
//! states were not advanced, so the next session resends what is missing.
//!
//! Changes received for the catalogue carry HLCs (its register keys); the clock observes them
//! so that later local writes order after them. One too far ahead is refused and counted.

use std::collections::BTreeSet;

use crdt_model::ids::DocKey;
use crdt_model::session;
use sync_engine::{ClientSession, DocDivergence, DocId, Envelope};

use super::{Node, NodeError};
use crate::policy::HUB_PEER;
use crate::store::WriteBatch;
use crate::time::now_ms;

/// What applying one reply did.
#[derive(Debug, Default)]
pub struct RoundOutcome {
    /// Documents that received new changes.
    pub docs_changed: usize,
    /// Receipts the hub is now known to hold that it was not before.
    pub receipts_synced: usize,
    /// Documents whose message Automerge could not apply.
    pub failed: Vec<(DocId, String)>,
    /// Documents the hub offered and the till declined.
    pub ignored_offers: Vec<DocId>,
    /// Divergence per document (first round only).
    pub divergence: Vec<DocDivergence>,
}

impl Node {
    /// Starts a sync session with the hub from the persisted sync states.
    pub fn start_sync_session(&mut self) -> Result<ClientSession, NodeError> {
        let mut states = Vec::new();
        for id in self.replica.ids() {
            if let Some(bytes) = self.store.sync_state(id.as_str(), HUB_PEER)? {
                states.push((id.clone(), bytes));
            }
        }
        let mut session = ClientSession::new(
            self.identity.peer.clone(),
            self.identity.hub.clone(),
            states,
        );
        for (id, loaded) in self.replica.iter() {
            if let Some(ms) = loaded.unsynced.oldest_change_ms {
                session.set_unsynced_since(id.clone(), ms);
            }
        }
        Ok(session)
    }

    /// The next request of `session`, or `None` when the session is finished.
    pub fn sync_next_request(
        &mut self,
        session: &mut ClientSession,
    ) -> Result<Option<Envelope>, NodeError> {
        let policy = self.policy();
        let mut docs = self.replica.doc_set(&self.identity.actor);
        Ok(session.next_request(&mut docs, &policy)?)
    }

    /// Checks and applies the hub's reply, and persists it in one commit.
    pub fn sync_apply_reply(
        &mut self,
        session: &mut ClientSession,
        reply: &Envelope,
    ) -> Result<RoundOutcome, NodeError> {
        self.ensure_writable()?;
        let policy = self.policy();
        let before: BTreeSet<DocId> = self.replica.ids().cloned().collect();
        let outcome = {
            let mut docs = self.replica.doc_set(&self.identity.actor);
            session.apply_reply(&mut docs, &policy, reply)
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                // A refused reply applies nothing, but an offered document may have been
                // created empty before the refusal was found: drop what is not stored.
                self.drop_unstored(&before);
                return Err(error.into());
            }
        };
        let wall = now_ms();
        let mut batch = WriteBatch::new();
        for done in &outcome.docs {
            if !done.applied.new_changes.is_empty() {
                batch.append_chunk(done.doc.as_str(), done.applied.new_changes.clone());
                self.observe_doc_hlcs(&done.doc, wall);
            }
            batch.put_sync_state(done.doc.as_str(), HUB_PEER, done.state.clone());
        }
        if let Some(last) = self.clock.last() {
            batch.put_hlc_high_water(last.to_string());
        }
        if let Err(error) = self.store.commit(batch) {
            tracing::error!(%error, "persisting a sync round failed; reloading its documents");
            for done in &outcome.docs {
                self.reload_doc(&done.doc);
            }
            self.drop_unstored(&before);
            return Err(error.into());
        }
        let mut result = RoundOutcome {
            failed: outcome.failed,
            ignored_offers: outcome.ignored_offers,
            divergence: outcome.divergence,
            ..RoundOutcome::default()
        };
        for done in &outcome.docs {
            let Some(loaded) = self.replica.get_mut(&done.doc) else {
                continue;
            };
            let receipts_before = loaded.unsynced.receipts;
            if !done.applied.new_changes.is_empty() {
                loaded.saved_heads = done.applied.heads_after.clone();
                loaded.chunks_since_snapshot += 1;
                result.docs_changed += 1;
            }
            let shared = sync_engine::decode_state(Some(&done.state)).shared_heads;
            loaded.set_hub_shared_heads(shared);
            result.receipts_synced += receipts_before.saturating_sub(loaded.unsynced.receipts);
        }
        for done in &outcome.docs {
            if !done.applied.new_changes.is_empty() {
                self.maybe_compact(&done.doc, false);
            }
        }
        // The hub may have restored a session of ours (a till rebuilt after disk loss).
        if self.current_session.is_none() {
            self.current_session = self.find_open_session();
        }
        self.refresh_gauges();
        Ok(result)
    }

    fn observe_doc_hlcs(&mut self, id: &DocId, wall: u64) {
        let Ok(key) = DocKey::parse(id.as_str()) else {
            return;
        };
        let max = self.replica.get(id).and_then(|loaded| loaded.max_hlc(&key));
        if let Some(hlc) = max {
            self.observe_hlc(&hlc, wall, id.as_str());
        }
    }

    /// Removes documents created in memory since `before` that the store does not hold.
    fn drop_unstored(&mut self, before: &BTreeSet<DocId>) {
        let created: Vec<DocId> = self
            .replica
            .ids()
            .filter(|id| !before.contains(*id))
            .cloned()
            .collect();
        for id in created {
            if self
                .replica
                .get(&id)
                .is_some_and(|d| d.saved_heads.is_empty())
            {
                self.replica.remove(&id);
            }
        }
    }

    /// Drops closed session documents closed more than `retention_days` before `now_ms` that
    /// the hub holds entirely. Returns how many were dropped.
    pub fn apply_retention(&mut self, now_ms: u64) -> Result<usize, NodeError> {
        self.ensure_writable()?;
        let cutoff = now_ms.saturating_sub(u64::from(self.retention_days) * 86_400_000);
        let mut expired = Vec::new();
        for (id, loaded) in self.replica.iter_mut() {
            if !id.as_str().starts_with("session/") || self.current_session.as_ref() == Some(id) {
                continue;
            }
            let closed_at = match session::read(&loaded.doc) {
                Ok(view) => view.close.map(|c| c.closed_at.physical_ms),
                Err(_) => None,
            };
            if closed_at.is_some_and(|at| at < cutoff) && loaded.hub_has_all() {
                expired.push(id.clone());
            }
        }
        for id in &expired {
            self.store.drop_doc(id.as_str())?;
            self.replica.remove(id);
            tracing::info!(doc = %id, "sealed session dropped after the retention period");
        }
        let logins = self.purge_pos_sessions(now_ms)?;
        if logins > 0 {
            tracing::info!(logins, "expired POS logins removed");
        }
        let purged = self
            .store
            .purge_idempotency(i64::try_from(cutoff).unwrap_or(i64::MAX))?;
        if purged > 0 {
            tracing::debug!(purged, "old idempotency records purged");
        }
        self.refresh_gauges();
        Ok(expired.len())
    }
}
