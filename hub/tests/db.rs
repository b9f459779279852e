//! Storage-layer tests, each run on SQLite and (when `DATABASE_URL` is set) PostgreSQL:
//! migrations, document storage and safe compaction under concurrency, sync states, peer
//! status, devices, users, login sessions and projections.

mod support;
mod write_support;

use automerge::{transaction::Transactable, ActorId, AutoCommit, ReadDoc, ROOT};
use crdt_model::Kopecks;
use hub::auth_types::Role;
use hub::db::{
    BackendKind, Db, DbConfig, DbError, DocMeta, PaymentRow, PeerDocStatus, ReceiptKind,
    ReceiptRow, SessionRow, SCHEMA_VERSION,
};
use std::collections::BTreeSet;
use std::time::Duration;
use support::for_each_backend;
use write_support::WriteOnce;

fn meta(store: &str, till: Option<&str>) -> DocMeta {
    DocMeta {
        store: store.into(),
        kind: "session".into(),
        till: till.map(Into::into),
    }
}

/// One Automerge change chunk that sets `key` = `value` in a fresh document of its own actor.
fn change_chunk(key: &str, value: i64) -> Vec<u8> {
    let mut doc = AutoCommit::new().with_actor(ActorId::random());
    doc.put(ROOT, key, value).expect("put");
    doc.commit();
    doc.save_incremental()
}

fn keys_of(bytes: &[u8]) -> BTreeSet<String> {
    let doc = AutoCommit::load(bytes).expect("stored bytes load as an Automerge document");
    doc.keys(ROOT).collect()
}

/// Locks, loads and compacts `doc_id` in one transaction; returns how many chunks it folded.
async fn compact_once(db: &Db, doc_id: &str) -> usize {
    let mut tx = db.begin().await.expect("begin");
    tx.lock_doc(doc_id).await.expect("lock");
    let Some(stored) = tx.load_doc(doc_id).await.expect("load") else {
        return 0;
    };
    if stored.chunk_ids.is_empty() {
        return 0;
    }
    let mut doc = AutoCommit::load(&stored.bytes).expect("load automerge");
    let heads = doc.get_heads();
    let snapshot = doc.save();
    tx.compact(doc_id, &snapshot, &heads, &stored.chunk_ids)
        .await
        .expect("compact");
    tx.commit().await.expect("commit");
    stored.chunk_ids.len()
}

#[tokio::test]
async fn migrations_run_concurrently_and_twice() {
    for_each_backend("migrations", |config| async move {
        let (a, b) = tokio::join!(Db::connect(&config), Db::connect(&config));
        let (a, b) = (a.expect("first connect"), b.expect("second connect"));
        assert_eq!(a.schema_version().await.expect("version"), SCHEMA_VERSION);
        a.close().await;
        b.close().await;
        let again = Db::connect(&config).await.expect("third connect");
        assert_eq!(
            again.schema_version().await.expect("version"),
            SCHEMA_VERSION
        );
        again.ping().await.expect("ping");
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn documents_append_load_compact() {
    for_each_backend("documents", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        let doc_id = "session/S1/T1/a";
        let m = meta("S1", Some("T1"));

        let mut tx = db.begin().await.expect("begin");
        tx.lock_doc(doc_id).await.expect("lock");
        assert!(tx.load_doc(doc_id).await.expect("load").is_none());
        let first = tx
            .append_changes(doc_id, &m, &change_chunk("a", 1))
            .await
            .expect("append");
        let second = tx
            .append_changes(doc_id, &m, &change_chunk("b", 2))
            .await
            .expect("append");
        assert!(second > first, "chunk ids grow");
        tx.commit().await.expect("commit");

        let stored = db.load_doc(doc_id).await.expect("load").expect("exists");
        assert_eq!(stored.chunk_ids, vec![first, second]);
        assert_eq!(stored.meta, m);
        assert!(stored.snapshot_heads.is_empty());
        assert_eq!(
            keys_of(&stored.bytes),
            BTreeSet::from(["a".into(), "b".into()])
        );

        // A rolled-back append leaves nothing behind.
        let mut tx = db.begin().await.expect("begin");
        tx.append_changes(doc_id, &m, &change_chunk("gone", 0))
            .await
            .expect("append");
        tx.rollback().await.expect("rollback");
        let stored = db.load_doc(doc_id).await.expect("load").expect("exists");
        assert_eq!(stored.chunk_ids.len(), 2);

        // Metadata is fixed at creation.
        let mut tx = db.begin().await.expect("begin");
        let err = tx
            .append_changes(doc_id, &meta("S2", Some("T1")), &change_chunk("x", 0))
            .await
            .expect_err("another store");
        assert!(matches!(err, DbError::MetaMismatch { .. }), "{err}");
        assert!(err.is_client_error());
        let err = tx.append_changes(doc_id, &m, &[]).await.expect_err("empty");
        assert!(matches!(err, DbError::Invalid { .. }), "{err}");
        let err = tx
            .append_changes("bad id!", &m, b"x")
            .await
            .expect_err("bad id");
        assert!(matches!(err, DbError::InvalidId(_)), "{err}");
        drop(tx);

        // Compaction is refused unless the doc was locked and loaded in the same transaction,
        // and only for chunk ids that transaction saw.
        let mut tx = db.begin().await.expect("begin");
        let err = tx
            .compact(doc_id, b"snap", &[], &[first])
            .await
            .expect_err("no lock");
        assert!(matches!(err, DbError::CompactionRefused { .. }), "{err}");
        tx.lock_doc(doc_id).await.expect("lock");
        let err = tx
            .compact(doc_id, b"snap", &[], &[first])
            .await
            .expect_err("no load");
        assert!(matches!(err, DbError::CompactionRefused { .. }), "{err}");
        tx.load_doc(doc_id).await.expect("load");
        let err = tx
            .compact(doc_id, b"snap", &[], &[second + 1000])
            .await
            .expect_err("unknown id");
        assert!(matches!(err, DbError::CompactionRefused { .. }), "{err}");
        drop(tx);

        // A chunk appended in the compacting transaction can be folded too.
        let mut tx = db.begin().await.expect("begin");
        tx.lock_doc(doc_id).await.expect("lock");
        let stored = tx.load_doc(doc_id).await.expect("load").expect("exists");
        let third_bytes = change_chunk("c", 3);
        let third = tx
            .append_changes(doc_id, &m, &third_bytes)
            .await
            .expect("append");
        let mut doc = AutoCommit::load(&stored.bytes).expect("load");
        doc.load_incremental(&third_bytes).expect("apply");
        let heads = doc.get_heads();
        tx.compact(doc_id, &doc.save(), &heads, &[first, second, third])
            .await
            .expect("compact");
        tx.commit().await.expect("commit");

        let stored = db.load_doc(doc_id).await.expect("load").expect("exists");
        assert!(stored.chunk_ids.is_empty());
        assert_eq!(stored.snapshot_heads, heads);
        assert_eq!(keys_of(&stored.bytes).len(), 3);

        let rows = db.docs_for_store("S1", 0).await.expect("docs");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].doc_id, doc_id);
        assert_eq!(rows[0].change_count, 0);
        assert_eq!(rows[0].snapshot_heads, heads);
        assert!(db
            .docs_for_store("S1", rows[0].updated_at_ms + 1)
            .await
            .expect("docs")
            .is_empty());
        assert!(db.docs_for_store("S2", 0).await.expect("docs").is_empty());
        assert_eq!(db.all_docs().await.expect("all").len(), 1);
        db.close().await;
    })
    .await;
}

/// Two hub processes (two pools) append to one document while both compact it: nothing is
/// lost, and the change count matches the chunks left.
#[tokio::test]
async fn concurrent_appends_and_compaction_lose_nothing() {
    const WRITERS_PER_HUB: i64 = 15;
    for_each_backend("concurrency", |config| async move {
        let hub_a = Db::connect(&config).await.expect("connect a");
        let hub_b = Db::connect(&config).await.expect("connect b");
        let doc_id = "catalogue:S1";
        let m = DocMeta {
            store: "S1".into(),
            kind: "catalogue".into(),
            till: None,
        };
        let mut tasks = Vec::new();
        for hub_index in 0..2i64 {
            let db = if hub_index == 0 {
                hub_a.clone()
            } else {
                hub_b.clone()
            };
            for i in 0..WRITERS_PER_HUB {
                let (db, m) = (db.clone(), m.clone());
                tasks.push(tokio::spawn(async move {
                    let key = format!("k{hub_index}_{i}");
                    let mut tx = db.begin().await.expect("begin");
                    // Half the writers lock like the sync layer does; the rest do not, which
                    // must still be safe against compaction.
                    if i % 2 == 0 {
                        tx.lock_doc(doc_id).await.expect("lock");
                    }
                    tx.append_changes(doc_id, &m, &change_chunk(&key, i))
                        .await
                        .expect("append");
                    tx.commit().await.expect("commit");
                }));
            }
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..8 {
                    compact_once(&db, doc_id).await;
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let stored = hub_a.load_doc(doc_id).await.expect("load").expect("exists");
        let keys = keys_of(&stored.bytes);
        assert_eq!(keys.len() as i64, 2 * WRITERS_PER_HUB, "keys: {keys:?}");
        let row = hub_b
            .all_docs()
            .await
            .expect("docs")
            .pop()
            .expect("one doc");
        assert_eq!(row.change_count, stored.chunk_ids.len() as i64);
        // A final compaction folds everything that is left.
        compact_once(&hub_b, doc_id).await;
        let stored = hub_a.load_doc(doc_id).await.expect("load").expect("exists");
        assert!(stored.chunk_ids.is_empty());
        assert_eq!(keys_of(&stored.bytes).len() as i64, 2 * WRITERS_PER_HUB);
        hub_a.close().await;
        hub_b.close().await;
    })
    .await;
}

/// The exact interleaving compaction must survive: hub A loads the document under its lock,
/// hub B appends without the lock and commits (possible on PostgreSQL), then A compacts what
/// it loaded. B's chunk must survive. A locked writer on B must wait for A's commit.
#[tokio::test]
async fn compaction_keeps_chunks_appended_after_its_load() {
    for_each_backend("compaction interleaving", |config| async move {
        let hub_a = Db::connect(&config).await.expect("connect a");
        let hub_b = Db::connect(&config).await.expect("connect b");
        let doc_id = "session/S1/T1/x";
        let m = meta("S1", Some("T1"));
        let mut tx = hub_a.begin().await.expect("begin");
        tx.append_changes(doc_id, &m, &change_chunk("first", 1))
            .await
            .expect("append");
        tx.commit().await.expect("commit");

        let mut tx = hub_a.begin().await.expect("begin");
        tx.lock_doc(doc_id).await.expect("lock");
        let stored = tx.load_doc(doc_id).await.expect("load").expect("exists");

        let (db, m2) = (hub_b.clone(), m.clone());
        let unlocked = tokio::spawn(async move {
            let mut tx = db.begin().await.expect("begin b");
            tx.append_changes(doc_id, &m2, &change_chunk("unlocked", 2))
                .await
                .expect("append b");
            tx.commit().await.expect("commit b");
        });
        let (db, m3) = (hub_b.clone(), m.clone());
        let locked = tokio::spawn(async move {
            let mut tx = db.begin().await.expect("begin b");
            tx.lock_doc(doc_id).await.expect("lock b");
            tx.append_changes(doc_id, &m3, &change_chunk("locked", 3))
                .await
                .expect("append b");
            tx.commit().await.expect("commit b");
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !locked.is_finished(),
            "a locked writer must wait for the lock holder"
        );
        if hub_a.backend_kind() == BackendKind::Postgres {
            assert!(
                unlocked.is_finished(),
                "PostgreSQL lets an unlocked append commit meanwhile"
            );
        }

        let mut doc = AutoCommit::load(&stored.bytes).expect("load");
        let heads = doc.get_heads();
        tx.compact(doc_id, &doc.save(), &heads, &stored.chunk_ids)
            .await
            .expect("compact");
        tx.commit().await.expect("commit");
        unlocked.await.expect("unlocked writer");
        locked.await.expect("locked writer");

        let stored = hub_b.load_doc(doc_id).await.expect("load").expect("exists");
        let expected: BTreeSet<String> = ["first", "unlocked", "locked"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(keys_of(&stored.bytes), expected);
        assert_eq!(stored.chunk_ids.len(), 2);
        let row = hub_a
            .all_docs()
            .await
            .expect("docs")
            .pop()
            .expect("one doc");
        assert_eq!(row.change_count, 2);
        hub_a.close().await;
        hub_b.close().await;
    })
    .await;
}

#[tokio::test]
async fn sync_states_and_peer_status() {
    for_each_backend("sync states", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        assert!(db.sync_state("d1", "S1/T1").await.expect("get").is_none());
        let mut tx = db.begin().await.expect("begin");
        tx.put_sync_state("d1", "S1/T1", b"state-1")
            .await
            .expect("put");
        tx.put_sync_state("d2", "S1/T1", b"other")
            .await
            .expect("put");
        assert_eq!(
            tx.sync_state("d1", "S1/T1").await.expect("get").as_deref(),
            Some(&b"state-1"[..])
        );
        tx.commit().await.expect("commit");
        let mut tx = db.begin().await.expect("begin");
        tx.put_sync_state("d1", "S1/T1", b"state-2")
            .await
            .expect("replace");
        tx.commit().await.expect("commit");
        assert_eq!(
            db.sync_state("d1", "S1/T1").await.expect("get").as_deref(),
            Some(&b"state-2"[..])
        );
        let all = db.sync_states_for_peer("S1/T1").await.expect("list");
        assert_eq!(
            all,
            vec![
                ("d1".into(), b"state-2".to_vec()),
                ("d2".into(), b"other".to_vec())
            ]
        );

        let status = PeerDocStatus {
            peer: "S1/T1".into(),
            doc_id: "d1".into(),
            clock: r#"{"aa":3}"#.into(),
            oldest_unsynced_ms: Some(1000),
            reported_at_ms: 2000,
            till_heads: Some(vec![
                automerge::ChangeHash([7; 32]),
                automerge::ChangeHash([9; 32]),
            ]),
        };
        db.upsert_peer_doc_status(&status).await.expect("upsert");
        assert_eq!(
            db.peer_doc_statuses(Some("S1/T1")).await.expect("list"),
            vec![status.clone()],
            "heads round-trip"
        );
        // A report without heads clears the older heads (they described an older state).
        let newer = PeerDocStatus {
            clock: r#"{"aa":4}"#.into(),
            oldest_unsynced_ms: None,
            reported_at_ms: 3000,
            till_heads: None,
            ..status.clone()
        };
        db.upsert_peer_doc_status(&newer)
            .await
            .expect("upsert again");
        let other = PeerDocStatus {
            peer: "S1/T2".into(),
            ..status.clone()
        };
        db.upsert_peer_doc_status(&other).await.expect("other peer");
        assert_eq!(
            db.peer_doc_statuses(Some("S1/T1")).await.expect("list"),
            vec![newer.clone()]
        );
        assert_eq!(
            db.peer_doc_statuses(None).await.expect("list"),
            vec![newer, other]
        );
        let bad = PeerDocStatus {
            clock: "{not json".into(),
            ..status.clone()
        };
        assert!(matches!(
            db.upsert_peer_doc_status(&bad).await,
            Err(DbError::Invalid { .. })
        ));
        let too_many = PeerDocStatus {
            till_heads: Some(vec![
                automerge::ChangeHash([1; 32]);
                hub::db::MAX_REPORTED_HEADS + 1
            ]),
            ..status
        };
        assert!(matches!(
            db.upsert_peer_doc_status(&too_many).await,
            Err(DbError::Invalid { .. })
        ));

        db.record_peer_sync("S1/T1", 100, None)
            .await
            .expect("ok sync");
        db.record_peer_sync("S1/T1", 200, Some("connection reset"))
            .await
            .expect("failed sync");
        let syncs = db.peer_syncs().await.expect("list");
        assert_eq!(syncs.len(), 1);
        assert_eq!(
            syncs[0].last_sync_at_ms,
            Some(100),
            "a failure keeps the last success"
        );
        assert_eq!(syncs[0].last_attempt_at_ms, 200);
        assert_eq!(syncs[0].last_error.as_deref(), Some("connection reset"));
        db.record_peer_sync("S1/T1", 300, None)
            .await
            .expect("ok again");
        let syncs = db.peer_syncs().await.expect("list");
        assert_eq!(
            (syncs[0].last_sync_at_ms, syncs[0].last_error.clone()),
            (Some(300), None)
        );
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn devices_enroll_lookup_revoke() {
    for_each_backend("devices", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        let token = db.enroll_till("S1", "T1").await.expect("enroll");
        assert_eq!(token.len(), 64);
        let device = db
            .device_by_token(&token)
            .await
            .expect("lookup")
            .expect("known");
        assert_eq!((device.store.as_str(), device.till.as_str()), ("S1", "T1"));
        assert!(db
            .device_by_token(&"0".repeat(64))
            .await
            .expect("lookup")
            .is_none());
        assert!(db
            .device_by_token("garbage")
            .await
            .expect("lookup")
            .is_none());

        let replaced = db.enroll_till("S1", "T1").await.expect("re-enroll");
        assert_ne!(replaced, token);
        assert!(
            db.device_by_token(&token).await.expect("lookup").is_none(),
            "old token dies"
        );
        assert!(db
            .device_by_token(&replaced)
            .await
            .expect("lookup")
            .is_some());

        assert!(db.revoke_till("S1", "T1").await.expect("revoke"));
        assert!(db
            .device_by_token(&replaced)
            .await
            .expect("lookup")
            .is_none());
        assert!(!db.revoke_till("S1", "T9").await.expect("revoke unknown"));
        let devices = db.list_devices().await.expect("list");
        assert_eq!(devices.len(), 1);
        assert!(devices[0].revoked);

        let again = db
            .enroll_till("S1", "T1")
            .await
            .expect("enroll after revoke");
        assert!(db.device_by_token(&again).await.expect("lookup").is_some());
        assert!(matches!(
            db.enroll_till("S 1", "T1").await,
            Err(DbError::InvalidId(_))
        ));
        assert!(matches!(
            db.enroll_till("S1", &"t".repeat(33)).await,
            Err(DbError::InvalidId(_))
        ));
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn users_passwords_and_login_sessions() {
    for_each_backend("users", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        let admin = db
            .create_user("olga", Role::Admin, "correct horse", None)
            .await
            .expect("create");
        assert_eq!(admin.role, Role::Admin);
        let dup = db
            .create_user("olga", Role::Manager, "another pass", None)
            .await;
        assert!(matches!(dup, Err(DbError::AlreadyExists { .. })));
        assert!(matches!(
            db.create_user("ivan", Role::Manager, "short", None).await,
            Err(DbError::PasswordPolicy(_))
        ));
        assert!(matches!(
            db.create_user("kassir", Role::Cashier, "1234", None).await,
            Err(DbError::Invalid { .. })
        ));
        let cashier = db
            .create_user("kassir", Role::Cashier, "1234", Some("S1"))
            .await
            .expect("cashier");
        assert_eq!(cashier.store.as_deref(), Some("S1"));

        let ok = db
            .verify_password("olga", "correct horse")
            .await
            .expect("verify")
            .expect("right password");
        assert_eq!(ok, admin);
        assert!(db
            .verify_password("olga", "wrong horse")
            .await
            .expect("verify")
            .is_none());
        assert!(db
            .verify_password("nobody", "correct horse")
            .await
            .expect("verify")
            .is_none());
        assert!(db
            .verify_password("kassir", "1234")
            .await
            .expect("verify")
            .is_some());
        assert_eq!(db.users().await.expect("users").len(), 2);

        let token = db
            .create_login("olga", Duration::from_secs(3600))
            .await
            .expect("session");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        assert_eq!(
            db.login_user(&token, now).await.expect("lookup"),
            Some(admin.clone())
        );
        assert!(
            db.login_user(&token, now + 3_600_001)
                .await
                .expect("lookup")
                .is_none(),
            "expired"
        );
        assert!(db.login_user("nope", now).await.expect("lookup").is_none());
        assert!(matches!(
            db.create_login("nobody", Duration::from_secs(60)).await,
            Err(DbError::NotFound { .. })
        ));

        let short = db
            .create_login("kassir", Duration::from_millis(1))
            .await
            .expect("session");
        assert_eq!(db.delete_expired(now + 10_000).await.expect("delete"), 1);
        assert!(db.login_user(&short, now).await.expect("lookup").is_none());
        assert!(db.login_user(&token, now).await.expect("lookup").is_some());
        assert!(db.delete_login(&token).await.expect("logout"));
        assert!(db.login_user(&token, now).await.expect("lookup").is_none());
        db.close().await;
    })
    .await;
}

fn receipt(id: u128, till: &str, kind: ReceiptKind, payments: &[(&str, i64)]) -> ReceiptRow {
    let total = payments.iter().map(|(_, a)| a).sum();
    ReceiptRow {
        receipt_id: uuid::Uuid::from_u128(id).hyphenated().to_string(),
        store: "S1".into(),
        till: till.into(),
        session_id: format!("sess-{till}"),
        kind,
        total: Kopecks(total),
        hlc: format!("{id:016}-00000-S1/{till}/node"),
        body: r#"{"items":[]}"#.into(),
        payments: payments
            .iter()
            .map(|(m, a)| PaymentRow {
                method: (*m).into(),
                amount: Kopecks(*a),
            })
            .collect(),
    }
}

#[tokio::test]
async fn receipts_are_idempotent_and_summarised() {
    for_each_backend("receipts", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        let batch = vec![
            receipt(
                1,
                "T1",
                ReceiptKind::Sale,
                &[("cash", 10_000), ("card", 5_050)],
            ),
            receipt(2, "T1", ReceiptKind::Sale, &[("card", 20_000)]),
            receipt(3, "T2", ReceiptKind::Sale, &[("cash", 7_000)]),
            receipt(4, "T2", ReceiptKind::Refund, &[("cash", -7_000)]),
            receipt(
                1,
                "T1",
                ReceiptKind::Sale,
                &[("cash", 10_000), ("card", 5_050)],
            ),
        ];
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(
            tx.insert_receipts(&batch).await.expect("insert"),
            4,
            "duplicate in batch skipped"
        );
        tx.commit().await.expect("commit");
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(
            tx.insert_receipts(&batch).await.expect("again"),
            0,
            "idempotent"
        );
        tx.commit().await.expect("commit");

        let summary = db.store_summary("S1").await.expect("summary");
        assert_eq!(summary.receipts, 4);
        assert_eq!(
            summary.total,
            Kopecks(10_000 + 5_050 + 20_000 + 7_000 - 7_000)
        );
        assert_eq!(summary.tills["T1"].receipts, 2);
        assert_eq!(summary.tills["T1"].total, Kopecks(35_050));
        assert_eq!(summary.tills["T2"].receipts, 2);
        assert_eq!(summary.tills["T2"].total, Kopecks(0));
        assert_eq!(summary.payments["cash"], Kopecks(10_000));
        assert_eq!(summary.payments["card"], Kopecks(25_050));
        assert_eq!(db.store_summary("S9").await.expect("empty").receipts, 0);

        // Money is checked on the way in; one bad row refuses the whole batch.
        let mut wrong_sum = receipt(10, "T1", ReceiptKind::Sale, &[("cash", 100)]);
        wrong_sum.total = Kopecks(99);
        let positive_refund = receipt(11, "T1", ReceiptKind::Refund, &[("cash", 100)]);
        let mut bad_id = receipt(12, "T1", ReceiptKind::Sale, &[("cash", 1)]);
        bad_id.receipt_id = bad_id.receipt_id.to_uppercase();
        for bad in [wrong_sum, positive_refund, bad_id] {
            let mut tx = db.begin().await.expect("begin");
            let good = receipt(20, "T1", ReceiptKind::Sale, &[("cash", 1)]);
            let err = tx.insert_receipts(&[good, bad]).await.expect_err("refused");
            assert!(err.is_client_error(), "{err}");
        }
        assert_eq!(db.store_summary("S1").await.expect("summary").receipts, 4);

        // Batches larger than one statement.
        let many: Vec<ReceiptRow> = (100..1_300)
            .map(|i| receipt(i, "T3", ReceiptKind::Sale, &[("card", 1)]))
            .collect();
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(tx.insert_receipts(&many).await.expect("insert many"), 1_200);
        tx.commit().await.expect("commit");
        let summary = db.store_summary("S1").await.expect("summary");
        assert_eq!(summary.tills["T3"].receipts, 1_200);
        assert_eq!(summary.payments["card"], Kopecks(25_050 + 1_200));

        db.enroll_till("S2", "T1").await.expect("enroll");
        assert_eq!(
            db.list_stores().await.expect("stores"),
            vec!["S1".to_owned(), "S2".to_owned()]
        );
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn cash_sessions_upsert_keeps_the_first_close() {
    for_each_backend("sessions", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        let open = SessionRow {
            session_id: "sess-1".into(),
            store: "S1".into(),
            till: "T1".into(),
            cashier: "Иванова".into(),
            opened_hlc: "0000000000000001-00000-S1/T1/node".into(),
            opening_cash: Kopecks(500_000),
            closed_hlc: None,
            close_json: None,
        };
        let mut tx = db.begin().await.expect("begin");
        tx.upsert_session(&open).await.expect("open");
        tx.upsert_session(&open).await.expect("idempotent");
        let closed = SessionRow {
            closed_hlc: Some("0000000000000009-00000-S1/T1/node".into()),
            close_json: Some(r#"{"z":1}"#.into()),
            ..open.clone()
        };
        tx.upsert_session(&closed).await.expect("close");
        let reclosed = SessionRow {
            closed_hlc: Some("0000000000000010-00000-S1/T1/node".into()),
            close_json: Some(r#"{"z":2}"#.into()),
            ..open.clone()
        };
        tx.upsert_session(&reclosed)
            .await
            .expect("second close ignored");
        tx.upsert_session(&open)
            .await
            .expect("late open does not reopen");
        let moved = SessionRow {
            till: "T2".into(),
            ..open.clone()
        };
        assert!(matches!(
            tx.upsert_session(&moved).await,
            Err(DbError::MetaMismatch { .. })
        ));
        tx.commit().await.expect("commit");
        assert_eq!(
            db.sessions_for_store("S1").await.expect("list"),
            vec![closed]
        );
        if db.backend_kind() == BackendKind::Postgres {
            assert!(matches!(config, DbConfig::Postgres { .. }));
        }
        db.close().await;
    })
    .await;
}
