//! The test control plane itself (roost-testcluster): kube-controller-manager
//! makes owned objects, namespaces and aggregated ClusterRoles behave as in a
//! real cluster (and each check here fails on a plane without it), the
//! apiserver's audit log records requests at level Metadata, the apiserver
//! restarting leaves the controllers working, and the report CRDs install.

use roost_testcluster::{ControlPlane, ReportGroups, output_with_stdin, text, try_wait_for};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long a controller may take once kube-controller-manager works.
const WITHIN: Duration = Duration::from_secs(60);
/// How long a plane without kube-controller-manager is watched doing nothing.
const IDLE: Duration = Duration::from_secs(8);

/// One plane with kube-controller-manager for the tests that do not restart it.
fn plane() -> &'static ControlPlane {
    static PLANE: OnceLock<ControlPlane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let plane = ControlPlane::start().expect("control plane starts");
        plane
            .wait_for_controllers()
            .expect("kube-controller-manager's controllers work");
        plane
    })
}

/// A name no other test of this binary uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

#[track_caller]
fn kubectl(plane: &ControlPlane, args: &[&str]) -> String {
    let out = plane.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {}: {}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[track_caller]
fn apply(plane: &ControlPlane, manifest: &Value) {
    let out = output_with_stdin(
        plane.kubectl().args(["apply", "-f", "-"]),
        manifest.to_string().as_bytes(),
    )
    .unwrap();
    assert!(out.status.success(), "kubectl apply: {}", text(&out.stderr));
}

/// True when `kubectl get <args>` finds nothing.
fn gone(plane: &ControlPlane, args: &[&str]) -> bool {
    let out = plane
        .kubectl()
        .arg("get")
        .args(args)
        .arg("--ignore-not-found")
        .output()
        .unwrap();
    out.status.success() && out.stdout.is_empty()
}

fn until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    try_wait_for(within, Duration::from_millis(200), || done().then_some(())).is_some()
}

/// A namespace for one test.
fn namespace(plane: &ControlPlane, prefix: &str) -> String {
    let ns = unique(prefix);
    kubectl(plane, &["create", "namespace", &ns]);
    ns
}

/// Creates a ConfigMap owned by another, deletes the owner and tells whether
/// the dependent was collected within `within`.
fn dependent_collected(plane: &ControlPlane, ns: &str, within: Duration) -> bool {
    let owner = unique("owner");
    let dependent = unique("dependent");
    kubectl(plane, &["-n", ns, "create", "configmap", &owner]);
    let uid = kubectl(
        plane,
        &[
            "-n",
            ns,
            "get",
            "configmap",
            &owner,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    apply(
        plane,
        &json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": dependent,
                "namespace": ns,
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid.trim(),
                }],
            },
            "data": {"owned": "yes"},
        }),
    );
    kubectl(plane, &["-n", ns, "delete", "configmap", &owner]);
    assert!(
        gone(plane, &["-n", ns, "configmap", &owner]),
        "the owner is deleted"
    );
    until(within, || gone(plane, &["-n", ns, "configmap", &dependent]))
}

/// Creates a namespace holding a ConfigMap, deletes it (`kubectl delete ns`,
/// not waiting) and tells whether it was gone within `within`.
fn namespace_finalized(plane: &ControlPlane, within: Duration) -> bool {
    let ns = namespace(plane, "doomed");
    kubectl(
        plane,
        &[
            "-n",
            &ns,
            "create",
            "configmap",
            "content",
            "--from-literal=a=b",
        ],
    );
    kubectl(plane, &["delete", "ns", &ns, "--wait=false"]);
    until(within, || gone(plane, &["namespace", &ns]))
}

/// Creates an aggregating ClusterRole and a labelled one, and tells whether
/// the first had the second's rules within `within`.
fn clusterrole_aggregated(plane: &ControlPlane, within: Duration) -> bool {
    let name = unique("roost-e2e-plane-aggregate");
    let label = format!("e2e.roost.birb.party/{name}");
    apply(
        plane,
        &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label.clone(): "true"}}]},
            "rules": [],
        }),
    );
    apply(
        plane,
        &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": format!("{name}-part"), "labels": {label: "true"}},
            "rules": [{"apiGroups": ["roost.birb.party"], "resources": ["managedroosts"], "verbs": ["get", "list"]}],
        }),
    );
    until(within, || {
        kubectl(plane, &["get", "clusterrole", &name, "-o", "json"])
            .parse::<Value>()
            .is_ok_and(|role| {
                role["rules"]
                    == json!([{"apiGroups": ["roost.birb.party"], "resources": ["managedroosts"], "verbs": ["get", "list"]}])
            })
    })
}

#[test]
fn an_owned_object_is_collected_after_its_owner_is_deleted() {
    let plane = plane();
    let ns = namespace(plane, "gc");
    assert!(
        dependent_collected(plane, &ns, WITHIN),
        "the dependent ConfigMap is still there {WITHIN:?} after its owner was deleted"
    );
}

#[test]
fn a_deleted_namespace_with_content_is_finalized() {
    let plane = plane();
    assert!(
        namespace_finalized(plane, WITHIN),
        "the namespace still exists {WITHIN:?} after `kubectl delete ns`"
    );
    // And `kubectl delete ns`, waiting as it does by default, returns.
    let ns = namespace(plane, "doomed-waited");
    kubectl(plane, &["-n", &ns, "create", "configmap", "content"]);
    kubectl(plane, &["delete", "ns", &ns, "--timeout=60s"]);
    assert!(gone(plane, &["namespace", &ns]));
}

#[test]
fn an_aggregated_clusterrole_gets_the_rules_of_a_labelled_one() {
    assert!(
        clusterrole_aggregated(plane(), WITHIN),
        "the aggregating ClusterRole has no rules {WITHIN:?} after the labelled one was created"
    );
}

#[test]
fn without_the_controller_manager_none_of_that_happens() {
    let plane = ControlPlane::start_without_controller_manager().expect("control plane starts");
    let ns = namespace(&plane, "gc");
    // Every check is started before the idle wait, so they share it.
    let (collected, finalized, aggregated) = std::thread::scope(|scope| {
        let collected = scope.spawn(|| dependent_collected(&plane, &ns, IDLE));
        let finalized = scope.spawn(|| namespace_finalized(&plane, IDLE));
        let aggregated = scope.spawn(|| clusterrole_aggregated(&plane, IDLE));
        (
            collected.join().unwrap(),
            finalized.join().unwrap(),
            aggregated.join().unwrap(),
        )
    });
    assert!(
        !collected,
        "a dependent was collected without a garbage collector"
    );
    assert!(
        !finalized,
        "a namespace was finalized without a namespace controller"
    );
    assert!(
        !aggregated,
        "a ClusterRole was aggregated without its controller"
    );
}

#[test]
fn the_controllers_keep_working_after_the_apiserver_restarts() {
    let mut plane = ControlPlane::start().expect("control plane starts");
    plane.wait_for_controllers().expect("controllers work");
    plane.restart_apiserver().expect("the apiserver restarts");
    plane
        .wait_for_controllers()
        .expect("controllers work after the apiserver restarted");
    let ns = namespace(&plane, "gc");
    assert!(dependent_collected(&plane, &ns, WITHIN));
    assert!(!plane.any_exited(), "no process of the plane exited");
}

#[test]
fn the_audit_log_records_a_configmap_creation_at_level_metadata() {
    let plane = plane();
    let ns = namespace(plane, "audit");
    let name = unique("audited");
    kubectl(
        plane,
        &[
            "-n",
            &ns,
            "create",
            "configmap",
            &name,
            "--from-literal=secret=s3cr3t",
        ],
    );
    // The event is written when the response is complete, which may be just
    // after kubectl has its answer.
    let event = try_wait_for(WITHIN, Duration::from_millis(200), || {
        plane.audit_events().unwrap().into_iter().find(|event| {
            event["verb"] == "create"
                && event["objectRef"]["resource"] == "configmaps"
                && event["objectRef"]["namespace"] == ns.as_str()
                && event["objectRef"]["name"] == name.as_str()
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "no audit event for the creation of configmap {ns}/{name} in {}",
            plane.audit_log_path().display()
        )
    });
    assert_eq!(event["kind"], "Event", "{event}");
    assert_eq!(event["apiVersion"], "audit.k8s.io/v1", "{event}");
    assert_eq!(event["level"], "Metadata", "{event}");
    assert_eq!(event["stage"], "ResponseComplete", "{event}");
    assert_eq!(event["responseStatus"]["code"], 201, "{event}");
    assert_eq!(event["user"]["username"], "e2e-admin", "{event}");
    // Metadata: no request or response body, so no data.
    assert!(event.get("requestObject").is_none(), "{event}");
    assert!(event.get("responseObject").is_none(), "{event}");
    assert!(!event.to_string().contains("s3cr3t"), "{event}");
    // An event for an admission decision carries annotations (the
    // `authorization.k8s.io/decision` at least); auditAnnotations of
    // webhooks land there too.
    assert_eq!(
        event["annotations"]["authorization.k8s.io/decision"], "allow",
        "{event}"
    );
}

/// The served resources of `group`, from discovery (empty when not served).
fn served(plane: &ControlPlane, group: &str) -> Vec<String> {
    let out = kubectl(
        plane,
        &[
            "api-resources",
            "--api-group",
            group,
            "-o",
            "name",
            "--cached=false",
        ],
    );
    let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
    names.sort();
    names
}

#[test]
fn the_report_crds_install_by_group() {
    // A plane of its own: the other tests' plane keeps no report CRDs.
    let plane = ControlPlane::start().expect("control plane starts");
    plane
        .install_report_crds(ReportGroups::NONE)
        .expect("nothing to install");
    assert!(served(&plane, "openreports.io").is_empty());
    assert!(served(&plane, "wgpolicyk8s.io").is_empty());

    plane
        .install_report_crds(ReportGroups::OPENREPORTS)
        .expect("OpenReports CRDs installed");
    assert_eq!(
        served(&plane, "openreports.io"),
        ["clusterreports.openreports.io", "reports.openreports.io"]
    );
    assert!(served(&plane, "wgpolicyk8s.io").is_empty());

    plane
        .install_report_crds(ReportGroups::WGPOLICY)
        .expect("wgpolicyk8s.io CRDs installed");
    assert_eq!(
        served(&plane, "wgpolicyk8s.io"),
        [
            "clusterpolicyreports.wgpolicyk8s.io",
            "policyreports.wgpolicyk8s.io"
        ]
    );
    // Both again: applying twice changes nothing.
    plane
        .install_report_crds(ReportGroups::BOTH)
        .expect("both installed again");

    // A Report in the shape roost-keeper writes is accepted.
    apply(
        &plane,
        &json!({
            "apiVersion": "openreports.io/v1alpha1",
            "kind": "Report",
            "metadata": {"name": "probe", "namespace": "default"},
            "scope": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": "default"},
            "summary": {"pass": 1, "fail": 0, "warn": 0, "error": 0, "skip": 0},
            "results": [{
                "source": "roost-keeper", "policy": "builtin", "rule": "CHART_VERSION_INVALID",
                "result": "pass", "severity": "high", "message": "ok",
                "timestamp": {"seconds": 1, "nanos": 0},
            }],
        }),
    );
    apply(
        &plane,
        &json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {"name": "probe", "namespace": "default"},
            "summary": {"pass": 1},
            "results": [{"source": "roost-keeper", "policy": "builtin", "result": "pass"}],
        }),
    );
}
