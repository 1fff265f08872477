//! A real control plane for tests and the dev loop: etcd, kube-apiserver
//! (with an audit log) and kube-controller-manager running only the garbage
//! collector, the namespace controller and ClusterRole aggregation (all built
//! from source by `tests/cluster/build.sh`) on loopback with free ports and a
//! temporary directory, plus the real `kubectl`.
//!
//! Processes are stopped when the [`ControlPlane`] is dropped, and a
//! watchdog process stops them too if the owning process dies first (a
//! panic that aborts, a static that is never dropped, a killed test run).

#![forbid(unsafe_code)]

pub mod browser;
pub mod dev;
mod serve;

pub use browser::Browser;
pub use serve::{ServeCommand, ServeProcess, http_get, metric_sum, scrape};

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Root of the roost-keeper repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Runs a build script of this repository (`tests/tools/helm.sh`) that
/// prints its bin directory last on stdout, and returns that directory.
pub fn built_by(script: &str) -> Result<PathBuf, String> {
    let script = repo_root().join(script);
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(PathBuf::from(
        stdout.lines().last().unwrap_or_default().trim(),
    ))
}

/// Directory holding `kube-apiserver`, `kube-controller-manager`, `etcd` and
/// `kubectl`, building them when missing.
pub fn bin_dir() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| built_by("tests/cluster/build.sh"))
        .clone()
}

/// `helm` (pinned by tests/tools/helm/go.mod), building it when missing.
pub fn helm_bin() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| built_by("tests/tools/helm.sh").map(|dir| dir.join("helm")))
        .clone()
}

/// A kustomization in a new temporary directory: deploy/ with its
/// lifecycle-api component, as docs/install.md's overlay. kustomize refuses
/// absolute paths, so it reaches the repository through `..` up to `/`.
pub fn deploy_with_lifecycle_api() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("roost-kustomization-")
        .tempdir()
        .expect("temporary directory");
    let up = "../".repeat(dir.path().components().count());
    let deploy = repo_root().join("deploy");
    let deploy = format!(
        "{up}{}",
        deploy.to_str().expect("UTF-8 path").trim_start_matches('/')
    );
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [{deploy}]\ncomponents: [{deploy}/lifecycle-api]\n"
        ),
    )
    .expect("write kustomization.yaml");
    dir
}

/// A `helm` command whose config, cache and data live under `home` (not ~/),
/// so parallel tests and the developer's own helm never share state.
pub fn helm(home: &Path) -> Command {
    let mut command = Command::new(helm_bin().expect("helm builds"));
    for (var, dir) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        command.env(var, home.join(dir));
    }
    command
}

/// Runs `command` with `input` on its standard input (then closed), its
/// standard output and error captured.
pub fn output_with_stdin(command: &mut Command, input: &[u8]) -> std::io::Result<Output> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    child.wait_with_output()
}

/// A free TCP port on 127.0.0.1 (released before use; the window is tiny).
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` distinct free TCP ports on 127.0.0.1: all are held at once, so they
/// differ, and released just before use.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] =
        std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"));
    listeners.map(|l| l.local_addr().expect("a bound port").port())
}

/// Bytes (a process's output) as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of a finished command that must have succeeded; the failure
/// names it `what` and shows what it printed, at the caller's line.
#[track_caller]
pub fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The stdout of a run of the binary at `binary` with `args`, which must succeed.
pub fn stdout_of(binary: &str, args: &[&str]) -> String {
    let out = Command::new(binary).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{binary} {}: {}",
        args.join(" "),
        text(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Calls `probe` every `every` until it returns `Some`, for at most `within`
/// (it is always called at least once, and once more at the deadline).
pub fn try_wait_for<T>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

/// Calls `probe` every 100 ms until it returns `Some`; panics naming `what`
/// after `within`.
#[track_caller]
pub fn wait_for<T>(what: &str, within: Duration, probe: impl FnMut() -> Option<T>) -> T {
    match try_wait_for(within, Duration::from_millis(100), probe) {
        Some(found) => found,
        None => panic!("{what}: not within {within:?}"),
    }
}

/// Certificates for the apiserver and the service-account key.
struct Pki {
    ca_pem: String,
    serving_cert: String,
    serving_key: String,
    sa_key: String,
    sa_public: String,
}

fn pki() -> Result<Pki, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| e.to_string();
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "roost-testcluster CA");
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(30);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let serving_key = KeyPair::generate().map_err(err)?;
    let mut serving = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(err)?;
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.is_ca = IsCa::ExplicitNoCa;
    serving.not_before = now - time::Duration::hours(1);
    serving.not_after = now + time::Duration::days(30);
    let serving_cert = serving.signed_by(&serving_key, &issuer).map_err(err)?;
    let sa_key = KeyPair::generate().map_err(err)?;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        serving_cert: serving_cert.pem(),
        serving_key: serving_key.serialize_pem(),
        sa_key: sa_key.serialize_pem(),
        sa_public: sa_key.public_key_pem(),
    })
}

/// The controllers kube-controller-manager runs: what tests need of a real
/// cluster (owned objects collected, namespaces finalized, aggregated
/// ClusterRoles filled), and none of the workload controllers (no Pods may
/// appear: nothing would run them, and tests/e2e_deploy.rs counts on none).
pub const CONTROLLERS: &str =
    "garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller";

/// The audit policy the apiserver runs with: every request at level
/// Metadata (who, what, verb, response code, annotations such as admission
/// webhooks' `auditAnnotations`; no bodies), one event per request (at
/// ResponseComplete, or Panic).
pub const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
";

/// Which report CRDs (the pinned copies in tests/cluster/crds/) to install.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportGroups {
    /// `openreports.io/v1alpha1` Report and ClusterReport.
    pub openreports: bool,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    pub wgpolicy: bool,
}

impl ReportGroups {
    pub const NONE: ReportGroups = ReportGroups {
        openreports: false,
        wgpolicy: false,
    };
    pub const OPENREPORTS: ReportGroups = ReportGroups {
        openreports: true,
        wgpolicy: false,
    };
    pub const WGPOLICY: ReportGroups = ReportGroups {
        openreports: false,
        wgpolicy: true,
    };
    pub const BOTH: ReportGroups = ReportGroups {
        openreports: true,
        wgpolicy: true,
    };

    /// The CRDs chosen: (file in tests/cluster/crds/, CRD name).
    pub fn crds(self) -> Vec<(&'static str, &'static str)> {
        let mut crds = Vec::new();
        if self.openreports {
            crds.push(("openreports.io_reports.yaml", "reports.openreports.io"));
            crds.push((
                "openreports.io_clusterreports.yaml",
                "clusterreports.openreports.io",
            ));
        }
        if self.wgpolicy {
            crds.push((
                "wgpolicyk8s.io_policyreports.yaml",
                "policyreports.wgpolicyk8s.io",
            ));
            crds.push((
                "wgpolicyk8s.io_clusterpolicyreports.yaml",
                "clusterpolicyreports.wgpolicyk8s.io",
            ));
        }
        crds
    }
}

/// A running etcd + kube-apiserver + kube-controller-manager.
///
/// `processes` holds etcd, the apiserver and the controller manager at
/// indices 0, 1 and 2, then adopted processes.
pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub bin: PathBuf,
    processes: Vec<Child>,
    watchdog: Option<Child>,
    etcd_port: u16,
    etcd_peer_port: u16,
    api_port: u16,
    /// Set once [`ControlPlane::wait_for_controllers`] saw them work.
    controllers_ready: std::sync::atomic::AtomicBool,
}

const ETCD: usize = 0;
const APISERVER: usize = 1;
const CONTROLLER_MANAGER: usize = 2;

fn write(path: &Path, content: &str) -> Result<(), String> {
    std::fs::write(path, content).map_err(|e| format!("write {}: {e}", path.display()))
}

/// A process that stops `pids` (SIGTERM, SIGKILL 5 s later) and removes
/// `remove` once this process is gone, however it ends.
fn watchdog(pids: &[u32], remove: Option<&Path>) -> Result<Child, String> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut script = format!(
        "while kill -0 {owner} 2>/dev/null; do sleep 0.5; done; kill -TERM {pids} 2>/dev/null; sleep 5; kill -KILL {pids} 2>/dev/null",
        owner = std::process::id(),
        pids = pids.join(" "),
    );
    if let Some(dir) = remove {
        script.push_str(&format!("; rm -rf '{}'", dir.display()));
    }
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start watchdog: {e}"))
}

/// True when `GET path` over plain HTTP on 127.0.0.1:`port` answers 200.
pub fn http_get_ok(port: u16, path: &str) -> bool {
    matches!(
        http_get(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path),
        Ok((200, _))
    )
}

fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    try_wait_for(within, Duration::from_millis(200), || ready().then_some(()))
        .ok_or_else(|| format!("{what} not ready after {}s", within.as_secs()))
}

impl ControlPlane {
    /// Builds the binaries if needed, starts etcd and the apiserver, waits
    /// for readiness, then starts kube-controller-manager without waiting
    /// for it (see [`ControlPlane::wait_for_controllers`]).
    pub fn start() -> Result<ControlPlane, String> {
        ControlPlane::start_with(true)
    }

    /// [`ControlPlane::start`] without kube-controller-manager: nothing is
    /// garbage-collected, namespaces never finish deleting, aggregated
    /// ClusterRoles stay empty (for tests that show what it does).
    pub fn start_without_controller_manager() -> Result<ControlPlane, String> {
        ControlPlane::start_with(false)
    }

    fn start_with(controller_manager: bool) -> Result<ControlPlane, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("roost-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let pki = pki()?;
        write(&d.join("ca.crt"), &pki.ca_pem)?;
        write(&d.join("apiserver.crt"), &pki.serving_cert)?;
        write(&d.join("apiserver.key"), &pki.serving_key)?;
        write(&d.join("sa.key"), &pki.sa_key)?;
        // The verification flag wants a public key (it cannot read a PKCS#8 private key).
        write(&d.join("sa.pub"), &pki.sa_public)?;
        let token = format!("roost-e2e-{}", std::process::id());
        let kcm_token = format!("roost-kcm-{}", std::process::id());
        write(
            &d.join("tokens.csv"),
            &format!(
                "{token},e2e-admin,1,\"system:masters\"\n\
                 {kcm_token},system:kube-controller-manager,2,\"system:masters\"\n"
            ),
        )?;
        write(&d.join("audit-policy.yaml"), AUDIT_POLICY)?;
        let [etcd_port, etcd_peer_port, api_port] = free_ports();
        let mut plane = ControlPlane {
            kubeconfig: d.join("kubeconfig"),
            server: format!("https://127.0.0.1:{api_port}"),
            bin: bin.clone(),
            processes: Vec::new(),
            watchdog: None,
            etcd_port,
            etcd_peer_port,
            api_port,
            controllers_ready: false.into(),
            dir,
        };
        let etcd = plane
            .etcd_command()?
            .spawn()
            .map_err(|e| format!("start etcd: {e}"))?;
        plane.processes.push(etcd);
        plane.start_watchdog()?;
        wait_until("etcd", Duration::from_secs(30), || {
            http_get_ok(etcd_port, "/health")
        })?;
        let apiserver = plane
            .apiserver_command()?
            .spawn()
            .map_err(|e| format!("start kube-apiserver: {e}"))?;
        plane.processes.push(apiserver);
        plane.restart_watchdog()?;
        let kubeconfig = |user: &str, token: &str| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "roost", "cluster": {"server": plane.server, "certificate-authority": d.join("ca.crt")}}],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "roost", "context": {"cluster": "roost", "user": user, "namespace": "default"}}],
                "current-context": "roost"
            })
            .to_string()
        };
        write(&plane.kubeconfig, &kubeconfig("e2e-admin", &token))?;
        write(
            &d.join("controller-manager.kubeconfig"),
            &kubeconfig("kube-controller-manager", &kcm_token),
        )?;
        plane.wait_for_apiserver()?;
        if !controller_manager {
            return Ok(plane);
        }
        // Started once the apiserver is ready (it gives up when the apiserver
        // is not healthy within 10 s of its start); not waited for here:
        // tests that need its controllers call wait_for_controllers.
        let controller_manager = plane
            .controller_manager_command()?
            .spawn()
            .map_err(|e| format!("start kube-controller-manager: {e}"))?;
        debug_assert_eq!(plane.processes.len(), CONTROLLER_MANAGER);
        plane.processes.push(controller_manager);
        plane.restart_watchdog()?;
        Ok(plane)
    }

    /// A log file in the cluster directory, appended to (it survives restarts).
    fn log(&self, name: &str) -> Result<Stdio, String> {
        let path = self.dir.path().join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map(Stdio::from)
            .map_err(|e| format!("open {}: {e}", path.display()))
    }

    /// The etcd command line (same ports and data directory on every start).
    fn etcd_command(&self) -> Result<Command, String> {
        let (port, peer_port) = (self.etcd_port, self.etcd_peer_port);
        let mut command = Command::new(self.bin.join("etcd"));
        command
            .args(["--name=default", "--unsafe-no-fsync", "--log-level=warn"])
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("etcd").display()
            ))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=default=http://127.0.0.1:{peer_port}"
            ))
            .stdout(self.log("etcd.log")?)
            .stderr(self.log("etcd.err")?);
        Ok(command)
    }

    /// The kube-apiserver command line (same ports and files on every start).
    fn apiserver_command(&self) -> Result<Command, String> {
        let d = self.dir.path();
        let (etcd_port, api_port) = (self.etcd_port, self.api_port);
        let mut command = Command::new(self.bin.join("kube-apiserver"));
        command
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
            ])
            .arg(format!("--secure-port={api_port}"))
            .arg(format!(
                "--tls-cert-file={}",
                d.join("apiserver.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                d.join("apiserver.key").display()
            ))
            .arg(format!("--client-ca-file={}", d.join("ca.crt").display()))
            .arg(format!(
                "--token-auth-file={}",
                d.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--service-account-issuer=https://127.0.0.1:{api_port}"
            ))
            .arg(format!(
                "--service-account-key-file={}",
                d.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                d.join("sa.key").display()
            ))
            .args([
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
            ])
            .arg("--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook")
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg(format!(
                "--audit-policy-file={}",
                d.join("audit-policy.yaml").display()
            ))
            .arg(format!(
                "--audit-log-path={}",
                self.audit_log_path().display()
            ))
            // At most 50 MB, then one rotated file (audit-<time>.log) of 50 MB:
            // a long test cannot fill the disk.
            .args(["--audit-log-maxsize=50", "--audit-log-maxbackup=1"])
            .stdout(self.log("apiserver.log")?)
            .stderr(self.log("apiserver.err")?);
        Ok(command)
    }

    /// The kube-controller-manager command line: [`CONTROLLERS`] only, no
    /// leader election, no serving port, its own token user (in
    /// system:masters).
    fn controller_manager_command(&self) -> Result<Command, String> {
        let d = self.dir.path();
        let mut command = Command::new(self.bin.join("kube-controller-manager"));
        command
            .arg(format!(
                "--kubeconfig={}",
                d.join("controller-manager.kubeconfig").display()
            ))
            .arg(format!("--controllers={CONTROLLERS}"))
            .args([
                "--leader-elect=false",
                "--secure-port=0",
                // Namespace deletion lists and deletes every resource type:
                // the default 20 QPS would make it take seconds.
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ])
            .stdout(self.log("controller-manager.log")?)
            .stderr(self.log("controller-manager.err")?);
        Ok(command)
    }

    /// The apiserver's audit log (JSON lines, one event per request, level
    /// Metadata: [`AUDIT_POLICY`]).
    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// Every audit event logged so far, oldest first: the rotated file (if
    /// the log ever passed 50 MB), then the current one. A line being
    /// written (not yet valid JSON) is left out.
    pub fn audit_events(&self) -> Result<Vec<serde_json::Value>, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map_err(|e| e.to_string())?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("audit-") && name.ends_with(".log"))
            })
            .collect();
        files.sort();
        files.push(self.audit_log_path());
        let mut events = Vec::new();
        for path in files {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("read {}: {e}", path.display())),
            };
            events.extend(
                text.lines()
                    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()),
            );
        }
        Ok(events)
    }

    fn wait_for_apiserver(&mut self) -> Result<(), String> {
        let ready = wait_until("kube-apiserver", Duration::from_secs(90), || {
            // An apiserver that exited will never be ready: stop waiting.
            if self.any_exited() {
                return true;
            }
            self.kubectl()
                .args(["get", "--raw", "/readyz"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let ready = if self.any_exited() {
            Err("etcd, kube-apiserver or kube-controller-manager exited".to_owned())
        } else {
            ready
        };
        ready.map_err(|err| {
            let log =
                std::fs::read_to_string(self.dir.path().join("apiserver.err")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            format!(
                "{err}; apiserver log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
    }

    /// Kills etcd with SIGKILL (a crash: no shutdown, nothing flushed), leaves
    /// it down for `down`, starts it again on the same ports and data
    /// directory, and waits until it reports healthy. The apiserver keeps
    /// running throughout and reconnects by itself.
    pub fn restart_etcd(&mut self, down: Duration) -> Result<(), String> {
        let mut old = self.processes.remove(ETCD);
        let _ = old.kill();
        let _ = old.wait();
        std::thread::sleep(down);
        let child = self
            .etcd_command()?
            .spawn()
            .map_err(|e| format!("restart etcd: {e}"))?;
        self.processes.insert(ETCD, child);
        self.restart_watchdog()?;
        let port = self.etcd_port;
        wait_until("etcd", Duration::from_secs(30), || {
            http_get_ok(port, "/health")
        })
    }

    /// Stops and starts kube-apiserver (same ports, same etcd), then waits
    /// until it is ready. kube-controller-manager keeps running and
    /// reconnects by itself; [`ControlPlane::wait_for_controllers`] checks
    /// its controllers again afterwards.
    pub fn restart_apiserver(&mut self) -> Result<(), String> {
        self.controllers_ready
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let mut old = self.processes.remove(APISERVER);
        let _ = Command::new("kill")
            .args(["-TERM", &old.id().to_string()])
            .status();
        // Open watches keep a graceful apiserver around for long; after 5 s it is killed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(old.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = old.kill();
        let _ = old.wait();
        let child = self
            .apiserver_command()?
            .spawn()
            .map_err(|e| format!("restart kube-apiserver: {e}"))?;
        self.processes.insert(APISERVER, child);
        self.restart_watchdog()?;
        self.wait_for_apiserver()
    }

    /// `kubectl apply -f` each of `files`, then waits until every CRD of
    /// `crds` (names) is Established.
    fn apply_crds(&self, files: &[PathBuf], crds: &[&str]) -> Result<(), String> {
        let run = |args: &[&str], paths: &[PathBuf]| -> Result<(), String> {
            let mut command = self.kubectl();
            command.args(args);
            for path in paths {
                command.arg("-f").arg(path);
            }
            let out = command.output().map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "kubectl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        if files.is_empty() {
            return Ok(());
        }
        run(&["apply"], files)?;
        let mut wait = vec!["wait", "--for=condition=established", "--timeout=60s"];
        let names: Vec<String> = crds.iter().map(|name| format!("crd/{name}")).collect();
        wait.extend(names.iter().map(String::as_str));
        // `kubectl wait` fails at once (".status.conditions accessor error")
        // when it reads the CRD before the apiserver gave it any condition.
        let mut waited = Err(String::new());
        wait_until("the CRDs", Duration::from_secs(60), || {
            waited = run(&wait, &[]);
            waited.is_ok()
        })
        .map_err(|timeout| format!("{timeout}: {}", waited.unwrap_err()))
    }

    /// Installs the repository's CRDs (ManagedRoost, RoostPolicy,
    /// RoostPolicyException) and waits until they are established.
    pub fn install_crd(&self) -> Result<(), String> {
        self.apply_crds(
            &[repo_root().join("crds")],
            &[
                "managedroosts.roost.birb.party",
                "roostpolicies.roost.birb.party",
                "roostpolicyexceptions.roost.birb.party",
            ],
        )
    }

    /// Installs the report CRDs of `groups` (the pinned copies in
    /// tests/cluster/crds/, see ORIGIN.md there) and waits until they are
    /// established. [`ReportGroups::NONE`] installs nothing.
    pub fn install_report_crds(&self, groups: ReportGroups) -> Result<(), String> {
        let dir = repo_root().join("tests/cluster/crds");
        let crds = groups.crds();
        let files: Vec<PathBuf> = crds.iter().map(|(file, _)| dir.join(file)).collect();
        let names: Vec<&str> = crds.iter().map(|(_, name)| *name).collect();
        self.apply_crds(&files, &names)
    }

    /// Waits (up to 2 minutes) until kube-controller-manager's controllers
    /// really work: a ConfigMap owned by a deleted ConfigMap is collected, a
    /// deleted namespace is finalized and gone, and an aggregating
    /// ClusterRole gets the rules of a labelled one. At once when that was
    /// already seen (since the last [`ControlPlane::restart_apiserver`]).
    /// The probe objects are in namespace `default` and named after this
    /// process and a counter, so parallel callers do not meet.
    pub fn wait_for_controllers(&self) -> Result<(), String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        if self.controllers_ready.load(Ordering::SeqCst) {
            return Ok(());
        }
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "roost-controllers-probe-{}-{}",
            std::process::id(),
            PROBES.fetch_add(1, Ordering::SeqCst)
        );
        let kubectl = |args: &[&str]| -> Result<String, String> {
            let out = self
                .kubectl()
                .args(args)
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(text(&out.stdout))
            } else {
                Err(format!(
                    "kubectl {}: {}",
                    args.join(" "),
                    text(&out.stderr).trim()
                ))
            }
        };
        let apply = |manifest: serde_json::Value| -> Result<(), String> {
            let out = output_with_stdin(
                self.kubectl().args(["apply", "-f", "-"]),
                manifest.to_string().as_bytes(),
            )
            .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("kubectl apply: {}", text(&out.stderr).trim()))
            }
        };
        let gone = |args: &[&str]| -> bool {
            let mut args = args.to_vec();
            args.push("--ignore-not-found");
            kubectl(&args).is_ok_and(|out| out.trim().is_empty())
        };
        // Garbage collector: an owner, a dependent, the owner deleted.
        let owner = format!("{name}-owner");
        let dependent = format!("{name}-dependent");
        kubectl(&["-n", "default", "create", "configmap", &owner])?;
        let uid = kubectl(&[
            "-n",
            "default",
            "get",
            "configmap",
            &owner,
            "-o",
            "jsonpath={.metadata.uid}",
        ])?;
        apply(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": dependent,
                "namespace": "default",
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid.trim()}],
            },
        }))?;
        kubectl(&[
            "-n",
            "default",
            "delete",
            "configmap",
            &owner,
            "--wait=false",
        ])?;
        // Namespace controller: a namespace with an object in it, deleted.
        kubectl(&["create", "namespace", &name])?;
        kubectl(&["-n", &name, "create", "configmap", "content"])?;
        kubectl(&["delete", "namespace", &name, "--wait=false"])?;
        // ClusterRole aggregation: an aggregating role and a labelled one.
        let label = format!("roost.birb.party/{name}");
        apply(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": format!("{name}-aggregated")},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label.clone(): "true"}}]},
            "rules": [],
        }))?;
        apply(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": format!("{name}-part"), "labels": {label: "true"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        }))?;
        let aggregated = format!("clusterrole/{name}-aggregated");
        let mut pending = vec!["garbage-collector", "namespace", "clusterrole-aggregation"];
        let waited = wait_until(
            "kube-controller-manager's controllers",
            Duration::from_secs(120),
            || {
                pending.retain(|controller| match *controller {
                    "garbage-collector" => {
                        !gone(&["-n", "default", "get", "configmap", &dependent])
                    }
                    "namespace" => !gone(&["get", "namespace", &name]),
                    _ => !kubectl(&["get", &aggregated, "-o", "jsonpath={.rules[*].resources}"])
                        .is_ok_and(|out| out.contains("configmaps")),
                });
                pending.is_empty()
            },
        );
        let _ = kubectl(&[
            "delete",
            "clusterrole",
            &format!("{name}-aggregated"),
            &format!("{name}-part"),
            "--ignore-not-found",
            "--wait=false",
        ]);
        if let Err(err) = waited {
            let log = std::fs::read_to_string(self.dir.path().join("controller-manager.err"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            return Err(format!(
                "{err} (still not working: {}); kube-controller-manager log tail:\n{}",
                pending.join(", "),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        self.controllers_ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Points the ManagedRoost CRD's conversion webhook at a roost-keeper
    /// serving at `base_url` (`https://127.0.0.1:PORT`), trusting `ca_pem`
    /// (`None` leaves the caBundle to the server's injection). crds/ send
    /// conversions to the Service roost-system/roost-keeper, which a control
    /// plane without nodes never has; until this is done, every v1alpha1
    /// request fails.
    pub fn convert_at(&self, base_url: &str, ca_pem: Option<&[u8]>) -> Result<(), String> {
        use base64::Engine as _;
        let mut client = serde_json::json!({
            "url": format!("{}/convert", base_url.trim_end_matches('/')),
            "service": null,
        });
        if let Some(pem) = ca_pem {
            client["caBundle"] = base64::engine::general_purpose::STANDARD.encode(pem).into();
        }
        let patch = serde_json::json!({
            "spec": {"conversion": {"webhook": {"clientConfig": client}}}
        });
        let out = self
            .kubectl()
            .args([
                "patch",
                "crd",
                "managedroosts.roost.birb.party",
                "--type=merge",
                "-p",
            ])
            .arg(patch.to_string())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "point the CRD's conversion at {base_url}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `kubectl --kubeconfig <ours>`.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.bin.join("kubectl"));
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        command
    }

    /// Adds a process (e.g. a roost-keeper server) to stop with the cluster.
    pub fn adopt(&mut self, child: Child) -> Result<(), String> {
        self.processes.push(child);
        self.restart_watchdog()
    }

    fn start_watchdog(&mut self) -> Result<(), String> {
        let pids: Vec<u32> = self.processes.iter().map(Child::id).collect();
        self.watchdog = Some(watchdog(&pids, Some(self.dir.path()))?);
        Ok(())
    }

    fn restart_watchdog(&mut self) -> Result<(), String> {
        if let Some(mut old) = self.watchdog.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        self.start_watchdog()
    }

    /// True when one of the processes (etcd, the apiserver, the controller
    /// manager, an adopted one) has exited.
    pub fn any_exited(&mut self) -> bool {
        self.processes
            .iter_mut()
            .any(|p| !matches!(p.try_wait(), Ok(None)))
    }

    /// Stops every process, the last started first (the webhook server, then
    /// the controller manager, then the apiserver, which wants etcd while it
    /// shuts down, then etcd): SIGTERM, then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        for mut child in self.processes.drain(..).rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Documents of a manifest file, moved into `ns`, as one kubectl List (JSON).
pub fn manifest_in(path: &std::path::Path, ns: &str) -> String {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    let mut items = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let mut value = serde_json::Value::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        value["metadata"]["namespace"] = serde_json::json!(ns);
        items.push(value);
    }
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}
