//! HTTP adapters: the axum handler driven with `oneshot` (status codes for every failure), and
//! the reqwest client against a real listener on loopback (error mapping, full sync round).
#![cfg(feature = "http-server")]

use std::future::Future;
use std::sync::{Arc, Mutex};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::ActorId;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use sync_engine::http_server::{
    sync_router, AuthenticatedPeer, SyncService, SyncServiceError, CORRELATION_HEADER,
};
use sync_engine::{
    Access, DocEntry, DocId, Envelope, MemoryReplica, PeerId, PolicyTable, CONTENT_TYPE,
    MAX_ENVELOPE_BYTES, SYNC_PATH,
};
use tower::ServiceExt;

const TOKEN: &str = "till-01-secret";

fn peer(s: &str) -> PeerId {
    PeerId::new(s).expect("valid peer")
}

fn doc(s: &str) -> DocId {
    DocId::new(s).expect("valid doc")
}

/// The hub as a [`SyncService`]: a memory replica behind a mutex.
struct MemoryService {
    hub: Mutex<MemoryReplica>,
}

impl SyncService for MemoryService {
    fn sync(
        &self,
        peer: AuthenticatedPeer,
        request: Envelope,
    ) -> impl Future<Output = Result<Envelope, SyncServiceError>> + Send {
        let result = match self.hub.lock() {
            Ok(mut hub) => hub
                .serve(&peer.peer, &request)
                .map(|response| response.reply)
                .map_err(SyncServiceError::from),
            Err(_) => Err(SyncServiceError::Internal("hub lock poisoned".into())),
        };
        std::future::ready(result)
    }
}

fn hub() -> MemoryReplica {
    let policy = PolicyTable::new().grant(&peer("till-01"), "store/01/", Access::ReadWrite);
    let mut hub = MemoryReplica::new(
        peer("hub"),
        ActorId::from(b"hub".as_slice()),
        Arc::new(policy),
    );
    hub.change(&doc("store/01/catalogue"), 1, |d| {
        d.put(automerge::ROOT, "SKU-1", 100_i64)?;
        Ok(())
    })
    .expect("hub change");
    hub
}

/// The application's authentication: one bearer token maps to till-01.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let expected = format!("Bearer {TOKEN}");
    let authorised = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if authorised {
        request.extensions_mut().insert(AuthenticatedPeer {
            peer: peer("till-01"),
        });
    }
    next.run(request).await
}

fn app() -> Router {
    let service = Arc::new(MemoryService {
        hub: Mutex::new(hub()),
    });
    sync_router(service).layer(middleware::from_fn(authenticate))
}

async fn post(
    app: Router,
    body: Vec<u8>,
    authorised: bool,
) -> (StatusCode, serde_json::Value, Option<String>) {
    let mut request = Request::post(SYNC_PATH).header(header::CONTENT_TYPE, CONTENT_TYPE);
    if authorised {
        request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let response = app
        .oneshot(request.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let correlation = response
        .headers()
        .get(CORRELATION_HEADER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ENVELOPE_BYTES + 1024)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json, correlation)
}

fn empty_request(sender: &str) -> Vec<u8> {
    Envelope::new(peer(sender), true, vec![])
        .encode()
        .expect("encode")
}

#[tokio::test]
async fn a_first_round_returns_the_catalogue_offer() {
    let mut request =
        Request::post(SYNC_PATH).header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    request = request.header(header::CONTENT_TYPE, CONTENT_TYPE);
    let response = app()
        .oneshot(
            request
                .body(Body::from(empty_request("till-01")))
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ENVELOPE_BYTES)
        .await
        .expect("body");
    let reply = Envelope::decode(&bytes).expect("reply decodes");
    assert_eq!(reply.sender, peer("hub"));
    assert!(reply.entry(&doc("store/01/catalogue")).is_some());
}

#[tokio::test]
async fn oversized_body_is_413() {
    let (status, json, correlation) = post(app(), vec![0u8; MAX_ENVELOPE_BYTES + 1], true).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json["error"], "payload_too_large");
    assert!(correlation.is_some());
}

#[tokio::test]
async fn garbage_is_400_with_a_clear_message() {
    let (status, json, _) = post(app(), b"definitely not an envelope".to_vec(), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_envelope");
    let message = json["message"].as_str().expect("message");
    assert!(message.contains("bad magic"), "{message}");
    assert_eq!(json["correlation_id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn missing_authentication_is_401_before_the_body_is_read() {
    let (status, json, _) = post(app(), b"garbage".to_vec(), false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "unauthorized");
}

#[tokio::test]
async fn forbidden_document_is_403_and_other_refusals_422() {
    let hello = automerge::AutoCommit::new()
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .expect("hello")
        .encode();
    let forbidden = Envelope::new(
        peer("till-01"),
        false,
        vec![DocEntry::message(doc("store/02/catalogue"), hello)],
    );
    let (status, json, _) = post(app(), forbidden.encode().expect("encode"), true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(json["message"]
        .as_str()
        .expect("message")
        .contains("store/02/catalogue"));

    // Sender mismatch: refused with a generic body that does not echo internals.
    let (status, json, correlation) = post(app(), empty_request("till-02"), true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["message"], "the sync request was refused");
    assert_eq!(json["correlation_id"].as_str(), correlation.as_deref());
}

#[tokio::test]
async fn foreign_content_type_is_415() {
    let request = Request::post(SYNC_PATH)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(empty_request("till-01")))
        .expect("request");
    let response = app().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[cfg(feature = "http-client")]
mod client {
    use std::time::Duration;

    use sync_engine::http_client::{HttpSyncClient, TransportError};
    use sync_engine::{DocSet, SyncRound};

    use super::*;

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_till_syncs_over_http_to_a_fixpoint() {
        let base = serve(app()).await;
        let client = HttpSyncClient::new(&base, TOKEN, Duration::from_secs(5)).expect("client");
        assert!(
            !format!("{client:?}").contains(TOKEN),
            "the token never reaches logs"
        );
        let policy = PolicyTable::new().grant(&peer("hub"), "store/01/", Access::ReadWrite);
        let mut docs = std::collections::BTreeMap::<DocId, automerge::AutoCommit>::new();
        let mut round = SyncRound::new(peer("till-01"), peer("hub"), Vec::new());
        let mut rounds = 0;
        while let Some(request) = round.next_request(&mut docs, &policy).expect("request") {
            let reply = client.round(&request).await.expect("round trip");
            round
                .apply_reply(&mut docs, &policy, &reply)
                .expect("apply");
            rounds += 1;
        }
        assert_eq!(rounds, 2);
        assert_eq!(docs.doc_ids(), vec![doc("store/01/catalogue")]);
    }

    #[tokio::test]
    async fn statuses_map_to_precise_errors() {
        let base = serve(app()).await;
        let request = Envelope::new(peer("till-01"), true, vec![]);

        let wrong_token =
            HttpSyncClient::new(&base, "nope", Duration::from_secs(5)).expect("client");
        assert!(matches!(
            wrong_token.round(&request).await,
            Err(TransportError::Unauthorized)
        ));

        let client = HttpSyncClient::new(&base, TOKEN, Duration::from_secs(5)).expect("client");
        let hello = automerge::AutoCommit::new()
            .sync()
            .generate_sync_message(&mut automerge::sync::State::new())
            .expect("hello")
            .encode();
        let forbidden = Envelope::new(
            peer("till-01"),
            false,
            vec![DocEntry::message(doc("store/02/catalogue"), hello)],
        );
        match client.round(&forbidden).await {
            Err(TransportError::Forbidden { message }) => assert!(message.contains("store/02")),
            other => panic!("expected Forbidden, got {other:?}"),
        }
        let impostor = Envelope::new(peer("till-02"), true, vec![]);
        assert!(matches!(
            client.round(&impostor).await,
            Err(TransportError::Rejected { status: 422, .. })
        ));
    }

    #[tokio::test]
    async fn timeouts_and_closed_ports_are_told_apart() {
        let slow = Router::new().route(
            SYNC_PATH,
            axum::routing::post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        );
        let base = serve(slow).await;
        let client = HttpSyncClient::new(&base, TOKEN, Duration::from_millis(200)).expect("client");
        let request = Envelope::new(peer("till-01"), true, vec![]);
        assert!(matches!(
            client.round(&request).await,
            Err(TransportError::Timeout)
        ));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let closed = format!("http://{}", listener.local_addr().expect("address"));
        drop(listener);
        let client = HttpSyncClient::new(&closed, TOKEN, Duration::from_secs(2)).expect("client");
        assert!(matches!(
            client.round(&request).await,
            Err(TransportError::Unreachable(_))
        ));

        // A proxy in front of the hub may answer on its own.
        for (status, check) in [
            (
                StatusCode::SERVICE_UNAVAILABLE,
                (|e| matches!(e, TransportError::Server { status: 503 }))
                    as fn(&TransportError) -> bool,
            ),
            (StatusCode::PAYLOAD_TOO_LARGE, |e| {
                matches!(e, TransportError::PayloadTooLarge)
            }),
            (StatusCode::BAD_GATEWAY, |e| {
                matches!(e, TransportError::Server { status: 502 })
            }),
        ] {
            let proxy = Router::new().route(
                SYNC_PATH,
                axum::routing::post(move || async move { status }),
            );
            let base = serve(proxy).await;
            let client = HttpSyncClient::new(&base, TOKEN, Duration::from_secs(2)).expect("client");
            let error = client.round(&request).await.expect_err("proxy error");
            assert!(check(&error), "{status}: {error:?}");
        }

        // A 200 whose body is not an envelope.
        let liar = Router::new().route(SYNC_PATH, axum::routing::post(|| async { "hello" }));
        let base = serve(liar).await;
        let client = HttpSyncClient::new(&base, TOKEN, Duration::from_secs(2)).expect("client");
        assert!(matches!(
            client.round(&request).await,
            Err(TransportError::InvalidReply(_))
        ));
    }
}
