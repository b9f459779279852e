//! A scripted till: an in-memory replica (`sync_engine::MemoryReplica`) that writes the real
//! domain documents as a till would (its own actor, one cash session) and syncs with a real hub
//! over HTTP with a device token. Scenarios use it where a till-node process cannot do what is
//! needed: sync the same till through two hubs at once, or send a hand-tampered envelope.
//!
//! Also the contract's share policy as seen from a till ([`TillPolicy`]) and the authorship
//! rule ([`may_author_doc`]), which the convergence model test uses too.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use automerge::{ActorId, AutoCommit};
use crdt_model::ids::{actor_id, parse_actor, ActorOwner};
use crdt_model::receipt::ReceiptDraft;
use crdt_model::session::{self, SessionHeader};
use crdt_model::{DocKey, HlcClock, Kopecks, Receipt, ReceiptId, SessionId, StoreId, TillId};
use sync_engine::http_client::HttpSyncClient;
use sync_engine::{Access, DocId, Envelope, MemoryReplica, PeerId, SharePolicy, SyncRound};

use crate::sales::Sale;

/// Timeout of one sync round trip.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `actor` may author changes of `doc`: session changes by a device of that till,
/// catalogue changes by a till of that store or by a hub.
pub fn may_author_doc(doc: &DocId, actor: &ActorId) -> bool {
    match (DocKey::parse(doc.as_str()), parse_actor(actor)) {
        (
            Ok(DocKey::Session { store, till, .. }),
            ActorOwner::Till {
                store: s, till: t, ..
            },
        ) => store == s && till == t,
        (Ok(DocKey::Catalogue { store }), ActorOwner::Till { store: s, .. }) => store == s,
        (Ok(DocKey::Catalogue { .. }), ActorOwner::Hub { .. }) => true,
        _ => false,
    }
}

/// Whether till `store/till` may hold `doc`: its store's catalogue and its own sessions.
pub fn till_may_see(store: &StoreId, till: &TillId, doc: &DocId) -> bool {
    match DocKey::parse(doc.as_str()) {
        Ok(DocKey::Catalogue { store: s }) => &s == store,
        Ok(DocKey::Session {
            store: s, till: t, ..
        }) => &s == store && &t == till,
        // The hub offers the staff list too; scripted tills never log a cashier in: declined.
        Ok(DocKey::Staff { .. }) => false,
        Err(_) => false,
    }
}

/// A till's policy towards its hub (peer `hub`): which offered documents it takes, and whose
/// changes.
#[derive(Debug, Clone)]
pub struct TillPolicy {
    /// The till's store.
    pub store: StoreId,
    /// The till.
    pub till: TillId,
}

impl SharePolicy for TillPolicy {
    fn access(&self, peer: &PeerId, doc: &DocId) -> Access {
        if peer.as_str() == "hub" && till_may_see(&self.store, &self.till, doc) {
            Access::ReadWrite
        } else {
            Access::None
        }
    }

    fn may_author(&self, _peer: &PeerId, doc: &DocId, actor: &ActorId) -> bool {
        may_author_doc(doc, actor)
    }
}

/// An in-memory till with one open cash session.
#[derive(Debug)]
pub struct ScriptedTill {
    store: StoreId,
    till: TillId,
    actor: ActorId,
    replica: MemoryReplica,
    clock: HlcClock,
    session: SessionId,
    session_doc: DocId,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ScriptedTill {
    /// Till `store/till` writing as device `device`, with a freshly opened session.
    pub fn open(store: &str, till: &str, device: &str) -> anyhow::Result<ScriptedTill> {
        let store_id: StoreId = store.parse()?;
        let till_id: TillId = till.parse()?;
        let actor = actor_id(&store_id, &till_id, device)?;
        Self::open_as(store, till, actor)
    }

    /// Like [`ScriptedTill::open`], but writing with an arbitrary actor (to forge authorship).
    pub fn open_as(store: &str, till: &str, actor: ActorId) -> anyhow::Result<ScriptedTill> {
        let store_id: StoreId = store.parse()?;
        let till_id: TillId = till.parse()?;
        let peer = PeerId::new(format!("till:{store}/{till}"))?;
        let policy = Arc::new(TillPolicy {
            store: store_id.clone(),
            till: till_id.clone(),
        });
        let node = String::from_utf8_lossy(actor.to_bytes()).into_owned();
        let clock = HlcClock::new(&node, 60_000).context("clock node name")?;
        let session = SessionId::new(uuid::Uuid::new_v4());
        let key = DocKey::Session {
            store: store_id.clone(),
            till: till_id.clone(),
            session,
        };
        let mut scripted = ScriptedTill {
            session_doc: DocId::new(key.to_doc_id())?,
            store: store_id,
            till: till_id,
            replica: MemoryReplica::new(peer, actor.clone(), policy),
            actor,
            clock,
            session,
        };
        let header = SessionHeader {
            session_id: session,
            store: scripted.store.clone(),
            till: scripted.till.clone(),
            cashier: "Петрова".to_owned(),
            opened_at: scripted.clock.now(now_ms()),
            opening_cash: Kopecks(0),
        };
        scripted.edit(|doc| session::open(doc, &header).map(drop))?;
        Ok(scripted)
    }

    /// The session document's id.
    pub fn session_doc(&self) -> &DocId {
        &self.session_doc
    }

    /// The replica.
    pub fn replica(&self) -> &MemoryReplica {
        &self.replica
    }

    /// An identical copy of this till (same actor, documents and sync states), as if its disk
    /// were copied to another machine. Only one of the two may write afterwards.
    pub fn twin(&self) -> anyhow::Result<ScriptedTill> {
        let replica = MemoryReplica::restore(
            self.replica.peer().clone(),
            self.actor.clone(),
            Arc::new(TillPolicy {
                store: self.store.clone(),
                till: self.till.clone(),
            }),
            self.replica.save(),
        )?;
        Ok(ScriptedTill {
            store: self.store.clone(),
            till: self.till.clone(),
            actor: self.actor.clone(),
            replica,
            clock: self.clock.clone(),
            session: self.session,
            session_doc: self.session_doc.clone(),
        })
    }

    fn edit<E>(
        &mut self,
        write: impl FnOnce(&mut AutoCommit) -> Result<(), E>,
    ) -> anyhow::Result<()>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut outcome = None;
        self.replica.change(&self.session_doc, now_ms(), |doc| {
            outcome = Some(write(doc));
            Ok(())
        })?;
        match outcome {
            Some(result) => result.context("session write refused"),
            None => bail!("the edit did not run"),
        }
    }

    /// Appends `sale` (a till API body) as a receipt; returns its id.
    pub fn sell(&mut self, sale: &Sale) -> anyhow::Result<ReceiptId> {
        let draft: ReceiptDraft =
            serde_json::from_value(sale.body.clone()).context("sale body is not a draft")?;
        let id = ReceiptId::new(uuid::Uuid::new_v4());
        let receipt = Receipt::from_draft(
            draft,
            id,
            self.store.clone(),
            self.till.clone(),
            self.session,
            self.clock.now(now_ms()),
        )?;
        self.edit(|doc| session::append_receipt(doc, &receipt).map(drop))?;
        Ok(id)
    }

    /// The replica, for writes outside the session document (hostile tests).
    pub fn replica_mut(&mut self) -> &mut MemoryReplica {
        &mut self.replica
    }

    /// Starts a sync round with the hub by hand (to send tampered requests).
    pub fn start_round(&self) -> anyhow::Result<SyncRound> {
        Ok(self.replica.start_round(&PeerId::new("hub")?))
    }

    /// The next request of a hand-driven session (`None` when it is finished).
    pub fn next_request(&mut self, round: &mut SyncRound) -> anyhow::Result<Option<Envelope>> {
        Ok(self.replica.next_request(round)?)
    }

    /// Applies a reply of a hand-driven session.
    pub fn apply_reply(&mut self, round: &mut SyncRound, reply: &Envelope) -> anyhow::Result<()> {
        let outcome = self
            .replica
            .apply_reply(round, &PeerId::new("hub")?, reply)?;
        if let Some((doc, error)) = outcome.failed.first() {
            bail!("reply for {doc} could not be applied: {error}");
        }
        Ok(())
    }

    /// A whole sync round with the hub at `hub_url` (its base URL) until nothing is left to
    /// say. Returns the round trips made.
    pub async fn sync(&mut self, hub_url: &str, token: &str) -> anyhow::Result<u32> {
        let client = HttpSyncClient::new(&format!("{hub_url}/api"), token, ROUND_TIMEOUT)?;
        let hub = PeerId::new("hub")?;
        let mut round = self.replica.start_round(&hub);
        while let Some(request) = self.replica.next_request(&mut round)? {
            let reply = client.round(&request).await?;
            let outcome = self.replica.apply_reply(&mut round, &hub, &reply)?;
            if let Some((doc, error)) = outcome.failed.first() {
                bail!("reply for {doc} could not be applied: {error}");
            }
        }
        Ok(round.rounds())
    }

    /// Heads of the session document.
    pub fn session_heads(&mut self) -> Vec<automerge::ChangeHash> {
        let doc = self.session_doc.clone();
        self.replica.heads(&doc)
    }

    /// The session as this replica reads it.
    pub fn session_view(&self) -> anyhow::Result<session::SessionView> {
        let doc = self
            .replica
            .doc(&self.session_doc)
            .context("no session document")?;
        Ok(session::read(doc)?)
    }
}

/// What the hub at `hub_url` serves to till `store/till` (token `token`): a fresh replica
/// after one whole sync round.
pub async fn fetch_from_hub(
    hub_url: &str,
    token: &str,
    store: &str,
    till: &str,
) -> anyhow::Result<MemoryReplica> {
    let store_id: StoreId = store.parse()?;
    let till_id: TillId = till.parse()?;
    let actor = actor_id(&store_id, &till_id, "reader")?;
    let mut replica = MemoryReplica::new(
        PeerId::new(format!("till:{store}/{till}"))?,
        actor,
        Arc::new(TillPolicy {
            store: store_id,
            till: till_id,
        }),
    );
    let client = HttpSyncClient::new(&format!("{hub_url}/api"), token, ROUND_TIMEOUT)?;
    let hub = PeerId::new("hub")?;
    let mut round = replica.start_round(&hub);
    while let Some(request) = replica.next_request(&mut round)? {
        let reply = client.round(&request).await?;
        replica.apply_reply(&mut round, &hub, &reply)?;
    }
    Ok(replica)
}
