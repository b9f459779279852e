//! [`HubSync`]: the node's steps of a sync round with the hub.
//!
//! The async sync loop owns the [`SyncRound`] and the network; the node does the rest under
//! its lock: build the next request, then check and apply the reply and persist what it did —
//! new changes and every sync state — in ONE [`Core::commit`]. If that commit fails, the
//! touched documents are rebuilt from the store ([`Core::rollback`]) and the round ends with
//! an error; the persisted states were not advanced, so the next round resends what is missing.
//!
//! Changes received for the catalogue carry HLCs (its register keys); the clock observes them
//! so that later local writes order after them. One too far ahead is refused and counted.

use sync_engine::{DocDivergence, DocId, Envelope, SyncRound};

use super::core::Core;
use super::error::NodeError;
use super::fiscal_queue::FiscalSettings;
use crate::policy::{TillPolicy, HUB_PEER};
use crate::time::now_ms;

/// What applying one reply did.
#[derive(Debug, Default)]
pub struct ReplyOutcome {
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

/// The sync policy towards the hub now: documents held, and the retention cut-off below
/// which the till declines long-retired shifts.
pub(super) fn till_policy(core: &Core, retention_days: u32) -> TillPolicy {
    let retention_ms = u64::from(retention_days) * 86_400_000;
    TillPolicy::new(
        core.identity.store.clone(),
        core.identity.till.clone(),
        now_ms().saturating_sub(retention_ms),
        core.replica.ids().cloned().collect(),
    )
}

/// Sync rounds with the hub over the core. See the module documentation.
#[derive(Debug)]
pub struct HubSync<'a> {
    pub(super) core: &'a mut Core,
    pub(super) fiscal: FiscalSettings,
    pub(super) retention_days: u32,
}

impl HubSync<'_> {
    /// Starts a sync round with the hub from the persisted sync states.
    pub fn start_round(&mut self) -> Result<SyncRound, NodeError> {
        let mut states = Vec::new();
        for id in self.core.replica.ids() {
            if let Some(bytes) = self.core.store.sync_state(id.as_str(), HUB_PEER)? {
                states.push((id.clone(), bytes));
            }
        }
        let mut round = SyncRound::new(
            self.core.identity.peer.clone(),
            self.core.identity.hub.clone(),
            states,
        );
        for (id, loaded) in self.core.replica.iter() {
            if let Some(ms) = loaded.unsynced.oldest_change_ms {
                round.set_unsynced_since(id.clone(), ms);
            }
        }
        Ok(round)
    }

    /// The next request of `round`, or `None` when the round is finished.
    pub fn next_request(&mut self, round: &mut SyncRound) -> Result<Option<Envelope>, NodeError> {
        let policy = till_policy(self.core, self.retention_days);
        let mut docs = self.core.replica.doc_set(&self.core.identity.actor);
        Ok(round.next_request(&mut docs, &policy)?)
    }

    /// Checks and applies the hub's reply, and persists it in one commit.
    pub fn apply_reply(
        &mut self,
        round: &mut SyncRound,
        reply: &Envelope,
    ) -> Result<ReplyOutcome, NodeError> {
        self.core.ensure_writable()?;
        let policy = till_policy(self.core, self.retention_days);
        let mut commit = self.core.begin("sync round with the hub");
        let outcome = {
            let mut docs = self.core.replica.doc_set(&self.core.identity.actor);
            round.apply_reply(&mut docs, &policy, reply)
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                // A refused reply applies nothing, but an offered document may have been
                // created empty before the refusal was found: drop what is not stored.
                self.core.rollback(&commit);
                return Err(error.into());
            }
        };
        let wall = now_ms();
        for done in &outcome.docs {
            if done.applied.new_changes.is_empty() {
                commit.touch(&done.doc);
            } else {
                commit.add_doc(
                    &done.doc,
                    done.applied.new_changes.clone(),
                    done.applied.heads_after.clone(),
                );
                self.core.observe_doc_hlcs(&done.doc, wall);
            }
            commit
                .side
                .put_sync_state(done.doc.as_str(), HUB_PEER, done.state.clone());
        }
        self.core.commit(commit)?;
        let mut result = ReplyOutcome {
            failed: outcome.failed,
            ignored_offers: outcome.ignored_offers,
            divergence: outcome.divergence,
            ..ReplyOutcome::default()
        };
        for done in &outcome.docs {
            let Some(loaded) = self.core.replica.get_mut(&done.doc) else {
                continue;
            };
            let receipts_before = loaded.unsynced.receipts;
            if !done.applied.new_changes.is_empty() {
                result.docs_changed += 1;
            }
            let shared = sync_engine::decode_state(Some(&done.state)).shared_heads;
            loaded.set_hub_shared_heads(shared);
            result.receipts_synced += receipts_before.saturating_sub(loaded.unsynced.receipts);
        }
        // The hub may have restored a shift of ours (a till rebuilt after disk loss).
        if self.core.open_shift.is_none() {
            self.core.open_shift = self.core.find_open_shift();
        }
        self.fiscal.refresh_gauges(self.core);
        Ok(result)
    }
}
