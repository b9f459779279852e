//! Automerge document storage: snapshot + change chunks, and safe compaction.
//!
//! The storage knows nothing of Automerge's format: a document is a snapshot (`save()`
//! output, may be absent) followed by change chunks appended in id order, and
//! `snapshot ++ chunks` is what `AutoCommit::load` accepts.
//!
//! Safe compaction protocol, enforced by [`DbTx::compact`]: in one transaction
//! `lock_doc` → `load_doc` → (caller builds `save()` of the loaded bytes plus anything it
//! appended) → `compact(snapshot, heads, ids)`. Only ids this transaction read under the lock
//! or appended itself may be deleted, and exactly those are deleted, so a chunk appended by
//! another hub after our load is never lost.

use crate::db::ids::{validate_doc_id, validate_doc_kind, validate_store_id, validate_till_id};
use crate::db::{now_ms, Db, DbError, DbTx};
use automerge::ChangeHash;
use serde::Serialize;
use std::collections::BTreeSet;

/// Largest change chunk accepted in one append (a whole-document sync message fits).
pub const MAX_CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// Which store (and, for per-till documents, which till) a document belongs to, and its
/// kind (`catalogue`, `session`, ...). Fixed when the document is first stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocMeta {
    /// Owning store.
    pub store: String,
    /// Document kind, `[A-Za-z0-9_-]{1,32}`.
    pub kind: String,
    /// The till that writes it, for per-till documents such as cash sessions.
    pub till: Option<String>,
}

impl DocMeta {
    fn validate(&self) -> Result<(), DbError> {
        validate_store_id(&self.store)?;
        validate_doc_kind(&self.kind)?;
        if let Some(till) = &self.till {
            validate_till_id(till)?;
        }
        Ok(())
    }
}

/// A document as stored, ready for `AutoCommit::load(&bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// Owner and kind.
    pub meta: DocMeta,
    /// The snapshot (if any) followed by every change chunk in id order.
    pub bytes: Vec<u8>,
    /// Ids of the change chunks included in `bytes`, ascending.
    pub chunk_ids: Vec<i64>,
    /// Heads of the snapshot (empty when there is none).
    pub snapshot_heads: Vec<ChangeHash>,
    /// Last time changes were appended (hub wall clock, ms).
    pub updated_at_ms: i64,
}

/// One document's row, without its bytes (listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocRow {
    /// Document id.
    pub doc_id: String,
    /// Owner and kind.
    #[serde(flatten)]
    pub meta: DocMeta,
    /// Heads of the snapshot (empty when there is none).
    pub snapshot_heads: Vec<ChangeHash>,
    /// Last time changes were appended (hub wall clock, ms).
    pub updated_at_ms: i64,
    /// Change chunks stored since the last compaction (rows in `doc_changes`): compaction
    /// is worth it when this grows.
    pub change_count: i64,
}

type DocHeader = (String, String, Option<String>, Option<Vec<u8>>, String, i64);
type DocListRow = (String, String, String, Option<String>, String, i64, i64);

const SELECT_DOC: &str = "SELECT store, kind, till, snapshot, snapshot_heads, updated_at_ms
    FROM docs WHERE doc_id = $1";
const SELECT_CHUNKS: &str = "SELECT id, data FROM doc_changes WHERE doc_id = $1 ORDER BY id";
const SELECT_ALL_DOCS: &str = "SELECT doc_id, store, kind, till, snapshot_heads, updated_at_ms,
    change_count FROM docs ORDER BY doc_id";

/// Fetches a document's header and chunks over connection `$c`.
macro_rules! fetch_doc {
    ($c:ident, $doc_id:expr) => {{
        let header: Option<DocHeader> = sqlx::query_as(SELECT_DOC)
            .bind($doc_id)
            .fetch_optional(&mut *$c)
            .await?;
        match header {
            None => None,
            Some(header) => {
                let chunks: Vec<(i64, Vec<u8>)> = sqlx::query_as(SELECT_CHUNKS)
                    .bind($doc_id)
                    .fetch_all(&mut *$c)
                    .await?;
                Some(assemble(header, chunks)?)
            }
        }
    }};
}

fn parse_heads(json: &str) -> Result<Vec<ChangeHash>, DbError> {
    serde_json::from_str(json).map_err(|e| DbError::corrupt("snapshot_heads", e.to_string()))
}

fn assemble(header: DocHeader, chunks: Vec<(i64, Vec<u8>)>) -> Result<StoredDoc, DbError> {
    let (store, kind, till, snapshot, heads, updated_at_ms) = header;
    let size =
        snapshot.as_ref().map_or(0, Vec::len) + chunks.iter().map(|(_, d)| d.len()).sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    if let Some(snapshot) = snapshot {
        bytes.extend_from_slice(&snapshot);
    }
    let mut chunk_ids = Vec::with_capacity(chunks.len());
    for (id, data) in chunks {
        bytes.extend_from_slice(&data);
        chunk_ids.push(id);
    }
    Ok(StoredDoc {
        meta: DocMeta { store, kind, till },
        bytes,
        chunk_ids,
        snapshot_heads: parse_heads(&heads)?,
        updated_at_ms,
    })
}

fn doc_rows(rows: Vec<DocListRow>) -> Result<Vec<DocRow>, DbError> {
    rows.into_iter()
        .map(
            |(doc_id, store, kind, till, heads, updated_at_ms, change_count)| {
                Ok(DocRow {
                    doc_id,
                    meta: DocMeta { store, kind, till },
                    snapshot_heads: parse_heads(&heads)?,
                    updated_at_ms,
                    change_count,
                })
            },
        )
        .collect()
}

impl DbTx {
    /// Takes this transaction's exclusive lock on `doc_id` (held until commit/rollback).
    /// Required before [`DbTx::compact`]; take it before reading a document you are about
    /// to change, so two hubs do not work from the same stale state.
    pub async fn lock_doc(&mut self, doc_id: &str) -> Result<(), DbError> {
        validate_doc_id(doc_id)?;
        if self.locked.contains(doc_id) {
            return Ok(());
        }
        if let crate::db::TxConn::Postgres(t) = &mut self.conn {
            // Two-int key space: cannot collide with the migration lock's bigint key.
            sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext($1))")
                .bind(doc_id)
                .execute(&mut **t)
                .await?;
        }
        // SQLite: BEGIN IMMEDIATE already made this transaction the only writer.
        self.locked.insert(doc_id.to_owned());
        Ok(())
    }

    /// Loads a document (snapshot ++ chunks). When the document is locked by this
    /// transaction, remembers the chunk ids so that [`DbTx::compact`] may fold them.
    pub async fn load_doc(&mut self, doc_id: &str) -> Result<Option<StoredDoc>, DbError> {
        validate_doc_id(doc_id)?;
        let doc = on_tx!(self, c => fetch_doc!(c, doc_id));
        if self.locked.contains(doc_id) {
            // A document not stored yet has no chunk this transaction may fold.
            let ids = doc
                .as_ref()
                .map_or_else(BTreeSet::new, |d| d.chunk_ids.iter().copied().collect());
            self.loaded_chunks.insert(doc_id.to_owned(), ids);
        }
        Ok(doc)
    }

    /// Appends one change chunk (raw bytes from `save_after`/`save_incremental`, or any
    /// concatenation of chunks) and returns its id. Creates the document row with `meta` on
    /// first use; afterwards `meta` must match the stored one ([`DbError::MetaMismatch`]).
    pub async fn append_changes(
        &mut self,
        doc_id: &str,
        meta: &DocMeta,
        bytes: &[u8],
    ) -> Result<i64, DbError> {
        validate_doc_id(doc_id)?;
        meta.validate()?;
        if bytes.is_empty() {
            return Err(DbError::invalid("change chunk", "empty"));
        }
        if bytes.len() > MAX_CHUNK_BYTES {
            return Err(DbError::invalid("change chunk", "larger than 32 MiB"));
        }
        let now = now_ms();
        let id = on_tx!(self, c => {
            // The WHERE makes a metadata mismatch update nothing and return no row.
            let row: Option<(String,)> = sqlx::query_as(
                "INSERT INTO docs (doc_id, store, kind, till, updated_at_ms, change_count)
                 VALUES ($1, $2, $3, $4, $5, 1)
                 ON CONFLICT (doc_id) DO UPDATE SET
                   updated_at_ms = CASE WHEN excluded.updated_at_ms > docs.updated_at_ms
                                        THEN excluded.updated_at_ms ELSE docs.updated_at_ms END,
                   change_count = docs.change_count + 1
                 WHERE docs.store = excluded.store AND docs.kind = excluded.kind
                   AND docs.till IS NOT DISTINCT FROM excluded.till
                 RETURNING doc_id",
            )
            .bind(doc_id)
            .bind(&meta.store)
            .bind(&meta.kind)
            .bind(&meta.till)
            .bind(now)
            .fetch_optional(&mut *c)
            .await?;
            if row.is_none() {
                return Err(DbError::MetaMismatch { what: "document", key: doc_id.to_owned() });
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO doc_changes (doc_id, data) VALUES ($1, $2) RETURNING id",
            )
            .bind(doc_id)
            .bind(bytes)
            .fetch_one(&mut *c)
            .await?;
            id
        });
        if let Some(ids) = self.loaded_chunks.get_mut(doc_id) {
            ids.insert(id);
        }
        Ok(id)
    }

    /// Replaces the snapshot of `doc_id` and deletes exactly `folded_chunk_ids`.
    ///
    /// `snapshot` must be the `save()` of a document holding everything this transaction
    /// loaded for `doc_id` plus the folded chunks. Refused unless this transaction called
    /// [`DbTx::lock_doc`] then [`DbTx::load_doc`] on `doc_id`, and every folded id was read
    /// or appended by it. On any error, roll the transaction back.
    pub async fn compact(
        &mut self,
        doc_id: &str,
        snapshot: &[u8],
        heads: &[ChangeHash],
        folded_chunk_ids: &[i64],
    ) -> Result<(), DbError> {
        validate_doc_id(doc_id)?;
        let refuse = |reason: String| DbError::CompactionRefused {
            doc_id: doc_id.to_owned(),
            reason,
        };
        if !self.locked.contains(doc_id) {
            return Err(refuse("lock_doc was not called in this transaction".into()));
        }
        let Some(known) = self.loaded_chunks.get(doc_id) else {
            return Err(refuse("load_doc was not called under the lock".into()));
        };
        if snapshot.is_empty() {
            return Err(refuse("the snapshot is empty".into()));
        }
        let folded: BTreeSet<i64> = folded_chunk_ids.iter().copied().collect();
        if let Some(unknown) = folded.iter().find(|id| !known.contains(id)) {
            return Err(refuse(format!(
                "chunk {unknown} was not read by this transaction"
            )));
        }
        let heads_json =
            serde_json::to_string(heads).map_err(|e| DbError::invalid("heads", e.to_string()))?;
        let folded_vec: Vec<i64> = folded.iter().copied().collect();
        let count = i64::try_from(folded_vec.len()).unwrap_or(i64::MAX);
        let deleted: u64 = match &mut self.conn {
            crate::db::TxConn::Postgres(t) => {
                sqlx::query("DELETE FROM doc_changes WHERE doc_id = $1 AND id = ANY($2)")
                    .bind(doc_id)
                    .bind(&folded_vec)
                    .execute(&mut **t)
                    .await?
                    .rows_affected()
            }
            crate::db::TxConn::Sqlite(t) => {
                let mut deleted = 0;
                for id in &folded_vec {
                    deleted += sqlx::query("DELETE FROM doc_changes WHERE doc_id = $1 AND id = $2")
                        .bind(doc_id)
                        .bind(id)
                        .execute(&mut **t)
                        .await?
                        .rows_affected();
                }
                deleted
            }
        };
        if deleted != folded_vec.len() as u64 {
            // Under our lock nobody else may delete our chunks: an invariant is broken.
            return Err(DbError::corrupt(
                "doc_changes",
                format!(
                    "{doc_id}: expected to delete {} chunks, deleted {deleted}",
                    folded_vec.len()
                ),
            ));
        }
        let updated = on_tx!(self, c => {
            sqlx::query(
                "UPDATE docs SET snapshot = $2, snapshot_heads = $3,
                   change_count = change_count - $4
                 WHERE doc_id = $1",
            )
            .bind(doc_id)
            .bind(snapshot)
            .bind(&heads_json)
            .bind(count)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if updated != 1 {
            return Err(DbError::NotFound {
                what: "document",
                key: doc_id.to_owned(),
            });
        }
        if let Some(ids) = self.loaded_chunks.get_mut(doc_id) {
            ids.retain(|id| !folded.contains(id));
        }
        Ok(())
    }
}

impl Db {
    /// Loads a document without locking it (read-only views, reports). To change a
    /// document use [`DbTx::lock_doc`] + [`DbTx::load_doc`].
    pub async fn load_doc(&self, doc_id: &str) -> Result<Option<StoredDoc>, DbError> {
        validate_doc_id(doc_id)?;
        let doc = on_reader!(self, p => {
            let mut conn = p.acquire().await?;
            let c = &mut *conn;
            fetch_doc!(c, doc_id)
        });
        Ok(doc)
    }

    /// Documents of `store` changed at or after `since_ms` (hub clock; use an overlap when
    /// polling, clocks of two hubs differ), ordered by `updated_at_ms`.
    pub async fn docs_for_store(&self, store: &str, since_ms: i64) -> Result<Vec<DocRow>, DbError> {
        validate_store_id(store)?;
        let rows: Vec<DocListRow> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT doc_id, store, kind, till, snapshot_heads, updated_at_ms, change_count
                 FROM docs WHERE store = $1 AND updated_at_ms >= $2
                 ORDER BY updated_at_ms, doc_id",
            )
            .bind(store)
            .bind(since_ms)
            .fetch_all(p)
            .await?
        });
        doc_rows(rows)
    }

    /// Every document of every store, ordered by id.
    pub async fn all_docs(&self) -> Result<Vec<DocRow>, DbError> {
        let rows: Vec<DocListRow> = on_reader!(self, p => {
            sqlx::query_as(SELECT_ALL_DOCS)
                .fetch_all(p)
                .await?
        });
        doc_rows(rows)
    }
}

impl DbTx {
    /// Records the hub's version vector of `doc_id` (JSON) and its current heads, kept
    /// beside the document so the divergence view needs no Automerge load. Call it whenever
    /// changes are appended.
    pub async fn set_doc_clock(
        &mut self,
        doc_id: &str,
        clock_json: &str,
        heads: &[ChangeHash],
    ) -> Result<(), DbError> {
        validate_doc_id(doc_id)?;
        if clock_json.len() > crate::db::MAX_CLOCK_JSON_BYTES {
            return Err(DbError::invalid("clock", "larger than 64 KiB"));
        }
        let heads_json =
            serde_json::to_string(heads).map_err(|e| DbError::invalid("heads", e.to_string()))?;
        let updated = on_tx!(self, c => {
            sqlx::query("UPDATE docs SET clock = $2, heads = $3 WHERE doc_id = $1")
                .bind(doc_id)
                .bind(clock_json)
                .bind(&heads_json)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if updated != 1 {
            return Err(DbError::NotFound {
                what: "document",
                key: doc_id.to_owned(),
            });
        }
        Ok(())
    }
}
