//! HTTP client carrying the FN–OFD container: `POST {base}/ofd/v1/exchange` with the binary
//! message as body, the operator acknowledgement as answer. Every outcome maps to one
//! [`OfdError`] variant; the answer is read with a size limit and checked against the document
//! that was sent.

use super::container::{OfdAck, OfdContainer, MAX_MESSAGE_LEN};
use super::{OfdError, OfdTransport, EXCHANGE_PATH};
use crate::backoff::parse_retry_after;
use reqwest::{header, StatusCode, Url};
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Why an [`OfdClient`] could not be built.
#[derive(Debug, Error)]
pub enum ClientBuildError {
    /// The base URL does not parse or is not http(s).
    #[error("invalid OFD base URL {0:?}")]
    InvalidUrl(String),
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Client for one OFD endpoint. Cheap to clone (reqwest shares its connection pool).
#[derive(Debug, Clone)]
pub struct OfdClient {
    http: reqwest::Client,
    exchange_url: Url,
}

impl OfdClient {
    /// A client for the OFD at `base_url` (e.g. `http://127.0.0.1:9300`); `timeout` bounds the
    /// whole exchange, connection included.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ClientBuildError> {
        let invalid = || ClientBuildError::InvalidUrl(base_url.to_owned());
        let exchange_url = Url::parse(&format!(
            "{}{EXCHANGE_PATH}",
            base_url.trim_end_matches('/')
        ))
        .map_err(|_| invalid())?;
        if !matches!(exchange_url.scheme(), "http" | "https") {
            return Err(invalid());
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self { http, exchange_url })
    }

    /// The URL documents are posted to.
    pub fn exchange_url(&self) -> &Url {
        &self.exchange_url
    }

    /// Sends one document and returns the operator's acknowledgement.
    pub async fn send(&self, container: &OfdContainer) -> Result<OfdAck, OfdError> {
        let body = container.encode()?;
        let response = self
            .http
            .post(self.exchange_url.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(status_error(status, response.headers()));
        }
        let answer = read_limited(response).await?;
        let ack =
            OfdAck::decode(&answer).map_err(|error| OfdError::InvalidAnswer(error.to_string()))?;
        if ack.fn_number != container.fn_number || ack.fd != container.fd {
            return Err(OfdError::InvalidAnswer(format!(
                "acknowledges FN {} FD {}, sent FN {} FD {}",
                ack.fn_number, ack.fd, container.fn_number, container.fd
            )));
        }
        if !ack.is_accepted() {
            return Err(OfdError::Rejected { code: ack.code });
        }
        Ok(ack)
    }
}

impl OfdTransport for OfdClient {
    async fn send(&self, container: &OfdContainer) -> Result<OfdAck, OfdError> {
        OfdClient::send(self, container).await
    }
}

fn transport_error(error: reqwest::Error) -> OfdError {
    if error.is_timeout() {
        OfdError::Timeout
    } else {
        // Refused, reset or closed before the answer: the link is down either way. The URL is
        // left out of the message on purpose; it is in the configuration already.
        OfdError::Unreachable(error.without_url().to_string())
    }
}

fn status_error(status: StatusCode, headers: &header::HeaderMap) -> OfdError {
    let code = status.as_u16();
    match status {
        StatusCode::TOO_MANY_REQUESTS => OfdError::RateLimited {
            retry_after: headers
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now())),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => OfdError::Unauthorized { status: code },
        _ if status.is_server_error() => OfdError::Server { status: code },
        _ if status.is_client_error() => OfdError::BadRequest { status: code },
        _ => OfdError::InvalidAnswer(format!("unexpected HTTP status {code}")),
    }
}

/// Reads the answer body, refusing more than one maximal FN–OFD message.
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, OfdError> {
    let too_large = || OfdError::InvalidAnswer(format!("answer exceeds {MAX_MESSAGE_LEN} bytes"));
    if response
        .content_length()
        .is_some_and(|len| len > MAX_MESSAGE_LEN as u64)
    {
        return Err(too_large());
    }
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if answer.len() + chunk.len() > MAX_MESSAGE_LEN {
            return Err(too_large());
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_exchange_url_and_refuses_bad_ones() {
        let client =
            OfdClient::new("http://127.0.0.1:9300/", Duration::from_secs(1)).expect("valid URL");
        assert_eq!(
            client.exchange_url().as_str(),
            "http://127.0.0.1:9300/ofd/v1/exchange"
        );
        assert!(OfdClient::new("not a url", Duration::from_secs(1)).is_err());
        assert!(OfdClient::new("ftp://host", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn maps_statuses() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("7"));
        assert_eq!(
            status_error(StatusCode::TOO_MANY_REQUESTS, &headers),
            OfdError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let none = header::HeaderMap::new();
        assert_eq!(
            status_error(StatusCode::BAD_GATEWAY, &none),
            OfdError::Server { status: 502 }
        );
        assert_eq!(
            status_error(StatusCode::FORBIDDEN, &none),
            OfdError::Unauthorized { status: 403 }
        );
        assert_eq!(
            status_error(StatusCode::PAYLOAD_TOO_LARGE, &none),
            OfdError::BadRequest { status: 413 }
        );
    }
}
