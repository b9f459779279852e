//! Server half of a sync round (the hub answering a till), sans-IO and stateless between requests.
//!
//! Processing one request is split in two so an async server can load exactly what it needs:
//!
//! ```text
//! let plan = server.plan(&peer, &request, &policy, &held_ids)?;   // checks the WHOLE envelope
//! let (docs, states) = load(plan.docs_to_load(), &peer).await?;     // from the database
//! let response = server.respond(plan, &policy, &mut docs, &states)?;
//! persist(response.docs).await?;          // new_changes + state bytes, ONE transaction
//! send(response.reply)
//! ```
//!
//! * `plan` refuses the envelope whole — sender mismatch, a document the peer may not see, changes
//!   into a read-only document, a malformed message or corrupt change — before any document is
//!   loaded. `held` (the ids the server holds in the peer's scope) is read only for `complete`
//!   requests, to offer the documents the client lacks; offers beyond the per-round limit wait.
//! * `respond` first checks authorship (only changes the server does not hold yet are checked, so
//!   relayed changes pass), then applies every message and generates every answer. Per-peer
//!   `State`s are rebuilt from their persisted bytes on every request, so any hub process can
//!   serve any request. Answers that do not fit the reply budget are left for the next round and
//!   the reply is marked not `complete`.
//! * An `Err` from either step means: persist nothing, send an error.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{Have, Message, MessageVersion, State, SyncDoc};
use automerge::AutoCommit;

use crate::clock::VersionVector;
use crate::divergence::DocDivergence;
use crate::doc_sync::{self, Applied};
use crate::docset::DocSet;
use crate::envelope::{DocEntry, DocStatus, Envelope};
use crate::error::{ForbiddenReason, SyncError};
use crate::id::{DocId, PeerId};
use crate::inspect::{self, IncomingChange};
use crate::policy::{Access, SharePolicy};
use crate::round::{Budget, Fit, RoundLimits};

/// The server side of sync for one replica.
#[derive(Debug, Clone)]
pub struct Server {
    id: PeerId,
    limits: RoundLimits,
}

/// A checked request: what to load and what to do with it. Made by [`Server::plan`].
#[derive(Debug)]
pub struct Plan {
    peer: PeerId,
    status_round: bool,
    docs: Vec<PlannedDoc>,
    deferred_offers: Vec<DocId>,
}

/// One document of a [`Plan`].
#[derive(Debug)]
pub struct PlannedDoc {
    /// Which document.
    pub doc: DocId,
    /// The peer's access to it.
    pub access: Access,
    /// Offered by the server (the client did not mention it).
    pub offered: bool,
    /// The client's status of the document, if sent.
    pub client_status: Option<DocStatus>,
    message: Option<Message>,
    incoming: Vec<IncomingChange>,
}

/// What processing a request produced.
#[derive(Debug)]
pub struct Response {
    /// The envelope to send back.
    pub reply: Envelope,
    /// Per document: changes and state to persist (in one transaction with the others).
    pub docs: Vec<ServerDocOutcome>,
    /// Documents whose answer was left for the next round.
    pub deferred: Vec<DocId>,
    /// Documents whose answer exceeds the envelope limit and cannot be sent at all (alarm).
    pub oversized: Vec<DocId>,
    /// Divergence per document for which the client sent its status.
    pub divergence: Vec<DocDivergence>,
}

/// What a request did to one document of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDocOutcome {
    /// Which document.
    pub doc: DocId,
    /// The document did not exist and was created for this request.
    pub created: bool,
    /// Changes applied (append `applied.new_changes` to the stored chunks).
    pub applied: Applied,
    /// The persisted state (`State::encode`) for (doc, peer) after this request.
    pub state: Vec<u8>,
    /// `state` differs from the bytes that were loaded.
    pub state_changed: bool,
}

impl Plan {
    /// The authenticated peer the plan is for.
    pub fn peer(&self) -> &PeerId {
        &self.peer
    }

    /// Documents to load (with their persisted states for this peer) before [`Server::respond`].
    pub fn docs_to_load(&self) -> Vec<DocId> {
        self.docs
            .iter()
            .map(|planned| planned.doc.clone())
            .collect()
    }

    /// The planned documents, client-mentioned ones first.
    pub fn docs(&self) -> &[PlannedDoc] {
        &self.docs
    }

    /// Offers left for a later round by the per-round limit.
    pub fn deferred_offers(&self) -> &[DocId] {
        &self.deferred_offers
    }
}

impl PlannedDoc {
    /// Heads the client announced for this document, if it sent a message.
    pub fn client_heads(&self) -> Option<&[automerge::ChangeHash]> {
        self.message
            .as_ref()
            .map(|message| message.heads.as_slice())
    }

    /// Number of changes the client's message carries.
    pub fn incoming_changes(&self) -> usize {
        self.incoming.len()
    }
}

impl Server {
    /// A server named `id` (the `sender` of its replies) with default limits.
    pub fn new(id: PeerId) -> Self {
        Self {
            id,
            limits: RoundLimits::default(),
        }
    }

    /// Replaces the default [`RoundLimits`].
    pub fn with_limits(mut self, limits: RoundLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The server's peer id.
    pub fn id(&self) -> &PeerId {
        &self.id
    }

    /// Checks the whole request and decides which documents to load (see the module doc).
    pub fn plan(
        &self,
        peer: &PeerId,
        request: &Envelope,
        policy: &dyn SharePolicy,
        held: &[DocId],
    ) -> Result<Plan, SyncError> {
        if &request.sender != peer {
            return Err(SyncError::UnexpectedSender {
                expected: peer.clone(),
                found: request.sender.clone(),
            });
        }
        request.check_limits()?;
        let mut docs = Vec::new();
        let mut mentioned = BTreeSet::new();
        for entry in &request.entries {
            mentioned.insert(&entry.doc);
            let access = policy.access(peer, &entry.doc);
            if !access.can_read() {
                return Err(forbidden(&entry.doc, ForbiddenReason::NoAccess));
            }
            let Some(bytes) = &entry.message else {
                continue;
            };
            let invalid = |source| SyncError::InvalidMessage {
                doc: entry.doc.clone(),
                source,
            };
            let message = inspect::decode_message(bytes).map_err(invalid)?;
            if !access.can_write() && !message.changes.is_empty() {
                return Err(forbidden(&entry.doc, ForbiddenReason::ReadOnly));
            }
            let incoming = inspect::inspect_changes(&message).map_err(invalid)?;
            docs.push(PlannedDoc {
                doc: entry.doc.clone(),
                access,
                offered: false,
                client_status: entry.status.clone(),
                message: Some(message),
                incoming,
            });
        }

        let mut deferred_offers = Vec::new();
        if request.complete {
            let mut room = self.limits.max_docs.saturating_sub(docs.len());
            let offers: BTreeSet<&DocId> =
                held.iter().filter(|id| !mentioned.contains(id)).collect();
            for id in offers {
                let access = policy.access(peer, id);
                if !access.can_read() {
                    continue;
                }
                if room == 0 {
                    deferred_offers.push(id.clone());
                    continue;
                }
                room -= 1;
                docs.push(PlannedDoc {
                    doc: id.clone(),
                    access,
                    offered: true,
                    client_status: None,
                    message: None,
                    incoming: Vec::new(),
                });
            }
        }
        Ok(Plan {
            peer: peer.clone(),
            status_round: request.complete,
            docs,
            deferred_offers,
        })
    }

    /// Applies a plan to the loaded documents and builds the reply (see the module doc).
    /// `states` holds the persisted `State::encode` bytes of (doc, plan peer).
    pub fn respond(
        &self,
        plan: Plan,
        policy: &dyn SharePolicy,
        docs: &mut dyn DocSet,
        states: &BTreeMap<DocId, Vec<u8>>,
    ) -> Result<Response, SyncError> {
        check_authors(&plan, policy, docs)?;

        let mut budget = Budget::new(
            self.limits,
            Envelope::new(self.id.clone(), false, vec![]).encoded_len(),
        );
        let mut response = Response {
            reply: Envelope::new(self.id.clone(), plan.deferred_offers.is_empty(), Vec::new()),
            docs: Vec::new(),
            deferred: plan.deferred_offers.clone(),
            oversized: Vec::new(),
            divergence: Vec::new(),
        };
        for planned in plan.docs {
            self.respond_one(
                planned,
                plan.status_round,
                docs,
                states,
                &mut budget,
                &mut response,
            )?;
        }
        Ok(response)
    }

    fn respond_one(
        &self,
        planned: PlannedDoc,
        status_round: bool,
        docs: &mut dyn DocSet,
        states: &BTreeMap<DocId, Vec<u8>>,
        budget: &mut Budget,
        response: &mut Response,
    ) -> Result<(), SyncError> {
        let id = planned.doc;
        let created = docs.doc_mut(&id).is_none();
        if created && planned.offered {
            // Listed as held but not loaded (deleted meanwhile): nothing to offer.
            return Ok(());
        }
        let doc = if created {
            docs.create_doc(&id)
        } else {
            match docs.doc_mut(&id) {
                Some(doc) => doc,
                None => return Ok(()),
            }
        };
        let loaded_state = states.get(&id);
        let mut state = doc_sync::decode_state(loaded_state.map(Vec::as_slice));
        doc_sync::apply_access(&mut state, planned.access.can_write());
        let remote_heads = planned.message.as_ref().map(|m| m.heads.clone());
        let apply_error = |source| SyncError::Apply {
            doc: id.clone(),
            source: Box::new(source),
        };
        let applied = match planned.message {
            Some(message) => {
                doc_sync::receive_checked(doc, &mut state, message).map_err(apply_error)?
            }
            None => Applied::unchanged(doc.get_heads()),
        };
        if planned.offered {
            // The client listed everything it holds and this doc was not there: answer as if it
            // had said "I have nothing", so the first reply already carries the whole document
            // (a fresh till gets its catalogue in two round trips, not three).
            doc.sync()
                .receive_sync_message(&mut state, empty_peer_hello())
                .map_err(apply_error)?;
        }
        let message = doc_sync::generate(doc, &mut state);
        let needs_clock = status_round || planned.client_status.is_some();
        let clock = needs_clock.then(|| VersionVector::from_doc(doc));
        let local_status = clock.map(|clock| DocStatus {
            clock,
            oldest_unsynced_ms: None,
        });
        if let (Some(remote), Some(local)) = (&planned.client_status, &local_status) {
            response.divergence.push(DocDivergence::compute(
                id.clone(),
                doc.get_heads(),
                local,
                remote_heads,
                remote,
            ));
        }

        let mut entry = DocEntry {
            doc: id.clone(),
            message,
            status: local_status.filter(|status| status_round && status.fits_wire_limits()),
        };
        let fit = budget.fit(&entry);
        if entry.message.is_some() && fit != Fit::Now {
            entry.message = None;
            if fit == Fit::Never {
                response.oversized.push(id.clone());
            } else {
                response.deferred.push(id.clone());
                response.reply.complete = false;
            }
        }
        // An offer without a message says nothing; a mentioned doc is listed either way so the
        // client knows it was seen.
        let list = entry.message.is_some() || !planned.offered;
        if list && budget.fit(&entry) == Fit::Now {
            budget.add(&entry);
            response.reply.entries.push(entry);
        } else if list {
            response.reply.complete = false;
        }

        let state_bytes = state.encode();
        response.docs.push(ServerDocOutcome {
            doc: id,
            created,
            state_changed: loaded_state != Some(&state_bytes),
            applied,
            state: state_bytes,
        });
        Ok(())
    }

    /// Plans and responds in one call, for servers that hold every document in memory.
    pub fn handle(
        &self,
        peer: &PeerId,
        request: &Envelope,
        policy: &dyn SharePolicy,
        docs: &mut dyn DocSet,
        states: &BTreeMap<DocId, Vec<u8>>,
    ) -> Result<Response, SyncError> {
        let held = docs.doc_ids();
        let plan = self.plan(peer, request, policy, &held)?;
        self.respond(plan, policy, docs, states)
    }
}

/// Refuses new changes by authors the policy does not allow, before anything is applied.
fn check_authors(
    plan: &Plan,
    policy: &dyn SharePolicy,
    docs: &mut dyn DocSet,
) -> Result<(), SyncError> {
    for planned in plan.docs.iter().filter(|p| !p.incoming.is_empty()) {
        let mut doc = docs.doc_mut(&planned.doc);
        for change in &planned.incoming {
            let known = doc
                .as_mut()
                .is_some_and(|doc| doc.get_change_meta_by_hash(&change.hash).is_some());
            if !known && !policy.may_author(&plan.peer, &planned.doc, &change.actor) {
                return Err(forbidden(
                    &planned.doc,
                    ForbiddenReason::Author(change.actor.clone()),
                ));
            }
        }
    }
    Ok(())
}

/// The first message a peer with an empty document sends (heads `[]`, empty Bloom filter).
fn empty_peer_hello() -> Message {
    let mut empty = State::new();
    AutoCommit::new()
        .sync()
        .generate_sync_message(&mut empty)
        .unwrap_or_else(|| Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: vec![Have::default()],
            changes: Vec::<Vec<u8>>::new().into(),
            flags: None,
            version: MessageVersion::V1,
        })
}

fn forbidden(doc: &DocId, reason: ForbiddenReason) -> SyncError {
    SyncError::Forbidden {
        doc: doc.clone(),
        reason,
    }
}
