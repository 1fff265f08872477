//! Admission: turns an AdmissionReview body into a reply in one direction:
//! [`review::parse_review`] parses once, [`Admission::decide`] decides into a
//! plain [`Verdict`], [`review::encode_verdict`] encodes once. Pure apart from
//! the cache and metrics it updates; [`http`] only reads bodies and writes replies.

pub mod cache;
pub mod http;
pub mod registration;
pub mod review;

use crate::admission::cache::{CacheKey, ValidationCache};
use crate::api::{API_VERSION, GROUP, KIND, VERSION};
use crate::defaults::apply_defaults;
use crate::engine::Engine;
use crate::metrics::{CacheLabel, Metrics, OperationLabel};
use crate::policy::{Known, Matched, RoostPolicy, labels_of};
use crate::telemetry::DEBUG_SPAN;
use crate::validation::decode::validate_spec_value_with;
use crate::validation::levels::BUILTIN_LEVELS;
use crate::validation::{Finding, SILENCE_ANNOTATION, ValidationResult, silenced_codes};
use review::{AdmissionRequest, BadReview, Operation, parse_review};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// The webhooks served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Validate,
    Mutate,
    /// Validates RoostPolicy objects.
    ValidatePolicy,
}

impl Webhook {
    pub fn label(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
            Webhook::ValidatePolicy => "validate_policy",
        }
    }

    /// The kind this webhook reviews.
    fn kind(self) -> &'static str {
        match self {
            Webhook::Validate | Webhook::Mutate => KIND,
            Webhook::ValidatePolicy => POLICY_KIND,
        }
    }
}

/// Kind of the policy resource.
pub const POLICY_KIND: &str = "RoostPolicy";

/// URL path of the validating webhook.
pub const VALIDATE_PATH: &str = "/validate-roost-birb-party-v1alpha1-managedroost";
/// URL path of the mutating webhook.
pub const MUTATE_PATH: &str = "/mutate-roost-birb-party-v1alpha1-managedroost";
/// URL path of the RoostPolicy validating webhook.
pub const POLICY_VALIDATE_PATH: &str = "/validate-roost-birb-party-v1alpha1-roostpolicy";

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

/// What was decided about one review, before it is encoded: the plain
/// value between [`Admission::decide`] and [`review::encode_verdict`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub allowed: bool,
    /// Why the object is refused (only when not allowed).
    pub denial: Option<Denial>,
    /// Printed by kubectl, allowed or not.
    pub warnings: Vec<String>,
    /// JSON Patch of the mutating webhook (only when it changes something).
    pub patch: Option<json_patch::Patch>,
}

/// A refused object: a Kubernetes Status with one cause per error.
#[derive(Clone, Debug, PartialEq)]
pub struct Denial {
    pub message: String,
    /// Name of the object, as shown in `details.name`.
    pub name: String,
    /// Its resource (plural), as shown in `details.kind`.
    pub resource: &'static str,
    pub causes: Vec<Cause>,
}

/// One `details.causes` entry: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    pub field: String,
    pub message: String,
}

impl Verdict {
    fn allowed() -> Self {
        Verdict {
            allowed: true,
            ..Verdict::default()
        }
    }
}

/// A request refused before any verdict (not an AdmissionReview, too large,
/// too slow): a non-200 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
    /// The review's uid, when it could be read: the answer is then an AdmissionReview.
    pub uid: Option<String>,
}

impl Refusal {
    pub fn new(status: u16, reason: &'static str, message: String) -> Self {
        Refusal {
            status,
            reason,
            message,
            uid: None,
        }
    }

    /// The answer, encoded once.
    pub fn into_reply(self) -> Reply {
        let body = review::encode_refusal(&self);
        Reply {
            status: self.status,
            body,
            summary: Summary {
                uid: self.uid.unwrap_or_default(),
                operation: "UNKNOWN",
                ..Summary::default()
            },
        }
    }
}

impl From<BadReview> for Refusal {
    fn from(bad: BadReview) -> Self {
        Refusal {
            uid: bad.uid,
            ..Refusal::new(400, "BadRequest", bad.message)
        }
    }
}

/// The admission service: validation cache, metrics and the policies in
/// force, shared by the webhooks.
pub struct Admission {
    cache: ValidationCache,
    metrics: Arc<Metrics>,
    engine: Engine,
}

impl Admission {
    /// With the built-in rules and no policies.
    pub fn new(cache: ValidationCache, metrics: Arc<Metrics>) -> Self {
        Admission::with_engine(cache, metrics, Engine::default())
    }

    /// Judging with `engine`'s rules and the policies it holds at each review.
    pub fn with_engine(cache: ValidationCache, metrics: Arc<Metrics>, engine: Engine) -> Self {
        Admission {
            cache,
            metrics,
            engine,
        }
    }

    /// Answers one AdmissionReview body: parse once, decide, encode once.
    pub fn review(&self, webhook: Webhook, body: &[u8]) -> Reply {
        let decided = parse_review(body).and_then(|request| self.decide(webhook, &request));
        match decided {
            Ok((verdict, summary)) => Reply {
                status: 200,
                body: review::encode_verdict(&summary.uid, &verdict),
                summary,
            },
            Err(bad) => Refusal::from(bad).into_reply(),
        }
    }

    /// The verdict on a parsed review, or why the review cannot be judged.
    pub fn decide(
        &self,
        webhook: Webhook,
        request: &AdmissionRequest,
    ) -> Result<(Verdict, Summary), BadReview> {
        let summary = Summary {
            uid: request.uid.clone(),
            operation: request.operation.as_str(),
            namespace: printable(request.namespace.as_deref().unwrap_or_default()),
            name: printable(&object_name(request)),
            dry_run: request.dry_run.unwrap_or(false),
            allowed: true,
            ..Summary::default()
        };
        if !self.is_ours(request, webhook.kind())
            || matches!(request.operation, Operation::Delete | Operation::Connect)
        {
            return Ok((Verdict::allowed(), summary));
        }
        let (object, old) = reviewed_objects(request)?;
        if webhook == Webhook::ValidatePolicy {
            return Ok(self.judge_policy(object, summary));
        }
        // The object asked for debug logs of its handling (spec.observability.logging.level).
        let _debug = wants_debug(object)
            .then(|| tracing::info_span!(DEBUG_SPAN, uid = %request.uid).entered());
        let policies = &self.engine.policies;
        let set = policies.set();
        let namespace = request
            .namespace
            .as_deref()
            .or_else(|| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
            })
            .unwrap_or_default();
        let matched = if set.is_empty() {
            Matched::default()
        } else {
            set.matching(&policies.namespace_labels(namespace), &labels_of(object))
        };
        Ok(match webhook {
            Webhook::Mutate => mutate(object, &matched, summary),
            _ => self.judge(object, old, &matched, summary),
        })
    }

    /// A RoostPolicy is refused with every problem, as a ManagedRoost is.
    fn judge_policy(&self, object: &Value, mut summary: Summary) -> (Verdict, Summary) {
        let problems = match serde_json::from_value::<RoostPolicy>(object.clone()) {
            Err(err) => vec![Finding {
                code: crate::policy::POLICY_INVALID.to_owned(),
                level: crate::validation::Level::Error,
                field: "spec".to_owned(),
                message: format!(
                    "does not decode as a RoostPolicy: {}",
                    review::describe_json_error(&err)
                ),
            }],
            Ok(policy) => {
                let name = policy.metadata.name.clone().unwrap_or_default();
                let mut taken = self.engine.policies.set().codes();
                taken.retain(|_, owner| *owner != name);
                let known = Known {
                    builtin: BUILTIN_LEVELS,
                    taken: &taken,
                };
                crate::policy::compile(&policy, &known)
                    .err()
                    .unwrap_or_default()
            }
        };
        let result = ValidationResult::from_findings(problems);
        summary.errors = result.errors.len();
        summary.allowed = result.valid;
        (
            validation_verdict(POLICY_KIND, "roostpolicies", &summary, &result),
            summary,
        )
    }

    /// A kind or resource we do not own is allowed (a misregistered webhook
    /// must not block the cluster), and so is a subresource such as status.
    fn is_ours(&self, request: &AdmissionRequest, expected: &str) -> bool {
        let kind = &request.kind;
        let ours = kind.group == GROUP && kind.version == VERSION && kind.kind == expected;
        if !ours {
            tracing::warn!(
                uid = %request.uid,
                group = %printable(&kind.group),
                version = %printable(&kind.version),
                kind = %printable(&kind.kind),
                "asked to review an object that is not a {API_VERSION} {expected}; allowing it (check the webhook's rules)"
            );
        }
        ours && request.sub_resource.as_deref().is_none_or(str::is_empty)
    }

    /// The validating webhook's verdict: every error denies, warnings are listed.
    fn judge(
        &self,
        object: &Value,
        old: Option<&Value>,
        matched: &Matched<'_>,
        mut summary: Summary,
    ) -> (Verdict, Summary) {
        let started = Instant::now();
        let result = if matched.is_empty() {
            self.validate(object.get("spec"), old.and_then(|o| o.get("spec")))
        } else {
            self.validate_with_policies(object, old, matched)
        };
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
        (
            validation_verdict(KIND, "managedroosts", &summary, &result),
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
        let registry = &self.engine.registry;
        self.cached(
            CacheKey::new(registry.fingerprint(), spec, old_spec),
            || validate_spec_value_with(registry, spec, old_spec),
        )
    }

    /// Validates an object with the policies that match it, through the cache.
    fn validate_with_policies(
        &self,
        object: &Value,
        old: Option<&Value>,
        matched: &Matched<'_>,
    ) -> Arc<ValidationResult> {
        let registry = &self.engine.registry;
        let key =
            CacheKey::with_policies(registry.fingerprint(), object, old, matched.fingerprint());
        self.cached(key, || {
            let builtin = validate_spec_value_with(
                registry,
                object.get("spec"),
                old.and_then(|o| o.get("spec")),
            );
            let started = Instant::now();
            let (result, evaluations) = matched.apply(&builtin, object, old);
            self.metrics
                .observe_policies(evaluations, started.elapsed());
            result
        })
    }

    /// A verdict from the cache, or computed and cached, with the metrics of both.
    fn cached(
        &self,
        key: CacheKey,
        validate: impl FnOnce() -> ValidationResult,
    ) -> Arc<ValidationResult> {
        let _span = tracing::debug_span!("api.validate").entered();
        let started = Instant::now();
        let (result, hit) = self.cache.get_or_validate(key, validate);
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

/// The object under review and, on UPDATE, the old one; both must be JSON objects.
fn reviewed_objects(request: &AdmissionRequest) -> Result<(&Value, Option<&Value>), BadReview> {
    let bad = |message: &str| BadReview {
        uid: Some(request.uid.clone()),
        message: message.to_owned(),
    };
    let object = match &request.object {
        Some(object) if object.is_object() => object,
        None => return Err(bad("request.object is missing")),
        Some(_) => return Err(bad("request.object is not a JSON object")),
    };
    let old = match (request.operation, &request.old_object) {
        (Operation::Update, Some(old)) if old.is_object() => Some(old),
        (Operation::Update, _) => {
            return Err(bad(
                "request.oldObject is missing or not an object on UPDATE",
            ));
        }
        _ => None,
    };
    Ok((object, old))
}

/// The mutating webhook's verdict: allowed, with the defaults as a patch:
/// the matching policies' defaults first, then the built-in ones.
fn mutate(object: &Value, matched: &Matched<'_>, mut summary: Summary) -> (Verdict, Summary) {
    let defaulted = if matched.has_defaults() {
        let mut merged = object.clone();
        matched.merge_defaults(&mut merged);
        let defaulted = apply_defaults(&merged);
        crate::defaults::Defaulted {
            patch: json_patch::diff(object, &defaulted.object),
            object: defaulted.object,
        }
    } else {
        apply_defaults(object)
    };
    tracing::debug!(
        patch_operations = defaulted.patch.0.len(),
        "defaults applied"
    );
    let patch = (!defaulted.patch.0.is_empty()).then_some(defaulted.patch);
    summary.mutated = patch.is_some();
    (
        Verdict {
            patch,
            ..Verdict::allowed()
        },
        summary,
    )
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
fn validation_verdict(
    kind: &str,
    resource: &'static str,
    summary: &Summary,
    result: &ValidationResult,
) -> Verdict {
    let warnings = result
        .warnings
        .iter()
        .map(|w| w.as_warning_line())
        .collect();
    if result.valid {
        return Verdict {
            warnings,
            ..Verdict::allowed()
        };
    }
    let count = result.errors.len();
    let listed: Vec<String> = result.errors.iter().map(|e| e.as_warning_line()).collect();
    let shown_name = if summary.namespace.is_empty() {
        summary.name.clone()
    } else {
        format!("{}/{}", summary.namespace, summary.name)
    };
    let message = format!(
        "{kind} {shown_name} has {count} {}: {}",
        if count == 1 { "error" } else { "errors" },
        listed.join("; ")
    );
    let causes = result
        .errors
        .iter()
        .map(|e| Cause {
            field: e.field.clone(),
            message: format!("{} [{}]", e.message, e.code),
        })
        .collect();
    Verdict {
        allowed: false,
        denial: Some(Denial {
            message,
            name: summary.name.clone(),
            resource,
            causes,
        }),
        warnings,
        patch: None,
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
