//! Named crash points for the crash tests (UAT-10c): a process started with
//! `OPTICS_FAILPOINTS=name[,name…]` aborts — no unwinding, no destructors, like a power cut —
//! the first time it reaches a listed point. Without the variable every point is a no-op
//! costing one atomic load.
//!
//! Points in the pipeline: [`INTENT_PERSISTED`] (the register intent is durable, nothing sent),
//! [`REGISTER_DONE`] (the register made the document, the till has not recorded it),
//! [`OFD_SENT`] (the OFD acknowledged, the FN has not been told), [`FN_TOLD`] (the FN took the
//! acknowledgement, the till has not recorded it).

use std::sync::OnceLock;

/// The environment variable listing the armed points.
pub const ENV: &str = "OPTICS_FAILPOINTS";
/// After the register intent is persisted, before the register is called.
pub const INTENT_PERSISTED: &str = "pipeline.intent_persisted";
/// After the register made the document, before the result is persisted.
pub const REGISTER_DONE: &str = "pipeline.register_done";
/// After the OFD acknowledged a document, before the acknowledgement reaches the FN.
pub const OFD_SENT: &str = "pipeline.ofd_sent";

/// After the FN took the OFD's acknowledgement, before the till recorded it.
pub const FN_TOLD: &str = "pipeline.fn_told";

fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var(ENV)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Aborts the process if `name` is armed.
pub fn hit(name: &str) {
    if armed().iter().any(|armed| armed == name) {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}
