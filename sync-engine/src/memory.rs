//! [`MemoryReplica`]: an in-memory replica driving the client and server code, with a simulated
//! disk for restarts. It is the reference the property tests run, and a worked example of how a
//! real node persists a round.
//!
//! Its "disk" is what a real node stores: per document the chunks it appended (a document chunk
//! or change chunks from [`Applied::new_changes`](crate::Applied) and from local commits), and per
//! (peer, document) the `State::encode` bytes. [`MemoryReplica::restart`] throws the live
//! documents away and reloads them from that disk, so a wrong `new_changes` loses data in tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::{ActorId, AutoCommit, AutomergeError, ChangeHash};

use crate::client::{ReplyOutcome, SyncRound};
use crate::docset::DocSet;
use crate::envelope::{Envelope, EnvelopeError};
use crate::error::SyncError;
use crate::id::{DocId, PeerId};
use crate::policy::SharePolicy;
use crate::round::RoundLimits;
use crate::server::{Response, Server};

/// A replica's simulated disk: stored chunks per doc, sync states per (peer, doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedReplica {
    /// Per document: every chunk appended so far, concatenated (loadable with `AutoCommit::load`).
    pub docs: BTreeMap<DocId, Vec<u8>>,
    /// Per (peer, document): the persisted `State::encode` bytes.
    pub states: BTreeMap<(PeerId, DocId), Vec<u8>>,
}

/// Why a [`MemoryReplica`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Automerge refused a local change or a reload.
    #[error("automerge: {0}")]
    Automerge(Box<AutomergeError>),
    /// A sync round was refused.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// An envelope could not be encoded or decoded.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl From<AutomergeError> for ReplicaError {
    fn from(error: AutomergeError) -> Self {
        Self::Automerge(Box::new(error))
    }
}

/// Byte counts of one [`MemoryReplica::sync_with`] sync round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Encoded size of each request.
    pub request_bytes: Vec<usize>,
    /// Encoded size of each reply.
    pub reply_bytes: Vec<usize>,
    /// Documents that received new changes on the client.
    pub docs_changed: usize,
}

impl RoundReport {
    /// Round trips made.
    pub fn rounds(&self) -> usize {
        self.request_bytes.len()
    }
}

/// An in-memory replica: documents, simulated disk, share policy.
pub struct MemoryReplica {
    peer: PeerId,
    actor: ActorId,
    policy: Arc<dyn SharePolicy + Send + Sync>,
    limits: RoundLimits,
    docs: BTreeMap<DocId, AutoCommit>,
    disk: SavedReplica,
    unsynced_since_ms: BTreeMap<DocId, u64>,
}

impl std::fmt::Debug for MemoryReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplica")
            .field("peer", &self.peer)
            .field("docs", &self.docs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The replica's documents as a [`DocSet`] that creates documents with the replica's actor.
struct ActorDocs<'a> {
    docs: &'a mut BTreeMap<DocId, AutoCommit>,
    actor: &'a ActorId,
}

impl DocSet for ActorDocs<'_> {
    fn doc_ids(&self) -> Vec<DocId> {
        self.docs.keys().cloned().collect()
    }

    fn doc_mut(&mut self, id: &DocId) -> Option<&mut AutoCommit> {
        self.docs.get_mut(id)
    }

    fn create_doc(&mut self, id: &DocId) -> &mut AutoCommit {
        let actor = self.actor.clone();
        self.docs
            .entry(id.clone())
            .or_insert_with(|| AutoCommit::new().with_actor(actor))
    }
}

impl MemoryReplica {
    /// An empty replica named `peer` that writes as `actor`.
    pub fn new(peer: PeerId, actor: ActorId, policy: Arc<dyn SharePolicy + Send + Sync>) -> Self {
        Self {
            peer,
            actor,
            policy,
            limits: RoundLimits::default(),
            docs: BTreeMap::new(),
            disk: SavedReplica::default(),
            unsynced_since_ms: BTreeMap::new(),
        }
    }

    /// Rebuilds a replica from its simulated disk (a restart on another "machine").
    pub fn restore(
        peer: PeerId,
        actor: ActorId,
        policy: Arc<dyn SharePolicy + Send + Sync>,
        saved: SavedReplica,
    ) -> Result<Self, ReplicaError> {
        let mut replica = Self::new(peer, actor, policy);
        replica.disk = saved;
        replica.reload_docs()?;
        Ok(replica)
    }

    /// Replaces the default round limits (as client and as server).
    pub fn with_limits(mut self, limits: RoundLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The replica's peer id.
    pub fn peer(&self) -> &PeerId {
        &self.peer
    }

    /// Ids of the documents held.
    pub fn doc_ids(&self) -> Vec<DocId> {
        self.docs.keys().cloned().collect()
    }

    /// A document, for reading.
    pub fn doc(&self, id: &DocId) -> Option<&AutoCommit> {
        self.docs.get(id)
    }

    /// Heads of a document (empty when not held).
    pub fn heads(&mut self, id: &DocId) -> Vec<ChangeHash> {
        self.docs
            .get_mut(id)
            .map_or_else(Vec::new, AutoCommit::get_heads)
    }

    /// A copy of the simulated disk.
    pub fn save(&self) -> SavedReplica {
        self.disk.clone()
    }

    /// Makes a local change, commits it and persists it (creating the document if needed).
    /// `now_ms` stamps the "unsynced since" reported to servers.
    pub fn change<F>(&mut self, id: &DocId, now_ms: u64, edit: F) -> Result<(), ReplicaError>
    where
        F: FnOnce(&mut AutoCommit) -> Result<(), AutomergeError>,
    {
        let actor = self.actor.clone();
        let doc = self
            .docs
            .entry(id.clone())
            .or_insert_with(|| AutoCommit::new().with_actor(actor));
        let heads_before = doc.get_heads();
        if let Err(error) = edit(doc) {
            doc.rollback();
            return Err(error.into());
        }
        doc.commit();
        let chunk = if heads_before.is_empty() {
            doc.save()
        } else {
            doc.save_after(&heads_before)
        };
        self.disk.docs.entry(id.clone()).or_default().extend(chunk);
        self.unsynced_since_ms.entry(id.clone()).or_insert(now_ms);
        Ok(())
    }

    /// Starts a sync round with `server`, from the persisted states.
    pub fn start_round(&self, server: &PeerId) -> SyncRound {
        let states = self
            .disk
            .states
            .iter()
            .filter(|((peer, _), _)| peer == server)
            .map(|((_, doc), bytes)| (doc.clone(), bytes.clone()));
        let mut round =
            SyncRound::new(self.peer.clone(), server.clone(), states).with_limits(self.limits);
        for (doc, ms) in &self.unsynced_since_ms {
            round.set_unsynced_since(doc.clone(), *ms);
        }
        round
    }

    /// The next request of `round`, or `None` when it is finished.
    pub fn next_request(&mut self, round: &mut SyncRound) -> Result<Option<Envelope>, SyncError> {
        let mut docs = ActorDocs {
            docs: &mut self.docs,
            actor: &self.actor,
        };
        round.next_request(&mut docs, &*self.policy)
    }

    /// Applies a reply to `round` and persists what it did.
    pub fn apply_reply(
        &mut self,
        round: &mut SyncRound,
        server: &PeerId,
        reply: &Envelope,
    ) -> Result<ReplyOutcome, SyncError> {
        let mut docs = ActorDocs {
            docs: &mut self.docs,
            actor: &self.actor,
        };
        let outcome = round.apply_reply(&mut docs, &*self.policy, reply)?;
        for done in &outcome.docs {
            self.disk
                .docs
                .entry(done.doc.clone())
                .or_default()
                .extend_from_slice(&done.applied.new_changes);
            self.disk
                .states
                .insert((server.clone(), done.doc.clone()), done.state.clone());
            if done.peer_has_all {
                self.unsynced_since_ms.remove(&done.doc);
            }
        }
        Ok(outcome)
    }

    /// Serves one request from the authenticated `peer` and persists what it did.
    pub fn serve(&mut self, peer: &PeerId, request: &Envelope) -> Result<Response, SyncError> {
        let states: BTreeMap<DocId, Vec<u8>> = self
            .disk
            .states
            .iter()
            .filter(|((owner, _), _)| owner == peer)
            .map(|((_, doc), bytes)| (doc.clone(), bytes.clone()))
            .collect();
        let server = Server::new(self.peer.clone()).with_limits(self.limits);
        let mut docs = ActorDocs {
            docs: &mut self.docs,
            actor: &self.actor,
        };
        let response = server.handle(peer, request, &*self.policy, &mut docs, &states)?;
        for done in &response.docs {
            self.disk
                .docs
                .entry(done.doc.clone())
                .or_default()
                .extend_from_slice(&done.applied.new_changes);
            if done.state_changed {
                self.disk
                    .states
                    .insert((peer.clone(), done.doc.clone()), done.state.clone());
            }
        }
        Ok(response)
    }

    /// Runs a whole sync round with `server` in memory, through the binary codec both ways.
    pub fn sync_with(&mut self, server: &mut MemoryReplica) -> Result<RoundReport, ReplicaError> {
        let server_id = server.peer.clone();
        let mut round = self.start_round(&server_id);
        let mut report = RoundReport::default();
        while let Some(request) = self.next_request(&mut round)? {
            let request_bytes = request.encode()?;
            report.request_bytes.push(request_bytes.len());
            let received = Envelope::decode(&request_bytes)?;
            let peer = self.peer.clone();
            let reply_bytes = server.serve(&peer, &received)?.reply.encode()?;
            report.reply_bytes.push(reply_bytes.len());
            let reply = Envelope::decode(&reply_bytes)?;
            let outcome = self.apply_reply(&mut round, &server_id, &reply)?;
            report.docs_changed += outcome
                .docs
                .iter()
                .filter(|d| !d.applied.is_empty())
                .count();
        }
        Ok(report)
    }

    /// Simulates a process restart: live documents are dropped and reloaded from the disk.
    /// With `keep_sync_states == false` the persisted sync states are lost as well.
    pub fn restart(&mut self, keep_sync_states: bool) -> Result<(), ReplicaError> {
        if !keep_sync_states {
            self.disk.states.clear();
        }
        self.reload_docs()
    }

    fn reload_docs(&mut self) -> Result<(), ReplicaError> {
        let mut docs = BTreeMap::new();
        for (id, bytes) in &self.disk.docs {
            let doc = AutoCommit::load(bytes)?.with_actor(self.actor.clone());
            docs.insert(id.clone(), doc);
        }
        self.docs = docs;
        Ok(())
    }
}
