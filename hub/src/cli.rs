//! The `hub` command line: clap definitions and what each subcommand does.
//!
//! ```text
//! hub serve --listen ADDR --data DIR [--database-url URL]
//! hub admin create-user NAME --role ROLE [--store S]      (password or PIN on stdin)
//! hub admin enroll-till --store STORE --till TILL          (prints only the token)
//! hub admin revoke-till --store STORE --till TILL
//! hub catalogue import --store S FILE.csv                 (exit 2 on bad rows)
//! ```
//! Every command takes `--data DIR | --database-url URL` (or `DATABASE_URL`) and the global
//! `--config FILE.toml`; see [`crate::config`] for precedence. Logs go to stderr so that
//! stdout carries only results (the enrolment token).

use crate::auth_types::Role;
use crate::config::{self, DbFlags, FileConfig, ServeConfig};
use crate::db::ids::{validate_store_id, validate_till_id, validate_user_name};
use crate::db::{Db, DbConfig, DbError};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

/// Longest line read from stdin as a password.
const MAX_PASSWORD_LINE_BYTES: u64 = 4096;

/// OpticsERP Edge hub: the central replica of every store.
#[derive(Debug, Parser)]
#[command(name = "hub", version, about)]
pub struct Cli {
    /// TOML file giving defaults for any flag (keys = long flag names); the command line wins.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the database is.
#[derive(Debug, Clone, Default, Args)]
pub struct DbArgs {
    /// Data directory of the embedded SQLite database (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// PostgreSQL URL, postgres://user:password@host/db (default: env DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl DbArgs {
    fn flags(&self) -> DbFlags {
        DbFlags {
            data: self.data.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub server.
    Serve(ServeArgs),
    /// Users and devices.
    Admin {
        /// Admin action.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Store catalogues.
    Catalogue {
        /// Catalogue action.
        #[command(subcommand)]
        command: CatalogueCommand,
    },
}

/// `hub serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Database location.
    #[command(flatten)]
    pub db: DbArgs,
}

/// `hub admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a hub user; the password (cashier: a 4-8 digit PIN) is the first line of stdin.
    CreateUser {
        /// Login name.
        name: String,
        /// admin, manager, support, accountant or cashier.
        #[arg(long)]
        role: Option<String>,
        /// Limit the user to one store (required for cashiers). Cashiers and managers of
        /// a store are replicated (hash only) to its tills through `staff/<store>`.
        #[arg(long)]
        store: Option<String>,
        /// Database location.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enrol a till (or replace its token) and print its token on stdout.
    EnrollTill {
        /// Store of the till.
        #[arg(long)]
        store: Option<String>,
        /// Till id.
        #[arg(long)]
        till: Option<String>,
        /// Database location.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a till's token.
    RevokeTill {
        /// Store of the till.
        #[arg(long)]
        store: Option<String>,
        /// Till id.
        #[arg(long)]
        till: Option<String>,
        /// Database location.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `hub catalogue ...`
#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Import a CSV price list (columns sku, ean, name, price in kopecks, vat).
    Import {
        /// Store whose catalogue receives the rows.
        #[arg(long)]
        store: Option<String>,
        /// The CSV file.
        file: PathBuf,
        /// Database location.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// What a command may read and write besides the database: injected so tests can run
/// commands in-process.
pub struct Io<'a> {
    /// Where passwords are read from.
    pub stdin: &'a mut dyn BufRead,
    /// Where results (tokens) are written.
    pub stdout: &'a mut dyn Write,
    /// The value of `DATABASE_URL`, if set.
    pub database_url_env: Option<String>,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// Exit status for input the user must fix (bad CSV rows, unreadable file).
pub const EXIT_BAD_INPUT: u8 = 2;

/// The process exit status for an error returned by [`run`]: [`EXIT_BAD_INPUT`] for bad
/// input, 1 otherwise.
pub fn exit_status(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<crate::catalogue_import::ImportError>() {
        Some(e) if e.is_input_error() => EXIT_BAD_INPUT,
        _ => 1,
    }
}

/// Entry point of the binary: parses arguments, sets up logging and the runtime, runs.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stdin = std::io::stdin();
    if stdin.is_terminal()
        && matches!(
            cli.command,
            Command::Admin {
                command: AdminCommand::CreateUser { .. }
            }
        )
    {
        eprint!("password (echoed; pipe it in to avoid that): ");
    }
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        database_url_env: std::env::var("DATABASE_URL").ok(),
    };
    runtime.block_on(execute(cli, &mut io))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // try_init: a second call (tests) must not panic.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs a parsed command.
pub async fn execute(cli: Cli, io: &mut Io<'_>) -> anyhow::Result<()> {
    let file = match &cli.config {
        Some(path) => config::load_file(path)?,
        None => FileConfig::default(),
    };
    let env_url = io.database_url_env.clone();
    let db_config = |args: &DbArgs| config::resolve_db(&args.flags(), env_url.as_deref(), &file);
    match &cli.command {
        Command::Serve(args) => {
            let serve_config = ServeConfig {
                listen: config::resolve_listen(args.listen.as_deref(), &file)?,
                db: db_config(&args.db)?,
            };
            serve(serve_config).await
        }
        Command::Admin { command } => match command {
            AdminCommand::CreateUser {
                name,
                role,
                store,
                db,
            } => {
                let role: Role =
                    config::require(role.as_deref(), file.role.as_deref(), "role")?.parse()?;
                let store = store.as_deref().or(file.store.as_deref());
                validate_user_name(name)?;
                if let Some(store) = store {
                    validate_store_id(store)?;
                }
                let password = read_password(io.stdin)?;
                crate::auth_types::validate_secret(role, &password)?;
                let db = connect(&db_config(db)?).await?;
                let result = crate::users::create_user(&db, name, role, &password, store).await;
                db.close().await;
                let user = result?;
                tracing::info!(user = %user.name, role = %user.role, "user created");
                Ok(())
            }
            AdminCommand::EnrollTill { store, till, db } => {
                let (store, till) = store_and_till(store, till, &file)?;
                let db = connect(&db_config(db)?).await?;
                let result = enroll_till(&db, &store, &till).await;
                db.close().await;
                let token = result?;
                writeln!(io.stdout, "{token}").context("cannot write the token to stdout")?;
                io.stdout
                    .flush()
                    .context("cannot write the token to stdout")?;
                tracing::info!(%store, %till, "till enrolled");
                Ok(())
            }
            AdminCommand::RevokeTill { store, till, db } => {
                let (store, till) = store_and_till(store, till, &file)?;
                let db = connect(&db_config(db)?).await?;
                let result = revoke_till(&db, &store, &till).await;
                db.close().await;
                if !result? {
                    bail!("till {till} of store {store} is not enrolled");
                }
                tracing::info!(%store, %till, "till revoked");
                Ok(())
            }
        },
        Command::Catalogue { command } => match command {
            CatalogueCommand::Import {
                store,
                file: path,
                db,
            } => {
                let store = config::require(store.as_deref(), file.store.as_deref(), "store")?;
                validate_store_id(&store)?;
                let db = connect(&db_config(db)?).await?;
                let result = crate::catalogue_import::run(&db, &store, path).await;
                db.close().await;
                let report = result?;
                writeln!(
                    io.stdout,
                    "imported {} products ({} changed)",
                    report.products,
                    report.changed()
                )
                .context("cannot write to stdout")?;
                tracing::info!(%store, created = report.created, updated = report.changed_existing, "catalogue imported");
                Ok(())
            }
        },
    }
}

/// `hub serve`: see [`crate::serve`].
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    crate::serve::serve(config).await
}

async fn enroll_till(db: &Db, store: &str, till: &str) -> Result<String, DbError> {
    let mut tx = db.begin().await?;
    let token = tx.enroll_till(store, till).await?;
    tx.commit().await?;
    Ok(token)
}

async fn revoke_till(db: &Db, store: &str, till: &str) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let revoked = tx.revoke_till(store, till).await?;
    tx.commit().await?;
    Ok(revoked)
}

async fn connect(config: &DbConfig) -> anyhow::Result<Db> {
    Db::connect(config)
        .await
        .with_context(|| format!("cannot open the database {config:?}"))
}

fn store_and_till(
    store: &Option<String>,
    till: &Option<String>,
    file: &FileConfig,
) -> anyhow::Result<(String, String)> {
    let store = config::require(store.as_deref(), file.store.as_deref(), "store")?;
    let till = config::require(till.as_deref(), file.till.as_deref(), "till")?;
    validate_store_id(&store)?;
    validate_till_id(&till)?;
    Ok((store, till))
}

/// The first line of `stdin`, without its line ending.
fn read_password(stdin: &mut dyn BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    stdin
        .take(MAX_PASSWORD_LINE_BYTES)
        .read_line(&mut line)
        .context("cannot read the password from stdin (it must be UTF-8)")?;
    if !line.ends_with('\n') && line.len() as u64 >= MAX_PASSWORD_LINE_BYTES {
        bail!("the password line is too long");
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin: give it as the first line");
    }
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_commands() {
        let cli = Cli::try_parse_from([
            "hub",
            "admin",
            "enroll-till",
            "--store",
            "S1",
            "--till",
            "T1",
            "--data",
            "/d",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Admin {
                command: AdminCommand::EnrollTill { .. }
            }
        ));
        let cli = Cli::try_parse_from([
            "hub",
            "catalogue",
            "import",
            "--store",
            "S1",
            "f.csv",
            "--config",
            "hub.toml",
        ])
        .expect("parse");
        assert_eq!(cli.config, Some(PathBuf::from("hub.toml")));
        assert!(Cli::try_parse_from(["hub", "serve", "--bogus"]).is_err());
    }

    #[test]
    fn password_is_the_first_line() {
        let mut input: &[u8] = b"s3cret pass\r\nsecond line\n";
        assert_eq!(read_password(&mut input).expect("read"), "s3cret pass");
        let mut empty: &[u8] = b"\n";
        assert!(read_password(&mut empty).is_err());
        let mut nothing: &[u8] = b"";
        assert!(read_password(&mut nothing).is_err());
        let long = vec![b'x'; 5000];
        let mut long: &[u8] = &long;
        assert!(read_password(&mut long).is_err());
    }
}
