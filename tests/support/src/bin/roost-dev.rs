//! `make dev`: a local control plane with roost-keeper serving its webhooks
//! and the lifecycle API, ready for `kubectl apply`. Ctrl-C or SIGTERM stops
//! everything. The steps are `roost_testcluster::dev::start`
//! (tests/e2e_dev.rs runs them too).

#![forbid(unsafe_code)]

use roost_testcluster::dev::{self, DevOptions};
use roost_testcluster::repo_root;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

fn say(line: &str) {
    println!("roost-keeper dev: {line}");
    let _ = std::io::stdout().flush();
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
    let options = DevOptions {
        binary,
        dir: root.join(".dev"),
        preferred_ports: true,
        serve_log: None,
        report_crds: dev::report_groups_from_env()?,
    };
    let mut dev = dev::start(&options, &mut |line| say(line))?;
    let metrics_port = dev.metrics_port;
    println!("  kubectl --kubeconfig .dev/kubeconfig apply -f examples/web-valid.yaml");
    println!("  kubectl --kubeconfig .dev/kubeconfig apply -f examples/warnings.yaml");
    println!("  kubectl --kubeconfig .dev/kubeconfig apply -f examples/invalid.yaml");
    println!("  kubectl --kubeconfig .dev/kubeconfig get roost -o wide");
    println!("  curl -s http://127.0.0.1:{metrics_port}/metrics | grep roost_keeper_");
    println!(
        "  (kubectl is {}; Ctrl-C stops everything)",
        dev.plane.bin.join("kubectl").display()
    );
    let _ = std::io::stdout().flush();

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let plane = &mut dev.plane;
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
    dev.plane.stop();
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
