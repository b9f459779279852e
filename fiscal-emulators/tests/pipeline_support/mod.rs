//! Shared parts of the pipeline tests: an in-memory [`JobStore`] that keeps every transition,
//! a connector to the register emulator's pty, a manual clock, and the whole rig (register
//! emulator on a pty, OFD emulator on loopback HTTP, the pipeline task).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crdt_model::fiscal::OfdState;
use crdt_model::receipt::ReceiptKind;
use crdt_model::{Hlc, Receipt, VatRate};
use fiscal::breaker::BreakerConfig;
use fiscal::ofd::{GuardedOfd, OfdClient};
use fiscal::pipeline::{
    FiscalJob, FiscalStamp, JobRecord, JobStore, LogEntry, Pipeline, PipelineConfig,
    PipelineHandle, RegisterConnector, Stage, StoreFailure, Transition,
};
use fiscal::shtrih::{DriverConfig, ShtrihDriver};
use fiscal_emulators::ofd::{self as ofd_emulator, EmulatorHandle};
use fiscal_emulators::register::{self as emulator, EmulatorConfig, PtyStream, RunningEmulator};
use tokio::sync::watch;

#[path = "../register_support/mod.rs"]
pub mod register_support;

/// A stored job with what the pipeline recorded about it.
#[derive(Debug, Clone)]
pub struct StoredJob {
    pub record: JobRecord,
    pub stamp: Option<FiscalStamp>,
    pub last_error: Option<String>,
}

/// The till's job list, in memory.
#[derive(Debug, Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<String, StoredJob>>,
    log: Mutex<Vec<LogEntry>>,
    transitions: Mutex<Vec<Transition>>,
}

impl MemoryJobStore {
    pub fn push(&self, id: &str, hlc: &str, job: FiscalJob, stage: Stage) {
        let record = JobRecord {
            id: id.to_owned(),
            hlc: hlc.to_owned(),
            job,
            stage,
            attempts: 0,
            next_attempt_at_ms: None,
        };
        self.jobs.lock().expect("lock").insert(
            id.to_owned(),
            StoredJob {
                record,
                stamp: None,
                last_error: None,
            },
        );
    }

    pub fn jobs(&self) -> Vec<StoredJob> {
        self.jobs.lock().expect("lock").values().cloned().collect()
    }

    pub fn count(&self, stage: Stage) -> usize {
        self.jobs()
            .iter()
            .filter(|job| job.record.stage == stage)
            .count()
    }

    pub fn transitions(&self) -> Vec<Transition> {
        self.transitions.lock().expect("lock").clone()
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.log.lock().expect("lock").clone()
    }

    fn with_job(&self, id: &str, change: impl FnOnce(&mut StoredJob)) -> Result<(), StoreFailure> {
        let mut jobs = self.jobs.lock().expect("lock");
        let job = jobs
            .get_mut(id)
            .ok_or_else(|| StoreFailure(format!("no job {id}")))?;
        change(job);
        Ok(())
    }

    fn id_by_fd(&self, fd: u32) -> Option<String> {
        self.jobs
            .lock()
            .expect("lock")
            .values()
            .find(|job| job.stamp.as_ref().map(|s| s.numbers.fd_number) == Some(fd))
            .map(|job| job.record.id.clone())
    }
}

impl JobStore for MemoryJobStore {
    async fn next_for_register(&self) -> Result<Option<JobRecord>, StoreFailure> {
        let jobs = self.jobs.lock().expect("lock");
        Ok(jobs
            .values()
            .filter(|job| matches!(job.record.stage, Stage::Queued | Stage::RegisterIntent))
            .min_by(|a, b| (&a.record.hlc, &a.record.id).cmp(&(&b.record.hlc, &b.record.id)))
            .map(|job| job.record.clone()))
    }

    async fn job_by_fd(&self, fd_number: u32) -> Result<Option<JobRecord>, StoreFailure> {
        let id = self.id_by_fd(fd_number);
        let jobs = self.jobs.lock().expect("lock");
        Ok(id.and_then(|id| jobs.get(&id).map(|job| job.record.clone())))
    }

    async fn apply(&self, transition: Transition) -> Result<(), StoreFailure> {
        self.transitions
            .lock()
            .expect("lock")
            .push(transition.clone());
        match transition {
            Transition::Intent { id, attempts } => self.with_job(&id, |job| {
                job.record.stage = Stage::RegisterIntent;
                job.record.attempts = attempts;
            }),
            Transition::Fiscalised { id, stamp } => self.with_job(&id, |job| {
                job.record.stage = if stamp.is_some() {
                    Stage::Fiscalised
                } else {
                    Stage::Acknowledged
                };
                job.record.attempts = 0;
                job.record.next_attempt_at_ms = None;
                job.stamp = stamp;
            }),
            Transition::RegisterRetry {
                id,
                attempts,
                error,
                next_attempt_at_ms,
            } => self.with_job(&id, |job| {
                job.record.attempts = attempts;
                job.record.next_attempt_at_ms = Some(next_attempt_at_ms);
                job.last_error = Some(error);
            }),
            Transition::RegisterDeadLetter {
                id,
                attempts,
                error,
            } => self.with_job(&id, |job| {
                job.record.stage = Stage::DeadLetter;
                job.record.attempts = attempts;
                job.last_error = Some(error);
            }),
            Transition::OfdAcknowledged { fd_number, .. } => match self.id_by_fd(fd_number) {
                Some(id) => self.with_job(&id, |job| {
                    job.record.stage = Stage::Acknowledged;
                    if let Some(stamp) = job.stamp.as_mut() {
                        stamp.ofd_status = OfdState::Acknowledged;
                    }
                }),
                None => Ok(()),
            },
            Transition::OfdCaughtUp {
                fn_number,
                first_unsent_fd,
                ..
            } => {
                let mut jobs = self.jobs.lock().expect("lock");
                for job in jobs.values_mut() {
                    let Some(stamp) = job.stamp.as_mut() else {
                        continue;
                    };
                    let before =
                        first_unsent_fd.is_none_or(|first| stamp.numbers.fd_number < first);
                    if job.record.stage == Stage::Fiscalised
                        && stamp.numbers.fn_number == fn_number
                        && before
                    {
                        job.record.stage = Stage::Acknowledged;
                        stamp.ofd_status = OfdState::Acknowledged;
                    }
                }
                Ok(())
            }
            Transition::OfdRetry {
                fd_number,
                attempts,
                error,
                ..
            } => match self.id_by_fd(fd_number) {
                Some(id) => self.with_job(&id, |job| {
                    job.record.attempts = attempts;
                    job.last_error = Some(error);
                }),
                None => Ok(()),
            },
            Transition::OfdDeadLetter {
                fd_number, error, ..
            } => match self.id_by_fd(fd_number) {
                Some(id) => self.with_job(&id, |job| {
                    job.record.stage = Stage::DeadLetter;
                    job.last_error = Some(error);
                }),
                None => Ok(()),
            },
        }
    }

    async fn log(&self, entry: LogEntry) {
        self.log.lock().expect("lock").push(entry);
    }
}

/// Opens the emulator's pty with the test driver timeouts.
pub struct PtyConnector {
    pub path: std::path::PathBuf,
    pub config: DriverConfig,
}

impl RegisterConnector for PtyConnector {
    type Register = ShtrihDriver<PtyStream>;

    async fn connect(&mut self) -> std::io::Result<Self::Register> {
        let stream = PtyStream::open(&self.path)?;
        Ok(ShtrihDriver::new(stream, self.config))
    }
}

/// A clock the test moves by hand (Unix ms).
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicU64>);

impl ManualClock {
    pub fn starting_now() -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(fiscal::ofd::guard::unix_time_ms())))
    }

    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn as_clock(&self) -> fiscal::ofd::guard::Clock {
        let inner = Arc::clone(&self.0);
        Arc::new(move || inner.load(Ordering::SeqCst))
    }
}

/// Register emulator + OFD emulator + pipeline task over a [`MemoryJobStore`].
pub struct Rig {
    pub register: RunningEmulator,
    pub ofd: EmulatorHandle,
    pub store: Arc<MemoryJobStore>,
    pub guard: Arc<GuardedOfd<OfdClient>>,
    pub handle: PipelineHandle,
    pub clock: ManualClock,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Rig {
    /// Starts everything; jobs already in `store` are drained at once.
    pub async fn start(store: Arc<MemoryJobStore>) -> Rig {
        let (register, ofd) = emulators().await;
        Rig::attach(register, ofd, store)
    }

    /// Starts the pipeline task between running emulators.
    pub fn attach(
        register: RunningEmulator,
        ofd: EmulatorHandle,
        store: Arc<MemoryJobStore>,
    ) -> Rig {
        let clock = ManualClock::starting_now();
        let client = OfdClient::new(&ofd.base_url(), Duration::from_secs(2)).expect("client");
        let guard = Arc::new(GuardedOfd::with_clock(
            client,
            BreakerConfig::default(),
            clock.as_clock(),
        ));
        let config = PipelineConfig {
            idle_poll: Duration::from_millis(50),
            reconnect_delay: Duration::from_millis(50),
            clock: clock.as_clock(),
            ..PipelineConfig::default()
        };
        let connector = PtyConnector {
            path: register.serial_path.clone(),
            config: register_support::test_config(),
        };
        let (pipeline, handle) =
            Pipeline::new(connector, Arc::clone(&store), Arc::clone(&guard), config);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(pipeline.run(stop_rx));
        Rig {
            register,
            ofd,
            store,
            guard,
            handle,
            clock,
            stop,
            task,
        }
    }

    /// Stops the pipeline task (the emulators keep running).
    pub async fn stop_pipeline(self) -> (RunningEmulator, EmulatorHandle) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        (self.register, self.ofd)
    }

    /// Waits (real time, at most `limit`) until `done` holds, waking the pipeline meanwhile.
    pub async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Rig) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < limit,
                "timed out waiting for {what}; jobs: {:?}; log: {:?}",
                self.store
                    .jobs()
                    .iter()
                    .map(|j| (j.record.stage, j.last_error.clone()))
                    .collect::<Vec<_>>(),
                self.store.log()
            );
            self.handle.wake();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every fiscal document the register made.
    pub async fn documents(&self) -> Vec<serde_json::Value> {
        let list = register_support::get(&self.register, "/documents").await;
        list.as_array().cloned().unwrap_or_default()
    }
}

/// The register emulator on a pty and the OFD emulator on loopback.
pub async fn emulators() -> (RunningEmulator, EmulatorHandle) {
    let register = emulator::start(EmulatorConfig::ephemeral())
        .await
        .expect("register emulator starts");
    let ofd = ofd_emulator::spawn("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("OFD emulator binds");
    (register, ofd)
}

/// A one-line sale receipt with HLC physical time `ms` (orders the jobs).
pub fn sale_at(ms: u64, price: i64) -> Receipt {
    let mut receipt =
        register_support::receipt(ReceiptKind::Sale, None, &[(price, VatRate::Vat22)], true);
    receipt.hlc = Hlc::new(ms, 0, "S1.T1").expect("valid hlc");
    receipt
}

/// Queues `receipt` in `store` as a fresh job.
pub fn queue(store: &MemoryJobStore, receipt: Receipt) -> String {
    let id = receipt.id.to_string();
    let hlc = receipt.hlc.to_string();
    store.push(
        &id,
        &hlc,
        FiscalJob::Receipt {
            receipt: Box::new(receipt),
            cashier: "Иванова".to_owned(),
        },
        Stage::Queued,
    );
    id
}
