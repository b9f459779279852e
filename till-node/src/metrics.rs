//! Prometheus metrics of the till, with the seeds' metric names.
//!
//! The names are a contract with the support runbooks and the alert rules
//! (brief.md §6), the fiscal pipeline's (breaker, DLQ, register, OFD) included.
//! Each node owns its own [`Registry`] so tests can run many nodes in one
//! process.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric the till exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Receipts not yet acknowledged (see `buffer` in the API module).
    pub buffer_size: IntGauge,
    /// `buffer_size` as a percentage of the capacity.
    pub buffer_percent_full: Gauge,
    /// Duration of each sync round trip series with the hub.
    pub sync_duration_seconds: Histogram,
    /// Receipts that reached the hub.
    pub receipts_synced_total: IntCounter,
    /// How far the HLC's physical part is ahead of the wall clock.
    pub hlc_drift_seconds: Gauge,
    /// Receipts accepted (committed durably).
    pub receipts_accepted_total: IntCounter,
    /// Sync attempts that failed.
    pub sync_failures_total: IntCounter,
    /// 0 online, 1 degraded, 2 offline.
    pub network_state: IntGauge,
    /// Remote HLCs the clock refused (too far ahead of the wall clock).
    pub hlc_remote_rejected_total: IntCounter,
    /// Receipts not yet on the hub (`kkt_buffer_size` counts them too when no register is attached).
    pub unsynced_receipts: IntGauge,
    /// Documents whose changes are too large for one sync message (they cannot reach the hub).
    pub sync_oversized_docs: IntGauge,
    /// The fiscal pipeline's metrics.
    pub fiscal: FiscalMetrics,
}

/// Metrics of the fiscal pipeline (set from its status at each scrape and status read).
#[derive(Debug, Clone)]
pub struct FiscalMetrics {
    /// 0 CLOSED, 1 HALF_OPEN, 2 OPEN.
    pub circuit_breaker_state: IntGauge,
    /// Times the breaker opened.
    pub circuit_breaker_opens_total: IntCounter,
    /// Dead-lettered receipts.
    pub dlq_size: IntGauge,
    /// Fiscal buffer capacity.
    pub buffer_capacity: IntGauge,
    /// Age of the oldest receipt the OFD has not acknowledged.
    pub oldest_unacknowledged_age_seconds: Gauge,
    /// Age of the register's open shift (0 when closed).
    pub shift_age_seconds: Gauge,
    /// 1 when the register answers.
    pub register_up: IntGauge,
    /// Fiscal documents made.
    pub fiscalised_total: IntCounter,
    /// Documents the OFD acknowledged.
    pub ofd_acknowledged_total: IntCounter,
    /// Failed OFD deliveries.
    pub ofd_failures_total: IntCounter,
}

impl FiscalMetrics {
    fn new(registry: &Registry) -> Result<FiscalMetrics, prometheus::Error> {
        let metrics = FiscalMetrics {
            circuit_breaker_state: IntGauge::new(
                "kkt_circuit_breaker_state",
                "OFD circuit breaker: 0 CLOSED, 1 HALF_OPEN, 2 OPEN",
            )?,
            circuit_breaker_opens_total: IntCounter::new(
                "kkt_circuit_breaker_opens_total",
                "Times the OFD circuit breaker opened",
            )?,
            dlq_size: IntGauge::new("kkt_dlq_size", "Receipts in the dead-letter queue")?,
            buffer_capacity: IntGauge::new("kkt_buffer_capacity", "Fiscal buffer capacity")?,
            oldest_unacknowledged_age_seconds: Gauge::new(
                "kkt_oldest_unacknowledged_age_seconds",
                "Age of the oldest receipt not acknowledged by the OFD (limit 30 days)",
            )?,
            shift_age_seconds: Gauge::new(
                "kkt_shift_age_seconds",
                "Age of the open register shift (limit 24 h)",
            )?,
            register_up: IntGauge::new("kkt_register_up", "1 when the register answers")?,
            fiscalised_total: IntCounter::new(
                "kkt_fiscalised_total",
                "Fiscal documents made by the register",
            )?,
            ofd_acknowledged_total: IntCounter::new(
                "kkt_ofd_acknowledged_total",
                "Fiscal documents acknowledged by the OFD",
            )?,
            ofd_failures_total: IntCounter::new(
                "kkt_ofd_failures_total",
                "Failed deliveries to the OFD",
            )?,
        };
        registry.register(Box::new(metrics.circuit_breaker_state.clone()))?;
        registry.register(Box::new(metrics.circuit_breaker_opens_total.clone()))?;
        registry.register(Box::new(metrics.dlq_size.clone()))?;
        registry.register(Box::new(metrics.buffer_capacity.clone()))?;
        registry.register(Box::new(metrics.oldest_unacknowledged_age_seconds.clone()))?;
        registry.register(Box::new(metrics.shift_age_seconds.clone()))?;
        registry.register(Box::new(metrics.register_up.clone()))?;
        registry.register(Box::new(metrics.fiscalised_total.clone()))?;
        registry.register(Box::new(metrics.ofd_acknowledged_total.clone()))?;
        registry.register(Box::new(metrics.ofd_failures_total.clone()))?;
        Ok(metrics)
    }

    /// Raises a counter to `total` (the pipeline keeps running totals; counters only grow).
    pub fn catch_up(counter: &IntCounter, total: u64) {
        let current = counter.get();
        if total > current {
            counter.inc_by(total - current);
        }
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let buffer_size = IntGauge::new("kkt_buffer_size", "Receipts not yet acknowledged")?;
        let buffer_percent_full = Gauge::new(
            "kkt_buffer_percent_full",
            "Buffered receipts as a percentage of the capacity",
        )?;
        let sync_duration_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "kkt_sync_duration_seconds",
                "Duration of a sync with the hub",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let receipts_synced_total =
            IntCounter::new("kkt_receipts_synced_total", "Receipts that reached the hub")?;
        let hlc_drift_seconds = Gauge::new(
            "kkt_hlc_drift_seconds",
            "How far the hybrid logical clock is ahead of the wall clock",
        )?;
        let receipts_accepted_total = IntCounter::new(
            "kkt_receipts_accepted_total",
            "Receipts committed durably on the till",
        )?;
        let sync_failures_total = IntCounter::new(
            "kkt_sync_failures_total",
            "Failed sync attempts with the hub",
        )?;
        let network_state = IntGauge::with_opts(Opts::new(
            "kkt_network_state",
            "Link to the hub: 0 online, 1 degraded, 2 offline",
        ))?;
        let hlc_remote_rejected_total = IntCounter::new(
            "kkt_hlc_remote_rejected_total",
            "Remote timestamps refused for running too far ahead of the wall clock",
        )?;
        let unsynced_receipts =
            IntGauge::new("kkt_unsynced_receipts", "Receipts not yet held by the hub")?;
        let sync_oversized_docs = IntGauge::new(
            "kkt_sync_oversized_docs",
            "Documents too large for one sync message, so they cannot reach the hub",
        )?;
        registry.register(Box::new(sync_oversized_docs.clone()))?;
        registry.register(Box::new(hlc_remote_rejected_total.clone()))?;
        registry.register(Box::new(unsynced_receipts.clone()))?;
        registry.register(Box::new(buffer_size.clone()))?;
        registry.register(Box::new(buffer_percent_full.clone()))?;
        registry.register(Box::new(sync_duration_seconds.clone()))?;
        registry.register(Box::new(receipts_synced_total.clone()))?;
        registry.register(Box::new(hlc_drift_seconds.clone()))?;
        registry.register(Box::new(receipts_accepted_total.clone()))?;
        registry.register(Box::new(sync_failures_total.clone()))?;
        registry.register(Box::new(network_state.clone()))?;
        let fiscal = FiscalMetrics::new(&registry)?;
        Ok(Self {
            fiscal,
            registry,
            buffer_size,
            buffer_percent_full,
            sync_duration_seconds,
            receipts_synced_total,
            hlc_drift_seconds,
            receipts_accepted_total,
            sync_failures_total,
            network_state,
            hlc_remote_rejected_total,
            unsynced_receipts,
            sync_oversized_docs,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_seed_names() {
        let m = Metrics::new().expect("metrics");
        m.buffer_size.set(3);
        m.sync_duration_seconds.observe(0.01);
        let text = m.render().expect("render");
        for name in [
            "kkt_buffer_size 3",
            "kkt_buffer_percent_full",
            "kkt_sync_duration_seconds_bucket",
            "kkt_receipts_synced_total",
            "kkt_hlc_drift_seconds",
            "kkt_sync_oversized_docs 0",
        ] {
            assert!(text.contains(name), "{name} missing in:\n{text}");
        }
    }
}
