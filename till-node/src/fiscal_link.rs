//! Wires the `fiscal` crate's pipeline into the daemon: the register on a serial port
//! (tokio-serial, Shtrih-M driver), the OFD client behind its breaker, and the node as the
//! pipeline's durable [`JobStore`]. Every transition bumps a progress counter that sale
//! handlers wait on to answer `printed` when the register is quick enough.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fiscal::breaker::BreakerConfig;
use fiscal::ofd::{GuardedOfd, OfdClient};
use fiscal::pipeline::{
    JobRecord, JobStore, LogEntry, Pipeline, PipelineConfig, PipelineHandle, RegisterConnector,
    StoreFailure, Transition,
};
use fiscal::shtrih::{DriverConfig, ShtrihDriver};
use tokio::sync::watch;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use crate::config::FiscalConfig;
use crate::node::NodeHandle;
use crate::time::now_ms;

/// How long the OFD may take to answer one document.
const OFD_TIMEOUT: Duration = Duration::from_secs(30);
/// Shtrih-M line speed.
const BAUD: u32 = 115_200;

/// The node as the pipeline's job store.
pub struct TillJobStore {
    node: NodeHandle,
    progress: watch::Sender<u64>,
}

impl std::fmt::Debug for TillJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TillJobStore").finish_non_exhaustive()
    }
}

fn failure(error: impl std::fmt::Display) -> StoreFailure {
    StoreFailure(error.to_string())
}

impl JobStore for TillJobStore {
    async fn next_for_register(&self) -> Result<Option<JobRecord>, StoreFailure> {
        self.node
            .call(|node| node.fiscal().next_job())
            .await
            .map_err(failure)?
            .map_err(failure)
    }

    async fn job_by_fd(&self, fd_number: u32) -> Result<Option<JobRecord>, StoreFailure> {
        self.node
            .call(move |node| node.fiscal().job_by_fd(fd_number))
            .await
            .map_err(failure)?
            .map_err(failure)
    }

    async fn apply(&self, transition: Transition) -> Result<(), StoreFailure> {
        self.node
            .call(move |node| node.apply_fiscal(transition, now_ms()))
            .await
            .map_err(failure)?
            .map_err(failure)?;
        self.progress
            .send_modify(|count| *count = count.wrapping_add(1));
        Ok(())
    }

    async fn log(&self, entry: LogEntry) {
        let level = entry.level;
        let message = entry.message.clone();
        match self
            .node
            .call(move |node| node.fiscal().append_fiscal_log(&entry))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot keep a pipeline log line"),
            Err(error) => tracing::warn!(%error, "cannot keep a pipeline log line"),
        }
        tracing::info!(level = level.as_str(), "fiscal pipeline: {message}");
    }
}

/// Opens the register's serial port.
#[derive(Debug)]
pub struct SerialConnector {
    path: PathBuf,
}

impl RegisterConnector for SerialConnector {
    type Register = ShtrihDriver<SerialStream>;

    async fn connect(&mut self) -> std::io::Result<Self::Register> {
        let path = self.path.to_string_lossy().into_owned();
        // Not TIOCEXCL (serialport's default): the kernel keeps that flag after a crash while
        // the other end stays open, and then refuses every non-root reopen with EBUSY. An
        // exclusive flock keeps a second process off the port just as well and dies with us.
        let stream = tokio_serial::new(path.as_str(), BAUD)
            .exclusive(false)
            .open_native_async()
            .map_err(std::io::Error::other)?;
        lock_port(&stream, &path)?;
        Ok(ShtrihDriver::new(stream, DriverConfig::default()))
    }
}

/// Turns the shared flock serialport took on the port into an exclusive one, without waiting.
fn lock_port(stream: &SerialStream, path: &str) -> std::io::Result<()> {
    use nix::fcntl::FlockArg;
    use std::os::unix::io::AsRawFd;
    // nix's `Flock` wants to own the descriptor; here the serial stream owns it.
    #[allow(deprecated)]
    nix::fcntl::flock(stream.as_raw_fd(), FlockArg::LockExclusiveNonblock).map_err(|errno| {
        std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            format!("the register port {path} is in use by another process ({errno})"),
        )
    })
}

/// The running pipeline as the API sees it.
#[derive(Debug, Clone)]
pub struct FiscalLink {
    /// Commands and status.
    pub handle: PipelineHandle,
    /// Bumped after every persisted transition.
    pub progress: watch::Receiver<u64>,
}

/// Builds the pipeline; run the returned future on the runtime until `stop`.
pub fn start(
    config: &FiscalConfig,
    node: NodeHandle,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(FiscalLink, impl std::future::Future<Output = ()> + Send)> {
    let client = OfdClient::new(config.ofd_url.as_str(), OFD_TIMEOUT)
        .map_err(|error| anyhow::anyhow!("cannot set up the OFD client: {error}"))?;
    let guard = Arc::new(GuardedOfd::new(client, BreakerConfig::default()));
    let (progress_tx, progress) = watch::channel(0);
    let store = Arc::new(TillJobStore {
        node,
        progress: progress_tx,
    });
    let connector = SerialConnector {
        path: config.serial_path.clone(),
    };
    let (pipeline, handle) = Pipeline::new(connector, store, guard, PipelineConfig::default());
    Ok((FiscalLink { handle, progress }, pipeline.run(stop)))
}
