//! Request bodies: JSON parsing with field paths in errors, the canonical form used to
//! compare retried requests, and the `Idempotency-Key` header.
//!
//! Two steps, two statuses: bytes that are not JSON get 400 (`invalid_json`); JSON that does not
//! fit the expected shape gets 422 (`invalid_field`) naming the field as a path into the body
//! (`items[0].price`), found with `serde_path_to_error`. A retried request is "the same" when its
//! canonical JSON (object keys sorted, no whitespace) hashes to the same SHA-256, so key order
//! and spacing of the client's serializer do not matter.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::node::IdempotencyRequest;

/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest accepted idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// The body as JSON; an empty body is `null` when `allow_empty`.
pub fn json_value(
    body: Result<Bytes, BytesRejection>,
    allow_empty: bool,
) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is larger than this route accepts.",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "The request body could not be read.",
            )
            .with_internal(rejection.body_text())
        }
    })?;
    if allow_empty && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("The body is not valid JSON: {error}"),
        )
    })
}

/// Deserializes `value` into `T`, naming the offending field on failure (422).
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    // serde would read an array as a struct's fields in order; every body here is an object.
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "The body must be a JSON object.",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let message = error.inner().to_string();
        let path = error.path().to_string();
        let field = field_path(&path, &message);
        let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
        match field {
            Some(field) => error.with_field(field),
            None => error,
        }
    })
}

/// The path of the offending field: serde reports a missing or unknown field by the path of
/// its parent plus the name in the message (`missing field `qty``).
fn field_path(path: &str, message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    let parent = (path != ".").then_some(path);
    match (parent, named) {
        (Some(parent), Some(name)) => Some(format!("{parent}.{name}")),
        (None, Some(name)) => Some(name.to_owned()),
        (Some(parent), None) => Some(parent.to_owned()),
        (None, None) => None,
    }
}

/// Canonical JSON text: object keys sorted, no insignificant whitespace. Written out rather
/// than relying on `serde_json::Map` order, which a dependency's `preserve_order` feature would
/// change for the whole build.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// SHA-256 of the canonical JSON of `value`.
pub fn canonical_sha256(value: &Value) -> [u8; 32] {
    Sha256::digest(canonical_json(value).as_bytes()).into()
}

/// The idempotency key of the request, if any; 400 when `required` and absent, or malformed.
pub fn idempotency(
    headers: &HeaderMap,
    body: &Value,
    required: bool,
) -> Result<Option<IdempotencyRequest>, ApiError> {
    let Some(raw) = headers.get(IDEMPOTENCY_HEADER) else {
        if required {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_idempotency_key",
                "The Idempotency-Key header is required on this route.",
            ));
        }
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| {
            !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                format!(
                    "The Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters."
                ),
            )
        })?;
    Ok(Some(IdempotencyRequest {
        key: key.to_owned(),
        request_sha256: canonical_sha256(body),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order_and_spacing() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "я"}}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"a":{"x":"я","y":[1,2]},"b":1}"#).expect("json");
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"я","y":[1,2]},"b":1}"#);
        assert_eq!(canonical_sha256(&a), canonical_sha256(&b));
        assert_ne!(canonical_sha256(&a), canonical_sha256(&json!({"b": 2})));
    }

    #[test]
    fn field_paths_name_the_field() {
        assert_eq!(
            field_path("items[0]", "missing field `qty`").as_deref(),
            Some("items[0].qty")
        );
        assert_eq!(
            field_path(".", "missing field `pos_id`").as_deref(),
            Some("pos_id")
        );
        assert_eq!(
            field_path("items[0].price", "invalid type: string \"x\", expected i64").as_deref(),
            Some("items[0].price")
        );
        assert_eq!(field_path(".", "invalid type: sequence"), None);
    }
}
