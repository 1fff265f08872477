//! From JSON to a verdict: decode a spec leniently (a value of the wrong type
//! becomes a `SCHEMA_INVALID` finding, the rest is still checked) and run the
//! rules. The admission server and the offline validator both come here.

use crate::api::ManagedRoostSpec;
use crate::validation::codes;
use crate::validation::{self, Finding, ValidationResult};
use serde::Deserialize;
use serde_json::Value;

/// Bound on decode retries, so a pathological object cannot loop for long.
const MAX_SCHEMA_FINDINGS: usize = 32;

/// A spec decoded as far as possible, with the type problems found on the way.
#[derive(Debug, Default)]
pub struct DecodedSpec {
    pub spec: ManagedRoostSpec,
    /// Paths whose values were dropped to decode the rest (`spec.healthChecks`).
    pub dropped: Vec<String>,
    pub findings: Vec<Finding>,
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn render(steps: &[Step]) -> String {
    let mut out = String::from("spec");
    for step in steps {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn kind_of(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "nothing",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "a list",
        Some(Value::Object(_)) => "an object",
    }
}

fn lookup<'a>(root: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

/// Removes the value at `steps`: a key is deleted; a list element is removed
/// with its whole list (indexes of the other elements must not shift).
fn drop_at(root: &mut Value, steps: &[Step]) -> Option<Vec<Step>> {
    let key_at = steps.iter().rposition(|s| matches!(s, Step::Key(_)))?;
    let (parent, last) = (&steps[..key_at], &steps[key_at]);
    let Step::Key(key) = last else { return None };
    let mut node = root;
    for step in parent {
        node = match step {
            Step::Key(k) => node.get_mut(k)?,
            Step::Index(i) => node.get_mut(*i)?,
        };
    }
    node.as_object_mut()?.remove(key)?;
    Some(steps[..=key_at].to_vec())
}

/// Turns a serde message into one that names the expected type but never
/// quotes the value (it may be a secret).
fn describe(message: &str, found: Option<&Value>) -> String {
    let found = kind_of(found);
    match message.split_once("expected ") {
        Some((_, expected)) => format!("expected {expected}, got {found}; fix the value's type"),
        None => format!("value has the wrong type ({found}); fix the value's type"),
    }
}

/// A list or map of the spec with more entries than the CRD allows.
#[derive(Clone, Debug, PartialEq)]
struct Oversized {
    steps: Vec<Step>,
    len: usize,
    max: u64,
}

/// Lists and maps of `value` beyond their `maxItems` / `maxProperties` in
/// `schema`, outermost first; nothing below an oversized one is visited, so
/// the walk costs at most the limits, whatever the object.
fn oversized(value: &Value, schema: &Value, steps: &mut Vec<Step>, out: &mut Vec<Oversized>) {
    let limit = |key: &str| schema.get(key).and_then(Value::as_u64);
    match value {
        Value::Array(items) => {
            if let Some(max) = limit("maxItems").filter(|max| items.len() as u64 > *max) {
                out.push(Oversized {
                    steps: steps.clone(),
                    len: items.len(),
                    max,
                });
                return;
            }
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                steps.push(Step::Index(i));
                oversized(item, item_schema, steps, out);
                steps.pop();
            }
        }
        Value::Object(map) => {
            if let Some(max) = limit("maxProperties").filter(|max| map.len() as u64 > *max) {
                out.push(Oversized {
                    steps: steps.clone(),
                    len: map.len(),
                    max,
                });
                return;
            }
            let properties = schema.get("properties");
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) else {
                    continue;
                };
                steps.push(Step::Key(key.clone()));
                oversized(child, child_schema, steps, out);
                steps.pop();
            }
        }
        _ => {}
    }
}

fn oversized_in_spec(spec: &Value) -> Vec<Oversized> {
    let mut out = Vec::new();
    oversized(
        spec,
        crate::api::crd::spec_schema(),
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// Whether some list or map of `spec` has more entries than the CRD allows
/// (the apiserver refuses such an object; defaulting leaves it alone).
pub fn exceeds_size_limits(spec: &Value) -> bool {
    !oversized_in_spec(spec).is_empty()
}

/// Decodes `spec` (any JSON; missing or null means empty), dropping values of
/// the wrong type and lists or maps beyond the CRD's size limits.
pub fn decode_spec(spec: Option<&Value>) -> DecodedSpec {
    let too_big = spec.map(oversized_in_spec).unwrap_or_default();
    // Fast path: a well-typed spec decodes straight from the borrowed value.
    if too_big.is_empty()
        && let Some(value) = spec.filter(|v| v.is_object())
        && let Ok(spec) = ManagedRoostSpec::deserialize(value)
    {
        return DecodedSpec {
            spec,
            ..DecodedSpec::default()
        };
    }
    let mut value = match spec {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v) => v.clone(),
    };
    let mut decoded = DecodedSpec::default();
    for big in too_big {
        let (field, what) = (
            render(&big.steps),
            if value_is_list(&value, &big.steps) {
                "items"
            } else {
                "entries"
            },
        );
        decoded.findings.push(schema_finding(
            field.clone(),
            format!(
                "has {} {what}, at most {} are allowed; split the roost or remove some",
                big.len, big.max
            ),
        ));
        match drop_at(&mut value, &big.steps) {
            Some(path) => decoded.dropped.push(render(&path)),
            None => decoded.dropped.push(field),
        }
    }
    if !value.is_object() {
        decoded.findings.push(schema_finding(
            "spec".into(),
            describe("expected an object", Some(&value)),
        ));
        decoded.dropped.push("spec".into());
        return decoded;
    }
    loop {
        let result: Result<ManagedRoostSpec, _> = serde_path_to_error::deserialize(&value);
        let err = match result {
            Ok(spec) => {
                decoded.spec = spec;
                return decoded;
            }
            Err(err) => err,
        };
        let steps: Vec<Step> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                _ => None,
            })
            .collect();
        let message = describe(&err.inner().to_string(), lookup(&value, &steps));
        decoded
            .findings
            .push(schema_finding(render(&steps), message));
        let dropped = (decoded.findings.len() < MAX_SCHEMA_FINDINGS)
            .then(|| drop_at(&mut value, &steps))
            .flatten();
        match dropped {
            Some(path) => decoded.dropped.push(render(&path)),
            None => {
                decoded.dropped.push("spec".into());
                return decoded;
            }
        }
    }
}

fn value_is_list(root: &Value, steps: &[Step]) -> bool {
    lookup(root, steps).is_some_and(Value::is_array)
}

fn schema_finding(field: String, message: String) -> Finding {
    Finding::new(codes::SCHEMA_INVALID, field, message)
}

/// True when `field` is `prefix` or lies below it.
fn is_under(field: &str, prefix: &str) -> bool {
    field
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Validates a spec given as JSON (and the old spec on UPDATE): schema
/// findings first, then every rule, skipping fields that were dropped.
pub fn validate_spec_value(spec: Option<&Value>, old: Option<&Value>) -> ValidationResult {
    validate_spec_value_with(validation::Registry::global(), spec, old)
}

/// As [`validate_spec_value`], with the rules of `registry`.
pub fn validate_spec_value_with(
    registry: &validation::Registry,
    spec: Option<&Value>,
    old: Option<&Value>,
) -> ValidationResult {
    let old = old.map(|o| decode_spec(Some(o)).spec);
    validate_decoded_with(registry, &decode_spec(spec), old.as_ref())
}

/// Validates an already decoded spec: its schema findings first, then every
/// rule, skipping fields that were dropped.
pub fn validate_decoded(decoded: &DecodedSpec, old: Option<&ManagedRoostSpec>) -> ValidationResult {
    validate_decoded_with(validation::Registry::global(), decoded, old)
}

/// As [`validate_decoded`], with the rules of `registry`.
pub fn validate_decoded_with(
    registry: &validation::Registry,
    decoded: &DecodedSpec,
    old: Option<&ManagedRoostSpec>,
) -> ValidationResult {
    let rules = registry.findings(validation::Input {
        spec: &decoded.spec,
        old,
    });
    let mut findings = decoded.findings.clone();
    findings.extend(
        rules
            .into_iter()
            .filter(|f| !decoded.dropped.iter().any(|d| is_under(&f.field, d))),
    );
    ValidationResult::from_findings(findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_types_become_findings_and_the_rest_is_checked() {
        let spec = json!({
            "chart": {"name": "web", "version": "1.0.0", "repository": {"url": "https://x.io", "type": "http"}},
            "healthChecks": {"enabled": true},
            "tenancy": {"tenantId": "Bad_Id", "rbac": {"enabled": "yes"}}
        });
        let result = validate_spec_value(Some(&spec), None);
        let errors: Vec<(&str, &str)> = result
            .errors
            .iter()
            .map(|f| (f.code.as_str(), f.field.as_str()))
            .collect();
        assert_eq!(
            errors,
            vec![
                ("SCHEMA_INVALID", "spec.healthChecks"),
                ("SCHEMA_INVALID", "spec.tenancy.rbac.enabled"),
                ("TENANT_ID_INVALID", "spec.tenancy.tenantId"),
            ]
        );
        assert!(
            result.errors[0]
                .message
                .contains("expected a sequence, got an object"),
            "{:?}",
            result.errors[0]
        );
    }

    #[test]
    fn a_bad_list_element_drops_its_list_only() {
        let spec = json!({"healthChecks": [{"name": "a"}, "oops"], "namespace": "Bad"});
        let decoded = decode_spec(Some(&spec));
        assert_eq!(decoded.dropped, vec!["spec.healthChecks".to_owned()]);
        assert_eq!(decoded.findings[0].field, "spec.healthChecks[1]");
        assert_eq!(decoded.spec.namespace.as_deref(), Some("Bad"));
    }

    #[test]
    fn schema_messages_never_quote_values() {
        let spec =
            json!({"chart": {"repository": {"url": "https://x", "auth": {"password": 123456789}}}});
        let result = validate_spec_value(Some(&spec), None);
        let finding = &result.errors[0];
        assert_eq!(
            (finding.code.as_str(), finding.field.as_str()),
            ("SCHEMA_INVALID", "spec.chart.repository.auth.password")
        );
        assert!(
            !finding.message.contains("123456789"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn lists_and_maps_beyond_the_crd_limits_are_dropped_with_one_finding() {
        let custom: serde_json::Map<String, Value> = (0..100_000)
            .map(|i| (format!("k{i}"), json!("bad")))
            .collect();
        let spec = json!({
            "healthChecks": vec![json!({}); 300_000],
            "teardownPolicy": {"triggers": [{"type": "resource_threshold", "resourceThreshold": {"custom": custom}}]},
            "namespace": "Bad"
        });
        let result = validate_spec_value(Some(&spec), None);
        let schema: Vec<(&str, &str)> = result
            .errors
            .iter()
            .filter(|f| f.code == "SCHEMA_INVALID")
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            schema,
            vec![
                (
                    "spec.healthChecks",
                    "has 300000 items, at most 100 are allowed; split the roost or remove some"
                ),
                (
                    "spec.teardownPolicy.triggers[0].resourceThreshold.custom",
                    "has 100000 entries, at most 100 are allowed; split the roost or remove some"
                ),
            ]
        );
        assert!(
            result.codes().contains(&"TARGET_NAMESPACE_INVALID"),
            "{:?}",
            result.codes()
        );
        assert!(result.all().count() < 20, "{:?}", result.codes());
        assert!(exceeds_size_limits(&spec));
        assert!(!exceeds_size_limits(
            &json!({"healthChecks": vec![json!({}); 100]})
        ));
    }

    #[test]
    fn non_object_spec() {
        let result = validate_spec_value(Some(&json!("text")), None);
        assert_eq!(result.codes(), vec!["SCHEMA_INVALID"]);
        assert_eq!(result.errors[0].field, "spec");
    }

    #[test]
    fn under() {
        assert!(is_under("spec.healthChecks[0].name", "spec.healthChecks"));
        assert!(is_under("spec.healthChecks", "spec.healthChecks"));
        assert!(!is_under("spec.healthChecksExtra", "spec.healthChecks"));
    }
}
