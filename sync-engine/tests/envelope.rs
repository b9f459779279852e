//! The envelope codec at the byte level: round trips, every refusal the decoder promises, and a
//! property test that random and mutated bytes never panic or over-allocate.

use automerge::sync::{State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit};
use proptest::prelude::*;
use sync_engine::{
    Actor, DocEntry, DocId, DocStatus, Envelope, EnvelopeError, PeerId, VersionVector,
    ENVELOPE_VERSION, MAX_ENTRIES,
};

fn peer(s: &str) -> PeerId {
    PeerId::new(s).expect("valid peer")
}

fn doc(s: &str) -> DocId {
    DocId::new(s).expect("valid doc")
}

/// Real sync messages: a first message (heads + bloom) and one carrying a whole document.
fn sample_messages() -> Vec<Vec<u8>> {
    let mut hub = AutoCommit::new().with_actor(ActorId::from(b"hub".as_slice()));
    for i in 0..3 {
        hub.put(automerge::ROOT, format!("sku-{i}"), i)
            .expect("put");
        hub.commit();
    }
    let mut till = AutoCommit::new();
    let (mut hub_state, mut till_state) = (State::new(), State::new());
    let first = till
        .sync()
        .generate_sync_message(&mut till_state)
        .expect("first message");
    hub.sync()
        .receive_sync_message(&mut hub_state, first.clone())
        .expect("receive");
    let with_doc = hub
        .sync()
        .generate_sync_message(&mut hub_state)
        .expect("reply");
    vec![first.encode(), with_doc.encode()]
}

fn sample_envelope() -> Envelope {
    let messages = sample_messages();
    let clock: VersionVector = [("till-01".parse::<Actor>().expect("actor"), 7)]
        .into_iter()
        .collect();
    Envelope::new(
        peer("till-01"),
        true,
        vec![
            DocEntry::message(doc("store/01/catalogue"), messages[1].clone()),
            DocEntry {
                doc: doc("store/01/session/till-01"),
                message: Some(messages[0].clone()),
                status: Some(DocStatus {
                    clock,
                    oldest_unsynced_ms: Some(1_732_000_000_000),
                }),
            },
            DocEntry {
                doc: doc("store/01/listed-only"),
                message: None,
                status: None,
            },
        ],
    )
}

#[test]
fn round_trip_keeps_every_field() {
    let envelope = sample_envelope();
    let bytes = envelope.encode().expect("encode");
    assert_eq!(bytes.len(), envelope.encoded_len());
    assert_eq!(&bytes[..4], b"OESE");
    let back = Envelope::decode(&bytes).expect("decode");
    assert_eq!(back, envelope);
    assert!(!back.is_idle());
    println!("sample envelope: {} bytes", bytes.len());
}

#[test]
fn refuses_unknown_versions_trailing_bytes_and_flags() {
    let bytes = sample_envelope().encode().expect("encode");

    let mut newer = bytes.clone();
    newer[4..6].copy_from_slice(&(ENVELOPE_VERSION + 1).to_be_bytes());
    assert!(matches!(
        Envelope::decode(&newer),
        Err(EnvelopeError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Envelope::decode(&trailing),
        Err(EnvelopeError::TrailingBytes(1))
    ));

    let mut flags = bytes.clone();
    flags[6] |= 0x80;
    assert!(matches!(
        Envelope::decode(&flags),
        Err(EnvelopeError::UnknownFlags { .. })
    ));

    assert!(matches!(
        Envelope::decode(b"NOPE\0\x01"),
        Err(EnvelopeError::BadMagic)
    ));
    assert!(matches!(
        Envelope::decode(&bytes[..bytes.len() - 1]),
        Err(EnvelopeError::Truncated { .. })
    ));

    let mut in_memory = sample_envelope();
    in_memory.version = 9;
    assert!(matches!(
        in_memory.encode(),
        Err(EnvelopeError::UnsupportedVersion { found: 9, .. })
    ));
}

#[test]
fn refuses_duplicates_bad_ids_and_bad_messages() {
    let mut duplicate = sample_envelope();
    duplicate.entries.push(duplicate.entries[0].clone());
    assert!(matches!(
        duplicate.encode(),
        Err(EnvelopeError::DuplicateDoc(_))
    ));

    // Write a duplicate by hand, bypassing the encoder's check.
    let one = Envelope::new(
        peer("p"),
        false,
        vec![DocEntry {
            doc: doc("d"),
            message: None,
            status: None,
        }],
    );
    let mut bytes = one.encode().expect("encode");
    let entry = bytes[bytes.len() - 3..].to_vec();
    bytes.extend(&entry);
    let count_at = 4 + 2 + 1 + 1 + 1;
    bytes[count_at..count_at + 4].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(EnvelopeError::DuplicateDoc(_))
    ));

    // A doc id with a space in it.
    let mut bad_id = one.encode().expect("encode");
    let id_at = bad_id.len() - 2;
    bad_id[id_at] = b' ';
    assert!(matches!(
        Envelope::decode(&bad_id),
        Err(EnvelopeError::BadId(_))
    ));

    let garbage = Envelope::new(
        peer("p"),
        false,
        vec![DocEntry::message(doc("d"), vec![0x42, 7, 7])],
    );
    let bytes = garbage
        .encode()
        .expect("the encoder does not parse messages");
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(EnvelopeError::BadMessage { .. })
    ));
}

#[test]
fn huge_counts_are_refused_before_allocation() {
    let mut bytes = Envelope::new(peer("p"), false, vec![])
        .encode()
        .expect("encode");
    let count_at = bytes.len() - 4;
    bytes[count_at..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(EnvelopeError::TooManyEntries { .. })
    ));
    bytes[count_at..].copy_from_slice(&(MAX_ENTRIES as u32).to_be_bytes());
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(EnvelopeError::Truncated { .. })
    ));

    // An entry claiming a 15 MiB message that is not there.
    let mut claim = Envelope::new(peer("p"), false, vec![])
        .encode()
        .expect("encode");
    claim[count_at..].copy_from_slice(&1u32.to_be_bytes());
    claim.extend([1, b'd', 0b001]);
    claim.extend((15u32 * 1024 * 1024).to_be_bytes());
    assert!(matches!(
        Envelope::decode(&claim),
        Err(EnvelopeError::Truncated { field: "message" })
    ));
}

fn arb_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:/-]{1,40}"
}

fn arb_status() -> impl Strategy<Value = DocStatus> {
    (
        proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 1..20),
            1..u64::MAX,
            0..5,
        ),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(actors, oldest_unsynced_ms)| DocStatus {
            clock: actors
                .into_iter()
                .map(|(bytes, seq)| (Actor::new(ActorId::from(bytes)), seq))
                .collect(),
            oldest_unsynced_ms,
        })
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    let messages = sample_messages();
    let entry = (
        arb_id(),
        proptest::option::of(0..messages.len()),
        proptest::option::of(arb_status()),
    )
        .prop_map(move |(id, message, status)| DocEntry {
            doc: DocId::new(id).expect("strategy makes valid ids"),
            message: message.map(|i| messages[i].clone()),
            status,
        });
    (
        arb_id(),
        any::<bool>(),
        proptest::collection::vec(entry, 0..8),
    )
        .prop_map(|(sender, complete, mut entries)| {
            let mut seen = std::collections::BTreeSet::new();
            entries.retain(|e| seen.insert(e.doc.clone()));
            Envelope::new(PeerId::new(sender).expect("valid"), complete, entries)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trips(envelope in arb_envelope()) {
        let bytes = envelope.encode().expect("valid envelopes encode");
        prop_assert_eq!(bytes.len(), envelope.encoded_len());
        prop_assert_eq!(Envelope::decode(&bytes).expect("decode"), envelope);
    }

    #[test]
    fn mutated_bytes_never_panic(
        envelope in arb_envelope(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = envelope.encode().expect("encode");
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(decoded) = Envelope::decode(&bytes) {
            // Whatever decodes must encode back to the same bytes (the format is canonical).
            prop_assert_eq!(decoded.encode().expect("re-encode"), bytes);
        }
    }

    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::decode(&tail);
        let mut framed = b"OESE\x00\x01\x01".to_vec();
        framed.extend(&tail);
        let _ = Envelope::decode(&framed);
    }
}
