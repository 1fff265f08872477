//! Generated artefacts: `crds/managedroost.yaml` and `webhook-config/webhooks.yaml`
//! are exactly what the binary prints.

use std::process::Command;

/// The committed file equals what the binary prints for `args`.
fn assert_committed(args: &[&str], file: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap();
    assert!(
        generated == committed,
        "{file} is stale: run `cargo run -- {} > {file}`",
        args.join(" ")
    );
}

#[test]
fn committed_crd_matches_the_binary() {
    assert_committed(&["crd"], "crds/managedroost.yaml");
    assert_committed(&["crd", "--kind", "roostpolicy"], "crds/roostpolicy.yaml");
}

#[test]
fn crd_has_the_contracted_names_columns_and_subresource() {
    let crd: serde_json::Value =
        serde_norway::from_str(&roost_keeper::api::crd::crd_yaml().unwrap()).unwrap();
    let spec = &crd["spec"];
    assert_eq!(crd["metadata"]["name"], "managedroosts.roost.birb.party");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["roost"]));
    assert_eq!(spec["names"]["singular"], "managedroost");
    let version = &spec["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Phase", "Health", "Chart", "Version", "Valid", "Age"]
    );
    let schema = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let chart = &schema["properties"]["chart"];
    assert_eq!(
        chart["required"],
        serde_json::json!(["name", "repository", "version"])
    );
    assert!(
        chart["description"].as_str().is_some_and(|d| !d.is_empty()),
        "kubectl explain needs descriptions"
    );
    let check = &schema["properties"]["healthChecks"]["items"]["properties"];
    assert_eq!(
        check["type"]["enum"],
        serde_json::json!(["http", "tcp", "udp", "grpc", "prometheus", "kubernetes"])
    );
    assert_eq!(check["tcp"]["properties"]["port"]["maximum"], 65535.0);
    assert_eq!(check["interval"]["x-kubernetes-int-or-string"], true);
}

#[test]
fn committed_webhook_configuration_matches_the_binary() {
    assert_committed(&["webhook-config"], "webhook-config/webhooks.yaml");
}

#[test]
fn webhook_configuration_has_the_contracted_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .args([
            "webhook-config",
            "--url",
            "https://127.0.0.1:9443",
            // Each the opposite of its default, so crossed flags cannot pass.
            "--validate-failure-policy",
            "ignore",
            "--mutate-failure-policy",
            "fail",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    assert_eq!(docs[0]["kind"], "ValidatingWebhookConfiguration");
    assert_eq!(docs[1]["kind"], "MutatingWebhookConfiguration");
    for (doc, policy, path) in [
        (
            &docs[0],
            "Ignore",
            "/validate-roost-birb-party-v1alpha1-managedroost",
        ),
        (
            &docs[1],
            "Fail",
            "/mutate-roost-birb-party-v1alpha1-managedroost",
        ),
    ] {
        let hook = &doc["webhooks"][0];
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], serde_json::json!(["v1"]));
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(hook["matchPolicy"], "Equivalent");
        assert_eq!(hook["failurePolicy"], policy, "failurePolicy of {path}");
        assert_eq!(
            hook["clientConfig"]["url"],
            format!("https://127.0.0.1:9443{path}")
        );
        assert_eq!(
            hook["rules"][0]["resources"],
            serde_json::json!(["managedroosts"])
        );
        assert_eq!(
            hook["rules"][0]["apiGroups"],
            serde_json::json!(["roost.birb.party"])
        );
        // Each object reaches the webhooks in the version it was written in.
        assert_eq!(
            hook["rules"][0]["apiVersions"],
            serde_json::json!(["v1alpha1", "v1beta1"])
        );
        let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(excluded["operator"], "NotIn");
        assert_eq!(
            excluded["values"],
            serde_json::json!(["kube-system", "roost-system"])
        );
    }
}

/// `roost-keeper crd` with `args`, parsed.
fn crd_with(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .arg("crd")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_norway::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_crds_conversion_target_follows_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let local = crd_with(&[
        "--url",
        "https://127.0.0.1:9443/",
        "--ca-bundle-file",
        ca.to_str().unwrap(),
    ]);
    let webhook = &local["spec"]["conversion"]["webhook"];
    assert_eq!(local["spec"]["conversion"]["strategy"], "Webhook");
    assert_eq!(
        webhook["conversionReviewVersions"],
        serde_json::json!(["v1"])
    );
    assert_eq!(
        webhook["clientConfig"],
        serde_json::json!({
            "url": "https://127.0.0.1:9443/convert",
            "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
        })
    );
    let elsewhere = crd_with(&["--service", "keeper", "--namespace", "birds"]);
    assert_eq!(
        elsewhere["spec"]["conversion"]["webhook"]["clientConfig"],
        serde_json::json!({
            "service": {"name": "keeper", "namespace": "birds", "path": "/convert", "port": 443}
        })
    );
    // Both targets at once are refused, as by webhook-config.
    let both = Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .args(["crd", "--url", "https://a", "--service", "b"])
        .output()
        .unwrap();
    assert!(!both.status.success());
}
