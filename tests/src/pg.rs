//! A fresh PostgreSQL database per test: `CREATE DATABASE` on the server named by
//! `DATABASE_URL`, dropped (`WITH (FORCE)`) when the guard goes. Without `DATABASE_URL` a test
//! is skipped with a printed note — unless `CI=true` or `REQUIRE_PG=1`, where a missing
//! server is a failure (`scripts/test.sh` sets `REQUIRE_PG=1` and starts a throwaway cluster).

use anyhow::{bail, Context};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// A database created for one test.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

/// Whether the environment demands PostgreSQL tests to run.
pub fn pg_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("REQUIRE_PG").is_ok_and(|v| v == "1")
}

impl PgDatabase {
    /// A new empty database on the `DATABASE_URL` server; `Ok(None)` (after printing why) when
    /// `DATABASE_URL` is unset and PostgreSQL is not required.
    pub async fn fresh_or_skip(test: &str) -> anyhow::Result<Option<PgDatabase>> {
        let Some(admin_url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            if pg_required() {
                bail!("{test}: DATABASE_URL is not set, and CI=true / REQUIRE_PG=1 requires PostgreSQL");
            }
            eprintln!(
                "note: {test} skipped: DATABASE_URL is not set (run ./scripts/test.sh, or set \
                 DATABASE_URL=postgres://…; CI=true or REQUIRE_PG=1 make this a failure)"
            );
            return Ok(None);
        };
        Self::create(&admin_url).await.map(Some)
    }

    /// Creates a database with a unique name on the server at `admin_url`.
    pub async fn create(admin_url: &str) -> anyhow::Result<PgDatabase> {
        let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(admin_url, &name)?;
        let mut connection = PgConnection::connect(admin_url)
            .await
            .context("cannot connect to DATABASE_URL")?;
        // The name is ours (e2e_ + hex), so formatting it into the statement is safe.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut connection)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        connection.close().await.ok();
        Ok(PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        })
    }

    /// The URL of the new database (give it to `hub --database-url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now (connections of still-running hubs are cut).
    pub async fn drop_database(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_named(&self.admin_url, &self.name).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and may run inside a runtime: use a thread with its own.
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_named(&admin_url, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!(
                "warning: could not drop test database {}: {error:#}",
                self.name
            ),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

async fn drop_named(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut connection)
    .await?;
    connection.close().await.ok();
    Ok(())
}

/// `url` with its database (path) replaced by `name`, query kept.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url
        .find("://")
        .context("DATABASE_URL is not a URL (no ://)")?
        + 3;
    let (head, tail) = url.split_at(scheme_end);
    let query_start = tail.find('?').unwrap_or(tail.len());
    let (authority_and_path, query) = tail.split_at(query_start);
    let authority = authority_and_path
        .split('/')
        .next()
        .unwrap_or(authority_and_path);
    Ok(format!("{head}{authority}/{name}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
            ("postgres://u@h:1", "postgres://u@h:1/x"),
            ("postgresql://h?host=/tmp", "postgresql://h/x?host=/tmp"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                with_database(input, "x").expect("valid"),
                expected,
                "{input}"
            );
        }
        assert!(with_database("not a url", "x").is_err());
    }
}
