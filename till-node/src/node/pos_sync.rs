//! The till as the sync server of its browser POS, and the fiscal jobs for the receipts the
//! page sold.
//!
//! The page sells into its own replica of the open session (IndexedDB) and pushes the session
//! to the till with the same protocol the till uses with the hub. One round here is
//! `Server::plan` (the whole envelope checked against [`PosPolicy`]) → `Server::respond` over
//! the live documents → ONE store commit with the new change chunks, the page's sync states
//! and a fiscal job for every receipt that appeared in a session in this round.
//!
//! Exactly once: a receipt gets its job in the commit that first stores it on the till. Each
//! session is read before and after applying the round; only the receipts it gained are
//! queued, and a receipt already held (sold through the HTTP API, or merged in an earlier
//! round) never is, nor one that already has an outbox row. The commit holds both the document
//! change and its jobs, so a crash leaves either both or neither, and the page simply sends the
//! receipt again. Only sessions the till holds take part (`PosPolicy`), so a shift dropped after
//! retention cannot come back and be queued again.
//!
//! The page may only add sales (`pos::changes`): a round that changes anything else in a
//! session, adds a refund or a discount above the cap, or holds a receipt that does not read
//! back is refused whole: nothing is stored and the documents are rebuilt from the store.

use std::collections::{BTreeMap, BTreeSet};

use crdt_model::ids::DocKey;
use crdt_model::session::{self, SessionView};
use fiscal::pipeline::FiscalJob;
use sync_engine::{DocId, Envelope, PeerId, Server};

use super::fiscal::job_entry;
use super::{Node, NodeError};
use crate::pos::changes::added_sales;
use crate::pos::policy::PosPolicy;
use crate::pos::tokens::PosSession;
use crate::store::{OutboxEntry, WriteBatch};
use crate::time::now_ms;

/// What one round with the page did.
#[derive(Debug)]
pub struct PosRound {
    /// The envelope to send back.
    pub reply: Envelope,
    /// Receipts the page sold that reached the till in this round.
    pub new_receipts: usize,
    /// Documents that received changes.
    pub docs_changed: usize,
}

impl Node {
    /// Serves one sync round of the page logged in as `login` (its peer, device and cashier).
    pub fn pos_sync_round(
        &mut self,
        login: &PosSession,
        request: &Envelope,
    ) -> Result<PosRound, NodeError> {
        self.ensure_writable()?;
        let peer = PeerId::new(login.peer.clone())
            .map_err(|e| NodeError::Identity(format!("stored peer id: {e}")))?;
        let peer = &peer;
        let cashier = login.login.as_str();
        let policy = PosPolicy::new(
            self.identity.store.clone(),
            self.identity.till.clone(),
            peer.clone(),
            login.device.clone(),
            self.replica.ids().cloned().collect(),
        );
        let server = Server::new(self.identity.peer.clone());
        let offered = self.pos_offered_docs();
        let plan = server.plan(peer, request, &policy, &offered)?;
        let planned = plan.docs_to_load();
        let mut states = BTreeMap::new();
        for id in &planned {
            if let Some(bytes) = self.store.sync_state(id.as_str(), peer.as_str())? {
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
        let sessions_before = self.session_views(&changing)?;
        let held_before: BTreeSet<DocId> = self.replica.ids().cloned().collect();
        let response = {
            let mut docs = self.replica.doc_set(&self.identity.actor);
            server.respond(plan, &policy, &mut docs, &states)
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.undo_round(&planned, &held_before);
                return Err(error.into());
            }
        };
        let now = now_ms();
        let mut batch = WriteBatch::new();
        let mut new_receipts = 0;
        for done in &response.docs {
            if !done.applied.new_changes.is_empty() {
                batch.append_chunk(done.doc.as_str(), done.applied.new_changes.clone());
                let jobs =
                    match self.jobs_for_new_receipts(&done.doc, &sessions_before, cashier, now) {
                        Ok(jobs) => jobs,
                        Err(error) => {
                            self.undo_round(&planned, &held_before);
                            return Err(error);
                        }
                    };
                new_receipts += jobs.len();
                for job in jobs {
                    batch.enqueue_outbox(job);
                }
            }
            batch.put_sync_state(done.doc.as_str(), peer.as_str(), done.state.clone());
        }
        if let Some(last) = self.clock.last() {
            batch.put_hlc_high_water(last.to_string());
        }
        if let Err(error) = self.store.commit(batch) {
            tracing::error!(%error, "persisting a round with the page failed; reloading its documents");
            self.undo_round(&planned, &held_before);
            return Err(error.into());
        }
        let mut docs_changed = 0;
        for done in &response.docs {
            if done.applied.new_changes.is_empty() {
                continue;
            }
            docs_changed += 1;
            if let Some(loaded) = self.replica.get_mut(&done.doc) {
                loaded.saved_heads = done.applied.heads_after.clone();
                loaded.chunks_since_snapshot += 1;
                // The page's receipts are now ours to push to the hub: recount what it lacks.
                let shared = loaded.hub_shared_heads.clone();
                loaded.set_hub_shared_heads(shared);
            }
            self.maybe_compact(&done.doc, false);
        }
        if new_receipts > 0 {
            self.metrics
                .receipts_accepted_total
                .inc_by(new_receipts as u64);
        }
        if self.current_session.is_none() {
            self.current_session = self.find_open_session();
        }
        self.refresh_gauges();
        Ok(PosRound {
            reply: response.reply,
            new_receipts,
            docs_changed,
        })
    }

    /// Documents offered to the page when it lists what it holds: the store's catalogue and
    /// the open session (closed sessions stay on the till and the hub).
    fn pos_offered_docs(&self) -> Vec<DocId> {
        let catalogue = DocKey::Catalogue {
            store: self.identity.store.clone(),
        };
        let mut offered: Vec<DocId> = self
            .replica
            .ids()
            .filter(|id| id.as_str() == catalogue.to_doc_id())
            .cloned()
            .collect();
        offered.extend(self.current_session.clone());
        offered
    }

    /// The planned session documents as held now, read and re-validated.
    fn session_views(&self, planned: &[DocId]) -> Result<BTreeMap<DocId, SessionView>, NodeError> {
        let mut views = BTreeMap::new();
        for id in planned {
            if !matches!(DocKey::parse(id.as_str()), Ok(DocKey::Session { .. })) {
                continue;
            }
            if let Some(loaded) = self.replica.get(id) {
                views.insert(id.clone(), session::read(&loaded.doc)?);
            }
        }
        Ok(views)
    }

    /// Fiscal jobs for the sales the round added to session `id`. Anything else the page
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
        let Some(loaded) = self.replica.get(id) else {
            return Ok(Vec::new());
        };
        let after = session::read(&loaded.doc)?;
        let added = added_sales(before, &after).map_err(NodeError::PageChange)?;
        let wall = now_ms();
        let mut jobs = Vec::with_capacity(added.len());
        for receipt in added {
            self.observe_hlc(&receipt.hlc, wall, id.as_str());
            if !self.fiscal_enabled {
                continue;
            }
            let receipt_id = receipt.id;
            if self.store.outbox_entry(&receipt_id.to_string())?.is_some() {
                tracing::warn!(receipt = %receipt_id, "a page receipt already has a fiscal job; not queued again");
                continue;
            }
            let hlc = receipt.hlc.clone();
            let job = FiscalJob::Receipt {
                receipt: Box::new(receipt),
                cashier: cashier.to_owned(),
            };
            jobs.push(job_entry(receipt_id.to_string(), &hlc, id, &job, now));
        }
        Ok(jobs)
    }

    /// Puts memory back to what the store holds after a refused or failed round.
    fn undo_round(&mut self, planned: &[DocId], held_before: &BTreeSet<DocId>) {
        for id in planned {
            if held_before.contains(id) {
                self.reload_doc(id);
            } else {
                self.replica.remove(id);
            }
        }
        self.current_session = self.find_open_session();
    }
}
