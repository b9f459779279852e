//! Convergence of the real domain documents under faults, as a `proptest-state-machine` test
//! (reliability.md, "Convergence, in `cargo test`").
//!
//! One hub and three tills of store S1 as `sync_engine::MemoryReplica`s holding the documents
//! `crdt_model` defines: the store catalogue (LWW fields by HLC) and one cash-session document
//! per till and shift. The share policies are the contract's: a till sees `catalogue/S1` and its
//! own sessions; session changes must be authored by that till, catalogue changes by a till of
//! the store or the hub.
//!
//! Transitions: a sale on a till (`session::append_receipt`, HLC from the till's clock); a
//! Z close and a new session; a price change on a till or the hub (`catalogue::set_field`, with
//! clocks skewed by seconds so stale writes and concurrent writes both happen); a sync round
//! between a till and the hub, cut short after a few rounds, with one request dropped or served
//! twice, or one reply dropped or applied twice; a restart of any replica from its simulated
//! disk, keeping or losing its sync states.
//!
//! After every step: no replica shows a receipt the model lacks (or one with other figures),
//! a till holds only its own sessions, and every acknowledged sale is on its till. At the end
//! every till syncs to a fixpoint, and then: identical heads per document on every replica
//! that may hold it; identical projections (session totals, products with their winners,
//! the conflict ledger); each field's winner is the write with the largest HLC; every
//! acknowledged sale is on the hub exactly once, in the right session, with the model's totals.

mod checks;
mod model;
mod system;

use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, StateMachineTest};

use model::{Model, Reference, Step};
use system::System;

struct Convergence;

impl StateMachineTest for Convergence {
    type SystemUnderTest = System;
    type Reference = Reference;

    fn init_test(_model: &Model) -> System {
        System::new()
    }

    fn apply(system: System, model: &Model, step: Step) -> System {
        system.step(model, step)
    }

    fn check_invariants(system: &System, model: &Model) {
        checks::after_step(system, model);
    }

    fn teardown(mut system: System, model: Model) {
        checks::sync_to_fixpoint(&mut system);
        checks::check_equal_heads(&mut system, &model);
        checks::check_projections(&system, &model);
    }
}

/// 64 cases by default; `PROPTEST_CASES` asks for more (or fewer).
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn till_and_hub_replicas_converge(sequential 1..60 => Convergence);
}
