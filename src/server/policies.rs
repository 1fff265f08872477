//! Every replica follows RoostPolicies and Namespaces with watches and keeps
//! [`LivePolicies`] current: a policy is compiled once per generation, and the
//! set in force is replaced whole when any policy changes.

use crate::metrics::{Metrics, ReadyLabel};
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
