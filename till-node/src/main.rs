//! The `till-node` binary: everything lives in the library; see [`till_node::cli`].

fn main() -> std::process::ExitCode {
    till_node::cli::main()
}
