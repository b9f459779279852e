//! The fiscal pipeline: drains a till's fiscal jobs (receipts, shift closes, cash movements)
//! in HLC order to the register, then carries the FN's documents to the OFD and the OFD's
//! acknowledgements back to the FN — exactly once per receipt, whatever fails in between.
//!
//! The pipeline owns the rules; the till owns the storage, behind [`JobStore`]. The rules:
//! - Strict order: only the oldest unfinished job is worked on; a later job never overtakes it.
//! - Intent first: before a job goes to the register, [`Transition::Intent`] is persisted.
//!   A job found in [`Stage::RegisterIntent`] (after a crash, or after an answer was lost) is
//!   *reconciled*: the register is asked for its last document, and if that document carries
//!   the job's receipt id the job is recorded as fiscalised without printing again.
//! - The OFD side follows the FN: the FN hands out its oldest unacknowledged document, the
//!   guarded client carries it, the acknowledgement goes back to the FN, and only then is the
//!   job recorded as acknowledged. A lost acknowledgement means the document is sent again,
//!   which the OFD acknowledges idempotently.
//!
//! Submodules: `job` (what is fiscalised and what comes back), `register_step`, `ofd_step`,
//! `runner` (the task: wake-ups, timers, commands from the API).

use std::future::Future;

mod job;
mod ofd_step;
mod register_step;
mod runner;

pub use crdt_model::fiscal::FiscalStamp;
pub use job::{FiscalJob, JobRecord, LogEntry, LogLevel, Stage};
pub use runner::{
    Command, CommandError, Pipeline, PipelineConfig, PipelineHandle, RegisterConnector, Status,
};

/// A change of a job's bookkeeping, persisted by the [`JobStore`] before the pipeline goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// About to send job `id` to the register (attempt number `attempts`).
    Intent {
        /// The job.
        id: String,
        /// Attempts including this one.
        attempts: u32,
    },
    /// The register made the document (or, for jobs without a document, did the work).
    /// Jobs with no fiscal document go straight to [`Stage::Acknowledged`].
    Fiscalised {
        /// The job.
        id: String,
        /// The document's ids; `None` for jobs that make no document (cash in/out).
        stamp: Option<FiscalStamp>,
    },
    /// The register failed; try again at `next_attempt_at_ms`. The stage stays
    /// [`Stage::RegisterIntent`] so the next try reconciles first.
    RegisterRetry {
        /// The job.
        id: String,
        /// Attempts so far.
        attempts: u32,
        /// What went wrong.
        error: String,
        /// When to try again (Unix ms).
        next_attempt_at_ms: u64,
    },
    /// The register refused the job for good (its content is wrong): support must look.
    RegisterDeadLetter {
        /// The job.
        id: String,
        /// Attempts so far.
        attempts: u32,
        /// The refusal.
        error: String,
    },
    /// The OFD acknowledged document `fd_number` and the FN has recorded it.
    OfdAcknowledged {
        /// The FN's document number.
        fd_number: u32,
        /// When (Unix ms).
        at_ms: u64,
    },
    /// The FN's own view after a (re)connect: every document of FN `fn_number` before
    /// `first_unsent_fd` (all of them when `None`) is acknowledged. Catches up a crash between
    /// handing an acknowledgement to the FN and recording it here.
    OfdCaughtUp {
        /// The FN the documents belong to.
        fn_number: String,
        /// The oldest document the FN has not had acknowledged, if any.
        first_unsent_fd: Option<u32>,
        /// When (Unix ms).
        at_ms: u64,
    },
    /// Delivering document `fd_number` to the OFD failed; try again later.
    OfdRetry {
        /// The FN's document number.
        fd_number: u32,
        /// Failed deliveries so far.
        attempts: u32,
        /// What went wrong.
        error: String,
        /// When to try again (Unix ms).
        next_attempt_at_ms: u64,
    },
    /// The OFD refused document `fd_number` for good, or it failed too many times.
    OfdDeadLetter {
        /// The FN's document number.
        fd_number: u32,
        /// Failed deliveries so far.
        attempts: u32,
        /// The last failure.
        error: String,
    },
}

/// Storage failure reported by a [`JobStore`]; the pipeline stops the step and retries later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreFailure(pub String);

/// The till's durable job list, as the pipeline sees it. Every method is atomic: when its
/// future resolves `Ok`, the change is durable.
pub trait JobStore: Send + Sync + 'static {
    /// The oldest job (HLC order) in [`Stage::Queued`] or [`Stage::RegisterIntent`].
    fn next_for_register(
        &self,
    ) -> impl Future<Output = Result<Option<JobRecord>, StoreFailure>> + Send;
    /// The job whose fiscal document is `fd_number`, if any (shift reports have none).
    fn job_by_fd(
        &self,
        fd_number: u32,
    ) -> impl Future<Output = Result<Option<JobRecord>, StoreFailure>> + Send;
    /// Persists a transition.
    fn apply(
        &self,
        transition: Transition,
    ) -> impl Future<Output = Result<(), StoreFailure>> + Send;
    /// Records a line for `GET /v1/kkt/buffer/logs` (best effort: failures are ignored).
    fn log(&self, entry: LogEntry) -> impl Future<Output = ()> + Send;
}
