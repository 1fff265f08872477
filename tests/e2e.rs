//! End to end: the real kube-apiserver and etcd (built by tests/cluster),
//! the real kubectl, and roost-keeper's webhooks over HTTPS. One cluster
//! and one server for this test binary (RoostPolicies included, in
//! `policies`, policy reports in `reports`, modes, exceptions and the audit
//! log in `modes`); each test works in its own namespace.

mod common;
#[path = "e2e/modes.rs"]
mod modes;
#[path = "e2e/policies.rs"]
mod policies;
#[path = "e2e/reports.rs"]
mod reports;

use common::cluster::{Env, assert_example_warnings, manifest_in, offline_errors, ok, repo, text};
use roost_keeper::admission::registration::FailurePolicy;
use roost_testcluster::{try_wait_for, wait_for};
use std::process::Output;
use std::sync::OnceLock;

/// The shared cluster with the CRD installed and both webhooks registered
/// and answering; the controller writes OpenReports Reports (their CRDs installed).
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        Env::start_with_reports(
            FailurePolicy::Fail,
            FailurePolicy::Ignore,
            roost_keeper::report::ReportApi::OpenReports,
        )
    })
}

fn kubectl(args: &[&str]) -> Output {
    env().kubectl(args)
}

fn namespace(name: &str) -> String {
    env().namespace(name)
}

fn apply(manifest: &str, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    env().kubectl_stdin(&args, manifest)
}

#[test]
fn crd_installs_explains_and_prints_columns() {
    let out = kubectl(&["explain", "managedroost.spec.chart"]);
    ok(&out);
    let explained = text(&out.stdout);
    assert!(
        explained.contains("The Helm chart to install"),
        "{explained}"
    );
    assert!(explained.contains("An exact semver version"), "{explained}");
    let ns = namespace("columns");
    ok(&apply(
        &manifest_in(&repo().join("examples/web-valid.yaml"), &ns),
        &[],
    ));
    let out = kubectl(&["get", "roost", "-n", &ns]);
    ok(&out);
    let header = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(header, "NAME PHASE HEALTH CHART VERSION VALID AGE");
    assert!(text(&out.stdout).contains("nginx"), "{}", text(&out.stdout));
}

#[test]
fn webhook_errors_are_all_listed_and_nothing_is_stored() {
    let ns = namespace("denied");
    let path = repo().join("examples/invalid.yaml");
    let out = apply(&manifest_in(&path, &ns), &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    // kubectl renders the webhook's 422 Invalid with its causes.
    assert!(
        stderr.contains("The managedroosts \"payments\" is invalid"),
        "{stderr}"
    );
    let expected = &offline_errors(&path)[0];
    assert_eq!(expected.len(), 7);
    for (code, field) in expected {
        assert!(
            stderr.contains(&format!("[{code}]")),
            "missing {code} in {stderr}"
        );
        assert!(
            stderr.contains(&format!("{field}: ")),
            "missing {field} in {stderr}"
        );
    }
    let get = kubectl(&["get", "roost", "payments", "-n", &ns]);
    assert!(
        !get.status.success() && text(&get.stderr).contains("NotFound"),
        "nothing stored"
    );
}

#[test]
fn schema_constraints_are_enforced_by_the_apiserver() {
    let ns = namespace("schema");
    let out = apply(
        &manifest_in(&repo().join("examples/multi-document.yaml"), &ns),
        &[],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("spec.healthChecks[0].tcp.port"), "{stderr}");
    assert!(stderr.contains("65535"), "{stderr}");
    assert!(
        !stderr.contains("[TCP_PORT_INVALID]"),
        "the schema answers before the webhook: {stderr}"
    );
}

#[test]
fn warnings_are_printed_by_kubectl_and_the_object_is_stored() {
    let ns = namespace("warnings");
    let out = apply(
        &manifest_in(&repo().join("examples/warnings.yaml"), &ns),
        &[],
    );
    ok(&out);
    assert_example_warnings(&text(&out.stderr));
    ok(&kubectl(&["get", "roost", "dashboards", "-n", &ns]));
}

#[test]
fn defaults_are_stored_and_reapply_changes_nothing() {
    let ns = namespace("defaults");
    let manifest = manifest_in(&repo().join("examples/web-valid.yaml"), &ns);
    // The controller's first status write changes resourceVersion; wait for it.
    let stored = env().apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    assert_eq!(stored["spec"]["chart"]["repository"]["type"], "http");
    assert_eq!(stored["spec"]["healthChecks"][0]["http"]["method"], "GET");
    assert_eq!(stored["spec"]["healthChecks"][0]["failureThreshold"], 3);
    assert_eq!(stored["spec"]["healthChecks"][1]["interval"], "30s");
    assert_eq!(stored["spec"]["tenancy"]["rbac"]["tenantId"], "team-web");
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "roost-keeper"
    );
    assert_eq!(
        stored["metadata"]["labels"]["roost.birb.party/tenant"],
        "team-web"
    );
    ok(&apply(&manifest, &[]));
    let again = env().get(&ns, "web");
    assert_eq!(
        again["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"],
        "re-apply is a no-op"
    );
}

#[test]
fn server_side_dry_run_gets_the_same_verdict_and_stores_nothing() {
    let ns = namespace("dryrun");
    let invalid = apply(
        &manifest_in(&repo().join("examples/invalid.yaml"), &ns),
        &["--dry-run=server"],
    );
    assert!(!invalid.status.success());
    assert!(text(&invalid.stderr).contains("[TENANT_ID_MISMATCH]"));
    let valid = apply(
        &manifest_in(&repo().join("examples/web-valid.yaml"), &ns),
        &["--dry-run=server"],
    );
    ok(&valid);
    let get = kubectl(&["get", "roost", "web", "-n", &ns]);
    assert!(!get.status.success(), "dry run stored nothing");
}

#[test]
fn changing_the_tenant_is_refused() {
    let ns = namespace("tenant");
    let manifest = manifest_in(&repo().join("examples/web-valid.yaml"), &ns);
    ok(&apply(&manifest, &[]));
    let changed = manifest.replace("team-web", "team-other");
    let out = apply(&changed, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[TENANT_ID_IMMUTABLE]"), "{stderr}");
    assert!(stderr.contains("spec.tenancy.tenantId"), "{stderr}");
}

/// Every sample with our apiVersion gets the offline verdict in the cluster:
/// the same error codes, or a schema error where the schema is stricter; a
/// field offline calls UNKNOWN_FIELD is exactly one kubectl's strict field
/// validation refuses.
#[test]
fn samples_get_the_offline_verdict_in_the_cluster() {
    let ns = namespace("samples");
    let dir = repo().join("tests/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut compared = 0;
    let mut unknown_compared = 0;
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text_in = std::fs::read_to_string(path).unwrap();
        if !text_in.contains("apiVersion: roost.birb.party/v1alpha1") {
            continue;
        }
        let manifest = manifest_in(path, &ns);
        let items: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let offline = offline_errors(path);
        let roosts: Vec<&serde_json::Value> = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "ManagedRoost")
            .collect();
        assert_eq!(roosts.len(), offline.len(), "{}", path.display());
        for (object, errors) in roosts.into_iter().zip(offline) {
            let out = apply(&object.to_string(), &["--dry-run=server"]);
            let stderr = text(&out.stderr);
            let name = format!("{}:{}", path.display(), object["metadata"]["name"]);
            let unknown_offline: Vec<&str> = errors
                .iter()
                .filter(|(c, _)| c == "UNKNOWN_FIELD")
                .map(|(_, f)| f.as_str())
                .collect();
            let unknown_in_cluster = stderr.contains("strict decoding error: unknown field");
            assert_eq!(
                !unknown_offline.is_empty(),
                unknown_in_cluster,
                "{name}: offline unknown fields {unknown_offline:?}, cluster said: {stderr}"
            );
            for field in &unknown_offline {
                assert!(
                    stderr.contains(&format!("unknown field \"{field}\"")),
                    "{name}: offline {field} is unknown, cluster said: {stderr}"
                );
                unknown_compared += 1;
            }
            if errors.is_empty() {
                assert!(
                    out.status.success(),
                    "{name}: offline valid, cluster refused: {stderr}"
                );
            } else {
                assert!(
                    !out.status.success(),
                    "{name}: offline invalid, cluster accepted"
                );
                let codes_shown = errors
                    .iter()
                    .filter(|(c, _)| c != "SCHEMA_INVALID")
                    .all(|(c, _)| stderr.contains(&format!("[{c}]")));
                let schema_error = unknown_in_cluster
                    || (!stderr.contains("[")
                        && (stderr.contains("Invalid value")
                            || stderr.contains("Required value")
                            || stderr.contains("Unsupported value")));
                assert!(
                    codes_shown || schema_error,
                    "{name}: offline {errors:?}, cluster said: {stderr}"
                );
            }
            compared += 1;
        }
    }
    assert!(
        unknown_compared >= 2,
        "compared {unknown_compared} unknown fields"
    );
    assert!(compared >= 6, "compared {compared} samples");
}

fn condition<'a>(object: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn record_types(object: &serde_json::Value) -> Vec<String> {
    object["status"]["lifecycle"]["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|r| r["type"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn timestamp(value: &serde_json::Value) -> i64 {
    value
        .as_str()
        .unwrap()
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

#[test]
fn controller_sets_pending_validated_created_and_an_event() {
    let ns = namespace("status");
    ok(&apply(
        &manifest_in(&repo().join("examples/warnings.yaml"), &ns),
        &[],
    ));
    let object = env().wait_for(
        &ns,
        "dashboards",
        std::time::Duration::from_secs(20),
        "status",
        |o| o["status"]["phase"] == "Pending" && condition(o, "Validated").is_some(),
    );
    let validated = condition(&object, "Validated").unwrap();
    assert_eq!(validated["status"], "True");
    assert_eq!(validated["reason"], "ValidationPassedWithWarnings");
    assert!(
        validated["message"]
            .as_str()
            .unwrap()
            .contains("CHART_VERSION_UNPINNED")
    );
    assert_eq!(condition(&object, "Ready").unwrap()["status"], "False");
    assert_eq!(
        object["status"]["observedGeneration"],
        object["metadata"]["generation"]
    );
    assert_eq!(record_types(&object), ["Created"]);
    assert_eq!(
        object["status"]["lifecycle"]["createdAt"],
        object["metadata"]["creationTimestamp"]
    );
    let out = kubectl(&["get", "roost", "-n", &ns, "dashboards"]);
    assert!(
        text(&out.stdout).contains("Pending"),
        "{}",
        text(&out.stdout)
    );
    // The Events themselves, not `kubectl describe`, whose status section
    // shows the lifecycle record types (Created) whether or not an Event exists.
    let mut seen = Vec::new();
    let events = try_wait_for(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(200),
        || {
            let events = events_of(&ns, "dashboards");
            seen = reasons(&events).into_iter().map(str::to_owned).collect();
            let has = |reason: &str| seen.iter().any(|r| r == reason);
            (has("Created") && has("ValidationWarnings")).then_some(events)
        },
    )
    .unwrap_or_else(|| panic!("no Created and ValidationWarnings Events; reasons: {seen:?}"));
    for event in &events {
        assert_eq!(event["reportingController"], "roost-keeper", "{event}");
        assert_eq!(event["regarding"]["kind"], "ManagedRoost", "{event}");
    }
    let all = serde_json::Value::from(events).to_string();
    assert!(
        all.contains("CHART_VERSION_UNPINNED"),
        "the warnings are in the Event: {all}"
    );
    assert!(
        !all.contains("example-only-password"),
        "no secret in events: {all}"
    );
}

/// The Events (events.k8s.io) in `ns` about the ManagedRoost `name`.
fn events_of(ns: &str, name: &str) -> Vec<serde_json::Value> {
    let out = kubectl(&["get", "events.events.k8s.io", "-n", ns, "-o", "json"]);
    ok(&out);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["regarding"]["name"] == name)
        .cloned()
        .collect()
}

fn reasons(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["reason"].as_str()).collect()
}

#[test]
fn a_phase_written_by_another_component_is_recorded() {
    let ns = namespace("phase");
    env().apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env().patch_status(
        &ns,
        "web",
        serde_json::json!({"phase": "Ready", "health": "healthy"}),
    );
    let object = env().wait_for(
        &ns,
        "web",
        std::time::Duration::from_secs(20),
        "Ready record",
        |o| record_types(o).contains(&"Ready".to_owned()),
    );
    assert_eq!(
        object["status"]["phase"], "Ready",
        "our writes never fight the other actor's phase"
    );
    assert_eq!(condition(&object, "Ready").unwrap()["status"], "True");
    assert!(record_types(&object).contains(&"Healthy".to_owned()));
    let pending = object["status"]["lifecycle"]["phaseDurations"]["Pending"]
        .as_str()
        .unwrap();
    let nanos = roost_keeper::api::duration::parse_go_duration(pending)
        .unwrap()
        .as_nanos();
    assert!(
        nanos >= 1_000_000_000,
        "Pending lasted at least 1s: {pending}"
    );
    assert_eq!(
        object["status"]["health"], "healthy",
        "the health checker's field is kept"
    );
}

#[test]
fn a_timeout_trigger_fires_on_time() {
    let ns = namespace("teardown");
    let manifest =
        manifest_in(&repo().join("examples/web-valid.yaml"), &ns).replace("\"24h\"", "\"4s\"");
    ok(&apply(&manifest, &[]));
    let object = env().wait_for(
        &ns,
        "web",
        std::time::Duration::from_secs(20),
        "teardown",
        |o| o["status"]["phase"] == "TearingDown",
    );
    let created = timestamp(&object["metadata"]["creationTimestamp"]);
    let teardown = &object["status"]["teardown"];
    assert_eq!(teardown["triggered"], true);
    assert!(
        teardown["triggerReason"]
            .as_str()
            .unwrap()
            .contains("timeout 4s")
    );
    assert_eq!(timestamp(&teardown["triggerTime"]), created + 4000);
    let recorded = object["status"]["lifecycle"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "TeardownTriggered")
        .unwrap();
    let late = timestamp(&recorded["timestamp"]) - (created + 4000);
    assert!((0..1000).contains(&late), "fired {late} ms after its time");
}

#[test]
fn steady_state_writes_nothing() {
    let ns = namespace("steady");
    env().apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    let before = env().get(&ns, "web");
    std::thread::sleep(std::time::Duration::from_secs(30));
    let after = env().get(&ns, "web");
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "the object was not rewritten"
    );
}

#[test]
fn readyz_turns_ready_once_the_controller_has_listed() {
    wait_for(
        "/readyz 200 with the controller on",
        std::time::Duration::from_secs(20),
        || (env().http_status("/readyz") == 200).then_some(()),
    );
    assert_eq!(env().http_status("/healthz"), 200);
}

#[test]
fn deletion_is_recorded_without_blocking() {
    let ns = namespace("deleted");
    env().apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    let deleted = kubectl(&[
        "delete",
        "roost",
        "web",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=20s",
    ]);
    ok(&deleted);
    let object = kubectl(&["get", "roost", "web", "-n", &ns, "-o", "json"]);
    assert!(!object.status.success(), "gone at once: no finalizer");
    wait_for(
        "a Deleted Event",
        std::time::Duration::from_secs(20),
        || {
            reasons(&events_of(&ns, "web"))
                .contains(&"Deleted")
                .then_some(())
        },
    );
}
