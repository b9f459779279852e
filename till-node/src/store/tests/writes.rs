//! Tests of the write path: durability settings, batch atomicity, poisoning after a storage
//! failure, idempotency, HLC, meta and the fiscal outbox.

use rusqlite::params;

use crate::store::{
    IdempotencyRecord, OutboxEntry, OutboxKind, OutboxStage, OutboxUpdate, Store, StoreError,
    WriteBatch, MAX_BATCH_OPS,
};

fn record(key: &str, created_at_ms: i64) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.to_owned(),
        request_sha256: [7; 32],
        response_status: 201,
        response_body: br#"{"receipt_id":"r1"}"#.to_vec(),
        created_at_ms,
    }
}

fn entry(receipt_id: &str, hlc: &str) -> OutboxEntry {
    OutboxEntry {
        receipt_id: receipt_id.to_owned(),
        kind: OutboxKind::Receipt,
        hlc: hlc.to_owned(),
        doc_id: "session-1".to_owned(),
        payload: b"{}".to_vec(),
        created_at_ms: 1_000,
    }
}

fn update(receipt_id: &str, stage: OutboxStage, at_ms: i64) -> OutboxUpdate {
    OutboxUpdate {
        receipt_id: receipt_id.to_owned(),
        stage,
        attempts: 1,
        last_error: None,
        next_attempt_at_ms: None,
        fiscal_result: None,
        fd_number: None,
        updated_at_ms: at_ms,
    }
}

fn chunk_rows(store: &Store) -> i64 {
    store
        .conn
        .query_row("SELECT COUNT(*) FROM doc_chunk", [], |row| row.get(0))
        .expect("count chunks")
}

#[test]
fn wal_and_full_are_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let report = store.durability().expect("report");
    assert_eq!(report.journal_mode, "wal");
    assert_eq!(report.synchronous, 2, "FULL");
    assert!(report.foreign_keys);
    let mut batch = WriteBatch::new();
    batch.put_meta("k", b"v".to_vec());
    store.commit(batch).expect("commit");
    assert!(
        dir.path().join("till.db-wal").exists(),
        "writes go through the WAL"
    );
    // journal_mode=WAL is persistent: another connection sees it in the file itself.
    let other = rusqlite::Connection::open(store.path()).expect("second connection");
    let mode: String = other
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::AlreadyOpen { .. })
    ));
    drop(store);
    Store::open(dir.path()).expect("reopen after the first closed");
}

#[test]
fn a_batch_writes_everything_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut batch = WriteBatch::new();
    batch
        .append_chunk("session-1", vec![1, 2, 3])
        .put_sync_state("session-1", "hub", vec![9; 34])
        .put_idempotency(record("key-1", 5_000))
        .put_hlc_high_water("0001763900000000-00001-T1")
        .put_meta("actor", b"till-01".to_vec())
        .enqueue_outbox(entry("r1", "0001763900000000-00001-T1"));
    assert_eq!(batch.len(), 6);
    store.commit(batch).expect("commit");
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.chunks_since_snapshot("session-1").expect("count"), 1);
    assert_eq!(
        store.sync_state("session-1", "hub").expect("read"),
        Some(vec![9; 34])
    );
    assert_eq!(
        store.idempotency("key-1").expect("read"),
        Some(record("key-1", 5_000))
    );
    assert_eq!(store.idempotency("key-2").expect("read"), None);
    assert_eq!(
        store.hlc_high_water().expect("read").as_deref(),
        Some("0001763900000000-00001-T1")
    );
    assert_eq!(
        store.meta_string("actor").expect("read").as_deref(),
        Some("till-01")
    );
    let row = store.outbox_entry("r1").expect("read").expect("present");
    assert_eq!(row.stage, OutboxStage::Queued);
    assert_eq!(row.entry, entry("r1", "0001763900000000-00001-T1"));
}

#[test]
fn a_batch_with_a_duplicate_key_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut first = WriteBatch::new();
    first.put_idempotency(record("sale-1", 1));
    store.commit(first).expect("first sale");

    // A retried sale: chunk, outbox row, then the idempotency key that already exists.
    let mut retry = WriteBatch::new();
    retry
        .append_chunk("session-1", vec![1; 400])
        .enqueue_outbox(entry("r1", "h1"))
        .put_meta("m", b"x".to_vec())
        .put_idempotency(record("sale-1", 2));
    let error = store.commit(retry).expect_err("duplicate key");
    assert!(
        matches!(&error, StoreError::Duplicate { what: "idempotency key", key } if key == "sale-1"),
        "{error}"
    );
    assert_eq!(chunk_rows(&store), 0, "the chunk was rolled back");
    assert_eq!(store.outbox_entry("r1").expect("read"), None);
    assert_eq!(store.meta("m").expect("read"), None);
    assert_eq!(
        store.idempotency("sale-1").expect("read"),
        Some(record("sale-1", 1))
    );

    // Duplicate inside one batch, and a missing outbox row: also rolled back whole.
    let mut twice = WriteBatch::new();
    twice
        .append_chunk("session-1", vec![2; 10])
        .enqueue_outbox(entry("r2", "h2"))
        .enqueue_outbox(entry("r2", "h2"));
    assert!(matches!(
        store.commit(twice),
        Err(StoreError::Duplicate {
            what: "outbox entry",
            ..
        })
    ));
    let mut missing = WriteBatch::new();
    missing
        .append_chunk("session-1", vec![3; 10])
        .update_outbox(update("nope", OutboxStage::Fiscalised, 5));
    assert!(matches!(
        store.commit(missing),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(chunk_rows(&store), 0);

    assert!(
        store.poisoned().is_none(),
        "a refused batch does not poison"
    );
    let mut good = WriteBatch::new();
    good.append_chunk("session-1", vec![4; 10]);
    store.commit(good).expect("later writes work");
    assert_eq!(chunk_rows(&store), 1);
}

#[test]
fn invalid_input_is_refused_before_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let bad_batches: Vec<WriteBatch> = vec![
        {
            let mut b = WriteBatch::new();
            b.append_chunk("", vec![1]);
            b
        },
        {
            let mut b = WriteBatch::new();
            b.append_chunk("doc", Vec::new());
            b
        },
        {
            let mut b = WriteBatch::new();
            b.put_idempotency(IdempotencyRecord {
                response_status: 700,
                ..record("k", 1)
            });
            b
        },
        {
            let mut b = WriteBatch::new();
            for _ in 0..=MAX_BATCH_OPS {
                b.delete_meta("k");
            }
            b
        },
        {
            let mut b = WriteBatch::new();
            b.update_outbox(OutboxUpdate {
                last_error: Some("e".repeat(5000)),
                ..update("r", OutboxStage::Queued, 1)
            });
            b
        },
    ];
    for batch in bad_batches {
        assert!(matches!(
            store.commit(batch),
            Err(StoreError::InvalidInput(_))
        ));
    }
    store
        .commit(WriteBatch::new())
        .expect("empty batch is a no-op");
    assert!(store.poisoned().is_none());
}

/// Simulates a full disk: SQLite's `max_page_count` makes page allocation fail with
/// SQLITE_FULL, the same error a full file system gives.
#[test]
fn a_storage_failure_poisons_writes_but_not_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut batch = WriteBatch::new();
    batch.put_meta("before", b"1".to_vec());
    store.commit(batch).expect("commit");
    let pages: i64 = store
        .conn
        .pragma_query_value(None, "page_count", |row| row.get(0))
        .expect("page_count");
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .expect("cap the file");

    let mut big = WriteBatch::new();
    big.append_chunk("session-1", vec![0xAB; 256 * 1024]);
    let error = store.commit(big).expect_err("disk full");
    assert!(error.is_storage_failure(), "{error}");
    assert!(
        matches!(&error, StoreError::Io { source, .. }
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)),
        "{error}"
    );
    assert!(store.poisoned().is_some());

    // Even with room again, this store does not write any more.
    store
        .conn
        .pragma_update(None, "max_page_count", 1_000_000_000i64)
        .expect("uncap");
    let mut small = WriteBatch::new();
    small.put_meta("after", b"2".to_vec());
    assert!(matches!(
        store.commit(small),
        Err(StoreError::PreviousIo { .. })
    ));
    assert!(matches!(
        store.purge_idempotency(0),
        Err(StoreError::PreviousIo { .. })
    ));
    assert!(matches!(
        store.drop_doc("x"),
        Err(StoreError::PreviousIo { .. })
    ));
    assert!(matches!(
        store.compact("x", b"s", b"h", None),
        Err(StoreError::PreviousIo { .. })
    ));
    // Reads still work, and nothing of the failed batch is visible.
    assert_eq!(
        store.meta("before").expect("read").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(chunk_rows(&store), 0);
    assert_eq!(store.meta("after").expect("read"), None);
    drop(store);

    let mut reopened = Store::open(dir.path()).expect("a restart clears the poison");
    let mut batch = WriteBatch::new();
    batch.put_meta("after", b"2".to_vec());
    reopened.commit(batch).expect("writes again");
    assert_eq!(reopened.integrity_check().expect("check"), "ok");
}

#[test]
fn hlc_high_water_never_goes_backwards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    for hlc in [
        "0001763900000500-00000-T1",
        "0001763900000100-00007-T1",
        "0001763900000500-00001-T1",
    ] {
        let mut batch = WriteBatch::new();
        batch.put_hlc_high_water(hlc);
        store.commit(batch).expect("commit");
    }
    assert_eq!(
        store.hlc_high_water().expect("read").as_deref(),
        Some("0001763900000500-00001-T1")
    );
}

#[test]
fn idempotency_records_are_purged_by_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut batch = WriteBatch::new();
    batch
        .put_idempotency(record("old", 1_000))
        .put_idempotency(record("new", 9_000));
    store.commit(batch).expect("commit");
    assert_eq!(store.purge_idempotency(5_000).expect("purge"), 1);
    assert_eq!(store.idempotency("old").expect("read"), None);
    assert!(store.idempotency("new").expect("read").is_some());
}

#[test]
fn outbox_drains_in_hlc_order_and_counts_stages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut batch = WriteBatch::new();
    for (id, hlc, created) in [
        ("r3", "h3", 300),
        ("r1", "h1", 100),
        ("r2", "h2", 200),
        ("r4", "h4", 400),
    ] {
        batch.enqueue_outbox(OutboxEntry {
            created_at_ms: created,
            ..entry(id, hlc)
        });
    }
    store.commit(batch).expect("enqueue");
    let order: Vec<String> = store
        .outbox_to_drain(10)
        .expect("drain")
        .into_iter()
        .map(|row| row.entry.receipt_id)
        .collect();
    assert_eq!(order, ["r1", "r2", "r3", "r4"]);

    let mut progress = WriteBatch::new();
    progress
        .update_outbox(OutboxUpdate {
            fiscal_result: Some(b"FD 17".to_vec()),
            ..update("r1", OutboxStage::Acknowledged, 10_000)
        })
        .update_outbox(update("r2", OutboxStage::DeadLetter, 10_000))
        .update_outbox(OutboxUpdate {
            attempts: 3,
            last_error: Some("OFD 503".to_owned()),
            next_attempt_at_ms: Some(20_000),
            ..update("r3", OutboxStage::Fiscalised, 10_000)
        });
    store.commit(progress).expect("progress");

    let stats = store.outbox_stats().expect("stats");
    assert_eq!(
        (
            stats.queued,
            stats.fiscalised,
            stats.acknowledged,
            stats.dead_letter
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.unacknowledged(), 3);
    assert_eq!(stats.oldest_unacknowledged_created_at_ms, Some(200));
    let drain: Vec<String> = store
        .outbox_to_drain(10)
        .expect("drain")
        .into_iter()
        .map(|row| row.entry.receipt_id)
        .collect();
    assert_eq!(
        drain,
        ["r3", "r4"],
        "acknowledged and dead letters are not drained"
    );
    let r3 = store.outbox_entry("r3").expect("read").expect("present");
    assert_eq!(
        (r3.attempts, r3.last_error.as_deref()),
        (3, Some("OFD 503"))
    );
    let dead = store
        .outbox_in_stage(OutboxStage::DeadLetter, 10)
        .expect("dlq");
    assert_eq!(dead.len(), 1);
    assert!(matches!(
        store.outbox_to_drain(1_000_000),
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(store.outbox_to_drain(1).expect("limit").len(), 1);

    assert_eq!(
        store.purge_acknowledged_outbox(5_000).expect("purge"),
        0,
        "too recent"
    );
    assert_eq!(store.purge_acknowledged_outbox(50_000).expect("purge"), 1);
    assert_eq!(store.outbox_entry("r1").expect("read"), None);
}

#[test]
fn corrupt_rows_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    store
        .conn
        .execute(
            "INSERT INTO meta(key, value) VALUES ('bin', ?1)",
            params![vec![0xFFu8, 0xFE]],
        )
        .expect("insert");
    assert!(matches!(
        store.meta_string("bin"),
        Err(StoreError::Corrupt(_))
    ));
    let mut batch = WriteBatch::new();
    batch.enqueue_outbox(entry("r1", "h1"));
    store.commit(batch).expect("enqueue");
    // Simulate a bad attempts value written by a buggy older build.
    store
        .conn
        .execute("UPDATE fiscal_outbox SET attempts = 1 << 40", [])
        .expect("update");
    assert!(matches!(
        store.outbox_entry("r1"),
        Err(StoreError::Corrupt(_))
    ));
}
