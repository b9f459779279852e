//! The sync loop with the hub: one [`Syncer`] per daemon.
//!
//! A sync *round* is the sync-engine client loop (a `SyncRound`, see `sync_engine::client`)
//! driven through [`HubSync`](crate::node::HubSync): build a request under the node lock, post
//! it to `{hub}/api/v1/sync` (no lock held while waiting), apply and persist the reply under the
//! lock — one round trip — until the round has nothing left to say. Rounds never overlap: they hold the `running` mutex, which is also what makes a forced sync answer 409
//! while one is in progress.
//!
//! When rounds start: once at start, then every `--heartbeat-secs` while the link is online
//! and the last round worked, every `--probe-secs` (default 1 s) while the link is degraded
//! or offline or the last round failed (so buffered receipts reach a returning hub within
//! about a second, with no operator action), and right after a sale in every link state (a
//! [`Notify`] holds at most one wake-up, so a burst of sales makes one push, never concurrent
//! ones). See [`next_wait`]. Each round is one contact recorded in the [`LinkMonitor`]
//! (latency, hub error, unreachable) and in the metrics.
//!
//! A document whose sync message exceeds the envelope limit cannot be sent at all (see
//! `SyncRound::oversized`): after each round the loop sets `kkt_sync_oversized_docs`
//! and logs a warning naming each document that newly became too large.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sync_engine::http_client::{HttpSyncClient, TransportError};
use sync_engine::{DocId, MAX_MESSAGE_BYTES};
use tokio::sync::{watch, Notify};

use crate::link::{Check, LinkMonitor, LinkState};
use crate::metrics::Metrics;
use crate::node::{NodeError, NodeHandle, NodeTaskError};
use crate::time::now_ms;

/// How often the loop syncs: see [`next_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTiming {
    /// Between rounds while the link is online and the last round worked.
    pub heartbeat: Duration,
    /// Between rounds otherwise (never longer than `heartbeat`).
    pub probe: Duration,
}

/// How long the loop waits after a round, given the link as it stands: the heartbeat while
/// online with no failure since, else the (shorter) probe interval.
pub fn next_wait(link: &LinkSnapshot, timing: SyncTiming) -> Duration {
    if link.state == LinkState::Online && link.consecutive_failures == 0 {
        timing.heartbeat
    } else {
        timing.probe.min(timing.heartbeat)
    }
}
/// Timeout of one round trip to the hub.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// A round trip slower than this counts as a degraded link.
pub const SLOW_ROUND_MS: u64 = 2_000;
/// Minimum time in a link state before it may switch (brief §4).
pub const LINK_HOLD_MS: u64 = 90_000;

/// What the cashier and support see of the link.
#[derive(Debug, Clone)]
pub struct LinkSnapshot {
    /// Online, degraded or offline.
    pub state: LinkState,
    /// When a sync round last completed (Unix ms).
    pub last_sync_ms: Option<u64>,
    /// When a round was last attempted (Unix ms).
    pub last_attempt_ms: Option<u64>,
    /// Why the last round failed, if it did (no secrets, no bodies).
    pub last_error: Option<String>,
    /// Failed rounds in a row.
    pub consecutive_failures: u32,
}

#[derive(Debug)]
struct LinkStatus {
    monitor: LinkMonitor,
    snapshot: LinkSnapshot,
}

/// What one completed round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Round trips made.
    pub rounds: u32,
    /// Documents that received changes from the hub.
    pub docs_changed: usize,
    /// Receipts the hub acknowledged in this round.
    pub receipts_synced: usize,
}

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The round trip failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The node refused or failed a step (protocol error, storage failure).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A node call did not complete.
    #[error(transparent)]
    Task(#[from] NodeTaskError),
}

impl SyncFailure {
    /// How this failure counts for the link state; `None` when the link is not to blame.
    fn check(&self) -> Option<Check> {
        match self {
            SyncFailure::Transport(
                TransportError::Timeout | TransportError::Unreachable(_) | TransportError::Http(_),
            ) => Some(Check::Unreachable),
            SyncFailure::Transport(_) => Some(Check::ServerError),
            SyncFailure::Node(NodeError::Sync(_)) => Some(Check::ServerError),
            SyncFailure::Node(_) | SyncFailure::Task(_) => None,
        }
    }
}

/// Runs sync rounds with the hub. See the module documentation.
#[derive(Debug)]
pub struct Syncer {
    node: NodeHandle,
    client: HttpSyncClient,
    metrics: Metrics,
    timing: SyncTiming,
    link: Mutex<LinkStatus>,
    running: Arc<tokio::sync::Mutex<()>>,
    wake: Notify,
    /// Documents too large to sync, as of the last round that built a request.
    oversized: Mutex<BTreeSet<DocId>>,
}

impl Syncer {
    /// A syncer for the hub at `hub_url` (its sync endpoint is `{hub_url}/api/v1/sync`).
    pub fn new(
        node: NodeHandle,
        hub_url: &str,
        hub_token: &str,
        timing: SyncTiming,
        metrics: Metrics,
    ) -> Result<Syncer, TransportError> {
        let base = format!("{}/api", hub_url.trim_end_matches('/'));
        let client = HttpSyncClient::new(&base, hub_token, ROUND_TIMEOUT)?;
        metrics.network_state.set(network_gauge(LinkState::Offline));
        Ok(Syncer {
            node,
            client,
            metrics,
            timing,
            link: Mutex::new(LinkStatus {
                monitor: LinkMonitor::new(SLOW_ROUND_MS, LINK_HOLD_MS),
                snapshot: LinkSnapshot {
                    state: LinkState::Offline,
                    last_sync_ms: None,
                    last_attempt_ms: None,
                    last_error: None,
                    consecutive_failures: 0,
                },
            }),
            running: Arc::new(tokio::sync::Mutex::new(())),
            wake: Notify::new(),
            oversized: Mutex::new(BTreeSet::new()),
        })
    }

    /// Documents too large to sync, as of the last round.
    pub fn oversized_docs(&self) -> Vec<DocId> {
        self.oversized
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The link as last seen.
    pub fn link(&self) -> LinkSnapshot {
        self.link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot
            .clone()
    }

    /// Whether a round is running now.
    pub fn is_running(&self) -> bool {
        self.running.try_lock().is_err()
    }

    /// Asks for a push now (after a sale), whatever the link state; the wake-up is one stored
    /// permit, so a burst of sales during a round makes exactly one more round.
    pub fn notify_sale(&self) {
        self.wake.notify_one();
    }

    /// Starts a round in the background unless one is running; returns whether it started.
    pub fn try_start(self: &Arc<Self>) -> bool {
        let Ok(guard) = Arc::clone(&self.running).try_lock_owned() else {
            return false;
        };
        let syncer = Arc::clone(self);
        tokio::spawn(async move {
            let _ = syncer.run_logged().await;
            drop(guard);
        });
        true
    }

    /// Runs one round now, waiting for a running one to finish first.
    pub async fn sync_now(&self) -> Result<SyncReport, SyncFailure> {
        let _guard = self.running.lock().await;
        self.run_logged().await
    }

    /// Runs rounds until `shutdown` turns true. See the module documentation for timing.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let _ = self.sync_now().await;
            let wait = next_wait(&self.link(), self.timing);
            tokio::select! {
                changed = shutdown.changed() => {
                    // The sender is gone: nobody can stop us any more, so stop now.
                    if changed.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
        tracing::debug!("sync loop stopped");
    }

    /// One round (caller holds `running`), with logging, link state and metrics.
    async fn run_logged(&self) -> Result<SyncReport, SyncFailure> {
        let started = Instant::now();
        let result = self.run_round().await;
        let elapsed = started.elapsed();
        self.metrics
            .sync_duration_seconds
            .observe(elapsed.as_secs_f64());
        let now = now_ms();
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        link.snapshot.last_attempt_ms = Some(now);
        let check = match &result {
            Ok(report) => {
                self.metrics
                    .receipts_synced_total
                    .inc_by(u64::try_from(report.receipts_synced).unwrap_or(0));
                link.snapshot.last_sync_ms = Some(now);
                link.snapshot.last_error = None;
                link.snapshot.consecutive_failures = 0;
                tracing::debug!(
                    rounds = report.rounds,
                    docs_changed = report.docs_changed,
                    receipts_synced = report.receipts_synced,
                    elapsed_ms = elapsed.as_millis(),
                    "sync round done"
                );
                Some(Check::Answered {
                    latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                })
            }
            Err(error) => {
                self.metrics.sync_failures_total.inc();
                link.snapshot.last_error = Some(error.to_string());
                link.snapshot.consecutive_failures =
                    link.snapshot.consecutive_failures.saturating_add(1);
                // The first failure of a series is worth a warning; the rest are the same news.
                if link.snapshot.consecutive_failures == 1 {
                    tracing::warn!(%error, "sync with the hub failed");
                } else {
                    tracing::debug!(%error, "sync with the hub failed again");
                }
                error.check()
            }
        };
        if let Some(check) = check {
            let before = link.snapshot.state;
            let state = link.monitor.record(check, now);
            link.snapshot.state = state;
            self.metrics.network_state.set(network_gauge(state));
            if state != before {
                tracing::info!(
                    from = before.as_str(),
                    to = state.as_str(),
                    "hub link state changed"
                );
            }
        }
        result
    }

    /// One round; afterwards, whatever its outcome, records which documents were too large.
    async fn run_round(&self) -> Result<SyncReport, SyncFailure> {
        let mut oversized = None;
        let result = self.run_round_trips(&mut oversized).await;
        if let Some(oversized) = oversized {
            self.note_oversized(oversized);
        }
        result
    }

    /// The round trips of one round. `oversized` is set from the client after each request it
    /// builds (it stays `None` when the round never got that far).
    async fn run_round_trips(
        &self,
        oversized: &mut Option<BTreeSet<DocId>>,
    ) -> Result<SyncReport, SyncFailure> {
        let mut client = self
            .node
            .call(|node| node.hub_sync().start_round())
            .await??;
        let mut report = SyncReport::default();
        loop {
            let (returned, request, too_large) = self
                .node
                .call(move |node| {
                    let request = node.hub_sync().next_request(&mut client);
                    let too_large: BTreeSet<DocId> = client.oversized().cloned().collect();
                    (client, request, too_large)
                })
                .await?;
            client = returned;
            *oversized = Some(too_large);
            let Some(request) = request? else {
                break;
            };
            let reply = self.client.round(&request).await?;
            let (returned, outcome) = self
                .node
                .call(move |node| {
                    let outcome = node.hub_sync().apply_reply(&mut client, &reply);
                    (client, outcome)
                })
                .await?;
            client = returned;
            let outcome = outcome?;
            report.rounds += 1;
            report.docs_changed += outcome.docs_changed;
            report.receipts_synced += outcome.receipts_synced;
            for (doc, error) in &outcome.failed {
                tracing::warn!(%doc, %error, "a document from the hub could not be applied");
            }
            for doc in &outcome.ignored_offers {
                tracing::debug!(%doc, "declined a document offered by the hub");
            }
        }
        Ok(report)
    }

    /// Sets the gauge and logs documents that became (or stopped being) too large to sync.
    fn note_oversized(&self, now: BTreeSet<DocId>) {
        let mut known = self
            .oversized
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for doc in now.difference(&known) {
            tracing::warn!(
                %doc,
                limit_bytes = MAX_MESSAGE_BYTES,
                "document too large to sync: its changes exceed the sync message limit and stay \
                 on this till until support splits or compacts it"
            );
        }
        for doc in known.difference(&now) {
            tracing::info!(%doc, "document no longer too large to sync");
        }
        self.metrics
            .sync_oversized_docs
            .set(i64::try_from(now.len()).unwrap_or(i64::MAX));
        *known = now;
    }
}

/// The `kkt_network_state` value of a link state.
pub fn network_gauge(state: LinkState) -> i64 {
    match state {
        LinkState::Online => 0,
        LinkState::Degraded => 1,
        LinkState::Offline => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(state: LinkState, consecutive_failures: u32) -> LinkSnapshot {
        LinkSnapshot {
            state,
            last_sync_ms: None,
            last_attempt_ms: None,
            last_error: None,
            consecutive_failures,
        }
    }

    const TIMING: SyncTiming = SyncTiming {
        heartbeat: Duration::from_secs(30),
        probe: Duration::from_secs(1),
    };

    #[test]
    fn the_loop_probes_at_the_probe_interval_unless_online_and_well() {
        assert_eq!(
            next_wait(&link(LinkState::Online, 0), TIMING),
            TIMING.heartbeat
        );
        for (state, failures) in [
            (LinkState::Offline, 0),
            (LinkState::Offline, 5),
            (LinkState::Degraded, 0),
            (LinkState::Online, 1),
        ] {
            assert_eq!(
                next_wait(&link(state, failures), TIMING),
                TIMING.probe,
                "{state:?} after {failures} failures"
            );
        }
    }

    #[test]
    fn the_probe_is_never_slower_than_the_heartbeat() {
        let timing = SyncTiming {
            heartbeat: Duration::from_secs(2),
            probe: Duration::from_secs(10),
        };
        assert_eq!(
            next_wait(&link(LinkState::Offline, 3), timing),
            timing.heartbeat
        );
    }
}
