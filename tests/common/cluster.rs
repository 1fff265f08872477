//! A control plane with the CRD installed and roost-keeper's webhooks
//! registered and answering, for end-to-end tests.

use roost_keeper::admission::registration::{FailurePolicy, Target, WebhookConfigOptions};
use roost_keeper::server::{ServeConfig, Server};
use roost_testcluster::{ControlPlane, ReportGroups, output_with_stdin, try_wait_for};
pub use roost_testcluster::{manifest_in, text};
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

pub struct Env {
    pub plane: Mutex<ControlPlane>,
    /// Plain-HTTP address of /metrics, /healthz, /readyz.
    pub metrics: std::net::SocketAddr,
    /// The lifecycle API's HTTPS address, when started with it.
    pub lifecycle_api: Option<std::net::SocketAddr>,
    /// The CA that signed the serving certificate (PEM).
    pub ca_pem: String,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<roost_keeper::Result<()>>>>,
    runtime: tokio::runtime::Runtime,
    _certs: tempfile::TempDir,
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "kubectl failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

impl Env {
    /// Starts a cluster, installs the CRD, serves the webhooks and registers
    /// them and the CRD's conversion webhook.
    pub fn start(
        validate_failure_policy: FailurePolicy,
        mutate_failure_policy: FailurePolicy,
    ) -> Env {
        Env::start_with(validate_failure_policy, mutate_failure_policy, None)
    }

    /// [`Env::start`], serving the lifecycle API too when given its settings
    /// (its address is replaced by a free port on 127.0.0.1).
    pub fn start_with(
        validate_failure_policy: FailurePolicy,
        mutate_failure_policy: FailurePolicy,
        lifecycle_api: Option<roost_keeper::lifecycle_api::LifecycleApiConfig>,
    ) -> Env {
        Env::start_full(
            validate_failure_policy,
            mutate_failure_policy,
            lifecycle_api,
            None,
        )
    }

    /// [`Env::start`] with the controller writing policy reports in `reports`,
    /// that API's CRDs installed before the server starts.
    pub fn start_with_reports(
        validate_failure_policy: FailurePolicy,
        mutate_failure_policy: FailurePolicy,
        reports: roost_keeper::report::ReportApi,
    ) -> Env {
        Env::start_full(
            validate_failure_policy,
            mutate_failure_policy,
            None,
            Some(reports),
        )
    }

    fn start_full(
        validate_failure_policy: FailurePolicy,
        mutate_failure_policy: FailurePolicy,
        lifecycle_api: Option<roost_keeper::lifecycle_api::LifecycleApiConfig>,
        reports: Option<roost_keeper::report::ReportApi>,
    ) -> Env {
        // Server and controller logs go to the test output (shown for failing tests).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("info")
            .try_init();
        let plane = ControlPlane::start().expect("control plane starts");
        plane.install_crd().expect("CRD installed");
        if let Some(api) = reports {
            let groups = match api {
                roost_keeper::report::ReportApi::OpenReports => ReportGroups::OPENREPORTS,
                roost_keeper::report::ReportApi::WgPolicy => ReportGroups::WGPOLICY,
            };
            plane
                .install_report_crds(groups)
                .expect("report CRDs installed");
        }
        let certs = tempfile::tempdir().unwrap();
        let bundle = roost_keeper::tls::generate::generate(
            "roost-keeper",
            "roost-system",
            &["127.0.0.1".into()],
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        roost_keeper::tls::generate::write_bundle(&bundle, certs.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = ServeConfig {
            controller: Some(roost_keeper::controller::ControllerConfig {
                reports,
                ..roost_keeper::controller::ControllerConfig::default()
            }),
            kubeconfig: Some(plane.kubeconfig.clone()),
            webhook_addr: "127.0.0.1:0".parse().unwrap(),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            shutdown_delay: Duration::ZERO,
            lifecycle_api: lifecycle_api.map(|api| {
                roost_keeper::lifecycle_api::LifecycleApiConfig {
                    addr: "127.0.0.1:0".parse().unwrap(),
                    ..api
                }
            }),
            ..ServeConfig::new(certs.path().join("tls.crt"), certs.path().join("tls.key"))
        };
        let server = runtime.block_on(Server::bind(config)).unwrap();
        let port = server.webhook_addr().port();
        let metrics = server.metrics_addr();
        let lifecycle_api = server.lifecycle_api_addr();
        let ca_pem = bundle.ca_pem.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let url = format!("https://127.0.0.1:{port}");
        plane
            .convert_at(&url, Some(bundle.ca_pem.as_bytes()))
            .expect("CRD conversion pointed at the server");
        let yaml = roost_keeper::admission::registration::render(&WebhookConfigOptions {
            target: Target::Url(url),
            ca_bundle: Some(bundle.ca_pem.into_bytes()),
            namespace: "roost-system".into(),
            validate_failure_policy,
            mutate_failure_policy,
            selection: Default::default(),
        })
        .unwrap();
        let env = Env {
            plane: Mutex::new(plane),
            metrics,
            lifecycle_api,
            ca_pem,
            stop: Mutex::new(Some(stop)),
            server: Mutex::new(Some(task)),
            runtime,
            _certs: certs,
        };
        ok(&env.kubectl_stdin(&["apply", "-f", "-"], &yaml));
        env.wait_for_webhooks();
        env
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.plane
            .lock()
            .unwrap()
            .kubectl()
            .args(args)
            .output()
            .unwrap()
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut command = self.plane.lock().unwrap().kubectl();
        output_with_stdin(command.args(args), input.as_bytes()).unwrap()
    }

    /// The apiserver picks up webhook configurations asynchronously: wait
    /// until a probe is really judged by the validating webhook.
    fn wait_for_webhooks(&self) {
        let probe = std::fs::read_to_string(repo().join("examples/invalid.yaml")).unwrap();
        let mut last = String::new();
        try_wait_for(Duration::from_secs(60), Duration::from_millis(300), || {
            let out = self.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &probe);
            last = text(&out.stderr);
            last.contains("[CHART_VERSION_INVALID]").then_some(())
        })
        .unwrap_or_else(|| panic!("webhooks never judged a request; last answer: {last}"));
    }

    /// Starts another roost-keeper server with its controller (fresh caches),
    /// as a restart would; returns its metrics address (`/readyz`) and task.
    pub fn spawn_second_server(
        &self,
    ) -> (
        std::net::SocketAddr,
        tokio::task::JoinHandle<roost_keeper::Result<()>>,
    ) {
        let kubeconfig = self.plane.lock().unwrap().kubeconfig.clone();
        let certs = self._certs.path();
        let config = ServeConfig {
            controller: Some(roost_keeper::controller::ControllerConfig::default()),
            kubeconfig: Some(kubeconfig),
            webhook_addr: "127.0.0.1:0".parse().unwrap(),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            ..ServeConfig::new(certs.join("tls.crt"), certs.join("tls.key"))
        };
        let server = self.runtime.block_on(Server::bind(config)).unwrap();
        let metrics = server.metrics_addr();
        (
            metrics,
            self.runtime.spawn(server.run(std::future::pending())),
        )
    }

    /// Stops the webhook server and waits until it is gone.
    pub fn stop_server(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.server.lock().unwrap().take() {
            self.runtime.block_on(task).unwrap().unwrap();
        }
    }

    /// True while the in-process server (webhooks and controller) has not returned.
    pub fn server_running(&self) -> bool {
        self.server
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }

    /// Status code of `GET path` on the metrics port.
    pub fn http_status(&self, path: &str) -> u16 {
        http_status(self.metrics, path)
    }

    /// The object as JSON.
    pub fn get(&self, ns: &str, name: &str) -> serde_json::Value {
        let out = self.kubectl(&["get", "roost", name, "-n", ns, "-o", "json"]);
        ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `get` until `check` holds (or panics after `within`).
    #[track_caller]
    pub fn wait_for(
        &self,
        ns: &str,
        name: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let found = try_wait_for(within, Duration::from_millis(100), || {
            last = self.get(ns, name);
            check(&last).then(|| last.clone())
        });
        match found {
            Some(object) => object,
            None => panic!("{what} never happened; last object: {last}"),
        }
    }

    /// Applies an example manifest into `ns` and waits until the controller made `name` Pending.
    pub fn apply_until_pending(&self, ns: &str, example: &str, name: &str) -> serde_json::Value {
        ok(&self.kubectl_stdin(
            &["apply", "-f", "-"],
            &manifest_in(&repo().join(example), ns),
        ));
        self.wait_for(ns, name, Duration::from_secs(20), "Pending", |o| {
            o["status"]["phase"] == "Pending"
        })
    }

    /// Writes status fields as another component would (merge patch on the status subresource).
    pub fn patch_status(&self, ns: &str, name: &str, status: serde_json::Value) {
        let patch = serde_json::json!({ "status": status }).to_string();
        ok(&self.kubectl(&[
            "patch",
            "roost",
            name,
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]));
    }

    /// A fresh namespace for one test.
    pub fn namespace(&self, name: &str) -> String {
        let ns = format!("{name}-{}", std::process::id());
        ok(&self.kubectl(&["create", "namespace", &ns]));
        ns
    }
}

/// The JSON report of `roost-keeper validate -o json -f path`.
pub fn offline_report(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .args(["validate", "-o", "json", "-f"])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (code, field) pairs of `roost-keeper validate`'s errors, one list per
/// ManagedRoost of the manifest at `path`.
pub fn offline_errors(path: &Path) -> Vec<Vec<(String, String)>> {
    offline_report(path)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["level"] == "error")
                .map(|f| {
                    (
                        f["code"].as_str().unwrap().to_owned(),
                        f["field"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}

/// What kubectl prints when `examples/warnings.yaml` is applied: the
/// apiserver's deprecation of v1alpha1, then the webhook's four `Warning:`
/// lines, one per warning code, and never the example password.
pub fn assert_example_warnings(stderr: &str) {
    let deprecation = format!("Warning: {}", roost_keeper::api::crd::V1ALPHA1_DEPRECATION);
    assert!(stderr.lines().any(|l| l == deprecation), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Warning: ") && *l != deprecation)
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    for code in [
        "CHART_VERSION_UNPINNED",
        "CHART_REPO_INSECURE",
        "AUTH_INLINE_CREDENTIALS",
        "HEALTH_CHECK_INTERVAL_TOO_SHORT",
    ] {
        assert!(
            warnings.iter().any(|w| w.ends_with(&format!("[{code}]"))),
            "missing {code}: {warnings:?}"
        );
    }
    assert!(
        !stderr.contains("example-only-password"),
        "no secret in warnings"
    );
}

/// Status code of `GET path` on a plain-HTTP address (0 if the answer has none).
pub fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    roost_testcluster::http_get(addr, path)
        .map(|(status, _)| status)
        .unwrap_or_else(|err| panic!("GET http://{addr}{path}: {err}"))
}
