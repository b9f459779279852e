//! The OFD side of the pipeline: the FN–OFD container ([`container`]), the HTTP client that
//! carries it ([`client`]) and the circuit-breaker wrapper ([`guard`]). The OFD emulator the
//! tests and the demo run against is in the `fiscal-emulators` crate.
//!
//! Error policy in one place: [`OfdError::trips_breaker`] says which failures count against the
//! link, [`OfdError::is_permanent`] which ones go to the dead-letter queue at once, and
//! [`next_step`] turns an error into the pure retry [`Decision`].

pub mod client;
pub mod container;
pub mod guard;
pub mod tlv;

use crate::backoff::{Backoff, Decision};
pub use client::{ClientBuildError, OfdClient};
pub use container::{ContainerError, FnNumber, OfdAck, OfdContainer};
pub use guard::GuardedOfd;
use rand::Rng;
use std::future::Future;
use std::time::Duration;
use thiserror::Error;

/// Path of the exchange endpoint on the OFD (real and emulated).
pub const EXCHANGE_PATH: &str = "/ofd/v1/exchange";

/// Why a document was not acknowledged by the OFD.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OfdError {
    /// No complete answer within the client's timeout.
    #[error("OFD did not answer in time")]
    Timeout,
    /// No connection, or the connection was closed before an answer.
    #[error("OFD unreachable: {0}")]
    Unreachable(String),
    /// The OFD answered 5xx.
    #[error("OFD server error {status}")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// The OFD answered 429; `retry_after` is its `Retry-After`, when parseable.
    #[error("OFD rate limit, retry after {retry_after:?}")]
    RateLimited {
        /// Delay the OFD asked for.
        retry_after: Option<Duration>,
    },
    /// The OFD refused our credentials (401/403).
    #[error("OFD refused our credentials ({status})")]
    Unauthorized {
        /// HTTP status.
        status: u16,
    },
    /// The operator rejected the document (1022 ≠ 0). Permanent.
    #[error("OFD rejected the document with code {code}")]
    Rejected {
        /// The operator's answer code (1022).
        code: u8,
    },
    /// Any other 4xx: the OFD says our request is malformed. Permanent.
    #[error("OFD refused the request with status {status}")]
    BadRequest {
        /// HTTP status.
        status: u16,
    },
    /// The answer was not a valid acknowledgement of this document.
    #[error("invalid OFD answer: {0}")]
    InvalidAnswer(String),
    /// The circuit breaker is OPEN: nothing was sent.
    #[error("OFD circuit open until {next_attempt_ms}")]
    CircuitOpen {
        /// When the breaker will next admit a call.
        next_attempt_ms: u64,
    },
    /// The document cannot be put in a container (too large, FD out of range). Permanent.
    #[error("cannot encode the container: {0}")]
    Encode(#[from] ContainerError),
}

impl OfdError {
    /// True for failures of the link or the OFD service, which count towards opening the
    /// circuit. An operator rejection or a 4xx means the OFD is up and answering.
    pub fn trips_breaker(&self) -> bool {
        matches!(
            self,
            Self::Timeout
                | Self::Unreachable(_)
                | Self::Server { .. }
                | Self::RateLimited { .. }
                | Self::Unauthorized { .. }
                | Self::InvalidAnswer(_)
        )
    }

    /// True when retrying the same bytes cannot succeed: dead-letter at once.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Rejected { .. } | Self::BadRequest { .. } | Self::Encode(_)
        )
    }

    /// True when the link failed rather than the document (no answer, timeout, rate limit):
    /// retried without limit, never dead-lettered for it.
    pub fn is_link_failure(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Unreachable(_) | Self::RateLimited { .. }
        )
    }

    /// The server's `Retry-After`, in milliseconds, if it gave one.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after: Some(delay),
            } => Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            _ => None,
        }
    }
}

/// Something that delivers a container to an OFD: the HTTP client, the breaker wrapper, or a
/// fake in tests.
pub trait OfdTransport: Send + Sync {
    /// Sends one document and waits for the operator's acknowledgement.
    fn send(
        &self,
        container: &OfdContainer,
    ) -> impl Future<Output = Result<OfdAck, OfdError>> + Send;
}

/// What to do with a document after `error` at `now_ms`: permanent errors dead-letter at once; a
/// refusal by the open breaker waits for the breaker without spending an attempt (nothing was
/// sent); a link failure backs off without counting towards the dead-letter limit; everything
/// else backs off and counts. `Retry-After` is a floor on the delay.
pub fn next_step<R: Rng + ?Sized>(
    backoff: &mut Backoff,
    error: &OfdError,
    now_ms: u64,
    rng: &mut R,
) -> Decision {
    match error {
        OfdError::CircuitOpen { next_attempt_ms } => {
            Decision::RetryAt((*next_attempt_ms).max(now_ms))
        }
        error if error.is_permanent() => backoff.on_permanent_failure(),
        error if error.is_link_failure() => {
            Decision::RetryAt(backoff.on_link_failure(now_ms, error.retry_after_ms(), rng))
        }
        error => backoff.on_failure(now_ms, error.retry_after_ms(), rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::BackoffConfig;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn next_step_follows_the_error_policy() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(BackoffConfig::default());
        let open = OfdError::CircuitOpen {
            next_attempt_ms: 9_000,
        };
        assert_eq!(
            next_step(&mut backoff, &open, 1_000, &mut rng),
            Decision::RetryAt(9_000)
        );
        assert_eq!(backoff.attempts(), 0, "a refused call is not an attempt");
        let limited = OfdError::RateLimited {
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            next_step(&mut backoff, &limited, 1_000, &mut rng),
            Decision::RetryAt(91_000)
        );
        assert_eq!(
            next_step(
                &mut backoff,
                &OfdError::Rejected { code: 14 },
                1_000,
                &mut rng
            ),
            Decision::DeadLetter
        );
    }

    #[test]
    fn rejection_is_permanent_and_does_not_trip_the_breaker() {
        let rejected = OfdError::Rejected { code: 14 };
        assert!(rejected.is_permanent() && !rejected.trips_breaker());
        assert!(OfdError::Timeout.trips_breaker() && !OfdError::Timeout.is_permanent());
        assert!(OfdError::Server { status: 503 }.trips_breaker());
    }
}
