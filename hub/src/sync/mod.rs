//! The hub's side of sync: one round of `POST /api/v1/sync` from an authenticated till.
//!
//! A round ([`HubSync::round`]):
//! 1. `Server::plan` checks the WHOLE envelope against the till's [`TillPolicy`] (sender,
//!    access to every document, message structure, every change parsed) before anything is
//!    loaded: a forbidden document, a malformed message or a wrong sender refuses the round
//!    and nothing is applied.
//! 2. ONE database transaction: every planned document is locked in sorted order (two hubs
//!    on one PostgreSQL never deadlock, and never work from the same stale copy), loaded
//!    with the till's persisted sync state, then [`round::compute`] (on the blocking pool)
//!    applies the changes, checks authorship and the timestamps of new entries
//!    ([`clock_guard`]: too far ahead of the hub's clock refuses the round, 422, recorded as
//!    the till's last error) and builds the reply. The new change chunks,
//!    the hub's clock per document, sync states, the till's reported status, the receipt and
//!    session projections (idempotent by id) and due compactions are written, the peer's
//!    last sync recorded, and the transaction committed — only then is the reply sent.
//!
//! Submodules: [`policy`] (who may see and author what), [`projection`] (session document →
//! SQL rows), [`clock_guard`] (timestamps from the future), [`round`] (the CPU half), [`cache`] (loaded documents reused when their
//! stored rows are unchanged). The HTTP route is `crate::api::sync`; nothing here knows HTTP
//! routing.
//!
//! Documents the hub offers a till on `complete` requests: `catalogue/<store>`,
//! `staff/<store>` (read-only for the till) and the till's own session documents changed
//! within [`SESSION_RETENTION`] (7 days, the till's own retention), so a replaced till gets
//! its recent sessions back.

pub mod cache;
pub mod clock_guard;
pub mod policy;
pub mod projection;
pub mod round;

use crate::db::{Db, DbError, DbTx};
use crate::metrics::Metrics;
use automerge::ActorId;
use cache::{DocCache, DocVersion};
use clock_guard::{ClockGuard, FarAhead};
use crdt_model::DocKey;
use policy::{TillPeer, TillPolicy};
use round::{Computed, LoadedDoc, RoundContext};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use sync_engine::http_server::{AuthenticatedPeer, SyncService, SyncServiceError};
use sync_engine::{DocId, Envelope, IdError, PeerId, Server, SyncError};
use thiserror::Error;

/// The hub's peer id in every envelope it sends.
pub const HUB_PEER: &str = "hub";

/// Loaded documents kept per hub process (catalogues and open sessions of busy tills).
pub const DOC_CACHE_CAPACITY: usize = 128;

/// How long a till keeps closed sessions; the hub offers a till its sessions changed
/// within this window.
pub const SESSION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a round was refused or failed. Nothing was committed.
#[derive(Debug, Error)]
pub enum SyncRoundError {
    /// The sync engine refused the envelope (policy, format, authorship) or failed to apply it.
    #[error(transparent)]
    Sync(SyncError),
    /// The authenticated peer is not a till.
    #[error(transparent)]
    NotATill(#[from] policy::NotATill),
    /// A session document that cannot be projected (invalid session, foreign header).
    #[error("projection refused: {0}")]
    Projection(String),
    /// A new entry is stamped too far ahead of the hub's clock.
    #[error("timestamp too far ahead: {0}")]
    ClockAhead(FarAhead),
    /// A stored document does not load.
    #[error("stored document {doc} does not load: {reason}")]
    CorruptDoc {
        /// The document.
        doc: String,
        /// Automerge's error.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Anything else (a bug); the text goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl SyncRoundError {
    /// The metric label and log reason of this error.
    pub fn reason(&self) -> &'static str {
        match self {
            SyncRoundError::Sync(SyncError::Forbidden { .. }) => "forbidden",
            SyncRoundError::Sync(SyncError::UnexpectedSender { .. }) => "sender_mismatch",
            SyncRoundError::Sync(SyncError::Apply { .. }) => "apply",
            SyncRoundError::Sync(_) => "invalid_message",
            SyncRoundError::NotATill(_) => "not_a_till",
            SyncRoundError::Projection(_) => "projection",
            SyncRoundError::ClockAhead(_) => "clock_ahead",
            SyncRoundError::CorruptDoc { .. } => "corrupt_doc",
            SyncRoundError::Db(e) if e.is_client_error() => "projection",
            SyncRoundError::Db(e) if db_unavailable(e) => "unavailable",
            SyncRoundError::Db(_) => "database",
            SyncRoundError::Internal(_) => "internal",
        }
    }
}

/// Connection-level database failures: retrying later may succeed (503, not 500).
pub(crate) fn db_unavailable(error: &DbError) -> bool {
    matches!(
        error,
        DbError::Sqlx(
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed
        )
    )
}

impl From<SyncRoundError> for SyncServiceError {
    fn from(error: SyncRoundError) -> Self {
        match error {
            SyncRoundError::Sync(e) => SyncServiceError::from(e),
            SyncRoundError::Projection(reason) => SyncServiceError::Rejected(reason),
            SyncRoundError::ClockAhead(far) => SyncServiceError::Rejected(far.to_string()),
            SyncRoundError::Db(e) if e.is_client_error() => {
                SyncServiceError::Rejected(e.to_string())
            }
            SyncRoundError::Db(e) if db_unavailable(&e) => {
                SyncServiceError::Unavailable(e.to_string())
            }
            other => SyncServiceError::Internal(other.to_string()),
        }
    }
}

/// The hub's sync service: stateless, everything lives in the database.
#[derive(Debug, Clone)]
pub struct HubSync {
    db: Db,
    server: Server,
    actor: ActorId,
    metrics: Arc<Metrics>,
    cache: Arc<DocCache>,
}

impl HubSync {
    /// A service answering as peer `hub`, writing (if ever) as `actor`.
    pub fn new(db: Db, actor: ActorId, metrics: Arc<Metrics>) -> Result<HubSync, IdError> {
        Ok(HubSync {
            db,
            server: Server::new(PeerId::new(HUB_PEER)?),
            actor,
            metrics,
            cache: Arc::new(DocCache::new(DOC_CACHE_CAPACITY)),
        })
    }

    /// The hub's peer id (`hub`).
    pub fn peer(&self) -> &PeerId {
        self.server.id()
    }

    /// Serves one round from `till` (see the module doc). On error nothing was committed,
    /// and the failure is recorded as the till's last sync attempt (best effort).
    pub async fn round(
        &self,
        till: &TillPeer,
        request: Envelope,
    ) -> Result<Envelope, SyncRoundError> {
        let now = crate::db::now_ms();
        let result = self.round_inner(till, request, now).await;
        if let Err(error) = &result {
            let peer = till.peer.as_str();
            let recorded = match error {
                SyncRoundError::ClockAhead(far) => {
                    self.metrics.hlc_rejected.inc();
                    tracing::warn!(
                        %peer,
                        doc = %far.doc,
                        entry = %far.entry,
                        hlc = %far.hlc,
                        ahead_ms = far.ahead_ms,
                        "sync refused: till {peer} sent a timestamp too far ahead of the hub's clock"
                    );
                    // The whole story, so the divergence view says why the till is stuck.
                    format!("{}: {far}", error.reason())
                }
                other => other.reason().to_owned(),
            };
            if let Err(e) = record_failed_attempt(&self.db, peer, now, &recorded).await {
                tracing::warn!(%peer, error = %e, "cannot record a failed sync attempt");
            }
        }
        result
    }

    async fn round_inner(
        &self,
        till: &TillPeer,
        request: Envelope,
        now: i64,
    ) -> Result<Envelope, SyncRoundError> {
        let policy = TillPolicy::new(till.clone());
        let held = if request.complete {
            self.held_docs(till, now).await?
        } else {
            Vec::new()
        };
        let reported: Vec<(DocId, sync_engine::DocStatus)> = request
            .entries
            .iter()
            .filter_map(|e| e.status.clone().map(|s| (e.doc.clone(), s)))
            .collect();
        let server = self.server.clone();
        let peer = till.peer.clone();
        let plan_policy = policy.clone();
        let plan = blocking(move || {
            server
                .plan(&peer, &request, &plan_policy, &held)
                .map_err(SyncRoundError::Sync)
        })
        .await?;
        let ids: BTreeSet<DocId> = plan.docs_to_load().into_iter().collect();

        let mut tx = self.db.begin().await?;
        let mut loaded = Vec::with_capacity(ids.len());
        for id in ids {
            tx.lock_doc(id.as_str()).await?;
            let stored = tx.load_doc(id.as_str()).await?;
            let state = tx.sync_state(id.as_str(), till.peer.as_str()).await?;
            loaded.push(LoadedDoc { id, stored, state });
        }
        let server = self.server.clone();
        let actor = self.actor.clone();
        let cache = self.cache.clone();
        let computed: Computed = blocking(move || {
            let ctx = RoundContext {
                server: &server,
                policy: &policy,
                actor: &actor,
                now_ms: now,
                guard: ClockGuard::new(now),
                cache: &cache,
            };
            round::compute(&ctx, plan, loaded, reported)
        })
        .await?;

        let (ingested, mut stored_after) = persist(&mut tx, till, &computed, now).await?;
        tx.commit().await?;
        self.metrics.receipts_ingested.inc_by(ingested);
        tracing::debug!(
            peer = %till.peer,
            docs_written = stored_after.len(),
            receipts = ingested,
            reply_entries = computed.reply.entries.len(),
            "sync round committed"
        );
        for live in computed.docs {
            let id = live.id.as_str();
            match stored_after.remove(id).or(live.loaded) {
                Some(version) => self.cache.put(id, version, live.doc),
                None => self.cache.forget(id),
            }
        }
        Ok(computed.reply)
    }

    /// The documents offered to `till` on a complete request (see the module doc).
    async fn held_docs(&self, till: &TillPeer, now: i64) -> Result<Vec<DocId>, SyncRoundError> {
        let retention = i64::try_from(SESSION_RETENTION.as_millis()).unwrap_or(i64::MAX);
        let rows = self
            .db
            .docs_for_store(till.store.as_str(), now.saturating_sub(retention))
            .await?;
        let catalogue = DocKey::Catalogue {
            store: till.store.clone(),
        }
        .to_doc_id();
        let staff = DocKey::Staff {
            store: till.store.clone(),
        }
        .to_doc_id();
        let mut held: BTreeSet<String> = BTreeSet::from([catalogue, staff]);
        held.extend(
            rows.into_iter()
                .filter(|row| {
                    row.meta.kind == "session"
                        && row.meta.till.as_deref() == Some(till.till.as_str())
                })
                .map(|row| row.doc_id),
        );
        Ok(held
            .into_iter()
            .filter_map(|id| DocId::new(id).ok())
            .collect())
    }
}

impl SyncService for HubSync {
    async fn sync(
        &self,
        peer: AuthenticatedPeer,
        request: Envelope,
    ) -> Result<Envelope, SyncServiceError> {
        let till = TillPeer::parse(peer.peer.as_str()).map_err(SyncRoundError::from)?;
        Ok(self.round(&till, request).await?)
    }
}

/// Writes everything `computed` asks for into `tx` (the caller commits). Returns the
/// receipts newly projected and the stored version of every document appended to.
async fn persist(
    tx: &mut DbTx,
    till: &TillPeer,
    computed: &Computed,
    now: i64,
) -> Result<(u64, BTreeMap<String, DocVersion>), SyncRoundError> {
    let mut ingested = 0u64;
    let mut stored_after: BTreeMap<String, DocVersion> = BTreeMap::new();
    for write in &computed.writes {
        if !write.new_changes.is_empty() {
            let chunk_id = tx
                .append_changes(&write.doc_id, &write.meta, &write.new_changes)
                .await?;
            let loaded = computed
                .docs
                .iter()
                .find(|d| d.id.as_str() == write.doc_id)
                .and_then(|d| d.loaded.clone());
            stored_after.insert(
                write.doc_id.clone(),
                after_append(loaded, chunk_id, write.new_changes.len(), &write.compaction),
            );
            if let Some(clock) = &write.clock_json {
                tx.set_doc_clock(&write.doc_id, clock, &write.heads).await?;
            }
            if let Some(projection) = &write.projection {
                tx.upsert_session(&projection.session).await?;
                ingested += tx.insert_receipts(&projection.receipts).await?;
            }
            if let Some((snapshot, heads, chunks)) = &write.compaction {
                let mut folded = chunks.clone();
                folded.push(chunk_id);
                tx.compact(&write.doc_id, snapshot, heads, &folded).await?;
            }
        }
        if let Some(state) = &write.state {
            tx.put_sync_state(&write.doc_id, till.peer.as_str(), state)
                .await?;
        }
    }
    for status in &computed.statuses {
        tx.upsert_peer_doc_status(status).await?;
    }
    tx.record_peer_sync(till.peer.as_str(), now, None).await?;
    Ok((ingested, stored_after))
}

/// The stored version of a document after this round appended `chunk_id` (`chunk_len`
/// bytes) to what it `loaded`, and maybe compacted it.
fn after_append(
    loaded: Option<DocVersion>,
    chunk_id: i64,
    chunk_len: usize,
    compaction: &Option<(Vec<u8>, Vec<automerge::ChangeHash>, Vec<i64>)>,
) -> DocVersion {
    if let Some((snapshot, heads, _)) = compaction {
        return DocVersion {
            snapshot_heads: heads.clone(),
            chunk_ids: Vec::new(),
            len: snapshot.len(),
        };
    }
    let mut version = loaded.unwrap_or(DocVersion {
        snapshot_heads: Vec::new(),
        chunk_ids: Vec::new(),
        len: 0,
    });
    version.chunk_ids.push(chunk_id);
    version.len += chunk_len;
    version
}

/// Runs CPU-heavy work (Automerge loads and merges) on the blocking pool.
/// Records a refused round for the divergence view, in its own transaction (the round's
/// transaction was rolled back).
async fn record_failed_attempt(db: &Db, peer: &str, now: i64, reason: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    tx.record_peer_sync(peer, now, Some(reason)).await?;
    tx.commit().await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SyncRoundError> + Send + 'static,
) -> Result<T, SyncRoundError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SyncRoundError::Internal(format!("sync task failed: {e}")))?
}
