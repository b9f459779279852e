//! [`Answer`]: the HTTP answer of a recorded write — status, JSON body and whether it was
//! replayed for a repeated `Idempotency-Key`. The node returns [`Recorded`] (the body as
//! stored with its idempotency record); the status every recorded answer goes out with is
//! decided here.

use axum::http::StatusCode;

use crate::node::Recorded;

/// An answer to a write: HTTP status and JSON body, possibly replayed from an earlier request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Vec<u8>,
    /// True when this answer was stored for an earlier request with the same key.
    pub replayed: bool,
}

impl From<Recorded> for Answer {
    /// A recorded write is a success: 200 with its stored body.
    fn from(recorded: Recorded) -> Answer {
        Answer {
            status: StatusCode::OK,
            body: recorded.body,
            replayed: recorded.replayed,
        }
    }
}
