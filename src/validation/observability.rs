//! Rules for `spec.observability`.

use super::checks::{check_duration, given, non_empty, one_of, shown_url, url_scheme_with_host};
use super::codes;
use super::finding::{Findings, shown};
use super::{FnRule, Input};
use crate::api::ObservabilitySpec;
use crate::api::duration::GoDuration;

pub const RULES: &[FnRule] = &[
    FnRule {
        name: "observability/tracing",
        codes: &[
            codes::TRACING_ENDPOINT_URL_MISSING,
            codes::TRACING_ENDPOINT_URL_INVALID,
            codes::SAMPLING_RATE_INVALID,
        ],
        check: tracing,
    },
    FnRule {
        name: "observability/logging",
        codes: &[codes::LOG_LEVEL_INVALID],
        check: logging,
    },
    FnRule {
        name: "observability/metrics",
        codes: &[codes::METRICS_INTERVAL_TOO_SHORT, codes::DURATION_INVALID],
        check: metrics,
    },
];

const LOG_LEVELS: &[&str] = &["debug", "info", "warn", "error"];

fn observability<'a>(input: Input<'a>) -> Option<&'a ObservabilitySpec> {
    input.spec.observability.as_ref()
}

fn tracing(input: Input<'_>, out: &mut Findings) {
    let Some(tracing) = observability(input).and_then(|o| o.tracing.as_ref()) else {
        return;
    };
    if let Some(endpoint) = &tracing.endpoint {
        const FIELD: &str = "spec.observability.tracing.endpoint.url";
        match non_empty(&endpoint.url) {
            None if tracing.enabled == Some(true) => out.report(
                codes::TRACING_ENDPOINT_URL_MISSING,
                FIELD,
                "tracing is enabled but the endpoint has no url; set endpoint.url",
            ),
            Some(url) if url_scheme_with_host(url).is_none() => out.report(
                codes::TRACING_ENDPOINT_URL_INVALID,
                FIELD,
                format!(
                    "{} is not a URL with scheme and host, e.g. http://otel-collector:4317",
                    shown_url(url)
                ),
            ),
            _ => {}
        }
    }
    if let Some(rate) = given(tracing.sampling_rate.as_ref())
        && !rate.as_f64().is_some_and(|r| (0.0..=1.0).contains(&r))
    {
        out.report(
            codes::SAMPLING_RATE_INVALID,
            "spec.observability.tracing.samplingRate",
            format!(
                "samplingRate {} must be a number from 0 to 1, e.g. \"0.1\"",
                shown(&rate.as_text())
            ),
        );
    }
}

fn logging(input: Input<'_>, out: &mut Findings) {
    let level = observability(input)
        .and_then(|o| o.logging.as_ref())
        .and_then(|l| non_empty(&l.level));
    if let Some(level) = level.filter(|l| !LOG_LEVELS.contains(l)) {
        out.report(
            codes::LOG_LEVEL_INVALID,
            "spec.observability.logging.level",
            format!("log level {} {}", shown(level), one_of(level, LOG_LEVELS)),
        );
    }
}

fn metrics(input: Input<'_>, out: &mut Findings) {
    const MIN_INTERVAL: GoDuration = GoDuration::from_secs(1);
    let Some(metrics) = observability(input).and_then(|o| o.metrics.as_ref()) else {
        return;
    };
    const FIELD: &str = "spec.observability.metrics.interval";
    let interval = check_duration(out, || FIELD.into(), metrics.interval.as_ref());
    if metrics.enabled == Some(true) && interval.is_some_and(|d| d < MIN_INTERVAL) {
        out.report(
            codes::METRICS_INTERVAL_TOO_SHORT,
            FIELD,
            "metrics interval must be at least 1s",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{Case, fires, run_table, silent};
    use serde_json::{Value, json};

    fn obs(v: Value) -> Value {
        json!({"observability": v})
    }

    fn cases() -> Vec<Case> {
        vec![
            fires(
                "enabled, empty url",
                "TRACING_ENDPOINT_URL_MISSING",
                "spec.observability.tracing.endpoint.url",
                obs(json!({"tracing": {"enabled": true, "endpoint": {"url": ""}}})),
            ),
            silent(
                "disabled, empty url",
                "TRACING_ENDPOINT_URL_MISSING",
                obs(json!({"tracing": {"enabled": false, "endpoint": {}}})),
            ),
            silent(
                "enabled, url",
                "TRACING_ENDPOINT_URL_MISSING",
                obs(json!({"tracing": {"enabled": true, "endpoint": {"url": "http://otel:4317"}}})),
            ),
            fires(
                "host only",
                "TRACING_ENDPOINT_URL_INVALID",
                "spec.observability.tracing.endpoint.url",
                obs(
                    json!({"tracing": {"enabled": true, "endpoint": {"url": "otel-collector:4317"}}}),
                ),
            ),
            silent(
                "grpc url",
                "TRACING_ENDPOINT_URL_INVALID",
                obs(
                    json!({"tracing": {"enabled": true, "endpoint": {"url": "grpc://otel-collector:4317"}}}),
                ),
            ),
            fires(
                "rate 1.5",
                "SAMPLING_RATE_INVALID",
                "spec.observability.tracing.samplingRate",
                obs(json!({"tracing": {"samplingRate": "1.5"}})),
            ),
            fires(
                "rate text",
                "SAMPLING_RATE_INVALID",
                "spec.observability.tracing.samplingRate",
                obs(json!({"tracing": {"samplingRate": "ten percent"}})),
            ),
            silent(
                "rate string",
                "SAMPLING_RATE_INVALID",
                obs(json!({"tracing": {"samplingRate": "0.1"}})),
            ),
            silent(
                "rate number",
                "SAMPLING_RATE_INVALID",
                obs(json!({"tracing": {"samplingRate": 1}})),
            ),
            fires(
                "trace level",
                "LOG_LEVEL_INVALID",
                "spec.observability.logging.level",
                obs(json!({"logging": {"level": "trace"}})),
            ),
            fires(
                "upper level",
                "LOG_LEVEL_INVALID",
                "spec.observability.logging.level",
                obs(json!({"logging": {"level": "INFO"}})),
            ),
            silent(
                "warn level",
                "LOG_LEVEL_INVALID",
                obs(json!({"logging": {"level": "warn"}})),
            ),
            fires(
                "500ms",
                "METRICS_INTERVAL_TOO_SHORT",
                "spec.observability.metrics.interval",
                obs(json!({"metrics": {"enabled": true, "interval": "500ms"}})),
            ),
            silent(
                "1s",
                "METRICS_INTERVAL_TOO_SHORT",
                obs(json!({"metrics": {"enabled": true, "interval": "1s"}})),
            ),
            silent(
                "disabled 500ms",
                "METRICS_INTERVAL_TOO_SHORT",
                obs(json!({"metrics": {"enabled": false, "interval": "500ms"}})),
            ),
            fires(
                "interval no unit",
                "DURATION_INVALID",
                "spec.observability.metrics.interval",
                obs(json!({"metrics": {"enabled": true, "interval": "15"}})),
            ),
            silent(
                "interval 15s",
                "DURATION_INVALID",
                obs(json!({"metrics": {"enabled": true, "interval": "15s"}})),
            ),
        ]
    }

    #[test]
    fn observability_rules_table() {
        run_table(RULES, cases());
    }
}
