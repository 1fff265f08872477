//! The policies in force and the namespaces' labels, as this replica's
//! watches last saw them; read by the webhooks and the controller on every
//! object, replaced whole when a policy changes.

use super::exception::CompiledException;
use super::{Labels, PolicySet, default_namespace_labels};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Shared by the webhooks, the controller and the watches that feed them.
pub struct LivePolicies {
    set: ArcSwap<PolicySet>,
    /// Policies that did not compile, by name, with why.
    failed: ArcSwap<BTreeMap<String, String>>,
    namespaces: RwLock<HashMap<String, Labels>>,
    /// The RoostPolicyExceptions in force (expired ones included: each
    /// verdict checks expiry at its own `now`).
    exceptions: ArcSwap<Vec<Arc<CompiledException>>>,
    /// Bumped on every change of the policies or of a namespace's labels.
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for LivePolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePolicies")
            .field("in_force", &self.set.load().policies().len())
            .field("failed", &self.failed.load().len())
            .finish()
    }
}

impl Default for LivePolicies {
    fn default() -> Self {
        LivePolicies {
            set: ArcSwap::default(),
            failed: ArcSwap::default(),
            namespaces: RwLock::default(),
            exceptions: ArcSwap::default(),
            version: watch::Sender::new(0),
        }
    }
}

impl LivePolicies {
    /// The policies in force now.
    pub fn set(&self) -> Arc<PolicySet> {
        self.set.load_full()
    }

    /// Whether no policy and no exception is in force; read per review,
    /// without cloning the set.
    pub fn is_empty(&self) -> bool {
        self.set.load().is_empty() && self.exceptions.load().is_empty()
    }

    /// The exceptions in force that name or select roost `name` (labels
    /// `labels`) of `namespace`.
    pub fn exceptions_for(
        &self,
        namespace: &str,
        name: &str,
        labels: &Labels,
    ) -> Vec<Arc<CompiledException>> {
        self.exceptions
            .load()
            .iter()
            .filter(|e| e.selects(namespace, name, labels))
            .cloned()
            .collect()
    }

    /// Every exception in force, expired or not.
    pub fn exceptions(&self) -> Arc<Vec<Arc<CompiledException>>> {
        self.exceptions.load_full()
    }

    /// Puts a new list of exceptions in force.
    pub fn replace_exceptions(&self, exceptions: Vec<Arc<CompiledException>>) {
        self.exceptions.store(Arc::new(exceptions));
        self.version.send_modify(|v| *v += 1);
    }

    /// Whether a policy in force has custom rules (judging may then take up
    /// to a review's CEL budget); read per review, without cloning the set.
    pub fn has_rules(&self) -> bool {
        self.set.load().has_rules()
    }

    /// Policies that did not compile, with the reason.
    pub fn failed(&self) -> Arc<BTreeMap<String, String>> {
        self.failed.load_full()
    }

    /// A namespace's labels; one not (yet) seen has the name label only, as
    /// every namespace does.
    pub fn namespace_labels(&self, namespace: &str) -> Labels {
        let known = self
            .namespaces
            .read()
            .ok()
            .and_then(|n| n.get(namespace).cloned());
        known.unwrap_or_else(|| default_namespace_labels(namespace))
    }

    /// Puts a new set in force.
    pub fn replace(&self, set: PolicySet, failed: BTreeMap<String, String>) {
        self.set.store(Arc::new(set));
        self.failed.store(Arc::new(failed));
        self.version.send_modify(|v| *v += 1);
    }

    /// Records a namespace's labels (`None`: the namespace is gone).
    pub fn namespace_changed(&self, name: &str, labels: Option<Labels>) {
        let changed = match self.namespaces.write() {
            Ok(mut namespaces) => match labels {
                Some(labels) => namespaces.insert(name.to_owned(), labels.clone()) != Some(labels),
                None => namespaces.remove(name).is_some(),
            },
            Err(_) => false,
        };
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Replaces every namespace's labels (a full list).
    pub fn namespaces_listed(&self, all: HashMap<String, Labels>) {
        if let Ok(mut namespaces) = self.namespaces.write() {
            *namespaces = all;
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
