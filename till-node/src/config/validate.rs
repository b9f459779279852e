//! Validation of merged settings into a [`RunConfig`]: required keys, ranges, tokens, and the
//! identity rules (`--device` must be a valid actor name; `store/till/device` must fit the
//! clock's node-name limit, counting the generated device name when none is given).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crdt_model::hlc::MAX_NODE_LEN;
use reqwest::Url;

use super::{
    ConfigError, FiscalConfig, NodeIdent, PartialRunConfig, RunConfig, Secret,
    DEFAULT_BUFFER_CAPACITY, DEFAULT_HEARTBEAT_SECS, DEFAULT_LOG_FILTER, DEFAULT_PROBE_SECS,
    DEFAULT_RETENTION_DAYS, MIN_ADMIN_TOKEN_CHARS,
};
use crate::node::GENERATED_DEVICE_LEN;

fn required<T>(value: Option<T>, key: &'static str) -> Result<T, ConfigError> {
    value.ok_or(ConfigError::Missing { key })
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    value: T,
    low: T,
    high: T,
    key: &'static str,
) -> Result<T, ConfigError> {
    if value < low || value > high {
        return Err(invalid(key, format!("{value} is outside {low}..={high}")));
    }
    Ok(value)
}

fn token(value: Option<Secret>, key: &'static str) -> Result<Secret, ConfigError> {
    let secret = required(value, key)?;
    if secret.expose().trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    if secret.expose().chars().any(char::is_control) {
        // It goes into an HTTP header, where control characters are refused anyway.
        return Err(invalid(key, "must not contain control characters"));
    }
    Ok(secret)
}

impl RunConfig {
    /// Validates merged settings (see [`PartialRunConfig::or`]) and applies defaults.
    pub fn from_partial(partial: PartialRunConfig) -> Result<RunConfig, ConfigError> {
        let listen_text = required(partial.listen, "listen")?;
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|e| invalid("listen", format!("{listen_text:?} is not IP:PORT ({e})")))?;
        let data_dir = required(partial.data, "data")?;
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data", "must not be empty"));
        }
        let store_id = NodeIdent::parse(&required(partial.store, "store")?)
            .map_err(|reason| invalid("store", reason))?;
        let till_id = NodeIdent::parse(&required(partial.till, "till")?)
            .map_err(|reason| invalid("till", reason))?;
        let hub_text = required(partial.hub, "hub")?;
        let hub_url = Url::parse(&hub_text)
            .map_err(|e| invalid("hub", format!("{hub_text:?} is not a URL ({e})")))?;
        if !matches!(hub_url.scheme(), "http" | "https") || hub_url.host_str().is_none() {
            return Err(invalid(
                "hub",
                format!("{hub_text:?} is not an http(s) URL"),
            ));
        }
        if !hub_url.username().is_empty() || hub_url.password().is_some() {
            return Err(invalid(
                "hub",
                "must not carry credentials; use --hub-token",
            ));
        }
        let hub_token = token(partial.hub_token, "hub-token")?;
        let admin_token = token(partial.admin_token, "admin-token")?;
        let admin_chars = admin_token.expose().trim().chars().count();
        if admin_chars < MIN_ADMIN_TOKEN_CHARS {
            return Err(invalid(
                "admin-token",
                format!(
                    "must be at least {MIN_ADMIN_TOKEN_CHARS} characters long, got {admin_chars}"
                ),
            ));
        }
        let heartbeat_secs = in_range(
            partial.heartbeat_secs.unwrap_or(DEFAULT_HEARTBEAT_SECS),
            1,
            3600,
            "heartbeat-secs",
        )?;
        let probe_secs = in_range(
            partial.probe_secs.unwrap_or(DEFAULT_PROBE_SECS),
            1,
            3600,
            "probe-secs",
        )?;
        let device = partial.device;
        check_identity(&store_id, &till_id, device.as_deref())?;
        let buffer_capacity = in_range(
            partial.buffer_capacity.unwrap_or(DEFAULT_BUFFER_CAPACITY),
            1,
            100_000,
            "buffer-capacity",
        )?;
        let retention_days = in_range(
            partial.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            1,
            365,
            "retention-days",
        )?;
        let fiscal = fiscal_config(partial.register, partial.ofd)?;
        let print_wait_ms = in_range(
            partial.print_wait_ms.unwrap_or(DEFAULT_PRINT_WAIT_MS),
            0,
            30_000,
            "print-wait-ms",
        )?;
        let web_dir = partial.web.map(web_bundle).transpose()?;
        let log_filter = partial
            .log_filter
            .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| invalid("log-filter", format!("{log_filter:?}: {e}")))?;
        Ok(RunConfig {
            listen,
            data_dir,
            store_id,
            till_id,
            hub_url,
            hub_token,
            admin_token,
            heartbeat_secs,
            probe_secs,
            device,
            buffer_capacity,
            retention_days,
            fiscal,
            print_wait_ms,
            web_dir,
            log_format: partial.log_format.unwrap_or_default(),
            log_filter,
        })
    }
}

/// `--web DIR` must be a directory holding `index.html` (built by `scripts/build-web.sh`).
fn web_bundle(dir: PathBuf) -> Result<PathBuf, ConfigError> {
    if dir.join("index.html").is_file() {
        Ok(dir)
    } else {
        Err(invalid(
            "web",
            format!(
                "{} holds no index.html; build the POS bundle with scripts/build-web.sh",
                dir.display()
            ),
        ))
    }
}

/// How long a sale waits for the register by default.
pub const DEFAULT_PRINT_WAIT_MS: u64 = 3_000;

/// `--register serial:PATH` and `--ofd URL`, both or neither.
fn fiscal_config(
    register: Option<String>,
    ofd: Option<String>,
) -> Result<Option<FiscalConfig>, ConfigError> {
    let (register, ofd) = match (register, ofd) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(invalid("ofd", "is required with --register")),
        (None, Some(_)) => return Err(invalid("register", "is required with --ofd")),
        (Some(register), Some(ofd)) => (register, ofd),
    };
    let path = match register.strip_prefix("serial:") {
        Some(path) if !path.trim().is_empty() => PathBuf::from(path),
        _ => {
            return Err(invalid(
                "register",
                format!("{register:?} is not serial:PATH (e.g. serial:/dev/ttyUSB0)"),
            ))
        }
    };
    let ofd_url =
        Url::parse(&ofd).map_err(|e| invalid("ofd", format!("{ofd:?} is not a URL ({e})")))?;
    if !matches!(ofd_url.scheme(), "http" | "https") || ofd_url.host_str().is_none() {
        return Err(invalid("ofd", format!("{ofd:?} is not an http(s) URL")));
    }
    Ok(Some(FiscalConfig {
        serial_path: path,
        ofd_url,
    }))
}

/// Checks that `--device` (when given) is a valid actor name and that the clock's node name
/// `store/till/device` fits crdt-model's limit, with the generated device name when none is
/// given. Refused here, at start, rather than by the clock after the store is opened.
fn check_identity(
    store: &NodeIdent,
    till: &NodeIdent,
    device: Option<&str>,
) -> Result<(), ConfigError> {
    let store_id =
        crdt_model::StoreId::new(store.as_str()).map_err(|e| invalid("store", e.to_string()))?;
    let till_id =
        crdt_model::TillId::new(till.as_str()).map_err(|e| invalid("till", e.to_string()))?;
    if let Some(device) = device {
        crdt_model::ids::actor_id(&store_id, &till_id, device).map_err(|e| {
            invalid(
                "device",
                format!("{device:?} is not a valid actor name (1-32 of A-Z a-z 0-9 _ -): {e}"),
            )
        })?;
    }
    let device_chars = device.map_or(GENERATED_DEVICE_LEN, str::len);
    let node_len = store.as_str().len() + till.as_str().len() + device_chars + 2;
    if node_len > MAX_NODE_LEN {
        let device_shown = device.unwrap_or("<generated, 13 characters>");
        return Err(invalid(
            "store/till/device",
            format!(
                "the clock node name {store}/{till}/{device_shown} would be {node_len} characters, \
                 the limit is {MAX_NODE_LEN}; use shorter store, till or device ids"
            ),
        ));
    }
    Ok(())
}
