//! `make dev`'s setup (the `roost-dev` binary), here so that a test runs the
//! same steps and reads the same lines (tests/e2e_dev.rs): a control plane
//! (etcd, kube-apiserver with its audit log, kube-controller-manager), both
//! CRDs, the report CRDs chosen (OpenReports by default), certificates, `roost-keeper serve` with the lifecycle API, the
//! webhooks and the conversion webhook registered, a ServiceAccount that
//! reads every roost for the dashboard.

use crate::{ControlPlane, ReportGroups, free_port, output_with_stdin, repo_root};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where and how to run.
pub struct DevOptions {
    /// The `roost-keeper` binary.
    pub binary: PathBuf,
    /// Where the kubeconfig and `certs/` go (`.dev/` for `make dev`).
    pub dir: PathBuf,
    /// 8443, 8080 and 8444 when free (`make dev`), or any free ports.
    pub preferred_ports: bool,
    /// Where serve's output goes; `None`: this process's (`make dev`).
    pub serve_log: Option<PathBuf>,
    /// The report CRDs to install (`make dev`: [`ReportGroups::OPENREPORTS`],
    /// or `ROOST_DEV_REPORT_CRDS`, see [`report_groups_from_env`]).
    pub report_crds: ReportGroups,
}

/// The report CRDs `make dev` installs: `ROOST_DEV_REPORT_CRDS` is
/// `openreports` (the default when unset), `wgpolicy`, `both` or `none`.
pub fn report_groups_from_env() -> Result<ReportGroups, String> {
    match std::env::var("ROOST_DEV_REPORT_CRDS").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("") | Ok("openreports") => {
            Ok(ReportGroups::OPENREPORTS)
        }
        Ok("wgpolicy") => Ok(ReportGroups::WGPOLICY),
        Ok("both") => Ok(ReportGroups::BOTH),
        Ok("none") => Ok(ReportGroups::NONE),
        Ok(other) => Err(format!(
            "ROOST_DEV_REPORT_CRDS={other}: expected openreports, wgpolicy, both or none"
        )),
        Err(e) => Err(format!("ROOST_DEV_REPORT_CRDS: {e}")),
    }
}

/// A running dev setup; dropping it (or [`ControlPlane::stop`]) stops everything.
pub struct Dev {
    pub plane: ControlPlane,
    /// `dir`/kubeconfig, a copy of the plane's.
    pub kubeconfig: PathBuf,
    pub webhook_port: u16,
    pub metrics_port: u16,
    pub api_port: u16,
}

/// The dashboard's reader: a ServiceAccount that may get, list and watch
/// every namespace's ManagedRoosts (the lifecycle API asks for list and
/// watch), through the ClusterRole deploy/lifecycle-api gives people.
const DASHBOARD_READER: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: roost-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: roost-dashboard
  namespace: roost-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: roost-keeper-lifecycle-viewer
rules:
  - apiGroups: ["roost.birb.party"]
    resources: ["managedroosts"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: roost-dashboard
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: roost-keeper-lifecycle-viewer
subjects:
  - kind: ServiceAccount
    name: roost-dashboard
    namespace: roost-system
"#;

/// `preferred` when it is free, else any free port.
fn port(preferred: u16) -> u16 {
    if TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        preferred
    } else {
        free_port()
    }
}

fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn apply_stdin(plane: &ControlPlane, yaml: &str, what: &str) -> Result<(), String> {
    let out = output_with_stdin(plane.kubectl().args(["apply", "-f", "-"]), yaml.as_bytes())
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Waits until the validating webhook really judges requests (the apiserver
/// picks up new configurations asynchronously).
fn wait_for_webhook(plane: &ControlPlane, probe: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let out = plane
            .kubectl()
            .args(["apply", "--dry-run=server", "-f"])
            .arg(probe)
            .output()
            .map_err(|e| e.to_string())?;
        // kubectl shows the webhook's 422 as "... is invalid: * field: message [CODE]".
        if String::from_utf8_lossy(&out.stderr).contains("[CHART_VERSION_INVALID]") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err("the webhook never judged the probe request".into())
}

/// Waits until something listens on `port` (the lifecycle API binds its
/// own listener).
fn wait_for_listener(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("{what} never listened on 127.0.0.1:{port}"))
}

/// Every step of `make dev` up to its `ready` line; `say` gets each line
/// after `roost-keeper dev: `.
pub fn start(options: &DevOptions, say: &mut dyn FnMut(&str)) -> Result<Dev, String> {
    let root = repo_root();
    let binary = &options.binary;
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;

    say(
        "building or finding kube-apiserver, kube-controller-manager, etcd and kubectl (the first build takes 15-30 minutes)",
    );
    say(
        "starting etcd, kube-apiserver and kube-controller-manager (garbage collector, namespace and ClusterRole aggregation controllers)",
    );
    let mut plane = ControlPlane::start()?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::copy(&plane.kubeconfig, &kubeconfig).map_err(|e| e.to_string())?;

    say("installing the ManagedRoost CRD");
    plane.install_crd()?;
    let reports = match options.report_crds {
        ReportGroups::NONE => None,
        ReportGroups::OPENREPORTS => Some("OpenReports (openreports.io/v1alpha1)"),
        ReportGroups::WGPOLICY => Some("wgpolicyk8s.io/v1alpha2"),
        _ => Some("OpenReports (openreports.io/v1alpha1) and wgpolicyk8s.io/v1alpha2"),
    };
    if let Some(reports) = reports {
        say(&format!(
            "installing the {reports} report CRDs (tests/cluster/crds)"
        ));
        plane.install_report_crds(options.report_crds)?;
    }

    let certs = dir.join("certs");
    run(
        Command::new(binary)
            .args([
                "certs",
                "generate",
                "--extra-san",
                "127.0.0.1",
                "--extra-san",
                "localhost",
                "--out-dir",
            ])
            .arg(&certs),
        "generate certificates",
    )?;
    let (webhook_port, metrics_port, api_port) = if options.preferred_ports {
        (port(8443), port(8080), port(8444))
    } else {
        let [webhook, metrics, api] = crate::free_ports();
        (webhook, metrics, api)
    };
    say(&format!(
        "starting roost-keeper serve (webhooks https://127.0.0.1:{webhook_port}, metrics http://127.0.0.1:{metrics_port}, lifecycle API https://127.0.0.1:{api_port})"
    ));
    let mut serve = Command::new(binary);
    if let Some(log) = &options.serve_log {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        serve.stdout(file).stderr(err);
    }
    let serve = serve
        .args([
            "serve",
            "--bind-address",
            "127.0.0.1",
            "--shutdown-delay",
            "1s",
        ])
        .args([
            "--webhook-port",
            &webhook_port.to_string(),
            "--metrics-port",
            &metrics_port.to_string(),
            "--lifecycle-api-addr",
            &format!("127.0.0.1:{api_port}"),
        ])
        .arg("--tls-cert-file")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(certs.join("tls.key"))
        .arg("--kubeconfig")
        .arg(&plane.kubeconfig)
        .spawn()
        .map_err(|e| format!("start roost-keeper serve: {e}"))?;
    plane.adopt(serve)?;

    say("registering the webhooks");
    let webhooks = run(
        Command::new(binary)
            .args(["webhook-config", "--ca-bundle-file"])
            .arg(certs.join("ca.crt"))
            .args(["--url", &format!("https://127.0.0.1:{webhook_port}")]),
        "render webhook configuration",
    )?;
    apply_stdin(&plane, &webhooks, "register webhooks")?;
    // crds/ send conversions to a Service this control plane cannot have.
    say("pointing the ManagedRoost CRD's conversion webhook at the server");
    let crd = run(
        Command::new(binary)
            .args(["crd", "--ca-bundle-file"])
            .arg(certs.join("ca.crt"))
            .args(["--url", &format!("https://127.0.0.1:{webhook_port}")]),
        "render the ManagedRoost CRD",
    )?;
    apply_stdin(&plane, &crd, "apply the ManagedRoost CRD")?;
    wait_for_webhook(&plane, &root.join("examples/invalid.yaml"))?;

    say("creating the dashboard's reader (ServiceAccount roost-system/roost-dashboard)");
    apply_stdin(&plane, DASHBOARD_READER, "create the dashboard's reader")?;
    wait_for_listener(api_port, "the lifecycle API")?;
    say(&format!(
        "dashboard https://127.0.0.1:{api_port}/ (its certificate is signed by {}: trust that CA in the browser, or expect a certificate warning)",
        certs.join("ca.crt").display()
    ));
    say(&format!(
        "dashboard token: kubectl --kubeconfig {} -n roost-system create token roost-dashboard",
        kubeconfig.display()
    ));
    say(&format!(
        "audit log (level Metadata): {}",
        plane.audit_log_path().display()
    ));
    say(&format!("ready: kubeconfig at {}", kubeconfig.display()));
    Ok(Dev {
        plane,
        kubeconfig,
        webhook_port,
        metrics_port,
        api_port,
    })
}
