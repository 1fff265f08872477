//! Enforcement modes, RoostPolicyExceptions and the audit annotations on
//! the real apiserver, in the e2e binary's cluster: what kubectl shows, what
//! the apiserver's audit log (Metadata level) records from roost-keeper's
//! `auditAnnotations`, and that `roost-keeper validate` given the same
//! files agrees on each case. Each test selects its own namespaces by a
//! `modes-test` label only they have.

use super::env;
use crate::common::cluster::{manifest_in, offline_errors, ok, repo, text};
use roost_keeper::admission::audit;
use roost_keeper::admission::registration::VALIDATE_WEBHOOK_NAME;
use roost_testcluster::try_wait_for;
use serde_json::{Map, Value, json};
use std::process::Output;
use std::time::Duration;

/// The roost of every case: clean for the built-in rules (no warning).
const ROOST: &str = "examples/web-valid.yaml";

/// A fresh namespace `<name>-<pid>` labelled `modes-test=<test>` and `labels`.
fn labelled_namespace(name: &str, test: &str, labels: &[(&str, &str)]) -> String {
    let ns = env().namespace(name);
    let mut args = vec![
        "label".to_owned(),
        "namespace".to_owned(),
        ns.clone(),
        format!("modes-test={test}"),
    ];
    args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&env().kubectl(&args));
    ns
}

/// The Namespace document `validate` reads the labels of `ns` from.
fn namespace_doc(ns: &str, test: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = Map::new();
    all.insert("modes-test".into(), json!(test));
    for (k, v) in labels {
        all.insert((*k).into(), json!(v));
    }
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": all}})
}

fn apply(manifest: &str, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    env().kubectl_stdin(&args, manifest)
}

/// A RoostPolicy selecting the namespaces labelled `modes-test=<test>`.
fn policy(name: &str, test: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["match"] = json!({"namespaceSelector": {"matchLabels": {"modes-test": test}}});
    json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
           "metadata": {"name": name}, "spec": spec})
}

/// A rule that fails on the roost of every case, at `level`.
fn rule(code: &str, level: &str) -> Value {
    json!({"code": code, "level": level, "field": "spec.chart.name",
           "expression": "object.spec.chart.name != 'nginx'",
           "message": "nginx is not allowed here"})
}

/// The audit-annotation key the apiserver records for `key`.
fn annotation(key: &str) -> String {
    format!("{VALIDATE_WEBHOOK_NAME}/{key}")
}

/// The annotations roost-keeper's ManagedRoost webhook left in the audit
/// events of creates (dry runs included) of ManagedRoost `name` in `ns`,
/// oldest first.
fn audit_annotations(ns: &str, name: &str) -> Vec<Map<String, Value>> {
    let events = env()
        .plane
        .lock()
        .unwrap()
        .audit_events()
        .expect("the audit log reads");
    let prefix = format!("{VALIDATE_WEBHOOK_NAME}/");
    events
        .iter()
        .filter(|e| {
            let object = &e["objectRef"];
            e["verb"] == "create"
                && object["resource"] == "managedroosts"
                && object["namespace"] == ns
                && object["name"] == name
        })
        .map(|e| {
            let all = e["annotations"].as_object().cloned().unwrap_or_default();
            all.into_iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .collect()
        })
        .collect()
}

/// Waits (up to 15 s) until an audit event of `name` in `ns` has the
/// annotation `key` listing `code`; returns that event's annotations.
fn audited_with(ns: &str, name: &str, key: &str, code: &str) -> Map<String, Value> {
    let key = annotation(key);
    let mut seen = Vec::new();
    try_wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        seen = audit_annotations(ns, name);
        seen.iter()
            .rev()
            .find(|a| {
                a.get(&key)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.split(',').any(|c| c == code))
            })
            .cloned()
    })
    .unwrap_or_else(|| panic!("no audit event of {ns}/{name} with {key} listing {code}: {seen:?}"))
}

/// Server-side dry runs of `manifest` until roost-keeper's verdict names
/// `code` (in kubectl's output or, for Audit mode, in the audit log): the
/// policy is then in force. Returns a dry run's answer made after that.
fn dry_run_once_in_force(manifest: &str, ns: &str, code: &str) -> Output {
    let mut last = String::new();
    try_wait_for(Duration::from_secs(15), Duration::from_millis(300), || {
        let out = apply(manifest, &["--dry-run=server"]);
        last = text(&out.stderr);
        let named = last.contains(&format!("[{code}]"))
            || audit_annotations(ns, "web").iter().any(|a| {
                a.values()
                    .any(|v| v.as_str().is_some_and(|v| v.split(',').any(|c| c == code)))
            });
        named.then_some(())
    })
    .unwrap_or_else(|| panic!("the policy with {code} never took effect; last answer: {last}"));
    apply(manifest, &["--dry-run=server"])
}

/// Codes kubectl printed for an apply: those of the denial, those of its
/// `Warning:` lines.
fn shown_codes(stderr: &str) -> (Vec<String>, Vec<String>) {
    let codes = |line: &str| -> Vec<String> {
        line.split('[')
            .skip(1)
            .filter_map(|part| part.split_once(']').map(|(code, _)| code))
            .filter(|code| {
                code.starts_with(|c: char| c.is_ascii_uppercase())
                    && code
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .map(str::to_owned)
            .collect()
    };
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for line in stderr.lines() {
        if line.trim_start().starts_with("Warning: ") {
            warnings.extend(codes(line));
        } else {
            errors.extend(codes(line));
        }
    }
    for list in [&mut errors, &mut warnings] {
        list.sort();
        list.dedup();
    }
    (errors, warnings)
}

/// What `roost-keeper validate -o json` says of the roost `manifest` with
/// the namespace document and the policy (and exception) documents: its
/// exit status, its (level, code) findings above info, its output.
fn offline(manifest: &str, namespace: &Value, policies: &[&Value]) -> (i32, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let roost = write("roost.yaml", manifest);
    let namespace = write("namespace.json", &namespace.to_string());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_roost-keeper"));
    command
        .args(["validate", "-o", "json", "-f"])
        .arg(&roost)
        .arg("-f")
        .arg(&namespace);
    for (i, policy) in policies.iter().enumerate() {
        command
            .arg("--policy")
            .arg(write(&format!("policy-{i}.json"), &policy.to_string()));
    }
    let out = command.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "validate printed no JSON ({e}): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let mut findings: Vec<(String, String)> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["level"] == "error" || f["level"] == "warning")
        .map(|f| {
            (
                f["level"].as_str().unwrap_or_default().to_owned(),
                f["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    findings.sort();
    findings.dedup();
    (out.status.code().unwrap_or(-1), findings)
}

/// What one apply did, as kubectl showed it and `validate` says it.
#[derive(Debug, PartialEq)]
struct Outcome {
    admitted: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Outcome {
    fn of_kubectl(out: &Output) -> Outcome {
        let (errors, warnings) = shown_codes(&text(&out.stderr));
        Outcome {
            admitted: out.status.success(),
            errors,
            warnings,
        }
    }

    fn of_validate((exit, findings): (i32, Vec<(String, String)>)) -> Outcome {
        assert!(
            exit == 0 || exit == 1,
            "validate exited {exit}: {findings:?}"
        );
        let of = |level: &str| -> Vec<String> {
            findings
                .iter()
                .filter(|(l, _)| l == level)
                .map(|(_, c)| c.clone())
                .collect()
        };
        Outcome {
            admitted: exit == 0,
            errors: of("error"),
            warnings: of("warning"),
        }
    }
}

#[test]
fn audit_admits_silently_warn_warns_and_enforce_refuses_as_validate_says() {
    for (mode, code) in [
        ("Audit", "MODES_AUDIT_E2E"),
        ("Warn", "MODES_WARN_E2E"),
        ("Enforce", "MODES_ENFORCE_E2E"),
    ] {
        let test = format!("modes-{}", mode.to_lowercase());
        let ns = labelled_namespace(&test, &test, &[]);
        let policy = policy(
            &test,
            &test,
            json!({"mode": mode, "rules": [rule(code, "error")]}),
        );
        ok(&apply(&policy.to_string(), &[]));
        let manifest = manifest_in(&repo().join(ROOST), &ns);
        let answer = dry_run_once_in_force(&manifest, &ns, code);
        let cluster = Outcome::of_kubectl(&answer);
        let (expected, key) = match mode {
            "Audit" => (
                Outcome {
                    admitted: true,
                    errors: vec![],
                    warnings: vec![],
                },
                audit::AUDIT_CODES,
            ),
            "Warn" => (
                Outcome {
                    admitted: true,
                    errors: vec![],
                    warnings: vec![code.to_owned()],
                },
                audit::WARNING_CODES,
            ),
            _ => (
                Outcome {
                    admitted: false,
                    errors: vec![code.to_owned()],
                    warnings: vec![],
                },
                audit::ERROR_CODES,
            ),
        };
        assert_eq!(cluster, expected, "{mode}: {}", text(&answer.stderr));
        if mode == "Audit" {
            assert!(
                !text(&answer.stderr).contains(code),
                "Audit shows nothing: {}",
                text(&answer.stderr)
            );
        }
        // The audit log says why, under the key of the mode.
        let annotations = audited_with(&ns, "web", key, code);
        assert_eq!(annotations.len(), 1, "{mode}: {annotations:?}");
        // The roost is stored unless refused.
        let stored = apply(&manifest, &[]);
        assert_eq!(
            stored.status.success(),
            expected.admitted,
            "{mode}: {}",
            text(&stored.stderr)
        );
        // `validate` with the same files agrees, exit status included.
        let offline = Outcome::of_validate(offline(
            &manifest,
            &namespace_doc(&ns, &test, &[]),
            &[&policy],
        ));
        assert_eq!(offline, expected, "{mode}: validate");
        ok(&env().kubectl(&["delete", "roostpolicy", &test]));
    }
}

#[test]
fn scoped_modes_refuse_in_one_namespace_and_warn_in_another() {
    let test = "modes-scoped";
    let code = "MODES_SCOPED_E2E";
    let prod_labels = [("tier", "prod")];
    let dev_labels = [("tier", "dev")];
    let prod = labelled_namespace("modes-scoped-prod", test, &prod_labels);
    let dev = labelled_namespace("modes-scoped-dev", test, &dev_labels);
    let policy = policy(
        test,
        test,
        json!({"mode": "Warn",
               "scopedModes": [{"namespaceSelector": {"matchLabels": {"tier": "prod"}},
                                "mode": "Enforce"}],
               "rules": [rule(code, "error")]}),
    );
    ok(&apply(&policy.to_string(), &[]));
    for (ns, labels, admitted) in [(&prod, &prod_labels, false), (&dev, &dev_labels, true)] {
        let manifest = manifest_in(&repo().join(ROOST), ns);
        let answer = dry_run_once_in_force(&manifest, ns, code);
        let expected = Outcome {
            admitted,
            errors: if admitted {
                vec![]
            } else {
                vec![code.to_owned()]
            },
            warnings: if admitted {
                vec![code.to_owned()]
            } else {
                vec![]
            },
        };
        assert_eq!(
            Outcome::of_kubectl(&answer),
            expected,
            "{ns}: {}",
            text(&answer.stderr)
        );
        let offline = Outcome::of_validate(offline(
            &manifest,
            &namespace_doc(ns, test, labels),
            &[&policy],
        ));
        assert_eq!(offline, expected, "{ns}: validate");
    }
    ok(&env().kubectl(&["delete", "roostpolicy", test]));
}

#[test]
fn a_rules_own_audit_mode_inside_an_enforced_policy_admits() {
    let test = "modes-rule";
    let (audited, enforced) = ("MODES_RULE_AUDIT_E2E", "MODES_RULE_WARNING_E2E");
    let ns = labelled_namespace(test, test, &[]);
    let mut quiet = rule(audited, "error");
    quiet["mode"] = json!("Audit");
    let policy = policy(
        test,
        test,
        json!({"mode": "Enforce", "rules": [quiet, rule(enforced, "warning")]}),
    );
    ok(&apply(&policy.to_string(), &[]));
    let manifest = manifest_in(&repo().join(ROOST), &ns);
    let answer = dry_run_once_in_force(&manifest, &ns, enforced);
    let expected = Outcome {
        admitted: true,
        errors: vec![],
        warnings: vec![enforced.to_owned()],
    };
    assert_eq!(
        Outcome::of_kubectl(&answer),
        expected,
        "{}",
        text(&answer.stderr)
    );
    assert!(!text(&answer.stderr).contains(audited));
    let annotations = audited_with(&ns, "web", audit::AUDIT_CODES, audited);
    assert_eq!(
        annotations.get(&annotation(audit::WARNING_CODES)),
        Some(&json!(enforced)),
        "{annotations:?}"
    );
    assert!(!annotations.contains_key(&annotation(audit::ERROR_CODES)));
    let offline = Outcome::of_validate(offline(
        &manifest,
        &namespace_doc(&ns, test, &[]),
        &[&policy],
    ));
    assert_eq!(offline, expected, "validate");
    ok(&env().kubectl(&["delete", "roostpolicy", test]));
}

/// Needs the server's RoostPolicyException watch (it fills the exceptions
/// in force) and `validate` reading RoostPolicyException documents.
#[test]
fn an_exception_admits_until_it_expires_then_the_same_apply_is_refused() {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let test = "modes-exception";
    let code = "MODES_EXEMPTED_E2E";
    let ns = labelled_namespace(test, test, &[]);
    let policy = policy(test, test, json!({"rules": [rule(code, "error")]}));
    ok(&apply(&policy.to_string(), &[]));
    let manifest = manifest_in(&repo().join(ROOST), &ns);
    let refused = dry_run_once_in_force(&manifest, &ns, code);
    assert!(!refused.status.success(), "{}", text(&refused.stderr));

    let expires = Timestamp::from_second(Timestamp::now().as_second() + 30).unwrap();
    let exception = json!({
        "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
        "metadata": {"name": "web-for-now", "namespace": ns},
        "spec": {"codes": [code], "roosts": ["web"],
                 "justification": "the chart moves off nginx this sprint",
                 "expiresAt": expires.to_string()}});
    ok(&apply(&exception.to_string(), &[]));
    let mut last = String::new();
    let admitted = try_wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        let out = apply(&manifest, &["--dry-run=server"]);
        last = text(&out.stderr);
        out.status.success().then_some(out)
    })
    .unwrap_or_else(|| panic!("the exception never applied; last answer: {last}"));
    assert_eq!(
        Outcome::of_kubectl(&admitted),
        Outcome {
            admitted: true,
            errors: vec![],
            warnings: vec![],
        },
        "{}",
        text(&admitted.stderr)
    );
    audited_with(&ns, "web", audit::EXEMPTED_CODES, code);
    let namespace = namespace_doc(&ns, test, &[]);
    let offline_before = offline(&manifest, &namespace, &[&policy, &exception]);
    assert!(
        Timestamp::now() < expires,
        "too slow: the checks before the expiry ran past it"
    );
    assert_eq!(offline_before, (0, vec![]), "validate before the expiry");

    // Past the expiry: the very next apply is refused (no verdict is kept
    // past it), and `validate` by the system clock agrees.
    let wait = Timestamp::now().duration_until(expires) + SignedDuration::from_millis(500);
    std::thread::sleep(Duration::try_from(wait).unwrap_or_default());
    let after = apply(&manifest, &["--dry-run=server"]);
    let expected = Outcome {
        admitted: false,
        errors: vec![code.to_owned()],
        warnings: vec![],
    };
    assert_eq!(
        Outcome::of_kubectl(&after),
        expected,
        "{}",
        text(&after.stderr)
    );
    let offline_after =
        Outcome::of_validate(offline(&manifest, &namespace, &[&policy, &exception]));
    assert_eq!(offline_after, expected, "validate after the expiry");
    ok(&env().kubectl(&["delete", "roostpolicyexception", "web-for-now", "-n", &ns]));
    ok(&env().kubectl(&["delete", "roostpolicy", test]));
}

#[test]
fn an_invalid_exception_is_refused_with_every_problem() {
    let ns = env().namespace("modes-bad-exception");
    let exception = json!({
        "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
        "metadata": {"name": "everything", "namespace": ns},
        "spec": {"codes": ["CHART_VERSION_MISSING"], "roosts": ["web"], "justification": " "}});
    let mut last = String::new();
    // The RoostPolicyException webhook is registered with the others.
    try_wait_for(Duration::from_secs(15), Duration::from_millis(300), || {
        let out = apply(&exception.to_string(), &[]);
        last = text(&out.stderr);
        (!out.status.success() && last.contains("[EXCEPTION_INVALID]")).then_some(())
    })
    .unwrap_or_else(|| panic!("the invalid exception was not refused by the webhook: {last}"));
    for expected in [
        "spec.codes[0]",
        "CHART_VERSION_MISSING",
        "spec.justification",
        "roostpolicyexceptions \"everything\" is invalid",
    ] {
        assert!(last.contains(expected), "{expected} not in {last}");
    }
    let get = env().kubectl(&["get", "roostpolicyexception", "everything", "-n", &ns]);
    assert!(!get.status.success(), "nothing stored");
    // `validate` given the same exception refuses it with the same code.
    let manifest = manifest_in(&repo().join(ROOST), &ns);
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let (exit, findings) = offline(&manifest, &namespace, &[&exception]);
    assert_eq!(exit, 1, "{findings:?}");
    assert!(
        findings.contains(&("error".to_owned(), "EXCEPTION_INVALID".to_owned())),
        "{findings:?}"
    );
}

#[test]
fn the_audit_log_records_why_an_apply_was_refused_or_warned() {
    let ns = env().namespace("modes-audit-log");
    let refused = apply(
        &manifest_in(&repo().join("examples/invalid.yaml"), &ns),
        &[],
    );
    assert!(!refused.status.success());
    let warned = apply(
        &manifest_in(&repo().join("examples/warnings.yaml"), &ns),
        &[],
    );
    ok(&warned);
    let clean = apply(&manifest_in(&repo().join(ROOST), &ns), &[]);
    ok(&clean);

    let errors: Vec<String> = offline_errors(&repo().join("examples/invalid.yaml"))[0]
        .iter()
        .map(|(code, _)| code.clone())
        .collect();
    let first = &errors[0];
    let annotations = audited_with(&ns, "payments", audit::ERROR_CODES, first);
    let listed: Vec<&str> = annotations[&annotation(audit::ERROR_CODES)]
        .as_str()
        .unwrap()
        .split(',')
        .collect();
    for code in &errors {
        assert!(listed.contains(&code.as_str()), "{code} not in {listed:?}");
    }
    let annotations = audited_with(
        &ns,
        "dashboards",
        audit::WARNING_CODES,
        "CHART_REPO_INSECURE",
    );
    let (_, printed) = shown_codes(&text(&warned.stderr));
    let mut recorded: Vec<&str> = annotations[&annotation(audit::WARNING_CODES)]
        .as_str()
        .unwrap()
        .split(',')
        .collect();
    recorded.sort_unstable();
    assert_eq!(
        recorded, printed,
        "the warnings kubectl printed are the ones recorded"
    );
    assert!(!annotations.contains_key(&annotation(audit::ERROR_CODES)));
    let everything = format!("{:?}", audit_annotations(&ns, "dashboards"));
    assert!(
        !everything.contains("example-only-password"),
        "{everything}"
    );
    // An object admitted with nothing to say has no annotation of ours.
    let clean_events = try_wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        Some(audit_annotations(&ns, "web")).filter(|events| !events.is_empty())
    })
    .expect("the clean apply is in the audit log");
    assert!(clean_events.iter().all(Map::is_empty), "{clean_events:?}");
}
