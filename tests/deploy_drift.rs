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

/// The flags and environment variables deploy/lifecycle-api and the chart
/// hand to `serve` for the lifecycle API are the binary's, and the stream
/// limits they write are its defaults (so the component and the chart's
/// values say what the server would do anyway).
#[test]
fn lifecycle_api_settings_are_serves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let help =
        roost_testcluster::stdout_of(env!("CARGO_BIN_EXE_roost-keeper"), &["serve", "--help"]);
    // `--flag <VALUE>`, then its description, `[env: NAME=]` and
    // `[default: N]` as clap prints them, up to the next option's line.
    let described = |flag: &str| -> String {
        let lines: Vec<&str> = help.lines().collect();
        let named = |l: &str| {
            let l = l.trim_start();
            l.starts_with(&format!("--{flag} ")) || l.contains(&format!(", --{flag} "))
        };
        let start = lines
            .iter()
            .position(|l| named(l))
            .unwrap_or_else(|| panic!("serve has no --{flag}:\n{help}"));
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with('-'))
            .map_or(lines.len(), |n| start + 1 + n);
        lines[start..end].join("\n")
    };

    let component =
        std::fs::read_to_string(root.join("deploy/lifecycle-api/kustomization.yaml")).unwrap();
    let component: serde_json::Value = serde_norway::from_str(&component).unwrap();
    let mut flags = Vec::new();
    for patch in component["patches"].as_array().unwrap() {
        let ops: serde_json::Value =
            serde_norway::from_str(patch["patch"].as_str().unwrap()).unwrap();
        for op in ops.as_array().unwrap() {
            if let Some(arg) = op["value"].as_str() {
                let (flag, value) = arg
                    .strip_prefix("--")
                    .and_then(|a| a.split_once('='))
                    .unwrap_or_else(|| panic!("{arg} is not --flag=value"));
                flags.push((flag.to_owned(), value.to_owned()));
            }
        }
    }
    let names: Vec<&str> = flags.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "lifecycle-api-addr",
            "lifecycle-api-max-streams",
            "lifecycle-api-max-streams-per-identity"
        ]
    );

    let values = std::fs::read_to_string(root.join("charts/roost-keeper/values.yaml")).unwrap();
    let values: serde_json::Value = serde_norway::from_str(&values).unwrap();
    let api = &values["lifecycleApi"];
    for (flag, value) in &flags {
        let text = described(flag);
        match flag.as_str() {
            "lifecycle-api-addr" => {
                assert_eq!(value, &format!("0.0.0.0:{}", api["port"]));
            }
            limit => {
                let key = if limit.ends_with("per-identity") {
                    "maxStreamsPerIdentity"
                } else {
                    "maxStreams"
                };
                assert_eq!(value, &api[key].to_string(), "{flag}: the chart's {key}");
                assert!(
                    text.contains(&format!("[default: {value}]")),
                    "--{flag}={value} is not serve's default:{text}"
                );
            }
        }
    }
    // The chart passes the two lists as the comma-separated variables.
    for (flag, env) in [
        (
            "lifecycle-api-audience",
            "ROOST_KEEPER_LIFECYCLE_API_AUDIENCES",
        ),
        (
            "lifecycle-api-allowed-origin",
            "ROOST_KEEPER_LIFECYCLE_API_ALLOWED_ORIGINS",
        ),
    ] {
        let text = described(flag);
        assert!(
            text.contains(&format!("[env: {env}")),
            "--{flag} is not read from {env}:{text}"
        );
        let template =
            std::fs::read_to_string(root.join("charts/roost-keeper/templates/deployment.yaml"))
                .unwrap();
        assert!(template.contains(env), "the chart does not set {env}");
    }
}
