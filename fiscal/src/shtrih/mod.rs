//! The Shtrih-M serial protocol v1 (fiscal-reference §2.2): the pure frame codec
//! ([`frame`]), the error codes ([`error`]), command codes and field encodings ([`codes`]),
//! FFD TLV ([`tlv`]), the ENQ/ACK/NAK transport ([`link`]) and the [`driver::ShtrihDriver`]
//! implementing [`crate::register::FiscalRegister`] over any async byte stream (its receipt
//! encoding and document decoding are in [`receipt`]).

pub mod codes;
pub mod driver;
pub mod error;
pub mod frame;
pub mod link;
pub mod receipt;
pub mod tlv;

pub use driver::{DriverConfig, ShtrihDriver};
pub use error::DeviceError;
pub use frame::{decode_frame, encode_frame, Frame, FrameError};
pub use link::LinkConfig;
