//! The auth matrix: walks `hub::api::ROUTES` (the same table the router is built from) and
//! checks every route against every kind of caller — anonymous, malformed / unknown /
//! expired / revoked credentials, each user role, a till's device token — plus store
//! scoping, the public allow-list, login throttling, body limits and error bodies.

mod api_support;
mod support;
mod write_support;

use api_support::{Hub, Till};
use axum::http::{Method, StatusCode};
use hub::api::{Access, Route, ROUTES};
use hub::auth_types::Role;
use std::time::Duration;
use support::for_each_backend;
use sync_engine::{Envelope, PeerId, CONTENT_TYPE};
use write_support::WriteOnce;

/// Everyone who knocks.
struct Callers {
    roles: Vec<(Role, String)>,
    device: String,
    bad: Vec<(&'static str, String)>,
}

async fn callers(hub: &Hub) -> Callers {
    let mut roles = Vec::new();
    for role in Role::ALL {
        let store = (role == Role::Cashier).then_some("S1");
        let token = hub.user_token(role.as_str(), role, store).await;
        roles.push((role, token));
    }
    let device = hub.db.enroll_till("S1", "T1").await.expect("enroll");
    let revoked = hub.db.enroll_till("S1", "T9").await.expect("enroll");
    assert!(hub.db.revoke_till("S1", "T9").await.expect("revoke"));
    let expired = hub
        .db
        .create_login("admin", Duration::ZERO)
        .await
        .expect("session");
    let bad = vec![
        ("unknown", "ab".repeat(32)),
        ("malformed", "not a token!".to_owned()),
        ("expired", expired),
        ("revoked device", revoked),
    ];
    Callers { roles, device, bad }
}

/// A request for `route` that succeeds when the caller is allowed.
fn sample(route: &Route) -> (String, Option<&'static str>, Vec<u8>) {
    let path = route.path.replace("{store}", "S1");
    match route.path {
        "/api/v1/login" => (
            path,
            Some("application/json"),
            br#"{"name": "admin", "password": "correct horse battery"}"#.to_vec(),
        ),
        "/api/v1/sync" => {
            let envelope = Envelope::new(PeerId::new("till:S1/T1").expect("peer"), true, vec![]);
            (path, Some(CONTENT_TYPE), envelope.encode().expect("encode"))
        }
        "/v1/health"
        | "/metrics"
        | "/api/v1/logout"
        | "/api/v1/stores/{store}/summary"
        | "/api/v1/divergence" => (path, None, Vec::new()),
        other => panic!("the auth matrix has no sample request for {other}: add one"),
    }
}

async fn status(hub: &Hub, route: &Route, token: Option<&str>) -> StatusCode {
    let (path, content_type, body) = sample(route);
    let (status, body) = hub
        .call(route.method.method(), &path, token, content_type, body)
        .await;
    if status.is_client_error() && status != StatusCode::NOT_FOUND {
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
        assert!(json["error"].is_string(), "{json}");
        assert!(json["correlation_id"].is_string(), "{json}");
    }
    status
}

/// Logout ends the session it is called with, so each call gets a fresh one.
async fn token_for(hub: &Hub, route: &Route, role: Role, token: &str) -> String {
    if route.path == "/api/v1/logout" {
        hub.db
            .create_login(role.as_str(), Duration::from_secs(60))
            .await
            .expect("session")
    } else {
        token.to_owned()
    }
}

#[tokio::test]
async fn every_route_refuses_whom_the_table_refuses() {
    for_each_backend("auth matrix", |config| async move {
        let hub = Hub::start(&config).await;
        let callers = callers(&hub).await;
        for route in ROUTES {
            let name = format!("{:?} {}", route.method, route.path);
            let public = route.access == Access::Public;

            let anonymous = status(&hub, route, None).await;
            if public {
                assert!(anonymous.is_success(), "{name}: anonymous got {anonymous}");
            } else {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{name}: anonymous");
            }
            for (what, token) in &callers.bad {
                let got = status(&hub, route, Some(token)).await;
                if public {
                    assert!(got.is_success(), "{name}: {what} token got {got}");
                } else {
                    assert_eq!(got, StatusCode::UNAUTHORIZED, "{name}: {what} token");
                }
            }
            for (role, token) in &callers.roles {
                let token = token_for(&hub, route, *role, token).await;
                let got = status(&hub, route, Some(&token)).await;
                let allowed = match route.access {
                    Access::Public => true,
                    Access::Device => false,
                    Access::Roles(roles) => roles.contains(role),
                };
                if allowed {
                    assert!(got.is_success(), "{name}: role {role} got {got}");
                } else {
                    assert_eq!(got, StatusCode::FORBIDDEN, "{name}: role {role}");
                }
            }
            let got = status(&hub, route, Some(&callers.device)).await;
            match route.access {
                Access::Public | Access::Device => {
                    assert!(got.is_success(), "{name}: device got {got}");
                }
                Access::Roles(_) => assert_eq!(got, StatusCode::FORBIDDEN, "{name}: device"),
            }
        }
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_public_allow_list_is_exactly_health_metrics_and_login() {
    let mut public: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| r.path)
        .collect();
    public.sort_unstable();
    // Login is public by nature: it is how a user obtains a token.
    assert_eq!(public, ["/api/v1/login", "/metrics", "/v1/health"]);
    let device: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.access == Access::Device)
        .map(|r| r.path)
        .collect();
    assert_eq!(device, ["/api/v1/sync"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Hub::start(&hub::db::DbConfig::Sqlite {
        dir: dir.path().to_path_buf(),
    })
    .await;
    let (status, body) = hub
        .call(Method::GET, "/api/v1/users", None, None, vec![])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["error"], "not_found");
    hub.db.close().await;
}

#[tokio::test]
async fn store_scoped_users_see_only_their_store() {
    for_each_backend("auth store scope", |config| async move {
        let hub = Hub::start(&config).await;
        let manager_s2 = hub.user_token("m2", Role::Manager, Some("S2")).await;
        let support_s2 = hub.user_token("s2", Role::Support, Some("S2")).await;
        let support = hub.user_token("s", Role::Support, None).await;
        let mut till = Till::enrol(&hub, "S1", "T1").await;
        till.open_session("Иванова");
        till.sync(&hub).await.expect("sync");

        let (status, _) = hub
            .call(
                Method::GET,
                "/api/v1/stores/S1/summary",
                Some(&manager_s2),
                None,
                vec![],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let own = hub.get_json("/api/v1/stores/S2/summary", &manager_s2).await;
        assert_eq!(own["receipts"], 0);
        let (status, _) = hub
            .call(
                Method::GET,
                "/api/v1/stores/bad%20id/summary",
                Some(&support),
                None,
                vec![],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let scoped = hub.get_json("/api/v1/divergence", &support_s2).await;
        assert_eq!(
            scoped["tills"].as_array().expect("tills").len(),
            0,
            "{scoped}"
        );
        let all = hub.get_json("/api/v1/divergence", &support).await;
        assert_eq!(all["tills"][0]["peer"], "till:S1/T1", "{all}");
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn login_is_throttled_limited_and_generic() {
    for_each_backend("auth login", |config| async move {
        let hub = Hub::start(&config).await;
        hub.user_token("olga", Role::Manager, None).await;
        let login = |password: &str| {
            serde_json::to_vec(&serde_json::json!({"name": "olga", "password": password}))
                .expect("json")
        };
        let post = |body: Vec<u8>| {
            let hub = hub.clone();
            async move {
                hub.call(
                    Method::POST,
                    "/api/v1/login",
                    None,
                    Some("application/json"),
                    body,
                )
                .await
            }
        };

        let (status, body) = post(login("correct horse battery")).await;
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["role"], "manager");
        let token = json["token"].as_str().expect("token").to_owned();
        assert!(json["expires_at"].as_str().expect("expiry").ends_with('Z'));
        let summary = hub.get_json("/api/v1/stores/S1/summary", &token).await;
        assert_eq!(summary["receipts"], 0);

        // Unknown user and wrong password: the same generic answer.
        let (status, unknown) = hub
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some("application/json"),
                br#"{"name": "nobody", "password": "whatever123"}"#.to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, wrong) = post(login("wrong password")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let strip = |body: &[u8]| {
            let mut json: serde_json::Value = serde_json::from_slice(body).expect("json");
            json["correlation_id"] = serde_json::Value::Null;
            json
        };
        assert_eq!(strip(&unknown), strip(&wrong));

        for _ in 0..4 {
            let (status, _) = post(login("wrong password")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        // Locked now, even with the right password, on any hub sharing the database.
        let second = Hub::start(&config).await;
        let (status, body) = second
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some("application/json"),
                login("correct horse battery"),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            String::from_utf8_lossy(&body)
        );

        let (status, _) = post(b"{not json".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = post(vec![b' '; 64 * 1024]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        // Logout ends the session.
        let (status, _) = hub
            .call(Method::POST, "/api/v1/logout", Some(&token), None, vec![])
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = hub
            .call(
                Method::GET,
                "/api/v1/stores/S1/summary",
                Some(&token),
                None,
                vec![],
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        second.db.close().await;
        hub.db.close().await;
    })
    .await;
}
