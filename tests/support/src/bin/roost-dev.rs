//! `make dev`: a local control plane with roost-keeper serving its webhooks,
//! ready for `kubectl apply`. Ctrl-C or SIGTERM stops everything.

#![forbid(unsafe_code)]

use roost_testcluster::{ControlPlane, free_port, output_with_stdin, repo_root};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn say(line: &str) {
    println!("roost-keeper dev: {line}");
    let _ = std::io::stdout().flush();
}

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

async fn main_async() -> Result<(), String> {
    let root = repo_root();
    let binary = std::env::var_os("ROOST_KEEPER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/roost-keeper"));
    if !binary.exists() {
        return Err(format!(
            "{} not found; run `make dev` (it builds it)",
            binary.display()
        ));
    }
    let dev = root.join(".dev");
    std::fs::create_dir_all(&dev).map_err(|e| e.to_string())?;

    say(
        "building or finding kube-apiserver, etcd and kubectl (the first build takes 15-30 minutes)",
    );
    say("starting etcd and kube-apiserver");
    let mut plane = ControlPlane::start()?;
    std::fs::copy(&plane.kubeconfig, dev.join("kubeconfig")).map_err(|e| e.to_string())?;

    say("installing the ManagedRoost CRD");
    plane.install_crd()?;

    let certs = dev.join("certs");
    run(
        Command::new(&binary)
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
    let (webhook_port, metrics_port) = (port(8443), port(8080));
    say(&format!(
        "starting roost-keeper serve (webhooks https://127.0.0.1:{webhook_port}, metrics http://127.0.0.1:{metrics_port})"
    ));
    let serve = Command::new(&binary)
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
        Command::new(&binary)
            .args(["webhook-config", "--ca-bundle-file"])
            .arg(certs.join("ca.crt"))
            .args(["--url", &format!("https://127.0.0.1:{webhook_port}")]),
        "render webhook configuration",
    )?;
    apply_stdin(&plane, &webhooks, "register webhooks")?;
    // crds/ send conversions to a Service this control plane cannot have.
    say("pointing the ManagedRoost CRD's conversion webhook at the server");
    let crd = run(
        Command::new(&binary)
            .args(["crd", "--ca-bundle-file"])
            .arg(certs.join("ca.crt"))
            .args(["--url", &format!("https://127.0.0.1:{webhook_port}")]),
        "render the ManagedRoost CRD",
    )?;
    apply_stdin(&plane, &crd, "apply the ManagedRoost CRD")?;
    wait_for_webhook(&plane, &root.join("examples/invalid.yaml"))?;

    say(&format!(
        "ready: kubeconfig at {}",
        dev.join("kubeconfig").display()
    ));
    println!("  kubectl --kubeconfig .dev/kubeconfig apply -f examples/web-valid.yaml");
    println!("  kubectl --kubeconfig .dev/kubeconfig apply -f examples/warnings.yaml");
    println!("  kubectl --kubeconfig .dev/kubeconfig apply -f examples/invalid.yaml");
    println!("  kubectl --kubeconfig .dev/kubeconfig get roost -o wide");
    println!("  curl -s http://127.0.0.1:{metrics_port}/metrics | grep roost_keeper_");
    println!(
        "  (kubectl is {}; Ctrl-C stops everything)",
        plane.bin.join("kubectl").display()
    );
    let _ = std::io::stdout().flush();

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let exited = async {
        while !plane.any_exited() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    // `make dev` killed without passing the signal on: our parent changes.
    let parent = std::os::unix::process::parent_id();
    let orphaned = async {
        while std::os::unix::process::parent_id() == parent {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        _ = orphaned => say("parent process gone: stopping"),
        _ = tokio::signal::ctrl_c() => say("Ctrl-C: stopping"),
        _ = terminate.recv() => say("SIGTERM: stopping"),
        _ = exited => say("a process exited (see its log above): stopping"),
    }
    plane.stop();
    say("stopped");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(err) = main_async().await {
        eprintln!("roost-keeper dev: error: {err}");
        std::process::exit(1);
    }
}
