//! Convergence under faults, as a `proptest-state-machine` test.
//!
//! One hub (server) and three tills (clients) as [`MemoryReplica`]s. Each till writes its own
//! document `own/<till>` and the `shared` one; the hub writes `shared`, the read-only
//! `catalogue` and a `hub/private` document no till may see. Tills read each other's own docs.
//!
//! Transitions: a local write on a random replica; a sync round between a till and the hub
//! cut short after a few rounds, with a request or reply dropped or applied twice; a restart
//! that reloads documents from the simulated disk, keeping or losing the sync states.
//!
//! The hub answers at most two documents per round, so deferral happens all the time.
//!
//! After every step: no replica holds a change the model lacks, none holds a document it may not
//! see, and every acknowledged write is still present on its writer (so what was persisted is
//! enough to survive a restart). At the end every till syncs to a fixpoint and every replica
//! must hold identical heads for every document it may read, with every write present.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, ReadDoc};
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use sync_engine::{Access, DocId, Envelope, MemoryReplica, PeerId, PolicyTable, RoundLimits};

const TILLS: usize = 3;
const HUB: usize = 0;

fn peer_name(replica: usize) -> String {
    if replica == HUB {
        "hub".to_owned()
    } else {
        format!("till-{replica}")
    }
}

fn peer(replica: usize) -> PeerId {
    PeerId::new(peer_name(replica)).expect("valid peer")
}

fn doc(name: &str) -> DocId {
    DocId::new(name).expect("valid doc")
}

/// The documents replica `replica` writes, in a fixed order (indexed by transitions).
fn writable_docs(replica: usize) -> Vec<String> {
    if replica == HUB {
        vec!["shared".into(), "catalogue".into(), "hub/private".into()]
    } else {
        vec![format!("own/till-{replica}"), "shared".into()]
    }
}

fn till_may_read(doc: &str) -> bool {
    !doc.starts_with("hub/")
}

fn hub_policy() -> PolicyTable {
    let mut policy = PolicyTable::new();
    for till in 1..=TILLS {
        let p = peer(till);
        policy = policy
            .grant(&p, "own/", Access::Read)
            .grant(&p, &format!("own/till-{till}"), Access::ReadWrite)
            .grant(&p, "shared", Access::ReadWrite)
            .grant(&p, "catalogue", Access::Read)
            .allow_authors(&p, [ActorId::from(peer_name(till).as_bytes())]);
    }
    policy
}

fn till_policy() -> PolicyTable {
    let hub = peer(HUB);
    PolicyTable::new()
        .grant(&hub, "own/", Access::ReadWrite)
        .grant(&hub, "shared", Access::ReadWrite)
        .grant(&hub, "catalogue", Access::ReadWrite)
}

fn new_replica(replica: usize) -> MemoryReplica {
    let policy: Arc<dyn sync_engine::SharePolicy + Send + Sync> = if replica == HUB {
        Arc::new(hub_policy())
    } else {
        Arc::new(till_policy())
    };
    let replica_state = MemoryReplica::new(
        peer(replica),
        ActorId::from(peer_name(replica).as_bytes()),
        policy,
    );
    if replica == HUB {
        // Tight reply limits so that deferral to later rounds is exercised under faults too.
        replica_state.with_limits(RoundLimits {
            max_docs: 2,
            max_bytes: 64 * 1024,
            max_round_trips: 32,
        })
    } else {
        replica_state
    }
}

/// How one sync round goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    DropRequest,
    DropReply,
    DuplicateRequest,
    DuplicateReply,
}

#[derive(Debug, Clone)]
enum Step {
    Write {
        replica: usize,
        doc_index: usize,
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

/// The reference: every write ever acknowledged, per document, with its writer.
#[derive(Debug, Clone, Default)]
struct Model {
    next_event: u64,
    writes: BTreeMap<String, BTreeMap<u64, usize>>,
}

struct Reference;

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
        prop_oneof![
            4 => (0..=TILLS, 0..3usize).prop_map(|(replica, doc_index)| Step::Write { replica, doc_index }),
            4 => (1..=TILLS, 1..5u8, fault, 0..4u8).prop_map(|(till, max_round_trips, fault, fault_round)| {
                Step::Sync { till, max_round_trips, fault, fault_round }
            }),
            1 => (0..=TILLS, any::<bool>()).prop_map(|(replica, keep_sync_states)| {
                Step::Restart { replica, keep_sync_states }
            }),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        if let Step::Write { replica, doc_index } = step {
            let docs = writable_docs(*replica);
            let name = docs[doc_index % docs.len()].clone();
            state
                .writes
                .entry(name)
                .or_default()
                .insert(state.next_event, *replica);
            state.next_event += 1;
        }
        state
    }
}

struct System {
    replicas: Vec<MemoryReplica>,
    now_ms: u64,
}

impl System {
    fn session(&mut self, till: usize, max_round_trips: u8, fault: Fault, fault_round: u8) {
        let (hub_part, tills) = self.replicas.split_at_mut(1);
        let hub = &mut hub_part[0];
        let client = &mut tills[till - 1];
        let hub_id = peer(HUB);
        let till_id = peer(till);
        let mut sync = client.start_round(&hub_id);
        for round_trip in 0..max_round_trips {
            let Some(request) = client.next_request(&mut sync).expect("next request") else {
                return;
            };
            let request = Envelope::decode(&request.encode().expect("encode")).expect("decode");
            let fault = if round_trip == fault_round {
                fault
            } else {
                Fault::None
            };
            if fault == Fault::DropRequest {
                return;
            }
            let mut reply = hub.serve(&till_id, &request).expect("hub serves").reply;
            if fault == Fault::DuplicateRequest {
                reply = hub
                    .serve(&till_id, &request)
                    .expect("hub serves again")
                    .reply;
            }
            if fault == Fault::DropReply {
                return;
            }
            let reply = Envelope::decode(&reply.encode().expect("encode")).expect("decode");
            client
                .apply_reply(&mut sync, &hub_id, &reply)
                .expect("till applies");
            if fault == Fault::DuplicateReply {
                client
                    .apply_reply(&mut sync, &hub_id, &reply)
                    .expect("till applies a duplicate");
            }
        }
    }
}

/// Event numbers present in a replica's copy of `name`.
fn events_in(replica: &MemoryReplica, name: &str) -> BTreeSet<u64> {
    replica
        .doc(&doc(name))
        .map(|d| {
            d.keys(automerge::ROOT)
                .filter_map(|key| key.strip_prefix('e').and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

struct Convergence;

impl StateMachineTest for Convergence {
    type SystemUnderTest = System;
    type Reference = Reference;

    fn init_test(_model: &Model) -> System {
        System {
            replicas: (0..=TILLS).map(new_replica).collect(),
            now_ms: 1_700_000_000_000,
        }
    }

    fn apply(mut system: System, model: &Model, step: Step) -> System {
        system.now_ms += 1_000;
        match step {
            Step::Write { replica, doc_index } => {
                let docs = writable_docs(replica);
                let name = &docs[doc_index % docs.len()];
                let event = model.next_event - 1;
                system.replicas[replica]
                    .change(&doc(name), system.now_ms, |d| {
                        d.put(automerge::ROOT, format!("e{event}"), event as i64)?;
                        Ok(())
                    })
                    .expect("local write");
            }
            Step::Sync {
                till,
                max_round_trips,
                fault,
                fault_round,
            } => {
                system.session(till, max_round_trips, fault, fault_round);
            }
            Step::Restart {
                replica,
                keep_sync_states,
            } => {
                system.replicas[replica]
                    .restart(keep_sync_states)
                    .expect("restart");
            }
        }
        system
    }

    fn check_invariants(system: &System, model: &Model) {
        for (index, replica) in system.replicas.iter().enumerate() {
            for id in replica.doc_ids() {
                let name = id.as_str();
                assert!(
                    index == HUB || till_may_read(name),
                    "{} holds {name}",
                    peer_name(index)
                );
                let known: BTreeSet<u64> = model
                    .writes
                    .get(name)
                    .map(|w| w.keys().copied().collect())
                    .unwrap_or_default();
                let held = events_in(replica, name);
                assert!(
                    held.is_subset(&known),
                    "{} holds unknown events in {name}",
                    peer_name(index)
                );
            }
        }
        for (name, writes) in &model.writes {
            for (event, writer) in writes {
                let held = events_in(&system.replicas[*writer], name);
                assert!(
                    held.contains(event),
                    "{} lost its own write e{event} in {name}",
                    peer_name(*writer)
                );
            }
        }
    }

    fn teardown(mut system: System, model: Model) {
        // Fixpoint: every till syncs with the hub until a whole pass changes nothing.
        let mut settled = false;
        for _pass in 0..4 {
            let mut changed = 0;
            for till in 1..=TILLS {
                let (hub_part, tills) = system.replicas.split_at_mut(1);
                let report = tills[till - 1]
                    .sync_with(&mut hub_part[0])
                    .expect("clean sync");
                changed += report.docs_changed;
            }
            let hub_changed_nothing = changed == 0;
            if hub_changed_nothing && all_equal(&mut system) {
                settled = true;
                break;
            }
        }
        assert!(settled, "no fixpoint after 4 passes");
        for (name, writes) in &model.writes {
            let expected: BTreeSet<u64> = writes.keys().copied().collect();
            for (index, replica) in system.replicas.iter().enumerate() {
                if index == HUB || till_may_read(name) {
                    assert_eq!(
                        events_in(replica, name),
                        expected,
                        "{} / {name}",
                        peer_name(index)
                    );
                } else {
                    assert!(replica.doc(&doc(name)).is_none());
                }
            }
        }
    }
}

/// Every till holds the hub's heads for every document it may read.
fn all_equal(system: &mut System) -> bool {
    let names: Vec<DocId> = system.replicas[HUB].doc_ids();
    for id in names {
        let hub_heads = system.replicas[HUB].heads(&id);
        if !till_may_read(id.as_str()) {
            continue;
        }
        for till in 1..=TILLS {
            if system.replicas[till].heads(&id) != hub_heads {
                return false;
            }
        }
    }
    true
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_under_faults(sequential 1..60 => Convergence);
}
