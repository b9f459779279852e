//! The till's fiscal results in the session document: for each receipt (and for the Z
//! report) the fiscal document the register made and how far the OFD has got with it.
//!
//! # Layout
//! ```text
//! fiscal = { <receipt id> | "z": { fn_number, fd_number, fiscal_sign, shift_number,
//!                                  receipt_number, datetime_unix, ofd_status,
//!                                  ofd_acknowledged_at_ms (only when acknowledged) } }
//! ```
//! A map of its own, beside `receipts`, so that a receipt body is never rewritten: the
//! status advances by overwriting scalars in the target's map. Documents made before this
//! map existed read as having no fiscal results; the map is made on the first write.
//!
//! # Merge
//! The OFD status only moves up `pending < dead_letter < acknowledged`, and a read takes
//! the highest status among concurrent values (of the field, of concurrently created
//! target maps, of concurrently created `fiscal` maps in an older document), so every
//! replica reads the same, furthest outcome whatever the merge order. The acknowledgement
//! time is the earliest one seen. The other fields, the record's [`FiscalNumbers`], describe
//! one fiscal document, which a write may not change once recorded: concurrent values can
//! only differ if the register fiscalised a receipt twice, and then the read picks one
//! deterministically.

use std::collections::{BTreeMap, HashMap};

use automerge::transaction::Transactable;
use automerge::{hydrate, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde::{Deserialize, Serialize};

use super::doc::{corrupt, invalid, object, read_header, Fields, Result, RECEIPTS};
use super::MAX_RECEIPTS;
use crate::error::{ReceiptError, SessionError, Violation};
pub use crate::fiscal::{FiscalNumbers, OfdState, MAX_FN_DIGITS};
use crate::ids::ReceiptId;

/// The top-level map of fiscal results.
pub(super) const FISCAL: &str = "fiscal";
/// The key of the Z report's fiscal result in [`super::SessionView::fiscal`].
pub const SHIFT_CLOSE_KEY: &str = "z";

const STATUS: &str = "ofd_status";
const ACKNOWLEDGED_AT: &str = "ofd_acknowledged_at_ms";

/// What a fiscal result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FiscalTarget {
    /// A receipt of this session.
    Receipt(ReceiptId),
    /// The session's Z report.
    ShiftClose,
}

impl FiscalTarget {
    /// The key in the `fiscal` map and in [`super::SessionView::fiscal`].
    pub fn key(&self) -> String {
        match self {
            FiscalTarget::Receipt(id) => id.to_string(),
            FiscalTarget::ShiftClose => SHIFT_CLOSE_KEY.to_owned(),
        }
    }
}

/// The fiscal document the register made for a receipt or Z report, and its OFD status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalRecord {
    /// The document's identity; stored as scalars of the target's map, beside the status.
    #[serde(flatten)]
    pub numbers: FiscalNumbers,
    /// Where the OFD is with it.
    pub ofd_status: OfdState,
    /// When the OFD acknowledged it, Unix ms; present exactly when acknowledged.
    pub ofd_acknowledged_at_ms: Option<u64>,
}

impl FiscalRecord {
    /// Checks the rules [`record_fiscal`] enforces before writing (and reads re-check): those
    /// of the numbers ([`FiscalNumbers::validate`]), and an acknowledgement time that fits
    /// its stored integer, set exactly when acknowledged.
    pub fn validate(&self) -> std::result::Result<(), SessionError> {
        self.numbers.validate()?;
        self.fields()?;
        let acknowledged = self.ofd_status == OfdState::Acknowledged;
        if acknowledged != self.ofd_acknowledged_at_ms.is_some() {
            return Err(invalid(
                ACKNOWLEDGED_AT,
                "must be set when acknowledged, and only then",
            ));
        }
        Ok(())
    }

    /// The stored fields (the acknowledgement time only when set).
    fn fields(&self) -> Result<Vec<(&'static str, ScalarValue)>> {
        let numbers = &self.numbers;
        let seconds = i64::try_from(numbers.datetime_unix)
            .map_err(|_| invalid("datetime_unix", "out of range"))?;
        let mut fields = vec![
            (
                "fn_number",
                ScalarValue::Str(numbers.fn_number.as_str().into()),
            ),
            ("fd_number", ScalarValue::Int(numbers.fd_number.into())),
            ("fiscal_sign", ScalarValue::Int(numbers.fiscal_sign.into())),
            (
                "shift_number",
                ScalarValue::Int(numbers.shift_number.into()),
            ),
            (
                "receipt_number",
                ScalarValue::Int(numbers.receipt_number.into()),
            ),
            ("datetime_unix", ScalarValue::Int(seconds)),
            (STATUS, ScalarValue::Str(self.ofd_status.as_str().into())),
        ];
        if let Some(at_ms) = self.ofd_acknowledged_at_ms {
            let at_ms =
                i64::try_from(at_ms).map_err(|_| invalid(ACKNOWLEDGED_AT, "out of range"))?;
            fields.push((ACKNOWLEDGED_AT, ScalarValue::Int(at_ms)));
        }
        Ok(fields)
    }
}

/// Records the fiscal result of a receipt of this session or of its Z report, also after
/// the session is closed (OFD acknowledgements come hours later).
///
/// Writing again for the same target advances the OFD status (`pending` → `dead_letter` →
/// `acknowledged`, steps may be skipped); the same status again is accepted and writes
/// nothing when nothing changed. Refused: an invalid record, a receipt the session does
/// not hold, a status going back, and a different fiscal document (FN, FD, sign, shift,
/// receipt number or time) for a target that already has one. A repeated acknowledgement
/// keeps the earliest acknowledgement time.
pub fn record_fiscal(
    doc: &mut AutoCommit,
    target: FiscalTarget,
    record: &FiscalRecord,
) -> Result<()> {
    record.validate()?;
    read_header(&*doc)?;
    let receipts = object(&*doc, RECEIPTS)?;
    let key = target.key();
    if let FiscalTarget::Receipt(id) = target {
        if doc.get(&receipts, key.as_str())?.is_none() {
            return Err(SessionError::InvalidReceipt {
                id,
                source: ReceiptError::new(
                    "fiscal",
                    Violation::Invalid("no such receipt in this session"),
                ),
            });
        }
    }
    let mut next = record.clone();
    if let Some(current) = read_target(&*doc, &key)? {
        if let Some(field) = current.numbers.differing_field(&record.numbers) {
            return Err(invalid(
                field,
                "differs from the fiscal document already recorded for this target",
            ));
        }
        if record.ofd_status.rank() < current.ofd_status.rank() {
            return Err(invalid(
                STATUS,
                "cannot go back (pending < dead_letter < acknowledged)",
            ));
        }
        if let (Some(kept), Some(new)) = (
            current.ofd_acknowledged_at_ms,
            record.ofd_acknowledged_at_ms,
        ) {
            next.ofd_acknowledged_at_ms = Some(kept.min(new));
        }
        if next == current {
            return Ok(());
        }
    }
    let fiscal = match doc.get(ROOT, FISCAL)? {
        Some((Value::Object(ObjType::Map), obj)) => obj,
        Some(_) => return Err(corrupt(FISCAL, "not a map")),
        None => doc.put_object(ROOT, FISCAL, ObjType::Map)?,
    };
    let fields = next.fields()?;
    let single = match doc.get_all(&fiscal, key.as_str())?.as_slice() {
        [(Value::Object(ObjType::Map), obj)] => Some(obj.clone()),
        _ => None,
    };
    match single {
        Some(obj) => update_fields(doc, &obj, &fields),
        // Absent, or maps created concurrently: one new map supersedes them all.
        None => {
            let value = hydrate::Value::Map(hydrate::Map::from(
                fields
                    .into_iter()
                    .map(|(name, value)| (name, hydrate::Value::Scalar(value)))
                    .collect::<HashMap<_, _>>(),
            ));
            doc.batch_create_object(&fiscal, key.as_str(), &value, false)?;
            Ok(())
        }
    }
}

/// Puts the fields whose stored value differs (or is in conflict); deletes the
/// acknowledgement time if the record has none.
fn update_fields(
    doc: &mut AutoCommit,
    obj: &ObjId,
    fields: &[(&'static str, ScalarValue)],
) -> Result<()> {
    for (name, value) in fields {
        let stored = doc.get_all(obj, *name)?;
        let same = matches!(stored.as_slice(), [(Value::Scalar(old), _)] if old.as_ref() == value);
        if !same {
            doc.put(obj, *name, value.clone())?;
        }
    }
    if !fields.iter().any(|(name, _)| *name == ACKNOWLEDGED_AT)
        && doc.get(obj, ACKNOWLEDGED_AT)?.is_some()
    {
        doc.delete(obj, ACKNOWLEDGED_AT)?;
    }
    Ok(())
}

/// All fiscal results, keyed by receipt id or [`SHIFT_CLOSE_KEY`], re-validated. A
/// document without the `fiscal` map (made before it existed) has none.
pub fn read_fiscal<D: ReadDoc>(doc: &D) -> Result<BTreeMap<String, FiscalRecord>> {
    read_header(doc)?;
    let receipts = object(doc, RECEIPTS)?;
    read_fiscal_in(doc, &receipts)
}

/// [`read_fiscal`] for a document already known to be a session.
pub(super) fn read_fiscal_in<D: ReadDoc>(
    doc: &D,
    receipts: &ObjId,
) -> Result<BTreeMap<String, FiscalRecord>> {
    let mut records = BTreeMap::new();
    for fiscal in fiscal_maps(doc)? {
        if doc.length(&fiscal) > MAX_RECEIPTS + 1 {
            return Err(corrupt(FISCAL, "more entries than a session may hold"));
        }
        for key in doc.keys(&fiscal) {
            check_key(doc, receipts, &key)?;
            for candidate in candidates(doc, &fiscal, &key)? {
                keep_furthest(&mut records, key.clone(), candidate);
            }
        }
    }
    Ok(records)
}

/// The resolved fiscal result of one target, if any.
fn read_target<D: ReadDoc>(doc: &D, key: &str) -> Result<Option<FiscalRecord>> {
    let mut records = BTreeMap::new();
    for fiscal in fiscal_maps(doc)? {
        for candidate in candidates(doc, &fiscal, key)? {
            keep_furthest(&mut records, key.to_owned(), candidate);
        }
    }
    Ok(records.remove(key))
}

/// Every `fiscal` map: one, or several when replicas of an older document made it
/// concurrently; none in an older document.
fn fiscal_maps<D: ReadDoc>(doc: &D) -> Result<Vec<ObjId>> {
    doc.get_all(ROOT, FISCAL)?
        .into_iter()
        .map(|(value, obj)| match value {
            Value::Object(ObjType::Map) => Ok(obj),
            _ => Err(corrupt(FISCAL, "not a map")),
        })
        .collect()
}

/// The records of every concurrently created map of one target, in Automerge's order
/// (the last one is the winner of last-writer-wins).
fn candidates<D: ReadDoc>(doc: &D, fiscal: &ObjId, key: &str) -> Result<Vec<FiscalRecord>> {
    let path = format!("{FISCAL}/{key}");
    doc.get_all(fiscal, key)?
        .into_iter()
        .map(|(value, obj)| match value {
            Value::Object(ObjType::Map) => read_record(doc, obj, &path),
            _ => Err(corrupt(&path, "not a map")),
        })
        .collect()
}

/// Keeps the record with the highest status; on a tie the later candidate, so that
/// replicas with the same changes agree. Two acknowledgements of the same fiscal
/// document keep the earliest time.
fn keep_furthest(
    records: &mut BTreeMap<String, FiscalRecord>,
    key: String,
    candidate: FiscalRecord,
) {
    let Some(kept) = records.get_mut(&key) else {
        records.insert(key, candidate);
        return;
    };
    let earliest = match (
        kept.ofd_acknowledged_at_ms,
        candidate.ofd_acknowledged_at_ms,
    ) {
        (Some(a), Some(b)) if kept.numbers.differing_field(&candidate.numbers).is_none() => {
            Some(a.min(b))
        }
        _ => None,
    };
    if candidate.ofd_status.rank() >= kept.ofd_status.rank() {
        *kept = candidate;
    }
    if earliest.is_some() {
        kept.ofd_acknowledged_at_ms = earliest;
    }
}

/// A key must be the Z report or a receipt this session holds (receipts are
/// append-only and a result is only written for a receipt present, so a merge cannot
/// break this).
fn check_key<D: ReadDoc>(doc: &D, receipts: &ObjId, key: &str) -> Result<()> {
    if key == SHIFT_CLOSE_KEY {
        return Ok(());
    }
    let path = || format!("{FISCAL}/{key}");
    let id: ReceiptId = key.parse().map_err(|e| corrupt(path(), e))?;
    if id.to_string() != key || doc.get(receipts, key)?.is_none() {
        return Err(corrupt(path(), "no such receipt in this session"));
    }
    Ok(())
}

/// Reads one target map. Concurrent values of the status resolve to the highest, of the
/// acknowledgement time to the earliest; other fields by last-writer-wins.
fn read_record<D: ReadDoc>(doc: &D, obj: ObjId, path: &str) -> Result<FiscalRecord> {
    let field_path = |name: &str| format!("{path}/{name}");
    let mut status: Option<OfdState> = None;
    for (value, _) in doc.get_all(&obj, STATUS)? {
        let parsed = match value {
            Value::Scalar(scalar) => match scalar.as_ref() {
                ScalarValue::Str(name) => OfdState::parse(name),
                _ => None,
            },
            Value::Object(_) => None,
        }
        .ok_or_else(|| corrupt(field_path(STATUS), "unknown status"))?;
        if status.is_none_or(|s| parsed.rank() > s.rank()) {
            status = Some(parsed);
        }
    }
    let status = status.ok_or_else(|| corrupt(field_path(STATUS), "missing"))?;
    let mut acknowledged_at: Option<u64> = None;
    for (value, _) in doc.get_all(&obj, ACKNOWLEDGED_AT)? {
        let at_ms = match value {
            Value::Scalar(scalar) => match scalar.as_ref() {
                ScalarValue::Int(at_ms) => u64::try_from(*at_ms).ok(),
                _ => None,
            },
            Value::Object(_) => None,
        }
        .ok_or_else(|| corrupt(field_path(ACKNOWLEDGED_AT), "not a time"))?;
        acknowledged_at = Some(acknowledged_at.map_or(at_ms, |kept| kept.min(at_ms)));
    }
    if status != OfdState::Acknowledged {
        // Reachable only by a write outside this model: a status never goes back.
        if acknowledged_at.is_some() {
            return Err(corrupt(
                field_path(ACKNOWLEDGED_AT),
                "set but not acknowledged",
            ));
        }
    }
    let fields = Fields::new(doc, obj, path.to_owned());
    let number = |name: &str| -> Result<u32> {
        u32::try_from(fields.int(name)?).map_err(|e| corrupt(field_path(name), e))
    };
    let record = FiscalRecord {
        numbers: FiscalNumbers {
            fn_number: fields.text("fn_number")?,
            fd_number: number("fd_number")?,
            fiscal_sign: number("fiscal_sign")?,
            shift_number: number("shift_number")?,
            receipt_number: number("receipt_number")?,
            datetime_unix: u64::try_from(fields.int("datetime_unix")?)
                .map_err(|e| corrupt(field_path("datetime_unix"), e))?,
        },
        ofd_status: status,
        ofd_acknowledged_at_ms: acknowledged_at,
    };
    record.validate().map_err(|e| corrupt(path, e))?;
    Ok(record)
}

#[cfg(test)]
mod tests;
