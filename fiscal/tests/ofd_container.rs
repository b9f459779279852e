//! Property tests of the public FN–OFD wire API: acknowledgements round-trip whatever their
//! fields, and no decoder (container, acknowledgement, receipt-id search) panics on hostile
//! bytes.

use fiscal::ofd::container::{OfdAck, OfdContainer, MAX_FD};
use fiscal::ofd::{tlv, FnNumber};
use proptest::prelude::*;

fn ack_strategy() -> impl Strategy<Value = OfdAck> {
    (
        "[0-9]{16}",
        0..=MAX_FD,
        any::<u8>(),
        any::<u32>(),
        "[0-9]{10}  |[0-9]{12}",
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(digits, fd, code, received_at_unix_s, ofd_inn, operator_sign)| OfdAck {
                fn_number: FnNumber::parse(&digits).expect("16 digits"),
                fd,
                code,
                received_at_unix_s,
                ofd_inn,
                operator_sign,
            },
        )
}

proptest! {
    #[test]
    fn acknowledgements_round_trip(ack in ack_strategy()) {
        let bytes = ack.encode().expect("encodable");
        prop_assert_eq!(OfdAck::decode(&bytes), Ok(ack));
    }

    #[test]
    fn truncated_acknowledgements_are_errors(ack in ack_strategy(), cut in any::<usize>()) {
        let bytes = ack.encode().expect("encodable");
        let cut = cut % bytes.len();
        prop_assert!(OfdAck::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = OfdContainer::decode(&bytes);
        let _ = OfdAck::decode(&bytes);
        let _ = tlv::find_receipt_id(&bytes);
        for item in tlv::iter(&bytes) {
            let _ = item;
        }
    }
}
