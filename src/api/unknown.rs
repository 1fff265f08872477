//! Fields a ManagedRoost's CRD schema does not declare. kubectl's default
//! strict field validation makes the apiserver refuse them before any
//! webhook sees the object (with it off, it drops them), so only the offline
//! validator needs to find them to give the cluster's answer.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Top-level fields of every object.
const OBJECT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
/// The fields of ObjectMeta a client may write.
const METADATA_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];
/// Unknown fields reported per object; past it the object is refused anyway.
const MAX_REPORTED: usize = 50;

/// A field the schema does not declare, and the declared field it most
/// likely means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownField {
    /// The JSON path (`spec.chrat`).
    pub field: String,
    pub suggestion: Option<String>,
}

/// The undeclared fields of a ManagedRoost object: top level, `metadata`
/// and everything under `spec` that the CRD schema closes (not where it
/// keeps unknown fields or declares a map).
pub fn unknown_fields(object: &Value) -> Vec<UnknownField> {
    let mut found = Vec::new();
    let Some(map) = object.as_object() else {
        return found;
    };
    closed(map, OBJECT_FIELDS, "", &mut found);
    if let Some(Value::Object(metadata)) = map.get("metadata") {
        closed(metadata, METADATA_FIELDS, "metadata.", &mut found);
    }
    if let Some(spec) = map.get("spec") {
        walk(
            spec,
            super::crd::spec_schema(),
            &mut "spec".to_owned(),
            &mut found,
        );
    }
    found
}

/// Reports the keys of `map` that are not among `known`.
fn closed(map: &Map<String, Value>, known: &[&str], prefix: &str, found: &mut Vec<UnknownField>) {
    for key in map.keys().filter(|key| !known.contains(&key.as_str())) {
        report(found, format!("{prefix}{key}"), key, known);
    }
}

fn report(found: &mut Vec<UnknownField>, field: String, key: &str, known: &[&str]) {
    if found.len() < MAX_REPORTED {
        let suggestion = crate::validation::checks::closest(key, known).map(str::to_owned);
        found.push(UnknownField { field, suggestion });
    }
}

/// Walks `value` along its structural schema, as the apiserver's pruning
/// does; `path` is the value's field path, extended and restored on the way.
fn walk(value: &Value, schema: &Value, path: &mut String, found: &mut Vec<UnknownField>) {
    let declared_type = schema.get("type").and_then(Value::as_str);
    match value {
        // A value of another type than declared is the decoder's SCHEMA_INVALID.
        Value::Object(_) | Value::Array(_)
            if declared_type.is_some_and(|t| t != value_type(value)) => {}
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let open = schema.get("x-kubernetes-preserve-unknown-fields")
                == Some(&Value::Bool(true))
                || additional == Some(&Value::Bool(true));
            let parent = path.len();
            for (key, child) in map {
                if let Some(declared) = properties.and_then(|p| p.get(key)) {
                    let _ = write!(path, ".{key}");
                    walk(child, declared, path, found);
                } else if let Some(entries) = additional.filter(|a| a.is_object()) {
                    let _ = write!(path, "[{key}]");
                    walk(child, entries, path, found);
                } else if !open {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    report(found, format!("{path}.{key}"), key, &known);
                }
                path.truncate(parent);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                let parent = path.len();
                for (index, item) in items.iter().enumerate() {
                    let _ = write!(path, "[{index}]");
                    walk(item, item_schema, path, found);
                    path.truncate(parent);
                }
            }
        }
        _ => {}
    }
}

fn value_type(value: &Value) -> &'static str {
    if value.is_array() { "array" } else { "object" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each unknown field with its suggestion.
    type Found = Vec<(String, Option<String>)>;

    fn fields(object: Value) -> Found {
        unknown_fields(&object)
            .into_iter()
            .map(|u| (u.field, u.suggestion))
            .collect()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn undeclared_fields_are_found_with_the_closest_declared_one() {
        let cases: &[(&str, Value, Found)] = &[
            (
                "a typo in spec",
                json!({"spec": {"chrat": {}}}),
                vec![("spec.chrat".into(), some("chart"))],
            ),
            (
                "deep in a list item",
                json!({"spec": {"healthChecks": [{"name": "a"}, {"name": "b", "intervall": "5s"}]}}),
                vec![("spec.healthChecks[1].intervall".into(), some("interval"))],
            ),
            (
                "top level",
                json!({"apiVersion": "v", "kind": "k", "specs": {}}),
                vec![("specs".into(), some("spec"))],
            ),
            (
                "metadata",
                json!({"metadata": {"name": "a", "label": {}}}),
                vec![("metadata.label".into(), some("labels"))],
            ),
            (
                "nothing close",
                json!({"spec": {"zzzzzz": 1}}),
                vec![("spec.zzzzzz".into(), None)],
            ),
            (
                "declared fields only",
                json!({"apiVersion": "v", "kind": "k", "metadata": {"name": "a", "labels": {"x": "y"}},
                       "spec": {"chart": {"name": "a", "version": "1.0.0", "repository": {"url": "https://x"}}}}),
                vec![],
            ),
            (
                "a mapping where a list is declared is a type error, not unknown fields",
                json!({"spec": {"healthChecks": {"enabled": true}}}),
                vec![],
            ),
            (
                "values.inline keeps anything",
                json!({"spec": {"chart": {"values": {"inline": {"any": {"thing": 1}}}}}}),
                vec![],
            ),
        ];
        for (name, object, want) in cases {
            assert_eq!(&fields(object.clone()), want, "{name}");
        }
    }

    #[test]
    fn reports_are_bounded() {
        let spec: Map<String, Value> = (0..500).map(|i| (format!("x{i}"), json!(1))).collect();
        assert_eq!(unknown_fields(&json!({"spec": spec})).len(), MAX_REPORTED);
    }
}
