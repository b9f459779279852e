//! [`GuardedOfd`]: any [`OfdTransport`] behind a [`CircuitBreaker`]. Before each send the
//! breaker is asked; while it is OPEN the call fails with [`OfdError::CircuitOpen`] without
//! touching the network. Outcomes are recorded according to [`OfdError::trips_breaker`].

use super::container::{OfdAck, OfdContainer};
use super::{OfdError, OfdTransport};
use crate::breaker::{Admission, BreakerConfig, BreakerSnapshot, CircuitBreaker};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Source of `now` in milliseconds for the breaker; Unix time by default, injectable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Milliseconds since the Unix epoch (0 if the system clock is before 1970).
pub fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// An OFD transport guarded by a circuit breaker. Share it behind an `Arc`.
pub struct GuardedOfd<T> {
    inner: T,
    breaker: Mutex<CircuitBreaker>,
    clock: Clock,
}

impl<T: fmt::Debug> fmt::Debug for GuardedOfd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedOfd")
            .field("inner", &self.inner)
            .field("breaker", &self.snapshot())
            .finish_non_exhaustive()
    }
}

impl<T: OfdTransport> GuardedOfd<T> {
    /// Guards `inner` with a breaker using the Unix-time clock.
    pub fn new(inner: T, config: BreakerConfig) -> Self {
        Self::with_clock(inner, config, Arc::new(unix_time_ms))
    }

    /// Guards `inner` with a breaker reading time from `clock`.
    pub fn with_clock(inner: T, config: BreakerConfig, clock: Clock) -> Self {
        Self {
            inner,
            breaker: Mutex::new(CircuitBreaker::new(config)),
            clock,
        }
    }

    /// Sends through the breaker. An encoding error is the caller's, not the link's, so it is
    /// recorded neither way (a probe it consumed expires after one window).
    pub async fn send(&self, container: &OfdContainer) -> Result<OfdAck, OfdError> {
        let admission = self.lock().admit((self.clock)());
        if let Admission::Rejected { next_attempt_ms } = admission {
            return Err(OfdError::CircuitOpen { next_attempt_ms });
        }
        let result = self.inner.send(container).await;
        let now_ms = (self.clock)();
        match &result {
            Err(OfdError::Encode(_)) => {}
            Err(error) if error.trips_breaker() => self.lock().record_failure(now_ms),
            _ => self.lock().record_success(now_ms),
        }
        result
    }
}

impl<T> GuardedOfd<T> {
    /// The breaker's state for health endpoints.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.lock().snapshot()
    }

    /// Administrative reset of the breaker.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// The guarded transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, CircuitBreaker> {
        // The breaker has no invariant a panicking holder could break half-way (every method
        // is a few assignments), so a poisoned lock is still safe to use.
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: OfdTransport> OfdTransport for GuardedOfd<T> {
    async fn send(&self, container: &OfdContainer) -> Result<OfdAck, OfdError> {
        GuardedOfd::send(self, container).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use crate::ofd::container::{ContainerError, FnNumber};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// A transport that fails with a scripted error and counts the calls that reached it.
    struct Scripted {
        error: Mutex<OfdError>,
        calls: AtomicU32,
    }

    impl OfdTransport for Scripted {
        async fn send(&self, _container: &OfdContainer) -> Result<OfdAck, OfdError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(self
                .error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone())
        }
    }

    fn container() -> OfdContainer {
        OfdContainer {
            fn_number: FnNumber::parse("9999078900005488").expect("16 digits"),
            doc_type: 3,
            fd: 1,
            document: Vec::new(),
        }
    }

    fn guarded(error: OfdError) -> (GuardedOfd<Scripted>, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(1_000));
        let clock_now = Arc::clone(&now);
        let transport = Scripted {
            error: Mutex::new(error),
            calls: AtomicU32::new(0),
        };
        let config = BreakerConfig {
            failure_threshold: 5,
            open_duration_ms: 60_000,
        };
        let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
        (GuardedOfd::with_clock(transport, config, clock), now)
    }

    #[tokio::test]
    async fn open_circuit_refuses_without_calling_the_transport() {
        let (guarded, now) = guarded(OfdError::Timeout);
        for _ in 0..5 {
            assert_eq!(guarded.send(&container()).await, Err(OfdError::Timeout));
        }
        assert_eq!(
            guarded.send(&container()).await,
            Err(OfdError::CircuitOpen {
                next_attempt_ms: 61_000
            })
        );
        assert_eq!(guarded.inner().calls.load(Ordering::SeqCst), 5);
        now.store(61_000, Ordering::SeqCst);
        assert_eq!(guarded.send(&container()).await, Err(OfdError::Timeout));
        assert_eq!(guarded.inner().calls.load(Ordering::SeqCst), 6, "one probe");
        assert_eq!(guarded.snapshot().opens_total, 2);
    }

    #[tokio::test]
    async fn rejections_and_encoding_errors_do_not_count_against_the_link() {
        let (guarded, _now) = guarded(OfdError::Rejected { code: 14 });
        for _ in 0..10 {
            assert!(guarded.send(&container()).await.is_err());
        }
        assert_eq!(guarded.snapshot().state, BreakerState::Closed);
        *guarded.inner().error.lock().expect("not poisoned") =
            OfdError::Encode(ContainerError::BadFd(1 << 24));
        for _ in 0..10 {
            assert!(guarded.send(&container()).await.is_err());
        }
        assert_eq!(guarded.snapshot().failure_count, 0);
    }
}
