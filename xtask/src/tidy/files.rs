//! Source-file rules: a `//!` header on every module, no ignored tests, bounded file size, one
//! naming scheme for unit tests split out of their module.
//!
//! Each check takes a file's path (for the message) and its text, so tests feed it strings.

use std::path::Path;

use super::Violation;

/// Member sub-directories whose `.rs` files are modules that need a `//!` header.
pub const MODULE_DIRS: &[&str] = &["src", "tests", "benches", "examples"];

/// Directories never searched: build output and test fixtures.
pub const SKIPPED_DIRS: &[&str] = &["target", "test_data"];

/// Largest source file allowed under src/. Modules are typically 200–450 lines; past 600 a
/// file holds more than one responsibility and should be split.
pub const MAX_LINES: usize = 600;

/// The attribute that hides a test from `cargo test`, spelled in two pieces so that this file
/// does not trip its own check.
const IGNORE: &str = "ignore";

/// The first non-empty line must be a `//!` comment saying what the module is for.
pub fn check_module_doc(path: &Path, text: &str) -> Option<Violation> {
    let first = text.lines().map(str::trim).find(|line| !line.is_empty());
    match first {
        Some(line) if line.starts_with("//!") => None,
        _ => Some(Violation::new(
            path,
            "module-doc",
            "the first non-empty line must be a `//!` comment saying what this module is for",
        )),
    }
}

/// No test may be switched off: a test that never runs cannot fail. Looks at attribute lines
/// only (`#[ignore…]`, or `#[cfg_attr(…, ignore…)]`), so prose and strings do not count.
pub fn check_no_ignore(path: &Path, text: &str) -> Vec<Violation> {
    let plain = format!("#[{IGNORE}");
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            line.starts_with(&plain)
                || (line.starts_with("#[cfg_attr(") && contains_word(line, IGNORE))
        })
        .map(|(index, _)| {
            Violation::new(
                path,
                "no-ignore",
                format!(
                    "line {}: ignored test; fix it, delete it, or gate it on its real \
                     precondition (e.g. REQUIRE_PG) — a test that never runs cannot fail",
                    index + 1
                ),
            )
        })
        .collect()
}

/// Files under src/ stay below `max_lines`.
pub fn check_file_length(path: &Path, text: &str, max_lines: usize) -> Option<Violation> {
    let lines = text.lines().count();
    (lines > max_lines).then(|| {
        Violation::new(
            path,
            "file-length",
            format!("{lines} lines, more than {max_lines}: split it by responsibility"),
        )
    })
}

/// Unit tests that leave their module's file live in `<module>/tests.rs`, or by topic in
/// `<module>/tests/<topic>.rs` declared from it: never `tests_<topic>.rs`, `<module>_tests.rs`
/// or a `#[path]` attribute, so a reader finds a module's tests in one place by one rule.
pub fn check_test_file_name(path: &Path, text: &str) -> Vec<Violation> {
    let mut violations = Vec::new();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem.starts_with("tests_") || stem.ends_with("_tests") {
        violations.push(Violation::new(
            path,
            "test-file-name",
            "split-out unit tests live in `<module>/tests.rs` or `<module>/tests/<topic>.rs`",
        ));
    }
    let path_attribute = format!("#[{}", "path");
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with(&path_attribute) {
            violations.push(Violation::new(
                path,
                "test-file-name",
                format!(
                    "line {}: a `#[path]` module; put the file where the module tree says",
                    index + 1
                ),
            ));
        }
    }
    violations
}

/// `word` occurs in `text` with no identifier character on either side.
fn contains_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("c/src/lib.rs")
    }

    #[test]
    fn module_doc_must_come_first() {
        assert!(check_module_doc(path(), "//! What this is.\nfn f() {}\n").is_none());
        assert!(check_module_doc(path(), "\n\n  //! Indented, after blank lines.\n").is_none());

        let missing = check_module_doc(path(), "use std::fs;\n//! Too late.\n")
            .expect("a module doc after code is refused");
        assert_eq!(missing.rule, "module-doc");
        assert_eq!(missing.path, path());
        assert!(
            check_module_doc(path(), "/// An item doc, not a module doc.\nfn f() {}\n").is_some()
        );
        assert!(check_module_doc(path(), "#![allow(dead_code)]\n//! Doc.\n").is_some());
        assert!(check_module_doc(path(), "").is_some());
    }

    #[test]
    fn ignored_tests_are_refused_with_their_line() {
        let source = format!(
            "//! Doc.\n#[test]\n#[{IGNORE}]\nfn a() {{}}\n\n#[{IGNORE} = \"slow\"]\nfn b() {{}}\n"
        );
        let violations = check_no_ignore(path(), &source);
        let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].starts_with("line 3:"), "{messages:?}");
        assert!(messages[1].starts_with("line 6:"), "{messages:?}");

        let conditional = format!("#[cfg_attr(not(feature = \"pg\"), {IGNORE})]\nfn c() {{}}\n");
        assert_eq!(check_no_ignore(path(), &conditional).len(), 1);
    }

    #[test]
    fn prose_and_similar_words_are_not_ignored_tests() {
        let source = format!(
            "//! Tidy refuses `#[{IGNORE}]`.\n// #[{IGNORE}] in a comment\n\
             #[cfg_attr(test, allow(clippy::{IGNORE}d_unit_patterns))]\n\
             let s = \"#[{IGNORE}]\";\n"
        );
        let violations = check_no_ignore(path(), &source);
        assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn long_files_are_refused() {
        let at_limit = "x\n".repeat(MAX_LINES);
        assert!(check_file_length(path(), &at_limit, MAX_LINES).is_none());
        let over = "x\n".repeat(MAX_LINES + 1);
        let violation = check_file_length(path(), &over, MAX_LINES).expect("too long");
        assert!(
            violation.message.starts_with("601 lines"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn split_out_tests_follow_one_naming_scheme() {
        let doc = "//! Doc.\n";
        for good in [
            "c/src/store/tests.rs",
            "c/src/store/tests/docs.rs",
            "c/src/tests.rs",
        ] {
            assert!(
                check_test_file_name(Path::new(good), doc).is_empty(),
                "{good}"
            );
        }
        for bad in ["c/src/store/tests_docs.rs", "c/src/ofd/container_tests.rs"] {
            let violations = check_test_file_name(Path::new(bad), doc);
            assert_eq!(violations.len(), 1, "{bad}");
            assert_eq!(violations[0].rule, "test-file-name");
        }
        let with_path = format!("//! Doc.\n#[{}= \"x_tests.rs\"]\nmod tests;\n", "path ");
        let violations = check_test_file_name(path(), &with_path);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].message.starts_with("line 2:"));
    }

    #[test]
    fn whole_words_only() {
        assert!(contains_word("a, ignore)", "ignore"));
        assert!(!contains_word("ignored", "ignore"));
        assert!(!contains_word("dont_ignore", "ignore"));
    }
}
