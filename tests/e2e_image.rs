//! The container image users are told to build (`make image`:
//! `localhost/roost-keeper:<version>`), run with podman as
//! deploy/deployment.yaml runs it: read-only root, user 65532, as the webhook
//! and controller of a local control plane (`--cert-secret`, deploy/'s
//! service account, a kubeconfig mounted read-only, host network). kubectl
//! must see exactly what tests/e2e.rs pins for the host binary. The image
//! must resolve names: the API server is reached as `localhost` and the OTLP
//! endpoint as `otlp.test` (`--add-host`), both through the image's resolver.
//!
//! `make test` installs podman (image/install.sh) and builds the image
//! (image/build.sh) before the tests; run alone, `make podman image` first.

mod common;

use base64::Engine;
use common::cluster::{assert_example_warnings, manifest_in, offline_errors};
use roost_testcluster::{
    ControlPlane, free_ports, http_get_ok, output_with_stdin, repo_root, succeeded, text,
    try_wait_for,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const NAMESPACE: &str = "roost-system";
const TEAM: &str = "team-image";

fn image() -> String {
    format!("localhost/roost-keeper:{VERSION}")
}

/// podman with runc and cgroupfs: crun and systemd cgroups are refused on
/// the machines this runs on.
fn podman() -> Command {
    let mut command = Command::new("podman");
    command.args([
        "--runtime",
        "/usr/sbin/runc",
        "--cgroup-manager",
        "cgroupfs",
    ]);
    command
}

/// `podman run` with the limits these machines allow (raising them is refused).
fn podman_run() -> Command {
    let mut command = podman();
    command.args([
        "run",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ]);
    command
}

/// The image, or a failure that says how to build it.
fn require_image() {
    let exists = podman()
        .args(["image", "exists", &image()])
        .status()
        .unwrap_or_else(|e| panic!("podman cannot run ({e}): run `make podman`"));
    assert!(exists.success(), "no image {}: run `make image`", image());
}

#[test]
fn image_prints_its_version_runs_as_65532_and_carries_labels_and_cas() {
    require_image();
    let out = podman_run()
        .args([
            "--rm",
            "--read-only",
            "--network",
            "none",
            &image(),
            "--version",
        ])
        .output()
        .unwrap();
    assert_eq!(
        succeeded("podman run --version", &out),
        format!("roost-keeper {VERSION}\n")
    );

    let out = podman()
        .args(["image", "inspect", &image()])
        .output()
        .unwrap();
    let inspect: serde_json::Value =
        serde_json::from_str(&succeeded("podman image inspect", &out)).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/roost-keeper"]));
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "roost-keeper");
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.licenses"], "MIT");
    for key in ["description", "revision", "created"] {
        let value = labels[format!("org.opencontainers.image.{key}")].as_str();
        assert!(
            value.is_some_and(|v| !v.is_empty()),
            "label {key}: {labels}"
        );
    }
    eprintln!(
        "image {}: {} bytes",
        image(),
        inspect[0]["Size"].as_u64().unwrap_or_default()
    );

    // The CA bundle for TLS to endpoints outside the cluster.
    let name = format!("roost-keeper-e2e-files-{}", std::process::id());
    let _container = Container(name.clone());
    succeeded(
        "podman create",
        &podman()
            .args(["create", "--name", &name, &image()])
            .output()
            .unwrap(),
    );
    let out = podman()
        .args([
            "cp",
            &format!("{name}:/etc/ssl/certs/ca-certificates.crt"),
            "-",
        ])
        .output()
        .unwrap();
    // `podman cp ... -` writes a tar stream holding the one file.
    let bundle = succeeded("podman cp the CA bundle", &out);
    assert!(
        bundle.matches("-----BEGIN CERTIFICATE-----").count() > 10,
        "no CA bundle in the image"
    );
}

/// Removes the container when dropped (also when a test panics), printing
/// its log first if the test failed.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(out) = podman().args(["logs", &self.0]).output()
        {
            eprintln!(
                "container {} log:\n{}{}",
                self.0,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        let quiet = |args: &[&str]| {
            podman()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // SIGTERM first (serve exits 0 within its shutdown delay and grace).
        // `rm --force` on a container that stops meanwhile can fail with
        // "container state improper", so it is retried.
        quiet(&["stop", "--ignore", "--time", "10", &self.0]);
        for _ in 0..5 {
            if quiet(&["rm", "--force", "--ignore", &self.0]) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        eprintln!("could not remove container {}", self.0);
    }
}

/// A plain-HTTP server standing in for an OTLP collector: sends the request
/// line of every request it gets, answers 200.
fn otlp_collector() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut head = [0u8; 256];
            let n = stream.read(&mut head).unwrap_or(0);
            let line = text(&head[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn image_serves_the_webhooks_and_controller_of_a_control_plane() {
    require_image();
    let plane = ControlPlane::start().expect("control plane starts");
    plane.install_crd().expect("CRDs installed");
    let kubectl = |args: &[&str]| plane.kubectl().args(args).output().unwrap();
    let deploy = repo_root().join("deploy");
    for file in ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml"] {
        let path = deploy.join(file);
        succeeded(file, &kubectl(&["apply", "-f", path.to_str().unwrap()]));
    }
    succeeded("create namespace", &kubectl(&["create", "namespace", TEAM]));
    let token = succeeded(
        "create a token",
        &kubectl(&[
            "create",
            "token",
            "roost-keeper",
            "-n",
            NAMESPACE,
            "--duration=1h",
        ]),
    );

    // deploy/'s service account, the API server by name: `localhost` must
    // resolve inside the image (its certificate names localhost).
    let api_port = plane.server.rsplit(':').next().unwrap();
    let ca = std::fs::read(plane.dir.path().join("ca.crt")).unwrap();
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {
            "server": format!("https://localhost:{api_port}"),
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca),
        }}],
        "users": [{"name": "roost-keeper", "user": {"token": token.trim()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": "roost-keeper", "namespace": NAMESPACE}}],
        "current-context": "sa"
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig_path = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig_path, kubeconfig.to_string()).unwrap();
    // Readable by 65532 (the test runs as root); the directory stays private.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kubeconfig_path, std::fs::Permissions::from_mode(0o644)).unwrap();

    // The webhook configurations, printed by the image, without a caBundle:
    // the server injects it from the Secret it manages.
    let [webhook_port, metrics_port] = free_ports();
    let webhooks = succeeded(
        "webhook-config from the image",
        &podman_run()
            .args(["--rm", "--read-only", "--network", "none", &image()])
            .args([
                "webhook-config",
                "--url",
                &format!("https://127.0.0.1:{webhook_port}"),
            ])
            .output()
            .unwrap(),
    );
    let mut apply = plane.kubectl();
    succeeded(
        "apply webhook configurations",
        &output_with_stdin(apply.args(["apply", "-f", "-"]), webhooks.as_bytes()).unwrap(),
    );
    // Conversion by the image too, its caBundle injected like the webhooks'.
    plane
        .convert_at(&format!("https://127.0.0.1:{webhook_port}"), None)
        .expect("CRD conversion pointed at the image");

    let (otlp_port, otlp_requests) = otlp_collector();
    let name = format!("roost-keeper-e2e-{}", std::process::id());
    let container = Container(name.clone());
    succeeded(
        "podman run serve",
        &podman_run()
            .args([
                "--detach",
                "--name",
                &name,
                "--read-only",
                "--user",
                "65532:65532",
            ])
            .args(["--network", "host", "--add-host", "otlp.test:127.0.0.1"])
            // Killed by conmon if this test process dies before its guard runs.
            .args(["--timeout", "900"])
            .arg("--volume")
            .arg(format!("{}:/kubeconfig:ro", kubeconfig_path.display()))
            .args(["--env", "ROOST_KEEPER_KUBECONFIG=/kubeconfig"])
            .args([
                "--env",
                &format!("OTEL_EXPORTER_OTLP_ENDPOINT=http://otlp.test:{otlp_port}"),
            ])
            .args(["--env", "OTEL_BSP_SCHEDULE_DELAY=200"])
            .arg(image())
            .args(["serve", "--bind-address", "127.0.0.1"])
            .args(["--webhook-port", &webhook_port.to_string()])
            .args(["--metrics-port", &metrics_port.to_string()])
            .args(["--cert-secret", &format!("{NAMESPACE}/roost-keeper-tls")])
            .args(["--extra-san", "127.0.0.1", "--shutdown-delay", "0s"])
            .output()
            .unwrap(),
    );
    let running = || {
        podman()
            .args([
                "container",
                "inspect",
                "--format",
                "{{.State.Running}}",
                &container.0,
            ])
            .output()
            .is_ok_and(|out| text(&out.stdout).trim() == "true")
    };
    let ready = try_wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
        (http_get_ok(metrics_port, "/readyz") || !running()).then_some(())
    });
    assert!(
        ready.is_some() && running(),
        "the container never became ready (or exited)"
    );

    // Its processes run as 65532, not as the image default alone.
    let users = succeeded(
        "podman top",
        &podman().args(["top", &name, "huser"]).output().unwrap(),
    );
    assert!(
        users.lines().skip(1).all(|l| l.trim() == "65532") && users.lines().count() > 1,
        "{users}"
    );

    let apply_in_team = |example: &str, extra: &[&str]| {
        let manifest = manifest_in(&repo_root().join(example), TEAM);
        let mut command = plane.kubectl();
        command.args(["apply", "-f", "-"]).args(extra);
        output_with_stdin(&mut command, manifest.as_bytes()).unwrap()
    };
    // The caBundle injection reaches the apiserver asynchronously: wait until
    // a probe is really judged by the validating webhook.
    let mut last = String::new();
    try_wait_for(Duration::from_secs(60), Duration::from_millis(300), || {
        last = text(&apply_in_team("examples/invalid.yaml", &["--dry-run=server"]).stderr);
        last.contains("[CHART_VERSION_INVALID]").then_some(())
    })
    .unwrap_or_else(|| panic!("the webhooks never judged a request; last answer: {last}"));

    // Valid: stored, defaulted, and the controller in the image makes it Pending.
    succeeded(
        "apply web-valid",
        &apply_in_team("examples/web-valid.yaml", &[]),
    );
    let pending = try_wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let out = kubectl(&[
            "get",
            "roost",
            "web",
            "-n",
            TEAM,
            "-o",
            "jsonpath={.status.phase}",
        ]);
        (text(&out.stdout) == "Pending").then_some(())
    });
    assert!(pending.is_some(), "the controller never set phase Pending");

    // Invalid: refused with every error the host binary finds, nothing stored.
    let out = apply_in_team("examples/invalid.yaml", &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("The managedroosts \"payments\" is invalid"),
        "{stderr}"
    );
    let expected = offline_errors(&repo_root().join("examples/invalid.yaml")).remove(0);
    assert_eq!(expected.len(), 7);
    for (code, field) in &expected {
        assert!(
            stderr.contains(&format!("{field}: ")) && stderr.contains(&format!("[{code}]")),
            "missing {field} [{code}] in {stderr}"
        );
    }
    let get = kubectl(&["get", "roost", "payments", "-n", TEAM]);
    assert!(!get.status.success() && text(&get.stderr).contains("NotFound"));

    // Warnings: stored, with kubectl's `Warning:` lines and no secret.
    let out = apply_in_team("examples/warnings.yaml", &[]);
    succeeded("apply warnings", &out);
    assert_example_warnings(&text(&out.stderr));

    // The admission spans reached the collector by its name.
    let line = otlp_requests
        .recv_timeout(Duration::from_secs(20))
        .expect("no OTLP export reached otlp.test");
    assert!(line.starts_with("POST /v1/traces "), "{line}");

    // The certificate Secret the server made inside the image.
    let out = kubectl(&[
        "get",
        "secret",
        "roost-keeper-tls",
        "-n",
        NAMESPACE,
        "-o",
        "name",
    ]);
    assert_eq!(
        succeeded("get the certificate Secret", &out).trim(),
        "secret/roost-keeper-tls"
    );
}
