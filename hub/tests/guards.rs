//! The hub's guards and limits through its router, on SQLite and PostgreSQL: the longest
//! ids and names a till can produce are accepted, new entries stamped far ahead of the
//! hub's clock refuse the round whole (and say why in the divergence view), the divergence
//! view shows both sides' heads, and a request that never finishes is cut off.

mod api_support;
mod support;
mod write_support;

use api_support::{now_ms, Hub, Till};
use automerge::ChangeHash;
use axum::http::StatusCode;
use crdt_model::catalogue::{self, Field, FieldValue};
use crdt_model::session::{self, CashMovement, MovementKind, SessionHeader};
use crdt_model::{Kopecks, MovementId, SessionId};
use hub::api::{app, ApiSettings, AppState};
use hub::auth_types::Role;
use hub::catalogue_import::{import_rows, parse_csv};
use hub::db::Db;
use std::time::Duration;
use support::for_each_backend;
use sync_engine::DocId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One hour: far beyond the hub's allowed lead.
const HOUR_MS: u64 = 3_600_000;

fn hex(mut heads: Vec<ChangeHash>) -> Vec<String> {
    heads.sort();
    heads.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn the_longest_ids_and_cashier_names_a_till_can_make_are_accepted() {
    for_each_backend("guards longest", |config| async move {
        let hub = Hub::start(&config).await;
        // Store and till ids at their limits, as long as the HLC node name
        // `store/till/node` allows (64 characters): an HLC of 87 characters.
        let store = "S".repeat(32);
        let till_id = "T".repeat(26);
        let mut till = Till::enrol(&hub, &store, &till_id).await;
        let cashier = "Щ".repeat(crdt_model::session::MAX_CASHIER_LEN);
        let doc = till.open_session(&cashier);
        let receipt = till.sell(&doc, 150_000, 0);
        assert_eq!(receipt.hlc.to_string().len(), 87);
        let movement = CashMovement {
            id: MovementId::new(uuid::Uuid::new_v4()),
            kind: MovementKind::CashIn,
            amount: Kopecks(5_000),
            hlc: till.hlc_ahead(0, 2),
            reason: "Размен".repeat(40),
        };
        let closed_at = till.hlc_ahead(0, 3);
        let closer = cashier.clone();
        till.replica
            .change(&doc, now_ms(), move |d| {
                session::append_movement(d, &movement).expect("movement");
                session::close(d, &closed_at, &closer).expect("close");
                Ok(())
            })
            .expect("change");
        till.sync(&hub)
            .await
            .expect("the hub accepts what the till made");

        assert_eq!(hub.receipts_of(&store).await, 1);
        let sessions = hub.db.sessions_for_store(&store).await.expect("sessions");
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].cashier, cashier);
        assert_eq!(sessions[0].till, till_id);
        assert!(sessions[0]
            .opened_hlc
            .ends_with(&format!("{store}/{till_id}/node")));
        assert!(sessions[0].closed_hlc.is_some());
        hub.db.close().await;
    })
    .await;
}

/// Syncs `till` expecting the clock guard's refusal; returns the error message.
async fn expect_clock_refusal(hub: &Hub, till: &mut Till) -> String {
    let (status, body) = till.sync(hub).await.expect_err("refused");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["error"], "clock_ahead", "{body}");
    json["message"].as_str().expect("message").to_owned()
}

#[tokio::test]
async fn new_entries_stamped_far_ahead_are_refused_whole() {
    for_each_backend("guards clock", |config| async move {
        let hub = Hub::start(&config).await;
        let support = hub.user_token("sasha", Role::Support, None).await;

        // A receipt an hour ahead, after an honest one: nothing of the envelope applies.
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let doc = till.open_session("Иванова");
        till.sell(&doc, 100, 0);
        let late = till.hlc_ahead(HOUR_MS, 0);
        let future = till.sell_stamped(&doc, 200, 0, late);
        let message = expect_clock_refusal(&hub, &mut till).await;
        assert!(message.contains(&future.id.to_string()), "{message}");
        assert!(hub.db.all_docs().await.expect("docs").is_empty());
        assert_eq!(hub.receipts_of("S1").await, 0);
        assert!(hub.db.sessions_for_store("S1").await.expect("s").is_empty());

        let metrics = hub.state.metrics.render().expect("metrics");
        assert!(metrics.contains("hub_hlc_rejected_total 1"), "{metrics}");
        assert!(metrics.contains("hub_sync_errors_total{reason=\"clock_ahead\"} 1"));
        // The divergence view says why the till is stuck.
        let view = hub.get_json("/api/v1/divergence", &support).await;
        let error = view["tills"][0]["last_error"].as_str().expect("last_error");
        assert_eq!(view["tills"][0]["peer"], "till:S1/T1");
        assert!(error.starts_with("clock_ahead: "), "{error}");
        assert!(error.contains(&future.id.to_string()), "{error}");

        // A minute of skew is within the window.
        let mut skewed = Till::enrol(&hub, "S1", "T2").await;
        let doc = skewed.open_session("Петров");
        let ahead = skewed.hlc_ahead(60_000, 0);
        skewed.sell_stamped(&doc, 300, 0, ahead);
        skewed.sync(&hub).await.expect("a minute ahead is accepted");
        assert_eq!(hub.receipts_of("S1").await, 1);

        // A cash movement, a header and a close from the future.
        let mut mover = Till::enrol(&hub, "S1", "T3").await;
        let doc = mover.open_session("Сидоров");
        let movement = CashMovement {
            id: MovementId::new(uuid::Uuid::new_v4()),
            kind: MovementKind::CashIn,
            amount: Kopecks(1_000),
            hlc: mover.hlc_ahead(HOUR_MS, 0),
            reason: String::new(),
        };
        mover
            .replica
            .change(&doc, now_ms(), move |d| {
                session::append_movement(d, &movement).expect("movement");
                Ok(())
            })
            .expect("change");
        let message = expect_clock_refusal(&hub, &mut mover).await;
        assert!(message.starts_with("movement "), "{message}");

        let mut opener = Till::enrol(&hub, "S1", "T4").await;
        let header = SessionHeader {
            session_id: SessionId::new(uuid::Uuid::new_v4()),
            store: "S1".parse().expect("store"),
            till: "T4".parse().expect("till"),
            cashier: "Кузнецова".to_owned(),
            opened_at: opener.hlc_ahead(HOUR_MS, 0),
            opening_cash: Kopecks(0),
        };
        opener.open_with_header(header.doc_key(), &header);
        let message = expect_clock_refusal(&hub, &mut opener).await;
        assert!(message.starts_with("header of session/S1/T4/"), "{message}");

        let mut closer = Till::enrol(&hub, "S1", "T5").await;
        let doc = closer.open_session("Орлова");
        closer.sync(&hub).await.expect("the open session syncs");
        let closed_at = closer.hlc_ahead(HOUR_MS, 0);
        closer
            .replica
            .change(&doc, now_ms(), move |d| {
                session::close(d, &closed_at, "Орлова").expect("close");
                Ok(())
            })
            .expect("change");
        let message = expect_clock_refusal(&hub, &mut closer).await;
        assert!(message.starts_with("close of "), "{message}");
        let sessions = hub.db.sessions_for_store("S1").await.expect("sessions");
        let row = sessions.iter().find(|s| s.till == "T5").expect("T5");
        assert_eq!(row.closed_hlc, None, "the close was not applied");

        let metrics = hub.state.metrics.render().expect("metrics");
        assert!(metrics.contains("hub_hlc_rejected_total 4"), "{metrics}");
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn catalogue_writes_from_the_future_are_refused() {
    for_each_backend("guards catalogue", |config| async move {
        let hub = Hub::start(&config).await;
        let rows =
            parse_csv("sku,ean,name,price,vat\nF-1,,Оправа,150000,none\n".as_bytes()).expect("csv");
        import_rows(&hub.db, "S1", rows, now_ms())
            .await
            .expect("import");
        let id = DocId::new("catalogue/S1").expect("doc");
        let before = hub
            .db
            .load_doc(id.as_str())
            .await
            .expect("load")
            .expect("doc");

        let mut till = Till::enrol(&hub, "S1", "T1").await;
        till.sync(&hub).await.expect("catalogue received");
        let hlc = till.hlc_ahead(HOUR_MS, 0);
        till.replica
            .change(&id, now_ms(), move |d| {
                catalogue::set_field(d, "F-1", Field::Price, FieldValue::Money(Kopecks(1)), &hlc)
                    .expect("set price");
                Ok(())
            })
            .expect("change");
        let message = expect_clock_refusal(&hub, &mut till).await;
        assert!(
            message.starts_with("catalogue entry p|F-1|price|"),
            "{message}"
        );

        let after = hub
            .db
            .load_doc(id.as_str())
            .await
            .expect("load")
            .expect("doc");
        assert_eq!(after.chunk_ids, before.chunk_ids, "nothing appended");
        let doc = automerge::AutoCommit::load(&after.bytes).expect("automerge");
        let product = catalogue::product(&doc, "F-1").expect("read").expect("F-1");
        assert_eq!(product.price, Kopecks(150_000));
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn divergence_shows_the_heads_of_both_sides() {
    for_each_backend("guards heads", |config| async move {
        let hub = Hub::start(&config).await;
        let support = hub.user_token("sasha", Role::Support, None).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        let doc = till.open_session("Иванова");
        till.sell(&doc, 100, 0);
        till.sync(&hub).await.expect("sync");
        let synced = hex(till.replica.heads(&doc));
        let doc_view = |view: &serde_json::Value| {
            view["tills"][0]["docs"]
                .as_array()
                .expect("docs")
                .iter()
                .find(|d| d["doc"] == doc.as_str())
                .cloned()
                .expect("session doc")
        };
        let view = doc_view(&hub.get_json("/api/v1/divergence", &support).await);
        assert_eq!(view["hub_heads"], serde_json::json!(synced), "{view}");
        assert_eq!(view["till_heads"], serde_json::json!(synced), "{view}");

        // The till sells again and, having lost its sync state, first announces only its
        // heads: the hub records them before it has the change.
        till.sell(&doc, 200, 0);
        till.replica.restart(false).expect("restart");
        let request = till.first_request();
        let (status, body) = hub.post_envelope(&till.token, &request).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let ahead = hex(till.replica.heads(&doc));
        assert_ne!(ahead, synced);
        let view = doc_view(&hub.get_json("/api/v1/divergence", &support).await);
        assert_eq!(view["hub_heads"], serde_json::json!(synced), "{view}");
        assert_eq!(view["till_heads"], serde_json::json!(ahead), "{view}");
        assert_eq!(view["hub_lacks"], 1, "{view}");

        till.sync(&hub).await.expect("sync");
        let view = doc_view(&hub.get_json("/api/v1/divergence", &support).await);
        assert_eq!(view["hub_heads"], serde_json::json!(ahead), "{view}");
        assert_eq!(view["till_heads"], serde_json::json!(ahead), "{view}");
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_request_that_never_finishes_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&hub::db::DbConfig::Sqlite {
        dir: dir.path().to_path_buf(),
    })
    .await
    .expect("connect");
    let settings = ApiSettings {
        request_timeout: Duration::from_millis(300),
        ..ApiSettings::default()
    };
    let state = AppState::with_settings(db.clone(), settings).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });

    // A body announced as 100 bytes of which 8 ever arrive (a stalled or hostile client).
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /api/v1/login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"name\":",
        )
        .await
        .expect("write");
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 1024];
        loop {
            let n = stream.read(&mut buffer).await.expect("read");
            response.extend_from_slice(&buffer[..n]);
            if n == 0 || response.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer within 10 s: the request was not cut off"
    );
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    server.abort();
    db.close().await;
}
