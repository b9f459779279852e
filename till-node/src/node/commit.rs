//! THE durable path of the till: one way to commit a set of document writes plus their side
//! records, and one way back when that fails. Every write of the node — a sale, a cash
//! movement, a fiscal stamp, a round with the hub, a round with the page — goes through it.
//!
//! ```text
//! let mut commit = core.begin("what");       // collects the writes of one operation
//! // change documents in memory:
//! //   local edit  → core.seal(&mut commit, id, message, time)  (commit + save_after)
//! //   sync round  → commit.add_doc(id, new_changes, heads_after)  (already applied)
//! // side records: commit.side (idempotency record, sync states, outbox jobs, sagas, meta)
//! core.commit(commit)?;                        // ONE WriteBatch + HLC high-water → store
//! ```
//!
//! [`Core::commit`] writes the documents' new chunks, the side records and the HLC high-water
//! mark in ONE [`WriteBatch`]; only then does memory count the chunks as saved. If the store
//! refuses, [`Core::rollback`] runs: every touched document is rebuilt from the store (one the
//! store does not hold is dropped), every document in memory that was never stored is
//! dropped, and the open shift is found again — so nothing that is not durable
//! is ever visible or acknowledged. A document that cannot be rebuilt marks the node broken:
//! it refuses every write until restarted. A poisoned store (I/O failure) likewise.
//!
//! Writes that change no document — an outbox transition without a stamp, a refund saga, a
//! login record, a retention purge — commit their own `WriteBatch` to the store directly: they
//! have nothing in memory to roll back.

use std::collections::BTreeSet;

use automerge::transaction::CommitOptions;
use automerge::ChangeHash;
use sync_engine::DocId;

use super::core::Core;
use super::error::NodeError;
use super::replica::LoadedDoc;
use crate::store::WriteBatch;

/// One document's new chunk in a [`Commit`].
#[derive(Debug)]
struct DocWrite {
    doc: DocId,
    chunk: Vec<u8>,
    heads: Vec<ChangeHash>,
}

/// The writes of one operation, made durable together by [`Core::commit`].
#[derive(Debug)]
pub(super) struct Commit {
    what: &'static str,
    touched: BTreeSet<DocId>,
    docs: Vec<DocWrite>,
    /// The side records committed with the documents.
    pub side: WriteBatch,
}

impl Commit {
    /// Adds a chunk of changes already applied to document `id` (a sync round), whose heads
    /// are now `heads`.
    pub fn add_doc(&mut self, id: &DocId, chunk: Vec<u8>, heads: Vec<ChangeHash>) {
        self.touched.insert(id.clone());
        self.docs.push(DocWrite {
            doc: id.clone(),
            chunk,
            heads,
        });
    }

    /// Marks `id` as changed in memory without a chunk of its own (rebuilt on rollback).
    pub fn touch(&mut self, id: &DocId) {
        self.touched.insert(id.clone());
    }
}

impl Core {
    /// Starts the writes of one operation, named `what` in the log if they fail.
    pub(super) fn begin(&self, what: &'static str) -> Commit {
        Commit {
            what,
            touched: BTreeSet::new(),
            docs: Vec::new(),
            side: WriteBatch::new(),
        }
    }

    /// Commits the open Automerge transaction of `id` with `message` and the wall time, and
    /// adds the chunk it makes to `commit`.
    pub(super) fn seal(
        &mut self,
        commit: &mut Commit,
        id: &DocId,
        message: String,
        time_ms: u64,
    ) -> Result<(), NodeError> {
        let Some(loaded) = self.replica.get_mut(id) else {
            return Err(NodeError::Load {
                doc: id.to_string(),
                reason: "not in memory".to_owned(),
            });
        };
        let time = i64::try_from(time_ms).unwrap_or(i64::MAX);
        loaded.doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(time),
        );
        let chunk = loaded.doc.save_after(&loaded.saved_heads);
        let heads = loaded.doc.get_heads();
        commit.add_doc(id, chunk, heads);
        Ok(())
    }

    /// Makes `commit` durable in ONE store commit; see the module documentation. On failure
    /// memory is put back to what the store holds and the store's error is returned.
    pub(super) fn commit(&mut self, commit: Commit) -> Result<(), NodeError> {
        let mut batch = WriteBatch::new();
        for write in &commit.docs {
            if !write.chunk.is_empty() {
                batch.append_chunk(write.doc.as_str(), write.chunk.clone());
            }
        }
        for op in commit.side.ops() {
            batch.push(op.clone());
        }
        if let Some(last) = self.clock.last() {
            batch.put_hlc_high_water(last.to_string());
        }
        if let Err(error) = self.store.commit(batch) {
            tracing::error!(what = commit.what, %error, "commit failed; rebuilding the touched documents from the store");
            self.rollback(&commit);
            return Err(error.into());
        }
        let staff_doc = self.staff_doc();
        let mut staff_changed = false;
        for write in &commit.docs {
            if let Some(loaded) = self.replica.get_mut(&write.doc) {
                loaded.saved_heads = write.heads.clone();
                loaded.chunks_since_snapshot += 1;
            }
            staff_changed |= write.doc.as_str() == staff_doc;
        }
        for write in &commit.docs {
            self.maybe_compact(&write.doc, false);
        }
        if staff_changed {
            self.refresh_staff();
        }
        Ok(())
    }

    /// Puts memory back to what the store holds after a refused or failed operation: the
    /// touched documents are rebuilt from the store (or dropped when it holds none), documents
    /// in memory and never stored are dropped, and the open shift is found again.
    ///
    /// A document that was never stored is one with no saved heads: every stored document has
    /// them (chunks are only counted as saved after a commit), so nothing needs to remember at
    /// `begin` which documents were held.
    pub(super) fn rollback(&mut self, commit: &Commit) {
        for id in &commit.touched {
            if self
                .replica
                .get(id)
                .is_some_and(|d| !d.saved_heads.is_empty())
            {
                self.reload_doc(id);
            }
        }
        let never_stored: Vec<DocId> = self
            .replica
            .iter()
            .filter(|(_, loaded)| loaded.saved_heads.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in never_stored {
            self.replica.remove(&id);
        }
        self.open_shift = self.find_open_shift();
    }

    /// Rebuilds `id` from the store (removes it if nothing is stored).
    fn reload_doc(&mut self, id: &DocId) {
        // What the hub holds is known from the sync states, which did not move; a document
        // that was not in memory has no known shared heads, so all of it counts as unsynced.
        let shared = self
            .replica
            .get(id)
            .map_or_else(Vec::new, |d| d.hub_shared_heads.clone());
        let result = self.store.load_doc(id.as_str()).map(|stored| {
            stored.map(|stored| {
                LoadedDoc::load(&stored.bytes, &self.identity.actor)
                    .map(|mut d| {
                        d.chunks_since_snapshot = stored.chunk_count;
                        d
                    })
                    .map_err(|e| e.to_string())
            })
        });
        match result {
            Ok(Some(Ok(mut loaded))) => {
                loaded.set_hub_shared_heads(shared);
                self.replica.insert(id.clone(), loaded);
            }
            Ok(None) => {
                self.replica.remove(id);
            }
            Ok(Some(Err(reason))) => {
                self.replica.remove(id);
                self.mark_broken(format!("document {id} does not reload: {reason}"));
            }
            Err(error) => {
                self.replica.remove(id);
                self.mark_broken(format!("document {id} does not reload: {error}"));
            }
        }
    }
}
