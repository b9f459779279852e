//! Tests of the FN–OFD container: known CRC vectors, round trips, corruption detection and
//! proptests that decoding arbitrary bytes never panics.

use super::*;
use proptest::prelude::*;

fn fn_number() -> FnNumber {
    FnNumber::parse("9999078900005488").expect("16 digits")
}

fn sample() -> OfdContainer {
    OfdContainer {
        fn_number: fn_number(),
        doc_type: 3,
        fd: 1,
        document: vec![0x03, 0x00, 0x04, 0x00, 0xDE, 0xAD, 0xBE, 0xEF],
    }
}

fn sample_ack(code: u8) -> OfdAck {
    OfdAck {
        fn_number: fn_number(),
        fd: 0x01_02_03,
        code,
        received_at_unix_s: 1_790_000_000,
        ofd_inn: "7704211201  ".to_owned(),
        operator_sign: vec![7; 16],
    }
}

#[test]
fn crc_matches_the_ccitt_false_check_value() {
    assert_eq!(crc16_ccitt(CRC_INIT, b"123456789"), 0x29B1);
}

#[test]
fn encodes_the_reference_layout() {
    let bytes = sample().encode().expect("encodable");
    assert_eq!(bytes[..4], SIGNATURE);
    assert_eq!(bytes[8..24], *b"9999078900005488");
    assert_eq!(
        usize::from(u16::from_le_bytes([bytes[24], bytes[25]])),
        32 + 8
    );
    // The reference dump: BCD FN `99 99 07 89 00 00 54 88`, FD `00 00 01`.
    let container = &bytes[SESSION_HEADER_LEN..];
    assert_eq!(
        container[9..17],
        [0x99, 0x99, 0x07, 0x89, 0x00, 0x00, 0x54, 0x88]
    );
    assert_eq!(container[17..20], [0, 0, 1]);
    assert_eq!(container[4], 0xA5);
}

#[test]
fn round_trips_container_and_ack() {
    let container = sample();
    let decoded = OfdContainer::decode(&container.encode().expect("encodable")).expect("valid");
    assert_eq!(decoded, container);
    for code in [0, 14] {
        let ack = sample_ack(code);
        let decoded = OfdAck::decode(&ack.encode().expect("encodable")).expect("valid");
        assert_eq!(decoded, ack);
        assert_eq!(decoded.is_accepted(), code == 0);
    }
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    let bytes = sample().encode().expect("encodable");
    for index in 0..bytes.len() {
        let mut corrupted = bytes.clone();
        corrupted[index] ^= 0x40;
        assert!(
            OfdContainer::decode(&corrupted).is_err(),
            "flip at byte {index} went unnoticed"
        );
    }
}

#[test]
fn rejects_oversized_fd_and_wrong_lengths() {
    let mut container = sample();
    container.fd = MAX_FD + 1;
    assert_eq!(container.encode(), Err(ContainerError::BadFd(MAX_FD + 1)));
    let bytes = sample().encode().expect("encodable");
    assert!(matches!(
        OfdContainer::decode(&bytes[..bytes.len() - 1]),
        Err(ContainerError::LengthMismatch { .. })
    ));
    assert!(matches!(
        OfdContainer::decode(&bytes[..10]),
        Err(ContainerError::TooShort { len: 10 })
    ));
    assert!(FnNumber::parse("12345").is_err());
    assert!(FnNumber::parse("99990789000054ab").is_err());
}

#[test]
fn a_receipt_is_not_an_acknowledgement() {
    let bytes = sample().encode().expect("encodable");
    assert_eq!(
        OfdAck::decode(&bytes),
        Err(ContainerError::BadConfirmation("not an FD 7"))
    );
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = OfdContainer::decode(&bytes);
        let _ = OfdAck::decode(&bytes);
    }

    #[test]
    fn decoding_mutated_valid_messages_never_panics(
        document in proptest::collection::vec(any::<u8>(), 0..128),
        mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = OfdContainer { fn_number: fn_number(), doc_type: 3, fd: 42, document }
            .encode()
            .expect("encodable");
        let len = bytes.len();
        for (index, value) in mutations {
            bytes[index % len] = value;
        }
        let _ = OfdContainer::decode(&bytes);
        let _ = OfdAck::decode(&bytes);
    }

    #[test]
    fn any_container_round_trips(
        digits in "[0-9]{16}",
        doc_type in any::<u8>(),
        fd in 0..=MAX_FD,
        document in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let container = OfdContainer {
            fn_number: FnNumber::parse(&digits).expect("16 digits"),
            doc_type,
            fd,
            document,
        };
        let decoded = OfdContainer::decode(&container.encode().expect("encodable"));
        prop_assert_eq!(decoded, Ok(container));
    }
}
