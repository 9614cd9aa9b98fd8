//! Reading uploaded files from a request body, the way Kubo's RPC takes them.
//!
//! Kubo expects `multipart/form-data` with one part per file (`curl -F
//! file=@x`); simpler clients just POST the bytes. [`read_uploads`] accepts
//! both: every multipart part is a file, and any other body is one file.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;

/// Why the uploaded files could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    /// The multipart envelope is malformed.
    #[error("cannot read multipart body: {}", .0.body_text())]
    MultipartHeader(#[from] MultipartRejection),
    /// A multipart part could not be read (malformed, or over the limit).
    #[error("cannot read multipart part: {}", .0.body_text())]
    MultipartPart(#[from] MultipartError),
    /// The raw body could not be read (over the limit, or cut short).
    #[error("cannot read request body: {}", .0.body_text())]
    Body(#[from] BytesRejection),
}

impl UploadError {
    /// The status axum would give this failure (413 for an oversize body).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UploadError::MultipartHeader(e) => e.status(),
            UploadError::MultipartPart(e) => e.status(),
            UploadError::Body(e) => e.status(),
        }
    }
}

/// Every file in the request: each multipart part, or the whole raw body.
pub(crate) async fn read_uploads(request: Request) -> Result<Vec<Bytes>, UploadError> {
    let is_multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Ok(vec![Bytes::from_request(request, &()).await?]);
    }
    let mut multipart = Multipart::from_request(request, &()).await?;
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        files.push(field.bytes().await?);
    }
    Ok(files)
}
