//! Reading a request body into a typed request, with a specific error for each way it can be bad.
//!
//! Order of checks: size (from `Content-Length` first, then while reading), emptiness, UTF-8, JSON
//! syntax, then types (serde, with the path of the field at fault as `param`).

use crate::error::ApiError;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::BodyTooLarge { limit })
        }
        Err(_) => Err(ApiError::invalid(
            "the request body could not be read",
            None,
        )),
    }
}

/// Parses a JSON body into `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty; expected a JSON object",
            None,
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::invalid(
            format!(
                "the request body is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            None,
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::invalid(format!("the request body is not valid JSON: {inner}"), None)
            }
            _ => {
                let param = (path != ".").then_some(path);
                let message = match &param {
                    Some(p) => format!("invalid value for `{p}`: {inner}"),
                    None => format!("invalid request body: {inner}"),
                };
                ApiError::invalid(message, param)
            }
        }
    })?;
    de.end()
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}"), None))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_types::openai::ChatCompletionRequest;

    fn err(body: &[u8]) -> (String, Option<String>) {
        match parse_json::<ChatCompletionRequest>(body) {
            Err(ApiError::InvalidRequest { message, param, .. }) => (message, param),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn each_kind_of_bad_body_has_its_message() {
        assert!(err(b"").0.contains("empty"));
        assert!(err(b"{\"model\":").0.contains("not valid JSON"));
        assert!(
            err(b"{\"model\":\"m\",\"messages\":[]} x")
                .0
                .contains("not valid JSON")
        );
        assert!(err(b"{\"model\":\"\xff\"}").0.contains("not valid UTF-8"));
        let (msg, param) = err(br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#);
        assert_eq!(param.as_deref(), Some("messages[0].role"), "{msg}");
        let (msg, param) = err(br#"{"model":"m","messages":[],"max_tokens":"ten"}"#);
        assert_eq!(param.as_deref(), Some("max_tokens"), "{msg}");
        let (msg, _) = err(br#"{"model":"m"}"#);
        assert!(msg.contains("missing field `messages`"), "{msg}");
    }
}
