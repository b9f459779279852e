//! Tests of the fiscal pipeline's storage: migration 2 on a version-1 file, outbox job kinds
//! and FD numbers, the register's next job, dead-letter requeue, the fiscal log ring and
//! refund sagas (including their atomicity with the rest of a batch).

use rusqlite::{params, Connection};

use crate::store::fiscal_log::MAX_LOG_MESSAGE_BYTES;
use crate::store::{
    schema, LogLevel, LogRecord, OutboxEntry, OutboxKind, OutboxStage, OutboxUpdate, RefundSaga,
    SagaState, Store, StoreError, WriteBatch, DB_FILE_NAME, MAX_FISCAL_LOG_ROWS,
};

fn job(id: &str, hlc: &str, kind: OutboxKind, created_at_ms: i64) -> OutboxEntry {
    OutboxEntry {
        receipt_id: id.to_owned(),
        kind,
        hlc: hlc.to_owned(),
        doc_id: "session-1".to_owned(),
        payload: b"{}".to_vec(),
        created_at_ms,
    }
}

fn receipt(id: &str, hlc: &str) -> OutboxEntry {
    job(id, hlc, OutboxKind::Receipt, 1_000)
}

fn moved(id: &str, stage: OutboxStage, fd_number: Option<u32>) -> OutboxUpdate {
    OutboxUpdate {
        receipt_id: id.to_owned(),
        stage,
        attempts: 20,
        last_error: Some("OFD 503".to_owned()),
        next_attempt_at_ms: Some(99_000),
        fiscal_result: None,
        fd_number,
        updated_at_ms: 5_000,
    }
}

fn saga(key: &str, created_at_ms: i64) -> RefundSaga {
    RefundSaga {
        idem_key: key.to_owned(),
        request_sha256: [3; 32],
        original_receipt_id: "r-original".to_owned(),
        request: br#"{"type":"refund"}"#.to_vec(),
        state: SagaState::Pending,
        attempts: 0,
        last_error: None,
        created_at_ms,
        updated_at_ms: created_at_ms,
    }
}

fn log(level: LogLevel, message: &str) -> LogRecord {
    LogRecord {
        at_ms: 1_000,
        level,
        stage: "register".to_owned(),
        job_id: Some("r1".to_owned()),
        message: message.to_owned(),
    }
}

fn open_with(entries: Vec<OutboxEntry>) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut batch = WriteBatch::new();
    for entry in entries {
        batch.enqueue_outbox(entry);
    }
    store.commit(batch).expect("enqueue");
    (dir, store)
}

fn ids(rows: Vec<crate::store::OutboxRow>) -> Vec<String> {
    rows.into_iter().map(|row| row.entry.receipt_id).collect()
}

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(DB_FILE_NAME);
    {
        let mut conn = Connection::open(&path).expect("open v1");
        schema::configure(&conn).expect("configure");
        assert_eq!(schema::migrate_to(&mut conn, &path, 0, 1).expect("v1"), 1);
        conn.execute(
            "INSERT INTO fiscal_outbox(receipt_id, hlc, doc_id, payload, stage, attempts,
                                       created_at_ms, updated_at_ms)
             VALUES ('old', 'h1', 'session-1', x'7b7d', 'dead_letter', 20, 10, 10)",
            [],
        )
        .expect("v1 row");
    }
    let store = Store::open(dir.path()).expect("migrate to the latest");
    assert_eq!(store.schema_version(), 2);
    let versions: Vec<i64> = store
        .conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .expect("versions");
    assert_eq!(versions, [1, 2]);
    let old = store.outbox_entry("old").expect("read").expect("kept");
    assert_eq!(
        (old.entry.kind, old.kind),
        (OutboxKind::Receipt, OutboxKind::Receipt)
    );
    assert_eq!((old.stage, old.fd_number), (OutboxStage::DeadLetter, None));
    // The CHECK added by ALTER TABLE is enforced.
    assert!(store
        .conn
        .execute("UPDATE fiscal_outbox SET kind = 'bogus'", [])
        .is_err());
    for table in ["fiscal_log", "refund_saga"] {
        let strict: i64 = store
            .conn
            .query_row(
                "SELECT strict FROM pragma_table_list WHERE name = ?1",
                params![table],
                |row| row.get(0),
            )
            .expect("table exists");
        assert_eq!(strict, 1, "{table} is STRICT");
    }
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn kinds_and_fd_numbers_round_trip() {
    let (_dir, mut store) = open_with(vec![
        job("z1", "h1", OutboxKind::CloseShift, 10),
        job("c1", "h2", OutboxKind::CashIn, 20),
        job("c2", "h3", OutboxKind::CashOut, 30),
    ]);
    for kind in OutboxKind::ALL {
        assert_eq!(OutboxKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(OutboxKind::parse("sale"), None);
    let mut batch = WriteBatch::new();
    batch.update_outbox(moved("z1", OutboxStage::Fiscalised, Some(4_000_000_000)));
    store.commit(batch).expect("fiscalised");
    let z1 = store.outbox_entry("z1").expect("read").expect("present");
    assert_eq!(z1.entry.kind, OutboxKind::CloseShift);
    assert_eq!(z1.fd_number, Some(4_000_000_000));
    assert_eq!(
        store
            .outbox_by_fd(4_000_000_000)
            .expect("by fd")
            .map(|r| r.entry.receipt_id),
        Some("z1".to_owned())
    );
    assert_eq!(store.outbox_by_fd(7).expect("by fd"), None);
    // Every field is replaced: an update without an FD number clears it.
    let mut batch = WriteBatch::new();
    batch.update_outbox(moved("z1", OutboxStage::Fiscalised, None));
    store.commit(batch).expect("cleared");
    assert_eq!(store.outbox_by_fd(4_000_000_000).expect("by fd"), None);
}

#[test]
fn by_fd_prefers_the_latest_job_when_a_new_fn_reuses_numbers() {
    let (_dir, mut store) = open_with(vec![receipt("old-fn", "h1"), receipt("new-fn", "h2")]);
    let mut batch = WriteBatch::new();
    batch
        .update_outbox(moved("old-fn", OutboxStage::Acknowledged, Some(1)))
        .update_outbox(moved("new-fn", OutboxStage::Fiscalised, Some(1)));
    store.commit(batch).expect("fiscalised");
    let row = store.outbox_by_fd(1).expect("by fd").expect("present");
    assert_eq!(row.entry.receipt_id, "new-fn");
}

#[test]
fn next_for_register_is_the_oldest_queued_or_intent_job_of_any_kind() {
    let (_dir, mut store) = open_with(vec![
        receipt("r3", "h3"),
        job("z2", "h2", OutboxKind::CloseShift, 20),
        receipt("r1", "h1"),
        receipt("r4", "h4"),
    ]);
    let next = |store: &Store| {
        store
            .outbox_next_for_register()
            .expect("next")
            .map(|row| row.entry.receipt_id)
    };
    assert_eq!(next(&store).as_deref(), Some("r1"));

    let mut batch = WriteBatch::new();
    batch.update_outbox(moved("r1", OutboxStage::Fiscalised, Some(1)));
    store.commit(batch).expect("r1 printed");
    assert_eq!(next(&store).as_deref(), Some("z2"), "other kinds too");

    let mut batch = WriteBatch::new();
    batch
        .update_outbox(moved("z2", OutboxStage::DeadLetter, None))
        .update_outbox(moved("r3", OutboxStage::RegisterIntent, None));
    store.commit(batch).expect("progress");
    assert_eq!(
        next(&store).as_deref(),
        Some("r3"),
        "dead letters are skipped, register intent is included"
    );

    let mut batch = WriteBatch::new();
    batch
        .update_outbox(moved("r3", OutboxStage::Acknowledged, Some(2)))
        .update_outbox(moved("r4", OutboxStage::Fiscalised, Some(3)));
    store.commit(batch).expect("all printed");
    assert_eq!(next(&store), None);
}

#[test]
fn stats_count_receipts_only() {
    let (_dir, mut store) = open_with(vec![
        job("z1", "h1", OutboxKind::CloseShift, 5),
        job("c1", "h2", OutboxKind::CashIn, 6),
        job("c2", "h3", OutboxKind::CashOut, 7),
        job("c3", "h4", OutboxKind::CashOut, 8),
        job("r1", "h5", OutboxKind::Receipt, 100),
        job("r2", "h6", OutboxKind::Receipt, 200),
    ]);
    let mut batch = WriteBatch::new();
    batch
        .update_outbox(moved("c2", OutboxStage::Acknowledged, Some(3)))
        .update_outbox(moved("c3", OutboxStage::DeadLetter, None))
        .update_outbox(moved("c1", OutboxStage::Fiscalised, Some(2)))
        .update_outbox(moved("r1", OutboxStage::Acknowledged, Some(4)));
    store.commit(batch).expect("progress");
    let stats = store.outbox_stats().expect("stats");
    assert_eq!(
        (
            stats.queued,
            stats.register_intent,
            stats.fiscalised,
            stats.acknowledged,
            stats.dead_letter
        ),
        (1, 0, 0, 1, 0)
    );
    assert_eq!(stats.unacknowledged(), 1);
    assert_eq!(stats.oldest_unacknowledged_created_at_ms, Some(200));
    assert_eq!(stats.other_jobs_pending, 2, "z1 queued and c1 fiscalised");
}

#[test]
fn dead_letters_are_requeued_by_what_the_register_already_did() {
    let (_dir, mut store) = open_with(vec![
        receipt("printed", "h2"),
        receipt("unprinted", "h1"),
        receipt("healthy", "h3"),
    ]);
    let mut batch = WriteBatch::new();
    batch
        .update_outbox(moved("printed", OutboxStage::DeadLetter, Some(17)))
        .update_outbox(moved("unprinted", OutboxStage::DeadLetter, None));
    store.commit(batch).expect("dead");
    assert_eq!(
        ids(store.outbox_dead_letters(10).expect("dlq")),
        ["unprinted", "printed"],
        "HLC order"
    );

    assert_eq!(
        store.outbox_requeue_dead_letters(9_000).expect("requeue"),
        2
    );
    assert!(store.outbox_dead_letters(10).expect("dlq").is_empty());
    let printed = store
        .outbox_entry("printed")
        .expect("read")
        .expect("present");
    assert_eq!(printed.stage, OutboxStage::Fiscalised);
    assert_eq!(printed.fd_number, Some(17));
    let unprinted = store
        .outbox_entry("unprinted")
        .expect("read")
        .expect("present");
    assert_eq!(unprinted.stage, OutboxStage::RegisterIntent);
    for row in [&printed, &unprinted] {
        assert_eq!(row.attempts, 0);
        assert_eq!(row.next_attempt_at_ms, None);
        assert_eq!(
            row.last_error.as_deref(),
            Some("OFD 503"),
            "kept for support"
        );
        assert_eq!(row.updated_at_ms, 9_000);
    }
    let healthy = store
        .outbox_entry("healthy")
        .expect("read")
        .expect("present");
    assert_eq!(
        (healthy.stage, healthy.updated_at_ms),
        (OutboxStage::Queued, 1_000)
    );
    assert_eq!(store.outbox_requeue_dead_letters(9_500).expect("again"), 0);
}

#[test]
fn the_log_keeps_the_newest_thousand_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let total = MAX_FISCAL_LOG_ROWS + 5;
    for i in 0..total {
        let level = if i % 10 == 0 {
            LogLevel::Error
        } else {
            LogLevel::Info
        };
        store
            .append_fiscal_log(&LogRecord {
                at_ms: i64::try_from(i).expect("small"),
                ..log(level, &format!("event {i}"))
            })
            .expect("append");
    }
    let rows: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM fiscal_log", [], |row| row.get(0))
        .expect("count");
    assert_eq!(rows, i64::try_from(MAX_FISCAL_LOG_ROWS).expect("small"));

    let all = store
        .fiscal_log(LogLevel::Info, MAX_FISCAL_LOG_ROWS)
        .expect("read all");
    assert_eq!(all.len(), MAX_FISCAL_LOG_ROWS);
    assert_eq!(
        all[0].message,
        format!("event {}", total - 1),
        "newest first"
    );
    assert_eq!(
        all[MAX_FISCAL_LOG_ROWS - 1].message,
        "event 5",
        "oldest five trimmed"
    );

    let errors = store.fiscal_log(LogLevel::Error, 3).expect("errors");
    let messages: Vec<&str> = errors.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["event 1000", "event 990", "event 980"]);
    assert!(errors.iter().all(|r| r.level == LogLevel::Error));
    assert_eq!(errors[0].job_id.as_deref(), Some("r1"));

    for limit in [0, MAX_FISCAL_LOG_ROWS + 1] {
        assert!(matches!(
            store.fiscal_log(LogLevel::Info, limit),
            Err(StoreError::InvalidInput(_))
        ));
    }
}

#[test]
fn log_levels_filter_and_messages_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    for (level, message) in [
        (LogLevel::Info, "printed"),
        (LogLevel::Warn, "OFD timeout"),
        (LogLevel::Error, "dead letter"),
    ] {
        store
            .append_fiscal_log(&log(level, message))
            .expect("append");
    }
    let warn: Vec<LogLevel> = store
        .fiscal_log(LogLevel::Warn, 10)
        .expect("warn")
        .into_iter()
        .map(|r| r.level)
        .collect();
    assert_eq!(warn, [LogLevel::Error, LogLevel::Warn]);

    // 'ж' is two bytes: 2,049 of them are 4,098 bytes, cut to 2,048 letters.
    let long = "ж".repeat(MAX_LOG_MESSAGE_BYTES / 2 + 1);
    store
        .append_fiscal_log(&LogRecord {
            job_id: None,
            ..log(LogLevel::Error, &long)
        })
        .expect("long message");
    let newest = store.fiscal_log(LogLevel::Info, 1).expect("read").remove(0);
    assert_eq!(newest.message, "ж".repeat(MAX_LOG_MESSAGE_BYTES / 2));
    assert_eq!(newest.job_id, None);

    for bad in [
        LogRecord {
            stage: String::new(),
            ..log(LogLevel::Info, "x")
        },
        LogRecord {
            job_id: Some("a\nb".to_owned()),
            ..log(LogLevel::Info, "x")
        },
    ] {
        assert!(matches!(
            store.append_fiscal_log(&bad),
            Err(StoreError::InvalidInput(_))
        ));
    }
    assert_eq!(store.fiscal_log(LogLevel::Info, 10).expect("read").len(), 4);
}

#[test]
fn sagas_insert_refuse_duplicates_update_and_list_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut batch = WriteBatch::new();
    batch
        .put_refund_saga(saga("k3", 300))
        .put_refund_saga(saga("k1", 100))
        .put_refund_saga(saga("k2", 200));
    store.commit(batch).expect("insert");
    assert_eq!(
        store.refund_saga("k1").expect("read"),
        Some(saga("k1", 100))
    );
    assert_eq!(store.refund_saga("nope").expect("read"), None);

    let mut duplicate = WriteBatch::new();
    duplicate.put_refund_saga(RefundSaga {
        attempts: 9,
        ..saga("k1", 999)
    });
    let error = store.commit(duplicate).expect_err("duplicate");
    assert!(
        matches!(&error, StoreError::Duplicate { what: "refund saga", key } if key == "k1"),
        "{error}"
    );
    assert_eq!(
        store.refund_saga("k1").expect("read"),
        Some(saga("k1", 100))
    );

    let mut progress = WriteBatch::new();
    progress
        .update_refund_saga("k1", SagaState::Done, 2, None, 1_000)
        .update_refund_saga(
            "k3",
            SagaState::Pending,
            1,
            Some("original unknown".into()),
            1_100,
        );
    store.commit(progress).expect("update");
    let k1 = store.refund_saga("k1").expect("read").expect("present");
    assert_eq!(
        (k1.state, k1.attempts, k1.updated_at_ms),
        (SagaState::Done, 2, 1_000)
    );
    assert_eq!(k1.created_at_ms, 100, "creation time is kept");
    let pending: Vec<String> = store
        .refund_sagas_pending(10)
        .expect("pending")
        .into_iter()
        .map(|s| s.idem_key)
        .collect();
    assert_eq!(pending, ["k2", "k3"], "oldest first, done ones left out");
    let k3 = store.refund_saga("k3").expect("read").expect("present");
    assert_eq!(k3.last_error.as_deref(), Some("original unknown"));
    assert_eq!(store.refund_sagas_pending(1).expect("limit").len(), 1);
    assert!(matches!(
        store.refund_sagas_pending(1_000_000),
        Err(StoreError::InvalidInput(_))
    ));

    let mut missing = WriteBatch::new();
    missing.update_refund_saga("nope", SagaState::Failed, 1, None, 5);
    assert!(matches!(
        store.commit(missing),
        Err(StoreError::NotFound {
            what: "refund saga",
            ..
        })
    ));
}

#[test]
fn invalid_sagas_are_refused_before_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let bad: Vec<WriteBatch> = vec![
        {
            let mut b = WriteBatch::new();
            b.put_refund_saga(RefundSaga {
                idem_key: String::new(),
                ..saga("k", 1)
            });
            b
        },
        {
            let mut b = WriteBatch::new();
            b.put_refund_saga(RefundSaga {
                original_receipt_id: "x".repeat(300),
                ..saga("k", 1)
            });
            b
        },
        {
            let mut b = WriteBatch::new();
            b.update_refund_saga("k", SagaState::Failed, 1, Some("e".repeat(5_000)), 1);
            b
        },
    ];
    for batch in bad {
        assert!(matches!(
            store.commit(batch),
            Err(StoreError::InvalidInput(_))
        ));
    }
    assert!(store.poisoned().is_none());
}

#[test]
fn a_failing_op_leaves_saga_and_outbox_untouched() {
    let (_dir, mut store) = open_with(vec![receipt("r1", "h1")]);
    let mut first = WriteBatch::new();
    first.put_refund_saga(saga("k1", 100));
    store.commit(first).expect("saga");
    let r1_before = store.outbox_entry("r1").expect("read");
    let k1_before = store.refund_saga("k1").expect("read");

    // Finishing the saga together with its refund's outbox row, but the last op fails.
    let mut batch = WriteBatch::new();
    batch
        .update_refund_saga("k1", SagaState::Done, 1, None, 2_000)
        .put_refund_saga(saga("k2", 200))
        .enqueue_outbox(receipt("refund-1", "h2"))
        .update_outbox(moved("r1", OutboxStage::Fiscalised, Some(5)))
        .update_outbox(moved("missing", OutboxStage::Fiscalised, Some(6)));
    assert!(matches!(
        store.commit(batch),
        Err(StoreError::NotFound {
            what: "outbox entry",
            ..
        })
    ));
    assert_eq!(store.refund_saga("k1").expect("read"), k1_before);
    assert_eq!(store.refund_saga("k2").expect("read"), None);
    assert_eq!(store.outbox_entry("refund-1").expect("read"), None);
    assert_eq!(store.outbox_entry("r1").expect("read"), r1_before);

    // And the other way round: a duplicate saga undoes the outbox writes before it.
    let mut batch = WriteBatch::new();
    batch
        .enqueue_outbox(receipt("refund-2", "h3"))
        .put_refund_saga(saga("k1", 300));
    assert!(matches!(
        store.commit(batch),
        Err(StoreError::Duplicate {
            what: "refund saga",
            ..
        })
    ));
    assert_eq!(store.outbox_entry("refund-2").expect("read"), None);
    assert!(store.poisoned().is_none());
}

#[test]
fn corrupt_kinds_and_fd_numbers_are_reported() {
    let (_dir, store) = open_with(vec![receipt("r1", "h1")]);
    store
        .conn
        .execute("UPDATE fiscal_outbox SET fd_number = -1", [])
        .expect("update");
    assert!(matches!(
        store.outbox_entry("r1"),
        Err(StoreError::Corrupt(_))
    ));
}
