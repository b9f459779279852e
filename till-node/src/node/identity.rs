//! Who the node is: its store, till, device and actor id, and its peer ids on the wire.
//!
//! The device part of the actor id is per install: unless `--device` names one, the first open
//! of a till database generates `node-<8 hex>` and keeps it in the store's meta, and later opens
//! reuse it. So two daemons never write with the same actor, and a till rebuilt on a fresh
//! database (e.g. restored on another machine) never reuses an actor whose sequence numbers the
//! hub has already seen.

use automerge::ActorId;
use crdt_model::ids::actor_id;
use crdt_model::{StoreId, TillId};
use sync_engine::PeerId;

use super::{NodeConfig, NodeError};
use crate::policy::{TillPolicy, HUB_PEER};
use crate::store::{Store, WriteBatch};

/// Meta key under which the store keeps this install's generated device name.
pub const DEVICE_META_KEY: &str = "actor_device";
/// Prefix of a generated device name (`node-<8 hex>`).
pub const GENERATED_DEVICE_PREFIX: &str = "node-";
/// Length of a generated device name: the prefix and 8 hex digits.
pub const GENERATED_DEVICE_LEN: usize = GENERATED_DEVICE_PREFIX.len() + 8;

/// The node's identity on the wire and in documents.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The store.
    pub store: StoreId,
    /// The till.
    pub till: TillId,
    /// The device part of the actor id.
    pub device: String,
    /// Actor id of every change this node writes.
    pub actor: ActorId,
    /// Peer id towards the hub (`till:S/T`).
    pub peer: PeerId,
    /// The hub's peer id.
    pub hub: PeerId,
}

/// The device part of the actor id: `explicit` when given, otherwise the name kept in the
/// store's meta under [`DEVICE_META_KEY`], generated (`node-<8 hex>`) and persisted on the first
/// open. A per-install name means two daemons never write with the same actor, and a till
/// rebuilt on a fresh database never reuses an actor whose sequence numbers the hub has seen.
pub fn resolve_device(store: &mut Store, explicit: Option<&str>) -> Result<String, NodeError> {
    if let Some(device) = explicit {
        return Ok(device.to_owned());
    }
    if let Some(stored) = store.meta_string(DEVICE_META_KEY)? {
        return Ok(stored);
    }
    let generated = format!("{GENERATED_DEVICE_PREFIX}{:08x}", rand::random::<u32>());
    let mut batch = WriteBatch::new();
    batch.put_meta(DEVICE_META_KEY, generated.clone().into_bytes());
    store.commit(batch)?;
    tracing::info!(device = %generated, "generated this install's device name");
    Ok(generated)
}

pub(super) fn build(config: &NodeConfig, device: String) -> Result<Identity, NodeError> {
    let actor = actor_id(&config.store, &config.till, &device)
        .map_err(|e| NodeError::Identity(format!("device {device:?}: {e}")))?;
    let peer = PeerId::new(TillPolicy::peer_id(&config.store, &config.till))
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    let hub = PeerId::new(HUB_PEER).map_err(|e| NodeError::Identity(e.to_string()))?;
    Ok(Identity {
        store: config.store.clone(),
        till: config.till.clone(),
        device,
        actor,
        peer,
        hub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_device_is_kept_and_an_explicit_one_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let mut store = Store::open(dir.path()).expect("store");
            resolve_device(&mut store, None).expect("device")
        };
        assert!(first.starts_with(GENERATED_DEVICE_PREFIX), "{first}");
        assert_eq!(first.len(), GENERATED_DEVICE_LEN);
        assert!(first[GENERATED_DEVICE_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
        let mut store = Store::open(dir.path()).expect("store");
        assert_eq!(resolve_device(&mut store, None).expect("device"), first);
        assert_eq!(
            resolve_device(&mut store, Some("kassa-2")).expect("device"),
            "kassa-2"
        );
        assert_eq!(
            resolve_device(&mut store, None).expect("device"),
            first,
            "an explicit device does not replace the install's own"
        );
    }

    #[test]
    fn a_fresh_database_gets_a_new_device() {
        let names: std::collections::BTreeSet<String> = (0..4)
            .map(|_| {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut store = Store::open(dir.path()).expect("store");
                resolve_device(&mut store, None).expect("device")
            })
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }
}
