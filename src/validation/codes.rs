//! Every finding code roost-keeper reports, declared once: its name, its
//! default level and a one-line summary, in the order of RULES.md. Rules
//! report through these declarations ([`super::Findings::report`]), so a
//! rule cannot disagree with the table about a level; `explain` reads the
//! level and summary here and keeps only its prose, keyed by the code; a
//! RoostPolicy may override the built-in codes' levels (never lower an
//! error).

use super::Level;

/// A finding code with its default level and summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    name: &'static str,
    level: Level,
    summary: &'static str,
    built_in: bool,
}

impl Code {
    /// A code of an embedder's own rule ([`super::Rule`]); the built-in
    /// codes are the constants of this module.
    pub const fn new(name: &'static str, level: Level, summary: &'static str) -> Self {
        Code {
            name,
            level,
            summary,
            built_in: false,
        }
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The level a finding of this code has unless a RoostPolicy overrides it.
    pub const fn level(self) -> Level {
        self.level
    }

    /// One line: what the code means.
    pub const fn summary(self) -> &'static str {
        self.summary
    }

    /// Whether the built-in rules or the spec decoder report it: a
    /// RoostPolicy may override its level, and a custom rule may not take it.
    pub const fn is_built_in(self) -> bool {
        self.built_in
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Declares the codes: one constant each (named as the code) and [`ALL`].
macro_rules! codes {
    (
        built_in { $( $(#[$b_doc:meta])* $b:ident: $b_level:ident, $b_summary:literal; )* }
        other { $( $(#[$o_doc:meta])* $o:ident: $o_level:ident, $o_summary:literal; )* }
    ) => {
        $(
            $(#[$b_doc])*
            pub const $b: Code = Code {
                name: stringify!($b),
                level: Level::$b_level,
                summary: $b_summary,
                built_in: true,
            };
        )*
        $(
            $(#[$o_doc])*
            pub const $o: Code = Code {
                name: stringify!($o),
                level: Level::$o_level,
                summary: $o_summary,
                built_in: false,
            };
        )*
        /// Every code, in the order of RULES.md.
        pub const ALL: &[Code] = &[$($b,)* $($o,)*];
    };
}

codes! {
    // The built-in rules (validation/*.rs) and the spec decoder (decode.rs).
    built_in {
        // Schema and documents
        SCHEMA_INVALID: Error, "a value has the wrong type for the schema";
        // Chart
        CHART_NAME_MISSING: Error, "spec.chart.name is empty";
        CHART_NAME_INVALID: Error, "spec.chart.name is not a valid Helm chart name";
        CHART_VERSION_MISSING: Error, "spec.chart.version is empty";
        CHART_VERSION_INVALID: Error,
            "spec.chart.version is neither a semver version nor a semver range";
        CHART_VERSION_UNPINNED: Warning,
            "spec.chart.version is a range or wildcard rather than one exact version";
        CHART_REPO_URL_MISSING: Error, "spec.chart.repository.url is empty";
        CHART_REPO_URL_INVALID: Error,
            "spec.chart.repository.url is not a URL with a host and a supported scheme";
        CHART_REPO_TYPE_INVALID: Error, "spec.chart.repository.type is not http, oci or git";
        CHART_REPO_TYPE_MISMATCH: Error,
            "spec.chart.repository.type disagrees with the URL's scheme";
        CHART_REPO_INSECURE: Warning, "the chart repository is fetched over plain http";
        AUTH_TYPE_INVALID: Error,
            "spec.chart.repository.auth.type is not basic, token or docker-config";
        AUTH_INLINE_CREDENTIALS: Warning,
            "a repository password or token is written in the manifest";
        AUTH_CREDENTIALS_INCOMPLETE: Error,
            "basic auth has a username but no password and no secretRef";
        TLS_INSECURE_SKIP_VERIFY: Warning, "TLS certificate verification is turned off";
        VALUES_INLINE_INVALID: Error, "spec.chart.values.inline is not a YAML mapping";
        VALUES_REF_NAME_MISSING: Error, "a values configMapRefs or secretRefs entry has no name";
        // Health checks
        NO_HEALTH_CHECKS: Info, "the roost has no health checks";
        HEALTH_CHECK_NAME_MISSING: Error, "a health check has no name";
        HEALTH_CHECK_NAME_DUPLICATE: Error, "two health checks share a name";
        HEALTH_CHECK_TYPE_MISSING: Error, "a health check has no type";
        HEALTH_CHECK_TYPE_INVALID: Error, "a health check's type is not a supported one";
        HTTP_CONFIG_MISSING: Error, "an http check has no http block";
        TCP_CONFIG_MISSING: Error, "a tcp check has no tcp block";
        UDP_CONFIG_MISSING: Error, "a udp check has no udp block";
        GRPC_CONFIG_MISSING: Error, "a grpc check has no grpc block";
        PROMETHEUS_CONFIG_MISSING: Error, "a prometheus check has no prometheus block";
        KUBERNETES_CONFIG_MISSING: Error, "a kubernetes check has no kubernetes block";
        HEALTH_CHECK_CONFIG_MISMATCH: Warning,
            "a health check has a block for another type, which is ignored";
        HTTP_URL_MISSING: Error, "an http check has no url";
        HTTP_URL_INVALID: Error, "an http check's url is not an http or https URL with a host";
        HTTP_METHOD_INVALID: Error, "an http check's method is not GET, POST, PUT or HEAD";
        HTTP_EXPECTED_CODE_INVALID: Error,
            "an http check's expectedCodes entry is not an HTTP status code";
        TCP_HOST_MISSING: Error, "a tcp check has no host";
        UDP_HOST_MISSING: Error, "a udp check has no host";
        GRPC_HOST_MISSING: Error, "a grpc check has no host";
        TCP_PORT_INVALID: Error, "a tcp check's port is missing or outside 1-65535";
        UDP_PORT_INVALID: Error, "a udp check's port is missing or outside 1-65535";
        GRPC_PORT_INVALID: Error, "a grpc check's port is missing or outside 1-65535";
        UDP_RETRIES_INVALID: Error, "a udp check's retries is outside 1-10";
        PROMETHEUS_QUERY_MISSING: Error, "a prometheus check has no query";
        PROMETHEUS_THRESHOLD_MISSING: Error, "a prometheus check has no threshold";
        PROMETHEUS_THRESHOLD_INVALID: Error, "a prometheus check's threshold is not a number";
        PROMETHEUS_OPERATOR_INVALID: Error,
            "a prometheus check's operator is not gt, gte, lt, lte, eq or ne";
        PROMETHEUS_ENDPOINT_MISSING: Warning,
            "a prometheus check has neither endpoint nor serviceDiscovery";
        KUBERNETES_READY_RATIO_INVALID: Error,
            "a kubernetes check's requiredReadyRatio is not a number from 0 to 1";
        FAILURE_THRESHOLD_INVALID: Error, "a health check's failureThreshold is below 1";
        WEIGHT_INVALID: Error, "a health check's weight is outside 0-100";
        DURATION_INVALID: Error, "a duration field is not a Go duration";
        HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL: Warning,
            "a health check's timeout is not below its interval";
        HEALTH_CHECK_INTERVAL_TOO_SHORT: Warning, "a health check runs more often than every 5s";
        // Teardown
        NO_TEARDOWN_POLICY: Info, "the roost has no teardown policy";
        TEARDOWN_TRIGGERS_MISSING: Warning, "a teardown policy has no triggers";
        TRIGGER_TYPE_MISSING: Error, "a teardown trigger has no type";
        TRIGGER_TYPE_INVALID: Error, "a teardown trigger's type is not a supported one";
        TIMEOUT_MISSING: Error, "a timeout trigger has no timeout";
        TEARDOWN_TIMEOUT_TOO_SHORT: Warning, "a timeout trigger fires in under 5 minutes";
        FAILURE_COUNT_MISSING: Error, "a failure_count trigger has no failureCount";
        FAILURE_COUNT_INVALID: Error, "a trigger's failureCount is below 1";
        FAILURE_COUNT_WITHOUT_HEALTH_CHECKS: Warning,
            "a failure_count trigger on a roost without health checks";
        SCHEDULE_MISSING: Error, "a schedule trigger has no schedule";
        SCHEDULE_INVALID: Error, "a trigger's schedule is not a 5-field cron expression";
        RESOURCE_THRESHOLD_MISSING: Error, "a resource_threshold trigger has no threshold";
        RESOURCE_THRESHOLD_INVALID: Error,
            "a resource threshold is neither a percentage 1%-100% nor a quantity";
        WEBHOOK_TRIGGER_URL_MISSING: Error, "a webhook trigger has no webhook.url";
        WEBHOOK_TRIGGER_URL_INVALID: Error,
            "a webhook trigger's url is not an http or https URL with a host";
        TRIGGER_CONFIG_MISMATCH: Warning,
            "a teardown trigger has a block for another type, which is ignored";
        // Tenancy
        TENANT_ID_MISSING: Error, "RBAC is enabled but no tenant id is set";
        TENANT_ID_INVALID: Error, "a tenant id is not a DNS-1123 label";
        TENANT_ID_MISMATCH: Error, "tenancy.tenantId and rbac.tenantId are both set and differ";
        TENANT_ID_IMMUTABLE: Error, "an update changes spec.tenancy.tenantId";
        NAMESPACE_ISOLATION_PREFIX_INVALID: Error,
            "the namespace isolation prefix cannot start a DNS-1123 label";
        RESOURCE_QUOTA_EMPTY: Warning, "a resource quota is enabled with no hard limits";
        // Observability
        TRACING_ENDPOINT_URL_MISSING: Error, "tracing is enabled with an endpoint that has no url";
        TRACING_ENDPOINT_URL_INVALID: Error,
            "the tracing endpoint url is not a URL with a scheme and host";
        SAMPLING_RATE_INVALID: Error, "the tracing samplingRate is not a number from 0 to 1";
        LOG_LEVEL_INVALID: Error, "the logging level is not debug, info, warn or error";
        METRICS_INTERVAL_TOO_SHORT: Error, "metrics are enabled with an interval under 1s";
        // Target namespace
        TARGET_NAMESPACE_INVALID: Error, "spec.namespace is not a DNS-1123 label";
        TARGET_NAMESPACE_IMMUTABLE: Error, "an update changes spec.namespace";
    }
    // The documents `validate` reads, RoostPolicies, and the findings cap.
    other {
        // Schema and documents
        API_VERSION_UNKNOWN: Error,
            "a ManagedRoost or RoostPolicy document with an apiVersion that is not served";
        UNKNOWN_FIELD: Error, "a field the CRD schema does not declare";
        // Policies
        POLICY_INVALID: Error, "a RoostPolicy that the cluster would refuse";
        POLICY_EVALUATION_ERROR: Error,
            "a RoostPolicy rule's expression could not be evaluated on this roost";
        EXCEPTION_INVALID: Error, "a RoostPolicyException that the cluster would refuse";
        // Findings
        /// Counts the findings left out past [`super::MAX_FINDINGS_PER_LEVEL`];
        /// reported at the level of the most severe one left out.
        TOO_MANY_FINDINGS: Error, "more findings than are listed; the rest are counted";
    }
}

/// The code named `name`, if roost-keeper declares it.
pub fn lookup(name: &str) -> Option<Code> {
    ALL.iter().copied().find(|code| code.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_upper_case_and_summaries_one_line() {
        let names: BTreeSet<&str> = ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), ALL.len(), "a code declared twice");
        for code in ALL {
            assert!(
                code.name()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}"
            );
            assert!(
                !code.summary().trim().is_empty() && !code.summary().contains('\n'),
                "{code}"
            );
        }
        assert_eq!(lookup("CHART_VERSION_MISSING"), Some(CHART_VERSION_MISSING));
        assert_eq!(lookup("NOT_A_CODE"), None);
        assert!(!Code::new("MINE", Level::Error, "mine").is_built_in());
    }

    /// The v1beta1 CRD's union rules name their code in brackets, so each
    /// must be one a user can look up.
    #[test]
    fn every_code_the_v1beta1_unions_name_is_in_the_table() {
        for union in crate::api::v1beta1::UNIONS {
            let names = union.members.iter().map(|m| m.missing_code);
            for name in names.chain([union.mismatch_code]) {
                let code = lookup(name).unwrap_or_else(|| panic!("{name} is not a code"));
                assert!(code.is_built_in(), "{name}");
            }
        }
        assert_eq!(
            lookup("TRIGGER_CONFIG_MISMATCH"),
            Some(TRIGGER_CONFIG_MISMATCH)
        );
        assert_eq!(TRIGGER_CONFIG_MISMATCH.level(), Level::Warning);
    }

    #[test]
    fn every_code_the_built_in_rules_declare_is_in_the_table_as_declared() {
        let registry = super::super::Registry::builtin();
        for code in registry.codes() {
            assert_eq!(lookup(code.name()), Some(code), "{code}");
            assert!(code.is_built_in(), "{code}");
        }
    }
}
