//! Multi-document rounds between in-memory replicas: first sync, idle polls, refusals (which
//! must leave everything untouched), authorship, deferral under tight limits and a hub that is
//! stateless between requests.

use std::sync::Arc;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc};
use sync_engine::{
    Access, DocEntry, DocId, Envelope, ForbiddenReason, MemoryReplica, PeerId, PolicyTable,
    RoundLimits, SyncError,
};

fn peer(s: &str) -> PeerId {
    PeerId::new(s).expect("valid peer")
}

fn doc(s: &str) -> DocId {
    DocId::new(s).expect("valid doc")
}

fn actor(s: &str) -> ActorId {
    ActorId::from(s.as_bytes())
}

const CATALOGUE: &str = "store/01/catalogue";
const SESSION: &str = "store/01/session/till-01/day-1";
const OTHER_STORE: &str = "store/02/catalogue";

/// Hub: till-01 reads store 01 and writes its own sessions, as actor `till-01` only.
fn hub_policy() -> PolicyTable {
    let till = peer("till-01");
    PolicyTable::new()
        .grant(&till, "store/01/", Access::Read)
        .grant(&till, "store/01/session/till-01/", Access::ReadWrite)
        .allow_authors(&till, [actor("till-01")])
}

/// Till: accepts everything of store 01 from the hub.
fn till_policy() -> PolicyTable {
    PolicyTable::new().grant(&peer("hub"), "store/01/", Access::ReadWrite)
}

fn hub() -> MemoryReplica {
    let mut hub = MemoryReplica::new(peer("hub"), actor("hub"), Arc::new(hub_policy()));
    for (id, sku) in [(CATALOGUE, "SKU-1"), (OTHER_STORE, "SKU-9")] {
        hub.change(&doc(id), 1, |d| {
            d.put(automerge::ROOT, sku, 12_900_i64)?;
            Ok(())
        })
        .expect("hub change");
    }
    hub
}

fn till() -> MemoryReplica {
    MemoryReplica::new(peer("till-01"), actor("till-01"), Arc::new(till_policy()))
}

/// A message from `from` that carries the changes `to` lacks (one exchange, fresh states).
fn message_with_changes(from: &mut AutoCommit, to: &mut AutoCommit) -> Vec<u8> {
    let (mut from_state, mut to_state) = (State::new(), State::new());
    let hello = to
        .sync()
        .generate_sync_message(&mut to_state)
        .expect("hello");
    from.sync()
        .receive_sync_message(&mut from_state, hello)
        .expect("receive");
    let reply = from
        .sync()
        .generate_sync_message(&mut from_state)
        .expect("reply");
    assert!(!reply.changes.is_empty(), "the helper must produce changes");
    reply.encode()
}

#[test]
fn fresh_till_receives_its_store_and_nothing_else() {
    let mut hub = hub();
    let mut till = till();
    let report = till.sync_with(&mut hub).expect("sync");
    println!("fresh till: {report:?}");
    // Round 1: the offer already carries the whole catalogue; round 2: the till acknowledges.
    assert_eq!(report.rounds(), 2, "{report:?}");
    assert_eq!(till.heads(&doc(CATALOGUE)), hub.heads(&doc(CATALOGUE)));
    assert!(till.doc(&doc(OTHER_STORE)).is_none());
    let price = till
        .doc(&doc(CATALOGUE))
        .and_then(|d| d.get(automerge::ROOT, "SKU-1").ok().flatten())
        .map(|(value, _)| value.as_i64());
    assert_eq!(price, Some(Some(12_900)));
}

#[test]
fn idle_poll_is_one_small_round_without_changes() {
    let mut hub = hub();
    let mut till = till();
    till.change(&doc(SESSION), 5, |d| {
        d.put(automerge::ROOT, "receipt-1", 100_i64)?;
        Ok(())
    })
    .expect("sale");
    till.sync_with(&mut hub).expect("first sync");
    assert_eq!(till.heads(&doc(SESSION)), hub.heads(&doc(SESSION)));

    let mut round = till.start_round(&peer("hub"));
    let request = till
        .next_request(&mut round)
        .expect("request")
        .expect("a poll goes out");
    let request_len = request.encode().expect("encode").len();
    let response = hub.serve(&peer("till-01"), &request).expect("serve");
    let reply_len = response.reply.encode().expect("encode").len();
    for entry in &response.reply.entries {
        let message = Message::decode(entry.message.as_deref().expect("answered")).expect("decode");
        assert!(message.changes.is_empty(), "idle reply carries no changes");
    }
    assert!(response.docs.iter().all(|d| d.applied.is_empty()));
    till.apply_reply(&mut round, &peer("hub"), &response.reply)
        .expect("apply");
    assert!(
        till.next_request(&mut round).expect("next").is_none(),
        "one round only"
    );
    println!("idle poll, 2 docs with status: request {request_len} B, reply {reply_len} B");
    assert!(
        request_len < 600 && reply_len < 600,
        "{request_len} / {reply_len}"
    );
}

#[test]
fn changes_flow_both_ways_in_two_rounds() {
    let mut hub = hub();
    let mut till = till();
    till.sync_with(&mut hub).expect("first sync");
    hub.change(&doc(CATALOGUE), 10, |d| {
        d.put(automerge::ROOT, "SKU-1", 13_500_i64)?;
        Ok(())
    })
    .expect("price change");
    till.change(&doc(SESSION), 11, |d| {
        d.put(automerge::ROOT, "receipt-2", 250_i64)?;
        Ok(())
    })
    .expect("sale");
    let report = till.sync_with(&mut hub).expect("sync");
    println!("both ways: {report:?}");
    assert!(report.rounds() <= 2, "{report:?}");
    for id in [CATALOGUE, SESSION] {
        assert_eq!(till.heads(&doc(id)), hub.heads(&doc(id)), "{id}");
    }
}

/// A hand-made request (a misbehaving till) that the hub must refuse whole.
fn assert_refused_whole(request: Envelope, expected_doc: &str, expected: ForbiddenReason) {
    let mut hub = hub();
    let disk_before = hub.save();
    let heads_before = hub.heads(&doc(CATALOGUE));
    let error = hub.serve(&peer("till-01"), &request).expect_err("refused");
    match error {
        SyncError::Forbidden { doc: d, reason } => {
            assert_eq!(d, doc(expected_doc));
            assert_eq!(reason, expected);
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(hub.save(), disk_before, "nothing persisted");
    assert_eq!(hub.heads(&doc(CATALOGUE)), heads_before, "nothing applied");
    assert!(hub.doc(&doc(SESSION)).is_none(), "no document created");
}

#[test]
fn forbidden_doc_refuses_the_whole_envelope() {
    let mut session = AutoCommit::new().with_actor(actor("till-01"));
    session
        .put(automerge::ROOT, "receipt-1", 1_i64)
        .expect("put");
    let good = message_with_changes(&mut session, &mut AutoCommit::new());
    let hello = AutoCommit::new()
        .sync()
        .generate_sync_message(&mut State::new())
        .expect("hello")
        .encode();
    let request = Envelope::new(
        peer("till-01"),
        false,
        vec![
            DocEntry::message(doc(SESSION), good),
            DocEntry::message(doc(OTHER_STORE), hello),
        ],
    );
    assert_refused_whole(request, OTHER_STORE, ForbiddenReason::NoAccess);
}

#[test]
fn changes_into_a_read_only_doc_are_refused() {
    let mut hub = hub();
    let mut till = till();
    till.sync_with(&mut hub).expect("first sync");
    // The till writes into the catalogue it may only read, then crafts a message with it.
    let mut copy = AutoCommit::load(&hub.save().docs[&doc(CATALOGUE)]).expect("load");
    let mut tampered = copy.fork().with_actor(actor("till-01"));
    tampered.put(automerge::ROOT, "SKU-1", 1_i64).expect("put");
    let message = message_with_changes(&mut tampered, &mut copy);
    let request = Envelope::new(
        peer("till-01"),
        false,
        vec![DocEntry::message(doc(CATALOGUE), message)],
    );
    assert_refused_whole(request, CATALOGUE, ForbiddenReason::ReadOnly);
}

#[test]
fn changes_by_a_foreign_author_are_refused() {
    let mut forged = AutoCommit::new().with_actor(actor("till-02"));
    forged
        .put(automerge::ROOT, "receipt-1", 1_i64)
        .expect("put");
    let message = message_with_changes(&mut forged, &mut AutoCommit::new());
    let request = Envelope::new(
        peer("till-01"),
        false,
        vec![DocEntry::message(doc(SESSION), message)],
    );
    assert_refused_whole(request, SESSION, ForbiddenReason::Author(actor("till-02")));
}

#[test]
fn sender_must_be_the_authenticated_peer() {
    let mut hub = hub();
    let request = Envelope::new(peer("till-02"), true, vec![]);
    assert!(matches!(
        hub.serve(&peer("till-01"), &request),
        Err(SyncError::UnexpectedSender { .. })
    ));
}

#[test]
fn relayed_changes_the_hub_already_holds_pass_the_author_check() {
    // A session doc the hub also writes into (e.g. a fiscal acknowledgement); the till then
    // writes enough to make Automerge send the whole document (V2), hub changes included.
    let mut hub = hub();
    hub.change(&doc(SESSION), 1, |d| {
        d.put(automerge::ROOT, "opened-by", "hub")?;
        Ok(())
    })
    .expect("hub change");
    let mut till = till();
    till.sync_with(&mut hub).expect("first sync");
    for i in 0..10 {
        till.change(&doc(SESSION), 2, |d| {
            d.put(automerge::ROOT, format!("receipt-{i}"), i as i64)?;
            Ok(())
        })
        .expect("sale");
    }
    till.sync_with(&mut hub).expect("relay must not be refused");
    assert_eq!(till.heads(&doc(SESSION)), hub.heads(&doc(SESSION)));
}

#[test]
fn tight_limits_defer_documents_to_later_rounds() {
    let limits = RoundLimits {
        max_docs: 2,
        max_bytes: 2_000,
        max_round_trips: 64,
    };
    let mut hub =
        MemoryReplica::new(peer("hub"), actor("hub"), Arc::new(hub_policy())).with_limits(limits);
    for i in 0..7 {
        hub.change(&doc(&format!("store/01/doc-{i}")), 1, |d| {
            d.put(automerge::ROOT, "payload", "x".repeat(300))?;
            Ok(())
        })
        .expect("hub change");
    }
    let mut till = till().with_limits(limits);
    let report = till.sync_with(&mut hub).expect("sync");
    println!("deferred: {report:?}");
    assert!(
        report.rounds() > 3,
        "limits must force several rounds: {report:?}"
    );
    assert!(
        report.reply_bytes.iter().all(|b| *b <= 2_000 + 1_500),
        "{report:?}"
    );
    for i in 0..7 {
        let id = doc(&format!("store/01/doc-{i}"));
        assert_eq!(till.heads(&id), hub.heads(&id), "{id}");
    }
}

#[test]
fn any_hub_process_can_serve_any_round() {
    // Two hub processes over one database: each round goes to a freshly restored hub.
    let hub_disk = hub().save();
    let mut till = till();
    till.change(&doc(SESSION), 3, |d| {
        d.put(automerge::ROOT, "receipt-1", 1_i64)?;
        Ok(())
    })
    .expect("sale");
    let mut disk = hub_disk;
    let mut round = till.start_round(&peer("hub"));
    let mut rounds = 0;
    while let Some(request) = till.next_request(&mut round).expect("request") {
        let mut process =
            MemoryReplica::restore(peer("hub"), actor("hub"), Arc::new(hub_policy()), disk)
                .expect("restore");
        let reply = process
            .serve(&peer("till-01"), &request)
            .expect("serve")
            .reply;
        disk = process.save();
        till.apply_reply(&mut round, &peer("hub"), &reply)
            .expect("apply");
        rounds += 1;
    }
    assert!(rounds <= 3);
    let mut last = MemoryReplica::restore(peer("hub"), actor("hub"), Arc::new(hub_policy()), disk)
        .expect("restore");
    assert_eq!(last.heads(&doc(SESSION)), till.heads(&doc(SESSION)));
    assert_eq!(last.heads(&doc(CATALOGUE)), till.heads(&doc(CATALOGUE)));
}

#[test]
fn client_refuses_a_reply_from_another_server_or_with_corrupt_changes() {
    let mut hub = hub();
    let mut till = till();
    let mut round = till.start_round(&peer("hub"));
    let request = till
        .next_request(&mut round)
        .expect("request")
        .expect("first");
    let mut reply = hub.serve(&peer("till-01"), &request).expect("serve").reply;

    let mut impostor = reply.clone();
    impostor.sender = peer("hub-2");
    assert!(matches!(
        till.apply_reply(&mut round, &peer("hub"), &impostor),
        Err(SyncError::UnexpectedSender { .. })
    ));

    // A reply with a message whose change chunk is corrupt: refused, nothing created.
    let mut source = AutoCommit::load(&hub.save().docs[&doc(CATALOGUE)]).expect("load");
    let mut bytes = message_with_changes(&mut source, &mut AutoCommit::new());
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    reply.entries = vec![DocEntry::message(doc(CATALOGUE), bytes)];
    assert!(till.apply_reply(&mut round, &peer("hub"), &reply).is_err());
    assert!(till.doc(&doc(CATALOGUE)).is_none());
    assert!(till.save().docs.is_empty());
}

#[test]
fn the_first_round_reports_divergence_both_ways() {
    let mut hub = hub();
    let mut till = till();
    till.sync_with(&mut hub).expect("first sync");
    for i in 0..3 {
        till.change(&doc(SESSION), 1_000 + i, |d| {
            d.put(automerge::ROOT, format!("offline-{i}"), i as i64)?;
            Ok(())
        })
        .expect("offline sale");
    }
    hub.change(&doc(CATALOGUE), 2_000, |d| {
        d.put(automerge::ROOT, "SKU-2", 5_i64)?;
        Ok(())
    })
    .expect("price");

    let mut round = till.start_round(&peer("hub"));
    let request = till
        .next_request(&mut round)
        .expect("request")
        .expect("poll");
    let response = hub.serve(&peer("till-01"), &request).expect("serve");
    let session_report = response
        .divergence
        .iter()
        .find(|d| d.doc == doc(SESSION))
        .expect("session divergence");
    assert_eq!(
        session_report.local_lacks_changes(),
        3,
        "{session_report:?}"
    );
    assert_eq!(
        session_report.local_lacks[0].to_string(),
        "till-01 seq 1..=3"
    );
    assert_eq!(session_report.oldest_unsynced_ms, Some(1_000));
    assert!(session_report.remote_heads.is_some());

    let outcome = till
        .apply_reply(&mut round, &peer("hub"), &response.reply)
        .expect("apply");
    // Reports describe the state after the round: the hub's price change came with the reply,
    // the till's offline sales go up in the next request.
    let report = |name: &str| {
        outcome
            .divergence
            .iter()
            .find(|d| d.doc == doc(name))
            .cloned()
            .expect("divergence on the till")
    };
    assert!(report(CATALOGUE).in_sync(), "{:?}", report(CATALOGUE));
    let session_on_till = report(SESSION);
    assert_eq!(
        session_on_till.remote_lacks_changes(),
        3,
        "{session_on_till:?}"
    );
    assert_eq!(session_on_till.oldest_unsynced_ms, Some(1_000));
}

#[test]
fn offers_the_client_would_not_accept_are_declined() {
    let mut hub = hub();
    let sessions_only = PolicyTable::new()
        .grant(&peer("hub"), "store/01/session/", Access::ReadWrite)
        .grant(&peer("hub"), "store/01/catalogue", Access::Read);
    let mut till = MemoryReplica::new(peer("till-01"), actor("till-01"), Arc::new(sessions_only));
    let mut round = till.start_round(&peer("hub"));
    let request = till
        .next_request(&mut round)
        .expect("request")
        .expect("first");
    let reply = hub.serve(&peer("till-01"), &request).expect("serve").reply;
    assert!(reply.entry(&doc(CATALOGUE)).is_some(), "the hub offers it");
    let outcome = till
        .apply_reply(&mut round, &peer("hub"), &reply)
        .expect("declining is not an error");
    assert_eq!(outcome.ignored_offers, vec![doc(CATALOGUE)]);
    assert!(till.doc_ids().is_empty());
    assert!(till.next_request(&mut round).expect("next").is_none());
}

#[test]
fn declined_offers_do_not_starve_a_limited_session() {
    let limits = RoundLimits {
        max_docs: 1,
        max_bytes: 1 << 20,
        max_round_trips: 16,
    };
    let mut hub =
        MemoryReplica::new(peer("hub"), actor("hub"), Arc::new(hub_policy())).with_limits(limits);
    for name in ["a", "b", "c", "d"] {
        hub.change(&doc(&format!("store/01/extra/{name}")), 1, |d| {
            d.put(automerge::ROOT, "x", 1_i64)?;
            Ok(())
        })
        .expect("hub change");
    }
    hub.change(&doc("store/01/zz-wanted"), 1, |d| {
        d.put(automerge::ROOT, "x", 2_i64)?;
        Ok(())
    })
    .expect("hub change");
    let picky = PolicyTable::new()
        .grant(&peer("hub"), "store/01/", Access::ReadWrite)
        .grant(&peer("hub"), "store/01/extra/", Access::Read);
    let mut till =
        MemoryReplica::new(peer("till-01"), actor("till-01"), Arc::new(picky)).with_limits(limits);
    let report = till.sync_with(&mut hub).expect("the session ends");
    println!("picky till: {report:?}");
    assert_eq!(
        till.heads(&doc("store/01/zz-wanted")),
        hub.heads(&doc("store/01/zz-wanted"))
    );
    assert!(till.doc_ids().iter().all(|d| !d.as_str().contains("extra")));
}
