//! End to end for `deploy/` (`kubectl apply -k deploy/`) on the real
//! kube-apiserver with RBAC: every object is accepted by the server, and the
//! service account gets exactly the permissions it needs (a table of allowed
//! and a table of denied requests, asked with `kubectl auth can-i`).
//!
//! Each test starts its own control plane, so the dry run sees a fresh
//! cluster and the real apply of the RBAC test cannot change its answers.

use roost_testcluster::{ControlPlane, repo_root, text};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const SERVICE_ACCOUNT: &str = "system:serviceaccount:roost-system:roost-keeper";

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

fn kubectl(plane: &ControlPlane, args: &[&str]) -> Output {
    plane.kubectl().args(args).output().unwrap()
}

fn ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every object `deploy/` installs, as kubectl names it (`resource.group/name`).
const OBJECTS: &[&str] = &[
    "namespace/roost-system",
    "customresourcedefinition.apiextensions.k8s.io/managedroosts.roost.birb.party",
    "customresourcedefinition.apiextensions.k8s.io/roostpolicies.roost.birb.party",
    "customresourcedefinition.apiextensions.k8s.io/roostpolicyexceptions.roost.birb.party",
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

/// What deploy/lifecycle-api (the lifecycle API's component) adds besides
/// ports and a NetworkPolicy rule.
const LIFECYCLE_API_OBJECTS: &[&str] = &[
    "clusterrolebinding.rbac.authorization.k8s.io/roost-keeper-auth-delegator",
    "clusterrole.rbac.authorization.k8s.io/roost-keeper-lifecycle-viewer",
];

/// `kubectl apply --dry-run=server -k deploy/`.
fn dry_run(plane: &ControlPlane) -> Output {
    dry_run_of(plane, &deploy_dir())
}

fn dry_run_of(plane: &ControlPlane, kustomization: &Path) -> Output {
    plane
        .kubectl()
        .args(["apply", "--dry-run=server", "-k"])
        .arg(kustomization)
        .output()
        .unwrap()
}

/// The dry run's output names exactly `objects`, without a warning.
fn assert_dry_run(what: &str, out: &Output, objects: &[&str]) {
    ok(what, out);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    for object in objects {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{object} ")) && l.ends_with("(server dry run)")),
            "{object} missing from the dry run ({what}):\n{stdout}"
        );
    }
    // Nothing else: a new object in deploy/ belongs in OBJECTS (and maybe in the RBAC tables).
    assert_eq!(
        stdout.lines().filter(|l| !l.trim().is_empty()).count(),
        objects.len(),
        "unexpected objects in the dry run ({what}):\n{stdout}"
    );
    // The namespace enforces and warns on Pod Security "restricted": the
    // Deployment's pod template must not draw a warning.
    assert!(
        !stderr.contains("Warning"),
        "the dry run warned (Pod Security?) ({what}):\n{stderr}"
    );
}

#[test]
fn server_dry_run_accepts_every_object() {
    let plane = ControlPlane::start().expect("control plane starts");

    // On a fresh cluster a server dry run cannot install the namespaced
    // objects: the Namespace is not really created, so NamespaceLifecycle
    // answers `namespaces "roost-system" not found` for each of them. That
    // must be the only complaint.
    let fresh = dry_run(&plane);
    if !fresh.status.success() {
        let stderr = text(&fresh.stderr);
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                line.contains(r#"namespaces "roost-system" not found"#),
                "dry run on a fresh cluster failed for another reason than the missing namespace: {line}\n{stderr}"
            );
        }
    }

    // With the Namespace really there (our own manifest, with its Pod
    // Security labels), the whole kustomization passes a server dry run.
    let namespace = plane
        .kubectl()
        .args(["apply", "-f"])
        .arg(deploy_dir().join("namespace.yaml"))
        .output()
        .unwrap();
    ok("kubectl apply -f deploy/namespace.yaml", &namespace);
    assert_dry_run(
        "kubectl apply --dry-run=server -k deploy/",
        &dry_run(&plane),
        OBJECTS,
    );
    // With the lifecycle API's component: two objects more, still no warning.
    let with_api = roost_testcluster::deploy_with_lifecycle_api();
    let objects: Vec<&str> = OBJECTS
        .iter()
        .chain(LIFECYCLE_API_OBJECTS)
        .copied()
        .collect();
    assert_dry_run(
        "deploy/ + lifecycle-api",
        &dry_run_of(&plane, with_api.path()),
        &objects,
    );
}

/// One `kubectl auth can-i` question and the expected answer.
struct Case {
    name: &'static str,
    /// Arguments after `auth can-i` (verb, resource, flags).
    args: &'static [&'static str],
    /// Who asks (default: the roost-keeper service account).
    user: &'static str,
    allowed: bool,
}

const fn allow(name: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        args,
        user: SERVICE_ACCOUNT,
        allowed: true,
    }
}

const fn deny(name: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        args,
        user: SERVICE_ACCOUNT,
        allowed: false,
    }
}

const ROOSTS: &str = "managedroosts.roost.birb.party";
const POLICIES: &str = "roostpolicies.roost.birb.party";
const EXCEPTIONS: &str = "roostpolicyexceptions.roost.birb.party";
const LEASES: &str = "leases.coordination.k8s.io";
const TOKEN_REVIEWS: &str = "tokenreviews.authentication.k8s.io";
const ACCESS_REVIEWS: &str = "subjectaccessreviews.authorization.k8s.io";
const VWC: &str = "validatingwebhookconfigurations.admissionregistration.k8s.io";
const MWC: &str = "mutatingwebhookconfigurations.admissionregistration.k8s.io";

/// Everything the server and the controller do.
const ALLOWED: &[Case] = &[
    // ManagedRoosts: read everywhere, status patches.
    allow(
        "get managedroosts in a namespace",
        &["get", ROOSTS, "-n", "default"],
    ),
    allow(
        "list managedroosts cluster-wide",
        &["list", ROOSTS, "--all-namespaces"],
    ),
    allow(
        "watch managedroosts cluster-wide",
        &["watch", ROOSTS, "--all-namespaces"],
    ),
    allow(
        "list managedroosts in a namespace",
        &["list", ROOSTS, "-n", "team-a"],
    ),
    allow(
        "get managedroosts/status",
        &["get", ROOSTS, "--subresource=status", "-n", "default"],
    ),
    allow(
        "patch managedroosts/status",
        &["patch", ROOSTS, "--subresource=status", "-n", "team-a"],
    ),
    // RoostPolicies (cluster-scoped): read them, write their status.
    allow(
        "list roostpolicies",
        &["list", POLICIES, "--all-namespaces"],
    ),
    allow(
        "watch roostpolicies",
        &["watch", POLICIES, "--all-namespaces"],
    ),
    allow("get roostpolicies", &["get", POLICIES, "--all-namespaces"]),
    allow(
        "patch roostpolicies/status",
        &[
            "patch",
            POLICIES,
            "--subresource=status",
            "--all-namespaces",
        ],
    ),
    // RoostPolicyExceptions: read them everywhere, never write them.
    allow(
        "list roostpolicyexceptions",
        &["list", EXCEPTIONS, "--all-namespaces"],
    ),
    allow(
        "watch roostpolicyexceptions",
        &["watch", EXCEPTIONS, "--all-namespaces"],
    ),
    // Policy reports: written per roost (--reports).
    allow(
        "patch openreports reports",
        &["patch", "reports.openreports.io", "-n", "team-a"],
    ),
    allow(
        "create wgpolicyk8s policyreports",
        &["create", "policyreports.wgpolicyk8s.io", "-n", "team-a"],
    ),
    // Namespaces: their labels select policies.
    allow(
        "list namespaces",
        &["list", "namespaces", "--all-namespaces"],
    ),
    allow(
        "watch namespaces",
        &["watch", "namespaces", "--all-namespaces"],
    ),
    // Events (kube-rs Recorder: events.k8s.io/v1; the core view alike).
    allow(
        "create core v1 events",
        &["create", "events", "-n", "default"],
    ),
    allow("patch core v1 events", &["patch", "events", "-n", "team-a"]),
    allow(
        "create events.k8s.io events",
        &["create", "events.events.k8s.io", "-n", "default"],
    ),
    allow(
        "patch events.k8s.io events",
        &["patch", "events.events.k8s.io", "-n", "team-a"],
    ),
    // caBundle injection into its own webhook configurations.
    allow(
        "get own validating webhook configuration",
        &[
            "get",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-validating",
            "--all-namespaces",
        ],
    ),
    allow(
        "patch own validating webhook configuration",
        &[
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-validating",
            "--all-namespaces",
        ],
    ),
    allow(
        "get own mutating webhook configuration",
        &[
            "get",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-mutating",
            "--all-namespaces",
        ],
    ),
    allow(
        "patch own mutating webhook configuration",
        &[
            "patch",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-mutating",
            "--all-namespaces",
        ],
    ),
    // caBundle injection into the ManagedRoost CRD's conversion webhook.
    allow(
        "get the ManagedRoost CRD",
        &[
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/managedroosts.roost.birb.party",
            "--all-namespaces",
        ],
    ),
    allow(
        "patch the ManagedRoost CRD",
        &[
            "patch",
            "customresourcedefinitions.apiextensions.k8s.io/managedroosts.roost.birb.party",
            "--all-namespaces",
        ],
    ),
    // Leader election.
    allow(
        "create leases in roost-system",
        &["create", LEASES, "-n", "roost-system"],
    ),
    allow(
        "get leases in roost-system",
        &["get", LEASES, "-n", "roost-system"],
    ),
    allow(
        "update leases in roost-system",
        &["update", LEASES, "-n", "roost-system"],
    ),
    allow(
        "get own lease",
        &[
            "get",
            "leases.coordination.k8s.io/roost-keeper-controller",
            "-n",
            "roost-system",
        ],
    ),
    allow(
        "update own lease",
        &[
            "update",
            "leases.coordination.k8s.io/roost-keeper-controller",
            "-n",
            "roost-system",
        ],
    ),
    allow(
        "patch own lease",
        &[
            "patch",
            "leases.coordination.k8s.io/roost-keeper-controller",
            "-n",
            "roost-system",
        ],
    ),
    // The certificate Secret.
    allow(
        "create secrets in roost-system",
        &["create", "secrets", "-n", "roost-system"],
    ),
    allow(
        "get own secret",
        &["get", "secrets/roost-keeper-tls", "-n", "roost-system"],
    ),
    allow(
        "list own secret (fieldSelector metadata.name)",
        &["list", "secrets/roost-keeper-tls", "-n", "roost-system"],
    ),
    allow(
        "watch own secret (fieldSelector metadata.name)",
        &["watch", "secrets/roost-keeper-tls", "-n", "roost-system"],
    ),
    allow(
        "update own secret",
        &["update", "secrets/roost-keeper-tls", "-n", "roost-system"],
    ),
    allow(
        "patch own secret",
        &["patch", "secrets/roost-keeper-tls", "-n", "roost-system"],
    ),
];

/// What a compromised roost-keeper must not be able to do.
const DENIED: &[Case] = &[
    // Secrets beyond its own.
    deny(
        "get secrets in default",
        &["get", "secrets", "-n", "default"],
    ),
    deny(
        "get secrets in kube-system",
        &["get", "secrets", "-n", "kube-system"],
    ),
    deny(
        "list secrets cluster-wide",
        &["list", "secrets", "--all-namespaces"],
    ),
    deny(
        "list all secrets in roost-system",
        &["list", "secrets", "-n", "roost-system"],
    ),
    deny(
        "watch all secrets in roost-system",
        &["watch", "secrets", "-n", "roost-system"],
    ),
    deny(
        "get another secret in roost-system",
        &["get", "secrets/other-secret", "-n", "roost-system"],
    ),
    deny(
        "update another secret in roost-system",
        &["update", "secrets/other-secret", "-n", "roost-system"],
    ),
    deny(
        "delete own secret",
        &["delete", "secrets/roost-keeper-tls", "-n", "roost-system"],
    ),
    deny(
        "create secrets in default",
        &["create", "secrets", "-n", "default"],
    ),
    deny(
        "get a secret of the same name elsewhere",
        &["get", "secrets/roost-keeper-tls", "-n", "default"],
    ),
    // ManagedRoosts: no writes to spec, no create or delete.
    deny("create managedroosts", &["create", ROOSTS, "-n", "default"]),
    deny("update managedroosts", &["update", ROOSTS, "-n", "default"]),
    deny("patch managedroosts", &["patch", ROOSTS, "-n", "default"]),
    deny("delete managedroosts", &["delete", ROOSTS, "-n", "default"]),
    deny(
        "deletecollection managedroosts",
        &["deletecollection", ROOSTS, "-n", "default"],
    ),
    deny(
        "update managedroosts/status",
        &["update", ROOSTS, "--subresource=status", "-n", "default"],
    ),
    // RoostPolicies: admins write them, roost-keeper only reads them.
    deny(
        "create roostpolicies",
        &["create", POLICIES, "--all-namespaces"],
    ),
    deny(
        "update roostpolicies",
        &["update", POLICIES, "--all-namespaces"],
    ),
    deny(
        "patch roostpolicies",
        &["patch", POLICIES, "--all-namespaces"],
    ),
    deny(
        "delete roostpolicies",
        &["delete", POLICIES, "--all-namespaces"],
    ),
    deny(
        "update roostpolicies/status",
        &[
            "update",
            POLICIES,
            "--subresource=status",
            "--all-namespaces",
        ],
    ),
    // Namespaces: labels only.
    deny(
        "get namespaces",
        &["get", "namespaces/default", "--all-namespaces"],
    ),
    deny(
        "patch namespaces",
        &["patch", "namespaces/default", "--all-namespaces"],
    ),
    deny(
        "delete namespaces",
        &["delete", "namespaces/default", "--all-namespaces"],
    ),
    // Events: write only.
    deny(
        "list events.k8s.io events",
        &["list", "events.events.k8s.io", "-n", "default"],
    ),
    deny(
        "delete events.k8s.io events",
        &["delete", "events.events.k8s.io", "-n", "default"],
    ),
    // Webhook configurations: only its own two, only get and patch.
    deny(
        "list validating webhook configurations",
        &["list", VWC, "--all-namespaces"],
    ),
    deny(
        "list mutating webhook configurations",
        &["list", MWC, "--all-namespaces"],
    ),
    deny(
        "create validating webhook configurations",
        &["create", VWC, "--all-namespaces"],
    ),
    deny(
        "create mutating webhook configurations",
        &["create", MWC, "--all-namespaces"],
    ),
    deny(
        "delete own validating webhook configuration",
        &[
            "delete",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-validating",
            "--all-namespaces",
        ],
    ),
    deny(
        "delete own mutating webhook configuration",
        &[
            "delete",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-mutating",
            "--all-namespaces",
        ],
    ),
    deny(
        "update own validating webhook configuration",
        &[
            "update",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-validating",
            "--all-namespaces",
        ],
    ),
    deny(
        "patch someone else's validating webhook configuration",
        &[
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses",
            "--all-namespaces",
        ],
    ),
    deny(
        "patch someone else's mutating webhook configuration",
        &[
            "patch",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses",
            "--all-namespaces",
        ],
    ),
    deny(
        "patch another CRD",
        &[
            "patch",
            "customresourcedefinitions.apiextensions.k8s.io/roostpolicies.roost.birb.party",
            "--all-namespaces",
        ],
    ),
    deny(
        "delete the ManagedRoost CRD",
        &[
            "delete",
            "customresourcedefinitions.apiextensions.k8s.io/managedroosts.roost.birb.party",
            "--all-namespaces",
        ],
    ),
    deny(
        "update the ManagedRoost CRD",
        &[
            "update",
            "customresourcedefinitions.apiextensions.k8s.io/managedroosts.roost.birb.party",
            "--all-namespaces",
        ],
    ),
    deny(
        "create CRDs",
        &[
            "create",
            "customresourcedefinitions.apiextensions.k8s.io",
            "--all-namespaces",
        ],
    ),
    deny(
        "patch the validating name as a mutating configuration",
        &[
            "patch",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/roost-keeper-validating",
            "--all-namespaces",
        ],
    ),
    // Leases: only its own, never delete, only in roost-system.
    deny(
        "delete own lease",
        &[
            "delete",
            "leases.coordination.k8s.io/roost-keeper-controller",
            "-n",
            "roost-system",
        ],
    ),
    deny(
        "list leases in roost-system",
        &["list", LEASES, "-n", "roost-system"],
    ),
    deny(
        "create leases in default",
        &["create", LEASES, "-n", "default"],
    ),
    deny(
        "get own lease name in kube-system",
        &[
            "get",
            "leases.coordination.k8s.io/roost-keeper-controller",
            "-n",
            "kube-system",
        ],
    ),
    // Workloads and config.
    deny("create pods", &["create", "pods", "-n", "roost-system"]),
    deny("get pods", &["get", "pods", "-n", "default"]),
    deny(
        "exec into pods",
        &["create", "pods", "--subresource=exec", "-n", "roost-system"],
    ),
    deny(
        "get configmaps",
        &["get", "configmaps", "-n", "roost-system"],
    ),
    deny(
        "patch deployments",
        &["patch", "deployments.apps", "-n", "roost-system"],
    ),
    deny(
        "create service account tokens",
        &[
            "create",
            "serviceaccounts",
            "--subresource=token",
            "-n",
            "roost-system",
        ],
    ),
    deny("get nodes", &["get", "nodes", "--all-namespaces"]),
    deny(
        "create namespaces",
        &["create", "namespaces", "--all-namespaces"],
    ),
    deny(
        "update customresourcedefinitions",
        &[
            "update",
            "customresourcedefinitions.apiextensions.k8s.io",
            "--all-namespaces",
        ],
    ),
    // Privilege escalation.
    deny(
        "create clusterrolebindings",
        &[
            "create",
            "clusterrolebindings.rbac.authorization.k8s.io",
            "--all-namespaces",
        ],
    ),
    deny(
        "create rolebindings in roost-system",
        &[
            "create",
            "rolebindings.rbac.authorization.k8s.io",
            "-n",
            "roost-system",
        ],
    ),
    deny(
        "update own role",
        &[
            "update",
            "roles.rbac.authorization.k8s.io/roost-keeper",
            "-n",
            "roost-system",
        ],
    ),
    deny(
        "escalate clusterroles",
        &[
            "escalate",
            "clusterroles.rbac.authorization.k8s.io",
            "--all-namespaces",
        ],
    ),
    deny(
        "bind clusterroles",
        &[
            "bind",
            "clusterroles.rbac.authorization.k8s.io",
            "--all-namespaces",
        ],
    ),
    deny(
        "impersonate users",
        &["impersonate", "users", "--all-namespaces"],
    ),
    deny(
        "impersonate service accounts",
        &["impersonate", "serviceaccounts", "-n", "roost-system"],
    ),
    deny("anything at all", &["*", "*", "--all-namespaces"]),
    // A tenant's service account cannot exempt itself; neither can the server.
    deny(
        "create roostpolicyexceptions",
        &["create", EXCEPTIONS, "-n", "team-a"],
    ),
    // The lifecycle API's (deploy/lifecycle-api); deploy/ leaves it off.
    deny(
        "create tokenreviews",
        &["create", TOKEN_REVIEWS, "--all-namespaces"],
    ),
    deny(
        "create subjectaccessreviews",
        &["create", ACCESS_REVIEWS, "--all-namespaces"],
    ),
    // The bindings name this service account only.
    Case {
        name: "another service account in roost-system gets nothing",
        args: &["get", "secrets/roost-keeper-tls", "-n", "roost-system"],
        user: "system:serviceaccount:roost-system:default",
        allowed: false,
    },
    Case {
        name: "another service account cannot patch ManagedRoost status",
        args: &["patch", ROOSTS, "--subresource=status", "-n", "default"],
        user: "system:serviceaccount:default:roost-keeper",
        allowed: false,
    },
];

/// A person the test binds roost-keeper-lifecycle-viewer to in team-a.
const VIEWER: &str = "birdwatcher";

const fn as_viewer(name: &'static str, args: &'static [&'static str], allowed: bool) -> Case {
    Case {
        name,
        args,
        user: VIEWER,
        allowed,
    }
}

/// With deploy/lifecycle-api: the server checks callers' tokens and access
/// (system:auth-delegator), and roost-keeper-lifecycle-viewer, bound in one
/// namespace, lets a person read the roosts there and nothing else.
const WITH_LIFECYCLE_API: &[Case] = &[
    allow(
        "create tokenreviews",
        &["create", TOKEN_REVIEWS, "--all-namespaces"],
    ),
    allow(
        "create subjectaccessreviews",
        &["create", ACCESS_REVIEWS, "--all-namespaces"],
    ),
    deny(
        "create localsubjectaccessreviews",
        &[
            "create",
            "localsubjectaccessreviews.authorization.k8s.io",
            "-n",
            "team-a",
        ],
    ),
    as_viewer(
        "viewer lists roosts in its namespace",
        &["list", ROOSTS, "-n", "team-a"],
        true,
    ),
    as_viewer(
        "viewer watches roosts in its namespace",
        &["watch", ROOSTS, "-n", "team-a"],
        true,
    ),
    as_viewer(
        "viewer gets roosts in its namespace",
        &["get", ROOSTS, "-n", "team-a"],
        true,
    ),
    as_viewer(
        "viewer lists roosts elsewhere",
        &["list", ROOSTS, "-n", "team-b"],
        false,
    ),
    as_viewer(
        "viewer lists roosts cluster-wide",
        &["list", ROOSTS, "--all-namespaces"],
        false,
    ),
    as_viewer(
        "viewer patches roosts",
        &["patch", ROOSTS, "-n", "team-a"],
        false,
    ),
    as_viewer(
        "viewer reads secrets",
        &["get", "secrets", "-n", "team-a"],
        false,
    ),
    as_viewer(
        "viewer reads roost policies",
        &["list", POLICIES, "--all-namespaces"],
        false,
    ),
];

/// Asks every case; returns one line per wrong answer.
fn wrong_answers(plane: &ControlPlane, cases: &[Case]) -> Vec<String> {
    wrong_answers_of(plane, &cases.iter().collect::<Vec<_>>())
}

fn wrong_answers_of(plane: &ControlPlane, cases: &[&Case]) -> Vec<String> {
    let ask = |case: &Case| -> Option<String> {
        let mut args = vec!["auth", "can-i"];
        args.extend_from_slice(case.args);
        let who = format!("--as={}", case.user);
        args.push(&who);
        let out = kubectl(plane, &args);
        let answer = text(&out.stdout).trim().to_owned();
        let stderr = text(&out.stderr);
        let expected = if case.allowed { "yes" } else { "no" };
        // A misspelt resource is answered "no" with a warning, and a namespace
        // on a cluster-scoped resource asks a different question: no warnings.
        let suspicious = !stderr.trim().is_empty();
        let exit_matches = out.status.success() == case.allowed;
        (answer != expected || suspicious || !exit_matches).then(|| {
            format!(
                "{:<55} expected {expected}, got {answer:?} (exit {:?}) for `kubectl {}` {}",
                case.name,
                out.status.code(),
                args.join(" "),
                stderr.trim()
            )
        })
    };
    // Each question is a kubectl process: four threads ask a quarter each.
    let mut wrong = Vec::new();
    std::thread::scope(|s| {
        let askers: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| s.spawn(move || chunk.iter().filter_map(|c| ask(c)).collect::<Vec<_>>()))
            .collect();
        for asker in askers {
            wrong.extend(asker.join().unwrap());
        }
    });
    wrong
}

#[test]
fn service_account_has_exactly_the_permissions_it_needs() {
    let plane = ControlPlane::start().expect("control plane starts");
    // Everything for real (kustomize puts the Namespace first). The
    // Deployment never gets pods: there is no controller-manager or kubelet.
    let out = plane
        .kubectl()
        .args(["apply", "-k"])
        .arg(deploy_dir())
        .output()
        .unwrap();
    ok("kubectl apply -k deploy/", &out);
    // The CRD must be served, or can-i on managedroosts is answered without its resource type.
    ok(
        "kubectl wait for the CRD",
        &kubectl(
            &plane,
            &[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                "crd/managedroosts.roost.birb.party",
                "crd/roostpolicies.roost.birb.party",
            ],
        ),
    );

    // The report CRDs too: can-i on a resource type the server lacks says no.
    plane
        .install_report_crds(roost_testcluster::ReportGroups::BOTH)
        .expect("report CRDs installed");

    let mut wrong = wrong_answers(&plane, ALLOWED);
    wrong.extend(wrong_answers(&plane, DENIED));
    assert!(
        wrong.is_empty(),
        "{} of {} RBAC cases answered wrong:\n{}",
        wrong.len(),
        ALLOWED.len() + DENIED.len(),
        wrong.join("\n")
    );

    // The lifecycle API's component on top, and the viewer ClusterRole
    // bound to a person in team-a as docs/install.md shows.
    let with_api = roost_testcluster::deploy_with_lifecycle_api();
    ok(
        "kubectl apply -k deploy/ + lifecycle-api",
        &plane
            .kubectl()
            .args(["apply", "-k"])
            .arg(with_api.path())
            .output()
            .unwrap(),
    );
    ok(
        "kubectl create namespace team-a",
        &kubectl(&plane, &["create", "namespace", "team-a"]),
    );
    ok(
        "kubectl create rolebinding",
        &kubectl(
            &plane,
            &[
                "-n",
                "team-a",
                "create",
                "rolebinding",
                "roost-viewers",
                "--clusterrole=roost-keeper-lifecycle-viewer",
                &format!("--user={VIEWER}"),
            ],
        ),
    );
    let mut wrong = wrong_answers(&plane, WITH_LIFECYCLE_API);
    // Nothing else changed for the server: every other case answers as before.
    let others: Vec<&Case> = ALLOWED
        .iter()
        .chain(DENIED)
        .filter(|c| !c.args.contains(&TOKEN_REVIEWS) && !c.args.contains(&ACCESS_REVIEWS))
        .collect();
    wrong.extend(wrong_answers_of(&plane, &others));
    assert!(
        wrong.is_empty(),
        "{} RBAC cases answered wrong with the lifecycle API:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A kubeconfig for `namespace/name`'s token (the server runs as it).
fn service_account_kubeconfig(plane: &ControlPlane, namespace: &str, name: &str, file: &Path) {
    let token = service_account_token(plane, namespace, name);
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": plane.server, "certificate-authority": plane.dir.path().join("ca.crt")}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": name, "namespace": namespace}}],
        "current-context": "sa"
    });
    std::fs::write(file, kubeconfig.to_string()).unwrap();
}

fn service_account_token(plane: &ControlPlane, namespace: &str, name: &str) -> String {
    let out = kubectl(
        plane,
        &["create", "token", name, "-n", namespace, "--duration=1h"],
    );
    ok(&format!("kubectl create token {name}"), &out);
    text(&out.stdout).trim().to_owned()
}

/// The lifecycle API served by roost-keeper running as deploy/'s service
/// account with only the RBAC deploy/ and its lifecycle-api component give it
/// (its TokenReviews and SubjectAccessReviews are real): a person's token
/// bound to roost-keeper-lifecycle-viewer in team-a lists team-a's roost and
/// not team-b's, is refused team-b, and no token is refused; the role bound
/// cluster-wide lists both.
#[test]
fn the_lifecycle_api_works_with_the_rbac_deploy_gives_it() {
    let plane = ControlPlane::start().expect("control plane starts");
    let with_api = roost_testcluster::deploy_with_lifecycle_api();
    ok(
        "kubectl apply -k deploy/ + lifecycle-api",
        &plane
            .kubectl()
            .args(["apply", "-k"])
            .arg(with_api.path())
            .output()
            .unwrap(),
    );
    ok(
        "kubectl wait for the CRD",
        &kubectl(
            &plane,
            &[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                "crd/managedroosts.roost.birb.party",
            ],
        ),
    );
    // The webhooks are not under test: no server runs behind their Service,
    // and the validating one would refuse every roost.
    ok(
        "kubectl delete the webhook configurations",
        &kubectl(
            &plane,
            &[
                "delete",
                "validatingwebhookconfiguration/roost-keeper-validating",
                "mutatingwebhookconfiguration/roost-keeper-mutating",
            ],
        ),
    );
    for namespace in ["team-a", "team-b"] {
        ok(
            "kubectl create namespace",
            &kubectl(&plane, &["create", "namespace", namespace]),
        );
    }
    ok(
        "kubectl create serviceaccount",
        &kubectl(
            &plane,
            &["-n", "team-a", "create", "serviceaccount", VIEWER],
        ),
    );
    ok(
        "kubectl create rolebinding",
        &kubectl(
            &plane,
            &[
                "-n",
                "team-a",
                "create",
                "rolebinding",
                "roost-viewers",
                "--clusterrole=roost-keeper-lifecycle-viewer",
                &format!("--serviceaccount=team-a:{VIEWER}"),
            ],
        ),
    );

    // A platform operator: the viewer role bound cluster-wide.
    ok(
        "kubectl create serviceaccount operator",
        &kubectl(
            &plane,
            &["-n", "roost-system", "create", "serviceaccount", "operator"],
        ),
    );
    ok(
        "kubectl create clusterrolebinding",
        &kubectl(
            &plane,
            &[
                "create",
                "clusterrolebinding",
                "roost-operators",
                "--clusterrole=roost-keeper-lifecycle-viewer",
                "--serviceaccount=roost-system:operator",
            ],
        ),
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("roost-keeper.kubeconfig");
    service_account_kubeconfig(&plane, "roost-system", "roost-keeper", &kubeconfig);
    let api_port = roost_testcluster::free_port();
    let mut serve = roost_testcluster::ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .controller(&kubeconfig)
        .env("ROOST_KEEPER_LEADER_ELECTION_NAMESPACE", "roost-system")
        .args(["--lifecycle-api-addr", &format!("127.0.0.1:{api_port}")])
        .ready_within(None)
        .spawn()
        .expect("roost-keeper serve starts");
    // Conversion (v1alpha1 reads) by this server, not the Service.
    plane
        .convert_at(
            &format!("https://127.0.0.1:{}", serve.webhook.port()),
            Some(serve.ca_pem().as_bytes()),
        )
        .expect("CRD conversion pointed at the server");
    if let Err(why) = serve.wait_ready(Duration::from_secs(60)) {
        panic!("{why}\n{}", serve.log_text());
    }
    for namespace in ["team-a", "team-b"] {
        ok(
            "kubectl apply examples/web-valid.yaml",
            &roost_testcluster::output_with_stdin(
                plane.kubectl().args(["apply", "-f", "-"]),
                roost_testcluster::manifest_in(
                    &repo_root().join("examples/web-valid.yaml"),
                    namespace,
                )
                .as_bytes(),
            )
            .unwrap(),
        );
    }
    let token = service_account_token(&plane, "team-a", VIEWER);
    let operator = service_account_token(&plane, "roost-system", "operator");

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(serve.ca_pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{api_port}/api/v1");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let get = |path: String, token: Option<&str>| {
            let mut request = client.get(format!("{base}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move { request.send().await.unwrap() }
        };
        assert_eq!(get("/roosts".into(), None).await.status(), 401);
        assert_eq!(
            get("/roosts".into(), Some("not-a-token")).await.status(),
            401
        );
        let names = |list: serde_json::Value| -> Vec<String> {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{}/{}",
                        r["namespace"].as_str().unwrap(),
                        r["name"].as_str().unwrap()
                    )
                })
                .collect()
        };
        // The operator sees both (once the server's watch has them)...
        let mut seen = Vec::new();
        for _ in 0..60 {
            let answer = get("/roosts".into(), Some(&operator)).await;
            assert_eq!(answer.status(), 200, "{}", serve.log_text());
            seen = names(answer.json().await.unwrap());
            if seen.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(seen, ["team-a/web", "team-b/web"]);
        // ...the team-a viewer only team-a's.
        let answer = get("/roosts".into(), Some(&token)).await;
        assert_eq!(answer.status(), 200);
        let seen = names(answer.json().await.unwrap());
        assert_eq!(seen, ["team-a/web"]);
        assert_eq!(
            get("/namespaces/team-a/roosts/web".into(), Some(&token))
                .await
                .status(),
            200
        );
        assert_eq!(
            get("/roosts?namespace=team-b".into(), Some(&token))
                .await
                .status(),
            403
        );
    });
}
