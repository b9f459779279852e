//! Circuit breaker guarding the OFD link, as a pure state machine: every call takes `now_ms`
//! (milliseconds on any clock the caller chooses, usually Unix time) and no call does IO.
//!
//! CLOSED → OPEN after `failure_threshold` consecutive failures → after `open_duration_ms`
//! HALF_OPEN lets exactly one probe through → CLOSED on its success, OPEN again on its failure.
//! While OPEN nothing is sent, so a dead OFD is not hammered by hundreds of buffered receipts.

use serde::Serialize;

/// Tuning of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit (the seeds' 5).
    pub failure_threshold: u32,
    /// How long the circuit stays OPEN before a probe is allowed (the seeds' 60 s).
    pub open_duration_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_duration_ms: 60_000,
        }
    }
}

/// The three breaker states, named as the till's health endpoint reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are refused until `next_attempt_time_ms`.
    Open,
    /// One probe call is allowed to test the link.
    HalfOpen,
}

/// What the breaker says about a call the caller wants to make now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (CLOSED).
    Allowed,
    /// Go ahead: this call is the single HALF_OPEN probe; report its outcome.
    Probe,
    /// Do not call before `next_attempt_ms`.
    Rejected {
        /// Earliest time a call may be admitted again.
        next_attempt_ms: u64,
    },
}

impl Admission {
    /// True when the call may proceed.
    pub fn is_allowed(self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }
}

/// A point-in-time view of the breaker for health endpoints and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreakerSnapshot {
    /// Current state.
    pub state: BreakerState,
    /// Consecutive failures counted so far.
    pub failure_count: u32,
    /// When the last failure was recorded.
    pub last_failure_time_ms: Option<u64>,
    /// When a call will next be admitted (OPEN/HALF_OPEN), `None` when CLOSED.
    pub next_attempt_time_ms: Option<u64>,
    /// How many times the circuit has opened since start.
    pub opens_total: u64,
}

/// The breaker itself. Cheap to clone; keep one per OFD link behind a mutex.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    failure_count: u32,
    last_failure_time_ms: Option<u64>,
    next_attempt_time_ms: Option<u64>,
    opens_total: u64,
    /// When the HALF_OPEN probe was handed out, if one is in flight.
    probe_started_ms: Option<u64>,
}

impl CircuitBreaker {
    /// A CLOSED breaker. A threshold of 0 is treated as 1: a breaker that opens before any
    /// failure would never let a call through.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                ..config
            },
            state: BreakerState::Closed,
            failure_count: 0,
            last_failure_time_ms: None,
            next_attempt_time_ms: None,
            opens_total: 0,
            probe_started_ms: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Asks whether a call may be made at `now_ms`. Moves OPEN → HALF_OPEN when the window has
    /// passed and hands out the single probe. A probe whose outcome is never reported (the
    /// caller was cancelled) expires after another `open_duration_ms`, so the breaker cannot be
    /// wedged in HALF_OPEN for ever.
    pub fn admit(&mut self, now_ms: u64) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => {
                let next = self.next_attempt_time_ms.unwrap_or(now_ms);
                if now_ms < next {
                    return Admission::Rejected {
                        next_attempt_ms: next,
                    };
                }
                self.state = BreakerState::HalfOpen;
                self.probe_started_ms = Some(now_ms);
                Admission::Probe
            }
            BreakerState::HalfOpen => match self.probe_started_ms {
                Some(started) if now_ms < started.saturating_add(self.config.open_duration_ms) => {
                    Admission::Rejected {
                        next_attempt_ms: started.saturating_add(self.config.open_duration_ms),
                    }
                }
                _ => {
                    self.probe_started_ms = Some(now_ms);
                    Admission::Probe
                }
            },
        }
    }

    /// Records a successful call: the circuit closes and the failure count resets.
    pub fn record_success(&mut self, _now_ms: u64) {
        self.state = BreakerState::Closed;
        self.failure_count = 0;
        self.next_attempt_time_ms = None;
        self.probe_started_ms = None;
    }

    /// Records a failed call. Opens the circuit on the threshold-th consecutive failure, or at
    /// once when the HALF_OPEN probe fails.
    pub fn record_failure(&mut self, now_ms: u64) {
        self.failure_count = self.failure_count.saturating_add(1);
        self.last_failure_time_ms = Some(now_ms);
        match self.state {
            BreakerState::Closed if self.failure_count >= self.config.failure_threshold => {
                self.open(now_ms);
            }
            BreakerState::Closed => {}
            BreakerState::HalfOpen => self.open(now_ms),
            // A late report from a call admitted before the circuit opened: push the window
            // back so the next probe waits the full period after the latest failure.
            BreakerState::Open => {
                self.next_attempt_time_ms =
                    Some(now_ms.saturating_add(self.config.open_duration_ms));
            }
        }
    }

    /// Administrative reset (`POST /v1/kkt/circuit_breaker/reset`): back to CLOSED with a clean
    /// failure count. `opens_total` is kept: it is a counter for metrics.
    pub fn reset(&mut self) {
        self.state = BreakerState::Closed;
        self.failure_count = 0;
        self.last_failure_time_ms = None;
        self.next_attempt_time_ms = None;
        self.probe_started_ms = None;
    }

    /// Current state (without advancing OPEN → HALF_OPEN; only [`Self::admit`] does that).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Consecutive failures counted.
    pub fn failure_count(&self) -> u32 {
        self.failure_count
    }

    /// When the last failure was recorded.
    pub fn last_failure_time_ms(&self) -> Option<u64> {
        self.last_failure_time_ms
    }

    /// When a call will next be admitted, `None` when CLOSED.
    pub fn next_attempt_time_ms(&self) -> Option<u64> {
        match self.state {
            BreakerState::Closed => None,
            BreakerState::Open => self.next_attempt_time_ms,
            BreakerState::HalfOpen => self
                .probe_started_ms
                .map(|started| started.saturating_add(self.config.open_duration_ms)),
        }
    }

    /// How many times the circuit has opened.
    pub fn opens_total(&self) -> u64 {
        self.opens_total
    }

    /// Everything above in one value.
    pub fn snapshot(&self) -> BreakerSnapshot {
        BreakerSnapshot {
            state: self.state,
            failure_count: self.failure_count,
            last_failure_time_ms: self.last_failure_time_ms,
            next_attempt_time_ms: self.next_attempt_time_ms(),
            opens_total: self.opens_total,
        }
    }

    fn open(&mut self, now_ms: u64) {
        self.state = BreakerState::Open;
        self.next_attempt_time_ms = Some(now_ms.saturating_add(self.config.open_duration_ms));
        self.probe_started_ms = None;
        self.opens_total += 1;
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(BreakerConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::default()
    }

    fn fail(breaker: &mut CircuitBreaker, times: u32, now_ms: u64) {
        for _ in 0..times {
            assert!(breaker.admit(now_ms).is_allowed());
            breaker.record_failure(now_ms);
        }
    }

    #[test]
    fn opens_on_the_fifth_consecutive_failure() {
        let mut breaker = breaker();
        fail(&mut breaker, 4, 1_000);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.failure_count(), 4);
        fail(&mut breaker, 1, 2_000);
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.state, BreakerState::Open);
        assert_eq!(snapshot.failure_count, 5);
        assert_eq!(snapshot.last_failure_time_ms, Some(2_000));
        assert_eq!(snapshot.next_attempt_time_ms, Some(62_000));
        assert_eq!(snapshot.opens_total, 1);
        assert_eq!(
            breaker.admit(61_999),
            Admission::Rejected {
                next_attempt_ms: 62_000
            }
        );
    }

    #[test]
    fn half_open_allows_exactly_one_probe_then_closes_on_success() {
        let mut breaker = breaker();
        fail(&mut breaker, 5, 0);
        assert_eq!(breaker.admit(60_000), Admission::Probe);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(
            !breaker.admit(60_001).is_allowed(),
            "a second probe slipped through"
        );
        breaker.record_success(60_500);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.failure_count(), 0);
        assert_eq!(breaker.next_attempt_time_ms(), None);
        assert_eq!(breaker.admit(60_501), Admission::Allowed);
    }

    #[test]
    fn failed_probe_reopens_for_a_full_window() {
        let mut breaker = breaker();
        fail(&mut breaker, 5, 0);
        assert_eq!(breaker.admit(60_000), Admission::Probe);
        breaker.record_failure(60_100);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.opens_total(), 2);
        assert_eq!(breaker.next_attempt_time_ms(), Some(120_100));
        assert!(!breaker.admit(120_099).is_allowed());
        assert_eq!(breaker.admit(120_100), Admission::Probe);
    }

    #[test]
    fn a_success_between_failures_keeps_it_closed() {
        // Flapping: four failures, one success, four failures, one success… never five in a row.
        let mut breaker = breaker();
        for round in 0..10 {
            fail(&mut breaker, 4, round * 10);
            breaker.record_success(round * 10 + 5);
            assert_eq!(breaker.state(), BreakerState::Closed, "round {round}");
        }
        assert_eq!(breaker.opens_total(), 0);
    }

    #[test]
    fn flapping_link_opens_and_recovers_repeatedly() {
        let config = BreakerConfig {
            failure_threshold: 5,
            open_duration_ms: 200,
        };
        let mut breaker = CircuitBreaker::new(config);
        let mut now = 0;
        for cycle in 1..=3 {
            fail(&mut breaker, 5, now);
            assert_eq!(breaker.state(), BreakerState::Open);
            now += 100;
            assert!(!breaker.admit(now).is_allowed());
            now += 100;
            assert_eq!(breaker.admit(now), Admission::Probe);
            if cycle == 2 {
                breaker.record_failure(now);
                now += 200;
                assert_eq!(breaker.admit(now), Admission::Probe);
            }
            breaker.record_success(now);
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
        assert_eq!(breaker.opens_total(), 4);
    }

    #[test]
    fn a_lost_probe_expires() {
        let mut breaker = breaker();
        fail(&mut breaker, 5, 0);
        assert_eq!(breaker.admit(60_000), Admission::Probe);
        assert!(!breaker.admit(119_999).is_allowed());
        assert_eq!(breaker.admit(120_000), Admission::Probe);
    }

    #[test]
    fn reset_closes_and_keeps_the_open_counter() {
        let mut breaker = breaker();
        fail(&mut breaker, 5, 0);
        breaker.reset();
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.state, BreakerState::Closed);
        assert_eq!(snapshot.failure_count, 0);
        assert_eq!(snapshot.last_failure_time_ms, None);
        assert_eq!(snapshot.opens_total, 1);
        assert_eq!(breaker.admit(1), Admission::Allowed);
    }

    #[test]
    fn zero_threshold_is_treated_as_one() {
        let mut breaker = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 0,
            open_duration_ms: 10,
        });
        assert_eq!(breaker.admit(0), Admission::Allowed);
        breaker.record_failure(0);
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
