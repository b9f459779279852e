//! The pipeline task: owns the register link, steps the register side until it has nothing due,
//! then the OFD side, and sleeps until a sale wakes it, a timer is due or the API sends a
//! command (X report, breaker reset, emergency drain, requeue). Its state for health and metrics
//! is published on a `watch` channel.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::job::{LogEntry, LogLevel};
use super::ofd_step::{self, OfdOutcome, OfdState};
use super::register_step::{self, StepOutcome};
use super::JobStore;
use crate::backoff::BackoffConfig;
use crate::breaker::BreakerSnapshot;
use crate::ofd::guard::Clock;
use crate::ofd::{GuardedOfd, OfdTransport};
use crate::register::{FiscalRegister, RegisterError, RegisterStatus};
use crate::shtrih::error::DeviceError;

/// Tuning of the pipeline task.
#[derive(Clone)]
pub struct PipelineConfig {
    /// OFD retry timing (5 s → 5 min, 20 attempts).
    pub ofd_backoff: BackoffConfig,
    /// How often an idle pipeline re-reads the register's status (and the FN's OFD buffer).
    pub idle_poll: Duration,
    /// How long to wait before reconnecting to a register that cannot be reached.
    pub reconnect_delay: Duration,
    /// The clock (Unix ms) for retry timers; tests move it.
    pub clock: Clock,
}

impl std::fmt::Debug for PipelineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineConfig")
            .field("ofd_backoff", &self.ofd_backoff)
            .field("idle_poll", &self.idle_poll)
            .field("reconnect_delay", &self.reconnect_delay)
            .finish_non_exhaustive()
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            ofd_backoff: BackoffConfig::default(),
            idle_poll: Duration::from_secs(5),
            reconnect_delay: Duration::from_secs(1),
            clock: Arc::new(crate::ofd::guard::unix_time_ms),
        }
    }
}

/// What the API may ask of the pipeline.
#[derive(Debug)]
pub enum Command {
    /// Print an X report now.
    XReport(oneshot::Sender<Result<(), CommandError>>),
    /// Close the breaker and retry the OFD at once.
    ResetBreaker,
    /// Emergency drain: forget every retry timer and work now.
    DrainNow,
    /// Give dead-lettered OFD documents another round of attempts.
    RequeueOfd,
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The register cannot be reached.
    #[error("the register is not connected: {0}")]
    RegisterUnavailable(String),
    /// The register refused or failed.
    #[error("the register failed: {0}")]
    Register(String),
    /// The pipeline task has stopped.
    #[error("the fiscal pipeline is not running")]
    Stopped,
}

/// The pipeline's state for health, status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Connected and answering.
    pub register_up: bool,
    /// `ok`, `unreachable`, `paper_out` or `error`.
    pub register_state: &'static str,
    /// The last register failure.
    pub register_error: Option<String>,
    /// The register's last status answer.
    pub register_status: Option<RegisterStatus>,
    /// The OFD breaker.
    pub breaker: Option<BreakerSnapshot>,
    /// The last OFD delivery failure.
    pub ofd_error: Option<String>,
    /// An OFD document dead-lettered and blocking the FN's queue.
    pub ofd_blocked_fd: Option<u32>,
    /// Documents made by the register since start.
    pub fiscalised_total: u64,
    /// Documents acknowledged by the OFD since start.
    pub acknowledged_total: u64,
    /// OFD delivery failures since start.
    pub ofd_failures_total: u64,
}

/// Opens the register link; called again after the link fails.
pub trait RegisterConnector: Send + 'static {
    /// The register type.
    type Register: FiscalRegister + 'static;
    /// Connects (opens the serial port).
    fn connect(&mut self) -> impl Future<Output = std::io::Result<Self::Register>> + Send;
}

/// The API's side of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<Notify>,
    status: watch::Receiver<Status>,
}

impl PipelineHandle {
    /// A new job is queued: work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The current state.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Sends a command without waiting for its effect.
    pub fn send(&self, command: Command) -> Result<(), CommandError> {
        let result = self
            .commands
            .try_send(command)
            .map_err(|_| CommandError::Stopped);
        self.wake.notify_one();
        result
    }

    /// Prints an X report and waits for the register's answer.
    pub async fn x_report(&self) -> Result<(), CommandError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::XReport(tx))?;
        rx.await.map_err(|_| CommandError::Stopped)?
    }
}

/// The pipeline task's state.
pub struct Pipeline<C: RegisterConnector, S, T> {
    connector: C,
    register: Option<C::Register>,
    store: Arc<S>,
    ofd: Arc<GuardedOfd<T>>,
    config: PipelineConfig,
    ofd_state: OfdState,
    rng: StdRng,
    commands: mpsc::Receiver<Command>,
    wake: Arc<Notify>,
    status_tx: watch::Sender<Status>,
    status: Status,
    last_poll_ms: u64,
}

impl<C: RegisterConnector, S, T> std::fmt::Debug for Pipeline<C, S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("connected", &self.register.is_some())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<C, S, T> Pipeline<C, S, T>
where
    C: RegisterConnector,
    S: JobStore,
    T: OfdTransport + 'static,
{
    /// Builds the task and its handle.
    pub fn new(
        connector: C,
        store: Arc<S>,
        ofd: Arc<GuardedOfd<T>>,
        config: PipelineConfig,
    ) -> (Pipeline<C, S, T>, PipelineHandle) {
        let (commands_tx, commands) = mpsc::channel(16);
        let wake = Arc::new(Notify::new());
        let status = Status {
            register_state: "unreachable",
            breaker: Some(ofd.snapshot()),
            ..Status::default()
        };
        let (status_tx, status_rx) = watch::channel(status.clone());
        let pipeline = Pipeline {
            connector,
            register: None,
            store,
            ofd,
            ofd_state: OfdState::new(config.ofd_backoff),
            config,
            rng: StdRng::from_os_rng(),
            commands,
            wake: Arc::clone(&wake),
            status_tx,
            status,
            last_poll_ms: 0,
        };
        let handle = PipelineHandle {
            commands: commands_tx,
            wake,
            status: status_rx,
        };
        (pipeline, handle)
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let sleep_for = self.work().await;
            self.publish();
            tokio::select! {
                _ = stop.changed() => break,
                () = self.wake.notified() => {}
                command = self.commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                () = tokio::time::sleep(sleep_for) => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    fn now(&self) -> u64 {
        (self.config.clock)()
    }

    /// Steps until nothing is due; returns how long to sleep.
    async fn work(&mut self) -> Duration {
        if self.register.is_none() {
            match self.connector.connect().await {
                Ok(register) => {
                    self.register = Some(register);
                    self.ofd_state.reconnected();
                    self.status.register_up = true;
                    self.status.register_state = "ok";
                    self.last_poll_ms = 0;
                }
                Err(error) => {
                    self.note_register_error(&RegisterError::Io(error));
                    return self.config.reconnect_delay;
                }
            }
        }
        // Bounded so commands and the stop signal are seen during a long backlog.
        for _ in 0..64 {
            let now = self.now();
            let Some(register) = self.register.as_mut() else {
                return self.config.reconnect_delay;
            };
            let register_wait = match register_step::step(register, &*self.store, now).await {
                Ok(step) => {
                    match &step.register_error {
                        Some(error) => self.note_register_error(error),
                        None => self.note_register_ok(),
                    }
                    match step.outcome {
                        StepOutcome::Progress => {
                            if step.register_error.is_none() {
                                self.status.fiscalised_total += 1;
                            }
                            // The register's shift and counters changed: re-read soon.
                            self.last_poll_ms = 0;
                            self.publish();
                            continue;
                        }
                        StepOutcome::Idle => None,
                        StepOutcome::WaitUntil(at) => Some(at),
                    }
                }
                Err(failure) => {
                    self.store_failed(&failure.0).await;
                    return self.config.reconnect_delay;
                }
            };
            if self.register.is_none() {
                return self.config.reconnect_delay;
            }
            let ofd_wait = self.ofd_step(now).await;
            match ofd_wait {
                Some(StepOutcome::Progress) => {
                    self.status.acknowledged_total += 1;
                    self.publish();
                    continue;
                }
                Some(StepOutcome::WaitUntil(at)) => {
                    return self.sleep_until(register_wait.map_or(at, |r| r.min(at)), now)
                }
                Some(StepOutcome::Idle) | None => {}
            }
            self.poll_status(now).await;
            return match register_wait {
                Some(at) => self.sleep_until(at, now),
                None => self.config.idle_poll,
            };
        }
        Duration::ZERO
    }

    async fn ofd_step(&mut self, now: u64) -> Option<StepOutcome> {
        let register = self.register.as_mut()?;
        let outcome = ofd_step::step(
            register,
            &*self.store,
            &self.ofd,
            &mut self.ofd_state,
            now,
            &mut self.rng,
        )
        .await;
        self.status.breaker = Some(self.ofd.snapshot());
        match outcome {
            Ok(OfdOutcome::Step(step)) => {
                if matches!(step, StepOutcome::WaitUntil(_)) && self.ofd_state.last_error.is_some()
                {
                    self.status.ofd_failures_total += 1;
                }
                self.status.ofd_error = self.ofd_state.last_error.clone();
                self.status.ofd_blocked_fd = self.ofd_state.blocked_fd;
                Some(step)
            }
            Ok(OfdOutcome::Register(error)) => {
                self.note_register_error(&error);
                None
            }
            Err(failure) => {
                self.store_failed(&failure.0).await;
                None
            }
        }
    }

    /// Re-reads the register's status at most every `idle_poll`.
    async fn poll_status(&mut self, now: u64) {
        let poll_ms = u64::try_from(self.config.idle_poll.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(self.last_poll_ms) < poll_ms && self.status.register_status.is_some()
        {
            return;
        }
        self.last_poll_ms = now;
        let Some(register) = self.register.as_mut() else {
            return;
        };
        match register.status().await {
            Ok(status) => {
                self.status.register_state = if status.paper_out { "paper_out" } else { "ok" };
                self.status.register_status = Some(status);
            }
            Err(error) => self.note_register_error(&error),
        }
    }

    fn sleep_until(&self, at_ms: u64, now_ms: u64) -> Duration {
        Duration::from_millis(at_ms.saturating_sub(now_ms)).min(self.config.idle_poll)
    }

    fn note_register_ok(&mut self) {
        self.status.register_up = true;
        if self.status.register_state != "paper_out" {
            self.status.register_state = "ok";
        }
        self.status.register_error = None;
    }

    fn note_register_error(&mut self, error: &RegisterError) {
        self.status.register_error = Some(error.to_string());
        self.status.register_state = match error {
            RegisterError::Device(DeviceError::PaperOut) => "paper_out",
            RegisterError::Io(_) | RegisterError::Timeout { .. } => "unreachable",
            _ => "error",
        };
        self.status.register_up = !matches!(self.status.register_state, "unreachable");
        if matches!(error, RegisterError::Io(_)) {
            // The stream is gone (port unplugged, emulator restarted): reconnect next round.
            self.register = None;
        }
    }

    async fn store_failed(&mut self, message: &str) {
        tracing::error!(
            error = message,
            "fiscal pipeline cannot update the till's store"
        );
        self.store
            .log(LogEntry {
                at_ms: self.now(),
                level: LogLevel::Error,
                stage: "store".to_owned(),
                job_id: None,
                message: format!("cannot record fiscal progress: {message}"),
            })
            .await;
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::XReport(reply) => {
                let result = match self.register.as_mut() {
                    None => Err(CommandError::RegisterUnavailable(
                        self.status
                            .register_error
                            .clone()
                            .unwrap_or_else(|| "not connected".to_owned()),
                    )),
                    Some(register) => register
                        .x_report()
                        .await
                        .map_err(|error| CommandError::Register(error.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::ResetBreaker => {
                self.ofd.reset();
                self.ofd_state.wake();
                self.status.breaker = Some(self.ofd.snapshot());
            }
            Command::DrainNow => self.ofd_state.wake(),
            Command::RequeueOfd => self.ofd_state.requeue(),
        }
    }

    fn publish(&mut self) {
        self.status.breaker = Some(self.ofd.snapshot());
        self.status_tx.send_replace(self.status.clone());
    }
}
