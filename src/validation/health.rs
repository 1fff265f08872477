//! Rules for `spec.healthChecks[i]`.

use super::checks::{
    check_duration, given, integer_outside, is_http_url, non_empty, one_of, shown_url,
};
use super::codes::{self, Code};
use super::finding::{Findings, shown};
use super::{FnRule, Input};
use crate::api::duration::GoDuration;
use crate::api::{HealthCheckSpec, NumberText, TlsSpec};

pub const RULES: &[FnRule] = &[
    FnRule {
        name: "health/presence",
        codes: &[codes::NO_HEALTH_CHECKS],
        check: presence,
    },
    FnRule {
        name: "health/name",
        codes: &[
            codes::HEALTH_CHECK_NAME_MISSING,
            codes::HEALTH_CHECK_NAME_DUPLICATE,
        ],
        check: names,
    },
    FnRule {
        name: "health/type",
        codes: &[
            codes::HEALTH_CHECK_TYPE_MISSING,
            codes::HEALTH_CHECK_TYPE_INVALID,
            codes::HTTP_CONFIG_MISSING,
            codes::TCP_CONFIG_MISSING,
            codes::UDP_CONFIG_MISSING,
            codes::GRPC_CONFIG_MISSING,
            codes::PROMETHEUS_CONFIG_MISSING,
            codes::KUBERNETES_CONFIG_MISSING,
            codes::HEALTH_CHECK_CONFIG_MISMATCH,
        ],
        check: types,
    },
    FnRule {
        name: "health/http",
        codes: &[
            codes::HTTP_URL_MISSING,
            codes::HTTP_URL_INVALID,
            codes::HTTP_METHOD_INVALID,
            codes::HTTP_EXPECTED_CODE_INVALID,
            codes::TLS_INSECURE_SKIP_VERIFY,
        ],
        check: http,
    },
    FnRule {
        name: "health/tcp",
        codes: &[codes::TCP_HOST_MISSING, codes::TCP_PORT_INVALID],
        check: tcp,
    },
    FnRule {
        name: "health/udp",
        codes: &[
            codes::UDP_HOST_MISSING,
            codes::UDP_PORT_INVALID,
            codes::UDP_RETRIES_INVALID,
        ],
        check: udp,
    },
    FnRule {
        name: "health/grpc",
        codes: &[
            codes::GRPC_HOST_MISSING,
            codes::GRPC_PORT_INVALID,
            codes::TLS_INSECURE_SKIP_VERIFY,
        ],
        check: grpc,
    },
    FnRule {
        name: "health/prometheus",
        codes: &[
            codes::PROMETHEUS_QUERY_MISSING,
            codes::PROMETHEUS_THRESHOLD_MISSING,
            codes::PROMETHEUS_THRESHOLD_INVALID,
            codes::PROMETHEUS_OPERATOR_INVALID,
            codes::PROMETHEUS_ENDPOINT_MISSING,
        ],
        check: prometheus,
    },
    FnRule {
        name: "health/kubernetes",
        codes: &[codes::KUBERNETES_READY_RATIO_INVALID],
        check: kubernetes,
    },
    FnRule {
        name: "health/thresholds",
        codes: &[codes::FAILURE_THRESHOLD_INVALID, codes::WEIGHT_INVALID],
        check: thresholds,
    },
    FnRule {
        name: "health/timing",
        codes: &[
            codes::DURATION_INVALID,
            codes::HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL,
            codes::HEALTH_CHECK_INTERVAL_TOO_SHORT,
        ],
        check: timing,
    },
];

/// The check types, in the order their blocks appear in the schema.
pub const CHECK_TYPES: &[&str] = &["http", "tcp", "udp", "grpc", "prometheus", "kubernetes"];
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "HEAD"];
const PROMETHEUS_OPERATORS: &[&str] = &["gt", "gte", "lt", "lte", "eq", "ne"];

fn checks<'a>(input: Input<'a>) -> impl Iterator<Item = (usize, &'a HealthCheckSpec)> {
    input.spec.health_checks.iter().flatten().enumerate()
}

/// The check's type when it is one of the known types.
fn active_type(check: &HealthCheckSpec) -> Option<&str> {
    check.type_.as_deref().filter(|t| CHECK_TYPES.contains(t))
}

/// Checks whose (valid) type is `kind`: only the block for the type is read.
fn checks_of<'a>(
    input: Input<'a>,
    kind: &'a str,
) -> impl Iterator<Item = (usize, &'a HealthCheckSpec)> {
    checks(input).filter(move |(_, c)| active_type(c) == Some(kind))
}

fn block_present(check: &HealthCheckSpec, kind: &str) -> bool {
    match kind {
        "http" => check.http.is_some(),
        "tcp" => check.tcp.is_some(),
        "udp" => check.udp.is_some(),
        "grpc" => check.grpc.is_some(),
        "prometheus" => check.prometheus.is_some(),
        _ => check.kubernetes.is_some(),
    }
}

fn presence(input: Input<'_>, out: &mut Findings) {
    if input.spec.health_checks.as_ref().is_none_or(Vec::is_empty) {
        out.report(
            codes::NO_HEALTH_CHECKS,
            "spec.healthChecks",
            "no health checks: health stays unknown; add an http, tcp or kubernetes check",
        );
    }
}

fn names(input: Input<'_>, out: &mut Findings) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, check) in checks(input) {
        match non_empty(&check.name) {
            None => out.report(
                codes::HEALTH_CHECK_NAME_MISSING,
                format!("spec.healthChecks[{i}].name"),
                "health check has no name; give each check a unique name",
            ),
            Some(name) if seen.contains(&name) => out.report(
                codes::HEALTH_CHECK_NAME_DUPLICATE,
                format!("spec.healthChecks[{i}].name"),
                format!(
                    "name {} is used by an earlier check; names must be unique",
                    shown(name)
                ),
            ),
            Some(name) => seen.push(name),
        }
    }
}

fn types(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks(input) {
        let Some(kind) = non_empty(&check.type_) else {
            out.report(
                codes::HEALTH_CHECK_TYPE_MISSING,
                format!("spec.healthChecks[{i}].type"),
                "health check has no type; set one of http, tcp, udp, grpc, prometheus, kubernetes",
            );
            continue;
        };
        if !CHECK_TYPES.contains(&kind) {
            out.report(
                codes::HEALTH_CHECK_TYPE_INVALID,
                format!("spec.healthChecks[{i}].type"),
                format!("type {} {}", shown(kind), one_of(kind, CHECK_TYPES)),
            );
            continue;
        }
        if !block_present(check, kind) {
            let code = match kind {
                "http" => codes::HTTP_CONFIG_MISSING,
                "tcp" => codes::TCP_CONFIG_MISSING,
                "udp" => codes::UDP_CONFIG_MISSING,
                "grpc" => codes::GRPC_CONFIG_MISSING,
                "prometheus" => codes::PROMETHEUS_CONFIG_MISSING,
                _ => codes::KUBERNETES_CONFIG_MISSING,
            };
            out.report(
                code,
                format!("spec.healthChecks[{i}].{kind}"),
                format!("a {kind} check needs its {kind} block; add spec.healthChecks[{i}].{kind}"),
            );
        }
        for other in CHECK_TYPES
            .iter()
            .filter(|t| **t != kind && block_present(check, t))
        {
            out.report(
                codes::HEALTH_CHECK_CONFIG_MISMATCH,
                format!("spec.healthChecks[{i}].{other}"),
                format!("ignored: the check's type is {kind}"),
            );
        }
    }
}

fn insecure_tls(out: &mut Findings, tls: Option<&TlsSpec>, field: impl FnOnce() -> String) {
    if tls.and_then(|t| t.insecure_skip_verify).unwrap_or(false) {
        out.report(
            codes::TLS_INSECURE_SKIP_VERIFY,
            field(),
            "certificate checks are off; trust a CA",
        );
    }
}

fn http(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks_of(input, "http") {
        let Some(http) = &check.http else { continue };
        match non_empty(&http.url) {
            None => out.report(
                codes::HTTP_URL_MISSING,
                format!("spec.healthChecks[{i}].http.url"),
                "http check has no URL; set http.url, e.g. http://web.default.svc/healthz",
            ),
            Some(url) if !is_http_url(url) => out.report(
                codes::HTTP_URL_INVALID,
                format!("spec.healthChecks[{i}].http.url"),
                format!("{} is not an http or https URL with a host", shown_url(url)),
            ),
            Some(_) => {}
        }
        if let Some(method) = non_empty(&http.method)
            && !HTTP_METHODS.contains(&method)
        {
            out.report(
                codes::HTTP_METHOD_INVALID,
                format!("spec.healthChecks[{i}].http.method"),
                format!("method {} {}", shown(method), one_of(method, HTTP_METHODS)),
            );
        }
        for (j, code) in http.expected_codes.iter().flatten().enumerate() {
            if let Some(got) = integer_outside(Some(code), 100..=599) {
                out.report(
                    codes::HTTP_EXPECTED_CODE_INVALID,
                    format!("spec.healthChecks[{i}].http.expectedCodes[{j}]"),
                    format!("{got} is not an HTTP status code; use 100-599"),
                );
            }
        }
        insecure_tls(out, http.tls.as_ref(), || {
            format!("spec.healthChecks[{i}].http.tls.insecureSkipVerify")
        });
    }
}

/// Host and port checks shared by tcp, udp and grpc blocks.
fn host_and_port(
    out: &mut Findings,
    base: &str,
    (host_code, port_code): (Code, Code),
    host: &Option<String>,
    port: Option<&NumberText>,
) {
    if non_empty(host).is_none() {
        out.report(
            host_code,
            format!("{base}.host"),
            "host is required; set the service DNS name or IP",
        );
    }
    if given(port).is_some() {
        if let Some(got) = integer_outside(port, 1..=65535) {
            out.report(
                port_code,
                format!("{base}.port"),
                format!("port must be 1-65535, got {got}"),
            );
        }
    } else {
        out.report(
            port_code,
            format!("{base}.port"),
            "port is required; set a port in 1-65535",
        );
    }
}

fn tcp(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks_of(input, "tcp") {
        let Some(tcp) = &check.tcp else { continue };
        let base = format!("spec.healthChecks[{i}].tcp");
        host_and_port(
            out,
            &base,
            (codes::TCP_HOST_MISSING, codes::TCP_PORT_INVALID),
            &tcp.host,
            tcp.port.as_ref(),
        );
    }
}

fn udp(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks_of(input, "udp") {
        let Some(udp) = &check.udp else { continue };
        let base = format!("spec.healthChecks[{i}].udp");
        host_and_port(
            out,
            &base,
            (codes::UDP_HOST_MISSING, codes::UDP_PORT_INVALID),
            &udp.host,
            udp.port.as_ref(),
        );
        if let Some(retries) = integer_outside(udp.retries.as_ref(), 1..=10) {
            out.report(
                codes::UDP_RETRIES_INVALID,
                format!("{base}.retries"),
                format!("retries must be 1-10, got {retries}"),
            );
        }
    }
}

fn grpc(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks_of(input, "grpc") {
        let Some(grpc) = &check.grpc else { continue };
        let base = format!("spec.healthChecks[{i}].grpc");
        host_and_port(
            out,
            &base,
            (codes::GRPC_HOST_MISSING, codes::GRPC_PORT_INVALID),
            &grpc.host,
            grpc.port.as_ref(),
        );
        insecure_tls(out, grpc.tls.as_ref(), || {
            format!("{base}.tls.insecureSkipVerify")
        });
    }
}

fn prometheus(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks_of(input, "prometheus") {
        let Some(prom) = &check.prometheus else {
            continue;
        };
        let base = format!("spec.healthChecks[{i}].prometheus");
        if non_empty(&prom.query).is_none() {
            out.report(
                codes::PROMETHEUS_QUERY_MISSING,
                format!("{base}.query"),
                "query is required; set a PromQL expression",
            );
        }
        match &prom.threshold {
            None => out.report(
                codes::PROMETHEUS_THRESHOLD_MISSING,
                format!("{base}.threshold"),
                "threshold is required; set the number the query result is compared with",
            ),
            Some(t) if t.is_empty() => out.report(
                codes::PROMETHEUS_THRESHOLD_MISSING,
                format!("{base}.threshold"),
                "threshold is required; set the number the query result is compared with",
            ),
            Some(t) if t.as_f64().is_none() => out.report(
                codes::PROMETHEUS_THRESHOLD_INVALID,
                format!("{base}.threshold"),
                format!(
                    "threshold {} is not a number; write e.g. \"0.95\"",
                    shown(&t.as_text())
                ),
            ),
            Some(_) => {}
        }
        if let Some(op) = non_empty(&prom.operator)
            && !PROMETHEUS_OPERATORS.contains(&op)
        {
            out.report(
                codes::PROMETHEUS_OPERATOR_INVALID,
                format!("{base}.operator"),
                format!(
                    "operator {} {}",
                    shown(op),
                    one_of(op, PROMETHEUS_OPERATORS)
                ),
            );
        }
        if non_empty(&prom.endpoint).is_none() && prom.service_discovery.is_none() {
            out.report(
                codes::PROMETHEUS_ENDPOINT_MISSING,
                format!("{base}.endpoint"),
                "set endpoint or serviceDiscovery",
            );
        }
    }
}

fn kubernetes(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks_of(input, "kubernetes") {
        let Some(ratio) = given(
            check
                .kubernetes
                .as_ref()
                .and_then(|k| k.required_ready_ratio.as_ref()),
        ) else {
            continue;
        };
        if !ratio.as_f64().is_some_and(|r| (0.0..=1.0).contains(&r)) {
            out.report(
                codes::KUBERNETES_READY_RATIO_INVALID,
                format!("spec.healthChecks[{i}].kubernetes.requiredReadyRatio"),
                format!(
                    "requiredReadyRatio must be a number from 0 to 1, got {}",
                    shown(&ratio.as_text())
                ),
            );
        }
    }
}

fn thresholds(input: Input<'_>, out: &mut Findings) {
    for (i, check) in checks(input) {
        if let Some(threshold) = integer_outside(check.failure_threshold.as_ref(), 1..=i64::MAX) {
            out.report(
                codes::FAILURE_THRESHOLD_INVALID,
                format!("spec.healthChecks[{i}].failureThreshold"),
                format!("failureThreshold must be at least 1, got {threshold}"),
            );
        }
        if let Some(weight) = integer_outside(check.weight.as_ref(), 0..=100) {
            out.report(
                codes::WEIGHT_INVALID,
                format!("spec.healthChecks[{i}].weight"),
                format!("weight must be 0-100, got {weight}"),
            );
        }
    }
}

fn timing(input: Input<'_>, out: &mut Findings) {
    const MIN_INTERVAL: GoDuration = GoDuration::from_secs(5);
    for (i, check) in checks(input) {
        let base = format!("spec.healthChecks[{i}]");
        let interval = check_duration(out, || format!("{base}.interval"), check.interval.as_ref());
        let timeout = check_duration(out, || format!("{base}.timeout"), check.timeout.as_ref());
        block_durations(out, &base, check);
        if let (Some(interval), Some(timeout)) = (interval, timeout)
            && timeout >= interval
        {
            out.report(
                codes::HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL,
                format!("{base}.timeout"),
                "timeout must be below interval",
            );
        }
        if interval.is_some_and(|d| d < MIN_INTERVAL) {
            out.report(
                codes::HEALTH_CHECK_INTERVAL_TOO_SHORT,
                format!("{base}.interval"),
                "under 5s; use 5s or more",
            );
        }
    }
}

/// Durations inside the block for the check's type.
fn block_durations(out: &mut Findings, base: &str, check: &HealthCheckSpec) {
    let mut fields = Vec::new();
    match active_type(check) {
        Some("tcp") => {
            if let Some(tcp) = &check.tcp {
                fields.push(("tcp.connectionTimeout", tcp.connection_timeout.as_ref()));
            }
        }
        Some("udp") => {
            if let Some(udp) = &check.udp {
                fields.push(("udp.readTimeout", udp.read_timeout.as_ref()));
            }
        }
        Some("grpc") => {
            if let Some(grpc) = &check.grpc {
                if let Some(pool) = &grpc.connection_pool {
                    fields.push((
                        "grpc.connectionPool.maxIdleTime",
                        pool.max_idle_time.as_ref(),
                    ));
                    fields.push((
                        "grpc.connectionPool.keepAliveTime",
                        pool.keep_alive_time.as_ref(),
                    ));
                    fields.push((
                        "grpc.connectionPool.keepAliveTimeout",
                        pool.keep_alive_timeout.as_ref(),
                    ));
                    fields.push((
                        "grpc.connectionPool.healthCheckInterval",
                        pool.health_check_interval.as_ref(),
                    ));
                }
                if let Some(retry) = &grpc.retry_policy {
                    fields.push((
                        "grpc.retryPolicy.initialDelay",
                        retry.initial_delay.as_ref(),
                    ));
                    fields.push(("grpc.retryPolicy.maxDelay", retry.max_delay.as_ref()));
                }
                if let Some(breaker) = &grpc.circuit_breaker {
                    fields.push((
                        "grpc.circuitBreaker.halfOpenTimeout",
                        breaker.half_open_timeout.as_ref(),
                    ));
                    fields.push((
                        "grpc.circuitBreaker.recoveryTimeout",
                        breaker.recovery_timeout.as_ref(),
                    ));
                }
            }
        }
        Some("prometheus") => {
            if let Some(prom) = &check.prometheus {
                fields.push(("prometheus.queryTimeout", prom.query_timeout.as_ref()));
                fields.push(("prometheus.cacheTTL", prom.cache_ttl.as_ref()));
                if let Some(trend) = &prom.trend_analysis {
                    fields.push((
                        "prometheus.trendAnalysis.timeWindow",
                        trend.time_window.as_ref(),
                    ));
                }
            }
        }
        Some("kubernetes") => {
            if let Some(k8s) = &check.kubernetes {
                fields.push(("kubernetes.apiTimeout", k8s.api_timeout.as_ref()));
                fields.push(("kubernetes.cacheTTL", k8s.cache_ttl.as_ref()));
            }
        }
        _ => {}
    }
    for (path, value) in fields {
        check_duration(out, || format!("{base}.{path}"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{Case, fires, run_table, silent};
    use serde_json::{Value, json};

    fn one(check: Value) -> Value {
        json!({"healthChecks": [check]})
    }

    fn http_check(http: Value) -> Value {
        one(json!({"name": "web", "type": "http", "http": http}))
    }

    fn typed(kind: &str, block: Value) -> Value {
        let mut check = json!({"name": "c", "type": kind});
        check[kind] = block;
        one(check)
    }

    fn cases() -> Vec<Case> {
        let tcp_ok = json!({"host": "db", "port": 5432});
        vec![
            fires(
                "no list",
                "NO_HEALTH_CHECKS",
                "spec.healthChecks",
                json!({}),
            ),
            fires(
                "empty list",
                "NO_HEALTH_CHECKS",
                "spec.healthChecks",
                json!({"healthChecks": []}),
            ),
            silent(
                "one check",
                "NO_HEALTH_CHECKS",
                typed("tcp", tcp_ok.clone()),
            ),
            fires(
                "no name",
                "HEALTH_CHECK_NAME_MISSING",
                "spec.healthChecks[0].name",
                one(json!({"type": "tcp", "tcp": tcp_ok})),
            ),
            silent(
                "named",
                "HEALTH_CHECK_NAME_MISSING",
                typed("tcp", tcp_ok.clone()),
            ),
            fires(
                "same name twice",
                "HEALTH_CHECK_NAME_DUPLICATE",
                "spec.healthChecks[2].name",
                json!({"healthChecks": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}),
            ),
            silent(
                "distinct names",
                "HEALTH_CHECK_NAME_DUPLICATE",
                json!({"healthChecks": [{"name": "a"}, {"name": "b"}]}),
            ),
            fires(
                "no type",
                "HEALTH_CHECK_TYPE_MISSING",
                "spec.healthChecks[0].type",
                one(json!({"name": "a"})),
            ),
            silent(
                "typed",
                "HEALTH_CHECK_TYPE_MISSING",
                typed("tcp", tcp_ok.clone()),
            ),
            fires(
                "exec type",
                "HEALTH_CHECK_TYPE_INVALID",
                "spec.healthChecks[0].type",
                one(json!({"name": "a", "type": "exec"})),
            ),
            fires(
                "upper case type",
                "HEALTH_CHECK_TYPE_INVALID",
                "spec.healthChecks[0].type",
                one(json!({"name": "a", "type": "HTTP"})),
            ),
            silent(
                "known type",
                "HEALTH_CHECK_TYPE_INVALID",
                typed("tcp", tcp_ok.clone()),
            ),
            fires(
                "http no block",
                "HTTP_CONFIG_MISSING",
                "spec.healthChecks[0].http",
                one(json!({"name": "a", "type": "http"})),
            ),
            fires(
                "tcp no block",
                "TCP_CONFIG_MISSING",
                "spec.healthChecks[0].tcp",
                one(json!({"name": "a", "type": "tcp", "http": {"url": "http://x"}})),
            ),
            fires(
                "udp no block",
                "UDP_CONFIG_MISSING",
                "spec.healthChecks[0].udp",
                one(json!({"name": "a", "type": "udp"})),
            ),
            fires(
                "grpc no block",
                "GRPC_CONFIG_MISSING",
                "spec.healthChecks[0].grpc",
                one(json!({"name": "a", "type": "grpc"})),
            ),
            fires(
                "prometheus no block",
                "PROMETHEUS_CONFIG_MISSING",
                "spec.healthChecks[0].prometheus",
                one(json!({"name": "a", "type": "prometheus"})),
            ),
            fires(
                "kubernetes no block",
                "KUBERNETES_CONFIG_MISSING",
                "spec.healthChecks[0].kubernetes",
                one(json!({"name": "a", "type": "kubernetes"})),
            ),
            silent(
                "http block",
                "HTTP_CONFIG_MISSING",
                http_check(json!({"url": "http://x"})),
            ),
            silent(
                "tcp block",
                "TCP_CONFIG_MISSING",
                typed("tcp", tcp_ok.clone()),
            ),
            silent(
                "udp block",
                "UDP_CONFIG_MISSING",
                typed("udp", json!({"host": "h", "port": 53})),
            ),
            silent(
                "grpc block",
                "GRPC_CONFIG_MISSING",
                typed("grpc", json!({"host": "h", "port": 9090})),
            ),
            silent(
                "prometheus block",
                "PROMETHEUS_CONFIG_MISSING",
                typed("prometheus", json!({"query": "up", "threshold": "1"})),
            ),
            silent(
                "kubernetes block",
                "KUBERNETES_CONFIG_MISSING",
                typed("kubernetes", json!({"checkPods": true})),
            ),
            fires(
                "tcp block on http check",
                "HEALTH_CHECK_CONFIG_MISMATCH",
                "spec.healthChecks[0].tcp",
                one(
                    json!({"name": "a", "type": "http", "http": {"url": "http://x"}, "tcp": tcp_ok}),
                ),
            ),
            silent(
                "only own block",
                "HEALTH_CHECK_CONFIG_MISMATCH",
                http_check(json!({"url": "http://x"})),
            ),
            fires(
                "no url",
                "HTTP_URL_MISSING",
                "spec.healthChecks[0].http.url",
                http_check(json!({"method": "GET"})),
            ),
            silent(
                "url",
                "HTTP_URL_MISSING",
                http_check(json!({"url": "http://x"})),
            ),
            fires(
                "tcp url",
                "HTTP_URL_INVALID",
                "spec.healthChecks[0].http.url",
                http_check(json!({"url": "tcp://x:80"})),
            ),
            fires(
                "no host",
                "HTTP_URL_INVALID",
                "spec.healthChecks[0].http.url",
                http_check(json!({"url": "/healthz"})),
            ),
            silent(
                "https url",
                "HTTP_URL_INVALID",
                http_check(json!({"url": "https://web.default.svc:8443/healthz"})),
            ),
            fires(
                "PATCH",
                "HTTP_METHOD_INVALID",
                "spec.healthChecks[0].http.method",
                http_check(json!({"url": "http://x", "method": "PATCH"})),
            ),
            fires(
                "lower case get",
                "HTTP_METHOD_INVALID",
                "spec.healthChecks[0].http.method",
                http_check(json!({"url": "http://x", "method": "get"})),
            ),
            silent(
                "HEAD",
                "HTTP_METHOD_INVALID",
                http_check(json!({"url": "http://x", "method": "HEAD"})),
            ),
            fires(
                "code 600",
                "HTTP_EXPECTED_CODE_INVALID",
                "spec.healthChecks[0].http.expectedCodes[1]",
                http_check(json!({"url": "http://x", "expectedCodes": [200, 600]})),
            ),
            fires(
                "code 99",
                "HTTP_EXPECTED_CODE_INVALID",
                "spec.healthChecks[0].http.expectedCodes[0]",
                http_check(json!({"url": "http://x", "expectedCodes": [99]})),
            ),
            silent(
                "codes in range",
                "HTTP_EXPECTED_CODE_INVALID",
                http_check(json!({"url": "http://x", "expectedCodes": [100, 200, 599]})),
            ),
            fires(
                "http skip verify",
                "TLS_INSECURE_SKIP_VERIFY",
                "spec.healthChecks[0].http.tls.insecureSkipVerify",
                http_check(json!({"url": "https://x", "tls": {"insecureSkipVerify": true}})),
            ),
            fires(
                "grpc skip verify",
                "TLS_INSECURE_SKIP_VERIFY",
                "spec.healthChecks[0].grpc.tls.insecureSkipVerify",
                typed(
                    "grpc",
                    json!({"host": "h", "port": 1, "tls": {"enabled": true, "insecureSkipVerify": true}}),
                ),
            ),
            silent(
                "verify on",
                "TLS_INSECURE_SKIP_VERIFY",
                http_check(json!({"url": "https://x", "tls": {"insecureSkipVerify": false}})),
            ),
            fires(
                "tcp no host",
                "TCP_HOST_MISSING",
                "spec.healthChecks[0].tcp.host",
                typed("tcp", json!({"port": 80})),
            ),
            silent("tcp host", "TCP_HOST_MISSING", typed("tcp", tcp_ok.clone())),
            fires(
                "tcp port 70000",
                "TCP_PORT_INVALID",
                "spec.healthChecks[0].tcp.port",
                typed("tcp", json!({"host": "h", "port": 70000})),
            ),
            fires(
                "tcp port text",
                "TCP_PORT_INVALID",
                "spec.healthChecks[0].tcp.port",
                typed("tcp", json!({"host": "h", "port": "http"})),
            ),
            fires(
                "udp port fraction",
                "UDP_PORT_INVALID",
                "spec.healthChecks[0].udp.port",
                typed("udp", json!({"host": "h", "port": 53.5})),
            ),
            silent(
                "grpc port as numeric string",
                "GRPC_PORT_INVALID",
                typed("grpc", json!({"host": "h", "port": "9090"})),
            ),
            fires(
                "ratio text",
                "KUBERNETES_READY_RATIO_INVALID",
                "spec.healthChecks[0].kubernetes.requiredReadyRatio",
                typed("kubernetes", json!({"requiredReadyRatio": "most"})),
            ),
            fires(
                "weight text",
                "WEIGHT_INVALID",
                "spec.healthChecks[0].weight",
                one(json!({"name": "a", "weight": "high"})),
            ),
            fires(
                "http url without host",
                "HTTP_URL_INVALID",
                "spec.healthChecks[0].http.url",
                http_check(json!({"url": "http:///healthz"})),
            ),
            fires(
                "tcp port 0",
                "TCP_PORT_INVALID",
                "spec.healthChecks[0].tcp.port",
                typed("tcp", json!({"host": "h", "port": 0})),
            ),
            silent(
                "tcp port 65535",
                "TCP_PORT_INVALID",
                typed("tcp", json!({"host": "h", "port": 65535})),
            ),
            fires(
                "udp no host",
                "UDP_HOST_MISSING",
                "spec.healthChecks[0].udp.host",
                typed("udp", json!({"host": "", "port": 53})),
            ),
            silent(
                "udp host",
                "UDP_HOST_MISSING",
                typed("udp", json!({"host": "dns", "port": 53})),
            ),
            fires(
                "udp port -1",
                "UDP_PORT_INVALID",
                "spec.healthChecks[0].udp.port",
                typed("udp", json!({"host": "h", "port": -1})),
            ),
            silent(
                "udp port 1",
                "UDP_PORT_INVALID",
                typed("udp", json!({"host": "h", "port": 1})),
            ),
            fires(
                "udp retries 11",
                "UDP_RETRIES_INVALID",
                "spec.healthChecks[0].udp.retries",
                typed("udp", json!({"host": "h", "port": 53, "retries": 11})),
            ),
            fires(
                "udp retries 0",
                "UDP_RETRIES_INVALID",
                "spec.healthChecks[0].udp.retries",
                typed("udp", json!({"host": "h", "port": 53, "retries": 0})),
            ),
            silent(
                "udp retries 10",
                "UDP_RETRIES_INVALID",
                typed("udp", json!({"host": "h", "port": 53, "retries": 10})),
            ),
            fires(
                "grpc no host",
                "GRPC_HOST_MISSING",
                "spec.healthChecks[0].grpc.host",
                typed("grpc", json!({"port": 9090})),
            ),
            silent(
                "grpc host",
                "GRPC_HOST_MISSING",
                typed("grpc", json!({"host": "h", "port": 9090})),
            ),
            fires(
                "grpc port 65536",
                "GRPC_PORT_INVALID",
                "spec.healthChecks[0].grpc.port",
                typed("grpc", json!({"host": "h", "port": 65536})),
            ),
            silent(
                "grpc port",
                "GRPC_PORT_INVALID",
                typed("grpc", json!({"host": "h", "port": 9090})),
            ),
            fires(
                "no query",
                "PROMETHEUS_QUERY_MISSING",
                "spec.healthChecks[0].prometheus.query",
                typed(
                    "prometheus",
                    json!({"threshold": "1", "endpoint": "http://p"}),
                ),
            ),
            silent(
                "query",
                "PROMETHEUS_QUERY_MISSING",
                typed("prometheus", json!({"query": "up", "threshold": "1"})),
            ),
            fires(
                "no threshold",
                "PROMETHEUS_THRESHOLD_MISSING",
                "spec.healthChecks[0].prometheus.threshold",
                typed("prometheus", json!({"query": "up"})),
            ),
            fires(
                "empty threshold",
                "PROMETHEUS_THRESHOLD_MISSING",
                "spec.healthChecks[0].prometheus.threshold",
                typed("prometheus", json!({"query": "up", "threshold": ""})),
            ),
            silent(
                "numeric threshold",
                "PROMETHEUS_THRESHOLD_MISSING",
                typed("prometheus", json!({"query": "up", "threshold": 0.95})),
            ),
            fires(
                "text threshold",
                "PROMETHEUS_THRESHOLD_INVALID",
                "spec.healthChecks[0].prometheus.threshold",
                typed("prometheus", json!({"query": "up", "threshold": "high"})),
            ),
            silent(
                "string number threshold",
                "PROMETHEUS_THRESHOLD_INVALID",
                typed("prometheus", json!({"query": "up", "threshold": "0.95"})),
            ),
            fires(
                "symbol operator",
                "PROMETHEUS_OPERATOR_INVALID",
                "spec.healthChecks[0].prometheus.operator",
                typed(
                    "prometheus",
                    json!({"query": "up", "threshold": "1", "operator": ">="}),
                ),
            ),
            silent(
                "gte",
                "PROMETHEUS_OPERATOR_INVALID",
                typed(
                    "prometheus",
                    json!({"query": "up", "threshold": "1", "operator": "gte"}),
                ),
            ),
            fires(
                "no endpoint",
                "PROMETHEUS_ENDPOINT_MISSING",
                "spec.healthChecks[0].prometheus.endpoint",
                typed("prometheus", json!({"query": "up", "threshold": "1"})),
            ),
            silent(
                "service discovery",
                "PROMETHEUS_ENDPOINT_MISSING",
                typed(
                    "prometheus",
                    json!({"query": "up", "threshold": "1", "serviceDiscovery": {"serviceName": "prometheus"}}),
                ),
            ),
            silent(
                "endpoint",
                "PROMETHEUS_ENDPOINT_MISSING",
                typed(
                    "prometheus",
                    json!({"query": "up", "threshold": "1", "endpoint": "http://prometheus:9090"}),
                ),
            ),
            fires(
                "ratio 1.5",
                "KUBERNETES_READY_RATIO_INVALID",
                "spec.healthChecks[0].kubernetes.requiredReadyRatio",
                typed("kubernetes", json!({"requiredReadyRatio": 1.5})),
            ),
            fires(
                "ratio -0.1",
                "KUBERNETES_READY_RATIO_INVALID",
                "spec.healthChecks[0].kubernetes.requiredReadyRatio",
                typed("kubernetes", json!({"requiredReadyRatio": -0.1})),
            ),
            silent(
                "ratio 1",
                "KUBERNETES_READY_RATIO_INVALID",
                typed("kubernetes", json!({"requiredReadyRatio": 1})),
            ),
            fires(
                "threshold 0",
                "FAILURE_THRESHOLD_INVALID",
                "spec.healthChecks[0].failureThreshold",
                one(json!({"name": "a", "failureThreshold": 0})),
            ),
            silent(
                "threshold 1",
                "FAILURE_THRESHOLD_INVALID",
                one(json!({"name": "a", "failureThreshold": 1})),
            ),
            fires(
                "weight 101",
                "WEIGHT_INVALID",
                "spec.healthChecks[0].weight",
                one(json!({"name": "a", "weight": 101})),
            ),
            fires(
                "weight -1",
                "WEIGHT_INVALID",
                "spec.healthChecks[0].weight",
                one(json!({"name": "a", "weight": -1})),
            ),
            silent(
                "weight 0 and 100",
                "WEIGHT_INVALID",
                json!({"healthChecks": [{"name": "a", "weight": 0}, {"name": "b", "weight": 100}]}),
            ),
            fires(
                "interval without unit",
                "DURATION_INVALID",
                "spec.healthChecks[0].interval",
                one(json!({"name": "a", "interval": 30})),
            ),
            fires(
                "timeout in words",
                "DURATION_INVALID",
                "spec.healthChecks[0].timeout",
                one(json!({"name": "a", "timeout": "ten seconds"})),
            ),
            fires(
                "udp read timeout",
                "DURATION_INVALID",
                "spec.healthChecks[0].udp.readTimeout",
                typed("udp", json!({"host": "h", "port": 53, "readTimeout": "5"})),
            ),
            fires(
                "grpc pool duration",
                "DURATION_INVALID",
                "spec.healthChecks[0].grpc.connectionPool.maxIdleTime",
                typed(
                    "grpc",
                    json!({"host": "h", "port": 1, "connectionPool": {"maxIdleTime": "1d"}}),
                ),
            ),
            fires(
                "prometheus cache ttl",
                "DURATION_INVALID",
                "spec.healthChecks[0].prometheus.cacheTTL",
                typed(
                    "prometheus",
                    json!({"query": "up", "threshold": 1, "cacheTTL": "five"}),
                ),
            ),
            fires(
                "kubernetes api timeout",
                "DURATION_INVALID",
                "spec.healthChecks[0].kubernetes.apiTimeout",
                typed("kubernetes", json!({"apiTimeout": "3"})),
            ),
            fires(
                "tcp connection timeout",
                "DURATION_INVALID",
                "spec.healthChecks[0].tcp.connectionTimeout",
                typed(
                    "tcp",
                    json!({"host": "h", "port": 1, "connectionTimeout": "x"}),
                ),
            ),
            silent(
                "go durations",
                "DURATION_INVALID",
                one(json!({"name": "a", "interval": "1m30s", "timeout": "1.5s"})),
            ),
            fires(
                "timeout equals interval",
                "HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL",
                "spec.healthChecks[0].timeout",
                one(json!({"name": "a", "interval": "10s", "timeout": "10s"})),
            ),
            silent(
                "timeout below interval",
                "HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL",
                one(json!({"name": "a", "interval": "10s", "timeout": "9999ms"})),
            ),
            fires(
                "interval 4s",
                "HEALTH_CHECK_INTERVAL_TOO_SHORT",
                "spec.healthChecks[0].interval",
                one(json!({"name": "a", "interval": "4s"})),
            ),
            silent(
                "interval 5s",
                "HEALTH_CHECK_INTERVAL_TOO_SHORT",
                one(json!({"name": "a", "interval": "5s"})),
            ),
        ]
    }

    #[test]
    fn health_rules_table() {
        run_table(RULES, cases());
    }

    #[test]
    fn ignored_block_is_not_validated() {
        let spec = crate::validation::test_support::spec(one(
            json!({"name": "a", "type": "http", "http": {"url": "http://x"}, "tcp": {"port": 0}}),
        ));
        let got = crate::validation::test_support::run_group(RULES, &spec, None);
        assert_eq!(
            got,
            vec![(
                "HEALTH_CHECK_CONFIG_MISMATCH".to_owned(),
                "spec.healthChecks[0].tcp".to_owned()
            )]
        );
    }
}
