//! Configuration: the optional `--config FILE.toml` and how it merges with command-line
//! flags and the `DATABASE_URL` environment variable.
//!
//! The file holds the same settings as the flags, under the flags' long names (`listen`,
//! `data`, `database-url` — `database_url` is accepted too — `store`, `till`, `role`).
//! Unknown keys are an error, so a typo never silently falls back to a default.
//!
//! Precedence, highest first: the command line, then `DATABASE_URL`, then the file. The
//! database location is resolved as one choice: `--data` / `--database-url` on the command
//! line (not both) beats `DATABASE_URL`, which beats `data` / `database-url` in the file.

use crate::db::{redact_url, DbConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Address `hub serve` listens on when neither the flag nor the file sets one: loopback
/// only, so an unconfigured hub is not exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// A config file larger than this is refused (it is a handful of lines).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The contents of a `--config` TOML file. Every field is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--data DIR`.
    pub data: Option<PathBuf>,
    /// `--database-url URL`.
    #[serde(alias = "database_url")]
    pub database_url: Option<String>,
    /// `--store STORE`.
    pub store: Option<String>,
    /// `--till TILL`.
    pub till: Option<String>,
    /// `--role ROLE`.
    pub role: Option<String>,
}

/// Configuration could not be read or does not make sense.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`FileConfig`] (includes unknown keys).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (line, column, the unknown key...).
        message: String,
    },
    /// No database location anywhere.
    #[error("no database given: pass --data DIR (embedded SQLite) or --database-url URL (PostgreSQL), set DATABASE_URL, or put one in --config")]
    NoDatabase,
    /// Both an SQLite directory and a PostgreSQL URL at the same level.
    #[error("both a data directory and a database URL are given {0}: choose one")]
    BothDatabases(&'static str),
    /// The URL is not a PostgreSQL URL.
    #[error("database URL {0} is not a postgres:// or postgresql:// URL")]
    BadDatabaseUrl(String),
    /// The listen address does not parse.
    #[error("invalid listen address {0:?}: expected IP:PORT, e.g. 0.0.0.0:8080")]
    BadListen(String),
    /// A required setting is missing everywhere.
    #[error("missing --{0} (give it on the command line or in --config)")]
    Missing(&'static str),
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let shown = path.display().to_string();
    let read_err = |source| ConfigError::Read {
        path: shown.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::Parse {
            path: shown,
            message: "larger than 1 MiB".into(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse(&text, &shown)
}

/// Parses config text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_owned(),
        message: e.to_string(),
    })
}

/// The database flags as given on the command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DbFlags {
    /// `--data DIR`.
    pub data: Option<PathBuf>,
    /// `--database-url URL`.
    pub database_url: Option<String>,
}

fn location(
    data: Option<&PathBuf>,
    url: Option<&str>,
    level: &'static str,
) -> Result<Option<DbConfig>, ConfigError> {
    match (data, url) {
        (Some(_), Some(_)) => Err(ConfigError::BothDatabases(level)),
        (Some(dir), None) => Ok(Some(DbConfig::Sqlite { dir: dir.clone() })),
        (None, Some(url)) => postgres(url).map(Some),
        (None, None) => Ok(None),
    }
}

fn postgres(url: &str) -> Result<DbConfig, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DbConfig::Postgres {
            url: url.to_owned(),
        })
    } else {
        Err(ConfigError::BadDatabaseUrl(redact_url(url)))
    }
}

/// Resolves where the database is: command line, then `env_database_url` (the value of
/// `DATABASE_URL`, empty = unset), then the file.
pub fn resolve_db(
    flags: &DbFlags,
    env_database_url: Option<&str>,
    file: &FileConfig,
) -> Result<DbConfig, ConfigError> {
    let non_empty = |s: &&str| !s.is_empty();
    if let Some(db) = location(
        flags.data.as_ref(),
        flags.database_url.as_deref().filter(non_empty),
        "on the command line",
    )? {
        return Ok(db);
    }
    if let Some(url) = env_database_url.filter(non_empty) {
        return postgres(url);
    }
    location(
        file.data.as_ref(),
        file.database_url.as_deref().filter(non_empty),
        "in the config file",
    )?
    .ok_or(ConfigError::NoDatabase)
}

/// Resolves the listen address: flag, then file, then [`DEFAULT_LISTEN`].
pub fn resolve_listen(flag: Option<&str>, file: &FileConfig) -> Result<SocketAddr, ConfigError> {
    let text = flag.or(file.listen.as_deref()).unwrap_or(DEFAULT_LISTEN);
    text.parse()
        .map_err(|_| ConfigError::BadListen(text.chars().take(100).collect()))
}

/// A required string setting: the flag if given, else the file's value.
pub fn require(
    flag: Option<&str>,
    file_value: Option<&str>,
    name: &'static str,
) -> Result<String, ConfigError> {
    flag.or(file_value)
        .map(str::to_owned)
        .ok_or(ConfigError::Missing(name))
}

/// Everything `hub serve` needs, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database.
    pub db: DbConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kebab_and_snake_keys() {
        let file = parse(
            "listen = \"0.0.0.0:9000\"\ndatabase-url = \"postgres://h/db\"\nstore = \"S1\"",
            "t.toml",
        )
        .expect("parse");
        assert_eq!(file.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(file.database_url.as_deref(), Some("postgres://h/db"));
        let snake = parse("database_url = \"postgres://h/db\"", "t.toml").expect("parse");
        assert_eq!(snake.database_url.as_deref(), Some("postgres://h/db"));
    }

    #[test]
    fn unknown_key_is_a_clear_error() {
        let err = parse("listen = \"0.0.0.0:1\"\nlisten_addr = \"x\"\n", "hub.toml")
            .expect_err("unknown key must fail");
        let text = err.to_string();
        assert!(text.contains("hub.toml"), "{text}");
        assert!(text.contains("listen_addr"), "{text}");
    }

    #[test]
    fn command_line_wins_over_env_and_file() {
        let file = FileConfig {
            data: Some("/file/dir".into()),
            ..FileConfig::default()
        };
        let flags = DbFlags {
            data: Some("/cli/dir".into()),
            database_url: None,
        };
        let db = resolve_db(&flags, Some("postgres://env/db"), &file).expect("resolve");
        assert_eq!(
            db,
            DbConfig::Sqlite {
                dir: "/cli/dir".into()
            }
        );

        let db = resolve_db(&DbFlags::default(), Some("postgres://env/db"), &file).expect("env");
        assert_eq!(
            db,
            DbConfig::Postgres {
                url: "postgres://env/db".into()
            }
        );

        let db = resolve_db(&DbFlags::default(), Some(""), &file).expect("file");
        assert_eq!(
            db,
            DbConfig::Sqlite {
                dir: "/file/dir".into()
            }
        );
    }

    #[test]
    fn database_location_errors() {
        let both = DbFlags {
            data: Some("/d".into()),
            database_url: Some("postgres://h/db".into()),
        };
        assert!(matches!(
            resolve_db(&both, None, &FileConfig::default()),
            Err(ConfigError::BothDatabases(_))
        ));
        assert!(matches!(
            resolve_db(&DbFlags::default(), None, &FileConfig::default()),
            Err(ConfigError::NoDatabase)
        ));
        let err = resolve_db(
            &DbFlags {
                data: None,
                database_url: Some("mysql://u:secret@h/db".into()),
            },
            None,
            &FileConfig::default(),
        )
        .expect_err("not postgres");
        assert!(
            !err.to_string().contains("secret"),
            "password leaked: {err}"
        );
    }

    #[test]
    fn listen_and_required_values() {
        let file = FileConfig {
            listen: Some("0.0.0.0:9000".into()),
            store: Some("S1".into()),
            ..FileConfig::default()
        };
        assert_eq!(
            resolve_listen(Some("127.0.0.1:1"), &file)
                .expect("flag")
                .port(),
            1
        );
        assert_eq!(resolve_listen(None, &file).expect("file").port(), 9000);
        assert_eq!(
            resolve_listen(None, &FileConfig::default())
                .expect("default")
                .to_string(),
            DEFAULT_LISTEN
        );
        assert!(resolve_listen(Some("nonsense"), &file).is_err());
        assert_eq!(
            require(None, file.store.as_deref(), "store").expect("file"),
            "S1"
        );
        assert_eq!(
            require(Some("S2"), file.store.as_deref(), "store").expect("flag"),
            "S2"
        );
        assert!(matches!(
            require(None, None, "till"),
            Err(ConfigError::Missing("till"))
        ));
    }

    #[test]
    fn loads_a_file_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hub.toml");
        std::fs::write(&path, "data = \"/var/lib/hub\"\n").expect("write");
        let file = load_file(&path).expect("load");
        assert_eq!(file.data, Some(PathBuf::from("/var/lib/hub")));
        assert!(matches!(
            load_file(&dir.path().join("missing.toml")),
            Err(ConfigError::Read { .. })
        ));
    }
}
