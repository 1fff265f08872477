//! Both API versions end to end: the real kube-apiserver and etcd, the real
//! kubectl, the CRD serving v1alpha1 and v1beta1 (stored) with conversion by
//! roost-keeper's `/convert` over HTTPS, and its webhooks on both versions.
//! A cluster of its own: the migration test changes the CRD's storage.

mod common;

use common::cluster::{Env, manifest_in, ok, repo, text};
use roost_keeper::admission::registration::FailurePolicy;
use roost_keeper::api::ApiVersion;
use roost_keeper::api::convert::convert;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Output;
use std::sync::OnceLock;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::start(FailurePolicy::Fail, FailurePolicy::Ignore))
}

fn apply(manifest: &str) -> Output {
    env().kubectl_stdin(&["apply", "-f", "-"], manifest)
}

/// The object as `version` serves it.
fn get_as(version: ApiVersion, ns: &str, name: &str) -> Value {
    let resource = format!("managedroosts.{}.roost.birb.party", version.name());
    let out = env().kubectl(&["get", &resource, name, "-n", ns, "-o", "json"]);
    ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes `object` back as it is (kubectl replace, in its own version).
fn replace(object: &Value) {
    ok(&env().kubectl_stdin(&["replace", "-f", "-"], &object.to_string()));
}

/// A roost that v1beta1 holds differently: integer quantities, a number
/// where v1beta1 takes a decimal string, an inline token.
fn alpha_roost(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "chart": {
                "name": "web",
                "version": "1.2.3",
                "repository": {"url": "https://charts.example.com",
                               "auth": {"type": "token", "token": "s3cr3t-t0ken"}},
            },
            "healthChecks": [{"name": "api", "type": "tcp", "interval": "30s",
                              "tcp": {"host": "web", "port": 80}}],
            "tenancy": {"resourceQuota": {"enabled": true, "hard": {"pods": 10, "requests.cpu": "4"}}},
            "observability": {"tracing": {"enabled": false, "samplingRate": 0.25}},
        },
    })
}

#[test]
fn v1alpha1_objects_read_back_as_v1beta1_and_again_as_v1alpha1_unchanged() {
    let ns = env().namespace("alpha-first");
    ok(&apply(&alpha_roost(&ns, "web").to_string()));
    let alpha = get_as(ApiVersion::V1alpha1, &ns, "web");
    let beta = get_as(ApiVersion::V1beta1, &ns, "web");
    assert_eq!(beta["apiVersion"], "roost.birb.party/v1beta1");
    let spec = &beta["spec"];
    assert_eq!(spec["tenancy"]["resourceQuota"]["hard"]["pods"], "10");
    assert_eq!(spec["observability"]["tracing"]["samplingRate"], "0.25");
    assert_eq!(
        spec["chart"]["repository"]["auth"]["deprecatedToken"],
        "s3cr3t-t0ken"
    );
    let annotation = beta["metadata"]["annotations"]["roost.birb.party/conversion-data"]
        .as_str()
        .unwrap_or_else(|| panic!("no conversion data: {beta}"));
    assert!(!annotation.contains("s3cr3t"), "{annotation}");
    assert_eq!(
        alpha["spec"]["tenancy"]["resourceQuota"]["hard"]["pods"],
        10
    );

    // Written back in v1beta1, it reads in v1alpha1 as it was (kubectl
    // replace rewrites its own last-applied copy, so that one is left out).
    replace(&beta);
    let again = get_as(ApiVersion::V1alpha1, &ns, "web");
    assert_eq!(again["spec"], alpha["spec"]);
    let ours = |object: &Value| {
        let mut annotations = object["metadata"]["annotations"].clone();
        if let Some(map) = annotations.as_object_mut() {
            map.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        annotations
    };
    assert_eq!(
        ours(&again),
        ours(&alpha),
        "the conversion data never shows in v1alpha1"
    );
}

#[test]
fn v1beta1_objects_read_back_as_v1alpha1_and_again_as_v1beta1_unchanged() {
    let ns = env().namespace("beta-first");
    let beta = convert(&alpha_roost(&ns, "web"), ApiVersion::V1beta1).unwrap();
    ok(&apply(&beta.to_string()));
    let stored = get_as(ApiVersion::V1beta1, &ns, "web");
    let alpha = get_as(ApiVersion::V1alpha1, &ns, "web");
    assert_eq!(alpha["apiVersion"], "roost.birb.party/v1alpha1");
    assert_eq!(
        alpha["spec"]["chart"]["repository"]["auth"]["token"],
        "s3cr3t-t0ken"
    );
    // Written back in v1alpha1 (converted again to be stored), it reads in v1beta1 as it was.
    replace(&alpha);
    let again = get_as(ApiVersion::V1beta1, &ns, "web");
    assert_eq!(again["spec"], stored["spec"]);
}

/// The codes in brackets of kubectl's output.
fn codes(output: &str) -> BTreeSet<String> {
    output
        .split('[')
        .skip(1)
        .filter_map(|rest| rest.split_once(']').map(|(code, _)| code.to_owned()))
        .filter(|code| code.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !code.is_empty())
        .collect()
}

#[test]
fn an_invalid_v1beta1_object_is_refused_with_the_codes_of_its_v1alpha1_twin() {
    let ns = env().namespace("twins");
    let alpha: Value =
        serde_json::from_str(&manifest_in(&repo().join("examples/invalid.yaml"), &ns))
            .map(|list: Value| list["items"][0].clone())
            .unwrap();
    let beta = convert(&alpha, ApiVersion::V1beta1).unwrap();
    let refused_alpha = apply(&alpha.to_string());
    let refused_beta = apply(&beta.to_string());
    assert!(!refused_alpha.status.success() && !refused_beta.status.success());
    let (alpha_err, beta_err) = (text(&refused_alpha.stderr), text(&refused_beta.stderr));
    // Seven errors, two of them DURATION_INVALID.
    assert_eq!(codes(&alpha_err).len(), 6, "{alpha_err}");
    assert_eq!(
        codes(&alpha_err),
        codes(&beta_err),
        "v1alpha1: {alpha_err}\nv1beta1: {beta_err}"
    );
}

#[test]
fn warnings_name_the_fields_of_the_version_written() {
    let ns = env().namespace("paths");
    let alpha = alpha_roost(&ns, "alpha");
    let mut beta = convert(&alpha_roost(&ns, "beta"), ApiVersion::V1beta1).unwrap();
    beta["metadata"]["name"] = json!("beta");
    let (a, b) = (apply(&alpha.to_string()), apply(&beta.to_string()));
    ok(&a);
    ok(&b);
    let (a, b) = (text(&a.stderr), text(&b.stderr));
    assert!(
        a.contains("spec.chart.repository.auth.token: ") && a.contains("[AUTH_INLINE_CREDENTIALS]"),
        "{a}"
    );
    assert!(
        b.contains("spec.chart.repository.auth.deprecatedToken: ")
            && b.contains("[AUTH_INLINE_CREDENTIALS]"),
        "{b}"
    );
    assert!(
        !a.contains("s3cr3t") && !b.contains("s3cr3t"),
        "no secret in warnings"
    );
}

#[test]
fn v1alpha1_requests_print_the_deprecation_warning() {
    let ns = env().namespace("deprecated");
    let out = apply(&alpha_roost(&ns, "web").to_string());
    ok(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Warning: roost.birb.party/v1alpha1 ManagedRoost is deprecated; use roost.birb.party/v1beta1"),
        "{stderr}"
    );
    let beta = convert(&alpha_roost(&ns, "web2"), ApiVersion::V1beta1).unwrap();
    let out = apply(&beta.to_string());
    ok(&out);
    assert!(
        !text(&out.stderr).contains("is deprecated"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_v1beta1_schema_refuses_a_block_of_another_type_with_the_webhooks_code() {
    let ns = env().namespace("unions");
    let mut beta = convert(&alpha_roost(&ns, "web"), ApiVersion::V1beta1).unwrap();
    beta["spec"]["healthChecks"] = json!([
        {"name": "a", "type": "http", "tcp": {"host": "web", "port": 80}},
    ]);
    beta["spec"]["teardownPolicy"] = json!({"triggers": [{"type": "schedule", "timeout": "1h"}]});
    let out = apply(&beta.to_string());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for code in [
        "HTTP_CONFIG_MISSING",
        "HEALTH_CHECK_CONFIG_MISMATCH",
        "SCHEDULE_MISSING",
        "TRIGGER_CONFIG_MISMATCH",
    ] {
        assert!(stderr.contains(&format!("[{code}]")), "{code}: {stderr}");
    }
    // The same mismatch in v1alpha1 is the webhook's warning, as before.
    let mut alpha = alpha_roost(&ns, "web");
    alpha["spec"]["healthChecks"] = json!([
        {"name": "a", "type": "tcp", "tcp": {"host": "web", "port": 80}, "http": {"url": "https://web"}},
    ]);
    let out = apply(&alpha.to_string());
    ok(&out);
    assert!(
        text(&out.stderr).contains("[HEALTH_CHECK_CONFIG_MISMATCH]"),
        "{}",
        text(&out.stderr)
    );
}
