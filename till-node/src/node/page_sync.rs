//! [`PageSync`]: the till as the sync server of its browser POS, and the fiscal jobs for the
//! receipts the page sold.
//!
//! The page sells into its own replica of the open shift (IndexedDB) and pushes the shift
//! to the till with the same protocol the till uses with the hub. One round here is
//! `Server::plan` (the whole envelope checked against [`PosPolicy`]) → `Server::respond` over
//! the live documents → ONE [`Core::commit`] with the new change chunks, the page's sync states
//! and a fiscal job for every receipt that appeared in a shift in this round.
//!
//! Exactly once: a receipt gets its job in the commit that first stores it on the till. Each
//! shift is read before and after applying the round; only the receipts it gained are
//! queued, and a receipt already held (sold through the HTTP API, or merged in an earlier
//! round) never is, nor one that already has an outbox row. The commit holds both the document
//! change and its jobs, so a crash leaves either both or neither, and the page simply sends the
//! receipt again. Only shifts the till holds take part (`PosPolicy`), so a shift dropped after
//! retention cannot come back and be queued again.
//!
//! The page may only add sales (`pos::changes`): a round that changes anything else in a
//! shift, adds a refund or a discount above the cap, or holds a receipt that does not read
//! back is refused whole: nothing is stored and the documents are rebuilt from the store
//! ([`Core::rollback`]).

use std::collections::BTreeMap;

use crdt_model::ids::DocKey;
use crdt_model::session::{self, SessionView};
use fiscal::pipeline::FiscalJob;
use sync_engine::{DocId, Envelope, PeerId, Server};

use super::commit::Commit;
use super::core::Core;
use super::error::NodeError;
use super::fiscal_queue::{job_entry, FiscalSettings};
use crate::pos::changes::added_sales;
use crate::pos::policy::PosPolicy;
use crate::pos::tokens::PosLogin;
use crate::store::OutboxEntry;
use crate::time::now_ms;

/// What one round with the page did.
#[derive(Debug)]
pub struct PageRound {
    /// The envelope to send back.
    pub reply: Envelope,
    /// Receipts the page sold that reached the till in this round.
    pub new_receipts: usize,
    /// Documents that received changes.
    pub docs_changed: usize,
}

/// Sync rounds with the page over the core. See the module documentation.
#[derive(Debug)]
pub struct PageSync<'a> {
    pub(super) core: &'a mut Core,
    pub(super) fiscal: FiscalSettings,
}

impl PageSync<'_> {
    /// Serves one sync round of the page logged in as `login` (its peer, device and cashier).
    pub fn round(&mut self, login: &PosLogin, request: &Envelope) -> Result<PageRound, NodeError> {
        self.core.ensure_writable()?;
        let peer = PeerId::new(login.peer.clone())
            .map_err(|e| NodeError::Identity(format!("stored peer id: {e}")))?;
        let peer = &peer;
        let cashier = login.login.as_str();
        let policy = PosPolicy::new(
            self.core.identity.store.clone(),
            self.core.identity.till.clone(),
            peer.clone(),
            login.device.clone(),
            self.core.replica.ids().cloned().collect(),
        );
        let server = Server::new(self.core.identity.peer.clone());
        let offered = self.offered_docs();
        let plan = server.plan(peer, request, &policy, &offered)?;
        let planned = plan.docs_to_load();
        let mut states = BTreeMap::new();
        for id in &planned {
            if let Some(bytes) = self.core.store.sync_state(id.as_str(), peer.as_str())? {
                states.insert(id.clone(), bytes);
            }
        }
        // Only documents the page sends changes for can gain receipts: an idle poll reads none.
        let changing: Vec<DocId> = plan
            .docs()
            .iter()
            .filter(|planned| planned.incoming_changes() > 0)
            .map(|planned| planned.doc.clone())
            .collect();
        let shifts_before = self.shift_views(&changing)?;
        let mut commit = self.core.begin("sync round with the page");
        for id in &planned {
            commit.touch(id);
        }
        let response = {
            let mut docs = self.core.replica.doc_set(&self.core.identity.actor);
            server.respond(plan, &policy, &mut docs, &states)
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.core.rollback(&commit);
                return Err(error.into());
            }
        };
        let now = now_ms();
        let new_receipts = match self.stage_round(
            &mut commit,
            &response.docs,
            &shifts_before,
            cashier,
            peer,
            now,
        ) {
            Ok(new_receipts) => new_receipts,
            Err(error) => {
                self.core.rollback(&commit);
                return Err(error);
            }
        };
        self.core.commit(commit)?;
        let mut docs_changed = 0;
        for done in &response.docs {
            if done.applied.new_changes.is_empty() {
                continue;
            }
            docs_changed += 1;
            if let Some(loaded) = self.core.replica.get_mut(&done.doc) {
                // The page's receipts are now ours to push to the hub: recount what it lacks.
                let shared = loaded.hub_shared_heads.clone();
                loaded.set_hub_shared_heads(shared);
            }
        }
        if new_receipts > 0 {
            self.core
                .metrics
                .receipts_accepted_total
                .inc_by(new_receipts as u64);
        }
        if self.core.open_shift.is_none() {
            self.core.open_shift = self.core.find_open_shift();
        }
        self.fiscal.refresh_gauges(self.core);
        Ok(PageRound {
            reply: response.reply,
            new_receipts,
            docs_changed,
        })
    }

    /// Adds the round's new chunks, fiscal jobs and the page's sync states to `commit`;
    /// returns how many receipts the page sold in it.
    fn stage_round(
        &mut self,
        commit: &mut Commit,
        done: &[sync_engine::ServerDocOutcome],
        shifts_before: &BTreeMap<DocId, SessionView>,
        cashier: &str,
        peer: &PeerId,
        now: u64,
    ) -> Result<usize, NodeError> {
        let mut new_receipts = 0;
        for done in done {
            if !done.applied.new_changes.is_empty() {
                commit.add_doc(
                    &done.doc,
                    done.applied.new_changes.clone(),
                    done.applied.heads_after.clone(),
                );
                let jobs = self.jobs_for_new_receipts(&done.doc, shifts_before, cashier, now)?;
                new_receipts += jobs.len();
                for job in jobs {
                    commit.side.enqueue_outbox(job);
                }
            }
            commit
                .side
                .put_sync_state(done.doc.as_str(), peer.as_str(), done.state.clone());
        }
        Ok(new_receipts)
    }

    /// Documents offered to the page when it lists what it holds: the store's catalogue and
    /// the open shift (closed shifts stay on the till and the hub).
    fn offered_docs(&self) -> Vec<DocId> {
        let catalogue = DocKey::Catalogue {
            store: self.core.identity.store.clone(),
        };
        let mut offered: Vec<DocId> = self
            .core
            .replica
            .ids()
            .filter(|id| id.as_str() == catalogue.to_doc_id())
            .cloned()
            .collect();
        offered.extend(self.core.open_shift.clone());
        offered
    }

    /// The planned shift documents as held now, read and re-validated.
    fn shift_views(&self, planned: &[DocId]) -> Result<BTreeMap<DocId, SessionView>, NodeError> {
        let mut views = BTreeMap::new();
        for id in planned {
            if !matches!(DocKey::parse(id.as_str()), Ok(DocKey::Session { .. })) {
                continue;
            }
            if let Some(loaded) = self.core.replica.get(id) {
                views.insert(id.clone(), session::read(&loaded.doc)?);
            }
        }
        Ok(views)
    }

    /// Fiscal jobs for the sales the round added to shift `id`. Anything else the page
    /// changed, or a receipt that does not read back, refuses the round.
    fn jobs_for_new_receipts(
        &mut self,
        id: &DocId,
        before: &BTreeMap<DocId, SessionView>,
        cashier: &str,
        now: u64,
    ) -> Result<Vec<OutboxEntry>, NodeError> {
        let Some(before) = before.get(id) else {
            return Ok(Vec::new());
        };
        let Some(loaded) = self.core.replica.get(id) else {
            return Ok(Vec::new());
        };
        let after = session::read(&loaded.doc)?;
        let added = added_sales(before, &after).map_err(NodeError::PageChange)?;
        let wall = now_ms();
        let mut jobs = Vec::with_capacity(added.len());
        for receipt in added {
            self.core.observe_hlc(&receipt.hlc, wall, id.as_str());
            if !self.fiscal.enabled {
                continue;
            }
            let receipt_id = receipt.id;
            if self
                .core
                .store
                .outbox_entry(&receipt_id.to_string())?
                .is_some()
            {
                tracing::warn!(receipt = %receipt_id, "a page receipt already has a fiscal job; not queued again");
                continue;
            }
            let hlc = receipt.hlc.clone();
            let job = FiscalJob::Receipt {
                receipt: Box::new(receipt),
                cashier: cashier.to_owned(),
            };
            jobs.push(job_entry(receipt_id.to_string(), &hlc, id, &job, now)?);
        }
        Ok(jobs)
    }
}
