//! Fiscal routes and the fiscal parts of status and health: the breaker (state, failures,
//! next attempt), the register (reachable, paper, shift), the legal clocks (oldest
//! unacknowledged receipt against 30 days, the open shift against 24 h), the pipeline's log,
//! the dead-letter queue, the X report and the breaker reset.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fiscal::breaker::{BreakerSnapshot, BreakerState};
use fiscal::pipeline::{Command, CommandError, Status};
use serde::Deserialize;
use till_api::health::BreakerHealth;
use till_api::status::{
    BreakerResetAnswer, DeadLetter, DeadLetters, LogEntries, LogEntry, RegisterDetails,
    RegisterView, RequeueAnswer, XReportAnswer,
};

use super::error::ApiError;
use super::AppState;
use crate::metrics::{FiscalMetrics, Metrics};
use crate::store::{LogLevel, OutboxStats};
use crate::time::{now_ms, rfc3339_ms};

/// The FN blocks after 30 days without an OFD acknowledgement.
pub const OFD_LIMIT_SECONDS: u64 = 30 * 86_400;
/// Warn this long before the 30-day limit bites.
pub const OFD_WARNING_SECONDS: u64 = 25 * 86_400;
/// A shift may stay open 24 h.
pub const SHIFT_LIMIT_SECONDS: u64 = 86_400;
/// Warn an hour before the shift limit.
pub const SHIFT_WARNING_SECONDS: u64 = 23 * 3600;

/// `CLOSED`, `OPEN` or `HALF_OPEN`.
pub fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "CLOSED",
        BreakerState::Open => "OPEN",
        BreakerState::HalfOpen => "HALF_OPEN",
    }
}

fn breaker_number(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// The breaker as health reports it.
pub fn breaker_health(snapshot: Option<BreakerSnapshot>) -> BreakerHealth {
    let Some(snapshot) = snapshot else {
        return BreakerHealth {
            configured: false,
            failure_count: 0,
            last_failure_time: None,
            next_attempt_time: None,
            opens_total: 0,
            state: "CLOSED".to_owned(),
            status: "ok".to_owned(),
        };
    };
    let status = if snapshot.state == BreakerState::Closed {
        "ok"
    } else {
        "degraded"
    };
    BreakerHealth {
        configured: true,
        failure_count: snapshot.failure_count,
        last_failure_time: snapshot.last_failure_time_ms.map(rfc3339_ms),
        next_attempt_time: snapshot.next_attempt_time_ms.map(rfc3339_ms),
        opens_total: snapshot.opens_total,
        state: breaker_name(snapshot.state).to_owned(),
        status: status.to_owned(),
    }
}

/// The register as status and health report it.
pub fn register_view(status: Option<&Status>) -> RegisterView {
    let Some(status) = status else {
        return RegisterView {
            details: None,
            status: "not_configured".to_owned(),
        };
    };
    let shift = status.register_status.as_ref().map(|s| match s.shift {
        fiscal::register::ShiftState::Closed => "closed",
        fiscal::register::ShiftState::Open => "open",
        fiscal::register::ShiftState::Expired => "expired",
    });
    RegisterView {
        details: Some(RegisterDetails {
            fn_number: status.register_status.as_ref().map(|s| s.fn_number.clone()),
            last_error: status.register_error.clone(),
            ofd_blocked_fd: status.ofd_blocked_fd,
            ofd_error: status.ofd_error.clone(),
            paper_out: status.register_status.as_ref().is_some_and(|s| s.paper_out),
            shift: shift.map(str::to_owned),
        }),
        status: status.register_state.to_owned(),
    }
}

/// `ok`, `warning` or `critical` for the two legal clocks.
pub fn legal_status(oldest_age: u64, shift_age: u64) -> &'static str {
    if oldest_age >= OFD_LIMIT_SECONDS || shift_age >= SHIFT_LIMIT_SECONDS {
        "critical"
    } else if oldest_age >= OFD_WARNING_SECONDS || shift_age >= SHIFT_WARNING_SECONDS {
        "warning"
    } else {
        "ok"
    }
}

/// Sets the fiscal metrics from the pipeline status and the outbox counts.
pub fn update_metrics(
    metrics: &Metrics,
    status: Option<&Status>,
    stats: Option<&OutboxStats>,
    capacity: u32,
    oldest_age: u64,
    shift_age: u64,
) {
    let fiscal = &metrics.fiscal;
    fiscal.buffer_capacity.set(i64::from(capacity));
    fiscal
        .oldest_unacknowledged_age_seconds
        .set(oldest_age as f64);
    fiscal.shift_age_seconds.set(shift_age as f64);
    if let Some(stats) = stats {
        fiscal
            .dlq_size
            .set(i64::try_from(stats.dead_letter).unwrap_or(i64::MAX));
    }
    if let Some(status) = status {
        fiscal.register_up.set(i64::from(status.register_up));
        FiscalMetrics::catch_up(&fiscal.fiscalised_total, status.fiscalised_total);
        FiscalMetrics::catch_up(&fiscal.ofd_acknowledged_total, status.acknowledged_total);
        FiscalMetrics::catch_up(&fiscal.ofd_failures_total, status.ofd_failures_total);
        if let Some(breaker) = status.breaker {
            fiscal
                .circuit_breaker_state
                .set(breaker_number(breaker.state));
            FiscalMetrics::catch_up(&fiscal.circuit_breaker_opens_total, breaker.opens_total);
        }
    }
}

fn no_register() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no_register",
        "This till runs without a register (--register); there is no fiscal pipeline.",
    )
}

fn command_error(error: CommandError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "register_unavailable",
        format!("Касса (ККТ) не ответила / the register did not answer: {error}"),
    )
}

/// `POST /v1/kkt/circuit_breaker/reset` (admin).
pub async fn reset_breaker(State(state): State<AppState>) -> Result<Response, ApiError> {
    let link = state.fiscal().ok_or_else(no_register)?;
    link.handle
        .send(Command::ResetBreaker)
        .map_err(command_error)?;
    tracing::info!("OFD circuit breaker reset by an admin");
    Ok(Json(BreakerResetAnswer {
        message: "The breaker is closed; the OFD is retried now.".to_owned(),
        state: "CLOSED".to_owned(),
    })
    .into_response())
}

/// `POST /v1/session/x_report`: the register prints an X report.
pub async fn x_report(State(state): State<AppState>) -> Result<Response, ApiError> {
    let link = state.fiscal().ok_or_else(no_register)?;
    link.handle.x_report().await.map_err(command_error)?;
    Ok(Json(XReportAnswer {
        status: "printed".to_owned(),
    })
    .into_response())
}

/// Query of `GET /v1/kkt/buffer/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    level: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/kkt/buffer/logs?level=ERROR&limit=10`: newest first.
pub async fn logs(
    State(state): State<AppState>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|error| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", error.body_text())
    })?;
    let level = match query.level.as_deref() {
        None => LogLevel::Info,
        Some(text) => LogLevel::parse(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("level {text:?} is not INFO, WARN or ERROR"),
            )
            .with_field("level")
        })?,
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit {limit} is outside 1..=1000"),
        )
        .with_field("limit"));
    }
    let records = state
        .node()
        .call(move |node| node.core().store().fiscal_log(level, limit))
        .await?
        .map_err(crate::node::NodeError::from)?;
    let entries = records
        .into_iter()
        .map(|record| LogEntry {
            at: rfc3339_ms(u64::try_from(record.at_ms).unwrap_or_default()),
            level: record.level.as_str().to_owned(),
            receipt_id: record.job_id,
            message: record.message,
            stage: record.stage,
        })
        .collect();
    Ok(Json(LogEntries { entries }).into_response())
}

/// `GET /v1/kkt/dlq` (admin): dead-lettered jobs, oldest first.
pub async fn dead_letters(State(state): State<AppState>) -> Result<Response, ApiError> {
    let rows = state
        .node()
        .call(|node| node.core().store().outbox_dead_letters(1000))
        .await?
        .map_err(crate::node::NodeError::from)?;
    let entries = rows
        .into_iter()
        .map(|row| DeadLetter {
            attempts: row.attempts,
            fd: row.fd_number,
            kind: row.kind.as_str().to_owned(),
            last_error: row.last_error,
            receipt_id: row.entry.receipt_id,
            updated_at: rfc3339_ms(u64::try_from(row.updated_at_ms).unwrap_or_default()),
        })
        .collect();
    Ok(Json(DeadLetters { entries }).into_response())
}

/// `POST /v1/kkt/dlq/requeue` (admin): dead letters go back into the drain.
pub async fn requeue(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let count = state
        .node()
        .call(move |node| node.fiscal().requeue_dead_letters(now))
        .await??;
    if let Some(link) = state.fiscal() {
        let _ = link.handle.send(Command::RequeueOfd);
    }
    Ok(Json(RequeueAnswer {
        requeued: u64::try_from(count).unwrap_or(u64::MAX),
    })
    .into_response())
}
