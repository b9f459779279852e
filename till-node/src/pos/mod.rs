//! The till's side of the browser POS: who the page is and what it may do.
//!
//! `policy` is the share policy towards a page, `tokens` the login records issued after a
//! correct PIN, `throttle` the wrong-PIN lock, `pin` the check of a PIN against the staff
//! document the hub replicates to the till (argon2id hashes only), `logins` the service that
//! answers token and staff reads and keeps the throttles outside the node lock, `changes` what
//! a page may change in a shift. The sync round itself is `PageSync::round`
//! (`node/page_sync.rs`); the routes are in `api/pos.rs`.

pub mod changes;
pub mod logins;
pub mod pin;
pub mod policy;
pub mod throttle;
pub mod tokens;
