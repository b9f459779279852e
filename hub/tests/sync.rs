//! Sync through the hub's router (`app()` + `oneshot`) with in-memory till replicas, on
//! SQLite and PostgreSQL: receipts counted exactly once, every kind of bad envelope refused
//! whole with nothing applied, authorship and headers enforced, the catalogue delivered to a
//! fresh till, divergence before and after, two hub processes on one database, compaction.

mod api_support;
mod support;
mod write_support;

use api_support::{now_ms, till_actor, Hub, Till};
use automerge::sync::SyncDoc;
use axum::http::StatusCode;
use crdt_model::session::SessionHeader;
use crdt_model::{DocKey, Hlc, Kopecks, SessionId};
use hub::auth_types::Role;
use hub::catalogue_import::{import_rows, parse_csv};
use support::for_each_backend;
use sync_engine::http_server::{AuthenticatedPeer, SyncService};
use sync_engine::{
    DocEntry, DocId, DocStatus, Envelope, PeerId, VersionVector, MAX_ENVELOPE_BYTES,
};

/// Asserts the hub stored nothing at all: no document, no receipt, no session.
async fn assert_nothing_applied(hub: &Hub, store: &str) {
    assert!(hub.db.all_docs().await.expect("docs").is_empty());
    assert_eq!(hub.receipts_of(store).await, 0);
    assert!(hub
        .db
        .sessions_for_store(store)
        .await
        .expect("sessions")
        .is_empty());
}

#[tokio::test]
async fn receipts_are_counted_once_even_when_pushed_again() {
    for_each_backend("sync once", |config| async move {
        let hub = Hub::start(&config).await;
        let manager = hub.user_token("olga", Role::Manager, None).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let session = till.open_session("Иванова");
        till.sell(&session, 150_000, 0);
        till.sell(&session, 0, 2_500);
        till.sell(&session, 1_000, 500);
        till.sync(&hub).await.expect("sync");

        let summary = hub.get_json("/api/v1/stores/S1/summary", &manager).await;
        assert_eq!(summary["store"], "S1");
        assert_eq!(summary["receipts"], 3);
        assert_eq!(summary["total"], 154_000);
        assert_eq!(summary["tills"]["T1"]["receipts"], 3);
        assert_eq!(summary["tills"]["T1"]["total"], 154_000);
        assert_eq!(summary["payments"]["cash"], 151_000);
        assert_eq!(summary["payments"]["card"], 3_000);

        // A till that lost its sync states pushes everything again: still counted once.
        till.replica.restart(false).expect("restart");
        till.sync(&hub).await.expect("sync again");
        till.sell(&session, 700, 0);
        till.sync(&hub).await.expect("sync a new sale");
        let summary = hub.get_json("/api/v1/stores/S1/summary", &manager).await;
        assert_eq!(summary["receipts"], 4);
        assert_eq!(summary["total"], 154_700);

        let sessions = hub.db.sessions_for_store("S1").await.expect("sessions");
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].cashier, "Иванова");
        assert_eq!(sessions[0].till, "T1");
        let metrics = String::from_utf8(
            hub.call(axum::http::Method::GET, "/metrics", None, None, vec![])
                .await
                .1,
        )
        .expect("utf8");
        assert!(
            metrics.contains("hub_receipts_ingested_total 4"),
            "{metrics}"
        );
        assert!(metrics.contains("hub_sync_requests_total{outcome=\"ok\"}"));
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_and_oversized_envelopes_change_nothing() {
    for_each_backend("sync malformed", |config| async move {
        let hub = Hub::start(&config).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let session = till.open_session("Иванова");
        till.sell(&session, 100, 0);

        let (status, body) = hub
            .post_sync_bytes(&till.token, b"not an envelope".to_vec())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json error");
        assert_eq!(body["error"], "invalid_envelope");
        assert!(body["correlation_id"].is_string());

        // A valid entry with receipts next to a garbage message: the whole envelope is refused.
        let mut request = till.first_request();
        request.entries.push(DocEntry::message(
            DocId::new("catalogue/S1").expect("doc"),
            b"\x42garbage".to_vec(),
        ));
        let (status, _) = hub.post_envelope(&till.token, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, body) = hub
            .post_sync_bytes(&till.token, vec![0u8; MAX_ENVELOPE_BYTES + 1])
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json error");
        assert_eq!(body["error"], "payload_too_large");

        let (status, _) = hub
            .call(
                axum::http::Method::POST,
                "/api/v1/sync",
                Some(&till.token),
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_nothing_applied(&hub, "S1").await;

        let metrics = hub.state.metrics.render().expect("metrics");
        assert!(metrics.contains("hub_sync_errors_total{reason=\"invalid_envelope\"} 2"));
        assert!(metrics.contains("hub_sync_errors_total{reason=\"too_large\"} 1"));
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn foreign_documents_senders_and_authors_are_refused_whole() {
    for_each_backend("sync forbidden", |config| async move {
        let hub = Hub::start(&config).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let session = till.open_session("Иванова");
        till.sell(&session, 100, 0);

        // Another store's catalogue beside the till's own (allowed) session: nothing applied.
        let mut foreign = automerge::AutoCommit::new();
        automerge::transaction::Transactable::put(&mut foreign, automerge::ROOT, "x", 1)
            .expect("put");
        let message = foreign
            .sync()
            .generate_sync_message(&mut automerge::sync::State::new())
            .expect("message")
            .encode();
        let mut request = till.first_request();
        request.entries.push(DocEntry::message(
            DocId::new("catalogue/S2").expect("doc"),
            message,
        ));
        let (status, body) = hub.post_envelope(&till.token, &request).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"], "forbidden");
        assert!(json["message"]
            .as_str()
            .expect("message")
            .contains("catalogue/S2"));

        // Another till's session of the same store.
        let mut sibling = Till::with_actor(
            till.token.clone(),
            "S1",
            "T2",
            till_actor("S1", "T2", "node"),
        );
        sibling.open_session("Петров");
        let mut request = sibling.first_request();
        request.sender = till.replica.peer().clone();
        let (status, _) = hub.post_envelope(&till.token, &request).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Sender mismatch: T1's token, envelope signed as T2.
        let mut request = till.first_request();
        request.sender = sibling.replica.peer().clone();
        let (status, body) = hub.post_envelope(&till.token, &request).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert!(json["message"]
            .as_str()
            .expect("message")
            .contains("sender"));

        // T1's own session document, but changes authored by T2's actor.
        let mut impostor = Till::with_actor(
            till.token.clone(),
            "S1",
            "T1",
            till_actor("S1", "T2", "node"),
        );
        let forged = impostor.open_session("Сидоров");
        impostor.sell(&forged, 500, 0);
        let err = impostor.sync(&hub).await.expect_err("foreign author");
        assert_eq!(err.0, StatusCode::FORBIDDEN, "{}", err.1);
        assert_nothing_applied(&hub, "S1").await;

        // The till's own actor with a header naming another till: refused by the projection.
        let header = SessionHeader {
            session_id: SessionId::new(uuid::Uuid::new_v4()),
            store: "S1".parse().expect("store"),
            till: "T2".parse().expect("till"),
            cashier: "Петров".to_owned(),
            opened_at: Hlc::new(now_ms(), 0, "S1/T1/node").expect("hlc"),
            opening_cash: Kopecks(0),
        };
        let own_key = DocKey::Session {
            store: "S1".parse().expect("store"),
            till: "T1".parse().expect("till"),
            session: header.session_id,
        };
        let mut liar = Till::with_actor(
            till.token.clone(),
            "S1",
            "T1",
            till_actor("S1", "T1", "node"),
        );
        liar.open_with_header(own_key, &header);
        let err = liar.sync(&hub).await.expect_err("foreign header");
        assert_eq!(err.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", err.1);
        assert_nothing_applied(&hub, "S1").await;

        // The honest till still syncs.
        till.sync(&hub).await.expect("sync");
        assert_eq!(hub.receipts_of("S1").await, 1);
        let syncs = hub.db.peer_syncs().await.expect("peer syncs");
        assert_eq!(syncs[0].peer, "till:S1/T1");
        assert_eq!(syncs[0].last_error, None);
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_fresh_till_receives_its_store_catalogue_only() {
    for_each_backend("sync catalogue", |config| async move {
        let hub = Hub::start(&config).await;
        let rows = parse_csv(
            "sku,ean,name,price,vat\nF-1,,Оправа,150000,none\nL-1,,Линза,2500,vat22\n".as_bytes(),
        )
        .expect("csv");
        let report = import_rows(&hub.db, "S1", rows, now_ms())
            .await
            .expect("import");
        assert_eq!(report.changed(), 2);

        let mut fresh = Till::enrol(&hub, "S1", "T3").await;
        fresh.sync(&hub).await.expect("sync");
        let id = DocId::new("catalogue/S1").expect("doc");
        let doc = fresh.replica.doc(&id).expect("catalogue received");
        let products = crdt_model::catalogue::products(doc).expect("products");
        assert_eq!(products.len(), 2);
        assert_eq!(products[0].sku, "F-1");
        assert_eq!(products[0].price, Kopecks(150_000));

        // The same offer through the SyncService trait (what sync-engine's generic handler calls).
        let peer = PeerId::new("till:S1/T4").expect("peer");
        let reply = SyncService::sync(
            &*hub.state.sync,
            AuthenticatedPeer { peer: peer.clone() },
            Envelope::new(peer, true, vec![]),
        )
        .await
        .expect("round through the trait");
        assert_eq!(reply.sender.as_str(), "hub");
        assert!(reply.entry(&id).is_some_and(|e| e.message.is_some()));

        let mut elsewhere = Till::enrol(&hub, "S2", "T1").await;
        elsewhere.sync(&hub).await.expect("sync");
        assert!(elsewhere.replica.doc_ids().is_empty());

        // A price change reaches the till on its next poll.
        let rows =
            parse_csv("sku,ean,name,price,vat\nF-1,,Оправа,99000,none\n".as_bytes()).expect("csv");
        import_rows(&hub.db, "S1", rows, now_ms())
            .await
            .expect("import");
        fresh.sync(&hub).await.expect("sync");
        let doc = fresh.replica.doc(&id).expect("catalogue");
        let product = crdt_model::catalogue::product(doc, "F-1")
            .expect("read")
            .expect("F-1");
        assert_eq!(product.price, Kopecks(99_000));
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn divergence_shows_what_the_hub_lacks_until_synced() {
    for_each_backend("sync divergence", |config| async move {
        let hub = Hub::start(&config).await;
        let support = hub.user_token("sasha", Role::Support, None).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let session = till.open_session("Иванова");
        till.sell(&session, 100, 0);
        till.sell(&session, 200, 0);

        // The till reports its status without sending changes (a status-only envelope).
        let mut doc = till.replica.doc(&session).expect("doc").clone();
        let reported_at = now_ms() - 60_000;
        let status = DocStatus {
            clock: VersionVector::from_doc(&mut doc),
            oldest_unsynced_ms: Some(reported_at),
        };
        let envelope = Envelope::new(
            till.replica.peer().clone(),
            false,
            vec![DocEntry {
                doc: session.clone(),
                message: None,
                status: Some(status),
            }],
        );
        let (status, _) = hub.post_envelope(&till.token, &envelope).await;
        assert_eq!(status, StatusCode::OK);

        let view = hub.get_json("/api/v1/divergence", &support).await;
        let tills = view["tills"].as_array().expect("tills");
        assert_eq!(tills.len(), 1);
        assert_eq!(tills[0]["peer"], "till:S1/T1");
        assert_eq!(tills[0]["store"], "S1");
        assert!(tills[0]["last_sync_ms"].is_i64());
        let doc_view = &tills[0]["docs"][0];
        assert_eq!(doc_view["doc"], session.as_str());
        assert_eq!(doc_view["hub_lacks"], 3, "{view}");
        assert_eq!(doc_view["till_lacks"], 0);
        assert_eq!(doc_view["hub_lacks_ranges"][0]["actor"], "S1/T1/node");
        assert!(doc_view["oldest_unsynced_age_ms"].as_u64().expect("age") >= 60_000);

        till.sync(&hub).await.expect("sync");
        let view = hub.get_json("/api/v1/divergence", &support).await;
        for doc_view in view["tills"][0]["docs"].as_array().expect("docs") {
            assert_eq!(doc_view["hub_lacks"], 0, "{view}");
            assert_eq!(doc_view["till_lacks"], 0, "{view}");
            assert!(doc_view["oldest_unsynced_age_ms"].is_null(), "{view}");
        }
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn two_hubs_on_one_database_serve_the_same_tills() {
    for_each_backend("sync two hubs", |config| async move {
        let first = Hub::start(&config).await;
        let second = Hub::start(&config).await;
        let mut tills = Vec::new();
        for name in ["T1", "T2"] {
            let mut till = Till::enrol(&first, "S1", name).await;
            let session = till.open_session("Иванова");
            tills.push((till, session));
        }
        for round in 0..5 {
            let mut jobs = Vec::new();
            for (index, (mut till, session)) in tills.drain(..).enumerate() {
                till.sell(&session, 100 + round, 0);
                let hub = if (index + round as usize).is_multiple_of(2) {
                    first.clone()
                } else {
                    second.clone()
                };
                jobs.push(tokio::spawn(async move {
                    till.sync(&hub).await.expect("sync");
                    (till, session)
                }));
            }
            for job in jobs {
                tills.push(job.await.expect("join"));
            }
        }
        let summary = first.db.store_summary("S1").await.expect("summary");
        assert_eq!(summary.receipts, 10);
        assert_eq!(summary.tills["T1"].receipts, 5);
        assert_eq!(summary.tills["T2"].receipts, 5);
        // Both hubs hold the same document, whichever received each change.
        for (till, session) in &mut tills {
            let heads = till.replica.heads(session);
            let stored = second
                .db
                .load_doc(session.as_str())
                .await
                .expect("load")
                .expect("stored");
            let mut doc = automerge::AutoCommit::load(&stored.bytes).expect("automerge");
            assert_eq!(doc.get_heads(), heads);
        }
        first.db.close().await;
        second.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn busy_session_documents_are_compacted() {
    for_each_backend("sync compaction", |config| async move {
        let hub = Hub::start(&config).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let session = till.open_session("Иванова");
        for _ in 0..70 {
            till.sell(&session, 100, 0);
            till.sync(&hub).await.expect("sync");
        }
        let row = hub
            .db
            .all_docs()
            .await
            .expect("docs")
            .into_iter()
            .find(|d| d.doc_id == session.as_str())
            .expect("row");
        assert!(
            row.change_count <= 64,
            "not compacted: {}",
            row.change_count
        );
        assert!(!row.snapshot_heads.is_empty());
        let stored = hub
            .db
            .load_doc(session.as_str())
            .await
            .expect("load")
            .expect("doc");
        let doc = automerge::AutoCommit::load(&stored.bytes).expect("automerge");
        let view = crdt_model::session::read(&doc).expect("session");
        assert_eq!(view.receipts.len(), 70);
        assert_eq!(hub.receipts_of("S1").await, 70);
        hub.db.close().await;
    })
    .await;
}
