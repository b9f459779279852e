//! The fiscal side of a till: everything between a durable receipt and a fiscal document
//! acknowledged by the OFD (54-FZ). Knows receipts (from `crdt-model`), never sync, the hub or
//! the till daemon; the till daemon opens the serial port and hands the stream in.
//!
//! Modules:
//! - [`register`]: the [`register::FiscalRegister`] trait and its request/answer types.
//! - [`shtrih`]: the Shtrih-M serial protocol: frame codec (STX/LEN/CMD/LRC, ENQ/ACK/NAK),
//!   commands, error codes, and the driver over any async byte stream.
//! - [`ofd`]: the FN–OFD container, the OFD HTTP client, its circuit-breaker guard, the error
//!   policy (permanent / retryable).
//! - [`breaker`]: the circuit breaker guarding the OFD link.
//! - [`pipeline`]: the drain — register first, then OFD, exactly once per receipt, behind the
//!   till's durable job store; [`failpoint`]: the crash points the crash tests arm.
//! - [`backoff`]: exponential backoff with jitter, `Retry-After` and the dead-letter decision.
//!
//! The register and OFD emulators that speak these protocols from the other end live in the
//! `fiscal-emulators` crate, which the till does not link.

pub mod backoff;
pub mod breaker;
pub mod failpoint;
pub mod ofd;
pub mod pipeline;
pub mod register;
pub mod shtrih;
