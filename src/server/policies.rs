//! Every replica follows RoostPolicies, RoostPolicyExceptions and Namespaces
//! with watches and keeps [`LivePolicies`] current: a policy or an exception
//! is compiled once per generation, and the set in force is replaced whole
//! when any of them changes.

use crate::api::roost_policy_exception::RoostPolicyException;
use crate::metrics::{Metrics, ReadyLabel};
use crate::policy::exception::{self, CompiledException, MAX_EXCEPTIONS_IN_FORCE};
use crate::policy::live::LivePolicies;
use crate::policy::{CompiledPolicy, Known, Labels, RoostPolicy, assemble, compile};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A compiled policy (or why it did not compile), for one generation.
struct Compiled {
    generation: Option<i64>,
    uid: Option<String>,
    result: Result<Arc<CompiledPolicy>, String>,
}

/// Follows RoostPolicies until the task is dropped.
pub async fn follow_policies(client: Client, live: Arc<LivePolicies>, metrics: Arc<Metrics>) {
    let api: Api<RoostPolicy> = Api::all(client);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut current: BTreeMap<String, RoostPolicy> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, RoostPolicy>> = None;
    let mut compiled: HashMap<String, Compiled> = HashMap::new();
    while let Some(event) = events.next().await {
        let changed = match event {
            Ok(Event::Init) => {
                listing = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(policy)) => {
                if let Some(listing) = listing.as_mut() {
                    listing.insert(policy.name_any(), policy);
                }
                false
            }
            Ok(Event::InitDone) => {
                current = listing.take().unwrap_or_default();
                true
            }
            Ok(Event::Apply(policy)) => {
                current.insert(policy.name_any(), policy);
                true
            }
            Ok(Event::Delete(policy)) => {
                current.remove(&policy.name_any());
                true
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::ErrorChain(&err), "watch of RoostPolicies failed; retrying");
                false
            }
        };
        if changed {
            put_in_force(&current, &mut compiled, &live, &metrics);
        }
    }
}

/// Compiles what changed and replaces the set in force.
fn put_in_force(
    current: &BTreeMap<String, RoostPolicy>,
    compiled: &mut HashMap<String, Compiled>,
    live: &LivePolicies,
    metrics: &Metrics,
) {
    compiled.retain(|name, _| current.contains_key(name));
    let no_codes_taken = BTreeMap::new();
    for (name, policy) in current {
        let fresh = compiled.get(name).is_some_and(|c| {
            c.generation == policy.metadata.generation && c.uid == policy.metadata.uid
        });
        if fresh {
            continue;
        }
        // Clashes between policies are found when the set is assembled.
        let known = Known {
            taken: &no_codes_taken,
        };
        let result = compile(policy, &known).map(Arc::new).map_err(|problems| {
            problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        });
        compiled.insert(
            name.clone(),
            Compiled {
                generation: policy.metadata.generation,
                uid: policy.metadata.uid.clone(),
                result,
            },
        );
    }
    let candidates = compiled
        .iter()
        .map(|(name, c)| (name.clone(), c.result.clone()))
        .collect();
    let (set, failed) = assemble(candidates);
    let ready = i64::try_from(set.policies().len()).unwrap_or(i64::MAX);
    let not_ready = i64::try_from(failed.len()).unwrap_or(i64::MAX);
    metrics
        .policies
        .get_or_create(&ReadyLabel { ready: "true" })
        .set(ready);
    metrics
        .policies
        .get_or_create(&ReadyLabel { ready: "false" })
        .set(not_ready);
    tracing::info!(
        in_force = ready,
        failed = not_ready,
        "RoostPolicies in force"
    );
    live.replace(set, failed);
}

/// A compiled exception (or why it did not compile), for one generation.
struct CompiledOne {
    generation: Option<i64>,
    uid: Option<String>,
    result: Result<Arc<CompiledException>, String>,
}

/// Follows RoostPolicyExceptions (of every namespace, or of `namespace`)
/// until the task is dropped.
pub async fn follow_exceptions(client: Client, namespace: Option<String>, live: Arc<LivePolicies>) {
    let api: Api<RoostPolicyException> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    // By (namespace, name): the order exceptions are capped in.
    let mut current: BTreeMap<(String, String), RoostPolicyException> = BTreeMap::new();
    let mut listing: Option<BTreeMap<(String, String), RoostPolicyException>> = None;
    let mut compiled: HashMap<(String, String), CompiledOne> = HashMap::new();
    let key = |e: &RoostPolicyException| (e.namespace().unwrap_or_default(), e.name_any());
    while let Some(event) = events.next().await {
        let changed = match event {
            Ok(Event::Init) => {
                listing = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(exception)) => {
                if let Some(listing) = listing.as_mut() {
                    listing.insert(key(&exception), exception);
                }
                false
            }
            Ok(Event::InitDone) => {
                current = listing.take().unwrap_or_default();
                true
            }
            Ok(Event::Apply(exception)) => {
                current.insert(key(&exception), exception);
                true
            }
            Ok(Event::Delete(exception)) => {
                current.remove(&key(&exception));
                true
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::ErrorChain(&err), "watch of RoostPolicyExceptions failed; retrying");
                false
            }
        };
        if changed {
            live.replace_exceptions(exceptions_in_force(&current, &mut compiled));
        }
    }
}

/// Compiles what changed; the valid exceptions in (namespace, name) order,
/// at most [`MAX_EXCEPTIONS_IN_FORCE`]. Invalid ones are left out with a log line.
fn exceptions_in_force(
    current: &BTreeMap<(String, String), RoostPolicyException>,
    compiled: &mut HashMap<(String, String), CompiledOne>,
) -> Vec<Arc<CompiledException>> {
    compiled.retain(|key, _| current.contains_key(key));
    for (key, stored) in current {
        let fresh = compiled.get(key).is_some_and(|c| {
            c.generation == stored.metadata.generation && c.uid == stored.metadata.uid
        });
        if fresh {
            continue;
        }
        let result = exception::compile(stored)
            .map(Arc::new)
            .map_err(|problems| {
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
        if let Err(problems) = &result {
            tracing::warn!(
                namespace = %key.0,
                name = %key.1,
                %problems,
                "RoostPolicyException is invalid and not in force"
            );
        }
        compiled.insert(
            key.clone(),
            CompiledOne {
                generation: stored.metadata.generation,
                uid: stored.metadata.uid.clone(),
                result,
            },
        );
    }
    let valid: Vec<Arc<CompiledException>> = current
        .keys()
        .filter_map(|key| compiled.get(key)?.result.as_ref().ok().cloned())
        .collect();
    let invalid = compiled.values().filter(|c| c.result.is_err()).count();
    if valid.len() > MAX_EXCEPTIONS_IN_FORCE {
        let first_left_out = &valid[MAX_EXCEPTIONS_IN_FORCE];
        tracing::warn!(
            valid = valid.len(),
            max = MAX_EXCEPTIONS_IN_FORCE,
            first_left_out = %format!("{}/{}", first_left_out.namespace, first_left_out.name),
            "too many RoostPolicyExceptions: those after the first {MAX_EXCEPTIONS_IN_FORCE} in namespace/name order are not in force"
        );
    }
    let in_force: Vec<_> = valid.into_iter().take(MAX_EXCEPTIONS_IN_FORCE).collect();
    tracing::info!(
        in_force = in_force.len(),
        invalid,
        "RoostPolicyExceptions in force"
    );
    in_force
}

/// Follows Namespaces' labels until the task is dropped.
pub async fn follow_namespaces(client: Client, live: Arc<LivePolicies>) {
    let api: Api<Namespace> = Api::all(client);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut listing: Option<HashMap<String, Labels>> = None;
    let labels = |ns: &Namespace| -> Labels { ns.labels().clone().into_iter().collect() };
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing = Some(HashMap::new()),
            Ok(Event::InitApply(ns)) => {
                if let Some(listing) = listing.as_mut() {
                    listing.insert(ns.name_any(), labels(&ns));
                }
            }
            Ok(Event::InitDone) => live.namespaces_listed(listing.take().unwrap_or_default()),
            Ok(Event::Apply(ns)) => live.namespace_changed(&ns.name_any(), Some(labels(&ns))),
            Ok(Event::Delete(ns)) => live.namespace_changed(&ns.name_any(), None),
            Err(err) => {
                tracing::warn!(error = %crate::error::ErrorChain(&err), "watch of Namespaces failed; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exception(
        namespace: &str,
        name: &str,
        generation: i64,
        codes: &[&str],
    ) -> RoostPolicyException {
        serde_json::from_value(json!({
            "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("{namespace}-{name}"), "generation": generation},
            "spec": {"codes": codes, "roosts": ["web"], "justification": "migration"}
        }))
        .unwrap()
    }

    fn keyed(list: Vec<RoostPolicyException>) -> BTreeMap<(String, String), RoostPolicyException> {
        list.into_iter()
            .map(|e| ((e.namespace().unwrap(), e.name_any()), e))
            .collect()
    }

    #[test]
    fn invalid_exceptions_are_left_out_and_valid_ones_kept_per_generation() {
        let mut compiled = HashMap::new();
        let current = keyed(vec![
            exception("b", "x", 1, &["CHART_VERSION_UNPINNED"]),
            exception("a", "bad", 1, &["CHART_VERSION_MISSING"]),
            exception("a", "y", 1, &["MY_CODE"]),
        ]);
        let first = exceptions_in_force(&current, &mut compiled);
        let names: Vec<_> = first
            .iter()
            .map(|e| format!("{}/{}", e.namespace, e.name))
            .collect();
        assert_eq!(
            names,
            ["a/y", "b/x"],
            "the built-in error cannot be exempted"
        );
        let again = exceptions_in_force(&current, &mut compiled);
        assert!(
            Arc::ptr_eq(&first[0], &again[0]),
            "compiled once per generation"
        );
        let changed = keyed(vec![exception("a", "y", 2, &["OTHER"])]);
        let after = exceptions_in_force(&changed, &mut compiled);
        assert_eq!(after.len(), 1);
        assert!(after[0].exempts("OTHER"));
        assert_eq!(compiled.len(), 1, "deleted ones are forgotten");
    }

    #[test]
    fn at_most_the_cap_is_in_force_in_name_order() {
        let mut compiled = HashMap::new();
        let current = keyed(
            (0..=MAX_EXCEPTIONS_IN_FORCE)
                .map(|i| exception("ns", &format!("e{i:05}"), 1, &["X"]))
                .collect(),
        );
        let in_force = exceptions_in_force(&current, &mut compiled);
        assert_eq!(in_force.len(), MAX_EXCEPTIONS_IN_FORCE);
        assert_eq!(
            in_force.last().unwrap().name,
            format!("e{:05}", MAX_EXCEPTIONS_IN_FORCE - 1)
        );
    }
}
