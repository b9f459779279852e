//! Handlers of the support routes: buffer status, health, metrics and the forced sync.
//!
//! Health's `clock` component is `drifting` when the HLC runs [`DRIFT_ALARM_SECONDS`] ahead of
//! the wall clock, and `degraded` once a received document carried a timestamp too far ahead
//! for the clock to adopt (counted in `kkt_hlc_remote_rejected_total`): it shows the count and
//! the last offending value and document, until a restart re-checks the documents.
//!
//! The "buffer" is the fiscal one on a till with a register: receipts the OFD has not
//! acknowledged, with the breaker's state and the dead-letter queue. On a till without a register
//! it is the set of receipts the hub does not hold yet (`current_queued` counts them,
//! `oldest_unacknowledged_age_seconds` is the age of the oldest); the breaker then reads
//! `CLOSED` and the dead-letter queue is empty.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use till_api::health::{
    BufferHealth, ClockHealth, FiscalHealth, Health, HealthComponents, HubLinkHealth,
    RejectedClock, SessionHealth, StorageHealth,
};
use till_api::status::{BufferStages, BufferStatus, ForceSyncAnswer};

use super::error::ApiError;
use super::fiscal;
use super::AppState;
use crate::link::LinkState;
use crate::node::{percent, ClockRejections};
use crate::store::OutboxStats;
use crate::time::{now_ms, rfc3339_ms};
use ::fiscal::pipeline::Status;

/// Health turns `degraded` when the HLC runs this far ahead of the wall clock.
pub const DRIFT_ALARM_SECONDS: f64 = 60.0;
/// Health turns `degraded` at this buffer fill (brief §5: alert at 80 %).
pub const BUFFER_ALARM_PERCENT: f64 = 80.0;

/// What the node reports for status and health, read in one lock.
#[derive(Debug)]
struct NodeFacts {
    queued: usize,
    oldest_receipt_ms: Option<u64>,
    write_block: Option<String>,
    drift_ms: i64,
    schema_version: i64,
    docs: usize,
    session_open: bool,
    clock_rejections: ClockRejections,
    /// The fiscal buffer, when the till has a register.
    outbox: Option<OutboxStats>,
    session_opened_ms: Option<u64>,
}

impl NodeFacts {
    /// The buffer: receipts the OFD has not acknowledged when fiscal, else not on the hub.
    fn buffer(&self) -> (usize, Option<u64>) {
        match &self.outbox {
            Some(stats) => (
                usize::try_from(stats.unacknowledged()).unwrap_or(usize::MAX),
                stats
                    .oldest_unacknowledged_created_at_ms
                    .and_then(|ms| u64::try_from(ms).ok()),
            ),
            None => (self.queued, self.oldest_receipt_ms),
        }
    }
}

/// The fiscal view shared by status, health and metrics.
struct FiscalFacts {
    status: Option<Status>,
    oldest_age: u64,
    shift_age: u64,
    dlq: u64,
}

fn fiscal_facts(state: &AppState, facts: &NodeFacts, now: u64) -> FiscalFacts {
    let status = state.fiscal().map(|link| link.handle.status());
    let (_, oldest) = facts.buffer();
    let oldest_age = oldest.map_or(0, |oldest| now.saturating_sub(oldest) / 1000);
    let shift_age = facts
        .session_opened_ms
        .map_or(0, |opened| now.saturating_sub(opened) / 1000);
    let dlq = facts.outbox.as_ref().map_or(0, |stats| stats.dead_letter);
    fiscal::update_metrics(
        state.metrics(),
        status.as_ref(),
        facts.outbox.as_ref(),
        state.buffer_capacity(),
        oldest_age,
        shift_age,
    );
    FiscalFacts {
        status,
        oldest_age,
        shift_age,
        dlq,
    }
}

fn alert_level(percent_full: f64) -> &'static str {
    if percent_full >= 100.0 {
        "full"
    } else if percent_full >= 90.0 {
        "critical"
    } else if percent_full >= BUFFER_ALARM_PERCENT {
        "warning"
    } else {
        "none"
    }
}

async fn node_facts(state: &AppState) -> Result<NodeFacts, ApiError> {
    let facts = state
        .node()
        .call(|node| {
            node.refresh_gauges();
            let session_opened_ms = node.shifts().opened_ms();
            let outbox = {
                let fiscal = node.fiscal();
                if fiscal.enabled() {
                    fiscal.outbox_stats().ok()
                } else {
                    None
                }
            };
            let core = node.core();
            let unsynced = core.replica().unsynced_total();
            NodeFacts {
                queued: unsynced.receipts,
                oldest_receipt_ms: unsynced.oldest_receipt_ms,
                write_block: core.write_block(),
                drift_ms: core.hlc_drift_ms(),
                schema_version: core.store().schema_version(),
                docs: core.replica().ids().count(),
                session_open: core.open_shift().is_some(),
                clock_rejections: core.clock_rejections().clone(),
                outbox,
                session_opened_ms,
            }
        })
        .await?;
    Ok(facts)
}

/// `GET /v1/kkt/buffer/status`.
pub async fn buffer_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let facts = node_facts(&state).await?;
    let link = state.syncer().link();
    let now = now_ms();
    let fiscal_view = fiscal_facts(&state, &facts, now);
    let (queued, _) = facts.buffer();
    let percent_full = percent(queued, state.buffer_capacity());
    let breaker = fiscal_view.status.as_ref().and_then(|s| s.breaker);
    let status = BufferStatus {
        total_capacity: state.buffer_capacity(),
        current_queued: u64::try_from(queued).unwrap_or(u64::MAX),
        percent_full,
        alert: alert_level(percent_full).to_owned(),
        network_status: link.state.as_str().to_owned(),
        circuit_state: breaker
            .map_or("CLOSED", |b| fiscal::breaker_name(b.state))
            .to_owned(),
        last_sync: link.last_sync_ms.map(rfc3339_ms),
        last_sync_ms: link.last_sync_ms,
        oldest_unacknowledged_age_seconds: fiscal_view.oldest_age,
        oldest_unacknowledged_limit_seconds: fiscal::OFD_LIMIT_SECONDS,
        shift_age_seconds: fiscal_view.shift_age,
        shift_limit_seconds: fiscal::SHIFT_LIMIT_SECONDS,
        dlq_size: fiscal_view.dlq,
        unsynced_receipts: u64::try_from(facts.queued).unwrap_or(u64::MAX),
        sync_running: state.syncer().is_running(),
        stages: facts.outbox.as_ref().map(|stats| BufferStages {
            acknowledged: stats.acknowledged,
            dead_letter: stats.dead_letter,
            fiscalised: stats.fiscalised,
            queued: stats.queued,
            register_intent: stats.register_intent,
        }),
        register: fiscal::register_view(fiscal_view.status.as_ref()),
    };
    Ok(Json(status).into_response())
}

/// `GET /v1/health`: 200 when healthy or degraded, 503 when unhealthy.
pub async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let facts = node_facts(&state).await?;
    let link = state.syncer().link();
    let drift_seconds = facts.drift_ms as f64 / 1000.0;
    let fiscal_view = fiscal_facts(&state, &facts, now_ms());
    let (queued, _) = facts.buffer();
    let percent_full = percent(queued, state.buffer_capacity());
    let breaker = fiscal_view.status.as_ref().and_then(|s| s.breaker);
    let breaker_ok = breaker.is_none_or(|b| b.state == ::fiscal::breaker::BreakerState::Closed);
    let register_ok = fiscal_view
        .status
        .as_ref()
        .is_none_or(|s| s.register_state == "ok");
    let legal = fiscal::legal_status(fiscal_view.oldest_age, fiscal_view.shift_age);
    let storage_ok = facts.write_block.is_none();
    let link_ok = link.state == LinkState::Online;
    let drift_ok = drift_seconds.abs() < DRIFT_ALARM_SECONDS;
    let rejections = &facts.clock_rejections;
    let clock_ok = drift_ok && rejections.count == 0;
    let buffer_ok = percent_full < BUFFER_ALARM_PERCENT;
    let status = if !storage_ok {
        "unhealthy"
    } else if link_ok && clock_ok && buffer_ok && breaker_ok && register_ok && legal == "ok" {
        "healthy"
    } else {
        "degraded"
    };
    let storage = if storage_ok {
        StorageHealth {
            documents: Some(u64::try_from(facts.docs).unwrap_or(u64::MAX)),
            message: None,
            schema_version: facts.schema_version,
            status: "ok".to_owned(),
        }
    } else {
        // The failure's text stays in the log; the body only says what to do.
        StorageHealth {
            documents: None,
            message: Some(
                "writes stopped after a storage failure; sales are refused; restart after fixing the disk"
                    .to_owned(),
            ),
            schema_version: facts.schema_version,
            status: "failed".to_owned(),
        }
    };
    let clock_status = if !drift_ok {
        "drifting"
    } else if clock_ok {
        "ok"
    } else {
        "degraded"
    };
    let body = Health {
        components: HealthComponents {
            buffer: BufferHealth {
                alert: alert_level(percent_full).to_owned(),
                current_queued: u64::try_from(queued).unwrap_or(u64::MAX),
                percent_full,
                status: if buffer_ok { "ok" } else { "filling" }.to_owned(),
                total_capacity: state.buffer_capacity(),
            },
            circuit_breaker: fiscal::breaker_health(breaker),
            clock: ClockHealth {
                hlc_drift_seconds: drift_seconds,
                last_rejected: rejections.last.as_ref().map(|last| RejectedClock {
                    at: rfc3339_ms(last.at_ms),
                    doc: last.doc.clone(),
                    hlc: last.hlc.clone(),
                    message: "a document from the hub carries a timestamp too far ahead of this \
                              till's clock; check the clocks of the hub and of the till that wrote it"
                        .to_owned(),
                }),
                remote_rejected: rejections.count,
                status: clock_status.to_owned(),
            },
            fiscal: FiscalHealth {
                dlq_size: fiscal_view.dlq,
                oldest_unacknowledged_age_seconds: fiscal_view.oldest_age,
                oldest_unacknowledged_limit_seconds: fiscal::OFD_LIMIT_SECONDS,
                shift_age_seconds: fiscal_view.shift_age,
                shift_limit_seconds: fiscal::SHIFT_LIMIT_SECONDS,
                status: legal.to_owned(),
            },
            hub_link: HubLinkHealth {
                consecutive_failures: link.consecutive_failures,
                last_attempt_ms: link.last_attempt_ms,
                last_error: link.last_error.clone(),
                last_sync: link.last_sync_ms.map(rfc3339_ms),
                last_sync_ms: link.last_sync_ms,
                oversized_docs: state
                    .syncer()
                    .oversized_docs()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                status: link.state.as_str().to_owned(),
            },
            register: fiscal::register_view(fiscal_view.status.as_ref()),
            session: SessionHealth {
                open: facts.session_open,
            },
            storage,
        },
        status: status.to_owned(),
    };
    let code = if storage_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let facts = node_facts(&state).await?;
    fiscal_facts(&state, &facts, now_ms());
    let text = state
        .metrics()
        .render()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// `POST /v1/kkt/buffer/sync?force=true` (admin): 202 and a sync starts now, or 409 while one
/// runs. `force` is accepted for the seeds' runbooks; the sync always runs.
pub async fn force_sync(
    State(state): State<AppState>,
    RawQuery(_query): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(link) = state.fiscal() {
        // The emergency drain: forget the OFD retry timers (the breaker keeps its own).
        let _ = link.handle.send(::fiscal::pipeline::Command::DrainNow);
    }
    if state.syncer().try_start() {
        tracing::info!("sync forced by an admin");
        let body = ForceSyncAnswer {
            message: "A sync with the hub has started.".to_owned(),
            status: "started".to_owned(),
        };
        Ok((StatusCode::ACCEPTED, Json(body)).into_response())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "sync_in_progress",
            "A sync with the hub is already running; try again when it ends.",
        ))
    }
}
