//! Client half of a sync round (a till polling the hub), sans-IO.
//!
//! # The round-trip loop
//!
//! ```text
//! let mut round = SyncRound::new(me, hub, persisted_states);    // State::decode per doc
//! while let Some(request) = round.next_request(&mut docs, &policy)? {
//!     let reply = transport.round(&request)?;                           // one HTTP POST
//!     let outcome = round.apply_reply(&mut docs, &policy, &reply)?;
//!     persist(outcome.docs);   // new_changes + state bytes, in ONE local transaction
//! }
//! ```
//!
//! * Every poll starts a new round from the persisted states. `State::decode` forgets
//!   "already responded", so the first request carries a message for every document (with the
//!   heads and a Bloom filter of what we hold) and our [`DocStatus`]. An idle poll is therefore
//!   one small round trip; a poll where the hub has news is two.
//! * The first request is `complete`: it lists every document we share with the server, so the
//!   server offers the ones we lack (a fresh till receives its store's catalogue). Offered
//!   documents are created empty through [`DocSet::create_doc`] if our policy accepts them.
//! * Within a round the live `State`s are kept, and `next_request` returns `None` once no
//!   document has anything left to say: that is the stopping rule.
//! * If the server deferred documents (reply not `complete`), the next request lists every
//!   document again; if a message we sent got no answer, that document's state is rewound so it
//!   is sent again.
//! * A transport error ends the round: drop it and poll again later. Nothing is lost —
//!   persisted states only ever claim heads that both sides had.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{Message, State};

use crate::clock::VersionVector;
use crate::divergence::DocDivergence;
use crate::doc_sync::{self, Applied};
use crate::docset::DocSet;
use crate::envelope::{DocEntry, DocStatus, Envelope};
use crate::error::{ForbiddenReason, SyncError};
use crate::id::{DocId, PeerId};
use crate::inspect;
use crate::policy::SharePolicy;
use crate::round::{Budget, Fit, RoundLimits};

/// What applying a reply did to one document; persist `applied.new_changes` and `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDocOutcome {
    /// Which document.
    pub doc: DocId,
    /// The document was created by this reply (offered by the server).
    pub created: bool,
    /// The changes applied.
    pub applied: Applied,
    /// The new persisted sync state (`State::encode`) for (doc, server).
    pub state: Vec<u8>,
    /// The server is known to hold every change of our copy: clear "unsynced since".
    pub peer_has_all: bool,
}

/// What one reply did.
#[derive(Debug, Default)]
pub struct ReplyOutcome {
    /// Documents that received a message, in reply order.
    pub docs: Vec<ClientDocOutcome>,
    /// Divergence per document, when the server reported its status (first round).
    pub divergence: Vec<DocDivergence>,
    /// Documents offered by the server that we do not hold and our policy does not let the
    /// server write (no access, or read-only): declined, not created.
    pub ignored_offers: Vec<DocId>,
    /// Documents whose (checked) message Automerge failed to apply; their state is not advanced.
    pub failed: Vec<(DocId, String)>,
    /// The server deferred documents or sent messages: another round is likely useful.
    pub more: bool,
}

/// One sync round of a client with one server.
#[derive(Debug)]
pub struct SyncRound {
    me: PeerId,
    server: PeerId,
    limits: RoundLimits,
    persisted: BTreeMap<DocId, Vec<u8>>,
    states: BTreeMap<DocId, State>,
    unsynced_since_ms: BTreeMap<DocId, u64>,
    rounds: u32,
    list_all: bool,
    in_flight: BTreeSet<DocId>,
    oversized: BTreeSet<DocId>,
    declined: BTreeSet<DocId>,
}

impl SyncRound {
    /// Starts a round of `me` with `server` from the persisted `State::encode` bytes per doc.
    pub fn new(
        me: PeerId,
        server: PeerId,
        persisted_states: impl IntoIterator<Item = (DocId, Vec<u8>)>,
    ) -> Self {
        Self {
            me,
            server,
            limits: RoundLimits::default(),
            persisted: persisted_states.into_iter().collect(),
            states: BTreeMap::new(),
            unsynced_since_ms: BTreeMap::new(),
            rounds: 0,
            list_all: true,
            in_flight: BTreeSet::new(),
            oversized: BTreeSet::new(),
            declined: BTreeSet::new(),
        }
    }

    /// Replaces the default [`RoundLimits`].
    pub fn with_limits(mut self, limits: RoundLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Reports that our oldest change of `doc` not yet known to the server dates from `ms`
    /// (Unix milliseconds); sent in the first request's [`DocStatus`].
    pub fn set_unsynced_since(&mut self, doc: DocId, ms: u64) {
        self.unsynced_since_ms.insert(doc, ms);
    }

    /// Round trips started so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Documents whose message exceeded the envelope limit and could not be sent this round.
    pub fn oversized(&self) -> impl Iterator<Item = &DocId> {
        self.oversized.iter()
    }

    /// The next request, or `None` when the round is finished.
    pub fn next_request(
        &mut self,
        docs: &mut dyn DocSet,
        policy: &dyn SharePolicy,
    ) -> Result<Option<Envelope>, SyncError> {
        let first = self.rounds == 0;
        let listing = self.list_all;
        let mut ids = docs.doc_ids();
        ids.sort();
        ids.retain(|id| policy.access(&self.server, id).can_read());

        let mut budget = Budget::new(
            self.limits,
            Envelope::new(self.me.clone(), false, vec![]).encoded_len(),
        );
        let mut entries = Vec::new();
        let mut complete = listing;
        let mut in_flight = BTreeSet::new();
        for id in ids {
            let Some(doc) = docs.doc_mut(&id) else {
                continue;
            };
            let peer_may_write = policy.access(&self.server, &id).can_write();
            let state = state_for(&mut self.states, &self.persisted, &id, peer_may_write);
            let before = state.clone();
            let message = if self.oversized.contains(&id) {
                None
            } else {
                doc_sync::generate(doc, state)
            };
            let status = first.then(|| DocStatus {
                clock: VersionVector::from_doc(doc),
                oldest_unsynced_ms: self.unsynced_since_ms.get(&id).copied(),
            });
            let mut entry = DocEntry {
                doc: id.clone(),
                message,
                status: status.filter(DocStatus::fits_wire_limits),
            };
            let fit = budget.fit(&entry);
            if entry.message.is_some() && fit != Fit::Now {
                if fit == Fit::Never {
                    self.oversized.insert(id.clone());
                }
                // Not sent: rewind so the message is generated again next round.
                *state = before;
                entry.message = None;
            }
            if entry.message.is_none() && !listing {
                continue;
            }
            if budget.fit(&entry) != Fit::Now {
                complete = false;
                continue;
            }
            if entry.message.is_some() {
                in_flight.insert(id);
            }
            budget.add(&entry);
            entries.push(entry);
        }
        if listing {
            // Offers we declined earlier in this round are listed as known, so that a server
            // with more offers than fit in one reply moves on to the next ones.
            for id in &self.declined {
                let entry = DocEntry {
                    doc: id.clone(),
                    message: None,
                    status: None,
                };
                if docs.doc_mut(id).is_some() || budget.fit(&entry) != Fit::Now {
                    continue;
                }
                budget.add(&entry);
                entries.push(entry);
            }
        }

        // Nothing to say and nothing to list: the sync round is over. The first round trip always goes
        // out, even for a replica without documents, so the server can offer its catalogue.
        if entries.iter().all(|e| e.message.is_none()) && !listing {
            return Ok(None);
        }
        if self.rounds >= self.limits.max_round_trips {
            return Err(SyncError::RoundLimitReached {
                rounds: self.rounds,
            });
        }
        self.rounds += 1;
        self.list_all = false;
        self.in_flight = in_flight;
        Ok(Some(Envelope::new(self.me.clone(), complete, entries)))
    }

    /// Checks the whole reply, then applies it. Nothing is applied if any entry is refused.
    pub fn apply_reply(
        &mut self,
        docs: &mut dyn DocSet,
        policy: &dyn SharePolicy,
        reply: &Envelope,
    ) -> Result<ReplyOutcome, SyncError> {
        if reply.sender != self.server {
            return Err(SyncError::UnexpectedSender {
                expected: self.server.clone(),
                found: reply.sender.clone(),
            });
        }
        reply.check_limits()?;
        let mut outcome = ReplyOutcome {
            more: !reply.complete,
            ..ReplyOutcome::default()
        };
        let checked = self.check_reply(docs, policy, reply, &mut outcome.ignored_offers)?;
        self.declined.extend(outcome.ignored_offers.iter().cloned());

        let mut answered = BTreeSet::new();
        for (entry, message) in checked {
            let remote_heads = message.as_ref().map(|m| m.heads.clone());
            if let Some(message) = message {
                answered.insert(entry.doc.clone());
                outcome.more = true;
                self.apply_one(docs, policy, &entry.doc, message, &mut outcome);
            }
            if let (Some(remote), Some(doc)) = (&entry.status, docs.doc_mut(&entry.doc)) {
                let local = DocStatus {
                    clock: VersionVector::from_doc(doc),
                    oldest_unsynced_ms: self.unsynced_since_ms.get(&entry.doc).copied(),
                };
                outcome.divergence.push(DocDivergence::compute(
                    entry.doc.clone(),
                    doc.get_heads(),
                    &local,
                    remote_heads,
                    remote,
                ));
            }
        }

        // A message the server did not answer was deferred: rewind so it is sent again.
        for doc in std::mem::take(&mut self.in_flight) {
            if !answered.contains(&doc) {
                if let Some(state) = self.states.get_mut(&doc) {
                    let read_only = state.read_only;
                    *state = doc_sync::decode_state(Some(&state.encode()));
                    doc_sync::apply_access(state, !read_only);
                }
            }
        }
        if !reply.complete {
            self.list_all = true;
        }
        Ok(outcome)
    }

    /// Validation pass over the reply: policy and message checks, no mutation.
    fn check_reply<'r>(
        &self,
        docs: &mut dyn DocSet,
        policy: &dyn SharePolicy,
        reply: &'r Envelope,
        ignored: &mut Vec<DocId>,
    ) -> Result<Vec<(&'r DocEntry, Option<Message>)>, SyncError> {
        let mut checked = Vec::with_capacity(reply.entries.len());
        for entry in &reply.entries {
            let access = policy.access(&self.server, &entry.doc);
            let held = docs.doc_mut(&entry.doc).is_some();
            if held && !access.can_read() {
                return Err(forbidden(&entry.doc, ForbiddenReason::NoAccess));
            }
            if !held && !access.can_write() {
                // An offer of a document we would not take changes for: creating an empty copy
                // is useless and the offer's changes would be refused. Decline it.
                ignored.push(entry.doc.clone());
                continue;
            }
            let Some(bytes) = &entry.message else {
                checked.push((entry, None));
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
            if let Some(doc) = docs.doc_mut(&entry.doc) {
                for change in &incoming {
                    let new = doc.get_change_meta_by_hash(&change.hash).is_none();
                    if new && !policy.may_author(&self.server, &entry.doc, &change.actor) {
                        return Err(forbidden(
                            &entry.doc,
                            ForbiddenReason::Author(change.actor.clone()),
                        ));
                    }
                }
            } else if let Some(change) = incoming
                .iter()
                .find(|change| !policy.may_author(&self.server, &entry.doc, &change.actor))
            {
                return Err(forbidden(
                    &entry.doc,
                    ForbiddenReason::Author(change.actor.clone()),
                ));
            }
            checked.push((entry, Some(message)));
        }
        Ok(checked)
    }

    fn apply_one(
        &mut self,
        docs: &mut dyn DocSet,
        policy: &dyn SharePolicy,
        id: &DocId,
        message: Message,
        outcome: &mut ReplyOutcome,
    ) {
        let peer_may_write = policy.access(&self.server, id).can_write();
        let state = state_for(&mut self.states, &self.persisted, id, peer_may_write);
        let created = docs.doc_mut(id).is_none();
        let doc = if created {
            docs.create_doc(id)
        } else {
            match docs.doc_mut(id) {
                Some(doc) => doc,
                None => return,
            }
        };
        match doc_sync::receive_checked(doc, state, message) {
            Ok(applied) => outcome.docs.push(ClientDocOutcome {
                doc: id.clone(),
                created,
                applied,
                state: state.encode(),
                peer_has_all: doc_sync::peer_has_all(doc, state),
            }),
            Err(error) => {
                // Keep the last persisted state: the next round retries from there.
                self.states.remove(id);
                outcome.failed.push((id.clone(), error.to_string()));
            }
        }
    }
}

fn forbidden(doc: &DocId, reason: ForbiddenReason) -> SyncError {
    SyncError::Forbidden {
        doc: doc.clone(),
        reason,
    }
}

/// The live state of `id`, decoded from the persisted bytes on first use.
fn state_for<'s>(
    states: &'s mut BTreeMap<DocId, State>,
    persisted: &BTreeMap<DocId, Vec<u8>>,
    id: &DocId,
    peer_may_write: bool,
) -> &'s mut State {
    states.entry(id.clone()).or_insert_with(|| {
        let mut state = doc_sync::decode_state(persisted.get(id).map(Vec::as_slice));
        doc_sync::apply_access(&mut state, peer_may_write);
        state
    })
}
