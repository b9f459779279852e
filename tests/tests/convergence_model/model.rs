//! The reference model: what every step means to a cashier and an auditor — which sales were
//! acknowledged, with what figures, in which session — and the strategy that generates steps.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

use crate::system::{SKUS, TILLS};

/// How one sync round goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every message arrives once.
    None,
    /// A request is lost: the hub never sees it.
    DropRequest,
    /// The hub applies a request but its reply is lost.
    DropReply,
    /// The hub receives (and applies) the same request twice.
    DuplicateRequest,
    /// The till applies the same reply twice.
    DuplicateReply,
}

/// One transition: a local write, a faulty sync round, or a restart.
#[derive(Debug, Clone)]
pub enum Step {
    /// A sale on `till`: lines of (SKU index, quantity, price), paid as [`split_payment`].
    Sale {
        till: usize,
        lines: Vec<(usize, i64, i64)>,
        split: u8,
    },
    CloseAndReopen {
        till: usize,
    },
    PriceChange {
        replica: usize,
        sku: usize,
        price: i64,
    },
    Sync {
        till: usize,
        max_round_trips: u8,
        fault: Fault,
        fault_round: u8,
    },
    Restart {
        replica: usize,
        keep_sync_states: bool,
    },
}

/// An acknowledged sale as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleRecord {
    pub till: usize,
    pub session: u32,
    pub total: i64,
    pub cash: i64,
    pub card: i64,
}

/// The reference: every acknowledged sale, and each till's current session number.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Acknowledged sales by number (1, 2, …).
    pub sales: BTreeMap<u64, SaleRecord>,
    /// Current session number per till (index 0, the hub, unused).
    pub sessions: [u32; TILLS + 1],
    /// Closed sessions: (till, session number).
    pub closed: BTreeSet<(usize, u32)>,
}

/// How a sale's total is paid: all cash (0), all card (1), or half and half.
pub fn split_payment(total: i64, split: u8) -> (i64, i64) {
    match split {
        0 => (total, 0),
        1 => (0, total),
        _ => (total / 2, total - total / 2),
    }
}

/// The reference state machine: generates steps and applies them to the [`Model`].
pub struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Step> {
        let fault = prop_oneof![
            3 => Just(Fault::None),
            1 => Just(Fault::DropRequest),
            1 => Just(Fault::DropReply),
            1 => Just(Fault::DuplicateRequest),
            1 => Just(Fault::DuplicateReply),
        ];
        let line = (0..SKUS.len(), 1..=3i64, 100..=50_000i64);
        prop_oneof![
            5 => (1..=TILLS, prop::collection::vec(line, 1..=3), 0..3u8)
                .prop_map(|(till, lines, split)| Step::Sale { till, lines, split }),
            1 => (1..=TILLS).prop_map(|till| Step::CloseAndReopen { till }),
            2 => (0..=TILLS, 0..SKUS.len(), 100..=90_000i64)
                .prop_map(|(replica, sku, price)| Step::PriceChange { replica, sku, price }),
            4 => (1..=TILLS, 1..5u8, fault, 0..4u8).prop_map(|(till, max_round_trips, fault, fault_round)| {
                Step::Sync { till, max_round_trips, fault, fault_round }
            }),
            1 => (0..=TILLS, any::<bool>())
                .prop_map(|(replica, keep_sync_states)| Step::Restart { replica, keep_sync_states }),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        match step {
            Step::Sale { till, lines, split } => {
                let total: i64 = lines.iter().map(|(_, qty, price)| qty * price).sum();
                let (cash, card) = split_payment(total, *split);
                let number = state.sales.len() as u64 + 1;
                let record = SaleRecord {
                    till: *till,
                    session: state.sessions[*till],
                    total,
                    cash,
                    card,
                };
                state.sales.insert(number, record);
            }
            Step::CloseAndReopen { till } => {
                state.closed.insert((*till, state.sessions[*till]));
                state.sessions[*till] += 1;
            }
            _ => {}
        }
        state
    }
}
