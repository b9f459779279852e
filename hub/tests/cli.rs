//! The `hub` binary end to end: flags, `--config`, stdin passwords, stdout carrying only the
//! token, exit codes and error messages. Database commands run on SQLite and PostgreSQL.

mod support;

use hub::auth_types::Role;
use hub::db::{Db, DbConfig};
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::for_each_backend;

fn db_args(config: &DbConfig) -> Vec<String> {
    match config {
        DbConfig::Sqlite { dir } => vec!["--data".into(), dir.display().to_string()],
        DbConfig::Postgres { url } => vec!["--database-url".into(), url.clone()],
    }
}

/// Runs the binary with `args`, feeding `stdin`, without inheriting `DATABASE_URL`.
fn hub(args: &[String], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hub");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for hub")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn enroll_prints_only_the_token_and_create_user_reads_stdin() {
    for_each_backend("cli admin", |config| async move {
        let mut enroll = args(&["admin", "enroll-till", "--store", "S1", "--till", "T1"]);
        enroll.extend(db_args(&config));
        let output = hub(&enroll, "");
        assert!(output.status.success(), "{}", stderr(&output));
        let stdout = String::from_utf8(output.stdout).expect("utf8");
        let token = stdout.strip_suffix('\n').expect("one line");
        assert_eq!(token.len(), 64, "stdout: {stdout:?}");
        assert!(!token.contains('\n'));

        let mut create = args(&["admin", "create-user", "olga", "--role", "manager"]);
        create.extend(db_args(&config));
        let output = hub(&create, "long enough\nignored\n");
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(output.stdout.is_empty());
        let output = hub(&create, "short\n");
        assert!(!output.status.success());
        assert!(stderr(&output).contains("too short"), "{}", stderr(&output));

        let mut cashier = args(&[
            "admin",
            "create-user",
            "kassa",
            "--role",
            "cashier",
            "--store",
            "S1",
        ]);
        cashier.extend(db_args(&config));
        let output = hub(&cashier, "12ab\n");
        assert!(stderr(&output).contains("PIN"), "{}", stderr(&output));
        let output = hub(&cashier, "4321\n");
        assert!(output.status.success(), "{}", stderr(&output));

        let mut revoke = args(&["admin", "revoke-till", "--store", "S1", "--till", "T1"]);
        revoke.extend(db_args(&config));
        assert!(hub(&revoke, "").status.success());

        let db = Db::connect(&config).await.expect("connect");
        assert!(
            db.device_by_token(token).await.expect("lookup").is_none(),
            "revoked"
        );
        let user = db
            .verify_password("olga", "long enough")
            .await
            .expect("verify")
            .expect("user");
        assert_eq!(user.role, Role::Manager);
        assert!(db
            .verify_password("kassa", "4321")
            .await
            .expect("verify")
            .is_some());
        db.close().await;
    })
    .await;
}

#[test]
fn config_file_supplies_flags_and_refuses_unknown_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "data = {:?}\nstore = \"S7\"\ntill = \"T3\"\n",
            data.display().to_string()
        ),
    )
    .expect("write config");
    let output = hub(
        &args(&[
            "admin",
            "enroll-till",
            "--config",
            &config.display().to_string(),
        ]),
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(output.stdout.len(), 65);
    assert!(data.join(hub::db::SQLITE_FILE_NAME).exists());

    // The command line wins over the file.
    let other = dir.path().join("other");
    let output = hub(
        &args(&[
            "admin",
            "enroll-till",
            "--till",
            "T4",
            "--data",
            &other.display().to_string(),
            "--config",
            &config.display().to_string(),
        ]),
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(other.join(hub::db::SQLITE_FILE_NAME).exists());

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "datadir = \"/x\"\n").expect("write");
    let output = hub(
        &args(&["serve", "--config", &bad.display().to_string()]),
        "",
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("datadir") && err.contains("bad.toml"), "{err}");
}

/// Starts `hub serve` on port 0, waits for the `listening on` line, checks `/v1/health`
/// over a raw socket, then stops it with SIGTERM and expects a clean exit.
#[test]
fn serve_logs_the_real_port_answers_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            &dir.path().display().to_string(),
        ])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hub serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("hub serve exited before listening")
            .expect("read stderr");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(
        !addr.ends_with(":0"),
        "the real port must be logged: {addr}"
    );

    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"healthy\""), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(
        exit.success(),
        "hub serve must exit cleanly on SIGTERM: {exit:?}"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown signal received")),
        "{rest:?}"
    );
}

#[test]
fn serve_and_admin_refuse_bad_configuration() {
    let output = hub(&args(&["serve"]), "");
    assert!(
        stderr(&output).contains("no database given"),
        "{}",
        stderr(&output)
    );
    let output = hub(
        &args(&[
            "admin",
            "enroll-till",
            "--store",
            "bad store",
            "--till",
            "T1",
            "--data",
            "/nonexistent",
        ]),
        "",
    );
    assert!(
        stderr(&output).contains("invalid store"),
        "{}",
        stderr(&output)
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write csv");
}

fn import(data: &str, store: &str, file: &Path) -> Output {
    hub(
        &args(&[
            "catalogue",
            "import",
            "--store",
            store,
            &file.display().to_string(),
            "--data",
            data,
        ]),
        "",
    )
}

#[tokio::test]
async fn catalogue_import_writes_the_document_and_reports_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data").display().to_string();
    let bad = dir.path().join("bad.csv");
    write(
        &bad,
        "sku,ean,name,price,vat\nA,,ok,100,none\nB,,bad,1.5,none\nC|1,,pipe,1,none\n",
    );
    let output = import(&data, "S1", &bad);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("line 3: price"), "{err}");
    assert!(err.contains("line 4: sku"), "{err}");

    let good = dir.path().join("good.csv");
    write(
        &good,
        "sku,ean,name,price,vat\nA,4006381333931,Оправа,150000,none\nB,,Линза,2500,vat22\n",
    );
    let output = import(&data, "S1", &good);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "imported 2 products (2 changed)\n"
    );
    let output = import(&data, "S1", &good);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "imported 2 products (0 changed)\n"
    );
    write(
        &good,
        "sku,ean,name,price,vat\nA,4006381333931,Оправа,160000,none\nB,,Линза,2500,vat22\nC,,Кейс,900,vat22\n",
    );
    let output = import(&data, "S1", &good);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "imported 3 products (2 changed)\n",
        "{}",
        stderr(&output)
    );

    let db = Db::connect(&DbConfig::Sqlite {
        dir: dir.path().join("data"),
    })
    .await
    .expect("connect");
    let stored = db
        .load_doc("catalogue/S1")
        .await
        .expect("load")
        .expect("catalogue stored");
    assert_eq!(stored.meta.kind, "catalogue");
    let doc = automerge::AutoCommit::load(&stored.bytes).expect("automerge");
    let products = crdt_model::catalogue::products(&doc).expect("products");
    let a = products.iter().find(|p| p.sku == "A").expect("A");
    assert_eq!(a.price, crdt_model::Kopecks(160_000));
    assert_eq!(a.unit, "шт");
    assert_eq!(products.len(), 3);
    db.close().await;
}
