//! Admission: turns an AdmissionReview body into a verdict. Pure apart from
//! the cache and metrics it updates; the HTTP layer (`crate::server`) only
//! reads bodies and writes replies.

pub mod cache;
pub mod registration;
pub mod review;

use crate::admission::cache::{CacheKey, ValidationCache};
use crate::api::{API_VERSION, GROUP, KIND, VERSION};
use crate::defaults::apply_defaults;
use crate::metrics::{CacheLabel, Metrics, OperationLabel};
use crate::telemetry::DEBUG_SPAN;
use crate::validation::decode::validate_spec_value;
use crate::validation::{SILENCE_ANNOTATION, ValidationResult, silenced_codes};
use review::{AdmissionRequest, BadReview, Operation, cause, denied, parse_review, review_json};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The two webhooks served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Validate,
    Mutate,
}

impl Webhook {
    pub fn label(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

/// URL path of the validating webhook.
pub const VALIDATE_PATH: &str = "/validate-roost-birb-party-v1alpha1-managedroost";
/// URL path of the mutating webhook.
pub const MUTATE_PATH: &str = "/mutate-roost-birb-party-v1alpha1-managedroost";

/// What the transport sends back, and what the logs and metrics record.
#[derive(Debug)]
pub struct Reply {
    /// 200 for every verdict; 400 only for a body that is not a usable AdmissionReview.
    pub status: u16,
    pub body: Value,
    pub summary: Summary,
}

/// Facts about one review for spans and metrics (no secrets, no object bodies).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub uid: String,
    pub operation: &'static str,
    pub namespace: String,
    pub name: String,
    pub allowed: bool,
    pub mutated: bool,
    pub errors: usize,
    pub warnings: usize,
    pub dry_run: bool,
}

/// The admission service: validation cache and metrics, shared by both webhooks.
pub struct Admission {
    cache: ValidationCache,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(cache: ValidationCache, metrics: Arc<Metrics>) -> Self {
        Admission { cache, metrics }
    }

    /// Answers one AdmissionReview body.
    pub fn review(&self, webhook: Webhook, body: &[u8]) -> Reply {
        let request = match parse_review(body) {
            Ok(request) => request,
            Err(bad) => return bad_request(bad),
        };
        let mut summary = Summary {
            uid: request.uid.clone(),
            operation: request.operation.as_str(),
            namespace: printable(request.namespace.as_deref().unwrap_or_default()),
            name: printable(&object_name(&request)),
            dry_run: request.dry_run.unwrap_or(false),
            allowed: true,
            ..Summary::default()
        };
        if !self.is_ours(&request)
            || matches!(request.operation, Operation::Delete | Operation::Connect)
        {
            return verdict(review::allowed(&request.uid), summary);
        }
        let Some(object) = request.object.as_ref().filter(|o| o.is_object()) else {
            let message = match &request.object {
                None => "request.object is missing".to_owned(),
                Some(_) => "request.object is not a JSON object".to_owned(),
            };
            return bad_request(BadReview {
                uid: Some(request.uid.clone()),
                message,
            });
        };
        let old = match (request.operation, &request.old_object) {
            (Operation::Update, Some(old)) if old.is_object() => Some(old),
            (Operation::Update, _) => {
                let message = "request.oldObject is missing or not an object on UPDATE".to_owned();
                return bad_request(BadReview {
                    uid: Some(request.uid.clone()),
                    message,
                });
            }
            _ => None,
        };
        // The object asked for debug logs of its handling (spec.observability.logging.level).
        let _debug = wants_debug(object)
            .then(|| tracing::info_span!(DEBUG_SPAN, uid = %request.uid).entered());
        match webhook {
            Webhook::Mutate => self.mutate(&request, object, summary),
            Webhook::Validate => {
                let started = Instant::now();
                let result = self.validate(object.get("spec"), old.and_then(|o| o.get("spec")));
                let silence = silenced_codes(
                    object
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(SILENCE_ANNOTATION))
                        .and_then(Value::as_str),
                );
                let result = if silence.is_empty() {
                    result
                } else {
                    Arc::new(result.silenced(&silence))
                };
                let findings: Vec<String> = result.all().map(|f| f.as_warning_line()).collect();
                tracing::debug!(
                    valid = result.valid,
                    ?findings,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "validated"
                );
                summary.errors = result.errors.len();
                summary.warnings = result.warnings.len();
                summary.allowed = result.valid;
                verdict(
                    validation_response(&request.uid, &summary, &result),
                    summary,
                )
            }
        }
    }

    /// A kind or resource we do not own is allowed (a misregistered webhook
    /// must not block the cluster), and so is a subresource such as status.
    fn is_ours(&self, request: &AdmissionRequest) -> bool {
        let kind = &request.kind;
        let ours = kind.group == GROUP && kind.version == VERSION && kind.kind == KIND;
        if !ours {
            tracing::warn!(
                uid = %request.uid,
                group = %printable(&kind.group),
                version = %printable(&kind.version),
                kind = %printable(&kind.kind),
                "asked to review an object that is not a {API_VERSION} {KIND}; allowing it (check the webhook's rules)"
            );
        }
        ours && request.sub_resource.as_deref().is_none_or(str::is_empty)
    }

    fn mutate(&self, request: &AdmissionRequest, object: &Value, mut summary: Summary) -> Reply {
        let defaulted = apply_defaults(object);
        tracing::debug!(
            patch_operations = defaulted.patch.0.len(),
            "defaults applied"
        );
        if defaulted.patch.0.is_empty() {
            return verdict(review::allowed(&request.uid), summary);
        }
        summary.mutated = true;
        verdict(
            review::allowed_with_patch(&request.uid, &defaulted.patch),
            summary,
        )
    }

    /// Brings the cache size gauge up to date (called when metrics are scraped).
    pub fn record_cache_size(&self) {
        let size = i64::try_from(self.cache.len()).unwrap_or(i64::MAX);
        self.metrics
            .cache_size
            .get_or_create(&CacheLabel {
                cache: "validation",
            })
            .set(size);
    }

    /// Validates a spec (and the old spec on UPDATE) through the cache.
    pub fn validate(
        &self,
        spec: Option<&Value>,
        old_spec: Option<&Value>,
    ) -> Arc<ValidationResult> {
        let _span = tracing::debug_span!("api.validate").entered();
        let started = Instant::now();
        let key = CacheKey::new(spec, old_spec);
        let (result, hit) = self
            .cache
            .get_or_validate(key, || validate_spec_value(spec, old_spec));
        let label = CacheLabel {
            cache: "validation",
        };
        if hit {
            self.metrics.cache_hits.get_or_create(&label).inc();
        } else {
            self.metrics.cache_misses.get_or_create(&label).inc();
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.validation_operations.inc();
        if !result.valid {
            self.metrics.validation_failures.inc();
        }
        self.metrics.validation_duration.observe(elapsed);
        self.metrics
            .operation_duration
            .get_or_create(&OperationLabel {
                operation: "validate",
            })
            .observe(elapsed);
        result
    }
}

/// Longest name, namespace or kind written in a reply or a log line
/// (Kubernetes names have at most 253 characters).
const MAX_SHOWN_NAME_CHARS: usize = 253;

/// `text` safe for a log line or a message: control characters escaped
/// (a newline cannot forge a log line), cut to [`MAX_SHOWN_NAME_CHARS`].
fn printable(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHOWN_NAME_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the object asked for debug logs of its handling.
fn wants_debug(object: &Value) -> bool {
    object
        .pointer("/spec/observability/logging/level")
        .and_then(Value::as_str)
        == Some("debug")
}

fn object_name(request: &AdmissionRequest) -> String {
    let metadata = request.object.as_ref().and_then(|o| o.get("metadata"));
    let text = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    text("name")
        .map(str::to_owned)
        .or_else(|| request.name.clone().filter(|n| !n.is_empty()))
        .or_else(|| text("generateName").map(|g| format!("{g}*")))
        .unwrap_or_else(|| "(unnamed)".to_owned())
}

/// Warnings as kubectl prints them; on errors, one denial listing every error.
fn validation_response(
    uid: &str,
    summary: &Summary,
    result: &ValidationResult,
) -> review::AdmissionResponse {
    let warnings: Vec<String> = result
        .warnings
        .iter()
        .map(|w| w.as_warning_line())
        .collect();
    let mut response = if result.valid {
        review::allowed(uid)
    } else {
        let count = result.errors.len();
        let listed: Vec<String> = result.errors.iter().map(|e| e.as_warning_line()).collect();
        let message = format!(
            "{KIND} {}/{} has {count} {}: {}",
            summary.namespace,
            summary.name,
            if count == 1 { "error" } else { "errors" },
            listed.join("; ")
        );
        let details = kube::core::response::StatusDetails {
            name: summary.name.clone(),
            group: GROUP.to_owned(),
            kind: "managedroosts".to_owned(),
            causes: result
                .errors
                .iter()
                .map(|e| cause(&e.field, format!("{} [{}]", e.message, e.code)))
                .collect(),
            uid: String::new(),
            retry_after_seconds: 0,
        };
        denied(uid, 422, "Invalid", message, Some(details))
    };
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

fn verdict(response: review::AdmissionResponse, summary: Summary) -> Reply {
    Reply {
        status: 200,
        body: review_json(response),
        summary,
    }
}

/// A body that is not a usable AdmissionReview: 400, with an AdmissionReview
/// when the uid could be read, else a Kubernetes Status.
pub fn bad_request(bad: BadReview) -> Reply {
    transport_refusal(400, "BadRequest", bad.message, bad.uid)
}

/// A reply for a transport-level refusal (too large, too slow), in the same shape.
pub fn transport_refusal(status: u16, reason: &str, message: String, uid: Option<String>) -> Reply {
    let body = match &uid {
        Some(uid) => review_json(denied(uid, status, reason, message.clone(), None)),
        None => {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": status, "message": message})
        }
    };
    Reply {
        status,
        body,
        summary: Summary {
            uid: uid.unwrap_or_default(),
            operation: "UNKNOWN",
            ..Summary::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_characters_and_cuts_long_text() {
        assert_eq!(printable("web\nINFO forged"), "web\\nINFO forged");
        assert_eq!(printable("a\u{1b}[31m"), "a\\u{1b}[31m");
        let long = printable(&"n".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_SHOWN_NAME_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
