//! Bad input is refused whole, with a clear status, and nothing of it is applied
//! (reliability.md promise 6; brief.md §8).
//!
//! Against a real hub over HTTP with a real device token (till S1/T9, driven by an in-memory
//! replica so that envelopes can be tampered with): no or a wrong token → 401; bytes that are
//! not an envelope, or a truncated one → 400; a wrong content type → 415; a body over 16 MiB →
//! 413; an envelope whose sender is another till → 403. Then the round that carries T9's
//! receipts is sent with one bad entry added — another store's document, a document of an
//! unknown kind, another till's session — or with changes authored by another till's actor,
//! or with a session document that is not a session: each is refused (403 / 400 / 422) and the
//! good document in the same envelope is not applied either (the summary stays at zero and
//! the hub serves no session content back). Finally the untampered round is accepted, which
//! shows the checks above were not vacuous.
//!
//! Against a real till: receipts without an Idempotency-Key, with invalid JSON, payments that do
//! not add up, unknown fields, a negative quantity, no items, an unknown VAT rate, a reused key
//! with another body, and a sale with no open session are refused with 400 / 409 / 422 and an
//! error body naming the field, and the session's receipt count does not move; the admin
//! route (force sync) refuses a missing or wrong token.

use std::time::Duration;

use anyhow::{ensure, Context};
use automerge::transaction::Transactable;
use crdt_model::ids::actor_id;
use serde_json::{json, Value};
use sync_engine::{DocEntry, DocId, Envelope, SyncRound, CONTENT_TYPE};
use tests::{
    fetch_from_hub, free_port, HubClient, HubEnv, HubProcess, SaleGen, ScriptedTill, TillProcess,
    TillSpec, STORE,
};

async fn post(
    hub: &HubClient,
    token: &str,
    envelope: &Envelope,
) -> anyhow::Result<tests::ApiResponse> {
    hub.post_sync_raw(Some(token), CONTENT_TYPE, envelope.encode()?)
        .await
}

/// Round 1 of a session for `till`, answered for real; returns round 2's request, the one
/// that carries the till's changes (round 1 only exchanges heads).
async fn request_with_changes(
    till: &mut ScriptedTill,
    hub: &HubClient,
    token: &str,
) -> anyhow::Result<(SyncRound, Envelope)> {
    let mut round = till.start_round()?;
    let first = till.next_request(&mut round)?.context("a first request")?;
    let reply = post(hub, token, &first).await?;
    ensure!(
        reply.status == 200,
        "round 1 refused: {} {}",
        reply.status,
        reply.text
    );
    till.apply_reply(&mut round, &Envelope::decode(&reply.bytes)?)?;
    let second = till
        .next_request(&mut round)?
        .context("a second request with the changes")?;
    ensure!(
        second.entries.iter().any(|e| e.message.is_some()),
        "round 2 carries no message"
    );
    Ok((round, second))
}

/// Nothing of T9's was applied: no receipts in the summary, no session content served back.
async fn assert_nothing_applied(
    hub: &HubProcess,
    admin: &str,
    token: &str,
    case: &str,
) -> anyhow::Result<()> {
    let summary = hub.client().summary(admin, STORE).await?;
    ensure!(
        summary.receipts == 0 && summary.total == 0,
        "{case}: receipts were applied: {summary:?}"
    );
    let mut served = fetch_from_hub(&hub.url(), token, STORE, "T9").await?;
    for id in served.doc_ids() {
        ensure!(
            !id.as_str().starts_with("session/") || served.heads(&id).is_empty(),
            "{case}: the hub holds content of {id}"
        );
    }
    let divergence = hub.client().divergence(admin).await?;
    if let Some(entry) = divergence.till("till:S1/T9") {
        ensure!(
            entry
                .docs
                .iter()
                .all(|d| d.doc.starts_with("catalogue/S1") || d.doc.starts_with("session/S1/T9/")),
            "{case}: the divergence report names a foreign document: {entry:?}"
        );
    }
    Ok(())
}

/// A tampered round: one entry added to the request that carries T9's receipts.
struct EnvelopeCase {
    case: &'static str,
    doc: String,
    message: Option<Vec<u8>>,
    allowed: &'static [u16],
}

impl EnvelopeCase {
    fn new(
        case: &'static str,
        doc: &str,
        message: Option<Vec<u8>>,
        allowed: &'static [u16],
    ) -> Self {
        EnvelopeCase {
            case,
            doc: doc.to_owned(),
            message,
            allowed,
        }
    }
}

/// A bad receipt request: name, Idempotency-Key, body, allowed statuses, field named.
struct ReceiptCase(
    &'static str,
    Option<&'static str>,
    String,
    &'static [u16],
    Option<&'static str>,
);

fn with_entry(
    envelope: &Envelope,
    doc: &str,
    message: Option<Vec<u8>>,
) -> anyhow::Result<Envelope> {
    let mut tampered = envelope.clone();
    tampered.entries.push(DocEntry {
        doc: DocId::new(doc)?,
        message,
        status: None,
    });
    Ok(tampered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_refuses_bad_envelopes_whole() -> anyhow::Result<()> {
    let bins = tests::binaries!();
    let work = tests::work_dir("bad_input")?;
    let env = HubEnv::sqlite(&bins, work.path());
    env.create_admin().await?;
    let token = env.enroll_till(STORE, "T9").await?;
    env.enroll_till("S2", "T1").await?;
    let hub = env.serve("hub", "127.0.0.1:0").await?;
    let admin = hub.admin_token().await?;
    let client = hub.client();

    let mut t9 = ScriptedTill::open(STORE, "T9", "node")?;
    let mut sales = SaleGen::new(9, "T9");
    let mut expected_total = 0;
    for _ in 0..3 {
        let sale = sales.sale();
        t9.sell(&sale)?;
        expected_total += sale.total;
    }
    let first = t9
        .start_round()
        .and_then(|mut s| t9.next_request(&mut s))?
        .context("first request")?;
    let first_bytes = first.encode()?;

    // Transport-level refusals.
    let status = |r: tests::ApiResponse| r.status;
    ensure!(
        status(
            client
                .post_sync_raw(None, CONTENT_TYPE, first_bytes.clone())
                .await?
        ) == 401,
        "no token"
    );
    ensure!(
        status(
            client
                .post_sync_raw(Some("not-a-token"), CONTENT_TYPE, first_bytes.clone())
                .await?
        ) == 401,
        "bad token"
    );
    let garbage = client
        .post_sync_raw(
            Some(&token),
            CONTENT_TYPE,
            b"GET / HTTP/1.1 definitely not an envelope".to_vec(),
        )
        .await?;
    ensure!(
        garbage.status == 400,
        "garbage: {} {}",
        garbage.status,
        garbage.text
    );
    let truncated = client
        .post_sync_raw(
            Some(&token),
            CONTENT_TYPE,
            first_bytes[..first_bytes.len() / 2].to_vec(),
        )
        .await?;
    ensure!(
        truncated.status == 400,
        "truncated: {} {}",
        truncated.status,
        truncated.text
    );
    let json_body = client
        .post_sync_raw(Some(&token), "application/json", b"{}".to_vec())
        .await?;
    ensure!(
        json_body.status == 415,
        "wrong content type: {} {}",
        json_body.status,
        json_body.text
    );
    // Its own client: the hub answers 413 before reading the whole body and closes that
    // connection, which a pooled connection reused afterwards would trip over.
    let oversized = HubClient::new(client.base())?
        .post_sync_raw(Some(&token), CONTENT_TYPE, vec![0u8; 17 * 1024 * 1024])
        .await?;
    ensure!(
        oversized.status == 413,
        "17 MiB: {} {}",
        oversized.status,
        oversized.text
    );
    let mut other_till = ScriptedTill::open(STORE, "T1", "node")?;
    let impostor = other_till
        .start_round()
        .and_then(|mut s| other_till.next_request(&mut s))?
        .context("request")?;
    let reply = post(client, &token, &impostor).await?;
    ensure!(
        reply.status == 403,
        "sender till:S1/T1 with T9's token: {} {}",
        reply.status,
        reply.text
    );
    assert_nothing_applied(&hub, &admin, &token, "transport").await?;

    // The round with T9's receipts, each time with one bad entry added.
    let (_session, changes) = request_with_changes(&mut t9, client, &token).await?;
    let message = changes.entries.iter().find_map(|e| e.message.clone());
    let foreign_session = format!("session/S2/T1/{}", uuid::Uuid::new_v4());
    let other_till_session = format!("session/S1/T1/{}", uuid::Uuid::new_v4());
    let cases = [
        EnvelopeCase::new("another store's catalogue", "catalogue/S2", None, &[403]),
        EnvelopeCase::new(
            "another store's session",
            &foreign_session,
            message.clone(),
            &[403],
        ),
        EnvelopeCase::new(
            "another till's session",
            &other_till_session,
            message.clone(),
            &[403],
        ),
        EnvelopeCase::new(
            "unknown document kind",
            "orders/S1/2026-11",
            None,
            &[400, 403],
        ),
        EnvelopeCase::new(
            "unknown document kind with changes",
            "hub/private",
            message,
            &[400, 403],
        ),
    ];
    for EnvelopeCase {
        case,
        doc,
        message,
        allowed,
    } in cases
    {
        let reply = post(client, &token, &with_entry(&changes, &doc, message)?).await?;
        ensure!(
            allowed.contains(&reply.status),
            "{case}: HTTP {} {}",
            reply.status,
            reply.text
        );
        ensure!(
            reply.body.get("error").is_some(),
            "{case}: no error body: {}",
            reply.text
        );
        assert_nothing_applied(&hub, &admin, &token, case).await?;
    }

    // Changes authored by another till's actor, in T9's own session document.
    let forged_actor = actor_id(&"S1".parse()?, &"T1".parse()?, "node")?;
    let mut forger = ScriptedTill::open_as(STORE, "T9", forged_actor)?;
    forger.sell(&sales.sale())?;
    let (_forged_session, forged) = request_with_changes(&mut forger, client, &token).await?;
    let reply = post(client, &token, &forged).await?;
    ensure!(
        reply.status == 403,
        "forged author: {} {}",
        reply.status,
        reply.text
    );
    assert_nothing_applied(&hub, &admin, &token, "forged author").await?;

    // A document under T9's session prefix that is not a cash session, next to a good one.
    let mut junk = ScriptedTill::open(STORE, "T9", "junk")?;
    junk.sell(&sales.sale())?;
    let junk_doc = DocId::new(format!("session/S1/T9/{}", uuid::Uuid::new_v4()))?;
    junk.replica_mut().change(&junk_doc, 0, |doc| {
        doc.put(automerge::ROOT, "kind", "definitely-not-a-session")?;
        Ok(())
    })?;
    let mut junk_round = junk.start_round()?;
    let mut refused = None;
    for _round in 0..4 {
        let Some(request) = junk.next_request(&mut junk_round)? else {
            break;
        };
        let reply = post(client, &token, &request).await?;
        if reply.status != 200 {
            refused = Some(reply);
            break;
        }
        junk.apply_reply(&mut junk_round, &Envelope::decode(&reply.bytes)?)?;
    }
    let refused = refused.context("a junk session document was accepted")?;
    ensure!(
        [400, 422].contains(&refused.status),
        "junk session: {} {}",
        refused.status,
        refused.text
    );
    assert_nothing_applied(&hub, &admin, &token, "junk session document").await?;

    // Control: the same till, untampered, is accepted and counted exactly.
    let rounds = t9.sync(&hub.url(), &token).await?;
    ensure!(rounds >= 2, "the clean sync took {rounds} round(s)");
    let summary = hub.client().summary(&admin, STORE).await?;
    ensure!(
        summary.receipts == 3 && summary.total == expected_total,
        "control: {summary:?}"
    );
    let mut served = fetch_from_hub(&hub.url(), &token, STORE, "T9").await?;
    ensure!(
        served.heads(t9.session_doc()) == t9.session_heads(),
        "hub serves other heads of T9's session"
    );
    Ok(())
}

/// A sale body with `edit` applied to a valid one.
fn sale_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut body = json!({
        "pos_id": "T1", "type": "sale",
        "items": [{"sku": "F-1", "name": "Оправа", "qty": 1, "price": 150000, "vat": "vat22"}],
        "payments": [{"method": "cash", "amount": 150000}],
    });
    edit(&mut body);
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn till_refuses_bad_receipts() -> anyhow::Result<()> {
    let bins = tests::binaries!();
    let work = tests::work_dir("bad_input")?;
    let dead_hub = format!("http://127.0.0.1:{}", free_port()?);
    let till = TillProcess::start(
        &bins,
        TillSpec::new(STORE, "T1", work.path(), &dead_hub, "unused"),
    )
    .await?;
    let client = till.client()?;
    let session = client.open_session("Иванова", 0).await?;
    let good = sale_with(|_| {});
    let reply = client.post_receipt_raw(Some("good-1"), &good).await?;
    let receipt = reply.expect_status(200, "good sale")?["receipt_id"].clone();

    let cases = [
        ReceiptCase("no Idempotency-Key", None, good.clone(), &[400], None),
        ReceiptCase(
            "invalid JSON",
            Some("bad-1"),
            "{\"pos_id\": ".to_owned(),
            &[400],
            None,
        ),
        ReceiptCase(
            "payments differ from the total",
            Some("bad-2"),
            sale_with(|b| b["payments"][0]["amount"] = json!(149999)),
            &[422],
            Some("payments"),
        ),
        ReceiptCase(
            "unknown field",
            Some("bad-3"),
            sale_with(|b| b["discont"] = json!(100)),
            &[400, 422],
            None,
        ),
        ReceiptCase(
            "negative quantity",
            Some("bad-4"),
            sale_with(|b| b["items"][0]["qty"] = json!(-1)),
            &[400, 422],
            Some("items[0].qty"),
        ),
        ReceiptCase(
            "no items",
            Some("bad-5"),
            sale_with(|b| b["items"] = json!([])),
            &[422],
            Some("items"),
        ),
        ReceiptCase(
            "unknown VAT rate",
            Some("bad-6"),
            sale_with(|b| b["items"][0]["vat"] = json!("vat99")),
            &[400, 422],
            None,
        ),
        ReceiptCase(
            "negative price",
            Some("bad-7"),
            sale_with(|b| b["items"][0]["price"] = json!(-150000)),
            &[400, 422],
            Some("items[0].price"),
        ),
        ReceiptCase(
            "same key, other body",
            Some("good-1"),
            sale_with(|b| b["items"][0]["qty"] = json!(2)),
            &[409],
            None,
        ),
    ];
    for ReceiptCase(case, key, body, allowed, field) in cases {
        let reply = client.post_receipt_raw(key, &body).await?;
        ensure!(
            allowed.contains(&reply.status),
            "{case}: HTTP {} {}",
            reply.status,
            reply.text
        );
        ensure!(
            reply.str_field("error").is_some(),
            "{case}: no `error` in {}",
            reply.text
        );
        if let Some(field) = field {
            let got = reply.str_field("field").unwrap_or_default();
            ensure!(
                got.starts_with(field),
                "{case}: field {got:?}, expected {field}: {}",
                reply.text
            );
        }
    }
    // The admin route refuses a missing or wrong token.
    for token in [None, Some("wrong-admin-token")] {
        let reply = client.force_sync_with(token).await?;
        ensure!(
            [401, 403].contains(&reply.status),
            "force sync with token {token:?}: HTTP {} {}",
            reply.status,
            reply.text
        );
    }

    // The good key still answers with the original receipt.
    let again = client.post_receipt_raw(Some("good-1"), &good).await?;
    ensure!(
        again.expect_status(200, "replay")?["receipt_id"] == receipt,
        "replay gave another receipt"
    );

    let receipts = client.session_receipts(&session).await?;
    ensure!(
        receipts.len() == 1,
        "{} receipts stored, expected the good one only",
        receipts.len()
    );
    let current = client.current_session().await?.context("open session")?;
    ensure!(current["receipts_count"] == 1, "receipts_count: {current}");

    client.close_session().await?;
    let reply = client.post_receipt_raw(Some("late-1"), &good).await?;
    ensure!(
        reply.status == 409 && reply.str_field("error") == Some("no_open_session"),
        "no session: {} {}",
        reply.status,
        reply.text
    );
    ensure!(
        client.session_receipts(&session).await?.len() == 1,
        "a receipt was added to the closed session"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
