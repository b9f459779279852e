//! Reading and writing the session document: open, append receipts and cash movements,
//! close with totals, and read everything back re-validated.

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{
    hydrate, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
    ROOT,
};

use super::fiscal::{read_fiscal_in, FISCAL};
use super::{
    Appended, CashMovement, MovementKind, PaymentTotals, SessionClose, SessionHeader,
    SessionTotals, SessionView, MAX_CASHIER_LEN, MAX_MOVEMENTS, MAX_REASON_LEN, MAX_RECEIPTS,
    SCHEMA_VERSION,
};
use crate::error::SessionError;
use crate::hlc::Hlc;
use crate::ids::{MovementId, ReceiptId};
use crate::money::{Kopecks, MAX_AMOUNT};
use crate::receipt::Receipt;

const KIND_KEY: &str = "kind";
const KIND: &str = "session";
const SCHEMA_KEY: &str = "schema";
const HEADER: &str = "header";
pub(super) const RECEIPTS: &str = "receipts";
const MOVEMENTS: &str = "movements";
const CLOSE: &str = "close";

pub(super) type Result<T> = std::result::Result<T, SessionError>;

/// Creates a session in an empty document: header and empty receipt, movement and
/// fiscal maps, in one batch insert (made here, the fiscal map is one object on every
/// replica rather than one per replica that first writes to it).
pub fn open(doc: &mut AutoCommit, header: &SessionHeader) -> Result<()> {
    check_text("cashier", &header.cashier, MAX_CASHIER_LEN, false)?;
    check_amount("opening_cash", header.opening_cash, false)?;
    header
        .opened_at
        .validate()
        .map_err(|_| invalid("opened_at", "invalid timestamp"))?;
    // The batch insert appends to the op set, so it needs a document with no history.
    if doc.length(ROOT) != 0 || !doc.get_heads().is_empty() {
        return Err(SessionError::NotEmpty);
    }
    let header_map = map([
        ("session_id", scalar(header.session_id.to_string())),
        ("store", scalar(header.store.as_str())),
        ("till", scalar(header.till.as_str())),
        ("cashier", scalar(header.cashier.as_str())),
        ("opened_at", scalar(header.opened_at.to_string())),
        ("opening_cash", scalar(header.opening_cash.0)),
    ]);
    let root = hydrate::Map::from(HashMap::from([
        (KIND_KEY, scalar(KIND)),
        (SCHEMA_KEY, scalar(SCHEMA_VERSION)),
        (HEADER, header_map),
        (RECEIPTS, hydrate::Value::map()),
        (MOVEMENTS, hydrate::Value::map()),
        (FISCAL, hydrate::Value::map()),
    ]));
    doc.init_root_from_hydrate(&root)?;
    Ok(())
}

/// Appends a receipt. A retry with the identical receipt returns
/// [`Appended::AlreadyPresent`] (even after close); a different receipt under the same id,
/// a receipt of another session or till, an invalid receipt, a closed or full session
/// are refused.
pub fn append_receipt(doc: &mut AutoCommit, receipt: &Receipt) -> Result<Appended> {
    let header = read_header(&*doc)?;
    let receipts = object(&*doc, RECEIPTS)?;
    if let Some(existing) = get_receipt_in(&*doc, &receipts, receipt.id)? {
        return if &existing == receipt {
            Ok(Appended::AlreadyPresent)
        } else {
            Err(SessionError::ReceiptConflict { id: receipt.id })
        };
    }
    if doc.get(ROOT, CLOSE)?.is_some() {
        return Err(SessionError::Closed);
    }
    check_receipt_owner(&header, receipt)?;
    receipt
        .check_invariants()
        .map_err(|source| SessionError::InvalidReceipt {
            id: receipt.id,
            source,
        })?;
    if doc.length(&receipts) >= MAX_RECEIPTS {
        return Err(SessionError::Full { max: MAX_RECEIPTS });
    }
    let json =
        serde_json::to_string(receipt).map_err(|error| corrupt(receipt_path(receipt.id), error))?;
    doc.put(
        &receipts,
        receipt.id.to_string(),
        ScalarValue::Str(json.into()),
    )?;
    Ok(Appended::New)
}

/// Appends a cash-in or cash-out. Idempotent like [`append_receipt`]; a cash-out larger
/// than the cash in the drawer is refused.
pub fn append_movement(doc: &mut AutoCommit, movement: &CashMovement) -> Result<Appended> {
    let view = read(&*doc)?;
    if let Some(existing) = view.movements.iter().find(|m| m.id == movement.id) {
        return if existing == movement {
            Ok(Appended::AlreadyPresent)
        } else {
            Err(SessionError::MovementConflict { id: movement.id })
        };
    }
    if view.is_closed() {
        return Err(SessionError::Closed);
    }
    check_movement(movement)?;
    if view.movements.len() >= MAX_MOVEMENTS {
        return Err(SessionError::Full { max: MAX_MOVEMENTS });
    }
    let available = view.cash_balance();
    if movement.kind == MovementKind::CashOut && movement.amount > available {
        return Err(SessionError::InsufficientCash {
            available,
            requested: movement.amount,
        });
    }
    let movements = object(&*doc, MOVEMENTS)?;
    let value = map([
        ("kind", scalar(movement.kind.as_str())),
        ("amount", scalar(movement.amount.0)),
        ("hlc", scalar(movement.hlc.to_string())),
        ("reason", scalar(movement.reason.as_str())),
    ]);
    doc.batch_create_object(&movements, movement.id.to_string(), &value, false)?;
    Ok(Appended::New)
}

/// Closes the session (Z report): computes and stores the totals, after which nothing
/// more can be appended.
pub fn close(doc: &mut AutoCommit, closed_at: &Hlc, cashier: &str) -> Result<SessionClose> {
    let view = read(&*doc)?;
    if view.is_closed() {
        return Err(SessionError::Closed);
    }
    check_text("cashier", cashier, MAX_CASHIER_LEN, false)?;
    closed_at
        .validate()
        .map_err(|_| invalid("closed_at", "invalid timestamp"))?;
    if closed_at < &view.header.opened_at {
        return Err(invalid("closed_at", "is before the session was opened"));
    }
    let close = SessionClose {
        closed_at: closed_at.clone(),
        cashier: cashier.to_owned(),
        totals: view.totals(),
        cash_balance: view.cash_balance(),
    };
    let t = &close.totals;
    let value = map([
        ("closed_at", scalar(close.closed_at.to_string())),
        ("cashier", scalar(close.cashier.as_str())),
        ("receipts", scalar(i64::from(t.receipts))),
        ("sales_total", scalar(t.sales_total.0)),
        ("refunds_total", scalar(t.refunds_total.0)),
        ("corrections_total", scalar(t.corrections_total.0)),
        ("net_total", scalar(t.net_total.0)),
        ("paid_cash", scalar(t.payments.cash.0)),
        ("paid_card", scalar(t.payments.card.0)),
        ("paid_prepayment", scalar(t.payments.prepayment.0)),
        ("cash_in", scalar(t.cash_in.0)),
        ("cash_out", scalar(t.cash_out.0)),
        ("cash_balance", scalar(close.cash_balance.0)),
    ]);
    doc.batch_create_object(ROOT, CLOSE, &value, false)?;
    Ok(close)
}

/// The whole session, every entry re-validated.
pub fn read<D: ReadDoc>(doc: &D) -> Result<SessionView> {
    let header = read_header(doc)?;
    let receipts_obj = object(doc, RECEIPTS)?;
    if doc.length(&receipts_obj) > MAX_RECEIPTS {
        return Err(corrupt(RECEIPTS, "more receipts than a session may hold"));
    }
    let mut receipts = Vec::with_capacity(doc.length(&receipts_obj));
    for item in doc.map_range(&receipts_obj, ..) {
        let receipt = decode_receipt(&item.key, &item.value)?;
        check_receipt_owner(&header, &receipt).map_err(|e| corrupt(receipt_path(receipt.id), e))?;
        receipts.push(receipt);
    }
    receipts.sort_by(|a, b| (&a.hlc, a.id).cmp(&(&b.hlc, b.id)));

    let movements_obj = object(doc, MOVEMENTS)?;
    if doc.length(&movements_obj) > MAX_MOVEMENTS {
        return Err(corrupt(MOVEMENTS, "more movements than a session may hold"));
    }
    let mut movements = Vec::with_capacity(doc.length(&movements_obj));
    for item in doc.map_range(&movements_obj, ..) {
        let path = format!("{MOVEMENTS}/{}", item.key);
        let id: MovementId = item.key.parse().map_err(|e| corrupt(&path, e))?;
        let fields = Fields::new(doc, item.id(), path.clone());
        let kind = MovementKind::parse(&fields.text("kind")?)
            .ok_or_else(|| corrupt(&path, "unknown kind"))?;
        let movement = CashMovement {
            id,
            kind,
            amount: Kopecks(fields.int("amount")?),
            hlc: fields.hlc("hlc")?,
            reason: fields.text("reason")?,
        };
        check_movement(&movement).map_err(|e| corrupt(&path, e))?;
        movements.push(movement);
    }
    movements.sort_by(|a, b| (&a.hlc, a.id).cmp(&(&b.hlc, b.id)));

    let close = match doc.get(ROOT, CLOSE)? {
        Some((Value::Object(ObjType::Map), obj)) => Some(read_close(doc, obj)?),
        Some(_) => return Err(corrupt(CLOSE, "not a map")),
        None => None,
    };
    let fiscal = read_fiscal_in(doc, &receipts_obj)?;
    Ok(SessionView {
        header,
        receipts,
        movements,
        close,
        fiscal,
    })
}

/// The ids of all receipts, in key order.
pub fn receipt_ids<D: ReadDoc>(doc: &D) -> Result<Vec<ReceiptId>> {
    let receipts = object(doc, RECEIPTS)?;
    doc.map_range(&receipts, ..)
        .map(|item| {
            item.key
                .parse()
                .map_err(|e| corrupt(format!("{RECEIPTS}/{}", item.key), e))
        })
        .collect()
}

/// One receipt, re-validated; `None` if the session does not have it.
pub fn get_receipt<D: ReadDoc>(doc: &D, id: ReceiptId) -> Result<Option<Receipt>> {
    let header = read_header(doc)?;
    let receipts = object(doc, RECEIPTS)?;
    let receipt = get_receipt_in(doc, &receipts, id)?;
    if let Some(receipt) = &receipt {
        check_receipt_owner(&header, receipt).map_err(|e| corrupt(receipt_path(id), e))?;
    }
    Ok(receipt)
}

fn get_receipt_in<D: ReadDoc>(doc: &D, receipts: &ObjId, id: ReceiptId) -> Result<Option<Receipt>> {
    let key = id.to_string();
    match doc.get(receipts, key.as_str())? {
        Some((Value::Scalar(scalar), _)) => match scalar.as_ref() {
            ScalarValue::Str(json) => decode_json_receipt(&key, json).map(Some),
            _ => Err(corrupt(receipt_path(id), "not a string")),
        },
        Some(_) => Err(corrupt(receipt_path(id), "not a string")),
        None => Ok(None),
    }
}

fn decode_receipt(key: &str, value: &ValueRef<'_>) -> Result<Receipt> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Str(json)) => decode_json_receipt(key, json),
        _ => Err(corrupt(format!("{RECEIPTS}/{key}"), "not a string")),
    }
}

/// Parses a stored receipt and re-checks it: the pair of the checks made when written.
fn decode_json_receipt(key: &str, json: &str) -> Result<Receipt> {
    let path = format!("{RECEIPTS}/{key}");
    let receipt: Receipt = serde_json::from_str(json).map_err(|e| corrupt(&path, e))?;
    if receipt.id.to_string() != key {
        return Err(corrupt(&path, "receipt id differs from its key"));
    }
    receipt.check_invariants().map_err(|e| corrupt(&path, e))?;
    Ok(receipt)
}

fn check_receipt_owner(header: &SessionHeader, receipt: &Receipt) -> Result<()> {
    if receipt.session != header.session_id {
        return Err(SessionError::WrongSession {
            id: receipt.id,
            expected: header.session_id,
            found: receipt.session,
        });
    }
    if receipt.store != header.store || receipt.till != header.till {
        return Err(SessionError::WrongTill { id: receipt.id });
    }
    Ok(())
}

fn check_movement(movement: &CashMovement) -> Result<()> {
    check_amount("amount", movement.amount, true)?;
    check_text("reason", &movement.reason, MAX_REASON_LEN, true)?;
    movement
        .hlc
        .validate()
        .map_err(|_| invalid("hlc", "invalid timestamp"))
}

pub(super) fn read_header<D: ReadDoc>(doc: &D) -> Result<SessionHeader> {
    let kind = doc.get(ROOT, KIND_KEY)?;
    if kind.as_ref().and_then(|(value, _)| value.as_str()) != Some(KIND) {
        return Err(SessionError::NotASession);
    }
    let schema = doc
        .get(ROOT, SCHEMA_KEY)?
        .and_then(|(value, _)| value.as_i64());
    if schema != Some(SCHEMA_VERSION) {
        return Err(corrupt(
            SCHEMA_KEY,
            format!("unsupported schema version {schema:?}"),
        ));
    }
    let fields = Fields::new(doc, object(doc, HEADER)?, HEADER.to_owned());
    let header = SessionHeader {
        session_id: fields
            .text("session_id")?
            .parse()
            .map_err(|e| corrupt(HEADER, e))?,
        store: fields
            .text("store")?
            .parse()
            .map_err(|e| corrupt(HEADER, e))?,
        till: fields
            .text("till")?
            .parse()
            .map_err(|e| corrupt(HEADER, e))?,
        cashier: fields.text("cashier")?,
        opened_at: fields.hlc("opened_at")?,
        opening_cash: Kopecks(fields.int("opening_cash")?),
    };
    check_text("cashier", &header.cashier, MAX_CASHIER_LEN, false)
        .map_err(|e| corrupt(HEADER, e))?;
    check_amount("opening_cash", header.opening_cash, false).map_err(|e| corrupt(HEADER, e))?;
    Ok(header)
}

fn read_close<D: ReadDoc>(doc: &D, obj: ObjId) -> Result<SessionClose> {
    let fields = Fields::new(doc, obj, CLOSE.to_owned());
    let money = |key: &str| fields.int(key).map(Kopecks);
    let receipts = u32::try_from(fields.int("receipts")?).map_err(|e| corrupt(CLOSE, e))?;
    Ok(SessionClose {
        closed_at: fields.hlc("closed_at")?,
        cashier: fields.text("cashier")?,
        totals: SessionTotals {
            receipts,
            sales_total: money("sales_total")?,
            refunds_total: money("refunds_total")?,
            corrections_total: money("corrections_total")?,
            net_total: money("net_total")?,
            payments: PaymentTotals {
                cash: money("paid_cash")?,
                card: money("paid_card")?,
                prepayment: money("paid_prepayment")?,
            },
            cash_in: money("cash_in")?,
            cash_out: money("cash_out")?,
        },
        cash_balance: money("cash_balance")?,
    })
}

/// Typed reads of the scalar fields of one map object.
pub(super) struct Fields<'a, D> {
    doc: &'a D,
    obj: ObjId,
    path: String,
}

impl<'a, D: ReadDoc> Fields<'a, D> {
    pub(super) fn new(doc: &'a D, obj: ObjId, path: String) -> Fields<'a, D> {
        Fields { doc, obj, path }
    }

    fn scalar(&self, key: &str) -> Result<ScalarValue> {
        match self.doc.get(&self.obj, key)? {
            Some((Value::Scalar(scalar), _)) => Ok(scalar.into_owned()),
            _ => Err(corrupt(
                format!("{}/{key}", self.path),
                "missing or not a scalar",
            )),
        }
    }

    pub(super) fn text(&self, key: &str) -> Result<String> {
        match self.scalar(key)? {
            ScalarValue::Str(text) => Ok(text.to_string()),
            _ => Err(corrupt(format!("{}/{key}", self.path), "not a string")),
        }
    }

    pub(super) fn int(&self, key: &str) -> Result<i64> {
        match self.scalar(key)? {
            ScalarValue::Int(number) => Ok(number),
            _ => Err(corrupt(format!("{}/{key}", self.path), "not an integer")),
        }
    }

    fn hlc(&self, key: &str) -> Result<Hlc> {
        self.text(key)?
            .parse()
            .map_err(|e| corrupt(format!("{}/{key}", self.path), e))
    }
}

pub(super) fn object<D: ReadDoc>(doc: &D, key: &'static str) -> Result<ObjId> {
    match doc.get(ROOT, key)? {
        Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
        Some(_) => Err(corrupt(key, "not a map")),
        None => Err(SessionError::NotASession),
    }
}

pub(super) fn scalar<V: Into<ScalarValue>>(value: V) -> hydrate::Value {
    hydrate::Value::Scalar(value.into())
}

pub(super) fn map<const N: usize>(entries: [(&str, hydrate::Value); N]) -> hydrate::Value {
    hydrate::Value::Map(hydrate::Map::from(HashMap::from(entries)))
}

fn receipt_path(id: ReceiptId) -> String {
    format!("{RECEIPTS}/{id}")
}

pub(super) fn corrupt(key: impl Into<String>, reason: impl ToString) -> SessionError {
    SessionError::Corrupt {
        key: key.into(),
        reason: reason.to_string(),
    }
}

pub(super) fn invalid(field: &'static str, reason: &'static str) -> SessionError {
    SessionError::InvalidField { field, reason }
}

fn check_text(field: &'static str, text: &str, max: usize, allow_empty: bool) -> Result<()> {
    if !allow_empty && text.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(invalid(field, "too long or contains control characters"));
    }
    Ok(())
}

fn check_amount(field: &'static str, amount: Kopecks, positive: bool) -> Result<()> {
    if amount.is_negative() || (positive && amount == Kopecks::ZERO) || amount > MAX_AMOUNT {
        return Err(invalid(
            field,
            if positive {
                "must be between 1 and 10^12 kopecks"
            } else {
                "must be between 0 and 10^12 kopecks"
            },
        ));
    }
    Ok(())
}
