//! The system under test: four `MemoryReplica`s (hub + three tills) with their HLC clocks,
//! the ids and share policies of the contract, and how each step is carried out on them.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::{ActorId, AutoCommit, ReadDoc};
use crdt_model::catalogue::{self, Field, FieldValue, Product};
use crdt_model::ids::{actor_id, hub_actor};
use crdt_model::receipt::ReceiptDraft;
use crdt_model::session::{self, SessionHeader};
use crdt_model::{
    DocKey, Hlc, HlcClock, Kopecks, Receipt, ReceiptId, SessionId, StoreId, TillId, VatRate,
};
use serde_json::json;
use sync_engine::{Access, DocId, Envelope, MemoryReplica, PeerId, SharePolicy};
use tests::replica::{may_author_doc, till_may_see, TillPolicy};

use crate::model::{split_payment, Fault, Model, Step};

/// Tills of the store (replicas 1..=TILLS).
pub const TILLS: usize = 3;
/// Index of the hub among the replicas.
pub const HUB: usize = 0;
/// The one store.
pub const STORE: &str = "S1";
/// Products of the catalogue.
pub const SKUS: [&str; 4] = ["F-1", "F-2", "L-1", "L-2"];
/// Cash in the drawer when a session opens, kopecks.
pub const OPENING_CASH: i64 = 10_000;
/// Clock skew of each replica against the simulated wall clock (hub, T1, T2, T3): T2 runs
/// 5 s slow, so its writes can lose to earlier ones; T3 runs 3 s fast.
pub const SKEW_MS: [i64; TILLS + 1] = [0, 0, -5_000, 3_000];
/// High bits of every receipt id, so that a receipt id maps back to the model's number.
pub const RECEIPT_TAG: u128 = 0x5eed_0000_0000_0000_0000_0000_0000_0000;

/// The store id.
pub fn store() -> StoreId {
    StoreId::new(STORE).expect("valid store")
}

/// Till id of replica `replica` (`T1`..).
pub fn till_id(replica: usize) -> TillId {
    TillId::new(&format!("T{replica}")).expect("valid till")
}

/// Peer id of a replica: `hub` or `till:S1/Tn`.
pub fn peer(replica: usize) -> PeerId {
    let name = if replica == HUB {
        "hub".to_owned()
    } else {
        format!("till:{STORE}/T{replica}")
    };
    PeerId::new(name).expect("valid peer")
}

/// Actor of a replica: the hub's, or the till daemon's (`S1/Tn/node`).
pub fn actor(replica: usize) -> ActorId {
    if replica == HUB {
        hub_actor("hub").expect("valid hub actor")
    } else {
        actor_id(&store(), &till_id(replica), "node").expect("valid actor")
    }
}

/// The store catalogue's document id.
pub fn catalogue_doc() -> DocId {
    DocId::new(format!("catalogue/{STORE}")).expect("valid doc")
}

/// Session `number` of `till` (deterministic, so the model can name it).
pub fn session_id(till: usize, number: u32) -> SessionId {
    SessionId::new(uuid::Uuid::from_u128(
        ((till as u128) << 64) | u128::from(number),
    ))
}

/// Document id of session `number` of `till`.
pub fn session_doc(till: usize, number: u32) -> DocId {
    let key = DocKey::Session {
        store: store(),
        till: till_id(till),
        session: session_id(till, number),
    };
    DocId::new(key.to_doc_id()).expect("valid doc")
}

/// Receipt id of the model's sale `number`.
pub fn receipt_id(number: u64) -> ReceiptId {
    ReceiptId::new(uuid::Uuid::from_u128(RECEIPT_TAG | u128::from(number)))
}

/// The model's sale number of a receipt id (`None` for a foreign id).
pub fn receipt_number(id: ReceiptId) -> Option<u64> {
    let value = id.as_uuid().as_u128();
    (value & !u128::from(u64::MAX) == RECEIPT_TAG).then_some(value as u64)
}

/// The till (store, till) a peer id names, `till:S/T`.
pub fn till_of_peer(peer: &PeerId) -> Option<(StoreId, TillId)> {
    let (store, till) = peer.as_str().strip_prefix("till:")?.split_once('/')?;
    Some((store.parse().ok()?, till.parse().ok()?))
}

/// The hub's policy: what each authenticated till may do.
struct HubPolicy;

impl SharePolicy for HubPolicy {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        match till_of_peer(peer) {
            Some((store, till)) if till_may_see(&store, &till, doc) => Access::ReadWrite,
            _ => Access::None,
        }
    }

    fn may_author(&self, _peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        may_author_doc(doc, actor)
    }
}

/// A replica with its clock.
pub struct Node {
    pub replica: MemoryReplica,
    pub clock: HlcClock,
}

/// The replicas, the simulated wall clock, and the log of price writes.
pub struct System {
    pub nodes: Vec<Node>,
    pub now_ms: u64,
    /// Every price write: (sku, price, HLC), including the catalogue's creation.
    pub price_writes: Vec<(String, i64, Hlc)>,
}

impl System {
    /// The hub with the store catalogue, and three tills each with an open session and the
    /// catalogue (one clean sync each).
    pub fn new() -> System {
        let nodes = (0..=TILLS)
            .map(|replica| {
                let policy: Arc<dyn SharePolicy + Send + Sync> = if replica == HUB {
                    Arc::new(HubPolicy)
                } else {
                    Arc::new(TillPolicy {
                        store: store(),
                        till: till_id(replica),
                    })
                };
                let node_name = String::from_utf8_lossy(actor(replica).to_bytes()).into_owned();
                Node {
                    replica: MemoryReplica::new(peer(replica), actor(replica), policy),
                    clock: HlcClock::new(&node_name, 60_000).expect("valid clock"),
                }
            })
            .collect();
        let mut system = System {
            nodes,
            now_ms: 1_763_900_000_000,
            price_writes: Vec::new(),
        };
        let hlc = system.hlc(HUB);
        let products = initial_products();
        system.change(HUB, &catalogue_doc(), |d| {
            catalogue::init(d, &store(), &products, &hlc)
        });
        for product in &products {
            system
                .price_writes
                .push((product.sku.clone(), product.price.0, hlc.clone()));
        }
        for till in 1..=TILLS {
            system.open_session(till, 0);
            let (hub_part, tills) = system.nodes.split_at_mut(1);
            tills[till - 1]
                .replica
                .sync_with(&mut hub_part[0].replica)
                .expect("initial sync");
        }
        system
    }

    /// Applies `step`; `model` is the reference state after it.
    pub fn step(mut self, model: &Model, step: Step) -> System {
        self.now_ms += 1_000;
        match step {
            Step::Sale { till, lines, split } => {
                let number = model.sales.len() as u64;
                self.sale(number, till, model.sessions[till], &lines, split);
            }
            Step::CloseAndReopen { till } => {
                let closing = model.sessions[till] - 1;
                let hlc = self.hlc(till);
                self.change(till, &session_doc(till, closing), |d| {
                    session::close(d, &hlc, "Иванова")
                });
                self.open_session(till, model.sessions[till]);
            }
            Step::PriceChange {
                replica,
                sku,
                price,
            } => {
                let hlc = self.hlc(replica);
                let sku = SKUS[sku];
                self.change(replica, &catalogue_doc(), |d| {
                    catalogue::set_field(
                        d,
                        sku,
                        Field::Price,
                        FieldValue::Money(Kopecks(price)),
                        &hlc,
                    )
                });
                self.price_writes.push((sku.to_owned(), price, hlc));
            }
            Step::Sync {
                till,
                max_round_trips,
                fault,
                fault_round,
            } => {
                self.sync_round(till, max_round_trips, fault, fault_round);
            }
            Step::Restart {
                replica,
                keep_sync_states,
            } => {
                self.nodes[replica]
                    .replica
                    .restart(keep_sync_states)
                    .expect("restart");
            }
        }
        self
    }

    fn wall_ms(&self, replica: usize) -> u64 {
        self.now_ms.saturating_add_signed(SKEW_MS[replica])
    }

    fn hlc(&mut self, replica: usize) -> Hlc {
        let wall = self.wall_ms(replica);
        self.nodes[replica].clock.now(wall)
    }

    /// A local change that must succeed: `edit` returns the domain outcome.
    fn change<T, E: std::fmt::Debug>(
        &mut self,
        replica: usize,
        doc: &DocId,
        edit: impl FnOnce(&mut AutoCommit) -> Result<T, E>,
    ) -> T {
        let now = self.now_ms;
        let mut outcome = None;
        self.nodes[replica]
            .replica
            .change(doc, now, |d| {
                outcome = Some(edit(d));
                Ok(())
            })
            .expect("local change persists");
        outcome
            .expect("edit ran")
            .unwrap_or_else(|error| panic!("domain write on {doc} refused: {error:?}"))
    }

    fn open_session(&mut self, till: usize, number: u32) {
        let header = SessionHeader {
            session_id: session_id(till, number),
            store: store(),
            till: till_id(till),
            cashier: "Иванова".to_owned(),
            opened_at: self.hlc(till),
            opening_cash: Kopecks(OPENING_CASH),
        };
        self.change(till, &session_doc(till, number), |d| {
            session::open(d, &header)
        });
    }

    fn sale(
        &mut self,
        number: u64,
        till: usize,
        session_number: u32,
        lines: &[(usize, i64, i64)],
        split: u8,
    ) {
        let total: i64 = lines.iter().map(|(_, qty, price)| qty * price).sum();
        let (cash, card) = split_payment(total, split);
        let mut payments = Vec::new();
        for (method, amount) in [("cash", cash), ("card", card)] {
            if amount > 0 {
                payments.push(json!({"method": method, "amount": amount}));
            }
        }
        let items: Vec<_> = lines
            .iter()
            .map(|(sku, qty, price)| {
                json!({"sku": SKUS[*sku], "name": "Оправа", "qty": qty, "price": price, "vat": "vat22"})
            })
            .collect();
        let draft: ReceiptDraft = serde_json::from_value(json!({
            "pos_id": format!("T{till}"), "type": "sale", "items": items, "payments": payments,
        }))
        .expect("draft in the API format");
        let hlc = self.hlc(till);
        let receipt = Receipt::from_draft(
            draft,
            receipt_id(number),
            store(),
            till_id(till),
            session_id(till, session_number),
            hlc,
        )
        .expect("valid receipt");
        let appended = self.change(till, &session_doc(till, session_number), |d| {
            session::append_receipt(d, &receipt)
        });
        assert_eq!(appended, session::Appended::New);
    }

    fn sync_round(&mut self, till: usize, max_round_trips: u8, fault: Fault, fault_round: u8) {
        let (hub_part, tills) = self.nodes.split_at_mut(1);
        let hub = &mut hub_part[0].replica;
        let client = &mut tills[till - 1].replica;
        let mut sync = client.start_round(&peer(HUB));
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
            let mut reply = hub.serve(&peer(till), &request).expect("hub serves").reply;
            if fault == Fault::DuplicateRequest {
                reply = hub
                    .serve(&peer(till), &request)
                    .expect("hub serves again")
                    .reply;
            }
            if fault == Fault::DropReply {
                return;
            }
            let reply = Envelope::decode(&reply.encode().expect("encode")).expect("decode");
            client
                .apply_reply(&mut sync, &peer(HUB), &reply)
                .expect("till applies");
            if fault == Fault::DuplicateReply {
                client
                    .apply_reply(&mut sync, &peer(HUB), &reply)
                    .expect("till applies a duplicate");
            }
        }
    }
}

pub fn initial_products() -> Vec<Product> {
    SKUS.iter()
        .enumerate()
        .map(|(index, sku)| Product {
            sku: (*sku).to_owned(),
            ean: None,
            name: format!("Товар {sku}"),
            price: Kopecks(10_000 * (index as i64 + 1)),
            cost: None,
            vat: VatRate::Vat22,
            unit: "шт".to_owned(),
            category: None,
            brand: None,
        })
        .collect()
}

/// The session documents a replica holds, read. A document still empty (created for a sync
/// round whose changes have not arrived yet) is skipped when `skip_empty`, else an error.
pub fn sessions_of(
    replica: &MemoryReplica,
    skip_empty: bool,
) -> BTreeMap<DocId, session::SessionView> {
    replica
        .doc_ids()
        .into_iter()
        .filter(|id| id.as_str().starts_with("session/"))
        .filter(|id| {
            !skip_empty
                || replica
                    .doc(id)
                    .is_some_and(|d| d.length(automerge::ROOT) > 0)
        })
        .map(|id| {
            let doc = replica.doc(&id).expect("listed doc");
            let view = session::read(doc).unwrap_or_else(|e| panic!("{id} unreadable: {e}"));
            (id, view)
        })
        .collect()
}
