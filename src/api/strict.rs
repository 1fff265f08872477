//! What the apiserver refuses in a ManagedRoost before any webhook sees it,
//! by its CRD schema: fields the schema does not declare (kubectl's default
//! strict field validation refuses them; with it off they are dropped) and
//! scalars of another type than declared (`port: "80"` where an integer
//! belongs). The webhook never sees either, so only the offline validator
//! needs to find them to give the cluster's answer; the engine's own decoder
//! stays lenient.

use super::version::ApiVersion;
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
/// Refusals reported per object; past it the object is refused anyway.
const MAX_REPORTED: usize = 50;

/// Why the apiserver refuses a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not declared; the declared field it most likely means.
    Unknown { suggestion: Option<String> },
    /// A scalar of another type: what the schema declares and what is written.
    WrongType {
        declared: &'static str,
        written: &'static str,
    },
}

/// A field the apiserver refuses, at its JSON path (`spec.chrat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedField {
    pub field: String,
    pub refused: Refused,
}

/// What the CRD schema refuses in a ManagedRoost object: undeclared fields
/// at the top level, in `metadata` and under `spec` where the schema is
/// closed (not where it keeps unknown fields or declares a map), and scalars
/// under `spec` of another type than declared; by the schema of the version
/// the object's `apiVersion` names (v1alpha1's when it names none served).
pub fn refusals(object: &Value) -> Vec<RefusedField> {
    let version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(ApiVersion::from_api_version)
        .unwrap_or(ApiVersion::V1alpha1);
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
            super::crd::spec_schema_of(version),
            &mut "spec".to_owned(),
            &mut found,
        );
    }
    found
}

/// Reports the keys of `map` that are not among `known`.
fn closed(map: &Map<String, Value>, known: &[&str], prefix: &str, found: &mut Vec<RefusedField>) {
    for key in map.keys().filter(|key| !known.contains(&key.as_str())) {
        unknown(found, format!("{prefix}{key}"), key, known);
    }
}

fn unknown(found: &mut Vec<RefusedField>, field: String, key: &str, known: &[&str]) {
    let suggestion = crate::text::closest(key, known).map(str::to_owned);
    push(found, field, Refused::Unknown { suggestion });
}

fn push(found: &mut Vec<RefusedField>, field: String, refused: Refused) {
    if found.len() < MAX_REPORTED {
        found.push(RefusedField { field, refused });
    }
}

/// The JSON type of a value, as the apiserver names it.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The type a scalar slot declares, when `value` does not have it. Null is
/// never refused: the apiserver drops a null it does not accept. A whole
/// number written as a float (`3.0`) counts as an integer, as the apiserver
/// reads it.
fn wrong_scalar(value: &Value, schema: &Value) -> Option<&'static str> {
    let written = type_of(value);
    if written == "null" {
        return None;
    }
    let declared = if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        "integer or string"
    } else {
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => "string",
            Some("integer") => "integer",
            Some("number") => "number",
            Some("boolean") => "boolean",
            _ => return None,
        }
    };
    let whole = value.as_f64().is_some_and(|n| n.fract() == 0.0);
    let accepted = match declared {
        "integer or string" => written == "string" || written == "integer" || whole,
        "integer" => written == "integer" || whole,
        "number" => written == "integer" || written == "number",
        other => written == other,
    };
    (!accepted).then_some(declared)
}

/// Walks `value` along its structural schema, as the apiserver's pruning
/// does; `path` is the value's field path, extended and restored on the way.
fn walk(value: &Value, schema: &Value, path: &mut String, found: &mut Vec<RefusedField>) {
    if let Some(declared) = wrong_scalar(value, schema) {
        let refused = Refused::WrongType {
            declared,
            written: type_of(value),
        };
        push(found, path.clone(), refused);
        return;
    }
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
                    unknown(found, format!("{path}.{key}"), key, &known);
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

    #[test]
    fn each_version_is_read_by_its_own_schema() {
        let spec = json!({"chart": {"name": "c", "repository": {"url": "https://x",
                          "auth": {"password": "p"}}},
                          "healthChecks": [{"name": "h", "type": "tcp", "interval": 30}]});
        let alpha = json!({"apiVersion": "roost.birb.party/v1alpha1", "spec": spec});
        assert_eq!(refusals(&alpha), []);
        let mut beta = alpha.clone();
        beta["apiVersion"] = json!("roost.birb.party/v1beta1");
        let found: Vec<String> = refusals(&beta).into_iter().map(|r| r.field).collect();
        assert_eq!(
            found,
            [
                "spec.chart.repository.auth.password",
                "spec.healthChecks[0].interval"
            ]
        );
    }

    /// Each unknown field with its suggestion.
    type Found = Vec<(String, Option<String>)>;
    /// Each wrongly typed field with the declared and the written type.
    type Typed = Vec<(String, &'static str, &'static str)>;

    fn fields(object: Value) -> Found {
        refusals(&object)
            .into_iter()
            .filter_map(|r| match r.refused {
                Refused::Unknown { suggestion } => Some((r.field, suggestion)),
                Refused::WrongType { .. } => None,
            })
            .collect()
    }

    fn wrong_types(object: Value) -> Typed {
        refusals(&object)
            .into_iter()
            .filter_map(|r| match r.refused {
                Refused::WrongType { declared, written } => Some((r.field, declared, written)),
                Refused::Unknown { .. } => None,
            })
            .collect()
    }

    fn typed(field: &str, declared: &'static str, written: &'static str) -> Typed {
        vec![(field.to_owned(), declared, written)]
    }

    #[test]
    fn scalars_of_another_type_are_refused_as_the_apiserver_does() {
        let check = |check: Value| json!({"spec": {"healthChecks": [check]}});
        let cases: Vec<(&str, Value, Typed)> = vec![
            (
                "a quoted port",
                check(json!({"tcp": {"port": "80"}})),
                typed("spec.healthChecks[0].tcp.port", "integer", "string"),
            ),
            (
                "a fraction where an integer belongs",
                check(json!({"failureThreshold": 1.5})),
                typed("spec.healthChecks[0].failureThreshold", "integer", "number"),
            ),
            (
                "a number where a string belongs",
                json!({"spec": {"chart": {"version": 1.2}}}),
                typed("spec.chart.version", "string", "number"),
            ),
            (
                "a string where a boolean belongs",
                check(json!({"http": {"tls": {"insecureSkipVerify": "yes"}}})),
                typed(
                    "spec.healthChecks[0].http.tls.insecureSkipVerify",
                    "boolean",
                    "string",
                ),
            ),
            (
                "int-or-string refuses a boolean",
                check(json!({"interval": true})),
                typed(
                    "spec.healthChecks[0].interval",
                    "integer or string",
                    "boolean",
                ),
            ),
            (
                "an integer port",
                check(json!({"tcp": {"port": 80}})),
                vec![],
            ),
            (
                "a whole float is an integer",
                check(json!({"failureThreshold": 3.0})),
                vec![],
            ),
            (
                "null is dropped, not refused",
                check(json!({"failureThreshold": null})),
                vec![],
            ),
            (
                "int-or-string takes a string",
                check(json!({"interval": "5s"})),
                vec![],
            ),
            (
                "int-or-string takes an integer",
                check(json!({"interval": 5})),
                vec![],
            ),
        ];
        for (name, object, want) in cases {
            assert_eq!(wrong_types(object), want, "{name}");
        }
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
                "a declared name with a prefix (the reference's README spelling)",
                json!({"spec": {"helmChart": {}, "roostHealthChecks": []}}),
                vec![
                    ("spec.helmChart".into(), some("chart")),
                    ("spec.roostHealthChecks".into(), some("healthChecks")),
                ],
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
        assert_eq!(refusals(&json!({"spec": spec})).len(), MAX_REPORTED);
    }
}
