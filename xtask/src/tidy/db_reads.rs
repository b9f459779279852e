//! The hub's storage rule: reads on `Db`, writes only inside a transaction (`DbTx`).
//!
//! A writer on `Db` would take its own connection while its caller may hold a `DbTx` with the
//! same rows locked — the deadlock `hub/src/db/mod.rs` explains. So no `impl Db` block in
//! `hub/src/db/` may hold SQL that writes; this check reads those blocks' text.

use std::path::Path;

use super::Violation;

/// The directory whose `impl Db` blocks are checked.
pub const DB_DIR: &str = "hub/src/db";

/// SQL that changes rows: none of it may appear in an `impl Db` block.
const WRITING_SQL: &[&str] = &[
    "INSERT INTO",
    "UPDATE ",
    "DELETE FROM",
    "ON CONFLICT",
    "UPSERT",
];

/// Every line of an `impl Db {` block (up to its closing `}` at column 0) that holds writing SQL.
pub fn check_db_reads_only(path: &Path, text: &str) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut in_db_impl = false;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("impl Db {") {
            in_db_impl = true;
            continue;
        }
        if in_db_impl && line.starts_with('}') {
            in_db_impl = false;
            continue;
        }
        let upper = line.to_ascii_uppercase();
        if in_db_impl && WRITING_SQL.iter().any(|sql| upper.contains(sql)) {
            violations.push(Violation::new(
                path,
                "db-reads-only",
                format!(
                    "line {}: writing SQL in `impl Db`; writes belong on `DbTx`, inside the \
                     caller's transaction",
                    index + 1
                ),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("hub/src/db/auth.rs")
    }

    #[test]
    fn reads_on_db_and_writes_on_dbtx_pass() {
        let text = "//! Doc.\nimpl Db {\n    fn user() { q(\"SELECT name FROM users\") }\n}\n\
                    impl DbTx {\n    fn add() { q(\"INSERT INTO users VALUES ($1)\") }\n}\n";
        assert!(check_db_reads_only(path(), text).is_empty());
    }

    #[test]
    fn a_write_on_db_is_refused_with_its_line() {
        let text = "//! Doc.\nimpl Db {\n    fn purge() {\n        q(\"delete from user_sessions\")\n    }\n}\n";
        let violations = check_db_reads_only(path(), text);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].rule, "db-reads-only");
        assert!(violations[0].message.starts_with("line 4:"));
    }
}
