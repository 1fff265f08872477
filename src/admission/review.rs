//! AdmissionReview `admission.k8s.io/v1` in and out. Requests are decoded
//! leniently (the object stays JSON) so that a bad object is a precise answer,
//! not a transport failure.

use super::{Refusal, Verdict};
use crate::api::GROUP;
use kube::core::Status;
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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
    /// Required: a review that does not say what it reviews cannot be judged as a foreign kind.
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
            crate::text::describe_json_error(&e)
        ),
    })?;
    let bad = |message: String, uid: Option<String>| BadReview { uid, message };
    let request_uid = envelope
        .request
        .as_ref()
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .filter(|u| is_plausible_uid(u))
        .map(str::to_owned);
    if envelope.api_version.as_deref() != Some(ADMISSION_API_VERSION)
        || envelope.kind.as_deref() != Some(ADMISSION_KIND)
    {
        return Err(bad(
            format!(
                "expected apiVersion {ADMISSION_API_VERSION} kind {ADMISSION_KIND}, got {} {}",
                shown_or_none(envelope.api_version.as_deref()),
                shown_or_none(envelope.kind.as_deref())
            ),
            request_uid,
        ));
    }
    let Some(request) = envelope.request else {
        return Err(bad("AdmissionReview has no request".into(), None));
    };
    if request_uid.is_none() {
        return Err(bad(
            format!(
                "request.uid is missing, empty or not a UID (at most {MAX_UID_BYTES} printable ASCII characters)"
            ),
            None,
        ));
    }
    serde_json::from_value::<AdmissionRequest>(request).map_err(|e| {
        bad(
            format!(
                "request is malformed: {}",
                crate::text::describe_json_error(&e)
            ),
            request_uid,
        )
    })
}

/// Longest uid answered: Kubernetes sends UUIDs (36 characters); the uid is
/// echoed in the answer and written in logs, so it must stay short and printable.
pub const MAX_UID_BYTES: usize = 128;

/// 1 to [`MAX_UID_BYTES`] printable ASCII characters, no quotes or backslashes.
pub fn is_plausible_uid(uid: &str) -> bool {
    (1..=MAX_UID_BYTES).contains(&uid.len())
        && uid
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

fn shown_or_none(text: Option<&str>) -> String {
    text.map_or_else(
        || "(none)".to_owned(),
        |t| crate::validation::finding::shown_max(t, 64),
    )
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
    is_plausible_uid(uid).then(|| uid.to_owned())
}

/// The `response` of an AdmissionReview. `patch` is base64 JSON Patch, as
/// the apiserver reads a Go `[]byte`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionResponse<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    /// Recorded by the apiserver in the audit event, each key prefixed with
    /// the webhook's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_annotations: Option<&'a BTreeMap<&'static str, String>>,
}

/// The response wrapped in an AdmissionReview.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: AdmissionResponse<'a>,
}

/// A bare Kubernetes Status (the answer when no uid could be read).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusOut<'a> {
    kind: &'static str,
    api_version: &'static str,
    status: &'static str,
    reason: &'a str,
    code: u16,
    message: &'a str,
}

/// A verdict as the AdmissionReview the apiserver reads, serialized once.
pub fn encode_verdict(uid: &str, verdict: &Verdict) -> Vec<u8> {
    use base64::Engine;
    let status = verdict.denial.as_ref().map(|denial| Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message: denial.message.clone(),
        reason: "Invalid".to_owned(),
        details: Some(StatusDetails {
            name: denial.name.clone(),
            group: GROUP.to_owned(),
            kind: denial.resource.to_owned(),
            causes: denial
                .causes
                .iter()
                .map(|c| StatusCause {
                    reason: "FieldValueInvalid".to_owned(),
                    message: c.message.clone(),
                    field: c.field.clone(),
                })
                .collect(),
            uid: String::new(),
            retry_after_seconds: 0,
        }),
        ..Status::default()
    });
    let patch = verdict
        .patch
        .as_ref()
        .map(|patch| base64::engine::general_purpose::STANDARD.encode(patch.as_bytes()));
    review_json(AdmissionResponse {
        uid,
        allowed: verdict.allowed,
        status,
        patch_type: patch.as_ref().map(|_| "JSONPatch"),
        patch,
        warnings: &verdict.warnings,
        audit_annotations: Some(&verdict.audit_annotations).filter(|a| !a.is_empty()),
    })
}

/// A refusal: an AdmissionReview when the uid is known, else a Kubernetes Status.
pub fn encode_refusal(refusal: &Refusal) -> Vec<u8> {
    let Some(uid) = &refusal.uid else {
        return to_json(&StatusOut {
            kind: "Status",
            api_version: "v1",
            status: "Failure",
            reason: refusal.reason,
            code: refusal.status,
            message: &refusal.message,
        });
    };
    review_json(AdmissionResponse {
        uid,
        allowed: false,
        status: Some(Status {
            status: Some(StatusSummary::Failure),
            code: refusal.status,
            message: refusal.message.clone(),
            reason: refusal.reason.to_owned(),
            ..Status::default()
        }),
        ..AdmissionResponse::default()
    })
}

/// The response wrapped in an AdmissionReview, as JSON bytes.
fn review_json(response: AdmissionResponse<'_>) -> Vec<u8> {
    to_json(&ReviewOut {
        api_version: ADMISSION_API_VERSION,
        kind: ADMISSION_KIND,
        response,
    })
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // These types hold only strings, numbers and booleans: serializing them into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, value);
    out
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
        let long = format!(
            r#"{{"request": {{"uid": "{}", "object": [[["#,
            "a".repeat(129)
        );
        assert_eq!(scan_uid(long.as_bytes()), None);
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
        let envelope = |request: &str| {
            format!(
                r#"{{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {request}}}"#
            )
        };
        let no_kind = envelope(r#"{"uid": "u", "operation": "CREATE"}"#);
        let err = parse_review(no_kind.as_bytes()).unwrap_err();
        assert!(
            err.message.contains("missing field `kind`"),
            "{}",
            err.message
        );
        for uid in [
            "a\nforged log line".to_owned(),
            "x".repeat(129),
            String::new(),
        ] {
            let body = envelope(
                &serde_json::json!({"uid": uid, "operation": "CREATE", "kind": {}}).to_string(),
            );
            let err = parse_review(body.as_bytes()).unwrap_err();
            assert_eq!(err.uid, None, "{uid:?}");
            assert!(
                err.message
                    .starts_with("request.uid is missing, empty or not a UID"),
                "{}",
                err.message
            );
        }
        let huge_kind = format!(
            r#"{{"apiVersion": "v1", "kind": "{}"}}"#,
            "K".repeat(100_000)
        );
        assert!(
            parse_review(huge_kind.as_bytes())
                .unwrap_err()
                .message
                .len()
                < 300
        );
        let not_json = b"hello";
        assert!(
            parse_review(not_json)
                .unwrap_err()
                .message
                .contains("line 1 column 1")
        );
    }
}
