//! The `hub` binary under a test name: `cargo test -p tests` builds it, and the scenarios find
//! it through `CARGO_BIN_EXE_e2e-hub`. Same behaviour as `hub/src/main.rs`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match hub::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
