//! The till's HTTP API driven through `app()` with `oneshot` on a temp dir: sessions, sales,
//! idempotency, bad bodies, restart, close totals.

mod common;

use axum::http::{Method, StatusCode};
use common::{sale, Till};
use serde_json::{json, Value};

#[tokio::test]
async fn sale_is_buffered_and_listed_in_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let session = till.open_session(0).await;
    let reply = till.receipt("key-1", &sale(150_000, "cash")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "buffered");
    let receipt_id = reply.body["receipt_id"].as_str().expect("receipt_id");
    assert!(uuid::Uuid::parse_str(receipt_id).is_ok());

    let listed = till.get(&format!("/v1/session/{session}/receipts")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["count"], 1);
    assert_eq!(listed.body["receipts"][0]["id"], receipt_id);
    assert_eq!(listed.body["receipts"][0]["total"], 150_000);

    let current = till.get("/v1/session/current").await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body["session_id"], session.as_str());
    assert_eq!(current.body["receipts_count"], 1);
    assert_eq!(current.body["sales_total"], 150_000);
    assert_eq!(current.body["payments"]["cash"], 150_000);
    assert_eq!(current.body["receipt_ids"], json!([receipt_id]));
}

#[tokio::test]
async fn idempotency_key_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    till.open_session(0).await;
    let first = till.receipt("same-key", &sale(1000, "card")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.replayed);

    // Same key, same body with other key order and spacing: the original answer again.
    let reordered = r#"{ "payments": [{"amount": 1000, "method": "card"}], "type": "sale",
        "items": [{"vat": "vat22", "price": 1000, "qty": 1, "name": "Оправа", "sku": "F-1"}],
        "pos_id": "T1" }"#;
    let again = till
        .send(
            Method::POST,
            "/v1/kkt/receipt",
            &[("Idempotency-Key", "same-key")],
            Some(reordered.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed);
    assert_eq!(again.body, first.body);

    let other_body = till.receipt("same-key", &sale(2000, "card")).await;
    assert_eq!(other_body.status, StatusCode::CONFLICT);
    assert_eq!(other_body.body["error"], "idempotency_key_reused");

    let bytes = serde_json::to_vec(&sale(1000, "card")).expect("json");
    let no_key = till
        .send(Method::POST, "/v1/kkt/receipt", &[], Some(bytes))
        .await;
    assert_eq!(no_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_key.body["error"], "missing_idempotency_key");

    let current = till.get("/v1/session/current").await;
    assert_eq!(
        current.body["receipts_count"], 1,
        "exactly one sale recorded"
    );
}

#[tokio::test]
async fn bad_bodies_name_the_field_and_record_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    till.open_session(0).await;

    let invalid_json = till
        .send(
            Method::POST,
            "/v1/kkt/receipt",
            &[("Idempotency-Key", "k-json")],
            Some(b"{\"pos_id\": ".to_vec()),
        )
        .await;
    assert_eq!(invalid_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_json.body["error"], "invalid_json");
    assert!(invalid_json.body["correlation_id"].is_string());

    let not_an_object = till.receipt("k-array", &json!([1, 2])).await;
    assert_eq!(not_an_object.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_an_object.body["error"], "invalid_body");

    let mut wrong_type = sale(1000, "cash");
    wrong_type["items"][0]["price"] = json!("дорого");
    let mut missing_qty = sale(1000, "cash");
    missing_qty["items"][0]
        .as_object_mut()
        .expect("item")
        .remove("qty");
    let mut unknown_field = sale(1000, "cash");
    unknown_field["discont"] = json!(5);
    let mut negative_price = sale(1000, "cash");
    negative_price["items"][0]["price"] = json!(-5);
    let mut short_payment = sale(1000, "cash");
    short_payment["payments"][0]["amount"] = json!(999);
    let mut bad_vat = sale(1000, "cash");
    bad_vat["items"][0]["vat"] = json!("vat99");
    let cases: [(&str, Value, StatusCode, &str); 6] = [
        (
            "k1",
            wrong_type,
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price",
        ),
        (
            "k2",
            missing_qty,
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].qty",
        ),
        (
            "k3",
            unknown_field,
            StatusCode::UNPROCESSABLE_ENTITY,
            "discont",
        ),
        (
            "k4",
            negative_price,
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price",
        ),
        (
            "k5",
            short_payment,
            StatusCode::UNPROCESSABLE_ENTITY,
            "payments",
        ),
        (
            "k6",
            bad_vat,
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].vat",
        ),
    ];
    for (key, body, status, field) in cases {
        let reply = till.receipt(key, &body).await;
        assert_eq!(reply.status, status, "{key}: {:?}", reply.body);
        let got = reply.body["field"].as_str().unwrap_or_default();
        assert!(got.starts_with(field), "{key}: field {got:?}, want {field}");
        assert!(reply.body["message"].is_string());
    }
    let current = till.get("/v1/session/current").await;
    assert_eq!(current.body["receipts_count"], 0);

    // A refused request leaves no idempotency record: the corrected retry is accepted.
    let fixed = till.receipt("k5", &sale(1000, "cash")).await;
    assert_eq!(fixed.status, StatusCode::OK);
}

#[tokio::test]
async fn no_open_session_is_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let reply = till.receipt("k", &sale(1000, "cash")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.body["error"], "no_open_session");
    let current = till.get("/v1/session/current").await;
    assert_eq!(current.status, StatusCode::NOT_FOUND);
    assert_eq!(current.body["error"], "no_open_session");
    let close = till.post_json("/v1/session/close", &json!({})).await;
    assert_eq!(close.status, StatusCode::CONFLICT);

    till.open_session(0).await;
    let twice = till
        .post_json("/v1/session/open", &json!({"cashier": "Петрова"}))
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.body["error"], "session_already_open");
}

#[tokio::test]
async fn refund_needs_a_known_original() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    till.open_session(0).await;
    let original = till.receipt("s1", &sale(5000, "cash")).await;
    let original_id = original.body["receipt_id"].clone();
    let mut refund = sale(5000, "cash");
    refund["type"] = json!("refund");
    refund["refund_of"] = json!(uuid::Uuid::new_v4().to_string());
    let unknown = till.receipt("r1", &refund).await;
    assert_eq!(unknown.status, StatusCode::CONFLICT);
    assert_eq!(unknown.body["error"], "original_not_found");
    refund["refund_of"] = original_id;
    let known = till.receipt("r2", &refund).await;
    assert_eq!(known.status, StatusCode::OK, "{:?}", known.body);
    let current = till.get("/v1/session/current").await;
    assert_eq!(current.body["refunds_total"], 5000);
    assert_eq!(current.body["payments"]["cash"], 0);
}

#[tokio::test]
async fn close_reports_totals_and_the_cash_balance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let session = till.open_session(10_000).await;
    for (key, body) in [
        ("a", sale(150_000, "cash")),
        ("b", sale(20_000, "card")),
        ("c", sale(3_000, "cash")),
    ] {
        assert_eq!(till.receipt(key, &body).await.status, StatusCode::OK);
    }
    let mut refund = sale(3_000, "cash");
    refund["type"] = json!("refund");
    refund["refund_of"] = till.get("/v1/session/current").await.body["receipt_ids"][2].clone();
    // receipt_ids are in HLC order, so [2] is the 3,000 sale.
    assert_eq!(till.receipt("d", &refund).await.status, StatusCode::OK);
    let cash_in = till
        .post_json(
            "/v1/session/cash",
            &json!({"kind": "in", "amount": 5_000, "reason": "размен"}),
        )
        .await;
    assert_eq!(cash_in.status, StatusCode::OK, "{:?}", cash_in.body);
    assert!(cash_in.body["movement_id"].is_string());
    let cash_out = till
        .post_json(
            "/v1/session/cash",
            &json!({"kind": "out", "amount": 100_000}),
        )
        .await;
    assert_eq!(cash_out.status, StatusCode::OK);
    let too_much = till
        .post_json(
            "/v1/session/cash",
            &json!({"kind": "out", "amount": 10_000_000}),
        )
        .await;
    assert_eq!(too_much.status, StatusCode::CONFLICT);
    assert_eq!(too_much.body["error"], "insufficient_cash");

    let close = till.post_json("/v1/session/close", &json!({})).await;
    assert_eq!(close.status, StatusCode::OK, "{:?}", close.body);
    let expected_balance = 10_000 + 150_000 + 3_000 - 3_000 + 5_000 - 100_000;
    assert_eq!(close.body["session_id"], session.as_str());
    assert_eq!(close.body["cash_balance"], expected_balance);
    assert_eq!(close.body["receipts_count"], 4);
    assert_eq!(close.body["sales_total"], 173_000);
    assert_eq!(close.body["refunds_total"], 3_000);
    assert_eq!(close.body["payments"]["card"], 20_000);
    assert_eq!(close.body["cash_in"], 5_000);
    assert_eq!(close.body["cash_out"], 100_000);

    assert_eq!(
        till.receipt("e", &sale(1000, "cash")).await.status,
        StatusCode::CONFLICT,
        "no sale after close"
    );
    assert_eq!(
        till.get("/v1/session/current").await.status,
        StatusCode::NOT_FOUND
    );
    // The closed session's receipts stay readable.
    let listed = till.get(&format!("/v1/session/{session}/receipts")).await;
    assert_eq!(listed.body["count"], 4);
}

#[tokio::test]
async fn restart_keeps_receipts_session_and_idempotency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (session, first) = {
        let till = Till::open(dir.path());
        let session = till.open_session(500).await;
        let first = till.receipt("persist-1", &sale(7_000, "cash")).await;
        assert_eq!(first.status, StatusCode::OK);
        for i in 0..5 {
            let reply = till.receipt(&format!("more-{i}"), &sale(100, "card")).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        (session, first.body)
    };
    let till = Till::open(dir.path());
    let current = till.get("/v1/session/current").await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body["session_id"], session.as_str());
    assert_eq!(current.body["receipts_count"], 6);
    assert_eq!(current.body["cash_balance"], 7_500);
    let replay = till.receipt("persist-1", &sale(7_000, "cash")).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert!(replay.replayed);
    assert_eq!(replay.body, first);
    let conflict = till.receipt("persist-1", &sale(7_001, "cash")).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let after = till.receipt("after-restart", &sale(1_000, "cash")).await;
    assert_eq!(after.status, StatusCode::OK);
    let listed = till.get(&format!("/v1/session/{session}/receipts")).await;
    assert_eq!(listed.body["count"], 7);
}

#[tokio::test]
async fn receipts_of_unknown_or_malformed_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let bad = till.get("/v1/session/not-a-uuid/receipts").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = till
        .get(&format!("/v1/session/{}/receipts", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let nowhere = till.get("/v1/nowhere").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.body["error"], "not_found");
}
