//! The status of every RoostPolicy: `Ready` (Compiled or CompileFailed),
//! `observedGeneration`, its rule count, the roosts it matches and how many
//! of them its rules currently fail. Written by the leader, only when a
//! policy, a namespace or a roost changed, and only what differs.

use super::FIELD_MANAGER;
use super::stored::StoredRoost;
use crate::engine::Engine;
use crate::policy::live::LivePolicies;
use crate::policy::{RoostPolicy, RoostPolicyStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

/// How often a change is looked for.
const PERIOD: Duration = Duration::from_secs(1);

/// Keeps every policy's status current until the task is dropped.
pub async fn keep_current(client: Client, engine: Engine, roosts: Store<StoredRoost>) {
    let policies = &engine.policies;
    let api: Api<RoostPolicy> = Api::all(client);
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = None;
    // One warning per outage (e.g. the RoostPolicy CRD not installed), not one per tick.
    let mut failing = false;
    loop {
        ticker.tick().await;
        let seen = signature(policies, &roosts);
        if last_seen == Some(seen) {
            continue;
        }
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                failing = false;
                let counts = counts(&engine, &roosts, Timestamp::now());
                let mut all_written = true;
                for policy in &list.items {
                    all_written &= write_if_changed(&api, policy, policies, &counts).await;
                }
                if all_written {
                    last_seen = Some(seen);
                }
            }
            Err(err) if failing => {
                tracing::debug!(error = %crate::error::ErrorChain(&err), "cannot list RoostPolicies; retrying");
            }
            Err(err) => {
                failing = true;
                tracing::warn!(error = %crate::error::ErrorChain(&err), "cannot list RoostPolicies; retrying");
            }
        }
    }
}

/// Changes whenever the policies, a namespace's labels or a roost change.
fn signature(policies: &LivePolicies, roosts: &Store<StoredRoost>) -> u64 {
    let mut bytes = policies.subscribe().borrow().to_le_bytes().to_vec();
    for roost in roosts.state() {
        bytes.extend_from_slice(roost.metadata.uid.as_deref().unwrap_or_default().as_bytes());
        bytes.extend_from_slice(
            roost
                .metadata
                .resource_version
                .as_deref()
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Per policy in force: (roosts matched, roosts failing one of its rules),
/// by the engine's verdicts at `now`.
fn counts(
    engine: &Engine,
    roosts: &Store<StoredRoost>,
    now: Timestamp,
) -> BTreeMap<String, (i64, i64)> {
    let mut counts: BTreeMap<String, (i64, i64)> = engine
        .policies
        .set()
        .policies()
        .iter()
        .map(|p| (p.name.clone(), (0, 0)))
        .collect();
    for roost in roosts.state() {
        let namespace = roost.metadata.namespace.as_deref().unwrap_or_default();
        let matched = engine.matching(namespace, &roost.name_any(), &roost.labels());
        if matched.is_empty() {
            continue;
        }
        let result = roost.decode(engine, now).ok().map(|d| d.result);
        for policy in matched.policies() {
            let entry = counts.entry(policy.name.clone()).or_default();
            entry.0 += 1;
            if result.as_ref().is_some_and(|r| policy.violated_by(r)) {
                entry.1 += 1;
            }
        }
    }
    counts
}

/// The status `policy` should have.
fn wanted(
    policy: &RoostPolicy,
    policies: &LivePolicies,
    counts: &BTreeMap<String, (i64, i64)>,
) -> RoostPolicyStatus {
    let name = policy.name_any();
    let set = policies.set();
    let compiled = set
        .policies()
        .iter()
        .find(|p| p.name == name && p.generation == policy.metadata.generation);
    let failed = policies.failed().get(&name).cloned();
    let (status, reason, message) = match (&compiled, failed) {
        (Some(_), _) => ("True", "Compiled", "every rule compiled".to_owned()),
        (None, Some(why)) => ("False", "CompileFailed", why),
        (None, None) => ("Unknown", "Pending", "not compiled yet".to_owned()),
    };
    let previous = policy
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let last_transition_time = previous.filter(|c| c.status == status).map_or_else(
        || Time(Timestamp::now()),
        |c| c.last_transition_time.clone(),
    );
    let (matched, violations) = counts.get(&name).copied().unwrap_or_default();
    RoostPolicyStatus {
        conditions: Some(vec![Condition {
            type_: "Ready".to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.chars().take(1000).collect(),
            observed_generation: policy.metadata.generation,
            last_transition_time,
        }]),
        observed_generation: policy.metadata.generation,
        rules: Some(i64::try_from(policy.spec.rules.len()).unwrap_or(i64::MAX)),
        matched: compiled.map(|_| matched),
        violations: compiled.map(|_| violations),
    }
}

/// Writes the status when it differs from what the policy has; whether it is current.
async fn write_if_changed(
    api: &Api<RoostPolicy>,
    policy: &RoostPolicy,
    policies: &LivePolicies,
    counts: &BTreeMap<String, (i64, i64)>,
) -> bool {
    let status = wanted(policy, policies, counts);
    if policy.status.as_ref() == Some(&status) {
        return true;
    }
    // RoostPolicy's own (only) version, whatever ManagedRoost's versions are.
    let patch = serde_json::json!({
        "apiVersion": RoostPolicy::api_version(&()), "kind": RoostPolicy::kind(&()), "status": status
    });
    match api
        .patch_status(
            &policy.name_any(),
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(policy = %policy.name_any(), error = %crate::error::ErrorChain(&err), "cannot write the policy's status; retrying");
            false
        }
    }
}
