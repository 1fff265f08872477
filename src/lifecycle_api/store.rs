//! The lifecycle API's own watch of ManagedRoosts: every replica that serves
//! the API keeps every roost (compact, as the controller does) with its
//! summary, and turns each change into stream events. Requests are answered
//! from here, never from the apiserver.

use super::hub::Hub;
use super::view::{self, RoostSummary};
use crate::controller::stored::StoredRoost;
use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One roost as the API keeps it.
pub struct Entry {
    pub summary: RoostSummary,
    pub stored: Arc<StoredRoost>,
}

type Key = (String, String);

/// Every roost, by namespace and name, and the stream their changes feed.
pub struct RoostStore {
    roosts: RwLock<BTreeMap<Key, Entry>>,
    pub hub: Hub,
    synced: AtomicBool,
}

/// What a list shows: the summaries, and the id of the last event they include.
pub struct Listing {
    pub items: Vec<RoostSummary>,
    pub last_event_id: String,
}

impl RoostStore {
    pub fn new(hub: Hub) -> Self {
        RoostStore {
            roosts: RwLock::new(BTreeMap::new()),
            hub,
            synced: AtomicBool::new(false),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Key, Entry>> {
        self.roosts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Key, Entry>> {
        self.roosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the first full list has arrived (before it, the API answers 503).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// The namespaces that hold roosts.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.read().keys().map(|(ns, _)| ns.clone()).collect()
    }

    /// The roosts of the namespaces `shown` admits, sorted, with the id of the
    /// last event published: events are published under the write lock, so
    /// none after that id is in the list and none before it is missing.
    pub fn list(&self, shown: impl Fn(&str) -> bool) -> Listing {
        let roosts = self.read();
        Listing {
            items: roosts
                .iter()
                .filter(|((ns, _), _)| shown(ns))
                .map(|(_, entry)| entry.summary.clone())
                .collect(),
            last_event_id: self.hub.last_id(),
        }
    }

    /// One roost's summary and stored object.
    pub fn get(&self, namespace: &str, name: &str) -> Option<(RoostSummary, Arc<StoredRoost>)> {
        self.read()
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|e| (e.summary.clone(), Arc::clone(&e.stored)))
    }

    /// Keeps `stored`; with `tell`, publishes what changed.
    pub fn apply(&self, stored: StoredRoost, tell: bool) {
        let meta = &stored.metadata;
        let (Some(namespace), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else {
            return;
        };
        let status = match stored.status() {
            Ok(status) => status,
            Err(err) => {
                tracing::debug!(%namespace, %name, error = %crate::error::ErrorChain(&err), "status does not decode; shown without it");
                None
            }
        };
        let spec = stored.spec();
        let summary = view::summary(
            &view::Identity {
                namespace: &namespace,
                name: &name,
                uid: meta.uid.as_deref().unwrap_or_default(),
                generation: meta.generation,
                created_at: meta.creation_timestamp.as_ref().map(|t| t.0),
            },
            spec.as_ref(),
            status.as_ref(),
        );
        let mut roosts = self.write();
        let key = (namespace, name);
        let before = roosts
            .get(&key)
            .filter(|e| e.summary.uid == summary.uid)
            .map(|e| &e.summary);
        if tell {
            for (event, data) in view::changes(before, &summary, status.as_ref()) {
                self.hub.publish(event, &key.0, &data);
            }
        }
        roosts.insert(
            key,
            Entry {
                summary,
                stored: Arc::new(stored),
            },
        );
    }

    /// Forgets a roost and tells the streams.
    pub fn delete(&self, namespace: &str, name: &str) {
        let mut roosts = self.write();
        if let Some(entry) = roosts.remove(&(namespace.to_owned(), name.to_owned())) {
            self.publish_deleted(&entry.summary);
        }
    }

    fn publish_deleted(&self, summary: &RoostSummary) {
        self.hub.publish(
            "deleted",
            &summary.namespace,
            &serde_json::json!({
                "namespace": summary.namespace, "name": summary.name, "uid": summary.uid
            }),
        );
    }

    /// After a full list: forgets (and tells of) the roosts it did not hold.
    fn retain(&self, listed: &BTreeSet<Key>) {
        let mut roosts = self.write();
        let gone: Vec<Key> = roosts
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(entry) = roosts.remove(&key) {
                self.publish_deleted(&entry.summary);
            }
        }
    }
}

fn key_of(stored: &StoredRoost) -> Option<Key> {
    Some((
        stored.metadata.namespace.clone()?,
        stored.metadata.name.clone()?,
    ))
}

/// Keeps `store` current until the task is dropped. The first list fills it
/// silently; a later list (after the watch lost its place) publishes what
/// changed meanwhile, deletions included: a stream never misses a change
/// silently.
pub async fn follow(api: Api<StoredRoost>, store: Arc<RoostStore>) {
    let mut listed: Option<BTreeSet<Key>> = None;
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(StoredRoost::trim)
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(stored)) => store.apply(stored, true),
            Ok(watcher::Event::Delete(stored)) => {
                if let Some((namespace, name)) = key_of(&stored) {
                    store.delete(&namespace, &name);
                }
            }
            Ok(watcher::Event::Init) => listed = Some(BTreeSet::new()),
            Ok(watcher::Event::InitApply(stored)) => {
                if let (Some(listed), Some(key)) = (listed.as_mut(), key_of(&stored)) {
                    listed.insert(key);
                }
                store.apply(stored, store.is_synced());
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    store.retain(&listed);
                }
                if !store.synced.swap(true, Ordering::SeqCst) {
                    tracing::info!("lifecycle API: first list complete");
                }
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::ErrorChain(&err), "lifecycle API: watch of ManagedRoosts failed; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(name: &str, uid: &str, phase: Option<&str>) -> StoredRoost {
        let mut object = json!({
            "apiVersion": "roost.birb.party/v1beta1", "kind": "ManagedRoost",
            "metadata": {"name": name, "namespace": "team-a", "uid": uid, "generation": 1},
            "spec": {"chart": {"name": "web", "version": "1.0.0"}},
        });
        if let Some(phase) = phase {
            object["status"] = json!({"phase": phase});
        }
        serde_json::from_value(object).unwrap()
    }

    fn drain(
        rx: &mut tokio::sync::broadcast::Receiver<Arc<super::super::hub::StreamEvent>>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            let frame = String::from_utf8_lossy(&e.frame).into_owned();
            out.push(frame.lines().nth(1).unwrap_or_default().to_owned());
        }
        out
    }

    #[test]
    fn changes_become_events_and_lists_are_consistent_with_them() {
        let store = RoostStore::new(Hub::new("t".into()));
        let mut rx = store.hub.subscribe(None).live;
        store.apply(stored("web", "u1", None), false);
        assert!(drain(&mut rx).is_empty(), "the first list is silent");
        store.apply(stored("web", "u1", Some("Ready")), true);
        store.apply(stored("api", "u2", None), true);
        assert_eq!(drain(&mut rx), ["event: phase", "event: roost"]);
        let listing = store.list(|_| true);
        let names: Vec<&str> = listing.items.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api", "web"]);
        assert_eq!(listing.last_event_id, "t-2");
        assert!(store.list(|ns| ns != "team-a").items.is_empty());
        store.delete("team-a", "api");
        assert_eq!(drain(&mut rx), ["event: deleted"]);
        // A re-list without `web` tells of its deletion.
        store.retain(&BTreeSet::new());
        assert_eq!(drain(&mut rx), ["event: deleted"]);
        assert!(store.get("team-a", "web").is_none());
    }

    #[test]
    fn a_roost_recreated_under_the_same_name_is_new() {
        let store = RoostStore::new(Hub::new("t".into()));
        let mut rx = store.hub.subscribe(None).live;
        store.apply(stored("web", "u1", Some("Ready")), true);
        store.apply(stored("web", "u2", Some("Ready")), true);
        assert_eq!(drain(&mut rx), ["event: roost", "event: roost"]);
    }
}
