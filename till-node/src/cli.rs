//! The `till-node` command line: parses arguments, merges them with the `--config` file
//! (see [`crate::config`]), sets up logging and runs the daemon.
//!
//! Subcommands:
//! - `till-node run …` — the daemon ([`crate::run`]). `--print-config` prints the merged,
//!   validated settings (tokens redacted) and exits, for support to check what a till will use.
//! - `till-node check-store --data DIR` — `PRAGMA integrity_check` and the durability settings
//!   of a stopped till's database (the directory lock refuses it while the daemon runs).
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad command line or settings.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{permissions_warning, ConfigError, LogFormat, PartialRunConfig, RunConfig};
use crate::store::Store;

/// Exit code for a bad command line or bad settings (clap uses the same).
const EXIT_USAGE: u8 = 2;

/// The parsed command line.
#[derive(Debug, Parser)]
// A repeated flag takes its last value, so a wrapper script can append overrides.
#[command(
    name = "till-node",
    version,
    about = "OpticsERP Edge till daemon",
    args_override_self = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the till daemon.
    Run(Box<RunArgs>),
    /// Check the integrity of a stopped till's database.
    CheckStore {
        /// Data directory (holds till.db).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

/// Arguments of `till-node run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML file with any of the settings below (keys are the flag names, e.g. `hub-token`);
    /// the command line wins over the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the merged settings (tokens redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The settings.
    #[command(flatten)]
    pub settings: PartialRunConfig,
}

impl RunArgs {
    /// Merges the command line over the config file (if any) and validates the result.
    /// Also returns warnings to log once logging is up (e.g. a world-readable token file).
    pub fn resolve(self) -> Result<(RunConfig, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let merged = match &self.config {
            Some(path) => {
                let file = PartialRunConfig::from_file(path)?;
                warnings.extend(permissions_warning(path, &file));
                self.settings.or(file)
            }
            None => self.settings,
        };
        Ok((RunConfig::from_partial(merged)?, warnings))
    }
}

/// Entry point of the binary: parse, configure, run. Never panics on bad input.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Prints help/version to stdout (exit 0) or the usage error to stderr (exit 2).
        Err(error) => error.exit(),
    };
    match cli.command {
        Command::Run(args) => run_command(*args),
        Command::CheckStore { data } => check_store(&data),
    }
}

fn run_command(args: RunArgs) -> ExitCode {
    let print_only = args.print_config;
    let (config, warnings) = match args.resolve() {
        Ok(resolved) => resolved,
        Err(error) => {
            eprintln!("till-node: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if print_only {
        println!("{config:#?}");
        for warning in &warnings {
            eprintln!("till-node: warning: {warning}");
        }
        return ExitCode::SUCCESS;
    }
    if let Err(error) = init_logging(config.log_format, &config.log_filter) {
        eprintln!("till-node: cannot set up logging: {error}");
        return ExitCode::from(EXIT_USAGE);
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    match crate::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "till-node stopped");
            eprintln!("till-node: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_store(data: &std::path::Path) -> ExitCode {
    let store = match Store::open(data) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("till-node: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = store.integrity_check().and_then(|integrity| {
        let durability = store.durability()?;
        Ok((integrity, durability))
    });
    match report {
        Ok((integrity, durability)) => {
            println!("database: {}", store.path().display());
            println!("schema version: {}", store.schema_version());
            println!(
                "journal_mode={} synchronous={} foreign_keys={}",
                durability.journal_mode, durability.synchronous, durability.foreign_keys
            );
            println!("integrity_check: {integrity}");
            if integrity == "ok" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("till-node: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the global `tracing` subscriber writing to stderr.
pub fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, never in log files or test pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const REQUIRED: &[&str] = &[
        "till-node",
        "run",
        "--listen",
        "127.0.0.1:8080",
        "--data",
        "/var/lib/till",
        "--store",
        "S01",
        "--till",
        "T1",
        "--hub",
        "https://hub.example.ru/",
        "--hub-token",
        "hub-secret",
        "--admin-token",
        "admin-secret-0123456789",
    ];

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        match Cli::try_parse_from(args)?.command {
            Command::Run(run) => Ok(*run),
            Command::CheckStore { .. } => panic!("expected run"),
        }
    }

    fn write_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("till.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn register_and_ofd_come_together_and_are_checked() {
        let with = |extra: &[&str]| {
            let mut args = REQUIRED.to_vec();
            args.extend_from_slice(extra);
            parse(&args).expect("parse").resolve()
        };
        let (config, _) = with(&[
            "--register",
            "serial:/dev/ttyUSB0",
            "--ofd",
            "http://ofd.local/",
        ])
        .expect("valid");
        let fiscal = config.fiscal.expect("fiscal on");
        assert_eq!(fiscal.serial_path, PathBuf::from("/dev/ttyUSB0"));
        assert_eq!(config.print_wait_ms, 3_000);
        let refused = |extra: &[&str], key: &str| {
            let error = with(extra).expect_err("refused").to_string();
            assert!(error.contains(key), "{extra:?}: {error}");
        };
        refused(&["--register", "serial:/dev/ttyUSB0"], "ofd");
        refused(&["--ofd", "http://ofd.local/"], "register");
        refused(
            &["--register", "/dev/ttyUSB0", "--ofd", "http://ofd.local/"],
            "serial:PATH",
        );
        refused(
            &["--register", "serial:", "--ofd", "http://ofd.local/"],
            "serial:PATH",
        );
        refused(
            &["--register", "serial:/dev/x", "--ofd", "ftp://ofd.local/"],
            "ofd",
        );
        refused(&["--print-wait-ms", "60000"], "print-wait-ms");
        assert!(with(&[]).expect("valid").0.fiscal.is_none());
    }

    #[test]
    fn command_line_alone_with_defaults() {
        let (config, warnings) = parse(REQUIRED).expect("parse").resolve().expect("valid");
        assert!(warnings.is_empty());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.store_id.as_str(), "S01");
        assert_eq!(config.till_id.as_str(), "T1");
        assert_eq!(config.hub_url.as_str(), "https://hub.example.ru/");
        assert_eq!(config.hub_token, Secret::new("hub-secret"));
        assert_eq!(config.heartbeat_secs, 30);
        assert_eq!(config.probe_secs, 1);
        assert_eq!(config.buffer_capacity, 200);
        assert_eq!(config.retention_days, 7);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.device, None);
    }

    #[test]
    fn file_fills_gaps_and_command_line_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(
            &dir,
            r#"
            listen = "0.0.0.0:9000"
            data = "state"
            store = "FILE-STORE"
            till = "T9"
            hub = "http://hub.local:8443"
            hub-token = "from-file"
            admin-token = "admin-token-from-file"
            heartbeat-secs = 10
            probe-secs = 3
            device = "kassa-2"
            log-format = "json"
            "#,
        );
        let config_arg = path.to_str().expect("utf-8 path");
        let args = parse(&[
            "till-node",
            "run",
            "--config",
            config_arg,
            "--till",
            "T2",
            "--heartbeat-secs",
            "45",
        ])
        .expect("parse");
        let (config, _) = args.resolve().expect("valid");
        assert_eq!(config.till_id.as_str(), "T2", "command line wins");
        assert_eq!(config.heartbeat_secs, 45, "command line wins");
        assert_eq!(config.store_id.as_str(), "FILE-STORE", "file fills the gap");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(
            config.data_dir,
            dir.path().join("state"),
            "relative to the file"
        );
        assert_eq!(config.hub_token.expose(), "from-file");
        assert_eq!(config.device.as_deref(), Some("kassa-2"));
        assert_eq!(config.probe_secs, 3, "the file sets the probe interval");
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn unknown_file_key_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(&dir, "hub_token = \"x\"\n");
        let args = parse(&[
            "till-node",
            "run",
            "--config",
            path.to_str().expect("utf-8"),
        ])
        .expect("parse");
        let error = args.resolve().expect_err("unknown key").to_string();
        assert!(error.contains("unknown field `hub_token`"), "{error}");
        assert!(error.contains("hub-token"), "lists the valid keys: {error}");
    }

    #[test]
    fn missing_file_and_bad_toml_are_errors() {
        let args =
            parse(&["till-node", "run", "--config", "/nonexistent/till.toml"]).expect("parse");
        assert!(matches!(args.resolve(), Err(ConfigError::ReadFile { .. })));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(&dir, "heartbeat-secs = \"soon\"\n");
        let args = parse(&[
            "till-node",
            "run",
            "--config",
            path.to_str().expect("utf-8"),
        ])
        .expect("parse");
        assert!(matches!(args.resolve(), Err(ConfigError::ParseFile { .. })));
    }

    #[test]
    fn missing_required_setting_names_it() {
        let without_hub: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|a| *a != "--hub" && *a != "https://hub.example.ru/")
            .collect();
        let error = parse(&without_hub)
            .expect("parse")
            .resolve()
            .expect_err("no hub");
        assert!(
            matches!(error, ConfigError::Missing { key: "hub" }),
            "{error}"
        );
        assert!(error.to_string().contains("--hub"));
    }

    fn with(extra: &[&str]) -> Result<(RunConfig, Vec<String>), ConfigError> {
        let mut args: Vec<&str> = REQUIRED.to_vec();
        args.extend_from_slice(extra);
        parse(&args).expect("parse").resolve()
    }

    #[test]
    fn invalid_values_are_refused() {
        let cases: &[(&[&str], &str)] = &[
            (&["--store", ""], "store"),
            (&["--store", "S 01"], "store"),
            (&["--till", &"T".repeat(33)], "till"),
            (&["--hub", "not a url"], "hub"),
            (&["--hub", "ftp://hub.example.ru/"], "hub"),
            (&["--hub", "https://user:pw@hub.example.ru/"], "hub"),
            (&["--hub-token", ""], "hub-token"),
            (&["--admin-token", "   "], "admin-token"),
            (&["--admin-token", "fifteen-chars-x"], "admin-token"),
            (&["--probe-secs", "0"], "probe-secs"),
            (&["--probe-secs", "3601"], "probe-secs"),
            (&["--device", "Касса 2"], "device"),
            (&["--device", "a/b"], "device"),
            (&["--device", &"d".repeat(33)], "device"),
            (&["--listen", "localhost"], "listen"),
            (&["--heartbeat-secs", "0"], "heartbeat-secs"),
            (&["--buffer-capacity", "0"], "buffer-capacity"),
            (&["--retention-days", "1000"], "retention-days"),
            (&["--device", ""], "device"),
            (&["--log-filter", "info,[[["], "log-filter"),
        ];
        for (extra, key) in cases {
            match with(extra) {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, *key, "{extra:?}"),
                other => panic!("{extra:?} should be refused as `{key}`, got {other:?}"),
            }
        }
    }

    #[test]
    fn store_and_till_ids_at_the_limit_are_accepted() {
        let id = "a".repeat(32);
        let (config, _) = with(&["--store", &id, "--till", "T_1-x"]).expect("valid");
        assert_eq!(config.store_id.as_str(), id);
    }

    #[test]
    fn admin_token_of_sixteen_characters_is_accepted() {
        let (config, _) = with(&["--admin-token", "sixteen-chars-xy"]).expect("valid");
        assert_eq!(config.admin_token.expose(), "sixteen-chars-xy");
        let (config, _) = with(&["--probe-secs", "7"]).expect("valid");
        assert_eq!(
            config.probe_secs, 7,
            "the command line sets the probe interval"
        );
    }

    #[test]
    fn clock_node_names_over_the_limit_are_refused_with_the_generated_device_too() {
        let long = "a".repeat(32);
        let till = "t".repeat(20);
        // 32 + 20 + the 13 characters of a generated device + 2 slashes = 67 > 64.
        let error = with(&["--store", &long, "--till", &till]).expect_err("too long");
        assert!(
            matches!(
                error,
                ConfigError::Invalid {
                    key: "store/till/device",
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("67") && message.contains("64"),
            "{message}"
        );
        // 32 + 17 + 13 + 2 = 64 fits exactly.
        let till = "t".repeat(17);
        with(&["--store", &long, "--till", &till]).expect("at the limit");
        // An explicit device counts with its own length.
        let error = with(&[
            "--store",
            &long,
            "--till",
            &till,
            "--device",
            "device-14chars",
        ])
        .expect_err("too long with this device");
        assert!(message_has_limit(&error), "{error}");
        with(&["--store", &long, "--till", &till, "--device", "short"]).expect("fits");
    }

    fn message_has_limit(error: &ConfigError) -> bool {
        matches!(error, ConfigError::Invalid { key: "store/till/device", reason } if reason.contains("64"))
    }

    #[test]
    fn tokens_never_appear_in_debug_output() {
        let args = parse(REQUIRED).expect("parse");
        let raw = format!("{args:?}");
        let (config, _) = args.resolve().expect("valid");
        for text in [raw, format!("{config:?}"), format!("{config:#?}")] {
            assert!(!text.contains("hub-secret"), "{text}");
            assert!(!text.contains("admin-secret"), "{text}");
            assert!(text.contains("***"), "{text}");
        }
    }

    #[test]
    fn check_store_subcommand_parses() {
        let cli =
            Cli::try_parse_from(["till-node", "check-store", "--data", "/tmp/x"]).expect("parse");
        assert!(
            matches!(cli.command, Command::CheckStore { data } if data.as_path() == std::path::Path::new("/tmp/x"))
        );
        assert!(Cli::try_parse_from(["till-node", "run", "--bogus"]).is_err());
    }
}
