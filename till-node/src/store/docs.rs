//! Automerge documents as opaque bytes: one compressed snapshot per document plus the change
//! chunks appended since, compacted into a new snapshot from time to time.
//!
//! Layout (measurements.md §2(a)): `doc_snapshot(doc_id, heads, data, covers_chunk_id)` and
//! `doc_chunk(chunk_id AUTOINCREMENT, doc_id, data)`. Loading returns
//! `snapshot ++ chunks in chunk_id order`, which `AutoCommit::load` accepts as is. Chunk ids
//! only grow (AUTOINCREMENT never reuses one), so "every chunk up to id N" names an exact set
//! even while new chunks are being appended.
//!
//! Two Automerge pitfalls belong to the caller, not to the store: after `AutoCommit::load` the
//! first `save_incremental` returns the whole history (keep the heads and use `save_after`), and
//! `load` picks a random actor (set the node's own actor again).

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::{params, OptionalExtension};

use super::limits::{check_blob, check_key};
use super::{Store, StoreError};

/// The id of one stored change chunk. Ids grow across all documents and are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId(pub i64);

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One document as stored, ready for `AutoCommit::load(&doc.bytes)`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// Document id.
    pub doc_id: String,
    /// The snapshot (if any) followed by every change chunk since, in order.
    pub bytes: Vec<u8>,
    /// How many change chunks follow the snapshot.
    pub chunk_count: usize,
    /// Length of the snapshot at the start of `bytes` (0 when there is none).
    pub snapshot_len: usize,
    /// The heads stored with the snapshot by [`Store::compact`], as the caller encoded them.
    pub snapshot_heads: Option<Vec<u8>>,
    /// The newest chunk, to pass to [`Store::compact`] as `up_to_chunk_id`.
    pub last_chunk_id: Option<ChunkId>,
}

impl fmt::Debug for StoredDoc {
    // The bytes can be megabytes; show sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredDoc")
            .field("doc_id", &self.doc_id)
            .field("bytes_len", &self.bytes.len())
            .field("chunk_count", &self.chunk_count)
            .field("snapshot_len", &self.snapshot_len)
            .field("last_chunk_id", &self.last_chunk_id)
            .finish()
    }
}

impl StoredDoc {
    fn empty(doc_id: String) -> StoredDoc {
        StoredDoc {
            doc_id,
            bytes: Vec::new(),
            chunk_count: 0,
            snapshot_len: 0,
            snapshot_heads: None,
            last_chunk_id: None,
        }
    }
}

impl Store {
    /// Every stored document, ordered by id.
    pub fn load_docs(&self) -> Result<Vec<StoredDoc>, StoreError> {
        let docs = self.read_docs(None)?;
        Ok(docs.into_values().collect())
    }

    /// One document, or `None` if nothing is stored under `doc_id`.
    pub fn load_doc(&self, doc_id: &str) -> Result<Option<StoredDoc>, StoreError> {
        check_key("doc_id", doc_id)?;
        let mut docs = self.read_docs(Some(doc_id))?;
        Ok(docs.remove(doc_id))
    }

    /// Ids of every stored document, ordered.
    pub fn doc_ids(&self) -> Result<Vec<String>, StoreError> {
        let op = "list documents";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT doc_id FROM doc_snapshot UNION SELECT doc_id FROM doc_chunk ORDER BY 1",
            )
            .map_err(|e| StoreError::from_sqlite(op, e))?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| StoreError::from_sqlite(op, e))?;
        Ok(ids)
    }

    fn read_docs(&self, only: Option<&str>) -> Result<BTreeMap<String, StoredDoc>, StoreError> {
        let op = "load documents";
        let sqlite = |e| StoreError::from_sqlite(op, e);
        // One read transaction, so the snapshot and the chunks are from the same moment.
        let tx = self.conn.unchecked_transaction().map_err(sqlite)?;
        let mut docs: BTreeMap<String, StoredDoc> = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT doc_id, heads, data FROM doc_snapshot
                     WHERE ?1 IS NULL OR doc_id = ?1",
                )
                .map_err(sqlite)?;
            let mut rows = stmt.query(params![only]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                let doc_id: String = row.get(0).map_err(sqlite)?;
                let heads: Vec<u8> = row.get(1).map_err(sqlite)?;
                let data: Vec<u8> = row.get(2).map_err(sqlite)?;
                let mut doc = StoredDoc::empty(doc_id.clone());
                doc.snapshot_len = data.len();
                doc.bytes = data;
                doc.snapshot_heads = Some(heads);
                docs.insert(doc_id, doc);
            }
        }
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT doc_id, chunk_id, data FROM doc_chunk
                     WHERE ?1 IS NULL OR doc_id = ?1 ORDER BY doc_id, chunk_id",
                )
                .map_err(sqlite)?;
            let mut rows = stmt.query(params![only]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                let doc_id: String = row.get(0).map_err(sqlite)?;
                let chunk_id: i64 = row.get(1).map_err(sqlite)?;
                let data = row.get_ref(2).map_err(sqlite)?;
                let data = data.as_blob().map_err(|e| sqlite(e.into()))?;
                let doc = docs
                    .entry(doc_id.clone())
                    .or_insert_with(|| StoredDoc::empty(doc_id));
                doc.bytes.extend_from_slice(data);
                doc.chunk_count += 1;
                doc.last_chunk_id = Some(ChunkId(chunk_id));
            }
        }
        tx.finish().map_err(sqlite)?;
        Ok(docs)
    }

    /// How many change chunks `doc_id` has on top of its snapshot; compact when this grows.
    pub fn chunks_since_snapshot(&self, doc_id: &str) -> Result<usize, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM doc_chunk WHERE doc_id = ?1")
            .and_then(|mut stmt| stmt.query_row(params![doc_id], |row| row.get(0)))
            .map_err(|e| StoreError::from_sqlite("count chunks", e))?;
        usize::try_from(count).map_err(|_| StoreError::Corrupt(format!("chunk count {count}")))
    }

    /// The newest change chunk of `doc_id`, if it has any.
    pub fn last_chunk_id(&self, doc_id: &str) -> Result<Option<ChunkId>, StoreError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(chunk_id) FROM doc_chunk WHERE doc_id = ?1")
            .and_then(|mut stmt| stmt.query_row(params![doc_id], |row| row.get(0)))
            .map_err(|e| StoreError::from_sqlite("read last chunk id", e))?;
        Ok(id.map(ChunkId))
    }

    /// Replaces the snapshot of `doc_id` and deletes exactly its chunks with id
    /// `<= up_to_chunk_id`, in one transaction. Returns how many chunks were deleted.
    ///
    /// `snapshot` must be `save()` of the document after every chunk up to `up_to_chunk_id`
    /// was applied (take `up_to_chunk_id` from [`Store::last_chunk_id`] or
    /// [`StoredDoc::last_chunk_id`] at the moment you call `save()`). `None` replaces the
    /// snapshot and deletes no chunk (e.g. the first snapshot of a document built in memory).
    /// A compaction older than the one already stored is refused
    /// ([`StoreError::StaleCompaction`]): it would lose the chunks the newer one deleted.
    pub fn compact(
        &mut self,
        doc_id: &str,
        snapshot: &[u8],
        heads: &[u8],
        up_to_chunk_id: Option<ChunkId>,
    ) -> Result<usize, StoreError> {
        check_key("doc_id", doc_id)?;
        if snapshot.is_empty() {
            return Err(StoreError::InvalidInput(format!(
                "empty snapshot for document {doc_id:?}"
            )));
        }
        check_blob("snapshot", snapshot)?;
        check_blob("heads", heads)?;
        let op = "compact document";
        self.write(op, |tx| {
            let sqlite = |e| StoreError::from_sqlite(op, e);
            let covered: Option<i64> = tx
                .query_row(
                    "SELECT covers_chunk_id FROM doc_snapshot WHERE doc_id = ?1",
                    params![doc_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sqlite)?
                .flatten();
            let up_to = up_to_chunk_id.map(|c| c.0);
            if let Some(covered) = covered {
                if up_to.is_none_or(|requested| requested < covered) {
                    return Err(StoreError::StaleCompaction {
                        doc_id: doc_id.to_owned(),
                        requested: up_to_chunk_id,
                        covered: ChunkId(covered),
                    });
                }
            }
            if let Some(requested) = up_to {
                let last: Option<i64> = tx
                    .query_row(
                        "SELECT MAX(chunk_id) FROM doc_chunk WHERE doc_id = ?1",
                        params![doc_id],
                        |row| row.get(0),
                    )
                    .map_err(sqlite)?;
                if last.is_none_or(|last| requested > last) && covered != Some(requested) {
                    return Err(StoreError::InvalidInput(format!(
                        "compaction of {doc_id:?} names chunk {requested}, \
                         but the document's last chunk is {last:?}"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO doc_snapshot(doc_id, heads, data, covers_chunk_id)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(doc_id) DO UPDATE SET heads = excluded.heads,
                     data = excluded.data, covers_chunk_id = excluded.covers_chunk_id",
                params![doc_id, heads, snapshot, up_to],
            )
            .map_err(sqlite)?;
            match up_to {
                Some(requested) => tx
                    .execute(
                        "DELETE FROM doc_chunk WHERE doc_id = ?1 AND chunk_id <= ?2",
                        params![doc_id, requested],
                    )
                    .map_err(sqlite),
                None => Ok(0),
            }
        })
    }

    /// Deletes everything stored for `doc_id`: snapshot, chunks and sync states (retention of
    /// sealed sessions). Returns whether anything was stored.
    pub fn drop_doc(&mut self, doc_id: &str) -> Result<bool, StoreError> {
        check_key("doc_id", doc_id)?;
        let op = "drop document";
        self.write(op, |tx| {
            let mut deleted = 0;
            for sql in [
                "DELETE FROM doc_snapshot WHERE doc_id = ?1",
                "DELETE FROM doc_chunk WHERE doc_id = ?1",
                "DELETE FROM sync_state WHERE doc_id = ?1",
            ] {
                deleted += tx
                    .execute(sql, params![doc_id])
                    .map_err(|e| StoreError::from_sqlite(op, e))?;
            }
            Ok(deleted > 0)
        })
    }
}
