//! Spawned daemons: a child process with its stdout and stderr captured (to a log file and a
//! bounded in-memory tail), the address it reports in its `listening on IP:PORT` line, kill -9
//! and graceful stop, and a `Drop` that always kills and reaps it, so a failing test never
//! leaves a process behind.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Lines of log kept in memory per daemon, for error messages.
const TAIL_LINES: usize = 300;
/// How long a graceful stop may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Paths of the binaries the scenarios spawn.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `hub` binary (built as `e2e-hub`).
    pub hub: PathBuf,
    /// The `till-node` binary (built as `e2e-till-node`).
    pub till: PathBuf,
}

impl Binaries {
    /// Binaries at the given paths.
    pub fn new(hub: impl Into<PathBuf>, till: impl Into<PathBuf>) -> Self {
        Self {
            hub: hub.into(),
            till: till.into(),
        }
    }

    /// The binaries built next to the running executable (the bench, built by the same
    /// `cargo build`).
    pub fn beside_current_exe() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the running executable")?;
        let dir = exe
            .parent()
            .context("the running executable has no directory")?;
        let found = Self::new(dir.join("e2e-hub"), dir.join("e2e-till-node"));
        for path in [&found.hub, &found.till] {
            if !path.is_file() {
                bail!(
                    "{} not found: build with `cargo build --release -p tests --bins`",
                    path.display()
                );
            }
        }
        Ok(found)
    }
}

/// The binaries cargo built for this package's integration tests.
#[macro_export]
macro_rules! binaries {
    () => {
        $crate::Binaries::new(
            env!("CARGO_BIN_EXE_e2e-hub"),
            env!("CARGO_BIN_EXE_e2e-till-node"),
        )
    };
}

/// A scratch directory for one scenario (data directories and logs), removed at the end —
/// unless `E2E_KEEP=1`, when it stays and its path is printed, to read the logs of a failure.
pub fn work_dir(scenario: &str) -> anyhow::Result<tempfile::TempDir> {
    let keep = std::env::var("E2E_KEEP").is_ok_and(|v| v == "1");
    let dir = tempfile::Builder::new()
        .prefix(&format!("e2e-{scenario}-"))
        .disable_cleanup(keep)
        .tempdir()
        .context("cannot create a scratch directory")?;
    if keep {
        eprintln!("{scenario}: work dir kept at {}", dir.path().display());
    }
    Ok(dir)
}

/// A loopback TCP port that was free a moment ago (bound and released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// What the reader threads learned from the daemon's output.
#[derive(Debug, Default)]
struct Output {
    tail: VecDeque<String>,
    listening: Option<SocketAddr>,
}

/// A spawned process with captured output. Killed with SIGKILL on drop if still running.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    output: Arc<Mutex<Output>>,
    readers: Vec<JoinHandle<()>>,
    log_path: PathBuf,
}

impl Daemon {
    /// Starts `program args…` with `envs`, logging both output streams to `log_path`
    /// (appended, so restarts share one file). `DATABASE_URL` and `TILL_NODE_*` are removed
    /// from the inherited environment so that only what the test passes counts.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[OsString],
        envs: &[(&str, String)],
        log_path: &Path,
    ) -> anyhow::Result<Daemon> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("DATABASE_URL")
            .env_remove("TILL_NODE_HUB_TOKEN")
            .env_remove("TILL_NODE_ADMIN_TOKEN")
            .env("NO_COLOR", "1");
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        let output = Arc::new(Mutex::new(Output::default()));
        let mut readers = Vec::new();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        writeln!(log, "---- {name} started (pid {}) ----", child.id())?;
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let log = log.try_clone()?;
            let output = Arc::clone(&output);
            readers.push(std::thread::spawn(move || read_lines(stream, log, &output)));
        }
        Ok(Daemon {
            name: name.to_owned(),
            child: Some(child),
            output,
            readers,
            log_path: log_path.to_owned(),
        })
    }

    /// The daemon's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of output, for error messages.
    pub fn tail(&self) -> String {
        let output = lock(&self.output);
        let skip = output.tail.len().saturating_sub(60);
        output
            .tail
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the `listening on IP:PORT` line and returns the address. Fails when the
    /// process exits first or `timeout` passes.
    pub async fn wait_listening(&mut self, timeout: Duration) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(addr) = lock(&self.output).listening {
                return Ok(addr);
            }
            if let Some(status) = self.try_exit_status()? {
                // Let the readers drain what the process wrote before it died.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!(
                    "{} exited ({status}) before listening; log {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    self.tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not log `listening on` within {timeout:?}; log {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    self.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The exit status if the process has ended.
    pub fn try_exit_status(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("{} was already stopped", self.name),
        }
    }

    /// SIGKILL (kill -9) and reap. Safe to call when already stopped.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // ESRCH (already gone) is fine: we reap below either way.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait();
        }
        self.join_readers();
    }

    /// SIGTERM, then SIGKILL if the process has not exited within 10 s. Returns the status.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        self.join_readers();
        status
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last output of {} (full log: {}) ----\n{}",
                self.name,
                self.log_path.display(),
                self.tail()
            );
        }
        self.kill9();
    }
}

fn lock(output: &Mutex<Output>) -> MutexGuard<'_, Output> {
    // A reader thread cannot panic while holding the lock, but never turn a poisoned lock
    // into a second panic during cleanup.
    output
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read_lines(stream: Box<dyn Read + Send>, mut log: std::fs::File, output: &Mutex<Output>) {
    let mut reader = BufReader::new(stream);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = strip_ansi(&String::from_utf8_lossy(&raw));
        let line = line.trim_end();
        let _ = writeln!(log, "{line}");
        let mut output = lock(output);
        if output.listening.is_none() {
            output.listening = parse_listening(line);
        }
        if output.tail.len() == TAIL_LINES {
            output.tail.pop_front();
        }
        output.tail.push_back(line.to_owned());
    }
}

/// The address in a `… listening on 127.0.0.1:8080 …` line (also `http://…`, `addr=…`).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on")? + "listening on".len()..];
    rest.split(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '\'')
        .map(|token| {
            let token = token
                .trim_start_matches("addr=")
                .trim_start_matches("http://");
            token.trim_end_matches(['/', '.', ')', ';'])
        })
        .find_map(|token| token.parse().ok())
}

/// Removes ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_are_parsed() {
        let addr: SocketAddr = "127.0.0.1:43123".parse().expect("addr");
        for line in [
            "2026-01-01T00:00:00Z  INFO hub: listening on 127.0.0.1:43123",
            "INFO till_node: listening on http://127.0.0.1:43123/ store=S1",
            "INFO listening on addr=127.0.0.1:43123",
            r#"{"level":"INFO","message":"listening on 127.0.0.1:43123"}"#,
        ] {
            assert_eq!(parse_listening(line), Some(addr), "{line}");
        }
        assert_eq!(parse_listening("INFO starting"), None);
        assert_eq!(parse_listening("listening on nothing"), None);
    }

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[32m INFO\u{1b}[0m listening on 1.2.3.4:5"),
            " INFO listening on 1.2.3.4:5"
        );
    }
}
