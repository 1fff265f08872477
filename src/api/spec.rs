//! `ManagedRoost` spec: what users write. Strings stay strings, numbers are
//! optional integers, so a wrong value is a finding, never a decode failure.

use super::scalar::{
    DurationText, NumberText, QuantityText, Scalar, opaque_object, opaque_object_list,
};
use super::status::ManagedRoostStatus;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Helm release managed by roost-keeper: the chart, how to tell it is
/// healthy, when to tear it down, tenancy and observability.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "roost.birb.party",
    version = "v1alpha1",
    kind = "ManagedRoost",
    plural = "managedroosts",
    singular = "managedroost",
    shortname = "roost",
    namespaced,
    status = "ManagedRoostStatus",
    doc = "A Helm release managed by roost-keeper, with health checks, teardown policy, tenancy and observability.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health"}"#,
    printcolumn = r#"{"name":"Chart","type":"string","jsonPath":".spec.chart.name"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.chart.version"}"#,
    printcolumn = r#"{"name":"Valid","type":"string","jsonPath":".status.conditions[?(@.type==\"Validated\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["chart"]))]
pub struct ManagedRoostSpec {
    /// The Helm chart to install: repository, name, version and values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartSpec>,
    /// Health checks run against the release; each has a unique name and one type block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<HealthCheckSpec>>,
    /// When and how the roost is torn down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teardown_policy: Option<TeardownPolicySpec>,
    /// Multi-tenant configuration: tenant id, namespace isolation, RBAC, network policy, quotas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<TenancySpec>,
    /// Metrics, tracing and logging for this roost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilitySpec>,
    /// Free-form key/value metadata for operational tracking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Target namespace for the Helm release (a DNS-1123 label); immutable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The Helm chart to install.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["repository", "name", "version"]))]
pub struct ChartSpec {
    /// Where the chart comes from.
    pub repository: Option<ChartRepositorySpec>,
    /// Chart name: lower case letters, digits and '-', e.g. ingress-nginx.
    pub name: Option<String>,
    /// An exact semver version (4.8.3) or a range (^1.2, ~1.2.0, >=1.0 <2.0, 1.2.x); ranges draw a warning.
    #[schemars(with = "Option<String>")]
    pub version: Option<Scalar>,
    /// Values passed to the chart: inline YAML, ConfigMaps, Secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<ChartValuesSpec>,
    /// Helm upgrade behaviour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_policy: Option<UpgradePolicySpec>,
    /// Helm hooks configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HookPolicySpec>,
}

/// A chart repository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["url"]))]
pub struct ChartRepositorySpec {
    /// Repository URL with scheme http, https, oci or git+https.
    pub url: Option<String>,
    /// Repository type; defaulted from the URL scheme (oci://, git+https://, else http).
    #[schemars(extend("enum" = ["http", "oci", "git"]))]
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Credentials for a private repository; prefer secretRef to inline secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<RepositoryAuthSpec>,
    /// TLS settings for the repository connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// Repository credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryAuthSpec {
    /// A Secret holding the credentials (recommended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
    /// Username for basic auth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Inline password (discouraged: use secretRef).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Inline token (discouraged: use secretRef).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Authentication type; defaults to basic.
    #[schemars(extend("enum" = ["basic", "token", "docker-config"]))]
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// TLS settings for an outgoing connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Enable TLS (gRPC checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Skip certificate verification (draws a warning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Server name for certificate verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM CA bundle, base64-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// A Secret holding TLS material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
    /// A Secret holding a client certificate for mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate_ref: Option<SecretReference>,
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Secret name.
    pub name: Option<String>,
    /// Secret namespace (defaults to the roost's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Key within the Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Chart values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartValuesSpec {
    /// Inline values: a YAML mapping, written as a string or as a mapping.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::scalar::inline_values")]
    #[serde(default)]
    pub inline: Option<serde_json::Value>,
    /// Values read from ConfigMaps (each needs a name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map_refs: Option<Vec<ValueSourceRef>>,
    /// Values read from Secrets (each needs a name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_refs: Option<Vec<ValueSourceRef>>,
    /// Template processing of values.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub template: Option<serde_json::Value>,
}

/// A ConfigMap or Secret holding chart values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueSourceRef {
    /// Name of the ConfigMap or Secret.
    pub name: Option<String>,
    /// Key within it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Helm upgrade behaviour.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePolicySpec {
    /// Force resource updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// Upgrade timeout (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Roll back on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atomic: Option<bool>,
    /// Delete new resources on a failed upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,
}

/// Helm hooks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookPolicySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_install: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_install: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_upgrade: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_upgrade: Option<bool>,
    /// Hook timeout (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
}

/// One health check: a unique name, a type and the block for that type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "type"]))]
pub struct HealthCheckSpec {
    /// Unique name of the check.
    pub name: Option<String>,
    /// Check type; the block of the same name must be present.
    #[schemars(extend("enum" = ["http", "tcp", "udp", "grpc", "prometheus", "kubernetes"]))]
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// HTTP check (type http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckSpec>,
    /// TCP check (type tcp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckSpec>,
    /// UDP check (type udp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpCheckSpec>,
    /// gRPC health protocol check (type grpc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcCheckSpec>,
    /// Prometheus query check (type prometheus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusCheckSpec>,
    /// Kubernetes workload readiness check (type kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesCheckSpec>,
    /// Time between checks (Go duration, default 30s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationText>,
    /// Time one check may take (Go duration, default 10s); keep it below interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Consecutive failures before the check counts as unhealthy (>= 1, default 3).
    #[schemars(range(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<i64>")]
    pub failure_threshold: Option<NumberText>,
    /// Weight in the composite health score (0-100, default 1).
    #[schemars(range(min = 0, max = 100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<i64>")]
    pub weight: Option<NumberText>,
}

/// HTTP check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["url"]))]
pub struct HttpCheckSpec {
    /// http or https URL to probe.
    pub url: Option<String>,
    /// GET, POST, PUT or HEAD (default GET).
    #[schemars(extend("enum" = ["GET", "POST", "PUT", "HEAD"]))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Status codes that count as healthy (100-599).
    #[schemars(inner(range(min = 100, max = 599)))]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<i64>>")]
    pub expected_codes: Option<Vec<NumberText>>,
    /// Pattern the body must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_body: Option<String>,
    /// Request headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// TLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// TCP check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["host", "port"]))]
pub struct TcpCheckSpec {
    /// Host to connect to.
    pub host: Option<String>,
    /// Port (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    #[schemars(with = "Option<i64>")]
    pub port: Option<NumberText>,
    /// Data to send after connecting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_data: Option<String>,
    /// Expected response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_response: Option<String>,
    /// Connect timeout (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_timeout: Option<DurationText>,
    /// Reuse connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_pooling: Option<bool>,
}

/// UDP check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["host", "port"]))]
pub struct UdpCheckSpec {
    /// Host to send to.
    pub host: Option<String>,
    /// Port (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    #[schemars(with = "Option<i64>")]
    pub port: Option<NumberText>,
    /// Payload to send (default "ping").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_data: Option<String>,
    /// Expected response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_response: Option<String>,
    /// Time to wait for a reply (Go duration, default 5s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<DurationText>,
    /// Attempts (1-10, default 3).
    #[schemars(range(min = 1, max = 10))]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<i64>")]
    pub retries: Option<NumberText>,
}

/// gRPC health protocol check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["host", "port"]))]
pub struct GrpcCheckSpec {
    /// Host to dial.
    pub host: Option<String>,
    /// Port (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    #[schemars(with = "Option<i64>")]
    pub port: Option<NumberText>,
    /// Service name (empty: the whole server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// TLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Authentication (prefer Secret references to inline tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
    /// Connection pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<GrpcConnectionPoolSpec>,
    /// Retry policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<GrpcRetryPolicySpec>,
    /// Use the streaming Watch method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_streaming: Option<bool>,
    /// Load balancing across endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub load_balancing: Option<serde_json::Value>,
    /// Circuit breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<GrpcCircuitBreakerSpec>,
    /// Metadata sent with each request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// gRPC connection pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcConnectionPoolSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_idle_time: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_time: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_timeout: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_interval: Option<DurationText>,
}

/// gRPC retry policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRetryPolicySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<NumberText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable_status_codes: Option<Vec<String>>,
}

/// gRPC circuit breaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcCircuitBreakerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub half_open_timeout: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_timeout: Option<DurationText>,
}

/// Prometheus query check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["query", "threshold"]))]
pub struct PrometheusCheckSpec {
    /// PromQL query.
    pub query: Option<String>,
    /// Threshold the query result is compared with (a number).
    pub threshold: Option<NumberText>,
    /// gt, gte, lt, lte, eq or ne.
    #[schemars(extend("enum" = ["gt", "gte", "lt", "lte", "eq", "ne"]))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Prometheus URL; or use serviceDiscovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Find Prometheus through a Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub service_discovery: Option<serde_json::Value>,
    /// Authentication (prefer Secret references to inline tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
    /// Query timeout (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_timeout: Option<DurationText>,
    /// Result cache TTL (Go duration).
    #[serde(rename = "cacheTTL", skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<DurationText>,
    /// Trend analysis over a time window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend_analysis: Option<TrendAnalysisSpec>,
    /// Labels added to metrics and logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Prometheus trend analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrendAnalysisSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Window (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_window: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub improvement_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degradation_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_improving_unhealthy: Option<bool>,
}

/// Kubernetes workload readiness check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesCheckSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_pods: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_deployments: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_services: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_dependencies: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_stateful_sets: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_daemon_sets: Option<bool>,
    /// Extra label selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub label_selector: Option<serde_json::Value>,
    /// Fraction of pods that must be ready (0-1).
    #[schemars(range(min = 0, max = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<f64>")]
    pub required_ready_ratio: Option<NumberText>,
    /// Timeout of one API call (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_timeout: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_caching: Option<bool>,
    /// Result cache TTL (Go duration).
    #[serde(rename = "cacheTTL", skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_pod_restarts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pod_restarts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_resource_limits: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_node_health: Option<bool>,
    /// Custom resources to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object_list")]
    #[serde(default)]
    pub custom_resources: Option<Vec<serde_json::Value>>,
}

/// When and how the roost is torn down.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeardownPolicySpec {
    /// Conditions that trigger a teardown; any one firing is enough.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<TeardownTriggerSpec>>,
    /// Record a fired trigger but wait for the annotation roost.birb.party/teardown-approved: "true".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_manual_approval: Option<bool>,
    /// What to keep on teardown.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub data_preservation: Option<serde_json::Value>,
    /// How resources are removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupSpec>,
}

/// A teardown trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["type"]))]
pub struct TeardownTriggerSpec {
    /// timeout, failure_count, resource_threshold, schedule or webhook; set the field of the same name.
    #[schemars(extend("enum" = ["timeout", "failure_count", "resource_threshold", "schedule", "webhook"]))]
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// For type timeout: age after which the roost is torn down (Go duration, at least 5m advised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// For type failure_count: health check failures that trigger teardown (>= 1).
    #[schemars(range(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<i64>")]
    pub failure_count: Option<NumberText>,
    /// For type resource_threshold: usage limits (percentages or quantities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_threshold: Option<ResourceThresholdSpec>,
    /// For type schedule: a 5-field cron expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// For type webhook: the URL called to decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTriggerSpec>,
}

/// Resource usage thresholds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceThresholdSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<QuantityText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<QuantityText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<QuantityText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<BTreeMap<String, QuantityText>>,
}

/// Webhook teardown trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["url"]))]
pub struct WebhookTriggerSpec {
    /// http or https URL.
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Authentication (prefer Secret references to inline tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
}

/// Cleanup on teardown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSpec {
    /// Grace period (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
}

/// Multi-tenant configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancySpec {
    /// Tenant id (a DNS-1123 label); immutable once set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Namespace isolation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_isolation: Option<NamespaceIsolationSpec>,
    /// RBAC for the tenant; rbac.tenantId defaults to tenantId.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac: Option<RbacSpec>,
    /// Network policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub network_policy: Option<serde_json::Value>,
    /// Resource quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_quota: Option<ResourceQuotaSpec>,
}

/// Namespace isolation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceIsolationSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Prefix of tenant namespaces; must be able to start a DNS-1123 label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Tenant RBAC.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RbacSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Tenant id for scoped permissions; must equal spec.tenancy.tenantId when both are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub identity_provider_config: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object_list")]
    #[serde(default)]
    pub service_accounts: Option<Vec<serde_json::Value>>,
    /// Roles: names of templates or role objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    #[serde(default)]
    pub roles: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object_list")]
    #[serde(default)]
    pub role_bindings: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_templates: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub audit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub policy_validation: Option<serde_json::Value>,
    /// Service account name (older manifests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

fn any_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"x-kubernetes-preserve-unknown-fields": true}
    })
}

/// Resource quota for the tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuotaSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Hard limits (resource name to quantity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hard: Option<BTreeMap<String, QuantityText>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// Observability.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingSpec>,
}

/// Metrics collection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Collection interval (Go duration, at least 1s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object_list")]
    #[serde(default)]
    pub custom: Option<Vec<serde_json::Value>>,
}

/// Distributed tracing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracingSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fraction of traces sampled (0-1), e.g. "0.1".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<NumberText>,
    /// Where traces are sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<TracingEndpointSpec>,
}

/// Tracing endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracingEndpointSpec {
    /// Collector URL with scheme and host.
    pub url: Option<String>,
    /// Authentication (prefer Secret references to inline tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
}

/// Logging.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSpec {
    /// debug, info, warn or error.
    #[schemars(extend("enum" = ["debug", "info", "warn", "error"]))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object_list")]
    #[serde(default)]
    pub outputs: Option<Vec<serde_json::Value>>,
}
