//! [`DocSet`]: how a sync round reaches the documents of a replica.
//!
//! The till keeps every document in memory; the hub loads the few a request needs from its
//! database. Both hand the round a `DocSet`: a map of loaded documents implements it, and so can
//! any struct that wraps documents with its own bookkeeping (saved heads, actor ids).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use automerge::AutoCommit;

use crate::id::DocId;

/// The documents a round may read, change and create.
pub trait DocSet {
    /// Ids of every document held (the client lists them; the server does not use this).
    fn doc_ids(&self) -> Vec<DocId>;

    /// The document, if held.
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut AutoCommit>;

    /// Creates an empty document (the replica sets its own actor id) and returns it. Called
    /// only for ids the policy allows and [`DocSet::doc_mut`] does not know.
    fn create_doc(&mut self, id: &DocId) -> &mut AutoCommit;
}

impl DocSet for BTreeMap<DocId, AutoCommit> {
    fn doc_ids(&self) -> Vec<DocId> {
        self.keys().cloned().collect()
    }

    fn doc_mut(&mut self, id: &DocId) -> Option<&mut AutoCommit> {
        self.get_mut(id)
    }

    fn create_doc(&mut self, id: &DocId) -> &mut AutoCommit {
        self.entry(id.clone()).or_default()
    }
}

impl<S: BuildHasher> DocSet for HashMap<DocId, AutoCommit, S> {
    fn doc_ids(&self) -> Vec<DocId> {
        let mut ids: Vec<DocId> = self.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn doc_mut(&mut self, id: &DocId) -> Option<&mut AutoCommit> {
        self.get_mut(id)
    }

    fn create_doc(&mut self, id: &DocId) -> &mut AutoCommit {
        self.entry(id.clone()).or_default()
    }
}
