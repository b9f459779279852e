//! Walks the route table (auth matrix), checks the body limit and the request timeout, and runs
//! the till against a hub that cannot be reached: sales keep working, the link shows offline,
//! nothing is lost.

mod common;

use axum::http::{Method, StatusCode};
use common::{sale, Till, ADMIN_TOKEN};
use serde_json::json;
use till_node::api::{routes, RouteAccess, MAX_BODY_BYTES, REQUEST_TIMEOUT};

fn concrete(path: &str) -> String {
    path.replace("{session_id}", &uuid::Uuid::new_v4().to_string())
}

#[tokio::test]
async fn admin_routes_refuse_anonymous_and_wrong_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let table = routes();
    assert!(table.iter().any(|r| r.access == RouteAccess::Admin));
    for route in &table {
        let path = concrete(route.path);
        let body = (route.method == Method::POST).then(|| b"{}".to_vec());
        let anonymous = till
            .send(route.method.clone(), &path, &[], body.clone())
            .await;
        let wrong = till
            .send(
                route.method.clone(),
                &path,
                &[("Authorization", "Bearer not-the-token")],
                body.clone(),
            )
            .await;
        let malformed = till
            .send(
                route.method.clone(),
                &path,
                &[("Authorization", ADMIN_TOKEN)],
                body.clone(),
            )
            .await;
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let right = till
            .send(
                route.method.clone(),
                &path,
                &[("Authorization", bearer.as_str())],
                body,
            )
            .await;
        match route.access {
            RouteAccess::Admin => {
                assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{route:?}");
                assert_eq!(anonymous.body["error"], "unauthorized");
                assert_eq!(malformed.status, StatusCode::UNAUTHORIZED, "{route:?}");
                assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{route:?}");
                // Admitted: done (2xx), or refused for a reason other than access (409 while a
                // sync runs, or no register attached on this till).
                assert!(
                    right.status.is_success() || right.status == StatusCode::CONFLICT,
                    "{route:?}: {:?}",
                    right.status
                );
            }
            RouteAccess::Cashier => {
                // Only a PIN login's token opens these; the admin token is not one.
                for reply in [&anonymous, &wrong, &malformed, &right] {
                    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{route:?}");
                    assert_eq!(reply.body["error"], "login_required", "{route:?}");
                }
            }
            RouteAccess::Public => {
                for reply in [&anonymous, &wrong, &right] {
                    assert!(
                        reply.status != StatusCode::UNAUTHORIZED
                            && reply.status != StatusCode::FORBIDDEN,
                        "{route:?} is open but answered {:?}",
                        reply.status
                    );
                }
            }
        }
        // Error bodies never echo the token.
        for reply in [&anonymous, &wrong, &malformed, &right] {
            assert!(!reply.body.to_string().contains(ADMIN_TOKEN), "{route:?}");
        }
    }
}

#[tokio::test]
async fn forced_sync_answers_409_while_one_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let syncer = till.state.syncer();
    // On the single-threaded test runtime the spawned session cannot finish before this task
    // yields, so it is still running during the calls below.
    assert!(syncer.try_start(), "nothing runs yet");
    assert!(syncer.is_running());
    assert!(!syncer.try_start(), "a second start is refused");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let headers = [("Authorization", bearer.as_str())];
    let busy = till
        .send(
            Method::POST,
            "/v1/kkt/buffer/sync?force=true",
            &headers,
            None,
        )
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.body["error"], "sync_in_progress");
    // Once it ends, a forced sync starts again.
    for _ in 0..200 {
        if !syncer.is_running() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let started = till
        .send(
            Method::POST,
            "/v1/kkt/buffer/sync?force=true",
            &headers,
            None,
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    till.open_session(0).await;
    let mut body = sale(1000, "cash");
    body["pos_id"] = json!("x".repeat(MAX_BODY_BYTES + 1));
    let reply = till.receipt("big", &body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error"], "payload_too_large");
    let current = till.get("/v1/session/current").await;
    assert_eq!(current.body["receipts_count"], 0);
}

#[tokio::test]
async fn unreachable_hub_leaves_sales_working_and_the_link_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    till.open_session(0).await;
    for i in 0..3 {
        let reply = till.receipt(&format!("off-{i}"), &sale(1000, "cash")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let result = till.state.syncer().sync_now().await;
    assert!(result.is_err(), "the hub cannot be reached");
    let after = till.receipt("off-after", &sale(1000, "cash")).await;
    assert_eq!(after.status, StatusCode::OK, "sales keep working offline");

    let status = till.get("/v1/kkt/buffer/status").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["network_status"], "offline");
    assert_eq!(status.body["current_queued"], 4);
    assert_eq!(status.body["unsynced_receipts"], 4);
    assert_eq!(status.body["total_capacity"], 200);
    assert_eq!(status.body["percent_full"], 2.0);
    assert_eq!(status.body["circuit_state"], "CLOSED");
    assert_eq!(status.body["dlq_size"], 0);
    assert!(status.body["last_sync"].is_null());

    let health = till.get("/v1/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "degraded");
    assert_eq!(health.body["components"]["storage"]["status"], "ok");
    assert_eq!(health.body["components"]["hub_link"]["status"], "offline");
    assert!(health.body["components"]["clock"]["hlc_drift_seconds"].is_number());

    let metrics = till.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().expect("text exposition");
    for line in [
        "kkt_buffer_size 4",
        "kkt_network_state 2",
        "kkt_receipts_accepted_total 4",
        "kkt_sync_failures_total 1",
        "kkt_sync_duration_seconds_count 1",
        "kkt_hlc_drift_seconds",
        "kkt_receipts_synced_total 0",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
}

#[tokio::test]
async fn a_till_that_stopped_writing_refuses_sales_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    till.open_session(0).await;
    let first = till.receipt("before", &sale(1000, "cash")).await;
    assert_eq!(first.status, StatusCode::OK);
    till.state
        .node()
        .call(|node| node.mark_broken("simulated storage failure"))
        .await
        .expect("node");
    let refused = till.receipt("after", &sale(1000, "cash")).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.body["error"], "storage_failed");
    assert!(
        !refused.body.to_string().contains("simulated"),
        "internals stay in the log"
    );
    let replay = till.receipt("before", &sale(1000, "cash")).await;
    assert_eq!(
        replay.status,
        StatusCode::OK,
        "a durable answer is still replayed"
    );
    assert_eq!(replay.body, first.body);
    let health = till.get("/v1/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.body["status"], "unhealthy");
    assert_eq!(health.body["components"]["storage"]["status"], "failed");
}

/// A client that sends the headers and the start of a body, then nothing: the till answers 408
/// once [`REQUEST_TIMEOUT`] has passed instead of holding the connection. Paused time makes the
/// 30 s pass at once.
#[tokio::test(start_paused = true)]
async fn a_stuck_request_is_cut_off_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("tempdir");
    let till = Till::open(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let router = till.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let started = tokio::time::Instant::now();
    stream
        .write_all(
            b"POST /v1/kkt/receipt HTTP/1.1\r\nHost: till\r\nIdempotency-Key: stuck\r\n\
              Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"pos_id\":",
        )
        .await
        .expect("send the start");
    let mut answer = Vec::new();
    let read_answer = async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("request_timeout") {
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "connection closed without an answer: {answer:?}");
            answer.extend_from_slice(&buffer[..read]);
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT * 2, read_answer)
        .await
        .expect("the till cut the request off");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() >= REQUEST_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
}
