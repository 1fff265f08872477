//! `deploy/crd.yaml` and `deploy/webhooks.yaml` are copies of the generated
//! CRD and webhook configurations (kustomize only reads files under
//! `deploy/`): they must equal what the binary prints.

/// `file` equals what the binary prints for `args`.
fn assert_deployed(args: &[&str], file: &str) {
    let generated = roost_testcluster::stdout_of(env!("CARGO_BIN_EXE_roost-keeper"), args);
    let deployed =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap();
    assert!(
        generated == deployed,
        "{file} is stale: run `cargo run -- {} > {file}`",
        args.join(" ")
    );
}

#[test]
fn deployed_crd_matches_the_binary() {
    assert_deployed(&["crd"], "deploy/crd.yaml");
    assert_deployed(
        &["crd", "--kind", "roostpolicy"],
        "deploy/crd-roostpolicy.yaml",
    );
}

#[test]
fn deployed_webhook_configuration_matches_the_binary() {
    assert_deployed(&["webhook-config"], "deploy/webhooks.yaml");
}

#[test]
fn kustomization_lists_the_copies() {
    let kustomization = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kustomization.yaml"),
    )
    .unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&kustomization).unwrap();
    let resources: Vec<&str> = doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    for file in ["crd.yaml", "crd-roostpolicy.yaml", "webhooks.yaml"] {
        assert!(
            resources.contains(&file),
            "{file} missing from {resources:?}"
        );
    }
}
