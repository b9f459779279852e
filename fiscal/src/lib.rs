//! The fiscal side of a till: everything between a durable receipt and a fiscal document
//! acknowledged by the OFD (54-FZ). Knows receipts (from `crdt-model`), never sync, the hub or
//! the till daemon; the till daemon opens the serial port and hands the stream in.
//!
//! Modules:
//! - [`register`]: the [`register::FiscalRegister`] trait and its request/answer types.
//! - [`shtrih`]: the Shtrih-M serial protocol: frame codec (STX/LEN/CMD/LRC, ENQ/ACK/NAK),
//!   commands, error codes, and the driver over any async byte stream.
//! - [`emulator`]: the register emulator (fiscal drive state, TLV documents, faults) served on a
//!   pseudo-terminal with an HTTP control API.
//! - [`ofd`]: the FN–OFD container, the OFD HTTP client, its circuit-breaker guard, the error
//!   policy (permanent / retryable) and the OFD emulator with fault injection.
//! - [`breaker`]: the circuit breaker guarding the OFD link.
//! - [`pipeline`]: the drain — register first, then OFD, exactly once per receipt, behind the
//!   till's durable job store; [`failpoint`]: the crash points the crash tests arm.
//! - [`backoff`]: exponential backoff with jitter, `Retry-After` and the dead-letter decision.

pub mod backoff;
pub mod breaker;
pub mod emulator;
pub mod failpoint;
mod hmac;
pub mod ofd;
pub mod pipeline;
pub mod register;
pub mod shtrih;
