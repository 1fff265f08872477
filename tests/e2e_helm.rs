//! The Helm chart against the real kube-apiserver: a server-side dry run of
//! its rendering with defaults and with every option on, then a real
//! `helm install`, `helm upgrade` and `helm uninstall`. There is no kubelet,
//! so pods never run: the checks are on the objects, and on the webhooks
//! blocking ManagedRoost writes exactly while they are installed.

use roost_testcluster::{
    ControlPlane, output_with_stdin, repo_root, succeeded, text, try_wait_for,
};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const NAMESPACE: &str = "roost-system";

/// What a default install creates, as kubectl names it (CRDs are in crds/,
/// which Helm installs first and never deletes).
const OBJECTS: &[&str] = &[
    "serviceaccount/roost-keeper",
    "clusterrole.rbac.authorization.k8s.io/roost-keeper",
    "clusterrole.rbac.authorization.k8s.io/roost-keeper-exception-granter",
    "clusterrolebinding.rbac.authorization.k8s.io/roost-keeper",
    "role.rbac.authorization.k8s.io/roost-keeper",
    "rolebinding.rbac.authorization.k8s.io/roost-keeper",
    "service/roost-keeper",
    "deployment.apps/roost-keeper",
    "poddisruptionbudget.policy/roost-keeper",
    "networkpolicy.networking.k8s.io/roost-keeper",
    "validatingwebhookconfiguration.admissionregistration.k8s.io/roost-keeper-validating",
    "mutatingwebhookconfiguration.admissionregistration.k8s.io/roost-keeper-mutating",
];

/// What lifecycleApi.enabled adds (besides ports and a NetworkPolicy rule).
const LIFECYCLE_API_OBJECTS: &[&str] = &[
    "clusterrolebinding.rbac.authorization.k8s.io/roost-keeper-auth-delegator",
    "clusterrole.rbac.authorization.k8s.io/roost-keeper-lifecycle-viewer",
];

const CRDS: &[&str] = &[
    "customresourcedefinition.apiextensions.k8s.io/managedroosts.roost.birb.party",
    "customresourcedefinition.apiextensions.k8s.io/roostpolicies.roost.birb.party",
];

fn chart() -> PathBuf {
    repo_root().join("charts/roost-keeper")
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/helm").join(name)
}

fn kubectl(plane: &ControlPlane, args: &[&str]) -> Output {
    plane.kubectl().args(args).output().unwrap()
}

/// `helm <args> --kubeconfig <plane's>`, its state under the plane's directory.
fn helm(plane: &ControlPlane, args: &[&str], paths: &[&Path]) -> Output {
    roost_testcluster::helm(&plane.dir.path().join("helm"))
        .args(args)
        .args(paths)
        .arg("--kubeconfig")
        .arg(&plane.kubeconfig)
        .output()
        .unwrap()
}

/// The release namespace, with deploy/namespace.yaml's Pod Security labels.
fn create_namespace(plane: &ControlPlane) {
    succeeded(
        "kubectl apply -f deploy/namespace.yaml",
        &plane
            .kubectl()
            .args(["apply", "-f"])
            .arg(repo_root().join("deploy/namespace.yaml"))
            .output()
            .unwrap(),
    );
}

fn exists(plane: &ControlPlane, object: &str) -> bool {
    kubectl(plane, &["get", "-n", NAMESPACE, object])
        .status
        .success()
}

fn jsonpath(plane: &ControlPlane, object: &str, path: &str) -> String {
    succeeded(
        &format!("kubectl get {object}"),
        &kubectl(
            plane,
            &[
                "get",
                "-n",
                NAMESPACE,
                object,
                "-o",
                &format!("jsonpath={path}"),
            ],
        ),
    )
}

/// `kubectl create` of a ManagedRoost in `default`, then deleted again. In
/// v1beta1, the stored version: no server runs behind the Service, so a
/// v1alpha1 object would need the unreachable conversion webhook (which has
/// no failurePolicy) whatever the admission webhooks say.
fn create_roost(plane: &ControlPlane) -> Output {
    let text = std::fs::read_to_string(repo_root().join("examples/web-valid.yaml")).unwrap();
    let alpha: serde_json::Value = serde_norway::from_str(&text).unwrap();
    let beta = roost_keeper::api::convert::convert(&alpha, roost_keeper::api::ApiVersion::V1beta1)
        .unwrap();
    let manifest = beta.to_string();
    let out = output_with_stdin(
        plane.kubectl().args(["create", "-f", "-"]),
        manifest.as_bytes(),
    )
    .unwrap();
    if out.status.success() {
        succeeded(
            "kubectl delete managedroost web",
            &kubectl(plane, &["delete", "-n", "default", "managedroost/web"]),
        );
    }
    out
}

/// The apiserver applies webhook configuration changes asynchronously: wait
/// until creating a ManagedRoost gives the expected verdict.
fn wait_until_roost_creation(plane: &ControlPlane, allowed: bool) -> Output {
    let mut last = None;
    try_wait_for(Duration::from_secs(60), Duration::from_millis(250), || {
        let out = create_roost(plane);
        let done = out.status.success() == allowed;
        last = Some(out);
        done.then_some(())
    })
    .unwrap_or_else(|| {
        let out = last.as_ref().unwrap();
        panic!(
            "creating a ManagedRoost was never {}:\n{}{}",
            if allowed { "allowed" } else { "refused" },
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    last.unwrap()
}

/// `helm template | kubectl apply --dry-run=server`: every object, with
/// defaults and with every option on, is accepted, with no Pod Security
/// warning. The monitoring and cert-manager kinds are stand-in CRDs.
#[test]
fn server_dry_run_accepts_the_rendering() {
    let plane = ControlPlane::start().expect("control plane starts");
    create_namespace(&plane);
    succeeded(
        "kubectl apply -f extra-crds.yaml",
        &plane
            .kubectl()
            .args(["apply", "-f"])
            .arg(fixture("extra-crds.yaml"))
            .output()
            .unwrap(),
    );
    plane.install_crd().expect("CRDs installed");
    succeeded(
        "kubectl wait for the stand-in CRDs",
        &kubectl(
            &plane,
            &[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                "crd/servicemonitors.monitoring.coreos.com",
                "crd/prometheusrules.monitoring.coreos.com",
                "crd/issuers.cert-manager.io",
                "crd/certificates.cert-manager.io",
            ],
        ),
    );
    for (what, values, expected) in [
        ("defaults", None, OBJECTS.len()),
        // + Issuer, Certificate, ServiceMonitor, PrometheusRule, ConfigMap
        // and the lifecycle API's ClusterRoleBinding and ClusterRole.
        (
            "every option",
            Some(fixture("every-option.yaml")),
            OBJECTS.len() + 5 + LIFECYCLE_API_OBJECTS.len(),
        ),
    ] {
        let mut args = vec![
            "template",
            "roost-keeper",
            "--namespace",
            NAMESPACE,
            "--no-hooks",
        ];
        let mut paths = vec![chart()];
        if let Some(values) = values {
            args.push("-f");
            paths.insert(0, values);
        }
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let rendered = succeeded("helm template", &helm(&plane, &args, &paths));
        let out = output_with_stdin(
            plane
                .kubectl()
                .args(["apply", "--dry-run=server", "-f", "-"]),
            rendered.as_bytes(),
        )
        .unwrap();
        let stdout = succeeded(&format!("server dry run ({what})"), &out);
        let accepted = stdout
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(accepted, expected, "{what}:\n{stdout}");
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("Warning"), "{what} warned:\n{stderr}");
    }
}

#[test]
fn install_upgrade_uninstall() {
    let plane = ControlPlane::start().expect("control plane starts");
    create_namespace(&plane);

    // values.schema.json stops a value of the wrong type before anything is installed.
    let refused = helm(
        &plane,
        &[
            "install",
            "roost-keeper",
            "--namespace",
            NAMESPACE,
            "--set",
            "replicaCount=two",
        ],
        &[&chart()],
    );
    let stderr = text(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("/replicaCount"),
        "replicaCount=two was installed:\n{stderr}"
    );
    assert!(!exists(&plane, "deployment.apps/roost-keeper"));

    succeeded(
        "helm install",
        &helm(
            &plane,
            &["install", "roost-keeper", "--namespace", NAMESPACE],
            &[&chart()],
        ),
    );
    for object in OBJECTS.iter().chain(CRDS) {
        assert!(exists(&plane, object), "{object} not installed");
    }
    for object in LIFECYCLE_API_OBJECTS {
        assert!(!exists(&plane, object), "{object} installed by default");
    }
    assert_eq!(
        jsonpath(&plane, "deployment/roost-keeper", "{.spec.replicas}"),
        "2"
    );
    // No server runs behind the Service, and the validating webhook fails
    // closed: while installed, it refuses ManagedRoost writes.
    let refused = wait_until_roost_creation(&plane, false);
    assert!(
        text(&refused.stderr).contains("validate.managedroost.roost.birb.party"),
        "{}",
        text(&refused.stderr)
    );

    succeeded(
        "helm upgrade",
        &helm(
            &plane,
            &[
                "upgrade",
                "roost-keeper",
                "--namespace",
                NAMESPACE,
                "--set",
                "replicaCount=3",
                "--set",
                "webhook.validate.failurePolicy=Ignore",
                "--set",
                "lifecycleApi.enabled=true",
            ],
            &[&chart()],
        ),
    );
    for object in LIFECYCLE_API_OBJECTS {
        assert!(
            exists(&plane, object),
            "{object} not installed when enabled"
        );
    }
    assert_eq!(
        jsonpath(
            &plane,
            "service/roost-keeper",
            "{.spec.ports[?(@.name==\"lifecycle-api\")].port}"
        ),
        "8444"
    );
    assert_eq!(
        jsonpath(
            &plane,
            "clusterrolebinding/roost-keeper-auth-delegator",
            "{.roleRef.name} {.subjects[0].namespace}/{.subjects[0].name}"
        ),
        "system:auth-delegator roost-system/roost-keeper"
    );
    assert_eq!(
        jsonpath(&plane, "deployment/roost-keeper", "{.spec.replicas}"),
        "3"
    );
    let policy = "{.webhooks[0].failurePolicy}";
    assert_eq!(
        jsonpath(
            &plane,
            "validatingwebhookconfiguration/roost-keeper-validating",
            policy
        ),
        "Ignore"
    );
    let history = succeeded(
        "helm history",
        &helm(
            &plane,
            &["history", "roost-keeper", "--namespace", NAMESPACE],
            &[],
        ),
    );
    assert_eq!(
        history.lines().count(),
        3,
        "header and two revisions:\n{history}"
    );

    let uninstall = helm(
        &plane,
        &[
            "uninstall",
            "roost-keeper",
            "--namespace",
            NAMESPACE,
            "--debug",
        ],
        &[],
    );
    succeeded("helm uninstall", &uninstall);
    // The pre-delete hooks removed both webhook configurations before Helm
    // deleted anything else (its debug log names every delete in order).
    let log = text(&uninstall.stderr);
    let first_delete = |name: &str| {
        log.find(&format!("Starting delete for \"{name}\""))
            .unwrap_or_else(|| panic!("no delete of {name} logged:\n{log}"))
    };
    let service = first_delete("roost-keeper");
    for webhook in ["roost-keeper-validating", "roost-keeper-mutating"] {
        assert!(
            first_delete(webhook) < service,
            "{webhook} deleted after the Service:\n{log}"
        );
    }
    for object in OBJECTS.iter().chain(LIFECYCLE_API_OBJECTS) {
        assert!(!exists(&plane, object), "{object} left after uninstall");
    }
    for crd in CRDS {
        assert!(exists(&plane, crd), "{crd} deleted (Helm keeps crds/)");
    }
    // Nothing is left blocking: ManagedRoosts can be written again.
    wait_until_roost_creation(&plane, true);
}
