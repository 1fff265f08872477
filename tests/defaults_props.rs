//! Defaulting is idempotent and never overwrites a field the user set,
//! over generated specs.

use proptest::prelude::*;
use roost_keeper::defaults::apply_defaults;
use serde_json::{Map, Value, json};

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::of(s).boxed()
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..100).prop_map(Value::from),
        "[a-z0-9:/.+-]{0,12}".prop_map(Value::from),
        Just(json!("oci://r.io/c")),
        Just(json!("git+https://g.io/r")),
    ]
    .boxed()
}

/// An object with some of `keys` set to arbitrary scalars (or small objects).
fn object(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::collection::vec((prop::sample::select(keys), scalar()), 0..keys.len() + 1)
        .prop_map(|pairs| {
            Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>(),
            )
        })
        .boxed()
}

fn with_child(
    base: BoxedStrategy<Value>,
    key: &'static str,
    child: BoxedStrategy<Value>,
) -> BoxedStrategy<Value> {
    (base, maybe(child))
        .prop_map(move |(mut b, c)| {
            if let (Some(map), Some(c)) = (b.as_object_mut(), c) {
                map.insert(key.to_owned(), c);
            }
            b
        })
        .boxed()
}

fn health_check() -> BoxedStrategy<Value> {
    let base = object(&[
        "name",
        "type",
        "interval",
        "timeout",
        "failureThreshold",
        "weight",
    ]);
    let base = with_child(base, "http", object(&["url", "method"]));
    with_child(
        base,
        "udp",
        object(&["host", "port", "sendData", "readTimeout", "retries"]),
    )
}

fn spec() -> BoxedStrategy<Value> {
    let repo = with_child(
        object(&["url", "type"]),
        "auth",
        object(&["type", "username", "password"]),
    );
    let chart = with_child(object(&["name", "version"]), "repository", repo);
    let tenancy = with_child(
        object(&["tenantId"]),
        "rbac",
        object(&["enabled", "tenantId"]),
    );
    (
        maybe(chart),
        maybe(prop::collection::vec(health_check(), 0..4)),
        maybe(tenancy),
    )
        .prop_map(|(chart, checks, tenancy)| {
            let mut spec = Map::new();
            if let Some(c) = chart {
                spec.insert("chart".into(), c);
            }
            if let Some(c) = checks {
                spec.insert("healthChecks".into(), Value::Array(c));
            }
            if let Some(t) = tenancy {
                spec.insert("tenancy".into(), t);
            }
            Value::Object(spec)
        })
        .boxed()
}

fn object_with(spec: Value, labels: Option<Value>) -> Value {
    let mut metadata = json!({"name": "p", "namespace": "default"});
    if let Some(labels) = labels {
        metadata["labels"] = labels;
    }
    json!({"apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost", "metadata": metadata, "spec": spec})
}

/// Every non-null leaf of `before` is unchanged in `after` (a set value is never overwritten).
fn set_values_kept(before: &Value, after: &Value, path: &str) -> Result<(), String> {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                if v.is_null() {
                    continue;
                }
                let next = a.get(k).ok_or(format!("{path}.{k} removed"))?;
                // An empty string counts as unset (Go's omitempty) and may be filled.
                if v == "" {
                    continue;
                }
                set_values_kept(v, next, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => b
            .iter()
            .zip(a)
            .enumerate()
            .try_for_each(|(i, (x, y))| set_values_kept(x, y, &format!("{path}[{i}]"))),
        (b, a) if b == a => Ok(()),
        (b, a) => Err(format!("{path}: {b} became {a}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn defaulting_is_idempotent(spec in spec(), labels in maybe(object(&["app.kubernetes.io/managed-by", "roost.birb.party/tenant", "team"]))) {
        let input = object_with(spec, labels);
        let once = apply_defaults(&input);
        let twice = apply_defaults(&once.object);
        prop_assert!(twice.patch.0.is_empty(), "second pass patched: {:?}", twice.patch);
        prop_assert_eq!(&twice.object, &once.object);
    }

    #[test]
    fn defaulting_never_overwrites(spec in spec(), labels in maybe(object(&["app.kubernetes.io/managed-by", "team"]))) {
        let input = object_with(spec, labels);
        let out = apply_defaults(&input);
        if let Err(e) = set_values_kept(&input, &out.object, "") {
            return Err(TestCaseError::fail(e));
        }
        let mut patched = input.clone();
        json_patch::patch(&mut patched, &out.patch).unwrap();
        prop_assert_eq!(patched, out.object);
    }
}
