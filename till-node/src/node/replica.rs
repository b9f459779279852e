//! The in-memory replica: every document of the till as a live `AutoCommit`, with the
//! bookkeeping that ties it to the store.
//!
//! Invariant (whenever the node lock is released): each document's heads equal its
//! `saved_heads`, i.e. the memory holds exactly what the store holds. Every write path commits
//! to the store before it lets go of the lock, and rebuilds the document from the store when
//! that commit fails.
//!
//! "Unsynced" is computed from the persisted sync state with the hub: the changes after its
//! `shared_heads`. Receipt commits carry the message `receipt:<uuid>`, so the receipts not yet
//! on the hub are those changes with that prefix. The counts are cached per document and
//! recomputed when the shared heads move (after a sync round) or bumped by a sale.

use std::collections::BTreeMap;

use automerge::{ActorId, AutoCommit, ChangeHash};
use crdt_model::commit_tag;
use crdt_model::hlc::Hlc;
use crdt_model::ids::DocKey;
use crdt_model::session;
use sync_engine::{DocId, DocSet};

/// What of one document the hub does not hold yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// Changes after the shared heads.
    pub changes: usize,
    /// Of those, receipt changes.
    pub receipts: usize,
    /// Commit time (Unix ms) of the oldest such change.
    pub oldest_change_ms: Option<u64>,
    /// Commit time (Unix ms) of the oldest such receipt change.
    pub oldest_receipt_ms: Option<u64>,
}

impl Unsynced {
    /// Adds one local change committed at `time_ms`.
    pub fn add(&mut self, time_ms: u64, is_receipt: bool) {
        self.changes += 1;
        self.oldest_change_ms = Some(self.oldest_change_ms.map_or(time_ms, |t| t.min(time_ms)));
        if is_receipt {
            self.receipts += 1;
            self.oldest_receipt_ms =
                Some(self.oldest_receipt_ms.map_or(time_ms, |t| t.min(time_ms)));
        }
    }
}

/// One live document.
#[derive(Debug)]
pub struct LoadedDoc {
    /// The document, with the node's actor set.
    pub doc: AutoCommit,
    /// Heads of what the store holds (`save_after` starts here).
    pub saved_heads: Vec<ChangeHash>,
    /// Change chunks stored on top of the snapshot; compaction resets it.
    pub chunks_since_snapshot: usize,
    /// `shared_heads` of the persisted sync state with the hub.
    pub hub_shared_heads: Vec<ChangeHash>,
    /// What the hub lacks, from `hub_shared_heads`.
    pub unsynced: Unsynced,
}

impl LoadedDoc {
    /// A document loaded from stored bytes (snapshot ++ chunks), actor set again.
    pub fn load(bytes: &[u8], actor: &ActorId) -> Result<LoadedDoc, automerge::AutomergeError> {
        let mut doc = AutoCommit::load(bytes)?;
        // `load` picks a random actor; every restart would otherwise add an actor to the doc.
        doc.set_actor(actor.clone());
        let saved_heads = doc.get_heads();
        Ok(LoadedDoc {
            doc,
            saved_heads,
            chunks_since_snapshot: 0,
            hub_shared_heads: Vec::new(),
            unsynced: Unsynced::default(),
        })
    }

    /// An empty document that exists only in memory until its first commit.
    pub fn empty(actor: &ActorId) -> LoadedDoc {
        LoadedDoc {
            doc: AutoCommit::new().with_actor(actor.clone()),
            saved_heads: Vec::new(),
            chunks_since_snapshot: 0,
            hub_shared_heads: Vec::new(),
            unsynced: Unsynced::default(),
        }
    }

    /// Sets the hub's shared heads and recomputes [`LoadedDoc::unsynced`].
    pub fn set_hub_shared_heads(&mut self, shared: Vec<ChangeHash>) {
        self.hub_shared_heads = shared;
        self.unsynced = count_unsynced(&mut self.doc, &self.hub_shared_heads);
    }

    /// True when the hub is known to hold every change of this document.
    pub fn hub_has_all(&mut self) -> bool {
        let heads = self.doc.get_heads();
        heads.iter().all(|h| self.hub_shared_heads.contains(h))
    }

    /// The largest HLC written in this document (session or catalogue), if any.
    pub fn max_hlc(&self, key: &DocKey) -> Option<Hlc> {
        match key {
            DocKey::Session { .. } => session_max_hlc(&self.doc),
            DocKey::Catalogue { .. } => catalogue_max_hlc(&self.doc),
            // Written by the hub only; its clock is not ours to follow.
            DocKey::Staff { .. } => None,
        }
    }
}

/// Counts the changes after `shared` (all of them when `shared` is empty).
pub fn count_unsynced(doc: &mut AutoCommit, shared: &[ChangeHash]) -> Unsynced {
    let mut unsynced = Unsynced::default();
    for meta in doc.get_changes_meta(shared) {
        let time_ms = u64::try_from(meta.timestamp).unwrap_or(0);
        let is_receipt = meta.message.as_deref().is_some_and(commit_tag::is_receipt);
        unsynced.add(time_ms, is_receipt);
    }
    unsynced
}

fn session_max_hlc(doc: &AutoCommit) -> Option<Hlc> {
    let view = session::read(doc).ok()?;
    let mut max = Some(view.header.opened_at.clone());
    let candidates = view
        .receipts
        .iter()
        .map(|r| &r.hlc)
        .chain(view.movements.iter().map(|m| &m.hlc))
        .chain(view.close.as_ref().map(|c| &c.closed_at));
    for hlc in candidates {
        if max.as_ref().is_none_or(|m| hlc > m) {
            max = Some(hlc.clone());
        }
    }
    max
}

/// The newest register entry's HLC (the model knows the key layout).
fn catalogue_max_hlc(doc: &AutoCommit) -> Option<Hlc> {
    crdt_model::catalogue::latest_hlc(doc)
}

/// Every live document of the till, by id.
#[derive(Debug, Default)]
pub struct Replica {
    docs: BTreeMap<DocId, LoadedDoc>,
}

impl Replica {
    /// An empty replica.
    pub fn new() -> Replica {
        Replica::default()
    }

    /// The document `id`.
    pub fn get(&self, id: &DocId) -> Option<&LoadedDoc> {
        self.docs.get(id)
    }

    /// The document `id`, mutable.
    pub fn get_mut(&mut self, id: &DocId) -> Option<&mut LoadedDoc> {
        self.docs.get_mut(id)
    }

    /// Adds or replaces a document.
    pub fn insert(&mut self, id: DocId, doc: LoadedDoc) {
        self.docs.insert(id, doc);
    }

    /// Removes a document.
    pub fn remove(&mut self, id: &DocId) -> Option<LoadedDoc> {
        self.docs.remove(id)
    }

    /// Ids of every document.
    pub fn ids(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// Every document.
    pub fn iter(&self) -> impl Iterator<Item = (&DocId, &LoadedDoc)> {
        self.docs.iter()
    }

    /// Every document, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&DocId, &mut LoadedDoc)> {
        self.docs.iter_mut()
    }

    /// The [`DocSet`] a sync round works on; documents it creates get `actor`.
    pub fn doc_set<'a>(&'a mut self, actor: &'a ActorId) -> ReplicaDocSet<'a> {
        ReplicaDocSet {
            replica: self,
            actor,
        }
    }

    /// Sum of [`Unsynced`] over every document (oldest = minimum).
    pub fn unsynced_total(&self) -> Unsynced {
        let mut total = Unsynced::default();
        for doc in self.docs.values() {
            let u = doc.unsynced;
            total.changes += u.changes;
            total.receipts += u.receipts;
            total.oldest_change_ms = min_opt(total.oldest_change_ms, u.oldest_change_ms);
            total.oldest_receipt_ms = min_opt(total.oldest_receipt_ms, u.oldest_receipt_ms);
        }
        total
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// [`DocSet`] over the replica for one sync step.
#[derive(Debug)]
pub struct ReplicaDocSet<'a> {
    replica: &'a mut Replica,
    actor: &'a ActorId,
}

impl DocSet for ReplicaDocSet<'_> {
    fn doc_ids(&self) -> Vec<DocId> {
        self.replica.docs.keys().cloned().collect()
    }

    fn doc_mut(&mut self, id: &DocId) -> Option<&mut AutoCommit> {
        self.replica.docs.get_mut(id).map(|d| &mut d.doc)
    }

    fn create_doc(&mut self, id: &DocId) -> &mut AutoCommit {
        let actor = self.actor;
        &mut self
            .replica
            .docs
            .entry(id.clone())
            .or_insert_with(|| LoadedDoc::empty(actor))
            .doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::ROOT;

    #[test]
    fn unsynced_counts_receipt_changes_after_shared_heads() {
        let actor = ActorId::from(b"S1/T1/node".as_slice());
        let mut loaded = LoadedDoc::empty(&actor);
        let commit = |doc: &mut AutoCommit, key: &str, message: &str, time: i64| {
            doc.put(ROOT, key, 1).expect("put");
            doc.commit_with(
                CommitOptions::default()
                    .with_message(message)
                    .with_time(time),
            );
        };
        commit(&mut loaded.doc, "a", "session_open:x", 100);
        commit(&mut loaded.doc, "b", "receipt:1", 200);
        let shared = loaded.doc.get_heads();
        commit(&mut loaded.doc, "c", "receipt:2", 300);
        commit(&mut loaded.doc, "d", "cash:3", 400);
        loaded.set_hub_shared_heads(Vec::new());
        assert_eq!(loaded.unsynced.changes, 4);
        assert_eq!(loaded.unsynced.receipts, 2);
        assert_eq!(loaded.unsynced.oldest_receipt_ms, Some(200));
        loaded.set_hub_shared_heads(shared);
        assert_eq!(loaded.unsynced.receipts, 1);
        assert_eq!(loaded.unsynced.oldest_receipt_ms, Some(300));
        assert_eq!(loaded.unsynced.oldest_change_ms, Some(300));
        assert!(!loaded.hub_has_all());
        let heads = loaded.doc.get_heads();
        loaded.set_hub_shared_heads(heads);
        assert_eq!(loaded.unsynced, Unsynced::default());
        assert!(loaded.hub_has_all());
    }

    #[test]
    fn catalogue_max_hlc_reads_register_keys() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "kind", "catalogue").expect("put");
        doc.put(ROOT, "p|F-1|price|0001700000000000-00000-hub/hub", 1)
            .expect("put");
        doc.put(ROOT, "p|F-2|name|0001700000000500-00003-S1/T2/node", "x")
            .expect("put");
        let max = catalogue_max_hlc(&doc).expect("an hlc");
        assert_eq!(max.physical_ms, 1_700_000_000_500);
        assert_eq!(max.logical, 3);
    }
}
