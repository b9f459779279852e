//! Sync of a set of Automerge documents between two replicas (till ↔ hub, browser ↔ till).
//!
//! The protocol is Automerge's own sync protocol, one message per document, batched per round
//! trip in a versioned, size-limited binary [`Envelope`]. The core is sans-IO: plain functions and
//! state machines, no sockets, files, threads or clocks (callers pass `now_ms`), so it compiles to
//! `wasm32-unknown-unknown` and two replicas can be looped in memory in a test. It knows
//! documents, heads, actors and peers — never receipts or products.
//!
//! Map of the crate:
//! - [`id`]: [`DocId`] and [`PeerId`], validated opaque names.
//! - [`envelope`]: [`Envelope`], [`DocEntry`], [`DocStatus`] and the hostile-input-safe codec.
//! - [`inspect`]: checks on received Automerge sync messages (structure, every change parsed).
//! - [`clock`]: [`VersionVector`] `{actor → seq}` and [`MissingRange`].
//! - [`policy`]: [`SharePolicy`] — who may read, write and author which document.
//! - [`doc_sync`]: per-document primitives [`generate`] and [`receive`] → [`Applied`].
//! - [`docset`]: [`DocSet`], how a round reaches a replica's documents.
//! - [`client`]: [`SyncRound`], the polling side; its doc explains the round-trip loop.
//! - [`server`]: [`Server`] with `plan` / `respond`, the stateless answering side.
//! - [`round`]: [`RoundLimits`] shared by both sides.
//! - [`divergence`]: [`DocDivergence`], what each side lacks and since when.
//! - [`memory`]: [`MemoryReplica`], an in-memory replica used as the reference in tests.
//! - `http_server` (feature `http-server`): the one axum sync handler, `serve_round`, with
//!   hooks for the sender check and metrics; used by the hub and the till's page endpoint.
//! - `http_client` (feature `http-client`): reqwest client for one round trip.
//!
//! Persisted per replica: the document's chunks (append [`Applied::new_changes`]) and, per
//! (peer, document), `automerge::sync::State::encode()` bytes — a few dozen bytes.

pub mod client;
pub mod clock;
pub mod divergence;
pub mod doc_sync;
pub mod docset;
pub mod envelope;
pub mod error;
pub mod id;
pub mod inspect;
pub mod memory;
pub mod policy;
pub mod round;
pub mod server;

#[cfg(feature = "http-client")]
pub mod http_client;
#[cfg(feature = "http-server")]
pub mod http_server;

pub use client::{ClientDocOutcome, ReplyOutcome, SyncRound};
pub use clock::{Actor, MissingRange, VersionVector};
pub use divergence::DocDivergence;
pub use doc_sync::{decode_state, generate, receive, Applied, ReceiveError};
pub use docset::DocSet;
pub use envelope::{
    DocEntry, DocStatus, Envelope, EnvelopeError, CONTENT_TYPE, ENVELOPE_VERSION, MAX_ENTRIES,
    MAX_ENVELOPE_BYTES, MAX_MESSAGE_BYTES,
};
pub use error::{ForbiddenReason, SyncError};
pub use id::{DocId, IdError, PeerId};
pub use memory::{MemoryReplica, ReplicaError, RoundReport, SavedReplica};
pub use policy::{Access, AllowAll, PolicyTable, SharePolicy};
pub use round::RoundLimits;
pub use server::{Plan, PlannedDoc, Response, Server, ServerDocOutcome};

/// Path of the sync endpoint, shared by the HTTP server and client adapters.
pub const SYNC_PATH: &str = "/v1/sync";
