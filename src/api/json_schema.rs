//! The JSON Schema (draft-07) of ManagedRoost and RoostPolicy (`roost-keeper
//! schema`), for editors (yaml-language-server) and kubeconform.
//!
//! It is the CRD's own `openAPIV3Schema` ([`crate::api::crd`]), converted,
//! so it cannot disagree with what the apiserver checks:
//!
//! - `nullable: true` adds `"null"` to the type (and to the enum, if any);
//! - `x-kubernetes-int-or-string` becomes `type: [integer, string]`;
//! - `x-kubernetes-preserve-unknown-fields` leaves the node open (any field,
//!   or any value where it has no type); the other `x-kubernetes-*` keys and
//!   the OpenAPI-only formats (`int64`, `double`) are dropped;
//! - every other object is closed (`additionalProperties: false`): kubectl's
//!   default strict field validation refuses undeclared fields, so an editor
//!   and kubeconform should flag them too. Maps keep their
//!   `additionalProperties` schema;
//! - the top level adds `apiVersion` and `kind` (one allowed value each,
//!   required) and `metadata`, whose usual fields are typed while the rest
//!   (`uid`, `managedFields`, ...) stay open, so `kubectl get -o yaml` output
//!   validates too.

use crate::api::crd::{CrdKind, managed_roost_crd, roost_policy_crd, roost_policy_exception_crd};
use crate::{Error, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use serde_json::{Map, Value, json};

/// `$schema` of every generated schema.
pub const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// Formats draft-07 defines; OpenAPI's own (`int64`, `double`, ...) are not
/// JSON Schema formats and are dropped.
const DRAFT_07_FORMATS: [&str; 17] = [
    "date-time",
    "date",
    "time",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

fn crd_of(kind: CrdKind) -> CustomResourceDefinition {
    match kind {
        CrdKind::Managedroost => managed_roost_crd(),
        CrdKind::Roostpolicy => roost_policy_crd(),
        CrdKind::Roostpolicyexception => roost_policy_exception_crd(),
    }
}

/// The CRD version `version` names, or its storage version.
fn version_of<'a>(
    crd: &'a CustomResourceDefinition,
    version: Option<&str>,
) -> Option<&'a CustomResourceDefinitionVersion> {
    let versions = &crd.spec.versions;
    match version {
        Some(name) => versions.iter().find(|v| v.name == name),
        None => versions.iter().find(|v| v.storage),
    }
}

/// Every served version of a resource, as (version name, file name).
pub fn versions(kind: CrdKind) -> Vec<(String, String)> {
    let crd = crd_of(kind);
    crd.spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| (v.name.clone(), file_name_of(&crd, &v.name)))
        .collect()
}

/// The file name kubeconform looks for with the schema location
/// `DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json`: lower-case kind, first
/// label of the group, version (`managedroost-roost-v1beta1.json`), of the
/// storage version.
pub fn file_name(kind: CrdKind) -> String {
    let crd = crd_of(kind);
    let version = version_of(&crd, None)
        .map(|v| v.name.as_str())
        .unwrap_or_default();
    file_name_of(&crd, version)
}

fn file_name_of(crd: &CustomResourceDefinition, version: &str) -> String {
    let group_label = crd.spec.group.split('.').next().unwrap_or_default();
    format!(
        "{}-{group_label}-{version}.json",
        crd.spec.names.kind.to_lowercase()
    )
}

/// The draft-07 schema of one resource in its storage version.
pub fn json_schema(kind: CrdKind) -> Value {
    json_schema_of(kind, None)
}

/// The draft-07 schema of one resource in `version` (its storage version
/// when `None`).
pub fn json_schema_of(kind: CrdKind, version: Option<&str>) -> Value {
    let crd = crd_of(kind);
    let version = version_of(&crd, version);
    let version_name = version.map(|v| v.name.as_str()).unwrap_or_default();
    let api_version = format!("{}/{version_name}", crd.spec.group);
    let resource_kind = crd.spec.names.kind.as_str();
    let openapi = version
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({"type": "object"}));
    let mut schema = match convert(&openapi) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "apiVersion".into(),
            json!({
                "description": "The API group and version of this schema.",
                "type": "string",
                "enum": [api_version],
            }),
        );
        properties.insert(
            "kind".into(),
            json!({"description": "The resource kind.", "type": "string", "enum": [resource_kind]}),
        );
        properties.insert("metadata".into(), object_meta());
    }
    let mut required = vec![json!("apiVersion"), json!("kind")];
    if let Some(Value::Array(crd_required)) = schema.get("required") {
        required.extend(crd_required.iter().cloned());
    }
    schema.insert("required".into(), Value::Array(required));
    schema.insert("$schema".into(), DRAFT_07.into());
    schema.insert(
        "$id".into(),
        format!(
            "https://{}/schemas/{}",
            crd.spec.group,
            file_name_of(&crd, version_name)
        )
        .into(),
    );
    schema.insert(
        "title".into(),
        format!("{resource_kind} ({api_version})").into(),
    );
    Value::Object(schema)
}

/// The schema as `roost-keeper schema` prints it and `schemas/` holds it.
pub fn json_schema_text(kind: CrdKind, version: Option<&str>) -> Result<String> {
    let text = serde_json::to_string_pretty(&json_schema_of(kind, version)).map_err(|source| {
        Error::SerializeJson {
            what: "JSON Schema",
            source,
        }
    })?;
    Ok(text + "\n")
}

/// `metadata`: the fields people write are typed; the others the apiserver
/// sets stay open, since their schemas are not part of the CRD.
fn object_meta() -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "description": "Standard object metadata.",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "generateName": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": string_map,
            "annotations": string_map,
        },
    })
}

/// One OpenAPI v3 structural schema node, and everything below it, as draft-07.
fn convert(node: &Value) -> Value {
    let Some(node) = node.as_object() else {
        return node.clone();
    };
    let flag = |key: &str| node.get(key) == Some(&Value::Bool(true));
    let mut out = Map::new();
    for (key, value) in node {
        match key.as_str() {
            "type" | "nullable" => {}
            key if key.starts_with("x-kubernetes-") => {}
            "format"
                if !value
                    .as_str()
                    .is_some_and(|f| DRAFT_07_FORMATS.contains(&f)) => {}
            "properties" => {
                let properties = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, child)| (name.clone(), convert(child)))
                    .collect();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), convert(value));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    let mut types: Vec<&str> = if flag("x-kubernetes-int-or-string") {
        vec!["integer", "string"]
    } else {
        node.get("type")
            .and_then(Value::as_str)
            .into_iter()
            .collect()
    };
    // Without a type (an opaque value) null is already allowed.
    if flag("nullable") && !types.is_empty() {
        types.push("null");
        if let Some(Value::Array(allowed)) = out.get_mut("enum")
            && !allowed.contains(&Value::Null)
        {
            allowed.push(Value::Null);
        }
    }
    let closed = types.contains(&"object")
        && !flag("x-kubernetes-preserve-unknown-fields")
        && !out.contains_key("additionalProperties");
    if closed {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    match types.as_slice() {
        [] => {}
        [single] => {
            out.insert("type".into(), (*single).into());
        }
        many => {
            out.insert("type".into(), json!(many));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_property<'a>(schema: &'a Value, path: &[&str]) -> &'a Value {
        path.iter()
            .fold(&schema["properties"]["spec"], |node, name| {
                if *name == "[]" {
                    &node["items"]
                } else {
                    &node["properties"][name]
                }
            })
    }

    #[test]
    fn file_names_are_the_ones_kubeconform_looks_for() {
        assert_eq!(
            file_name(CrdKind::Managedroost),
            "managedroost-roost-v1beta1.json"
        );
        let names: Vec<String> = versions(CrdKind::Managedroost)
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(
            names,
            [
                "managedroost-roost-v1alpha1.json",
                "managedroost-roost-v1beta1.json"
            ]
        );
        assert_eq!(
            file_name(CrdKind::Roostpolicy),
            "roostpolicy-roost-v1alpha1.json"
        );
    }

    #[test]
    fn the_top_level_names_the_resource() {
        let schema = json_schema(CrdKind::Managedroost);
        assert_eq!(schema["$schema"], DRAFT_07);
        assert_eq!(
            schema["properties"]["apiVersion"]["enum"],
            json!(["roost.birb.party/v1beta1"])
        );
        let alpha = json_schema_of(CrdKind::Managedroost, Some("v1alpha1"));
        assert_eq!(
            alpha["properties"]["apiVersion"]["enum"],
            json!(["roost.birb.party/v1alpha1"])
        );
        assert_eq!(
            schema["properties"]["kind"]["enum"],
            json!(["ManagedRoost"])
        );
        assert_eq!(schema["required"], json!(["apiVersion", "kind", "spec"]));
        assert_eq!(schema["additionalProperties"], false);
        assert!(
            schema["properties"]["metadata"]
                .get("additionalProperties")
                .is_none()
        );
        let policy = json_schema(CrdKind::Roostpolicy);
        assert_eq!(policy["properties"]["kind"]["enum"], json!(["RoostPolicy"]));
    }

    #[test]
    fn openapi_extensions_become_draft_07() {
        let schema = json_schema_of(CrdKind::Managedroost, Some("v1alpha1"));
        let interval = spec_property(&schema, &["healthChecks", "[]", "interval"]);
        assert_eq!(interval["type"], json!(["integer", "string", "null"]));
        let beta = json_schema(CrdKind::Managedroost);
        let interval = spec_property(&beta, &["healthChecks", "[]", "interval"]);
        assert_eq!(interval["type"], json!(["string", "null"]));
        let method = spec_property(&schema, &["healthChecks", "[]", "http", "method"]);
        assert_eq!(method["type"], json!(["string", "null"]));
        assert_eq!(
            method["enum"].as_array().unwrap().last(),
            Some(&Value::Null)
        );
        let inline = spec_property(&schema, &["chart", "values", "inline"]);
        assert!(inline.get("type").is_none(), "any value: {inline}");
        let load_balancing =
            spec_property(&schema, &["healthChecks", "[]", "grpc", "loadBalancing"]);
        assert!(load_balancing.get("additionalProperties").is_none());
        let headers = spec_property(&schema, &["healthChecks", "[]", "http", "headers"]);
        assert_eq!(headers["additionalProperties"]["type"], "string");
        let spec = spec_property(&schema, &[]);
        assert_eq!(spec["type"], "object", "not nullable: no null");
        assert_eq!(spec["additionalProperties"], false);
        let text = serde_json::to_string(&schema).unwrap();
        for gone in ["x-kubernetes-", "nullable", "int64", "double"] {
            assert!(!text.contains(gone), "{gone} left in the schema");
        }
    }
}
