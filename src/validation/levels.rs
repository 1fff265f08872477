//! The default level of every built-in code (RULES.md), for policy
//! overrides: a built-in error cannot be lowered.

use super::Level;

/// Every code the built-in rules and the decoder report, with its level.
pub const BUILTIN_LEVELS: &[(&str, Level)] = &[
    ("SCHEMA_INVALID", Level::Error),
    ("HTTP_CONFIG_MISSING", Level::Error),
    ("TCP_CONFIG_MISSING", Level::Error),
    ("UDP_CONFIG_MISSING", Level::Error),
    ("GRPC_CONFIG_MISSING", Level::Error),
    ("PROMETHEUS_CONFIG_MISSING", Level::Error),
    ("KUBERNETES_CONFIG_MISSING", Level::Error),
    ("TCP_HOST_MISSING", Level::Error),
    ("UDP_HOST_MISSING", Level::Error),
    ("GRPC_HOST_MISSING", Level::Error),
    ("TCP_PORT_INVALID", Level::Error),
    ("UDP_PORT_INVALID", Level::Error),
    ("GRPC_PORT_INVALID", Level::Error),
    ("CHART_NAME_MISSING", Level::Error),
    ("CHART_NAME_INVALID", Level::Error),
    ("CHART_VERSION_MISSING", Level::Error),
    ("CHART_VERSION_INVALID", Level::Error),
    ("CHART_VERSION_UNPINNED", Level::Warning),
    ("CHART_REPO_URL_MISSING", Level::Error),
    ("CHART_REPO_URL_INVALID", Level::Error),
    ("CHART_REPO_TYPE_INVALID", Level::Error),
    ("CHART_REPO_TYPE_MISMATCH", Level::Error),
    ("CHART_REPO_INSECURE", Level::Warning),
    ("AUTH_TYPE_INVALID", Level::Error),
    ("AUTH_INLINE_CREDENTIALS", Level::Warning),
    ("AUTH_CREDENTIALS_INCOMPLETE", Level::Error),
    ("TLS_INSECURE_SKIP_VERIFY", Level::Warning),
    ("VALUES_INLINE_INVALID", Level::Error),
    ("VALUES_REF_NAME_MISSING", Level::Error),
    ("NO_HEALTH_CHECKS", Level::Info),
    ("HEALTH_CHECK_NAME_MISSING", Level::Error),
    ("HEALTH_CHECK_NAME_DUPLICATE", Level::Error),
    ("HEALTH_CHECK_TYPE_MISSING", Level::Error),
    ("HEALTH_CHECK_TYPE_INVALID", Level::Error),
    ("HEALTH_CHECK_CONFIG_MISMATCH", Level::Warning),
    ("HTTP_URL_MISSING", Level::Error),
    ("HTTP_URL_INVALID", Level::Error),
    ("HTTP_METHOD_INVALID", Level::Error),
    ("HTTP_EXPECTED_CODE_INVALID", Level::Error),
    ("UDP_RETRIES_INVALID", Level::Error),
    ("PROMETHEUS_QUERY_MISSING", Level::Error),
    ("PROMETHEUS_THRESHOLD_MISSING", Level::Error),
    ("PROMETHEUS_THRESHOLD_INVALID", Level::Error),
    ("PROMETHEUS_OPERATOR_INVALID", Level::Error),
    ("PROMETHEUS_ENDPOINT_MISSING", Level::Warning),
    ("KUBERNETES_READY_RATIO_INVALID", Level::Error),
    ("FAILURE_THRESHOLD_INVALID", Level::Error),
    ("WEIGHT_INVALID", Level::Error),
    ("DURATION_INVALID", Level::Error),
    ("HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL", Level::Warning),
    ("HEALTH_CHECK_INTERVAL_TOO_SHORT", Level::Warning),
    ("NO_TEARDOWN_POLICY", Level::Info),
    ("TEARDOWN_TRIGGERS_MISSING", Level::Warning),
    ("TRIGGER_TYPE_MISSING", Level::Error),
    ("TRIGGER_TYPE_INVALID", Level::Error),
    ("TIMEOUT_MISSING", Level::Error),
    ("TEARDOWN_TIMEOUT_TOO_SHORT", Level::Warning),
    ("FAILURE_COUNT_MISSING", Level::Error),
    ("FAILURE_COUNT_INVALID", Level::Error),
    ("FAILURE_COUNT_WITHOUT_HEALTH_CHECKS", Level::Warning),
    ("SCHEDULE_MISSING", Level::Error),
    ("SCHEDULE_INVALID", Level::Error),
    ("RESOURCE_THRESHOLD_MISSING", Level::Error),
    ("RESOURCE_THRESHOLD_INVALID", Level::Error),
    ("WEBHOOK_TRIGGER_URL_MISSING", Level::Error),
    ("WEBHOOK_TRIGGER_URL_INVALID", Level::Error),
    ("TENANT_ID_MISSING", Level::Error),
    ("TENANT_ID_INVALID", Level::Error),
    ("TENANT_ID_MISMATCH", Level::Error),
    ("TENANT_ID_IMMUTABLE", Level::Error),
    ("NAMESPACE_ISOLATION_PREFIX_INVALID", Level::Error),
    ("RESOURCE_QUOTA_EMPTY", Level::Warning),
    ("TRACING_ENDPOINT_URL_MISSING", Level::Error),
    ("TRACING_ENDPOINT_URL_INVALID", Level::Error),
    ("SAMPLING_RATE_INVALID", Level::Error),
    ("LOG_LEVEL_INVALID", Level::Error),
    ("METRICS_INTERVAL_TOO_SHORT", Level::Error),
    ("TARGET_NAMESPACE_INVALID", Level::Error),
    ("TARGET_NAMESPACE_IMMUTABLE", Level::Error),
];

/// The level of a built-in code.
pub fn builtin_level(code: &str) -> Option<Level> {
    BUILTIN_LEVELS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_the_registry_reports_has_a_level() {
        let missing: Vec<&str> = super::super::Registry::global()
            .codes()
            .into_iter()
            .filter(|code| builtin_level(code).is_none())
            .collect();
        assert!(missing.is_empty(), "no level for {missing:?}");
    }
}
