//! AdmissionReview `admission.k8s.io/v1` in and out. Requests are decoded
//! leniently (the object stays JSON) so that a bad object is a precise answer,
//! not a transport failure.

use kube::core::Status;
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
pub const ADMISSION_KIND: &str = "AdmissionReview";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewEnvelope {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<Value>,
}

/// Group, version and kind (or resource) as the apiserver sends them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

/// The fields of `request` the webhooks use.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub old_object: Option<Value>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Why a body is not a usable AdmissionReview; the uid when it could still be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadReview {
    pub uid: Option<String>,
    pub message: String,
}

/// Decodes an AdmissionReview body. Errors name what is wrong.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest, BadReview> {
    let envelope: ReviewEnvelope = serde_json::from_slice(body).map_err(|e| BadReview {
        uid: scan_uid(body),
        message: format!(
            "body is not a JSON AdmissionReview: {}",
            describe_json_error(&e)
        ),
    })?;
    let bad = |message: String, uid: Option<String>| BadReview { uid, message };
    let request_uid = envelope
        .request
        .as_ref()
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    if envelope.api_version.as_deref() != Some(ADMISSION_API_VERSION)
        || envelope.kind.as_deref() != Some(ADMISSION_KIND)
    {
        return Err(bad(
            format!(
                "expected apiVersion {ADMISSION_API_VERSION} kind {ADMISSION_KIND}, got {} {}",
                envelope.api_version.as_deref().unwrap_or("(none)"),
                envelope.kind.as_deref().unwrap_or("(none)")
            ),
            request_uid,
        ));
    }
    let Some(request) = envelope.request else {
        return Err(bad("AdmissionReview has no request".into(), None));
    };
    if request_uid.is_none() {
        return Err(bad("request.uid is missing or empty".into(), None));
    }
    serde_json::from_value::<AdmissionRequest>(request).map_err(|e| {
        bad(
            format!("request is malformed: {}", describe_json_error(&e)),
            request_uid,
        )
    })
}

/// The parser's message without any quoted input (it could be a secret).
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Eof => format!("truncated at line {} column {}", err.line(), err.column()),
        Category::Syntax => {
            let text = err.to_string();
            let reason = text
                .split(" at line")
                .next()
                .unwrap_or("syntax error")
                .to_owned();
            format!("{reason} at line {} column {}", err.line(), err.column())
        }
        Category::Data => {
            let text = err.to_string();
            match text.split_once("expected ") {
                Some((_, expected)) => format!(
                    "a field has the wrong type: expected {}",
                    expected.split(" at line").next().unwrap_or(expected)
                ),
                None => text
                    .split(" at line")
                    .next()
                    .unwrap_or("wrong data")
                    .to_owned(),
            }
        }
        Category::Io => "unreadable body".to_owned(),
    }
}

/// Finds `request.uid` in a body too broken (or too deep) to decode, so the
/// answer can still carry it: the first `"uid": "..."` after `"request"`.
pub fn scan_uid(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let after_request = &text[text.find("\"request\"")?..];
    let after_key = &after_request[after_request.find("\"uid\"")? + 5..];
    let rest = after_key
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = rest.find('"')?;
    let uid = &rest[..end];
    let plausible = !uid.is_empty()
        && uid.len() <= 128
        && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plausible.then(|| uid.to_owned())
}

/// The `response` of an AdmissionReview. `patch` is base64 JSON Patch, as
/// the apiserver reads a Go `[]byte`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// An allowed answer.
pub fn allowed(uid: &str) -> AdmissionResponse {
    AdmissionResponse {
        uid: uid.to_owned(),
        allowed: true,
        ..AdmissionResponse::default()
    }
}

/// An allowed answer that applies `patch` (RFC 6902).
pub fn allowed_with_patch(uid: &str, patch: &json_patch::Patch) -> AdmissionResponse {
    use base64::Engine;
    let bytes = serde_json::to_vec(patch).unwrap_or_default();
    AdmissionResponse {
        patch: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        patch_type: Some("JSONPatch"),
        ..allowed(uid)
    }
}

/// A refused answer with a Kubernetes Status: code, reason, message and causes.
pub fn denied(
    uid: &str,
    code: u16,
    reason: &str,
    message: String,
    details: Option<StatusDetails>,
) -> AdmissionResponse {
    AdmissionResponse {
        uid: uid.to_owned(),
        allowed: false,
        status: Some(Status {
            status: Some(StatusSummary::Failure),
            code,
            message,
            reason: reason.to_owned(),
            details,
            ..Status::default()
        }),
        ..AdmissionResponse::default()
    }
}

/// One `details.causes` entry.
pub fn cause(field: &str, message: String) -> StatusCause {
    StatusCause {
        reason: "FieldValueInvalid".to_owned(),
        message,
        field: field.to_owned(),
    }
}

/// The response wrapped in an AdmissionReview, as JSON.
pub fn review_json(response: AdmissionResponse) -> Value {
    serde_json::json!({"apiVersion": ADMISSION_API_VERSION, "kind": ADMISSION_KIND, "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_found_in_broken_bodies() {
        assert_eq!(
            scan_uid(br#"{"request": {"uid": "abc-123", "object": [[[["#).as_deref(),
            Some("abc-123")
        );
        assert_eq!(scan_uid(br#"{"uid": "top-level"}"#), None);
        assert_eq!(scan_uid(br#"{"request": {"uid": "has space"}}"#), None);
        assert_eq!(scan_uid(b"\xff\xfe"), None);
    }

    #[test]
    fn precise_errors() {
        let wrong_version = br#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "u"}}"#;
        let err = parse_review(wrong_version).unwrap_err();
        assert_eq!(err.uid.as_deref(), Some("u"));
        assert!(
            err.message.contains("admission.k8s.io/v1beta1"),
            "{}",
            err.message
        );
        let no_request = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#;
        assert_eq!(
            parse_review(no_request).unwrap_err().message,
            "AdmissionReview has no request"
        );
        let bad_operation = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "operation": "PATCH"}}"#;
        let err = parse_review(bad_operation).unwrap_err();
        assert_eq!(err.uid.as_deref(), Some("u"));
        let not_json = b"hello";
        assert!(
            parse_review(not_json)
                .unwrap_err()
                .message
                .contains("line 1 column 1")
        );
    }
}
