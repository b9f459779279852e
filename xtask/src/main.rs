//! Repository tasks, run with `cargo run -p xtask -- <task>` (the cargo-xtask pattern: tools
//! written in Rust, no extra installs).
//!
//! - `tidy [DIR]` — check the architecture invariants (see [`tidy`]) of the repository (or of
//!   the checkout at DIR) and print every violation. The same checks run as a test in
//!   `cargo test -p xtask`, and so in `./scripts/test.sh`.

mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

const USAGE: &str = "usage: cargo run -p xtask -- tidy [DIR]";

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => {
            let root = match args.get(1) {
                Some(dir) => PathBuf::from(dir),
                None => repository_root()?,
            };
            run_tidy(&root)
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        // A usage mistake is not a failure worth a backtrace: say so and exit 2.
        Some(other) => {
            eprintln!("unknown task {other:?}\n{USAGE}");
            Ok(ExitCode::from(2))
        }
        None => {
            eprintln!("no task given\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

fn run_tidy(root: &Path) -> Result<ExitCode> {
    let violations = tidy::check_repository(root)?;
    if violations.is_empty() {
        println!("tidy: all rules hold");
        return Ok(ExitCode::SUCCESS);
    }
    for violation in &violations {
        eprintln!("{violation}");
    }
    eprintln!("tidy: {} violation(s)", violations.len());
    Ok(ExitCode::FAILURE)
}

/// The workspace root: xtask lives one directory below it.
fn repository_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}
