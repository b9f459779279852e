//! How [`ShtrihDriver`] fiscalises a receipt: the body of an open receipt (FF0C TLVs with our
//! receipt id in 1084, one FF46 per item, FF45 with the payments), cancellation of a receipt a
//! refusal or a crash left open, and the decoding of a stored document's TLV (FF3A/FF3B) back
//! into a [`FiscalDocument`] for exactly-once recovery.

use crdt_model::{Kopecks, ReceiptId};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::register::{
    DocumentKind, FiscalDocument, FiscalNumbers, FiscalReceipt, Operation, RegisterError,
    RegisterResult, RECEIPT_ID_ATTRIBUTE,
};
use crate::shtrih::codes::*;
use crate::shtrih::driver::{money_field, short, ShtrihDriver};
use crate::shtrih::error::DeviceError;
use crate::shtrih::tlv::{self, TlvWriter};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ShtrihDriver<S> {
    /// Sends the body of an open receipt (TLVs, items) and closes it.
    pub(super) async fn receipt_body(
        &mut self,
        receipt: &FiscalReceipt,
        extra: TlvWriter,
        kind: DocumentKind,
    ) -> RegisterResult<FiscalDocument> {
        let mut attribute = TlvWriter::new();
        attribute.string(1085, RECEIPT_ID_ATTRIBUTE, 64).string(
            1086,
            &receipt.receipt_id.to_string(),
            256,
        );
        let mut tags = extra;
        tags.nested(1084, &attribute);
        if let Some(contact) = &receipt.buyer_contact {
            tags.string(1008, contact, 64);
        }
        if let Some(cashier) = &receipt.cashier {
            tags.string(1021, cashier, 64);
        }
        self.send_tlv(&tags).await?;
        for line in &receipt.lines {
            let mut params = vec![receipt.operation.code()];
            let qty = u64::try_from(line.qty.milli()).unwrap_or(0) * 1000;
            put_uint(&mut params, qty, 6);
            money_field(&mut params, line.price)?;
            money_field(&mut params, line.sum)?;
            money_field(&mut params, line.vat.vat_amount(line.sum))?;
            params.push(tax_bitmask(line.vat));
            params.push(1);
            params.push(line.payment_method);
            params.push(line.payment_object);
            let mut name = encode_text(&line.name, CodePage::Cp1251);
            name.truncate(128);
            params.extend_from_slice(&name);
            self.command(CMD_OPERATION, &params, false).await?;
        }
        let mut params = Vec::with_capacity(120);
        let mut sums = [Kopecks::ZERO; 16];
        sums[0] = receipt.payments.cash;
        sums[1] = receipt.payments.electronic;
        sums[13] = receipt.payments.prepayment;
        sums[14] = receipt.payments.credit;
        sums[15] = receipt.payments.provision;
        for sum in sums {
            money_field(&mut params, sum)?;
        }
        params.push(0); // rounding to the rouble: none, amounts are exact
        params.extend_from_slice(&[0u8; 30]); // VAT sums: the register computes them
        params.push(receipt.taxation);
        let answer = self.command(CMD_CLOSE_RECEIPT, &params, true).await?;
        let mut reader = Reader::new(&answer);
        let _change = reader.uint(5).ok_or_else(|| short("FF45 change"))?;
        let fd_number = reader.uint(4).ok_or_else(|| short("FF45 FD"))? as u32;
        let fiscal_sign = reader.uint(4).ok_or_else(|| short("FF45 ФПД"))? as u32;
        let datetime_unix = reader.take(5).and_then(decode_datetime).unwrap_or(0);
        let (_, shift_number, receipt_number) = self.shift_params().await?;
        let info = self.fn_info().await?;
        Ok(FiscalDocument {
            kind,
            numbers: FiscalNumbers {
                fn_number: info.fn_number,
                fd_number,
                fiscal_sign,
                shift_number,
                receipt_number,
                datetime_unix,
            },
            total: receipt.total,
            receipt_id: Some(receipt.receipt_id),
        })
    }

    /// Runs a receipt body; on a refusal from the device cancels the open receipt so the
    /// register is not left blocked (no FD exists for an open receipt).
    pub(super) async fn guarded_body(
        &mut self,
        receipt: &FiscalReceipt,
        extra: TlvWriter,
        kind: DocumentKind,
    ) -> RegisterResult<FiscalDocument> {
        match self.receipt_body(receipt, extra, kind).await {
            Err(RegisterError::Device(error)) => {
                let _ = self.command(CMD_CANCEL_RECEIPT, &[], false).await;
                Err(RegisterError::Device(error))
            }
            other => other,
        }
    }

    /// Opens a receipt with `code` and `params`; a receipt left open by a crash is cancelled
    /// first (it has no FD, so nothing fiscal is lost).
    pub(super) async fn open_document(&mut self, code: u16, params: &[u8]) -> RegisterResult<()> {
        match self.command(code, params, true).await {
            Err(RegisterError::Device(DeviceError::ReceiptOpen)) => {
                self.command(CMD_CANCEL_RECEIPT, &[], false).await?;
                self.command(code, params, true).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}

pub(super) fn operation_type(operation: Operation) -> u8 {
    // 0x8D receipt types: 0 sale, 1 purchase, 2 sale refund, 3 purchase refund.
    match operation {
        Operation::Sale => 0,
        Operation::Expense => 1,
        Operation::SaleRefund => 2,
        Operation::ExpenseRefund => 3,
    }
}

/// Reads our receipt id from a document's 1084 {1085, 1086}.
fn receipt_id_of(entries: &[tlv::Tlv<'_>]) -> Option<ReceiptId> {
    entries
        .iter()
        .filter(|entry| entry.tag == 1084)
        .filter_map(|entry| tlv::parse(entry.value).ok())
        .find(|inner| tlv::find_string(inner, 1085).as_deref() == Some(RECEIPT_ID_ATTRIBUTE))
        .and_then(|inner| tlv::find_string(&inner, 1086))
        .and_then(|text| text.parse().ok())
}

/// The fiscal document described by a TLV document of form `form`.
pub fn document_from_tlv(form: u8, bytes: &[u8]) -> RegisterResult<FiscalDocument> {
    let entries = tlv::parse(bytes).map_err(|error| RegisterError::Protocol(error.to_string()))?;
    // A tag a document does not carry reads as 0 (a shift report has no receipt number); a
    // value too large for its field is a damaged document, refused, never truncated.
    let uint = |tag| tlv::find_uint(&entries, tag).unwrap_or(0);
    let narrow = |tag| {
        u32::try_from(uint(tag)).map_err(|_| {
            RegisterError::Protocol(format!("tag {tag} of form {form} is out of range"))
        })
    };
    let total = i64::try_from(uint(1020))
        .map_err(|_| RegisterError::Protocol(format!("tag 1020 of form {form} is out of range")))?;
    let fiscal_sign = tlv::find(&entries, 1077)
        .and_then(|raw| <[u8; 6]>::try_from(raw).ok())
        .map_or(0, |raw| {
            u32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]])
        });
    // Every fiscal document names its FN (tag 1041): one without it cannot be stamped or
    // reconciled, so it is refused rather than stored with an empty FN number.
    let fn_number = tlv::find_string(&entries, 1041).ok_or_else(|| {
        RegisterError::Protocol(format!(
            "fiscal document (form {form}) without its FN number (tag 1041)"
        ))
    })?;
    Ok(FiscalDocument {
        kind: DocumentKind::from_code(form),
        numbers: FiscalNumbers {
            fn_number,
            fd_number: narrow(1040)?,
            fiscal_sign,
            shift_number: narrow(1038)?,
            receipt_number: narrow(1042)?,
            datetime_unix: uint(1012),
        },
        total: Kopecks(total),
        receipt_id: receipt_id_of(&entries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shtrih::tlv::TlvWriter;

    fn document(fd_number: &[u8], with_fn: bool) -> Vec<u8> {
        let mut writer = TlvWriter::new();
        if with_fn {
            writer.string(1041, "9999078900012345", 16);
        }
        writer.raw(1040, fd_number).u32(1038, 3).u32(1042, 9);
        writer.as_bytes().to_vec()
    }

    #[test]
    fn a_register_document_reads_its_numbers() {
        let read = document_from_tlv(3, &document(&7u32.to_le_bytes(), true)).expect("reads");
        assert_eq!(read.numbers.fn_number, "9999078900012345");
        assert_eq!(read.numbers.fd_number, 7);
        assert_eq!(read.numbers.shift_number, 3);
        assert_eq!(read.numbers.receipt_number, 9);
    }

    #[test]
    fn a_document_without_its_fn_or_with_an_oversized_number_is_refused() {
        let no_fn = document_from_tlv(3, &document(&7u32.to_le_bytes(), false));
        assert!(
            matches!(no_fn, Err(RegisterError::Protocol(_))),
            "{no_fn:?}"
        );
        let huge = document_from_tlv(3, &document(&(1u64 << 40).to_le_bytes(), true));
        assert!(matches!(huge, Err(RegisterError::Protocol(_))), "{huge:?}");
    }
}
