//! The CPU half of a sync round: given the plan and the loaded documents, apply the till's
//! changes, build the reply, and work out everything to persist (new change chunks, the
//! hub's clock and heads per document, sync states, projection rows, compaction snapshots,
//! the till's reported status and heads). New entries stamped too far ahead of the hub's
//! clock refuse the round ([`clock_guard`](crate::sync::clock_guard)). No IO here: it runs on the blocking pool while the database
//! transaction waits, so a large document never stalls the async workers.

use crate::db::{DocMeta, PeerDocStatus, StoredDoc, MAX_REPORTED_HEADS};
use crate::doc_edit::{doc_meta, COMPACT_AFTER_CHUNKS};
use crate::sync::cache::{DocCache, DocVersion};
use crate::sync::clock_guard::ClockGuard;
use crate::sync::policy::TillPolicy;
use crate::sync::projection::{self, SessionProjection};
use crate::sync::SyncRoundError;
use automerge::{ActorId, AutoCommit, ChangeHash};
use crdt_model::{DocKey, ReceiptId};
use std::collections::{BTreeMap, HashSet};
use sync_engine::{DocId, DocSet, DocStatus, Envelope, Plan, Server};

/// One document as loaded under its lock, with the persisted sync state for the peer.
#[derive(Debug)]
pub struct LoadedDoc {
    /// Which document.
    pub id: DocId,
    /// The stored bytes, `None` when the hub does not hold it yet.
    pub stored: Option<StoredDoc>,
    /// `State::encode()` for (doc, peer), if any.
    pub state: Option<Vec<u8>>,
}

/// Everything one document needs written.
#[derive(Debug)]
pub struct DocWrite {
    /// Document id.
    pub doc_id: String,
    /// Owner and kind (fixed by the id).
    pub meta: DocMeta,
    /// Chunk to append (empty: nothing new).
    pub new_changes: Vec<u8>,
    /// The hub's version vector after the round, as JSON (set when changes were applied).
    pub clock_json: Option<String>,
    /// The hub's heads after the round, sorted (set with `clock_json`).
    pub heads: Vec<ChangeHash>,
    /// New sync state for (doc, peer), when it changed.
    pub state: Option<Vec<u8>>,
    /// Projection rows, for session documents that received changes.
    pub projection: Option<SessionProjection>,
    /// `(snapshot, heads, loaded chunk ids)` when the document is due for compaction.
    pub compaction: Option<(Vec<u8>, Vec<ChangeHash>, Vec<i64>)>,
}

/// A document as it stands after the round, with the stored version it was built from
/// (`None` when the round created it), for the cache.
#[derive(Debug)]
pub struct LiveDoc {
    /// Which document.
    pub id: DocId,
    /// The document.
    pub doc: AutoCommit,
    /// The stored rows it was loaded from.
    pub loaded: Option<DocVersion>,
}

/// The outcome of the CPU half.
#[derive(Debug)]
pub struct Computed {
    /// Every document of the round after it (hand them to the cache once committed).
    pub docs: Vec<LiveDoc>,
    /// The reply to send once everything is committed.
    pub reply: Envelope,
    /// Writes per document.
    pub writes: Vec<DocWrite>,
    /// The till's status per document to record.
    pub statuses: Vec<PeerDocStatus>,
}

/// The documents of one round, as a [`DocSet`] for the server.
struct HubDocs {
    docs: BTreeMap<DocId, AutoCommit>,
    actor: ActorId,
}

impl DocSet for HubDocs {
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

/// The version vector of `doc` as JSON.
fn clock_json(doc: &mut AutoCommit) -> Result<String, SyncRoundError> {
    crate::doc_edit::clock_json(doc)
        .map_err(|e| SyncRoundError::Internal(format!("cannot serialise a clock: {e}")))
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// Inputs of [`compute`] besides the plan and the documents.
#[derive(Debug)]
pub struct RoundContext<'a> {
    /// The answering server.
    pub server: &'a Server,
    /// The policy of the authenticated till.
    pub policy: &'a TillPolicy,
    /// The actor the hub sets on every loaded document.
    pub actor: &'a ActorId,
    /// Wall clock of the round, ms.
    pub now_ms: i64,
    /// The bound on new entries' timestamps.
    pub guard: ClockGuard,
    /// Loaded documents of earlier rounds.
    pub cache: &'a DocCache,
}

/// Applies `plan` to `loaded` and works out the writes (see the module doc).
/// `reported` are the statuses the request carried, per document.
pub fn compute(
    ctx: &RoundContext<'_>,
    plan: Plan,
    loaded: Vec<LoadedDoc>,
    reported: Vec<(DocId, DocStatus)>,
) -> Result<Computed, SyncRoundError> {
    let peer = plan.peer().to_string();
    let client_heads: BTreeMap<DocId, Vec<ChangeHash>> = plan
        .docs()
        .iter()
        .filter_map(|p| {
            p.client_heads()
                .map(|h| (p.doc.clone(), sorted(h.to_vec())))
        })
        .collect();
    let incoming: HashSet<DocId> = plan
        .docs()
        .iter()
        .filter(|p| p.incoming_changes() > 0)
        .map(|p| p.doc.clone())
        .collect();

    let mut docs = HubDocs {
        docs: BTreeMap::new(),
        actor: ctx.actor.clone(),
    };
    let mut chunk_ids: BTreeMap<DocId, Vec<i64>> = BTreeMap::new();
    let mut states = BTreeMap::new();
    let mut projected_before: BTreeMap<DocId, HashSet<ReceiptId>> = BTreeMap::new();
    let mut heads_before: BTreeMap<DocId, Vec<ChangeHash>> = BTreeMap::new();
    let mut versions: BTreeMap<DocId, DocVersion> = BTreeMap::new();
    for doc in loaded {
        if let Some(stored) = doc.stored {
            let version = DocVersion::of(&stored);
            let mut automerge = match ctx.cache.get(doc.id.as_str(), &version) {
                Some(cached) => cached,
                None => AutoCommit::load(&stored.bytes)
                    .map_err(|e| SyncRoundError::CorruptDoc {
                        doc: doc.id.to_string(),
                        reason: e.to_string(),
                    })?
                    .with_actor(ctx.actor.clone()),
            };
            versions.insert(doc.id.clone(), version);
            if incoming.contains(&doc.id) {
                heads_before.insert(doc.id.clone(), automerge.get_heads());
                if stored.meta.kind == "session" {
                    // Receipts in the stored document were projected with the changes that
                    // brought them (same transaction), so only newer ones need inserting.
                    projected_before.insert(doc.id.clone(), projection::receipt_ids(&automerge));
                }
            }
            chunk_ids.insert(doc.id.clone(), stored.chunk_ids);
            docs.docs.insert(doc.id.clone(), automerge);
        }
        if let Some(state) = doc.state {
            states.insert(doc.id, state);
        }
    }

    let response = ctx
        .server
        .respond(plan, ctx.policy, &mut docs, &states)
        .map_err(SyncRoundError::Sync)?;

    for doc in &response.oversized {
        // The hub's answer for this document exceeds the envelope limit: the till can never
        // receive it this way. Support must look (split or compact the document).
        tracing::warn!(peer = %peer, %doc, "reply for a document exceeds the envelope limit");
    }
    let mut writes = Vec::with_capacity(response.docs.len());
    for outcome in response.docs {
        let changed = !outcome.applied.new_changes.is_empty();
        if !changed && !outcome.state_changed {
            continue;
        }
        let key = DocKey::parse(outcome.doc.as_str()).map_err(|_| {
            SyncRoundError::Internal(format!("planned doc {} is not a DocKey", outcome.doc))
        })?;
        let mut write = DocWrite {
            doc_id: outcome.doc.to_string(),
            meta: doc_meta(&key),
            new_changes: Vec::new(),
            clock_json: None,
            heads: Vec::new(),
            state: outcome.state_changed.then_some(outcome.state),
            projection: None,
            compaction: None,
        };
        if changed {
            let Some(doc) = docs.docs.get_mut(&outcome.doc) else {
                return Err(SyncRoundError::Internal(format!(
                    "changed doc {} is not loaded",
                    outcome.doc
                )));
            };
            write.clock_json = Some(clock_json(doc)?);
            write.heads = sorted(doc.get_heads());
            let before = heads_before
                .get(&outcome.doc)
                .map_or(&[][..], Vec::as_slice);
            let doc_id = outcome.doc.as_str();
            match &key {
                DocKey::Session { .. } => {
                    let empty = HashSet::new();
                    let skip = projected_before.get(&outcome.doc).unwrap_or(&empty);
                    let view = projection::read_session(&key, doc)
                        .map_err(|e| SyncRoundError::Projection(e.to_string()))?;
                    if let Some(view) = view {
                        ctx.guard
                            .check_session(doc_id, doc, &view, before, skip)
                            .map_err(SyncRoundError::ClockAhead)?;
                        write.projection = Some(
                            projection::project_view(&key, &view, skip)
                                .map_err(|e| SyncRoundError::Projection(e.to_string()))?,
                        );
                    }
                }
                DocKey::Catalogue { .. } => ctx
                    .guard
                    .check_catalogue(doc_id, doc, before)
                    .map_err(SyncRoundError::ClockAhead)?,
                // Read-only for tills: `Server::plan` refuses a staff message carrying
                // changes, so reaching this is a bug; refuse the round rather than store it.
                DocKey::Staff { .. } => {
                    return Err(SyncRoundError::Internal(format!(
                        "read-only document {doc_id} received changes"
                    )));
                }
            }
            // Not a failure: a document the hub did not hold before this round has no
            // stored chunks to fold.
            let loaded_chunks = chunk_ids.remove(&outcome.doc).unwrap_or_default();
            if loaded_chunks.len() + 1 > COMPACT_AFTER_CHUNKS {
                write.compaction = Some((doc.save(), doc.get_heads(), loaded_chunks));
            }
            write.new_changes = outcome.applied.new_changes;
        }
        writes.push(write);
    }

    let mut statuses: BTreeMap<DocId, PeerDocStatus> = reported
        .into_iter()
        .map(|(doc, status)| {
            let clock = serde_json::to_string(&status.clock)
                .map_err(|e| SyncRoundError::Internal(format!("cannot serialise a clock: {e}")))?;
            // A pathological number of heads is not recorded rather than refusing the round.
            let till_heads = client_heads
                .get(&doc)
                .filter(|heads| heads.len() <= MAX_REPORTED_HEADS)
                .cloned();
            let row = PeerDocStatus {
                peer: peer.clone(),
                doc_id: doc.to_string(),
                clock,
                oldest_unsynced_ms: status
                    .oldest_unsynced_ms
                    .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                reported_at_ms: ctx.now_ms,
                till_heads,
            };
            Ok((doc, row))
        })
        .collect::<Result<_, SyncRoundError>>()?;
    // A till that announces exactly the hub's heads holds everything the hub holds (and
    // the hub everything it holds): record it as in sync, even on rounds without a status.
    for (id, heads) in client_heads {
        let Some(doc) = docs.docs.get_mut(&id) else {
            continue;
        };
        if sorted(doc.get_heads()) == heads {
            let row = PeerDocStatus {
                peer: peer.clone(),
                doc_id: id.to_string(),
                clock: clock_json(doc)?,
                oldest_unsynced_ms: None,
                reported_at_ms: ctx.now_ms,
                till_heads: (heads.len() <= MAX_REPORTED_HEADS).then_some(heads),
            };
            statuses.insert(id, row);
        }
    }
    let docs = docs
        .docs
        .into_iter()
        .map(|(id, doc)| LiveDoc {
            loaded: versions.remove(&id),
            id,
            doc,
        })
        .collect();
    Ok(Computed {
        docs,
        reply: response.reply,
        writes,
        statuses: statuses.into_values().collect(),
    })
}
