//! Policy reports and the exceptions' RBAC end to end. The e2e binary's
//! server writes OpenReports Reports (its CRDs installed before it started);
//! kube-controller-manager's garbage collector deletes them with their
//! roosts. A second control plane, without report CRDs, runs `serve` as a
//! process to see reports off, then turned on by installing the
//! wgpolicyk8s.io CRDs.

use super::env;
use crate::common::cluster::{manifest_in, ok, repo, text};
use roost_testcluster::{
    ControlPlane, ReportGroups, ServeCommand, metric_sum, scrape, try_wait_for,
};
use serde_json::{Value, json};
use std::process::Output;
use std::time::Duration;

fn kubectl(args: &[&str]) -> Output {
    env().kubectl(args)
}

/// The report `name` in `ns` of `resource` (`reports.openreports.io`), if there is one.
fn report_of(
    kubectl: impl Fn(&[&str]) -> Output,
    resource: &str,
    ns: &str,
    name: &str,
) -> Option<Value> {
    let out = kubectl(&["get", resource, name, "-n", ns, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn report(ns: &str, uid: &str) -> Option<Value> {
    report_of(kubectl, "reports.openreports.io", ns, uid)
}

/// Polls the roost's report until `check` holds (30 s).
#[track_caller]
fn wait_for_report(ns: &str, uid: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    try_wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        last = report(ns, uid).unwrap_or(Value::Null);
        (!last.is_null() && check(&last)).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("{what} never happened; last report: {last}"))
}

/// The (rule, result) of every result of a report.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["rule"].as_str().unwrap_or_default().to_owned(),
                r["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(report: &Value, rule: &str, result: &str) -> bool {
    outcomes(report)
        .iter()
        .any(|(r, o)| r == rule && o == result)
}

#[test]
fn a_report_follows_its_roost_and_goes_with_it() {
    env()
        .plane
        .lock()
        .unwrap()
        .wait_for_controllers()
        .expect("kube-controller-manager works");
    let ns = env().namespace("reports");
    ok(&env().kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest_in(&repo().join("examples/warnings.yaml"), &ns),
    ));
    let roost = env().get(&ns, "dashboards");
    let uid = roost["metadata"]["uid"].as_str().unwrap().to_owned();

    // Named by the roost's uid, owned by it, a result per finding.
    let first = wait_for_report(&ns, &uid, "a Report for the roost", |r| {
        has(r, "CHART_VERSION_UNPINNED", "warn")
    });
    assert_eq!(
        first["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "roost-keeper"
    );
    let owner = &first["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], uid.as_str(), "{first}");
    assert_eq!(owner["kind"], "ManagedRoost");
    assert_eq!(owner["name"], "dashboards");
    assert_eq!(first["scope"]["name"], "dashboards");
    assert_eq!(first["scope"]["uid"], uid.as_str());
    for code in [
        "CHART_VERSION_UNPINNED",
        "CHART_REPO_INSECURE",
        "AUTH_INLINE_CREDENTIALS",
    ] {
        assert!(
            has(&first, code, "warn"),
            "{code} not a warn result: {first}"
        );
    }
    let warn_results = outcomes(&first).iter().filter(|(_, o)| o == "warn").count();
    assert_eq!(first["summary"]["warn"], json!(warn_results), "{first}");
    assert_eq!(first["summary"]["fail"], 0, "{first}");
    assert!(
        first["summary"]["pass"].as_u64().unwrap() > 0,
        "clean rule groups pass: {first}"
    );
    // No secret in a report.
    assert!(
        !first.to_string().contains("example-only-password"),
        "the inline password leaked into the report: {first}"
    );

    // Unchanged content: no write (the resourceVersion stays) on a reconcile.
    let version = first["metadata"]["resourceVersion"].clone();
    ok(&kubectl(&[
        "annotate",
        "roost",
        "dashboards",
        "-n",
        &ns,
        "e2e/touched=1",
    ]));
    env().wait_for(
        &ns,
        "dashboards",
        Duration::from_secs(10),
        "annotation seen",
        |o| o["metadata"]["annotations"]["e2e/touched"] == "1",
    );
    std::thread::sleep(Duration::from_secs(2));
    let same = report(&ns, &uid).expect("the report stays");
    assert_eq!(
        same["metadata"]["resourceVersion"], version,
        "a reconcile without a change rewrote the report"
    );

    // A warning fixed: its result goes, the summary follows.
    ok(&kubectl(&[
        "patch",
        "roost",
        "dashboards",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"chart":{"version":"7.0.1"}}}"#,
    ]));
    let fixed = wait_for_report(&ns, &uid, "the fixed warning leaves the report", |r| {
        !has(r, "CHART_VERSION_UNPINNED", "warn")
    });
    assert_ne!(fixed["metadata"]["resourceVersion"], version);
    assert_eq!(fixed["summary"]["warn"], json!(warn_results - 1), "{fixed}");

    // Deleted with its roost, by the garbage collector.
    ok(&kubectl(&[
        "delete",
        "roost",
        "dashboards",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=20s",
    ]));
    try_wait_for(Duration::from_secs(60), Duration::from_millis(300), || {
        report(&ns, &uid).is_none().then_some(())
    })
    .unwrap_or_else(|| panic!("the report outlived its roost"));
}

#[test]
fn tenants_cannot_grant_exceptions_but_granters_can() {
    let plane = env().plane.lock().unwrap();
    plane
        .wait_for_controllers()
        .expect("kube-controller-manager works");
    drop(plane);
    let ns = env().namespace("rbac-exceptions");
    // Only the granter ClusterRole of deploy/ is needed here (the server runs in-process).
    let rbac = std::fs::read_to_string(repo().join("deploy/rbac.yaml")).unwrap();
    let granter: String = rbac
        .split("\n---\n")
        .filter(|doc| doc.contains("name: roost-keeper-exception-granter"))
        .collect();
    ok(&env().kubectl_stdin(&["apply", "-f", "-"], &granter));
    let (tenant, granter) = (format!("tenant-{ns}"), format!("granter-{ns}"));
    ok(&kubectl(&[
        "create",
        "rolebinding",
        "tenant-edit",
        "-n",
        &ns,
        "--clusterrole=edit",
        "--user",
        &tenant,
    ]));
    ok(&kubectl(&[
        "create",
        "rolebinding",
        "granter",
        "-n",
        &ns,
        "--clusterrole=roost-keeper-exception-granter",
        "--user",
        &granter,
    ]));
    let can = |verb: &str, resource: &str, user: &str| -> String {
        let out = kubectl(&["auth", "can-i", verb, resource, "-n", &ns, "--as", user]);
        text(&out.stdout).trim().to_owned()
    };
    // The clusterrole-aggregation controller fills `edit` asynchronously:
    // wait until the tenant has what edit gives everywhere.
    try_wait_for(Duration::from_secs(30), Duration::from_millis(300), || {
        (can("create", "configmaps", &tenant) == "yes").then_some(())
    })
    .expect("edit is aggregated and bound");
    for verb in ["create", "update", "patch", "delete"] {
        assert_eq!(
            can(verb, "roostpolicyexceptions.roost.birb.party", &tenant),
            "no",
            "a tenant with edit may {verb} exceptions"
        );
        assert_eq!(
            can(verb, "roostpolicyexceptions.roost.birb.party", &granter),
            "yes",
            "the granter may not {verb} exceptions"
        );
    }
    let admin = format!("admin-{ns}");
    ok(&kubectl(&[
        "create",
        "rolebinding",
        "tenant-admin",
        "-n",
        &ns,
        "--clusterrole=admin",
        "--user",
        &admin,
    ]));
    try_wait_for(Duration::from_secs(30), Duration::from_millis(300), || {
        (can("create", "rolebindings.rbac.authorization.k8s.io", &admin) == "yes").then_some(())
    })
    .expect("admin is aggregated and bound");
    assert_eq!(
        can("create", "roostpolicyexceptions.roost.birb.party", &admin),
        "no",
        "a namespace admin may grant exceptions"
    );
}

/// `serve --reports wgpolicyk8s.io` on a cluster without report CRDs:
/// reports are off (a log line, the gauge 0) until the CRDs are installed,
/// then PolicyReports are written.
#[test]
fn reports_are_off_without_their_crd_and_turn_on_when_it_is_installed() {
    let plane = ControlPlane::start().expect("a second control plane starts");
    plane.install_crd().expect("CRDs installed");
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .controller(&plane.kubeconfig)
        .args(["--reports", "wgpolicyk8s.io", "--leader-election=false"])
        .spawn()
        .expect("serve starts");
    plane
        .convert_at(
            &format!("https://127.0.0.1:{}", serve.webhook.port()),
            Some(serve.ca_pem().as_bytes()),
        )
        .expect("CRD conversion pointed at roost-keeper");
    let off = try_wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
        let log = std::fs::read_to_string(&serve.log).unwrap_or_default();
        log.lines()
            .find(|l| l.contains("policy reports off"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| {
        panic!(
            "no log line says reports are off:\n{}",
            std::fs::read_to_string(&serve.log).unwrap_or_default()
        )
    });
    assert!(off.contains("wgpolicyk8s.io/v1alpha2"), "{off}");
    let exposition = scrape(serve.metrics);
    assert!(
        exposition.contains("roost_keeper_reports_enabled 0"),
        "{exposition}"
    );
    let kubectl = |args: &[&str]| plane.kubectl().args(args).output().unwrap();
    ok(&kubectl(&["create", "namespace", "later"]));
    let manifest = manifest_in(&repo().join("examples/warnings.yaml"), "later");
    ok(&roost_testcluster::output_with_stdin(
        plane.kubectl().args(["apply", "-f", "-"]),
        manifest.as_bytes(),
    )
    .unwrap());

    // Installing the CRDs turns reports on at the next check (each minute).
    plane
        .install_report_crds(ReportGroups::WGPOLICY)
        .expect("wgpolicyk8s.io CRDs installed");
    let out = kubectl(&[
        "get",
        "roost",
        "dashboards",
        "-n",
        "later",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    ok(&out);
    let uid = text(&out.stdout);
    let written = try_wait_for(Duration::from_secs(90), Duration::from_millis(500), || {
        report_of(kubectl, "policyreports.wgpolicyk8s.io", "later", &uid)
    })
    .unwrap_or_else(|| {
        panic!(
            "no PolicyReport once its CRD was installed:\n{}",
            std::fs::read_to_string(&serve.log).unwrap_or_default()
        )
    });
    assert_eq!(written["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(written["kind"], "PolicyReport");
    assert!(has(&written, "CHART_VERSION_UNPINNED", "warn"), "{written}");
    assert_eq!(
        written["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );
    let exposition = scrape(serve.metrics);
    assert!(
        exposition.contains("roost_keeper_reports_enabled 1"),
        "{exposition}"
    );
    assert!(
        metric_sum(
            &exposition,
            "roost_keeper_report_writes_total",
            &["result=\"ok\""]
        ) >= 1.0,
        "{exposition}"
    );
}

/// An exception in force shows in the roost's status and report; the
/// controller judges the roost again at its `expiresAt`, so the finding
/// is back within moments of the expiry.
#[test]
fn an_exception_is_listed_until_it_expires_and_then_stops_applying() {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let ns = env().namespace("exception-expiry");
    ok(&env().kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest_in(&repo().join("examples/warnings.yaml"), &ns),
    ));
    let uid = env().get(&ns, "dashboards")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_report(&ns, &uid, "the unpinned version warns", |r| {
        has(r, "CHART_VERSION_UNPINNED", "warn")
    });
    // Whole seconds, as RFC 3339 in the CRD's date-time.
    let expires =
        Timestamp::from_second((Timestamp::now() + SignedDuration::from_secs(15)).as_second())
            .unwrap();
    let exception = json!({
        "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
        "metadata": {"name": "pin-later", "namespace": ns},
        "spec": {"codes": ["CHART_VERSION_UNPINNED"], "roosts": ["dashboards"],
                 "justification": "pinned at the next release", "expiresAt": expires.to_string()}
    });
    ok(&env().kubectl_stdin(&["apply", "-f", "-"], &exception.to_string()));

    let exempted = env().wait_for(
        &ns,
        "dashboards",
        Duration::from_secs(10),
        "an exemption in status",
        |o| o["status"]["exemptions"][0]["code"] == "CHART_VERSION_UNPINNED",
    );
    let listed = &exempted["status"]["exemptions"][0];
    assert_eq!(listed["exception"], "pin-later");
    assert_eq!(listed["justification"], "pinned at the next release");
    assert_eq!(listed["field"], "spec.chart.version", "{listed}");
    assert!(
        !exempted["status"]["conditions"]
            .to_string()
            .contains("CHART_VERSION_UNPINNED"),
        "an exempted warning is not a warning: {}",
        exempted["status"]["conditions"]
    );
    let skipped = wait_for_report(&ns, &uid, "a skip result", |r| {
        has(r, "CHART_VERSION_UNPINNED", "skip")
    });
    let result = skipped["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "CHART_VERSION_UNPINNED")
        .unwrap();
    assert_eq!(result["properties"]["exception"], "pin-later");
    assert_eq!(
        result["properties"]["justification"],
        "pinned at the next release"
    );
    let exposition = scrape(env().metrics);
    assert!(
        metric_sum(
            &exposition,
            "roost_keeper_policy_exceptions",
            &["state=\"active\""]
        ) >= 1.0,
        "{exposition}"
    );

    // Past expiresAt the controller judges it again: no exemption, the warning is back.
    let back = env().wait_for(
        &ns,
        "dashboards",
        Duration::from_secs(30),
        "the exemption expires",
        |o| o["status"].get("exemptions").is_none(),
    );
    let late = Timestamp::now().duration_since(expires);
    eprintln!("the exemption left the status {late:?} after expiresAt (100 ms polls)");
    assert!(
        late < SignedDuration::from_secs(3),
        "the exemption outlived its expiry by {late:?}"
    );
    assert!(
        back["status"]["conditions"]
            .to_string()
            .contains("CHART_VERSION_UNPINNED"),
        "the warning is back: {}",
        back["status"]["conditions"]
    );
    wait_for_report(&ns, &uid, "the warning is back in the report", |r| {
        has(r, "CHART_VERSION_UNPINNED", "warn")
    });
    let exposition = scrape(env().metrics);
    assert!(
        metric_sum(
            &exposition,
            "roost_keeper_policy_exceptions",
            &["state=\"expired\""]
        ) >= 1.0,
        "{exposition}"
    );
}

/// A policy in Audit mode admits, leaves `Validated` True, lists its finding
/// in `status.auditFindings` and reports it as an unscored `fail`.
#[test]
fn an_audit_finding_is_listed_in_status_and_reported_unscored() {
    let ns = env().namespace("audit-report");
    ok(&kubectl(&[
        "label",
        "namespace",
        &ns,
        "policy-test=audit-report",
    ]));
    let policy = json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
        "metadata": {"name": "audit-report"},
        "spec": {"mode": "Audit",
                 "match": {"namespaceSelector": {"matchLabels": {"policy-test": "audit-report"}}},
                 "rules": [{"code": "AUDIT_REPORT_E2E", "level": "error", "expression": "false",
                            "message": "audited only", "field": "spec.chart"}]}});
    ok(&env().kubectl_stdin(&["apply", "-f", "-"], &policy.to_string()));
    // The policy reaches the webhooks and the controller through watches:
    // apply once it is in force (a dry run's verdict names nothing, so wait
    // for the controller's status instead).
    ok(&env().kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest_in(&repo().join("examples/web-valid.yaml"), &ns),
    ));
    let audited = env().wait_for(
        &ns,
        "web",
        Duration::from_secs(20),
        "an audit finding in status",
        |o| o["status"]["auditFindings"][0]["code"] == "AUDIT_REPORT_E2E",
    );
    let finding = &audited["status"]["auditFindings"][0];
    assert_eq!(finding["level"], "error");
    assert_eq!(finding["policy"], "audit-report");
    assert_eq!(finding["message"], "audited only");
    let validated = audited["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Validated")
        .unwrap();
    assert_eq!(validated["status"], "True", "{validated}");
    assert_ne!(audited["status"]["phase"], "Failed");
    let uid = audited["metadata"]["uid"].as_str().unwrap();
    let reported = wait_for_report(&ns, uid, "an unscored fail", |r| {
        has(r, "AUDIT_REPORT_E2E", "fail")
    });
    let result = reported["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "AUDIT_REPORT_E2E")
        .unwrap();
    assert_eq!(result["scored"], false, "{result}");
    assert_eq!(result["policy"], "audit-report");
    assert_eq!(result["properties"]["mode"], "Audit");
    ok(&kubectl(&["delete", "roostpolicy", "audit-report"]));
}
