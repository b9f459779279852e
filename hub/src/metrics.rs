//! Prometheus metrics of one hub process, exposed at `GET /metrics`.
//!
//! Each process keeps its own registry (counters are per process; Prometheus sums them over
//! the hubs it scrapes). Names:
//! - `hub_sync_requests_total{outcome}` — sync rounds answered, `ok` or `error`.
//! - `hub_sync_duration_seconds` — wall time of a sync round, decoding to reply.
//! - `hub_sync_errors_total{reason}` — refused or failed rounds by reason (`forbidden`,
//!   `invalid_envelope`, `too_large`, `rejected`, `unavailable`, `internal`, ...).
//! - `hub_receipts_ingested_total` — receipts newly projected (duplicates excluded).
//! - `hub_login_failures_total` — failed logins, throttled ones included.
//! - `hub_hlc_rejected_total` — sync rounds refused because a new entry was stamped too far
//!   ahead of the hub's clock (also counted in `hub_sync_errors_total{reason="clock_ahead"}`).

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The hub's metrics and their registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Sync rounds by outcome.
    pub sync_requests: IntCounterVec,
    /// Sync round duration.
    pub sync_duration: Histogram,
    /// Sync errors by reason.
    pub sync_errors: IntCounterVec,
    /// Receipts newly inserted into the projection.
    pub receipts_ingested: IntCounter,
    /// Failed logins.
    pub login_failures: IntCounter,
    /// Rounds refused for a timestamp too far ahead.
    pub hlc_rejected: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let sync_requests = IntCounterVec::new(
            Opts::new(
                "hub_sync_requests_total",
                "Sync rounds answered, by outcome.",
            ),
            &["outcome"],
        )?;
        let sync_duration = Histogram::with_opts(
            HistogramOpts::new(
                "hub_sync_duration_seconds",
                "Wall time of one sync round on the hub.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let sync_errors = IntCounterVec::new(
            Opts::new(
                "hub_sync_errors_total",
                "Sync rounds refused or failed, by reason.",
            ),
            &["reason"],
        )?;
        let receipts_ingested = IntCounter::new(
            "hub_receipts_ingested_total",
            "Receipts newly projected from session documents.",
        )?;
        let login_failures = IntCounter::new("hub_login_failures_total", "Failed logins.")?;
        let hlc_rejected = IntCounter::new(
            "hub_hlc_rejected_total",
            "Sync rounds refused: a new entry stamped too far ahead of the hub's clock.",
        )?;
        registry.register(Box::new(sync_requests.clone()))?;
        registry.register(Box::new(sync_duration.clone()))?;
        registry.register(Box::new(sync_errors.clone()))?;
        registry.register(Box::new(receipts_ingested.clone()))?;
        registry.register(Box::new(login_failures.clone()))?;
        registry.register(Box::new(hlc_rejected.clone()))?;
        // Zero-valued series exist from the start, so dashboards and alerts see them.
        for outcome in ["ok", "error"] {
            sync_requests.with_label_values(&[outcome]);
        }
        Ok(Metrics {
            registry,
            sync_requests,
            sync_duration,
            sync_errors,
            receipts_ingested,
            login_failures,
            hlc_rejected,
        })
    }

    /// Counts a failed sync round.
    pub fn sync_error(&self, reason: &str) {
        self.sync_requests.with_label_values(&["error"]).inc();
        self.sync_errors.with_label_values(&[reason]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_name() {
        let metrics = Metrics::new().expect("metrics");
        metrics.sync_error("forbidden");
        metrics.receipts_ingested.inc_by(3);
        metrics.sync_duration.observe(0.01);
        let text = metrics.render().expect("render");
        for name in [
            "hub_sync_requests_total",
            "hub_sync_duration_seconds",
            "hub_sync_errors_total{reason=\"forbidden\"} 1",
            "hub_receipts_ingested_total 3",
            "hub_login_failures_total 0",
            "hub_hlc_rejected_total 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
