//! POC-1: the driver against the register emulator on a real pty, in process: open shift, 50
//! mixed sales and refunds, X report, Z report; FD numbering is continuous and every receipt
//! document carries its receipt id.

mod register_support;

use crdt_model::receipt::ReceiptKind;
use crdt_model::VatRate;
use fiscal::register::{DocumentKind, FiscalReceipt, FiscalRegister, Operation, ShiftState};
use register_support::{get, receipt, start};

#[tokio::test]
async fn fifty_mixed_sales_and_refunds_are_numbered_continuously() {
    let (running, mut driver) = start(None).await;
    let status = driver.status().await.expect("status");
    assert_eq!(status.shift, ShiftState::Closed);
    assert_eq!(status.last_fd, 0);

    let open = driver.open_shift("Иванова").await.expect("shift opens");
    assert_eq!(
        (open.kind, open.numbers.fd_number, open.numbers.shift_number),
        (DocumentKind::ShiftOpen, 1, 1)
    );
    assert_eq!(open.numbers.fn_number, status.fn_number);

    let mut sales = Vec::new();
    let mut made = Vec::new();
    for index in 0..50i64 {
        let refund = index % 5 == 4;
        let source = if refund {
            let original: &crdt_model::Receipt = &sales[sales.len() - 1];
            receipt(
                ReceiptKind::Refund,
                Some(original.id),
                &[(original.total.0, VatRate::NoVat)],
                index % 2 == 0,
            )
        } else {
            let lines = [
                (150_000 + index * 100, VatRate::NoVat),
                (2_500, VatRate::Vat22),
            ];
            receipt(
                ReceiptKind::Sale,
                None,
                &lines[..1 + (index as usize % 2)],
                index % 3 == 0,
            )
        };
        let fiscal = FiscalReceipt::from_receipt(&source).expect("converts");
        let document = driver.receipt(&fiscal).await.expect("receipt made");
        assert_eq!(document.kind, DocumentKind::Receipt);
        assert_eq!(
            document.numbers.fd_number,
            2 + index as u32,
            "continuous FD numbering"
        );
        assert_eq!(document.numbers.receipt_number, 1 + index as u32);
        assert_eq!(document.numbers.shift_number, 1);
        assert_eq!(document.receipt_id, Some(source.id));
        assert_eq!(document.total, source.total);
        assert_ne!(document.numbers.fiscal_sign, 0);
        assert_eq!(
            fiscal.operation,
            if refund {
                Operation::SaleRefund
            } else {
                Operation::Sale
            }
        );
        if !refund {
            sales.push(source.clone());
        }
        made.push((source, document));
    }

    driver.x_report().await.expect("X report");
    let status = driver.status().await.expect("status");
    assert_eq!(status.last_fd, 51, "the X report makes no FD");
    assert_eq!(status.receipt_number, 50);
    assert_eq!(status.unsent.count, 51);
    assert_eq!(status.unsent.first_fd, 1);

    let last = driver
        .last_document()
        .await
        .expect("reads")
        .expect("exists");
    let expected = &made[49].1;
    assert_eq!(
        (
            last.numbers.fd_number,
            last.receipt_id,
            last.total,
            last.numbers.fiscal_sign
        ),
        (
            expected.numbers.fd_number,
            expected.receipt_id,
            expected.total,
            expected.numbers.fiscal_sign
        )
    );
    assert_eq!(
        (
            last.numbers.shift_number,
            last.numbers.receipt_number,
            &last.numbers.fn_number
        ),
        (
            expected.numbers.shift_number,
            expected.numbers.receipt_number,
            &expected.numbers.fn_number
        )
    );
    assert!(
        last.numbers
            .datetime_unix
            .abs_diff(expected.numbers.datetime_unix)
            < 60
    );

    let z = driver.close_shift("Иванова").await.expect("Z report");
    assert_eq!(
        (z.kind, z.numbers.fd_number, z.numbers.shift_number),
        (DocumentKind::ShiftClose, 52, 1)
    );
    assert_eq!(
        driver.status().await.expect("status").shift,
        ShiftState::Closed
    );

    let documents = get(&running, "/documents").await;
    let documents = documents.as_array().expect("array");
    assert_eq!(documents.len(), 52);
    for (index, document) in documents.iter().enumerate() {
        assert_eq!(document["fd"], index as u64 + 1);
    }
    for (source, made) in &made {
        let listed = &documents[made.numbers.fd_number as usize - 1];
        assert_eq!(listed["type"], "receipt");
        assert_eq!(listed["receipt_id"], source.id.to_string());
        assert_eq!(listed["total"], source.total.0);
        assert_eq!(listed["fiscal_sign"], made.numbers.fiscal_sign);
        let operation = if source.kind == ReceiptKind::Refund {
            2
        } else {
            1
        };
        assert_eq!(listed["operation"], operation);
    }
    assert_eq!(documents[51]["type"], "shift_close");
    running.shutdown();
}
