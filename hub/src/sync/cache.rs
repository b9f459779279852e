//! A bounded in-process cache of loaded Automerge documents, so that a till's idle poll
//! does not re-parse its store's catalogue (loading a 10,000-product catalogue takes
//! ~100 ms; cloning a loaded one ~2 ms).
//!
//! The cache never changes what a round sees, so hubs stay stateless: a round still reads
//! the document's rows under its lock, and uses a cached copy only when it was built from
//! exactly those rows — the same snapshot heads, the same change chunk ids (ids are never
//! reused) and the same byte length ([`DocVersion`]). Anything else (another hub appended,
//! compaction ran) is a miss and the document is loaded from the bytes just read.
//!
//! Bounded by count ([`DocCache::new`]); the least recently used entry is evicted.

use crate::db::StoredDoc;
use automerge::{AutoCommit, ChangeHash};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which stored rows a document was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocVersion {
    /// Heads of the stored snapshot (empty without one).
    pub snapshot_heads: Vec<ChangeHash>,
    /// Ids of the stored change chunks, ascending.
    pub chunk_ids: Vec<i64>,
    /// Length of snapshot ++ chunks.
    pub len: usize,
}

impl DocVersion {
    /// The version of a document as loaded.
    pub fn of(stored: &StoredDoc) -> DocVersion {
        DocVersion {
            snapshot_heads: stored.snapshot_heads.clone(),
            chunk_ids: stored.chunk_ids.clone(),
            len: stored.bytes.len(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    version: DocVersion,
    doc: Arc<AutoCommit>,
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    tick: u64,
    docs: HashMap<String, Entry>,
}

/// The cache (see the module doc). Shared by every round of one process.
#[derive(Debug)]
pub struct DocCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl DocCache {
    /// A cache of at most `capacity` documents (0 disables it).
    pub fn new(capacity: usize) -> DocCache {
        DocCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an entry half-written (each
        // operation is one map call), so a poisoned cache is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of `doc_id` if the cached one was built from exactly `version`.
    pub fn get(&self, doc_id: &str, version: &DocVersion) -> Option<AutoCommit> {
        let shared = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            let entry = inner.docs.get_mut(doc_id)?;
            if &entry.version != version {
                return None;
            }
            entry.used = tick;
            entry.doc.clone()
        };
        // The deep copy happens outside the lock.
        Some((*shared).clone())
    }

    /// Remembers `doc` as the document built from `version`.
    pub fn put(&self, doc_id: &str, version: DocVersion, doc: AutoCommit) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if !inner.docs.contains_key(doc_id) && inner.docs.len() >= self.capacity {
            let oldest = inner
                .docs
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                inner.docs.remove(&oldest);
            }
        }
        inner.docs.insert(
            doc_id.to_owned(),
            Entry {
                version,
                doc: Arc::new(doc),
                used: tick,
            },
        );
    }

    /// Forgets `doc_id` (after a failed round that may have changed the live copy).
    pub fn forget(&self, doc_id: &str) {
        self.lock().docs.remove(doc_id);
    }

    /// Number of cached documents.
    pub fn len(&self) -> usize {
        self.lock().docs.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;

    fn version(ids: &[i64]) -> DocVersion {
        DocVersion {
            snapshot_heads: Vec::new(),
            chunk_ids: ids.to_vec(),
            len: ids.len(),
        }
    }

    fn doc(value: i64) -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "v", value).expect("put");
        doc.commit();
        doc
    }

    #[test]
    fn hits_only_the_exact_version_and_evicts_the_least_recent() {
        let cache = DocCache::new(2);
        cache.put("a", version(&[1]), doc(1));
        cache.put("b", version(&[2]), doc(2));
        assert!(cache.get("a", &version(&[1, 3])).is_none());
        let hit = cache.get("a", &version(&[1])).expect("hit");
        assert!(hit.get(automerge::ROOT, "v").expect("read").is_some());
        cache.put("c", version(&[4]), doc(3)); // evicts "b", used least recently
        assert!(cache.get("b", &version(&[2])).is_none());
        assert!(cache.get("a", &version(&[1])).is_some());
        assert_eq!(cache.len(), 2);
        cache.forget("a");
        assert!(cache.get("a", &version(&[1])).is_none());
        let off = DocCache::new(0);
        off.put("a", version(&[1]), doc(1));
        assert!(off.is_empty());
    }
}
