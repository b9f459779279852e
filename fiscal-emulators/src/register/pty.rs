//! Pseudo-terminal plumbing without unsafe code: [`open_pty`] makes a raw-mode pty pair with
//! `nix::pty::openpty` + `cfmakeraw`, and [`PtyStream`] is an async read/write stream over a
//! non-blocking descriptor (tokio `AsyncFd`).
//!
//! Why not `tokio::fs::File`: it runs one blocking operation at a time on a thread pool, so
//! a read that timed out keeps the file busy and a later write waits for bytes that never
//! come. `AsyncFd` reads and writes independently and drops cleanly on timeout.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A pty pair: the master served by the emulator and the slave a client opens by path.
#[derive(Debug)]
pub struct PtyPair {
    /// The master side.
    pub master: OwnedFd,
    /// The slave side, kept open so the master never sees EOF/EIO between clients.
    pub slave: OwnedFd,
    /// The slave's device path (`/dev/pts/N`).
    pub slave_path: PathBuf,
}

/// Opens a pty pair with the slave in raw mode (8 bits, no echo, no line discipline).
pub fn open_pty() -> io::Result<PtyPair> {
    let pair = nix::pty::openpty(None, None)?;
    let mut termios = tcgetattr(&pair.slave)?;
    cfmakeraw(&mut termios);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &termios)?;
    let slave_path = nix::unistd::ttyname(&pair.slave)?;
    Ok(PtyPair {
        master: pair.master,
        slave: pair.slave,
        slave_path,
    })
}

/// An async byte stream over a pty (either side) or any other character device.
#[derive(Debug)]
pub struct PtyStream {
    fd: AsyncFd<OwnedFd>,
}

impl PtyStream {
    /// Wraps a descriptor, making it non-blocking. Must run inside a tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<PtyStream> {
        let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // `AsyncFd::new` is deprecated in favour of the `unsafe fn register`, whose contract
        // is that the descriptor stays open and unchanged while registered. `OwnedFd` upholds
        // exactly that, and the workspace forbids `unsafe`, so the safe constructor stays.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(PtyStream { fd })
    }

    /// Opens a device path (e.g. the emulator's pty link) read-write, without making it the
    /// controlling terminal, and puts it in raw mode.
    pub fn open(path: &Path) -> io::Result<PtyStream> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(path)?;
        let fd = OwnedFd::from(file);
        let mut termios = tcgetattr(&fd)?;
        cfmakeraw(&mut termios);
        tcsetattr(&fd, SetArg::TCSANOW, &termios)?;
        PtyStream::new(fd)
    }
}

impl AsyncRead for PtyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), unfilled).map_err(io::Error::from))
            {
                Ok(Ok(read)) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(error)) => return Poll::Ready(Err(error)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), buf).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the tty; there is no user-space buffer to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
