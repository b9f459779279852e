//! Per-peer sync bookkeeping: persisted Automerge sync states (`State::encode()` per
//! document and peer, so the stateless hub resumes a peer's sync from any process), what
//! each till reports about its own documents (clock, oldest unsynced change) and the outcome
//! of each peer's last sync. Together they feed the divergence view.

use crate::db::docs::MAX_CHUNK_BYTES;
use crate::db::ids::{validate_doc_id, validate_peer};
use crate::db::{now_ms, Db, DbError, DbTx};
use automerge::ChangeHash;
use serde::Serialize;

/// Largest clock JSON a till may report for one document.
pub const MAX_CLOCK_JSON_BYTES: usize = 64 * 1024;
/// `last_error` texts are cut to this many characters.
const MAX_ERROR_CHARS: usize = 1000;
/// Most heads recorded for one document of a till (a document normally has one or two;
/// the sync layer records nothing rather than refuse a round over more).
pub const MAX_REPORTED_HEADS: usize = 1024;

/// What a till last reported about one of its documents (for the divergence view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerDocStatus {
    /// The reporting peer (till).
    pub peer: String,
    /// The document.
    pub doc_id: String,
    /// The peer's clock for the document as JSON (e.g. `{actor: max seq}` or heads).
    pub clock: String,
    /// Age anchor of the oldest change the peer holds that the hub has not acknowledged.
    pub oldest_unsynced_ms: Option<i64>,
    /// When the report arrived.
    pub reported_at_ms: i64,
    /// The heads the peer announced for the document in the same round (from its sync
    /// message), sorted; `None` when that round carried no sync message for it.
    pub till_heads: Option<Vec<ChangeHash>>,
}

/// Last sync outcome per peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerSync {
    /// The peer (till).
    pub peer: String,
    /// Last successful sync, if ever.
    pub last_sync_at_ms: Option<i64>,
    /// Last attempt, successful or not.
    pub last_attempt_at_ms: i64,
    /// Error of the last attempt; `None` when it succeeded.
    pub last_error: Option<String>,
}

fn validate_clock(status: &PeerDocStatus) -> Result<(), DbError> {
    validate_peer(&status.peer)?;
    validate_doc_id(&status.doc_id)?;
    if status.clock.len() > MAX_CLOCK_JSON_BYTES {
        return Err(DbError::invalid("clock", "larger than 64 KiB"));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&status.clock)
        .map_err(|e| DbError::invalid("clock", format!("not JSON: {e}")))?;
    if status
        .till_heads
        .as_ref()
        .is_some_and(|h| h.len() > MAX_REPORTED_HEADS)
    {
        return Err(DbError::invalid(
            "till_heads",
            format!("more than {MAX_REPORTED_HEADS}"),
        ));
    }
    Ok(())
}

/// Heads as stored: a JSON array of hex hashes.
fn heads_json(heads: Option<&[ChangeHash]>) -> Result<Option<String>, DbError> {
    heads
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| DbError::invalid("heads", e.to_string()))
}

/// Parses stored heads (`what` names the column for the error).
fn parse_heads(
    what: &'static str,
    json: Option<String>,
) -> Result<Option<Vec<ChangeHash>>, DbError> {
    json.map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(|e| DbError::corrupt(what, e.to_string()))
}

impl DbTx {
    /// The persisted Automerge sync state (`State::encode()`) for `(doc_id, peer)`.
    pub async fn sync_state(
        &mut self,
        doc_id: &str,
        peer: &str,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let state = on_tx!(self, c => {
            sqlx::query_scalar("SELECT state FROM sync_states WHERE doc_id = $1 AND peer = $2")
                .bind(doc_id)
                .bind(peer)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(state)
    }

    /// Stores the sync state for `(doc_id, peer)`, replacing the previous one.
    pub async fn put_sync_state(
        &mut self,
        doc_id: &str,
        peer: &str,
        state: &[u8],
    ) -> Result<(), DbError> {
        validate_doc_id(doc_id)?;
        validate_peer(peer)?;
        if state.len() > MAX_CHUNK_BYTES {
            return Err(DbError::invalid("sync state", "larger than 32 MiB"));
        }
        let now = now_ms();
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO sync_states (doc_id, peer, state, updated_at_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (doc_id, peer) DO UPDATE SET state = excluded.state,
                   updated_at_ms = excluded.updated_at_ms",
            )
            .bind(doc_id)
            .bind(peer)
            .bind(state)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records (replaces) what `status.peer` reported about `status.doc_id`, heads
    /// included: a report without heads clears the earlier ones, which described an older
    /// state of the till's document.
    pub async fn upsert_peer_doc_status(&mut self, status: &PeerDocStatus) -> Result<(), DbError> {
        validate_clock(status)?;
        let till_heads = heads_json(status.till_heads.as_deref())?;
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO peer_doc_status
                   (peer, doc_id, clock, oldest_unsynced_ms, reported_at_ms, till_heads)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (peer, doc_id) DO UPDATE SET clock = excluded.clock,
                   oldest_unsynced_ms = excluded.oldest_unsynced_ms,
                   reported_at_ms = excluded.reported_at_ms,
                   till_heads = excluded.till_heads",
            )
            .bind(&status.peer)
            .bind(&status.doc_id)
            .bind(&status.clock)
            .bind(status.oldest_unsynced_ms)
            .bind(status.reported_at_ms)
            .bind(&till_heads)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records a sync attempt by `peer` at `at_ms`: success (`error == None`) moves
    /// `last_sync_at_ms`; a failure keeps it and stores the error (cut to 1000 characters).
    pub async fn record_peer_sync(
        &mut self,
        peer: &str,
        at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        validate_peer(peer)?;
        let last_sync = if error.is_none() { Some(at_ms) } else { None };
        let error: Option<String> = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO peer_sync (peer, last_sync_at_ms, last_attempt_at_ms, last_error)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (peer) DO UPDATE SET
                   last_sync_at_ms = COALESCE(excluded.last_sync_at_ms, peer_sync.last_sync_at_ms),
                   last_attempt_at_ms = excluded.last_attempt_at_ms,
                   last_error = excluded.last_error",
            )
            .bind(peer)
            .bind(last_sync)
            .bind(at_ms)
            .bind(&error)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }
}

impl Db {
    /// The persisted sync state for `(doc_id, peer)`.
    pub async fn sync_state(&self, doc_id: &str, peer: &str) -> Result<Option<Vec<u8>>, DbError> {
        let state = on_reader!(self, p => {
            sqlx::query_scalar("SELECT state FROM sync_states WHERE doc_id = $1 AND peer = $2")
                .bind(doc_id)
                .bind(peer)
                .fetch_optional(p)
                .await?
        });
        Ok(state)
    }

    /// Every `(doc_id, state)` stored for `peer`.
    pub async fn sync_states_for_peer(
        &self,
        peer: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let states = on_reader!(self, p => {
            sqlx::query_as("SELECT doc_id, state FROM sync_states WHERE peer = $1 ORDER BY doc_id")
                .bind(peer)
                .fetch_all(p)
                .await?
        });
        Ok(states)
    }

    /// Reported peer document statuses, of one peer or of all, ordered by (peer, doc_id).
    pub async fn peer_doc_statuses(
        &self,
        peer: Option<&str>,
    ) -> Result<Vec<PeerDocStatus>, DbError> {
        type Row = (String, String, String, Option<i64>, i64, Option<String>);
        let rows: Vec<Row> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT peer, doc_id, clock, oldest_unsynced_ms, reported_at_ms, till_heads
                 FROM peer_doc_status WHERE $1 IS NULL OR peer = $1 ORDER BY peer, doc_id",
            )
            .bind(peer)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(
                |(peer, doc_id, clock, oldest_unsynced_ms, reported_at_ms, till_heads)| {
                    Ok(PeerDocStatus {
                        peer,
                        doc_id,
                        clock,
                        oldest_unsynced_ms,
                        reported_at_ms,
                        till_heads: parse_heads("till_heads", till_heads)?,
                    })
                },
            )
            .collect()
    }

    /// Last sync outcome of every peer, ordered by peer.
    pub async fn peer_syncs(&self) -> Result<Vec<PeerSync>, DbError> {
        let rows: Vec<(String, Option<i64>, i64, Option<String>)> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT peer, last_sync_at_ms, last_attempt_at_ms, last_error FROM peer_sync ORDER BY peer",
            )
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(peer, last_sync_at_ms, last_attempt_at_ms, last_error)| PeerSync {
                    peer,
                    last_sync_at_ms,
                    last_attempt_at_ms,
                    last_error,
                },
            )
            .collect())
    }
}

/// A till's report on one document joined with the hub's own clock of it: the input of
/// the divergence view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDocReport {
    /// What the till reported.
    pub status: PeerDocStatus,
    /// Whether the hub holds the document at all.
    pub hub_has_doc: bool,
    /// The hub's version vector JSON, when recorded (`None` for documents written before
    /// clocks were kept: load the document to compute it).
    pub hub_clock: Option<String>,
    /// The hub's heads of the document, when recorded (`None` for documents written before
    /// heads were kept: load the document to compute them).
    pub hub_heads: Option<Vec<ChangeHash>>,
}

impl Db {
    /// Every peer document status reported at or after `since_ms`, with the hub's clock of
    /// the same document, ordered by (peer, doc_id).
    pub async fn peer_doc_reports(&self, since_ms: i64) -> Result<Vec<PeerDocReport>, DbError> {
        type Row = (
            String,
            String,
            String,
            Option<i64>,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = on_reader!(self, p => {
            sqlx::query_as(
                "SELECT s.peer, s.doc_id, s.clock, s.oldest_unsynced_ms, s.reported_at_ms,
                        s.till_heads, d.doc_id, d.clock, d.heads
                 FROM peer_doc_status s LEFT JOIN docs d ON d.doc_id = s.doc_id
                 WHERE s.reported_at_ms >= $1 ORDER BY s.peer, s.doc_id",
            )
            .bind(since_ms)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(
                |(
                    peer,
                    doc_id,
                    clock,
                    oldest_unsynced_ms,
                    reported_at_ms,
                    till_heads,
                    hub_doc,
                    hub_clock,
                    hub_heads,
                )| {
                    Ok(PeerDocReport {
                        status: PeerDocStatus {
                            peer,
                            doc_id,
                            clock,
                            oldest_unsynced_ms,
                            reported_at_ms,
                            till_heads: parse_heads("till_heads", till_heads)?,
                        },
                        hub_has_doc: hub_doc.is_some(),
                        hub_clock,
                        hub_heads: parse_heads("docs.heads", hub_heads)?,
                    })
                },
            )
            .collect()
    }
}
