//! Unit tests of the emulated FN rules, driven frame by frame without a pty.

use super::*;
use crdt_model::{Kopecks, VatRate};

const T0: u64 = 1_795_461_000;

fn machine(capacity: u32) -> Machine {
    Machine::new(FnState::fresh(T0), None, capacity)
}

fn run(machine: &mut Machine, command: u16, params: &[u8], now: u64) -> Result<Vec<u8>, u8> {
    let mut data = ADMIN_PASSWORD.to_le_bytes().to_vec();
    data.extend_from_slice(params);
    let answer = machine.execute(&Frame::new(command, data), now, false);
    assert_eq!(answer.command, command);
    match answer.data.split_first() {
        Some((0, rest)) => Ok(rest.to_vec()),
        Some((code, _)) => Err(*code),
        None => panic!("empty answer"),
    }
}

fn open_shift(machine: &mut Machine, now: u64) -> Result<Vec<u8>, u8> {
    run(machine, CMD_BEGIN_OPEN_SHIFT, &[], now)?;
    run(machine, CMD_OPEN_SHIFT, &[], now)
}

fn item(sum: i64) -> Vec<u8> {
    let mut params = vec![1];
    put_uint(&mut params, 1_000_000, 6);
    put_uint(&mut params, sum as u64, 5);
    put_uint(&mut params, sum as u64, 5);
    put_uint(&mut params, VAT_SUM_COMPUTE as u64, 5);
    params.extend_from_slice(&[tax_bitmask(VatRate::Vat20), 1, 4, 1]);
    params.extend_from_slice(b"Lens");
    params
}

fn close(cash: i64) -> Vec<u8> {
    let mut params = Vec::new();
    put_uint(&mut params, cash as u64, 5);
    params.extend_from_slice(&[0; 15 * 5 + 1 + 30]);
    params.push(1);
    params
}

fn sell(machine: &mut Machine, sum: i64, paid: i64, now: u64) -> Result<Vec<u8>, u8> {
    run(machine, CMD_OPEN_RECEIPT, &[0], now)?;
    run(machine, CMD_OPERATION, &item(sum), now)?;
    run(machine, CMD_CLOSE_RECEIPT, &close(paid), now)
}

#[test]
fn payments_short_of_the_total_are_refused_and_change_is_returned() {
    let mut machine = machine(100);
    open_shift(&mut machine, T0).expect("opens");
    assert_eq!(sell(&mut machine, 1_000, 999, T0), Err(0x45));
    let answer = run(&mut machine, CMD_CLOSE_RECEIPT, &close(1_500), T0).expect("closes");
    assert_eq!(le_uint(&answer[..5]), 500, "change");
    assert_eq!(le_uint(&answer[5..9]), 2, "FD 2");
    let doc = machine.document(2).expect("stored");
    let entries = tlv::parse(&doc.tlv().expect("stored hex"))
        .map(|e| e.len())
        .expect("parses");
    assert!(entries > 10);
    assert_eq!(doc.total, 1_000);
    let vat = tlv::parse(&doc.tlv().expect("stored hex"))
        .ok()
        .and_then(|e| tlv::find_uint(&e, 1102));
    assert_eq!(
        vat,
        Some(VatRate::Vat20.vat_amount(Kopecks(1_000)).0 as u64)
    );
}

#[test]
fn a_second_receipt_cannot_open_and_cancel_needs_an_open_receipt() {
    let mut machine = machine(100);
    open_shift(&mut machine, T0).expect("opens");
    run(&mut machine, CMD_OPEN_RECEIPT, &[0], T0).expect("opens");
    assert_eq!(run(&mut machine, CMD_OPEN_RECEIPT, &[0], T0), Err(0x4A));
    run(&mut machine, CMD_CANCEL_RECEIPT, &[], T0).expect("cancels");
    assert_eq!(run(&mut machine, CMD_CANCEL_RECEIPT, &[], T0), Err(0x02));
    assert_eq!(machine.state().last_fd, 1);
}

#[test]
fn the_thirty_day_boundary_blocks_at_exactly_thirty_days() {
    let mut machine = machine(100);
    open_shift(&mut machine, T0).expect("opens");
    run(&mut machine, CMD_BEGIN_CLOSE_SHIFT, &[], T0).expect("begins");
    run(&mut machine, CMD_CLOSE_SHIFT, &[], T0).expect("closes");
    assert_eq!(
        open_shift(&mut machine, T0 + UNSENT_LIMIT_SECS - 1).map(|_| ()),
        Ok(())
    );
    run(
        &mut machine,
        CMD_BEGIN_CLOSE_SHIFT,
        &[],
        T0 + UNSENT_LIMIT_SECS - 1,
    )
    .expect("begins");
    run(
        &mut machine,
        CMD_CLOSE_SHIFT,
        &[],
        T0 + UNSENT_LIMIT_SECS - 1,
    )
    .expect("closes");
    assert_eq!(open_shift(&mut machine, T0 + UNSENT_LIMIT_SECS), Err(0x15));
}

#[test]
fn time_going_backwards_and_a_full_archive_are_refused() {
    let mut machine = machine(3);
    open_shift(&mut machine, T0).expect("opens");
    assert_eq!(sell(&mut machine, 100, 100, T0 - 10), Err(0x17));
    run(&mut machine, CMD_CANCEL_RECEIPT, &[], T0).ok();
    sell(&mut machine, 100, 100, T0).expect("FD 2");
    sell(&mut machine, 100, 100, T0).expect("FD 3");
    assert_eq!(sell(&mut machine, 100, 100, T0), Err(0x06));
    assert_ne!(machine.warning_flags(T0) & 0x04, 0, "1052: memory full");
}

#[test]
fn key_expiry_warnings_come_at_thirty_and_three_days() {
    let machine = machine(100);
    let expiry = T0 + KEY_LIFETIME_SECS;
    assert_eq!(machine.warning_flags(T0) & 0x03, 0);
    assert_eq!(machine.warning_flags(expiry - 29 * DAY_SECS) & 0x03, 0x02);
    assert_eq!(machine.warning_flags(expiry - 2 * DAY_SECS) & 0x03, 0x03);
}

#[test]
fn a_wrong_password_and_unknown_commands_are_typed() {
    let mut machine = machine(100);
    let answer = machine.execute(&Frame::new(CMD_SHORT_STATUS, vec![99, 0, 0, 0]), T0, false);
    assert_eq!(answer.data, vec![0x4F]);
    let answer = machine.execute(&Frame::new(CMD_SHORT_STATUS, vec![1]), T0, false);
    assert_eq!(answer.data, vec![0x09]);
    assert_eq!(run(&mut machine, 0xFFEE, &[], T0), Err(0x01));
    assert_eq!(run(&mut machine, CMD_OPERATION, &item(10), T0), Err(0x02));
}
