//! Tests of the OFD emulator's state machine: idempotent acknowledgement, rejection, fault
//! modes, receipt-id extraction and the HMAC behind the emulated operator sign.

use super::*;
use fiscal::ofd::tlv;

fn container(fd: u32, receipt_id: Option<&str>) -> OfdContainer {
    let mut body = Vec::new();
    tlv::push(&mut body, 1020, &[0x10, 0x27]).expect("short");
    if let Some(id) = receipt_id {
        let mut attribute = Vec::new();
        tlv::push(&mut attribute, tlv::TAG_USER_ATTRIBUTE_NAME, b"receipt_id").expect("short");
        tlv::push(&mut attribute, tlv::TAG_USER_ATTRIBUTE_VALUE, id.as_bytes()).expect("short");
        tlv::push(&mut body, tlv::TAG_USER_ATTRIBUTE, &attribute).expect("short");
    }
    let mut document = Vec::new();
    tlv::push(&mut document, 3, &body).expect("short");
    OfdContainer {
        fn_number: FnNumber::parse("9999078900005488").expect("16 digits"),
        doc_type: 3,
        fd,
        document,
    }
}

fn answer(outcome: Outcome) -> OfdAck {
    let Outcome::Answer(bytes) = outcome else {
        panic!("expected an answer, got {outcome:?}");
    };
    OfdAck::decode(&bytes).expect("valid acknowledgement")
}

#[test]
fn hmac_matches_rfc_4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn resent_document_gets_the_same_acknowledgement() {
    let mut state = EmulatorState::default();
    let bytes = container(5, Some("r-1")).encode().expect("encodable");
    assert_eq!(state.admit_request(), None);
    let first = state.process(&bytes, 1_000);
    assert_eq!(state.admit_request(), None);
    let second = state.process(&bytes, 2_000);
    assert_eq!(
        first, second,
        "a re-send must get the identical acknowledgement"
    );
    let ack = answer(first);
    assert_eq!((ack.fd, ack.code, ack.received_at_unix_s), (5, 0, 1_000));
    assert_eq!(ack.operator_sign, operator_sign(&container(5, Some("r-1"))));
    let received = state.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].deliveries, 2);
    assert_eq!(received[0].receipt_id.as_deref(), Some("r-1"));
    assert!(received[0].acknowledged);
    assert_eq!(state.stats().requests_total, 2);
    assert_eq!(state.stats().deliveries_total, 2);
}

#[test]
fn rejection_is_not_remembered_as_acceptance() {
    let mut state = EmulatorState::default();
    let bytes = container(9, None).encode().expect("encodable");
    state
        .set_mode(&ModeRequest::from(Mode::Reject))
        .expect("valid mode");
    assert_eq!(answer(state.process(&bytes, 1)).code, 14);
    assert!(!state.received()[0].acknowledged);
    assert_eq!(state.received()[0].receipt_id, None);
    state
        .set_mode(&ModeRequest::from(Mode::Up))
        .expect("valid mode");
    assert_eq!(answer(state.process(&bytes, 2)).code, 0);
    assert_eq!(state.received()[0].deliveries, 2);
}

#[test]
fn fault_modes_answer_before_reading_the_body() {
    let mut state = EmulatorState::default();
    let cases = [
        (Mode::Down, Outcome::Drop),
        (
            Mode::ServerError,
            Outcome::Status {
                status: 503,
                retry_after_s: None,
            },
        ),
        (
            Mode::RateLimited,
            Outcome::Status {
                status: 429,
                retry_after_s: Some(30),
            },
        ),
        (
            Mode::Unauthorized,
            Outcome::Status {
                status: 401,
                retry_after_s: None,
            },
        ),
    ];
    for (fault, expected) in cases {
        state
            .set_mode(&ModeRequest::from(fault))
            .expect("valid mode");
        assert_eq!(state.admit_request(), Some(expected), "{fault:?}");
    }
    assert_eq!(state.stats().requests_total, 4);
    assert!(state.received().is_empty());
}

#[test]
fn invalid_body_and_bad_knobs_are_refused() {
    let mut state = EmulatorState::default();
    assert_eq!(
        state.process(b"garbage", 0),
        Outcome::Status {
            status: 400,
            retry_after_s: None
        }
    );
    let mut request = ModeRequest::from(Mode::ServerError);
    request.status = Some(404);
    assert_eq!(state.set_mode(&request), Err(ModeError::BadStatus));
    let mut request = ModeRequest::from(Mode::Reject);
    request.code = Some(0);
    assert_eq!(state.set_mode(&request), Err(ModeError::ZeroRejectCode));
    assert_eq!(state.mode(), Mode::Up);
}

#[test]
fn mode_names_match_the_cli_contract() {
    for (name, expected) in [
        ("up", Mode::Up),
        ("down", Mode::Down),
        ("slow", Mode::Slow),
        ("5xx", Mode::ServerError),
        ("429", Mode::RateLimited),
        ("401", Mode::Unauthorized),
        ("reject", Mode::Reject),
    ] {
        let request: ModeRequest =
            serde_json::from_str(&format!(r#"{{"mode":"{name}"}}"#)).expect("known mode");
        assert_eq!(request.mode, expected);
    }
    assert!(serde_json::from_str::<ModeRequest>(r#"{"mode":"sideways"}"#).is_err());
}
