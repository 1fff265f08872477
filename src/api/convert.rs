//! Conversion of whole ManagedRoost objects between v1alpha1 and v1beta1:
//! pure, total on every object of a served version, and lossless both ways.
//!
//! v1alpha1 → v1beta1 renames the inline credentials and writes every value
//! that v1beta1 types as a string but v1alpha1 holds as another JSON type
//! (`interval: 30`, `hard: {pods: 10}`, `samplingRate: 0.1`) as its JSON text.
//! Which leaves were such values is written to the annotation
//! [`CONVERSION_ANNOTATION`] as JSON pointers below `spec` (paths only, never
//! values, so no credential reaches an annotation); v1beta1 → v1alpha1 reads
//! it and gives those leaves their type back, where the text is still the
//! value's JSON text. Everything else, status and metadata included, is
//! carried unchanged.

use super::crd::spec_schema_of;
use super::version::{ApiVersion, RENAMED_CREDENTIALS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The annotation that records the v1alpha1 types of stringified leaves.
pub const CONVERSION_ANNOTATION: &str = "roost.birb.party/conversion-data";
/// Longest value of [`CONVERSION_ANNOTATION`]: past it, further leaves come
/// back to v1alpha1 as strings (which v1alpha1 accepts and every rule reads
/// the same way) rather than growing the object without bound.
pub const MAX_CONVERSION_DATA: usize = 32 * 1024;

const KIND: &str = "ManagedRoost";

/// Why an object could not be converted. The apiserver sends only objects it
/// stored or accepted, none of which fail; these are for anything else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("the object is not a JSON object")]
    NotAnObject,
    #[error("kind {0:?} is not ManagedRoost")]
    WrongKind(String),
    #[error("apiVersion {0:?} is not served; served: {served}", served = ApiVersion::served_list())]
    UnknownVersion(String),
}

/// The annotation's content: JSON pointers below `spec`.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Leftovers {
    /// Leaves that were JSON numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    numbers: Vec<String>,
    /// Leaves that were booleans, lists or objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    json: Vec<String>,
    /// An upper bound of the encoded length so far.
    #[serde(skip)]
    encoded_len: usize,
}

impl Leftovers {
    fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.json.is_empty()
    }

    /// Records `pointer` (a number's or another value's), while the
    /// annotation stays within [`MAX_CONVERSION_DATA`].
    fn record(&mut self, pointer: &str, number: bool) {
        // `{"numbers":[],"json":[]}`, then each path quoted, with a comma,
        // at worst doubled by JSON escapes.
        let cost = 2 * pointer.len() + 3;
        if 24 + self.encoded_len + cost > MAX_CONVERSION_DATA {
            return;
        }
        self.encoded_len += cost;
        let list = if number {
            &mut self.numbers
        } else {
            &mut self.json
        };
        list.push(pointer.to_owned());
    }
}

/// The version an object is written in.
pub fn version_of(object: &Value) -> Result<ApiVersion, ConversionError> {
    let map = object.as_object().ok_or(ConversionError::NotAnObject)?;
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or(KIND);
    if kind != KIND {
        return Err(ConversionError::WrongKind(kind.to_owned()));
    }
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    ApiVersion::from_api_version(api_version)
        .ok_or_else(|| ConversionError::UnknownVersion(api_version.to_owned()))
}

/// `object` (a ManagedRoost of a served version) in version `to`.
pub fn convert(object: &Value, to: ApiVersion) -> Result<Value, ConversionError> {
    let from = version_of(object)?;
    let mut object = object.clone();
    convert_in_place(&mut object, from, to);
    Ok(object)
}

/// `object`, known to be in `from`, in `to`: borrowed when that is the same
/// version, so a caller pays nothing for objects already in it.
pub fn converted(object: &Value, from: ApiVersion, to: ApiVersion) -> Cow<'_, Value> {
    if from == to {
        return Cow::Borrowed(object);
    }
    let mut object = object.clone();
    convert_in_place(&mut object, from, to);
    Cow::Owned(object)
}

/// A spec written in `from`, with its object's [`CONVERSION_ANNOTATION`]
/// (`conversion_data`), in the hub's shape: the spec of the object
/// [`converted`] to v1alpha1, for callers that hold only the spec and the
/// annotation.
pub fn spec_to_hub(spec: Value, conversion_data: Option<&str>, from: ApiVersion) -> Value {
    if from == ApiVersion::V1alpha1 {
        return spec;
    }
    let mut object = serde_json::json!({ "spec": spec });
    if let Some(data) = conversion_data {
        object["metadata"] = serde_json::json!({"annotations": {CONVERSION_ANNOTATION: data}});
    }
    convert_in_place(&mut object, from, ApiVersion::V1alpha1);
    object.get_mut("spec").map(Value::take).unwrap_or_default()
}

/// Converts `object`, known to be in `from`, to `to`.
pub fn convert_in_place(object: &mut Value, from: ApiVersion, to: ApiVersion) {
    if from == to {
        return;
    }
    match to {
        ApiVersion::V1beta1 => alpha_to_beta(object),
        ApiVersion::V1alpha1 => beta_to_alpha(object),
    }
    object["apiVersion"] = to.api_version().into();
}

fn auth_of(object: &mut Value) -> Option<&mut Map<String, Value>> {
    object
        .get_mut("spec")?
        .get_mut("chart")?
        .get_mut("repository")?
        .get_mut("auth")?
        .as_object_mut()
}

fn rename_keys(map: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = map.remove(from) {
        map.insert(to.to_owned(), value);
    }
}

fn alpha_to_beta(object: &mut Value) {
    if let Some(auth) = auth_of(object) {
        for (alpha, beta) in RENAMED_CREDENTIALS {
            rename_keys(auth, alpha, beta);
        }
    }
    let mut leftovers = Leftovers::default();
    if let Some(spec) = object.get_mut("spec") {
        stringify(
            spec,
            spec_schema_of(ApiVersion::V1beta1),
            &mut String::new(),
            &mut leftovers,
        );
    }
    set_annotation(object, (!leftovers.is_empty()).then_some(&leftovers));
}

fn beta_to_alpha(object: &mut Value) {
    let leftovers = take_annotation(object);
    if let (Some(leftovers), Some(spec)) = (leftovers, object.get_mut("spec")) {
        for pointer in &leftovers.numbers {
            restore(spec, pointer, |text, slot| {
                let number: serde_json::Number = serde_json::from_str(text).ok()?;
                let whole = number.is_i64() || number.is_u64();
                let fits = match slot {
                    AlphaSlot::IntOrString => whole,
                    AlphaSlot::Any => true,
                };
                (fits && number.to_string() == text).then_some(Value::Number(number))
            });
        }
        for pointer in &leftovers.json {
            restore(spec, pointer, |text, slot| {
                let value: Value = serde_json::from_str(text).ok()?;
                let typed = matches!(value, Value::Bool(_) | Value::Array(_) | Value::Object(_));
                let fits = slot == AlphaSlot::Any;
                (fits && typed && serde_json::to_string(&value).ok()? == text).then_some(value)
            });
        }
    }
    if let Some(auth) = auth_of(object) {
        for (alpha, beta) in RENAMED_CREDENTIALS {
            rename_keys(auth, beta, alpha);
        }
    }
}

/// What a v1alpha1 leaf holds besides strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AlphaSlot {
    /// Integers (`x-kubernetes-int-or-string`).
    IntOrString,
    /// Any JSON value (no type).
    Any,
}

/// The kind of v1alpha1 leaf at `pointer` below `spec`, when it holds more
/// than strings: an annotation naming any other place is not followed, so
/// no edit of it can give v1alpha1 a value its schema refuses.
fn alpha_slot(pointer: &str) -> Option<AlphaSlot> {
    let mut schema = spec_schema_of(ApiVersion::V1alpha1);
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        schema = if let Some(properties) = schema.get("properties") {
            properties.get(&token)?
        } else if let Some(items) = schema.get("items") {
            token.parse::<usize>().ok()?;
            items
        } else {
            schema
                .get("additionalProperties")
                .filter(|s| s.is_object())?
        };
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        Some(AlphaSlot::IntOrString)
    } else if schema.get("type").is_none() && schema.get("properties").is_none() {
        Some(AlphaSlot::Any)
    } else {
        None
    }
}

/// Replaces the string at `pointer` below `spec` with `parse(text, slot)`,
/// when it gives a value (the text is still the JSON text written at
/// conversion, and v1alpha1 holds such a value there).
fn restore(spec: &mut Value, pointer: &str, parse: impl Fn(&str, AlphaSlot) -> Option<Value>) {
    let Some(kind) = alpha_slot(pointer) else {
        return;
    };
    let Some(slot) = spec.pointer_mut(pointer) else {
        return;
    };
    if let Some(value) = slot.as_str().and_then(|text| parse(text, kind)) {
        *slot = value;
    }
}

/// Walks `value` with its v1beta1 `schema`; a leaf typed string that holds
/// another JSON type (null aside) becomes its JSON text, recorded in `out`.
fn stringify(value: &mut Value, schema: &Value, pointer: &mut String, out: &mut Leftovers) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (key, child) in map.iter_mut() {
                    if let Some(child_schema) = properties.get(key) {
                        descend(child, child_schema, key, pointer, out);
                    }
                }
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|s| s.is_object())
            {
                for (key, child) in map.iter_mut() {
                    descend(child, values, key, pointer, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    descend(item, item_schema, &i.to_string(), pointer, out);
                }
            }
        }
        Value::String(_) | Value::Null => {}
        Value::Number(_) | Value::Bool(_) => {}
    }
    if schema.get("type").and_then(Value::as_str) == Some("string")
        && !matches!(value, Value::String(_) | Value::Null)
    {
        out.record(pointer, value.is_number());
        *value = Value::String(serde_json::to_string(value).unwrap_or_default());
    }
}

fn descend(
    value: &mut Value,
    schema: &Value,
    key: &str,
    pointer: &mut String,
    out: &mut Leftovers,
) {
    let mark = pointer.len();
    pointer.push('/');
    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
    stringify(value, schema, pointer, out);
    pointer.truncate(mark);
}

fn set_annotation(object: &mut Value, leftovers: Option<&Leftovers>) {
    let Some(object) = object.as_object_mut() else {
        return;
    };
    match leftovers.and_then(|l| serde_json::to_string(l).ok()) {
        Some(text) => {
            let metadata = object
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            let annotations = metadata
                .as_object_mut()
                .map(|m| {
                    m.entry("annotations")
                        .or_insert_with(|| Value::Object(Map::new()))
                })
                .and_then(Value::as_object_mut);
            if let Some(annotations) = annotations {
                annotations.insert(CONVERSION_ANNOTATION.into(), text.into());
            }
        }
        None => {
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                remove_annotation(metadata);
            }
        }
    }
}

fn remove_annotation(metadata: &mut Map<String, Value>) -> Option<Value> {
    let annotations = metadata.get_mut("annotations")?.as_object_mut()?;
    let removed = annotations.remove(CONVERSION_ANNOTATION);
    if annotations.is_empty() && removed.is_some() {
        metadata.remove("annotations");
    }
    removed
}

fn take_annotation(object: &mut Value) -> Option<Leftovers> {
    let metadata = object.get_mut("metadata")?.as_object_mut()?;
    let text = remove_annotation(metadata)?;
    serde_json::from_str(text.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alpha(spec: Value) -> Value {
        json!({
            "apiVersion": "roost.birb.party/v1alpha1",
            "kind": "ManagedRoost",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": spec,
            "status": {"phase": "Ready"},
        })
    }

    #[test]
    fn a_spec_alone_converts_as_its_object_does() {
        let object = alpha(json!({"chart": {"repository": {"auth": {"password": "p"}}},
                                  "healthChecks": [{"name": "h", "interval": 30}]}));
        let beta = convert(&object, ApiVersion::V1beta1).unwrap();
        let data = beta
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CONVERSION_ANNOTATION))
            .and_then(Value::as_str);
        assert!(data.is_some());
        let spec = spec_to_hub(beta["spec"].clone(), data, ApiVersion::V1beta1);
        assert_eq!(spec, object["spec"]);
        // Without the annotation the number stays a string; the names are the hub's.
        let spec = spec_to_hub(beta["spec"].clone(), None, ApiVersion::V1beta1);
        assert_eq!(spec["healthChecks"][0]["interval"], "30");
        assert_eq!(spec["chart"]["repository"]["auth"]["password"], "p");
        assert_eq!(
            spec_to_hub(json!(null), data, ApiVersion::V1beta1),
            json!(null)
        );
    }

    fn round_trip(object: &Value) -> Value {
        let beta = convert(object, ApiVersion::V1beta1).unwrap();
        convert(&beta, ApiVersion::V1alpha1).unwrap()
    }

    #[test]
    fn numbers_become_strings_and_come_back() {
        let object = alpha(json!({
            "chart": {"name": "x", "version": "1.0.0", "repository": {"url": "https://x"}},
            "healthChecks": [{"name": "a", "type": "tcp", "interval": 30, "timeout": "5s",
                "tcp": {"host": "x", "port": 80}}],
            "tenancy": {"resourceQuota": {"hard": {"pods": 10, "requests.cpu": "4", "a/b~c": 1}}},
            "observability": {"tracing": {"samplingRate": 0.25}},
        }));
        let beta = convert(&object, ApiVersion::V1beta1).unwrap();
        assert_eq!(beta["apiVersion"], "roost.birb.party/v1beta1");
        assert_eq!(beta["spec"]["healthChecks"][0]["interval"], "30");
        assert_eq!(beta["spec"]["healthChecks"][0]["tcp"]["port"], 80);
        assert_eq!(
            beta["spec"]["tenancy"]["resourceQuota"]["hard"]["pods"],
            "10"
        );
        assert_eq!(
            beta["spec"]["observability"]["tracing"]["samplingRate"],
            "0.25"
        );
        let data = beta["metadata"]["annotations"][CONVERSION_ANNOTATION]
            .as_str()
            .unwrap();
        assert!(data.contains("/healthChecks/0/interval"), "{data}");
        assert!(
            data.contains("/tenancy/resourceQuota/hard/a~1b~0c"),
            "{data}"
        );
        assert_eq!(round_trip(&object), object);
    }

    #[test]
    fn any_json_in_an_open_number_survives() {
        for value in [
            json!(true),
            json!([1, "a"]),
            json!({"b": 2}),
            json!("0.1"),
            json!(7),
        ] {
            let object = alpha(json!({"observability": {"tracing": {"samplingRate": value}}}));
            let beta = convert(&object, ApiVersion::V1beta1).unwrap();
            assert!(beta["spec"]["observability"]["tracing"]["samplingRate"].is_string());
            assert_eq!(round_trip(&object), object);
        }
    }

    #[test]
    fn credentials_move_to_their_deprecated_home_and_never_into_the_annotation() {
        let object = alpha(
            json!({"chart": {"repository": {"url": "https://x", "auth": {
            "username": "u", "password": "hunter2", "token": "t0ken"}}},
            "healthChecks": [{"name": "a", "type": "tcp", "interval": 30}]}),
        );
        let beta = convert(&object, ApiVersion::V1beta1).unwrap();
        let auth = &beta["spec"]["chart"]["repository"]["auth"];
        assert_eq!(auth["deprecatedPassword"], "hunter2");
        assert_eq!(auth["deprecatedToken"], "t0ken");
        assert!(auth.get("password").is_none());
        let annotations = beta["metadata"]["annotations"].to_string();
        assert!(!annotations.contains("hunter2") && !annotations.contains("t0ken"));
        assert_eq!(round_trip(&object), object);
    }

    #[test]
    fn a_v1beta1_object_round_trips_through_v1alpha1() {
        let beta = json!({
            "apiVersion": "roost.birb.party/v1beta1",
            "kind": "ManagedRoost",
            "metadata": {"name": "web", "annotations": {"a": "b"}},
            "spec": {"healthChecks": [{"name": "a", "type": "http", "interval": "30",
                "http": {"url": "https://x"}}],
                "chart": {"repository": {"auth": {"deprecatedToken": "t"}}}},
        });
        let alpha = convert(&beta, ApiVersion::V1alpha1).unwrap();
        assert_eq!(alpha["spec"]["healthChecks"][0]["interval"], "30");
        assert_eq!(alpha["spec"]["chart"]["repository"]["auth"]["token"], "t");
        assert_eq!(convert(&alpha, ApiVersion::V1beta1).unwrap(), beta);
    }

    #[test]
    fn an_edited_or_forged_annotation_gives_no_value_v1alpha1_refuses() {
        let data = r#"{"numbers":["/chart/name","/healthChecks/0/interval","/healthChecks/0/timeout","/nope/0"],"json":["/healthChecks/0/interval"]}"#;
        let beta = json!({
            "apiVersion": "roost.birb.party/v1beta1",
            "kind": "ManagedRoost",
            "metadata": {"annotations": {CONVERSION_ANNOTATION: data}},
            "spec": {"chart": {"name": "12"},
                "healthChecks": [{"interval": "1.5", "timeout": "45s"}]},
        });
        let alpha = convert(&beta, ApiVersion::V1alpha1).unwrap();
        assert_eq!(alpha["spec"]["chart"]["name"], "12");
        assert_eq!(alpha["spec"]["healthChecks"][0]["interval"], "1.5");
        assert_eq!(alpha["spec"]["healthChecks"][0]["timeout"], "45s");
        assert!(alpha["metadata"].get("annotations").is_none());
    }

    #[test]
    fn the_annotation_is_bounded() {
        let hard: Map<String, Value> = (0..5000)
            .map(|i| {
                (
                    format!("example.com/resource-with-a-long-name-{i}"),
                    json!(i),
                )
            })
            .collect();
        let object = alpha(json!({"tenancy": {"resourceQuota": {"hard": hard}}}));
        let beta = convert(&object, ApiVersion::V1beta1).unwrap();
        let data = beta["metadata"]["annotations"][CONVERSION_ANNOTATION]
            .as_str()
            .unwrap();
        assert!(data.len() <= MAX_CONVERSION_DATA, "{}", data.len());
        // Past the bound a number comes back as its text, which v1alpha1 accepts.
        let back = convert(&beta, ApiVersion::V1alpha1).unwrap();
        let hard = &back["spec"]["tenancy"]["resourceQuota"]["hard"];
        assert_eq!(hard["example.com/resource-with-a-long-name-0"], 0);
        assert_eq!(hard["example.com/resource-with-a-long-name-4999"], "4999");
    }

    #[test]
    fn foreign_objects_are_refused_and_a_same_version_request_is_a_copy() {
        assert_eq!(
            convert(&json!([]), ApiVersion::V1beta1),
            Err(ConversionError::NotAnObject)
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod"});
        assert!(matches!(
            convert(&pod, ApiVersion::V1beta1),
            Err(ConversionError::WrongKind(_))
        ));
        let future = json!({"apiVersion": "roost.birb.party/v2", "kind": "ManagedRoost"});
        assert!(matches!(
            convert(&future, ApiVersion::V1beta1),
            Err(ConversionError::UnknownVersion(_))
        ));
        let object = alpha(json!({"healthChecks": [{"interval": 30}]}));
        assert_eq!(convert(&object, ApiVersion::V1alpha1).unwrap(), object);
    }
}
