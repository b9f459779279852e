//! Dependency rules between the workspace's crates (brief.md §2), as a data table.
//!
//! Each [`DependencyRule`] names the crates it binds, the packages they must not depend on,
//! which dependency kinds count, and the architecture invariant it enforces (quoted in the
//! violation). A rule about a crate that is not a workspace member binds nothing. Only direct
//! dependencies are checked: what a crate *names* is what its authors chose.

use std::path::PathBuf;

use super::Violation;

/// Which crates a rule binds, by package name.
#[derive(Debug, Clone, Copy)]
pub enum Subjects {
    /// Exactly this crate.
    Crate(&'static str),
    /// Every workspace crate except these.
    AllExcept(&'static [&'static str]),
}

/// Which dependency tables a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// `[dependencies]` and `[build-dependencies]`: what the crate is built with.
    Shipped,
    /// Also `[dev-dependencies]`.
    All,
}

/// One line of the dependency policy.
#[derive(Debug)]
pub struct DependencyRule {
    pub subjects: Subjects,
    pub forbidden: &'static [&'static str],
    pub kinds: Kinds,
    /// `optional = true` dependencies (behind a feature) are allowed.
    pub optional_allowed: bool,
    /// The architecture invariant, as docs/ARCHITECTURE.md states it.
    pub invariant: &'static str,
}

/// The policy. Keep in step with the "Architecture Invariant" lines of docs/ARCHITECTURE.md.
pub const DEPENDENCY_RULES: &[DependencyRule] = &[
    DependencyRule {
        subjects: Subjects::Crate("crdt-model"),
        forbidden: &[
            "tokio",
            "rusqlite",
            "sqlx",
            "axum",
            "reqwest",
            "hyper",
            "sync-engine",
            "fiscal",
            "till-node",
            "hub",
        ],
        kinds: Kinds::Shipped,
        optional_allowed: false,
        invariant: "crdt-model does no IO and knows nothing of tokio, SQLite, HTTP or sync",
    },
    DependencyRule {
        subjects: Subjects::Crate("sync-engine"),
        forbidden: &[
            "crdt-model",
            "fiscal",
            "till-node",
            "hub",
            "rusqlite",
            "sqlx",
        ],
        kinds: Kinds::Shipped,
        optional_allowed: false,
        invariant: "sync-engine knows documents, heads and peers, not receipts or products",
    },
    DependencyRule {
        subjects: Subjects::Crate("sync-engine"),
        forbidden: &["tokio", "axum", "reqwest", "hyper"],
        kinds: Kinds::Shipped,
        optional_allowed: true,
        invariant: "sync-engine's core does no IO and compiles to wasm32; \
                    transports are adapters behind features (optional dependencies)",
    },
    DependencyRule {
        subjects: Subjects::Crate("fiscal"),
        forbidden: &["sync-engine", "hub", "till-node", "sqlx"],
        kinds: Kinds::Shipped,
        optional_allowed: false,
        invariant: "fiscal knows receipts (from crdt-model), never sync-engine, hub or till-node",
    },
    DependencyRule {
        subjects: Subjects::Crate("fiscal"),
        forbidden: &["fiscal-emulators"],
        kinds: Kinds::All,
        optional_allowed: false,
        invariant: "fiscal holds only what the till runs; it does not depend on fiscal-emulators, \
                    not even in its tests",
    },
    DependencyRule {
        subjects: Subjects::AllExcept(&["tests"]),
        forbidden: &["fiscal-emulators"],
        kinds: Kinds::Shipped,
        optional_allowed: false,
        invariant: "no production crate depends on fiscal-emulators: \
                    only tests/ and dev-dependencies",
    },
    DependencyRule {
        subjects: Subjects::AllExcept(&["till-node", "tests"]),
        forbidden: &["rusqlite", "tokio-serial", "serialport"],
        kinds: Kinds::All,
        optional_allowed: false,
        invariant: "only till-node opens the serial port and the till's SQLite",
    },
    DependencyRule {
        subjects: Subjects::AllExcept(&["hub", "tests"]),
        forbidden: &["sqlx"],
        kinds: Kinds::All,
        optional_allowed: false,
        invariant: "only hub talks to PostgreSQL",
    },
    DependencyRule {
        subjects: Subjects::Crate("till-api"),
        forbidden: &[
            "tokio",
            "axum",
            "reqwest",
            "hyper",
            "rusqlite",
            "sqlx",
            "sync-engine",
            "fiscal",
            "till-node",
            "hub",
            "web",
        ],
        kinds: Kinds::Shipped,
        optional_allowed: false,
        invariant: "till-api is serde only (plus crdt-model's money and id types): \
                    no IO, no tokio, axum, reqwest or database; it compiles to wasm32",
    },
    DependencyRule {
        subjects: Subjects::Crate("web"),
        forbidden: &["tokio", "axum", "sqlx", "rusqlite", "hyper"],
        kinds: Kinds::Shipped,
        optional_allowed: false,
        invariant: "web never depends on tokio, axum, sqlx or rusqlite",
    },
    DependencyRule {
        subjects: Subjects::AllExcept(&["tests"]),
        forbidden: &["till-node", "hub"],
        kinds: Kinds::All,
        optional_allowed: false,
        invariant: "nothing depends on till-node or hub except tests/",
    },
    DependencyRule {
        subjects: Subjects::AllExcept(&[]),
        forbidden: &["tests", "xtask"],
        kinds: Kinds::All,
        optional_allowed: false,
        invariant: "no crate depends on tests/ or on the xtask tooling",
    },
    DependencyRule {
        subjects: Subjects::Crate("xtask"),
        forbidden: &[
            "crdt-model",
            "sync-engine",
            "fiscal",
            "fiscal-emulators",
            "till-api",
            "till-node",
            "hub",
            "web",
            "tests",
        ],
        kinds: Kinds::All,
        optional_allowed: false,
        invariant: "xtask depends on no workspace crate; it reads their files instead",
    },
];

/// The table a dependency was declared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    Normal,
    Build,
    Dev,
}

/// One direct dependency of a crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The package depended on (after `package = "…"` renames).
    pub package: String,
    pub kind: DependencyKind,
    pub optional: bool,
}

/// A workspace crate and its direct dependencies.
#[derive(Debug)]
pub struct CrateDependencies {
    /// The package name (`[package] name`).
    pub name: String,
    /// Its manifest, relative to the repository root, for messages.
    pub manifest_path: PathBuf,
    pub dependencies: Vec<Dependency>,
}

const TABLES: &[(&str, DependencyKind)] = &[
    ("dependencies", DependencyKind::Normal),
    ("build-dependencies", DependencyKind::Build),
    ("build_dependencies", DependencyKind::Build),
    ("dev-dependencies", DependencyKind::Dev),
    ("dev_dependencies", DependencyKind::Dev),
];

impl CrateDependencies {
    /// Read the dependencies of a parsed `Cargo.toml`, including `[target.'cfg(…)'.*]` tables.
    /// `workspace_dependencies` (the root's `[workspace.dependencies]`) resolves renames of
    /// `foo.workspace = true` entries.
    pub fn from_manifest(
        manifest_path: PathBuf,
        manifest: &toml::Table,
        workspace_dependencies: Option<&toml::Table>,
    ) -> Self {
        let name = manifest
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut scopes = vec![manifest];
        if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
            scopes.extend(targets.values().filter_map(toml::Value::as_table));
        }
        let mut dependencies = Vec::new();
        for scope in scopes {
            for (table_name, kind) in TABLES {
                let Some(table) = scope.get(*table_name).and_then(toml::Value::as_table) else {
                    continue;
                };
                for (key, spec) in table {
                    dependencies.push(Dependency {
                        package: package_name(key, spec, workspace_dependencies),
                        kind: *kind,
                        optional: spec
                            .get("optional")
                            .and_then(toml::Value::as_bool)
                            .unwrap_or(false),
                    });
                }
            }
        }
        CrateDependencies {
            name,
            manifest_path,
            dependencies,
        }
    }
}

fn package_name(key: &str, spec: &toml::Value, workspace: Option<&toml::Table>) -> String {
    let renamed = |spec: &toml::Value| {
        spec.get("package")
            .and_then(toml::Value::as_str)
            .map(str::to_string)
    };
    if let Some(package) = renamed(spec) {
        return package;
    }
    let inherited = spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
    if inherited {
        if let Some(package) = workspace.and_then(|deps| deps.get(key)).and_then(renamed) {
            return package;
        }
    }
    key.to_string()
}

fn binds(subjects: Subjects, crate_name: &str) -> bool {
    match subjects {
        Subjects::Crate(name) => name == crate_name,
        Subjects::AllExcept(names) => !names.contains(&crate_name),
    }
}

/// Apply `rules` to every crate; one violation per forbidden dependency and rule.
pub fn check_dependencies(
    rules: &[DependencyRule],
    crates: &[CrateDependencies],
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for krate in crates {
        for rule in rules
            .iter()
            .filter(|rule| binds(rule.subjects, &krate.name))
        {
            for dependency in &krate.dependencies {
                let counted = rule.kinds == Kinds::All || dependency.kind != DependencyKind::Dev;
                if !counted
                    || !rule.forbidden.contains(&dependency.package.as_str())
                    || (rule.optional_allowed && dependency.optional)
                {
                    continue;
                }
                let how = match (dependency.kind, rule.optional_allowed) {
                    (DependencyKind::Dev, _) => "a dev-dependency on",
                    (DependencyKind::Build, _) => "a build-dependency on",
                    (DependencyKind::Normal, true) => "a non-optional dependency on",
                    (DependencyKind::Normal, false) => "a dependency on",
                };
                violations.push(Violation::new(
                    krate.manifest_path.clone(),
                    "dependency",
                    format!(
                        "{} has {how} `{}`, which breaks the invariant: {}",
                        krate.name, dependency.package, rule.invariant
                    ),
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE_DEPENDENCIES: &str = r#"
        tokio = { version = "1", features = ["full"] }
        runtime = { version = "1", package = "tokio" }
        serde = "1"
    "#;

    fn krate(manifest: &str) -> CrateDependencies {
        let manifest: toml::Table = manifest.parse().expect("test manifest parses");
        let workspace: toml::Table = WORKSPACE_DEPENDENCIES.parse().expect("workspace parses");
        CrateDependencies::from_manifest("x/Cargo.toml".into(), &manifest, Some(&workspace))
    }

    fn check(manifest: &str) -> Vec<String> {
        check_dependencies(DEPENDENCY_RULES, &[krate(manifest)])
            .into_iter()
            .map(|violation| violation.message)
            .collect()
    }

    #[test]
    fn crdt_model_may_not_use_tokio_but_may_test_with_it() {
        let shipped = check(
            "[package]\nname = \"crdt-model\"\n[dependencies]\nserde.workspace = true\n\
             tokio.workspace = true\n",
        );
        assert_eq!(shipped.len(), 1, "{shipped:?}");
        assert!(shipped[0].contains("`tokio`"), "{shipped:?}");
        assert!(shipped[0].contains("does no IO"), "{shipped:?}");

        let dev_only =
            check("[package]\nname = \"crdt-model\"\n[dev-dependencies]\ntokio = \"1\"\n");
        assert!(dev_only.is_empty(), "{dev_only:?}");
    }

    #[test]
    fn renamed_and_target_specific_dependencies_are_seen() {
        let renamed = check("[package]\nname = \"crdt-model\"\n[dependencies]\nrt = { version = \"1\", package = \"tokio\" }\n");
        assert_eq!(renamed.len(), 1, "{renamed:?}");
        let inherited_rename =
            check("[package]\nname = \"crdt-model\"\n[dependencies]\nruntime.workspace = true\n");
        assert_eq!(inherited_rename.len(), 1, "{inherited_rename:?}");
        let target = check(
            "[package]\nname = \"crdt-model\"\n[target.'cfg(unix)'.dependencies]\nhyper = \"1\"\n",
        );
        assert_eq!(target.len(), 1, "{target:?}");
        assert!(target[0].contains("`hyper`"), "{target:?}");
    }

    #[test]
    fn sync_engine_takes_transports_only_behind_features() {
        let optional = check(
            "[package]\nname = \"sync-engine\"\n[dependencies]\n\
             tokio = { workspace = true, optional = true }\naxum = { version = \"0.8\", optional = true }\n",
        );
        assert!(optional.is_empty(), "{optional:?}");
        let required = check("[package]\nname = \"sync-engine\"\n[dependencies]\naxum = \"0.8\"\n");
        assert_eq!(required.len(), 1, "{required:?}");
        assert!(required[0].contains("non-optional"), "{required:?}");
        // Optional does not excuse a dependency the crate must never have.
        let domain = check(
            "[package]\nname = \"sync-engine\"\n[dependencies]\ncrdt-model = { path = \"../crdt-model\", optional = true }\n",
        );
        assert_eq!(domain.len(), 1, "{domain:?}");
    }

    #[test]
    fn only_till_node_opens_sqlite_and_only_hub_postgres() {
        assert!(check("[package]\nname = \"till-node\"\n[dependencies]\nrusqlite = \"0.39\"\ntokio-serial = \"5\"\n").is_empty());
        assert!(check("[package]\nname = \"hub\"\n[dependencies]\nsqlx = \"0.9\"\n").is_empty());
        assert!(check(
            "[package]\nname = \"tests\"\n[dependencies]\nrusqlite = \"0.39\"\nsqlx = \"0.9\"\n"
        )
        .is_empty());

        let hub = check("[package]\nname = \"hub\"\n[dev-dependencies]\nrusqlite = \"0.39\"\n");
        assert_eq!(hub.len(), 1, "{hub:?}");
        assert!(hub[0].contains("dev-dependency"), "{hub:?}");
        let till = check("[package]\nname = \"till-node\"\n[dependencies]\nsqlx = \"0.9\"\n");
        assert_eq!(till.len(), 1, "{till:?}");
        let xtask =
            check("[package]\nname = \"xtask\"\n[build-dependencies]\nserialport = \"4\"\n");
        assert_eq!(xtask.len(), 1, "{xtask:?}");
    }

    #[test]
    fn fiscal_and_web_rules() {
        let fiscal = check(
            "[package]\nname = \"fiscal\"\n[dependencies]\ncrdt-model = { path = \"../crdt-model\" }\nsync-engine = { path = \"../sync-engine\" }\n",
        );
        assert_eq!(fiscal.len(), 1, "{fiscal:?}");
        assert!(fiscal[0].contains("`sync-engine`"), "{fiscal:?}");
        let web =
            check("[package]\nname = \"web\"\n[dependencies]\naxum = \"0.8\"\nleptos = \"0.8\"\n");
        assert_eq!(web.len(), 1, "{web:?}");
    }

    #[test]
    fn till_api_is_serde_only_and_web_and_till_node_may_use_it() {
        let server = check(
            "[package]\nname = \"till-api\"\n[dependencies]\nserde = \"1\"\naxum = \"0.8\"\n",
        );
        assert_eq!(server.len(), 1, "{server:?}");
        assert!(server[0].contains("compiles to wasm32"), "{server:?}");
        let transport = check(
            "[package]\nname = \"till-api\"\n[dependencies]\nsync-engine = { path = \"../sync-engine\" }\n",
        );
        assert_eq!(transport.len(), 1, "{transport:?}");
        assert!(check(
            "[package]\nname = \"till-api\"\n[dependencies]\nserde = \"1\"\ncrdt-model = { path = \"../crdt-model\" }\n"
        )
        .is_empty());
        assert!(check(
            "[package]\nname = \"web\"\n[dependencies]\ntill-api = { path = \"../till-api\" }\n"
        )
        .is_empty());
        assert!(check(
            "[package]\nname = \"till-node\"\n[dependencies]\ntill-api = { path = \"../till-api\" }\n"
        )
        .is_empty());
    }

    #[test]
    fn nothing_but_tests_depends_on_the_binaries() {
        let hub_on_till = check(
            "[package]\nname = \"hub\"\n[dependencies]\ntill-node = { path = \"../till-node\" }\n",
        );
        assert_eq!(hub_on_till.len(), 1, "{hub_on_till:?}");
        assert!(hub_on_till[0].contains("except tests/"), "{hub_on_till:?}");
        let tests = check("[package]\nname = \"tests\"\n[dev-dependencies]\nhub = { path = \"../hub\" }\ntill-node = { path = \"../till-node\" }\n");
        assert!(tests.is_empty(), "{tests:?}");
        let on_tooling = check(
            "[package]\nname = \"hub\"\n[dev-dependencies]\nxtask = { path = \"../xtask\" }\n",
        );
        assert_eq!(on_tooling.len(), 1, "{on_tooling:?}");
        let tooling = check("[package]\nname = \"xtask\"\n[dependencies]\ncrdt-model = { path = \"../crdt-model\" }\n");
        assert_eq!(tooling.len(), 1, "{tooling:?}");
    }

    #[test]
    fn emulators_only_in_tests_and_dev_dependencies() {
        let till = check(
            "[package]\nname = \"till-node\"\n[dependencies]\nfiscal-emulators = { path = \"../fiscal-emulators\" }\n",
        );
        assert_eq!(till.len(), 1, "{till:?}");
        assert!(
            till[0].contains("only tests/ and dev-dependencies"),
            "{till:?}"
        );
        let till_tests = check(
            "[package]\nname = \"till-node\"\n[dev-dependencies]\nfiscal-emulators.workspace = true\n",
        );
        assert!(till_tests.is_empty(), "{till_tests:?}");
        let tests = check(
            "[package]\nname = \"tests\"\n[dependencies]\nfiscal-emulators.workspace = true\n",
        );
        assert!(tests.is_empty(), "{tests:?}");
        let fiscal = check(
            "[package]\nname = \"fiscal\"\n[dev-dependencies]\nfiscal-emulators.workspace = true\n",
        );
        assert_eq!(fiscal.len(), 1, "{fiscal:?}");
        assert!(fiscal[0].contains("not even in its tests"), "{fiscal:?}");
    }

    /// A typo in the table would make a rule bind nothing, silently.
    #[test]
    fn rule_table_names_only_crates_of_the_layout() {
        const LAYOUT: &[&str] = &[
            "crdt-model",
            "sync-engine",
            "fiscal",
            "fiscal-emulators",
            "till-api",
            "till-node",
            "hub",
            "web",
            "tests",
            "xtask",
        ];
        for rule in DEPENDENCY_RULES {
            let named = match rule.subjects {
                Subjects::Crate(name) => vec![name],
                Subjects::AllExcept(names) => names.to_vec(),
            };
            for name in named {
                assert!(LAYOUT.contains(&name), "unknown crate {name:?} in {rule:?}");
            }
            assert!(!rule.forbidden.is_empty(), "{rule:?}");
        }
    }
}
