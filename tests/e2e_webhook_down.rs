//! End to end with the webhook server gone: the validating webhook
//! (`failurePolicy: Fail`) refuses every apply with a clear message; the
//! mutating webhook (`Ignore`) lets objects through. Conversion has no
//! failurePolicy: every request in v1alpha1 (the stored version is v1beta1)
//! fails while the conversion webhook is down. Its own cluster, because it
//! changes cluster-wide webhook configurations.

mod common;

use common::cluster::{Env, manifest_in, ok, repo, text};
use roost_keeper::admission::registration::{FailurePolicy, VALIDATING_CONFIG_NAME};
use roost_keeper::api::ApiVersion;

/// A `kubectl` List manifest with its items converted to v1beta1, so that
/// writing it needs no conversion webhook.
fn in_v1beta1(manifest: &str) -> String {
    let mut list: serde_json::Value = serde_json::from_str(manifest).unwrap();
    for item in list["items"].as_array_mut().unwrap() {
        *item = roost_keeper::api::convert::convert(item, ApiVersion::V1beta1).unwrap();
    }
    list.to_string()
}

#[test]
fn failure_policies_decide_what_happens_when_the_server_is_down() {
    let env = Env::start(FailurePolicy::Fail, FailurePolicy::Ignore);
    let ns = env.namespace("down");
    let alpha = manifest_in(&repo().join("examples/web-valid.yaml"), &ns);
    let beta = in_v1beta1(&alpha);
    env.stop_server();

    let refused = env.kubectl_stdin(&["apply", "-f", "-"], &beta);
    assert!(
        !refused.status.success(),
        "Fail policy refuses while the server is down"
    );
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("failed calling webhook"), "{stderr}");
    assert!(
        stderr.contains("validate.managedroost.roost.birb.party"),
        "names the webhook: {stderr}"
    );

    // Without the validating webhook, only the mutating one (Ignore) is left: it lets the object in, undefaulted.
    ok(&env.kubectl(&[
        "delete",
        "validatingwebhookconfiguration",
        VALIDATING_CONFIG_NAME,
    ]));
    let mut stored = None;
    for _ in 0..50 {
        let out = env.kubectl_stdin(&["apply", "-f", "-"], &beta);
        if out.status.success() {
            stored = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        stored.is_some(),
        "the mutating webhook with Ignore lets the apply through"
    );
    let out = env.kubectl(&["get", "roost", "web", "-n", &ns, "-o", "json"]);
    ok(&out);
    let object: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(object["apiVersion"], "roost.birb.party/v1beta1");
    assert!(
        object["spec"]["chart"]["repository"].get("type").is_none(),
        "no defaults without the server"
    );

    // v1alpha1 needs the conversion webhook both ways: writing a new object
    // (converted for storage) and reading a stored one fail, whatever the
    // webhooks' failurePolicy.
    let other = alpha.replace("\"name\":\"web\"", "\"name\":\"web-alpha\"");
    let written = env.kubectl_stdin(&["apply", "-f", "-"], &other);
    let stderr = text(&written.stderr);
    eprintln!(
        "v1alpha1 apply with the conversion webhook down: {}",
        stderr.trim()
    );
    assert!(
        !written.status.success(),
        "stored without conversion: {stderr}"
    );
    // The object as sent is converted to the stored version.
    assert!(
        stderr.contains("Error from server: error when creating \"STDIN\": conversion webhook for roost.birb.party/v1alpha1, Kind=ManagedRoost failed: Post \"https://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/convert?timeout=30s\": dial tcp 127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("connect: connection refused"), "{stderr}");
    let read = env.kubectl(&[
        "get",
        "managedroosts.v1alpha1.roost.birb.party",
        "web",
        "-n",
        &ns,
    ]);
    let stderr = text(&read.stderr);
    eprintln!(
        "v1alpha1 get with the conversion webhook down: {}",
        stderr.trim()
    );
    assert!(!read.status.success(), "read without conversion: {stderr}");
    // The stored object is converted to the version asked for.
    assert!(
        stderr.contains("Error from server: conversion webhook for roost.birb.party/v1beta1, Kind=ManagedRoost failed: Post \"https://127.0.0.1:"),
        "{stderr}"
    );
}
