//! Rules for `spec.teardownPolicy`.

use super::checks::{
    check_duration, given, integer_outside, is_http_url, non_empty, one_of, shown_url,
};
use super::codes;
use super::finding::{Findings, shown};
use super::{FnRule, Input};
use crate::api::duration::GoDuration;
use crate::api::quantity::{is_quantity, parse_percentage};
use crate::api::schedule::Schedule;
use crate::api::{QuantityText, TeardownTriggerSpec};

pub const RULES: &[FnRule] = &[
    FnRule {
        name: "teardown/policy",
        codes: &[codes::NO_TEARDOWN_POLICY, codes::TEARDOWN_TRIGGERS_MISSING],
        check: policy,
    },
    FnRule {
        name: "teardown/type",
        codes: &[codes::TRIGGER_TYPE_MISSING, codes::TRIGGER_TYPE_INVALID],
        check: trigger_types,
    },
    FnRule {
        name: "teardown/blocks",
        codes: &[codes::TRIGGER_CONFIG_MISMATCH],
        check: trigger_blocks,
    },
    FnRule {
        name: "teardown/timeout",
        codes: &[
            codes::TIMEOUT_MISSING,
            codes::TEARDOWN_TIMEOUT_TOO_SHORT,
            codes::DURATION_INVALID,
        ],
        check: timeouts,
    },
    FnRule {
        name: "teardown/failure_count",
        codes: &[
            codes::FAILURE_COUNT_MISSING,
            codes::FAILURE_COUNT_INVALID,
            codes::FAILURE_COUNT_WITHOUT_HEALTH_CHECKS,
        ],
        check: failure_counts,
    },
    FnRule {
        name: "teardown/schedule",
        codes: &[codes::SCHEDULE_MISSING, codes::SCHEDULE_INVALID],
        check: schedules,
    },
    FnRule {
        name: "teardown/resource_threshold",
        codes: &[
            codes::RESOURCE_THRESHOLD_MISSING,
            codes::RESOURCE_THRESHOLD_INVALID,
        ],
        check: resource_thresholds,
    },
    FnRule {
        name: "teardown/webhook",
        codes: &[
            codes::WEBHOOK_TRIGGER_URL_MISSING,
            codes::WEBHOOK_TRIGGER_URL_INVALID,
        ],
        check: webhooks,
    },
    FnRule {
        name: "teardown/cleanup",
        codes: &[codes::DURATION_INVALID],
        check: cleanup,
    },
];

pub const TRIGGER_TYPES: &[&str] = &[
    "timeout",
    "failure_count",
    "resource_threshold",
    "schedule",
    "webhook",
];

fn triggers<'a>(input: Input<'a>) -> impl Iterator<Item = (usize, &'a TeardownTriggerSpec)> {
    input
        .spec
        .teardown_policy
        .iter()
        .flat_map(|p| p.triggers.iter().flatten())
        .enumerate()
}

fn policy(input: Input<'_>, out: &mut Findings) {
    match &input.spec.teardown_policy {
        None => out.report(
            codes::NO_TEARDOWN_POLICY,
            "spec.teardownPolicy",
            "no teardown policy: the roost lives until deleted; add a timeout trigger for temporary roosts",
        ),
        Some(policy) if policy.triggers.as_ref().is_none_or(Vec::is_empty) => out.report(
            codes::TEARDOWN_TRIGGERS_MISSING,
            "spec.teardownPolicy.triggers",
            "no triggers, so it never fires; add one",
        ),
        Some(_) => {}
    }
}

fn trigger_types(input: Input<'_>, out: &mut Findings) {
    for (i, trigger) in triggers(input) {
        match non_empty(&trigger.type_) {
            None => out.report(
                codes::TRIGGER_TYPE_MISSING,
                format!("spec.teardownPolicy.triggers[{i}].type"),
                "trigger has no type; set one of timeout, failure_count, resource_threshold, schedule, webhook",
            ),
            Some(kind) if !TRIGGER_TYPES.contains(&kind) => out.report(
                codes::TRIGGER_TYPE_INVALID,
                format!("spec.teardownPolicy.triggers[{i}].type"),
                format!("type {} {}", shown(kind), one_of(kind, TRIGGER_TYPES)),
            ),
            Some(_) => {}
        }
    }
}

/// Each trigger type's block, by its field name.
fn blocks(trigger: &TeardownTriggerSpec) -> [(&'static str, &'static str, bool); 5] {
    [
        ("timeout", "timeout", trigger.timeout.is_some()),
        (
            "failure_count",
            "failureCount",
            trigger.failure_count.is_some(),
        ),
        (
            "resource_threshold",
            "resourceThreshold",
            trigger.resource_threshold.is_some(),
        ),
        ("schedule", "schedule", trigger.schedule.is_some()),
        ("webhook", "webhook", trigger.webhook.is_some()),
    ]
}

/// A block of another type is ignored (v1beta1's CRD refuses it outright).
fn trigger_blocks(input: Input<'_>, out: &mut Findings) {
    for (i, trigger) in triggers(input) {
        let Some(kind) = non_empty(&trigger.type_).filter(|k| TRIGGER_TYPES.contains(k)) else {
            continue;
        };
        for (owner, block, present) in blocks(trigger) {
            if present && owner != kind {
                out.report(
                    codes::TRIGGER_CONFIG_MISMATCH,
                    format!("spec.teardownPolicy.triggers[{i}].{block}"),
                    format!("ignored on a {kind} trigger"),
                );
            }
        }
    }
}

fn timeouts(input: Input<'_>, out: &mut Findings) {
    const MIN_TIMEOUT: GoDuration = GoDuration::from_secs(5 * 60);
    for (i, trigger) in triggers(input) {
        let field = || format!("spec.teardownPolicy.triggers[{i}].timeout");
        let is_timeout_trigger = trigger.type_.as_deref() == Some("timeout");
        let given = trigger.timeout.as_ref().filter(|t| !t.0.is_empty());
        if given.is_none() {
            if is_timeout_trigger {
                out.report(
                    codes::TIMEOUT_MISSING,
                    field(),
                    "timeout trigger needs a timeout, e.g. 2h",
                );
            }
            continue;
        }
        let parsed = check_duration(out, field, given);
        if is_timeout_trigger && parsed.is_some_and(|d| d < MIN_TIMEOUT) {
            out.report(
                codes::TEARDOWN_TIMEOUT_TOO_SHORT,
                field(),
                "under 5m; use 5m or more",
            );
        }
    }
}

fn failure_counts(input: Input<'_>, out: &mut Findings) {
    let has_checks = input
        .spec
        .health_checks
        .as_ref()
        .is_some_and(|c| !c.is_empty());
    for (i, trigger) in triggers(input) {
        let is_failure_trigger = trigger.type_.as_deref() == Some("failure_count");
        let count = trigger.failure_count.as_ref();
        if given(count).is_none() {
            if is_failure_trigger {
                out.report(
                    codes::FAILURE_COUNT_MISSING,
                    format!("spec.teardownPolicy.triggers[{i}].failureCount"),
                    "failure_count trigger needs failureCount, e.g. 10",
                );
            }
        } else if let Some(got) = integer_outside(count, 1..=i64::MAX) {
            out.report(
                codes::FAILURE_COUNT_INVALID,
                format!("spec.teardownPolicy.triggers[{i}].failureCount"),
                format!("failureCount must be at least 1, got {got}"),
            );
        }
        if is_failure_trigger && !has_checks {
            out.report(
                codes::FAILURE_COUNT_WITHOUT_HEALTH_CHECKS,
                format!("spec.teardownPolicy.triggers[{i}]"),
                "never fires without health checks",
            );
        }
    }
}

fn schedules(input: Input<'_>, out: &mut Findings) {
    for (i, trigger) in triggers(input) {
        let field = || format!("spec.teardownPolicy.triggers[{i}].schedule");
        match non_empty(&trigger.schedule) {
            None if trigger.type_.as_deref() == Some("schedule") => out.report(
                codes::SCHEDULE_MISSING,
                field(),
                "schedule trigger needs a cron schedule, e.g. \"0 2 * * *\"",
            ),
            Some(expr) if Schedule::parse(expr).is_none() => out.report(
                codes::SCHEDULE_INVALID,
                field(),
                format!(
                    "{} is not a 5-field cron expression (minute hour day month weekday)",
                    shown(expr)
                ),
            ),
            _ => {}
        }
    }
}

fn is_threshold_value(value: &QuantityText) -> bool {
    let text = value.as_text();
    // A negative usage threshold can never be crossed, so it is refused too.
    match parse_percentage(&text) {
        Some(pct) => (1.0..=100.0).contains(&pct),
        None => is_quantity(&text) && !text.starts_with('-'),
    }
}

fn resource_thresholds(input: Input<'_>, out: &mut Findings) {
    for (i, trigger) in triggers(input) {
        let base = format!("spec.teardownPolicy.triggers[{i}].resourceThreshold");
        let threshold = trigger.resource_threshold.as_ref();
        let mut values: Vec<(String, &QuantityText)> = Vec::new();
        if let Some(t) = threshold {
            for (name, value) in [
                ("memory", &t.memory),
                ("cpu", &t.cpu),
                ("storage", &t.storage),
            ] {
                if let Some(value) = value.as_ref().filter(|v| !v.0.is_empty()) {
                    values.push((format!("{base}.{name}"), value));
                }
            }
            for (key, value) in t.custom.iter().flatten().filter(|(_, v)| !v.0.is_empty()) {
                values.push((format!("{base}.custom[{key}]"), value));
            }
        }
        if values.is_empty() {
            if trigger.type_.as_deref() == Some("resource_threshold") {
                out.report(
                    codes::RESOURCE_THRESHOLD_MISSING,
                    base,
                    "resource_threshold trigger needs memory, cpu, storage or custom, e.g. memory: 80%",
                );
            }
            continue;
        }
        for (field, value) in values {
            if !is_threshold_value(value) {
                out.report(
                    codes::RESOURCE_THRESHOLD_INVALID,
                    field,
                    format!(
                        "{} is neither a percentage 1%-100% nor a quantity like 4Gi",
                        shown(&value.as_text())
                    ),
                );
            }
        }
    }
}

fn webhooks(input: Input<'_>, out: &mut Findings) {
    for (i, trigger) in triggers(input) {
        let field = || format!("spec.teardownPolicy.triggers[{i}].webhook.url");
        match trigger.webhook.as_ref().and_then(|w| non_empty(&w.url)) {
            None if trigger.type_.as_deref() == Some("webhook") => out.report(
                codes::WEBHOOK_TRIGGER_URL_MISSING,
                field(),
                "webhook trigger needs webhook.url",
            ),
            Some(url) if !is_http_url(url) => out.report(
                codes::WEBHOOK_TRIGGER_URL_INVALID,
                field(),
                format!("{} is not an http or https URL with a host", shown_url(url)),
            ),
            _ => {}
        }
    }
}

fn cleanup(input: Input<'_>, out: &mut Findings) {
    if let Some(cleanup) = input
        .spec
        .teardown_policy
        .as_ref()
        .and_then(|p| p.cleanup.as_ref())
    {
        check_duration(
            out,
            || "spec.teardownPolicy.cleanup.gracePeriod".into(),
            cleanup.grace_period.as_ref(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{Case, fires, run_table, silent};
    use serde_json::{Value, json};

    fn trigger(t: Value) -> Value {
        json!({"teardownPolicy": {"triggers": [t]}})
    }

    fn cases() -> Vec<Case> {
        let check = json!([{"name": "a", "type": "tcp", "tcp": {"host": "h", "port": 1}}]);
        vec![
            fires(
                "no policy",
                "NO_TEARDOWN_POLICY",
                "spec.teardownPolicy",
                json!({}),
            ),
            silent(
                "policy",
                "NO_TEARDOWN_POLICY",
                trigger(json!({"type": "timeout", "timeout": "1h"})),
            ),
            fires(
                "no triggers",
                "TEARDOWN_TRIGGERS_MISSING",
                "spec.teardownPolicy.triggers",
                json!({"teardownPolicy": {"requireManualApproval": true}}),
            ),
            fires(
                "empty triggers",
                "TEARDOWN_TRIGGERS_MISSING",
                "spec.teardownPolicy.triggers",
                json!({"teardownPolicy": {"triggers": []}}),
            ),
            silent(
                "a trigger",
                "TEARDOWN_TRIGGERS_MISSING",
                trigger(json!({"type": "timeout", "timeout": "1h"})),
            ),
            fires(
                "no type",
                "TRIGGER_TYPE_MISSING",
                "spec.teardownPolicy.triggers[0].type",
                trigger(json!({"timeout": "1h"})),
            ),
            silent(
                "typed",
                "TRIGGER_TYPE_MISSING",
                trigger(json!({"type": "timeout", "timeout": "1h"})),
            ),
            fires(
                "manual type",
                "TRIGGER_TYPE_INVALID",
                "spec.teardownPolicy.triggers[0].type",
                trigger(json!({"type": "manual"})),
            ),
            fires(
                "camel type",
                "TRIGGER_TYPE_INVALID",
                "spec.teardownPolicy.triggers[0].type",
                trigger(json!({"type": "failureCount", "failureCount": 3})),
            ),
            silent(
                "webhook type",
                "TRIGGER_TYPE_INVALID",
                trigger(json!({"type": "webhook", "webhook": {"url": "https://x"}})),
            ),
            fires(
                "schedule with a timeout",
                "TRIGGER_CONFIG_MISMATCH",
                "spec.teardownPolicy.triggers[0].timeout",
                trigger(json!({"type": "schedule", "schedule": "0 2 * * *", "timeout": "2h"})),
            ),
            fires(
                "timeout with a webhook",
                "TRIGGER_CONFIG_MISMATCH",
                "spec.teardownPolicy.triggers[0].webhook",
                trigger(
                    json!({"type": "timeout", "timeout": "2h", "webhook": {"url": "https://x.io"}}),
                ),
            ),
            silent(
                "only its own block",
                "TRIGGER_CONFIG_MISMATCH",
                trigger(json!({"type": "failure_count", "failureCount": 3})),
            ),
            silent(
                "blocks of an unknown type",
                "TRIGGER_CONFIG_MISMATCH",
                trigger(json!({"type": "manual", "timeout": "2h"})),
            ),
            fires(
                "timeout missing",
                "TIMEOUT_MISSING",
                "spec.teardownPolicy.triggers[0].timeout",
                trigger(json!({"type": "timeout"})),
            ),
            silent(
                "timeout given",
                "TIMEOUT_MISSING",
                trigger(json!({"type": "timeout", "timeout": "2h"})),
            ),
            silent(
                "other type without timeout",
                "TIMEOUT_MISSING",
                trigger(json!({"type": "schedule", "schedule": "0 2 * * *"})),
            ),
            fires(
                "timeout 4m",
                "TEARDOWN_TIMEOUT_TOO_SHORT",
                "spec.teardownPolicy.triggers[0].timeout",
                trigger(json!({"type": "timeout", "timeout": "4m59s"})),
            ),
            silent(
                "timeout 5m",
                "TEARDOWN_TIMEOUT_TOO_SHORT",
                trigger(json!({"type": "timeout", "timeout": "5m"})),
            ),
            fires(
                "timeout in days",
                "DURATION_INVALID",
                "spec.teardownPolicy.triggers[0].timeout",
                trigger(json!({"type": "timeout", "timeout": "1d"})),
            ),
            fires(
                "grace period",
                "DURATION_INVALID",
                "spec.teardownPolicy.cleanup.gracePeriod",
                json!({"teardownPolicy": {"cleanup": {"gracePeriod": "30"}}}),
            ),
            silent(
                "valid durations",
                "DURATION_INVALID",
                json!({"teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "1.5h"}], "cleanup": {"gracePeriod": "30s"}}}),
            ),
            fires(
                "count missing",
                "FAILURE_COUNT_MISSING",
                "spec.teardownPolicy.triggers[0].failureCount",
                trigger(json!({"type": "failure_count"})),
            ),
            silent(
                "count given",
                "FAILURE_COUNT_MISSING",
                trigger(json!({"type": "failure_count", "failureCount": 5})),
            ),
            fires(
                "count 0",
                "FAILURE_COUNT_INVALID",
                "spec.teardownPolicy.triggers[0].failureCount",
                trigger(json!({"type": "failure_count", "failureCount": 0})),
            ),
            silent(
                "count 1",
                "FAILURE_COUNT_INVALID",
                trigger(json!({"type": "failure_count", "failureCount": 1})),
            ),
            fires(
                "no checks",
                "FAILURE_COUNT_WITHOUT_HEALTH_CHECKS",
                "spec.teardownPolicy.triggers[0]",
                trigger(json!({"type": "failure_count", "failureCount": 3})),
            ),
            silent(
                "with checks",
                "FAILURE_COUNT_WITHOUT_HEALTH_CHECKS",
                json!({"healthChecks": check, "teardownPolicy": {"triggers": [{"type": "failure_count", "failureCount": 3}]}}),
            ),
            fires(
                "schedule missing",
                "SCHEDULE_MISSING",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule"})),
            ),
            silent(
                "schedule given",
                "SCHEDULE_MISSING",
                trigger(json!({"type": "schedule", "schedule": "*/15 * * * 1-5"})),
            ),
            fires(
                "six fields",
                "SCHEDULE_INVALID",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule", "schedule": "0 0 2 * * *"})),
            ),
            fires(
                "minute 61",
                "SCHEDULE_INVALID",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule", "schedule": "61 * * * *"})),
            ),
            fires(
                "nickname",
                "SCHEDULE_INVALID",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule", "schedule": "@daily"})),
            ),
            fires(
                "words",
                "SCHEDULE_INVALID",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule", "schedule": "every day"})),
            ),
            fires(
                "quartz last day",
                "SCHEDULE_INVALID",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule", "schedule": "0 0 L * *"})),
            ),
            fires(
                "quartz nth weekday",
                "SCHEDULE_INVALID",
                "spec.teardownPolicy.triggers[0].schedule",
                trigger(json!({"type": "schedule", "schedule": "0 0 * * 1#2"})),
            ),
            silent(
                "names",
                "SCHEDULE_INVALID",
                trigger(json!({"type": "schedule", "schedule": "30 6 1 JUL,DEC MON-FRI"})),
            ),
            fires(
                "negative quantity",
                "RESOURCE_THRESHOLD_INVALID",
                "spec.teardownPolicy.triggers[0].resourceThreshold.memory",
                trigger(
                    json!({"type": "resource_threshold", "resourceThreshold": {"memory": "-1Gi"}}),
                ),
            ),
            fires(
                "blank values only",
                "RESOURCE_THRESHOLD_MISSING",
                "spec.teardownPolicy.triggers[0].resourceThreshold",
                trigger(json!({"type": "resource_threshold", "resourceThreshold": {"memory": ""}})),
            ),
            fires(
                "count text",
                "FAILURE_COUNT_INVALID",
                "spec.teardownPolicy.triggers[0].failureCount",
                trigger(json!({"type": "failure_count", "failureCount": "many"})),
            ),
            silent(
                "daily at 2",
                "SCHEDULE_INVALID",
                trigger(json!({"type": "schedule", "schedule": "0 2 * * *"})),
            ),
            fires(
                "threshold missing",
                "RESOURCE_THRESHOLD_MISSING",
                "spec.teardownPolicy.triggers[0].resourceThreshold",
                trigger(json!({"type": "resource_threshold"})),
            ),
            fires(
                "threshold empty",
                "RESOURCE_THRESHOLD_MISSING",
                "spec.teardownPolicy.triggers[0].resourceThreshold",
                trigger(json!({"type": "resource_threshold", "resourceThreshold": {}})),
            ),
            silent(
                "threshold cpu",
                "RESOURCE_THRESHOLD_MISSING",
                trigger(json!({"type": "resource_threshold", "resourceThreshold": {"cpu": "75%"}})),
            ),
            fires(
                "150%",
                "RESOURCE_THRESHOLD_INVALID",
                "spec.teardownPolicy.triggers[0].resourceThreshold.memory",
                trigger(
                    json!({"type": "resource_threshold", "resourceThreshold": {"memory": "150%"}}),
                ),
            ),
            fires(
                "0%",
                "RESOURCE_THRESHOLD_INVALID",
                "spec.teardownPolicy.triggers[0].resourceThreshold.cpu",
                trigger(json!({"type": "resource_threshold", "resourceThreshold": {"cpu": "0%"}})),
            ),
            fires(
                "8GB",
                "RESOURCE_THRESHOLD_INVALID",
                "spec.teardownPolicy.triggers[0].resourceThreshold.storage",
                trigger(
                    json!({"type": "resource_threshold", "resourceThreshold": {"storage": "8GB"}}),
                ),
            ),
            fires(
                "custom",
                "RESOURCE_THRESHOLD_INVALID",
                "spec.teardownPolicy.triggers[0].resourceThreshold.custom[gpu]",
                trigger(
                    json!({"type": "resource_threshold", "resourceThreshold": {"custom": {"gpu": "lots"}}}),
                ),
            ),
            silent(
                "quantities",
                "RESOURCE_THRESHOLD_INVALID",
                trigger(
                    json!({"type": "resource_threshold", "resourceThreshold": {"memory": "4Gi", "cpu": "100%", "storage": 10, "custom": {"gpu": "1%"}}}),
                ),
            ),
            fires(
                "url missing",
                "WEBHOOK_TRIGGER_URL_MISSING",
                "spec.teardownPolicy.triggers[0].webhook.url",
                trigger(json!({"type": "webhook"})),
            ),
            silent(
                "url given",
                "WEBHOOK_TRIGGER_URL_MISSING",
                trigger(
                    json!({"type": "webhook", "webhook": {"url": "https://hooks.example.com/x"}}),
                ),
            ),
            fires(
                "ftp url",
                "WEBHOOK_TRIGGER_URL_INVALID",
                "spec.teardownPolicy.triggers[0].webhook.url",
                trigger(json!({"type": "webhook", "webhook": {"url": "ftp://x.io"}})),
            ),
            silent(
                "http url",
                "WEBHOOK_TRIGGER_URL_INVALID",
                trigger(json!({"type": "webhook", "webhook": {"url": "http://x.io/hook"}})),
            ),
        ]
    }

    #[test]
    fn teardown_rules_table() {
        run_table(RULES, cases());
    }
}
