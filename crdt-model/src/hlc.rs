//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! An [`Hlc`] is `(physical_ms, logical, node)`, totally ordered in that order. Its
//! canonical text form `0001763900000000-00000-T1` is zero padded so that string order is
//! timestamp order; documents use it as a map key and serde writes it as that string.
//!
//! [`HlcClock`] issues timestamps for one node. It never goes backwards, even when the wall
//! clock does, and it refuses to adopt a remote timestamp that runs more than
//! `max_forward_ms` ahead of the local wall clock (one till with a clock set to next year
//! must not drag every replica's clock with it). The wall clock is always passed in: this
//! crate reads no clock of its own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ClockError;

/// Largest logical counter. When a millisecond runs out of counter values the clock moves
/// its physical part one millisecond ahead instead of widening the text form.
pub const MAX_LOGICAL: u32 = 99_999;

/// Largest physical part that fits the 16-digit text form (year ~318,857).
pub const MAX_PHYSICAL_MS: u64 = 9_999_999_999_999_999;

/// Longest node name.
pub const MAX_NODE_LEN: usize = 64;

const PHYSICAL_DIGITS: usize = 16;
const LOGICAL_DIGITS: usize = 5;

/// A hybrid logical timestamp. Field order is the comparison order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (at least the wall clock of the issuing node).
    pub physical_ms: u64,
    /// Counter that orders events within one millisecond.
    pub logical: u32,
    /// The issuing node; breaks ties between nodes deterministically.
    pub node: String,
}

impl Hlc {
    /// A validated timestamp: the parts must fit the text form and the node name must be
    /// 1..=64 characters of `[A-Za-z0-9_.:/-]`.
    pub fn new(physical_ms: u64, logical: u32, node: &str) -> Result<Hlc, ClockError> {
        let hlc = Hlc {
            physical_ms,
            logical,
            node: node.to_owned(),
        };
        hlc.validate()?;
        Ok(hlc)
    }

    /// Checks the invariants of [`Hlc::new`] on a value built from the public fields.
    pub fn validate(&self) -> Result<(), ClockError> {
        validate_node(&self.node)?;
        if self.physical_ms > MAX_PHYSICAL_MS || self.logical > MAX_LOGICAL {
            return Err(ClockError::OutOfRange);
        }
        Ok(())
    }
}

/// Node names are restricted to characters that sort the same as bytes and as `String`, and
/// that never collide with the separators used in document keys (`|`).
pub(crate) fn validate_node(node: &str) -> Result<(), ClockError> {
    let valid_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-');
    if node.is_empty() || node.len() > MAX_NODE_LEN || !node.chars().all(valid_char) {
        return Err(ClockError::InvalidNode {
            node: node.chars().take(MAX_NODE_LEN).collect(),
        });
    }
    Ok(())
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:0pw$}-{:0lw$}-{}",
            self.physical_ms,
            self.logical,
            self.node,
            pw = PHYSICAL_DIGITS,
            lw = LOGICAL_DIGITS
        )
    }
}

impl FromStr for Hlc {
    type Err = ClockError;

    fn from_str(text: &str) -> Result<Hlc, ClockError> {
        let malformed = || ClockError::Malformed {
            text: text.chars().take(96).collect(),
        };
        let physical_text = text.get(..PHYSICAL_DIGITS).ok_or_else(malformed)?;
        let rest = text
            .get(PHYSICAL_DIGITS..)
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(malformed)?;
        let logical_text = rest.get(..LOGICAL_DIGITS).ok_or_else(malformed)?;
        let node = rest
            .get(LOGICAL_DIGITS..)
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(malformed)?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(physical_text) || !digits(logical_text) {
            return Err(malformed());
        }
        let physical_ms = physical_text.parse().map_err(|_| malformed())?;
        let logical = logical_text.parse().map_err(|_| malformed())?;
        Hlc::new(physical_ms, logical, node)
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Hlc, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The clock of one node. Persist [`HlcClock::last`] and hand it to
/// [`HlcClock::restore`] after a restart to stay monotonic across restarts.
#[derive(Debug, Clone)]
pub struct HlcClock {
    node: String,
    max_forward_ms: u64,
    /// The clock state: every timestamp issued or observed so far is `<=` this.
    last: Option<Hlc>,
}

impl HlcClock {
    /// A fresh clock for `node` that refuses remote timestamps more than
    /// `max_forward_ms` ahead of the wall clock.
    ///
    /// `node` must be unique per writer (use the actor name, e.g. `S1/T1/browser`): two
    /// writers sharing a node name could issue equal timestamps, and equal timestamps
    /// are what the tie-break by node exists to prevent.
    pub fn new(node: &str, max_forward_ms: u64) -> Result<HlcClock, ClockError> {
        HlcClock::restore(node, max_forward_ms, None)
    }

    /// A clock continuing from a persisted state (`last` may come from another node name,
    /// e.g. after a rename; only its physical and logical parts are kept).
    pub fn restore(
        node: &str,
        max_forward_ms: u64,
        last: Option<&Hlc>,
    ) -> Result<HlcClock, ClockError> {
        validate_node(node)?;
        let last = match last {
            Some(hlc) => {
                hlc.validate()?;
                Some(Hlc {
                    physical_ms: hlc.physical_ms,
                    logical: hlc.logical,
                    node: node.to_owned(),
                })
            }
            None => None,
        };
        Ok(HlcClock {
            node: node.to_owned(),
            max_forward_ms,
            last,
        })
    }

    /// The node name stamped on every timestamp.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The largest tolerated lead of a remote timestamp over the local wall clock.
    pub fn max_forward_ms(&self) -> u64 {
        self.max_forward_ms
    }

    /// A new timestamp, strictly greater than every timestamp this clock issued or
    /// observed, and with a physical part at least `wall_ms` (clamped to
    /// [`MAX_PHYSICAL_MS`]).
    pub fn now(&mut self, wall_ms: u64) -> Hlc {
        let wall_ms = wall_ms.min(MAX_PHYSICAL_MS);
        let (physical_ms, logical) = match &self.last {
            Some(last) if last.physical_ms >= wall_ms => successor(last.physical_ms, last.logical),
            _ => (wall_ms, 0),
        };
        let hlc = Hlc {
            physical_ms,
            logical,
            node: self.node.clone(),
        };
        self.last = Some(hlc.clone());
        hlc
    }

    /// Merges a timestamp seen on a remote change, so that later local timestamps order
    /// after it. Refuses (and leaves the clock unchanged) a timestamp more than
    /// `max_forward_ms` ahead of `wall_ms`, or one outside the valid range.
    pub fn observe(&mut self, remote: &Hlc, wall_ms: u64) -> Result<(), ClockError> {
        if remote.physical_ms > MAX_PHYSICAL_MS || remote.logical > MAX_LOGICAL {
            return Err(ClockError::OutOfRange);
        }
        if remote.physical_ms > wall_ms.saturating_add(self.max_forward_ms) {
            return Err(ClockError::TooFarAhead {
                ahead_ms: remote.physical_ms - wall_ms,
                max_forward_ms: self.max_forward_ms,
            });
        }
        let remote_state = (remote.physical_ms, remote.logical);
        let ahead_of_local = match &self.last {
            Some(last) => remote_state > (last.physical_ms, last.logical),
            None => true,
        };
        if ahead_of_local {
            // The next `now` moves past this state, which is what the receive rule of the
            // paper guarantees for the event after a receive.
            self.last = Some(Hlc {
                physical_ms: remote.physical_ms,
                logical: remote.logical,
                node: self.node.clone(),
            });
        }
        Ok(())
    }

    /// The clock state to persist (`None` before the first timestamp).
    pub fn last(&self) -> Option<&Hlc> {
        self.last.as_ref()
    }

    /// How far the clock's physical part runs ahead of the wall clock, in milliseconds
    /// (negative when the wall clock is ahead; 0 before the first timestamp).
    pub fn drift_ms(&self, wall_ms: u64) -> i64 {
        let Some(last) = &self.last else { return 0 };
        let drift = i128::from(last.physical_ms) - i128::from(wall_ms);
        i64::try_from(drift).unwrap_or(if drift > 0 { i64::MAX } else { i64::MIN })
    }
}

/// The smallest state after `(physical_ms, logical)`. Saturates at the end of time, which
/// the clamp in [`HlcClock::now`] puts ~300,000 years away.
fn successor(physical_ms: u64, logical: u32) -> (u64, u32) {
    if logical < MAX_LOGICAL {
        (physical_ms, logical + 1)
    } else if physical_ms < MAX_PHYSICAL_MS {
        (physical_ms + 1, 0)
    } else {
        (physical_ms, logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hlc(physical_ms: u64, logical: u32, node: &str) -> Hlc {
        Hlc::new(physical_ms, logical, node).expect("valid hlc")
    }

    #[test]
    fn text_form_is_zero_padded_and_round_trips() {
        let stamp = hlc(1_763_900_000_000, 0, "T1");
        assert_eq!(stamp.to_string(), "0001763900000000-00000-T1");
        assert_eq!(
            "0001763900000000-00000-T1".parse::<Hlc>(),
            Ok(stamp.clone())
        );
        let json = serde_json::to_string(&stamp).expect("serialises");
        assert_eq!(json, "\"0001763900000000-00000-T1\"");
        let back: Hlc = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, stamp);
        let with_slash = hlc(5, 7, "S1/T1/browser");
        assert_eq!(with_slash.to_string().parse::<Hlc>(), Ok(with_slash));
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in [
            "",
            "1-2-T1",
            "0001763900000000-00000-",
            "0001763900000000-00000",
            "0001763900000000+00000-T1",
            "000176390000000x-00000-T1",
            "0001763900000000-0000a-T1",
            "0001763900000000-00000-T 1",
            "0001763900000000-00000-T|1",
            "+001763900000000-00000-T1",
            "ö001763900000000-00000-T1",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad:?} should be refused");
        }
        let too_long_node = format!("0001763900000000-00000-{}", "n".repeat(65));
        assert!(too_long_node.parse::<Hlc>().is_err());
        assert_eq!(
            Hlc::new(1, MAX_LOGICAL + 1, "T1"),
            Err(ClockError::OutOfRange)
        );
    }

    #[test]
    fn order_is_physical_then_logical_then_node() {
        assert!(hlc(1, 9, "Z") < hlc(2, 0, "A"));
        assert!(hlc(2, 0, "Z") < hlc(2, 1, "A"));
        assert!(hlc(2, 1, "A") < hlc(2, 1, "B"));
        assert!(hlc(2, 1, "T1") < hlc(2, 1, "T10"));
    }

    #[test]
    fn clock_is_monotonic_when_wall_clock_jumps_back() {
        let mut clock = HlcClock::new("T1", 60_000).expect("valid node");
        let a = clock.now(1_000);
        let b = clock.now(1_000);
        let c = clock.now(500);
        let d = clock.now(2_000);
        assert_eq!((a.physical_ms, a.logical), (1_000, 0));
        assert_eq!((b.physical_ms, b.logical), (1_000, 1));
        assert_eq!((c.physical_ms, c.logical), (1_000, 2));
        assert_eq!((d.physical_ms, d.logical), (2_000, 0));
        assert_eq!(clock.drift_ms(500), 1_500);
        assert_eq!(clock.drift_ms(2_500), -500);
    }

    #[test]
    fn logical_overflow_moves_to_the_next_millisecond() {
        let last = hlc(1_000, MAX_LOGICAL, "T1");
        let mut clock = HlcClock::restore("T1", 0, Some(&last)).expect("valid state");
        let next = clock.now(1_000);
        assert_eq!((next.physical_ms, next.logical), (1_001, 0));
        assert!(next > last);
    }

    #[test]
    fn restore_continues_after_persisted_state() {
        let mut first = HlcClock::new("T1", 1_000).expect("valid node");
        first.now(10_000);
        let persisted = first.last().cloned().expect("issued once");
        let mut second = HlcClock::restore("T1", 1_000, Some(&persisted)).expect("valid");
        // The wall clock went back after the restart: still after the persisted stamp.
        assert!(second.now(9_000) > persisted);
    }

    #[test]
    fn observe_merges_and_refuses_far_future() {
        let mut clock = HlcClock::new("T1", 5_000).expect("valid node");
        clock.now(1_000);
        let remote = hlc(4_000, 7, "T2");
        assert_eq!(clock.observe(&remote, 1_000), Ok(()));
        let next = clock.now(1_000);
        assert!(next > remote);
        assert_eq!((next.physical_ms, next.logical), (4_000, 8));
        let far = hlc(10_000, 0, "T2");
        assert_eq!(
            clock.observe(&far, 1_000),
            Err(ClockError::TooFarAhead {
                ahead_ms: 9_000,
                max_forward_ms: 5_000
            })
        );
        assert_eq!(clock.last().map(|h| h.physical_ms), Some(4_000));
        // An older remote changes nothing.
        assert_eq!(clock.observe(&hlc(10, 0, "T3"), 1_000), Ok(()));
        assert_eq!(
            clock.last().map(|h| (h.physical_ms, h.logical)),
            Some((4_000, 8))
        );
    }

    #[test]
    fn invalid_node_is_refused() {
        assert!(HlcClock::new("", 0).is_err());
        assert!(HlcClock::new("till one", 0).is_err());
        assert!(HlcClock::new("T|1", 0).is_err());
        assert!(HlcClock::new(&"x".repeat(65), 0).is_err());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Now {
                wall_jump_ms: i64,
            },
            Observe {
                wall_jump_ms: i64,
                remote_offset_ms: i64,
                logical: u32,
            },
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                3 => (-5_000i64..5_000).prop_map(|wall_jump_ms| Step::Now { wall_jump_ms }),
                1 => (-5_000i64..5_000, -10_000i64..20_000, 0..=MAX_LOGICAL).prop_map(
                    |(wall_jump_ms, remote_offset_ms, logical)| Step::Observe {
                        wall_jump_ms,
                        remote_offset_ms,
                        logical
                    }
                ),
            ]
        }

        fn node() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_.:/-]{1,12}"
        }

        proptest! {
            #[test]
            fn timestamps_strictly_increase(steps in prop::collection::vec(step(), 1..200)) {
                let mut clock = HlcClock::new("T1", 10_000).expect("valid node");
                let mut wall: u64 = 1_700_000_000_000;
                let mut floor: Option<Hlc> = None;
                for step in steps {
                    match step {
                        Step::Now { wall_jump_ms } => {
                            wall = wall.saturating_add_signed(wall_jump_ms);
                            let stamp = clock.now(wall);
                            prop_assert!(stamp.physical_ms >= wall);
                            if let Some(previous) = &floor {
                                prop_assert!((stamp.physical_ms, stamp.logical) > (previous.physical_ms, previous.logical));
                            }
                            floor = Some(stamp);
                        }
                        Step::Observe { wall_jump_ms, remote_offset_ms, logical } => {
                            wall = wall.saturating_add_signed(wall_jump_ms);
                            let remote = Hlc::new(wall.saturating_add_signed(remote_offset_ms), logical, "R")
                                .expect("valid remote");
                            let accepted = clock.observe(&remote, wall).is_ok();
                            prop_assert_eq!(accepted, remote.physical_ms <= wall + 10_000);
                            if accepted && floor.as_ref().is_none_or(|f| (remote.physical_ms, remote.logical) > (f.physical_ms, f.logical)) {
                                floor = Some(remote);
                            }
                        }
                    }
                }
            }

            #[test]
            fn string_order_is_hlc_order(
                a in (0..=MAX_PHYSICAL_MS, 0..=MAX_LOGICAL, node()),
                b in (0..=MAX_PHYSICAL_MS, 0..=MAX_LOGICAL, node()),
                same_physical in any::<bool>(),
            ) {
                let a = Hlc::new(a.0, a.1, &a.2).expect("valid");
                let physical_b = if same_physical { a.physical_ms } else { b.0 };
                let b = Hlc::new(physical_b, b.1, &b.2).expect("valid");
                prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
                prop_assert_eq!(a.to_string().parse::<Hlc>(), Ok(a));
            }
        }
    }
}
