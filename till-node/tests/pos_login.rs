//! The browser POS login on the till's router: the PIN checked against a staff document as the
//! hub replicates it, wrong PINs throttled (a burst too), tokens that open the cashier routes
//! and survive a restart, logout, manager approval, and the static bundle beside the API.

mod common;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use automerge::AutoCommit;
use axum::http::{Method, StatusCode};
use common::Till;
use crdt_model::hlc::Hlc;
use crdt_model::staff::{self, StaffMember, StaffRole};
use serde_json::json;
use till_node::store::WriteBatch;
use till_node::Store;

fn member(login: &str, role: StaffRole, secret: &str) -> StaffMember {
    let salt = SaltString::encode_b64(format!("salt-of-{login}").as_bytes()).expect("salt");
    StaffMember {
        login: login.to_owned(),
        role,
        secret_hash: Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .expect("hash")
            .to_string(),
        active: true,
        updated_at: Hlc::new(1_700_000_000_000, 0, "hub/hub").expect("hlc"),
    }
}

/// Puts a staff document into the till's store, as a sync with the hub would.
fn seed_staff(dir: &std::path::Path) {
    let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from(b"hub/hub".to_vec()));
    staff::init(&mut doc, &"S1".parse().expect("store")).expect("init");
    staff::put_member(&mut doc, &member("ivanova", StaffRole::Cashier, "2580")).expect("put");
    staff::put_member(
        &mut doc,
        &member("petrova", StaffRole::Manager, "boss-secret"),
    )
    .expect("put");
    doc.commit();
    let mut store = Store::open(dir).expect("store");
    let mut batch = WriteBatch::new();
    batch.append_chunk("staff/S1", doc.save());
    store.commit(batch).expect("commit");
}

async fn login(till: &Till, pin: &str) -> common::Reply {
    till.post_json("/v1/pos/login", &json!({"pin": pin, "device": "wtest0001"}))
        .await
}

#[tokio::test]
async fn a_correct_pin_gives_a_token_that_opens_the_cashier_routes_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_staff(dir.path());
    let till = Till::open(dir.path());
    let reply = login(&till, "2580").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["login"], "ivanova");
    assert_eq!(reply.body["peer"], "pos:S1/T1/wtest0001");
    assert_eq!(reply.body["till_peer"], "till:S1/T1");
    let token = reply.body["token"].as_str().expect("token").to_owned();
    let bearer = format!("Bearer {token}");
    let approve = |secret: &'static str| {
        let bearer = bearer.clone();
        let till = &till;
        async move {
            till.send(
                Method::POST,
                "/v1/pos/approve",
                &[("Authorization", bearer.as_str())],
                Some(serde_json::to_vec(&json!({"secret": secret})).expect("json")),
            )
            .await
        }
    };
    let approved = approve("boss-secret").await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.body["login"], "petrova");
    assert_eq!(
        approve("2580").await.status,
        StatusCode::UNAUTHORIZED,
        "a cashier cannot approve"
    );

    // The login survives a restart of the daemon (the page syncs with the same token).
    drop(till);
    let till = Till::open(dir.path());
    let headers = [("Authorization", bearer.as_str())];
    let out = till
        .send(Method::POST, "/v1/pos/logout", &headers, None)
        .await;
    assert_eq!(out.status, StatusCode::OK, "{:?}", out.body);
    let again = till
        .send(Method::POST, "/v1/pos/logout", &headers, None)
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.body["error"], "login_required");
}

#[tokio::test]
async fn wrong_pins_are_throttled_even_in_a_burst() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_staff(dir.path());
    let till = Till::open(dir.path());
    let burst = futures::future::join_all((0..8).map(|_| login(&till, "0000"))).await;
    let wrong = burst
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let locked = burst
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(wrong, 5, "{burst:?}");
    assert_eq!(locked, 3, "{burst:?}");
    let right = login(&till, "2580").await;
    assert_eq!(
        right.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked even for the right PIN"
    );
    assert!(right.body["retry_after_seconds"]
        .as_u64()
        .is_some_and(|s| s >= 1));
    assert!(!right.body.to_string().contains("2580"));
}

#[tokio::test]
async fn no_staff_list_and_bad_bodies_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let reply = login(&till, "2580").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["error"], "no_staff_list");
    let bad_device = till
        .post_json("/v1/pos/login", &json!({"pin": "2580", "device": "node-1"}))
        .await;
    assert_eq!(bad_device.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_device.body["field"], "device");
    let unknown = till
        .post_json(
            "/v1/pos/login",
            &json!({"pin": "2580", "device": "w1", "x": 1}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}
