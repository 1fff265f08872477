//! Policies: rules, level overrides and defaults that cluster admins add at
//! run time with `RoostPolicy` objects, applied the same way by the
//! webhooks, the controller and the offline validator.
//!
//! Pure and synchronous: a [`PolicySet`] is compiled from RoostPolicy
//! objects once per generation; [`PolicySet::matching`] picks the policies
//! for one roost (by its namespace's labels and its own), and [`Matched`]
//! applies them to a built-in verdict or to a spec's defaults.

pub mod cel;
pub mod cost;
pub mod exception;
pub mod live;
pub mod seen;
pub mod selector;

pub use crate::api::roost_policy::{
    LevelOverride, OverrideLevel, PolicyMatch, PolicyMode, PolicyRule, RoostPolicy,
    RoostPolicySpec, RoostPolicyStatus, RuleFailurePolicy, RuleLevel, ScopedMode,
};
use crate::api::version::ApiVersion;
use crate::validation::codes::{self, Code};
use crate::validation::finding;
use crate::validation::{Exemption, Finding, Level, ValidationResult};
use exception::CompiledException;
use k8s_openapi::jiff::Timestamp;
use selector::Selector;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The label every namespace carries, as the apiserver sets it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Most rules, overrides in one policy.
pub const MAX_RULES: usize = 100;
/// Most policies in force at once.
pub const MAX_POLICIES_IN_FORCE: usize = 100;
/// Most custom rules in force at once, over every policy.
pub const MAX_RULES_IN_FORCE: usize = 500;

/// Labels by key.
pub type Labels = BTreeMap<String, String>;

/// One custom rule, compiled.
#[derive(Debug)]
struct CompiledRule {
    code: String,
    level: Level,
    expression: cel::Expression,
    message: String,
    message_expression: Option<cel::Expression>,
    field: String,
    ignore_errors: bool,
    /// The rule's own mode, over the policy's.
    mode: Option<PolicyMode>,
}

/// A RoostPolicy ready to apply.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub name: String,
    pub generation: Option<i64>,
    namespace_selector: Option<Selector>,
    object_selector: Option<Selector>,
    rules: Vec<CompiledRule>,
    overrides: Vec<(String, OverrideLevel)>,
    defaults: Option<Value>,
    mode: PolicyMode,
    /// Modes by namespace, the first match winning over `mode`.
    scoped_modes: Vec<(Selector, PolicyMode)>,
    /// Identifies this policy's content (name and spec).
    fingerprint: u64,
}

impl CompiledPolicy {
    /// Whether the policy applies to a roost with these labels.
    pub fn matches(&self, namespace_labels: &Labels, object_labels: &Labels) -> bool {
        self.namespace_selector
            .as_ref()
            .is_none_or(|s| s.matches(namespace_labels))
            && self
                .object_selector
                .as_ref()
                .is_none_or(|s| s.matches(object_labels))
    }

    /// The policy's mode for roosts in a namespace with `namespace_labels`.
    pub fn mode_in(&self, namespace_labels: &Labels) -> PolicyMode {
        self.scoped_modes
            .iter()
            .find(|(selector, _)| selector.matches(namespace_labels))
            .map_or(self.mode, |(_, mode)| *mode)
    }

    /// Custom rules in the policy.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether `result` holds an error from one of this policy's rules, in
    /// whatever mode: an error rule shown as a warning (Warn) or audited
    /// (Audit) still counts, so a rule rolled out in Audit mode shows how
    /// many roosts enforcing it would refuse. Exempted findings do not count.
    pub fn violated_by(&self, result: &ValidationResult) -> bool {
        let evaluation_prefix = format!("policy {} rule ", self.name);
        let mut findings = result
            .errors
            .iter()
            .chain(&result.warnings)
            .chain(&result.audited);
        findings.any(|f| {
            self.rules
                .iter()
                .any(|r| r.code == f.code && r.level == Level::Error)
                || (f.code == codes::POLICY_EVALUATION_ERROR.name()
                    && f.message.starts_with(&evaluation_prefix))
        })
    }

    /// The codes this policy's rules report.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.code.as_str())
    }
}

/// A `POLICY_INVALID` error at `field`.
pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding::new(codes::POLICY_INVALID, field, message)
}

pub(crate) fn is_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && code.len() <= 64
}

/// What a policy is checked against besides the table of codes
/// ([`crate::validation::codes`]): the codes other policies already use.
pub struct Known<'a> {
    /// Codes of other policies' rules (not this policy's name).
    pub taken: &'a BTreeMap<String, String>,
}

/// Compiles a policy, or lists every problem (field paths under `spec`).
pub fn compile(policy: &RoostPolicy, known: &Known<'_>) -> Result<CompiledPolicy, Vec<Finding>> {
    let name = policy.metadata.name.clone().unwrap_or_default();
    let spec = &policy.spec;
    let mut problems = Vec::new();
    let selector = |field: &str,
                    s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
                    problems: &mut Vec<Finding>| {
        s.as_ref().and_then(|s| match Selector::new(s) {
            Ok(selector) => Some(selector),
            Err(message) => {
                problems.push(invalid(format!("spec.match.{field}"), message));
                None
            }
        })
    };
    let matching = spec.match_.clone().unwrap_or_default();
    let namespace_selector = selector(
        "namespaceSelector",
        &matching.namespace_selector,
        &mut problems,
    );
    let object_selector = selector("objectSelector", &matching.object_selector, &mut problems);
    let scoped_modes = spec
        .scoped_modes
        .iter()
        .enumerate()
        .filter_map(
            |(i, scoped)| match Selector::new(&scoped.namespace_selector) {
                Ok(selector) => Some((selector, scoped.mode)),
                Err(message) => {
                    problems.push(invalid(
                        format!("spec.scopedModes[{i}].namespaceSelector"),
                        message,
                    ));
                    None
                }
            },
        )
        .collect();
    if spec.scoped_modes.len() > MAX_RULES {
        problems.push(invalid(
            "spec.scopedModes",
            format!("at most {MAX_RULES} scoped modes"),
        ));
    }
    if spec.rules.len() > MAX_RULES || spec.overrides.len() > MAX_RULES {
        problems.push(invalid(
            "spec",
            format!("at most {MAX_RULES} rules and {MAX_RULES} overrides"),
        ));
        return Err(problems);
    }
    let rules = compile_rules(&name, spec, known, &mut problems);
    let overrides = check_overrides(spec, &mut problems);
    let defaults = check_defaults(spec, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CompiledPolicy {
        fingerprint: fingerprint(&name, spec),
        name,
        generation: policy.metadata.generation,
        namespace_selector,
        object_selector,
        rules,
        overrides,
        defaults,
        mode: spec.mode.unwrap_or_default(),
        scoped_modes,
    })
}

fn fingerprint(name: &str, spec: &RoostPolicySpec) -> u64 {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    // Serializing a spec into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut bytes, spec);
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

fn compile_rules(
    name: &str,
    spec: &RoostPolicySpec,
    known: &Known<'_>,
    problems: &mut Vec<Finding>,
) -> Vec<CompiledRule> {
    let mut rules = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let at = |part: &str| format!("spec.rules[{i}].{part}");
        let mut ok = true;
        if !is_code(&rule.code) {
            problems.push(invalid(
                at("code"),
                format!(
                    "{} is not a code: upper case letters, digits and _, starting with a letter",
                    crate::validation::finding::shown_max(&rule.code, 64)
                ),
            ));
            ok = false;
        } else if codes::lookup(&rule.code).is_some() {
            problems.push(invalid(
                at("code"),
                format!("{} is a roost-keeper code; choose another", rule.code),
            ));
            ok = false;
        } else if seen.contains(&rule.code.as_str()) {
            problems.push(invalid(
                at("code"),
                format!("{} is used by an earlier rule of this policy", rule.code),
            ));
            ok = false;
        } else if let Some(other) = known.taken.get(&rule.code).filter(|other| *other != name) {
            problems.push(invalid(
                at("code"),
                format!("{} is used by policy {other}", rule.code),
            ));
            ok = false;
        }
        seen.push(&rule.code);
        if rule.message.trim().is_empty() {
            problems.push(invalid(at("message"), "a rule needs a message"));
            ok = false;
        }
        let expression = cel::compile(&rule.expression)
            .map_err(|e| problems.push(invalid(at("expression"), e.to_string())));
        let message_expression = match &rule.message_expression {
            None => Ok(None),
            Some(source) => cel::compile(source)
                .map(Some)
                .map_err(|e| problems.push(invalid(at("messageExpression"), e.to_string()))),
        };
        if let (Ok(expression), Ok(message_expression), true) = (expression, message_expression, ok)
        {
            rules.push(CompiledRule {
                code: rule.code.clone(),
                level: match rule.level {
                    RuleLevel::Error => Level::Error,
                    RuleLevel::Warning => Level::Warning,
                    RuleLevel::Info => Level::Info,
                },
                expression,
                message: rule.message.clone(),
                message_expression,
                // Written against the v1beta1 object CEL reads; kept in the
                // hub's shape, as the built-in findings are, for the engine
                // to name in the version of each object.
                field: rule.field.as_deref().filter(|f| !f.is_empty()).map_or_else(
                    || "spec".to_owned(),
                    |f| ApiVersion::V1beta1.field_to_hub(f).into_owned(),
                ),
                ignore_errors: rule.failure_policy == Some(RuleFailurePolicy::Ignore),
                mode: rule.mode,
            });
        }
    }
    rules
}

fn check_overrides(
    spec: &RoostPolicySpec,
    problems: &mut Vec<Finding>,
) -> Vec<(String, OverrideLevel)> {
    let mut overrides = Vec::new();
    for (i, o) in spec.overrides.iter().enumerate() {
        let field = format!("spec.overrides[{i}]");
        match codes::lookup(&o.code)
            .filter(|c| c.is_built_in())
            .map(Code::level)
        {
            None => problems.push(invalid(
                format!("{field}.code"),
                format!(
                    "{} is not a built-in code",
                    crate::validation::finding::shown_max(&o.code, 64)
                ),
            )),
            Some(Level::Error) if o.level != OverrideLevel::Error => problems.push(invalid(
                format!("{field}.level"),
                format!(
                    "{} is a built-in error and cannot be lowered (it protects the controller)",
                    o.code
                ),
            )),
            Some(_) if overrides.iter().any(|(c, _)| c == &o.code) => {
                problems.push(invalid(
                    format!("{field}.code"),
                    format!("{} is overridden earlier in this policy", o.code),
                ));
            }
            Some(_) => overrides.push((o.code.clone(), o.level)),
        }
    }
    overrides
}

fn check_defaults(spec: &RoostPolicySpec, problems: &mut Vec<Finding>) -> Option<Value> {
    let defaults = spec.defaults.as_ref()?;
    if !defaults.is_object() {
        problems.push(invalid(
            "spec.defaults",
            "defaults must be a partial ManagedRoost spec (an object)",
        ));
        return None;
    }
    let decoded = crate::validation::decode::decode_spec(Some(defaults));
    let before = problems.len();
    for finding in decoded.findings {
        let field = finding
            .field
            .strip_prefix("spec")
            .unwrap_or(&finding.field)
            .to_owned();
        problems.push(invalid(format!("spec.defaults{field}"), finding.message));
    }
    (problems.len() == before).then(|| defaults.clone())
}

/// Every policy in force, in name order, and the ones that did not compile.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Arc<CompiledPolicy>>,
}

impl PolicySet {
    /// The set of `policies` (their order does not matter: name order is used).
    pub fn new(mut policies: Vec<Arc<CompiledPolicy>>) -> Self {
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        PolicySet { policies }
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn policies(&self) -> &[Arc<CompiledPolicy>] {
        &self.policies
    }

    /// Whether any policy has custom rules (judging may then take up to a
    /// review's CEL budget).
    pub fn has_rules(&self) -> bool {
        self.policies.iter().any(|p| p.rule_count() > 0)
    }

    /// Custom codes in use, with the policy using each.
    pub fn codes(&self) -> BTreeMap<String, String> {
        self.policies
            .iter()
            .flat_map(|p| p.codes().map(|c| (c.to_owned(), p.name.clone())))
            .collect()
    }

    /// The policies for a roost in namespace `namespace` (labels `namespace_labels`, if
    /// known) with its own `labels`.
    pub fn matching(&self, namespace_labels: &Labels, object_labels: &Labels) -> Matched {
        Matched {
            policies: self
                .policies
                .iter()
                .filter(|p| p.matches(namespace_labels, object_labels))
                .map(|p| (Arc::clone(p), p.mode_in(namespace_labels)))
                .collect(),
            exceptions: Vec::new(),
        }
    }
}

/// The policies and rules put in force so far, against the caps.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capacity {
    policies: usize,
    rules: usize,
}

impl Capacity {
    /// Counts one more policy of `rules` custom rules, or says which cap it would pass.
    pub fn admit(&mut self, rules: usize) -> Result<(), String> {
        if self.policies >= MAX_POLICIES_IN_FORCE {
            return Err(format!(
                "{} RoostPolicies are in force, the most there may be; delete one first",
                self.policies
            ));
        }
        if self.rules + rules > MAX_RULES_IN_FORCE {
            return Err(format!(
                "{rules} more {} on top of the {} in force would pass the {MAX_RULES_IN_FORCE} rules there may be in all; remove rules first",
                if rules == 1 { "rule" } else { "rules" },
                self.rules
            ));
        }
        self.policies += 1;
        self.rules += rules;
        Ok(())
    }
}

impl PolicySet {
    /// Whether policy `name` with `rules` custom rules fits beside the
    /// other policies in force (an earlier version of it is replaced).
    pub fn room_for(&self, name: &str, rules: usize) -> Result<(), String> {
        let mut capacity = Capacity::default();
        for policy in self.policies.iter().filter(|p| p.name != name) {
            capacity.admit(policy.rule_count())?;
        }
        capacity.admit(rules)
    }
}

/// Builds the set from compiled candidates: in name order, a policy whose
/// custom code an earlier policy already uses, or that would pass the caps
/// on policies and rules in force, is left out (its name and why are
/// returned with those that did not compile).
pub fn assemble(
    candidates: Vec<(String, Result<Arc<CompiledPolicy>, String>)>,
) -> (PolicySet, BTreeMap<String, String>) {
    let mut candidates = candidates;
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut policies = Vec::new();
    let mut failed = BTreeMap::new();
    let mut capacity = Capacity::default();
    for (name, candidate) in candidates {
        match candidate {
            Err(why) => {
                failed.insert(name, why);
            }
            Ok(policy) => {
                let clash = policy.codes().find_map(|c| {
                    taken
                        .get(c)
                        .map(|o| format!("code {c} is used by policy {o}"))
                });
                if let Some(clash) = clash {
                    failed.insert(name, clash);
                    continue;
                }
                if let Err(full) = capacity.admit(policy.rule_count()) {
                    failed.insert(name, full);
                    continue;
                }
                for code in policy.codes() {
                    taken.insert(code.to_owned(), name.clone());
                }
                policies.push(policy);
            }
        }
    }
    (PolicySet::new(policies), failed)
}

/// The policy whose custom rule reports `code`, among `rules` ((policy,
/// code) of the rules that ran, as [`Matched::rules`] lists them).
pub fn rule_owner<'a>(rules: &'a [(String, String)], code: &str) -> Option<&'a str> {
    rules
        .iter()
        .find(|(_, c)| c == code)
        .map(|(policy, _)| policy.as_str())
}

/// An object's `metadata.labels`, as JSON (entries whose value is not text
/// are left out: the cluster refuses them).
pub fn labels_of(object: &Value) -> Labels {
    labels_in(object.pointer("/metadata/labels"))
}

/// The string-valued entries of a `metadata.labels` value (none unless it is an object).
pub fn labels_in(labels: Option<&Value>) -> Labels {
    labels
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// The labels a namespace has when nothing else is known about it.
pub fn default_namespace_labels(namespace: &str) -> Labels {
    Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())])
}

/// How the custom rules of one application went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evaluations {
    pub passed: u64,
    pub failed: u64,
    /// Evaluation errors, the budget running out aside.
    pub errors: u64,
    /// Rules not evaluated to the end because the review's budget ran out.
    pub over_budget: u64,
}

/// The policies that apply to one roost, in name order, each with its mode
/// there, and the exceptions that name or select it (held, so a set
/// replaced meanwhile does not change a verdict being formed).
#[derive(Debug, Default)]
pub struct Matched {
    policies: Vec<(Arc<CompiledPolicy>, PolicyMode)>,
    exceptions: Vec<Arc<CompiledException>>,
}

impl Matched {
    /// No policy and no exception applies.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.exceptions.is_empty()
    }

    /// These policies with `exceptions` (those selecting the same roost).
    pub fn with_exceptions(mut self, exceptions: Vec<Arc<CompiledException>>) -> Self {
        self.exceptions = exceptions;
        self
    }

    /// Identifies the policies (their content and modes) and exceptions that
    /// apply: part of a cache key.
    pub fn fingerprint(&self) -> u64 {
        let policies = self
            .policies
            .iter()
            .map(|(p, mode)| p.fingerprint ^ (*mode as u64).wrapping_mul(0x100_0000_01b3));
        let exceptions = self
            .exceptions
            .iter()
            .map(|e| e.fingerprint.rotate_left(17));
        policies
            .chain(exceptions)
            .fold(0x9e37_79b9_7f4a_7c15, |acc, f| acc.rotate_left(5) ^ f)
    }

    /// The policies, in name order.
    pub fn policies(&self) -> impl Iterator<Item = &CompiledPolicy> {
        self.policies.iter().map(|(p, _)| p.as_ref())
    }

    /// The exceptions that select the roost, expired or not.
    pub fn exceptions(&self) -> impl Iterator<Item = &CompiledException> {
        self.exceptions.iter().map(Arc::as_ref)
    }

    /// The first expiry after `now` of an exception that selects the roost:
    /// a verdict formed now is not the same past it.
    pub fn next_expiry(&self, now: Timestamp) -> Option<Timestamp> {
        self.exceptions
            .iter()
            .filter_map(|e| e.expires_at)
            .filter(|at| *at > now)
            .min()
    }

    /// Every custom rule that runs on the roost: (policy, code).
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str)> {
        self.policies()
            .flat_map(|p| p.codes().map(move |c| (p.name.as_str(), c)))
    }

    /// The policies in Enforce mode here: the only ones whose defaults apply.
    fn enforced(&self) -> impl Iterator<Item = &CompiledPolicy> {
        self.policies
            .iter()
            .filter(|(_, mode)| *mode == PolicyMode::Enforce)
            .map(|(p, _)| p.as_ref())
    }

    /// Whether any policy in Enforce mode has defaults.
    pub fn has_defaults(&self) -> bool {
        self.enforced().any(|p| p.defaults.is_some())
    }

    /// Whether any of the policies has custom rules (which read the object).
    pub fn has_rules(&self) -> bool {
        self.policies().any(|p| !p.rules.is_empty())
    }

    /// Merges the defaults of the policies in Enforce mode into `spec`
    /// (created if absent), in name order, never overwriting a field that is
    /// set; a list is set only when absent. Returns whether anything was added.
    pub fn merge_defaults(&self, object: &mut Value) -> bool {
        let Some(object) = object.as_object_mut() else {
            return false;
        };
        let spec = object
            .entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
        if spec.is_null() {
            *spec = Value::Object(Default::default());
        }
        let mut changed = false;
        for defaults in self.enforced().filter_map(|p| p.defaults.as_ref()) {
            changed |= merge_absent(spec, defaults);
        }
        changed
    }

    /// The verdict with the policies applied: overrides change built-in
    /// levels (first policy in name order wins), then every custom rule runs
    /// on `object` (and `old_object` on UPDATE); each policy's (or rule's)
    /// mode decides what its findings do; then the exceptions in force at
    /// `now` move the findings they exempt out of the verdict.
    pub fn apply(
        &self,
        builtin: &ValidationResult,
        object: &Value,
        old_object: Option<&Value>,
        now: Timestamp,
    ) -> (ValidationResult, Evaluations) {
        let mut findings: Vec<Finding> = Vec::new();
        let mut audited: Vec<Finding> = Vec::new();
        for finding in builtin.all() {
            let Some((level, mode)) = self.override_for(&finding.code) else {
                findings.push(finding.clone());
                continue;
            };
            let overridden = (level != OverrideLevel::Off).then(|| Finding {
                level: raised_or_lowered(finding.level, level),
                ..finding.clone()
            });
            match mode {
                PolicyMode::Enforce => findings.extend(overridden),
                PolicyMode::Warn => findings.extend(overridden.map(|o| Finding {
                    // A raised level is lowered back to a warning; a
                    // built-in error stays one.
                    level: o.level.max(finding.level.min(Level::Warning)),
                    ..o
                })),
                PolicyMode::Audit => {
                    findings.push(finding.clone());
                    // Only a raise would change what admission does.
                    audited.extend(overridden.filter(|o| o.level < finding.level));
                }
            }
        }
        let mut evaluations = Evaluations::default();
        if self.has_rules() {
            let variables = cel::Variables::new(object, old_object);
            // One budget for every rule of every matching policy.
            let mut budget = cost::Budget::default();
            for (policy, policy_mode) in &self.policies {
                for rule in &policy.rules {
                    let Some(finding) =
                        evaluate(policy, rule, &variables, &mut budget, &mut evaluations)
                    else {
                        continue;
                    };
                    match rule.mode.unwrap_or(*policy_mode) {
                        PolicyMode::Enforce => findings.push(finding),
                        PolicyMode::Warn => findings.push(Finding {
                            level: finding.level.max(Level::Warning),
                            ..finding
                        }),
                        PolicyMode::Audit => audited.push(finding),
                    }
                }
            }
        }
        let mut exempted = Vec::new();
        let active: Vec<&CompiledException> =
            self.exceptions().filter(|e| e.active_at(now)).collect();
        if !active.is_empty() {
            let mut exempt = |findings: Vec<Finding>| -> Vec<Finding> {
                findings
                    .into_iter()
                    .filter_map(|finding| {
                        let by = exception::exemptable(&finding.code)
                            .then(|| active.iter().find(|e| e.exempts(&finding.code)))
                            .flatten();
                        match by {
                            None => Some(finding),
                            Some(by) => {
                                exempted.push(Exemption {
                                    finding,
                                    exception: by.name.clone(),
                                    justification: by.justification.clone(),
                                    expires_at: by.expires_at.map(|at| at.to_string()),
                                });
                                None
                            }
                        }
                    })
                    .collect()
            };
            findings = exempt(findings);
            audited = exempt(audited);
        }
        let mut result = ValidationResult::from_findings(findings);
        result.audited = finding::bounded(audited);
        result.exempted = finding::bounded_exemptions(exempted);
        (result, evaluations)
    }

    /// The first override of `code` by name, with its policy's mode here.
    fn override_for(&self, code: &str) -> Option<(OverrideLevel, PolicyMode)> {
        self.policies.iter().find_map(|(p, mode)| {
            p.overrides
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, l)| (*l, *mode))
        })
    }
}

/// A built-in error stays an error whatever the override says (refused at
/// admission; kept here so that no path can lower one).
fn raised_or_lowered(current: Level, wanted: OverrideLevel) -> Level {
    let wanted = match wanted {
        OverrideLevel::Error | OverrideLevel::Off => Level::Error,
        OverrideLevel::Warning => Level::Warning,
        OverrideLevel::Info => Level::Info,
    };
    if current == Level::Error {
        Level::Error
    } else {
        wanted
    }
}

fn evaluate(
    policy: &CompiledPolicy,
    rule: &CompiledRule,
    variables: &cel::Variables<'_>,
    budget: &mut cost::Budget,
    evaluations: &mut Evaluations,
) -> Option<Finding> {
    let outcome = rule.expression.is_true(variables, budget);
    if outcome.is_err() {
        match budget.exceeded() {
            Some(_) => evaluations.over_budget += 1,
            None => evaluations.errors += 1,
        }
    }
    match outcome {
        Ok(true) => {
            evaluations.passed += 1;
            None
        }
        Ok(false) => {
            evaluations.failed += 1;
            let message = rule
                .message_expression
                .as_ref()
                .and_then(|m| m.text(variables, budget).ok())
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| rule.message.clone());
            Some(Finding {
                code: rule.code.clone(),
                level: rule.level,
                field: rule.field.clone(),
                message,
            })
        }
        Err(_) if rule.ignore_errors => None,
        Err(error) => Some(Finding::new(
            codes::POLICY_EVALUATION_ERROR,
            rule.field.clone(),
            format!(
                "policy {} rule {} could not be evaluated: {error}",
                policy.name, rule.code
            ),
        )),
    }
}

/// Adds what `defaults` has and `target` lacks; objects merge key by key,
/// anything else (a list, a scalar) is set only when absent. Returns whether
/// anything was added.
fn merge_absent(target: &mut Value, defaults: &Value) -> bool {
    let (Some(target), Some(defaults)) = (target.as_object_mut(), defaults.as_object()) else {
        return false;
    };
    let mut changed = false;
    for (key, default) in defaults {
        match target.get_mut(key) {
            None | Some(Value::Null) => {
                target.insert(key.clone(), default.clone());
                changed = true;
            }
            Some(existing) if existing.is_object() => changed |= merge_absent(existing, default),
            Some(_) => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, spec: Value) -> RoostPolicy {
        let mut policy = RoostPolicy::new(name, serde_json::from_value(spec).unwrap());
        policy.metadata.generation = Some(1);
        policy
    }

    fn compiled(name: &str, spec: Value) -> CompiledPolicy {
        let taken = BTreeMap::new();
        compile(&policy(name, spec), &Known { taken: &taken }).unwrap()
    }

    fn finding(code: &str, level: Level) -> Finding {
        Finding {
            code: code.into(),
            level,
            field: "spec".into(),
            message: "m".into(),
        }
    }

    #[test]
    fn every_policy_problem_is_listed_with_its_field() {
        let taken = BTreeMap::from([("TAKEN_CODE".to_owned(), "other".to_owned())]);
        let known = Known { taken: &taken };
        let spec = json!({
            "match": {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Is"}]}},
            "rules": [
                {"code": "lower", "level": "error", "expression": "true", "message": "m"},
                {"code": "CHART_NAME_MISSING", "level": "error", "expression": "true", "message": "m"},
                {"code": "TAKEN_CODE", "level": "error", "expression": "true", "message": "m"},
                {"code": "BAD_CEL", "level": "error", "expression": "object.spec ==", "message": "m"},
                {"code": "NO_MESSAGE", "level": "error", "expression": "true", "message": " "}
            ],
            "overrides": [
                {"code": "CHART_VERSION_MISSING", "level": "warning"},
                {"code": "NOT_A_CODE", "level": "off"}
            ],
            "defaults": {"healthChecks": {"not": "a list"}}
        });
        let problems = compile(&policy("p", spec), &known).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.match.namespaceSelector",
                "spec.rules[0].code",
                "spec.rules[1].code",
                "spec.rules[2].code",
                "spec.rules[3].expression",
                "spec.rules[4].message",
                "spec.overrides[0].level",
                "spec.overrides[1].code",
                "spec.defaults.healthChecks",
            ],
            "{problems:#?}"
        );
        assert!(
            problems[4].message.starts_with("line 1 column 15"),
            "{}",
            problems[4].message
        );
        assert!(
            problems[6].message.contains("cannot be lowered"),
            "{}",
            problems[6].message
        );
    }

    #[test]
    fn overrides_raise_lower_and_silence_but_never_lower_errors() {
        let p = compiled(
            "p",
            json!({"overrides": [
                {"code": "CHART_VERSION_UNPINNED", "level": "error"},
                {"code": "CHART_REPO_INSECURE", "level": "off"},
                {"code": "AUTH_INLINE_CREDENTIALS", "level": "info"}
            ]}),
        );
        let set = PolicySet::new(vec![Arc::new(p)]);
        let builtin = ValidationResult::from_findings(vec![
            finding("CHART_VERSION_UNPINNED", Level::Warning),
            finding("CHART_REPO_INSECURE", Level::Warning),
            finding("AUTH_INLINE_CREDENTIALS", Level::Warning),
            finding("CHART_NAME_MISSING", Level::Error),
        ]);
        let (result, _) = set.matching(&Labels::new(), &Labels::new()).apply(
            &builtin,
            &json!({}),
            None,
            Timestamp::UNIX_EPOCH,
        );
        let levels: Vec<(&str, Level)> = result.all().map(|f| (f.code.as_str(), f.level)).collect();
        assert_eq!(
            levels,
            [
                ("CHART_NAME_MISSING", Level::Error),
                ("CHART_VERSION_UNPINNED", Level::Error),
                ("AUTH_INLINE_CREDENTIALS", Level::Info)
            ]
        );
        assert_eq!(
            raised_or_lowered(Level::Error, OverrideLevel::Info),
            Level::Error
        );
    }

    #[test]
    fn custom_rules_report_failures_and_evaluation_errors() {
        let p = compiled(
            "prod",
            json!({
                "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
                "rules": [
                    {"code": "TEARDOWN_REQUIRED", "level": "error", "expression": "has(object.spec.teardownPolicy)",
                     "message": "prod roosts need a teardown policy", "field": "spec.teardownPolicy"},
                    {"code": "NAME_SHORT", "level": "warning", "expression": "object.metadata.name.size() < 4",
                     "message": "m", "messageExpression": "'name ' + object.metadata.name + ' is long'"},
                    {"code": "BROKEN", "level": "error", "expression": "object.spec.missing.x == 1", "message": "m"},
                    {"code": "IGNORED", "level": "error", "expression": "object.spec.missing.x == 1", "message": "m", "failurePolicy": "Ignore"},
                    {"code": "UPDATE_ONLY", "level": "error", "expression": "oldObject == null || oldObject.spec == object.spec", "message": "m"}
                ]
            }),
        );
        let set = PolicySet::new(vec![Arc::new(p)]);
        let prod = Labels::from([("env".to_owned(), "prod".to_owned())]);
        let object = json!({"metadata": {"name": "payments"}, "spec": {"chart": {"name": "x"}}});
        let matched = set.matching(&prod, &Labels::new());
        let (result, evaluations) = matched.apply(
            &ValidationResult::from_findings(vec![]),
            &object,
            None,
            Timestamp::UNIX_EPOCH,
        );
        let found: Vec<(&str, &str, &str)> = result
            .all()
            .map(|f| (f.code.as_str(), f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            found[0],
            (
                "TEARDOWN_REQUIRED",
                "spec.teardownPolicy",
                "prod roosts need a teardown policy"
            )
        );
        assert_eq!(found[1].0, "POLICY_EVALUATION_ERROR");
        assert!(
            found[1]
                .2
                .starts_with("policy prod rule BROKEN could not be evaluated: no such key"),
            "{}",
            found[1].2
        );
        assert_eq!(found[2], ("NAME_SHORT", "spec", "name payments is long"));
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            evaluations,
            Evaluations {
                passed: 1,
                failed: 2,
                errors: 2,
                over_budget: 0
            }
        );
        assert!(set.policies()[0].violated_by(&result));
        assert!(set.matching(&Labels::new(), &Labels::new()).is_empty());
    }

    #[test]
    fn defaults_fill_only_what_is_absent_first_policy_first() {
        let a = compiled(
            "a-preview",
            json!({"defaults": {"teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "72h"}]},
                                                         "observability": {"logging": {"level": "info"}}}}),
        );
        let b = compiled(
            "b-preview",
            json!({"defaults": {"teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "1h"}]},
                                                         "observability": {"logging": {"level": "debug", "format": "json"}}}}),
        );
        let set = PolicySet::new(vec![Arc::new(b), Arc::new(a)]);
        let matched = set.matching(&Labels::new(), &Labels::new());
        let mut object = json!({"spec": {"observability": {"logging": {"format": "text"}}}});
        assert!(matched.merge_defaults(&mut object));
        assert_eq!(
            object["spec"]["teardownPolicy"]["triggers"][0]["timeout"],
            "72h"
        );
        assert_eq!(
            object["spec"]["observability"]["logging"],
            json!({"format": "text", "level": "info"})
        );
        let mut set_list = json!({"spec": {"teardownPolicy": {"triggers": []}, "observability": {"logging": {"level": "warn", "format": "json"}}}});
        assert!(!matched.merge_defaults(&mut set_list), "{set_list}");
    }

    fn with_rules(name: &str, count: usize, expression: &str, ignore: bool) -> CompiledPolicy {
        let rules: Vec<Value> = (0..count)
            .map(|i| {
                json!({"code": format!("{}_{i}", name.to_uppercase().replace('-', "_")),
                       "level": "error", "expression": expression, "message": "m",
                       "failurePolicy": if ignore { "Ignore" } else { "Fail" }})
            })
            .collect();
        compiled(name, json!({ "rules": rules }))
    }

    fn health_checks(count: usize) -> Value {
        let checks: Vec<Value> = (0..count)
            .map(|i| json!({"name": format!("check-{i}"), "type": "http"}))
            .collect();
        json!({"metadata": {"name": "web"}, "spec": {"healthChecks": checks}})
    }

    const PAIRWISE: &str = "object.spec.healthChecks.all(a, object.spec.healthChecks.all(b, a == b || a.name != b.name))";

    #[test]
    fn one_budget_covers_every_rule_of_every_matching_policy() {
        let object = health_checks(100);
        let empty = ValidationResult::from_findings(vec![]);
        // One such rule fits in a review's budget; a hundred do not.
        let one = PolicySet::new(vec![Arc::new(with_rules("one", 1, PAIRWISE, false))]);
        let (result, evaluations) = one.matching(&Labels::new(), &Labels::new()).apply(
            &empty,
            &object,
            None,
            Timestamp::UNIX_EPOCH,
        );
        assert!(result.valid, "{result:?}");
        assert_eq!((evaluations.passed, evaluations.over_budget), (1, 0));

        let many = PolicySet::new(vec![
            Arc::new(with_rules("a-many", 50, PAIRWISE, false)),
            Arc::new(with_rules("b-many", 50, PAIRWISE, true)),
        ]);
        let (result, evaluations) = many.matching(&Labels::new(), &Labels::new()).apply(
            &empty,
            &object,
            None,
            Timestamp::UNIX_EPOCH,
        );
        assert!(evaluations.passed > 0, "{evaluations:?}");
        assert!(evaluations.over_budget > 0, "{evaluations:?}");
        assert_eq!(evaluations.passed + evaluations.over_budget, 100);
        assert_eq!(evaluations.errors, 0);
        // Fail rules report the budget; Ignore rules (policy b) leave no finding.
        let over: Vec<&Finding> = result.errors.iter().collect();
        assert!(!over.is_empty());
        assert!(
            over.iter().all(|f| f.code == "POLICY_EVALUATION_ERROR"
                && f.message.starts_with("policy a-many rule A_MANY_")
                && f.message
                    .ends_with("the review's CEL cost budget (4000000 units) is used up")),
            "{over:#?}"
        );
        assert!(u64::try_from(over.len()).unwrap() < evaluations.over_budget);
    }

    #[test]
    fn policies_and_rules_in_force_are_capped() {
        let candidates = |policies: usize, rules: usize| {
            (0..policies)
                .map(|i| {
                    let name = format!("p{i:03}");
                    let policy = with_rules(&name, rules, "true", false);
                    (name, Ok(Arc::new(policy)))
                })
                .collect::<Vec<_>>()
        };
        let (set, failed) = assemble(candidates(MAX_POLICIES_IN_FORCE + 2, 0));
        assert_eq!(set.policies().len(), MAX_POLICIES_IN_FORCE);
        assert_eq!(failed.keys().collect::<Vec<_>>(), ["p100", "p101"]);
        assert!(
            failed["p100"].contains("100 RoostPolicies are in force"),
            "{failed:?}"
        );
        assert!(set.room_for("new", 0).is_err());
        assert_eq!(
            set.room_for("p000", 5),
            Ok(()),
            "a policy in force may change"
        );

        let (set, failed) = assemble(candidates(6, 100));
        assert_eq!(set.policies().len(), 5);
        assert!(
            failed["p005"].contains("would pass the 500 rules"),
            "{failed:?}"
        );
        assert!(set.room_for("new", 1).is_err());
        assert_eq!(set.room_for("new", 0), Ok(()));
        assert_eq!(set.room_for("p004", 100), Ok(()));
        assert!(set.room_for("p004", 101).is_err());
    }

    /// (where, mode) -> the levels a custom error rule and a raised
    /// override give in the verdict, and what is audited.
    #[test]
    fn each_mode_does_what_the_table_says() {
        type Row = (
            &'static str,
            Value,
            Vec<(&'static str, Level)>,
            Vec<(&'static str, Level)>,
        );
        let rule = |mode: Value| {
            let mut rule = json!({"code": "OWNER_REQUIRED", "level": "error",
                                  "expression": "false", "message": "set an owner"});
            if !mode.is_null() {
                rule["mode"] = mode;
            }
            rule
        };
        let spec = |mode: Value, rule_mode: Value| {
            let mut spec = json!({
                "rules": [rule(rule_mode)],
                "overrides": [{"code": "CHART_VERSION_UNPINNED", "level": "error"}],
                "defaults": {"namespace": "apps"}
            });
            if !mode.is_null() {
                spec["mode"] = mode;
            }
            spec
        };
        let rows: Vec<Row> = vec![
            (
                "no mode is Enforce",
                spec(Value::Null, Value::Null),
                vec![
                    ("CHART_VERSION_UNPINNED", Level::Error),
                    ("OWNER_REQUIRED", Level::Error),
                ],
                vec![],
            ),
            (
                "Warn: errors become warnings",
                spec(json!("Warn"), Value::Null),
                vec![
                    ("CHART_VERSION_UNPINNED", Level::Warning),
                    ("OWNER_REQUIRED", Level::Warning),
                ],
                vec![],
            ),
            (
                "Audit: the built-in level stands, the rest is audited",
                spec(json!("Audit"), Value::Null),
                vec![("CHART_VERSION_UNPINNED", Level::Warning)],
                vec![
                    ("CHART_VERSION_UNPINNED", Level::Error),
                    ("OWNER_REQUIRED", Level::Error),
                ],
            ),
            (
                "a rule's own mode wins over the policy's",
                spec(json!("Enforce"), json!("Audit")),
                vec![("CHART_VERSION_UNPINNED", Level::Error)],
                vec![("OWNER_REQUIRED", Level::Error)],
            ),
        ];
        let builtin = ValidationResult::from_findings(vec![
            finding("CHART_NAME_MISSING", Level::Error),
            finding("CHART_VERSION_UNPINNED", Level::Warning),
        ]);
        for (name, spec, verdict, audited) in rows {
            let enforced = spec.get("mode").is_none_or(|m| m == "Enforce");
            let set = PolicySet::new(vec![Arc::new(compiled("p", spec))]);
            let matched = set.matching(&Labels::new(), &Labels::new());
            let (result, _) = matched.apply(&builtin, &json!({}), None, Timestamp::UNIX_EPOCH);
            let levels = |list: &[Finding]| -> Vec<(String, Level)> {
                list.iter().map(|f| (f.code.clone(), f.level)).collect()
            };
            let mut expected: Vec<(String, Level)> =
                vec![("CHART_NAME_MISSING".into(), Level::Error)];
            expected.extend(verdict.iter().map(|(c, l)| ((*c).to_owned(), *l)));
            let mut got = levels(&result.errors);
            got.extend(levels(&result.warnings));
            expected.sort();
            got.sort();
            assert_eq!(got, expected, "{name}");
            let expected_audited: Vec<(String, Level)> =
                audited.iter().map(|(c, l)| ((*c).to_owned(), *l)).collect();
            assert_eq!(levels(&result.audited), expected_audited, "{name}");
            // A built-in error is never lowered, whatever the mode.
            assert!(!result.valid, "{name}");
            // Defaults apply only in Enforce mode.
            let mut object = json!({});
            assert_eq!(matched.merge_defaults(&mut object), enforced, "{name}");
            assert_eq!(matched.has_defaults(), enforced, "{name}");
            // Whatever the mode, the failing error rule is a violation.
            assert!(set.policies()[0].violated_by(&result), "{name}");
        }
    }

    #[test]
    fn scoped_modes_follow_the_namespace_labels() {
        let p = compiled(
            "p",
            json!({
                "mode": "Enforce",
                "scopedModes": [
                    {"namespaceSelector": {"matchLabels": {"env": "dev"}}, "mode": "Audit"},
                    {"namespaceSelector": {"matchLabels": {"env": "staging"}}, "mode": "Warn"},
                    {"namespaceSelector": {}, "mode": "Warn"}
                ],
                "rules": [{"code": "OWNER_REQUIRED", "level": "error", "expression": "false", "message": "m"}]
            }),
        );
        let env = |value: &str| Labels::from([("env".to_owned(), value.to_owned())]);
        assert_eq!(p.mode_in(&env("dev")), PolicyMode::Audit);
        assert_eq!(p.mode_in(&env("staging")), PolicyMode::Warn);
        // The first match wins; an empty selector matches every namespace.
        assert_eq!(p.mode_in(&env("prod")), PolicyMode::Warn);
        let unscoped = compiled("q", json!({"mode": "Audit"}));
        assert_eq!(unscoped.mode_in(&env("prod")), PolicyMode::Audit);
        assert_eq!(
            compiled("r", json!({})).mode_in(&env("prod")),
            PolicyMode::Enforce
        );
        let set = PolicySet::new(vec![Arc::new(p)]);
        let empty = ValidationResult::default();
        let verdict = |labels: &Labels| {
            set.matching(labels, &Labels::new())
                .apply(&empty, &json!({}), None, Timestamp::UNIX_EPOCH)
                .0
        };
        let dev = verdict(&env("dev"));
        assert!(dev.valid && dev.warnings.is_empty() && dev.audited.len() == 1);
        let staging = verdict(&env("staging"));
        assert!(staging.valid && staging.warnings.len() == 1 && staging.audited.is_empty());

        let taken = BTreeMap::new();
        let problems = compile(
            &policy(
                "bad",
                json!({"scopedModes": [{"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Is"}]}, "mode": "Warn"}]}),
            ),
            &Known { taken: &taken },
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "spec.scopedModes[0].namespaceSelector");
    }

    #[test]
    fn exceptions_exempt_policy_codes_and_built_in_warnings_until_they_expire() {
        let exception: crate::api::roost_policy_exception::RoostPolicyException =
            serde_json::from_value(json!({
                "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
                "metadata": {"name": "ex", "namespace": "team-a"},
                "spec": {"codes": ["OWNER_REQUIRED", "CHART_VERSION_UNPINNED", "AUDITED_RULE"],
                         "roosts": ["web"], "justification": "migrating until Friday",
                         "expiresAt": "2026-12-31T00:00:00Z"}
            }))
            .unwrap();
        let exception = Arc::new(exception::compile(&exception).unwrap());
        let p = compiled(
            "p",
            json!({"rules": [
                {"code": "OWNER_REQUIRED", "level": "error", "expression": "false", "message": "m"},
                {"code": "AUDITED_RULE", "level": "error", "expression": "false", "message": "m", "mode": "Audit"},
                {"code": "OTHER_RULE", "level": "warning", "expression": "false", "message": "m"}
            ]}),
        );
        let set = PolicySet::new(vec![Arc::new(p)]);
        let matched = set
            .matching(&Labels::new(), &Labels::new())
            .with_exceptions(vec![exception]);
        let builtin = ValidationResult::from_findings(vec![
            finding("CHART_VERSION_UNPINNED", Level::Warning),
            finding("NO_HEALTH_CHECKS", Level::Warning),
        ]);
        let before: Timestamp = "2026-12-30T23:59:59Z".parse().unwrap();
        let expiry: Timestamp = "2026-12-31T00:00:00Z".parse().unwrap();
        assert_eq!(matched.next_expiry(before), Some(expiry));
        assert_eq!(matched.next_expiry(expiry), None);
        let (active, _) = matched.apply(&builtin, &json!({}), None, before);
        assert!(active.valid, "{active:#?}");
        let codes =
            |list: &[Finding]| -> Vec<String> { list.iter().map(|f| f.code.clone()).collect() };
        assert_eq!(codes(&active.warnings), ["NO_HEALTH_CHECKS", "OTHER_RULE"]);
        let exempted: Vec<(&str, &str, &str)> = active
            .exempted
            .iter()
            .map(|e| {
                (
                    e.finding.code.as_str(),
                    e.exception.as_str(),
                    e.justification.as_str(),
                )
            })
            .collect();
        assert_eq!(
            exempted,
            [
                ("CHART_VERSION_UNPINNED", "ex", "migrating until Friday"),
                ("OWNER_REQUIRED", "ex", "migrating until Friday"),
                ("AUDITED_RULE", "ex", "migrating until Friday"),
            ]
        );
        assert_eq!(
            active.exempted[0].expires_at.as_deref(),
            Some("2026-12-31T00:00:00Z")
        );
        assert!(active.audited.is_empty());
        // Exempted errors and a failing warning rule are no violation.
        assert!(!set.policies()[0].violated_by(&active));
        // Expired: as if it did not exist.
        let (expired, _) = matched.apply(&builtin, &json!({}), None, expiry);
        assert!(!expired.valid);
        assert_eq!(codes(&expired.errors), ["OWNER_REQUIRED"]);
        assert_eq!(codes(&expired.audited), ["AUDITED_RULE"]);
        assert!(expired.exempted.is_empty());
        assert!(set.policies()[0].violated_by(&expired));
    }
}
