//! End to end across restarts: a fresh controller records nothing twice, and
//! after the apiserver restarts the controller's watch resumes and later
//! changes are still recorded. Its own cluster, because it restarts the apiserver.

mod common;

use common::cluster::Env;
use roost_keeper::admission::registration::FailurePolicy;
use std::time::Duration;

fn created_count(object: &serde_json::Value) -> i64 {
    object["status"]["lifecycle"]["eventCounts"]["Created"]
        .as_i64()
        .unwrap_or(0)
}

#[test]
fn restarts_record_nothing_twice_and_lose_nothing() {
    let env = Env::start(FailurePolicy::Fail, FailurePolicy::Ignore);
    let ns = env.namespace("restarts");
    let before = env.apply_until_pending(&ns, "examples/web-valid.yaml", "web");
    assert_eq!(created_count(&before), 1);

    // A controller starting from scratch (empty caches) finds nothing to change.
    let _second = env.spawn_second_server();
    std::thread::sleep(Duration::from_secs(5));
    let after = env.get(&ns, "web");
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "no rewrite by a fresh controller"
    );
    assert_eq!(created_count(&after), 1);

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
    std::thread::sleep(Duration::from_secs(3));
    let settled = env.get(&ns, "web");
    assert_eq!(
        settled["status"]["lifecycle"]["eventCounts"], ready["status"]["lifecycle"]["eventCounts"],
        "recorded once by two controllers"
    );
    assert_eq!(created_count(&settled), 1);
}
