//! The wire shapes of the peer protocol: one JSON request per line on stdin,
//! one JSON response per line on stdout (see `docs/peer-protocol.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One request.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// Echoed in the response; any JSON value.
    #[serde(default)]
    pub id: Value,
    /// The operation.
    pub op: String,
    /// Its arguments (an object; absent means `{}`).
    #[serde(default)]
    pub args: Value,
}

/// An error answer's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable kind, e.g. `unknown_op`, `invalid_argument`.
    pub kind: String,
    /// One line for a person.
    pub message: String,
}

/// One response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (null when the request could not be read).
    pub id: Value,
    /// Whether the op succeeded.
    pub ok: bool,
    /// The op's result, when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// What went wrong, when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// A success.
    pub fn success(id: Value, result: Value) -> Response {
        Response {
            id,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn failure(id: Value, kind: &str, message: impl Into<String>) -> Response {
        Response {
            id,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                kind: kind.to_owned(),
                message: message.into(),
            }),
        }
    }
}

/// Reads one line into a request, or the error response to send instead.
pub fn parse_line(line: &str) -> Result<Request, Response> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        Response::failure(Value::Null, "bad_request", format!("line is not JSON: {e}"))
    })?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| {
        Response::failure(
            id,
            "bad_request",
            format!("expected {{\"id\": …, \"op\": \"…\", \"args\": {{…}}}}: {e}"),
        )
    })
}

/// Reads one raw line (its line ending removed) into a request, or the error
/// response to send instead.
///
/// Bytes that are not UTF-8 are a bad request like any other unreadable
/// line: answered with a null id (nothing in them can be trusted as the id),
/// and the peer keeps serving the lines after it.
pub fn parse_bytes(line: &[u8]) -> Result<Request, Response> {
    let text = std::str::from_utf8(line).map_err(|e| {
        Response::failure(
            Value::Null,
            "bad_request",
            format!("line is not valid utf-8: {e}"),
        )
    })?;
    parse_line(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error_of(response: &Response) -> (&Value, &str, &str) {
        let error = response.error.as_ref().expect("an error response");
        (&response.id, error.kind.as_str(), error.message.as_str())
    }

    #[test]
    fn a_line_that_is_not_utf8_is_a_bad_request_with_a_null_id() {
        let response = parse_bytes(b"{\"id\": 3, \"op\": \"hello\xff\"}").unwrap_err();
        let (id, kind, message) = error_of(&response);
        assert_eq!(id, &Value::Null);
        assert_eq!(kind, "bad_request");
        assert!(message.contains("not valid utf-8"), "{message}");
        assert!(!response.ok);
    }

    #[test]
    fn utf8_bytes_parse_as_the_text_would() {
        let request = parse_bytes("{\"id\": \"é\", \"op\": \"hello\"}".as_bytes()).unwrap();
        assert_eq!(request.id, json!("é"));
        assert_eq!(request.op, "hello");
        let response = parse_bytes(b"{\"id\": 4}").unwrap_err();
        let (id, kind, _) = error_of(&response);
        assert_eq!((id, kind), (&json!(4), "bad_request"));
    }
}
