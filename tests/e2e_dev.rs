//! `make dev`'s steps (`roost_testcluster::dev::start`, which the roost-dev
//! binary runs) on a control plane of their own: the dashboard lines they
//! print name a page that answers over HTTPS with the CA they name, and a
//! command whose token reads every namespace's roosts through the lifecycle
//! API.

use roost_testcluster::dev::{self, DevOptions};
use roost_testcluster::{repo_root, succeeded};
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "current_thread")]
async fn the_dashboard_lines_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = Vec::new();
    let dev = dev::start(
        &DevOptions {
            binary: env!("CARGO_BIN_EXE_roost-keeper").into(),
            dir: dir.path().join("dev"),
            preferred_ports: false,
            serve_log: Some(dir.path().join("serve.log")),
            report_crds: roost_testcluster::ReportGroups::OPENREPORTS,
        },
        &mut |line| lines.push(line.to_owned()),
    )
    .unwrap_or_else(|why| {
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        panic!("make dev's steps: {why}\nserve's log:\n{log}")
    });
    let printed = lines.join("\n");

    // `roost-keeper dev: dashboard https://127.0.0.1:<port>/ (... <ca.crt> ...)`.
    let dashboard = lines
        .iter()
        .find_map(|l| l.strip_prefix("dashboard https://"))
        .unwrap_or_else(|| panic!("no dashboard line:\n{printed}"));
    let url = format!("https://{}", dashboard.split_whitespace().next().unwrap());
    assert_eq!(url, format!("https://127.0.0.1:{}/", dev.api_port));
    let ca_file = dir.path().join("dev/certs/ca.crt");
    assert!(
        dashboard.contains(ca_file.to_str().unwrap()),
        "the dashboard line does not name the CA {}: {dashboard}",
        ca_file.display()
    );

    // `roost-keeper dev: dashboard token: kubectl --kubeconfig <path> ...`,
    // run with the kubectl the control plane built.
    let command = lines
        .iter()
        .find_map(|l| l.strip_prefix("dashboard token: "))
        .unwrap_or_else(|| panic!("no dashboard token line:\n{printed}"));
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "kubectl", "{command}");
    let token = succeeded(
        command,
        &std::process::Command::new(dev.plane.bin.join("kubectl"))
            .args(&words[1..])
            .output()
            .unwrap(),
    )
    .trim()
    .to_owned();
    assert!(!token.is_empty());
    // The ready line stays last, for whoever waits for it.
    assert!(
        lines.last().unwrap().starts_with("ready: "),
        "ready is not the last line:\n{printed}"
    );

    // The OpenReports CRDs are installed (make dev's default), not the wgpolicyk8s.io ones.
    let crds = succeeded(
        "kubectl get crd",
        &dev.plane
            .kubectl()
            .args(["get", "crd", "-o", "name"])
            .output()
            .unwrap(),
    );
    for crd in ["reports.openreports.io", "clusterreports.openreports.io"] {
        assert!(crds.contains(crd), "{crd} not installed:\n{crds}");
    }
    assert!(!crds.contains("wgpolicyk8s.io"), "{crds}");

    // A roost in each of two namespaces.
    succeeded(
        "kubectl create namespace aviary",
        &dev.plane
            .kubectl()
            .args(["create", "namespace", "aviary"])
            .output()
            .unwrap(),
    );
    for namespace in ["default", "aviary"] {
        succeeded(
            "kubectl apply examples/web-valid.yaml",
            &roost_testcluster::output_with_stdin(
                dev.plane.kubectl().args(["apply", "-f", "-"]),
                roost_testcluster::manifest_in(
                    &repo_root().join("examples/web-valid.yaml"),
                    namespace,
                )
                .as_bytes(),
            )
            .unwrap(),
        );
    }

    let ca = std::fs::read(&ca_file).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let page = client.get(&url).send().await.expect("the dashboard page");
    assert_eq!(page.status(), 200, "GET {url}");
    let roosts = format!("{url}api/v1/roosts");
    let anonymous = client.get(&roosts).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "GET {roosts} without a token");

    // The token reads both namespaces (the API's watch may lag the apply).
    let mut last = Value::Null;
    let mut seen = Vec::new();
    for _ in 0..60 {
        let answer = client
            .get(&roosts)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "GET {roosts} with the printed token");
        last = answer.json().await.unwrap();
        seen = last["items"]
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
            .collect();
        if seen == ["aviary/web", "default/web"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(seen, ["aviary/web", "default/web"], "{last}");
}
