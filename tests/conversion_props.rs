//! Conversion over generated objects: every spec a version's CRD schema
//! accepts (generated from that schema, so every field of it is reached)
//! converts to the other version and back unchanged, and the converted spec
//! is one the other schema accepts. The checks are the conversion fuzz
//! target's (fuzz/checks.rs).

#[path = "../fuzz/checks.rs"]
mod checks;

use proptest::prelude::*;
use roost_keeper::api::ApiVersion;
use roost_keeper::api::crd::spec_schema_of;
use serde_json::{Map, Value, json};

/// Strings that look like other JSON, so that the conversion's
/// stringified leaves are tested against text written as text.
fn text() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "30s",
            "1h30m",
            "30",
            "0.5",
            "1e3",
            "-1",
            "true",
            "null",
            "[1]",
            "{\"a\":1}",
            "hunter2",
            "80%",
            "4Gi",
            "http",
            "tcp",
            "timeout",
        ])
        .prop_map(Value::from),
        "[a-z0-9./~ -]{0,10}".prop_map(Value::from),
    ]
    .boxed()
}

fn integer() -> BoxedStrategy<Value> {
    prop_oneof![
        (-3i64..100_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from)
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        integer(),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        Just(json!(0.1)),
        Just(json!(1e21)),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![any::<bool>().prop_map(Value::from), number(), text()];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Values `schema` accepts, `depth` levels of objects and lists at most.
fn from_schema(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let nullable = schema.get("nullable") == Some(&Value::Bool(true));
    let value = if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        prop_oneof![integer(), text()].boxed()
    } else {
        match schema.get("type").and_then(Value::as_str) {
            None => any_json(),
            Some("string") => text(),
            Some("boolean") => any::<bool>().prop_map(Value::from).boxed(),
            Some("integer") => integer(),
            Some("number") => number(),
            Some("array") if depth == 0 => Just(json!([])).boxed(),
            Some("array") => {
                let item = from_schema(schema.get("items").unwrap_or(&Value::Null), depth - 1);
                prop::collection::vec(item, 0..3)
                    .prop_map(Value::from)
                    .boxed()
            }
            Some("object") if depth == 0 => Just(json!({})).boxed(),
            Some("object") => object(schema, depth - 1),
            Some(other) => panic!("a schema type the generator does not know: {other}"),
        }
    };
    if nullable {
        prop_oneof![1 => Just(Value::Null), 12 => value].boxed()
    } else {
        value
    }
}

fn object(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = properties
            .iter()
            .map(|(key, child)| {
                let key = key.clone();
                prop::option::weighted(0.4, from_schema(child, depth))
                    .prop_map(move |v| v.map(|v| (key.clone(), v)))
                    .boxed()
            })
            .collect();
        return fields
            .prop_map(|pairs| Value::Object(pairs.into_iter().flatten().collect::<Map<_, _>>()))
            .boxed();
    }
    match schema.get("additionalProperties").filter(|s| s.is_object()) {
        Some(values) => {
            prop::collection::btree_map("[a-z./~]{1,6}", from_schema(values, depth), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed()
        }
        None => prop::collection::btree_map("[a-z]{1,4}", any_json(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
            .boxed(),
    }
}

fn roost(version: ApiVersion) -> impl Strategy<Value = Value> {
    from_schema(spec_schema_of(version), 6)
        .prop_map(move |spec| checks::roost_object(version, spec, Some(json!({"team": "birds"}))))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn v1alpha1_objects_round_trip_through_v1beta1(object in roost(ApiVersion::V1alpha1)) {
        prop_assert!(checks::stored_shape(&object, ApiVersion::V1alpha1), "generator: {object}");
        checks::check_conversion_of(&object);
    }

    #[test]
    fn v1beta1_objects_round_trip_through_v1alpha1(object in roost(ApiVersion::V1beta1)) {
        prop_assert!(checks::stored_shape(&object, ApiVersion::V1beta1), "generator: {object}");
        checks::check_conversion_of(&object);
    }
}

#[test]
fn every_sample_and_example_round_trips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut converted = 0;
    for dir in ["tests/samples", "examples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for document in roost_keeper::yaml::Documents::new(&text) {
                let Ok(document) = document else { continue };
                let object = document.value;
                if object.get("kind").and_then(Value::as_str) != Some("ManagedRoost")
                    || roost_keeper::api::convert::version_of(&object).is_err()
                {
                    continue;
                }
                checks::check_conversion_of(&object);
                converted += 1;
            }
        }
    }
    assert!(
        converted >= 10,
        "only {converted} ManagedRoosts among the samples"
    );
}
