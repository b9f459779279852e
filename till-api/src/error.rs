//! The error body of every till route: `{"error", "message", "field"?, "retry_after_seconds"?,
//! "correlation_id"}`. `error` is the stable machine code the page switches on.

use serde::{Deserialize, Serialize};

/// The error body of every till route. Read leniently (`#[serde(default)]`): the page must
/// make sense of any refusal, even one without a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// Stable machine code (`wrong_pin`, `session_already_open`, …).
    pub error: String,
    /// Human text for support (English; the page shows its own text per code).
    pub message: String,
    /// The request field to blame (`items[0].price`), if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (rate limits, refunds waiting for their original).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Also in the `x-correlation-id` header and in the till's log line with the details.
    pub correlation_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_their_optional_parts() {
        let limited: ErrorBody =
            serde_json::from_str(r#"{"error": "too_many_attempts", "retry_after_seconds": 30}"#)
                .expect("parses");
        assert_eq!(limited.error, "too_many_attempts");
        assert_eq!(limited.retry_after_seconds, Some(30));
        let wrong: ErrorBody = serde_json::from_str(
            r#"{"error": "wrong_pin", "message": "Неверный PIN", "correlation_id": "x"}"#,
        )
        .expect("parses");
        assert_eq!(wrong.message, "Неверный PIN");
        assert_eq!(wrong.field, None);
    }

    #[test]
    fn absent_parts_are_left_out_of_the_body() {
        let body = ErrorBody {
            error: "not_found".to_owned(),
            message: "No such route on this till.".to_owned(),
            field: None,
            retry_after_seconds: None,
            correlation_id: "c".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"error":"not_found","message":"No such route on this till.","correlation_id":"c"}"#
        );
    }
}
