//! The till's side of the browser POS: who the page is and what it may do.
//!
//! `policy` is the share policy towards a page, `tokens` the login sessions issued after a
//! correct PIN, `throttle` the wrong-PIN lock, `pin` the check of a PIN against the staff
//! document the hub replicates to the till (argon2id hashes only). The sync round itself is
//! `Node::pos_sync_round` (`node/pos_sync.rs`); the routes are in `api/pos.rs`.

pub mod changes;
pub mod pin;
pub mod policy;
pub mod throttle;
pub mod tokens;
