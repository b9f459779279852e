//! Cashier and manager credentials replicated to tills through `staff/<store>`, on SQLite
//! and PostgreSQL: `hub admin create-user` writes the member (argon2id hash, never the PIN)
//! in the same transaction as the user row; a till of the store receives the document on
//! sync, a till of another store never sees it, and a till cannot change it.

mod api_support;
mod support;
mod write_support;

use api_support::{Hub, Till};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use automerge::sync::{State, SyncDoc};
use automerge::transaction::Transactable;
use axum::http::StatusCode;
use clap::Parser;
use crdt_model::staff;
use crdt_model::{StaffMember, StaffRole};
use hub::auth_types::Role;
use hub::cli::{execute, Cli, Io};
use hub::db::{Db, DbConfig, DbError, DocMeta};
use support::for_each_backend;
use sync_engine::DocId;
use write_support::WriteOnce;

const PIN: &str = "482913";

/// Runs `hub admin create-user NAME --role ROLE --store STORE` in-process, secret on stdin.
async fn create_user_cli(config: &DbConfig, name: &str, role: &str, store: &str, secret: &str) {
    let mut args = vec![
        "hub".to_owned(),
        "admin".to_owned(),
        "create-user".to_owned(),
        name.to_owned(),
        "--role".to_owned(),
        role.to_owned(),
        "--store".to_owned(),
        store.to_owned(),
    ];
    match config {
        DbConfig::Sqlite { dir } => {
            args.extend(["--data".to_owned(), dir.display().to_string()]);
        }
        DbConfig::Postgres { url } => {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
    }
    let cli = Cli::try_parse_from(args).expect("arguments");
    let stdin = format!("{secret}\n");
    // `Io` holds `dyn Write` (not `Send`): run the command on its own runtime, as the binary does.
    let stdout = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut stdin = stdin.as_bytes();
        let mut stdout = Vec::new();
        let mut io = Io {
            stdin: &mut stdin,
            stdout: &mut stdout,
            database_url_env: None,
        };
        runtime
            .block_on(execute(cli, &mut io))
            .expect("create-user");
        stdout
    })
    .await
    .expect("join");
    assert!(stdout.is_empty());
}

/// The stored staff document of `store` and its raw bytes.
async fn staff_doc(db: &Db, store: &str) -> Option<(automerge::AutoCommit, Vec<u8>)> {
    let stored = db
        .load_doc(&format!("staff/{store}"))
        .await
        .expect("load")?;
    let doc = automerge::AutoCommit::load(&stored.bytes).expect("automerge");
    Some((doc, stored.bytes))
}

/// A sync message for the hub carrying `forged`'s changes the hub (holding `hub_bytes`)
/// lacks.
fn forged_message(forged: &mut automerge::AutoCommit, hub_bytes: &[u8]) -> Vec<u8> {
    let mut hub_copy = automerge::AutoCommit::load(hub_bytes).expect("hub copy");
    let (mut ours, mut theirs) = (State::new(), State::new());
    let hello = forged
        .sync()
        .generate_sync_message(&mut ours)
        .expect("hello");
    hub_copy
        .sync()
        .receive_sync_message(&mut theirs, hello)
        .expect("receive");
    let answer = hub_copy
        .sync()
        .generate_sync_message(&mut theirs)
        .expect("answer");
    forged
        .sync()
        .receive_sync_message(&mut ours, answer)
        .expect("receive");
    let message = forged
        .sync()
        .generate_sync_message(&mut ours)
        .expect("changes");
    assert!(!message.changes.is_empty());
    message.encode()
}

fn verifies(member: &StaffMember, secret: &str) -> bool {
    let parsed = PasswordHash::new(&member.secret_hash).expect("PHC string");
    Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok()
}

#[tokio::test]
async fn create_user_puts_the_cashier_hash_into_the_store_staff_document() {
    for_each_backend("staff create-user", |config| async move {
        create_user_cli(&config, "kassa1", "cashier", "S1", PIN).await;
        let hub = Hub::start(&config).await;
        hub.db
            .create_user("olga", Role::Manager, "correct horse battery", Some("S1"))
            .await
            .expect("store manager");
        hub.db
            .create_user("boss", Role::Manager, "correct horse battery", None)
            .await
            .expect("chain manager");
        hub.db
            .create_user("root", Role::Admin, "correct horse battery", Some("S1"))
            .await
            .expect("admin");
        hub.db
            .create_user("kassa2", Role::Cashier, "5555", Some("S2"))
            .await
            .expect("cashier of S2");

        let (doc, bytes) = staff_doc(&hub.db, "S1").await.expect("staff/S1 stored");
        assert_eq!(staff::store(&doc).expect("store").as_str(), "S1");
        let members = staff::members(&doc).expect("members");
        let logins: Vec<&str> = members.iter().map(|m| m.login.as_str()).collect();
        assert_eq!(logins, ["kassa1", "olga"]);
        let cashier = &members[0];
        assert_eq!(cashier.role, StaffRole::Cashier);
        assert!(cashier.active);
        assert!(cashier.secret_hash.starts_with("$argon2id$"));
        assert!(!cashier.secret_hash.contains(PIN));
        assert!(
            !bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
            "the PIN text is in the stored document"
        );
        assert!(verifies(cashier, PIN));
        assert!(!verifies(cashier, "000000"));
        assert_eq!(cashier.updated_at.node, hub::HUB_NAME);
        assert_eq!(members[1].role, StaffRole::Manager);
        assert!(hub
            .db
            .verify_password("kassa1", PIN)
            .await
            .expect("verify")
            .is_some());

        let (doc, _) = staff_doc(&hub.db, "S2").await.expect("staff/S2 stored");
        let members = staff::members(&doc).expect("members");
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].login, "kassa2");
        let rows = hub.db.all_docs().await.expect("docs");
        let staff_rows: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r.meta.kind == "staff")
            .map(|r| (r.doc_id.as_str(), r.meta.store.as_str()))
            .collect();
        assert_eq!(staff_rows, [("staff/S1", "S1"), ("staff/S2", "S2")]);
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_till_receives_its_store_staff_only_and_cannot_change_it() {
    for_each_backend("staff sync", |config| async move {
        let hub = Hub::start(&config).await;
        hub.db
            .create_user("kassa1", Role::Cashier, PIN, Some("S1"))
            .await
            .expect("cashier");
        let staff_id = DocId::new("staff/S1").expect("doc");

        let mut till = Till::enrol(&hub, "S1", "T1").await;
        till.sync(&hub).await.expect("sync");
        let doc = till.replica.doc(&staff_id).expect("staff/S1 received");
        let member = staff::member(doc, "kassa1").expect("read").expect("kassa1");
        assert!(verifies(&member, PIN));

        let mut elsewhere = Till::enrol(&hub, "S2", "T1").await;
        elsewhere.sync(&hub).await.expect("sync");
        assert!(elsewhere.replica.doc_ids().is_empty());

        // A cashier created later reaches the till on its next poll.
        hub.db
            .create_user("kassa3", Role::Cashier, "7777", Some("S1"))
            .await
            .expect("cashier");
        till.sync(&hub).await.expect("sync");
        let doc = till.replica.doc(&staff_id).expect("staff/S1");
        assert_eq!(staff::members(doc).expect("members").len(), 2);

        // A till's own change to the staff document is refused whole; nothing is stored.
        // (Automerge itself sends no changes to a peer that flags itself read-only, as the
        // hub does here, so a forged message is built by hand: the hub's side of the
        // exchange is played by a plain copy of the document.)
        let before = hub
            .db
            .load_doc("staff/S1")
            .await
            .expect("load")
            .expect("doc");
        let mut forged = till.replica.doc(&staff_id).expect("staff/S1").clone();
        let users = match automerge::ReadDoc::get(&forged, automerge::ROOT, "users").expect("get") {
            Some((_, id)) => id,
            None => panic!("no users map"),
        };
        forged.put(&users, "kassa1", "forged").expect("put");
        forged.commit();
        let message = forged_message(&mut forged, &before.bytes);
        let mut request = till.first_request();
        request.entries.retain(|e| e.doc != staff_id);
        request
            .entries
            .push(sync_engine::DocEntry::message(staff_id.clone(), message));
        let (status, body) = hub.post_envelope(&till.token, &request).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(String::from_utf8_lossy(&body).contains("staff/S1"));
        let after = hub
            .db
            .load_doc("staff/S1")
            .await
            .expect("load")
            .expect("doc");
        assert_eq!(after.bytes, before.bytes);
        hub.db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_failed_staff_write_creates_no_user() {
    for_each_backend("staff atomic", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        // A document stored under staff/S3 that is not a staff document.
        let mut foreign = automerge::AutoCommit::new();
        foreign
            .put(automerge::ROOT, "kind", "catalogue")
            .expect("put");
        let meta = DocMeta {
            store: "S3".to_owned(),
            kind: "staff".to_owned(),
            till: None,
        };
        let mut tx = db.begin().await.expect("begin");
        tx.append_changes("staff/S3", &meta, &foreign.save())
            .await
            .expect("append");
        tx.commit().await.expect("commit");

        let error = db
            .create_user("kassa9", Role::Cashier, PIN, Some("S3"))
            .await
            .expect_err("staff document unusable");
        assert!(matches!(error, DbError::Document { .. }), "{error}");
        assert!(db.user("kassa9").await.expect("user").is_none());
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn two_cashiers_of_a_store_may_not_share_a_pin() {
    for_each_backend("staff unique pin", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        db.create_user("kassa1", Role::Cashier, PIN, Some("S1"))
            .await
            .expect("first cashier");
        let error = db
            .create_user("kassa2", Role::Cashier, PIN, Some("S1"))
            .await
            .expect_err("same PIN in the same store");
        assert!(error.to_string().contains("already used"), "{error}");
        assert!(
            !error.to_string().contains(PIN),
            "the PIN is not echoed: {error}"
        );
        assert!(db.user("kassa2").await.expect("user").is_none());
        // Another store may use it, and so may this store with another PIN.
        db.create_user("kassa3", Role::Cashier, PIN, Some("S2"))
            .await
            .expect("other store");
        db.create_user("kassa4", Role::Cashier, "86420", Some("S1"))
            .await
            .expect("other PIN");
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_changed_secret_or_role_rewrites_the_staff_documents_it_touches() {
    for_each_backend("staff user changes", |config| async move {
        let db = Db::connect(&config).await.expect("connect");
        db.create_user("kassa1", Role::Cashier, PIN, Some("S1"))
            .await
            .expect("cashier");
        hub::users::set_secret(&db, "kassa1", "97531")
            .await
            .expect("new PIN");
        let (doc, _) = staff_doc(&db, "S1").await.expect("staff/S1");
        let member = staff::member(&doc, "kassa1")
            .expect("read")
            .expect("kassa1");
        assert!(member.active);
        assert!(verifies(&member, "97531"));
        assert!(!verifies(&member, PIN));

        let user = hub::users::set_role(
            &db,
            "kassa1",
            Role::Manager,
            Some("S2"),
            "correct horse battery",
        )
        .await
        .expect("promoted to manager of S2");
        assert_eq!(
            (user.role, user.store.as_deref()),
            (Role::Manager, Some("S2"))
        );
        let (doc, _) = staff_doc(&db, "S1").await.expect("staff/S1");
        let left = staff::member(&doc, "kassa1")
            .expect("read")
            .expect("kassa1");
        assert!(
            !left.active,
            "the old store's tills must refuse the old PIN"
        );
        assert!(
            verifies(&left, "97531") && !verifies(&left, "correct horse battery"),
            "the store a user leaves never receives the new secret's hash"
        );
        let (doc, _) = staff_doc(&db, "S2").await.expect("staff/S2");
        let joined = staff::member(&doc, "kassa1")
            .expect("read")
            .expect("kassa1");
        assert!(joined.active);
        assert_eq!(joined.role, StaffRole::Manager);
        assert!(verifies(&joined, "correct horse battery"));
        let stored = db.user("kassa1").await.expect("read").expect("kassa1");
        assert_eq!(stored, user);

        assert!(matches!(
            hub::users::set_secret(&db, "nobody", "correct horse battery").await,
            Err(DbError::NotFound { .. })
        ));
        db.close().await;
    })
    .await;
}
