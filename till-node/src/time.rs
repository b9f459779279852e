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

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
