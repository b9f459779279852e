//! `fiscal` command line: the register and OFD emulators as standalone programs (the binary
//! keeps the name the scripts and the acceptance tests call it by).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("register-emulator") => fiscal_emulators::register::cli_main(&args[2..]),
        Some("ofd-emulator") => fiscal_emulators::ofd::cli_main(&args[2..]),
        _ => {
            eprintln!(
                "usage: fiscal register-emulator --pty-link PATH --control ADDR [--state DIR]"
            );
            eprintln!("       fiscal ofd-emulator --listen ADDR");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fiscal: {error:#}");
            ExitCode::FAILURE
        }
    }
}
