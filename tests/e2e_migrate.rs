//! `roost-keeper migrate` on a real kube-apiserver and etcd: objects written
//! while the CRD stored v1alpha1 are rewritten in v1beta1, and the CRD's
//! `status.storedVersions` ends with v1beta1 alone. A cluster of its own:
//! the test switches the CRD's storage version.
//!
//! Which version an object is stored in shows in roost-keeper's conversion
//! metrics: a read in v1beta1 of an object stored as v1alpha1 needs a
//! conversion, of one stored as v1beta1 none.

mod common;

use common::cluster::{Env, ok, text};
use roost_keeper::admission::registration::FailurePolicy;
use roost_keeper::cli::migrate::{MigrateOptions, migrate};
use roost_testcluster::{metric_sum, scrape, try_wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const CRD: &str = "crd/managedroosts.roost.birb.party";

fn alpha_to_beta_conversions(env: &Env) -> f64 {
    metric_sum(
        &scrape(env.metrics),
        "roost_keeper_conversions_total",
        &["direction=\"v1alpha1_to_v1beta1\"", "result=\"ok\""],
    )
}

fn stored_versions(env: &Env) -> Vec<String> {
    let out = env.kubectl(&["get", CRD, "-o", "jsonpath={.status.storedVersions}"]);
    ok(&out);
    serde_json::from_str(&text(&out.stdout)).unwrap()
}

/// Makes `version` the CRD's storage version (versions[0] is v1alpha1).
fn store_in(env: &Env, alpha: bool) {
    let patch = json!([
        {"op": "replace", "path": "/spec/versions/0/storage", "value": alpha},
        {"op": "replace", "path": "/spec/versions/1/storage", "value": !alpha},
    ]);
    ok(&env.kubectl(&["patch", CRD, "--type=json", "-p", &patch.to_string()]));
}

fn roost(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "chart": {"name": "web", "version": "1.2.3",
                      "repository": {"url": "https://charts.example.com"}},
            "tenancy": {"resourceQuota": {"enabled": true, "hard": {"pods": 10}}},
        },
    })
}

/// Whether reading `name` in v1beta1 needs a conversion, i.e. it is stored
/// as v1alpha1 (quorum reads: each goes to etcd).
fn read_converts(env: &Env, ns: &str, name: &str) -> bool {
    let before = alpha_to_beta_conversions(env);
    for _ in 0..3 {
        ok(&env.kubectl(&[
            "get",
            "managedroosts.v1beta1.roost.birb.party",
            name,
            "-n",
            ns,
            "-o",
            "name",
        ]));
    }
    alpha_to_beta_conversions(env) >= before + 3.0
}

/// Waits until the apiserver writes new objects in the storage version the
/// CRD names (it picks a change of the CRD up asynchronously).
fn wait_until_stored_as(env: &Env, ns: &str, alpha: bool) {
    let mut probes = 0;
    try_wait_for(Duration::from_secs(30), Duration::from_millis(500), || {
        probes += 1;
        let name = format!("probe-{}-{probes}", if alpha { "a" } else { "b" });
        ok(&env.kubectl_stdin(&["apply", "-f", "-"], &roost(ns, &name).to_string()));
        (read_converts(env, ns, &name) == alpha).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the apiserver never stored in v1{}",
            if alpha { "alpha1" } else { "beta1" }
        )
    });
}

#[test]
fn migrate_moves_every_object_and_leaves_only_the_storage_version() {
    let env = Env::start(FailurePolicy::Fail, FailurePolicy::Ignore);
    let ns = env.namespace("migrate");
    store_in(&env, true);
    wait_until_stored_as(&env, &ns, true);
    for i in 0..5 {
        ok(&env.kubectl_stdin(
            &["apply", "-f", "-"],
            &roost(&ns, &format!("old-{i}")).to_string(),
        ));
    }
    let mut with_token = roost(&ns, "old-token");
    with_token["spec"]["chart"]["repository"]["auth"] = json!({"token": "s3cr3t"});
    ok(&env.kubectl_stdin(&["apply", "-f", "-"], &with_token.to_string()));
    assert!(
        read_converts(&env, &ns, "old-0"),
        "written while v1alpha1 was stored"
    );
    store_in(&env, false);
    wait_until_stored_as(&env, &ns, false);
    let mut versions = stored_versions(&env);
    versions.sort();
    assert_eq!(versions, ["v1alpha1", "v1beta1"]);
    assert!(
        read_converts(&env, &ns, "old-0"),
        "still stored as v1alpha1 before migrate"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kubeconfig = env.plane.lock().unwrap().kubeconfig.clone();
    let client = runtime
        .block_on(roost_keeper::server::kube_client(Some(&kubeconfig)))
        .unwrap();
    let mut progress = Vec::new();
    let summary = runtime
        .block_on(migrate(
            client.clone(),
            &MigrateOptions::default(),
            &mut progress,
        ))
        .unwrap();
    let progress = String::from_utf8(progress).unwrap();
    assert!(summary.failed.is_empty(), "{summary}\n{progress}");
    assert_eq!(summary.migrated, summary.total, "{summary}");
    assert!(summary.total >= 6, "{summary}");
    assert!(summary.stored_versions_updated, "{summary}");
    assert_eq!(summary.inline_credentials, [format!("{ns}/old-token")]);
    let said = format!("{summary}{progress}");
    assert!(
        !said.contains("s3cr3t"),
        "no credential in the output: {said}"
    );
    assert_eq!(stored_versions(&env), ["v1beta1"]);
    for i in 0..5 {
        assert!(
            !read_converts(&env, &ns, &format!("old-{i}")),
            "old-{i} rewritten as v1beta1"
        );
    }

    // Safe to run again: nothing left to move, storedVersions unchanged.
    let mut again = Vec::new();
    let summary = runtime
        .block_on(migrate(client, &MigrateOptions::default(), &mut again))
        .unwrap();
    assert!(
        summary.failed.is_empty() && summary.migrated == summary.total,
        "{summary}"
    );
    assert_eq!(stored_versions(&env), ["v1beta1"]);
}
