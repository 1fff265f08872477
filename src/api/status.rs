//! `ManagedRoost` status: written by the status controller and by other
//! components (a Helm deployer, health checkers) through the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lifecycle phase of a roost.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Phase {
    Pending,
    Deploying,
    Ready,
    Failed,
    TearingDown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Deploying => "Deploying",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
            Phase::TearingDown => "TearingDown",
        }
    }
}

/// Observed state of a roost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRoostStatus {
    /// Pending, Deploying, Ready, Failed or TearingDown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Standard conditions: Validated and Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The generation the status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When roost-keeper last changed this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// When a reconciler last looked at the roost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Time>,
    /// Overall health: healthy, unhealthy, degraded or unknown.
    #[schemars(extend("enum" = ["healthy", "unhealthy", "degraded", "unknown"]))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Per-check results written by health checkers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<HealthCheckStatus>>,
    /// The Helm release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm_release: Option<HelmReleaseStatus>,
    /// Teardown triggers that have fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teardown: Option<TeardownStatus>,
    /// State of metrics, tracing and logging.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::scalar::opaque_object")]
    #[serde(default)]
    pub observability: Option<serde_json::Value>,
    /// Lifecycle history (bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleStatus>,
    /// Findings of policies (or rules) in Audit mode: no effect on the
    /// `Validated` condition or the phase (at most 20).
    #[schemars(length(max = 20))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_findings: Vec<AuditFinding>,
    /// Findings a RoostPolicyException exempts, with its justification
    /// (at most 20).
    #[schemars(length(max = 20))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<ExemptionStatus>,
}

/// Most entries of `auditFindings` and of `exemptions` each.
pub const MAX_STATUS_FINDINGS: usize = 20;

/// A finding of a policy in Audit mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditFinding {
    pub code: String,
    /// The level enforcing the rule would give: error, warning or info.
    pub level: String,
    pub field: String,
    pub message: String,
    /// The RoostPolicy whose rule reported it (absent for a built-in code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A finding a RoostPolicyException exempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionStatus {
    pub code: String,
    pub field: String,
    /// The RoostPolicyException's name (in the roost's namespace).
    pub exception: String,
    pub justification: String,
    /// When the exception stops applying (RFC 3339), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Result of one health check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckStatus {
    pub name: String,
    /// healthy, unhealthy or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check: Option<Time>,
    /// Consecutive failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The Helm release behind the roost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deployed: Option<Time>,
}

/// Teardown state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeardownStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered: Option<bool>,
    /// Which trigger fired and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[schemars(range(min = 0, max = 100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<i64>,
}

/// Lifecycle history: at most 50 records; counts are never reduced by trimming.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<Time>,
    /// Most recent records, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<LifecycleEventRecord>>,
    /// Records per type since creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_counts: Option<BTreeMap<String, i64>>,
    /// Time spent per phase (Go durations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_durations: Option<BTreeMap<String, String>>,
    /// The phase roost-keeper last saw, to notice a phase another component writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<String>,
    /// When `currentPhase` began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<Time>,
    /// The health roost-keeper last saw, to notice a health checker's change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_health: Option<String>,
    /// The chart version roost-keeper last saw, to notice an upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_chart_version: Option<String>,
}

/// One lifecycle record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEventRecord {
    /// Created, Installing, Ready, Upgrading, Healthy, Unhealthy, Failed, TeardownTriggered, ...
    #[serde(rename = "type")]
    pub type_: String,
    pub timestamp: Time,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}
