//! Retry timing for OFD deliveries, as a pure decision: exponential backoff with jitter from
//! 5 s to 5 min, a `Retry-After` from the server honoured as a floor, and after 20 failed
//! attempts the item goes to the dead-letter queue for support to look at.
//!
//! Nothing here reads a clock or sleeps: the caller passes `now_ms` and an RNG (seeded in tests
//! so every sequence is reproducible) and gets back [`Decision::RetryAt`] or
//! [`Decision::DeadLetter`].

use rand::Rng;
use std::time::{Duration, SystemTime};

/// How the delay is randomised; both spread retries of many tills so they do not stampede the
/// OFD when it comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform between the initial delay and the exponential ceiling of this attempt.
    Full,
    /// "Decorrelated": uniform between the initial delay and three times the previous delay.
    Decorrelated,
}

/// Tuning of a [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Shortest delay, and the first attempt's ceiling (5 s).
    pub initial_delay_ms: u64,
    /// Longest delay drawn from the jitter (5 min).
    pub max_delay_ms: u64,
    /// Failed attempts after which the item is dead-lettered (20).
    pub max_attempts: u32,
    /// Jitter flavour.
    pub jitter: Jitter,
    /// Upper bound on a server's `Retry-After`, so a hostile or broken header cannot park the
    /// queue for days (1 h).
    pub max_retry_after_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial_delay_ms: 5_000,
            max_delay_ms: 300_000,
            max_attempts: 20,
            jitter: Jitter::Full,
            max_retry_after_ms: 3_600_000,
        }
    }
}

/// What to do with an item after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time (same clock as the `now_ms` given).
    RetryAt(u64),
    /// Stop retrying: move the item to the dead-letter queue.
    DeadLetter,
}

/// Retry state of one item (one fiscal document on its way to the OFD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    config: BackoffConfig,
    attempts: u32,
    link_failures: u32,
    previous_delay_ms: u64,
}

impl Backoff {
    /// A fresh item with no failed attempt.
    pub fn new(config: BackoffConfig) -> Self {
        Self::resume(config, 0)
    }

    /// Rebuilds the state of an item that already failed `attempts` times (the count is what
    /// the pipeline persists; the decorrelated jitter restarts from the initial delay).
    pub fn resume(config: BackoffConfig, attempts: u32) -> Self {
        let config = BackoffConfig {
            initial_delay_ms: config.initial_delay_ms.max(1),
            max_delay_ms: config.max_delay_ms.max(config.initial_delay_ms.max(1)),
            max_attempts: config.max_attempts.max(1),
            ..config
        };
        Self {
            config,
            attempts,
            link_failures: 0,
            previous_delay_ms: config.initial_delay_ms,
        }
    }

    /// Failed attempts counted so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The configuration in force.
    pub fn config(&self) -> BackoffConfig {
        self.config
    }

    /// Records a failed attempt at `now_ms`. `retry_after_ms` is the server's `Retry-After`
    /// already turned into a delay (see [`parse_retry_after`]); it is a floor on the delay.
    pub fn on_failure<R: Rng + ?Sized>(
        &mut self,
        now_ms: u64,
        retry_after_ms: Option<u64>,
        rng: &mut R,
    ) -> Decision {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts >= self.config.max_attempts {
            return Decision::DeadLetter;
        }
        let jittered = self.jittered_delay_ms(rng);
        self.previous_delay_ms = jittered;
        let floor = retry_after_ms.map_or(0, |ms| ms.min(self.config.max_retry_after_ms));
        Decision::RetryAt(now_ms.saturating_add(jittered.max(floor)))
    }

    /// Records a failure of the link, not of the document (no connection, timeout, rate
    /// limit): the delay grows as for [`Backoff::on_failure`], but the attempt does not count
    /// towards the dead-letter limit. An OFD down for a night must not dead-letter the backlog;
    /// it is drained when the link returns.
    pub fn on_link_failure<R: Rng + ?Sized>(
        &mut self,
        now_ms: u64,
        retry_after_ms: Option<u64>,
        rng: &mut R,
    ) -> u64 {
        self.link_failures = self.link_failures.saturating_add(1);
        let jittered = self.jittered_delay_ms(rng);
        self.previous_delay_ms = jittered;
        let floor = retry_after_ms.map_or(0, |ms| ms.min(self.config.max_retry_after_ms));
        now_ms.saturating_add(jittered.max(floor))
    }

    /// Records a failure that retrying cannot fix (the operator rejected the document): the
    /// item goes to the dead-letter queue at once.
    pub fn on_permanent_failure(&mut self) -> Decision {
        self.attempts = self.attempts.saturating_add(1);
        Decision::DeadLetter
    }

    /// Records a success: the next failure starts from the initial delay again.
    pub fn on_success(&mut self) {
        self.attempts = 0;
        self.link_failures = 0;
        self.previous_delay_ms = self.config.initial_delay_ms;
    }

    fn jittered_delay_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let initial = self.config.initial_delay_ms;
        let ceiling = match self.config.jitter {
            Jitter::Full => {
                // At least one failure is counted here; the shift is capped so it cannot
                // overflow.
                let failures = self.attempts.saturating_add(self.link_failures);
                let doublings = failures.saturating_sub(1).min(32);
                initial.saturating_mul(1u64 << doublings)
            }
            Jitter::Decorrelated => self.previous_delay_ms.saturating_mul(3),
        }
        .min(self.config.max_delay_ms);
        if ceiling <= initial {
            return initial;
        }
        rng.random_range(initial..=ceiling)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(BackoffConfig::default())
    }
}

/// Turns a `Retry-After` header value into a delay: either delta-seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`) compared with `now`. A date in the past means
/// "now" (zero). Unparseable values give `None`, so a broken header falls back to plain backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn delays(config: BackoffConfig, failures: u32) -> Vec<u64> {
        let mut backoff = Backoff::new(config);
        let mut rng = rng();
        (0..failures)
            .map(|_| match backoff.on_failure(1_000, None, &mut rng) {
                Decision::RetryAt(at) => at - 1_000,
                Decision::DeadLetter => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn full_jitter_stays_between_5_s_and_the_doubling_ceiling() {
        let all = delays(BackoffConfig::default(), 19);
        for (index, delay) in all.iter().enumerate() {
            let ceiling = (5_000u64 << index.min(32)).min(300_000);
            assert!(
                (5_000..=ceiling).contains(delay),
                "attempt {index}: {delay}"
            );
        }
        assert_eq!(
            all[0], 5_000,
            "the first ceiling is the initial delay itself"
        );
        assert!(
            all.iter().skip(8).any(|&d| d > 150_000),
            "never approached 5 min: {all:?}"
        );
    }

    #[test]
    fn decorrelated_jitter_is_bounded_by_three_times_the_previous_delay() {
        let config = BackoffConfig {
            jitter: Jitter::Decorrelated,
            ..BackoffConfig::default()
        };
        let all = delays(config, 19);
        let mut previous = 5_000;
        for delay in &all {
            assert!(*delay >= 5_000 && *delay <= (previous * 3).min(300_000));
            previous = *delay;
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let config = BackoffConfig::default();
        assert_eq!(delays(config, 19), delays(config, 19));
    }

    #[test]
    fn twentieth_failure_dead_letters() {
        let mut backoff = Backoff::default();
        let mut rng = rng();
        for attempt in 1..20 {
            let decision = backoff.on_failure(0, None, &mut rng);
            assert!(
                matches!(decision, Decision::RetryAt(_)),
                "attempt {attempt}"
            );
        }
        assert_eq!(backoff.on_failure(0, None, &mut rng), Decision::DeadLetter);
        assert_eq!(backoff.attempts(), 20);
    }

    #[test]
    fn resumed_item_keeps_its_count() {
        let mut backoff = Backoff::resume(BackoffConfig::default(), 19);
        assert_eq!(
            backoff.on_failure(0, None, &mut rng()),
            Decision::DeadLetter
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_is_capped() {
        let mut backoff = Backoff::default();
        let mut rng = rng();
        assert_eq!(
            backoff.on_failure(1_000, Some(120_000), &mut rng),
            Decision::RetryAt(121_000)
        );
        // A shorter Retry-After does not shorten the backoff.
        let mut backoff = Backoff::default();
        assert_eq!(
            backoff.on_failure(0, Some(10), &mut rng),
            Decision::RetryAt(5_000)
        );
        // A week-long Retry-After is capped at one hour.
        let mut backoff = Backoff::default();
        assert_eq!(
            backoff.on_failure(0, Some(7 * 86_400_000), &mut rng),
            Decision::RetryAt(3_600_000)
        );
    }

    #[test]
    fn permanent_failure_dead_letters_at_once_and_success_resets() {
        let mut backoff = Backoff::default();
        let mut rng = rng();
        let _ = backoff.on_failure(0, None, &mut rng);
        backoff.on_success();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.on_permanent_failure(), Decision::DeadLetter);
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").expect("valid date");
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn link_failures_grow_the_delay_but_never_dead_letter() {
        let mut rng = rng();
        let mut backoff = Backoff::new(BackoffConfig::default());
        let mut now = 0;
        let mut longest = 0;
        for _ in 0..200 {
            let at = backoff.on_link_failure(now, None, &mut rng);
            longest = longest.max(at - now);
            assert!((5_000..=300_000).contains(&(at - now)));
            now = at;
        }
        assert!(longest > 60_000, "the delay grew: {longest}");
        assert_eq!(backoff.attempts(), 0);
        // A document failure after a long outage still has its whole budget.
        assert!(matches!(
            backoff.on_failure(now, None, &mut rng),
            Decision::RetryAt(_)
        ));
    }
}
