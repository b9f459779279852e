//! Link state to the hub (online / degraded / offline) with hysteresis.
//!
//! Each heartbeat or sync attempt is one [`Check`]. The state only changes when
//! [`CHECKS_TO_SWITCH`] checks in a row point at the same new state *and* the
//! current state has been held for at least `min_hold_ms` (90 s by default, as
//! the seeds' runbooks expect), so one lost packet never flips the state shown
//! to the cashier. The very first check after start decides at once: there is
//! no earlier state worth protecting.
//!
//! Pure logic: the caller passes `now_ms`, which keeps it testable.

use serde::Serialize;

/// How many consecutive checks must agree before the state switches.
pub const CHECKS_TO_SWITCH: usize = 3;

/// Network state as shown to cashiers and support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// The hub answers promptly.
    Online,
    /// The hub answers, but slowly or with server errors.
    Degraded,
    /// The hub cannot be reached.
    Offline,
}

impl LinkState {
    /// Lower-case name, as used in JSON and the POS page.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Online => "online",
            LinkState::Degraded => "degraded",
            LinkState::Offline => "offline",
        }
    }
}

/// The outcome of one contact with the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Answered successfully within `latency_ms`.
    Answered { latency_ms: u64 },
    /// Reached the hub, but it failed (5xx) — the link works, the service does not.
    ServerError,
    /// Connection refused, timed out, DNS failure and the like.
    Unreachable,
}

/// Tracks the link state with hysteresis.
#[derive(Debug, Clone)]
pub struct LinkMonitor {
    state: Option<LinkState>,
    since_ms: u64,
    recent: Vec<LinkState>,
    slow_ms: u64,
    min_hold_ms: u64,
    last_success_ms: Option<u64>,
}

impl LinkMonitor {
    /// `slow_ms`: an answer slower than this counts as degraded.
    /// `min_hold_ms`: minimum time in a state before switching.
    pub fn new(slow_ms: u64, min_hold_ms: u64) -> Self {
        Self {
            state: None,
            since_ms: 0,
            recent: Vec::with_capacity(CHECKS_TO_SWITCH),
            slow_ms,
            min_hold_ms,
            last_success_ms: None,
        }
    }

    /// Current state; `Offline` until the first check.
    pub fn state(&self) -> LinkState {
        self.state.unwrap_or(LinkState::Offline)
    }

    /// When the hub last answered successfully (Unix ms).
    pub fn last_success_ms(&self) -> Option<u64> {
        self.last_success_ms
    }

    /// Records one check; returns the (possibly new) state.
    pub fn record(&mut self, check: Check, now_ms: u64) -> LinkState {
        let candidate = match check {
            Check::Answered { latency_ms } => {
                self.last_success_ms = Some(now_ms);
                if latency_ms > self.slow_ms {
                    LinkState::Degraded
                } else {
                    LinkState::Online
                }
            }
            Check::ServerError => LinkState::Degraded,
            Check::Unreachable => LinkState::Offline,
        };
        let Some(current) = self.state else {
            self.switch(candidate, now_ms);
            return candidate;
        };
        if candidate == current {
            self.recent.clear();
            return current;
        }
        if self.recent.last().is_some_and(|last| *last != candidate) {
            self.recent.clear();
        }
        self.recent.push(candidate);
        let held_ms = now_ms.saturating_sub(self.since_ms);
        if self.recent.len() >= CHECKS_TO_SWITCH && held_ms >= self.min_hold_ms {
            self.switch(candidate, now_ms);
        }
        self.state()
    }

    fn switch(&mut self, to: LinkState, now_ms: u64) {
        self.state = Some(to);
        self.since_ms = now_ms;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1000;

    fn monitor() -> LinkMonitor {
        LinkMonitor::new(2 * SEC, 90 * SEC)
    }

    #[test]
    fn first_check_decides_at_once() {
        let mut m = monitor();
        assert_eq!(m.state(), LinkState::Offline);
        assert_eq!(
            m.record(Check::Answered { latency_ms: 5 }, 0),
            LinkState::Online
        );
    }

    #[test]
    fn one_failure_does_not_flip_the_state() {
        let mut m = monitor();
        m.record(Check::Answered { latency_ms: 5 }, 0);
        assert_eq!(m.record(Check::Unreachable, 100 * SEC), LinkState::Online);
        assert_eq!(
            m.record(Check::Answered { latency_ms: 5 }, 130 * SEC),
            LinkState::Online
        );
        assert_eq!(m.record(Check::Unreachable, 160 * SEC), LinkState::Online);
        assert_eq!(m.record(Check::Unreachable, 190 * SEC), LinkState::Online);
        assert_eq!(m.record(Check::Unreachable, 220 * SEC), LinkState::Offline);
    }

    #[test]
    fn three_checks_are_not_enough_before_the_hold_time() {
        let mut m = monitor();
        m.record(Check::Answered { latency_ms: 5 }, 0);
        for t in [10, 20, 30, 40] {
            assert_eq!(m.record(Check::Unreachable, t * SEC), LinkState::Online);
        }
        assert_eq!(m.record(Check::Unreachable, 95 * SEC), LinkState::Offline);
    }

    #[test]
    fn slow_answers_and_server_errors_mean_degraded() {
        let mut m = monitor();
        m.record(Check::Answered { latency_ms: 5 }, 0);
        m.record(Check::Answered { latency_ms: 5000 }, 100 * SEC);
        m.record(Check::ServerError, 130 * SEC);
        assert_eq!(
            m.record(Check::Answered { latency_ms: 3000 }, 160 * SEC),
            LinkState::Degraded
        );
        assert!(m.last_success_ms().is_some());
    }

    #[test]
    fn mixed_candidates_restart_the_count() {
        let mut m = monitor();
        m.record(Check::Answered { latency_ms: 5 }, 0);
        m.record(Check::Unreachable, 100 * SEC);
        m.record(Check::ServerError, 130 * SEC);
        assert_eq!(m.record(Check::Unreachable, 160 * SEC), LinkState::Online);
    }
}
