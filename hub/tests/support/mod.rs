//! Test harness: runs one test body against every backend — a fresh SQLite directory, and
//! a fresh PostgreSQL database when `DATABASE_URL` is set.
//!
//! Each PostgreSQL run creates `hubtest_<random>` from `DATABASE_URL`, hands the body a
//! [`DbConfig`] for it, and drops it afterwards even when the body panics. Without
//! `DATABASE_URL` the PostgreSQL run is skipped with a note on stderr, unless `CI=true` or
//! `REQUIRE_PG=1`, in which case the missing URL fails the test.

use hub::db::DbConfig;
use sqlx::postgres::PgPoolOptions;
use std::future::Future;

/// True when PostgreSQL must not be skipped.
fn pg_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs `body` on SQLite, then on a fresh PostgreSQL database if available.
pub async fn for_each_backend<F, Fut>(test_name: &str, body: F)
where
    F: Fn(DbConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = tokio::spawn(body(DbConfig::Sqlite {
        dir: dir.path().to_path_buf(),
    }))
    .await;
    if let Err(e) = sqlite {
        eprintln!("{test_name}: failed on SQLite");
        std::panic::resume_unwind(e.into_panic());
    }

    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !pg_required(),
                "{test_name}: DATABASE_URL is unset but CI=true or REQUIRE_PG=1 requires PostgreSQL"
            );
            eprintln!("{test_name}: PostgreSQL skipped (DATABASE_URL unset)");
            return;
        }
    };
    let name = format!("hubtest_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect to DATABASE_URL");
    // The name is generated hex, so formatting it into DDL is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    let result = tokio::spawn(body(DbConfig::Postgres {
        url: with_database(&url, &name),
    }))
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .expect("drop test database");
    admin.close().await;
    if let Err(e) = result {
        eprintln!("{test_name}: failed on PostgreSQL");
        std::panic::resume_unwind(e.into_panic());
    }
}

#[test]
fn with_database_replaces_only_the_name() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
