//! How the controller keeps a ManagedRoost in memory between reconciles.
//!
//! Every object in the watch stays in the reflector store for as long as it
//! exists, so its in-memory form decides the controller's memory. Typed, a
//! status with 50 lifecycle records holds about 24 KB of heap (a `String` per
//! field, a `BTreeMap` node per `details`); its JSON text is about 6 KB, and
//! LZ4 shrinks that text several times over, records being alike. The store
//! therefore keeps metadata typed (without managedFields and kubectl's
//! last-applied copy, which nothing reads) and spec and status as
//! LZ4-compressed JSON, decoded once per reconcile (tens of microseconds,
//! next to a status write's milliseconds).
//!
//! The controller watches and writes the storage version (v1beta1), so the
//! apiserver converts nothing for it; a spec is converted to the hub
//! (v1alpha1) for the rules when it is decoded.

use crate::api::convert::{CONVERSION_ANNOTATION, convert_in_place, spec_to_hub};
use crate::api::{ApiVersion, ManagedRoost, ManagedRoostStatus};
use crate::engine::{Case, Engine, PolicyCase};
use crate::policy::Matched;
use crate::validation::decode;
use crate::validation::{SILENCE_ANNOTATION, ValidationResult};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;

/// kubectl's copy of the last applied manifest: a second spec nobody here reads.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A ManagedRoost as the controller's store holds it.
#[derive(Clone, Debug, Deserialize)]
pub struct StoredRoost {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "packed_json")]
    spec: Option<Packed>,
    #[serde(default, deserialize_with = "packed_json")]
    status: Option<Packed>,
}

/// LZ4-compressed JSON text.
#[derive(Clone)]
struct Packed(Box<[u8]>);

impl Packed {
    fn new(value: &impl serde::Serialize) -> serde_json::Result<Self> {
        let text = serde_json::to_vec(value)?;
        Ok(Packed(
            lz4_flex::compress_prepend_size(&text).into_boxed_slice(),
        ))
    }

    fn unpack<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        let text = lz4_flex::decompress_size_prepended(&self.0)
            .map_err(|e| serde::de::Error::custom(format!("corrupt packed JSON: {e}")))?;
        serde_json::from_slice(&text)
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} bytes)", self.0.len())
    }
}

/// The typed object a reconcile works on, with the verdict on its spec.
pub struct Decoded {
    pub roost: ManagedRoost,
    pub result: ValidationResult,
    /// How the custom rules of the matching policies went, and the time
    /// judging took (for the policy metrics).
    pub evaluations: crate::policy::Evaluations,
    pub policy_time: std::time::Duration,
    /// The custom rules that ran, (policy, code): the policy of an audited
    /// finding, the pass results of a report.
    pub rules: Vec<(String, String)>,
    /// The first expiry after `now` of an exception that selects the roost:
    /// the verdict must be formed again then.
    pub next_expiry: Option<Timestamp>,
}

/// The status text could not be read as a ManagedRoost status.
#[derive(Debug, thiserror::Error)]
#[error("status does not decode")]
pub struct StatusUndecodable(#[source] serde_json::Error);

/// Any JSON value, packed; `null` is absent.
fn packed_json<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Packed>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    Packed::new(&value)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl StoredRoost {
    /// Drops what no reconcile reads, before the object enters the store.
    pub fn trim(&mut self) {
        self.metadata.managed_fields = None;
        if let Some(annotations) = &mut self.metadata.annotations {
            annotations.remove(LAST_APPLIED);
        }
    }

    /// The typed object (its spec in the hub's shape) and the engine's
    /// verdict on it, as the validating webhook forms it (type problems in
    /// the spec become SCHEMA_INVALID findings; fields named in v1beta1);
    /// the policies' rules see the stored object (spec as stored, metadata
    /// without managed fields).
    pub fn decode(&self, engine: &Engine, now: Timestamp) -> Result<Decoded, StatusUndecodable> {
        let spec = self.spec();
        let matched = if engine.has_policies() {
            let namespace = self.metadata.namespace.as_deref().unwrap_or_default();
            let name = self.metadata.name.as_deref().unwrap_or_default();
            engine.matching(namespace, name, &self.labels())
        } else {
            Matched::default()
        };
        let object = (!matched.is_empty()).then(|| {
            serde_json::json!({
                "apiVersion": ApiVersion::STORAGE.api_version(),
                "kind": crate::api::KIND,
                "metadata": self.metadata,
                "spec": spec,
            })
        });
        let decoded = decode::decode_spec(self.in_hub(spec).as_ref());
        let silence = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SILENCE_ANNOTATION))
            .map(String::as_str);
        let started = std::time::Instant::now();
        let judgement = engine.judge(&Case {
            version: ApiVersion::STORAGE,
            spec: &decoded,
            old_spec: None,
            policies: object.as_ref().map(|object| PolicyCase {
                matched: &matched,
                object,
                old_object: None,
            }),
            silence,
            now,
        });
        let policy_time = started.elapsed();
        let next_expiry = matched.next_expiry(now);
        let status = self.status()?;
        Ok(Decoded {
            roost: ManagedRoost {
                metadata: self.metadata.clone(),
                spec: decoded.spec,
                status,
            },
            result: judgement.result,
            evaluations: judgement.evaluations,
            policy_time,
            rules: judgement.rules,
            next_expiry,
        })
    }

    /// The spec as stored (the storage version's shape), when it unpacks.
    pub fn spec(&self) -> Option<Value> {
        self.spec.as_ref().and_then(|p| p.unpack().ok())
    }

    /// The status, typed.
    pub fn status(&self) -> Result<Option<ManagedRoostStatus>, StatusUndecodable> {
        self.status
            .as_ref()
            .map(Packed::unpack::<ManagedRoostStatus>)
            .transpose()
            .map_err(StatusUndecodable)
    }

    /// `spec`, as stored, in the hub's shape: converted with the annotation
    /// that keeps the types a v1alpha1 client wrote.
    fn in_hub(&self, spec: Option<Value>) -> Option<Value> {
        let data = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONVERSION_ANNOTATION));
        spec.map(|spec| spec_to_hub(spec, data.map(String::as_str), ApiVersion::STORAGE))
    }

    /// A reference to the object in the version the controller watches
    /// (the Events' object), as [`Resource::object_ref`] forms it.
    pub fn reference(metadata: &ObjectMeta) -> ObjectReference {
        ObjectReference {
            api_version: Some(Self::api_version(&()).into_owned()),
            kind: Some(Self::kind(&()).into_owned()),
            name: metadata.name.clone(),
            namespace: metadata.namespace.clone(),
            uid: metadata.uid.clone(),
            ..ObjectReference::default()
        }
    }

    /// The object's labels, as policies select by them.
    pub fn labels(&self) -> crate::policy::Labels {
        self.metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The stored form of a typed (v1alpha1) object, as the watch of the
    /// storage version would give it.
    pub fn from_typed(roost: &ManagedRoost) -> serde_json::Result<Self> {
        let mut object = serde_json::to_value(roost)?;
        convert_in_place(&mut object, ApiVersion::V1alpha1, ApiVersion::STORAGE);
        let mut stored: StoredRoost = serde_json::from_value(object)?;
        stored.trim();
        Ok(stored)
    }
}

impl Resource for StoredRoost {
    type DynamicType = ();
    type Scope = <ManagedRoost as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        ManagedRoost::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        ManagedRoost::group(dt)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(ApiVersion::STORAGE.name())
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(ApiVersion::STORAGE.api_version())
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        ManagedRoost::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire() -> Value {
        json!({
            "apiVersion": "roost.birb.party/v1beta1",
            "kind": "ManagedRoost",
            "metadata": {
                "name": "web", "namespace": "team-a", "uid": "u1",
                "annotations": {LAST_APPLIED: "{\"spec\":{}}", "roost.birb.party/teardown-approved": "true"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"chart": {"name": "web", "version": "1.2.3", "repository": {"url": "https://x.io"}}},
            "status": {"phase": "Ready", "lifecycle": {"events": [
                {"type": "Created", "timestamp": "2026-11-28T09:00:00Z", "message": "ManagedRoost created"}
            ]}}
        })
    }

    #[test]
    fn decodes_to_the_same_object_the_typed_api_would_give() {
        let mut stored: StoredRoost = serde_json::from_value(wire()).unwrap();
        stored.trim();
        let decoded = stored
            .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
            .unwrap();
        let mut typed: ManagedRoost = serde_json::from_value(wire()).unwrap();
        typed.metadata.managed_fields = None;
        typed
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(LAST_APPLIED);
        assert_eq!(decoded.roost.spec, typed.spec);
        assert_eq!(decoded.roost.status, typed.status);
        assert_eq!(decoded.roost.metadata, typed.metadata);
        assert!(decoded.result.valid, "{:?}", decoded.result);
    }

    #[test]
    fn a_stored_v1beta1_spec_is_judged_in_the_hub_and_named_in_v1beta1() {
        // As v1alpha1 wrote it: inline credentials, a number for a duration.
        let alpha = json!({
            "apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost",
            "metadata": {"name": "web", "namespace": "team-a", "uid": "u1"},
            "spec": {"chart": {"name": "web", "version": "1.2.3", "repository": {
                        "url": "https://x.io", "auth": {"password": "p"}}},
                     "healthChecks": [{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 1},
                                       "interval": 3}]}
        });
        let beta = crate::api::convert::convert(&alpha, ApiVersion::V1beta1).unwrap();
        assert_eq!(beta["spec"]["healthChecks"][0]["interval"], "3");
        let stored: StoredRoost = serde_json::from_value(beta).unwrap();
        let decoded = stored
            .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
            .unwrap();
        let typed: ManagedRoost = serde_json::from_value(alpha).unwrap();
        assert_eq!(decoded.roost.spec, typed.spec, "the hub's spec, types back");
        let fields = |code: &str| -> Vec<&str> {
            decoded
                .result
                .all()
                .filter(|f| f.code == code)
                .map(|f| f.field.as_str())
                .collect()
        };
        assert_eq!(
            fields("AUTH_INLINE_CREDENTIALS"),
            ["spec.chart.repository.auth.deprecatedPassword"]
        );
        // The number v1alpha1 wrote is judged as written (a duration needs a unit).
        assert_eq!(
            fields("DURATION_INVALID"),
            ["spec.healthChecks[0].interval"]
        );
    }

    #[test]
    fn the_controller_watches_and_refers_to_the_storage_version() {
        assert_eq!(StoredRoost::api_version(&()), "roost.birb.party/v1beta1");
        assert_eq!(StoredRoost::version(&()), "v1beta1");
        assert_eq!(StoredRoost::plural(&()), "managedroosts");
        let stored: StoredRoost = serde_json::from_value(wire()).unwrap();
        let reference = StoredRoost::reference(&stored.metadata);
        assert_eq!(reference, stored.object_ref(&()));
        assert_eq!(
            reference.api_version.as_deref(),
            Some("roost.birb.party/v1beta1")
        );
        assert_eq!(reference.uid.as_deref(), Some("u1"));
    }

    #[test]
    fn trim_drops_managed_fields_and_last_applied_but_keeps_other_annotations() {
        let mut stored: StoredRoost = serde_json::from_value(wire()).unwrap();
        stored.trim();
        assert!(stored.metadata.managed_fields.is_none());
        let annotations = stored.metadata.annotations.unwrap();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations["roost.birb.party/teardown-approved"], "true");
    }

    #[test]
    fn a_spec_of_the_wrong_shape_is_a_schema_finding_not_a_lost_object() {
        let mut wire = wire();
        wire["spec"]["healthChecks"] = json!({"not": "a list"});
        let stored: StoredRoost = serde_json::from_value(wire).unwrap();
        let decoded = stored
            .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(!decoded.result.valid);
        assert!(
            decoded
                .result
                .errors
                .iter()
                .any(|f| f.code == "SCHEMA_INVALID" && f.field == "spec.healthChecks"),
            "{:?}",
            decoded.result
        );
        assert_eq!(
            decoded.roost.spec.chart.and_then(|c| c.name).as_deref(),
            Some("web")
        );
    }

    #[test]
    fn an_undecodable_status_is_an_error_not_an_empty_status() {
        let mut wire = wire();
        wire["status"]["lifecycle"]["events"] = json!("not a list");
        let stored: StoredRoost = serde_json::from_value(wire).unwrap();
        assert!(
            stored
                .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
                .is_err()
        );
    }

    #[test]
    fn null_and_missing_spec_and_status_are_absent() {
        let stored: StoredRoost = serde_json::from_value(json!({
            "metadata": {"name": "x"}, "status": null
        }))
        .unwrap();
        assert!(stored.spec.is_none() && stored.status.is_none());
        assert!(
            stored
                .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
                .unwrap()
                .roost
                .status
                .is_none()
        );
    }

    #[test]
    fn from_typed_round_trips() {
        let typed: ManagedRoost = serde_json::from_value(wire()).unwrap();
        let decoded = StoredRoost::from_typed(&typed)
            .unwrap()
            .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
            .unwrap();
        assert_eq!(decoded.roost.spec, typed.spec);
        assert_eq!(decoded.roost.status, typed.status);
    }

    #[test]
    fn the_silence_annotation_applies_to_the_controllers_verdict() {
        let mut wire = wire();
        wire["spec"]["chart"]["version"] = json!("^1.2");
        let loud: StoredRoost = serde_json::from_value(wire.clone()).unwrap();
        let loud = loud
            .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
            .unwrap()
            .result;
        assert!(loud.codes().contains(&"CHART_VERSION_UNPINNED"));
        wire["metadata"]["annotations"][SILENCE_ANNOTATION] = json!("CHART_VERSION_UNPINNED");
        let quiet: StoredRoost = serde_json::from_value(wire).unwrap();
        let quiet = quiet
            .decode(&Engine::default(), Timestamp::UNIX_EPOCH)
            .unwrap()
            .result;
        assert!(!quiet.codes().contains(&"CHART_VERSION_UNPINNED"));
        assert_eq!(quiet.warnings.len() + 1, loud.warnings.len());
    }
}
