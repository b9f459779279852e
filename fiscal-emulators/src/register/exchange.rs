//! The emulated FN's status answers (0x10 short status, FF01 FN status with the warning
//! flags, FF39 exchange status) and the OFD exchange through the driver: FF30 builds the
//! FN–OFD message of the oldest unacknowledged document, FF32/FF33 take the operator's
//! confirmation back and mark the document delivered.

use crate::register::machine::{
    stored_tlv, Answer, Machine, DAY_SECS, KEY_LIFETIME_SECS, OFD_WARNING_SECS,
};
use fiscal::ofd::container::{FnNumber, OfdAck, OfdContainer};
use fiscal::shtrih::codes::*;
use fiscal::shtrih::error::DeviceError;
use fiscal::shtrih::tlv::TlvWriter;

impl Machine {
    pub(super) fn short_status(&self, now: u64, paper_out: bool) -> Vec<u8> {
        let mode = if self.open.is_some() {
            MODE_RECEIPT_OPEN
        } else if self.shift_expired(now) {
            MODE_SHIFT_EXPIRED
        } else if self.state.shift_opened_at.is_some() {
            MODE_SHIFT_OPEN
        } else {
            MODE_SHIFT_CLOSED
        };
        let mut out = vec![30, 0, 0, mode, u8::from(paper_out) * SUBMODE_PAPER_OUT];
        out.extend_from_slice(&[0; 7]);
        out
    }

    /// Warning flags: bit 0 = 1051, bit 1 = 1050, bit 2 = 1052, bit 3 = 1053.
    pub fn warning_flags(&self, now: u64) -> u8 {
        let expires = self.state.registered_at.saturating_add(KEY_LIFETIME_SECS);
        let left = expires.saturating_sub(now);
        let mut flags = 0;
        if left < 3 * DAY_SECS {
            flags |= 0x01;
        }
        if left < 30 * DAY_SECS {
            flags |= 0x02;
        }
        if u64::from(self.state.last_fd) * 100 >= u64::from(self.capacity) * 99 {
            flags |= 0x04;
        }
        if let Some(oldest) = self.state.oldest_unacked() {
            if now.saturating_sub(oldest.datetime_unix) > OFD_WARNING_SECS {
                flags |= 0x08;
            }
        }
        flags
    }

    pub(super) fn fn_status(&self, now: u64) -> Vec<u8> {
        let mut out = vec![
            3,
            u8::from(self.open.is_some()),
            0,
            u8::from(self.state.shift_opened_at.is_some()),
            self.warning_flags(now),
        ];
        out.extend_from_slice(&encode_datetime(now));
        let mut number = self.state.fn_number.as_bytes().to_vec();
        number.resize(16, b' ');
        out.extend_from_slice(&number);
        put_uint(&mut out, u64::from(self.state.last_fd), 4);
        out
    }

    pub(super) fn exchange_status(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.state.oldest_unacked().is_some()), 0];
        put_uint(&mut out, self.state.unacked_count() as u64, 2);
        match self.state.oldest_unacked() {
            Some(doc) => {
                put_uint(&mut out, u64::from(doc.fd), 4);
                out.extend_from_slice(&encode_datetime(doc.datetime_unix));
            }
            None => out.extend_from_slice(&[0; 9]),
        }
        out
    }

    pub(super) fn ofd_message(&mut self) -> Answer {
        let mut out = Vec::with_capacity(6);
        let Some(doc) = self.state.oldest_unacked() else {
            self.ofd_read = None;
            out.extend_from_slice(&[0; 6]);
            return Ok(out);
        };
        let fn_number =
            FnNumber::parse(&self.state.fn_number).map_err(|_| DeviceError::Other(0x03))?;
        let mut document = TlvWriter::new();
        document.raw(u16::from(doc.form), &stored_tlv(doc)?);
        let message = OfdContainer {
            fn_number,
            doc_type: doc.form,
            fd: doc.fd,
            document: document.into_bytes(),
        }
        .encode()
        .map_err(|_| DeviceError::Other(0x10))?;
        put_uint(&mut out, message.len() as u64, 2);
        put_uint(&mut out, u64::from(doc.fd), 4);
        self.ofd_read = Some(message);
        Ok(out)
    }

    /// Accepts one FF33 block; on the last, checks the operator confirmation and marks the
    /// document delivered. The emulated FN cannot verify a real ФПО, so any confirmation
    /// that parses and names this FN and a known FD is accepted (idempotently).
    pub(super) fn write_ack(&mut self, params: &[u8], now: u64) -> Answer {
        let mut reader = Reader::new(params);
        let offset = reader.uint(2).ok_or(DeviceError::BadParameters)? as usize;
        let block = reader.rest();
        let (len, bytes) = self.ack_write.as_mut().ok_or(DeviceError::WrongState)?;
        if offset != bytes.len() || bytes.len() + block.len() > *len {
            self.ack_write = None;
            return Err(DeviceError::BadParameters);
        }
        bytes.extend_from_slice(block);
        if bytes.len() < *len {
            return Ok(Vec::new());
        }
        let message = std::mem::take(bytes);
        self.ack_write = None;
        let ack = OfdAck::decode(&message).map_err(|_| DeviceError::BadParameters)?;
        if ack.fn_number.as_str() != self.state.fn_number || self.document(ack.fd).is_none() {
            return Err(DeviceError::BadParameters);
        }
        if ack.is_accepted() {
            let mut next = self.state.clone();
            if let Some(doc) = next.documents.get_mut(ack.fd as usize - 1) {
                doc.acked_at.get_or_insert(now);
            }
            self.commit(next).map_err(|_| DeviceError::Other(0x03))?;
        }
        Ok(vec![ack.code])
    }
}
