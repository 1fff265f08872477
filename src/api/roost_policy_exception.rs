//! `RoostPolicyException`: a justified, optionally time-boxed exemption of
//! some roosts of one namespace from some codes, granted by whoever may
//! write it (its ClusterRole is not aggregated into `admin` or `edit`, so a
//! tenant cannot exempt itself).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Exempts the roosts it names or selects, in its namespace, from `codes`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "roost.birb.party",
    version = "v1alpha1",
    kind = "RoostPolicyException",
    plural = "roostpolicyexceptions",
    singular = "roostpolicyexception",
    shortname = "rpolex",
    namespaced,
    doc = "Exempts ManagedRoosts of its namespace from policy codes and built-in warnings, with a justification and an optional expiry.",
    printcolumn = r#"{"name":"Codes","type":"string","jsonPath":".spec.codes"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","format":"date-time","jsonPath":".spec.expiresAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RoostPolicyExceptionSpec {
    /// The codes exempted: custom rules' codes and built-in warning and info
    /// codes (a built-in error means the roost cannot work and is never
    /// exempted).
    #[schemars(length(min = 1, max = 50))]
    pub codes: Vec<String>,
    /// The roosts exempted, by name; give this or `selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roosts: Option<Vec<String>>,
    /// The roosts exempted, by their labels; give this or `roosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Why the exemption is granted: shown in status, Reports and `validate`.
    #[schemars(length(min = 1, max = 1024))]
    pub justification: String,
    /// When the exemption stops applying (RFC 3339); absent, never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}
