//! The browser's replica: the store catalogue and this till's session documents as plain
//! `BTreeMap<DocId, AutoCommit>`, their sync states with the till, the HLC, and the receipts
//! made here that the till is not known to hold yet.
//!
//! Sans-IO like `sync-engine`: every write returns what to persist ([`SaleWrite`],
//! [`SyncWrite`]) and the caller (`idb.rs` in the browser, a map in the tests) stores it in one
//! transaction before it shows the result. The order that keeps a sale from being lost or made
//! twice: commit the receipt into the open session document, persist the document, only then
//! show `saved` and let a sync round send it. A sync round persists every changed document
//! with every new sync state together, so a reload never claims heads the till lacks.
//!
//! Closed sessions do not pile up, but the page stays a backup until the OFD has them: a
//! closed session document is forgotten (here and in IndexedDB) only when a reply of the
//! current sync round showed the till holds all of it, and the OFD acknowledged every one
//! of its receipts ([`Replica::synced_closed_sessions`], called when a sync round ends). A
//! persisted sync state alone never proves it: the till may have been restored from an old
//! backup since it was written.
//!
//! Identity: the browser is peer `pos:<store>/<till>/<device>` and writes session documents as
//! Automerge actor `<store>/<till>/<device>`; one tab at a time (the page holds a Web Lock), so
//! the actor's sequence numbers never fork.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ActorId, AutoCommit};
use crdt_model::catalogue::{self, Product};
use crdt_model::commit_tag;
use crdt_model::hlc::{Hlc, HlcClock};
use crdt_model::ids::{actor_id, DocKey};
use crdt_model::receipt::ReceiptDraft;
use crdt_model::session::{self, Appended, OfdState, SessionHeader, SessionView};
use crdt_model::{Receipt, ReceiptError, ReceiptId, SessionError, StoreId, TillId};
use serde::{Deserialize, Serialize};
use sync_engine::doc_sync::{decode_state, peer_has_all};
use sync_engine::{DocId, Envelope, PeerId, SyncError, SyncRound};
use uuid::Uuid;

use crate::i18n::{fill, Key, Lang};
use crate::policy::BrowserPolicy;
use crate::status::{receipt_state, ReceiptState};

/// A timestamp from the till more than this far ahead of the browser's clock is not adopted
/// (the till daemon uses the same bound).
pub const MAX_CLOCK_LEAD_MS: u64 = 10 * 60 * 1000;

/// Who this browser is, as the till's login answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The store.
    pub store: StoreId,
    /// The till.
    pub till: TillId,
    /// This browser profile's device name (`w` + 12 hex digits).
    pub device: String,
    /// The browser's peer id (`pos:<store>/<till>/<device>`).
    pub peer: PeerId,
    /// The till's peer id (`till:<store>/<till>`).
    pub till_peer: PeerId,
    actor: ActorId,
}

/// Why an identity, a sale or a stored replica was refused.
#[derive(Debug)]
pub enum ReplicaError {
    /// A store, till, device or peer name is malformed.
    BadIdentity(String),
    /// No open session document (the till has not opened one, or it has not arrived yet).
    NoOpenSession,
    /// The draft is not a valid receipt.
    Receipt(ReceiptError),
    /// The session refused the receipt (closed, full, id conflict).
    Session(SessionError),
}

impl std::fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaError::BadIdentity(reason) => write!(f, "bad identity: {reason}"),
            ReplicaError::NoOpenSession => f.write_str("no open session"),
            ReplicaError::Receipt(error) => write!(f, "invalid receipt: {error}"),
            ReplicaError::Session(error) => write!(f, "session refused the receipt: {error}"),
        }
    }
}

impl std::error::Error for ReplicaError {}

impl ReplicaError {
    /// The cashier's text for this refusal.
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            ReplicaError::NoOpenSession => Key::NoOpenSession.text(lang).to_owned(),
            ReplicaError::Receipt(error) if error.field == "buyer_contact" => {
                Key::BuyerContactInvalid.text(lang).to_owned()
            }
            ReplicaError::Receipt(error) => {
                fill(Key::InvalidField.text(lang), &[("field", &error.field)])
            }
            other => other.to_string(),
        }
    }
}

impl Identity {
    /// Validates the names the till gave at login.
    pub fn new(
        store: &str,
        till: &str,
        device: &str,
        peer: &str,
        till_peer: &str,
    ) -> Result<Identity, ReplicaError> {
        let bad = |error: &dyn std::fmt::Display| ReplicaError::BadIdentity(error.to_string());
        let store = StoreId::new(store).map_err(|e| bad(&e))?;
        let till = TillId::new(till).map_err(|e| bad(&e))?;
        let actor = actor_id(&store, &till, device).map_err(|e| bad(&e))?;
        // The HLC node name is bounded tighter than the three names together.
        HlcClock::new(&format!("{store}/{till}/{device}"), MAX_CLOCK_LEAD_MS)
            .map_err(|e| bad(&e))?;
        Ok(Identity {
            peer: PeerId::new(peer).map_err(|e| bad(&e))?,
            till_peer: PeerId::new(till_peer).map_err(|e| bad(&e))?,
            device: device.to_owned(),
            store,
            till,
            actor,
        })
    }

    /// The Automerge actor of this browser's writes.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// The HLC node name (`<store>/<till>/<device>`, unique per writer).
    pub fn clock_node(&self) -> String {
        format!("{}/{}/{}", self.store, self.till, self.device)
    }
}

/// A new device name: `w` and 12 random lower-case hex digits (from a UUIDv4).
pub fn new_device_id() -> String {
    let bytes = Uuid::new_v4().into_bytes();
    let hex: String = bytes[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("w{hex}")
}

/// True for a name [`new_device_id`] could have made.
pub fn is_device_id(text: &str) -> bool {
    text.len() == 13
        && text.starts_with('w')
        && text[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A receipt made here that the till is not known to hold yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsentReceipt {
    /// The receipt.
    pub receipt: ReceiptId,
    /// Its session document.
    pub doc: String,
    /// When it was saved here (Unix ms): "unsynced since" for the till.
    pub saved_at_ms: u64,
}

/// The small state kept beside the documents (IndexedDB `meta`, key `replica`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMeta {
    /// The HLC high-water mark.
    pub hlc: Option<Hlc>,
    /// Receipts the till is not known to hold.
    pub unsent: Vec<UnsentReceipt>,
}

/// What IndexedDB held at start-up.
#[derive(Debug, Clone, Default)]
pub struct StoredReplica {
    /// Document id → `AutoCommit::save()` bytes.
    pub docs: Vec<(String, Vec<u8>)>,
    /// Document id → `State::encode()` bytes (with the till).
    pub states: Vec<(String, Vec<u8>)>,
    /// The meta record.
    pub meta: ReplicaMeta,
}

/// Persist after a sale, in one transaction: the session document and the meta record.
#[derive(Debug, Clone)]
pub struct SaleWrite {
    /// The stored receipt.
    pub receipt: Receipt,
    /// Its session document.
    pub doc: DocId,
    /// The document's `save()` bytes.
    pub doc_bytes: Vec<u8>,
    /// The new meta record.
    pub meta: ReplicaMeta,
}

/// Persist after a sync reply, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct SyncWrite {
    /// Changed or created documents with their `save()` bytes.
    pub docs: Vec<(DocId, Vec<u8>)>,
    /// Every sync state the reply produced.
    pub states: Vec<(DocId, Vec<u8>)>,
    /// The new meta record.
    pub meta: ReplicaMeta,
    /// Receipts this reply showed the till holds.
    pub newly_sent: Vec<ReceiptId>,
    /// The catalogue changed: rebuild the lookup index.
    pub catalogue_changed: bool,
    /// A session document changed (fiscal stamps, a close, the till's own receipts).
    pub sessions_changed: bool,
    /// Documents whose message Automerge could not apply (logged; retried next session).
    pub failed: Vec<(DocId, String)>,
}

impl SyncWrite {
    /// True when there is nothing to persist.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty() && self.states.is_empty() && self.newly_sent.is_empty()
    }
}

/// The open session: its document and header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// The document.
    pub doc: DocId,
    /// The header.
    pub header: SessionHeader,
}

/// The browser replica.
#[derive(Debug)]
pub struct Replica {
    identity: Identity,
    policy: BrowserPolicy,
    docs: BTreeMap<DocId, AutoCommit>,
    states: BTreeMap<DocId, Vec<u8>>,
    clock: HlcClock,
    unsent: Vec<UnsentReceipt>,
    catalogue_version: u64,
    skipped: Vec<(String, String)>,
    /// Documents a reply of the current sync round showed the till holds whole (emptied by
    /// [`Replica::start_sync`]).
    proven_this_session: BTreeSet<DocId>,
}

impl Replica {
    /// The replica from what IndexedDB held. Entries that cannot be used (an id out of this
    /// till's scope, bytes Automerge cannot load) are skipped and listed in
    /// [`Replica::skipped`]; they stay in IndexedDB for support.
    pub fn load(identity: Identity, stored: StoredReplica) -> Result<Replica, ReplicaError> {
        let policy = BrowserPolicy::new(
            identity.store.clone(),
            identity.till.clone(),
            identity.till_peer.clone(),
        );
        let mut skipped = Vec::new();
        let mut docs = BTreeMap::new();
        for (id, bytes) in stored.docs {
            let doc_id = match DocId::new(id.clone()) {
                Ok(doc_id) if policy.in_scope(&doc_id) => doc_id,
                _ => {
                    skipped.push((id, "not a document of this till".to_owned()));
                    continue;
                }
            };
            match AutoCommit::load(&bytes) {
                Ok(doc) => {
                    docs.insert(doc_id, doc);
                }
                Err(error) => skipped.push((id, error.to_string())),
            }
        }
        let states = stored
            .states
            .into_iter()
            .filter_map(|(id, bytes)| DocId::new(id).ok().map(|id| (id, bytes)))
            .filter(|(id, _)| docs.contains_key(id))
            .collect();
        let node = identity.clock_node();
        // A corrupt high-water mark costs monotonicity across the reload, never the replica.
        let clock = HlcClock::restore(&node, MAX_CLOCK_LEAD_MS, stored.meta.hlc.as_ref())
            .or_else(|_| HlcClock::new(&node, MAX_CLOCK_LEAD_MS))
            .map_err(|error| ReplicaError::BadIdentity(error.to_string()))?;
        Ok(Replica {
            identity,
            policy,
            docs,
            states,
            clock,
            unsent: stored.meta.unsent,
            catalogue_version: 1,
            skipped,
            proven_this_session: BTreeSet::new(),
        })
    }

    /// Who this replica is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Stored entries that could not be loaded, with the reason.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// The meta record to persist.
    pub fn meta(&self) -> ReplicaMeta {
        ReplicaMeta {
            hlc: self.clock.last().cloned(),
            unsent: self.unsent.clone(),
        }
    }

    /// Bumped whenever the catalogue changes.
    pub fn catalogue_version(&self) -> u64 {
        self.catalogue_version
    }

    /// Receipts made here that the till is not known to hold.
    pub fn unsent(&self) -> &[UnsentReceipt] {
        &self.unsent
    }

    /// The store's products (empty until the catalogue arrives or if it cannot be read).
    pub fn products(&self) -> Vec<Product> {
        let id = DocKey::Catalogue {
            store: self.identity.store.clone(),
        }
        .to_doc_id();
        DocId::new(id)
            .ok()
            .and_then(|id| self.docs.get(&id))
            .and_then(|doc| catalogue::products(doc).ok())
            .unwrap_or_default()
    }

    /// The session documents of this till, read and re-validated (unreadable ones skipped).
    pub fn sessions(&self) -> Vec<(DocId, SessionView)> {
        self.docs
            .iter()
            .filter(|(id, _)| id.as_str().starts_with("session/"))
            .filter_map(|(id, doc)| session::read(doc).ok().map(|view| (id.clone(), view)))
            .collect()
    }

    /// The open session: the session document with no close (the latest opened, should a
    /// stale one linger).
    pub fn open_session(&self) -> Option<OpenSession> {
        self.sessions()
            .into_iter()
            .filter(|(_, view)| !view.is_closed())
            .max_by(|(_, a), (_, b)| a.header.opened_at.cmp(&b.header.opened_at))
            .map(|(doc, view)| OpenSession {
                doc,
                header: view.header,
            })
    }

    /// One session, read and re-validated.
    pub fn session(&self, doc: &DocId) -> Option<SessionView> {
        self.docs.get(doc).and_then(|doc| session::read(doc).ok())
    }

    /// Commits a sale into the open session document: the receipt is built from `draft`
    /// with `id` and a fresh HLC, appended and committed. Persist the [`SaleWrite`] before
    /// showing `saved` or syncing.
    pub fn sell(
        &mut self,
        draft: ReceiptDraft,
        id: ReceiptId,
        wall_ms: u64,
    ) -> Result<SaleWrite, ReplicaError> {
        let open = self.open_session().ok_or(ReplicaError::NoOpenSession)?;
        // Receipts never predate their session; a header too far ahead is ignored here
        // exactly as the till ignores it.
        let _ = self.clock.observe(&open.header.opened_at, wall_ms);
        let hlc = self.clock.now(wall_ms);
        let receipt = Receipt::from_draft(
            draft,
            id,
            self.identity.store.clone(),
            self.identity.till.clone(),
            open.header.session_id,
            hlc,
        )
        .map_err(ReplicaError::Receipt)?;
        let doc = self
            .docs
            .get_mut(&open.doc)
            .ok_or(ReplicaError::NoOpenSession)?;
        doc.set_actor(self.identity.actor.clone());
        match session::append_receipt(doc, &receipt) {
            Ok(Appended::New) => {
                // The till counts receipt changes by this message (as for its own sales).
                let options = automerge::transaction::CommitOptions::default()
                    .with_message(commit_tag::receipt(id))
                    .with_time(i64::try_from(wall_ms).unwrap_or(i64::MAX));
                doc.commit_with(options);
            }
            Ok(Appended::AlreadyPresent) => {}
            Err(error) => {
                doc.rollback();
                return Err(ReplicaError::Session(error));
            }
        }
        let doc_bytes = doc.save();
        if !self.unsent.iter().any(|unsent| unsent.receipt == id) {
            self.unsent.push(UnsentReceipt {
                receipt: id,
                doc: open.doc.to_string(),
                saved_at_ms: wall_ms,
            });
        }
        Ok(SaleWrite {
            receipt,
            doc: open.doc,
            doc_bytes,
            meta: self.meta(),
        })
    }

    /// Starts a sync round with the till from the persisted states. What an earlier
    /// session proved the till holds is forgotten: only this session's replies count.
    pub fn start_sync(&mut self) -> SyncRound {
        self.proven_this_session.clear();
        let mut round = SyncRound::new(
            self.identity.peer.clone(),
            self.identity.till_peer.clone(),
            self.states
                .iter()
                .map(|(id, bytes)| (id.clone(), bytes.clone())),
        );
        for unsent in &self.unsent {
            if let Ok(doc) = DocId::new(unsent.doc.clone()) {
                round.set_unsynced_since(doc, unsent.saved_at_ms);
            }
        }
        round
    }

    /// The next request of `session`, or `None` when the session is finished.
    pub fn next_request(&mut self, round: &mut SyncRound) -> Result<Option<Envelope>, SyncError> {
        round.next_request(&mut self.docs, &self.policy)
    }

    /// Applies the till's reply (checked whole first) and says what to persist.
    pub fn apply_reply(
        &mut self,
        round: &mut SyncRound,
        reply: &Envelope,
    ) -> Result<SyncWrite, SyncError> {
        let outcome = round.apply_reply(&mut self.docs, &self.policy, reply)?;
        let mut write = SyncWrite {
            failed: outcome.failed,
            ..SyncWrite::default()
        };
        let mut changed = Vec::new();
        for done in outcome.docs {
            self.states.insert(done.doc.clone(), done.state.clone());
            write.states.push((done.doc.clone(), done.state));
            let is_catalogue = done.doc.as_str().starts_with("catalogue/");
            if done.created || !done.applied.is_empty() {
                if is_catalogue {
                    write.catalogue_changed = true;
                } else {
                    write.sessions_changed = true;
                }
                changed.push(done.doc.clone());
            }
            if !done.peer_has_all {
                self.proven_this_session.remove(&done.doc);
            } else {
                self.proven_this_session.insert(done.doc.clone());
                let doc = done.doc.as_str();
                self.unsent.retain(|unsent| {
                    let sent = unsent.doc == doc;
                    if sent {
                        write.newly_sent.push(unsent.receipt);
                    }
                    !sent
                });
            }
        }
        if write.catalogue_changed {
            self.catalogue_version += 1;
        }
        for id in changed {
            if let Some(doc) = self.docs.get_mut(&id) {
                write.docs.push((id, doc.save()));
            }
        }
        write.meta = self.meta();
        Ok(write)
    }

    /// The closed session documents that may be forgotten here: a reply of the current sync
    /// session showed the till holds all of it (and the sync state still says so), no receipt
    /// here still waits to reach it, and the OFD acknowledged every receipt in it. Call it
    /// when a sync round has ended. Never the open session (it has no close), nor one that
    /// does not read back; never on a persisted sync state alone.
    pub fn synced_closed_sessions(&mut self) -> Vec<DocId> {
        let mut synced = Vec::new();
        for id in &self.proven_this_session {
            if !id.as_str().starts_with("session/")
                || self.unsent.iter().any(|unsent| unsent.doc == id.as_str())
            {
                continue;
            }
            let (Some(doc), Some(state)) = (self.docs.get_mut(id), self.states.get(id)) else {
                continue;
            };
            let done =
                session::read(&*doc).is_ok_and(|view| view.is_closed() && all_acknowledged(&view));
            if done && peer_has_all(doc, &decode_state(Some(state))) {
                synced.push(id.clone());
            }
        }
        synced
    }

    /// Forgets documents (with their sync states): those [`Replica::synced_closed_sessions`]
    /// named, once IndexedDB has dropped them too.
    pub fn forget(&mut self, ids: &[DocId]) {
        for id in ids {
            self.docs.remove(id);
            self.states.remove(id);
            self.proven_this_session.remove(id);
        }
    }

    /// How far receipt `id` has got, `None` if no session here holds it.
    pub fn receipt_state(&self, id: ReceiptId) -> Option<ReceiptState> {
        let unsent = self.unsent.iter().any(|unsent| unsent.receipt == id);
        let key = id.to_string();
        self.docs
            .iter()
            .filter(|(doc_id, _)| doc_id.as_str().starts_with("session/"))
            .find_map(|(_, doc)| match session::get_receipt(doc, id) {
                Ok(Some(_)) => {
                    let fiscal = session::read_fiscal(doc).ok()?;
                    Some(receipt_state(!unsent, fiscal.get(&key)))
                }
                _ => None,
            })
    }
}

/// True when the OFD acknowledged every receipt of the session: until then the page keeps
/// its copy.
fn all_acknowledged(view: &SessionView) -> bool {
    view.receipts.iter().all(|receipt| {
        view.fiscal
            .get(&receipt.id.to_string())
            .is_some_and(|record| record.ofd_status == OfdState::Acknowledged)
    })
}

#[cfg(test)]
mod tests;
