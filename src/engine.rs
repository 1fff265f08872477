//! The one verdict pipeline. The validating webhook (its quick path and its
//! full decode), the controller and `validate` read their input their own
//! way, keep their own caches, and call [`Engine::judge`] for the verdict;
//! the mutating webhook and `validate` call [`Engine::defaulted`] for the
//! defaults. So every caller gives the same answer by construction.
//!
//! The pipeline: the policies in force that select the object
//! ([`Engine::matching`]), the built-in rules on the decoded spec, the
//! policies' level overrides and custom rules, then the codes the object
//! silences, and every finding's field named in the version the object is
//! written in.
//!
//! The rules and defaults work on the hub (v1alpha1); CEL rules read the
//! storage version (v1beta1), so that every duration and quantity they see is
//! a string. Callers hand over the object as written and its version; the
//! conversions happen here, once, and only when needed.

use crate::api::ManagedRoostSpec;
use crate::api::convert::{convert_in_place, converted};
use crate::api::version::ApiVersion;
use crate::defaults::{Defaulted, apply_defaults};
use crate::policy::live::LivePolicies;
use crate::policy::{Evaluations, Labels, Matched};
use crate::validation::decode::{DecodedSpec, validate_decoded_with};
use crate::validation::{Registry, ValidationResult, silenced_codes};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Engine {
    /// The compiled-in rules (and an embedder's own).
    pub registry: Arc<Registry>,
    /// The RoostPolicies in force, and the namespaces' labels they select by.
    pub policies: Arc<LivePolicies>,
}

/// What a verdict depends on, as the caller read it.
#[derive(Clone, Copy, Debug)]
pub struct Case<'a> {
    /// The version the object (and the old one) is written in: the findings
    /// name its fields, and `policies`' objects are in it.
    pub version: ApiVersion,
    /// The spec as the lenient decoder read it: typed, with the type
    /// problems it found (SCHEMA_INVALID) and the fields it dropped.
    pub spec: &'a DecodedSpec,
    /// On UPDATE, the old object's spec (the rules on fields that may not
    /// change compare with it); `None` on CREATE and outside admission.
    pub old_spec: Option<&'a ManagedRoostSpec>,
    /// The policies that select the object ([`Engine::matching`]), with the
    /// objects their custom rules read; `None` when none does.
    pub policies: Option<PolicyCase<'a>>,
    /// The object's silence annotation
    /// ([`crate::validation::SILENCE_ANNOTATION`]), if any.
    pub silence: Option<&'a str>,
    /// When the verdict is formed: the caller's clock, never read here.
    /// Exceptions apply until their expiry; a caller that keeps a verdict
    /// must not keep it past [`Matched::next_expiry`].
    pub now: Timestamp,
}

/// The policies that select an object, with what their rules read.
#[derive(Clone, Copy, Debug)]
pub struct PolicyCase<'a> {
    pub matched: &'a Matched,
    /// The object as written, in [`Case::version`] (`apiVersion`, `kind`,
    /// `metadata`, `spec`).
    pub object: &'a Value,
    /// On UPDATE, the old object.
    pub old_object: Option<&'a Value>,
}

/// A verdict and how the custom rules that formed it went.
#[derive(Debug, Default)]
pub struct Judgement {
    pub result: ValidationResult,
    /// The custom rules' outcomes, for metrics.
    pub evaluations: Evaluations,
    /// Every custom rule that ran: (policy, code), for the pass results of
    /// a Report.
    pub rules: Vec<(String, String)>,
}

impl Engine {
    pub fn new(registry: Arc<Registry>) -> Self {
        Engine {
            registry,
            policies: Arc::default(),
        }
    }

    /// Whether any RoostPolicy is in force: without one, nothing needs the
    /// object's labels or its whole body.
    pub fn has_policies(&self) -> bool {
        !self.policies.is_empty()
    }

    /// The policies in force that select an object `name` in `namespace`
    /// (by that namespace's labels) with the labels `labels`, each with its
    /// mode there, and the exceptions that name or select it.
    pub fn matching(&self, namespace: &str, name: &str, labels: &Labels) -> Matched {
        if self.policies.is_empty() {
            return Matched::default();
        }
        let set = self.policies.set();
        let matched = if set.is_empty() {
            Matched::default()
        } else {
            set.matching(&self.policies.namespace_labels(namespace), labels)
        };
        matched.with_exceptions(self.policies.exceptions_for(namespace, name, labels))
    }

    /// The verdict on `case`: the built-in rules, then the matching
    /// policies' overrides and custom rules, then the silenced codes left
    /// out; fields named in the version written.
    pub fn judge(&self, case: &Case<'_>) -> Judgement {
        let builtin = validate_decoded_with(&self.registry, case.spec, case.old_spec);
        let (result, evaluations) = match case.policies {
            Some(policies) if !policies.matched.is_empty() => {
                // Only custom rules read the objects: convert for them alone.
                let to = if policies.matched.has_rules() {
                    ApiVersion::STORAGE
                } else {
                    case.version
                };
                let read = |object| converted(object, case.version, to);
                let object = read(policies.object);
                let old_object = policies.old_object.map(read);
                policies
                    .matched
                    .apply(&builtin, &object, old_object.as_deref(), case.now)
            }
            _ => (builtin, Evaluations::default()),
        };
        let silence = silenced_codes(case.silence);
        let result = if silence.is_empty() {
            result
        } else {
            result.silenced(&silence)
        };
        let rules = case
            .policies
            .map(|p| {
                p.matched
                    .rules()
                    .map(|(policy, code)| (policy.to_owned(), code.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Judgement {
            result: named_in(result, case.version),
            evaluations,
            rules,
        }
    }
}

/// `result`, whose fields are named in the hub's shape (or already in
/// `version`'s: renaming twice changes nothing), with each field named as
/// `version` names it.
pub fn named_in(mut result: ValidationResult, version: ApiVersion) -> ValidationResult {
    if version == ApiVersion::V1alpha1 {
        return result;
    }
    let findings = result
        .errors
        .iter_mut()
        .chain(result.warnings.iter_mut())
        .chain(result.info.iter_mut())
        .chain(result.audited.iter_mut())
        .chain(result.exempted.iter_mut().map(|e| &mut e.finding));
    for finding in findings {
        if let Cow::Owned(renamed) = version.field_from_hub(&finding.field) {
            finding.field = renamed;
        }
    }
    result
}

/// The mutating webhook's object: the matching policies' defaults merged
/// first (a field already set is kept), then the built-in defaults; the
/// patch leads from `object`, written in `version`, to it. Defaults are
/// applied to the hub, so an object of another version is converted there,
/// and what they set is converted back: its patch never writes a value that
/// version's schema refuses.
pub fn defaulted(object: &Value, version: ApiVersion, matched: &Matched) -> Defaulted {
    if version == ApiVersion::V1alpha1 {
        return defaulted_hub(object, matched);
    }
    let hub = converted(object, version, ApiVersion::V1alpha1);
    let in_hub = defaulted_hub(&hub, matched);
    let mut back = in_hub.object;
    convert_in_place(&mut back, ApiVersion::V1alpha1, version);
    // Only what the defaults set, as converted: converting the whole object
    // back would also retype what the user wrote (`interval: 30` in
    // v1beta1), which the apiserver's schema must still refuse.
    let mut out = object.clone();
    for operation in &in_hub.patch.0 {
        let pointer = pointer_in(version, operation.path().as_ref());
        if let Some(value) = back.pointer(&pointer) {
            set_at(&mut out, &pointer, value.clone());
        }
    }
    Defaulted {
        patch: json_patch::diff(object, &out),
        object: out,
    }
}

/// A JSON pointer in the hub's shape as `version` names it.
fn pointer_in(version: ApiVersion, pointer: &str) -> String {
    let dotted = pointer.trim_start_matches('/').replace('/', ".");
    match version.field_from_hub(&dotted) {
        Cow::Borrowed(_) => pointer.to_owned(),
        Cow::Owned(renamed) => format!("/{}", renamed.replace('.', "/")),
    }
}

/// Sets the value at `pointer`, whose parent exists (defaults add keys to
/// objects the object already has).
fn set_at(object: &mut Value, pointer: &str, value: Value) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match object.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
        }
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(at) if at < items.len() => items[at] = value,
            _ => items.push(value),
        },
        _ => {}
    }
}

fn defaulted_hub(object: &Value, matched: &Matched) -> Defaulted {
    if !matched.has_defaults() {
        return apply_defaults(object);
    }
    let mut merged = object.clone();
    matched.merge_defaults(&mut merged);
    let defaulted = apply_defaults(&merged);
    Defaulted {
        patch: json_patch::diff(object, &defaulted.object),
        object: defaulted.object,
    }
}

impl Default for Engine {
    /// The built-in rules, no policies.
    fn default() -> Self {
        Engine::new(Arc::new(Registry::builtin()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Known, PolicySet, RoostPolicy, compile};
    use crate::validation::decode::decode_spec;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn engine_with(name: &str, spec: Value) -> Engine {
        let policy: RoostPolicy = serde_json::from_value(json!({
            "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        let taken = BTreeMap::new();
        let known = Known { taken: &taken };
        let engine = Engine::default();
        engine.policies.replace(
            PolicySet::new(vec![Arc::new(compile(&policy, &known).unwrap())]),
            BTreeMap::new(),
        );
        engine
    }

    /// A roost in team-a whose chart has no version (an error).
    fn roost(labels: Value) -> Value {
        json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost",
               "metadata": {"name": "r", "namespace": "team-a", "labels": labels},
               "spec": {"chart": {"name": "web", "repository": {"url": "https://charts.example.com"}}}})
    }

    fn judged(engine: &Engine, object: &Value, silence: Option<&str>) -> Judgement {
        judged_in(engine, object, ApiVersion::V1alpha1, silence)
    }

    fn codes(judgement: &Judgement) -> Vec<&str> {
        judgement.result.all().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn every_step_of_the_pipeline_shows_in_the_verdict() {
        let engine = engine_with(
            "labelled",
            json!({
                "match": {"objectSelector": {"matchLabels": {"tier": "web"}}},
                "rules": [{"code": "OWNER_MISSING", "level": "warning",
                           "expression": "has(object.metadata.labels.owner)",
                           "message": "set an owner label"}]
            }),
        );
        // The built-in rules alone: the missing version is an error, no custom finding.
        let plain = judged(&engine, &roost(json!({})), None);
        let built_in = codes(&plain);
        assert!(built_in.contains(&"CHART_VERSION_MISSING"), "{built_in:?}");
        assert!(built_in.contains(&"NO_HEALTH_CHECKS"), "{built_in:?}");
        assert!(!built_in.contains(&"OWNER_MISSING"), "{built_in:?}");
        assert_eq!(plain.evaluations, Evaluations::default());

        // A policy that selects the object adds its custom rule's finding.
        let selected = roost(json!({"tier": "web"}));
        let with_policy = judged(&engine, &selected, None);
        let mut expected = built_in.clone();
        expected.push("OWNER_MISSING");
        let mut found = codes(&with_policy);
        found.sort_unstable();
        expected.sort_unstable();
        assert_eq!(found, expected);
        assert_eq!(with_policy.evaluations.failed, 1);

        // The silence annotation leaves its codes out; errors cannot be silenced.
        let silenced = judged(
            &engine,
            &selected,
            Some("OWNER_MISSING, NO_HEALTH_CHECKS,CHART_VERSION_MISSING"),
        );
        let left = codes(&silenced);
        assert!(left.contains(&"CHART_VERSION_MISSING"), "{left:?}");
        assert!(!left.contains(&"OWNER_MISSING"), "{left:?}");
        assert!(!left.contains(&"NO_HEALTH_CHECKS"), "{left:?}");
        assert_eq!(left.len(), found.len() - 2);
    }

    /// The verdict on `object`, written in `version`, as a caller forms it.
    fn judged_in(
        engine: &Engine,
        object: &Value,
        version: ApiVersion,
        silence: Option<&str>,
    ) -> Judgement {
        let mut hub = object.clone();
        convert_in_place(&mut hub, version, ApiVersion::V1alpha1);
        let spec = decode_spec(hub.get("spec"));
        let matched = engine.matching("team-a", "r", &crate::policy::labels_of(object));
        engine.judge(&Case {
            version,
            spec: &spec,
            old_spec: None,
            policies: Some(PolicyCase {
                matched: &matched,
                object,
                old_object: None,
            }),
            silence,
            now: Timestamp::UNIX_EPOCH,
        })
    }

    #[test]
    fn cel_reads_v1beta1_and_findings_name_the_version_written() {
        let engine = engine_with(
            "beta",
            json!({"rules": [
                {"code": "NO_INLINE_PASSWORD", "level": "warning",
                 "expression": "!has(object.spec.chart.repository.auth.deprecatedPassword)",
                 "field": "spec.chart.repository.auth.deprecatedPassword",
                 "message": "use a secretRef"},
                {"code": "SECONDS_ONLY", "level": "warning",
                 "expression": "object.apiVersion == 'roost.birb.party/v1beta1' && object.spec.healthChecks.all(c, !has(c.interval) || c.interval.endsWith('s'))",
                 "field": "spec.healthChecks",
                 "message": "write intervals in seconds"}
            ]}),
        );
        let mut alpha = roost(json!({}));
        alpha["spec"]["chart"]["repository"]["auth"] = json!({"password": "p"});
        alpha["spec"]["healthChecks"] =
            json!([{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 1}, "interval": 30}]);
        let beta = crate::api::convert::convert(&alpha, ApiVersion::V1beta1).unwrap();
        let custom = |judgement: &Judgement| -> Vec<(String, String)> {
            judgement
                .result
                .all()
                .filter(|f| matches!(f.code.as_str(), "NO_INLINE_PASSWORD" | "SECONDS_ONLY"))
                .map(|f| (f.code.clone(), f.field.clone()))
                .collect()
        };
        let pair = |code: &str, field: &str| (code.to_owned(), field.to_owned());
        // A v1alpha1 object is read as v1beta1 (the number 30 is the string
        // "30", so no rule needs a type check), and named as written.
        let from_alpha = judged_in(&engine, &alpha, ApiVersion::V1alpha1, None);
        assert_eq!(from_alpha.evaluations.errors, 0);
        assert_eq!(
            custom(&from_alpha),
            [
                pair("NO_INLINE_PASSWORD", "spec.chart.repository.auth.password"),
                pair("SECONDS_ONLY", "spec.healthChecks")
            ]
        );
        let from_beta = judged_in(&engine, &beta, ApiVersion::V1beta1, None);
        assert_eq!(from_beta.evaluations.errors, 0);
        assert_eq!(
            custom(&from_beta),
            [
                pair(
                    "NO_INLINE_PASSWORD",
                    "spec.chart.repository.auth.deprecatedPassword"
                ),
                pair("SECONDS_ONLY", "spec.healthChecks")
            ]
        );
        // The built-in findings are named likewise.
        let inline = |j: &Judgement| -> Vec<String> {
            j.result
                .all()
                .filter(|f| f.code == "AUTH_INLINE_CREDENTIALS")
                .map(|f| f.field.clone())
                .collect()
        };
        assert_eq!(inline(&from_alpha), ["spec.chart.repository.auth.password"]);
        assert_eq!(
            inline(&from_beta),
            ["spec.chart.repository.auth.deprecatedPassword"]
        );
        // Neither rule fires on an object that satisfies it.
        let mut clean = roost(json!({}));
        clean["spec"]["healthChecks"] = json!([{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 1}, "interval": "30s"}]);
        assert_eq!(
            custom(&judged_in(&engine, &clean, ApiVersion::V1alpha1, None)),
            []
        );
    }

    #[test]
    fn defaults_of_a_policy_come_first_and_keep_what_is_set() {
        let engine = engine_with(
            "defaults",
            json!({"defaults": {"chart": {"version": "1.2.3"}, "namespace": "apps"}}),
        );
        let mut object = roost(json!({}));
        object["spec"]["namespace"] = json!("mine");
        let matched = engine.matching("team-a", "r", &Labels::new());
        let out = defaulted(&object, ApiVersion::V1alpha1, &matched);
        assert_eq!(out.object["spec"]["chart"]["version"], "1.2.3");
        assert_eq!(out.object["spec"]["namespace"], "mine");
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &out.patch).unwrap();
        assert_eq!(patched, out.object);

        let without = defaulted(&object, ApiVersion::V1alpha1, &Matched::default());
        assert!(without.object["spec"]["chart"].get("version").is_none());
    }

    #[test]
    fn exceptions_in_force_select_by_namespace_and_name_and_apply_at_the_callers_now() {
        let engine = Engine::default();
        let exception: crate::api::roost_policy_exception::RoostPolicyException =
            serde_json::from_value(json!({
                "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
                "metadata": {"name": "ex", "namespace": "team-a"},
                "spec": {"codes": ["NO_HEALTH_CHECKS"], "roosts": ["r"],
                         "justification": "j", "expiresAt": "2026-12-31T00:00:00Z"}
            }))
            .unwrap();
        engine.policies.replace_exceptions(vec![Arc::new(
            crate::policy::exception::compile(&exception).unwrap(),
        )]);
        assert!(engine.has_policies());
        assert!(engine.matching("team-b", "r", &Labels::new()).is_empty());
        assert!(
            engine
                .matching("team-a", "other", &Labels::new())
                .is_empty()
        );
        let object = roost(json!({}));
        let at = |now: &str| {
            let spec = decode_spec(object.get("spec"));
            let matched = engine.matching("team-a", "r", &Labels::new());
            engine
                .judge(&Case {
                    version: ApiVersion::V1alpha1,
                    spec: &spec,
                    old_spec: None,
                    policies: Some(PolicyCase {
                        matched: &matched,
                        object: &object,
                        old_object: None,
                    }),
                    silence: None,
                    now: now.parse().unwrap(),
                })
                .result
        };
        let before = at("2026-12-30T00:00:00Z");
        assert!(!codes_of(&before).contains(&"NO_HEALTH_CHECKS"));
        assert_eq!(before.exempted[0].finding.code, "NO_HEALTH_CHECKS");
        let after = at("2026-12-31T00:00:00Z");
        assert!(codes_of(&after).contains(&"NO_HEALTH_CHECKS"));
        assert!(after.exempted.is_empty());
    }

    fn codes_of(result: &ValidationResult) -> Vec<&str> {
        result.all().map(|f| f.code.as_str()).collect()
    }
}
