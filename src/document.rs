//! From JSON to a verdict: decode a spec leniently (a value of the wrong type
//! becomes a `SCHEMA_INVALID` finding, the rest is still checked) and run the
//! rules. The admission server and the offline validator both come here.

use crate::api::ManagedRoostSpec;
use crate::validation::{self, Finding, Level, ValidationResult};
use serde::Deserialize;
use serde_json::Value;

/// Code for a value whose type does not fit the schema (the apiserver would reject it).
pub const SCHEMA_INVALID: &str = "SCHEMA_INVALID";
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

/// Decodes `spec` (any JSON; missing or null means empty), dropping values of the wrong type.
pub fn decode_spec(spec: Option<&Value>) -> DecodedSpec {
    // Fast path: a well-typed spec decodes straight from the borrowed value.
    if let Some(value) = spec.filter(|v| v.is_object())
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

fn schema_finding(field: String, message: String) -> Finding {
    Finding {
        code: SCHEMA_INVALID.to_owned(),
        level: Level::Error,
        field,
        message,
    }
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
    let old = old.map(|o| decode_spec(Some(o)).spec);
    validate_decoded(&decode_spec(spec), old.as_ref())
}

/// Validates an already decoded spec: its schema findings first, then every
/// rule, skipping fields that were dropped.
pub fn validate_decoded(decoded: &DecodedSpec, old: Option<&ManagedRoostSpec>) -> ValidationResult {
    let result = match old {
        Some(old) => validation::validate_update(&decoded.spec, old),
        None => validation::validate(&decoded.spec),
    };
    if decoded.findings.is_empty() {
        return result;
    }
    let mut findings = decoded.findings.clone();
    findings.extend(
        result
            .all()
            .filter(|f| !decoded.dropped.iter().any(|d| is_under(&f.field, d)))
            .cloned(),
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
                (SCHEMA_INVALID, "spec.healthChecks"),
                (SCHEMA_INVALID, "spec.tenancy.rbac.enabled"),
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
            (SCHEMA_INVALID, "spec.chart.repository.auth.password")
        );
        assert!(
            !finding.message.contains("123456789"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn non_object_spec() {
        let result = validate_spec_value(Some(&json!("text")), None);
        assert_eq!(result.codes(), vec![SCHEMA_INVALID]);
        assert_eq!(result.errors[0].field, "spec");
    }

    #[test]
    fn under() {
        assert!(is_under("spec.healthChecks[0].name", "spec.healthChecks"));
        assert!(is_under("spec.healthChecks", "spec.healthChecks"));
        assert!(!is_under("spec.healthChecksExtra", "spec.healthChecks"));
    }
}
