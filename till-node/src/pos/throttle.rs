//! Wrong-PIN throttling for the till's login.
//!
//! A PIN is 4 to 8 digits, so guessing is cheap unless attempts are rationed. The till counts
//! consecutive failures (one counter per till and per purpose — login, manager approval: the
//! PIN alone names the cashier, so a per-user counter cannot exist); after [`FREE_FAILURES`]
//! each further failure locks the login for a period that doubles from [`FIRST_LOCK_MS`] up to
//! [`MAX_LOCK_MS`]. An attempt counts as a failure from the moment it starts ([`PinThrottle::begin`]),
//! so a burst of concurrent guesses is cut off like a sequence of them; a success resets the
//! count. Plain state machine on passed-in times, so tests need no clock.

/// Failures allowed before the first lock.
pub const FREE_FAILURES: u32 = 5;
/// First lock period.
pub const FIRST_LOCK_MS: u64 = 30_000;
/// Longest lock period.
pub const MAX_LOCK_MS: u64 = 15 * 60_000;

/// Consecutive wrong PINs and the lock they caused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinThrottle {
    failures: u32,
    locked_until_ms: u64,
}

impl PinThrottle {
    /// Milliseconds until the next attempt is allowed, or `None` when it is allowed now.
    pub fn wait_ms(&self, now_ms: u64) -> Option<u64> {
        (self.locked_until_ms > now_ms).then(|| self.locked_until_ms - now_ms)
    }

    /// Starts an attempt at `now_ms`: refused with the wait while locked; otherwise counted as
    /// a failure until [`PinThrottle::succeed`] says otherwise.
    pub fn begin(&mut self, now_ms: u64) -> Result<(), u64> {
        if let Some(wait) = self.wait_ms(now_ms) {
            return Err(wait);
        }
        self.fail(now_ms);
        Ok(())
    }

    /// Records a wrong PIN at `now_ms`; returns the lock it started, if any.
    pub fn fail(&mut self, now_ms: u64) -> Option<u64> {
        self.failures = self.failures.saturating_add(1);
        if self.failures < FREE_FAILURES {
            return None;
        }
        let doublings = (self.failures - FREE_FAILURES).min(16);
        let lock = FIRST_LOCK_MS
            .saturating_mul(1u64 << doublings)
            .min(MAX_LOCK_MS);
        self.locked_until_ms = now_ms.saturating_add(lock);
        Some(lock)
    }

    /// Records a successful login.
    pub fn succeed(&mut self) {
        *self = PinThrottle::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_are_free_then_locks_double_up_to_the_cap() {
        let mut throttle = PinThrottle::default();
        for _ in 1..FREE_FAILURES {
            assert_eq!(throttle.fail(1_000), None);
            assert_eq!(throttle.wait_ms(1_000), None);
        }
        assert_eq!(throttle.fail(1_000), Some(FIRST_LOCK_MS));
        assert_eq!(throttle.wait_ms(1_000), Some(FIRST_LOCK_MS));
        assert_eq!(throttle.wait_ms(1_000 + FIRST_LOCK_MS), None);
        assert_eq!(throttle.fail(100_000), Some(2 * FIRST_LOCK_MS));
        for _ in 0..40 {
            throttle.fail(200_000);
        }
        assert_eq!(throttle.wait_ms(200_000), Some(MAX_LOCK_MS));
    }

    #[test]
    fn a_burst_of_attempts_is_cut_off_like_a_sequence() {
        let mut throttle = PinThrottle::default();
        // Five attempts start before any of them has been checked.
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.begin(0), Ok(()));
        }
        assert_eq!(throttle.begin(0), Err(FIRST_LOCK_MS));
        // The right PIN among them unlocks.
        throttle.succeed();
        assert_eq!(throttle.begin(0), Ok(()));
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut throttle = PinThrottle::default();
        for _ in 0..FREE_FAILURES {
            throttle.fail(0);
        }
        throttle.succeed();
        assert_eq!(throttle.wait_ms(0), None);
        assert_eq!(throttle.fail(0), None);
    }
}
