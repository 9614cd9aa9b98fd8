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
