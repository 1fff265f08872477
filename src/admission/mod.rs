//! Admission: turns an AdmissionReview body into a reply in one direction:
//! [`review::parse_review`] parses once, [`Admission::decide`] decides into a
//! plain [`Verdict`], [`review::encode_verdict`] encodes once. Pure apart from
//! the cache and metrics it updates; [`http`] only reads bodies and writes replies.

pub use crate::cache;
pub mod audit;
pub mod conversion;
pub mod http;
pub mod registration;
pub mod review;
pub mod view;

use crate::api::convert::{converted, spec_to_hub};
use crate::api::roost_policy_exception::RoostPolicyException;
use crate::api::{ApiVersion, EXCEPTION_KIND, GROUP, KIND};
use crate::cache::{
    CacheKey, DEFAULTS_CACHE_BYTES, Defaults, DefaultsCache, KeyPurpose, VALIDATION_TTL,
    ValidationCache,
};
use crate::engine::{Case, Engine, PolicyCase, defaulted};
use crate::metrics::{CacheLabel, Metrics, OperationLabel};
use crate::policy::exception::{CompiledException, MAX_EXCEPTIONS_IN_FORCE};
use crate::policy::{Known, Matched, RoostPolicy, labels_in, labels_of};
use crate::telemetry::{DEBUG_SPAN, DebugObject};
use crate::validation::decode::decode_spec;
use crate::validation::{Finding, SILENCE_ANNOTATION, ValidationResult};
use k8s_openapi::jiff::Timestamp;
use review::{AdmissionRequest, BadReview, Operation, parse_review};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use view::{ObjectParts, RequestView};

/// The webhooks served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Validate,
    Mutate,
    /// Validates RoostPolicy objects.
    ValidatePolicy,
    /// Validates RoostPolicyException objects.
    ValidateException,
}

impl Webhook {
    pub fn label(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
            Webhook::ValidatePolicy => "validate_policy",
            Webhook::ValidateException => "validate_exception",
        }
    }

    /// The kind this webhook reviews.
    fn kind(self) -> &'static str {
        match self {
            Webhook::Validate | Webhook::Mutate => KIND,
            Webhook::ValidatePolicy => POLICY_KIND,
            Webhook::ValidateException => EXCEPTION_KIND,
        }
    }
}

pub use crate::api::POLICY_KIND;

/// URL path of the validating webhook.
pub const VALIDATE_PATH: &str = "/validate-roost-birb-party-v1alpha1-managedroost";
/// URL path of the mutating webhook.
pub const MUTATE_PATH: &str = "/mutate-roost-birb-party-v1alpha1-managedroost";
/// URL path of the RoostPolicy validating webhook.
pub const POLICY_VALIDATE_PATH: &str = "/validate-roost-birb-party-v1alpha1-roostpolicy";
/// URL path of the RoostPolicyException validating webhook.
pub const EXCEPTION_VALIDATE_PATH: &str =
    "/validate-roost-birb-party-v1alpha1-roostpolicyexception";

/// What the transport sends back, and what the logs and metrics record.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// 200 for every verdict; 400 only for a body that is not a usable AdmissionReview.
    pub status: u16,
    /// The answer's JSON.
    pub body: Vec<u8>,
    pub summary: Summary,
}

/// Facts about one review for spans and metrics (no secrets, no object bodies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// JSON Patch (its JSON text) of the mutating webhook, only when it changes something.
    pub patch: Option<Arc<str>>,
    /// `auditAnnotations`: the codes that refused, warned, were audited or
    /// exempted, by [`audit`] key; empty for an object admitted with nothing to say.
    pub audit_annotations: BTreeMap<&'static str, String>,
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
    /// Allowed, with nothing to say.
    pub fn allowed() -> Self {
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

/// Answers AdmissionReview bodies for the webhook routes: [`Admission`], or
/// another answerer (the load benchmark's baseline judges nothing).
pub trait Reviewer: Send + Sync {
    fn review(&self, webhook: Webhook, body: &[u8]) -> Reply;

    /// Whether a review for `webhook` may now run rules whose cost the
    /// server does not bound itself (administrators' CEL rules): the
    /// webhooks then review on a blocking thread, with a deadline, rather
    /// than on the async workers. The default, false, keeps a reviewer's
    /// reviews inline.
    fn may_run_policies(&self, webhook: Webhook) -> bool {
        let _ = webhook;
        false
    }
}

impl Reviewer for Admission {
    fn review(&self, webhook: Webhook, body: &[u8]) -> Reply {
        Admission::review(self, webhook, body)
    }

    /// Only the validating webhook runs custom rules (the mutating one
    /// merges defaults), and only when a policy in force has any.
    fn may_run_policies(&self, webhook: Webhook) -> bool {
        webhook == Webhook::Validate && self.engine.policies.has_rules()
    }
}

/// The facts about a review that every verdict needs, from either reading.
struct Facts<'a> {
    uid: &'a str,
    kind: (&'a str, &'a str, &'a str),
    sub_resource: Option<&'a str>,
    operation: Operation,
    namespace: Option<&'a str>,
}

/// What a review is, before any verdict.
enum Triage {
    /// Ours to judge: a ManagedRoost (of the version sent) or RoostPolicy
    /// created or updated.
    Judge(Summary, ApiVersion),
    /// Allowed as it is: a foreign kind, a subresource, DELETE or CONNECT.
    Pass(Summary),
}

/// The admission service: verdict and patch caches, metrics and the
/// policies in force, shared by the webhooks.
pub struct Admission {
    cache: ValidationCache,
    defaults: DefaultsCache,
    metrics: Arc<Metrics>,
    engine: Engine,
    /// The time each verdict is formed at (exceptions expire by it).
    clock: Clock,
}

/// Where [`Admission`] reads the time: the system clock, or a test's.
type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

impl Admission {
    /// With the built-in rules and no policies.
    pub fn new(cache: ValidationCache, metrics: Arc<Metrics>) -> Self {
        Admission::with_engine(cache, metrics, Engine::default())
    }

    /// Judging with `engine`'s rules and the policies it holds at each review.
    pub fn with_engine(cache: ValidationCache, metrics: Arc<Metrics>, engine: Engine) -> Self {
        Admission {
            cache,
            defaults: DefaultsCache::new(DEFAULTS_CACHE_BYTES, VALIDATION_TTL),
            metrics,
            engine,
            clock: Arc::new(Timestamp::now),
        }
    }

    /// Judging at the times `clock` gives rather than the system clock's.
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Answers one AdmissionReview body: read once (the borrowed view, or
    /// the full decode when the view cannot), decide, encode once.
    pub fn review(&self, webhook: Webhook, body: &[u8]) -> Reply {
        let quick = match webhook {
            Webhook::Validate | Webhook::Mutate => {
                view::read(body).and_then(|request| self.decide_view(webhook, body, &request))
            }
            Webhook::ValidatePolicy | Webhook::ValidateException => None,
        };
        match quick {
            Some((verdict, summary)) => Reply {
                status: 200,
                body: review::encode_verdict(&summary.uid, &verdict),
                summary,
            },
            None => self.review_decoded(webhook, body),
        }
    }

    /// Answers one AdmissionReview body from its full decode: what
    /// [`Admission::review`] falls back to, and the reference its quick path
    /// must agree with.
    pub fn review_decoded(&self, webhook: Webhook, body: &[u8]) -> Reply {
        match parse_review(body).and_then(|request| self.decide(webhook, &request)) {
            Ok((verdict, summary)) => Reply {
                status: 200,
                body: review::encode_verdict(&summary.uid, &verdict),
                summary,
            },
            Err(bad) => Refusal::from(bad).into_reply(),
        }
    }

    /// The summary of a review, and whether the webhook judges it.
    fn triage(&self, webhook: Webhook, facts: &Facts<'_>, name: String, dry_run: bool) -> Triage {
        let summary = Summary {
            uid: facts.uid.to_owned(),
            operation: facts.operation.as_str(),
            namespace: shown(facts.namespace.unwrap_or_default()),
            name: shown(&name),
            dry_run,
            allowed: true,
            ..Summary::default()
        };
        match self.our_version(facts, webhook) {
            Some(version) if !matches!(facts.operation, Operation::Delete | Operation::Connect) => {
                Triage::Judge(summary, version)
            }
            _ => Triage::Pass(summary),
        }
    }

    /// The verdict on a parsed review, or why the review cannot be judged.
    pub fn decide(
        &self,
        webhook: Webhook,
        request: &AdmissionRequest,
    ) -> Result<(Verdict, Summary), BadReview> {
        let facts = Facts {
            uid: &request.uid,
            kind: (
                &request.kind.group,
                &request.kind.version,
                &request.kind.kind,
            ),
            sub_resource: request.sub_resource.as_deref(),
            operation: request.operation,
            namespace: request.namespace.as_deref(),
        };
        let dry_run = request.dry_run.unwrap_or(false);
        let (summary, version) = match self.triage(webhook, &facts, object_name(request), dry_run) {
            Triage::Judge(summary, version) => (summary, version),
            Triage::Pass(summary) => return Ok((Verdict::allowed(), summary)),
        };
        let (object, old) = reviewed_objects(request)?;
        match webhook {
            Webhook::ValidatePolicy => return Ok(self.judge_policy(object, summary)),
            Webhook::ValidateException => return Ok(self.judge_exception(object, summary)),
            Webhook::Validate | Webhook::Mutate => {}
        }
        // The object asked for debug logs of its handling (spec.observability.logging.level).
        let _debug = wants_debug(object.get("spec")).then(|| debug_scope(&request.uid));
        let matched = if self.engine.has_policies() {
            let namespace = request
                .namespace
                .as_deref()
                .or_else(|| {
                    object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                })
                .unwrap_or_default();
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .or(request.name.as_deref())
                .unwrap_or_default();
            self.engine.matching(namespace, name, &labels_of(object))
        } else {
            Matched::default()
        };
        if webhook == Webhook::Mutate {
            let defaults = mutate(object, version, &matched);
            self.count_defaults(false);
            return Ok(defaults_verdict(defaults, summary));
        }
        let silence = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SILENCE_ANNOTATION))
            .and_then(Value::as_str);
        // The rules read the hub; the verdict depends on the spec there.
        let hub = converted(object, version, ApiVersion::V1alpha1);
        let hub_old = old.map(|old| converted(old, version, ApiVersion::V1alpha1));
        let (spec, old_spec) = (
            hub.get("spec"),
            hub_old.as_ref().and_then(|o| o.get("spec")),
        );
        let rules = self.engine.registry.fingerprint();
        let now = (self.clock)();
        let key = if matched.is_empty() {
            CacheKey::new(rules, version, spec, old_spec, silence)
        } else {
            CacheKey::with_policies(rules, version, object, old, matched.fingerprint())
        };
        let policies = (!matched.is_empty()).then_some(PolicyCase {
            matched: &matched,
            object,
            old_object: old,
        });
        // The closure always gives a verdict.
        let result = self
            .cached(cacheable(key, &matched, now), || {
                Some(self.judge(version, spec, old_spec, policies, silence, now))
            })
            .unwrap_or_default();
        Ok(self.judged(result, summary))
    }

    /// The verdict from the borrowed view, reading only what the cache key
    /// needs; `None` when only the full decode can answer (it then gives
    /// the precise error, or reads what the view leaves out).
    fn decide_view(
        &self,
        webhook: Webhook,
        body: &[u8],
        request: &RequestView<'_>,
    ) -> Option<(Verdict, Summary)> {
        let object = request.object.as_ref().map(|o| &o.0);
        let metadata = object.and_then(|o| o.metadata.as_ref());
        let facts = Facts {
            uid: &request.uid,
            kind: (
                &request.kind.group,
                &request.kind.version,
                &request.kind.kind,
            ),
            sub_resource: request.sub_resource.as_deref(),
            operation: request.operation,
            namespace: request.namespace.as_deref(),
        };
        let name = shown_name(
            metadata.and_then(|m| m.name.as_deref()),
            request.name.as_deref(),
            metadata.and_then(|m| m.generate_name.as_deref()),
        );
        let dry_run = request.dry_run.unwrap_or(false);
        let (summary, version) = match self.triage(webhook, &facts, name, dry_run) {
            Triage::Judge(summary, version) => (summary, version),
            Triage::Pass(summary) => return Some((Verdict::allowed(), summary)),
        };
        let object = object?;
        let old = match request.operation {
            Operation::Update => Some(&request.old_object.as_ref()?.0),
            _ => None,
        };
        let _debug = wants_debug_raw(object.spec).then(|| debug_scope(&request.uid));
        let matched = if self.engine.has_policies() {
            let namespace = request
                .namespace
                .as_deref()
                .or_else(|| metadata.and_then(|m| m.namespace.as_deref()))
                .unwrap_or_default();
            let labels = match metadata.and_then(|m| m.labels) {
                Some(raw) => labels_in(Some(&serde_json::from_str(raw.get()).ok()?)),
                None => labels_in(None),
            };
            let name = metadata
                .and_then(|m| m.name.as_deref())
                .or(request.name.as_deref())
                .unwrap_or_default();
            self.engine.matching(namespace, name, &labels)
        } else {
            Matched::default()
        };
        // The raw objects, read (a second pass over the body) at most once, and
        // only with policies in force or to compute defaults.
        let raw_objects = std::cell::OnceCell::new();
        let raw_objects = || raw_objects.get_or_init(|| view::raw_objects(body)).as_ref();
        // The whole objects, decoded.
        let whole = || -> Option<(Value, Option<Value>)> {
            let raw = raw_objects()?;
            let object = serde_json::from_str(raw.object?.get()).ok()?;
            let old = match old {
                Some(_) => Some(serde_json::from_str(raw.old_object?.get()).ok()?),
                None => None,
            };
            Some((object, old))
        };
        let spec = object.spec.map(RawValue::get);
        // Outside the hub, the version and the conversion data a spec is
        // converted with are part of every key (an object may omit its
        // apiVersion); in the hub both parts are absent.
        let tag = (version != ApiVersion::V1alpha1).then(|| version.name());
        let conversion = conversion_data(object, version);
        if webhook == Webhook::Mutate {
            let key = match (matched.has_defaults(), metadata) {
                (true, _) => CacheKey::of_bytes(
                    KeyPurpose::DefaultsWithPolicies,
                    0,
                    matched.fingerprint(),
                    &[tag, raw_objects()?.object.map(RawValue::get)],
                ),
                (false, Some(metadata)) => CacheKey::of_bytes(
                    KeyPurpose::Defaults,
                    0,
                    0,
                    &[tag, conversion, spec, metadata.labels.map(RawValue::get)],
                ),
                (false, None) => {
                    CacheKey::of_bytes(KeyPurpose::DefaultsWithoutMetadata, 0, 0, &[tag, spec])
                }
            };
            let (defaults, hit) = self
                .defaults
                .get_or_compute(key, || Some(mutate(&whole()?.0, version, &matched)))?;
            self.count_defaults(hit);
            return Some(defaults_verdict(defaults, summary));
        }
        let silence = metadata
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.silence.as_deref());
        let rules = self.engine.registry.fingerprint();
        let key = match (matched.is_empty(), old) {
            (true, None) => CacheKey::of_bytes(
                KeyPurpose::Validate,
                rules,
                0,
                &[tag, conversion, spec, silence],
            ),
            (true, Some(old)) => CacheKey::of_bytes(
                KeyPurpose::ValidateUpdate,
                rules,
                0,
                &[
                    tag,
                    conversion,
                    spec,
                    conversion_data(old, version),
                    old.spec.map(RawValue::get),
                    silence,
                ],
            ),
            (false, _) => {
                let raw = raw_objects()?;
                CacheKey::of_bytes(
                    KeyPurpose::ValidateWithPolicies,
                    rules,
                    matched.fingerprint(),
                    &[
                        tag,
                        raw.object.map(RawValue::get),
                        old.and(raw.old_object).map(RawValue::get),
                    ],
                )
            }
        };
        let now = (self.clock)();
        let result = self.cached(cacheable(key, &matched, now), || {
            if matched.is_empty() {
                let in_hub = |parts: &ObjectParts<'_>| -> Option<Option<Value>> {
                    let spec = decode(parts.spec)?;
                    let data = conversion_data(parts, version);
                    Some(spec.map(|spec| spec_to_hub(spec, data, version)))
                };
                let spec = in_hub(object)?;
                let old_spec = match old {
                    Some(old) => Some(in_hub(old)?),
                    None => None,
                };
                let old_spec = old_spec.as_ref().and_then(Option::as_ref);
                Some(self.judge(version, spec.as_ref(), old_spec, None, silence, now))
            } else {
                let (object, old) = whole()?;
                let policies = PolicyCase {
                    matched: &matched,
                    object: &object,
                    old_object: old.as_ref(),
                };
                let hub = converted(&object, version, ApiVersion::V1alpha1);
                let hub_old = old
                    .as_ref()
                    .map(|old| converted(old, version, ApiVersion::V1alpha1));
                let old_spec = hub_old.as_ref().and_then(|o| o.get("spec"));
                let spec = hub.get("spec");
                Some(self.judge(version, spec, old_spec, Some(policies), silence, now))
            }
        })?;
        Some(self.judged(result, summary))
    }

    /// A RoostPolicy is refused with every problem, as a ManagedRoost is.
    fn judge_policy(&self, object: &Value, mut summary: Summary) -> (Verdict, Summary) {
        let problems = match serde_json::from_value::<RoostPolicy>(object.clone()) {
            Err(err) => vec![crate::policy::invalid(
                "spec",
                format!(
                    "does not decode as a RoostPolicy: {}",
                    crate::text::describe_json_error(&err)
                ),
            )],
            Ok(policy) => {
                let name = policy.metadata.name.clone().unwrap_or_default();
                let in_force = self.engine.policies.set();
                let mut taken = in_force.codes();
                taken.retain(|_, owner| *owner != name);
                let known = Known { taken: &taken };
                match crate::policy::compile(&policy, &known) {
                    Err(problems) => problems,
                    Ok(compiled) => in_force
                        .room_for(&name, compiled.rule_count())
                        .err()
                        .map(|full| vec![crate::policy::invalid("spec.rules", full)])
                        .unwrap_or_default(),
                }
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

    /// A RoostPolicyException is refused with every problem by field, as a
    /// RoostPolicy is.
    fn judge_exception(&self, object: &Value, mut summary: Summary) -> (Verdict, Summary) {
        let problems = match serde_json::from_value::<RoostPolicyException>(object.clone()) {
            Err(err) => vec![crate::policy::exception::invalid(
                "spec",
                format!(
                    "does not decode as a RoostPolicyException: {}",
                    crate::text::describe_json_error(&err)
                ),
            )],
            Ok(exception) => match crate::policy::exception::compile(&exception) {
                Err(problems) => problems,
                Ok(compiled) => self.room_for_exception(&compiled).into_iter().collect(),
            },
        };
        let result = ValidationResult::from_findings(problems);
        summary.errors = result.errors.len();
        summary.allowed = result.valid;
        (
            validation_verdict(EXCEPTION_KIND, "roostpolicyexceptions", &summary, &result),
            summary,
        )
    }

    /// Why a new exception would not be put in force: the cap on exceptions
    /// in force is reached (the watch would leave it out). Changing one in
    /// force is always possible.
    fn room_for_exception(&self, exception: &CompiledException) -> Option<Finding> {
        let in_force = self.engine.policies.exceptions();
        let known = in_force
            .iter()
            .any(|e| e.namespace == exception.namespace && e.name == exception.name);
        (!known && in_force.len() >= MAX_EXCEPTIONS_IN_FORCE).then(|| {
            crate::policy::exception::invalid(
                "metadata.name",
                format!(
                    "{} RoostPolicyExceptions are in force, the most there may be (expired ones count until deleted); delete one first",
                    in_force.len()
                ),
            )
        })
    }

    /// The served version a review of our kind is in; `None` for a kind,
    /// resource or version we do not own, which is allowed (a misregistered
    /// webhook must not block the cluster), and for a subresource such as
    /// status. RoostPolicy has one version, v1alpha1.
    fn our_version(&self, facts: &Facts<'_>, webhook: Webhook) -> Option<ApiVersion> {
        let (group, version, kind) = facts.kind;
        let expected = webhook.kind();
        let served = match webhook {
            Webhook::Validate | Webhook::Mutate => ApiVersion::from_name(version),
            Webhook::ValidatePolicy => {
                let policy_version = <RoostPolicy as kube::Resource>::version(&());
                (version == policy_version).then_some(ApiVersion::V1alpha1)
            }
            Webhook::ValidateException => {
                let exception_version = <RoostPolicyException as kube::Resource>::version(&());
                (version == exception_version).then_some(ApiVersion::V1alpha1)
            }
        };
        let ours = served.filter(|_| group == GROUP && kind == expected);
        if ours.is_none() {
            tracing::warn!(
                uid = %facts.uid,
                group = %shown(group),
                version = %shown(version),
                kind = %shown(kind),
                "asked to review an object that is not a {GROUP} {expected} of a served version; allowing it (check the webhook's rules)"
            );
        }
        ours.filter(|_| facts.sub_resource.is_none_or(str::is_empty))
    }

    /// The validating webhook's verdict: every error denies, warnings are listed.
    fn judged(&self, result: Arc<ValidationResult>, mut summary: Summary) -> (Verdict, Summary) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let findings: Vec<String> = result.all().map(|f| f.as_warning_line()).collect();
            tracing::debug!(valid = result.valid, ?findings, "validated");
        }
        summary.errors = result.errors.len();
        summary.warnings = result.warnings.len();
        summary.allowed = result.valid;
        (
            validation_verdict(KIND, "managedroosts", &summary, &result),
            summary,
        )
    }

    /// Brings the cache size gauges up to date (called when metrics are scraped).
    pub fn record_cache_size(&self) {
        for (cache, len) in [
            ("validation", self.cache.len()),
            ("defaults", self.defaults.len()),
        ] {
            self.metrics
                .cache_size
                .get_or_create(&CacheLabel { cache })
                .set(i64::try_from(len).unwrap_or(i64::MAX));
        }
    }

    /// The engine's verdict on a spec in the hub's shape (and the old spec
    /// on UPDATE) of an object written in `version`, with the matching
    /// policies, if any, and the objects (as written) they read; their
    /// outcomes counted.
    fn judge(
        &self,
        version: ApiVersion,
        spec: Option<&Value>,
        old_spec: Option<&Value>,
        policies: Option<PolicyCase<'_>>,
        silence: Option<&str>,
        now: Timestamp,
    ) -> ValidationResult {
        let spec = decode_spec(spec);
        let old_spec = old_spec.map(|old| decode_spec(Some(old)).spec);
        let started = Instant::now();
        let judgement = self.engine.judge(&Case {
            version,
            spec: &spec,
            old_spec: old_spec.as_ref(),
            policies,
            silence,
            now,
        });
        if policies.is_some() {
            self.metrics
                .observe_policies(judgement.evaluations, started.elapsed());
        }
        judgement.result
    }

    /// A verdict from the cache, or computed and cached, with the metrics of
    /// both; computed and not cached without a key (a miss); `None` when
    /// `validate` gives none (the caller reads the review in full instead).
    fn cached(
        &self,
        key: Option<CacheKey>,
        validate: impl FnOnce() -> Option<ValidationResult>,
    ) -> Option<Arc<ValidationResult>> {
        let _span = tracing::debug_span!("api.validate").entered();
        let started = Instant::now();
        let (result, hit) = match key {
            Some(key) => self
                .cache
                .get_or_compute(key, || validate().map(Arc::new))?,
            None => (Arc::new(validate()?), false),
        };
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
        Some(result)
    }

    /// Counts a mutating answer as a hit or a miss of the defaults cache.
    fn count_defaults(&self, hit: bool) {
        let label = CacheLabel { cache: "defaults" };
        let counter = if hit {
            &self.metrics.cache_hits
        } else {
            &self.metrics.cache_misses
        };
        counter.get_or_create(&label).inc();
    }
}

/// The cache key of a verdict, or `None` when it must not be cached: an
/// exception selecting the object expires later (the cache would keep its
/// verdict past that).
fn cacheable(key: CacheKey, matched: &Matched, now: Timestamp) -> Option<CacheKey> {
    matched.next_expiry(now).is_none().then_some(key)
}

/// The conversion-data annotation of an object in the view written in
/// `version`; none in the hub, whose specs are read as they are.
fn conversion_data<'a>(parts: &'a ObjectParts<'_>, version: ApiVersion) -> Option<&'a str> {
    if version == ApiVersion::V1alpha1 {
        return None;
    }
    let annotations = parts.metadata.as_ref()?.annotations.as_ref()?;
    annotations.conversion.as_deref()
}

/// A raw JSON value decoded (`None` inside when absent); `None` when it does not decode.
fn decode(raw: Option<&RawValue>) -> Option<Option<Value>> {
    match raw {
        None => Some(None),
        Some(raw) => serde_json::from_str(raw.get()).ok().map(Some),
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

/// The mutating webhook's answer: the engine's defaults as a JSON Patch on
/// `object` as sent (in `version`).
fn mutate(object: &Value, version: ApiVersion, matched: &Matched) -> Defaults {
    let defaulted = defaulted(object, version, matched);
    let operations = defaulted.patch.0.len();
    // Serializing a JSON Patch into a String cannot fail.
    let patch = (operations > 0)
        .then(|| Arc::from(serde_json::to_string(&defaulted.patch).unwrap_or_default()));
    Defaults { patch, operations }
}

/// The mutating webhook's verdict: allowed, with the patch when there is one.
fn defaults_verdict(defaults: Defaults, mut summary: Summary) -> (Verdict, Summary) {
    tracing::debug!(patch_operations = defaults.operations, "defaults applied");
    summary.mutated = defaults.patch.is_some();
    (
        Verdict {
            patch: defaults.patch,
            ..Verdict::allowed()
        },
        summary,
    )
}

/// Longest name, namespace or kind written in a reply or a log line
/// (Kubernetes names have at most 253 characters).
const MAX_SHOWN_NAME_CHARS: usize = 253;

/// `text` safe for a log line or a message ([`crate::text::printable`]),
/// cut to [`MAX_SHOWN_NAME_CHARS`].
fn shown(text: &str) -> String {
    crate::text::printable_cut(text, MAX_SHOWN_NAME_CHARS)
}

/// The object's debug logs, while the guard lives.
fn debug_scope(uid: &str) -> (DebugObject, tracing::span::EnteredSpan) {
    (
        DebugObject::begin(),
        tracing::info_span!(DEBUG_SPAN, uid = %uid).entered(),
    )
}

/// Whether the object asked for debug logs (`spec.observability.logging.level: debug`).
fn wants_debug(spec: Option<&Value>) -> bool {
    spec.and_then(|s| s.pointer("/observability/logging/level"))
        .and_then(Value::as_str)
        == Some("debug")
}

/// [`wants_debug`] of a raw spec, decoded only when it may say so.
fn wants_debug_raw(spec: Option<&RawValue>) -> bool {
    spec.filter(|s| view::may_want_debug(s))
        .and_then(|s| serde_json::from_str::<Value>(s.get()).ok())
        .is_some_and(|spec| wants_debug(Some(&spec)))
}

fn object_name(request: &AdmissionRequest) -> String {
    let metadata = request.object.as_ref().and_then(|o| o.get("metadata"));
    let text = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
    shown_name(text("name"), request.name.as_deref(), text("generateName"))
}

/// The object's name, else the request's, else its generateName and `*`.
fn shown_name(
    name: Option<&str>,
    request_name: Option<&str>,
    generate_name: Option<&str>,
) -> String {
    fn set(text: Option<&str>) -> Option<&str> {
        text.filter(|t| !t.is_empty())
    }
    match (set(name), set(request_name), set(generate_name)) {
        (Some(name), _, _) | (None, Some(name), _) => name.to_owned(),
        (None, None, Some(prefix)) => format!("{prefix}*"),
        (None, None, None) => "(unnamed)".to_owned(),
    }
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
    let audit_annotations = audit::annotations(result);
    if result.valid {
        return Verdict {
            warnings,
            audit_annotations,
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
        audit_annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::convert::convert;
    use crate::api::{API_VERSION, VERSION};
    use serde_json::json;

    fn body(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request,
        }))
        .unwrap()
    }

    fn object(metadata: Value, spec: Value) -> Value {
        json!({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec})
    }

    fn create(uid: &str, object: Value) -> Value {
        json!({
            "uid": uid, "operation": "CREATE", "namespace": "team",
            "kind": {"group": GROUP, "version": VERSION, "kind": KIND},
            "resource": {"group": GROUP, "version": VERSION, "resource": "managedroosts"},
            "userInfo": {"username": "me"}, "object": object, "oldObject": null,
        })
    }

    fn ours(uid: &str, operation: &str, fields: Value) -> Value {
        let mut request = json!({"uid": uid, "operation": operation,
                                 "kind": {"group": GROUP, "version": VERSION, "kind": KIND}});
        if let (Some(request), Value::Object(fields)) = (request.as_object_mut(), fields) {
            request.extend(fields);
        }
        request
    }

    fn valid_spec() -> Value {
        json!({"chart": {"name": "nginx", "version": "1.2.3",
                         "repository": {"url": "https://charts.example.com"}}})
    }

    fn cache_count(metrics: &Metrics, hits: bool, cache: &'static str) -> u64 {
        let family = if hits {
            &metrics.cache_hits
        } else {
            &metrics.cache_misses
        };
        family.get_or_create(&CacheLabel { cache }).get()
    }

    /// Every case: the quick path (first answer and cached answer) gives
    /// exactly what the full decode gives, for both webhooks.
    #[test]
    fn the_quick_path_answers_as_the_full_decode() {
        let nested = |depth: usize| {
            let mut value = json!(1);
            for _ in 0..depth {
                value = json!([value]);
            }
            value
        };
        let metadata = json!({"name": "web", "namespace": "team", "labels": {"app": "web"}});
        let spec = valid_spec();
        let http_chart = json!({"chart": {"name": "c", "repository": {"url": "http://x"}}});
        // Numbers where v1beta1 has strings (conversion data), inline
        // credentials (named per version), a tenant (immutable).
        let numbers = json!({"chart": {"name": "c"}, "healthChecks": [
            {"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 1}, "interval": 3, "timeout": 1}]});
        let inline = json!({"chart": {"name": "c", "repository": {"url": "https://x",
                            "auth": {"password": "p"}}}});
        let tenant = json!({"chart": {"name": "c"}, "tenancy": {"tenantId": "a"}});
        let beta_kind = |mut request: Value| {
            request["kind"]["version"] = json!("v1beta1");
            request
        };
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("valid", body(create("u1", object(metadata.clone(), spec.clone())))),
            ("same spec, other name", body(create("u2", object(json!({"name": "other"}), spec.clone())))),
            ("same spec, no metadata", body(create("u3", json!({"spec": spec})))),
            ("same spec, labels null", body(create("u4", object(json!({"name": "w", "labels": null}), spec.clone())))),
            ("same spec, metadata null", body(create("u5", json!({"metadata": null, "spec": spec})))),
            ("spec null", body(create("u6", object(metadata.clone(), Value::Null)))),
            ("spec absent", body(create("u7", json!({"metadata": metadata})))),
            ("errors", body(create("u8", object(metadata.clone(), json!({"chart": {"name": ""}}))))),
            ("warnings", body(create("u9", object(metadata.clone(), http_chart.clone())))),
            ("warnings silenced", body(create("u10", object(
                json!({"name": "w", "annotations": {SILENCE_ANNOTATION: "CHART_VERSION_UNPINNED,REPOSITORY_INSECURE"}}),
                http_chart.clone())))),
            ("debug logs", body(create("u11", object(metadata.clone(),
                json!({"chart": {"name": "c"}, "observability": {"logging": {"level": "debug"}}}))))),
            ("generateName", body(create("u12", object(json!({"generateName": "web-"}), spec.clone())))),
            ("escaped name", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u13","operation":"CREATE","kind":{"group":"roost.birb.party","version":"v1alpha1","kind":"ManagedRoost"},"object":{"metadata":{"name":"w\u0065b\n"},"spec":{"chart":{"name":""}}}}}"#.to_vec()),
            ("deep status, decodable", body(create("u14", json!({"metadata": metadata, "spec": spec, "status": nested(110)})))),
            ("deep status, too deep", body(create("u15", json!({"metadata": metadata, "spec": spec, "status": nested(126)})))),
            ("object is an array", body(create("u16", json!([metadata, spec])))),
            ("foreign kind", body(json!({"uid": "u17", "operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": {"spec": spec}}))),
            ("kind as an array", body(json!({"uid": "u18", "operation": "CREATE", "kind": [GROUP, VERSION, KIND], "object": {"spec": spec}}))),
            ("status subresource", body(ours("u19", "UPDATE", json!({"subResource": "status", "object": {"spec": spec}, "oldObject": {"spec": spec}})))),
            ("delete", body(ours("u20", "DELETE", json!({"name": "web", "object": null, "oldObject": {"spec": spec}})))),
            ("update", body(ours("u21", "UPDATE", json!({"object": {"metadata": metadata, "spec": spec}, "oldObject": {"metadata": metadata, "spec": spec}})))),
            ("update, tenant changed", body(ours("u22", "UPDATE", json!({"object": {"spec": spec}, "oldObject": {"spec": {"chart": {"name": "other"}, "tenancy": {"tenantId": "a"}}}})))),
            ("update without oldObject", body(ours("u23", "UPDATE", json!({"object": {"spec": spec}})))),
            ("create without object", body(ours("u24", "CREATE", json!({})))),
            ("resource null", body(ours("u25", "CREATE", json!({"resource": null, "object": {"spec": spec}})))),
            ("v1beta1", create_in("u28", &convert(&object(metadata.clone(), http_chart.clone()), ApiVersion::V1beta1).unwrap())),
            ("v1beta1 with conversion data", create_in("u30", &convert(&object(metadata.clone(), numbers.clone()), ApiVersion::V1beta1).unwrap())),
            ("v1beta1, same spec bytes as v1alpha1", body(beta_kind(create("u31", object(metadata.clone(), inline.clone()))))),
            ("v1alpha1, same spec bytes", body(create("u32", object(metadata.clone(), inline.clone())))),
            ("v1beta1 without apiVersion", body(beta_kind(create("u33", json!({"metadata": metadata, "spec": inline}))))),
            ("v1alpha1 without apiVersion", body(create("u34", json!({"metadata": metadata, "spec": inline})))),
            ("v1beta1 update", body(beta_kind(ours("u35", "UPDATE", json!({
                "object": convert(&object(metadata.clone(), numbers.clone()), ApiVersion::V1beta1).unwrap(),
                "oldObject": convert(&object(metadata.clone(), tenant.clone()), ApiVersion::V1beta1).unwrap()}))))),
            ("unserved version", body(json!({"uid": "u29", "operation": "CREATE", "kind": {"group": GROUP, "version": "v1", "kind": KIND}, "object": {"spec": spec}}))),
        ];
        let text =
            String::from_utf8(body(create("u26", object(metadata.clone(), spec.clone())))).unwrap();
        for (name, from, to) in [
            (
                "exponent in userInfo",
                r#""username":"me""#,
                r#""username":1e999"#,
            ),
            (
                "lone surrogate in userInfo",
                r#""username":"me""#,
                r#""username":"\ud800""#,
            ),
            ("duplicate spec", r#""spec":{"#, r#""spec":{},"spec":{"#),
            (
                "duplicate uid",
                r#""uid":"u26""#,
                r#""uid":"u26","uid":"u27""#,
            ),
        ] {
            assert!(text.contains(from), "{name}");
            cases.push((name, text.replacen(from, to, 1).into_bytes()));
        }
        let quick = Admission::new(ValidationCache::default(), Metrics::new());
        let reference = Admission::new(ValidationCache::default(), Metrics::new());
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            for (name, body) in &cases {
                let expected = reference.review_decoded(webhook, body);
                for round in ["first", "cached"] {
                    let reply = quick.review(webhook, body);
                    assert_eq!(
                        reply,
                        expected,
                        "{webhook:?}, {name}, {round}:\n{}\n{}",
                        String::from_utf8_lossy(&reply.body),
                        String::from_utf8_lossy(&expected.body)
                    );
                }
            }
        }
    }

    /// `request` (a CREATE of ours) as a review of `object` in its own version.
    fn create_in(uid: &str, object: &Value) -> Vec<u8> {
        let mut request = create(uid, object.clone());
        let version = object["apiVersion"].as_str().unwrap().rsplit('/').next();
        request["kind"]["version"] = json!(version);
        request["resource"]["version"] = json!(version);
        body(request)
    }

    /// Codes and fields of a validating answer: the denial's causes, then
    /// the warnings' leading fields.
    fn findings_of(reply: &Reply) -> (bool, Vec<String>, Vec<String>) {
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        let response = &body["response"];
        let causes = response["status"]["details"]["causes"].as_array();
        let fields = causes
            .into_iter()
            .flatten()
            .map(|c| c["field"].as_str().unwrap().to_owned());
        let warnings = response["warnings"].as_array().into_iter().flatten();
        let warned = warnings.map(|w| w.as_str().unwrap().to_owned());
        (
            response["allowed"] == json!(true),
            fields.collect(),
            warned.collect(),
        )
    }

    #[test]
    fn either_version_gets_the_same_verdict_at_the_paths_it_is_written_with() {
        let alpha = object(
            json!({"name": "web"}),
            json!({"chart": {"name": "", "version": "1.2.3", "repository": {
                "url": "https://charts.example.com", "auth": {"password": "hunter2"}}},
                "healthChecks": [{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 1},
                                  "interval": 30}]}),
        );
        let beta = convert(&alpha, ApiVersion::V1beta1).unwrap();
        assert_eq!(beta["spec"]["healthChecks"][0]["interval"], "30");
        let admission = Admission::new(ValidationCache::default(), Metrics::new());
        let (alpha_allowed, alpha_denied, alpha_warned) =
            findings_of(&admission.review(Webhook::Validate, &create_in("u1", &alpha)));
        let beta_body = create_in("u2", &beta);
        let beta_reply = admission.review(Webhook::Validate, &beta_body);
        // The quick path answers a v1beta1 review, as the full decode does.
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            let view = view::read(&beta_body).unwrap();
            assert!(admission.decide_view(webhook, &beta_body, &view).is_some());
        }
        assert_eq!(
            beta_reply,
            admission.review_decoded(Webhook::Validate, &beta_body)
        );
        let (beta_allowed, beta_denied, beta_warned) = findings_of(&beta_reply);
        assert!(!alpha_allowed && !beta_allowed);
        assert!(
            alpha_denied.contains(&"spec.chart.name".to_owned()),
            "{alpha_denied:?}"
        );
        assert_eq!(beta_denied, alpha_denied);
        let inline = |warned: &[String], field: &str| {
            warned.iter().any(|w| {
                w.starts_with(&format!("{field}: ")) && w.ends_with("[AUTH_INLINE_CREDENTIALS]")
            })
        };
        assert!(
            inline(&alpha_warned, "spec.chart.repository.auth.password"),
            "{alpha_warned:?}"
        );
        assert!(
            inline(
                &beta_warned,
                "spec.chart.repository.auth.deprecatedPassword"
            ),
            "{beta_warned:?}"
        );
        assert!(
            !inline(&beta_warned, "spec.chart.repository.auth.password"),
            "{beta_warned:?}"
        );
        assert_eq!(alpha_warned.len(), beta_warned.len());
        assert!(
            !beta_warned
                .iter()
                .chain(&beta_denied)
                .any(|w| w.contains("hunter2"))
        );
    }

    #[test]
    fn the_same_spec_bytes_in_another_version_are_not_the_same_cache_entry() {
        let spec = json!({"chart": {"name": "c", "version": "1.2.3", "repository": {
            "url": "https://charts.example.com", "auth": {"password": "p"}}}});
        let alpha = object(json!({"name": "web"}), spec.clone());
        let mut beta = alpha.clone();
        beta["apiVersion"] = json!(ApiVersion::V1beta1.api_version());
        let admission = Admission::new(ValidationCache::default(), Metrics::new());
        for (uid, object, field) in [
            ("u1", &alpha, "spec.chart.repository.auth.password: "),
            (
                "u2",
                &beta,
                "spec.chart.repository.auth.deprecatedPassword: ",
            ),
        ] {
            let (_, _, warned) =
                findings_of(&admission.review_decoded(Webhook::Validate, &create_in(uid, object)));
            assert!(
                warned.iter().any(|w| w.starts_with(field)),
                "{uid}: {warned:?}"
            );
        }
    }

    #[test]
    fn an_update_of_a_v1beta1_object_compares_with_its_old_one() {
        let roost = |tenant: &str| {
            let alpha = object(
                json!({"name": "web"}),
                json!({"chart": {"name": "c", "version": "1.2.3",
                                 "repository": {"url": "https://charts.example.com"}},
                       "tenancy": {"tenantId": tenant}}),
            );
            convert(&alpha, ApiVersion::V1beta1).unwrap()
        };
        let admission = Admission::new(ValidationCache::default(), Metrics::new());
        let update = |uid: &str, old: Value| {
            let mut request = ours(
                uid,
                "UPDATE",
                json!({"object": roost("a"), "oldObject": old}),
            );
            request["kind"]["version"] = json!("v1beta1");
            findings_of(&admission.review(Webhook::Validate, &body(request)))
        };
        let (allowed, denied, _) = update("u1", roost("b"));
        assert!(!allowed);
        assert_eq!(denied, ["spec.tenancy.tenantId"]);
        let (allowed, denied, _) = update("u2", roost("a"));
        assert!(allowed, "{denied:?}");
    }

    #[test]
    fn a_v1beta1_object_is_defaulted_with_strings_and_once() {
        let alpha = object(
            json!({"name": "web", "labels": {"app": "web"}}),
            json!({"chart": {"name": "c", "version": "1.2.3",
                             "repository": {"url": "https://charts.example.com",
                                            "auth": {"token": "t"}}},
                   "healthChecks": [{"name": "h", "type": "http", "http": {"url": "https://x"},
                                     "timeout": 5}]}),
        );
        let beta = convert(&alpha, ApiVersion::V1beta1).unwrap();
        let admission = Admission::new(ValidationCache::default(), Metrics::new());
        let patch_of = |uid: &str, object: &Value| -> Option<json_patch::Patch> {
            let reply = admission.review(Webhook::Mutate, &create_in(uid, object));
            assert_eq!(reply.status, 200);
            let body: Value = serde_json::from_slice(&reply.body).unwrap();
            let patch = body["response"]["patch"].as_str()?;
            let bytes =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, patch).unwrap();
            Some(serde_json::from_slice(&bytes).unwrap())
        };
        let patch = patch_of("u1", &beta).expect("defaults to apply");
        let mut patched = beta.clone();
        json_patch::patch(&mut patched, &patch).unwrap();
        let check = &patched["spec"]["healthChecks"][0];
        assert_eq!(check["interval"], "30s");
        assert_eq!(check["timeout"], "5", "kept as written");
        assert_eq!(
            patched["spec"]["chart"]["repository"]["auth"]["type"],
            "basic"
        );
        assert_eq!(
            patched["spec"]["chart"]["repository"]["auth"]["deprecatedToken"],
            "t"
        );
        assert!(
            patched["spec"]["chart"]["repository"]["auth"]
                .get("token")
                .is_none()
        );
        assert_eq!(patched["apiVersion"], beta["apiVersion"]);
        // What v1beta1's schema would refuse: nothing (durations stay strings).
        assert_eq!(crate::api::strict::refusals(&patched), []);
        // The defaulted object needs no more.
        assert_eq!(patch_of("u2", &patched), None);
        // The same spec in v1alpha1 gets the same defaulted paths.
        let alpha_patch = patch_of("u3", &alpha).expect("defaults to apply");
        let paths = |p: &json_patch::Patch| -> Vec<String> {
            p.0.iter().map(|op| op.path().to_string()).collect()
        };
        assert_eq!(paths(&alpha_patch), paths(&patch));

        // A value of the wrong type stays as written (the apiserver's schema
        // refuses it after the mutating webhooks); only defaults are added.
        let mut wrong = beta.clone();
        wrong["spec"]["healthChecks"][0]["timeout"] = json!(5);
        let patch = patch_of("u4", &wrong).expect("defaults to apply");
        let mut patched = wrong.clone();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(patched["spec"]["healthChecks"][0]["timeout"], 5);
        assert_eq!(patched["spec"]["healthChecks"][0]["interval"], "30s");
        assert_eq!(
            patched["metadata"]["annotations"],
            wrong["metadata"]["annotations"]
        );
    }

    #[test]
    fn a_version_of_our_kind_that_is_not_served_is_allowed_unchanged() {
        let admission = Admission::new(ValidationCache::default(), Metrics::new());
        let mut invalid = object(json!({"name": "web"}), json!({"chart": {"name": ""}}));
        invalid["apiVersion"] = json!("roost.birb.party/v1");
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            let body = create_in("u1", &invalid);
            let reply = admission.review(webhook, &body);
            assert_eq!(reply, admission.review_decoded(webhook, &body));
            let answer: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(answer["response"]["allowed"], true, "{webhook:?}");
            assert!(answer["response"].get("patch").is_none(), "{webhook:?}");
        }
        // The same object in a served version is judged.
        invalid["apiVersion"] = json!(ApiVersion::V1beta1.api_version());
        let (allowed, _, _) =
            findings_of(&admission.review(Webhook::Validate, &create_in("u2", &invalid)));
        assert!(!allowed);
    }

    #[test]
    fn identical_specs_share_a_verdict_but_not_a_name() {
        let metrics = Metrics::new();
        let admission = Admission::new(ValidationCache::default(), Arc::clone(&metrics));
        let spec = json!({"chart": {"name": ""}});
        let answer = |uid: &str, name: &str| {
            let reply = admission.review(
                Webhook::Validate,
                &body(create(uid, object(json!({"name": name}), spec.clone()))),
            );
            String::from_utf8(reply.body).unwrap()
        };
        let first = answer("u1", "one");
        let second = answer("u2", "two");
        assert_eq!(
            (
                cache_count(&metrics, false, "validation"),
                cache_count(&metrics, true, "validation")
            ),
            (1, 1)
        );
        assert!(
            first.contains("team/one") && first.contains(r#""uid":"u1""#),
            "{first}"
        );
        assert!(
            second.contains("team/two") && second.contains(r#""uid":"u2""#),
            "{second}"
        );
    }

    #[test]
    fn the_mutating_answer_is_cached_by_spec_and_labels() {
        let metrics = Metrics::new();
        let admission = Admission::new(ValidationCache::default(), Arc::clone(&metrics));
        let patch = |uid: &str, labels: Value| -> Value {
            let reply = admission.review(
                Webhook::Mutate,
                &body(create(
                    uid,
                    object(json!({"name": uid, "labels": labels}), valid_spec()),
                )),
            );
            let body: Value = serde_json::from_slice(&reply.body).unwrap();
            body["response"]["patch"].clone()
        };
        let first = patch("u1", json!({"app": "web"}));
        let again = patch("u2", json!({"app": "web"}));
        assert_eq!(
            (
                cache_count(&metrics, false, "defaults"),
                cache_count(&metrics, true, "defaults")
            ),
            (1, 1)
        );
        assert_eq!(first, again);
        let labelled = patch("u3", json!({"app.kubernetes.io/managed-by": "someone"}));
        assert_eq!(
            cache_count(&metrics, false, "defaults"),
            2,
            "other labels, another answer"
        );
        assert_ne!(labelled, first);
    }

    /// The `auditAnnotations` of an answer (an empty map when it has none),
    /// and whether it was allowed.
    fn annotations_of(reply: &Reply) -> (bool, Value) {
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        let response = &body["response"];
        let annotations = match response.get("auditAnnotations") {
            Some(annotations) => {
                assert_ne!(annotations, &json!({}), "an empty map is left out");
                annotations.clone()
            }
            None => json!({}),
        };
        (response["allowed"] == json!(true), annotations)
    }

    #[test]
    fn denials_and_warnings_carry_their_codes_as_audit_annotations() {
        let metrics = Metrics::new();
        let admission = Admission::new(ValidationCache::default(), Arc::clone(&metrics));
        let metadata = json!({"name": "web", "namespace": "team"});
        let insecure = json!({"chart": {"name": "c", "version": "1.2.3",
                              "repository": {"url": "http://x", "auth": {"password": "hunter2"}}}});
        let cases = [
            (
                "errors and warnings",
                json!({"chart": {"name": "", "repository": {"url": "http://x"}}}),
                false,
                json!({"error-codes": "CHART_NAME_MISSING,CHART_VERSION_MISSING",
                       "warning-codes": "CHART_REPO_INSECURE"}),
            ),
            (
                "warnings only",
                insecure,
                true,
                json!({"warning-codes": "CHART_REPO_INSECURE,AUTH_INLINE_CREDENTIALS"}),
            ),
            ("nothing to say", valid_spec(), true, json!({})),
        ];
        for (i, (what, spec, allowed, expected)) in cases.into_iter().enumerate() {
            let request = body(create(&format!("u{i}"), object(metadata.clone(), spec)));
            // The quick path, its cached answer and the full decode agree.
            for reply in [
                admission.review(Webhook::Validate, &request),
                admission.review(Webhook::Validate, &request),
                admission.review_decoded(Webhook::Validate, &request),
            ] {
                let text = String::from_utf8_lossy(&reply.body).into_owned();
                if expected == json!({}) {
                    assert!(!text.contains("auditAnnotations"), "{what}: {text}");
                    continue;
                }
                let (was_allowed, annotations) = annotations_of(&reply);
                assert_eq!(was_allowed, allowed, "{what}: {text}");
                assert_eq!(annotations, expected, "{what}: {text}");
                assert!(!annotations.to_string().contains("hunter2"), "{what}");
            }
        }
        assert!(cache_count(&metrics, true, "validation") >= 3);
        // The mutating webhook sets none.
        let request = body(create("m", object(metadata, valid_spec())));
        let reply = admission.review(Webhook::Mutate, &request);
        assert!(!String::from_utf8_lossy(&reply.body).contains("auditAnnotations"));
    }

    /// An engine with one policy whose rule `CUSTOM_E2E_RULE` always fails
    /// (an error, or in `mode`), and `exceptions` (their specs) in namespace `team`.
    fn engine_with(mode: Option<&str>, exceptions: &[Value]) -> Engine {
        use crate::policy::{Known, PolicySet, compile, exception};
        let mut spec = json!({"rules": [{"code": "CUSTOM_E2E_RULE", "level": "error",
                                         "expression": "false", "message": "m"}]});
        if let Some(mode) = mode {
            spec["mode"] = json!(mode);
        }
        let policy: RoostPolicy = serde_json::from_value(json!({
            "apiVersion": API_VERSION, "kind": POLICY_KIND,
            "metadata": {"name": "always"}, "spec": spec}))
        .unwrap();
        let taken = Default::default();
        let compiled = compile(&policy, &Known { taken: &taken }).unwrap();
        let engine = Engine::default();
        engine
            .policies
            .replace(PolicySet::new(vec![Arc::new(compiled)]), Default::default());
        let exceptions = exceptions
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let object: RoostPolicyException = serde_json::from_value(json!({
                    "apiVersion": API_VERSION, "kind": EXCEPTION_KIND,
                    "metadata": {"name": format!("ex{i}"), "namespace": "team"},
                    "spec": spec}))
                .unwrap();
                Arc::new(exception::compile(&object).unwrap())
            })
            .collect();
        engine.policies.replace_exceptions(exceptions);
        engine
    }

    #[test]
    fn a_verdict_under_an_exception_does_not_outlive_its_expiry() {
        use std::sync::atomic::{AtomicI64, Ordering};
        let expiry: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let engine = engine_with(
            None,
            &[json!({"codes": ["CUSTOM_E2E_RULE"], "roosts": ["web"],
                     "justification": "migrating", "expiresAt": expiry.to_string()})],
        );
        let now = Arc::new(AtomicI64::new(expiry.as_second() - 10));
        let clock = Arc::clone(&now);
        let admission = Admission::with_engine(ValidationCache::default(), Metrics::new(), engine)
            .with_clock(move || Timestamp::from_second(clock.load(Ordering::SeqCst)).unwrap());
        let request = body(create(
            "u1",
            object(json!({"name": "web", "namespace": "team"}), valid_spec()),
        ));
        for review in [Admission::review, Admission::review_decoded] {
            now.store(expiry.as_second() - 10, Ordering::SeqCst);
            let (allowed, annotations) =
                annotations_of(&review(&admission, Webhook::Validate, &request));
            assert!(allowed, "{annotations}");
            assert_eq!(annotations, json!({"exempted-codes": "CUSTOM_E2E_RULE"}));
            // The same review once the exception has expired: refused.
            now.store(expiry.as_second() + 1, Ordering::SeqCst);
            let (allowed, annotations) =
                annotations_of(&review(&admission, Webhook::Validate, &request));
            assert!(!allowed, "{annotations}");
            assert_eq!(annotations, json!({"error-codes": "CUSTOM_E2E_RULE"}));
        }
        // A roost the exception does not name is judged (and cached) as before.
        let other = body(create(
            "u2",
            object(json!({"name": "api", "namespace": "team"}), valid_spec()),
        ));
        let (allowed, _) = annotations_of(&admission.review(Webhook::Validate, &other));
        assert!(!allowed);
    }

    #[test]
    fn verdicts_under_exceptions_without_expiry_are_still_cached() {
        let engine = engine_with(
            None,
            &[json!({"codes": ["CUSTOM_E2E_RULE"], "selector": {},
                     "justification": "forever"})],
        );
        let metrics = Metrics::new();
        let admission =
            Admission::with_engine(ValidationCache::default(), Arc::clone(&metrics), engine);
        let request = body(create(
            "u1",
            object(json!({"name": "web", "namespace": "team"}), valid_spec()),
        ));
        for _ in 0..2 {
            let (allowed, annotations) =
                annotations_of(&admission.review(Webhook::Validate, &request));
            assert!(allowed);
            assert_eq!(annotations, json!({"exempted-codes": "CUSTOM_E2E_RULE"}));
        }
        assert_eq!(cache_count(&metrics, true, "validation"), 1);
    }

    #[test]
    fn audit_and_warn_modes_admit_and_say_so_in_the_annotations() {
        let request = body(create(
            "u1",
            object(json!({"name": "web", "namespace": "team"}), valid_spec()),
        ));
        for (mode, expected_warnings, expected) in [
            ("Audit", 0, json!({"audit-codes": "CUSTOM_E2E_RULE"})),
            ("Warn", 1, json!({"warning-codes": "CUSTOM_E2E_RULE"})),
            ("Enforce", 0, json!({"error-codes": "CUSTOM_E2E_RULE"})),
        ] {
            let engine = engine_with(Some(mode), &[]);
            let admission =
                Admission::with_engine(ValidationCache::default(), Metrics::new(), engine);
            let reply = admission.review(Webhook::Validate, &request);
            let (allowed, annotations) = annotations_of(&reply);
            assert_eq!(allowed, mode != "Enforce", "{mode}");
            assert_eq!(annotations, expected, "{mode}");
            let (_, _, warnings) = findings_of(&reply);
            assert_eq!(warnings.len(), expected_warnings, "{mode}: {warnings:?}");
        }
    }

    fn exception_review(uid: &str, operation: &str, version: &str, object: Value) -> Vec<u8> {
        body(json!({
            "uid": uid, "operation": operation, "namespace": "team",
            "kind": {"group": GROUP, "version": version, "kind": EXCEPTION_KIND},
            "resource": {"group": GROUP, "version": version, "resource": "roostpolicyexceptions"},
            "oldObject": (operation == "UPDATE").then(|| object.clone()),
            "object": object,
        }))
    }

    #[test]
    fn an_exception_is_refused_with_every_problem_by_field() {
        let admission = Admission::new(ValidationCache::default(), Metrics::new());
        let exception = |spec: Value| {
            json!({"apiVersion": API_VERSION, "kind": EXCEPTION_KIND,
                   "metadata": {"name": "ex", "namespace": "team"}, "spec": spec})
        };
        let invalid = exception(
            json!({"codes": ["CHART_VERSION_MISSING"], "roosts": ["web"],
                                       "justification": " "}),
        );
        let reply = admission.review(
            Webhook::ValidateException,
            &exception_review("u1", "CREATE", VERSION, invalid.clone()),
        );
        assert_eq!(reply.status, 200);
        assert!(!reply.summary.allowed);
        let answer: Value = serde_json::from_slice(&reply.body).unwrap();
        let response = &answer["response"];
        assert_eq!(response["allowed"], false, "{answer}");
        let causes: Vec<(&str, &str)> = response["status"]["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["field"].as_str().unwrap(), c["message"].as_str().unwrap()))
            .collect();
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert_eq!(causes[0].0, "spec.codes[0]");
        assert!(causes[0].1.contains("CHART_VERSION_MISSING"), "{causes:?}");
        assert_eq!(causes[1].0, "spec.justification");
        assert!(
            causes
                .iter()
                .all(|(_, m)| m.ends_with("[EXCEPTION_INVALID]"))
        );
        assert_eq!(
            response["status"]["details"]["kind"],
            "roostpolicyexceptions"
        );
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("RoostPolicyException team/ex has 2 errors"),
            "{message}"
        );
        assert_eq!(
            response["auditAnnotations"],
            json!({"error-codes": "EXCEPTION_INVALID"})
        );
        // A spec that does not decode is refused, not a transport failure.
        let (allowed, annotations) = annotations_of(&admission.review(
            Webhook::ValidateException,
            &exception_review("u2", "CREATE", VERSION, exception(json!({"codes": "X"}))),
        ));
        assert!(!allowed);
        assert_eq!(annotations, json!({"error-codes": "EXCEPTION_INVALID"}));

        let valid = exception(
            json!({"codes": ["CHART_VERSION_UNPINNED"], "roosts": ["web"],
                                     "justification": "pinned next sprint",
                                     "expiresAt": "2030-01-01T00:00:00Z"}),
        );
        for (what, request) in [
            ("valid", exception_review("u3", "CREATE", VERSION, valid)),
            (
                "another version",
                exception_review("u4", "CREATE", "v1", invalid.clone()),
            ),
            (
                "delete",
                exception_review("u5", "DELETE", VERSION, invalid.clone()),
            ),
        ] {
            let reply = admission.review(Webhook::ValidateException, &request);
            let answer: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(answer["response"]["allowed"], true, "{what}: {answer}");
            assert!(
                answer["response"].get("auditAnnotations").is_none(),
                "{what}"
            );
        }
        // At the cap of exceptions in force, a new one is refused, a change
        // of one in force is not.
        let full = engine_with(
            None,
            &vec![
                json!({"codes": ["X"], "selector": {}, "justification": "j"});
                MAX_EXCEPTIONS_IN_FORCE
            ],
        );
        let full = Admission::with_engine(ValidationCache::default(), Metrics::new(), full);
        let named = |name: &str| {
            json!({"apiVersion": API_VERSION, "kind": EXCEPTION_KIND,
                   "metadata": {"name": name, "namespace": "team"},
                   "spec": {"codes": ["X"], "selector": {}, "justification": "j"}})
        };
        let reply = full.review(
            Webhook::ValidateException,
            &exception_review("u7", "CREATE", VERSION, named("one-more")),
        );
        let answer: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("metadata.name: 1000 RoostPolicyExceptions are in force"),
            "{message}"
        );
        let (allowed, _) = annotations_of(&full.review(
            Webhook::ValidateException,
            &exception_review("u8", "UPDATE", VERSION, named("ex7")),
        ));
        assert!(allowed);
        // The other webhooks do not judge exceptions.
        let reply = admission.review(
            Webhook::ValidatePolicy,
            &exception_review("u6", "CREATE", VERSION, invalid),
        );
        let answer: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
    }

    #[test]
    fn a_policy_that_would_pass_the_caps_in_force_is_refused_with_why() {
        use crate::policy::{Known, PolicySet, RoostPolicy, compile};
        let rules = |prefix: &str, count: usize| -> Vec<Value> {
            (0..count)
                .map(|i| {
                    json!({"code": format!("{prefix}_{i}"), "level": "error",
                                "expression": "true", "message": "m"})
                })
                .collect()
        };
        let policy = |name: &str, rules: Vec<Value>| {
            json!({"apiVersion": API_VERSION, "kind": POLICY_KIND,
                   "metadata": {"name": name}, "spec": {"rules": rules}})
        };
        let engine = Engine::default();
        let taken = Default::default();
        let known = Known { taken: &taken };
        let in_force: Vec<Arc<_>> = (0..5)
            .map(|i| {
                let name = format!("p{i}");
                let object = policy(&name, rules(&format!("P{i}"), 100));
                let policy: RoostPolicy = serde_json::from_value(object).unwrap();
                Arc::new(compile(&policy, &known).unwrap())
            })
            .collect();
        engine
            .policies
            .replace(PolicySet::new(in_force), Default::default());
        let admission = Admission::with_engine(ValidationCache::default(), Metrics::new(), engine);
        let judge = |object: Value| {
            let request = json!({
                "uid": "u", "operation": "CREATE",
                "kind": {"group": GROUP, "version": VERSION, "kind": POLICY_KIND},
                "resource": {"group": GROUP, "version": VERSION, "resource": "roostpolicies"},
                "object": object,
            });
            let reply = admission.review(Webhook::ValidatePolicy, &body(request));
            let answer: Value = serde_json::from_slice(&reply.body).unwrap();
            answer["response"].clone()
        };
        let refused = judge(policy("new", rules("NEW", 1)));
        assert_eq!(refused["allowed"], false, "{refused}");
        let message = refused["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "spec.rules: 1 more rule on top of the 500 in force would pass the 500 rules"
            ),
            "{message}"
        );
        for (what, object) in [
            ("no rules", policy("new", vec![])),
            ("a policy in force, changed", policy("p0", rules("P0", 100))),
        ] {
            let allowed = judge(object);
            assert_eq!(allowed["allowed"], true, "{what}: {allowed}");
        }
    }
}
