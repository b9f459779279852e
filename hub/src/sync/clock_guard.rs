//! Refuses timestamps from the future: a NEW receipt, cash movement, session header or
//! close, or catalogue register entry whose HLC is more than [`MAX_CLOCK_LEAD_MS`] ahead of
//! the hub's wall clock.
//!
//! Why: HLCs order receipts for the fiscal pipeline and decide which catalogue write wins.
//! A till whose clock says next year would otherwise win every catalogue register until
//! next year and file its receipts after everyone else's. The round carrying such an entry
//! is refused whole (422, nothing applied); the till keeps the entry and retries, and the
//! round goes through once the hub's clock has caught up (a few minutes of skew heals by
//! itself; a wrong year needs the till's clock fixed — the refusal is recorded as the
//! till's last error, which the divergence view shows).
//!
//! Only entries that are new in this round are checked: an entry the hub already held was
//! accepted when it came, and refusing it now (for instance on a hub whose clock is a
//! little behind another hub's) would block the document forever. "Already held" is
//! decided by reading the entry at the heads the document had before the round, and only
//! for entries that are too far ahead, so the common case costs one pass over the HLCs.

use automerge::{AutoCommit, ChangeHash, ReadDoc, Value, ROOT};
use crdt_model::session::SessionView;
use crdt_model::{Hlc, ReceiptId};
use std::collections::HashSet;
use std::fmt;

/// How far ahead of the hub's wall clock a new entry's HLC may be. The same window as the
/// till's own clock uses for remote timestamps (`till_node::node::MAX_CLOCK_LEAD_MS`), so a
/// timestamp one side accepts the other accepts too.
pub const MAX_CLOCK_LEAD_MS: u64 = 10 * 60 * 1000;

/// Digits of the physical part at the start of an HLC's text form.
const PHYSICAL_DIGITS: usize = 16;

/// A new entry stamped too far ahead of the hub's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarAhead {
    /// The document.
    pub doc: String,
    /// What the entry is (`receipt <id>`, `movement <id>`, `header`, `close`,
    /// `catalogue entry <key>`).
    pub entry: String,
    /// The entry's HLC, as text.
    pub hlc: String,
    /// How far ahead of the hub's wall clock it is, ms.
    pub ahead_ms: u64,
    /// The allowed lead, ms.
    pub limit_ms: u64,
}

impl fmt::Display for FarAhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} is stamped {}, {} s ahead of the hub's clock (limit {} s); \
             check the till's clock",
            self.entry,
            self.doc,
            self.hlc,
            self.ahead_ms / 1000,
            self.limit_ms / 1000
        )
    }
}

/// The clock bound of one round.
#[derive(Debug, Clone, Copy)]
pub struct ClockGuard {
    /// The hub's wall clock, ms.
    pub now_ms: i64,
    /// The allowed lead, ms.
    pub limit_ms: u64,
}

impl ClockGuard {
    /// The guard for a round at `now_ms` with the standard lead.
    pub fn new(now_ms: i64) -> ClockGuard {
        ClockGuard {
            now_ms,
            limit_ms: MAX_CLOCK_LEAD_MS,
        }
    }

    /// How far `physical_ms` is beyond the allowed lead: `Some(ms ahead of now)` if too far.
    fn too_far(&self, physical_ms: u64) -> Option<u64> {
        let now = u64::try_from(self.now_ms).unwrap_or(0);
        (physical_ms > now.saturating_add(self.limit_ms)).then(|| physical_ms - now)
    }

    fn far_ahead(&self, doc: &str, entry: String, hlc: &Hlc, ahead_ms: u64) -> FarAhead {
        FarAhead {
            doc: doc.to_owned(),
            entry,
            hlc: hlc.to_string(),
            ahead_ms,
            limit_ms: self.limit_ms,
        }
    }

    /// Checks the new entries of a session document: `view` is the document after the
    /// round, `before` its heads before (empty for a document new to the hub), and
    /// `receipts_before` the receipts it held before.
    pub fn check_session(
        &self,
        doc_id: &str,
        doc: &AutoCommit,
        view: &SessionView,
        before: &[ChangeHash],
        receipts_before: &HashSet<ReceiptId>,
    ) -> Result<(), FarAhead> {
        let header = &view.header.opened_at;
        if let Some(ahead) = self.too_far(header.physical_ms) {
            if !existed_before(doc, before, &["header"]) {
                return Err(self.far_ahead(doc_id, "header".to_owned(), header, ahead));
            }
        }
        for receipt in &view.receipts {
            if let Some(ahead) = self.too_far(receipt.hlc.physical_ms) {
                if !receipts_before.contains(&receipt.id) {
                    let entry = format!("receipt {}", receipt.id);
                    return Err(self.far_ahead(doc_id, entry, &receipt.hlc, ahead));
                }
            }
        }
        for movement in &view.movements {
            if let Some(ahead) = self.too_far(movement.hlc.physical_ms) {
                let id = movement.id.to_string();
                if !existed_before(doc, before, &["movements", &id]) {
                    let entry = format!("movement {id}");
                    return Err(self.far_ahead(doc_id, entry, &movement.hlc, ahead));
                }
            }
        }
        if let Some(close) = &view.close {
            if let Some(ahead) = self.too_far(close.closed_at.physical_ms) {
                if !existed_before(doc, before, &["close"]) {
                    return Err(self.far_ahead(
                        doc_id,
                        "close".to_owned(),
                        &close.closed_at,
                        ahead,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the new register entries (`p|<sku>|<field>|<hlc>`) and ledger records
    /// (`c|<hlc>|<sku>|<field>`) of a catalogue document; `before` as for sessions.
    pub fn check_catalogue(
        &self,
        doc_id: &str,
        doc: &AutoCommit,
        before: &[ChangeHash],
    ) -> Result<(), FarAhead> {
        for key in doc.keys(ROOT) {
            let hlc_text = crdt_model::catalogue::key_hlc(&key);
            // Only the physical part is needed to decide; the full parse runs on a hit.
            let Some(physical) = hlc_text
                .and_then(|t| t.get(..PHYSICAL_DIGITS))
                .and_then(|digits| digits.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(ahead) = self.too_far(physical) else {
                continue;
            };
            if existed_before(doc, before, &[key.as_str()]) {
                continue;
            }
            let hlc = hlc_text.and_then(|t| t.parse::<Hlc>().ok());
            return Err(FarAhead {
                doc: doc_id.to_owned(),
                hlc: hlc.map_or_else(|| hlc_text.unwrap_or("").to_owned(), |h| h.to_string()),
                entry: format!("catalogue entry {key}"),
                ahead_ms: ahead,
                limit_ms: self.limit_ms,
            });
        }
        Ok(())
    }
}

/// Whether the value at `path` (map keys from the root) existed at `before`. An empty
/// `before` is the empty document; a path that cannot be read there did not exist.
fn existed_before(doc: &AutoCommit, before: &[ChangeHash], path: &[&str]) -> bool {
    if before.is_empty() {
        return false;
    }
    let mut obj = ROOT;
    for (index, key) in path.iter().enumerate() {
        let last = index + 1 == path.len();
        match doc.get_at(&obj, *key, before) {
            Ok(Some(_)) if last => return true,
            Ok(Some((Value::Object(_), id))) => obj = id,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ObjType;

    fn guard() -> ClockGuard {
        ClockGuard {
            now_ms: 1_000_000,
            limit_ms: 1_000,
        }
    }

    #[test]
    fn the_window_is_inclusive_and_saturating() {
        let g = guard();
        assert_eq!(g.too_far(1_001_000), None);
        assert_eq!(g.too_far(1_001_001), Some(1_001));
        assert_eq!(g.too_far(0), None);
        let broken = ClockGuard {
            now_ms: -5,
            limit_ms: u64::MAX,
        };
        assert_eq!(broken.too_far(u64::MAX), None);
    }

    #[test]
    fn catalogue_entries_are_checked_only_when_new() {
        let g = guard();
        let far = "0000000009000000-00000-S1/T1/node";
        let near = "0000000001000500-00000-S1/T1/node";
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "kind", "catalogue").expect("put");
        doc.put(ROOT, format!("p|F-1|price|{near}"), 100)
            .expect("put");
        doc.commit();
        let before = doc.get_heads();
        assert_eq!(g.check_catalogue("catalogue/S1", &doc, &[]), Ok(()));

        doc.put(ROOT, format!("p|F-1|name|{far}"), "x")
            .expect("put");
        doc.commit();
        let err = g
            .check_catalogue("catalogue/S1", &doc, &before)
            .expect_err("far ahead");
        assert_eq!(err.hlc, far);
        assert_eq!(err.ahead_ms, 8_000_000);
        assert!(err.entry.contains("p|F-1|name|"), "{err}");
        // Once held, the same entry is no longer new.
        let held = doc.get_heads();
        assert_eq!(g.check_catalogue("catalogue/S1", &doc, &held), Ok(()));

        doc.put(ROOT, format!("c|{far}|F-1|name"), "{}")
            .expect("put");
        doc.commit();
        let err = g
            .check_catalogue("catalogue/S1", &doc, &held)
            .expect_err("ledger record far ahead");
        assert!(err.entry.starts_with("catalogue entry c|"), "{err}");
    }

    #[test]
    fn nested_paths_are_read_at_the_old_heads() {
        let mut doc = AutoCommit::new();
        let movements = doc
            .put_object(ROOT, "movements", ObjType::Map)
            .expect("map");
        doc.commit();
        let before = doc.get_heads();
        doc.put(&movements, "m1", 1).expect("put");
        doc.commit();
        let after = doc.get_heads();
        assert!(!existed_before(&doc, &before, &["movements", "m1"]));
        assert!(existed_before(&doc, &after, &["movements", "m1"]));
        assert!(existed_before(&doc, &before, &["movements"]));
        assert!(!existed_before(&doc, &[], &["movements"]));
        assert!(!existed_before(&doc, &after, &["close"]));
    }
}
