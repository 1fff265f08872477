//! RoostPolicies end to end, in the e2e binary's cluster: roost-keeper's
//! webhooks over HTTPS and its controller. Policies are cluster-wide, so
//! each test selects its own namespace by a label only that namespace has
//! (the other tests of the binary never see them).

use super::env;
use crate::common::cluster::{manifest_in, ok, repo, text};
use roost_testcluster::{scrape, try_wait_for};
use serde_json::{Value, json};
use std::process::Output;
use std::time::Duration;

/// A fresh namespace labelled `policy-test=<test>`, for one test's policies.
fn labelled_namespace(test: &str) -> String {
    let ns = env().namespace(test);
    ok(&env().kubectl(&["label", "namespace", &ns, &format!("policy-test={test}")]));
    ns
}

fn apply(manifest: &str, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    env().kubectl_stdin(&args, manifest)
}

fn apply_policy(policy: &Value) -> Output {
    apply(&policy.to_string(), &[])
}

fn policy(name: &str, test: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["match"] = json!({"namespaceSelector": {"matchLabels": {"policy-test": test}}});
    json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn example_in(example: &str, ns: &str) -> String {
    manifest_in(&repo().join(example), ns)
}

/// Waits (up to 10 s) until a server-side dry run of `manifest` gives an
/// answer `accept` takes; returns that answer's stderr.
fn dry_run_until(manifest: &str, what: &str, accept: impl Fn(&Output) -> bool) -> String {
    let mut last = String::new();
    try_wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let out = apply(manifest, &["--dry-run=server", "-o", "json"]);
        last = format!("{}{}", text(&out.stdout), text(&out.stderr));
        accept(&out).then_some(())
    })
    .unwrap_or_else(|| panic!("{what}: never; last answer: {last}"));
    last
}

#[test]
fn a_custom_error_denies_the_apply_with_its_code() {
    let ns = labelled_namespace("custom-error");
    let other = env().namespace("custom-error-other");
    ok(&apply_policy(&policy(
        "custom-error",
        "custom-error",
        json!({"rules": [{
            "code": "TENANT_REQUIRED_E2E", "level": "error",
            "expression": "has(object.spec.tenancy) && has(object.spec.tenancy.tenantId)",
            "message": "roosts here need a tenant", "field": "spec.tenancy"
        }]}),
    )));
    let manifest = example_in("examples/warnings.yaml", &ns);
    let refusal = dry_run_until(&manifest, "the custom rule denies", |out| {
        !out.status.success()
    });
    assert!(
        refusal.contains("spec.tenancy: roosts here need a tenant [TENANT_REQUIRED_E2E]"),
        "{refusal}"
    );
    // Not in a namespace the policy does not select.
    let elsewhere = apply(&example_in("examples/warnings.yaml", &other), &[]);
    assert!(elsewhere.status.success(), "{}", text(&elsewhere.stderr));
    ok(&env().kubectl(&["delete", "roostpolicy", "custom-error"]));
}

#[test]
fn overrides_raise_a_warning_to_an_error_and_turn_another_off() {
    let ns = labelled_namespace("overrides");
    let manifest = example_in("examples/warnings.yaml", &ns);
    let before = apply(&manifest, &["--dry-run=server"]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    assert!(text(&before.stderr).contains("[CHART_REPO_INSECURE]"));
    ok(&apply_policy(&policy(
        "overrides",
        "overrides",
        json!({"overrides": [
            {"code": "CHART_VERSION_UNPINNED", "level": "error"},
            {"code": "CHART_REPO_INSECURE", "level": "off"}
        ]}),
    )));
    let refusal = dry_run_until(&manifest, "the raised warning denies", |out| {
        !out.status.success()
    });
    assert!(refusal.contains("[CHART_VERSION_UNPINNED]"), "{refusal}");
    assert!(!refusal.contains("CHART_REPO_INSECURE"), "{refusal}");
    ok(&env().kubectl(&["delete", "roostpolicy", "overrides"]));
}

#[test]
fn policy_defaults_fill_new_roosts_in_matching_namespaces_only() {
    let ns = labelled_namespace("preview-ttl");
    let other = env().namespace("preview-ttl-other");
    ok(&apply_policy(&policy(
        "preview-ttl",
        "preview-ttl",
        json!({"defaults": {"teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "72h"}]}}}),
    )));
    let bare = |ns: &str| {
        json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost",
               "metadata": {"name": "bare", "namespace": ns},
               "spec": {"chart": {"name": "nginx", "version": "15.4.4",
                                  "repository": {"url": "https://charts.example.com"}}}})
        .to_string()
    };
    dry_run_until(&bare(&ns), "the policy default fills the roost", |out| {
        text(&out.stdout).contains("72h")
    });
    let created = apply(&bare(&ns), &["-o", "json"]);
    ok(&created);
    let roost: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(
        roost["spec"]["teardownPolicy"]["triggers"],
        json!([{"type": "timeout", "timeout": "72h"}])
    );
    // The built-in defaults still apply after the policy's.
    assert_eq!(roost["spec"]["chart"]["repository"]["type"], "http");
    let elsewhere = apply(&bare(&other), &["-o", "json"]);
    ok(&elsewhere);
    let roost: Value = serde_json::from_slice(&elsewhere.stdout).unwrap();
    assert!(roost["spec"].get("teardownPolicy").is_none(), "{roost}");
    ok(&env().kubectl(&["delete", "roostpolicy", "preview-ttl"]));
}

#[test]
fn a_policy_with_a_bad_expression_is_refused_with_the_position() {
    let bad = policy(
        "bad-expression",
        "bad-expression",
        json!({"rules": [
            {"code": "FINE_E2E", "level": "warning", "expression": "true", "message": "m"},
            {"code": "BROKEN_E2E", "level": "error", "expression": "object.spec.chart ==", "message": "m"}
        ]}),
    );
    let out = apply_policy(&bad);
    assert!(!out.status.success(), "a bad policy was stored");
    let refusal = text(&out.stderr);
    // kubectl shows the denial's causes: one, with the field and the position.
    assert!(
        refusal.contains("\"bad-expression\" is invalid"),
        "{refusal}"
    );
    assert!(!refusal.contains("FINE_E2E"), "{refusal}");
    assert!(
        refusal.contains("spec.rules[1].expression: line 1 column 21"),
        "{refusal}"
    );
    let lowered = policy(
        "lowers-an-error",
        "bad-expression",
        json!({"overrides": [{"code": "CHART_NAME_MISSING", "level": "warning"}]}),
    );
    let refusal = text(&apply_policy(&lowered).stderr);
    assert!(refusal.contains("cannot be lowered"), "{refusal}");
}

#[test]
fn an_existing_roost_is_judged_again_when_a_policy_changes_and_the_status_counts_it() {
    let ns = labelled_namespace("rejudge");
    env().apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    ok(&apply_policy(&policy(
        "rejudge",
        "rejudge",
        json!({"rules": [{
            "code": "NO_TEARDOWN_E2E", "level": "error",
            "expression": "!has(object.spec.teardownPolicy)",
            "message": "roosts here must not tear down on their own"
        }]}),
    )));
    let invalid = env().wait_for(&ns, "web", Duration::from_secs(5), "Validated=False", |o| {
        validated(o).is_some_and(|c| c["status"] == "False")
    });
    let condition = validated(&invalid).unwrap();
    assert!(
        condition["message"]
            .as_str()
            .unwrap()
            .contains("NO_TEARDOWN_E2E"),
        "{condition}"
    );
    let events = text(
        &env()
            .kubectl(&["get", "events", "-n", &ns, "-o", "json"])
            .stdout,
    );
    assert!(
        events.contains("ValidationFailed") && events.contains("NO_TEARDOWN_E2E"),
        "{events}"
    );

    let mut status = Value::Null;
    let counted = try_wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let out = env().kubectl(&["get", "roostpolicy", "rejudge", "-o", "json"]);
        status = serde_json::from_slice::<Value>(&out.stdout).unwrap_or_default()["status"].clone();
        (status["matched"] == 1 && status["violations"] == 1).then_some(())
    });
    assert!(counted.is_some(), "policy status: {status}");
    assert_eq!(status["conditions"][0]["type"], "Ready");
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(status["conditions"][0]["reason"], "Compiled");
    assert_eq!(status["rules"], 1);
    let columns = text(&env().kubectl(&["get", "rpol", "rejudge"]).stdout);
    assert!(
        columns.contains("READY") && columns.contains("VIOLATIONS"),
        "{columns}"
    );

    let metrics = scrape(env().metrics);
    for family in [
        "roost_keeper_policies{ready=\"true\"}",
        "roost_keeper_policy_evaluations_total{result=\"fail\"}",
        "roost_keeper_policy_evaluation_duration_seconds_count",
    ] {
        assert!(metrics.contains(family), "{family} not in /metrics");
    }
    ok(&env().kubectl(&["delete", "roostpolicy", "rejudge"]));
    env().wait_for(
        &ns,
        "web",
        Duration::from_secs(5),
        "Validated=True again",
        |o| validated(o).is_some_and(|c| c["status"] == "True"),
    );
}

fn validated(roost: &Value) -> Option<&Value> {
    roost["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Validated")
}

/// (level, field, code) of each finding kubectl printed for a refused apply:
/// the denial's causes (`field: message [CODE]`) and `Warning:` lines.
fn webhook_findings(stderr: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for line in stderr.lines() {
        let (level, rest) = match line.trim().strip_prefix("Warning: ") {
            Some(rest) => ("warning", rest),
            None => ("error", line.trim().trim_start_matches("* ")),
        };
        let Some((field, tail)) = rest.split_once(": ") else {
            continue;
        };
        let Some(code) = tail.rsplit_once('[').and_then(|(_, c)| c.strip_suffix(']')) else {
            continue;
        };
        let field = field.rsplit(' ').next().unwrap_or(field);
        found.push((level.to_owned(), field.to_owned(), code.to_owned()));
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn offline_validation_with_the_policy_file_gives_the_webhooks_findings() {
    let ns = labelled_namespace("offline-same");
    let policy = policy(
        "offline-same",
        "offline-same",
        json!({
            "rules": [{"code": "TENANT_REQUIRED_OFFLINE", "level": "error",
                       "expression": "has(object.spec.tenancy)", "message": "a tenant is required",
                       "field": "spec.tenancy"},
                      {"code": "SHORT_NAME_OFFLINE", "level": "warning",
                       "expression": "object.metadata.name.size() <= 5", "message": "keep names short"}],
            "overrides": [{"code": "CHART_VERSION_UNPINNED", "level": "error"},
                          {"code": "CHART_REPO_INSECURE", "level": "off"}]
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    let manifest = example_in("examples/warnings.yaml", &ns);
    let manifest_file = dir.path().join("roost.json");
    std::fs::write(&manifest_file, &manifest).unwrap();
    let namespace_file = dir.path().join("namespace.json");
    let namespace_doc = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"policy-test": "offline-same"}}});
    std::fs::write(&namespace_file, namespace_doc.to_string()).unwrap();

    ok(&apply_policy(&policy));
    let refusal = dry_run_until(&manifest, "the policy applies", |out| {
        text(&out.stderr).contains("TENANT_REQUIRED_OFFLINE")
    });
    let webhook = webhook_findings(&refusal);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .args(["validate", "-o", "json", "-f"])
        .arg(&manifest_file)
        .arg("-f")
        .arg(&namespace_file)
        .arg("--policy")
        .arg(&policy_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut offline: Vec<(String, String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["level"] != "info")
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_owned(),
                f["field"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    offline.sort();
    offline.dedup();
    assert!(
        offline.iter().any(|(_, _, c)| c == "SHORT_NAME_OFFLINE"),
        "{offline:?}"
    );
    assert_eq!(webhook, offline, "webhook:\n{refusal}");
    ok(&env().kubectl(&["delete", "roostpolicy", "offline-same"]));
}

#[test]
fn changing_a_policy_under_a_stream_of_applies_fails_none() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let ns = labelled_namespace("churn");
    let manifest = example_in("examples/web-valid.yaml", &ns);
    let stop = AtomicBool::new(false);
    let (outcomes, seen_versions) = std::thread::scope(|scope| {
        let stream = scope.spawn(|| {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let out = apply(&manifest, &["--dry-run=server"]);
                outcomes.push((out.status.success(), text(&out.stderr)));
            }
            outcomes
        });
        let mut versions = Vec::new();
        for version in 0..6 {
            // Each change is a new generation with a failing warning rule that names it.
            ok(&apply_policy(&policy(
                "churn",
                "churn",
                json!({"rules": [{"code": "CHURN_E2E", "level": "warning",
                                  "expression": "false", "message": format!("churn version {version}")}]}),
            )));
            versions.push(version);
            std::thread::sleep(Duration::from_millis(400));
        }
        ok(&env().kubectl(&["delete", "roostpolicy", "churn"]));
        std::thread::sleep(Duration::from_millis(400));
        stop.store(true, Ordering::SeqCst);
        (stream.join().unwrap(), versions)
    });
    let failed: Vec<&String> = outcomes
        .iter()
        .filter(|(success, _)| !success)
        .map(|(_, stderr)| stderr)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} applies failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    let warned: Vec<usize> = seen_versions
        .iter()
        .copied()
        .filter(|v| {
            outcomes
                .iter()
                .any(|(_, e)| e.contains(&format!("churn version {v} [CHURN_E2E]")))
        })
        .collect();
    assert!(
        warned.len() >= 2,
        "the stream saw the policy change: versions {warned:?} in {} applies",
        outcomes.len()
    );
}

/// Issue 21's policies in force on the real apiserver: a tenant's object
/// that makes an admin's rule quadratic, a chain of `replace` that would
/// take gigabytes, and rules that try to show a password, in error messages
/// and in a messageExpression. Each review is answered (refused, with the
/// budget named), the password never shows, and the server keeps serving.
#[test]
fn costly_or_prying_rules_are_cut_short_and_never_show_a_secret() {
    let ns = labelled_namespace("budget");
    let other = env().namespace("budget-other");
    let secret = "hunter2-e2e-s3cr3t";
    let inline_of = "object.spec.chart.values.inline";
    let replaces = format!(
        "(object.metadata.name + '{}'){}",
        "a".repeat(100),
        format!(".replace('', '{}')", "b".repeat(100)).repeat(4)
    );
    let auth = "object.spec.chart.repository.auth";
    ok(&apply_policy(&policy(
        "budget",
        "budget",
        json!({"rules": [
            {"code": "ECHO_E2E", "level": "error", "message": "m",
             "expression": "false",
             "messageExpression": format!("'password ' + {auth}.deprecatedPassword + ' at ' + object.spec.chart.repository.url")},
            {"code": "KEY_E2E", "level": "warning", "message": "m",
             "expression": format!("{{[{auth}.deprecatedPassword]: 1}}.size() == 2")},
            {"code": "DIVIDE_E2E", "level": "warning", "message": "m",
             "expression": format!("1 / (size({auth}.deprecatedPassword) - 10) == 1")},
            {"code": "NO_DUPLICATE_LINES_E2E", "level": "error", "message": "duplicate lines",
             "expression": format!("{inline_of}.split('\\n').all(a, {inline_of}.split('\\n').exists_one(b, b == a))")},
            {"code": "REPLACES_E2E", "level": "error", "message": "m",
             "expression": format!("size({replaces}) > 0")}
        ]}),
    )));
    let lines: Vec<String> = (0..10_000).map(|i| format!("key{i}: value")).collect();
    let roost = |ns: &str| {
        json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost",
               "metadata": {"name": "budget", "namespace": ns},
               "spec": {"chart": {"repository": {
                            "url": format!("https://user:{secret}@charts.example.com/x"),
                            "auth": {"type": "basic", "username": "user", "password": secret}},
                        "name": "nginx", "version": "1.2.3",
                        "values": {"inline": lines.join("\n")}}}})
        .to_string()
    };
    let refusal = dry_run_until(&roost(&ns), "the budget refuses", |out| {
        text(&out.stderr).contains("NO_DUPLICATE_LINES_E2E")
    });
    assert!(
        refusal.contains("rule NO_DUPLICATE_LINES_E2E could not be evaluated: the review's CEL"),
        "{refusal}"
    );
    assert!(refusal.contains("budget"), "{refusal}");
    assert!(
        !refusal.contains("hunter2") && !refusal.contains("s3cr3t"),
        "{refusal}"
    );
    assert!(!refusal.contains("context deadline exceeded"), "{refusal}");
    assert!(
        refusal.contains("rule REPLACES_E2E could not be evaluated: the review's CEL"),
        "{refusal}"
    );
    // Without the tenant's lines the duplicate check passes, the chain of
    // replace is refused before it allocates, and the evaluation errors and
    // the message say what failed, never the value.
    let small = roost(&ns).replace(&lines.join("\\n"), "a: 1");
    let answer = apply(&small, &["--dry-run=server"]);
    let shown = format!("{}{}", text(&answer.stdout), text(&answer.stderr));
    let expected = [
        "password <redacted> at https://<redacted>@charts.example.com/x [ECHO_E2E]",
        "rule KEY_E2E could not be evaluated: a value of this type cannot be a map key",
        "rule DIVIDE_E2E could not be evaluated: division by zero",
        "rule REPLACES_E2E could not be evaluated: the review's CEL memory budget",
    ];
    let missing: Vec<&str> = expected
        .into_iter()
        .filter(|e| !shown.contains(e))
        .collect();
    assert!(missing.is_empty(), "{missing:#?} in {shown}");
    assert!(!shown.contains("NO_DUPLICATE_LINES_E2E"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cr3t"),
        "{shown}"
    );
    // The server is still serving everyone else.
    ok(&apply(
        &example_in("examples/web-valid.yaml", &other),
        &["--dry-run=server"],
    ));
    ok(&env().kubectl(&["delete", "roostpolicy", "budget"]));
}
