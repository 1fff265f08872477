//! The monitoring objects in `charts/roost-keeper/files/`: the Prometheus
//! rules pass `promtool check rules` and their unit tests (`promtool test
//! rules`), every alert has a unit test that fires it and one that does not,
//! and every metric the rules and the Grafana dashboard query is one a real
//! server exports on `/metrics`. promtool comes from `tests/tools/promtool.sh`,
//! pinned and cached under `.cache/tools/`.

mod common;

use common::cluster::repo;
use common::{MUTATE, TestServer, VALIDATE, post, review, roost, valid_spec};
use roost_keeper::metrics::{ErrorLabel, Metrics, ResultLabel, TypeLabel};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const RULES: &str = "charts/roost-keeper/files/prometheus-rules.yaml";
const RULE_TESTS: &str = "charts/roost-keeper/files/prometheus-rules.test.yaml";
const DASHBOARD: &str = "charts/roost-keeper/files/grafana-dashboard.json";

/// Metrics the rules take from other exporters (names checked against
/// k8s.io/apiserver's pkg/admission/metrics and kube-state-metrics).
const EXTERNAL: &[&str] = &[
    "apiserver_admission_webhook_rejection_count",
    "apiserver_admission_webhook_fail_open_count",
    "kube_deployment_status_replicas_available",
];

fn promtool() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        roost_testcluster::built_by("tests/tools/promtool.sh")
            .unwrap()
            .join("promtool")
    })
}

fn run_promtool(args: &[&str]) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// `(alert name, expr)` of every alerting rule.
fn alerts() -> Vec<(String, String)> {
    let rules = yaml(RULES);
    items(&rules["groups"])
        .iter()
        .flat_map(|group| items(&group["rules"]))
        .filter_map(|rule| {
            let name = rule["alert"].as_str()?;
            Some((name.to_owned(), rule["expr"].as_str()?.to_owned()))
        })
        .collect()
}

/// Every `expr` of the dashboard's panels, rows' nested panels included.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &[Value], out: &mut Vec<String>) {
        for panel in panels {
            for target in items(&panel["targets"]) {
                out.extend(target["expr"].as_str().map(str::to_owned));
            }
            walk(items(&panel["panels"]), out);
        }
    }
    let mut out = Vec::new();
    walk(items(&dashboard["panels"]), &mut out);
    out
}

/// The metric names a PromQL expression selects. Skips strings, label
/// matchers (`{...}`), ranges (`[...]`), numbers and durations, Grafana
/// variables, function calls (a name followed by `(`), keywords and
/// aggregation operators, and the label lists of `by`, `without`, `on`,
/// `ignoring`, `group_left` and `group_right`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const NOT_METRICS: &[&str] = &[
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "atan2",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let skip_to = |from: usize, close: u8| {
        let mut i = from + 1;
        while i < bytes.len() && bytes[i] != close {
            if matches!(bytes[i], b'"' | b'\'' | b'`') {
                i = skip_string(bytes, i);
            }
            i += 1;
        }
        i
    };
    let mut names = BTreeSet::new();
    let mut label_list_next = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = skip_string(bytes, i),
            b'{' => i = skip_to(i, b'}'),
            b'[' => i = skip_to(i, b']'),
            b'(' if label_list_next => {
                i = skip_to(i, b')');
                label_list_next = false;
            }
            b if b.is_ascii_digit() || b == b'.' || b == b'$' => {
                while i + 1 < bytes.len() && (ident(bytes[i + 1]) || bytes[i + 1] == b'.') {
                    i += 1;
                }
            }
            b if ident(b) => {
                let start = i;
                while i < bytes.len() && ident(bytes[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let lower = word.to_ascii_lowercase();
                let next = expr[i..].trim_start().bytes().next();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    label_list_next = next == Some(b'(');
                } else if next != Some(b'(') && !NOT_METRICS.contains(&lower.as_str()) {
                    names.insert(word.to_owned());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// The index of the quote closing the string that opens at `open`.
fn skip_string(bytes: &[u8], open: usize) -> usize {
    let quote = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() && bytes[i] != quote {
        if bytes[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Every series name an exposition offers: the samples, and for families
/// that have none yet (labelled families before their first event) the
/// names their `# TYPE` line stands for.
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// `(expression, name)` for each name an expression uses that is neither
/// exposed nor allowed.
fn unknown_metrics(
    exprs: &[String],
    exposed: &BTreeSet<String>,
    allowed: &[&str],
) -> Vec<(String, String)> {
    exprs
        .iter()
        .flat_map(|expr| {
            metric_names(expr)
                .into_iter()
                .map(move |n| (expr.clone(), n))
        })
        .filter(|(_, name)| !exposed.contains(name) && !allowed.contains(&name.as_str()))
        .collect()
}

/// `/metrics` of a real server that has answered a valid review twice (a
/// cache hit), an invalid, a mutating and a malformed one.
async fn served_metrics() -> String {
    let server = TestServer::start().await;
    let client = server.client();
    let valid = review("m1", "CREATE", roost("web", valid_spec()), None).to_string();
    let invalid = review("m2", "CREATE", roost("bad", json!({"chart": {}})), None).to_string();
    post(&client, &server.url(VALIDATE), valid.clone()).await;
    post(&client, &server.url(VALIDATE), valid.clone()).await;
    post(&client, &server.url(VALIDATE), invalid).await;
    post(&client, &server.url(MUTATE), valid).await;
    post(&client, &server.url(VALIDATE), "not a review").await;
    server.metrics_text().await
}

/// The labelled families a test server leaves empty (prometheus-client
/// exports no line at all for a family without children): the controller's
/// need a cluster, policy evaluations need RoostPolicies. One child each,
/// encoded by the `Metrics::encode` that serves `/metrics`.
fn families_filled_in_a_cluster() -> String {
    let metrics = Metrics::new();
    let error = ErrorLabel {
        error: "status_write",
    };
    metrics.reconcile_errors.get_or_create(&error).inc();
    let created = TypeLabel { r#type: "Created" };
    metrics
        .lifecycle_events_by_type
        .get_or_create(&created)
        .inc();
    let pass = ResultLabel { result: "pass" };
    metrics.policy_evaluations.get_or_create(&pass).inc();
    let failed_write = ResultLabel { result: "error" };
    metrics.report_writes.get_or_create(&failed_write).inc();
    metrics.encode()
}

#[test]
fn promtool_accepts_the_rules() {
    run_promtool(&["check", "rules", RULES]);
}

#[test]
fn promtool_rule_unit_tests_pass() {
    run_promtool(&["test", "rules", RULE_TESTS]);
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() {
    let tests = yaml(RULE_TESTS);
    assert_eq!(
        items(&tests["rule_files"]),
        [Value::from("prometheus-rules.yaml")],
        "{RULE_TESTS} must test {RULES}"
    );
    let cases: Vec<&Value> = items(&tests["tests"])
        .iter()
        .flat_map(|test| items(&test["alert_rule_test"]))
        .collect();
    let alerts = alerts();
    assert!(alerts.len() >= 10, "{RULES} lost alerts: {alerts:?}");
    for (alert, _) in &alerts {
        let of_alert = || cases.iter().filter(|c| c["alertname"] == alert.as_str());
        assert!(
            of_alert().any(|c| !items(&c["exp_alerts"]).is_empty()),
            "no case in {RULE_TESTS} fires {alert}"
        );
        assert!(
            of_alert().any(|c| items(&c["exp_alerts"]).is_empty()),
            "no case in {RULE_TESTS} expects {alert} not to fire"
        );
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_runbook() {
    let rules = yaml(RULES);
    for rule in items(&rules["groups"])
        .iter()
        .flat_map(|group| items(&group["rules"]))
    {
        let alert = rule["alert"].as_str().unwrap_or("a recording rule");
        assert!(
            matches!(
                rule["labels"]["severity"].as_str(),
                Some("warning" | "critical")
            ),
            "{alert}: severity"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{alert}: no {key}"
            );
        }
        assert_eq!(
            rule["annotations"]["runbook_url"], "docs/operations.md#metrics-worth-alerting-on",
            "{alert}: runbook_url"
        );
    }
}

#[test]
fn the_dashboard_queries_the_datasource_variable() {
    let text = std::fs::read_to_string(repo().join(DASHBOARD)).unwrap();
    let dashboard: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    let variables = items(&dashboard["templating"]["list"]);
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus `datasource` variable"
    );
    fn walk(panels: &[Value], seen: &mut usize) {
        for panel in panels {
            if panel["type"] != "row" {
                assert_eq!(
                    panel["datasource"]["uid"], "${datasource}",
                    "{}",
                    panel["title"]
                );
                assert!(
                    !items(&panel["targets"]).is_empty(),
                    "{}: no query",
                    panel["title"]
                );
                *seen += 1;
            }
            walk(items(&panel["panels"]), seen);
        }
    }
    let mut panels = 0;
    walk(items(&dashboard["panels"]), &mut panels);
    assert!(panels >= 10, "only {panels} panels");
}

#[tokio::test]
async fn the_rules_and_the_dashboard_query_only_metrics_the_server_exports() {
    let mut exposed = exposed_names(&served_metrics().await);
    exposed.extend(exposed_names(&families_filled_in_a_cluster()));
    // The families that are there before any event, so an empty exposition
    // cannot pass by accident.
    for name in [
        "roost_keeper_admission_requests_total",
        "roost_keeper_admission_duration_seconds_bucket",
        "roost_keeper_leader",
    ] {
        assert!(
            exposed.contains(name),
            "{name} not in /metrics: {exposed:?}"
        );
    }
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join(DASHBOARD)).unwrap()).unwrap();
    let panels = dashboard_exprs(&dashboard);
    assert!(!panels.is_empty());
    assert_eq!(
        unknown_metrics(&panels, &exposed, &[]),
        [],
        "in {DASHBOARD}"
    );
    let rules: Vec<String> = alerts().into_iter().map(|(_, expr)| expr).collect();
    assert_eq!(
        unknown_metrics(&rules, &exposed, EXTERNAL),
        [],
        "in {RULES}"
    );
}

#[test]
fn metric_names_finds_selectors_only() {
    let names = |expr| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, webhook) (rate(a_bucket{le!="1", x=~"b{c}"}[$__rate_interval]))) > 1"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names(
            "min(b_seconds) - time() < 14 * 86400 or on (instance) group_left (pod) c:total offset 5m"
        ),
        ["b_seconds", "c:total"]
    );
    assert_eq!(names("sum without (x) (d) / ignoring(y) e"), ["d", "e"]);
}

#[test]
fn an_unknown_metric_is_reported() {
    let exposed = exposed_names(
        "# TYPE roost_keeper_leader gauge\nroost_keeper_leader 0\n\
         # TYPE roost_keeper_api_status_updates counter\n\
         # TYPE roost_keeper_admission_duration_seconds histogram\n# EOF\n",
    );
    let exprs = [
        "sum(roost_keeper_leader)".to_owned(),
        "rate(roost_keeper_api_status_updates_total[5m])".to_owned(),
        "rate(roost_keeper_admission_duration_seconds_count[5m])".to_owned(),
        "rate(roost_keeper_api_status_updates[5m])".to_owned(),
        "roost_keeper_leadr == 1".to_owned(),
    ];
    let unknown: Vec<String> = unknown_metrics(&exprs, &exposed, &[])
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        unknown,
        ["roost_keeper_api_status_updates", "roost_keeper_leadr"]
    );
}
