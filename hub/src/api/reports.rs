//! Reports: `GET /api/v1/stores/{store}/summary` and `GET /api/v1/divergence`.
//!
//! Both read the database only (projections, reported statuses, the hub's clock per
//! document), so they answer from any hub process and never load the receipts' documents.
//! Hub reports are eventually consistent: the divergence view says what each till reported
//! and when, and what the hub lacks relative to that.

use crate::api::auth::CurrentUser;
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::db::ids::validate_store_id;
use crate::db::{PeerDocReport, TillSummary};
use crate::sync::policy::TillPeer;
use crate::sync::SESSION_RETENTION;
use automerge::ChangeHash;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use crdt_model::Kopecks;
use serde::Serialize;
use std::collections::BTreeMap;
use sync_engine::{DocDivergence, DocId, DocStatus, MissingRange, VersionVector};

/// The summary of one store.
#[derive(Debug, Serialize)]
pub struct SummaryResponse {
    /// Store id.
    pub store: String,
    /// Number of receipts (refunds included).
    pub receipts: i64,
    /// Signed total, kopecks.
    pub total: Kopecks,
    /// Per till.
    pub tills: BTreeMap<String, TillSummary>,
    /// Signed total per payment method (`cash` and `card` always present).
    pub payments: BTreeMap<String, Kopecks>,
}

/// `GET /api/v1/stores/{store}/summary`.
pub async fn store_summary(
    State(app): State<AppState>,
    Path(store): Path<String>,
) -> Result<Json<SummaryResponse>, ApiError> {
    validate_store_id(&store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let summary = app.db.store_summary(&store).await?;
    let mut payments = summary.payments;
    for method in ["cash", "card"] {
        payments.entry(method.to_owned()).or_insert(Kopecks::ZERO);
    }
    Ok(Json(SummaryResponse {
        store,
        receipts: summary.receipts,
        total: summary.total,
        tills: summary.tills,
        payments,
    }))
}

/// One document of one till in the divergence view.
#[derive(Debug, Serialize)]
pub struct DocView {
    /// Document id.
    pub doc: String,
    /// Changes the till reported that the hub does not hold.
    pub hub_lacks: u64,
    /// Changes the hub holds that the till did not report.
    pub till_lacks: u64,
    /// Which ones, per actor.
    pub hub_lacks_ranges: Vec<MissingRange>,
    /// Which ones, per actor.
    pub till_lacks_ranges: Vec<MissingRange>,
    /// Age of the oldest unsynced change the till reported, while anything is missing.
    pub oldest_unsynced_age_ms: Option<u64>,
    /// When the till's status arrived (hub clock, Unix ms).
    pub reported_at_ms: i64,
    /// The hub's heads of the document now, hex, sorted (empty when the hub lacks it).
    pub hub_heads: Vec<String>,
    /// The heads the till announced with that status, hex, sorted; `null` when its round
    /// carried no sync message for the document.
    pub till_heads: Option<Vec<String>>,
}

/// One till in the divergence view.
#[derive(Debug, Serialize)]
pub struct TillView {
    /// `till:<store>/<till>`.
    pub peer: String,
    /// Store.
    pub store: String,
    /// Till.
    pub till: String,
    /// Last successful sync, Unix ms.
    pub last_sync_ms: Option<i64>,
    /// Last attempt, Unix ms.
    pub last_attempt_ms: Option<i64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Documents the till reported within the retention window.
    pub docs: Vec<DocView>,
}

/// The divergence view.
#[derive(Debug, Serialize)]
pub struct DivergenceResponse {
    /// When the view was made (hub clock, Unix ms).
    pub generated_at_ms: i64,
    /// Per till, ordered by peer id.
    pub tills: Vec<TillView>,
}

/// `GET /api/v1/divergence`: per till and document, what each side lacks (store-scoped
/// users see their store only).
pub async fn divergence(
    State(app): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Result<Json<DivergenceResponse>, ApiError> {
    let now = crate::db::now_ms();
    let retention = i64::try_from(SESSION_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let reports = app
        .db
        .peer_doc_reports(now.saturating_sub(retention))
        .await?;
    let syncs = app.db.peer_syncs().await?;
    let mut tills: BTreeMap<String, TillView> = BTreeMap::new();
    for sync in syncs {
        if let Some(view) = till_view(&mut tills, &user, &sync.peer) {
            view.last_sync_ms = sync.last_sync_at_ms;
            view.last_attempt_ms = Some(sync.last_attempt_at_ms);
            view.last_error = sync.last_error;
        }
    }
    for report in reports {
        let peer = report.status.peer.clone();
        let Some(view) = till_view(&mut tills, &user, &peer) else {
            continue;
        };
        view.docs.push(doc_view(&app, report, now).await?);
    }
    Ok(Json(DivergenceResponse {
        generated_at_ms: now,
        tills: tills.into_values().collect(),
    }))
}

/// The entry of `peer` in `tills`, created on first use; `None` for peers that are not
/// tills or whose store the user may not see.
fn till_view<'a>(
    tills: &'a mut BTreeMap<String, TillView>,
    user: &CurrentUser,
    peer: &str,
) -> Option<&'a mut TillView> {
    let till = TillPeer::parse(peer).ok()?;
    if !user.may_see_store(till.store.as_str()) {
        return None;
    }
    Some(tills.entry(peer.to_owned()).or_insert_with(|| TillView {
        peer: peer.to_owned(),
        store: till.store.to_string(),
        till: till.till.to_string(),
        last_sync_ms: None,
        last_attempt_ms: None,
        last_error: None,
        docs: Vec::new(),
    }))
}

async fn doc_view(app: &AppState, report: PeerDocReport, now: i64) -> Result<DocView, ApiError> {
    let status = &report.status;
    let doc = DocId::new(status.doc_id.as_str())
        .map_err(|e| ApiError::internal(format!("stored doc id {}: {e}", status.doc_id)))?;
    let till_clock: VersionVector = serde_json::from_str(&status.clock)
        .map_err(|e| ApiError::internal(format!("stored clock of {}: {e}", status.doc_id)))?;
    let (hub_clock, hub_heads) = hub_state(app, &report).await?;
    let oldest = status
        .oldest_unsynced_ms
        .and_then(|ms| u64::try_from(ms).ok());
    let divergence = DocDivergence::compute(
        doc,
        Vec::new(),
        &DocStatus {
            clock: hub_clock,
            oldest_unsynced_ms: None,
        },
        None,
        &DocStatus {
            clock: till_clock,
            oldest_unsynced_ms: oldest,
        },
    );
    Ok(DocView {
        doc: status.doc_id.clone(),
        hub_lacks: divergence.local_lacks_changes(),
        till_lacks: divergence.remote_lacks_changes(),
        oldest_unsynced_age_ms: divergence.oldest_unsynced_age_ms(u64::try_from(now).unwrap_or(0)),
        hub_lacks_ranges: divergence.local_lacks,
        till_lacks_ranges: divergence.remote_lacks,
        reported_at_ms: status.reported_at_ms,
        hub_heads: hex_heads(hub_heads),
        till_heads: status.till_heads.clone().map(hex_heads),
    })
}

/// Heads as sorted hex strings.
fn hex_heads(mut heads: Vec<ChangeHash>) -> Vec<String> {
    heads.sort();
    heads.iter().map(ToString::to_string).collect()
}

/// The hub's clock and heads of the reported document: the recorded ones, or computed from
/// the document for rows written before they were recorded; empty when the hub lacks it.
async fn hub_state(
    app: &AppState,
    report: &PeerDocReport,
) -> Result<(VersionVector, Vec<ChangeHash>), ApiError> {
    if !report.hub_has_doc {
        return Ok((VersionVector::new(), Vec::new()));
    }
    if let (Some(json), Some(heads)) = (&report.hub_clock, &report.hub_heads) {
        let clock = serde_json::from_str(json).map_err(|e| {
            ApiError::internal(format!("hub clock of {}: {e}", report.status.doc_id))
        })?;
        return Ok((clock, heads.clone()));
    }
    let Some(stored) = app.db.load_doc(&report.status.doc_id).await? else {
        return Ok((VersionVector::new(), Vec::new()));
    };
    let doc_id = report.status.doc_id.clone();
    tokio::task::spawn_blocking(move || {
        automerge::AutoCommit::load(&stored.bytes)
            .map(|mut doc| (VersionVector::from_doc(&mut doc), doc.get_heads()))
            .map_err(|e| ApiError::internal(format!("stored doc {doc_id} does not load: {e}")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("clock task failed: {e}")))?
}
