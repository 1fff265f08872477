//! End to end with the webhook server gone: the validating webhook
//! (`failurePolicy: Fail`) refuses every apply with a clear message; the
//! mutating webhook (`Ignore`) lets objects through. Its own cluster, because
//! it changes cluster-wide webhook configurations.

mod common;

use common::cluster::{Env, manifest_in, ok, repo, text};
use roost_keeper::admission::registration::{FailurePolicy, VALIDATING_CONFIG_NAME};

#[test]
fn failure_policies_decide_what_happens_when_the_server_is_down() {
    let env = Env::start(FailurePolicy::Fail, FailurePolicy::Ignore);
    let ns = env.namespace("down");
    let manifest = manifest_in(&repo().join("examples/web-valid.yaml"), &ns);
    env.stop_server();

    let refused = env.kubectl_stdin(&["apply", "-f", "-"], &manifest);
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
        let out = env.kubectl_stdin(&["apply", "-f", "-"], &manifest);
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
    assert!(
        object["spec"]["chart"]["repository"].get("type").is_none(),
        "no defaults without the server"
    );
}
