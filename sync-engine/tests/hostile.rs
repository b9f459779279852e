//! Hostile sync messages inside well-framed envelopes: a till (or anything holding its
//! credential) sends real requests with bytes flipped inside the Automerge messages. The hub must
//! never panic, and a refused request must leave its disk untouched.

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::ActorId;
use proptest::prelude::*;
use sync_engine::{Access, DocId, Envelope, MemoryReplica, PeerId, PolicyTable};

fn peer(s: &str) -> PeerId {
    PeerId::new(s).expect("valid peer")
}

fn doc(s: &str) -> DocId {
    DocId::new(s).expect("valid doc")
}

fn replicas() -> (MemoryReplica, MemoryReplica) {
    let till_id = peer("till-01");
    let hub_policy = PolicyTable::new()
        .grant(&till_id, "store/01/", Access::ReadWrite)
        .allow_authors(&till_id, [ActorId::from(b"till-01".as_slice())]);
    let mut hub = MemoryReplica::new(
        peer("hub"),
        ActorId::from(b"hub".as_slice()),
        Arc::new(hub_policy),
    );
    let till_policy = PolicyTable::new().grant(&peer("hub"), "store/01/", Access::ReadWrite);
    let mut till = MemoryReplica::new(
        till_id,
        ActorId::from(b"till-01".as_slice()),
        Arc::new(till_policy),
    );
    for i in 0..4 {
        hub.change(&doc("store/01/catalogue"), 1, |d| {
            d.put(automerge::ROOT, format!("sku-{i}"), i as i64)?;
            Ok(())
        })
        .expect("hub change");
        till.change(&doc("store/01/session"), 1, |d| {
            d.put(automerge::ROOT, format!("receipt-{i}"), i as i64)?;
            Ok(())
        })
        .expect("till change");
    }
    (hub, till)
}

/// The requests of a whole first session, as they went over the wire (some carry changes).
fn recorded_requests() -> Vec<Envelope> {
    let (mut hub, mut till) = replicas();
    let mut round = till.start_round(&peer("hub"));
    let mut requests = Vec::new();
    while let Some(request) = till.next_request(&mut round).expect("request") {
        let reply = hub.serve(&peer("till-01"), &request).expect("serve").reply;
        till.apply_reply(&mut round, &peer("hub"), &reply)
            .expect("apply");
        requests.push(request);
    }
    assert!(requests.len() >= 2);
    requests
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn flipped_message_bytes_never_panic_the_hub(
        round in any::<prop::sample::Index>(),
        entry in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let requests = recorded_requests();
        let mut request = requests[round.index(requests.len())].clone();
        let with_messages: Vec<usize> = (0..request.entries.len())
            .filter(|i| request.entries[*i].message.is_some())
            .collect();
        prop_assume!(!with_messages.is_empty());
        let target = with_messages[entry.index(with_messages.len())];
        let message = request.entries[target].message.as_mut().expect("has a message");
        for (at, value) in edits {
            let i = at.index(message.len());
            message[i] = value;
        }

        let (mut hub, _) = replicas();
        let disk_before = hub.save();
        // The wire decoder may already refuse it; if not, the hub must refuse or apply cleanly.
        let Ok(bytes) = request.encode() else { return Ok(()) };
        let Ok(decoded) = Envelope::decode(&bytes) else { return Ok(()) };
        if hub.serve(&peer("till-01"), &decoded).is_err() {
            prop_assert_eq!(hub.save(), disk_before);
        }
    }
}
