//! Hub-authored edits of a document: the one path by which the hub itself (not a till) changes
//! a replicated document — the staff document when a user changes, the catalogue on an import,
//! and every back-office edit to come.
//!
//! [`edit_document`] runs inside the caller's [`DbTx`], so the edit commits together with
//! whatever else the caller writes (a user row, say) or not at all:
//! 1. lock the document (`DbTx::lock_doc`) and load it under the lock;
//! 2. on the blocking pool, load it into Automerge with actor `hub/hub` (or start an empty one),
//!    give the caller's closure a [`HubDoc`] — the document, an HLC clock of node `hub` and the
//!    wall clock — and commit what it changed with the caller's message;
//! 3. append the new change as one chunk, record the hub's clock and heads of the document,
//!    and compact when the document has more than [`COMPACT_AFTER_CHUNKS`] chunks.
//!
//! The closure adopts the newest timestamp already in the document (`HlcClock::observe`)
//! before stamping, so a hub whose clock stepped back still writes after every entry there.
//! An edit that changes nothing writes nothing.

use crate::db::{DbError, DbTx, DocMeta, StoredDoc};
use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};
use crdt_model::{DocKey, HlcClock};
use sync_engine::VersionVector;
use thiserror::Error;

/// Compact a document once it has more change chunks than this (the snapshot is rewritten,
/// the folded chunks deleted, in the same transaction).
pub const COMPACT_AFTER_CHUNKS: usize = 64;

/// How far ahead of the wall clock a stored entry's HLC may be for the hub's clock to adopt
/// it (beyond that the clock keeps its own time and warns).
pub const MAX_FORWARD_MS: u64 = 3600 * 1000;

/// The storage metadata a document id implies.
pub fn doc_meta(key: &DocKey) -> DocMeta {
    match key {
        DocKey::Catalogue { store } => DocMeta {
            store: store.to_string(),
            kind: "catalogue".to_owned(),
            till: None,
        },
        DocKey::Session { store, till, .. } => DocMeta {
            store: store.to_string(),
            kind: "session".to_owned(),
            till: Some(till.to_string()),
        },
        DocKey::Staff { store } => DocMeta {
            store: store.to_string(),
            kind: "staff".to_owned(),
            till: None,
        },
    }
}

/// The version vector of `doc` as JSON (what `DbTx::set_doc_clock` records).
pub fn clock_json(doc: &mut AutoCommit) -> Result<String, serde_json::Error> {
    serde_json::to_string(&VersionVector::from_doc(doc))
}

/// The document could not be edited (it does not load, or the edit task failed).
#[derive(Debug, Error)]
#[error("document {doc_id}: {reason}")]
pub struct EditError {
    /// The document.
    pub doc_id: String,
    /// Why (never secrets).
    pub reason: String,
}

impl From<EditError> for DbError {
    fn from(error: EditError) -> Self {
        DbError::Document {
            doc_id: error.doc_id,
            reason: error.reason,
        }
    }
}

/// What an edit closure works on.
#[derive(Debug)]
pub struct HubDoc {
    /// The document, actor `hub/hub`; empty when [`HubDoc::is_new`].
    pub doc: AutoCommit,
    /// An HLC clock of node `hub` (adopt the document's newest entry before stamping).
    pub clock: HlcClock,
    /// The wall clock of the edit, ms.
    pub wall_ms: u64,
    /// True when the hub does not hold the document yet: the closure initialises it.
    pub is_new: bool,
}

/// What an edit leaves to write.
#[derive(Debug)]
pub struct Edited {
    /// The new change chunk; `None` when the edit changed nothing.
    pub chunk: Option<Vec<u8>>,
    /// The hub's version vector after the edit, JSON (empty when nothing changed).
    pub clock_json: String,
    /// The document's heads after the edit (empty when nothing changed).
    pub heads: Vec<ChangeHash>,
    /// `(snapshot, heads, loaded chunk ids)` when the document is due for compaction.
    pub compaction: Option<(Vec<u8>, Vec<ChangeHash>, Vec<i64>)>,
}

/// Edits `key`'s document inside `tx` (see the module doc) and returns what `edit` returned.
/// The caller commits; on an error it must roll back.
pub async fn edit_document<T, E, F>(
    tx: &mut DbTx,
    key: &DocKey,
    wall_ms: u64,
    message: String,
    edit: F,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DbError> + From<EditError> + Send + 'static,
    F: FnOnce(&mut HubDoc) -> Result<T, E> + Send + 'static,
{
    let doc_id = key.to_doc_id();
    tx.lock_doc(&doc_id).await?;
    let stored = tx.load_doc(&doc_id).await?;
    let task_doc_id = doc_id.clone();
    let (edited, value) =
        tokio::task::spawn_blocking(move || apply(&task_doc_id, stored, wall_ms, message, edit))
            .await
            .map_err(|e| {
                E::from(EditError {
                    doc_id: doc_id.clone(),
                    reason: format!("edit task failed: {e}"),
                })
            })??;
    if let Some(chunk) = &edited.chunk {
        let chunk_id = tx.append_changes(&doc_id, &doc_meta(key), chunk).await?;
        tx.set_doc_clock(&doc_id, &edited.clock_json, &edited.heads)
            .await?;
        if let Some((snapshot, heads, mut folded)) = edited.compaction {
            folded.push(chunk_id);
            tx.compact(&doc_id, &snapshot, &heads, &folded).await?;
        }
    }
    Ok(value)
}

/// The CPU half of [`edit_document`]: loads `stored` (or starts a new document), runs `edit`,
/// commits with `message` at `wall_ms`, and works out what to write. No IO.
pub fn apply<T, E, F>(
    doc_id: &str,
    stored: Option<StoredDoc>,
    wall_ms: u64,
    message: String,
    edit: F,
) -> Result<(Edited, T), E>
where
    E: From<EditError>,
    F: FnOnce(&mut HubDoc) -> Result<T, E>,
{
    let fail = |reason: String| {
        E::from(EditError {
            doc_id: doc_id.to_owned(),
            reason,
        })
    };
    let actor = crdt_model::ids::hub_actor(crate::HUB_NAME).map_err(|e| fail(e.to_string()))?;
    let clock = HlcClock::new(crate::HUB_NAME, MAX_FORWARD_MS).map_err(|e| fail(e.to_string()))?;
    let (doc, chunk_ids) = match &stored {
        None => (AutoCommit::new().with_actor(actor), Vec::new()),
        Some(stored) => {
            let doc = AutoCommit::load(&stored.bytes)
                .map_err(|e| fail(format!("does not load: {e}")))?
                .with_actor(actor);
            (doc, stored.chunk_ids.clone())
        }
    };
    let mut hub = HubDoc {
        doc,
        clock,
        wall_ms,
        is_new: stored.is_none(),
    };
    let heads_before = hub.doc.get_heads();
    let value = edit(&mut hub)?;
    let mut doc = hub.doc;
    let commit = CommitOptions::default()
        .with_message(message)
        .with_time(i64::try_from(wall_ms).unwrap_or(i64::MAX));
    if doc.commit_with(commit).is_none() {
        let edited = Edited {
            chunk: None,
            clock_json: String::new(),
            heads: Vec::new(),
            compaction: None,
        };
        return Ok((edited, value));
    }
    let chunk = if stored.is_none() {
        doc.save()
    } else {
        doc.save_after(&heads_before)
    };
    let compaction = (stored.is_some() && chunk_ids.len() + 1 > COMPACT_AFTER_CHUNKS)
        .then(|| (doc.save(), doc.get_heads(), chunk_ids));
    let edited = Edited {
        chunk: Some(chunk),
        clock_json: clock_json(&mut doc)
            .map_err(|e| fail(format!("cannot serialise a clock: {e}")))?,
        heads: doc.get_heads(),
        compaction,
    };
    Ok((edited, value))
}
