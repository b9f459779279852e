//! The `hub` binary. All logic lives in the library ([`hub::cli::run`]) so tests can drive it.

use std::process::ExitCode;

fn main() -> ExitCode {
    match hub::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("error: {e:#}");
            ExitCode::from(hub::cli::exit_status(&e))
        }
    }
}
