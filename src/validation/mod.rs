//! The validation engine: every rule of RULES.md, pure and synchronous.
//!
//! Rules are grouped one file per part of the spec. The registry runs them in
//! a fixed order, so the same object always yields the same findings in the
//! same order.

pub mod chart;
pub mod checks;
pub mod codes;
pub mod decode;
pub mod finding;
pub mod health;
pub mod observability;
pub mod target;
pub mod teardown;
pub mod tenancy;

pub use codes::Code;
pub use finding::{
    Exemption, Finding, Findings, Level, MAX_FINDINGS_PER_LEVEL, SILENCE_ANNOTATION,
    ValidationResult, shown, silenced_codes,
};

use crate::api::ManagedRoostSpec;
use std::sync::{Arc, LazyLock};

/// Bumped whenever a rule changes what it reports; part of every cache key.
pub const RULESET_VERSION: u32 = 1;

/// What a rule sees: the object's spec and, on UPDATE, the old spec.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub spec: &'a ManagedRoostSpec,
    pub old: Option<&'a ManagedRoostSpec>,
}

/// One rule: a pure check that may report findings with the codes it declares.
pub trait Rule: Send + Sync {
    /// Short name, `group/what`.
    fn name(&self) -> &'static str;
    /// Every code the rule can report.
    fn codes(&self) -> &'static [Code];
    fn check(&self, input: Input<'_>, out: &mut Findings);
}

/// A rule written as a plain function.
#[derive(Clone, Copy)]
pub struct FnRule {
    pub name: &'static str,
    pub codes: &'static [Code],
    pub check: fn(Input<'_>, &mut Findings),
}

impl Rule for FnRule {
    fn name(&self) -> &'static str {
        self.name
    }
    fn codes(&self) -> &'static [Code] {
        self.codes
    }
    fn check(&self, input: Input<'_>, out: &mut Findings) {
        (self.check)(input, out)
    }
}

/// Every rule, in the order findings are reported. A value: an embedder
/// builds one (the built-in rules plus its own [`Rule`]s) and hands it to
/// the server ([`crate::server::ServeConfig::registry`]); the default is
/// [`Registry::builtin`].
pub struct Registry {
    rules: Vec<Arc<dyn Rule>>,
    /// Identifies the rule set (for cache keys).
    fingerprint: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| r.name()))
            .finish()
    }
}

impl Registry {
    /// Every rule of RULES.md.
    pub fn builtin() -> Self {
        let groups: [&'static [FnRule]; 6] = [
            chart::RULES,
            health::RULES,
            teardown::RULES,
            tenancy::RULES,
            observability::RULES,
            target::RULES,
        ];
        let rules = groups
            .into_iter()
            .flatten()
            .map(|rule| Arc::new(*rule) as Arc<dyn Rule>)
            .collect();
        Registry::of(rules)
    }

    fn of(rules: Vec<Arc<dyn Rule>>) -> Self {
        let mut bytes = RULESET_VERSION.to_le_bytes().to_vec();
        for rule in &rules {
            bytes.extend_from_slice(rule.name().as_bytes());
            bytes.push(0);
            for code in rule.codes() {
                bytes.extend_from_slice(code.name().as_bytes());
                bytes.push(1);
            }
        }
        Registry {
            fingerprint: xxhash_rust::xxh3::xxh3_64(&bytes),
            rules,
        }
    }

    /// This registry with `rule` added after the others.
    pub fn with_rule(self, rule: impl Rule + 'static) -> Self {
        let mut rules = self.rules;
        rules.push(Arc::new(rule));
        Registry::of(rules)
    }

    /// The built-in registry, shared.
    pub fn global() -> &'static Registry {
        static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::builtin);
        &REGISTRY
    }

    /// Identifies the rule set: changes when a rule or a code is added.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Every code any rule can report, in registry order, without repeats.
    pub fn codes(&self) -> Vec<Code> {
        let mut codes: Vec<Code> = Vec::new();
        for code in self.rules.iter().flat_map(|r| r.codes()) {
            if !codes.contains(code) {
                codes.push(*code);
            }
        }
        codes
    }

    /// The rule groups (the part of a rule's name before `/`), in registry
    /// order, each with the codes its rules can report.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for rule in &self.rules {
            let group = rule.name().split('/').next().unwrap_or_default();
            let at = match groups.iter().position(|(g, _)| *g == group) {
                Some(at) => at,
                None => {
                    groups.push((group, Vec::new()));
                    groups.len() - 1
                }
            };
            for code in rule.codes() {
                if !groups[at].1.contains(&code.name()) {
                    groups[at].1.push(code.name());
                }
            }
        }
        groups
    }

    /// Every finding of every rule on `input`, in registry order, not yet capped.
    pub fn findings(&self, input: Input<'_>) -> Vec<Finding> {
        let mut out = Findings::default();
        for rule in &self.rules {
            rule.check(input, &mut out);
        }
        out.into_vec()
    }

    /// Runs every rule on `input`.
    pub fn run(&self, input: Input<'_>) -> ValidationResult {
        ValidationResult::from_findings(self.findings(input))
    }
}

/// Validates a (defaulted) spec on CREATE.
pub fn validate(spec: &ManagedRoostSpec) -> ValidationResult {
    Registry::global().run(Input { spec, old: None })
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use serde_json::Value;

    /// Decodes a spec written as JSON (test tables write specs inline).
    pub fn spec(value: Value) -> ManagedRoostSpec {
        serde_json::from_value(value).expect("test spec decodes")
    }

    /// Runs one group's rules and returns `(code, field)` pairs.
    pub fn run_group(
        rules: &[FnRule],
        spec: &ManagedRoostSpec,
        old: Option<&ManagedRoostSpec>,
    ) -> Vec<(String, String)> {
        let mut out = Findings::default();
        for rule in rules {
            rule.check(Input { spec, old }, &mut out);
        }
        out.into_vec()
            .into_iter()
            .map(|f| (f.code, f.field))
            .collect()
    }

    /// A table case: the spec, the `(code, field)` expected to fire, and
    /// whether it must be absent (near miss) instead.
    pub struct Case {
        pub name: &'static str,
        pub spec: Value,
        pub old: Option<Value>,
        pub code: &'static str,
        pub field: &'static str,
        pub fires: bool,
    }

    pub fn fires(name: &'static str, code: &'static str, field: &'static str, spec: Value) -> Case {
        Case {
            name,
            spec,
            old: None,
            code,
            field,
            fires: true,
        }
    }

    pub fn silent(name: &'static str, code: &'static str, spec: Value) -> Case {
        Case {
            name,
            spec,
            old: None,
            code,
            field: "",
            fires: false,
        }
    }

    /// Runs a table: every code of `rules` has a firing case and a near
    /// miss; a firing case must report `code` at `field`; a near miss must
    /// not report `code`. Every case runs; one failure lists all the
    /// problems found.
    pub fn run_table(rules: &[FnRule], cases: Vec<Case>) {
        let covered: Vec<(&str, bool)> = cases.iter().map(|c| (c.code, c.fires)).collect();
        let mut failures = coverage_gaps(rules, &covered);
        let mut names = std::collections::BTreeSet::new();
        for case in cases {
            if !names.insert(case.name) {
                failures.push(format!("case {:?}: name used twice", case.name));
            }
            let spec = spec(case.spec);
            let old = case.old.map(super::test_support::spec);
            let got = run_group(rules, &spec, old.as_ref());
            if case.fires && !got.iter().any(|(c, f)| c == case.code && f == case.field) {
                failures.push(format!(
                    "case {:?}: expected {} at {}, got {:?}",
                    case.name, case.code, case.field, got
                ));
            }
            if !case.fires && got.iter().any(|(c, _)| c == case.code) {
                failures.push(format!(
                    "case {:?}: {} must not fire, got {:?}",
                    case.name, case.code, got
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing case(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// Codes a group declares without a firing case or a near miss in its table.
    fn coverage_gaps(rules: &[FnRule], cases_codes: &[(&str, bool)]) -> Vec<String> {
        let mut missing = Vec::new();
        for rule in rules {
            for code in rule.codes {
                if !cases_codes
                    .iter()
                    .any(|(c, fires)| *c == code.name() && *fires)
                {
                    missing.push(format!("{code} has no firing case"));
                }
                if !cases_codes
                    .iter()
                    .any(|(c, fires)| *c == code.name() && !*fires)
                {
                    missing.push(format!("{code} has no near-miss case"));
                }
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::spec;
    use super::*;
    use serde_json::{Value, json};

    /// Specs that between them raise every warning code, at two-digit list indexes.
    fn warning_specs() -> Vec<Value> {
        let filler = (0..10).map(
            |i| json!({"name": format!("c{i}"), "type": "tcp", "tcp": {"host": "h", "port": 1}}),
        );
        let mut checks: Vec<Value> = filler.collect();
        checks.push(json!({"name": "prometheus-with-a-long-name", "type": "prometheus",
            "prometheus": {"query": "up", "threshold": "1"}, "kubernetes": {}, "interval": "1s", "timeout": "2s"}));
        checks.push(json!({"name": "h", "type": "http", "http": {"url": "https://x", "tls": {"insecureSkipVerify": true}}}));
        checks.push(json!({"name": "g", "type": "grpc", "grpc": {"host": "h", "port": 1, "tls": {"insecureSkipVerify": true}}}));
        let triggers: Vec<Value> = (0..10)
            .map(|_| json!({"type": "timeout", "timeout": "1h"}))
            .chain([
                json!({"type": "timeout", "timeout": "1m"}),
                json!({"type": "failure_count", "failureCount": 3}),
                json!({"type": "schedule", "schedule": "0 2 * * *", "resourceThreshold": {"cpu": "1"}}),
            ])
            .collect();
        vec![
            json!({
                "chart": {"name": "a", "version": ">=1.0.0-alpha.1 <2.0.0-rc.1 || ^3.0.0-beta.7",
                          "repository": {"url": "http://charts.example.com", "auth": {"password": "p", "token": "t"},
                                         "tls": {"insecureSkipVerify": true}}},
                "healthChecks": checks,
                "tenancy": {"resourceQuota": {"enabled": true}},
            }),
            json!({"teardownPolicy": {"triggers": triggers}}),
            json!({"teardownPolicy": {"requireManualApproval": true}}),
        ]
    }

    #[test]
    fn every_warning_fits_in_120_characters() {
        let registry = Registry::global();
        let mut seen: Vec<String> = Vec::new();
        for value in warning_specs() {
            let result = validate(&spec(value));
            for warning in &result.warnings {
                let line = warning.as_warning_line();
                assert!(
                    line.chars().count() <= 120,
                    "{} chars: {line}",
                    line.chars().count()
                );
                seen.push(warning.code.clone());
            }
        }
        let warning_codes = [
            "CHART_VERSION_UNPINNED",
            "CHART_REPO_INSECURE",
            "AUTH_INLINE_CREDENTIALS",
            "TLS_INSECURE_SKIP_VERIFY",
            "HEALTH_CHECK_CONFIG_MISMATCH",
            "TRIGGER_CONFIG_MISMATCH",
            "PROMETHEUS_ENDPOINT_MISSING",
            "HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL",
            "HEALTH_CHECK_INTERVAL_TOO_SHORT",
            "TEARDOWN_TRIGGERS_MISSING",
            "TEARDOWN_TIMEOUT_TOO_SHORT",
            "FAILURE_COUNT_WITHOUT_HEALTH_CHECKS",
            "RESOURCE_QUOTA_EMPTY",
        ];
        for code in warning_codes {
            assert!(
                registry.codes().iter().any(|c| c.name() == code),
                "{code} is registered"
            );
            assert!(seen.iter().any(|c| c == code), "{code} was raised");
        }
    }

    /// Every rule code of RULES.md, sorted.
    const CONTRACT_CODES: [&str; 79] = [
        "AUTH_CREDENTIALS_INCOMPLETE",
        "AUTH_INLINE_CREDENTIALS",
        "AUTH_TYPE_INVALID",
        "CHART_NAME_INVALID",
        "CHART_NAME_MISSING",
        "CHART_REPO_INSECURE",
        "CHART_REPO_TYPE_INVALID",
        "CHART_REPO_TYPE_MISMATCH",
        "CHART_REPO_URL_INVALID",
        "CHART_REPO_URL_MISSING",
        "CHART_VERSION_INVALID",
        "CHART_VERSION_MISSING",
        "CHART_VERSION_UNPINNED",
        "DURATION_INVALID",
        "FAILURE_COUNT_INVALID",
        "FAILURE_COUNT_MISSING",
        "FAILURE_COUNT_WITHOUT_HEALTH_CHECKS",
        "FAILURE_THRESHOLD_INVALID",
        "GRPC_CONFIG_MISSING",
        "GRPC_HOST_MISSING",
        "GRPC_PORT_INVALID",
        "HEALTH_CHECK_CONFIG_MISMATCH",
        "HEALTH_CHECK_INTERVAL_TOO_SHORT",
        "HEALTH_CHECK_NAME_DUPLICATE",
        "HEALTH_CHECK_NAME_MISSING",
        "HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL",
        "HEALTH_CHECK_TYPE_INVALID",
        "HEALTH_CHECK_TYPE_MISSING",
        "HTTP_CONFIG_MISSING",
        "HTTP_EXPECTED_CODE_INVALID",
        "HTTP_METHOD_INVALID",
        "HTTP_URL_INVALID",
        "HTTP_URL_MISSING",
        "KUBERNETES_CONFIG_MISSING",
        "KUBERNETES_READY_RATIO_INVALID",
        "LOG_LEVEL_INVALID",
        "METRICS_INTERVAL_TOO_SHORT",
        "NAMESPACE_ISOLATION_PREFIX_INVALID",
        "NO_HEALTH_CHECKS",
        "NO_TEARDOWN_POLICY",
        "PROMETHEUS_CONFIG_MISSING",
        "PROMETHEUS_ENDPOINT_MISSING",
        "PROMETHEUS_OPERATOR_INVALID",
        "PROMETHEUS_QUERY_MISSING",
        "PROMETHEUS_THRESHOLD_INVALID",
        "PROMETHEUS_THRESHOLD_MISSING",
        "RESOURCE_QUOTA_EMPTY",
        "RESOURCE_THRESHOLD_INVALID",
        "RESOURCE_THRESHOLD_MISSING",
        "SAMPLING_RATE_INVALID",
        "SCHEDULE_INVALID",
        "SCHEDULE_MISSING",
        "TARGET_NAMESPACE_IMMUTABLE",
        "TARGET_NAMESPACE_INVALID",
        "TCP_CONFIG_MISSING",
        "TCP_HOST_MISSING",
        "TCP_PORT_INVALID",
        "TEARDOWN_TIMEOUT_TOO_SHORT",
        "TEARDOWN_TRIGGERS_MISSING",
        "TENANT_ID_IMMUTABLE",
        "TENANT_ID_INVALID",
        "TENANT_ID_MISMATCH",
        "TENANT_ID_MISSING",
        "TIMEOUT_MISSING",
        "TLS_INSECURE_SKIP_VERIFY",
        "TRACING_ENDPOINT_URL_INVALID",
        "TRACING_ENDPOINT_URL_MISSING",
        "TRIGGER_CONFIG_MISMATCH",
        "TRIGGER_TYPE_INVALID",
        "TRIGGER_TYPE_MISSING",
        "UDP_CONFIG_MISSING",
        "UDP_HOST_MISSING",
        "UDP_PORT_INVALID",
        "UDP_RETRIES_INVALID",
        "VALUES_INLINE_INVALID",
        "VALUES_REF_NAME_MISSING",
        "WEBHOOK_TRIGGER_URL_INVALID",
        "WEBHOOK_TRIGGER_URL_MISSING",
        "WEIGHT_INVALID",
    ];

    #[test]
    fn registry_holds_exactly_the_codes_of_the_contract() {
        let mut codes: Vec<&str> = Registry::global()
            .codes()
            .iter()
            .map(|c| c.name())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, CONTRACT_CODES);
    }

    #[test]
    fn same_input_same_findings_in_the_same_order() {
        let value = warning_specs().remove(0);
        assert_eq!(validate(&spec(value.clone())), validate(&spec(value)));
    }
}
