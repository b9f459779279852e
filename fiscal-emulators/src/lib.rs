//! The emulated fiscal hardware and service the tests, the bench and the demo run against: a
//! Shtrih-M register with its fiscal drive, and an OFD (fiscal data operator). Nothing the till
//! ships links this crate; it speaks the protocols whose codecs live in `fiscal` (Shtrih-M frames,
//! command codes and FFD TLV; the FN–OFD container) and owns everything only an emulator needs:
//! the axum control APIs, hyper's accept loop, the pseudo-terminal, clap and the emulated signs.
//!
//! Modules:
//! - [`register`]: the register emulator (fiscal drive state, TLV documents, faults) served on a
//!   pseudo-terminal with an HTTP control API.
//! - [`ofd`]: the OFD emulator over HTTP with fault injection; its sans-IO state machine is
//!   [`ofd::state`].
//!
//! The `fiscal` binary (`src/main.rs`) runs either as a standalone program:
//! `fiscal register-emulator …` and `fiscal ofd-emulator …`.

mod hmac;
pub mod ofd;
pub mod register;
