//! The OFD emulator as an HTTP server: `POST /ofd/v1/exchange` takes the FN–OFD container and
//! answers with an operator confirmation; `POST /control/mode`, `GET /control/received` and
//! `GET /control/stats` drive and inspect it. Used by the integration tests ([`spawn`]) and by
//! the demo and acceptance scripts (`fiscal ofd-emulator --listen ADDR`, [`cli_main`]).
//!
//! The accept loop is hyper's, not `axum::serve`, for one reason: the `down` mode must close the
//! connection without any answer, which axum's infallible router cannot express. The routes
//! themselves are an ordinary axum [`Router`] ([`app`]).
//!
//! The fault modes, the received documents and the decision for each request are the sans-IO
//! state machine in [`state`]; this module only translates its outcomes into HTTP.

pub mod state;

pub use state::{Mode, ModeError, ModeRequest, ReceivedDocument, Stats};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use fiscal::ofd::container::MAX_MESSAGE_LEN;
use fiscal::ofd::guard::unix_time_ms;
use fiscal::ofd::EXCHANGE_PATH;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use state::{EmulatorState, Outcome};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// Concurrent connections served; further ones are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// Largest control request body.
const MAX_CONTROL_BODY: usize = 4 * 1024;
/// Time a client gets to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The emulator state shared by every connection.
#[derive(Debug, Default)]
pub struct Shared {
    state: Mutex<EmulatorState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EmulatorState> {
        // Every mutation is a handful of assignments with no await inside; a poisoned lock
        // still holds consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every document received so far.
    pub fn received(&self) -> Vec<ReceivedDocument> {
        self.lock().received()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats()
    }

    /// Sets the fault mode directly (tests may also use `POST /control/mode`).
    pub fn set_mode(&self, request: &ModeRequest) -> Result<(), ModeError> {
        self.lock().set_mode(request)
    }
}

/// The routes, for `oneshot` tests and for the server.
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            EXCHANGE_PATH,
            post(exchange).layer(DefaultBodyLimit::max(MAX_MESSAGE_LEN)),
        )
        .route(
            "/control/mode",
            post(set_mode).layer(DefaultBodyLimit::max(MAX_CONTROL_BODY)),
        )
        .route("/control/received", get(received))
        .route("/control/stats", get(stats))
        .with_state(shared)
}

async fn exchange(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let early = shared.lock().admit_request();
    let outcome = match early {
        Some(outcome) => outcome,
        None => {
            let delay = {
                let state = shared.lock();
                (state.mode() == Mode::Slow).then(|| state.slow_delay())
            };
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let now_unix_s = u32::try_from(unix_time_ms() / 1000).unwrap_or(u32::MAX);
            shared.lock().process(&body, now_unix_s)
        }
    };
    match outcome {
        Outcome::Answer(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Outcome::Status {
            status,
            retry_after_s,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = status.into_response();
            if let Some(seconds) = retry_after_s {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            }
            response
        }
        // Reached only through `oneshot` tests without the connection layer, which is where
        // `down` is really handled; an empty 503 is the nearest HTTP equivalent.
        Outcome::Drop => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn set_mode(State(shared): State<Arc<Shared>>, Json(request): Json<ModeRequest>) -> Response {
    match shared.lock().set_mode(&request) {
        Ok(()) => Json(request).into_response(),
        Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, error.to_string()).into_response(),
    }
}

async fn received(State(shared): State<Arc<Shared>>) -> Json<Vec<ReceivedDocument>> {
    Json(shared.received())
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.stats())
}

/// A running emulator; dropping it without [`EmulatorHandle::shutdown`] leaves it running until
/// the runtime ends.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EmulatorHandle {
    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for [`fiscal::ofd::OfdClient::new`].
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The emulator's state, for assertions.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes every connection and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Binds `addr` and serves the emulator on the current tokio runtime.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<EmulatorHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::default());
    let (sender, receiver) = oneshot::channel();
    let task = tokio::spawn(serve(listener, Arc::clone(&shared), receiver));
    Ok(EmulatorHandle {
        addr,
        shared,
        shutdown: Some(sender),
        task,
    })
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let router = app(Arc::clone(&shared));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared), router.clone()));
                }
                Ok((stream, peer)) => {
                    tracing::warn!(%peer, "OFD emulator: too many connections, closing");
                    drop(stream);
                }
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "OFD emulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Marker error: makes hyper close the connection without writing a response (`down` mode).
#[derive(Debug, thiserror::Error)]
#[error("OFD emulator is down: connection dropped")]
struct ConnectionDropped;

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, router: Router) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let shared = Arc::clone(&shared);
        async move {
            if request.uri().path() == EXCHANGE_PATH {
                let mut state = shared.lock();
                if state.mode() == Mode::Down {
                    let _ = state.admit_request();
                    return Err(ConnectionDropped);
                }
            }
            match router.oneshot(request.map(Body::new)).await {
                Ok(response) => Ok(response),
                Err(never) => match never {},
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    if let Err(error) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%error, "OFD emulator connection ended");
    }
}

/// Command line of `fiscal ofd-emulator`.
#[derive(Debug, Parser)]
#[command(name = "ofd-emulator", about = "Emulated OFD with fault injection")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:9300.
    #[arg(long)]
    listen: SocketAddr,
}

/// Entry point of `fiscal ofd-emulator --listen ADDR`: prints `listening on ADDR` once bound and
/// runs until SIGTERM or Ctrl-C.
pub fn cli_main(args: &[String]) -> anyhow::Result<()> {
    let args = Args::try_parse_from(
        std::iter::once("ofd-emulator".to_owned()).chain(args.iter().cloned()),
    )?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let handle = spawn(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("listening on {}", handle.addr());
        wait_for_termination().await?;
        handle.shutdown().await;
        Ok(())
    })
}

async fn wait_for_termination() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot wait for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
