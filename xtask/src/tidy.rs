//! Tidy: the repository's architecture invariants, checked by `cargo test`.
//!
//! In the manner of rust-analyzer's `xtask/src/tidy.rs`, each rule that docs/ARCHITECTURE.md
//! states is a check here, and the test [`tests::workspace_is_tidy`] fails `cargo test` (and so
//! `./scripts/test.sh`) when one breaks. `cargo run -p xtask -- tidy` prints the same report.
//!
//! - [`deps`]: who may depend on whom (brief.md §2), as a table of rules over every member's
//!   `Cargo.toml`.
//! - [`files`]: a `//!` header on every module, no ignored tests, no oversized source file.
//! - [`architecture`]: docs/ARCHITECTURE.md covers every member with its invariants.
//! - [`db_reads`]: the hub's `Db` only reads; writes live on `DbTx`.
//!
//! Every check is a pure function from file contents to [`Violation`]s, so each is unit-tested
//! with small fake inputs; this module does the file-system walking.

mod architecture;
mod db_reads;
mod deps;
mod files;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One broken rule: which file, which rule, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path relative to the repository root.
    pub path: PathBuf,
    /// Short rule name, e.g. `dependency` or `module-doc`.
    pub rule: &'static str,
    /// What is wrong, in a sentence that names the fix.
    pub message: String,
}

impl Violation {
    fn new(path: impl Into<PathBuf>, rule: &'static str, message: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: [{}] {}",
            self.path.display(),
            self.rule,
            self.message
        )
    }
}

/// A workspace member as found on disk.
#[derive(Debug)]
struct Member {
    /// Directory relative to the repository root, as written in `workspace.members`.
    dir: String,
    /// The parsed `Cargo.toml`.
    manifest: toml::Table,
}

/// Run every check on the repository at `root`. An `Err` means the checks could not run (an
/// unreadable file, a broken root manifest); broken rules come back as violations.
pub fn check_repository(root: &Path) -> Result<Vec<Violation>> {
    let root_manifest = read_manifest(&root.join("Cargo.toml"))?;
    let (members, mut violations) = load_members(root, &root_manifest)?;

    let workspace_dependencies = root_manifest
        .get("workspace")
        .and_then(|workspace| workspace.get("dependencies"))
        .and_then(toml::Value::as_table);
    let crates: Vec<deps::CrateDependencies> = members
        .iter()
        .map(|member| {
            deps::CrateDependencies::from_manifest(
                Path::new(&member.dir).join("Cargo.toml"),
                &member.manifest,
                workspace_dependencies,
            )
        })
        .collect();
    violations.extend(deps::check_dependencies(deps::DEPENDENCY_RULES, &crates));

    for member in &members {
        violations.extend(check_member_sources(root, &member.dir)?);
    }

    let architecture_path = Path::new("docs").join("ARCHITECTURE.md");
    let member_dirs: Vec<&str> = members.iter().map(|member| member.dir.as_str()).collect();
    match fs::read_to_string(root.join(&architecture_path)) {
        Ok(text) => violations.extend(architecture::check_architecture_doc(
            &architecture_path,
            &text,
            &member_dirs,
        )),
        Err(error) => violations.push(Violation::new(
            architecture_path,
            "architecture-doc",
            format!("cannot read it ({error}); it must describe every workspace member"),
        )),
    }
    Ok(violations)
}

/// The members listed in the root manifest (`dir/*` globs expanded, `exclude` honoured).
/// A listed member without a readable manifest is a violation, not an error.
fn load_members(root: &Path, root_manifest: &toml::Table) -> Result<(Vec<Member>, Vec<Violation>)> {
    let workspace = root_manifest
        .get("workspace")
        .and_then(toml::Value::as_table)
        .context("the root Cargo.toml has no [workspace] table")?;
    let strings = |key: &str| -> Vec<String> {
        workspace
            .get(key)
            .and_then(toml::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(toml::Value::as_str)
                    .map(|item| item.trim_end_matches('/').to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let excluded = strings("exclude");

    let mut dirs = Vec::new();
    for pattern in strings("members") {
        match pattern.strip_suffix("/*") {
            Some(parent) => {
                for entry in sorted_entries(&root.join(parent))? {
                    if entry.join("Cargo.toml").is_file() {
                        if let Some(name) = entry.file_name().and_then(|name| name.to_str()) {
                            dirs.push(format!("{parent}/{name}"));
                        }
                    }
                }
            }
            None if pattern.contains('*') => {
                bail!("workspace member pattern {pattern:?}: only `dir/*` globs are supported")
            }
            None => dirs.push(pattern),
        }
    }
    if dirs.is_empty() {
        bail!("the root Cargo.toml lists no workspace members");
    }

    let mut members = Vec::new();
    let mut violations = Vec::new();
    for dir in dirs.into_iter().filter(|dir| !excluded.contains(dir)) {
        let path = Path::new(&dir).join("Cargo.toml");
        match read_manifest(&root.join(&path)) {
            Ok(manifest) => members.push(Member { dir, manifest }),
            Err(error) => violations.push(Violation::new(
                path,
                "manifest",
                format!("listed as a workspace member but unreadable: {error:#}"),
            )),
        }
    }
    Ok((members, violations))
}

fn read_manifest(path: &Path) -> Result<toml::Table> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// Source checks for one member: module docs in src/, tests/, benches/, examples/; no ignored
/// tests anywhere in the member; the size limit in src/.
fn check_member_sources(root: &Path, member_dir: &str) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for file in rust_files(root, Path::new(member_dir))? {
        let text = match fs::read(root.join(&file)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    violations.push(Violation::new(file, "utf-8", "source is not valid UTF-8"));
                    continue;
                }
            },
            Err(error) => return Err(error).with_context(|| format!("reading {}", file.display())),
        };
        let top_dir = file
            .strip_prefix(member_dir)
            .ok()
            .and_then(|inner| inner.components().next())
            .and_then(|first| first.as_os_str().to_str())
            .unwrap_or_default();
        if files::MODULE_DIRS.contains(&top_dir) {
            violations.extend(files::check_module_doc(&file, &text));
        }
        if top_dir == "src" {
            violations.extend(files::check_file_length(&file, &text, files::MAX_LINES));
            violations.extend(files::check_test_file_name(&file, &text));
        }
        if file.starts_with(db_reads::DB_DIR) {
            violations.extend(db_reads::check_db_reads_only(&file, &text));
        }
        violations.extend(files::check_no_ignore(&file, &text));
    }
    Ok(violations)
}

/// Every `.rs` file under `dir` (relative to `root`), sorted, skipping build output, hidden
/// directories and test data.
fn rust_files(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in sorted_entries(&root.join(&current))? {
            let Some(name) = entry.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            let relative = current.join(name);
            if entry.is_dir() {
                if !files::SKIPPED_DIRS.contains(&name) && !name.starts_with('.') {
                    pending.push(relative);
                }
            } else if name.ends_with(".rs") {
                found.push(relative);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The real repository obeys every rule. This is the test that makes tidy part of
    /// `cargo test --workspace`.
    #[test]
    fn workspace_is_tidy() {
        let violations = check_repository(&repository_root()).expect("tidy checks could not run");
        let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(
            report.is_empty(),
            "{} tidy violation(s) (rerun with `cargo run -p xtask -- tidy`):\n{}",
            report.len(),
            report.join("\n")
        );
    }

    #[test]
    fn finds_members_and_their_sources() {
        let root = repository_root();
        let manifest = read_manifest(&root.join("Cargo.toml")).expect("root manifest");
        let (members, violations) = load_members(&root, &manifest).expect("members");
        assert!(violations.is_empty(), "{violations:?}");
        let dirs: Vec<&str> = members.iter().map(|member| member.dir.as_str()).collect();
        assert!(dirs.contains(&"xtask"), "{dirs:?}");
        assert!(dirs.contains(&"crdt-model"), "{dirs:?}");

        let sources = rust_files(&root, Path::new("xtask")).expect("xtask sources");
        assert!(sources.contains(&Path::new("xtask").join("src").join("tidy.rs")));
        assert!(sources.contains(&Path::new("xtask").join("src").join("tidy").join("deps.rs")));
    }

    #[test]
    fn violation_names_file_and_rule() {
        let violation = Violation::new("a/src/lib.rs", "module-doc", "add a header");
        assert_eq!(
            violation.to_string(),
            "a/src/lib.rs: [module-doc] add a header"
        );
    }
}
