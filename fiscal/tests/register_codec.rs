//! The Shtrih-M codec at the byte level: random input never panics the frame decoder or the
//! TLV parser, encode → decode round-trips, every kept fuzz crasher is handled, and the
//! transport resends a frame the device NAKed (a scripted device on an in-memory pipe).

use std::path::Path;
use std::time::Duration;

use fiscal::register::{FiscalRegister, RegisterError};
use fiscal::shtrih::frame::{decode_frame, encode_frame, Frame, FrameError, ACK, ENQ, NAK, STX};
use fiscal::shtrih::{tlv, DriverConfig, ShtrihDriver};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_frame(&bytes);
        let _ = tlv::parse(&bytes);
    }

    #[test]
    fn stx_prefixed_noise_never_panics(len in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..260)) {
        let mut bytes = vec![STX, len];
        bytes.extend(rest);
        if let Ok((frame, used)) = decode_frame(&bytes) {
            prop_assert_eq!(encode_frame(&frame).expect("re-encodes"), bytes[..used].to_vec());
        }
    }

    #[test]
    fn encode_then_decode_round_trips(
        command in prop_oneof![0u16..0xFF, 0xFF00u16..=0xFFFF],
        data in proptest::collection::vec(any::<u8>(), 0..250),
        trailing in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let frame = Frame::new(command, data);
        match encode_frame(&frame) {
            Ok(mut bytes) => {
                let len = bytes.len();
                bytes.extend(trailing);
                prop_assert_eq!(decode_frame(&bytes), Ok((frame, len)));
            }
            Err(FrameError::EncodeTooLarge(size)) => prop_assert!(size > 252),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn a_flipped_bit_is_detected(data in proptest::collection::vec(any::<u8>(), 1..100), bit in 0usize..800) {
        let mut bytes = encode_frame(&Frame::new(0x10, data)).expect("encodes");
        let index = 2 + (bit / 8) % (bytes.len() - 2);
        bytes[index] ^= 1 << (bit % 8);
        prop_assert!(decode_frame(&bytes).is_err());
    }
}

#[test]
fn every_fuzz_crasher_is_handled() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/fuzz-crashers");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("crasher dir exists") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|name| name == "README.md") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable");
        if let Ok((frame, used)) = decode_frame(&bytes) {
            assert_eq!(encode_frame(&frame).expect("re-encodes"), bytes[..used]);
        }
        let _ = tlv::parse(&bytes);
        replayed += 1;
    }
    assert!(replayed >= 1, "the seed case is replayed");
    assert_eq!(
        decode_frame(&[0x02, 0x01, 0xFF, 0xFE]),
        Err(FrameError::BadLength(1))
    );
}

/// A scripted device: idle on ENQ, NAKs the first copy of the frame, ACKs the second and
/// answers "out of paper" to the X report.
#[tokio::test]
async fn a_nacked_frame_is_resent_and_the_error_code_is_typed() {
    let (host, mut device) = tokio::io::duplex(1024);
    let script = tokio::spawn(async move {
        let mut seen_frames = 0;
        let mut byte = [0u8; 1];
        loop {
            if device.read_exact(&mut byte).await.is_err() {
                return seen_frames;
            }
            match byte[0] {
                ENQ => device.write_all(&[NAK]).await.expect("writes"),
                STX => {
                    let mut len = [0u8; 1];
                    device.read_exact(&mut len).await.expect("len");
                    let mut rest = vec![0u8; usize::from(len[0]) + 1];
                    device.read_exact(&mut rest).await.expect("rest");
                    seen_frames += 1;
                    if seen_frames == 1 {
                        device.write_all(&[NAK]).await.expect("writes");
                        continue;
                    }
                    let answer = encode_frame(&Frame::new(0x40, vec![0x6B])).expect("encodes");
                    device.write_all(&[ACK]).await.expect("writes");
                    device.write_all(&answer).await.expect("writes");
                }
                _ => {}
            }
        }
    });
    let config = DriverConfig {
        answer_timeout: Duration::from_millis(500),
        fiscal_timeout: Duration::from_millis(500),
        ..DriverConfig::default()
    };
    let mut driver = ShtrihDriver::new(host, config);
    let error = driver.x_report().await.expect_err("paper out");
    assert!(
        matches!(
            error,
            RegisterError::Device(fiscal::shtrih::DeviceError::PaperOut)
        ),
        "{error:?}"
    );
    drop(driver);
    assert_eq!(script.await.expect("script ends"), 2, "sent twice");
}
