//! The daemon's settings: where they come from, how they are merged and validated.
//!
//! Every setting of `till-node run` can be given on the command line, by environment variable
//! (the two tokens only: `TILL_NODE_HUB_TOKEN`, `TILL_NODE_ADMIN_TOKEN`, which keeps them out of
//! `ps` output), or in a TOML file passed with `--config`. Precedence: command line, then
//! environment, then file, then the built-in default. The file uses the flag names as keys
//! (`hub-token = "…"`); an unknown key is an error that names it, so a typo never silently
//! falls back to a default. A relative `data` path in the file is taken relative to the file.
//!
//! [`PartialRunConfig`] is what one source says (every field optional; it is both the clap
//! argument group and the TOML schema, so the two cannot drift apart); [`RunConfig`] is the
//! validated result. Tokens are [`Secret`]s: their `Debug` prints `"***"`, they have no
//! `Display`, so they never reach a log line by accident.
//!
//! Submodules: `validate` ([`RunConfig::from_partial`] and its checks), `tests`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use reqwest::Url;
use serde::Deserialize;

#[cfg(test)]
mod tests;
mod validate;

/// Default `--heartbeat-secs` (brief §4).
pub const DEFAULT_HEARTBEAT_SECS: u64 = 30;
/// Default `--probe-secs`: how soon a till notices the hub back (brief §7: buffered receipts on
/// the hub within 2 s of the link returning).
pub const DEFAULT_PROBE_SECS: u64 = 1;
/// Shortest accepted `--admin-token`: it guards the admin routes of a daemon that anything on
/// the shop's network can reach, so it must not be guessable.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// Default `--buffer-capacity`: receipts not yet acknowledged by the OFD (brief §5).
pub const DEFAULT_BUFFER_CAPACITY: u32 = 200;
/// Default `--retention-days` for sealed session documents on the till (brief §3).
pub const DEFAULT_RETENTION_DAYS: u32 = 7;
/// Default `--log-filter`.
pub const DEFAULT_LOG_FILTER: &str = "info";
/// Largest accepted config file; anything bigger is not a config file.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// A token or password. Compares by value; prints as `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it (an HTTP header, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// A store or till id: 1 to 32 characters from `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIdent(String);

impl NodeIdent {
    /// Longest id.
    pub const MAX_LEN: usize = 32;

    /// Validates an id.
    pub fn parse(text: &str) -> Result<NodeIdent, String> {
        if text.is_empty() || text.len() > NodeIdent::MAX_LEN {
            return Err(format!(
                "must be 1 to {} characters long, got {}",
                NodeIdent::MAX_LEN,
                text.chars().count()
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(format!(
                "may contain only A-Z, a-z, 0-9, '_' and '-', found {bad:?}"
            ));
        }
        Ok(NodeIdent(text.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// What one source (command line or file) says. All fields optional; see the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PartialRunConfig {
    /// Address of the till's HTTP API, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory (holds till.db).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Store id (1-32 of A-Z a-z 0-9 _ -).
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,
    /// Till id (1-32 of A-Z a-z 0-9 _ -).
    #[arg(long, value_name = "TILL")]
    pub till: Option<String>,
    /// Base URL of the hub, e.g. `https://hub.example.ru/`.
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// This till's credential at the hub.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TILL_NODE_HUB_TOKEN",
        hide_env_values = true
    )]
    pub hub_token: Option<Secret>,
    /// Token required by the till's admin routes.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TILL_NODE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<Secret>,
    /// Seconds between sync heartbeats while the link is online [default: 30].
    #[arg(long, value_name = "SECS")]
    pub heartbeat_secs: Option<u64>,
    /// Seconds between probes of the hub while the link is not online or the last sync failed
    /// [default: 1].
    #[arg(long, value_name = "SECS")]
    pub probe_secs: Option<u64>,
    /// Device part of this daemon's actor id (1-32 of A-Z a-z 0-9 _ -). Default: a name
    /// generated on the first start (`node-<8 hex>`) and kept in the till's database, so every
    /// install writes with its own actor.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Fiscal buffer capacity [default: 200]: receipts not yet acknowledged by the OFD. With a
    /// register configured, sales are refused (503) when it is full; alerts start at 80 %.
    #[arg(long, value_name = "N")]
    pub buffer_capacity: Option<u32>,
    /// Days to keep sealed session documents on the till [default: 7].
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// The cash register: `serial:PATH` (Shtrih-M protocol on a serial port or pseudo-terminal).
    /// Without it the fiscal pipeline is off (development only). Needs `--ofd`.
    #[arg(long, value_name = "serial:PATH")]
    pub register: Option<String>,
    /// Base URL of the OFD (fiscal data operator) exchange. Needs `--register`.
    #[arg(long, value_name = "URL")]
    pub ofd: Option<String>,
    /// How long a sale waits for the register before answering `buffered` instead of `printed`
    /// [default: 3000 ms; 0 answers at once].
    #[arg(long, value_name = "MS")]
    pub print_wait_ms: Option<u64>,
    /// Directory of the browser POS bundle (`index.html`, JS, WASM) served at `/`
    /// [default: none, the API only].
    #[arg(long, value_name = "DIR")]
    pub web: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter in `tracing` EnvFilter syntax, e.g. "info,till_node=debug" [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_filter: Option<String>,
}

impl PartialRunConfig {
    /// Parses a TOML config file's text. `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<PartialRunConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::ParseFile {
            path: origin.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a TOML config file; a relative `data` is resolved against the file's
    /// directory.
    pub fn from_file(path: &Path) -> Result<PartialRunConfig, ConfigError> {
        let read_error = |source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_CONFIG_FILE_BYTES {
            return Err(ConfigError::ParseFile {
                path: path.to_owned(),
                message: format!("{size} bytes is too large for a config file"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let mut partial = PartialRunConfig::from_toml(&text, path)?;
        if let (Some(data), Some(dir)) = (&partial.data, path.parent()) {
            if data.is_relative() {
                partial.data = Some(dir.join(data));
            }
        }
        Ok(partial)
    }

    /// Fills every field this source leaves empty from `lower` (a lower-precedence source).
    pub fn or(self, lower: PartialRunConfig) -> PartialRunConfig {
        PartialRunConfig {
            listen: self.listen.or(lower.listen),
            data: self.data.or(lower.data),
            store: self.store.or(lower.store),
            till: self.till.or(lower.till),
            hub: self.hub.or(lower.hub),
            hub_token: self.hub_token.or(lower.hub_token),
            admin_token: self.admin_token.or(lower.admin_token),
            heartbeat_secs: self.heartbeat_secs.or(lower.heartbeat_secs),
            probe_secs: self.probe_secs.or(lower.probe_secs),
            device: self.device.or(lower.device),
            buffer_capacity: self.buffer_capacity.or(lower.buffer_capacity),
            retention_days: self.retention_days.or(lower.retention_days),
            register: self.register.or(lower.register),
            ofd: self.ofd.or(lower.ofd),
            print_wait_ms: self.print_wait_ms.or(lower.print_wait_ms),
            web: self.web.or(lower.web),
            log_format: self.log_format.or(lower.log_format),
            log_filter: self.log_filter.or(lower.log_filter),
        }
    }
}

/// Where the fiscal pipeline talks to: the register's serial port and the OFD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiscalConfig {
    /// Serial port (or pseudo-terminal) of the Shtrih-M register.
    pub serial_path: PathBuf,
    /// Base URL of the OFD exchange.
    pub ofd_url: Url,
}

/// The validated settings of `till-node run`. `Debug` redacts the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Address of the till's HTTP API.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Store id.
    pub store_id: NodeIdent,
    /// Till id.
    pub till_id: NodeIdent,
    /// Base URL of the hub (http or https).
    pub hub_url: Url,
    /// This till's credential at the hub.
    pub hub_token: Secret,
    /// Token of the till's admin routes.
    pub admin_token: Secret,
    /// Seconds between sync heartbeats while online (1..=3600).
    pub heartbeat_secs: u64,
    /// Seconds between probes while not online or after a failed sync (1..=3600).
    pub probe_secs: u64,
    /// Explicit device part of the actor id (a valid actor name); `None`: the per-install name
    /// kept in the store (see [`crate::node::resolve_device`]).
    pub device: Option<String>,
    /// Fiscal buffer capacity (1..=100,000).
    pub buffer_capacity: u32,
    /// Days to keep sealed session documents (1..=365).
    pub retention_days: u32,
    /// The register and the OFD, when the fiscal pipeline is on.
    pub fiscal: Option<FiscalConfig>,
    /// How long a sale waits for the register (0..=30,000 ms).
    pub print_wait_ms: u64,
    /// The browser POS bundle served at `/`, if any.
    pub web_dir: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (EnvFilter syntax).
    pub log_filter: String,
}

impl fmt::Debug for RunConfig {
    // Written out so the URL prints as text (url's own Debug is a page of fields) and so a new
    // field has to be considered here, token or not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("store_id", &self.store_id.as_str())
            .field("till_id", &self.till_id.as_str())
            .field("hub_url", &self.hub_url.as_str())
            .field("hub_token", &self.hub_token)
            .field("admin_token", &self.admin_token)
            .field("heartbeat_secs", &self.heartbeat_secs)
            .field("probe_secs", &self.probe_secs)
            .field("device", &self.device)
            .field("buffer_capacity", &self.buffer_capacity)
            .field("retention_days", &self.retention_days)
            .field("fiscal", &self.fiscal)
            .field("print_wait_ms", &self.print_wait_ms)
            .field("web_dir", &self.web_dir)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .finish()
    }
}

/// Why the settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A required setting was given nowhere.
    #[error("missing setting `{key}`: pass --{key} or set `{key}` in the config file")]
    Missing {
        /// Its flag / key name.
        key: &'static str,
    },
    /// A setting has a value we refuse.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// Its flag / key name.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// A warning when a config file holding a token can be read by other users (Unix only).
pub fn permissions_warning(path: &Path, partial: &PartialRunConfig) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let holds_token = partial.hub_token.is_some() || partial.admin_token.is_some();
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if holds_token && mode & 0o077 != 0 {
            return Some(format!(
                "config file {} holds tokens but has mode {:o}; run `chmod 600` on it",
                path.display(),
                mode & 0o777
            ));
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = (path, partial);
        None
    }
}
