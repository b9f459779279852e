//! One OFD step: read the FN's oldest unacknowledged document, carry it through the guarded
//! client, hand the acknowledgement back to the FN, then record it. The FN decides the order
//! (oldest first), so a document the OFD refuses for good blocks the ones behind it until
//! support requeues it — exactly what a real FN does.

use rand::Rng;

use super::job::{LogEntry, LogLevel, Stage};
use super::register_step::StepOutcome;
use super::{JobStore, StoreFailure, Transition};
use crate::backoff::{Backoff, BackoffConfig, Decision};
use crate::failpoint;
use crate::ofd::{next_step, GuardedOfd, OfdContainer, OfdError, OfdTransport};
use crate::register::{FiscalRegister, RegisterError};

/// Retry state of the document at the head of the FN's buffer.
#[derive(Debug, Clone)]
pub(super) struct OfdState {
    config: BackoffConfig,
    /// The FD at the head of the FN's buffer, its retry state and the job it belongs to.
    head: Option<(u32, Backoff, String)>,
    not_before_ms: u64,
    /// A dead-lettered FD: not sent again until support requeues it.
    pub blocked_fd: Option<u32>,
    /// The last delivery failure, for health.
    pub last_error: Option<String>,
    /// The FN's acknowledged documents have been reconciled with the store since the last
    /// connect.
    caught_up: bool,
}

impl OfdState {
    pub fn new(config: BackoffConfig) -> OfdState {
        OfdState {
            config,
            head: None,
            not_before_ms: 0,
            blocked_fd: None,
            last_error: None,
            caught_up: false,
        }
    }

    /// A new register link: reconcile acknowledgements again before the next delivery.
    pub fn reconnected(&mut self) {
        self.caught_up = false;
    }

    /// Forget timers (emergency drain, requeue): the next step tries at once. The breaker is
    /// not touched here; it has its own reset.
    pub fn wake(&mut self) {
        self.not_before_ms = 0;
    }

    /// Unblocks a dead-lettered document with fresh attempts.
    pub fn requeue(&mut self) {
        self.blocked_fd = None;
        self.head = None;
        self.not_before_ms = 0;
    }
}

pub(super) enum OfdOutcome {
    Step(StepOutcome),
    Register(RegisterError),
}

pub(super) async fn step<R, S, T, G>(
    register: &mut R,
    store: &S,
    ofd: &GuardedOfd<T>,
    state: &mut OfdState,
    now_ms: u64,
    rng: &mut G,
) -> Result<OfdOutcome, StoreFailure>
where
    R: FiscalRegister,
    S: JobStore,
    T: OfdTransport,
    G: Rng + ?Sized,
{
    if !state.caught_up {
        // The FN may have taken an acknowledgement the store never recorded (a crash right
        // after `write_ofd_ack`): its unsent counter is the truth.
        let status = match register.status().await {
            Ok(status) => status,
            Err(error) => return Ok(OfdOutcome::Register(error)),
        };
        let first_unsent_fd = (status.unsent.count > 0).then_some(status.unsent.first_fd);
        store
            .apply(Transition::OfdCaughtUp {
                fn_number: status.fn_number,
                first_unsent_fd,
                at_ms: now_ms,
            })
            .await?;
        state.caught_up = true;
    }
    if state.not_before_ms > now_ms {
        return Ok(OfdOutcome::Step(StepOutcome::WaitUntil(
            state.not_before_ms,
        )));
    }
    let message = match register.read_ofd_message().await {
        Ok(Some(message)) => message,
        Ok(None) => {
            state.head = None;
            state.last_error = None;
            return Ok(OfdOutcome::Step(StepOutcome::Idle));
        }
        Err(error) => return Ok(OfdOutcome::Register(error)),
    };
    let fd = message.fd_number;
    if state.blocked_fd == Some(fd) {
        return Ok(OfdOutcome::Step(StepOutcome::Idle));
    }
    if state.head.as_ref().map(|(head, _, _)| *head) != Some(fd) {
        let job = store.job_by_fd(fd).await?;
        let attempts = job
            .as_ref()
            .filter(|job| job.stage == Stage::Fiscalised)
            .map_or(0, |job| job.attempts);
        // Shift reports have no job: support sees the FD instead.
        let job_id = job.map_or_else(|| format!("fd:{fd}"), |job| job.id);
        state.head = Some((fd, Backoff::resume(state.config, attempts), job_id));
    }
    let result = match OfdContainer::decode(&message.bytes) {
        Ok(container) => ofd.send(&container).await,
        Err(error) => Err(OfdError::Encode(error)),
    };
    let Some((_, backoff, job_id)) = state.head.as_mut() else {
        return Ok(OfdOutcome::Step(StepOutcome::Idle));
    };
    match result {
        Ok(ack) => {
            failpoint::hit(failpoint::OFD_SENT);
            let encoded = match ack.encode() {
                Ok(encoded) => encoded,
                Err(error) => {
                    // Our own encoding of a decoded answer failed: treat as a bad answer.
                    state.not_before_ms = now_ms.saturating_add(state.config.initial_delay_ms);
                    state.last_error = Some(format!("cannot re-encode the OFD answer: {error}"));
                    return Ok(OfdOutcome::Step(StepOutcome::WaitUntil(
                        state.not_before_ms,
                    )));
                }
            };
            if let Err(error) = register.write_ofd_ack(&encoded).await {
                // The OFD has the document; sending it again is acknowledged idempotently.
                return Ok(OfdOutcome::Register(error));
            }
            failpoint::hit(failpoint::FN_TOLD);
            backoff.on_success();
            state.head = None;
            state.last_error = None;
            store
                .apply(Transition::OfdAcknowledged {
                    fd_number: fd,
                    at_ms: now_ms,
                })
                .await?;
            Ok(OfdOutcome::Step(StepOutcome::Progress))
        }
        Err(error) => {
            let decision = next_step(backoff, &error, now_ms, rng);
            let attempts = backoff.attempts();
            let message = format!("OFD, document {fd}: {error}");
            state.last_error = Some(message.clone());
            match decision {
                Decision::RetryAt(at) => {
                    state.not_before_ms = at;
                    if !matches!(error, OfdError::CircuitOpen { .. }) {
                        if attempts == 1 || attempts % 5 == 0 {
                            store
                                .log(line(now_ms, LogLevel::Warn, job_id, &message))
                                .await;
                        }
                        store
                            .apply(Transition::OfdRetry {
                                fd_number: fd,
                                attempts,
                                error: message,
                                next_attempt_at_ms: at,
                            })
                            .await?;
                    }
                    Ok(OfdOutcome::Step(StepOutcome::WaitUntil(at)))
                }
                Decision::DeadLetter => {
                    state.blocked_fd = Some(fd);
                    let message = format!("{message}; moved to the dead-letter queue");
                    store
                        .log(line(now_ms, LogLevel::Error, job_id, &message))
                        .await;
                    store
                        .apply(Transition::OfdDeadLetter {
                            fd_number: fd,
                            attempts,
                            error: message,
                        })
                        .await?;
                    Ok(OfdOutcome::Step(StepOutcome::Idle))
                }
            }
        }
    }
}

fn line(now_ms: u64, level: LogLevel, job_id: &str, message: &str) -> LogEntry {
    LogEntry {
        at_ms: now_ms,
        level,
        stage: "ofd".to_owned(),
        job_id: Some(job_id.to_owned()),
        message: message.to_owned(),
    }
}
