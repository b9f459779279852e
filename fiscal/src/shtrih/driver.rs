//! [`ShtrihDriver`]: the [`FiscalRegister`] over the Shtrih-M protocol on any async byte
//! stream (till-node opens the serial port and hands the stream in). Each method is a short
//! sequence of commands from [`crate::shtrih::codes`]; answers are checked field by field.

use std::time::Duration;

use crdt_model::Kopecks;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::register::{
    DocumentKind, FiscalCorrection, FiscalDocument, FiscalNumbers, FiscalReceipt, FiscalRegister,
    FnWarnings, OfdMessage, RegisterError, RegisterResult, RegisterStatus, ShiftState,
    UnsentDocuments,
};
use crate::shtrih::codes::*;
use crate::shtrih::error::DeviceError;
use crate::shtrih::frame::Frame;
use crate::shtrih::link::{Link, LinkConfig};
use crate::shtrih::receipt::{document_from_tlv, operation_type};
use crate::shtrih::tlv::TlvWriter;

/// Bytes per FF31/FF33/FF3B block: well under the 252-byte frame limit.
pub const BLOCK_SIZE: usize = 200;
/// Largest document or OFD message the driver will read (the FN–OFD container limit).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest amount a 5-byte money field holds.
const MAX_FIELD_AMOUNT: i64 = 0xFF_FFFF_FFFF;

/// Driver settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Link timeouts and retries.
    pub link: LinkConfig,
    /// Operator password (system administrator: 30).
    pub password: u32,
    /// Answer timeout of quick commands (Shtrih: 3150 ms).
    pub answer_timeout: Duration,
    /// Answer timeout of commands that print or write the FN (Shtrih uses 10–100 s).
    pub fiscal_timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> DriverConfig {
        DriverConfig {
            link: LinkConfig::default(),
            password: ADMIN_PASSWORD,
            answer_timeout: Duration::from_millis(3150),
            fiscal_timeout: Duration::from_secs(30),
        }
    }
}

/// Where [`ShtrihDriver::read_blocks`] reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockSource {
    /// FF31 with an offset: the OFD message announced by FF30.
    OfdMessage,
    /// FF3B: the document opened by FF3A.
    Document,
}

/// What FF01 reports.
pub(super) struct FnInfo {
    pub(super) fn_number: String,
    pub(super) receipt_open: bool,
    pub(super) warnings: FnWarnings,
    pub(super) now_unix: u64,
    pub(super) last_fd: u32,
}

/// The Shtrih-M driver.
#[derive(Debug)]
pub struct ShtrihDriver<S> {
    link: Link<S>,
    config: DriverConfig,
}

pub(super) fn short(what: &str) -> RegisterError {
    RegisterError::Protocol(format!("short answer: {what}"))
}

pub(super) fn money_field(out: &mut Vec<u8>, amount: Kopecks) -> RegisterResult<()> {
    if !(0..=MAX_FIELD_AMOUNT).contains(&amount.0) {
        return Err(RegisterError::InvalidAmount(amount));
    }
    put_uint(out, amount.0 as u64, 5);
    Ok(())
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ShtrihDriver<S> {
    /// A driver over an open stream.
    pub fn new(stream: S, config: DriverConfig) -> ShtrihDriver<S> {
        ShtrihDriver {
            link: Link::new(stream, config.link),
            config,
        }
    }

    /// Sends one command with the password; returns the answer data after the error byte.
    pub(super) async fn command(
        &mut self,
        code: u16,
        params: &[u8],
        fiscal: bool,
    ) -> RegisterResult<Vec<u8>> {
        let mut data = Vec::with_capacity(4 + params.len());
        put_uint(&mut data, u64::from(self.config.password), 4);
        data.extend_from_slice(params);
        let wait = if fiscal {
            self.config.fiscal_timeout
        } else {
            self.config.answer_timeout
        };
        let answer = self.link.transact(&Frame::new(code, data), wait).await?;
        let Some((&error, rest)) = answer.data.split_first() else {
            return Err(short("no error byte"));
        };
        match DeviceError::from_code(error) {
            Some(error) => Err(RegisterError::Device(error)),
            None => Ok(rest.to_vec()),
        }
    }

    pub(super) async fn fn_info(&mut self) -> RegisterResult<FnInfo> {
        let answer = self.command(CMD_FN_STATUS, &[], false).await?;
        let mut reader = Reader::new(&answer);
        let _state = reader.u8().ok_or_else(|| short("FF01"))?;
        let document = reader.u8().ok_or_else(|| short("FF01"))?;
        let _data = reader.u8();
        let _shift = reader.u8();
        let flags = reader.u8().ok_or_else(|| short("FF01"))?;
        let now_unix = reader.take(5).and_then(decode_datetime).unwrap_or(0);
        let fn_number = reader.take(16).ok_or_else(|| short("FF01 FN"))?;
        let last_fd = reader.uint(4).ok_or_else(|| short("FF01 FD"))? as u32;
        Ok(FnInfo {
            fn_number: String::from_utf8_lossy(fn_number).trim().to_string(),
            receipt_open: document != 0,
            warnings: FnWarnings {
                replace_urgently: flags & 0x01 != 0,
                keys_expire_30_days: flags & 0x02 != 0,
                memory_full_99: flags & 0x04 != 0,
                ofd_timeout: flags & 0x08 != 0,
            },
            now_unix,
            last_fd,
        })
    }

    pub(super) async fn shift_params(&mut self) -> RegisterResult<(bool, u32, u32)> {
        let answer = self.command(CMD_SHIFT_PARAMS, &[], false).await?;
        let mut reader = Reader::new(&answer);
        let open = reader.u8().ok_or_else(|| short("FF40"))? != 0;
        let shift = reader.uint(2).ok_or_else(|| short("FF40"))? as u32;
        let receipt = reader.uint(2).ok_or_else(|| short("FF40"))? as u32;
        Ok((open, shift, receipt))
    }

    pub(super) async fn send_tlv(&mut self, writer: &TlvWriter) -> RegisterResult<()> {
        if !writer.as_bytes().is_empty() {
            self.command(CMD_SEND_TLV, writer.as_bytes(), false).await?;
        }
        Ok(())
    }

    /// A shift document from an FF0B/FF43 answer: shift 2, FD 4, ФПД 4.
    async fn shift_document(
        &mut self,
        kind: DocumentKind,
        answer: &[u8],
    ) -> RegisterResult<FiscalDocument> {
        let mut reader = Reader::new(answer);
        let shift_number = reader.uint(2).ok_or_else(|| short("shift"))? as u32;
        let fd_number = reader.uint(4).ok_or_else(|| short("FD"))? as u32;
        let fiscal_sign = reader.uint(4).ok_or_else(|| short("ФПД"))? as u32;
        let info = self.fn_info().await?;
        Ok(FiscalDocument {
            kind,
            numbers: FiscalNumbers {
                fn_number: info.fn_number,
                fd_number,
                fiscal_sign,
                shift_number,
                receipt_number: 0,
                datetime_unix: info.now_unix,
            },
            total: Kopecks::ZERO,
            receipt_id: None,
        })
    }

    async fn read_blocks(&mut self, length: usize, source: BlockSource) -> RegisterResult<Vec<u8>> {
        if length > MAX_MESSAGE_BYTES {
            return Err(RegisterError::Protocol(format!(
                "message of {length} bytes"
            )));
        }
        let mut bytes = Vec::with_capacity(length);
        while bytes.len() < length {
            let chunk = (length - bytes.len()).min(BLOCK_SIZE);
            let block = if source == BlockSource::OfdMessage {
                let mut params = Vec::with_capacity(3);
                put_uint(&mut params, bytes.len() as u64, 2);
                params.push(chunk as u8);
                self.command(CMD_OFD_MESSAGE_READ, &params, false).await?
            } else {
                self.command(CMD_DOCUMENT_READ, &[], false).await?
            };
            if block.is_empty() || block.len() > length - bytes.len() {
                return Err(RegisterError::Protocol("bad block length".into()));
            }
            bytes.extend_from_slice(&block);
        }
        Ok(bytes)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> FiscalRegister for ShtrihDriver<S> {
    async fn status(&mut self) -> RegisterResult<RegisterStatus> {
        let short_status = self.command(CMD_SHORT_STATUS, &[], false).await?;
        let mode = short_status.get(3).copied().ok_or_else(|| short("0x10"))?;
        let submode = short_status.get(4).copied().ok_or_else(|| short("0x10"))?;
        let info = self.fn_info().await?;
        let (open, shift_number, receipt_number) = self.shift_params().await?;
        let exchange = self.command(CMD_EXCHANGE_STATUS, &[], false).await?;
        let mut reader = Reader::new(&exchange);
        let _status = reader.take(2).ok_or_else(|| short("FF39"))?;
        let count = reader.uint(2).ok_or_else(|| short("FF39"))? as u32;
        let first_fd = reader.uint(4).ok_or_else(|| short("FF39"))? as u32;
        let first_unix = reader.take(5).and_then(decode_datetime).unwrap_or(0);
        let shift = match (open, mode) {
            (false, _) => ShiftState::Closed,
            (true, MODE_SHIFT_EXPIRED) => ShiftState::Expired,
            (true, _) => ShiftState::Open,
        };
        Ok(RegisterStatus {
            fn_number: info.fn_number,
            shift,
            shift_number,
            receipt_number,
            last_fd: info.last_fd,
            receipt_open: info.receipt_open,
            paper_out: submode == SUBMODE_PAPER_OUT,
            warnings: info.warnings,
            unsent: UnsentDocuments {
                count,
                first_fd,
                first_unix,
            },
        })
    }

    async fn shift_state(&mut self) -> RegisterResult<ShiftState> {
        let short_status = self.command(CMD_SHORT_STATUS, &[], false).await?;
        match short_status.get(3).copied() {
            Some(MODE_SHIFT_CLOSED) => Ok(ShiftState::Closed),
            Some(MODE_SHIFT_EXPIRED) => Ok(ShiftState::Expired),
            // A receipt can only be open inside an open shift.
            Some(MODE_SHIFT_OPEN | MODE_RECEIPT_OPEN) => Ok(ShiftState::Open),
            // Any other mode (printing, data output…): ask the FN itself.
            Some(_) => Ok(self.status().await?.shift),
            None => Err(short("0x10")),
        }
    }

    async fn open_shift(&mut self, cashier: &str) -> RegisterResult<FiscalDocument> {
        self.command(CMD_BEGIN_OPEN_SHIFT, &[], true).await?;
        let mut tags = TlvWriter::new();
        tags.string(1021, cashier, 64);
        self.send_tlv(&tags).await?;
        let answer = self.command(CMD_OPEN_SHIFT, &[], true).await?;
        self.shift_document(DocumentKind::ShiftOpen, &answer).await
    }

    async fn close_shift(&mut self, cashier: &str) -> RegisterResult<FiscalDocument> {
        self.command(CMD_BEGIN_CLOSE_SHIFT, &[], true).await?;
        let mut tags = TlvWriter::new();
        tags.string(1021, cashier, 64);
        self.send_tlv(&tags).await?;
        let answer = self.command(CMD_CLOSE_SHIFT, &[], true).await?;
        self.shift_document(DocumentKind::ShiftClose, &answer).await
    }

    async fn x_report(&mut self) -> RegisterResult<()> {
        self.command(CMD_X_REPORT, &[], true).await.map(|_| ())
    }

    async fn receipt(&mut self, receipt: &FiscalReceipt) -> RegisterResult<FiscalDocument> {
        receipt.check()?;
        self.open_document(CMD_OPEN_RECEIPT, &[operation_type(receipt.operation)])
            .await?;
        self.guarded_body(receipt, TlvWriter::new(), DocumentKind::Receipt)
            .await
    }

    async fn correction(
        &mut self,
        correction: &FiscalCorrection,
    ) -> RegisterResult<FiscalDocument> {
        correction.receipt.check()?;
        self.open_document(CMD_BEGIN_CORRECTION, &[correction.receipt.operation.code()])
            .await?;
        let mut reason = TlvWriter::new();
        reason
            .u32(1178, correction.corrected_at_unix)
            .string(1179, &correction.order_number, 32);
        let mut extra = TlvWriter::new();
        extra
            .byte(1173, u8::from(correction.by_order))
            .nested(1174, &reason);
        self.guarded_body(&correction.receipt, extra, DocumentKind::Correction)
            .await
    }

    async fn cancel_open_receipt(&mut self) -> RegisterResult<()> {
        if self.fn_info().await?.receipt_open {
            self.command(CMD_CANCEL_RECEIPT, &[], false).await?;
        }
        Ok(())
    }

    async fn last_document(&mut self) -> RegisterResult<Option<FiscalDocument>> {
        let info = self.fn_info().await?;
        if info.last_fd == 0 {
            return Ok(None);
        }
        let answer = self
            .command(CMD_DOCUMENT_BEGIN, &info.last_fd.to_le_bytes(), false)
            .await?;
        let mut reader = Reader::new(&answer);
        let form = reader.uint(2).ok_or_else(|| short("FF3A"))? as u8;
        let length = reader.uint(2).ok_or_else(|| short("FF3A"))? as usize;
        let bytes = self.read_blocks(length, BlockSource::Document).await?;
        document_from_tlv(form, &bytes).map(Some)
    }

    async fn cash_in(&mut self, amount: Kopecks) -> RegisterResult<()> {
        if amount.0 <= 0 {
            return Err(RegisterError::InvalidAmount(amount));
        }
        let mut params = Vec::with_capacity(5);
        money_field(&mut params, amount)?;
        self.command(CMD_CASH_IN, &params, true).await.map(|_| ())
    }

    async fn cash_out(&mut self, amount: Kopecks) -> RegisterResult<()> {
        if amount.0 <= 0 {
            return Err(RegisterError::InvalidAmount(amount));
        }
        let mut params = Vec::with_capacity(5);
        money_field(&mut params, amount)?;
        self.command(CMD_CASH_OUT, &params, true).await.map(|_| ())
    }

    async fn read_ofd_message(&mut self) -> RegisterResult<Option<OfdMessage>> {
        let answer = self.command(CMD_OFD_MESSAGE_SIZE, &[], false).await?;
        let mut reader = Reader::new(&answer);
        let length = reader.uint(2).ok_or_else(|| short("FF30"))? as usize;
        let fd_number = reader.uint(4).ok_or_else(|| short("FF30 FD"))? as u32;
        if length == 0 {
            return Ok(None);
        }
        let bytes = self.read_blocks(length, BlockSource::OfdMessage).await?;
        Ok(Some(OfdMessage { fd_number, bytes }))
    }

    async fn write_ofd_ack(&mut self, ack: &[u8]) -> RegisterResult<()> {
        if ack.is_empty() || ack.len() > MAX_MESSAGE_BYTES {
            return Err(RegisterError::Protocol(format!(
                "OFD answer of {} bytes",
                ack.len()
            )));
        }
        let mut params = Vec::with_capacity(2);
        put_uint(&mut params, ack.len() as u64, 2);
        self.command(CMD_OFD_ACK_BEGIN, &params, false).await?;
        for (index, block) in ack.chunks(BLOCK_SIZE).enumerate() {
            let mut params = Vec::with_capacity(2 + block.len());
            put_uint(&mut params, (index * BLOCK_SIZE) as u64, 2);
            params.extend_from_slice(block);
            self.command(CMD_OFD_ACK_WRITE, &params, true).await?;
        }
        Ok(())
    }
}
