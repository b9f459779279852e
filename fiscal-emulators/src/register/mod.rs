//! The register emulator: a Shtrih-M device with an emulated fiscal drive, served on a
//! pseudo-terminal, with an HTTP control API for tests and the demo.
//!
//! - [`state`]: the durable FN state (atomic JSON file in `--state DIR`).
//! - [`documents`]: TLV documents, open receipts, the emulated fiscal sign.
//! - [`machine`]: the command interpreter and the FN rules (sans IO); `exchange`: its status
//!   answers and the OFD exchange (FF30..FF33).
//! - [`serial`]: the device side of the line protocol, and fault injection.
//! - [`pty`]: the pseudo-terminal and an async stream over it.
//! - [`control`]: `GET /documents`, `GET /state`, `POST /faults`, `POST /clock`.

pub mod control;
pub mod documents;
mod exchange;
pub mod machine;
pub mod pty;
pub mod serial;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::Parser;
use tokio::task::JoinHandle;

pub use control::{app, DocumentView, StateView};
pub use machine::Machine;
pub use pty::PtyStream;
pub use serial::{FaultMode, Faults, Shared};

/// Default archive capacity of the emulated FN (documents).
pub const DEFAULT_FN_CAPACITY: u32 = 250_000;

/// `fiscal register-emulator` arguments.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "register-emulator",
    about = "Shtrih-M register emulator on a pty"
)]
pub struct EmulatorConfig {
    /// Symlink to create at this path, pointing to the pty slave.
    #[arg(long)]
    pub pty_link: Option<PathBuf>,
    /// Address of the HTTP control API.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub control: SocketAddr,
    /// Directory of the persisted FN state; in memory when absent.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Sets the emulated clock offset (seconds) at start; the persisted one otherwise.
    #[arg(long)]
    pub clock_offset_secs: Option<i64>,
    /// Archive capacity (FDs) of the emulated FN.
    #[arg(long, default_value_t = DEFAULT_FN_CAPACITY)]
    pub fn_capacity: u32,
}

impl EmulatorConfig {
    /// In memory, no link, control on an ephemeral port.
    pub fn ephemeral() -> EmulatorConfig {
        EmulatorConfig {
            pty_link: None,
            control: SocketAddr::from(([127, 0, 0, 1], 0)),
            state: None,
            clock_offset_secs: None,
            fn_capacity: DEFAULT_FN_CAPACITY,
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct RunningEmulator {
    /// Path a client opens: the link when one was asked for, else the pty slave.
    pub serial_path: PathBuf,
    /// Where the control API listens.
    pub control_addr: SocketAddr,
    /// The shared state (tests may inspect it).
    pub shared: Arc<Shared>,
    link: Option<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
    _slave: std::os::fd::OwnedFd,
}

impl RunningEmulator {
    /// Stops serving and removes the link.
    pub fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Loads or creates the FN state and starts the serial loop and the control API.
pub async fn start(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
    let system_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let mut fn_state = match &config.state {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("state dir {}", dir.display()))?;
            state::load(dir)?
        }
        None => None,
    }
    .unwrap_or_else(|| state::FnState::fresh(system_now));
    if let Some(offset) = config.clock_offset_secs {
        fn_state.clock_offset_secs = offset;
    }
    if let Some(dir) = &config.state {
        state::save(dir, &fn_state)?;
    }
    let shared = Arc::new(Shared {
        machine: Mutex::new(Machine::new(
            fn_state,
            config.state.clone(),
            config.fn_capacity,
        )),
        faults: Mutex::new(Faults::default()),
    });

    let pair = pty::open_pty().context("opening a pseudo-terminal")?;
    let serial_path = match &config.pty_link {
        Some(link) => {
            match std::fs::remove_file(link) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error).context("removing an old pty link"),
            }
            std::os::unix::fs::symlink(&pair.slave_path, link)
                .with_context(|| format!("linking {}", link.display()))?;
            link.clone()
        }
        None => pair.slave_path.clone(),
    };
    let master = PtyStream::new(pair.master)?;
    let serial_shared = Arc::clone(&shared);
    let serial_task = tokio::spawn(async move {
        if let Err(error) = serial::serve(master, serial_shared).await {
            tracing::error!(%error, "register emulator serial loop stopped");
        }
    });

    let listener = tokio::net::TcpListener::bind(config.control)
        .await
        .with_context(|| format!("binding {}", config.control))?;
    let control_addr = listener.local_addr()?;
    let router = app(Arc::clone(&shared));
    let control_task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "register emulator control API stopped");
        }
    });
    Ok(RunningEmulator {
        serial_path,
        control_addr,
        shared,
        link: config.pty_link,
        tasks: vec![serial_task, control_task],
        _slave: pair.slave,
    })
}

/// `fiscal register-emulator --pty-link PATH --control ADDR [--state DIR]`: runs until
/// SIGTERM or Ctrl-C, then removes the link.
pub fn cli_main(args: &[String]) -> anyhow::Result<()> {
    let config = EmulatorConfig::try_parse_from(
        std::iter::once("register-emulator".to_string()).chain(args.iter().cloned()),
    )?;
    if config.pty_link.is_none() {
        anyhow::bail!("--pty-link PATH is required");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let running = start(config).await?;
        println!("listening on {}", running.control_addr);
        println!("pty linked at {}", running.serial_path.display());
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        running.shutdown();
        Ok(())
    })
}
