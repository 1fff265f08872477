//! End to end across restarts: a fresh controller records nothing twice, and
//! after the apiserver restarts the controller's watch resumes and later
//! changes are still recorded. Its own cluster, because it restarts the apiserver.

mod common;

use common::cluster::{Env, http_status};
use roost_keeper::admission::registration::FailurePolicy;
use roost_testcluster::{try_wait_for, wait_for};
use std::time::Duration;

fn created_count(object: &serde_json::Value) -> i64 {
    object["status"]["lifecycle"]["eventCounts"]["Created"]
        .as_i64()
        .unwrap_or(0)
}

/// Watches `ns/name` for `within`; the first version that differs from
/// `before` in `field` (a JSON pointer), if any.
fn changed_within(
    env: &Env,
    ns: &str,
    name: &str,
    before: &serde_json::Value,
    field: &str,
    within: Duration,
) -> Option<serde_json::Value> {
    try_wait_for(within, Duration::from_millis(100), || {
        let now = env.get(ns, name);
        (now.pointer(field) != before.pointer(field)).then_some(now)
    })
}

#[test]
fn restarts_record_nothing_twice_and_lose_nothing() {
    let env = Env::start(FailurePolicy::Fail, FailurePolicy::Ignore);
    let ns = env.namespace("restarts");
    let before = env.apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    assert_eq!(created_count(&before), 1);

    // A controller starting from scratch (empty caches) finds nothing to change.
    let (second, _task) = env.spawn_second_server();
    // Its /readyz turns 200 only once its controller has listed every
    // ManagedRoost, web included; the reconcile of web follows at once.
    wait_for(
        "the second controller's first list",
        Duration::from_secs(30),
        || (http_status(second, "/readyz") == 200).then_some(()),
    );
    let rewritten = changed_within(
        &env,
        &ns,
        "web",
        &before,
        "/metadata/resourceVersion",
        Duration::from_secs(2),
    );
    assert!(
        rewritten.is_none(),
        "a fresh controller rewrote web: {}",
        rewritten.unwrap_or_default()["status"]
    );
    assert_eq!(created_count(&env.get(&ns, "web")), 1);

    // The apiserver restarts; a change made afterwards is still recorded, once.
    env.plane
        .lock()
        .unwrap()
        .restart_apiserver()
        .expect("apiserver restarts");
    env.patch_status(&ns, "web", serde_json::json!({"phase": "Ready"}));
    let ready = env.wait_for(
        &ns,
        "web",
        Duration::from_secs(60),
        "Ready record after the restart",
        |o| o["status"]["lifecycle"]["eventCounts"]["Ready"].as_i64() == Some(1),
    );
    let recounted = changed_within(
        &env,
        &ns,
        "web",
        &ready,
        "/status/lifecycle/eventCounts",
        Duration::from_secs(3),
    );
    assert!(
        recounted.is_none(),
        "not recorded once by two controllers: {}",
        recounted.unwrap_or_default()["status"]["lifecycle"]["eventCounts"]
    );
    assert_eq!(created_count(&ready), 1);
}
