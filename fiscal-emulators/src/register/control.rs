//! The emulator's HTTP control API (axum): `GET /documents`, `GET /state`, `POST /faults`,
//! `POST /clock`. Routes live in [`app`] so tests drive them without a socket.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::register::serial::{lock, FaultMode, Faults, Shared, DEFAULT_SLOW_DELAY_MS};
use fiscal::register::DocumentKind;

/// Largest clock jump one request may make (10 years), to keep arithmetic far from limits.
pub const MAX_CLOCK_STEP_SECS: i64 = 10 * 365 * 86_400;

/// One fiscal document as `GET /documents` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentView {
    /// 1040.
    pub fd: u32,
    /// `shift_open`, `receipt`, `correction`, `shift_close`.
    #[serde(rename = "type")]
    pub kind: String,
    /// 1054 for receipts (1 sale, 2 sale refund), else 0.
    pub operation: u8,
    /// 1020, kopecks.
    pub total: i64,
    /// Our receipt id (1084/1086).
    pub receipt_id: Option<String>,
    /// 1038.
    pub shift: u32,
    /// 1042.
    pub receipt_number: u32,
    /// ФПД.
    pub fiscal_sign: u32,
    /// 1012, Unix seconds.
    pub datetime_unix: u64,
    /// Acknowledged by the OFD.
    pub acked: bool,
}

/// `GET /state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    /// 1041.
    pub fn_number: String,
    /// Last FD.
    pub last_fd: u32,
    /// Shift number.
    pub shift_number: u32,
    /// Shift open.
    pub shift_open: bool,
    /// When the shift was opened.
    pub shift_opened_at: Option<u64>,
    /// Receipts in the shift.
    pub receipt_number: u32,
    /// A receipt is open.
    pub receipt_open: bool,
    /// Documents not acknowledged by the OFD.
    pub unacked: usize,
    /// Emulated time, Unix seconds.
    pub now_unix: u64,
    /// Emulated clock offset.
    pub clock_offset_secs: i64,
    /// Warning flags (bit 0 = 1051, 1 = 1050, 2 = 1052, 3 = 1053).
    pub warning_flags: u8,
    /// Current faults.
    pub faults: Faults,
}

/// `POST /faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRequest {
    /// The mode.
    pub mode: FaultMode,
    /// Delay of `slow` (default 300 ms).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// For `corrupt`: corrupt only this many answers.
    #[serde(default)]
    pub count: Option<u32>,
}

/// `POST /clock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRequest {
    /// Seconds to move the emulated clock (negative moves it back).
    pub advance_secs: i64,
}

fn kind_name(form: u8) -> String {
    match DocumentKind::from_code(form) {
        DocumentKind::Registration => "registration".into(),
        DocumentKind::ShiftOpen => "shift_open".into(),
        DocumentKind::Receipt => "receipt".into(),
        DocumentKind::Correction => "correction".into(),
        DocumentKind::ShiftClose => "shift_close".into(),
        DocumentKind::Other(code) => format!("form_{code}"),
    }
}

/// The control API.
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/documents", get(documents))
        .route("/state", get(state))
        .route("/faults", post(faults))
        .route("/clock", post(clock))
        .with_state(shared)
}

async fn documents(State(shared): State<Arc<Shared>>) -> Json<Vec<DocumentView>> {
    let machine = lock(&shared.machine);
    let views = machine
        .state()
        .documents
        .iter()
        .map(|doc| DocumentView {
            fd: doc.fd,
            kind: kind_name(doc.form),
            operation: doc.operation,
            total: doc.total,
            receipt_id: doc.receipt_id.clone(),
            shift: doc.shift,
            receipt_number: doc.receipt_number,
            fiscal_sign: doc.fiscal_sign,
            datetime_unix: doc.datetime_unix,
            acked: doc.acked_at.is_some(),
        })
        .collect();
    Json(views)
}

fn state_view(shared: &Shared) -> StateView {
    let now_unix = shared.now();
    let faults = *lock(&shared.faults);
    let machine = lock(&shared.machine);
    let state = machine.state();
    StateView {
        fn_number: state.fn_number.clone(),
        last_fd: state.last_fd,
        shift_number: state.shift_number,
        shift_open: state.shift_opened_at.is_some(),
        shift_opened_at: state.shift_opened_at,
        receipt_number: state.receipt_number,
        receipt_open: machine.receipt_open(),
        unacked: state.unacked_count(),
        now_unix,
        clock_offset_secs: state.clock_offset_secs,
        warning_flags: machine.warning_flags(now_unix),
        faults,
    }
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<StateView> {
    Json(state_view(&shared))
}

async fn faults(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<FaultRequest>,
) -> Json<Faults> {
    let faults = Faults {
        mode: request.mode,
        delay_ms: request.delay_ms.unwrap_or(DEFAULT_SLOW_DELAY_MS),
        count: request.count.filter(|count| *count > 0),
    };
    *lock(&shared.faults) = faults;
    Json(faults)
}

async fn clock(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<ClockRequest>,
) -> Result<Json<StateView>, (StatusCode, String)> {
    if request.advance_secs.abs() > MAX_CLOCK_STEP_SECS {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "clock step too large".into(),
        ));
    }
    let saved = lock(&shared.machine).advance_clock(request.advance_secs);
    match saved {
        Ok(_) => Ok(Json(state_view(&shared))),
        Err(error) => {
            tracing::error!(%error, "saving the clock offset failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "state not saved".into()))
        }
    }
}
