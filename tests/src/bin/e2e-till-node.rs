//! The `till-node` binary under a test name: `cargo test -p tests` builds it, and the scenarios
//! find it through `CARGO_BIN_EXE_e2e-till-node`. Same behaviour as `till-node/src/main.rs`.

fn main() -> std::process::ExitCode {
    till_node::cli::main()
}
