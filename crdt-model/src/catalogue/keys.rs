//! The catalogue's root-key layout, in one place: the header keys, register entries
//! (`p|<sku>|<field>|<hlc>`) and ledger records (`c|<hlc>|<sku>|<field>`). The model writes
//! and scans these keys here; the hub's clock guard, its CSV import and the till's replica
//! read the timestamps out of them through [`key_hlc`] and [`latest_hlc`] instead of
//! splitting keys themselves.

use std::ops::Range;

use automerge::{ReadDoc, ROOT};

use super::Field;
use crate::hlc::Hlc;

pub(super) const KIND_KEY: &str = "kind";
pub(super) const KIND: &str = "catalogue";
pub(super) const SCHEMA_KEY: &str = "schema";
pub(super) const STORE_KEY: &str = "store";

pub(super) const PRODUCT_PREFIX: &str = "p|";
pub(super) const LEDGER_PREFIX: &str = "c|";

/// The key of one register entry.
pub(super) fn entry_key(sku: &str, field: Field, hlc: &Hlc) -> String {
    entry_key_at(sku, field, &hlc.to_string())
}

/// [`entry_key`] with the timestamp already formatted (bulk writes format it once).
pub(super) fn entry_key_at(sku: &str, field: Field, hlc_text: &str) -> String {
    format!("{PRODUCT_PREFIX}{sku}|{field}|{hlc_text}")
}

/// The key of one ledger record. Deterministic, so replicas recording the same loser
/// write the same key; the HLC comes first so the ledger reads in time order.
pub(super) fn ledger_key(sku: &str, field: Field, hlc: &Hlc) -> String {
    format!("{LEDGER_PREFIX}{hlc}|{sku}|{field}")
}

/// The parts of a register entry's key; `Err` says what is missing.
pub(super) struct EntryKey<'k> {
    pub sku: &'k str,
    pub field: &'k str,
    pub hlc: &'k str,
}

impl<'k> EntryKey<'k> {
    /// Splits `p|<sku>|<field>|<hlc>`.
    pub fn parse(key: &'k str) -> Result<EntryKey<'k>, &'static str> {
        let rest = key
            .strip_prefix(PRODUCT_PREFIX)
            .ok_or("not a product key")?;
        let (sku, rest) = rest.split_once('|').ok_or("no field")?;
        let (field, hlc) = rest.split_once('|').ok_or("no timestamp")?;
        Ok(EntryKey { sku, field, hlc })
    }
}

/// All keys starting with `prefix`: `'}'` is the character after the separator `'|'`.
pub(super) fn prefix_range(prefix: &str) -> Range<String> {
    let end = match prefix.strip_suffix('|') {
        Some(stem) => format!("{stem}}}"),
        None => format!("{prefix}\u{10FFFF}"),
    };
    prefix.to_owned()..end
}

/// The timestamp text of a register entry (its last `|` segment) or a ledger record (its
/// first segment after `c|`); `None` for any other root key. The text is not parsed: a
/// caller that only needs the physical time reads its digits.
pub fn key_hlc(key: &str) -> Option<&str> {
    if let Some(rest) = key.strip_prefix(PRODUCT_PREFIX) {
        rest.rsplit_once('|').map(|(_, hlc)| hlc)
    } else if let Some(rest) = key.strip_prefix(LEDGER_PREFIX) {
        rest.split_once('|').map(|(hlc, _)| hlc)
    } else {
        None
    }
}

/// The newest timestamp of any register entry, so that a writer can stamp its next write
/// after everything already in the catalogue. Entries whose timestamp does not parse are
/// skipped (a scan through [`super::products`] reports them as corrupt).
pub fn latest_hlc<D: ReadDoc>(doc: &D) -> Option<Hlc> {
    doc.map_range(ROOT, prefix_range(PRODUCT_PREFIX))
        .filter_map(|item| item.key.rsplit('|').next()?.parse::<Hlc>().ok())
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::AutoCommit;

    #[test]
    fn prefix_ranges_cover_exactly_one_sku() {
        let range = prefix_range("p|A|");
        let inside = |key: &str| range.contains(&key.to_owned());
        assert!(inside("p|A|name|0000000000000001-00000-T1"));
        assert!(!inside("p|A |name|x"));
        assert!(!inside("p|AB|name|x"));
        assert!(!inside("p|A}"));
        assert!(!inside("p|@|name|x"));
        let all = prefix_range("p|");
        assert!(all.contains(&"p|Линза|name|x".to_owned()));
        assert!(!all.contains(&"c|x".to_owned()));
        assert!(!all.contains(&"price".to_owned()));
    }

    #[test]
    fn timestamps_come_out_of_entry_and_ledger_keys() {
        let hlc = "0001700000000000-00000-hub/hub";
        assert_eq!(key_hlc(&format!("p|F-1|price|{hlc}")), Some(hlc));
        assert_eq!(key_hlc(&format!("c|{hlc}|F-1|price")), Some(hlc));
        assert_eq!(key_hlc("kind"), None);
        assert_eq!(key_hlc("p|nothing"), None);
        let key = format!("p|F-1|price|{hlc}");
        let entry = EntryKey::parse(&key).map(|k| (k.sku, k.field, k.hlc));
        assert_eq!(entry, Ok(("F-1", "price", hlc)));
        assert_eq!(EntryKey::parse("p|F-1").err(), Some("no field"));
        assert_eq!(EntryKey::parse("p|F-1|price").err(), Some("no timestamp"));
    }

    #[test]
    fn the_latest_entry_timestamp_wins() -> Result<(), automerge::AutomergeError> {
        let mut doc = AutoCommit::new();
        assert_eq!(latest_hlc(&doc), None);
        doc.put(ROOT, "p|F-1|price|0001700000000000-00000-hub/hub", 1)?;
        doc.put(ROOT, "p|F-2|name|0001700000000500-00003-S1/T2/node", "x")?;
        doc.put(ROOT, "c|0001900000000000-00000-hub/hub|F-1|price", "{}")?;
        doc.put(ROOT, "p|F-3|name|garbage", "x")?;
        let latest = latest_hlc(&doc).map(|h| h.to_string());
        assert_eq!(latest.as_deref(), Some("0001700000000500-00003-S1/T2/node"));
        Ok(())
    }
}
