//! Wall-clock helpers: the one place the daemon reads the system clock, and RFC 3339
//! formatting of its unsigned instants for the JSON API (the date arithmetic is the model's,
//! `crdt_model::civil`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the system clock is before 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds: `2026-11-23T09:15:02.123Z`
/// ([`crdt_model::civil::rfc3339_ms`]; instants past the year 292 million show as that year).
pub fn rfc3339_ms(ms: u64) -> String {
    crdt_model::civil::rfc3339_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calendar itself is tested in `crdt_model::civil`; this checks the unsigned edge.
    #[test]
    fn formats_unsigned_instants_through_the_model() {
        assert_eq!(rfc3339_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(
            rfc3339_ms(u64::MAX),
            crdt_model::civil::rfc3339_ms(i64::MAX),
            "instants past i64 clamp to its largest"
        );
    }
}
