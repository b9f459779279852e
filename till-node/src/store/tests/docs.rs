//! Tests of document storage with real Automerge documents: round trip through a reopened
//! store, compaction, retention, and a week of session documents (timed, printed, not
//! asserted: machines are noisy).

use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ReadDoc, ROOT};

use crate::store::{ChunkId, Store, StoreError, WriteBatch};

fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

/// Adds one receipt-sized change (≈0.5 KB chunk, like a real sale) and returns its chunk.
fn add_receipt(doc: &mut AutoCommit, receipts: &automerge::ObjId, n: usize) -> Vec<u8> {
    let body = format!(
        r#"{{"id":"r-{n:06}","lines":[{{"sku":"FRAME-{n}","qty":1000,"price":1250000,"vat":"vat20","sum":1250000}},{{"sku":"LENS-{n}","qty":2000,"price":450000,"vat":"vat20","sum":900000}}],"payments":[{{"kind":"card","amount":2150000}}],"total":2150000}}"#
    );
    doc.put(receipts, format!("r-{n:06}"), body)
        .expect("put receipt");
    doc.commit();
    doc.save_incremental()
}

fn new_session_doc(actor: &str) -> (AutoCommit, automerge::ObjId, Vec<u8>) {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
    let receipts = doc
        .put_object(ROOT, "receipts", ObjType::Map)
        .expect("receipts map");
    doc.commit();
    let first = doc.save_incremental();
    (doc, receipts, first)
}

fn commit_one(store: &mut Store, doc_id: &str, chunk: Vec<u8>) {
    let mut batch = WriteBatch::new();
    batch.append_chunk(doc_id, chunk);
    store.commit(batch).expect("commit chunk");
}

#[test]
fn five_hundred_chunks_round_trip_through_a_reopened_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut doc, receipts, first) = new_session_doc("till-01");
    let mut store = Store::open(dir.path()).expect("open");
    commit_one(&mut store, "session-1", first);
    for n in 1..500 {
        let chunk = add_receipt(&mut doc, &receipts, n);
        assert!(!chunk.is_empty());
        commit_one(&mut store, "session-1", chunk);
    }
    let heads = doc.get_heads();
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    let docs = store.load_docs().expect("load");
    assert_eq!(docs.len(), 1);
    let stored = &docs[0];
    assert_eq!(stored.doc_id, "session-1");
    assert_eq!(stored.chunk_count, 500);
    assert_eq!(stored.snapshot_len, 0);
    assert_eq!(
        store.chunks_since_snapshot("session-1").expect("count"),
        500
    );
    assert_eq!(
        stored.last_chunk_id,
        store.last_chunk_id("session-1").expect("last")
    );
    let mut loaded = AutoCommit::load(&stored.bytes).expect("automerge load");
    assert_eq!(loaded.get_heads(), heads);
    let receipts_obj = loaded
        .get(ROOT, "receipts")
        .expect("get")
        .expect("present")
        .1;
    assert_eq!(loaded.length(&receipts_obj), 499);
    assert_eq!(
        store.load_doc("session-1").expect("load one").as_ref(),
        Some(stored)
    );
    assert_eq!(store.load_doc("absent").expect("load none"), None);
}

#[test]
fn compaction_keeps_heads_and_later_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let (mut doc, receipts, first) = new_session_doc("till-01");
    commit_one(&mut store, "s", first);
    for n in 1..100 {
        commit_one(&mut store, "s", add_receipt(&mut doc, &receipts, n));
    }
    // Another document's chunks must survive compaction of "s".
    let (mut other, other_receipts, other_first) = new_session_doc("till-02");
    commit_one(&mut store, "other", other_first);
    commit_one(
        &mut store,
        "other",
        add_receipt(&mut other, &other_receipts, 1),
    );

    let up_to = store.last_chunk_id("s").expect("last").expect("has chunks");
    let heads = doc.get_heads();
    let deleted = store
        .compact("s", &doc.save(), &encode_heads(&heads), Some(up_to))
        .expect("compact");
    assert_eq!(deleted, 100);
    assert_eq!(store.chunks_since_snapshot("s").expect("count"), 0);
    assert_eq!(store.chunks_since_snapshot("other").expect("count"), 2);

    // Reload as the daemon would: load, set the actor again, write with save_after(heads).
    let stored = store.load_doc("s").expect("load").expect("present");
    assert_eq!(
        stored.snapshot_heads.as_deref(),
        Some(encode_heads(&heads).as_slice())
    );
    let mut reloaded = AutoCommit::load(&stored.bytes)
        .expect("load snapshot")
        .with_actor(ActorId::from("till-01".as_bytes()));
    assert_eq!(reloaded.get_heads(), heads);
    let saved_heads = reloaded.get_heads();
    let reloaded_receipts = reloaded
        .get(ROOT, "receipts")
        .expect("get")
        .expect("present")
        .1;
    reloaded
        .put(&reloaded_receipts, "r-after", "after compaction")
        .expect("put");
    reloaded.commit();
    let tail = reloaded.save_after(&saved_heads);
    assert!(
        tail.len() < 1024,
        "save_after is one change, not the history"
    );
    commit_one(&mut store, "s", tail);
    let final_heads = reloaded.get_heads();
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    let stored = store.load_doc("s").expect("load").expect("present");
    assert_eq!(stored.chunk_count, 1);
    assert!(stored.snapshot_len > 0);
    let mut again = AutoCommit::load(&stored.bytes).expect("snapshot + chunk");
    assert_eq!(again.get_heads(), final_heads);
    let other_doc = store.load_doc("other").expect("load").expect("present");
    assert_eq!(
        AutoCommit::load(&other_doc.bytes)
            .expect("other")
            .get_heads(),
        other.get_heads()
    );
}

#[test]
fn stale_or_impossible_compactions_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let (mut doc, receipts, first) = new_session_doc("till-01");
    commit_one(&mut store, "s", first);
    let early = store.last_chunk_id("s").expect("last").expect("some");
    commit_one(&mut store, "s", add_receipt(&mut doc, &receipts, 1));
    let late = store.last_chunk_id("s").expect("last").expect("some");
    let snapshot = doc.save();

    let beyond = ChunkId(late.0 + 1000);
    let error = store
        .compact("s", &snapshot, b"h", Some(beyond))
        .expect_err("chunk beyond the document");
    assert!(matches!(error, StoreError::InvalidInput(_)), "{error}");
    assert!(matches!(
        store.compact("s", &[], b"h", Some(late)),
        Err(StoreError::InvalidInput(_))
    ));

    store
        .compact("s", &snapshot, b"h", Some(late))
        .expect("compact");
    let error = store
        .compact("s", &snapshot, b"h", Some(early))
        .expect_err("older than the stored snapshot");
    assert!(
        matches!(error, StoreError::StaleCompaction { .. }),
        "{error}"
    );
    assert!(matches!(
        store.compact("s", &snapshot, b"h", None),
        Err(StoreError::StaleCompaction { .. })
    ));
    // Compacting again at the same point (no new chunks) is fine.
    assert_eq!(
        store
            .compact("s", &snapshot, b"h", Some(late))
            .expect("again"),
        0
    );
    assert!(store.poisoned().is_none(), "refusals do not poison");

    // A document built in memory can be stored as a snapshot directly.
    let (mut fresh, _, _) = new_session_doc("till-09");
    let heads = fresh.get_heads();
    store
        .compact("fresh", &fresh.save(), &encode_heads(&heads), None)
        .expect("first snapshot");
    let stored = store.load_doc("fresh").expect("load").expect("present");
    assert_eq!(stored.chunk_count, 0);
    assert_eq!(
        AutoCommit::load(&stored.bytes).expect("load").get_heads(),
        heads
    );
}

#[test]
fn drop_doc_removes_snapshot_chunks_and_sync_states() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let (mut doc, receipts, first) = new_session_doc("till-01");
    let mut batch = WriteBatch::new();
    batch
        .append_chunk("old", first)
        .put_sync_state("old", "hub", vec![1, 2, 3])
        .append_chunk("keep", add_receipt(&mut doc, &receipts, 1))
        .put_sync_state("keep", "hub", vec![4]);
    store.commit(batch).expect("commit");
    store
        .compact("old", &doc.save(), b"h", None)
        .expect("snapshot");

    assert!(store.drop_doc("old").expect("drop"));
    assert!(!store.drop_doc("old").expect("drop again"), "nothing left");
    assert_eq!(store.load_doc("old").expect("load"), None);
    assert_eq!(store.sync_state("old", "hub").expect("read"), None);
    assert_eq!(
        store.sync_state("keep", "hub").expect("read"),
        Some(vec![4])
    );
    assert_eq!(store.doc_ids().expect("ids"), vec!["keep".to_owned()]);
}

/// A week of a till: two shifts a day, 300 receipts each, never compacted (the worst case
/// before shift-close compaction), then a restart.
#[test]
fn seven_days_of_sessions_reload() {
    const SESSIONS: usize = 14;
    const RECEIPTS: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut expected_heads = Vec::new();
    let write_started = Instant::now();
    for session in 0..SESSIONS {
        let doc_id = format!("session-T1-{session:02}");
        let (mut doc, receipts, first) = new_session_doc("till-01");
        // One batch per session keeps the test fast; every chunk is still its own row.
        let mut batch = WriteBatch::new();
        batch.append_chunk(doc_id.clone(), first);
        for n in 1..RECEIPTS {
            batch.append_chunk(doc_id.clone(), add_receipt(&mut doc, &receipts, n));
        }
        store.commit(batch).expect("commit session");
        expected_heads.push((doc_id, doc.get_heads()));
    }
    let write_ms = write_started.elapsed().as_millis();
    drop(store);

    let open_started = Instant::now();
    let store = Store::open(dir.path()).expect("reopen");
    let open_ms = open_started.elapsed().as_millis();
    let load_started = Instant::now();
    let docs = store.load_docs().expect("load");
    let load_docs_ms = load_started.elapsed().as_millis();
    let total_bytes: usize = docs.iter().map(|d| d.bytes.len()).sum();

    let automerge_started = Instant::now();
    assert_eq!(docs.len(), SESSIONS);
    for (stored, (doc_id, heads)) in docs.iter().zip(&expected_heads) {
        assert_eq!(&stored.doc_id, doc_id);
        assert_eq!(stored.chunk_count, RECEIPTS);
        let mut doc = AutoCommit::load(&stored.bytes).expect("load session");
        assert_eq!(&doc.get_heads(), heads);
    }
    let automerge_ms = automerge_started.elapsed().as_millis();
    println!(
        "7 days ({SESSIONS} sessions x {RECEIPTS} chunks, {} KiB): write {write_ms} ms, \
         open {open_ms} ms, load_docs {load_docs_ms} ms, AutoCommit::load all {automerge_ms} ms",
        total_bytes / 1024
    );
}
