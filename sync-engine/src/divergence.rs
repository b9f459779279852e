//! Divergence report: for one document, what each of two replicas lacks and since when.
//!
//! Computed from the two replicas' version vectors (see [`crate::clock`]), which each side sends
//! as a [`DocStatus`] on the first round trip of a sync round. This is what support reads:
//! "till-03 lacks hub seq 10003..=10202; the hub lacks till-03 seq 1..=17, oldest from 14:02".

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use crate::clock::MissingRange;
use crate::envelope::DocStatus;
use crate::id::DocId;

/// How one document differs between this replica ("local") and a peer ("remote").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocDivergence {
    /// Which document.
    pub doc: DocId,
    /// Local heads when the report was made.
    pub local_heads: Vec<ChangeHash>,
    /// The heads the remote announced in its last sync message, if it sent one.
    pub remote_heads: Option<Vec<ChangeHash>>,
    /// Changes the remote has and the local replica lacks.
    pub local_lacks: Vec<MissingRange>,
    /// Changes the local replica has and the remote lacks.
    pub remote_lacks: Vec<MissingRange>,
    /// The oldest unsynced change either side reported (Unix ms); `None` when in sync.
    pub oldest_unsynced_ms: Option<u64>,
}

impl DocDivergence {
    /// Compares a local and a remote status of `doc`.
    pub fn compute(
        doc: DocId,
        local_heads: Vec<ChangeHash>,
        local: &DocStatus,
        remote_heads: Option<Vec<ChangeHash>>,
        remote: &DocStatus,
    ) -> Self {
        let local_lacks = local.clock.missing_from(&remote.clock);
        let remote_lacks = remote.clock.missing_from(&local.clock);
        let oldest_unsynced_ms = if local_lacks.is_empty() && remote_lacks.is_empty() {
            None
        } else {
            [local.oldest_unsynced_ms, remote.oldest_unsynced_ms]
                .into_iter()
                .flatten()
                .min()
        };
        Self {
            doc,
            local_heads,
            remote_heads,
            local_lacks,
            remote_lacks,
            oldest_unsynced_ms,
        }
    }

    /// True when neither side lacks a change.
    pub fn in_sync(&self) -> bool {
        self.local_lacks.is_empty() && self.remote_lacks.is_empty()
    }

    /// Number of changes the local replica lacks.
    pub fn local_lacks_changes(&self) -> u64 {
        self.local_lacks.iter().map(MissingRange::len).sum()
    }

    /// Number of changes the remote lacks.
    pub fn remote_lacks_changes(&self) -> u64 {
        self.remote_lacks.iter().map(MissingRange::len).sum()
    }

    /// Age of the oldest unsynced change at `now_ms` (0 if the clocks disagree about order).
    pub fn oldest_unsynced_age_ms(&self, now_ms: u64) -> Option<u64> {
        self.oldest_unsynced_ms
            .map(|oldest| now_ms.saturating_sub(oldest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Actor, VersionVector};

    fn clock(pairs: &[(&str, u64)]) -> VersionVector {
        pairs
            .iter()
            .map(|(label, seq)| (label.parse::<Actor>().expect("label"), *seq))
            .collect()
    }

    #[test]
    fn reports_both_directions_and_the_oldest_age() {
        let hub = DocStatus {
            clock: clock(&[("hub", 10_202)]),
            oldest_unsynced_ms: None,
        };
        let till = DocStatus {
            clock: clock(&[("hub", 10_002), ("till-01", 200)]),
            oldest_unsynced_ms: Some(1_000),
        };
        let doc = DocId::new("store/01/catalogue").expect("doc");
        let report = DocDivergence::compute(doc, vec![], &hub, None, &till);
        assert!(!report.in_sync());
        assert_eq!(report.local_lacks_changes(), 200);
        assert_eq!(report.remote_lacks_changes(), 200);
        assert_eq!(report.local_lacks[0].to_string(), "till-01 seq 1..=200");
        assert_eq!(report.remote_lacks[0].to_string(), "hub seq 10003..=10202");
        assert_eq!(report.oldest_unsynced_age_ms(61_000), Some(60_000));
        let json = serde_json::to_value(&report).expect("serialise");
        assert_eq!(json["local_lacks"][0]["actor"], "till-01");
    }

    #[test]
    fn equal_clocks_are_in_sync_whatever_the_reported_age() {
        let status = DocStatus {
            clock: clock(&[("till-01", 3)]),
            oldest_unsynced_ms: Some(5),
        };
        let doc = DocId::new("d").expect("doc");
        let report = DocDivergence::compute(doc, vec![], &status, Some(vec![]), &status);
        assert!(report.in_sync());
        assert_eq!(report.oldest_unsynced_ms, None);
    }
}
