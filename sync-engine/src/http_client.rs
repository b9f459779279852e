//! reqwest adapter for the polling side: one sync round trip over HTTP.
//!
//! `HttpSyncClient::round` posts an encoded [`Envelope`] to `{base_url}{SYNC_PATH}` with a bearer
//! token and returns the decoded reply. Every call has a timeout, the reply body is read with a
//! hard size limit, and each failure maps to a precise [`TransportError`] so the till can tell
//! "offline" from "revoked" from "hub bug".

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use reqwest::StatusCode;

use crate::envelope::{Envelope, EnvelopeError, CONTENT_TYPE, MAX_ENVELOPE_BYTES};
use crate::SYNC_PATH;

/// Longest error body kept for [`TransportError`] messages.
const MAX_ERROR_BODY_BYTES: usize = 4096;

/// Why a round trip failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The request envelope breaks a limit; nothing was sent.
    #[error("request envelope cannot be encoded: {0}")]
    InvalidRequest(#[source] EnvelopeError),
    /// The client could not be configured (bad URL or token).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// No answer within the timeout.
    #[error("sync request timed out")]
    Timeout,
    /// The hub could not be reached (DNS, connection refused, reset).
    #[error("hub unreachable: {0}")]
    Unreachable(String),
    /// 401: the credential is missing, wrong or revoked.
    #[error("unauthorized (401): the till credential was refused")]
    Unauthorized,
    /// 403: the share policy refused a document.
    #[error("forbidden (403): {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 413: the request envelope was too large for the server.
    #[error("payload too large (413)")]
    PayloadTooLarge,
    /// Another 4xx (400 malformed envelope, 422 refused round, ...).
    #[error("request rejected ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// 5xx: the hub failed; retry with backoff.
    #[error("hub error ({status})")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// A 2xx reply body larger than [`MAX_ENVELOPE_BYTES`].
    #[error("reply larger than {MAX_ENVELOPE_BYTES} bytes")]
    ReplyTooLarge,
    /// A 2xx reply body that is not a valid envelope.
    #[error("invalid reply envelope: {0}")]
    InvalidReply(#[source] EnvelopeError),
    /// Any other transport failure.
    #[error("http error: {0}")]
    Http(String),
}

/// Sync client for one hub endpoint.
#[derive(Clone)]
pub struct HttpSyncClient {
    client: reqwest::Client,
    url: String,
    authorization: HeaderValue,
}

impl fmt::Debug for HttpSyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never in logs.
        f.debug_struct("HttpSyncClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl HttpSyncClient {
    /// A client posting to `{base_url}{SYNC_PATH}` with `Authorization: Bearer {bearer_token}`;
    /// `timeout` bounds each whole round trip.
    pub fn new(
        base_url: &str,
        bearer_token: &str,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let url = format!("{}{SYNC_PATH}", base_url.trim_end_matches('/'));
        reqwest::Url::parse(&url).map_err(|e| TransportError::Config(format!("bad URL: {e}")))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {bearer_token}"))
            .map_err(|_| TransportError::Config("the token holds invalid header bytes".into()))?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| TransportError::Config(e.to_string()))?;
        Ok(Self {
            client,
            url,
            authorization,
        })
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One round trip: send `request`, return the decoded reply.
    pub async fn round(&self, request: &Envelope) -> Result<Envelope, TransportError> {
        let body = request.encode().map_err(TransportError::InvalidRequest)?;
        let mut response = self
            .client
            .post(&self.url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE_HEADER, CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(map_send_error)?;
        let status = response.status();
        if !status.is_success() {
            let message = read_error_body(&mut response).await;
            return Err(map_status(status, message));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_ENVELOPE_BYTES as u64)
        {
            return Err(TransportError::ReplyTooLarge);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_send_error)? {
            if bytes.len() + chunk.len() > MAX_ENVELOPE_BYTES {
                return Err(TransportError::ReplyTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Envelope::decode(&bytes).map_err(TransportError::InvalidReply)
    }
}

fn map_send_error(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout
    } else if error.is_connect() {
        TransportError::Unreachable(error.to_string())
    } else {
        TransportError::Http(error.to_string())
    }
}

fn map_status(status: StatusCode, message: String) -> TransportError {
    match status {
        StatusCode::UNAUTHORIZED => TransportError::Unauthorized,
        StatusCode::FORBIDDEN => TransportError::Forbidden { message },
        StatusCode::PAYLOAD_TOO_LARGE => TransportError::PayloadTooLarge,
        s if s.is_server_error() => TransportError::Server { status: s.as_u16() },
        s => TransportError::Rejected {
            status: s.as_u16(),
            message,
        },
    }
}

/// The first few KiB of an error body, as text (best effort: errors here are ignored).
async fn read_error_body(response: &mut reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY_BYTES.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
