//! `RoostPolicy`: what a cluster admin writes to add rules (CEL), change the
//! level of built-in codes and set defaults for the ManagedRoosts it matches.

use crate::api::scalar::opaque_object;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rules, level overrides and defaults for the ManagedRoosts a policy matches.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "roost.birb.party",
    version = "v1alpha1",
    kind = "RoostPolicy",
    plural = "roostpolicies",
    singular = "roostpolicy",
    shortname = "rpol",
    status = "RoostPolicyStatus",
    doc = "Cluster-wide rules (CEL), level overrides and defaults for the ManagedRoosts it matches.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Rules","type":"integer","jsonPath":".status.rules"}"#,
    printcolumn = r#"{"name":"Matched","type":"integer","jsonPath":".status.matched"}"#,
    printcolumn = r#"{"name":"Violations","type":"integer","jsonPath":".status.violations"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RoostPolicySpec {
    /// Which ManagedRoosts the policy applies to; absent, every ManagedRoost.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_: Option<PolicyMatch>,
    /// Custom rules: a CEL expression each, true when the roost passes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PolicyRule>,
    /// New levels for built-in codes: warnings and infos may be raised,
    /// lowered or turned off; errors cannot be lowered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<LevelOverride>,
    /// A partial ManagedRoost spec merged into matching roosts at admission,
    /// before the built-in defaults; it never overwrites a field that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub defaults: Option<serde_json::Value>,
    /// What the policy's findings do (default Enforce): Enforce refuses on
    /// an error and warns on a warning; Warn turns its errors into admission
    /// warnings; Audit has no admission effect (status, Report and metrics
    /// only). Defaults apply only in Enforce mode. Built-in errors are never
    /// lowered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PolicyMode>,
    /// Modes by the roost's namespace: the first entry whose selector
    /// matches the namespace's labels replaces `mode` there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scoped_modes: Vec<ScopedMode>,
}

/// What a policy's (or a rule's) findings do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PolicyMode {
    /// Errors refuse, warnings warn (the default).
    #[default]
    Enforce,
    /// Errors become admission warnings; nothing is refused.
    Warn,
    /// No admission effect: findings show in status, Reports and metrics.
    Audit,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "Enforce",
            PolicyMode::Warn => "Warn",
            PolicyMode::Audit => "Audit",
        }
    }
}

/// A mode for the roosts of the namespaces a selector matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopedMode {
    /// Selects by the labels of the roost's namespace (every namespace has
    /// `kubernetes.io/metadata.name`).
    pub namespace_selector: LabelSelector,
    pub mode: PolicyMode,
}

/// Label selectors on the roost's namespace and on the roost itself; both must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMatch {
    /// Selects by the labels of the roost's namespace (every namespace has
    /// `kubernetes.io/metadata.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Selects by the roost's own labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// One custom rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// The finding's code: upper case, digits and underscores; not a built-in
    /// code, unique across all policies.
    pub code: String,
    /// The finding's level: error (denies), warning or info.
    pub level: RuleLevel,
    /// CEL, evaluating to a bool: true when the roost passes. Variables:
    /// `object` (the roost as admitted, defaults applied) and `oldObject`
    /// (null on CREATE).
    pub expression: String,
    /// The finding's message when the expression is false.
    pub message: String,
    /// CEL evaluating to a string, used as the message instead of `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
    /// The field the finding names (default `spec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What an evaluation error means: Fail (an error finding,
    /// POLICY_EVALUATION_ERROR; the default) or Ignore (the rule passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<RuleFailurePolicy>,
    /// This rule's own mode, over the policy's (scoped or not): a rule can
    /// be rolled out in Audit inside an enforced policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PolicyMode>,
}

/// Level of a custom rule's finding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    #[default]
    Error,
    Warning,
    Info,
}

/// What an evaluation error of a rule means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RuleFailurePolicy {
    Fail,
    Ignore,
}

/// A new level for a built-in code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LevelOverride {
    /// A built-in code (see `roost-keeper explain --list` or RULES.md).
    pub code: String,
    /// error, warning, info, or off (not reported).
    pub level: OverrideLevel,
}

/// Level given to a built-in code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverrideLevel {
    #[default]
    Error,
    Warning,
    Info,
    Off,
}

/// Written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoostPolicyStatus {
    /// `Ready`: True (Compiled) or False (CompileFailed, with the message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Custom rules in the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<i64>,
    /// ManagedRoosts the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<i64>,
    /// Of those, how many have an error from this policy's rules now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<i64>,
}
