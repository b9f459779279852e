//! The emulated register's command interpreter, sans IO: `execute(frame, now)` → answer
//! frame. It keeps the FN rules (fiscal-reference §4, §6): continuous FD numbering, shift and
//! receipt numbers, the 24-hour shift, the 30-day unsent limit, warnings, archive capacity,
//! monotonic time. Status answers and the OFD exchange are in `exchange`.

use std::path::PathBuf;

use crate::register::documents::{fiscal_sign, Closing, Header, OpenReceipt};
use crate::register::state::{self, hex_encode, FnState, StoredDocument};
use fiscal::shtrih::codes::*;
use fiscal::shtrih::error::DeviceError;
use fiscal::shtrih::frame::Frame;
use fiscal::shtrih::tlv::{self, TlvWriter};

/// Seconds in a day.
pub const DAY_SECS: u64 = 86_400;
/// A shift may last less than this (24 h).
pub const SHIFT_LIMIT_SECS: u64 = DAY_SECS;
/// The FN blocks once the oldest unacknowledged document is this old (30 days).
pub const UNSENT_LIMIT_SECS: u64 = 30 * DAY_SECS;
/// Warning 1053 after this long without an OFD acknowledgement (2 days).
pub const OFD_WARNING_SECS: u64 = 2 * DAY_SECS;
/// Emulated key lifetime (the usual 36-month FN).
pub const KEY_LIFETIME_SECS: u64 = 3 * 365 * DAY_SECS;
/// Bytes per FF31/FF3B block.
const BLOCK: usize = 200;

/// A document started by FF41/FF42 and finished by FF0B/FF43.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begun {
    OpenShift,
    CloseShift,
}

/// A command's answer data, or the error code to send.
pub(super) type Answer = Result<Vec<u8>, DeviceError>;

/// The emulated register.
#[derive(Debug)]
pub struct Machine {
    pub(super) state: FnState,
    pub(super) dir: Option<PathBuf>,
    pub(super) capacity: u32,
    pub(super) open: Option<OpenReceipt>,
    begun: Option<Begun>,
    pub(super) pending_tlv: TlvWriter,
    pub(super) ofd_read: Option<Vec<u8>>,
    pub(super) ack_write: Option<(usize, Vec<u8>)>,
    pub(super) doc_read: Option<(Vec<u8>, usize)>,
    pub(super) storage_failed: bool,
}

impl Machine {
    /// A machine over `state`, persisted in `dir` when given; at most `capacity` FDs.
    pub fn new(state: FnState, dir: Option<PathBuf>, capacity: u32) -> Machine {
        Machine {
            state,
            dir,
            capacity,
            open: None,
            begun: None,
            pending_tlv: TlvWriter::new(),
            ofd_read: None,
            ack_write: None,
            doc_read: None,
            storage_failed: false,
        }
    }

    /// The durable state.
    pub fn state(&self) -> &FnState {
        &self.state
    }

    /// A receipt is open.
    pub fn receipt_open(&self) -> bool {
        self.open.is_some()
    }

    /// Moves the emulated clock and persists the offset.
    pub fn advance_clock(&mut self, secs: i64) -> Result<i64, state::StateError> {
        let mut next = self.state.clone();
        next.clock_offset_secs = next.clock_offset_secs.saturating_add(secs);
        self.commit(next)?;
        Ok(self.state.clock_offset_secs)
    }

    pub(super) fn commit(&mut self, next: FnState) -> Result<(), state::StateError> {
        if let Some(dir) = &self.dir {
            if let Err(error) = state::save(dir, &next) {
                // Like a real FN after a write failure: stop making documents.
                self.storage_failed = true;
                return Err(error);
            }
        }
        self.state = next;
        Ok(())
    }

    /// Executes one command; the answer carries the error byte first.
    pub fn execute(&mut self, request: &Frame, now: u64, paper_out: bool) -> Frame {
        let mut reader = Reader::new(&request.data);
        let result = match reader.uint(4) {
            Some(password) if (1..=30).contains(&password) => {
                self.dispatch(request.command, reader.rest(), now, paper_out)
            }
            Some(_) => Err(DeviceError::WrongPassword),
            None => Err(DeviceError::BadParameters),
        };
        let data = match result {
            Ok(mut data) => {
                data.insert(0, 0);
                data
            }
            Err(error) => vec![error.code()],
        };
        Frame::new(request.command, data)
    }

    fn dispatch(&mut self, command: u16, params: &[u8], now: u64, paper_out: bool) -> Answer {
        let prints = matches!(
            command,
            CMD_X_REPORT
                | CMD_CASH_IN
                | CMD_CASH_OUT
                | CMD_OPEN_RECEIPT
                | CMD_BEGIN_CORRECTION
                | CMD_BEGIN_OPEN_SHIFT
                | CMD_BEGIN_CLOSE_SHIFT
        );
        if prints && paper_out {
            return Err(DeviceError::PaperOut);
        }
        match command {
            CMD_SHORT_STATUS => Ok(self.short_status(now, paper_out)),
            CMD_FN_STATUS => Ok(self.fn_status(now)),
            CMD_SHIFT_PARAMS => {
                let mut out = vec![u8::from(self.state.shift_opened_at.is_some())];
                put_uint(&mut out, u64::from(self.state.shift_number), 2);
                put_uint(&mut out, u64::from(self.state.receipt_number), 2);
                Ok(out)
            }
            CMD_EXCHANGE_STATUS => Ok(self.exchange_status()),
            CMD_X_REPORT => Ok(vec![30]),
            CMD_CASH_IN | CMD_CASH_OUT => {
                self.shift_gate(now)?;
                let amount = Reader::new(params)
                    .uint(5)
                    .ok_or(DeviceError::BadParameters)?;
                if amount == 0 {
                    return Err(DeviceError::BadParameters);
                }
                Ok(vec![30, 0, 0])
            }
            CMD_SEND_TLV => {
                tlv::parse(params).map_err(|_| DeviceError::BadParameters)?;
                self.pending_tlv.extend(params);
                Ok(Vec::new())
            }
            CMD_BEGIN_OPEN_SHIFT => {
                self.fiscal_gate(now)?;
                if self.state.shift_opened_at.is_some() {
                    return Err(DeviceError::WrongState);
                }
                self.begin(Begun::OpenShift)
            }
            CMD_BEGIN_CLOSE_SHIFT => {
                self.fiscal_gate(now)?;
                if self.state.shift_opened_at.is_none() {
                    return Err(DeviceError::ShiftNotOpen);
                }
                if self.open.is_some() {
                    return Err(DeviceError::ReceiptOpen);
                }
                self.begin(Begun::CloseShift)
            }
            CMD_OPEN_SHIFT | CMD_CLOSE_SHIFT => self.shift_document(command, now),
            CMD_OPEN_RECEIPT | CMD_BEGIN_CORRECTION => {
                let code = params.first().copied().ok_or(DeviceError::BadParameters)?;
                let operation = if command == CMD_OPEN_RECEIPT {
                    [1u8, 3, 2, 4].get(usize::from(code)).copied()
                } else {
                    Some(code).filter(|c| (1..=4).contains(c))
                };
                let operation = operation.ok_or(DeviceError::BadParameters)?;
                if self.open.is_some() {
                    return Err(DeviceError::ReceiptOpen);
                }
                self.fiscal_gate(now)?;
                self.shift_gate(now)?;
                self.pending_tlv = TlvWriter::new();
                self.open = Some(OpenReceipt::new(operation, command == CMD_BEGIN_CORRECTION));
                Ok(vec![30])
            }
            CMD_OPERATION => {
                let open = self.open.as_mut().ok_or(DeviceError::WrongState)?;
                open.add_item(params).map(|()| Vec::new())
            }
            CMD_CLOSE_RECEIPT => self.close_receipt(params, now),
            CMD_CANCEL_RECEIPT => match self.open.take() {
                Some(_) => {
                    self.pending_tlv = TlvWriter::new();
                    Ok(vec![30])
                }
                None => Err(DeviceError::WrongState),
            },
            CMD_OFD_MESSAGE_SIZE => self.ofd_message(),
            CMD_OFD_MESSAGE_READ => {
                let mut reader = Reader::new(params);
                let offset = reader.uint(2).ok_or(DeviceError::BadParameters)? as usize;
                let len = reader.u8().ok_or(DeviceError::BadParameters)? as usize;
                let message = self.ofd_read.as_ref().ok_or(DeviceError::NoData)?;
                message
                    .get(offset..offset.saturating_add(len).min(message.len()))
                    .filter(|block| !block.is_empty())
                    .map(<[u8]>::to_vec)
                    .ok_or(DeviceError::BadParameters)
            }
            CMD_OFD_ACK_BEGIN => {
                let len = Reader::new(params)
                    .uint(2)
                    .ok_or(DeviceError::BadParameters)?;
                if len == 0 {
                    return Err(DeviceError::BadParameters);
                }
                self.ack_write = Some((len as usize, Vec::with_capacity(len as usize)));
                Ok(vec![BLOCK as u8])
            }
            CMD_OFD_ACK_WRITE => self.write_ack(params, now),
            CMD_DOCUMENT_BEGIN => {
                let fd = Reader::new(params)
                    .uint(4)
                    .ok_or(DeviceError::BadParameters)? as u32;
                let doc = self.document(fd).ok_or(DeviceError::NoData)?;
                let (form, tlv) = (doc.form, stored_tlv(doc)?);
                let mut out = Vec::with_capacity(4);
                put_uint(&mut out, u64::from(form), 2);
                put_uint(&mut out, tlv.len() as u64, 2);
                self.doc_read = Some((tlv, 0));
                Ok(out)
            }
            CMD_DOCUMENT_READ => {
                let (tlv, offset) = self.doc_read.as_mut().ok_or(DeviceError::NoData)?;
                let end = (*offset + BLOCK).min(tlv.len());
                let block = tlv[*offset..end].to_vec();
                *offset = end;
                Ok(block)
            }
            _ => Err(DeviceError::UnknownCommand),
        }
    }

    fn begin(&mut self, begun: Begun) -> Answer {
        self.begun = Some(begun);
        self.pending_tlv = TlvWriter::new();
        Ok(Vec::new())
    }

    /// The document with FD `fd`.
    pub fn document(&self, fd: u32) -> Option<&StoredDocument> {
        let index = usize::try_from(fd).ok()?.checked_sub(1)?;
        self.state.documents.get(index).filter(|doc| doc.fd == fd)
    }

    /// Refusals shared by every fiscal document: storage, capacity, 30 days, time.
    fn fiscal_gate(&self, now: u64) -> Result<(), DeviceError> {
        if self.storage_failed {
            return Err(DeviceError::Other(0x03));
        }
        if self.state.last_fd >= self.capacity {
            return Err(DeviceError::ArchiveFull);
        }
        if let Some(oldest) = self.state.oldest_unacked() {
            if now.saturating_sub(oldest.datetime_unix) >= UNSENT_LIMIT_SECS {
                return Err(DeviceError::OfdSendLimit);
            }
        }
        if now < self.state.last_document_unix {
            return Err(DeviceError::Other(0x17));
        }
        Ok(())
    }

    /// An open shift younger than 24 h (the boundary itself is refused; the law is unclear).
    fn shift_gate(&self, now: u64) -> Result<(), DeviceError> {
        let opened = self
            .state
            .shift_opened_at
            .ok_or(DeviceError::ShiftNotOpen)?;
        if now.saturating_sub(opened) >= SHIFT_LIMIT_SECS {
            return Err(DeviceError::ShiftExpired);
        }
        Ok(())
    }

    pub(super) fn shift_expired(&self, now: u64) -> bool {
        self.state
            .shift_opened_at
            .is_some_and(|opened| now.saturating_sub(opened) >= SHIFT_LIMIT_SECS)
    }

    fn shift_document(&mut self, command: u16, now: u64) -> Answer {
        let expected = if command == CMD_OPEN_SHIFT {
            Begun::OpenShift
        } else {
            Begun::CloseShift
        };
        if self.begun != Some(expected) {
            return Err(DeviceError::WrongState);
        }
        self.fiscal_gate(now)?;
        let mut next = self.state.clone();
        let mut body = std::mem::take(&mut self.pending_tlv);
        let form = if expected == Begun::OpenShift {
            next.shift_number = next.shift_number.saturating_add(1);
            next.receipt_number = 0;
            next.shift_opened_at = Some(now);
            2
        } else {
            let oldest = next.oldest_unacked().cloned();
            body.u32(1097, next.unacked_count() as u32)
                .u32(1098, oldest.as_ref().map_or(0, |d| d.datetime_unix as u32))
                .u32(1116, oldest.as_ref().map_or(0, |d| d.fd));
            next.shift_opened_at = None;
            5
        };
        body.byte(1053, u8::from(self.warning_flags(now) & 0x08 != 0));
        let doc = self.make_document(&mut next, form, 0, 0, None, body, now)?;
        self.begun = None;
        let mut out = Vec::with_capacity(10);
        put_uint(&mut out, u64::from(next.shift_number), 2);
        put_uint(&mut out, u64::from(doc.fd), 4);
        put_uint(&mut out, u64::from(doc.fiscal_sign), 4);
        self.commit(next).map_err(|_| DeviceError::Other(0x03))?;
        Ok(out)
    }

    fn close_receipt(&mut self, params: &[u8], now: u64) -> Answer {
        let closing = Closing::parse(params)?;
        let open = self.open.as_ref().ok_or(DeviceError::WrongState)?;
        if closing.paid() < open.total {
            return Err(DeviceError::PaymentsLessThanTotal);
        }
        let non_cash = closing.paid() - closing.sums[0];
        if non_cash > open.total {
            return Err(DeviceError::BadParameters);
        }
        self.fiscal_gate(now)?;
        self.shift_gate(now)?;
        let change = closing.paid() - open.total;
        let mut body = TlvWriter::new();
        body.byte(1054, open.operation)
            .byte(1055, closing.taxation)
            .money(1020, crdt_model::Kopecks(open.total))
            .money(1031, crdt_model::Kopecks(closing.sums[0] - change))
            .money(1081, crdt_model::Kopecks(closing.electronic()))
            .money(1215, crdt_model::Kopecks(closing.sums[13]))
            .money(1216, crdt_model::Kopecks(closing.sums[14]))
            .money(1217, crdt_model::Kopecks(closing.sums[15]));
        for (index, amount) in open.vat_totals.iter().enumerate() {
            if *amount != 0 {
                body.money(1102 + index as u16, crdt_model::Kopecks(*amount));
            }
        }
        body.extend(self.pending_tlv.as_bytes());
        body.extend(open.items.as_bytes());
        let receipt_id = receipt_id_of(self.pending_tlv.as_bytes());
        let (form, operation, total) = (
            if open.correction { 31 } else { 3 },
            open.operation,
            open.total,
        );
        let mut next = self.state.clone();
        next.receipt_number = next.receipt_number.saturating_add(1);
        let doc = self.make_document(&mut next, form, operation, total, receipt_id, body, now)?;
        let mut out = Vec::with_capacity(18);
        put_uint(&mut out, change as u64, 5);
        put_uint(&mut out, u64::from(doc.fd), 4);
        put_uint(&mut out, u64::from(doc.fiscal_sign), 4);
        out.extend_from_slice(&encode_datetime(now));
        self.commit(next).map_err(|_| DeviceError::Other(0x03))?;
        self.open = None;
        self.pending_tlv = TlvWriter::new();
        Ok(out)
    }

    /// Adds a document to `next`: header, body, emulated sign; returns a copy.
    #[allow(clippy::too_many_arguments)]
    fn make_document(
        &self,
        next: &mut FnState,
        form: u8,
        operation: u8,
        total: i64,
        receipt_id: Option<String>,
        body: TlvWriter,
        now: u64,
    ) -> Result<StoredDocument, DeviceError> {
        next.last_fd = next.last_fd.saturating_add(1);
        next.last_document_unix = now;
        let receipt_number = if form == 3 || form == 31 {
            next.receipt_number
        } else {
            0
        };
        let mut tlv = TlvWriter::new();
        Header {
            datetime_unix: now,
            shift: next.shift_number,
            fd: next.last_fd,
            fn_number: &next.fn_number,
            rnm: &next.rnm,
            inn: &next.inn,
        }
        .write(&mut tlv);
        if receipt_number != 0 {
            tlv.u32(1042, receipt_number);
        }
        tlv.extend(body.as_bytes());
        let Some(key) = next.key() else {
            tracing::error!("register emulator: the fiscal-sign key in the FN state is not hex");
            return Err(DeviceError::Other(0x03));
        };
        let (raw, fiscal_sign) = fiscal_sign(&key, tlv.as_bytes());
        tlv.raw(1077, &raw);
        let doc = StoredDocument {
            fd: next.last_fd,
            form,
            operation,
            total,
            receipt_id,
            shift: next.shift_number,
            receipt_number,
            datetime_unix: now,
            fiscal_sign,
            tlv_hex: hex_encode(tlv.as_bytes()),
            acked_at: None,
        };
        next.documents.push(doc.clone());
        Ok(doc)
    }
}

/// A stored document's TLV bytes, or the FN storage error (0x03) with a log line when its hex
/// is damaged: never an empty document.
pub(super) fn stored_tlv(doc: &StoredDocument) -> Result<Vec<u8>, DeviceError> {
    doc.tlv().ok_or_else(|| {
        tracing::error!(fd = doc.fd, "register emulator: stored document is not hex");
        DeviceError::Other(0x03)
    })
}

/// Our receipt id from a 1084 {1085 = "receipt_id", 1086} among `tags`.
fn receipt_id_of(tags: &[u8]) -> Option<String> {
    let entries = tlv::parse(tags).ok()?;
    entries
        .iter()
        .filter(|entry| entry.tag == 1084)
        .filter_map(|entry| tlv::parse(entry.value).ok())
        .find(|inner| {
            tlv::find_string(inner, 1085).as_deref() == Some(fiscal::register::RECEIPT_ID_ATTRIBUTE)
        })
        .and_then(|inner| tlv::find_string(&inner, 1086))
}

#[cfg(test)]
mod tests;
