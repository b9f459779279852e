//! `docs/api.md` against the code, so the reference cannot drift: every route of the till's
//! route table (`till_node::api::routes()`) has its own `### METHOD path` section in the
//! document's "Till API" part, and every JSON field of the wire types that route reads or
//! answers (`till_api`, read through serde by `till_api::fields::field_names`) is named in that
//! section, as `` `field` `` or `"field"`. A new route, a new field or a renamed one fails here
//! until the document says it.

use crdt_model::fiscal::{FiscalNumbers, FiscalStamp, OfdState};
use crdt_model::receipt::{ItemDraft, Payment, PaymentDraft, ReceiptDraft, ReceiptLine};
use crdt_model::Kopecks;
use crdt_model::Receipt;
use till_api::fields::field_names;
use till_api::*;
use till_node::api::routes;

/// The field names of one wire type, or `None` when it is not a plain struct.
type Fields = fn() -> Option<&'static [&'static str]>;

/// The JSON field names of a `FiscalStamp` (a printed answer's `fiscal_doc`). Its numbers are
/// `#[serde(flatten)]`ed, so serde reads it as a map and [`field_names`] has no list: the
/// names are read from a serialized stamp instead (it has no optional field to skip).
fn stamp_field_names() -> Option<&'static [&'static str]> {
    let stamp = FiscalStamp {
        kind: "receipt".to_owned(),
        numbers: FiscalNumbers {
            fn_number: "9999078900001234".to_owned(),
            fd_number: 1,
            fiscal_sign: 1,
            shift_number: 1,
            receipt_number: 1,
            datetime_unix: 1,
        },
        total: Kopecks(1),
        ofd_status: OfdState::Pending,
    };
    let value = serde_json::to_value(&stamp).ok()?;
    let names: Vec<&'static str> = value
        .as_object()?
        .keys()
        .map(|name| &*Box::leak(name.clone().into_boxed_str()))
        .collect();
    Some(Box::leak(names.into_boxed_slice()))
}

/// For each route, the wire types whose fields its section must name (bodies, answers and the
/// structs nested in them). Every route of the table must be listed, with no types when it
/// reads and answers no JSON struct (a binary envelope, Prometheus text).
fn wire_types() -> Vec<(&'static str, &'static str, Vec<Fields>)> {
    vec![
        (
            "POST",
            "/v1/pos/login",
            vec![field_names::<LoginRequest>, field_names::<LoginAnswer>],
        ),
        (
            "POST",
            "/v1/pos/approve",
            vec![field_names::<ApproveRequest>, field_names::<ApproveAnswer>],
        ),
        ("POST", "/v1/pos/logout", vec![field_names::<LogoutAnswer>]),
        ("POST", "/v1/pos/sync", vec![]),
        (
            "POST",
            "/v1/session/open",
            vec![
                field_names::<OpenSessionRequest>,
                field_names::<SessionOpened>,
            ],
        ),
        (
            "GET",
            "/v1/session/current",
            vec![field_names::<SessionSummary>, field_names::<Payments>],
        ),
        (
            "POST",
            "/v1/session/cash",
            vec![field_names::<CashRequest>, field_names::<MovementAck>],
        ),
        (
            "POST",
            "/v1/session/close",
            vec![
                field_names::<CloseRequest>,
                field_names::<CloseRecord>,
                field_names::<Payments>,
            ],
        ),
        (
            "GET",
            "/v1/session/{session_id}/receipts",
            vec![
                field_names::<SessionReceipts>,
                field_names::<Receipt>,
                field_names::<ReceiptLine>,
                field_names::<Payment>,
            ],
        ),
        (
            "POST",
            "/v1/kkt/receipt",
            vec![
                field_names::<ReceiptDraft>,
                field_names::<ItemDraft>,
                field_names::<PaymentDraft>,
                field_names::<ReceiptAnswer>,
                stamp_field_names,
            ],
        ),
        (
            "POST",
            "/v1/pos/refund",
            vec![field_names::<RefundRequest>, field_names::<ReceiptAnswer>],
        ),
        (
            "GET",
            "/v1/kkt/buffer/status",
            vec![
                field_names::<BufferStatus>,
                field_names::<BufferStages>,
                field_names::<RegisterDetails>,
            ],
        ),
        (
            "POST",
            "/v1/kkt/buffer/sync",
            vec![field_names::<ForceSyncAnswer>],
        ),
        (
            "GET",
            "/v1/kkt/buffer/logs",
            vec![field_names::<LogEntries>, field_names::<LogEntry>],
        ),
        (
            "POST",
            "/v1/kkt/circuit_breaker/reset",
            vec![field_names::<BreakerResetAnswer>],
        ),
        (
            "GET",
            "/v1/kkt/dlq",
            vec![field_names::<DeadLetters>, field_names::<DeadLetter>],
        ),
        (
            "POST",
            "/v1/kkt/dlq/requeue",
            vec![field_names::<RequeueAnswer>],
        ),
        (
            "POST",
            "/v1/session/x_report",
            vec![field_names::<XReportAnswer>],
        ),
        (
            "GET",
            "/v1/health",
            vec![
                field_names::<Health>,
                field_names::<HealthComponents>,
                field_names::<StorageHealth>,
                field_names::<HubLinkHealth>,
                field_names::<ClockHealth>,
                field_names::<RejectedClock>,
                field_names::<BufferHealth>,
                field_names::<SessionHealth>,
                field_names::<BreakerHealth>,
                field_names::<RegisterDetails>,
                field_names::<FiscalHealth>,
            ],
        ),
        ("GET", "/metrics", vec![]),
    ]
}

/// The "Till API" part of docs/api.md.
fn till_part() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    let text = std::fs::read_to_string(path).expect("docs/api.md is readable");
    let start = text
        .find("\n## Till API")
        .expect("docs/api.md has `## Till API`");
    let rest = &text[start + 1..];
    let end = rest[1..].find("\n## ").map_or(rest.len(), |i| i + 1);
    rest[..end].to_owned()
}

/// The section of `method path`: from its `###` heading to the next heading. The heading may
/// go on after the path with a space or a query (`?force=true`), not with more path.
fn section<'a>(doc: &'a str, method: &str, path: &str) -> Option<&'a str> {
    let heading = format!("\n### {method} {path}");
    let mut from = 0;
    while let Some(found) = doc[from..].find(&heading) {
        let start = from + found + 1;
        let after = &doc[start + heading.len() - 1..];
        if after.starts_with(['\n', ' ', '?']) {
            let body = &doc[start..];
            let end = body[1..].find("\n#").map_or(body.len(), |i| i + 1);
            return Some(&body[..end]);
        }
        from = start;
    }
    None
}

#[test]
fn every_route_has_its_section_in_the_api_reference() {
    let doc = till_part();
    let missing: Vec<String> = routes()
        .iter()
        .map(|route| format!("{} {}", route.method, route.path))
        .filter(|route| {
            let (method, path) = route.split_once(' ').expect("method and path");
            section(&doc, method, path).is_none()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md has no `### METHOD path` section for: {missing:?}"
    );
}

#[test]
fn every_route_names_its_wire_types_here() {
    let table = wire_types();
    for route in routes() {
        let listed = table
            .iter()
            .filter(|(method, path, _)| *method == route.method.as_str() && *path == route.path)
            .count();
        assert_eq!(listed, 1, "{} {} in wire_types()", route.method, route.path);
    }
    assert_eq!(
        table.len(),
        routes().len(),
        "wire_types() lists a route the table lacks"
    );
}

#[test]
fn every_wire_field_is_documented_in_its_route_section() {
    let doc = till_part();
    let mut undocumented = Vec::new();
    for (method, path, types) in wire_types() {
        let Some(text) = section(&doc, method, path) else {
            continue;
        };
        for fields in types {
            let names = fields().expect("a wire type with named fields");
            for name in names {
                let named =
                    text.contains(&format!("`{name}`")) || text.contains(&format!("\"{name}\""));
                if !named {
                    undocumented.push(format!("{method} {path}: `{name}`"));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "docs/api.md does not name these fields in their route's section:\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn the_check_finds_sections_and_misses() {
    let doc = "\n### POST /v1/a?x=1\n`f`\n### GET /v1/a/b\n\"g\"\n";
    assert!(section(doc, "POST", "/v1/a").is_some_and(|s| s.contains("`f`")));
    assert!(section(doc, "POST", "/v1/a").is_some_and(|s| !s.contains("\"g\"")));
    assert!(section(doc, "GET", "/v1/a").is_none());
    assert!(section(doc, "GET", "/v1/a/b").is_some());
}
