//! Tests of the staff document: layout round trip, last writer by HLC (also across a
//! concurrent merge), and refusal of bad hashes, bad logins and corrupt entries.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc, ScalarValue, ROOT};

use super::*;
use crate::ids::StoreId;

const HASH_A: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzYWx0$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
const HASH_B: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0eHg$Zm9vYmFyYmF6cXV4cXV1eHh4eHh4eHh4";

fn store_id() -> StoreId {
    StoreId::new("S1").expect("store")
}

fn hlc(ms: u64, node: &str) -> Hlc {
    Hlc::new(ms, 0, node).expect("hlc")
}

fn cashier(login: &str, hash: &str, ms: u64) -> StaffMember {
    StaffMember {
        login: login.to_owned(),
        role: StaffRole::Cashier,
        secret_hash: hash.to_owned(),
        active: true,
        updated_at: hlc(ms, "hub"),
    }
}

fn new_doc() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"hub/hub".to_vec()));
    init(&mut doc, &store_id()).expect("init");
    doc.commit();
    doc
}

/// Writes `value` under `users/<login>` bypassing every check (a buggy or hostile writer).
fn put_raw(doc: &mut AutoCommit, login: &str, value: &str) {
    let users = match doc.get(ROOT, "users").expect("get") {
        Some((_, id)) => id,
        None => panic!("no users map"),
    };
    doc.put(&users, login, ScalarValue::Str(value.into()))
        .expect("put");
    doc.commit();
}

#[test]
fn members_round_trip_through_save_and_load() {
    let mut doc = new_doc();
    assert_eq!(store(&doc).expect("store"), store_id());
    assert!(members(&doc).expect("members").is_empty());
    let anna = cashier("anna", HASH_A, 1_000);
    let olga = StaffMember {
        login: "olga.m@shop".to_owned(),
        role: StaffRole::Manager,
        ..cashier("x", HASH_B, 2_000)
    };
    assert_eq!(
        put_member(&mut doc, &olga).expect("put"),
        StaffWrite::Written
    );
    assert_eq!(
        put_member(&mut doc, &anna).expect("put"),
        StaffWrite::Written
    );
    doc.commit();

    let loaded = AutoCommit::load(&doc.save()).expect("load");
    assert_eq!(store(&loaded).expect("store"), store_id());
    assert_eq!(
        members(&loaded).expect("members"),
        vec![anna.clone(), olga.clone()]
    );
    assert_eq!(member(&loaded, "anna").expect("read"), Some(anna));
    assert_eq!(member(&loaded, "olga.m@shop").expect("read"), Some(olga));
    assert_eq!(member(&loaded, "nobody").expect("read"), None);
    assert!(member(&loaded, "bad login").is_err());
}

#[test]
fn init_needs_an_empty_document_and_reads_need_a_staff_document() {
    let mut doc = new_doc();
    assert!(matches!(
        init(&mut doc, &store_id()),
        Err(StaffError::NotEmpty)
    ));
    let empty = AutoCommit::new();
    assert!(matches!(store(&empty), Err(StaffError::NotAStaffDoc)));
    assert!(matches!(members(&empty), Err(StaffError::NotAStaffDoc)));
    let mut catalogue = AutoCommit::new();
    crate::catalogue::init(&mut catalogue, &store_id(), &[], &hlc(1, "hub")).expect("init");
    assert!(matches!(
        member(&catalogue, "anna"),
        Err(StaffError::NotAStaffDoc)
    ));
    let mut empty = AutoCommit::new();
    assert!(matches!(
        put_member(&mut empty, &cashier("anna", HASH_A, 1)),
        Err(StaffError::NotAStaffDoc)
    ));
}

#[test]
fn last_writer_by_hlc_wins() {
    let mut doc = new_doc();
    put_member(&mut doc, &cashier("anna", HASH_A, 2_000)).expect("put");
    // Older and equal timestamps change nothing, whatever they carry.
    let older = StaffMember {
        active: false,
        ..cashier("anna", HASH_B, 1_000)
    };
    assert_eq!(
        put_member(&mut doc, &older).expect("put"),
        StaffWrite::NotNewer
    );
    let same_time = cashier("anna", HASH_B, 2_000);
    assert_eq!(
        put_member(&mut doc, &same_time).expect("put"),
        StaffWrite::NotNewer
    );
    assert_eq!(
        member(&doc, "anna").expect("read").map(|m| m.secret_hash),
        Some(HASH_A.to_owned())
    );
    // A newer write (a new PIN, then disabling) takes over.
    let new_pin = cashier("anna", HASH_B, 3_000);
    assert_eq!(
        put_member(&mut doc, &new_pin).expect("put"),
        StaffWrite::Written
    );
    let disabled = StaffMember {
        active: false,
        ..cashier("anna", HASH_B, 4_000)
    };
    put_member(&mut doc, &disabled).expect("put");
    assert_eq!(member(&doc, "anna").expect("read"), Some(disabled));
    assert_eq!(members(&doc).expect("members").len(), 1);
}

#[test]
fn concurrent_writes_merge_to_the_newest_hlc_in_either_order() {
    let mut base = new_doc();
    put_member(&mut base, &cashier("anna", HASH_A, 1_000)).expect("put");
    base.commit();
    let mut first = base.fork().with_actor(ActorId::from(b"hub/one".to_vec()));
    let mut second = base.fork().with_actor(ActorId::from(b"hub/two".to_vec()));
    let newer = StaffMember {
        updated_at: hlc(3_000, "one"),
        ..cashier("anna", HASH_B, 0)
    };
    let older = StaffMember {
        active: false,
        updated_at: hlc(2_000, "two"),
        ..cashier("anna", HASH_A, 0)
    };
    put_member(&mut first, &newer).expect("put");
    put_member(&mut second, &older).expect("put");
    first.commit();
    second.commit();
    let mut left = first.fork();
    left.merge(&mut second).expect("merge");
    let mut right = second.fork();
    right.merge(&mut first).expect("merge");
    assert_eq!(member(&left, "anna").expect("read"), Some(newer.clone()));
    assert_eq!(member(&right, "anna").expect("read"), Some(newer.clone()));
    // The next write sees the winner and replaces both values.
    assert_eq!(
        put_member(&mut left, &older).expect("put"),
        StaffWrite::NotNewer
    );
    let latest = cashier("anna", HASH_A, 5_000);
    put_member(&mut left, &latest).expect("put");
    let users = match left.get(ROOT, "users").expect("get") {
        Some((_, id)) => id,
        None => panic!("no users map"),
    };
    assert_eq!(left.get_all(&users, "anna").expect("values").len(), 1);
    assert_eq!(member(&left, "anna").expect("read"), Some(latest));
}

#[test]
fn bad_hashes_are_refused() {
    let mut doc = new_doc();
    let too_long = format!("{HASH_A}{}", "A".repeat(MAX_SECRET_HASH_LEN));
    for bad in [
        "1234",
        "",
        "$argon2id$",
        "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub",
        "$argon2d$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$c29tZXNhbHQ$RdescudvJCsgt3ub",
        "$argon2id$vx$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub$extra",
        "$argon2id$v=19$m=19456,,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub",
        "$argon2id$v=19$m=19456,t=2,p=1$$RdescudvJCsgt3ub",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$Rdescud vJCsgt3ub",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$Rdescud\nvJCsgt3ub",
        too_long.as_str(),
    ] {
        let error = put_member(&mut doc, &cashier("anna", bad, 1_000)).expect_err(bad);
        assert!(
            matches!(
                error,
                StaffError::InvalidMember {
                    field: "secret_hash",
                    ..
                }
            ),
            "{bad:?}: {error}"
        );
    }
    assert!(is_argon2id_phc(HASH_A));
    // Without the optional version segment the string is still a PHC string.
    assert!(is_argon2id_phc(
        "$argon2id$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub"
    ));
    assert!(members(&doc).expect("members").is_empty());
}

#[test]
fn bad_logins_and_timestamps_are_refused() {
    let mut doc = new_doc();
    let too_long = "a".repeat(MAX_LOGIN_LEN + 1);
    for bad in ["", "anna ivanova", "анна", "a/b", "a|b", too_long.as_str()] {
        let error = put_member(&mut doc, &cashier(bad, HASH_A, 1)).expect_err(bad);
        assert!(
            matches!(error, StaffError::InvalidMember { field: "login", .. }),
            "{bad:?}: {error}"
        );
    }
    assert!(put_member(&mut doc, &cashier(&"a".repeat(MAX_LOGIN_LEN), HASH_A, 1)).is_ok());
    let mut stale = cashier("anna", HASH_A, 1);
    stale.updated_at.node = "bad node!".to_owned();
    assert!(matches!(
        put_member(&mut doc, &stale),
        Err(StaffError::InvalidMember {
            field: "updated_at",
            ..
        })
    ));
}

#[test]
fn corrupt_entries_are_errors_never_credentials() {
    let valid = serde_json::to_string(&cashier("anna", HASH_A, 1_000)).expect("json");
    let cases = [
        ("anna", "not json".to_owned()),
        (
            "anna",
            valid.replace("\"active\":true", "\"active\":true,\"pin\":\"1234\""),
        ),
        ("anna", valid.replace(HASH_A, "1234")),
        ("anna", valid.replace("cashier", "admin")),
        ("boris", valid.clone()),
    ];
    for (login, json) in cases {
        let mut doc = new_doc();
        put_member(&mut doc, &cashier("olga", HASH_B, 1_000)).expect("put");
        put_raw(&mut doc, login, &json);
        assert!(
            matches!(members(&doc), Err(StaffError::Corrupt { .. })),
            "{json}"
        );
        assert!(
            matches!(member(&doc, login), Err(StaffError::Corrupt { .. })),
            "{json}"
        );
        // Another member's entry is still readable on its own.
        assert!(member(&doc, "olga").expect("read").is_some());
    }
    // A non-string value.
    let mut doc = new_doc();
    let users = match doc.get(ROOT, "users").expect("get") {
        Some((_, id)) => id,
        None => panic!("no users map"),
    };
    doc.put(&users, "anna", 42).expect("put");
    assert!(matches!(
        member(&doc, "anna"),
        Err(StaffError::Corrupt { .. })
    ));
    // A wrong schema version.
    let mut doc = new_doc();
    doc.put(ROOT, "schema", 2).expect("put");
    assert!(matches!(store(&doc), Err(StaffError::Corrupt { .. })));
}

#[test]
fn the_member_count_is_bounded() {
    let mut doc = new_doc();
    for index in 0..MAX_MEMBERS {
        put_member(&mut doc, &cashier(&format!("c{index}"), HASH_A, 1)).expect("put");
    }
    assert!(matches!(
        put_member(&mut doc, &cashier("one-more", HASH_A, 1)),
        Err(StaffError::TooManyMembers { max: MAX_MEMBERS })
    ));
    // Updating a known member is still possible.
    assert_eq!(
        put_member(&mut doc, &cashier("c0", HASH_B, 2)).expect("put"),
        StaffWrite::Written
    );
}

#[test]
fn json_form_is_strict_and_debug_hides_the_hash() {
    let anna = cashier("anna", HASH_A, 1_000);
    let json = serde_json::to_value(&anna).expect("json");
    assert_eq!(json["role"], "cashier");
    assert_eq!(json["updated_at"], anna.updated_at.to_string());
    assert_eq!(
        serde_json::from_value::<StaffMember>(json).expect("back"),
        anna
    );
    assert!(!format!("{anna:?}").contains("argon2"));
    assert_eq!(StaffRole::parse("manager"), Some(StaffRole::Manager));
    assert_eq!(StaffRole::parse("admin"), None);
    assert_eq!(StaffRole::Cashier.to_string(), "cashier");
}
